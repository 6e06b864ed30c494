# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The seccomp filter: made from _defaults.SECCOMP_DENY with libseccomp, compiled once to BPF.

libseccomp's Python bindings (python3-seccomp from apt, or pyseccomp from PyPI, which has the same
API) build and compile the filter; its loading costs ~100 ms, so the compiled program is cached in
the state root (seccomp/v<version>-<arch>-<capabilities>.bpf) and the runtime loads those bytes with
one prctl. Nothing here runs in a container's processes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, temp_name
from ansible_collections.cs695.conductor.plugins.module_utils._defaults import (
    DENIED_IOCTLS, NAMESPACE_FLAGS, NEW_SYSCALLS, SECCOMP_DENY, SECCOMP_VERSION)

CLONE_FLAGS_ARG = {'s390x': 1}  # the argument of clone that holds its flags (0 elsewhere)


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


def compile_filter(caps):
    """The BPF program of the default filter for a process that holds `caps` (capability names)."""
    import tempfile
    seccomp = library()
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(errno.ENOSYS))  # 32-bit calls on x86_64
    flags_arg = CLONE_FLAGS_ARG.get(os.uname().machine, 0)
    for name, error, unless in SECCOMP_DENY:
        if unless in caps:
            continue
        if name == 'clone':  # only with a namespace flag: one rule per flag, as a deny list has no "any of"
            conditions = [[seccomp.Arg(flags_arg, seccomp.MASKED_EQ, bit, bit)]
                          for bit in range(32) for bit in [1 << bit] if NAMESPACE_FLAGS & bit]
        elif name == 'ioctl':  # only these commands
            conditions = [[seccomp.Arg(1, seccomp.MASKED_EQ, 0xffffffff, command)] for command in DENIED_IOCTLS]
        else:
            conditions = [[]]
        for args in conditions:
            try:
                syscall_filter.add_rule(seccomp.ERRNO(error), NEW_SYSCALLS.get(name, name), *args)
            except (ValueError, RuntimeError, OSError):
                break  # not a system call of this architecture (vm86 on arm, say)
    with tempfile.TemporaryFile() as program:
        syscall_filter.export_bpf(program)
        program.seek(0)
        return program.read()


def filter_for(root, caps):
    """The compiled filter for a process holding caps, from the cache under root (made on first use)."""
    unlocked = sorted(set(caps) & set(unless for dummy, dummy, unless in SECCOMP_DENY if unless))
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
