# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What a container may do, in one place: its capabilities, the system calls it may not make, the
/proc paths it may not read or write, the device nodes it gets, and its default PATH. --privileged
lifts all but the last two.

The runtime (_runtime.py) applies these; a reader checking Conductor's confinement starts here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

# Every capability by name (linux/capability.h), for --cap-add and --cap-drop.
CAPABILITIES = {
    'CHOWN': 0, 'DAC_OVERRIDE': 1, 'DAC_READ_SEARCH': 2, 'FOWNER': 3, 'FSETID': 4, 'KILL': 5, 'SETGID': 6,
    'SETUID': 7, 'SETPCAP': 8, 'LINUX_IMMUTABLE': 9, 'NET_BIND_SERVICE': 10, 'NET_BROADCAST': 11,
    'NET_ADMIN': 12, 'NET_RAW': 13, 'IPC_LOCK': 14, 'IPC_OWNER': 15, 'SYS_MODULE': 16, 'SYS_RAWIO': 17,
    'SYS_CHROOT': 18, 'SYS_PTRACE': 19, 'SYS_PACCT': 20, 'SYS_ADMIN': 21, 'SYS_BOOT': 22, 'SYS_NICE': 23,
    'SYS_RESOURCE': 24, 'SYS_TIME': 25, 'SYS_TTY_CONFIG': 26, 'MKNOD': 27, 'LEASE': 28, 'AUDIT_WRITE': 29,
    'AUDIT_CONTROL': 30, 'SETFCAP': 31, 'MAC_OVERRIDE': 32, 'MAC_ADMIN': 33, 'SYSLOG': 34, 'WAKE_ALARM': 35,
    'BLOCK_SUSPEND': 36, 'AUDIT_READ': 37, 'PERFMON': 38, 'BPF': 39, 'CHECKPOINT_RESTORE': 40,
}

# A container's capabilities: Docker's default set without MKNOD, as Podman has it. These are the
# bounding, effective and permitted sets of PID 1 and of every exec; inheritable and ambient are empty.
DEFAULT_CAPS = ('CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
                'NET_BIND_SERVICE', 'NET_RAW', 'SYS_CHROOT', 'AUDIT_WRITE', 'SETFCAP')


def capability_set(add=(), drop=(), base=DEFAULT_CAPS):
    """The capability names a container gets: base, less `drop`, plus `add` (names with or without
    CAP_, any case; ALL means every one). Unknown names are refused."""
    def names(given, option):
        result = set()
        for name in given or ():
            key = str(name).upper()
            key = key[4:] if key.startswith('CAP_') else key
            if key == 'ALL':
                result |= set(CAPABILITIES)
            elif key in CAPABILITIES:
                result.add(key)
            else:
                raise ConductorError('unknown capability %r in %s: use names such as NET_ADMIN or SYS_PTRACE (see '
                                     'man 7 capabilities), or ALL' % (name, option))
        return result
    removed, added = names(drop, 'cap_drop'), names(add, 'cap_add')
    return sorted((set(base) - removed) | added, key=CAPABILITIES.get)


# A build's RUN steps share the host's network: no NET_RAW (nor NET_ADMIN) there, so they cannot sniff
# or change it.
BUILD_CAPS = tuple(cap for cap in DEFAULT_CAPS if cap != 'NET_RAW')

