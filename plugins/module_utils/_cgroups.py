# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
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

    cgroup v2 with systemd as PID 1 (never in systemd's own groups: a subtree it delegates to us)
        <cgroup2 mount>/system.slice/conductor-cgroups.service/<name>/

The hierarchies are read from /proc/self/mountinfo. On v2 no device program is needed: the root is
nodev and MKNOD is dropped. On a v2 host booted with systemd, Conductor writes only inside a unit
systemd delegates to it (Delegate=yes): conductor-cgroups.service, started with systemd-run the first
time a container needs it, whose one process (a `sleep`) moves itself into a `holder` leaf so that
controllers can be enabled below it. CGROUP_PARENT in the config names another parent group (on a
systemd host, one delegated to Conductor: nothing above it is written). PID 1 and every exec join
the group (before pivot_root or setns, through its cgroup.procs); the supervisor stays outside it,
so an out-of-memory kill never takes the supervisor.

All containers and RUN steps together are limited in the parent group: TOTAL_PIDS_LIMIT processes (by
default half of the kernel's pid_max, so the host keeps PIDs of its own however many students start
containers) and, if set, TOTAL_MEMORY_LIMIT. They are written when a group is made and the parent's
differ (a new parent, or a changed conductor.conf); in systemd's unit they are its TasksMax= and
MemoryMax=, given to systemd-run and corrected with systemctl set-property.
"""

import errno
import os
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, locked, mounts, parse_size

CONTROLLERS = ('memory', 'cpu', 'pids')
# groups made only so that `stats` can read their figures and `commit` can freeze the container (v2's cgroup.freeze
# is in every group); a container started before they were made lacks them
COUNTED = {'v1': ('cpuacct', 'blkio', 'freezer'), 'v2': ('io',)}
DEFAULT_PIDS = 2048  # as Podman: a fork bomb stops there (PIDS_LIMIT in the config)
CPU_PERIOD = 100000  # microseconds, as Docker's --cpus uses
MIN_MEMORY = 6 << 20  # as Docker: less cannot run a shell
SYSTEMD_UNIT = 'conductor-cgroups.service'
SYSTEMD_PARENT = 'system.slice/' + SYSTEMD_UNIT
# the unit's properties: its group, ours to divide; the totals (TasksMax=, MemoryMax=) are added from the config,
# never systemd's DefaultTasksMax; if its one process dies (pkill sleep, the OOM killer), only that process is made
# again, and stopping the unit never kills a container (KillMode=process: students' work is in them)
SYSTEMD_PROPERTIES = ('Delegate=yes', 'KillMode=process', 'Restart=always', 'OOMScoreAdjust=-1000')
SYSTEMD_LOCK = '/run/conductor-cgroups.lock'  # one systemd-run at a time, host-wide
# the delegated unit's one process: moves itself (0: the writer) into a leaf, as no process may sit in a
# group whose controllers are enabled for its children, then waits. No $ in it: systemd expands those.
HOLDER = 'mkdir -p {0}/holder && echo 0 > {0}/holder/cgroup.procs && exec sleep infinity'

# the standard nodes of a container's /dev (as in _policy.DEVICES), and its pts
ALLOWED_DEVICES = ('c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm',
                   'c 136:* rwm')


def parse_memory(value: 'str | int | None', what: str = 'memory limit') -> 'int | None':
    """'512m', '1g', '67108864' or a number of bytes -> bytes; None stays None (no limit)."""
    return parse_size(value, what, MIN_MEMORY, '6m')


def parse_cpus(value: 'str | float | None') -> 'float | None':
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


def parse_pids(value: 'str | int | None') -> 'int | None':
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


def default_pids(config: dict) -> int:
    """The process limit of a container that sets none, and of a build's RUN steps: PIDS_LIMIT, else 2048."""
    return parse_pids(config.get('PIDS_LIMIT') or DEFAULT_PIDS)


def total_limits(config: dict) -> dict:
    """What all containers and RUN steps together may use (the parent group's limits): {'pids': TOTAL_PIDS_LIMIT,
    else half of the kernel's pid_max; -1 for none, 'memory': TOTAL_MEMORY_LIMIT in bytes, else None}."""
    try:
        pids = parse_pids(config.get('TOTAL_PIDS_LIMIT'))
    except ConductorError as e:
        raise ConductorError('TOTAL_PIDS_LIMIT in the config: %s' % e)
    if pids is None:
        with open('/proc/sys/kernel/pid_max') as f:
            pids = max(1, int(f.read()) // 2)
    memory = parse_memory(config.get('TOTAL_MEMORY_LIMIT'), 'TOTAL_MEMORY_LIMIT in the config')
    if memory is not None:
        memory -= memory % os.sysconf('SC_PAGE_SIZE')  # as the kernel keeps it: compared at every start
    return {'pids': pids, 'memory': memory}


def hierarchies(mountinfo: 'str | None' = None) -> 'tuple[str, str | dict]':
    """('v2', mount point) on a unified host, else ('v1', {controller: mount point})."""
    v1, v2 = {}, None
    for point, fstype, dummy, options in mounts(mountinfo):
        if fstype == 'cgroup2' and v2 is None:
            v2 = point
        elif fstype == 'cgroup':
            for controller in options:
                v1.setdefault(controller, point)
    if any(c in v1 for c in CONTROLLERS):
        return 'v1', v1
    if v2 is not None:
        return 'v2', v2
    return 'v1', v1


_quick = {'until': 0.0, 'fd': None, 'hooked': False}


def favors_dynmods(mountinfo: str) -> bool:
    """Whether a cgroup hierarchy is mounted with favordynmods: the kernel then keeps its migration lock
    awake itself, and keep_migrations_quick has nothing to do."""
    return any(fstype in ('cgroup', 'cgroup2') and 'favordynmods' in options
               for dummy, fstype, dummy, options in mounts(mountinfo))


def keep_migrations_quick(seconds: float = 0.5) -> None:
    """For the next seconds, keep moving a process into a cgroup as quick as the kernel allows.

    On v2, the first write to any cgroup.procs after a quiet spell waits out an RCU grace period, 6 to 20
    ms: the kernel takes cgroup_threadgroup_rwsem for writing, and its rcu_sync falls back asleep some 10
    ms after the last writer. A container's PID 1 and every exec pay that on the way in. So a thread of
    ours moves this process into the group it is already in (nothing changes) every 4 ms, from before the
    fork until it is done: the container's join then takes 0.5 ms. On v1 it does nothing: a process joins
    through tasks there, with no such lock (Cgroup.joins). Nor where cgroup2 is mounted with favordynmods,
    which never falls asleep. Anything failing here only costs the wait.
    migrations_done() stops it early. A forked child closes the fd at once: it is never a container's."""
    import _thread  # built in and loaded already; threading would cost this command 3 ms to import
    import time
    running = _quick['until'] > time.time()
    _quick['until'] = time.time() + seconds
    if running:
        return
    try:
        with open('/proc/self/mountinfo') as f:
            mountinfo = f.read()
        version, found = hierarchies(mountinfo)
        if version == 'v1' or favors_dynmods(mountinfo):
            return
        with open('/proc/self/cgroup') as f:
            ours = [line.rstrip('\n').split(':', 2) for line in f]
        if version == 'v2':
            procs = [found + path for number, controllers, path in ours if number == '0']
        else:
            procs = [found[c] + path for number, controllers, path in ours for c in controllers.split(',')
                     if c in found]
        fd = os.open(os.path.join(procs[0], 'cgroup.procs'), os.O_WRONLY | os.O_CLOEXEC)
    except (IOError, OSError, IndexError):
        return
    if not _quick['hooked']:
        os.register_at_fork(after_in_child=_forget_migrations)
        _quick['hooked'] = True
    _quick['fd'] = fd

    def keep_awake():
        try:
            while time.time() < _quick['until']:
                os.write(fd, b'0')  # 0: this process, into the group it is in
                time.sleep(0.004)
        except OSError:
            pass
        finally:
            if _quick['fd'] == fd:
                _quick['fd'] = None
            os.close(fd)
    _thread.start_new_thread(keep_awake, ())  # as a daemon thread: never waited for at exit


def migrations_done() -> None:
    """The container's processes have joined: stop keep_migrations_quick's moves."""
    _quick['until'] = 0.0


def _forget_migrations():  # pragma: no cover - in a forked child
    if _quick['fd'] is not None:
        try:
            os.close(_quick['fd'])
        except OSError:
            pass
    _quick['fd'], _quick['until'] = None, 0.0


def systemd_booted() -> bool:
    """True when systemd is PID 1 (sd_booted's test)."""
    return os.path.isdir('/run/systemd/system')


class Cgroup:
    """The group of one container, in whichever hierarchy the host has. delegated: write nothing above
    the parent (systemd's); None asks whether systemd is PID 1."""

    def __init__(self, name, parent=None, mountinfo=None, container=None, delegated=None):
        self.version, found = hierarchies(mountinfo)
        self.delegated = self.version == 'v2' and (systemd_booted() if delegated is None else delegated)
        if self.delegated and parent is None and os.path.isdir(os.path.join(found, 'conductor', name)):
            self.delegated = False  # started by a Conductor from before delegation: its group stays where it is
        default = SYSTEMD_PARENT if self.delegated else 'conductor'
        self.name, self.parent, self.container = name, (parent or default).strip('/'), container or name
        if self.version == 'v2':
            self.root = found
            self.groups = {c: os.path.join(found, self.parent, name) for c in CONTROLLERS}
        else:
            self.roots = found
            self.groups = {c: os.path.join(found[c], self.parent, name) for c in CONTROLLERS + ('devices', 'blkio', 'freezer')
                           if c in found}
            if 'cpuacct' in found:  # mounted with cpu (cpu,cpuacct) on every distribution: the same folder
                self.groups.setdefault('cpuacct', os.path.join(found['cpuacct'], self.parent, name))

    def folders(self) -> 'list[str]':
        if self.version == 'v2':  # one group, whatever controllers it has
            return [os.path.join(self.root, self.parent, self.name)]
        return sorted(set(self.groups.values()))

    def _require(self, limits, optional=()):
        for controller, value in (('memory', limits.get('memory')), ('cpu', limits.get('cpus')),
                                  ('pids', limits.get('pids'))):
            if value is not None and controller not in self._available() and controller not in optional:
                how = ('ask systemd to delegate it to %s (Delegate=yes)' % self._owned()[0] if self.delegated else
                       'enable it in the parent\'s cgroup.subtree_control' if self.version == 'v2' else
                       'mount its v1 hierarchy, or boot with cgroup_enable=%s' % controller)
                raise ConductorError('the %s cgroup controller is not available on this host, so the %s limit cannot '
                                     'be applied: %s' % (controller, controller, how))

    def siblings(self) -> 'list[str]':
        """The names of the groups beside this one (in the pids hierarchy, else its first)."""
        first = self.groups.get('pids') or (self.folders() or [None])[0]
        parent = os.path.dirname(first) if first else None
        try:
            return [entry for entry in os.listdir(parent) if os.path.isdir(os.path.join(parent, entry))]
        except (TypeError, OSError):
            return []

    def _owned(self):
        """v2: the groups whose cgroup.subtree_control is ours to write, top first: the delegated parent
        alone, or the root and each group down to the parent."""
        if self.delegated:
            return [os.path.join(self.root, self.parent)]
        parts = self.parent.split('/')
        return [self.root] + [os.path.join(self.root, *parts[:n]) for n in range(1, len(parts) + 1)]

    def _available(self):
        if self.version == 'v1':
            return set(self.groups)
        try:
            with open(os.path.join(self._owned()[0], 'cgroup.controllers')) as f:
                return set(f.read().split())
        except (IOError, OSError):
            return set()  # no cgroup2 mount in this mount namespace, or no delegated group yet

    def _delegate(self, totals=None):
        """On a systemd host, start the unit systemd delegates our groups to, unless it runs already; then
        wait until its own group holds no process (the holder has moved into its leaf)."""
        if not self.delegated or self.parent != SYSTEMD_PARENT:
            return
        unit = self._owned()[0]
        if os.path.isdir(unit) and not _read(os.path.join(unit, 'cgroup.procs')).strip():
            return
        import subprocess
        import time
        with locked(SYSTEMD_LOCK):
            if not os.path.isdir(unit):
                argv = ['systemd-run', '--quiet', '--collect', '--unit', SYSTEMD_UNIT, '--description',
                        'Conductor: the cgroup subtree systemd delegates to containers']
                for assignment in SYSTEMD_PROPERTIES + _unit_properties(totals):
                    argv += ['--property', assignment]
                try:
                    subprocess.check_output(argv + ['/bin/sh', '-c', HOLDER.format(unit)], stderr=subprocess.STDOUT)
                except (OSError, subprocess.CalledProcessError) as e:
                    output = getattr(e, 'output', b'') or b''
                    raise ConductorError('cannot start %s, the cgroup subtree systemd delegates to Conductor (%s): see '
                                         'systemctl status %s, or name a delegated group in CGROUP_PARENT in '
                                         'conductor.conf' % (SYSTEMD_UNIT, output.decode('utf-8', 'replace').strip()
                                                             or e, SYSTEMD_UNIT))
            deadline = time.time() + 5
            while not os.path.isdir(unit) or _read(os.path.join(unit, 'cgroup.procs')).strip():
                if time.time() > deadline:
                    raise ConductorError('%s started, but its process never moved into %s/holder: see systemctl '
                                         'status %s' % (SYSTEMD_UNIT, unit, SYSTEMD_UNIT))
                time.sleep(0.01)

    def create(self, limits: dict, optional: 'list | tuple' = (), totals: 'dict | None' = None) -> None:
        """Make the group (and the parent) and apply limits: {'memory': bytes, 'cpus': float, 'pids': n}.
        A controller the host lacks is an error, unless its limit is in `optional` (a default). totals: the
        parent's limits (total_limits: all containers together), set where they differ; None leaves them."""
        if self.version == 'v2':
            self._delegate(totals)
        self._require(limits, optional)
        if self.version == 'v2':  # only the controllers the host has, enabled from the first group we own down
            available = self._available()
            self.groups = {c: folder for c, folder in self.groups.items() if c in available}
            wanted = ' '.join('+' + c for c in sorted(set(CONTROLLERS + COUNTED['v2']) & available))
            for folder in self._owned():
                if folder != self.root:
                    _mkdir(folder)
                _write(os.path.join(folder, 'cgroup.subtree_control'), wanted)
        counted = [self.groups[c] for c in COUNTED['v1'] if self.version == 'v1' and c in self.groups]
        for folder in self.folders():
            if folder in counted:  # the parent CGROUP_PARENT names was made in the hierarchies that limit
                os.makedirs(os.path.dirname(folder), exist_ok=True)
            else:
                _mkdir(os.path.dirname(folder))
        if totals:
            self._limit_parent(totals)
        for folder in self.folders():
            _mkdir(folder)
        if self.version == 'v1' and 'devices' in self.groups:
            devices = self.groups['devices']
            _write(os.path.join(devices, 'devices.deny'), 'a')
            for rule in ALLOWED_DEVICES:
                _write(os.path.join(devices, 'devices.allow'), rule)
        self.apply(limits, optional=optional)

    def apply(self, limits: dict, check_usage: bool = False, optional: 'list | tuple' = ()) -> None:
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
        _set_memory(self.version, self.groups['memory'], memory)

    def _limit_parent(self, totals):
        """The totals in the parent group, written only where they differ from what it has (one read each when
        they are right). In systemd's unit they are its properties: systemd would reset a file written there."""
        wanted = {'pids': _kernel_value(totals.get('pids')), 'memory': _kernel_value(totals.get('memory'))}
        files = {'pids': 'pids.max', 'memory': 'memory.max' if self.version == 'v2' else 'memory.limit_in_bytes'}
        parents = {c: os.path.dirname(folder) for c, folder in self.groups.items() if c in wanted}
        differs = [c for c, folder in parents.items() if os.path.exists(os.path.join(folder, files[c]))
                   and _kernel_value(_read(os.path.join(folder, files[c])).strip()) != wanted[c]]
        if not differs:
            return
        if self.delegated:
            if self.parent == SYSTEMD_PARENT:
                _systemctl('set-property', '--runtime', SYSTEMD_UNIT, *_unit_properties(totals))
            return  # a group an administrator delegated: its TasksMax= and MemoryMax= are theirs to set
        if 'pids' in differs:
            _write(os.path.join(parents['pids'], 'pids.max'), wanted['pids'])
        if 'memory' in differs:
            _set_memory(self.version, parents['memory'], totals.get('memory'))

    def procs(self) -> 'list[str]':
        """The cgroup.procs files a process writes its PID to, to join the container's groups (but a counting
        group that a container started before it was made lacks)."""
        counted = [self.groups[c] for c in COUNTED['v1'] if self.version == 'v1' and c in self.groups]
        return [os.path.join(folder, 'cgroup.procs') for folder in self.folders()
                if folder not in counted or os.path.isdir(folder)]

    def joins(self) -> 'list[str]':
        """The files a forked, single-threaded process writes 0 (itself) to, to join the container's groups: on v1
        each group's tasks, for a thread that moves itself takes no global lock (Linux 6.0 on): 0.03 ms, where a
        write to cgroup.procs waits out an RCU grace period first, 6 to 20 ms here; on v2 cgroup.procs, its way in."""
        files = self.procs()
        return [os.path.join(os.path.dirname(path), 'tasks') for path in files] if self.version == 'v1' else files

    def _freezer(self):
        """(the file that freezes the group, (frozen, thawed), (the file that says so, its line when frozen))."""
        if self.version == 'v2':
            folder = self.folders()[0]
            return os.path.join(folder, 'cgroup.freeze'), ('1', '0'), (os.path.join(folder, 'cgroup.events'), 'frozen 1')
        path = os.path.join(self.groups.get('freezer', '/nonexistent'), 'freezer.state')
        return path, ('FROZEN', 'THAWED'), (path, 'FROZEN')

    def frozen(self):
        """Every process of the group stopped where it is (the freezer), and thawed again after: a consistent
        copy of what the container wrote, and nothing it runs sees a signal. SIGTERM and SIGHUP (a closed ssh
        session) end the block and thaw it; after a SIGKILL, stop and delete thaw it (thaw)."""
        import contextlib  # here: its import costs every command 2 ms, and commit alone freezes
        return contextlib.contextmanager(self._frozen)()

    def _frozen(self):
        import signal
        path, states, done = self._freezer()
        if not os.path.exists(path):
            raise ConductorError('container %r has no freezer group (it was started by an older Conductor): restart it '
                                 '(conductor stop --keep, then start), and try again' % self.container)

        def interrupted(signum, frame):
            raise KeyboardInterrupt()
        try:
            handlers = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
        except ValueError:  # not the main thread: no handlers of ours
            handlers = {}
        try:
            _write(path, states[0])
            deadline = time.time() + 10
            while done[1] not in _read(done[0]).splitlines():
                if time.time() > deadline:
                    raise ConductorError('container %r did not freeze within 10 s: try again' % self.container)
                time.sleep(0.01)
            yield
        finally:
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
            try:  # a second signal must not skip the thaw
                _write(path, states[1])
            finally:
                for number, handler in handlers.items():
                    signal.signal(number, handler)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def thaw(self) -> None:
        """Let the group run again if a commit killed mid-copy left it frozen: stop must reach its processes."""
        path, states, dummy = self._freezer()
        if os.path.exists(path):
            try:
                _write(path, states[1])
            except ConductorError:
                pass  # the group is going

    def counters(self) -> dict:
        """What `stats` shows, one file per figure: usage() and CPU time (ns), bytes read and written; a figure
        the host keeps no file for is missing."""
        result = self.usage()
        if self.version == 'v2':
            cpu, io = _read_or_none(self.folders()[0], 'cpu.stat'), _read_or_none(self.folders()[0], 'io.stat')
            cpu_us = [int(line.split()[1]) for line in (cpu or '').splitlines() if line.startswith('usage_usec ')]
            if cpu_us:
                result['cpu_ns'] = cpu_us[0] * 1000
            pairs = [word.split('=') for line in (io or '').splitlines() for word in line.split()[1:]]
            written, read = (sum(int(v) for k, v in pairs if k == key) for key in ('wbytes', 'rbytes'))
        else:
            cpu = _read_or_none(self.groups.get('cpuacct'), 'cpuacct.usage')
            if cpu:
                result['cpu_ns'] = int(cpu)
            io = _read_or_none(self.groups.get('blkio'), 'blkio.throttle.io_service_bytes_recursive')
            rows = [line.split() for line in (io or '').splitlines() if len(line.split()) == 3]
            written, read = (sum(int(v) for dummy, k, v in rows if k == key) for key in ('Write', 'Read'))
        if io is not None:
            result.update(io_read=read, io_write=written)
        return result

    def usage(self) -> dict:
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

    def remove(self) -> None:
        """Remove the groups (their processes are gone by now), and the parent once it is empty."""
        for folder in self.folders():
            try:
                os.rmdir(folder)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise ConductorError('cannot remove the cgroup %s (%s): a process of the container is still in '
                                         'it; see cat %s/cgroup.procs' % (folder, e.strerror, folder))
            try:
                if not self.delegated:  # a delegated parent is systemd's to remove
                    os.rmdir(os.path.dirname(folder))
            except OSError:
                pass  # other containers' groups are in it


def _set_memory(version, folder, memory):
    """A group's memory limit, swap included (a memory hog is stopped, not swapped out)."""
    value = 'max' if memory is None else str(memory)
    if version == 'v2':
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


def _unit_properties(totals):
    """The totals as systemd unit properties (none: systemd's defaults)."""
    if not totals:
        return ()
    pids, memory = totals.get('pids'), totals.get('memory')
    return ('TasksMax=%s' % ('infinity' if pids in (None, -1) else pids),
            'MemoryMax=%s' % ('infinity' if memory is None else memory),
            'MemorySwapMax=%s' % ('infinity' if memory is None else 0))


def _kernel_value(value):
    """A limit as the kernel shows it, for comparing: a number as text, or 'max' for none (v1's huge number)."""
    if value is None or str(value) in ('max', '-1'):
        return 'max'
    try:
        return 'max' if int(value) >= 1 << 62 else str(int(value))
    except ValueError:
        return str(value)


def _systemctl(*argv):
    import subprocess
    try:
        subprocess.check_output(('systemctl',) + argv, stderr=subprocess.STDOUT)
    except (OSError, subprocess.CalledProcessError) as e:
        output = (getattr(e, 'output', b'') or b'').decode('utf-8', 'replace').strip()
        raise ConductorError('cannot set the limits of all containers on %s (systemctl %s: %s): see systemctl status %s'
                             % (SYSTEMD_UNIT, ' '.join(argv), output or e, SYSTEMD_UNIT))


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return ''


def _read_or_none(folder, name):
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read()
    except (TypeError, IOError, OSError):  # TypeError: no such group on this host
        return None


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
