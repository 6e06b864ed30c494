# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The last steps before a container's command runs, done by its PID 1 and by exec.

PID 1 is forked from the process that made the namespaces: it mounts /proc for the new PID
namespace, masks the host-global parts of /proc, pivots into the root, cuts the capabilities and
replaces itself with the command. After pivot_root the host's Python library is out of reach: nothing
here may import a module from then on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import signal
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils import _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

# Docker's default capability set (numbers from linux/capability.h).
KEEP_CAPS = {
    0: 'CHOWN', 1: 'DAC_OVERRIDE', 3: 'FOWNER', 4: 'FSETID', 5: 'KILL', 6: 'SETGID', 7: 'SETUID',
    8: 'SETPCAP', 10: 'NET_BIND_SERVICE', 13: 'NET_RAW', 18: 'SYS_CHROOT', 27: 'MKNOD',
    29: 'AUDIT_WRITE', 31: 'SETFCAP',
}
MASKED = ('/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
          '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi')
READ_ONLY = ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')


def drop_capabilities(privileged):
    """Cut the bounding set to Docker's defaults: root's next exec gets no more than that."""
    if privileged:
        return
    with open('/proc/sys/kernel/cap_last_cap') as f:
        last = int(f.read())
    for cap in range(last + 1):
        if cap not in KEEP_CAPS:
            sys_.drop_bounding_capability(cap)


def mask_proc(rootfs):
    """Hide or freeze the parts of /proc that speak for the whole host, as runc does."""
    for path in MASKED:
        target = rootfs + path
        if os.path.isdir(target):
            sys_.mount('tmpfs', target, 'tmpfs', sys_.MS_RDONLY)
        elif os.path.exists(target):
            sys_.mount(rootfs + '/dev/null', target, None, sys_.MS_BIND)
    for path in READ_ONLY:
        target = rootfs + path
        if os.path.exists(target):
            sys_.mount(target, target, None, sys_.MS_BIND | sys_.MS_REC)
            sys_.mount(None, target, None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY)


def write_state(spec, host_pid):
    """Record PID 1 and the supervisor, each with its start time, atomically (temp file + rename)."""
    with open('/proc/self/stat') as f:
        start = int(f.read().rpartition(')')[2].split()[19])
    state = {'pid': host_pid, 'pid_start': start, 'supervisor': spec['supervisor'],
             'supervisor_start': spec['supervisor_start'],
             'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    tmp = spec['state_file'] + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(state, f)
    os.rename(tmp, spec['state_file'])


def pid1(spec):  # pragma: no cover - runs as the container's PID 1
    ready = spec['ready_fd']
    try:
        sys_.set_parent_death_signal(signal.SIGKILL)  # the supervisor gone means the container is
        sys_.unshare(sys_.CLONE_NEWNS)  # a mount namespace of our own: pivot_root must not move the supervisor
        host_pid = int(os.readlink('/proc/self'))  # still the host's /proc: our PID out there
        write_state(spec, host_pid)
        rootfs = spec['rootfs']
        _sandbox.mount_proc(rootfs)
        if not spec['privileged']:
            mask_proc(rootfs)
        _sandbox.pivot_into(rootfs)
        drop_capabilities(spec['privileged'])
        os.write(ready, ('ok %d\n' % host_pid).encode())
        os.close(ready)
    except Exception as e:
        os.write(ready, ('error: container setup failed: %s\n' % e).encode())
        os._exit(125)
    try:
        _sandbox.exec_command(spec['argv'], spec['env'], spec['workdir'])
    except OSError as e:
        sys.stderr.write('conductor: cannot run %s: %s\n' % (spec['argv'][0], e.strerror))
        os._exit(127 if e.errno == 2 else 126)
