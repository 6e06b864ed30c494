# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Things every part of the engine needs: errors, names, the config and state root, the lock, atomic
JSON, temporary folder names, time stamps, environment lists and removal."""

import errno
import fcntl
import os
import time

DEFAULT_ROOT = '/var/lib/conductor'
DEFAULT_CONFIG = '/etc/conductor/conductor.conf'
ALNUM = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')  # not string's: it imports re
NAME_CHARS = ALNUM | frozenset('_.-')
ENV_KEY_CHARS = ALNUM | frozenset('_')


class ConductorError(Exception):
    """A failure the user can act on. The message is the whole story: what, where, how to fix."""


class Record:
    """A typed record: the class's annotations are its fields, given by keyword, each required unless the class
    gives a default. A dataclass without the dataclasses module, whose import (inspect, re) would cost run and
    exec 20 ms; the annotations are builtins or strings, so typing is never imported either."""

    def __init__(self, **values):
        fields = self.fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise TypeError('%s has no field %s' % (type(self).__name__, ', '.join(unknown)))
        for name in fields:
            if name in values:
                setattr(self, name, values[name])
            elif not hasattr(type(self), name):
                raise TypeError('%s needs the field %s' % (type(self).__name__, name))

    @classmethod
    def fields(cls):
        """The field names, in the order the classes declare them (a base class's first)."""
        names = {}
        for klass in reversed(cls.__mro__):
            names.update(dict.fromkeys(klass.__dict__.get('__annotations__', ())))
        return tuple(names)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.fields()}

    def replace(self, **changes):
        """A copy with some fields changed (dataclasses.replace)."""
        return type(self)(**dict(self.as_dict(), **changes))

    def __eq__(self, other):
        return type(self) is type(other) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join('%s=%r' % item for item in self.as_dict().items()))


def check_name(kind, name):
    """Refuse names that could escape a folder, confuse a shell or break an interface name."""
    # [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}, checked without re: importing it costs run and exec 5 ms
    if not isinstance(name, str) or not 0 < len(name) < 64 or name[0] not in ALNUM or not NAME_CHARS.issuperset(name):
        raise ConductorError(
            "invalid %s name %r: use 1 to 63 characters from a-z, A-Z, 0-9, '_', '.', '-', "
            "starting with a letter or digit" % (kind, name))
    return name


def is_env_key(key):
    """A shell variable name: letters, digits and _, not starting with a digit."""
    return bool(key) and not key[0].isdigit() and ENV_KEY_CHARS.issuperset(key)


def check_env(entries, where='environment entry'):
    """KEY=VALUE strings, as config.json stores them; returns them as a new list."""
    for entry in entries or []:
        if not isinstance(entry, str) or '=' not in entry or not is_env_key(entry.partition('=')[0]):
            raise ConductorError('invalid %s %r: use KEY=VALUE, KEY made of letters, digits and _, '
                                 'not starting with a digit' % (where, entry))
    return list(entries or [])


def env_dict(entries):
    """['K=V', ...] -> {'K': 'V'}; a later entry wins."""
    return dict(e.partition('=')[::2] for e in entries or [])


def env_list(env):
    """{'K': 'V'} (or a KEY=VALUE list, returned as it is) -> ['K=V', ...]."""
    if isinstance(env, dict):
        return ['%s=%s' % kv for kv in env.items()]
    return list(env or [])


def load_config(path=None):
    """Read conductor.conf: shell-style KEY=VALUE lines, as conductor.sh's config.sh had."""
    path = path or os.environ.get('CONDUCTOR_CONFIG') or DEFAULT_CONFIG
    config = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT:
            return config
        raise ConductorError('cannot read the config file %s: %s' % (path, e.strerror))
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        key, sep, value = line.partition('=')
        key = key.strip()
        if not sep or not is_env_key(key):
            raise ConductorError('%s:%d: expected KEY=VALUE, got %r' % (path, lineno, line))
        import shlex  # only when there is a config file: run and exec stay quick to start
        try:
            words = shlex.split(value)
        except ValueError as e:
            raise ConductorError('%s:%d: %s in %r' % (path, lineno, e, line))
        config[key] = ' '.join(words)
    return config


