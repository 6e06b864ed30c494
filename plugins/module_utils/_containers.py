# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Containers and their lifecycle: create, start, inspect, update, stop (keeps) and delete.

A running container is its command, PID 1 of a new PID namespace, and one small supervisor:

    lua5.3 -e ...          the supervisor (about 0.33 MiB): reaps PID 1, writes its exit code
     └ PID 1               forked from the CLI or module: /proc, pivot_root, capabilities, exec

What runs inside those processes is in _runtime.py, step by step; this file is the caller's side:
the records, forking, waiting for "ready", and reconciling the records with the kernel. Every mount
lives only in the container's mount namespaces, so they vanish with its last process.

    containers/<name>/config.json   its record (_records.Config): every option, and what it runs with
    containers/<name>/state.json    written by PID 1: host PID and start time, the supervisor's too
    containers/<name>/exitcode      written by the supervisor when PID 1 ends
    containers/<name>/log           stdout and stderr of a detached container and of exec -d
    containers/<name>/upper, work   the container's own overlay layer; rootfs/ is the mount point
    containers/<name>/hosts, hostname, resolv.conf   bind-mounted over the image's files

The network is not this file's business: start and remove of a networked container go through
_operations.py, which reconnects or tears down the network too. exec and the health check are in _exec.py,
the filling of volumes in _volumes.py.
"""

import os
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    DEFAULT_ROOT, ConductorError, check_name, parse_size, env_dict, env_list, read_json, remove_tree, temp_name, tree_size,
    utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations, resolv_conf
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import parse_signal
from ansible_collections.cs695.conductor.plugins.module_utils._policy import capability_set
from ansible_collections.cs695.conductor.plugins.module_utils._processes import alive, kill_tree, terminate, wait_gone
from ansible_collections.cs695.conductor.plugins.module_utils._records import Config
from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups, _options, _quota, _records, _runtime, _seccomp, _volumes

DEFAULT_LOG_MAX = '10m'  # as Docker's json-file driver with max-size 10m, max-file 2
DEFAULT_STOP_TIMEOUT = 10  # seconds, as Docker's
HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n'


class Containers:
    def __init__(self, store):
        self.store = store

    def dir(self, name: str, *parts: str) -> str:
        return self.store.path('containers', check_name('container', name), *parts)

    # -- reading -------------------------------------------------------------------------------
    def config(self, name: str) -> 'Config | None':
        """The container's record, upgraded to this version's form (_records.upgrade); None if there is none."""
        return _records.read(self.dir(name, 'config.json'))

    def require(self, name: str) -> Config:
        config = self.config(name)
        if config is None and not os.path.isdir(self.store.root):
            raise ConductorError('no container named %r: the state root %s does not exist (check --root, '
                                 'CONDUCTOR_ROOT or ROOT in conductor.conf)' % (name, self.store.root))
        if config is None:
            raise ConductorError('no container named %r: see conductor ps' % name)
        return config

    def names(self) -> 'list[str]':
        folder = self.store.path('containers')
        return sorted(n for n in os.listdir(folder) if not n.startswith('.')) if os.path.isdir(folder) else []

    def configs(self) -> 'list[Config]':
        """Every container's config: what rmi and rmcache must keep the base and layers of."""
        return [c for c in (self.config(n) for n in self.names()) if c]

    def state(self, name: str) -> dict:
        """Reconcile what the files say with what the kernel says: running, exited (code) or created."""
        state = read_json(self.dir(name, 'state.json')) or {}
        code = self._exit_code(name)
        if state and alive(state['pid'], state['pid_start']):
            # started by a Conductor before the hardening: no seccomp, all capability sets, until restarted
            status = 'running' if state.get('confined') else 'running (unconfined)'
            return dict(state, status=status, running=True, exit_code=None)
        if state and code is None and alive(state['supervisor'], state['supervisor_start']):
            code = self._wait_exit_code(name, 2.0)  # PID 1 just ended; the supervisor is writing
        if state:
            status = 'exited (%s)' % ('?' if code is None else code)
            return dict(state, status=status, running=False, exit_code=code)
        return {'status': 'created', 'running': False, 'exit_code': None, 'pid': None}

    def require_running(self, name: str) -> dict:
        """The state of a running container, or the one error every command gives when it is not."""
        self.require(name)
        state = self.state(name)
        if not state['running']:
            raise ConductorError('container %r is not running (%s): start it first (conductor start %s)'
                                 % (name, state['status'], name))
        return state

    def _exit_code(self, name):
        try:
            with open(self.dir(name, 'exitcode')) as f:
                return int(f.read())
        except (IOError, OSError, ValueError):
            return None

    def _wait_exit_code(self, name, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            code = self._exit_code(name)
            if code is not None:
                return code
            time.sleep(0.01)
        return None

    def inspect(self, name: str) -> dict:
        config = self.require(name)
        state = self.state(name)
        network = Allocations(self.store).load().get(name)
        return {'name': name, 'config': config.as_dict(), 'state': state, 'size': self.size(name), 'network': network,
                'restarts': self.restarts(name),
                'limits': self.limits(config), 'usage': self.cgroup(name).usage() if state['running'] else {}}

    # -- resources -------------------------------------------------------------------------------
    def cgroup(self, name: str, mountinfo: 'str | None' = None) -> _cgroups.Cgroup:
        """The container's cgroup: <parent>/<name> under the default root, <name>-<crc of root> elsewhere,
        so two state roots on one host never share a group. mountinfo: read once for many containers."""
        import zlib
        group = name if self.store.root == DEFAULT_ROOT else '%s-%08x' % (name, zlib.crc32(self.store.root.encode()))
        return _cgroups.Cgroup(group, self.store.config.get('CGROUP_PARENT'), mountinfo=mountinfo, container=name)

    def limits(self, config: Config) -> dict:
        """The limits the container runs with: its own, else the config's defaults (PIDS_LIMIT, else 2048;
        MEMORY_LIMIT, else none)."""
        pids, memory = config.pids_limit, config.memory
        if pids is None:
            pids = _cgroups.default_pids(self.store.config)
        if memory is None:
            memory = _cgroups.parse_memory(self.store.config.get('MEMORY_LIMIT'), 'MEMORY_LIMIT in the config')
        return {'memory': memory, 'cpus': config.cpus, 'pids': pids, 'storage_size': config.storage_size}

    def update(self, name: str, **limits) -> Config:
        """docker update: new values of the options that change in place (_options.IN_PLACE: the limits; each
        given, None for none) in the config and, on a running container, in its cgroup at once; a new storage
        size at once too, if the container was made with one."""
        limits = {key: _options.BY_NAME[key].check(limits.get(key)) for key in _options.IN_PLACE}
        with self.store.lock(check_name('container', name)):
            old = self.require(name)
            config = old.replace(**limits)
            resize = config.storage_size != old.storage_size
            if resize:  # every check before anything changes
                if not old.storage_project:
                    raise ConductorError('container %r was made without a storage size, so its files count against '
                                         'no project: remove it and run it again with --storage-size' % name)
                _quota.check_size(self.dir(name), old.storage_project, config.storage_size)
            if self.state(name)['running']:
                self.cgroup(name).apply(self.limits(config), check_usage=True)  # checks its usage, then writes
            if resize:
                _quota.set_limit(self.dir(name), old.storage_project, config.storage_size)
            config.write(self.dir(name, 'config.json'))
        return config

    def set_stack(self, name: str, stack: 'str | None') -> Config:
        """Record in config.json that a container made outside conductor_stack now belongs to `stack`."""
        with self.store.lock(check_name('container', name)):
            config = self.require(name).replace(stack=stack)
            config.write(self.dir(name, 'config.json'))
        return config

    def size(self, name: str) -> int:
        """Bytes in the container's own layer: what it wrote, which a recreate would discard."""
        return tree_size(self.dir(name, 'upper'))

    def list(self) -> 'list[dict]':
        if os.path.isdir(self.store.path('containers')):
            with self.store.lock():
                self.store.sweep('containers')  # what a killed create or stop left
        allocations, peers = Allocations(self.store).load(), Allocations(self.store).peers()
        result = []
        for name in self.names():
            try:
                config = self.config(name)
            except ValueError:  # cut short by a crash: shown, so it can be looked at, never a traceback
                result.append({'name': name, 'image': '?', 'status': 'damaged (config.json cannot be read)',
                               'pid': None, 'address': '', 'created': '?', 'running': False, 'exit_code': None,
                               'restart_policy': '?', 'restarts': 0, 'ports': [], 'peers': [], 'labels': {}})
                continue
            if config:
                state, network = self.state(name), allocations.get(name) or {}
                result.append({'name': name, 'image': config.image, 'status': state['status'],
                               'pid': state.get('pid'), 'address': network.get('container_ip', ''),
                               'ports': network.get('ports', []),
                               'created': config.created, 'running': state['running'],
                               'exit_code': state['exit_code'], 'restart_policy': config.restart_policy,
                               'restarts': self.restarts(name)['count'], 'labels': config.run_labels,
                               'peers': sorted(other for pair in peers if name in pair for other in pair if other != name)})
        return result

    # -- create and start ----------------------------------------------------------------------
    def create(self, name: str, spec: dict, adopt: 'dict | None' = None, stack: 'str | None' = None,
               auto_remove: bool = False) -> Config:
        """Make the container's folder and config, and the volumes it names; nothing runs yet. spec: its options
        (_options.NAMES: as a task or the CLI gives them, or as `_options.check` returned them), all checked
        first. adopt: {target: anonymous volume} of the container this one replaces, mounted again at the same
        targets. stack: the conductor_stack it belongs to, kept in config.json (None: none). auto_remove: run
        --rm -d, deleted when its command ends (started detached, its supervisor then runs `conductor _restart`)."""
        check_name('container', name)
        spec = _options.check(spec)
        image, command, env, entrypoint, user = spec['image'], spec['command'], spec['env'], spec['entrypoint'], spec['user']
        manifest = self.store.require_image(image)
        if spec['storage_size']:
            _quota.require(self.store.path('containers'))
        image_config = manifest.get('config', {})
        binds = _volumes.with_image_volumes(spec['volumes'] + spec['mounts'], image_config.get('volumes', []))
        environment = env_dict(image_config.get('env'))
        for entries in spec['env_file'].values():  # as Docker's: the image's, then the env files', then -e
            environment.update(env_dict(entries))
        environment.update(env_dict(env))
        config = Config(
            **spec, version=_records.VERSION, name=name, image_id=manifest['id'], base=manifest['base'],
            layers=manifest['layers'], storage_project=None, stack=stack, created=utc_now(), binds=binds,
            auto_remove=auto_remove,
            # what it runs with: the options given, else what the image says
            run_as=user or image_config.get('user'),
            run_workdir=spec['workdir'] or image_config.get('workdir') or '/',
            run_stop_signal=parse_signal(spec['stop_signal']) if spec['stop_signal'] else image_config.get('stop_signal') or 15,
            run_labels=dict(image_config.get('labels') or {}, **spec['labels']),
            run_healthcheck=_health(spec['healthcheck'] or image_config.get('healthcheck')),
            exposed=image_config.get('exposed') or [],
            argv=_argv(command, entrypoint, image_config), environment=env_list(environment))
        with self.store.lock():
            os.makedirs(self.store.path('containers'), 0o700, exist_ok=True)
            self.store.sweep('containers')
            folder = self.dir(name)
            if os.path.exists(folder):
                raise ConductorError('a container named %r already exists: stop it first (conductor stop %s) '
                                     'or choose another name' % (name, name))
            tmp = self.store.path('containers', temp_name(name))
            os.mkdir(tmp, 0o700)  # root's alone: nobody else may reach what the container makes
            for sub in ('upper', 'work', 'rootfs'):
                os.mkdir(os.path.join(tmp, sub))
                os.chmod(os.path.join(tmp, sub), 0o755)  # upper's mode is the mode of the container's /
            if spec['storage_size']:
                try:
                    config.storage_project = _quota.assign(tmp, [os.path.join(tmp, 'upper'), os.path.join(tmp, 'work')])
                    _quota.set_limit(tmp, config.storage_project, spec['storage_size'])
                except OSError as e:
                    remove_tree(tmp)
                    raise ConductorError('giving container %r its storage size: %s' % (name, e))
            host = spec['hostname'] or name
            hosts = HOSTS % host + ''.join('%s\t%s\n' % (address, name) for name, address in spec['etc_hosts'].items())
            for file_name, content in (('hosts', hosts), ('hostname', host + '\n'),
                                       ('resolv.conf', resolv_conf(self.store.config, search=spec['dns_search']))):
                with open(os.path.join(tmp, file_name), 'w') as f:
                    f.write(content)
            open(os.path.join(tmp, 'log'), 'a').close()
            for mount in binds:  # named volumes on first use; an anonymous one per target, for this container
                if mount['type'] == 'volume':
                    source = mount['source'] or (adopt or {}).get(mount['target'])
                    mount['source'] = Volumes(self.store).create(source, None if source else name)['name']
            config.write(os.path.join(tmp, 'config.json'))
            os.rename(tmp, folder)
        return config

    def start(self, name: str, stdio: 'tuple | None' = None, attach=None, started=None,
              restarting: 'dict | None' = None) -> int:
        """Start the container's PID 1 (_runtime.launch). stdio=None runs it detached, its output
        going to the log. started() is called once it runs, before attach and before its command runs (PID 1
        waits on a pipe): _operations.start gives it its network there, so the command never runs without it.

        For an attached run, stdio is the (stdin, stdout, stderr) fds, or with attach a pty of the
        container's own is made and attach(master) is called once it runs; the supervisor is then a
        child of this process: wait() it. Returns the supervisor's PID.

        The container's lock is held until it runs (not while attached): of two concurrent starts,
        one starts it and the other finds it running.

        restarting: the restart record ({count, delay}) when its restart policy starts it again; then a
        container that stop ended (the `stopping` mark) stays down. A start by hand resets the record.
        """
        with self.store.lock(check_name('container', name)):
            if restarting is not None and self.stopping(name):
                raise ConductorError('container %r was stopped: its restart policy does not apply' % name)
            pid, master = self._finish(self._launch(name, stdio, attach is not None, started, restarting))
        if master is not None:
            attach(master)
        return pid

    def start_many(self, names: 'list[str]', window: int = 4) -> 'dict[str, str]':
        """Start containers detached, as start(name) does with no network to wait for, up to `window` of them
        setting up at once: each one's PID 1 makes its mounts while this process prepares the next (a classroom's
        stack on two cores). Their locks are taken in sorted order, as rm takes them: never a lock waited for while
        holding a later one. Every one is tried; returns {name: why it did not start}."""
        pending, errors = [], {}

        def finish():
            name, lock, launched = pending.pop(0)
            try:
                self._finish(launched, last=not pending)
            except ConductorError as e:
                errors[name] = str(e)
            finally:
                lock.__exit__(None, None, None)
        try:
            for name in sorted(set(names)):
                try:
                    lock = self.store.lock(check_name('container', name))
                except ConductorError as e:
                    errors[name] = str(e)
                    continue
                lock.__enter__()
                try:
                    pending.append((name, lock, self._launch(name, None, False, None)))
                except BaseException as e:  # noqa: B036 - the lock goes back whatever happened
                    lock.__exit__(None, None, None)
                    if not isinstance(e, ConductorError):
                        raise
                    errors[name] = str(e)
                    continue
                if len(pending) >= window:
                    finish()
        finally:
            failure = None
            while pending:  # each seen through, and its lock given back, even when one of them raises
                try:
                    finish()
                except BaseException as e:  # noqa: B036 - the rest still finish; the first exception goes on
                    failure = failure or e
            if failure is not None:
                raise failure
        return errors

    def _launch(self, name, stdio, attach, started, restarting=None):
        """Everything of a start up to PID 1's setup, which runs on in a child: what _finish needs to see it through."""
        config = self.require(name)
        if self.state(name)['running']:
            raise ConductorError('container %r is already running' % name)
        detached = stdio is None and not attach
        policy = _options.parse_restart(config.restart_policy)[0]
        restart = self.restart_command(name) if detached and (policy != 'no' or config.auto_remove) else None
        if restart and policy != 'no':
            write_json(self.dir(name, 'restart.json'), dict(restarting or {'count': 0, 'delay': None}, at=time.time()))
        for stale in ('state.json', 'exitcode', 'stopping'):
            if os.path.exists(self.dir(name, stale)):
                os.unlink(self.dir(name, stale))
        lowers = self.store.lowerdirs(config.base, config.layers)
        folder = self.dir(name)
        overlay = (lowers, os.path.join(folder, 'upper'), os.path.join(folder, 'work'), os.path.join(folder, 'rootfs'),
                   self.store.root)
        binds = Volumes(self.store).host_paths(config.binds, overlay)
        _cgroups.keep_migrations_quick()
        cgroup = self.cgroup(name)
        cgroup.create(self.limits(config), optional=('pids',) if config.pids_limit is None else (),
                      totals=_cgroups.total_limits(self.store.config))
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        # with started (its network to make), PID 1 execs only once a byte comes on go, after started()
        go_r, go_w = os.pipe2(os.O_CLOEXEC) if started is not None else (None, None)
        pty_ours, pty_theirs = terminal_pair() if attach else (None, None)
        spec = _runtime.Launch(config=config, folder=folder, lowers=lowers, root=self.store.root, binds=binds,
                               confinement=self.confinement(config), cgroup=cgroup.joins(), log_max=self.log_max(),
                               ready=ready_w, stdio=stdio, pty=pty_theirs, restart=restart, go=go_r)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(ready_r)
                if go_w is not None:
                    os.close(go_w)
                if detached and os.fork():
                    os._exit(0)  # detached: the supervisor must not be our child
                _runtime.launch(spec)
            except BaseException as e:  # noqa: B036
                os.write(ready_w, ('error: %s\n' % e).encode())
            os._exit(125)
        os.close(ready_w)
        if go_r is not None:
            os.close(go_r)
        return name, pid, detached, ready_r, go_w, (pty_ours, pty_theirs) if attach else None, started

    def _finish(self, launched, last=True):
        """Wait for PID 1's setup (its line on the ready pipe), then call started() and let its command run.
        last: no other launch is waiting (the cgroup joins' quick migrations can stop, on v2)."""
        name, pid, detached, ready_r, go_w, pty, started = launched
        if detached:
            os.waitpid(pid, 0)
        master = receive_master(*pty) if pty else None
        with os.fdopen(ready_r, 'rb') as ready:
            line = ready.readline().decode('utf-8', 'replace').strip()
        if last:
            _cgroups.migrations_done()
        if not line.startswith('ok '):
            if go_w is not None:
                os.close(go_w)
            if master is not None:
                os.close(master)
            if not detached:
                os.waitpid(pid, 0)
            raise ConductorError('container %r did not start: %s' % (name, line[len('error: '):] or
                                                                     'its setup ended without a word'))
        if started is None:
            return pid, master
        try:
            started()
            os.write(go_w, b'1')
        except BaseException:  # its network could not be made: PID 1 reads an end of file and ends, its command unrun
            os.close(go_w)
            if master is not None:
                os.close(master)
            if detached:
                state = read_json(self.dir(name, 'state.json')) or {}
                if state.get('pid'):
                    wait_gone(state['pid'], state['pid_start'], 5)
            else:
                os.waitpid(pid, 0)
            raise
        os.close(go_w)
        return pid, master

    def restart_command(self, name: str) -> 'list[str]':
        """What the supervisor execs when PID 1 ends: `conductor _restart NAME`, with this interpreter and the
        conductor command ($CONDUCTOR_CLI, which the CLI sets to itself, else `conductor` on PATH)."""
        cli = os.environ.get('CONDUCTOR_CLI') or next(
            (os.path.join(folder, 'conductor') for folder in os.get_exec_path()
             if os.access(os.path.join(folder, 'conductor'), os.X_OK)), None)
        if not cli:
            raise ConductorError('a restart policy (and run --rm -d) needs the conductor command: install it (the conductor_host role '
                                 'does) or set CONDUCTOR_CLI to its path')
        with open(cli, 'rb') as f:
            python = b'python' in f.readline()
        config = os.environ.get('CONDUCTOR_CONFIG')
        return (['/usr/bin/env', 'CONDUCTOR_CONFIG=' + config] if config else []) + \
            ([sys.executable] if python else []) + [os.path.realpath(cli), '--root', self.store.root, '_restart', name]

    def stopping(self, name: str) -> bool:
        """Whether stop (or state: stopped) ended the container: its restart policy then leaves it down."""
        return os.path.exists(self.dir(name, 'stopping'))

    def restarts(self, name: str) -> dict:
        """The restart record: how many times the policy started it again, the last delay, when."""
        return read_json(self.dir(name, 'restart.json')) or {'count': 0, 'delay': None, 'at': 0}

    def exit_code(self, name: str) -> 'int | None':
        return self._exit_code(name)

    def confinement(self, config: Config) -> '_runtime.Confinement | None':
        """What the runtime confines the container's processes with; None for a privileged one."""
        if config.privileged:
            return None
        caps = capability_set(config.cap_add, config.cap_drop)
        seccomp, no_new_privs = _options.parse_security_opts(config.security_opts)
        program = _seccomp.filter_for(self.store.root, caps) if seccomp else None
        return _runtime.Confinement(caps, program, no_new_privs)

    # -- stop and delete -----------------------------------------------------------------------
    def stop(self, name: str, timeout: 'float | None' = None) -> dict:
        """The stop signal to PID 1 (SIGTERM, or STOPSIGNAL, or --stop-signal), SIGKILL after timeout seconds (None:
        the container's stop_timeout, else 10); wait until the supervisor is gone too (unless this is it: the
        restart command of an auto_remove container, deleting it)."""
        with self.store.lock(check_name('container', name)):
            config = self.require(name)
            with open(self.dir(name, 'stopping'), 'w'):
                pass  # first: the restart policy, woken by PID 1's end, must find it
            state = read_json(self.dir(name, 'state.json')) or {}
            if state and alive(state['pid'], state['pid_start']):
                self.cgroup(name).thaw()  # a frozen process takes no signal
                if timeout is None:
                    timeout = DEFAULT_STOP_TIMEOUT if config.stop_timeout is None else config.stop_timeout
                terminate(state['pid'], state['pid_start'], timeout, config.run_stop_signal)
            if state and state['supervisor'] != os.getpid() and alive(state['supervisor'], state['supervisor_start']):
                if config.auto_remove or _options.parse_restart(config.restart_policy)[0] != 'no':
                    # it becomes the restart command: end it (an auto_remove container is deleted by who stops it)
                    self._wait_exit_code(name, 5.0)  # written before that
                    kill_tree(state['supervisor'])
                elif wait_gone(state['supervisor'], state['supervisor_start'], 5.0) is False:
                    kill_tree(state['supervisor'])
            return self.state(name)

    def delete(self, name: str):
        """Delete a stopped container's folder (its upper layer, log and records), its cgroup and its storage limit."""
        self.cgroup(name).remove()
        try:
            config = self.config(name)
            project = config.storage_project if config else None
        except ValueError:  # config.json cut short by a crash
            project = None
        with self.store.lock():
            trash = self.store.path('containers', temp_name('removed-' + name))
            os.rename(self.dir(name), trash)
            self.store.discard(trash)
            if project:
                _quota.release(self.store.path('containers'), project)

    def logs(self, name: str) -> 'list[str]':
        """The log's files, oldest first: log.1 (rotated away past LOG_MAX) if there is one, and log."""
        self.require(name)
        rotated = self.dir(name, 'log.1')
        return ([rotated] if os.path.exists(rotated) else []) + [self.dir(name, 'log')]

    def log_max(self) -> int:
        """LOG_MAX from the config (default 10m): a detached container's log rotates past it, one old file kept."""
        return parse_size(self.store.config.get('LOG_MAX') or DEFAULT_LOG_MAX, 'LOG_MAX in the config', 1 << 10, '1k')


def _health(check):
    """The health check a container runs; HEALTHCHECK NONE (or test NONE) is none."""
    return None if not check or check['test'][0] == 'NONE' else check


def _argv(command, entrypoint, image):
    """Docker's rules: ENTRYPOINT (or --entrypoint) + the command given, else + the image's CMD; a given
    --entrypoint drops the image's CMD; with neither, /bin/bash."""
    first = entrypoint if entrypoint is not None else image.get('entrypoint') or []
    rest = command or (image.get('cmd') if entrypoint is None else None) or []
    return list(first) + list(rest) or ['/bin/bash']


def terminal_pair():
    """A socket pair to pass a pty master over. The terminal code loads here, for attached runs only:
    the children use it from sys.modules, as after setns they can no longer reach the host's files."""
    import socket
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # noqa: F401
    return socket.socketpair(socket.AF_UNIX)


def receive_master(ours, theirs):
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal
    theirs.close()
    try:
        return _terminal.receive_master(ours)
    finally:
        ours.close()
