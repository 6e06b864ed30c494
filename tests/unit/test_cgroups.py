# SPDX-License-Identifier: GPL-3.0-or-later
"""cgroups without root: the limits' syntax, and the v2 path against a fake cgroup2 tree (the
development machine binds every controller to v1, so v2 is only tested here)."""
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

V2 = '30 1 0:26 / %s rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n'
V1 = ('35 25 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n'
      '36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n'
      '37 25 0:32 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n'
      '38 25 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n')


@pytest.mark.parametrize('text, size', [('512m', 512 << 20), ('2g', 2 << 30), ('64MB', 64 << 20), ('6m', 6 << 20),
                                        (str(10 << 20), 10 << 20), ('1.5g', 3 << 29), (None, None)])
def test_memory_sizes(text, size):
    assert _cgroups.parse_memory(text) == size


@pytest.mark.parametrize('text', ['0', '12q', 'm', '-5m', '1k', 'lots'])
def test_bad_memory_sizes(text):
    with pytest.raises(ConductorError, match=r"invalid memory limit '%s': give a size of at least 6m" % text):
        _cgroups.parse_memory(text)


def test_cpus_and_pids():
    assert _cgroups.parse_cpus('1') == 1.0 and _cgroups.parse_cpus(None) is None
    for bad in ('-1', '0', 'abc', str((os.cpu_count() or 1) + 1)):
        with pytest.raises(ConductorError, match='invalid cpus limit'):
            _cgroups.parse_cpus(bad)
    assert _cgroups.parse_pids('100') == 100 and _cgroups.parse_pids(-1) == -1
    for bad in ('abc', '0', '-2', '1.5'):
        with pytest.raises(ConductorError, match=r"invalid pids limit '%s'" % bad):
            _cgroups.parse_pids(bad)


def test_hierarchies_v1_and_hybrid():
    version, mounts = _cgroups.hierarchies(V1)
    assert version == 'v1'
    assert mounts['memory'] == '/sys/fs/cgroup/memory' and mounts['cpu'] == '/sys/fs/cgroup/cpu,cpuacct'
    group = _cgroups.Cgroup('web', mountinfo=V1)
    assert group.groups['cpu'] == '/sys/fs/cgroup/cpu,cpuacct/conductor/web'


@pytest.fixture
def tree(tmp_path):
    """A fake cgroup2 mount: the files the kernel would show at its root."""
    root = tmp_path / 'cgroup'
    root.mkdir()
    (root / 'cgroup.controllers').write_text('cpuset cpu io memory hugetlb pids rdma misc\n')
    (root / 'cgroup.subtree_control').write_text('')
    return root


def test_v2_group_and_limits(tree):
    group = _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=False)
    assert group.version == 'v2' and group.folders() == [str(tree / 'conductor' / 'web')]
    group.create({'memory': 64 << 20, 'cpus': 1.5, 'pids': 2048})
    web = tree / 'conductor' / 'web'
    assert (tree / 'cgroup.subtree_control').read_text() == '+cpu +io +memory +pids'
    assert (tree / 'conductor' / 'cgroup.subtree_control').read_text() == '+cpu +io +memory +pids'
    assert (web / 'memory.max').read_text() == str(64 << 20)
    assert (web / 'cpu.max').read_text() == '150000 100000'
    assert (web / 'pids.max').read_text() == '2048'
    assert group.procs() == group.joins() == [str(web / 'cgroup.procs')], 'v2: a process joins by cgroup.procs'
    group.apply({'memory': None, 'cpus': None, 'pids': -1})
    assert [(web / f).read_text() for f in ('memory.max', 'cpu.max', 'pids.max')] == ['max', 'max 100000', 'max']


