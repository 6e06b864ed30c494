# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A build context: the folder COPY, ADD and RUN --mount=type=bind read, minus what .dockerignore excludes.

Only the builder's planning reads it, on the host, before any step runs: sources are resolved (no
absolute path, no .., no symlink leads out of the folder), listed and hashed here, so the step that
copies them is told exactly which entries to copy and a cache key never depends on mtime.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import glob
import hashlib
import os
import posixpath
import re
import stat
import tarfile

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, walk

IGNORE_FILES = ('.conductorignore', '.dockerignore')


class Source:
    """One resolved source: `path` relative to the context; `entries` the paths below it to copy (None:
    a file); `archive` when ADD should unpack it."""

    def __init__(self, path, entries=None, archive=False):
        self.path, self.entries, self.archive = path, entries, archive

    def as_list(self):
        return [self.path, self.entries, self.archive]


class Context:
    def __init__(self, folder, conductorfile=None):
        if not os.path.isdir(folder):
            raise ConductorError('the build context %s is not a folder: give the folder the sources are in' % folder)
        self.folder = os.path.realpath(folder)
        candidates = ([conductorfile + '.dockerignore'] if conductorfile else []) + \
            [os.path.join(self.folder, name) for name in IGNORE_FILES]
        self.ignore_file = next((path for path in candidates if os.path.isfile(path)), None)
        self.patterns = read_patterns(self.ignore_file) if self.ignore_file else []

    def ignored(self, rel):
        return is_ignored(self.patterns, rel)

    def resolve(self, ins, sources, archives=False):
        """[Source] for COPY/ADD sources (globs expanded), and their digest. Refuses any that lead out."""
        resolved, h = [], hashlib.sha256()
        for src in sources:
            if os.path.isabs(src):
                ins.fail('%s source %s is an absolute path: sources are relative to the build context %s'
                         % (ins.command, src, self.folder))
            pattern = os.path.join(self.folder, src)
            matches = sorted(glob.glob(pattern)) if glob.has_magic(src) else [pattern]
            matches = [m for m in matches if os.path.lexists(m) and not self.ignored(self._rel(m))]
            if not matches:
                ins.fail('%s source %s is not in the build context %s%s' % (
                    ins.command, src, self.folder, ' (or %s excludes it)' % os.path.basename(self.ignore_file)
                    if self.ignore_file else ''))
            for path in matches:
                real = os.path.realpath(path)
                if real != self.folder and not real.startswith(self.folder + os.sep):
                    how = 'through a symlink ' if os.path.normpath(path).startswith(self.folder + os.sep) else ''
                    ins.fail('%s source %s leads %sout of the build context %s' % (ins.command, src, how, self.folder))
                if not os.path.exists(real):
                    ins.fail('%s source %s is a dangling symlink' % (ins.command, src))
                rel = self._rel(real)
                source = Source(rel, self._entries(rel) if os.path.isdir(real) else None)
                source.archive = archives and source.entries is None and tarfile.is_tarfile(real)
                if source.archive:
                    check_archive(real, ins)
                self._hash(h, source)
                resolved.append(source)
        return resolved, h.hexdigest()

    def _rel(self, path):
        return os.path.relpath(path, self.folder).replace(os.sep, '/')

    def _entries(self, top):
        """Every path below the folder top (relative to it), minus the ignored ones, sorted."""
        entries = []
        for folder, dirs, files, dummy in walk(os.path.join(self.folder, top)):
            dirs.sort()
            for name in sorted(dirs + files):
                rel = self._rel(os.path.join(folder, name))
                if not self.ignored(rel):
                    entries.append(posixpath.relpath(rel, top) if top != '.' else rel)
        return entries

    def _hash(self, h, source):
        """Path, mode, size, content and link target of every entry; never mtime."""
        for rel in [source.path] + [posixpath.normpath(posixpath.join(source.path, e)) for e in source.entries or []]:
            path = os.path.join(self.folder, rel)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                extra = file_hash(path)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                extra = ''
            else:
                raise ConductorError('cannot copy %s: only files, folders and symlinks can be copied' % path)
            h.update(('%s\0%o\0%d\0%s\n' % (rel, st.st_mode, st.st_size if extra else 0, extra)).encode(
                'utf-8', 'surrogateescape'))


def file_hash(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


# -- .dockerignore: Docker's pattern rules ------------------------------------------------------
def read_patterns(path):
    """[(regex, exclude?)]: one per line; # comments; !pattern re-includes; the last match wins."""
    patterns = []
    with open(path) as f:
        for line in f:
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
def check_archive(path, ins):
    """Refuse an archive any member of which would land outside the destination: .. in a name, a link
    to outside, or a path through a symlink the archive itself makes."""
    links = set()
    with tarfile.open(path) as tar:
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
                ins.fail('ADD: %s in %s %s: refused, nothing was changed' % (member.name, os.path.basename(path), problem))
            if member.issym():
                links.add(name)


def member_path(name):
    """An archive member's path relative to the destination (leading / dropped, as tar does); None if
    it leads out of it."""
    name = posixpath.normpath(name.lstrip('/') or '.')
    return None if name == '..' or name.startswith('../') else name
