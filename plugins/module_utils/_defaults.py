# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What a container may do, in one place: its capabilities, the /proc paths it may not read or
write, the device nodes it gets, and its default PATH. --privileged lifts the first two.

The runtime (_runtime.py) applies these; a reader checking Conductor's confinement starts here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Docker's default capability set (numbers from linux/capability.h); every other one is dropped.
KEEP_CAPS = {
    0: 'CHOWN', 1: 'DAC_OVERRIDE', 3: 'FOWNER', 4: 'FSETID', 5: 'KILL', 6: 'SETGID', 7: 'SETUID',
    8: 'SETPCAP', 10: 'NET_BIND_SERVICE', 13: 'NET_RAW', 18: 'SYS_CHROOT', 27: 'MKNOD',
    29: 'AUDIT_WRITE', 31: 'SETFCAP',
}

# runc's masked paths: the parts of /proc that speak for the whole host are hidden ...
MASKED = ('/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
          '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi')
# ... or frozen read-only.
READ_ONLY = ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')

# The nodes of a container's private /dev (a tmpfs; never the host's /dev): name, major, minor.
DEVICES = (('null', 1, 3), ('zero', 1, 5), ('full', 1, 7), ('random', 1, 8), ('urandom', 1, 9), ('tty', 5, 0))

DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
