# SPDX-License-Identifier: GPL-3.0-or-later
"""_bytecode: a zipped module's code comes from the cache (as AnsiballZ's imports do), is compiled again when its
source changes, and a cache folder someone else could write to is never read."""
import gc
import importlib
import marshal
import os
import sys
import zipfile

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode

gc.enable()  # _bytecode turns the collector off until a module runs (_module.run_module)


@pytest.fixture
def zipped(tmp_path, monkeypatch):
    """A zip on sys.path holding package pkg695 (module mod), the cache in tmp_path/cache; yields a function that
    writes mod's source and imports it afresh."""
    monkeypatch.setattr(_bytecode, 'CACHE', str(tmp_path / 'cache' / 'bytecode'))
    monkeypatch.setattr(_bytecode, '_FOLDER', [])
    os.makedirs(str(tmp_path / 'cache'), 0o755)
    os.chmod(str(tmp_path), 0o755)

    def load(source, number):
        archive = str(tmp_path / ('modules%d.zip' % number))  # a new zip each time, as AnsiballZ writes
        with zipfile.ZipFile(archive, 'w') as z:
            z.writestr('pkg695/__init__.py', '')
            z.writestr('pkg695/mod.py', source)
        monkeypatch.syspath_prepend(archive)
        for name in ('pkg695', 'pkg695.mod'):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        _bytecode.install()
        return importlib.import_module('pkg695.mod')
    yield load
    for name in ('pkg695', 'pkg695.mod'):
        sys.modules.pop(name, None)


def test_code_comes_from_the_cache_and_a_changed_source_is_compiled_again(zipped, tmp_path):
    assert zipped('VALUE = 1\n', 0).VALUE == 1
    stored = os.listdir(str(tmp_path / 'cache' / 'bytecode'))
    assert len(stored) == 2  # the package and the module
    for name in stored:  # what the cache holds is what runs: make it say 2 instead
        path = str(tmp_path / 'cache' / 'bytecode' / name)
        with open(path, 'rb') as f:
            code = marshal.loads(f.read())
        if 'VALUE' in code.co_names:
            with open(path, 'wb') as f:
                f.write(marshal.dumps(compile('VALUE = 2\n', code.co_filename, 'exec')))
    module = zipped('VALUE = 1\n', 1)
    assert module.VALUE == 2 and module.__file__.endswith('modules1.zip/pkg695/mod.py')
    assert zipped('VALUE = 3\n', 2).VALUE == 3  # another source: another key, compiled
    assert len(os.listdir(str(tmp_path / 'cache' / 'bytecode'))) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason='the cache is root\'s: only root uses it')
@pytest.mark.parametrize('writable', ['cache', 'parent'])
def test_code_planted_in_a_folder_others_can_write_is_never_run(zipped, tmp_path, writable):
    """The attack: someone who is not root writes code for a module's key into the cache (or swaps the folder)."""
    zipped('VALUE = 1\n', 0)
    folder = str(tmp_path / 'cache' / 'bytecode')
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(marshal.dumps(compile('VALUE = "planted"\n', 'pkg695/mod.py', 'exec')))
    os.chmod(folder if writable == 'cache' else os.path.dirname(folder), 0o777)
    _bytecode._FOLDER[:] = []  # pylint: disable=protected-access
    assert zipped('VALUE = 1\n', 1).VALUE == 1
    os.chmod(folder if writable == 'cache' else os.path.dirname(folder), 0o755)
    _bytecode._FOLDER[:] = []  # pylint: disable=protected-access
    assert zipped('VALUE = 1\n', 2).VALUE == 'planted'  # the control: the same files, in root's folder, are read


@pytest.mark.skipif(os.geteuid() != 0, reason='the cache is root\'s: only root uses it')
@pytest.mark.parametrize('attack', ['symlinked folder', 'file of another user', 'group-writable file'])
def test_code_planted_through_a_link_or_in_a_file_not_roots_alone_is_never_run(zipped, tmp_path, attack):
    """The folder swapped for a symlink to a tree the attacker filled (after the checks of a path by name would
    have passed), or a file in the cache that someone else owns or can write to."""
    zipped('VALUE = 1\n', 0)
    folder = str(tmp_path / 'cache' / 'bytecode')
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(marshal.dumps(compile('VALUE = "planted"\n', 'pkg695/mod.py', 'exec')))
    if attack == 'symlinked folder':
        os.rename(str(tmp_path / 'cache'), str(tmp_path / 'elsewhere'))
        os.symlink(str(tmp_path / 'elsewhere'), str(tmp_path / 'cache'))
    else:
        for name in os.listdir(folder):
            if attack == 'file of another user':
                os.chown(os.path.join(folder, name), 12345, 12345)
            else:
                os.chmod(os.path.join(folder, name), 0o664)
    _bytecode._FOLDER[:] = []  # pylint: disable=protected-access
    assert zipped('VALUE = 1\n', 1).VALUE == 1