def test_v2_refuses_a_limit_below_use_and_a_missing_controller(tree):
    group = _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=False)
    group.create({'memory': None, 'cpus': None, 'pids': None})
    (tree / 'conductor' / 'web' / 'memory.current').write_text(str(100 << 20))
    (tree / 'conductor' / 'web' / 'pids.current').write_text('30')
    with pytest.raises(ConductorError, match=r"the memory limit 64 MiB is below what the container 'web' uses now "
                                             r"\(100 MiB\)"):
        group.apply({'memory': 64 << 20}, check_usage=True)
    with pytest.raises(ConductorError, match="the pids limit 10 is below the 30 processes the container 'web' runs"):
        group.apply({'pids': 10}, check_usage=True)
    (tree / 'cgroup.controllers').write_text('cpu pids\n')
    with pytest.raises(ConductorError, match='the memory cgroup controller is not available on this host'):
        _cgroups.Cgroup('db', mountinfo=V2 % tree, delegated=False).create({'memory': 64 << 20})


def test_under_systemd_only_the_delegated_unit_is_written(tree, monkeypatch):
    """systemd as PID 1: the groups go into conductor-cgroups.service, which systemd-run starts once with
    Delegate=yes; nothing above it (the root, system.slice: systemd's own) is written."""
    import subprocess
    (tree / 'system.slice').mkdir()
    (tree / 'system.slice' / 'cgroup.subtree_control').write_text('+cpu +memory +pids')
    unit = tree / 'system.slice' / 'conductor-cgroups.service'
    calls = []

    def systemd_run(argv, **kwargs):  # what systemd does: the unit's group, its process moved into holder/
        calls.append(argv)
        (unit / 'holder').mkdir(parents=True)
        (unit / 'cgroup.controllers').write_text('cpu memory pids\n')
        (unit / 'holder' / 'cgroup.procs').write_text('4242\n')
        return b''
    monkeypatch.setattr(subprocess, 'check_output', systemd_run)
    monkeypatch.setattr(_cgroups, 'SYSTEMD_LOCK', str(tree / 'lock'))
    group = _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=True)
    assert group.folders() == [str(unit / 'web')]
    group.create({'memory': 64 << 20, 'cpus': None, 'pids': 100}, totals={'pids': 500, 'memory': None})
    assert calls[0][:4] == ['systemd-run', '--quiet', '--collect', '--unit']
    assert {'Delegate=yes', 'TasksMax=500', 'MemoryMax=infinity', 'KillMode=process', 'Restart=always'} <= set(calls[0])
    assert not (unit / 'pids.max').exists(), 'the unit\'s own files are systemd\'s: its properties, never written'
    holder = 'mkdir -p %s/holder && echo 0 > %s/holder/cgroup.procs && exec sleep infinity' % (unit, unit)
    assert calls[0][-3:] == ['/bin/sh', '-c', holder]
    assert (tree / 'cgroup.subtree_control').read_text() == ''
    assert (tree / 'system.slice' / 'cgroup.subtree_control').read_text() == '+cpu +memory +pids'
    assert (unit / 'cgroup.subtree_control').read_text() == '+cpu +memory +pids'
    assert (unit / 'web' / 'memory.max').read_text() == str(64 << 20)
    _cgroups.Cgroup('db', mountinfo=V2 % tree, delegated=True).create({})
    assert len(calls) == 1  # the unit runs already
    for name in ('web', 'db'):
        for leftover in (unit / name).iterdir():
            leftover.unlink()  # the kernel's files: a real group is empty when its processes are gone
        _cgroups.Cgroup(name, mountinfo=V2 % tree, delegated=True).remove()
    assert sorted(p.name for p in unit.iterdir()) == ['cgroup.controllers', 'cgroup.subtree_control', 'holder']


def test_under_systemd_a_container_from_before_keeps_its_group(tree):
    """Started by a Conductor from before delegation, its group is conductor/<name>: exec, update and
    remove find it there."""
    (tree / 'conductor' / 'old').mkdir(parents=True)
    assert _cgroups.Cgroup('old', mountinfo=V2 % tree, delegated=True).folders() == [str(tree / 'conductor' / 'old')]
    assert _cgroups.Cgroup('new', mountinfo=V2 % tree, delegated=True).folders() == [
        str(tree / 'system.slice' / 'conductor-cgroups.service' / 'new')]


