# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What containers use now, as `conductor stats` and `top` show it and conductor_info returns it.

Everything is read from the kernel's files, one file per figure: the container's cgroup (Cgroup.counters),
its veth's counters on the host's side (/proc/net/dev, one file for all of them), /proc. No process is started per container, so a refresh of a
classroom of containers stays quick.
"""

import os
import time

from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._processes import proc_stat
from ansible_collections.cs695.conductor.plugins.module_utils import _runtime


def sample(store, names: 'list[str] | tuple' = ()) -> dict:
    """{name: counters} of the containers named (each must exist), or of every running one: running, status,
    taken (a monotonic time), cpu_ns, memory and memory_limit (bytes; the host's memory when it has none),
    pids and pids_limit (-1: none), io_read and io_write, net_rx and net_tx (bytes, as the container sees them);
    a figure this host keeps no file for is missing."""
    containers, allocations = Containers(store), Allocations(store).load()
    with open('/proc/self/mountinfo') as f:
        mountinfo = f.read()  # once, not once per container's cgroup
    host_memory, links = _host_memory(), _links()
    result = {}
    for name in names or containers.names():
        config = containers.require(name) if names else containers.config(name)
        state = containers.state(name) if config else {'running': False}
        if not state['running']:
            if names:
                result[name] = {'running': False, 'status': state['status']}
            continue
        limits = containers.limits(config)
        row = dict(containers.cgroup(name, mountinfo).counters(), running=True, status=state['status'],
                   taken=time.monotonic(), memory_limit=limits['memory'] or host_memory, pids_limit=limits['pids'])
        host_if = (allocations.get(name) or {}).get('host_if')
        if host_if in links:  # the host's end of the veth: what it receives, the container sent
            row['net_tx'], row['net_rx'] = links[host_if]
        result[name] = row
    return result


def figures(before: dict, after: dict) -> 'list[dict]':
    """One row per container of `after`: its counters, with cpu_percent (100 is one core) over the time
    since `before` (none without an earlier sample of it) and memory_percent."""
    rows = []
    for name, now in sorted(after.items()):
        row = dict(now, name=name)
        then = before.get(name) or {}
        if now['running'] and 'cpu_ns' in now and 'cpu_ns' in then and now['taken'] > then['taken']:
            row['cpu_percent'] = round(max(0, now['cpu_ns'] - then['cpu_ns']) / 1e7 / (now['taken'] - then['taken']), 2)
        if now.get('memory') is not None and now.get('memory_limit'):
            row['memory_percent'] = round(100.0 * now['memory'] / now['memory_limit'], 2)
        row.pop('taken', None)
        rows.append(row)
    return rows


def measure(store, names: 'list[str] | tuple' = (), seconds: float = 0.5) -> 'list[dict]':
    """figures() over `seconds`: what conductor_info and `stats --no-stream` report."""
    first = sample(store, names)
    time.sleep(seconds)
    return figures(first, sample(store, names or [n for n, row in first.items() if row['running']]))


def top(store, name: str) -> 'list[dict]':
    """A running container's processes, as host tools see them: pid (the host's), pid_inside, user, cpu_percent
    (over its life, as ps), rss (bytes) and command, from its cgroup's process list and /proc."""
    containers = Containers(store)
    state = containers.require_running(name)
    with open(containers.cgroup(name).procs()[0]) as f:
        pids = sorted(int(p) for p in f.read().split())
    users = _runtime.user_names('/proc/%d/root' % state['pid'])
    ticks, page = os.sysconf('SC_CLK_TCK'), os.sysconf('SC_PAGE_SIZE')
    with open('/proc/uptime') as f:
        uptime = float(f.read().split()[0])
    rows = []
    for pid in pids:
        fields, status, command = proc_stat(pid), _status(pid), _cmdline(pid)
        if fields is None or status is None:
            continue  # it ended while we read
        uid = int(status['Uid'].split()[0])
        life = max(uptime - int(fields[19]) / ticks, 1e-3)
        rows.append({'pid': pid, 'pid_inside': int(status['NSpid'].split()[-1]), 'user': users.get(uid, str(uid)),
                     'cpu_percent': round(100.0 * (int(fields[11]) + int(fields[12])) / ticks / life, 1),
                     'rss': int(fields[21]) * page, 'command': command or '[%s]' % status.get('Name', '?')})
    return rows


def _links():
    """{interface: (bytes received, bytes sent)} of this network namespace, from /proc/net/dev: one file for every
    veth (/sys/class/net shows the namespace sysfs was mounted in, which need not be ours)."""
    links = {}
    with open('/proc/net/dev') as f:
        for line in f.readlines()[2:]:
            name, dummy, counters = line.partition(':')
            fields = counters.split()
            links[name.strip()] = (int(fields[0]), int(fields[8]))
    return links


def _status(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)
    except (IOError, OSError):
        return None


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().rstrip(b'\0').replace(b'\0', b' ').decode('utf-8', 'replace')
    except (IOError, OSError):
        return ''


def _host_memory():
    with open('/proc/meminfo') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemTotal:'))
