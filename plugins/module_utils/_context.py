# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A build context: the folder COPY, ADD and RUN --mount=type=bind read, minus what .dockerignore excludes.

The context is opened once, as an fd, when the plan reads it, and everything after goes through that fd:
sources are resolved beneath it (no absolute path, no .., no symlink leads out), listed and hashed
through the fds of their folders, the copy step reads them through it, and a bind mount's source is
an fd opened here. A student whose running container owns the folder (their work volume) and swaps it,
or a folder in it, for a symlink to / mid-build is never followed out: the step gets the files the
plan saw, or files of the context. A cache key never depends on mtime.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import tarfile

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, walk
from ansible_collections.cs695.conductor.plugins.module_utils._sandbox import exists_in_root
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

IGNORE_FILES = ('.conductorignore', '.dockerignore')
IGNORE_FILE_MAX = 1 << 20
MAGIC = re.compile('[*?[]')


class Source:
    """One resolved source: `path` relative to the context; `entries` the paths below it to copy (None:
    a file); `archive` when ADD should unpack it."""

    def __init__(self, path, entries=None, archive=False):
        self.path, self.entries, self.archive = path, entries, archive

    def as_list(self):
        return [self.path, self.entries, self.archive]


class Context:
    def __init__(self, folder, conductorfile=None):
        try:
            self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            raise ConductorError('the build context %s is not a folder: give the folder the sources are in' % folder)
        self.folder = os.readlink('/proc/self/fd/%d' % self.fd)  # where it was when opened: for messages only
        self.ignore_file, text = None, None
        if conductorfile and os.path.lexists(conductorfile + '.dockerignore'):
            self.ignore_file = conductorfile + '.dockerignore'
            text = read_regular(os.open(self.ignore_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC),
                                self.ignore_file)
        for name in IGNORE_FILES if text is None else ():
            try:
                fd = self._open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, sys_.RESOLVE_NO_SYMLINKS)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise ConductorError('%s in the build context %s cannot be read (%s): make it a plain file or remove '
                                     'it' % (name, self.folder, e.strerror))
            self.ignore_file, text = os.path.join(self.folder, name), read_regular(fd, name)
            break
        self.patterns = parse_patterns(text) if text else []

    def _open(self, rel, flags, resolve=sys_.RESOLVE_IN_ROOT):
        return sys_.openat2(self.fd, rel or '.', flags | os.O_CLOEXEC, 0, resolve | sys_.RESOLVE_NO_MAGICLINKS)

    def clone_source(self, rel):
        """A resolved source as a detached mount (RUN --mount=type=bind's), made now, from the context's fd: a
        folder swapped after planning is never followed. _sandbox.bind_in_root mounts it in the step."""
        fd = self._open(rel, os.O_PATH)
        try:
            return sys_.clone_tree(fd)
        finally:
            os.close(fd)

    def ignored(self, rel):
        return is_ignored(self.patterns, rel)

    def resolve(self, ins, sources, archives=False):
        """[Source] for COPY/ADD sources (globs expanded), and their digest. Refuses any that lead out."""
        resolved, h = [], hashlib.sha256()
        for src in sources:
            if os.path.isabs(src):
                ins.fail('%s source %s is an absolute path: sources are relative to the build context %s'
                         % (ins.command, src, self.folder))
            if posixpath.normpath(src).split('/')[0] == '..':
                ins.fail('%s source %s leads out of the build context %s' % (ins.command, src, self.folder))
            matches = glob_in(self.fd, src) if MAGIC.search(src) else [posixpath.normpath(src)]
            matches = [m for m in matches if exists_in_root(self.fd, m) and not self.ignored(m)]
            if not matches:
                ins.fail('%s source %s is not in the build context %s%s' % (
                    ins.command, src, self.folder, ' (or %s excludes it)' % os.path.basename(self.ignore_file)
                    if self.ignore_file else ''))
            for rel in matches:
                try:
                    top = self._open(rel, os.O_PATH, sys_.RESOLVE_BENEATH)
                except OSError as e:
                    if e.errno == errno.EXDEV:
                        ins.fail('%s source %s leads through a symlink out of the build context %s'
                                 % (ins.command, src, self.folder))
                    if e.errno in (errno.ENOENT, errno.ELOOP):
                        ins.fail('%s source %s is a dangling symlink' % (ins.command, src))
                    raise
                try:
                    source = self._scan(top, ins)
                    if archives and source.entries is None:
                        with _reopen(top) as f:
                            source.archive = tarfile.is_tarfile(f)
                            if source.archive:
                                f.seek(0)
                                check_archive(f, source.path, ins)
                finally:
                    os.close(top)
                resolved.append(source)
        return resolved, _digest(h, resolved)

    def _scan(self, top, ins):
        """A Source for the opened source top, its entries listed and hashed through the fds of their folders."""
        rel = posixpath.relpath(os.readlink('/proc/self/fd/%d' % top), self.folder)  # where the kernel found it
        if rel.split('/')[0] == '..':
            ins.fail('%s: the build context %s was moved while the build read it: build again' % (ins.command, self.folder))
        st = os.fstat(top)
        records = [(rel, st, _extra(top, '', st, ins))]
        if not stat.S_ISDIR(st.st_mode):
            return _Scanned(rel, None, records)
        entries = []
        for folder, dirs, files, fd in walk('.', dir_fd=top):
            dirs.sort()
            below = folder[2:]
            for name in sorted(dirs + files):
                entry = posixpath.join(below, name) if below else name
                in_context = posixpath.join(rel, entry) if rel != '.' else entry
                if not self.ignored(in_context):
                    entries.append(entry)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    records.append((in_context, st, _extra(fd, name, st, ins)))
        return _Scanned(rel, entries, records)


