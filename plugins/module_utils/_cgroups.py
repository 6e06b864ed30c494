# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Resource limits with cgroups: one group per container, under one `conductor` group.

    cgroup v2 (the unified tree of current Debian and Ubuntu)
        <cgroup2 mount>/conductor/<name>/     memory.max, cpu.max, pids.max
    cgroup v1 and hybrid hosts (a v1 hierarchy per controller)
        <memory hierarchy>/conductor/<name>/  memory.limit_in_bytes
        <cpu hierarchy>/conductor/<name>/     cpu.cfs_quota_us, cpu.cfs_period_us
        <pids hierarchy>/conductor/<name>/    pids.max
        <devices hierarchy>/conductor/<name>/ devices.deny a, then allow the standard nodes only

The hierarchies are read from /proc/self/mountinfo. On v2 no device program is needed: the root is
nodev and MKNOD is dropped. CGROUP_PARENT in the config names another parent group than
`conductor` (on a systemd host, a subtree delegated to Conductor). PID 1 and every exec join the
group (before pivot_root or setns, through its cgroup.procs); the supervisor stays outside it, so
an out-of-memory kill never takes the supervisor.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, parse_size

CONTROLLERS = ('memory', 'cpu', 'pids')
CPU_PERIOD = 100000  # microseconds, as Docker's --cpus uses
MIN_MEMORY = 6 << 20  # as Docker: less cannot run a shell
# the standard nodes of a container's /dev (as in _defaults.DEVICES), and its pts
ALLOWED_DEVICES = ('c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm',
                   'c 136:* rwm')


def parse_memory(value, what='memory'):
    """'512m', '1g', '67108864' or a number of bytes -> bytes; None stays None (no limit)."""
    return parse_size(value, '%s limit' % what, MIN_MEMORY, '6m')


def parse_cpus(value):
    """'1.5' -> 1.5 CPUs; None stays None."""
    if value is None or value == '':
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        cpus = -1
    available = os.cpu_count() or 1
    if not 0.01 <= cpus <= available:
        raise ConductorError('invalid cpus limit %r: give a number of CPUs from 0.01 to %d (this host has %d)'
                             % (value, available, available))
    return cpus


def parse_pids(value):
    """A process limit: a number of at least 1, or -1 for none; None stays None (the default)."""
    if value is None or value == '':
        return None
    try:
        pids = int(str(value))
    except ValueError:
        pids = 0
    if pids < 1 and pids != -1:
        raise ConductorError('invalid pids limit %r: give a number of processes of at least 1, or -1 for no limit'
                             % (value,))
    return pids


def hierarchies(mountinfo=None):
    """('v2', mount point) on a unified host, else ('v1', {controller: mount point})."""
    if mountinfo is None:
        with open('/proc/self/mountinfo') as f:
            mountinfo = f.read()
    v1, v2 = {}, None
    for line in mountinfo.splitlines():
        fields = line.split()
        if ' - ' not in line:
            continue
        after = line.split(' - ', 1)[1].split()
        fstype, options = after[0], after[2].split(',') if len(after) > 2 else []
        if fstype == 'cgroup2' and v2 is None:
            v2 = fields[4]
        elif fstype == 'cgroup':
            for controller in options:
                v1.setdefault(controller, fields[4])
    if any(c in v1 for c in CONTROLLERS):
        return 'v1', v1
    if v2 is not None:
        return 'v2', v2
    return 'v1', v1


