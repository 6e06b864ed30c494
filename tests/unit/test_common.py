# SPDX-License-Identifier: GPL-3.0-or-later
import json
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _common
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_name


@pytest.mark.parametrize('name', ['a', 'web-1', 'course_cs695.v2', 'A' * 63, '9lives'])
def test_good_names(name):
    assert check_name('image', name) == name


@pytest.mark.parametrize('name', ['', '-x', '.hidden', '..', 'a/b', 'x' * 64, 'caf\u00e9', 'a;rm', 'a b', '$(x)', None])
def test_bad_names(name):
    with pytest.raises(ConductorError, match='invalid image name'):
        check_name('image', name)


def test_config_is_shell_style(tmp_path):
    conf = tmp_path / 'conductor.conf'
    conf.write_text('# setup.sh settings\nDEFAULT_IFC=eth0\nROOT="/srv/conductor"\n\nBASE_INCLUDE="curl vim"\n')
    config = _common.load_config(str(conf))
    assert config == {'DEFAULT_IFC': 'eth0', 'ROOT': '/srv/conductor', 'BASE_INCLUDE': 'curl vim'}
    assert _common.state_root(None, config) == '/srv/conductor' or 'CONDUCTOR_ROOT' in os.environ
    assert _common.load_config(str(tmp_path / 'missing')) == {}
    conf.write_text('oops\n')
    with pytest.raises(ConductorError, match=r"conductor.conf:1: expected KEY=VALUE, got 'oops'"):
        _common.load_config(str(conf))


def test_root_precedence(monkeypatch):
    monkeypatch.setenv('CONDUCTOR_ROOT', '/from/env')
    assert _common.state_root('/given', {'ROOT': '/conf'}) == '/given'
    assert _common.state_root(None, {'ROOT': '/conf'}) == '/from/env'
    monkeypatch.delenv('CONDUCTOR_ROOT')
    assert _common.state_root(None, {'ROOT': '/conf'}) == '/conf'
    assert _common.state_root(None, {}) == '/var/lib/conductor'


def test_write_json_is_atomic(tmp_path):
    path = str(tmp_path / 'x.json')
    _common.write_json(path, {'a': 1})
    with pytest.raises(TypeError):
        _common.write_json(path, {'a': object()})
    assert json.load(open(path)) == {'a': 1}
    assert os.listdir(str(tmp_path)) == ['x.json']


def test_firewall_library_failure_says_what_to_do(monkeypatch):
    """A kernel or host where python-iptables cannot work: one error that says so and what to do."""
    import builtins
    from ansible_collections.cs695.conductor.plugins.module_utils import _fastimport
    real_import = builtins.__import__

    def broken(name, *args, **kw):
        if name == 'iptc':
            raise OSError('libip4tc.so.2: cannot open shared object file')
        return real_import(name, *args, **kw)
    monkeypatch.delitem(__import__('sys').modules, 'iptc', raising=False)
    monkeypatch.setattr(builtins, '__import__', broken)
    with pytest.raises(ConductorError, match=r'the firewall cannot be used through python-iptables \(libip4tc.so.2: '
                                             r'cannot open shared object file\): it needs the legacy xtables kernel '
                                             r'modules \(ip_tables, iptable_nat\) and libxtables'):
        _fastimport.import_iptc()


def test_walk_sizes_and_removes_a_tree_deeper_than_recursion_and_path_max(tmp_path):
    top = str(tmp_path / 'deep')
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY)
    for dummy in range(3000):  # 6000 characters of path: past PATH_MAX, and past Python's recursion limit
        os.mkdir('a', dir_fd=fd)
        os.close(os.open('f', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        os.symlink('/', 'l', dir_fd=fd)  # never followed
        below = os.open('a', os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)
    assert sum(1 for dummy in _common.walk(top)) == 3001
    assert _common.tree_size(top) == 3000  # the symlinks' one byte each; the files are empty
    _common.remove_tree(top)
    assert not os.path.exists(top)


def test_walk_gives_what_os_walk_gives_and_honours_pruning(tmp_path):
    for folder in ('a/b', 'a/c', 'd'):
        os.makedirs(str(tmp_path / folder))
    (tmp_path / 'a' / 'x').write_text('x')
    ours = [(f, sorted(d), sorted(n)) for f, d, n, dummy in _common.walk(str(tmp_path))]
    assert sorted(ours) == sorted((f, sorted(d), sorted(n)) for f, d, n in os.walk(str(tmp_path)))
    pruned = []
    for folder, dirs, dummy, dummy in _common.walk(str(tmp_path)):
        pruned.append(folder)
        dirs[:] = [d for d in dirs if d != 'a']
    assert sorted(pruned) == [str(tmp_path), str(tmp_path / 'd')]


def test_sealed_imports_load_nothing_new(tmp_path):
    """After seal_imports, a module that was not loaded is an ImportError, even one on sys.path's first folder."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _sandbox
    (tmp_path / 'planted_module_x.py').write_text('import os\nos.write(1, b"PLANTED")\n')
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.dup2(write, 1)
        import sys
        sys.path.insert(0, str(tmp_path))
        _sandbox.seal_imports()
        try:
            __import__('planted_module_x')
        except ImportError:
            os.write(1, b'refused')
        import json as again  # loaded before: still there  # noqa: F811 pylint: disable=reimported
        os.write(1, b' loaded' if again.dumps(1) == '1' else b'')
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, 'rb') as f:
        assert f.read() == b'refused loaded'
