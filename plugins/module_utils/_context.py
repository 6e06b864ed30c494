# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
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
    a file); `archive` when ADD should unpack it. `expected`: what the plan hashed, {entry ('' for the
    top): (mode, size, hash or link target)}, which whoever copies it checks (copy_entry)."""

    def __init__(self, path, entries=None, archive=False, expected=None):
        self.path, self.entries, self.archive, self.expected = path, entries, archive, expected

    def as_list(self):
        return [self.path, self.entries, self.archive]


class Context:
    def __init__(self, folder):
        try:
            self.fd = sys_.openat2(sys_.AT_FDCWD, os.path.abspath(folder), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                                   sys_.RESOLVE_NO_SYMLINKS)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise ConductorError('the build context %s goes through a symlink: give its real path (%s), which no '
                                     'one can swap mid-build' % (folder, os.path.realpath(folder)))
            raise ConductorError('the build context %s is not a folder: give the folder the sources are in' % folder)
        self.folder = os.readlink('/proc/self/fd/%d' % self.fd)  # where it was when opened: for messages only
        self.ignore_file, text = None, None
        for name in IGNORE_FILES:
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

    def ignored(self, rel):
        return is_ignored(self.patterns, rel)

    def resolve(self, ins, sources, archives=False):
        """[Source] for COPY/ADD sources (globs expanded), and their digest. Refuses any that lead out."""
        resolved, h = [], hashlib.sha256()
        excludes = ' (or %s excludes it)' % os.path.basename(self.ignore_file) if self.ignore_file else ''
        for src in sources:
            if os.path.isabs(src):
                ins.fail('%s source %s is an absolute path: sources are relative to the build context %s'
                         % (ins.command, src, self.folder))
            if posixpath.normpath(src).split('/')[0] == '..':
                ins.fail('%s source %s leads out of the build context %s' % (ins.command, src, self.folder))
            matches = glob_in(self.fd, src) if MAGIC.search(src) else [posixpath.normpath(src)]
            matches = [m for m in matches if exists_in_root(self.fd, m) and not self.ignored(m)]
            if not matches:
                ins.fail('%s source %s is not in the build context %s%s' % (ins.command, src, self.folder, excludes))
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
                    if self.ignored(source.path):  # a link to an excluded file is excluded too
                        ins.fail('%s source %s is not in the build context %s%s'
                                 % (ins.command, src, self.folder, excludes))
                    if archives and source.entries is None:
                        with _reopen(top) as f:
                            source.archive = is_archive(f)
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
        records = [(rel, '', st, _extra(top, '', st, ins))]
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
                    records.append((in_context, entry, st, _extra(fd, name, st, ins)))
        return _Scanned(rel, entries, records)

    def snapshot(self, source, dest):
        """Copy the resolved source to dest (a new path in a folder of ours), exactly the entries the plan
        listed and hashed, each checked as it is copied (copy_entry), with their owners and modes: RUN
        --mount=type=bind mounts this copy, never the context, which the student may change while the step
        runs. Files .dockerignore excludes are not in it."""
        try:
            top = self._open(source.path, os.O_RDONLY | os.O_NONBLOCK, sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS)
        except OSError as e:  # a symlink now (ELOOP, EXDEV) or gone
            raise ConductorError('the build context changed while it was built (%s is now %s): build again when it '
                                 'stays still' % (source.path, 'gone' if e.errno == errno.ENOENT else 'a symlink'))
        try:
            for entry in [''] + (source.entries or []):
                target = posixpath.join(dest, entry) if entry else dest
                parent = os.open(os.path.dirname(target), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    name = os.path.basename(target)
                    st = copy_entry(top, entry, parent, name, source.expected)
                    os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)
                finally:
                    os.close(parent)
        finally:
            os.close(top)


class _Scanned(Source):
    def __init__(self, path, entries, records):
        expected = dict((entry, (st.st_mode, st.st_size if extra else 0, extra)) for dummy, entry, st, extra in records)
        Source.__init__(self, path, entries, expected=expected)
        self.records = records


def _digest(h, sources):
    """Path, mode, size, content and link target of every entry; never mtime."""
    for source in sources:
        for rel, dummy, st, extra in source.records:
            h.update(('%s\0%o\0%d\0%s\n' % (rel, st.st_mode, st.st_size if extra else 0, extra)).encode(
                'utf-8', 'surrogateescape'))
    return h.hexdigest()


def copy_entry(top, entry, out_dir, name, expected):
    """Copy the entry (a path below the folder fd top, or '' for top itself, opened for reading) to name in
    the folder fd out_dir, as the plan saw it: no symlink is followed on the way to it, and a file is hashed
    as it is copied. With expected (the plan's records), what was copied is checked against expected[entry]:
    anything else (the student changed the context since the plan hashed it) is one error, and the step is
    not kept. Returns the entry's stat (owners, modes and times are the caller's), None for what is not
    copied (sockets, fifos and devices of a stage)."""
    extra = source = None
    if entry:
        folder = sys_.openat2(top, posixpath.dirname(entry) or '.', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                              sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS)
        base = posixpath.basename(entry)
        try:
            st = os.stat(base, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                source = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(base, dir_fd=folder)
        finally:
            os.close(folder)
    else:
        st = os.fstat(top)
        if stat.S_ISREG(st.st_mode):
            source = os.dup(top)
            os.lseek(source, 0, os.SEEK_SET)
    if stat.S_ISDIR(st.st_mode):
        extra = ''
        try:
            os.mkdir(name, 0o700, dir_fd=out_dir)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(name, dir_fd=out_dir).st_mode):
                raise
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(extra, name, dir_fd=out_dir)
    elif source is not None:
        try:
            if not stat.S_ISREG(os.fstat(source).st_mode):
                raise ConductorError('%s changed while it was copied' % (entry or 'the source'))
            extra = copy_hashed(source, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                                0o600, dir_fd=out_dir))
            st = os.fstat(source)
        finally:
            os.close(source)
    if expected is not None:
        check_copied(entry, st, extra, expected)
    return st if extra is not None else None


def check_copied(entry, st, extra, expected):
    """Refuse what was copied unless it is what the plan hashed (expected[entry])."""
    if (st.st_mode, st.st_size if extra else 0, extra) != expected.get(entry):
        raise ConductorError('the build context changed while it was built (%s is not what the plan hashed): '
                             'build again when it stays still' % (entry or 'the source'))


def copy_hashed(source, out):
    """Copy the open file source into out (closed after); its sha256, of exactly the bytes written."""
    h = hashlib.sha256()
    with os.fdopen(out, 'wb') as f:
        while True:
            chunk = os.read(source, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
            f.write(chunk)
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
class BoundedHeader(tarfile.TarInfo):
    """A tar header whose extended records (pax headers, GNU long names), which tarfile reads whole into memory
    before any member is seen, are refused past LIMIT: a small archive never fills the host's memory."""
    LIMIT = 4 << 20
    EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK)
    SPARSE = tarfile.GNUTYPE_SPARSE

    def _proc_member(self, tarfile):  # pylint: disable=redefined-outer-name
        self._sized(self)
        if self.type in self.EXTENDED and self.size > self.LIMIT:
            raise ConductorError('an extended tar header (a pax header or long name) of %d bytes is larger than '
                                 '%.1fMB: refused' % (self.size, self.LIMIT / 1e6))
        if self.type == self.SPARSE:
            self._sparse()
        return self._sized(super()._proc_member(tarfile))  # a pax header's size record is the next member's

    @staticmethod
    def _sized(member):
        """A size below 0 (GNU's base-256 field, a pax record) is refused: read where it lies, tarfile (before
        CVE-2025-8194's fix) goes back to the member's own header, and reads it again for ever. So is one of 2**63
        bytes and more, which no file has (and no seek takes)."""
        if not 0 <= member.size < 1 << 63:
            raise ConductorError('%s has a size of %d bytes, which no file has: refused' % (member.name, member.size))
        return member

    def _sparse(self, *args):
        """A sparse member's map, which tarfile reads whole (GNU's blocks, pax's GNU.sparse records): refused."""
        raise ConductorError('%s is a sparse file: refused' % self.name)
    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _sparse


