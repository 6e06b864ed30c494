# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The few Linux system calls Python's os module lacks (before 3.12), through ctypes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
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
PR_CAPBSET_DROP = 24
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 1
SYS_PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41, 'armv7l': 218, 'ppc64le': 203, 's390x': 217, 'riscv64': 41}

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


def set_loopback_up():
    """`ip link set lo up`, with an ioctl: a new network namespace starts with lo down."""
    import socket  # only the container's setup needs it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack('16sH14x', b'lo', 0)
        flags = struct.unpack('16sH14x', fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack('16sH14x', b'lo', flags | IFF_UP))


def set_controlling_terminal(fd):
    import termios
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
