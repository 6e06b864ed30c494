# SPDX-License-Identifier: GPL-3.0-or-later
"""The state root's temporary entries: names that say whose they are, and sweeps that read them; keys."""
import hashlib
import os
import subprocess
import sys

import pytest

import helpers
from ansible_collections.cs695.conductor.plugins.module_utils import _common, _store
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError


def cli(*args, root):
    return subprocess.run([sys.executable, helpers.CLI, '--root', str(root)] + list(args),
                          capture_output=True, text=True, check=False)


def test_temp_names_carry_their_owner():
    name = _common.temp_name('0123abcd' * 4)
    assert name.startswith('.tmp-%d-' % os.getpid())
    assert _common.temp_owner(name) == os.getpid()
    assert _common.temp_owner(_common.temp_name()) == os.getpid()
    assert _common.temp_owner('.tmp-1a2b3c-4242') is None  # the old bases/ format: no owner to read
    assert _common.temp_owner('layers') is None


def test_rmcache_during_a_first_debootstrap_and_after_a_killed_one(tmp_path):
    """rmcache used to die with a traceback on bases/.tmp-<key>-<pid>: a debootstrap under way, or killed."""
    root = tmp_path / 'root'
    bases = root / 'bases'
    bases.mkdir(parents=True)
    (root / 'layers').mkdir()
    running = subprocess.Popen(['sleep', '60'])  # stands in for the process doing the debootstrap
    try:
        key = 'f' * 32
        under_way = bases / ('.tmp-%d-%s' % (running.pid, key))
        (under_way / 'rootfs' / 'etc').mkdir(parents=True)
        killed = bases / ('.tmp-%d-%s' % (dead_pid(), key))
        (killed / 'rootfs').mkdir(parents=True)
        old_format = bases / ('.tmp-%s-%d' % (key, running.pid))  # what an older conductor named it
        old_format.mkdir()
        (bases / ('.%s.lock' % key)).write_text('')

        result = cli('rmcache', root=root)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith('Removed 2 cached bases and layers')
        assert sorted(os.listdir(str(bases))) == sorted([under_way.name, '.%s.lock' % key])
    finally:
        running.kill()
        running.wait()
    assert _store.is_orphan(under_way.name)  # its owner is gone now: the next sweep may take it


def dead_pid():
    """The PID of a process that has ended (ours, reaped)."""
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


@pytest.mark.parametrize('key, sound', [
    ('0123456789abcdef' * 2, True),  # a build step's or a debootstrap base's
    ('sha256-' + 'ab' * 32, True),  # a loaded layer's chain ID
    ('0123456789ABCDEF' * 2, False), ('0' * 31, False), ('0' * 33, False), ('sha256-' + '0' * 32, False),
    ('sha256:' + '0' * 64, False), ('../../' + '0' * 26, False), ('0' * 16 + ':containers', False),
    ('0' * 31 + '/', False), (None, False), (['0' * 32], False), ('0' * 32 + ',upperdir=/', False),
])
def test_keys_are_hex_of_one_of_two_lengths(key, sound):
    assert _store.is_key(key) is sound


def test_loaded_keys_are_oci_chain_ids_and_never_a_build_key():
    diff = 'sha256:' + 'ab' * 32
    assert _store.loaded_key(None, diff) == 'sha256-' + 'ab' * 32
    upper = _store.loaded_key('sha256-' + 'ab' * 32, 'sha256:' + 'cd' * 32)
    assert upper == 'sha256-' + hashlib.sha256(('sha256:%s sha256:%s' % ('ab' * 32, 'cd' * 32)).encode()).hexdigest()
    assert _store.is_key(upper) and len(upper) == 71
    with pytest.raises(ConductorError, match="is not a diff_id"):
        _store.loaded_key(None, 'sha256:../../x')


def test_every_manifest_and_overlay_checks_its_keys(tmp_path):
    store = _store.Store(str(tmp_path / 'root'), config={})
    store.prepare()
    good = {'name': 'ok', 'id': 'e' * 64, 'base': 'a' * 32, 'layers': ['b' * 32, 'sha256-' + 'c' * 64], 'config': {}}
    bad = dict(good, name='bad', layers=['b' * 32, 'b' * 32 + ':containers'])
    for manifest in (good, bad):
        _common.write_json(store.path('images', manifest['name'] + '.json'), manifest)
    assert store.image('ok') == good and [m['name'] for m in store.images()] == ['ok']
    message = "image 'bad' has the layer key '%s:containers', which is not a key Conductor makes" % ('b' * 32)
    for read in (store.image, store.require_image):
        with pytest.raises(ConductorError, match=message):
            read('bad')
    assert store.image('bad', checked=False) == bad
    with pytest.raises(ConductorError, match="this overlay has the base key '../x'"):
        store.lowerdirs('../x', [])
    with pytest.raises(ConductorError, match="is not a layer key Conductor makes"):
        store.layer('../../etc')
    assert store.lowerdirs('a' * 32, ['b' * 32]) == ['layers/%s/diff' % ('b' * 32), 'bases/%s/rootfs' % ('a' * 32)]


def test_prepare_takes_folders_another_command_made_meanwhile(tmp_path, monkeypatch):
    """Ten builds at once prepare one state root: a folder another one makes between a look and a mkdir is
    no error (seen as 'File exists: .../layers' in the reliability suite)."""
    root = tmp_path / 'root'
    root.mkdir(mode=0o700)
    real = os.path.isdir

    def isdir(path):  # whoever looks first finds nothing, and another build makes the folder right then
        if os.path.basename(path) in ('bases', 'layers', 'images') and not os.path.lexists(path):
            os.mkdir(path, 0o700)
            return False
        return real(path)
    monkeypatch.setattr(os.path, 'isdir', isdir)
    _store.Store(str(root), config={}).prepare()
    assert sorted(os.listdir(str(root))) == ['bases', 'images', 'layers']
