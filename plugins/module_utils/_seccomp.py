# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The seccomp filter: the allow list of _policy (Docker's default profile) made with libseccomp,
compiled once to BPF.

libseccomp's Python bindings (python3-seccomp from apt, or pyseccomp from PyPI, which has the same
API) build and compile the filter; loading them costs ~100 ms and compiling ~40 ms, so the compiled
program (about 1350 instructions as a binary tree: a call costs about ten comparisons) is cached in
the state root (seccomp/v<version>-<arch>-<capabilities>.bpf, keyed on the capabilities that unlock
calls) and the runtime loads those bytes with one prctl.
Nothing here runs in a container's processes.
"""

import errno
import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, temp_name
from ansible_collections.cs695.conductor.plugins.module_utils._policy import (
    IOCTLS_WITH_SYS_RESOURCE, NAMESPACE_FLAGS, PERSONALITIES, SECCOMP_ALLOW, SECCOMP_ALLOW_WITH, SECCOMP_VERSION,
    SOCKET_FAMILIES)

CLONE_FLAGS_ARG = {'s390x': 1}  # the argument of clone that holds its flags (0 elsewhere)
# the ABIs the kernel also runs, allowed the same list as Docker does, less the names given
OTHER_ABIS = {'x86_64': {'X86': ('arch_prctl',), 'X32': ()}}
UNKNOWN = -1  # what libseccomp resolves a name it does not know to (__NR_SCMP_ERROR)
# native numbers above the list's highest, below this one, fail with ENOSYS, not EPERM: a rule each
# (libseccomp has no range of numbers). Linux has about 470; x86_64's from 512 are x32's. Up to 1024
# would cost 650 more instructions and 0.4 ms more per run and exec to load.
NEWER_UP_TO = 512


def library():
    try:
        import seccomp
    except ImportError:
        try:
            import pyseccomp as seccomp
        except ImportError:
            raise ConductorError('libseccomp\'s Python bindings are missing, so the seccomp filter cannot be built: '
                                 'apt-get install python3-seccomp (or pip install pyseccomp), apply the '
                                 'cs695.conductor.conductor_host role, or run with --security-opt seccomp=unconfined')
    return seccomp


def allowed_names(caps):
    """The system calls allowed outright to a process holding caps (capability names)."""
    return set(SECCOMP_ALLOW).union(*(names for cap, names in SECCOMP_ALLOW_WITH.items() if cap in caps))


def compile_filter(caps):
    """The BPF program of the default filter for a process that holds `caps` (capability names): one
    filter for the native ABI and one for the others it runs, merged."""
    import tempfile
    seccomp = library()
    machine = os.uname().machine
    native = abi_filter(seccomp, caps, machine)
    # Newer than the list: ENOSYS, so a libc falls back as it would on an older kernel. libseccomp takes
    # a number for the native ABI only (it translates numbers by name), so a 32-bit call newer than
    # the list fails with EPERM.
    known = set(SECCOMP_ALLOW).union(*SECCOMP_ALLOW_WITH.values(), ['personality', 'socket'])
    highest = max(seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) for name in known)
    for number in range(highest + 1, NEWER_UP_TO):
        native.add_rule(seccomp.ERRNO(errno.ENOSYS), number)
    for abi, lacks in sorted(OTHER_ABIS.get(machine, {}).items()):
        native.merge(abi_filter(seccomp, caps, machine, abi, lacks))
    with tempfile.TemporaryFile() as program:
        native.export_bpf(program)
        program.seek(0)
        return program.read()


def abi_filter(seccomp, caps, machine, abi=None, lacks=()):
    """The allow list, less `lacks`, for the native ABI or for `abi` (a name in seccomp.Arch)."""
    syscall_filter = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(errno.ENOSYS))
    if hasattr(seccomp.Attr, 'CTL_OPTIMIZE'):  # a binary tree: a call costs log(n) comparisons, not n
        syscall_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    if abi:
        syscall_filter.add_arch(getattr(seccomp.Arch, abi))
        syscall_filter.remove_arch(seccomp.Arch.NATIVE)

    def allow(name, *args, **action):
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) != UNKNOWN:  # mseal is not in libseccomp 2.5
            syscall_filter.add_rule(action.get('action', seccomp.ALLOW), name, *args)  # skipped where it lacks

    allowed = allowed_names(caps)
    guarded = () if 'SYS_RESOURCE' in caps else IOCTLS_WITH_SYS_RESOURCE
    for name in sorted(allowed - {'clone', 'clone3'} - set(lacks) - ({'ioctl'} if guarded else set())):
        allow(name)
    for mask, value in every_number_but(guarded):  # ioctl with any command but these (the kernel reads 32 bits)
        allow('ioctl', seccomp.Arg(1, seccomp.MASKED_EQ, mask, value))
    if 'clone' not in allowed:  # a clone without SYS_ADMIN makes no namespace; clone3 hides its flags
        allow('clone', seccomp.Arg(CLONE_FLAGS_ARG.get(machine, 0), seccomp.MASKED_EQ, NAMESPACE_FLAGS, 0))
        allow('clone3', action=seccomp.ERRNO(errno.ENOSYS))  # ENOSYS, as Docker: glibc falls back to clone
    else:
        allow('clone')
        allow('clone3')
    for persona in PERSONALITIES:
        allow('personality', seccomp.Arg(0, seccomp.EQ, persona))
    for family in SOCKET_FAMILIES:  # each equal in all 64 bits: the kernel reads an int, so 1 << 32 | AF_VSOCK
        allow('socket', seccomp.Arg(0, seccomp.EQ, family))  # would pass Docker's "greater than AF_VSOCK"
    return syscall_filter


def every_number_but(excluded, bits=32):
    """(mask, value) pairs that together match every bits-wide number but the excluded ones. A
    libseccomp rule compares an argument once, so "none of these" is written as the prefixes at which a
    number's binary digits part from every excluded one: one pair per digit of each, at most."""
    pairs = []

    def split(bit, mask, prefix, values):
        for digit in (0, 1):
            inside = [v for v in values if v >> bit & 1 == digit]
            here = (mask | 1 << bit, prefix | digit << bit)
            if not inside:
                pairs.append(here)
            elif bit:
                split(bit - 1, here[0], here[1], inside)
    if excluded:
        split(bits - 1, 0, 0, list(excluded))
    return pairs


def filter_for(root, caps):
    """The compiled filter for a process holding caps, from the cache under root (made on first use)."""
    unlocked = sorted(set(caps) & set(SECCOMP_ALLOW_WITH))
    name = 'v%d-%s-%s.bpf' % (SECCOMP_VERSION, os.uname().machine, '+'.join(unlocked) or 'default')
    folder = os.path.join(root, 'seccomp')
    try:
        with open(os.path.join(folder, name), 'rb') as f:
            return f.read()
    except (IOError, OSError) as e:
        if e.errno != errno.ENOENT:
            raise
    program = compile_filter(caps)
    os.makedirs(folder, 0o700, exist_ok=True)
    tmp = os.path.join(folder, temp_name())
    with open(tmp, 'wb') as f:
        f.write(program)
    os.rename(tmp, os.path.join(folder, name))
    return program
