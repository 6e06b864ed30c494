# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Compiled code for a module's imports, kept between runs: what __pycache__ is for a checkout.

Ansible ships a module as a zip of source files (AnsiballZ), and Python compiles every file it imports from a
zip each time, for it keeps no bytecode there: 100 ms of each conductor module's 300 here, every task and every
loop item. Importing this file first (each module does, before ansible.module_utils.basic) puts a finder in
front that loads a zipped module's code from CACHE, keyed by its source's SHA-256 and the interpreter's magic
number, and compiles and stores it only when it is missing.

CACHE is root's alone: it is used only when this process is root and the folder is root's with no write bit
for anyone else (made so when missing), so no one else can plant code that a module would run. Any failure
is only a compile: the import goes on as Python would have done it."""

import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import zipimport

CACHE = os.environ.get('CONDUCTOR_BYTECODE_CACHE') or '/var/cache/conductor/bytecode'  # the tests': their own


class _Loader:
    """A zipped module's loader whose code comes from CACHE; everything else is the zip's."""

    def __init__(self, zipped):
        self.zipped = zipped

    def create_module(self, spec):  # pylint: disable=unused-argument
        return None

    def exec_module(self, module):
        name, origin = module.__spec__.name, module.__spec__.origin
        source = self.zipped.get_source(name)
        inside = origin[len(self.zipped.archive) + 1:] if origin.startswith(self.zipped.archive + '/') else None
        # compiled as its path inside the zip, the same every run (the zip's own path is new each time)
        code = cached(inside, source.encode('utf-8')) if source is not None and inside else None
        if code is None:
            self.zipped.exec_module(module)
        else:
            exec(code, module.__dict__)  # pylint: disable=exec-used

    def __getattr__(self, name):  # get_data, get_source, is_package... as the zip answers them
        return getattr(self.zipped, name)


class _Finder:
    """Finds as Python's path finder does; a module found in a zip gets _Loader."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and isinstance(spec.loader, zipimport.zipimporter):
            spec.loader = _Loader(spec.loader)
        return spec


def cached(origin: str, source: bytes):
    """The code of source (compiled as the file origin), from CACHE when it is there, compiled and stored when
    not; None when CACHE cannot be used (not root, or a folder someone else could write to)."""
    if not _usable():
        return None
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + origin.encode('utf-8', 'surrogateescape') + b'\0' + source)
    path = os.path.join(CACHE, key.hexdigest())
    try:
        with open(path, 'rb') as f:
            return marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(source, origin, 'exec', dont_inherit=True)
    temp = '%s.tmp-%d' % (path, os.getpid())
    try:
        with open(temp, 'wb') as f:
            f.write(marshal.dumps(code))
        os.rename(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
    return code


_USABLE = []  # the answer of _usable, once a process


def _usable():
    if not _USABLE:
        try:
            if os.geteuid() == 0:
                os.makedirs(CACHE, 0o700, exist_ok=True)
            folders = [os.stat(CACHE), os.stat(os.path.dirname(CACHE))]
            _USABLE.append(os.geteuid() == 0 and all(s.st_uid == 0 and not s.st_mode & 0o022 for s in folders))
        except OSError:
            _USABLE.append(False)
    return _USABLE[0]


def install():
    """Put the finder just before Python's path finder (once): builtin and frozen modules are found as before."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path))
        sys.meta_path.insert(at, _Finder())


install()
