# SPDX-License-Identifier: GPL-3.0-or-later
"""The instructor tools' pure parts: stats' figures between two samples, cp's arguments, a commit's layer key."""
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _files, _stats
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._store import committed_key, is_key, loaded_key


def test_figures_between_two_samples():
    before = {'web': {'running': True, 'taken': 10.0, 'cpu_ns': 1_000_000_000, 'memory': 10}}
    after = {'web': {'running': True, 'taken': 10.5, 'cpu_ns': 1_250_000_000, 'memory': 50, 'memory_limit': 200},
             'new': {'running': True, 'taken': 10.5, 'cpu_ns': 5, 'memory': 1, 'memory_limit': 100},
             'gone': {'running': False, 'status': 'exited (0)'}}
    rows = {r['name']: r for r in _stats.figures(before, after)}
    assert rows['web']['cpu_percent'] == 50.0 and rows['web']['memory_percent'] == 25.0 and 'taken' not in rows['web']
    assert 'cpu_percent' not in rows['new'], 'no earlier sample: no CPU figure yet'
    assert rows['gone'] == {'name': 'gone', 'running': False, 'status': 'exited (0)'}


@pytest.mark.parametrize('text, parsed', [('web:/srv', ('web', '/srv')), ('web:', ('web', '/')), ('-', (None, '-')),
                                          ('./a:b', (None, './a:b')), ('/tmp/x', (None, '/tmp/x'))])
def test_cp_arguments(text, parsed):
    assert _files.split(text) == parsed


def test_a_bad_container_name_in_cp_is_refused():
    assert _files.split('../x:/etc') == (None, '../x:/etc'), 'a / before the colon: a host path, never a container'
    with pytest.raises(ConductorError):
        _files.split('Bad Name:/etc')
    for outside in ('web:../../etc/passwd', 'web:/srv/../../etc', 'web:..'):
        with pytest.raises(ConductorError, match='leads outside the container'):
            _files.split(outside)
    assert _files.split('web:/srv/../etc') == ('web', '/srv/../etc'), 'a .. that stays inside is the path\'s own'


def test_a_committed_layer_is_keyed_by_its_content():
    diff_id = 'sha256:' + 'a' * 64
    built = committed_key('0' * 32, diff_id)
    assert is_key(built) and built != committed_key('1' * 32, diff_id) != committed_key('0' * 32, 'sha256:' + 'b' * 64)
    below = loaded_key(None, 'sha256:' + 'c' * 64)
    assert committed_key(below, diff_id) == loaded_key(below, diff_id), 'on loaded layers: the chain ID itself'
    with pytest.raises(ConductorError):
        committed_key('../../etc', diff_id)


def test_a_sparse_member_is_refused_before_its_map_is_read():
    import io
    import tarfile
    from ansible_collections.cs695.conductor.plugins.module_utils import _context
    info = tarfile.TarInfo('s')
    info.type = tarfile.GNUTYPE_SPARSE
    data = io.BytesIO(info.tobuf(tarfile.GNU_FORMAT) + b'\0' * 1024)
    with pytest.raises(ConductorError, match='sparse file: refused'):
        with tarfile.open(fileobj=data, tarinfo=_context.BoundedHeader) as tar:
            list(tar)