class Cgroup:
    """The group of one container, in whichever hierarchy the host has."""

    def __init__(self, name, parent=None, mountinfo=None, container=None):
        self.name, self.parent, self.container = name, (parent or 'conductor').strip('/'), container or name
        self.version, mounts = hierarchies(mountinfo)
        if self.version == 'v2':
            self.root = mounts
            self.groups = {c: os.path.join(mounts, self.parent, name) for c in CONTROLLERS}
        else:
            self.roots = mounts
            self.groups = {c: os.path.join(mounts[c], self.parent, name) for c in CONTROLLERS + ('devices',)
                           if c in mounts}

    def folders(self):
        return sorted(set(self.groups.values()))

    def _require(self, limits, optional=()):
        for controller, value in (('memory', limits.get('memory')), ('cpu', limits.get('cpus')),
                                  ('pids', limits.get('pids'))):
            if value is not None and controller not in self._available() and controller not in optional:
                how = ('enable it in the parent\'s cgroup.subtree_control' if self.version == 'v2' else
                       'mount its v1 hierarchy, or boot with cgroup_enable=%s' % controller)
                raise ConductorError('the %s cgroup controller is not available on this host, so the %s limit cannot '
                                     'be applied: %s' % (controller, controller, how))

    def _available(self):
        if self.version == 'v1':
            return set(self.groups)
        try:
            with open(os.path.join(self.root, 'cgroup.controllers')) as f:
                return set(f.read().split())
        except (IOError, OSError):
            return set()  # no cgroup2 mount in this mount namespace

    def create(self, limits, optional=()):
        """Make the group (and the parent) and apply limits: {'memory': bytes, 'cpus': float, 'pids': n}.
        A controller the host lacks is an error, unless its limit is in `optional` (a default)."""
        self._require(limits, optional)
        if self.version == 'v2':  # only the controllers the host has
            self.groups = {c: folder for c, folder in self.groups.items() if c in self._available()}
        if self.version == 'v2':
            wanted = ' '.join('+' + c for c in sorted(set(CONTROLLERS) & self._available()))
            parent = os.path.join(self.root, self.parent)
            _write(os.path.join(self.root, 'cgroup.subtree_control'), wanted)
            _mkdir(parent)
            _write(os.path.join(parent, 'cgroup.subtree_control'), wanted)
        for folder in self.folders():
            _mkdir(os.path.dirname(folder))
            _mkdir(folder)
        if self.version == 'v1' and 'devices' in self.groups:
            devices = self.groups['devices']
            _write(os.path.join(devices, 'devices.deny'), 'a')
            for rule in ALLOWED_DEVICES:
                _write(os.path.join(devices, 'devices.allow'), rule)
        self.apply(limits, optional=optional)

    def apply(self, limits, check_usage=False, optional=()):
        """Write the limits into the group; with check_usage, refuse one below what is used now."""
        self._require(limits, optional)
        usage = self.usage() if check_usage else {}
        memory, cpus, pids = limits.get('memory'), limits.get('cpus'), limits.get('pids')
        if memory is not None and usage.get('memory', 0) > memory:
            raise ConductorError('the memory limit %d MiB is below what the container %r uses now (%d MiB): give more, '
                                 'or restart it with the new limit'
                                 % (memory >> 20, self.container, usage['memory'] >> 20))
        if pids not in (None, -1) and usage.get('pids', 0) > pids:
            raise ConductorError('the pids limit %d is below the %d processes the container %r runs now: give more'
                                 % (pids, usage['pids'], self.container))
        if 'memory' in self.groups:
            self._set_memory(memory)
        if self.version == 'v2':
            files = {'cpu': ('cpu.max', 'max %d' % CPU_PERIOD if cpus is None else
                             '%d %d' % (int(cpus * CPU_PERIOD), CPU_PERIOD)),
                     'pids': ('pids.max', 'max' if pids in (None, -1) else str(pids))}
        else:
            files = {'cpu': ('cpu.cfs_quota_us', '-1' if cpus is None else str(int(cpus * CPU_PERIOD))),
                     'pids': ('pids.max', 'max' if pids in (None, -1) else str(pids))}
        for controller, (file_name, value) in files.items():
            if controller in self.groups:
                if controller == 'cpu' and self.version == 'v1':
                    _write(os.path.join(self.groups['cpu'], 'cpu.cfs_period_us'), str(CPU_PERIOD))
                _write(os.path.join(self.groups[controller], file_name), value)

    def _set_memory(self, memory):
        """The memory limit, swap included (a memory hog is stopped, not swapped out)."""
        folder, value = self.groups['memory'], 'max' if memory is None else str(memory)
        if self.version == 'v2':
            pairs = [('memory.max', value), ('memory.swap.max', '0' if memory is not None else 'max')]
        else:
            value = '-1' if memory is None else value
            pairs = [('memory.limit_in_bytes', value), ('memory.memsw.limit_in_bytes', value)]
        pairs = [(name, v) for name, v in pairs if name == pairs[0][0] or os.path.exists(os.path.join(folder, name))]
        try:  # v1 wants memory <= memory+swap at every step: lowering goes memory first, raising swap first
            for name, v in pairs:
                _write(os.path.join(folder, name), v)
        except ConductorError:
            for name, v in reversed(pairs):
                _write(os.path.join(folder, name), v)

    def procs(self):
        """The cgroup.procs files a process writes its PID to, to join the container's groups."""
        return [os.path.join(folder, 'cgroup.procs') for folder in self.folders()]

    def usage(self):
        """{'memory': bytes, 'pids': processes} in use now, for what the host has."""
        result = {}
        memory_file = 'memory.current' if self.version == 'v2' else 'memory.usage_in_bytes'
        for key, controller, file_name in (('memory', 'memory', memory_file), ('pids', 'pids', 'pids.current')):
            try:
                with open(os.path.join(self.groups[controller], file_name)) as f:
                    result[key] = int(f.read())
            except (KeyError, IOError, OSError, ValueError):
                pass
        return result

    def remove(self):
        """Remove the groups (their processes are gone by now), and the parent once it is empty."""
        for folder in self.folders():
            try:
                os.rmdir(folder)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise ConductorError('cannot remove the cgroup %s (%s): a process of the container is still in '
                                         'it; see cat %s/cgroup.procs' % (folder, e.strerror, folder))
            try:
                os.rmdir(os.path.dirname(folder))
            except OSError:
                pass  # other containers' groups are in it


def _mkdir(path):
    try:
        os.mkdir(path, 0o755)
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise


def _write(path, value):
    try:
        with open(path, 'w') as f:
            f.write(value)
    except (IOError, OSError) as e:
        raise ConductorError('cannot write %r to %s: %s' % (value, path, e.strerror))
