"""The state root's temporary entries: names that say whose they are, and sweeps that read them."""
import os
import subprocess
import sys

import helpers
from ansible_collections.cs695.conductor.plugins.module_utils import _common, _store


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
