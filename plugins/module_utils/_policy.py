# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What a container may do, in one place: its capabilities, the system calls it may make, the
/proc paths it may not read or write, the device nodes it gets, and its default PATH. --privileged
lifts all but the last two.

The runtime (_runtime.py) applies these; a reader checking Conductor's confinement starts here.
"""

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


# A build's RUN steps may share the host's network (conductor build --network host): no NET_RAW (nor
# NET_ADMIN) there, so they cannot sniff or change it.
BUILD_CAPS = tuple(cap for cap in DEFAULT_CAPS if cap != 'NET_RAW')
# A build's COPY and ADD run no program of the image: they only write files with their owners and modes. No
# SYS_CHROOT above all: the step is chrooted into the image, and with it a chroot leads back out.
COPY_CAPS = ('CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID')

# The seccomp filter: Docker's default profile (moby/profiles, seccomp/default.json) as an allow list.
# A system call not allowed here fails with EPERM, so a program degrades instead of crashing; a number
# above the highest this list knows on the machine's architecture (a call newer than the list, or than
# libseccomp) fails with ENOSYS, as runc has it, so newer libcs fall back. x86_64 also allows the
# 32-bit (int 0x80) and x32 ABIs, with the same list. Names a given architecture lacks are skipped.
# Stricter than Docker: clock_adjtime needs SYS_TIME (glibc's adjtimex is clock_adjtime).
SECCOMP_ALLOW = (
    # processes, threads and their identity
    'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid', 'kill',
    'tkill', 'tgkill', 'getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'getsid', 'setpgid', 'setsid',
    'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq', 'restart_syscall', 'membarrier',
    'pidfd_open', 'pidfd_send_signal', 'process_mrelease', 'prctl', 'arch_prctl', 'seccomp', 'capget',
    'capset', 'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self',
    'ptrace', 'process_vm_readv', 'process_vm_writev',  # Docker allows these on kernels >= 4.8
    'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups', 'setuid', 'setgid',
    'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
    'getuid32', 'geteuid32', 'getgid32', 'getegid32', 'getresuid32', 'getresgid32', 'getgroups32',
    'setuid32', 'setgid32', 'setreuid32', 'setregid32', 'setresuid32', 'setresgid32', 'setgroups32',
    'setfsuid32', 'setfsgid32',
    # signals
    'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
    'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sigaltstack', 'signalfd', 'signalfd4',
    'sigprocmask', 'sigreturn', 'pause', 'alarm',
    # time and timers (reading the clock; setting it is SYS_TIME's below)
    'clock_getres', 'clock_getres_time64', 'clock_gettime', 'clock_gettime64', 'clock_nanosleep',
    'clock_nanosleep_time64', 'gettimeofday', 'time', 'times', 'nanosleep', 'adjtimex', 'getitimer',
    'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64',
    'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64',
    'timerfd_settime', 'timerfd_settime64',
    # memory
    'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'mlock', 'mlock2',
    'mlockall', 'munlock', 'munlockall', 'msync', 'remap_file_pages', 'memfd_create', 'memfd_secret',
    'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'map_shadow_stack', 'mseal', 'modify_ldt',
    'set_thread_area', 'get_thread_area', 'cachestat',
    # futexes
    'futex', 'futex_time64', 'futex_waitv', 'futex_wait', 'futex_wake', 'futex_requeue',
    # files and folders
    'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'read', 'readv', 'pread64', 'preadv',
    'preadv2', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'lseek', '_llseek', 'dup', 'dup2',
    'dup3', 'fcntl', 'fcntl64', 'flock', 'ioctl', 'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice',
    'copy_file_range', 'readahead', 'fadvise64', 'fadvise64_64', 'fallocate', 'fsync', 'fdatasync', 'sync',
    'syncfs', 'sync_file_range', 'truncate', 'truncate64', 'ftruncate', 'ftruncate64',
    'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'fstatat64', 'newfstatat', 'statx', 'statfs',
    'statfs64', 'fstatfs', 'fstatfs64', 'access', 'faccessat', 'faccessat2', 'getcwd', 'chdir', 'fchdir',
    'getdents', 'getdents64', 'mkdir', 'mkdirat', 'rmdir', 'mknod', 'mknodat', 'link', 'linkat', 'symlink',
    'symlinkat', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'readlink', 'readlinkat',
    'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'fchownat', 'lchown', 'chown32',
    'fchown32', 'lchown32', 'umask', 'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat',
    'name_to_handle_at', 'statmount', 'listmount',
    'getxattr', 'lgetxattr', 'fgetxattr', 'getxattrat', 'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat',
    'listxattr', 'llistxattr', 'flistxattr', 'listxattrat', 'removexattr', 'lremovexattr', 'fremovexattr',
    'removexattrat',
    # waiting for many things: poll, select, epoll, eventfd, inotify, fanotify's marks, aio (not io_uring)
    'poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6', 'pselect6_time64', 'epoll_create',
    'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old', 'epoll_pwait',
    'epoll_pwait2', 'eventfd', 'eventfd2', 'inotify_init', 'inotify_init1', 'inotify_add_watch',
    'inotify_rm_watch', 'fanotify_mark', 'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents',
    'io_pgetevents', 'io_pgetevents_time64',
    # sockets (socket itself is filtered by family below), pipes and System V / POSIX IPC
    'socketpair', 'bind', 'listen', 'accept', 'accept4', 'connect', 'getsockname', 'getpeername',
    'getsockopt', 'setsockopt', 'shutdown', 'send', 'sendto', 'sendmsg', 'sendmmsg', 'recv', 'recvfrom',
    'recvmsg', 'recvmmsg', 'recvmmsg_time64', 'socketcall', 'pipe', 'pipe2', 'ipc', 'shmget', 'shmat',
    'shmdt', 'shmctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'semctl', 'msgget', 'msgsnd',
    'msgrcv', 'msgctl', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive',
    'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr',
    # scheduling, limits, the system's name
    'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr',
    'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler', 'sched_get_priority_max',
    'sched_get_priority_min', 'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'getpriority',
    'setpriority', 'ioprio_get', 'ioprio_set', 'getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64',
    'getrusage', 'sysinfo', 'uname', 'getcpu', 'getrandom',
    # one architecture's own (libseccomp skips a name the architecture lacks)
    'uretprobe', 'arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush',
    'set_tls', 's390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr', 'swapcontext',
    'riscv_flush_icache', 'riscv_hwprobe',
)
# A process holding the capability may also make these calls (Docker's capability-gated groups).
SECCOMP_ALLOW_WITH = {
    'SYS_ADMIN': ('clone', 'clone3', 'unshare', 'setns', 'mount', 'umount', 'umount2', 'fsopen', 'fsconfig',
                  'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'quotactl', 'quotactl_fd',
                  'fanotify_init', 'lookup_dcookie', 'sethostname', 'setdomainname', 'bpf', 'perf_event_open',
                  'syslog', 'lsm_get_self_attr', 'lsm_set_self_attr', 'lsm_list_modules'),
    'SYS_BOOT': ('reboot',),
    'SYS_CHROOT': ('chroot',),
    'SYS_MODULE': ('init_module', 'finit_module', 'delete_module'),
    'SYS_PACCT': ('acct',),
    'SYS_PTRACE': ('kcmp', 'pidfd_getfd', 'process_madvise'),  # ptrace itself is allowed above
    'SYS_RAWIO': ('iopl', 'ioperm'),
    'SYS_TIME': ('settimeofday', 'stime', 'clock_settime', 'clock_settime64', 'clock_adjtime',
                 'clock_adjtime64'),
    'SYS_TTY_CONFIG': ('vhangup',),
    'SYS_NICE': ('get_mempolicy', 'set_mempolicy', 'mbind', 'set_mempolicy_home_node'),
    'SYSLOG': ('syslog',),
    'BPF': ('bpf',),
    'PERFMON': ('perf_event_open',),
    'DAC_READ_SEARCH': ('open_by_handle_at',),
    'SYS_RESOURCE': (),  # and the ioctls of IOCTLS_WITH_SYS_RESOURCE
}
# Calls allowed with some arguments only (Docker's conditions); their names are in no list above.
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET:
# clone without these (with SYS_ADMIN: any clone); clone3 fails with ENOSYS so glibc falls back to clone
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # Linux, Linux32, with UNAME26; 0xFFFFFFFF asks
# socket's first argument: AF_UNSPEC to AF_MCTP, less AF_ALG (the kernel's crypto) and AF_VSOCK (the
# hypervisor's sockets), as Docker; a family newer than AF_MCTP fails with EPERM
SOCKET_FAMILIES = tuple(family for family in range(46) if family not in (38, 40))
SECCOMP_VERSION = 4  # bump when the filter changes: cached filters carry it in their name
# ioctl commands only a process holding SYS_RESOURCE may make: a file's project ID and a folder's
# inherit flag (FS_IOC_FSSETXATTR, chattr -p and +P; FS_IOC_SETFLAGS and the 32-bit ABI's
# FS_IOC32_SETFLAGS, any chattr). Changed, what the container writes would escape its --storage-size quota.
IOCTLS_WITH_SYS_RESOURCE = (0x401c5820, 0x40086602, 0x40046602)

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