def test_under_systemd_a_unit_that_cannot_start_is_one_error(tree, monkeypatch):
    import subprocess

    def systemd_run(argv, **kwargs):
        raise subprocess.CalledProcessError(1, argv, output=b'Failed to connect to bus: No such file or directory')
    monkeypatch.setattr(subprocess, 'check_output', systemd_run)
    monkeypatch.setattr(_cgroups, 'SYSTEMD_LOCK', str(tree / 'lock'))
    with pytest.raises(ConductorError, match=r'cannot start conductor-cgroups.service, the cgroup subtree systemd '
                                             r'delegates to Conductor \(Failed to connect to bus'):
        _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=True).create({})
    assert sorted(p.name for p in tree.iterdir()) == ['cgroup.controllers', 'cgroup.subtree_control', 'lock']


def test_a_named_parent_under_systemd_is_never_written_above(tree):
    """CGROUP_PARENT naming a group the admin had systemd delegate: no systemd-run, nothing above it."""
    delegated = tree / 'machine.slice' / 'lab.scope'
    delegated.mkdir(parents=True)
    (delegated / 'cgroup.controllers').write_text('memory pids\n')
    group = _cgroups.Cgroup('web', 'machine.slice/lab.scope', mountinfo=V2 % tree, delegated=True)
    group.create({'pids': 10})
    assert (delegated / 'cgroup.subtree_control').read_text() == '+memory +pids'
    assert not (tree / 'machine.slice' / 'cgroup.subtree_control').exists()
    assert (tree / 'cgroup.subtree_control').read_text() == ''
    with pytest.raises(ConductorError, match=r'the cpu cgroup controller is not available on this host, so the cpu '
                                             r'limit cannot be applied: ask systemd to delegate it to .*lab.scope'):
        group.apply({'cpus': 1})


def test_favordynmods_leaves_nothing_to_keep_awake():
    assert not _cgroups.favors_dynmods(V1 + V2 % '/sys/fs/cgroup')
    assert _cgroups.favors_dynmods('30 1 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 '
                                   'rw,nsdelegate,favordynmods,memory_recursiveprot\n')
    assert not _cgroups.favors_dynmods('31 1 0:27 / /favordynmods rw - ext4 /dev/vdb rw\n')


def test_all_containers_together_have_the_totals_in_the_parent(tree):
    """TOTAL_PIDS_LIMIT (else half of pid_max) and TOTAL_MEMORY_LIMIT: in the parent, written when they differ."""
    with open('/proc/sys/kernel/pid_max') as f:
        half = int(f.read()) // 2
    assert _cgroups.total_limits({}) == {'pids': half, 'memory': None}
    assert _cgroups.total_limits({'TOTAL_PIDS_LIMIT': '-1', 'TOTAL_MEMORY_LIMIT': '8g'}) == \
        {'pids': -1, 'memory': 8 << 30}
    with pytest.raises(ConductorError, match=r"TOTAL_PIDS_LIMIT in the config: invalid pids limit 'many'"):
        _cgroups.total_limits({'TOTAL_PIDS_LIMIT': 'many'})
    with pytest.raises(ConductorError, match=r"invalid TOTAL_MEMORY_LIMIT in the config '1q'"):
        _cgroups.total_limits({'TOTAL_MEMORY_LIMIT': '1q'})
    parent = tree / 'conductor'
    parent.mkdir()
    for name, value in (('pids.max', 'max'), ('memory.max', 'max'), ('memory.swap.max', 'max')):
        (parent / name).write_text(value)  # what the kernel shows in a new group
    web = _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=False)
    web.create({'pids': 2048}, totals={'pids': 300, 'memory': 1 << 30})
    assert [(parent / f).read_text() for f in ('pids.max', 'memory.max', 'memory.swap.max')] == [
        '300', str(1 << 30), '0']
    assert (parent / 'web' / 'pids.max').read_text() == '2048', 'a container\'s own limit stays its own'
    (parent / 'pids.max').write_text('300\n')  # as the kernel shows it
    _cgroups.Cgroup('db', mountinfo=V2 % tree, delegated=False).create({}, totals={'pids': 300, 'memory': 1 << 30})
    assert (parent / 'pids.max').read_text() == '300\n', 'right already: not written again'
    _cgroups.Cgroup('db', mountinfo=V2 % tree, delegated=False).create({}, totals={'pids': -1, 'memory': None})
    assert [(parent / f).read_text() for f in ('pids.max', 'memory.max', 'memory.swap.max')] == ['max', 'max', 'max']


