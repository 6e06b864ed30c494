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

CACHE is root's alone: it is used only when this process is root and the folder is root's with no write bit
for anyone else (made so when missing), so no one else can plant code that a module would run. Any failure
is only a compile: the import goes on as Python would have done it."""

import gc
import hashlib
import importlib.util
import marshal
import os
import sys
import zipimport

CACHE = os.environ.get('CONDUCTOR_BYTECODE_CACHE') or '/var/cache/conductor/bytecode'  # the tests': their own


class _Zip(zipimport.zipimporter):
    """zipimport, with each module compiled once: zipimport compiles a module to name its file (find_spec asks)
    and again to run it; here its name comes from the zip's listing, and its code from CACHE."""

    def get_filename(self, fullname):
        path = os.path.join(self.archive, self.prefix + fullname.rpartition('.')[2])
        return os.path.join(path, '__init__.py') if self.is_package(fullname) else path + '.py'

    def get_code(self, fullname):
        source = self.get_source(fullname)
        if source is None:  # no source in the zip, only bytecode: as zipimport does it
            return super().get_code(fullname)
        inside = self.get_filename(fullname)[len(self.archive) + 1:]  # the same every run (the zip's path is not)
        code = cached(inside, source.encode('utf-8'))
        return code if code is not None else compile(source, self.get_filename(fullname), 'exec', dont_inherit=True)


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