def state_root(root=None, config=None):
    """The one folder all state lives in: argument, else $CONDUCTOR_ROOT, else the config, else the default."""
    root = root or os.environ.get('CONDUCTOR_ROOT') or (config or {}).get('ROOT') or DEFAULT_ROOT
    return os.path.abspath(root)


class locked:
    """Hold an exclusive flock on path (created if needed) for the duration of the block. A class, not a
    contextlib.contextmanager: contextlib, with functools and collections, costs every command 2 ms to import."""

    def __init__(self, path):
        self.path, self.fd = path, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc):
        os.close(self.fd)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return loads(f.read())
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT:
            return default
        raise


# The json package's decoder and encoder import re at load time (10 to 30 ms that run, exec and ps would pay
# on every call). The C accelerator _json they sit on does the real work, so use it directly.
class _Scanning:
    strict, object_hook, object_pairs_hook = True, None, None
    parse_float, parse_int = float, int
    parse_constant = {'NaN': float('nan'), 'Infinity': float('inf'), '-Infinity': float('-inf')}.__getitem__


def loads(text):
    """json.loads for our records, without the json package (see above). ValueError if it is not JSON."""
    import _json
    text = text.strip()
    try:
        value, end = _json.make_scanner(_Scanning())(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError, SystemError):
        pass
    import json  # not JSON: _json reports that through json.decoder, which must be loaded to say what is wrong
    return json.loads(text)


def dumps(value, indent=''):
    """json.dumps(value, indent=2, sort_keys=True), the same text, without the json package (see above)."""
    import _json
    inner = indent + '  '
    if isinstance(value, dict):
        items = ['%s%s: %s' % (inner, _json.encode_basestring_ascii(str(k)), dumps(v, inner))
                 for k, v in sorted(value.items())]
        return '{\n%s\n%s}' % (',\n'.join(items), indent) if items else '{}'
    if isinstance(value, (list, tuple)):
        items = [inner + dumps(v, inner) for v in value]
        return '[\n%s\n%s]' % (',\n'.join(items), indent) if items else '[]'
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if value is None or isinstance(value, bool):
        return {None: 'null', True: 'true', False: 'false'}[value]
    if isinstance(value, (int, float)):
        return (int if isinstance(value, int) else float).__repr__(value)
    raise TypeError('%r cannot be written as JSON' % (value,))


SIZE_UNITS = {'': 1, 'b': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}


def parse_size(value, what, minimum, least):
    """'512m', '1g', '64MB' or a number of bytes -> bytes; None stays None. Less than minimum (`least`,
    as the error says it) is refused."""
    if value is None or value == '':
        return None
    text = str(value).strip().lower()
    number = text.rstrip('bkmgt')
    unit = text[len(number):]
    unit = unit[:-1] if len(unit) == 2 and unit.endswith('b') else unit
    try:
        size = int(float(number) * SIZE_UNITS[unit])
    except (KeyError, ValueError):
        size = None
    if size is None or size < minimum:
        raise ConductorError('invalid %s %r: give a size of at least %s, such as 512m or 2g' % (what, value, least))
    return size


