# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The few Linux system calls Python's os module lacks (before 3.12), through ctypes; and the ioctls of
project quotas."""

import ctypes
import errno
import fcntl
import os
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
KEYCTL_JOIN_SESSION_KEYRING = 1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 1
AF_INET, SOCK_DGRAM, SOCK_CLOEXEC = 2, 2, 0o2000000
SYS_PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41, 'armv7l': 218, 'ppc64le': 203, 's390x': 217, 'riscv64': 41}
SYS_OPENAT2 = 437  # the same number on every architecture (added in Linux 5.6)
AT_FDCWD = -100
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
SYS_QUOTACTL_FD = 443  # the same number on every architecture (Linux 5.14)
FS_IOC_FSGETXATTR = 0x801c581f  # struct fsxattr: xflags, extsize, nextents, projid, cowextsize, 8 bytes pad
FS_IOC_FSSETXATTR = 0x401c5820
FS_XFLAG_PROJINHERIT = 0x200
PRJQUOTA = 2
Q_GETQUOTA, Q_SETQUOTA, Q_XGETQSTAT = 0x800007, 0x800008, 0x5805
QIF_BLIMITS = 1
FS_QUOTA_PDQ_ENFD = 0x20  # in fs_quota_stat's qs_flags: project limits are enforced
IF_DQBLK = 'QQQQQQQQI4x'  # bhardlimit, bsoftlimit (1 KiB blocks), curspace (bytes), ihard, isoft, curinodes, btime, itime, valid
CAP_SYS_RESOURCE = 24
SYS_KEYCTL = {'x86_64': 250, 'aarch64': 219, 'armv7l': 311, 'ppc64le': 280, 's390x': 280, 'riscv64': 219}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def _b(s):
    return None if s is None else os.fsencode(s)


def mount(source, target, fstype=None, flags=0, data=None):
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           'mount %s on %s' % (fstype or source, target))


def umount(target, flags=0):
    _check(_libc.umount2(_b(target), flags), 'umount %s' % target)


def unshare(flags):
    if hasattr(os, 'unshare'):  # Python 3.12+
        return os.unshare(flags)
    _check(_libc.unshare(flags), 'unshare')


def setns(fd, nstype=0):
    if hasattr(os, 'setns'):  # Python 3.12+
        return os.setns(fd, nstype)
    _check(_libc.setns(fd, nstype), 'setns')


def pivot_root(new_root, put_old):
    nr = SYS_PIVOT_ROOT[os.uname().machine]
    _check(_libc.syscall(nr, _b(new_root), _b(put_old)), 'pivot_root')


def sethostname(name):
    name = _b(name)
    _check(_libc.sethostname(name, len(name)), 'sethostname')


def set_parent_death_signal(sig):
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), 'prctl')


def drop_bounding_capability(cap):
    _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), 'prctl(PR_CAPBSET_DROP, %d)' % cap)


def set_capabilities(caps):
    """Make the effective and permitted sets exactly `caps` (numbers); inheritable and ambient empty."""
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    low, high = mask & 0xffffffff, mask >> 32
    data = (ctypes.c_uint32 * 6)(low, low, 0, high, high, 0)  # effective, permitted, inheritable (x2)
    _check(_libc.capset(header, data), 'capset')
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), 'prctl(PR_CAP_AMBIENT_CLEAR_ALL)')


def capability_sets():
    """(effective, permitted, inheritable) of this process, as bit masks."""
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capget(header, data), 'capget')
    return tuple(data[i] | data[i + 3] << 32 for i in range(3))


def set_capability_sets(effective, permitted, inheritable):
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(*[mask >> shift & 0xffffffff for shift in (0, 32)
                                   for mask in (effective, permitted, inheritable)])
    _check(_libc.capset(header, data), 'capset')


def set_dumpable(dumpable):
    _check(_libc.prctl(PR_SET_DUMPABLE, 1 if dumpable else 0, 0, 0, 0), 'prctl(PR_SET_DUMPABLE)')


def set_no_new_privs():
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 'prctl(PR_SET_NO_NEW_PRIVS)')


def load_seccomp(bpf):
    """Install a seccomp filter given as compiled BPF (8 bytes an instruction)."""
    program = ctypes.create_string_buffer(bpf, len(bpf))
    fprog = SockFprog(len(bpf) // 8, ctypes.addressof(program))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), 'seccomp')


class SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]


def join_session_keyring():
    """A new, anonymous session keyring: the container cannot reach the keys of whoever started it."""
    nr = SYS_KEYCTL[os.uname().machine]
    if _libc.syscall(nr, KEYCTL_JOIN_SESSION_KEYRING, None, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        raise OSError(err, 'keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s' % os.strerror(err))


def openat2(dirfd, path, flags, mode=0, resolve=0):
    """openat2(2): open path relative to dirfd, resolved as `resolve` says (RESOLVE_IN_ROOT: as if dirfd
    were /, so no symlink or .. leads out of it)."""
    how = struct.pack('QQQ', flags, mode, resolve)  # struct open_how
    fd = _libc.syscall(SYS_OPENAT2, dirfd, _b(path), how, len(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, 'openat2 %s: %s' % (path, os.strerror(err)))
    return fd


def set_loopback_up():
    """`ip link set lo up`, with an ioctl: a new network namespace starts with lo down. The socket is libc's: Python's
    module (and what it imports) cost each start 5 ms."""
    fd = _libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if fd < 0:
        _check(fd, 'socket')
    try:
        request = struct.pack('16sH14x', b'lo', 0)
        flags = struct.unpack('16sH14x', fcntl.ioctl(fd, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(fd, SIOCSIFFLAGS, struct.pack('16sH14x', b'lo', flags | IFF_UP))
    finally:
        os.close(fd)


def set_controlling_terminal(fd):
    import termios
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def set_project(fd, project):
    """Give the folder fd the project ID `project` and the inherit flag: what is made in it from then on
    belongs to that project, and counts against its quota (FS_IOC_FSSETXATTR, as `chattr +P -p`)."""
    xflags, extsize, nextents, dummy, cowextsize = struct.unpack_from('5I', fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(28)))
    fcntl.ioctl(fd, FS_IOC_FSSETXATTR, struct.pack('5I8x', xflags | FS_XFLAG_PROJINHERIT, extsize, nextents, project,
                                                   cowextsize))


def project_of(fd):
    return struct.unpack_from('5I', fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(28)))[3]


def quotactl_fd(fd, command, project, buffer):
    """quotactl_fd(2) on the file system of fd, for a project quota."""
    if _libc.syscall(SYS_QUOTACTL_FD, fd, command << 8 | PRJQUOTA, project, buffer) != 0:
        err = ctypes.get_errno()
        raise OSError(err, 'quotactl: %s' % os.strerror(err))


def project_limits_enforced(fd):
    """Whether the file system of fd enforces project quota limits (Q_XGETQSTAT's flags)."""
    stat = ctypes.create_string_buffer(128)  # struct fs_quota_stat: s8 version, u16 flags, ...
    quotactl_fd(fd, Q_XGETQSTAT, 0, stat)
    return bool(struct.unpack_from('H', stat.raw, 2)[0] & FS_QUOTA_PDQ_ENFD)


def get_project_quota(fd, project):
    """(block hard limit in bytes, bytes used, inodes used) of a project; an unknown one has none."""
    block = ctypes.create_string_buffer(struct.calcsize(IF_DQBLK))
    try:
        quotactl_fd(fd, Q_GETQUOTA, project, block)
    except OSError as e:
        if e.errno == errno.ENOENT:  # XFS: no record of this project yet
            return 0, 0, 0
        raise
    fields = struct.unpack(IF_DQBLK, block.raw)
    return fields[0] << 10, fields[2], fields[5]


def set_project_quota(fd, project, limit):
    """Set a project's block hard limit to `limit` bytes (rounded up to KiB); 0 removes it."""
    block = struct.pack(IF_DQBLK, (limit + 1023) >> 10, 0, 0, 0, 0, 0, 0, 0, QIF_BLIMITS)
    quotactl_fd(fd, Q_SETQUOTA, project, ctypes.create_string_buffer(block, len(block)))