class _NoMembers(list):
    def append(self, member):
        pass


def keep_no_members(tar):
    """Read tar one member at a time: tarfile keeps every member it has read in tar.members, and a small
    archive of a million empty members filled hundreds of MB of the host's memory."""
    tar.members = _NoMembers()


TAR_ERRORS = (tarfile.TarError, ValueError, OverflowError, EOFError)  # what tarfile raises on a damaged archive


def is_archive(f) -> bool:
    """tarfile.is_tarfile, its headers bounded (BoundedHeader): is_tarfile reads a gzip'd archive's first pax header
    whole into memory (8 GiB from 8 MB). One tarfile cannot read is no archive: ADD copies it as a file."""
    try:
        tarfile.open(fileobj=f, tarinfo=BoundedHeader).close()
        return True
    except TAR_ERRORS:
        return False


def check_archive(fileobj, archive, ins):
    """Refuse an archive any member of which would land outside the destination: .. in a name, a link
    to outside, or a path through a symlink the archive itself makes; or that is damaged."""
    links = set()
    try:
        with tarfile.open(fileobj=fileobj, tarinfo=BoundedHeader) as tar:
            keep_no_members(tar)
            for member in tar:
                name = member_path(member.name)
                problem = None
                if name is None:
                    problem = 'leads out of the destination'
                elif through_link(name, links) and name not in links:
                    problem = 'is written through a symlink the archive makes'
                elif member.islnk() and member_path(member.linkname) is None:
                    problem = 'is a hard link to outside the destination'
                if problem:
                    ins.fail('ADD: %s in %s %s: refused, nothing was changed'
                             % (member.name, posixpath.basename(archive), problem))
                if member.issym():
                    links.add(name)
    except TAR_ERRORS as e:
        ins.fail('ADD: %s is a damaged tar archive (%s): refused, nothing was changed' % (posixpath.basename(archive), e))


def through_link(name: str, links: set) -> bool:
    """Whether a folder above name (a member_path) is one of links: each of name's own folders is looked up, so
    a layer of thousands of symlinks costs its members their depth, not the number of links (2 million
    comparisons, a quarter of a base layer's load)."""
    index = name.find('/')
    while index != -1:
        if name[:index] in links:
            return True
        index = name.find('/', index + 1)
    return False


def member_path(name):
    """An archive member's path relative to the destination (leading / dropped, as tar does); None if
    it leads out of it."""
    name = posixpath.normpath(name.lstrip('/') or '.')
    return None if name == '..' or name.startswith('../') else name