def utc_now():
    """The time stamp every record carries: UTC, to the second, ISO 8601."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


TEMP_PREFIX = '.tmp-'


def temp_name(label=None):
    """A name for a file or folder being made, .tmp-<our PID>-<label>: sweeps know whose it is."""
    return '%s%d-%s' % (TEMP_PREFIX, os.getpid(), label or os.urandom(4).hex())


def temp_owner(entry, prefix=TEMP_PREFIX):
    """The PID in a temp_name (or a name made with another prefix), or None for an entry that is not one
    (or whose PID cannot be read)."""
    if not entry.startswith(prefix):
        return None
    pid = entry[len(prefix):].partition('-')[0]
    return int(pid) if pid.isdigit() else None


def write_json(path, data, durable=True):
    """Write JSON so a reader sees the old file or the new one, never half of either.

    durable=False skips the fsync, for records that mean nothing after a reboot (a running state)."""
    tmp = os.path.join(os.path.dirname(path), temp_name())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(dumps(data) + '\n')
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def digest(*parts):
    """A stable sha256 of JSON-serialisable parts."""
    import hashlib  # the builder's alone: run and exec stay quick to start
    import json  # the cache keys' exact form since the first build: keep it
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(',', ':')).encode()).hexdigest()


def tree_size(path):
    """Bytes in the files under path (apparent sizes, folders not counted, hard links once). A tree that a
    running container changes meanwhile gives what could be counted: files gone are skipped, and a folder
    moved away ends the count there (ps --size and inspect never fail for it)."""
    total, seen = 0, set()
    try:
        for dummy, dummy, files, fd in walk(path):
            for name in files:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    except OSError as e:
        if e.errno != errno.ESTALE:
            raise
    return total


def walk(top, leave=None, dir_fd=None, one_device=False):
    """(folder, dirs, files, dir_fd) for top and each folder below it, top down, as os.fwalk gives them
    (prune dirs in place; symlinks are never followed; a top that is no folder gives nothing). A loop, not
    recursion, holding one fd and passing names, not paths, to the kernel: a tree of any depth (a student's
    5000 nested folders) never meets Python's recursion limit, PATH_MAX or the fd limit. It climbs back with
    "..", checked against the folder it came from. leave(parent_fd, name) is called as each folder below top
    is left, its whole tree seen: where a removal deletes it. dir_fd: top is relative to that folder's fd.
    one_device: folders on another file system than top (a mount point) are not entered."""
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return
    levels = []  # from top down to where fd is: (folder, (device, inode), the names still to visit)
    folder, device = top, os.fstat(fd).st_dev
    try:
        while True:
            dirs, files = [], []
            with os.scandir(fd) as entries:
                for entry in entries:
                    (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
            yield folder, dirs, files, fd
            st = os.fstat(fd)
            levels.append((folder, (st.st_dev, st.st_ino), dirs[::-1]))
            while levels:
                folder, dummy, names = levels[-1]
                child = None
                while names and child is None:
                    name = names.pop()
                    try:
                        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    except (FileNotFoundError, NotADirectoryError):
                        continue  # gone, or no longer a folder, since it was listed
                    if one_device and os.fstat(child).st_dev != device:
                        os.close(child)
                        child = None
                if child is not None:
                    os.close(fd)
                    fd, folder = child, os.path.join(folder, name)
                    break
                levels.pop()
                if not levels:
                    return
                parent = os.open('..', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
                st = os.fstat(parent)
                os.close(fd)
                fd = parent
                if (st.st_dev, st.st_ino) != levels[-1][1]:
                    raise OSError(errno.ESTALE, 'a folder was moved while it was read', folder)
                if leave:
                    leave(fd, os.path.basename(folder))
    finally:
        os.close(fd)


def human_size(n):
    for unit in ('B', 'kB', 'MB', 'GB'):
        if n < 1000 or unit == 'GB':
            return ('%d%s' if unit == 'B' else '%.1f%s') % (n, unit)
        n /= 1000.0


def mounts(mountinfo=None):
    """(mount point, type, source, super options) of each mount, from /proc/self/mountinfo or its text."""
    if mountinfo is None:
        with open('/proc/self/mountinfo') as f:
            mountinfo = f.read()
    table = []
    for line in mountinfo.splitlines():
        if ' - ' in line:
            before, after = (part.split() for part in line.split(' - ', 1))
            after += [''] * (3 - len(after))
            table.append((before[4].replace('\\040', ' '), after[0], after[1], after[2].split(',')))
    return table


def remove_tree(path):
    """Delete a file or a whole folder (a symlink itself, never what it points to); gone already is fine.
    A loop over walk(): a tree of any depth goes. A mount inside it is never entered (its mount point's
    removal fails, EBUSY), as rm --one-file-system."""
    if os.path.isdir(path) and not os.path.islink(path):
        for dummy, dummy, files, fd in walk(path, lambda parent, name: os.rmdir(name, dir_fd=parent), one_device=True):
            for name in files:
                os.unlink(name, dir_fd=fd)
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)