def test_under_systemd_changed_totals_are_the_units_properties(tree, monkeypatch):
    import subprocess
    unit = tree / 'system.slice' / 'conductor-cgroups.service'
    (unit / 'holder').mkdir(parents=True)
    (unit / 'cgroup.controllers').write_text('memory pids\n')
    (unit / 'holder' / 'cgroup.procs').write_text('4242\n')
    (unit / 'pids.max').write_text('500\n')
    calls = []
    monkeypatch.setattr(subprocess, 'check_output', lambda argv, **kwargs: calls.append(list(argv)) or b'')
    _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=True).create({}, totals={'pids': 500, 'memory': None})
    assert calls == [], 'as they should be: no systemctl'
    _cgroups.Cgroup('db', mountinfo=V2 % tree, delegated=True).create({}, totals={'pids': 90, 'memory': 1 << 30})
    assert calls == [['systemctl', 'set-property', '--runtime', 'conductor-cgroups.service', 'TasksMax=90',
                      'MemoryMax=%d' % (1 << 30), 'MemorySwapMax=0']]
    assert (unit / 'pids.max').read_text() == '500\n', 'systemd writes it, not conductor'


def test_counters_read_one_file_per_figure_on_v2_and_v1(tree, tmp_path):
    group = _cgroups.Cgroup('web', mountinfo=V2 % tree, delegated=False)
    folder = tree / 'conductor' / 'web'
    folder.mkdir(parents=True)
    (folder / 'memory.current').write_text('52428800\n')
    (folder / 'pids.current').write_text('3\n')
    (folder / 'cpu.stat').write_text('usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n')
    assert group.counters() == {'memory': 52428800, 'pids': 3, 'cpu_ns': 1500000000}, 'no io.stat: no I/O figure'
    (folder / 'io.stat').write_text('8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n7:1 rbytes=1 wbytes=2\n')
    assert group.counters()['io_read'] == 4097 and group.counters()['io_write'] == 8194
    v1 = tmp_path / 'v1'
    text = ''.join('%d 25 0:%d / %s rw - cgroup cgroup rw,%s\n' % (40 + i, 40 + i, v1 / name, name.replace('-', ','))
                   for i, name in enumerate(('memory', 'cpu-cpuacct', 'pids', 'blkio', 'freezer')))
    group = _cgroups.Cgroup('web', mountinfo=text)
    assert group.groups['cpuacct'] == group.groups['cpu'] == str(v1 / 'cpu-cpuacct' / 'conductor' / 'web')
    for name, content in (('memory/conductor/web/memory.usage_in_bytes', '1000\n'),
                          ('cpu-cpuacct/conductor/web/cpuacct.usage', '123456789\n'),
                          ('blkio/conductor/web/blkio.throttle.io_service_bytes_recursive',
                           '8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\nTotal 300\n')):
        (v1 / name).parent.mkdir(parents=True, exist_ok=True)
        (v1 / name).write_text(content)
    assert group.counters() == {'memory': 1000, 'cpu_ns': 123456789, 'io_read': 100, 'io_write': 200}
    assert str(v1 / 'freezer' / 'conductor' / 'web' / 'cgroup.procs') not in group.procs(), \
        'a container started before its freezer group existed joins the others alone'
    assert group.joins() == [os.path.join(os.path.dirname(path), 'tasks') for path in group.procs()], \
        'v1: a (single-threaded) process joins by tasks, which takes no global lock'