class _Scanned(Source):
    def __init__(self, path, entries, records):
        Source.__init__(self, path, entries)
        self.records = records


def _digest(h, sources):
    """Path, mode, size, content and link target of every entry; never mtime."""
    for source in sources:
        for rel, st, extra in source.records:
            h.update(('%s\0%o\0%d\0%s\n' % (rel, st.st_mode, st.st_size if extra else 0, extra)).encode(
                'utf-8', 'surrogateescape'))
    return h.hexdigest()


def _extra(fd, name, st, ins):
    """What an entry's key covers beyond its mode and size: a file's hash, a link's target. fd: the entry's
    folder, or with no name the entry itself (an O_PATH fd)."""
    if stat.S_ISREG(st.st_mode) and not name:
        with _reopen(fd) as f:
            return file_hash(f.fileno())
    if stat.S_ISREG(st.st_mode):
        return file_hash(name, fd)
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(name, dir_fd=fd)
    if stat.S_ISDIR(st.st_mode):
        return ''
    raise ConductorError('%s: cannot copy %s: only files, folders and symlinks can be copied'
                         % (ins.command, name or 'its source'))


def _reopen(fd):
    """A readable file object for an O_PATH fd of a regular file (the fd's own file: no path is resolved)."""
    return os.fdopen(os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), 'rb')


def glob_in(root, pattern):
    """The paths inside the folder fd root that pattern matches, sorted, resolved as if root were /: any part
    may be a glob (as glob.glob, * and ? do not match a leading dot)."""
    found = ['']
    for part in [p for p in pattern.split('/') if p and p != '.']:
        step = []
        for folder in found:
            if not MAGIC.search(part):
                step.append(posixpath.join(folder, part))
                continue
            try:
                fd = sys_.openat2(root, folder or '.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                                  sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS)
            except OSError:
                continue
            try:
                names = os.listdir(fd)
            finally:
                os.close(fd)
            step.extend(posixpath.join(folder, n) for n in sorted(fnmatch.filter(names, part))
                        if part.startswith('.') or not n.startswith('.'))
        found = step
    return [f for f in found if f and exists_in_root(root, f)]


def file_hash(path, dir_fd=None):
    """sha256 of a regular file: a path (in dir_fd), or an open fd. Never through a symlink or into a fifo."""
    fd = path if isinstance(path, int) else os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                                                    dir_fd=dir_fd)
    h = hashlib.sha256()
    with os.fdopen(os.dup(fd) if fd is path else fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ConductorError('%s changed while it was read (now no regular file): build again' % path)
        os.lseek(f.fileno(), 0, os.SEEK_SET)
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def read_regular(fd, name, limit=IGNORE_FILE_MAX):
    """The text of the open file fd (closed after), if it is a regular file of at most limit bytes."""
    with os.fdopen(fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConductorError('%s is not a regular file (a folder, fifo or device): make it a plain file or remove '
                                 'it' % name)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConductorError('%s is larger than %d bytes: is it really an ignore file?' % (name, limit))
    return data.decode('utf-8', 'replace')


# -- .dockerignore: Docker's pattern rules ------------------------------------------------------
def read_patterns(path):
    """The patterns of the ignore file at path (never through a symlink: see parse_patterns)."""
    return parse_patterns(read_regular(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), path))


def parse_patterns(text):
    """[(regex, exclude?)]: one per line; # comments; !pattern re-includes; the last match wins."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        include = line.startswith('!')
        line = posixpath.normpath(line[1:].strip() if include else line).lstrip('/')
        if line and line != '.':
            patterns.append((_compile(line), not include))
    return patterns


def _compile(pattern):
    """A Go filepath.Match pattern with Docker's ** (any number of folders) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith('**/', i):
            out.append('(?:.*/)?')
            i += 3
        elif pattern.startswith('**', i):
            out.append('.*')
            i += 2
        elif pattern[i] == '*':
            out.append('[^/]*')
            i += 1
        elif pattern[i] == '?':
            out.append('[^/]')
            i += 1
        elif pattern[i] == '[':
            end = pattern.find(']', i + 1)
            if end < 0:
                out.append(re.escape(pattern[i:]))
                break
            out.append(fnmatch.translate(pattern[i:end + 1])[4:-3].replace('/', ''))  # the class as fnmatch has it
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile(''.join(out) + '$')


def is_ignored(patterns, rel):
    """Whether rel (relative to the context) is excluded: a pattern matching a folder excludes what is in it."""
    parts, ignored = rel.split('/'), False
    for regex, exclude in patterns:
        if any(regex.match('/'.join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = exclude
    return ignored


# -- ADD's archives -----------------------------------------------------------------------------
def check_archive(fileobj, archive, ins):
    """Refuse an archive any member of which would land outside the destination: .. in a name, a link
    to outside, or a path through a symlink the archive itself makes."""
    links = set()
    with tarfile.open(fileobj=fileobj) as tar:
        for member in tar:
            name = member_path(member.name)
            problem = None
            if name is None:
                problem = 'leads out of the destination'
            elif any(name == link or name.startswith(link + '/') for link in links) and name not in links:
                problem = 'is written through a symlink the archive makes'
            elif member.islnk() and member_path(member.linkname) is None:
                problem = 'is a hard link to outside the destination'
            if problem:
                ins.fail('ADD: %s in %s %s: refused, nothing was changed' % (member.name, posixpath.basename(archive), problem))
            if member.issym():
                links.add(name)


def member_path(name):
    """An archive member's path relative to the destination (leading / dropped, as tar does); None if
    it leads out of it."""
    name = posixpath.normpath(name.lstrip('/') or '.')
    return None if name == '..' or name.startswith('../') else name
