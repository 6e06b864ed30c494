# SPDX-License-Identifier: GPL-3.0-or-later
"""The seccomp allow list without root: the table is consistent, what issue 10 requires stays blocked,
and the compiled program is small enough for the kernel. The attacks themselves are in
tests/root/test_isolation.py."""
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _seccomp
from ansible_collections.cs695.conductor.plugins.module_utils._policy import (
    BUILD_CAPS, CAPABILITIES, DEFAULT_CAPS, IOCTLS_WITH_SYS_RESOURCE, SECCOMP_ALLOW, SECCOMP_ALLOW_WITH, SECCOMP_VERSION,
    SOCKET_FAMILIES, capability_set)

# Issue 10: blocked for a container with the default capabilities.
REQUIRED = ('unshare', 'setns', 'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd',
            'mount', 'umount2', 'pivot_root', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module',
            'delete_module', 'open_by_handle_at', 'swapon', 'swapoff', 'reboot', 'settimeofday', 'clock_settime',
            'acct', 'iopl', 'ioperm')
# What the deny list of SECCOMP_VERSION 1 refused by default: the allow list is at least as strict.
OLD_DENY = ('unshare', 'setns', 'clone3', 'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open',
            'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'mount', 'umount2',
            'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
            'quotactl', 'fanotify_init', 'lookup_dcookie', 'open_by_handle_at', 'kexec_load', 'kexec_file_load',
            'reboot', 'init_module', 'finit_module', 'delete_module', 'swapon', 'swapoff', 'settimeofday',
            'clock_settime', 'clock_adjtime', 'acct', 'iopl', 'ioperm', 'syslog', 'uselib', 'ustat', 'sysfs',
            '_sysctl', 'nfsservctl', 'vm86', 'vm86old', 'get_mempolicy', 'set_mempolicy', 'mbind', 'move_pages')
CONDITIONAL = ('clone', 'clone3', 'personality', 'socket')  # allowed with some arguments, or by a capability


def test_the_table_is_consistent():
    assert len(set(SECCOMP_ALLOW)) == len(SECCOMP_ALLOW), 'a name twice'
    assert set(SECCOMP_ALLOW_WITH) <= set(CAPABILITIES)
    for cap, names in SECCOMP_ALLOW_WITH.items():
        assert not set(names) & set(SECCOMP_ALLOW), '%s unlocks what everyone has' % cap
    assert not set(CONDITIONAL) & set(SECCOMP_ALLOW)
    assert 38 not in SOCKET_FAMILIES and 40 not in SOCKET_FAMILIES and 2 in SOCKET_FAMILIES  # AF_ALG, AF_VSOCK


@pytest.mark.parametrize('caps', [DEFAULT_CAPS, BUILD_CAPS])
def test_what_issue_10_requires_stays_blocked(caps):
    allowed = _seccomp.allowed_names(caps)
    assert not allowed & set(REQUIRED)
    assert not allowed & set(OLD_DENY), 'the old deny list refused these'
    assert {'read', 'execve', 'chroot', 'ptrace'} <= allowed


def test_a_capability_unlocks_its_group_as_docker():
    allowed = _seccomp.allowed_names(capability_set(add=['SYS_PTRACE', 'SYS_TIME']))
    assert {'kcmp', 'pidfd_getfd', 'settimeofday', 'clock_adjtime'} <= allowed
    assert not {'mount', 'vhangup'} & allowed
    assert {'mount', 'unshare', 'clone3', 'bpf'} <= _seccomp.allowed_names(capability_set(add=['SYS_ADMIN']))
    assert {'pivot_root', 'keyctl', 'swapon'}.isdisjoint(_seccomp.allowed_names(CAPABILITIES)), 'no cap gives these'


def test_the_program_fits_the_kernel_and_is_cached_by_the_capabilities_that_unlock(tmp_path):
    machine = os.uname().machine
    program = _seccomp.filter_for(str(tmp_path), DEFAULT_CAPS)
    assert 8 * 1000 < len(program) <= 8 * 2000 and len(program) % 8 == 0, 'BPF_MAXINSNS is 4096; loading costs'
    assert len(_seccomp.filter_for(str(tmp_path), list(CAPABILITIES))) <= 8 * 4096
    assert _seccomp.filter_for(str(tmp_path), capability_set(add=['NET_ADMIN'])) == program, 'unlocks nothing'
    _seccomp.filter_for(str(tmp_path), capability_set(add=['SYS_PTRACE']))
    assert sorted(os.listdir(str(tmp_path / 'seccomp'))) == [name % (SECCOMP_VERSION, machine) for name in (
        'v%%d-%%s-%s.bpf' % '+'.join(sorted(set(CAPABILITIES) & set(SECCOMP_ALLOW_WITH))),
        'v%d-%s-SYS_CHROOT+SYS_PTRACE.bpf', 'v%d-%s-SYS_CHROOT.bpf')]


def test_every_number_but_the_guarded_ioctls():
    """ioctl's allowed commands as masked prefixes: every 32-bit command matches one, but the two guarded."""
    import random
    pairs = _seccomp.every_number_but(IOCTLS_WITH_SYS_RESOURCE)
    assert len(pairs) <= 32 * len(IOCTLS_WITH_SYS_RESOURCE)

    def allowed(number):
        return any(number & mask == value for mask, value in pairs)
    numbers = [random.getrandbits(32) for dummy in range(20000)] + [0, 0xffffffff, 0x5401, 0x80086601]
    numbers += [c + d for c in IOCTLS_WITH_SYS_RESOURCE for d in (-1, 1, 1 << 31)]
    assert all(allowed(n & 0xffffffff) for n in numbers if n & 0xffffffff not in IOCTLS_WITH_SYS_RESOURCE)
    assert not any(allowed(c) for c in IOCTLS_WITH_SYS_RESOURCE)
    assert _seccomp.every_number_but(()) == []
