# SPDX-License-Identifier: GPL-3.0-or-later
"""conductor doctor's checks against faked hosts: a kernel without a module, a missing library, a bad backend.
The firewall's own checks (a drop policy, no ip_forward) run on real rules in tests/root/test_firewall_hosts.py."""
import importlib.util
import sys

from ansible_collections.cs695.conductor.plugins.module_utils import _doctor, _fastimport, _nftables


def by_name(results):
    return {r['check']: r for r in results}


def fake_proc(tmp_path, filesystems='nodev\tproc\nnodev\toverlay\n', namespaces=_doctor.NAMESPACES):
    proc = tmp_path / 'proc'
    (proc / 'self' / 'ns').mkdir(parents=True)
    for name in namespaces:
        (proc / 'self' / 'ns' / name).write_text('')
    (proc / 'filesystems').write_text(filesystems)
    (proc / 'self' / 'status').write_text('Name:\tx\nSeccomp:\t0\n')
    (proc / 'sys' / 'kernel' / 'seccomp').mkdir(parents=True)
    (proc / 'sys' / 'kernel' / 'seccomp' / 'actions_avail').write_text('kill_process errno\n')
    cgroup = tmp_path / 'cgroup'
    cgroup.mkdir()
    (cgroup / 'cgroup.controllers').write_text('cpuset cpu io memory pids\n')
    (proc / 'self' / 'mountinfo').write_text('30 1 0:26 / %s rw - cgroup2 cgroup2 rw\n' % cgroup)
    return proc


def test_a_kernel_without_overlayfs_and_a_namespace(tmp_path, monkeypatch):
    monkeypatch.setattr(_doctor, 'PROC', str(fake_proc(tmp_path, 'nodev\tproc\n', ('pid', 'uts', 'mnt', 'ipc'))))
    monkeypatch.setattr(_doctor, 'MODULES', str(tmp_path / 'modules'))
    monkeypatch.setattr(_doctor, 'SYS', str(tmp_path / 'sys'))
    found = by_name(_doctor.kernel())
    assert found['kernel.overlayfs'] == {'check': 'kernel.overlayfs', 'status': 'problem',
                                         'detail': 'overlayfs is not in the kernel',
                                         'fix': 'modprobe overlay, or use a kernel built with CONFIG_OVERLAY_FS'}
    assert found['kernel.namespaces']['status'] == 'problem' and 'CONFIG_NET_NS' in found['kernel.namespaces']['fix']
    assert found['kernel.vxlan']['status'] == 'warning'
    assert found['kernel.cgroups']['status'] == 'ok' and found['kernel.seccomp']['status'] == 'ok'


def test_a_kernel_with_everything(tmp_path, monkeypatch):  # the control
    monkeypatch.setattr(_doctor, 'PROC', str(fake_proc(tmp_path)))
    (tmp_path / 'sys' / 'module' / 'vxlan').mkdir(parents=True)
    monkeypatch.setattr(_doctor, 'SYS', str(tmp_path / 'sys'))
    assert all(r['status'] == 'ok' and r['fix'] is None for r in _doctor.kernel())


def test_cgroup_v2_without_the_memory_controller(tmp_path, monkeypatch):
    proc = fake_proc(tmp_path)
    (tmp_path / 'cgroup' / 'cgroup.controllers').write_text('cpu pids\n')
    monkeypatch.setattr(_doctor, 'PROC', str(proc))
    found = by_name(_doctor.kernel())['kernel.cgroups']
    assert found['status'] == 'problem' and 'memory' in found['detail'] and 'cgroup_enable=memory' in found['fix']


def test_a_missing_python_library(monkeypatch):
    real = importlib.util.find_spec
    missing = ('seccomp', 'pyseccomp')
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name in missing else real(name, *a))
    found = by_name(_doctor.libraries())
    assert found['python.libseccomp']['status'] == 'problem'
    assert found['python.libseccomp']['fix'].startswith('apt-get install python3-seccomp')
    assert found['python.python-iptables']['status'] == 'ok'


def test_the_nftables_backend_without_python3_nftables(monkeypatch):
    monkeypatch.setenv('CONDUCTOR_FIREWALL_BACKEND', 'nftables')
    monkeypatch.setattr(_fastimport, 'DISTRIBUTION_PACKAGES', ())
    monkeypatch.delitem(sys.modules, 'nftables', raising=False)
    monkeypatch.setattr(sys, 'path', [p for p in sys.path if 'dist-packages' not in p])
    found = by_name(_doctor.firewall({}))['firewall.backend']
    assert found['status'] == 'problem' and 'apt-get install python3-nftables' in found['detail']


def test_a_backend_that_does_not_exist():
    found = _doctor.firewall({'FIREWALL_BACKEND': 'pf'})
    assert found == [{'check': 'firewall.backend', 'status': 'problem', 'fix': 'set FIREWALL_BACKEND to auto, '
                      'nftables or iptables', 'detail': 'FIREWALL_BACKEND=pf in the config is not a firewall backend: '
                      'use auto, nftables or iptables'}]


def test_rendering_the_rules_for_nftables():
    rule = {'in': 'cdr+', 'dst': '127.0.0.0/8', 'ctstate': 'NEW,INVALID', 'target': 'DROP', 'comment': 'x'}
    assert _nftables.expressions(rule) == [
        {'match': {'op': '==', 'left': {'meta': {'key': 'iifname'}}, 'right': 'cdr*'}},
        {'match': {'op': '==', 'left': {'payload': {'protocol': 'ip', 'field': 'daddr'}},
                   'right': {'prefix': {'addr': '127.0.0.0', 'len': 8}}}},
        {'match': {'op': 'in', 'left': {'ct': {'key': 'state'}}, 'right': ['new', 'invalid']}},
        {'counter': None}, {'drop': None}]
    dnat = {'protocol': 'udp', 'dport': '5353', 'local': True, 'target': 'DNAT', 'to': '10.0.0.2:53'}
    assert _nftables.expressions(dnat)[-1] == {'dnat': {'addr': '10.0.0.2', 'port': 53}}
    assert _nftables.expressions({'src': '!10.0.0.2', 'target': 'CONDUCTOR-x'})[0]['match']['op'] == '!='


def test_the_overlay_is_checked_only_where_there_is_one(tmp_path, monkeypatch):
    from ansible_collections.cs695.conductor.plugins.module_utils import _overlay
    assert _doctor.overlay(str(tmp_path)) == []
    (tmp_path / 'network').mkdir()
    (tmp_path / 'network' / 'overlay.json').write_text(
        '{"subnet": "10.88.1.0/24", "remotes": [{"address": "10.0.0.12", "subnet": "10.88.2.0/24"}], "vni": 695, '
        '"port": 4789}')
    for up, status in ((True, 'ok'), (False, 'problem')):
        monkeypatch.setattr(_overlay, 'matches', lambda plan, up=up: up)
        found, = _doctor.overlay(str(tmp_path))
        assert found['status'] == status and '1 other host(s)' in found['detail']
        assert (found['fix'] or '').startswith('conductor restore') is (not up)