# The seccomp filter, with the semantics of Docker's default profile for what it denies: every other
# system call is allowed (a deny list, short enough to read; Docker's profile is an allow list).
# (system call, errno it fails with, capability whose holder may make it anyway). Calls from another
# ABI (32-bit int 0x80 on x86_64) are refused outright: they could get round a deny list.
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
EPERM, ENOSYS = 1, 38
SECCOMP_DENY = (
    # new namespaces, user namespaces above all: unshare and setns outright, clone with a CLONE_NEW* flag
    ('unshare', EPERM, 'SYS_ADMIN'), ('setns', EPERM, 'SYS_ADMIN'), ('clone', EPERM, 'SYS_ADMIN'),
    ('clone3', ENOSYS, 'SYS_ADMIN'),  # ENOSYS, as Docker: glibc then falls back to clone, filtered above
    # the kernel's keyring, BPF, perf, userfaultfd, io_uring
    ('keyctl', EPERM, None), ('add_key', EPERM, None), ('request_key', EPERM, None),
    ('bpf', EPERM, 'SYS_ADMIN'), ('perf_event_open', EPERM, 'PERFMON'), ('userfaultfd', EPERM, None),
    ('io_uring_setup', EPERM, None), ('io_uring_enter', EPERM, None), ('io_uring_register', EPERM, None),
    # mounts
    ('mount', EPERM, 'SYS_ADMIN'), ('umount2', EPERM, 'SYS_ADMIN'), ('pivot_root', EPERM, 'SYS_ADMIN'),
    ('fsopen', EPERM, 'SYS_ADMIN'), ('fsconfig', EPERM, 'SYS_ADMIN'), ('fsmount', EPERM, 'SYS_ADMIN'),
    ('fspick', EPERM, 'SYS_ADMIN'), ('move_mount', EPERM, 'SYS_ADMIN'), ('open_tree', EPERM, 'SYS_ADMIN'),
    ('mount_setattr', EPERM, 'SYS_ADMIN'), ('quotactl', EPERM, 'SYS_ADMIN'), ('fanotify_init', EPERM, 'SYS_ADMIN'),
    ('lookup_dcookie', EPERM, 'SYS_ADMIN'), ('open_by_handle_at', EPERM, 'DAC_READ_SEARCH'),
    # the kernel itself: kexec, modules, swap, reboot, the clock, accounting, raw I/O ports, the log
    ('kexec_load', EPERM, 'SYS_BOOT'), ('kexec_file_load', EPERM, 'SYS_BOOT'), ('reboot', EPERM, 'SYS_BOOT'),
    ('init_module', EPERM, 'SYS_MODULE'), ('finit_module', EPERM, 'SYS_MODULE'),
    ('delete_module', EPERM, 'SYS_MODULE'), ('swapon', EPERM, 'SYS_ADMIN'), ('swapoff', EPERM, 'SYS_ADMIN'),
    ('settimeofday', EPERM, 'SYS_TIME'), ('clock_settime', EPERM, 'SYS_TIME'), ('clock_adjtime', EPERM, 'SYS_TIME'),
    ('acct', EPERM, 'SYS_PACCT'), ('iopl', EPERM, 'SYS_RAWIO'), ('ioperm', EPERM, 'SYS_RAWIO'),
    ('syslog', EPERM, 'SYSLOG'), ('uselib', EPERM, None), ('ustat', EPERM, None), ('sysfs', EPERM, None),
    ('_sysctl', EPERM, None), ('nfsservctl', EPERM, None), ('vm86', EPERM, None), ('vm86old', EPERM, None),
    ('get_mempolicy', EPERM, 'SYS_NICE'), ('set_mempolicy', EPERM, 'SYS_NICE'), ('mbind', EPERM, 'SYS_NICE'),
    ('move_pages', EPERM, 'SYS_NICE'),
    # a file's project ID and a folder's inherit flag: changed, what the container writes would escape its
    # --storage-size quota. ioctl only with the commands below; file_setattr (Linux 6.17) outright
    ('ioctl', EPERM, 'SYS_RESOURCE'), ('file_setattr', EPERM, 'SYS_RESOURCE'),
)
SECCOMP_VERSION = 2  # bump when SECCOMP_DENY changes: cached filters carry it in their name
DENIED_IOCTLS = (0x401c5820, 0x40086602)  # FS_IOC_FSSETXATTR (chattr -p, +P), FS_IOC_SETFLAGS (chattr)
NEW_SYSCALLS = {'file_setattr': 469}  # newer than the libseccomp of Debian 12 knows; one number on every architecture

# runc's masked paths: the parts of /proc that speak for the whole host are hidden ...
MASKED = ('/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
          '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi')
# runc's masked /sys paths: firmware tables, and the power counters of a side channel (PLATYPUS)
MASKED_SYS = ('/sys/firmware', '/sys/devices/virtual/powercap')
# ... or frozen read-only.
READ_ONLY = ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')

# The nodes of a container's private /dev (a tmpfs; never the host's /dev): name, major, minor.
DEVICES = (('null', 1, 3), ('zero', 1, 5), ('full', 1, 7), ('random', 1, 8), ('urandom', 1, 9), ('tty', 5, 0))

DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# Restart policies (run --restart): the delay before a start again doubles from the first to the last,
# and goes back to the first once the container has run RESTART_RESET seconds (Docker's numbers).
RESTART_DELAY_FIRST, RESTART_DELAY_LAST, RESTART_RESET = 0.1, 60.0, 10.0
