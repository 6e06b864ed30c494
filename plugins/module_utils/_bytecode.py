# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Compiled code for a module's imports, kept between runs: what __pycache__ is for a checkout.

Ansible ships a module as a zip of source files (AnsiballZ), and Python compiles every file it imports from a
zip each time, twice (zipimport compiles to find a module's file name, then to run it), for it keeps no bytecode
there. Importing this file first (each module does) makes the zip's imports from then on (the engine's, not
ansible.module_utils.basic's, which AnsiballZ imports before the module) load their code from CACHE, keyed by
the source's SHA-256 and the interpreter's magic number, compiled and stored only when it is missing.

CACHE is root's alone: it is used only when this process is root and every folder of its path is root's and
writable by no one else, reached with no symlink (_cache_fd), and each file in it is root's too; so no one
else can plant code that a module would run. Any failure is only a compile: the import goes on as Python
would have done it."""

import gc
import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import types
import zipimport

CACHE = os.environ.get('CONDUCTOR_BYTECODE_CACHE') or '/var/cache/conductor/bytecode'  # the tests': their own


class _Zip(zipimport.zipimporter):
    """zipimport, with each module compiled once: zipimport compiles a module to name its file (find_spec asks)
    and again to run it; here its name comes from the zip's listing, and its code from CACHE. A module the zip
    has as bytecode (Ansible's zips never do) is zipimport's alone."""

    def _source(self, fullname):
        """(the module's source file in the zip, its bytes), read once; None when the zip has it as bytecode."""
        found = self.__dict__.setdefault('_sources', {})
        if fullname not in found:
            path = self.prefix + fullname.rpartition('.')[2]
            name = path + '/__init__.py' if self.is_package(fullname) else path + '.py'
            try:
                self.get_data(os.path.join(self.archive, name + 'c'))
                found[fullname] = None
            except OSError:
                try:
                    found[fullname] = (name, self.get_data(os.path.join(self.archive, name)))
                except OSError:
                    found[fullname] = None
        return found[fullname]

    def get_filename(self, fullname):
        source = self._source(fullname)
        return os.path.join(self.archive, source[0]) if source else super().get_filename(fullname)

    def get_code(self, fullname):
        source = self._source(fullname)
        if source is None:
            return super().get_code(fullname)
        name, data = self.__dict__['_sources'].pop(fullname)  # bytes: compile reads their coding line
        code = cached(name, data)  # compiled as its path inside the zip: the same every run (the zip's is not)
        return code if code is not None else compile(data, os.path.join(self.archive, name), 'exec', dont_inherit=True)


def cached(origin: str, source: bytes):
    """The code of source (compiled as the file origin), from CACHE when it is there, compiled and stored when
    not; None when CACHE cannot be used (see _cache_fd)."""
    folder = _cache_fd()
    if folder is None:
        return None
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + str(sys.flags.optimize).encode() + b'\0' +
                         origin.encode('utf-8', 'surrogateescape') + b'\0' + source).hexdigest()
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
                with os.fdopen(os.dup(fd), 'rb') as f:
                    code = marshal.loads(f.read())
                if isinstance(code, types.CodeType):
                    return code
        finally:
            os.close(fd)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(source, origin, 'exec', dont_inherit=True)
    temp = '.tmp-%d-%s' % (os.getpid(), key)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
        with os.fdopen(fd, 'wb') as f:
            f.write(marshal.dumps(code))
        os.rename(temp, key, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        try:
            os.unlink(temp, dir_fd=folder)
        except OSError:
            pass
    return code


_FOLDER = []  # the fd of CACHE, or None, once a process


def _cache_fd():
    """An fd of CACHE, opened one folder at a time from / with no symlink followed, each folder root's and
    writable by no one else (or sticky, as /tmp: then no one else can move what is root's in it), those missing
    made; None when this process is not root or a folder fails that. Every read and write of the
    cache goes through this fd, so no one but root can plant code a module would run, or swap a folder under it."""
    if not _FOLDER:
        _FOLDER.append(None)
        if os.geteuid() == 0 and os.path.isabs(CACHE):
            parts, fd = [p for p in CACHE.split('/') if p], None
            try:
                fd = os.open('/', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                for index, part in enumerate(parts):
                    if part in ('.', '..'):
                        raise OSError('not a plain path')
                    try:  # made here, beneath a folder no one else can write to (checked below, for the one above)
                        os.mkdir(part, 0o700 if index == len(parts) - 1 else 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    os.close(fd)
                    fd = child
                    st = os.fstat(fd)
                    if st.st_uid != 0 or st.st_mode & 0o022 and not (index < len(parts) - 1 and st.st_mode & 0o1000):
                        raise OSError('not root\'s alone')
                _FOLDER[0] = fd
            except OSError:
                if fd is not None and _FOLDER[0] != fd:
                    os.close(fd)
    return _FOLDER[0]


def install():
    """_Zip first among the path hooks, and in place of zipimport for the zip's folders imported already (once)."""
    if _Zip not in sys.path_hooks:
        sys.path_hooks.insert(0, _Zip)
    for entry, finder in list(sys.path_importer_cache.items()):
        if type(finder) is zipimport.zipimporter:  # pylint: disable=unidiomatic-typecheck
            sys.path_importer_cache[entry] = _Zip(entry)


install()
# the collector is off while the module loads (run_module freezes what was loaded, and turns it on again): the
# imports make thousands of objects and no cycle, and its passes over them cost a module 10 to 30 ms
gc.disable()
