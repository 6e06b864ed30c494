# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Container records and their lifecycle: create, start, inspect, exec, kill and delete.

A running container is its command, PID 1 of a new PID namespace, and one small supervisor:

    perl -e 'wait; ...'    the supervisor (about 0.4 MiB): reaps PID 1, writes its exit code
     └ PID 1               forked from the CLI or module: /proc, pivot_root, capabilities, exec

What runs inside those processes is in _runtime.py, step by step; this file is the caller's side:
the records, forking, waiting for "ready", and reconciling the records with the kernel. Every mount
lives only in the container's mount namespaces, so they vanish with its last process.

    containers/<name>/config.json   the spec: image, its layers, command, env, hostname, privileged,
                                    cap_add, cap_drop, security_opts, memory, cpus, pids_limit,
                                    storage_size and storage_project (its disk limit, see _quota.py)
    containers/<name>/state.json    written by PID 1: host PID and start time, the supervisor's too
    containers/<name>/exitcode      written by the supervisor when PID 1 ends
    containers/<name>/log           stdout and stderr of a detached container and of exec -d
    containers/<name>/upper, work   the container's own overlay layer; rootfs/ is the mount point
    containers/<name>/hosts, hostname, resolv.conf   bind-mounted over the image's files

The network is not this file's business: start and remove of a networked container go through
_operations.py, which reconnects or tears down the network too.
"""

import os
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    DEFAULT_ROOT, ConductorError, check_env, check_name, parse_size, env_dict, env_list, read_json, remove_tree, temp_name, tree_size,
    utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations, resolv_conf
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import parse_signal
from ansible_collections.cs695.conductor.plugins.module_utils._policy import capability_set
from ansible_collections.cs695.conductor.plugins.module_utils._processes import (
    alive, exit_code, kill_tree, terminate, wait_gone)
from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes
from ansible_collections.cs695.conductor.plugins.module_utils import (
    _cgroups, _options, _quota, _runtime, _sandbox, _seccomp, _volumes)

DEFAULT_LOG_MAX = '10m'  # as Docker's json-file driver with max-size 10m, max-file 2
HEALTH_OUTPUT_MAX = 4096  # as Docker: the last 4 KiB of a health check's output are kept
HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n'


class ExecTimeout(ConductorError):
    """An exec given a timeout ran past it, and was killed."""


class Containers:
    def __init__(self, store):
        self.store = store

    def dir(self, name, *parts):
        return self.store.path('containers', check_name('container', name), *parts)

    # -- reading -------------------------------------------------------------------------------
    def config(self, name):
        """The container's config.json, upgraded to this version's form (_options.upgrade); None if there is none."""
        return _options.upgrade(read_json(self.dir(name, 'config.json')))

    def require(self, name):
        config = self.config(name)
        if config is None and not os.path.isdir(self.store.root):
            raise ConductorError('no container named %r: the state root %s does not exist (check --root, '
                                 'CONDUCTOR_ROOT or ROOT in conductor.conf)' % (name, self.store.root))
        if config is None:
            raise ConductorError('no container named %r: see conductor ps' % name)
        return config

    def names(self):
        folder = self.store.path('containers')
        return sorted(n for n in os.listdir(folder) if not n.startswith('.')) if os.path.isdir(folder) else []

    def configs(self):
        """Every container's config: what rmi and rmcache must keep the base and layers of."""
        return [c for c in (self.config(n) for n in self.names()) if c]

    def state(self, name):
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

    def require_running(self, name):
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

    def inspect(self, name):
        config = self.require(name)
        state = self.state(name)
        network = Allocations(self.store).load().get(name)
        return {'name': name, 'config': config, 'state': state, 'size': self.size(name), 'network': network,
                'restarts': self.restarts(name),
                'limits': self.limits(config), 'usage': self.cgroup(name).usage() if state['running'] else {}}

    def _binds(self, specs, image_volumes):
        """What gets mounted: the specs, then an anonymous volume for each VOLUME of the image that no
        spec covers. Refuses two mounts on one target and a bind source that does not exist."""
        binds, targets = [dict(spec) for spec in specs], set()
        for spec in binds:
            if spec['target'] in targets:
                raise ConductorError('two mounts have the target %s: give each folder one' % spec['target'])
            targets.add(spec['target'])
            if spec['type'] == 'bind' and not os.path.exists(spec['source']):
                raise ConductorError('the bind source %s does not exist: create it first (a missing source is an '
                                     'error, not a new empty folder)' % spec['source'])
        return binds + [_volumes.mount('volume', None, path) for path in image_volumes if path not in targets]

    def host_binds(self, name, config, lowers):
        """(host folder or file, target, read-only) for each mount, each volume filled on first use."""
        result, volumes = [], Volumes(self.store)
        for spec in config.get('binds', []):
            source = spec['source']
            if spec['type'] == 'volume':
                volume = volumes.get(source) or volumes.create(source)
                if not volume['populated']:
                    self._populate(name, lowers, spec['target'], volumes.dir(source, 'data'))
                    volumes.mark_populated(source)
                source = volumes.dir(source, 'data')
            result.append((source, spec['target'], spec['readonly']))
        return result

    def _populate(self, name, lowers, target, data):
        """Copy what the container's root holds at target into a new volume (in a mount namespace of its own)."""
        if os.listdir(data):
            return  # not empty: as Docker, only an empty volume is filled
        folder = self.dir(name)

        def child(report):  # pragma: no cover - runs in the child
            from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_
            sys_.unshare(sys_.CLONE_NEWNS)
            _sandbox.make_mounts_private()
            rootfs = os.path.join(folder, 'rootfs')
            _sandbox.mount_overlay(lowers, os.path.join(folder, 'upper'), os.path.join(folder, 'work'), rootfs,
                                   cwd=self.store.root, nodev=True)
            try:
                fd = _sandbox.open_in_root(rootfs, target, os.O_PATH | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                os._exit(0)  # nothing there to copy
            os.set_inheritable(fd, True)
            os.execv('/bin/cp', ['cp', '-a', '/proc/self/fd/%d/.' % fd, data])
        code, message = _sandbox.spawn(child)
        if code != 0:
            raise ConductorError('filling the volume for %s from the image failed (%d): %s' % (target, code, message))

    # -- resources -------------------------------------------------------------------------------
    def cgroup(self, name):
        """The container's cgroup: <parent>/<name> under the default root, <name>-<crc of root> elsewhere,
        so two state roots on one host never share a group."""
        import zlib
        group = name if self.store.root == DEFAULT_ROOT else '%s-%08x' % (name, zlib.crc32(self.store.root.encode()))
        return _cgroups.Cgroup(group, self.store.config.get('CGROUP_PARENT'), container=name)

    def limits(self, config):
        """The limits the container runs with: its own, else the config's defaults (PIDS_LIMIT, else 2048;
        MEMORY_LIMIT, else none)."""
        pids, memory = config.get('pids_limit'), config.get('memory')
        if pids is None:
            pids = _cgroups.default_pids(self.store.config)
        if memory is None:
            memory = _cgroups.parse_memory(self.store.config.get('MEMORY_LIMIT'), 'MEMORY_LIMIT in the config')
        return {'memory': memory, 'cpus': config.get('cpus'), 'pids': pids, 'storage_size': config.get('storage_size')}

    def update(self, name, **limits):
        """docker update: new values of the options that change in place (_options.IN_PLACE: the limits; each
        given, None for none) in the config and, on a running container, in its cgroup at once; a new storage
        size at once too, if the container was made with one."""
        limits = {key: _options.BY_NAME[key].check(limits.get(key)) for key in _options.IN_PLACE}
        with self.store.lock(check_name('container', name)):
            old = self.require(name)
            config = dict(old, **limits)
            resize = config['storage_size'] != old.get('storage_size')
            if resize:  # every check before anything changes
                if not old.get('storage_project'):
                    raise ConductorError('container %r was made without a storage size, so its files count against '
                                         'no project: remove it and run it again with --storage-size' % name)
                _quota.check_size(self.dir(name), old['storage_project'], config['storage_size'])
            if self.state(name)['running']:
                self.cgroup(name).apply(self.limits(config), check_usage=True)  # checks its usage, then writes
            if resize:
                _quota.set_limit(self.dir(name), old['storage_project'], config['storage_size'])
            write_json(self.dir(name, 'config.json'), config)
        return config

    def set_stack(self, name, stack):
        """Record in config.json that a container made outside conductor_stack now belongs to `stack`."""
        with self.store.lock(check_name('container', name)):
            config = dict(self.require(name), stack=stack)
            write_json(self.dir(name, 'config.json'), config)
        return config

    def size(self, name):
        """Bytes in the container's own layer: what it wrote, which a recreate would discard."""
        return tree_size(self.dir(name, 'upper'))

    def list(self):
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
                result.append({'name': name, 'image': config['image'], 'status': state['status'],
                               'pid': state.get('pid'), 'address': network.get('container_ip', ''),
                               'ports': network.get('ports', []),
                               'created': config['created'], 'running': state['running'],
                               'exit_code': state['exit_code'], 'restart_policy': config.get('restart_policy') or 'no',
                               'restarts': self.restarts(name)['count'], 'labels': config['run_labels'],
                               'peers': sorted(other for pair in peers if name in pair for other in pair if other != name)})
        return result

    # -- create and start ----------------------------------------------------------------------
    def create(self, name, spec, adopt=None, stack=None):
        """Make the container's folder and config, and the volumes it names; nothing runs yet. spec: its options
        (_options.NAMES: as a task or the CLI gives them, or as `_options.check` returned them), all checked
        first. adopt: {target: anonymous volume} of the container this one replaces, mounted again at the same
        targets. stack: the conductor_stack it belongs to, kept in config.json (None: none)."""
        check_name('container', name)
        spec = _options.check(spec)
        image, command, env, entrypoint, user = spec['image'], spec['command'], spec['env'], spec['entrypoint'], spec['user']
        manifest = self.store.require_image(image)
        if spec['storage_size']:
            _quota.require(self.store.path('containers'))
        image_config = manifest.get('config', {})
        binds = self._binds(spec['volumes'] + spec['mounts'], image_config.get('volumes', []))
        environment = env_dict(image_config.get('env'))
        for entries in spec['env_file'].values():  # as Docker's: the image's, then the env files', then -e
            environment.update(env_dict(entries))
        environment.update(env_dict(env))
        config = dict(
            spec, version=_options.CONFIG_VERSION, name=name, image_id=manifest['id'], base=manifest['base'],
            layers=manifest['layers'], storage_project=None, stack=stack, created=utc_now(),
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
                    config['storage_project'] = _quota.assign(tmp, [os.path.join(tmp, 'upper'), os.path.join(tmp, 'work')])
                    _quota.set_limit(tmp, config['storage_project'], spec['storage_size'])
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
            for spec in binds:  # named volumes on first use; an anonymous one per target, for this container
                if spec['type'] == 'volume':
                    source = spec['source'] or (adopt or {}).get(spec['target'])
                    spec['source'] = Volumes(self.store).create(source, None if source else name)['name']
            config['binds'] = binds
            write_json(os.path.join(tmp, 'config.json'), config)
            os.rename(tmp, folder)
        return config

    def start(self, name, stdio=None, attach=None, started=None, restarting=None):
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
            pid, master = self._start(name, stdio, attach is not None, started, restarting)
        if master is not None:
            attach(master)
        return pid

    def _start(self, name, stdio, attach, started, restarting=None):
        config = self.require(name)
        if self.state(name)['running']:
            raise ConductorError('container %r is already running' % name)
        detached = stdio is None and not attach
        policy = _options.parse_restart(config.get('restart_policy'))[0]
        restart = self.restart_command(name) if policy != 'no' and detached else None
        if restart:
            write_json(self.dir(name, 'restart.json'), dict(restarting or {'count': 0, 'delay': None}, at=time.time()))
        for stale in ('state.json', 'exitcode', 'stopping'):
            if os.path.exists(self.dir(name, stale)):
                os.unlink(self.dir(name, stale))
        lowers = self.store.lowerdirs(config['base'], config['layers'])
        binds = self.host_binds(name, config, lowers)
        _cgroups.keep_migrations_quick()
        confinement = self.confinement(config)
        cgroup = self.cgroup(name)
        cgroup.create(self.limits(config), optional=('pids',) if config.get('pids_limit') is None else (),
                      totals=_cgroups.total_limits(self.store.config))
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        # with started (its network to make), PID 1 execs only once a byte comes on go, after started()
        go_r, go_w = os.pipe2(os.O_CLOEXEC) if started is not None else (None, None)
        pty_ours, pty_theirs = _terminal_pair() if attach else (None, None)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(ready_r)
                if go_w is not None:
                    os.close(go_w)
                if detached and os.fork():
                    os._exit(0)  # detached: the supervisor must not be our child
                _runtime.launch(self.dir(name), config, lowers, self.store.root, stdio, pty_theirs, ready_w,
                                confinement, cgroup.procs(), self.log_max(), binds, restart, go_r)
            except BaseException as e:  # noqa: B036
                os.write(ready_w, ('error: %s\n' % e).encode())
            os._exit(125)
        os.close(ready_w)
        if go_r is not None:
            os.close(go_r)
        if detached:
            os.waitpid(pid, 0)
        master = _receive_master(pty_ours, pty_theirs) if attach else None
        with os.fdopen(ready_r, 'rb') as ready:
            line = ready.readline().decode('utf-8', 'replace').strip()
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

    def restart_command(self, name):
        """What the supervisor execs when PID 1 ends: `conductor _restart NAME`, with this interpreter and the
        conductor command ($CONDUCTOR_CLI, which the CLI sets to itself, else `conductor` on PATH)."""
        cli = os.environ.get('CONDUCTOR_CLI') or next(
            (os.path.join(folder, 'conductor') for folder in os.get_exec_path()
             if os.access(os.path.join(folder, 'conductor'), os.X_OK)), None)
        if not cli:
            raise ConductorError('a restart policy needs the conductor command: install it (the conductor_host role '
                                 'does) or set CONDUCTOR_CLI to its path')
        with open(cli, 'rb') as f:
            python = b'python' in f.readline()
        config = os.environ.get('CONDUCTOR_CONFIG')
        return (['/usr/bin/env', 'CONDUCTOR_CONFIG=' + config] if config else []) + \
            ([sys.executable] if python else []) + [os.path.realpath(cli), '--root', self.store.root, '_restart', name]

    def stopping(self, name):
        """Whether stop (or state: stopped) ended the container: its restart policy then leaves it down."""
        return os.path.exists(self.dir(name, 'stopping'))

    def restarts(self, name):
        """The restart record: how many times the policy started it again, the last delay, when."""
        return read_json(self.dir(name, 'restart.json')) or {'count': 0, 'delay': None, 'at': 0}

    def exit_code(self, name):
        return self._exit_code(name)

    def confinement(self, config):
        """What the runtime confines the container's processes with; None for a privileged one."""
        if config['privileged']:
            return None
        caps = capability_set(config.get('cap_add'), config.get('cap_drop'))
        seccomp, no_new_privs = _options.parse_security_opts(config.get('security_opts'))
        program = _seccomp.filter_for(self.store.root, caps) if seccomp else None
        return _runtime.Confinement(caps, program, no_new_privs)

    # -- exec ----------------------------------------------------------------------------------
    def exec(self, name, argv=None, env=None, workdir=None, stdio=None, detach=False, attach=None, user=None,
             timeout=None):
        """Run argv in the container's namespaces (_runtime.join); returns its exit code (0 at once
        when detached). With attach, the command gets a pty of the container's own and
        attach(master) runs meanwhile. After timeout seconds it is killed, and ExecTimeout raised."""
        _cgroups.keep_migrations_quick()
        config = self.require(name)
        env = check_env(env)
        state = self.require_running(name)
        fds = [os.open('/proc/%d/ns/%s' % (state['pid'], ns), os.O_RDONLY | os.O_CLOEXEC)
               for ns in _runtime.JOIN_ORDER]
        if not alive(state['pid'], state['pid_start']):  # the fds must belong to PID 1, not a successor
            raise ConductorError('container %r stopped while exec was joining it' % name)
        if _same_file('/proc/%d/root' % state['pid'], '/'):  # PID 1 has not left the host's root yet
            for fd in fds:
                os.close(fd)
            raise ConductorError('container %r is still starting: try again in a moment' % name)
        log = self._log_writer(name, state) if detach else None
        confinement = self.confinement(config)
        pty_ours, pty_theirs = _terminal_pair() if attach else (None, None)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                _sandbox.close_fds_except(set(fds) | set(stdio or (0, 1, 2)) | {2} | ({log} if log is not None else set())
                                          | ({pty_theirs.fileno()} if pty_theirs is not None else set()))
                _runtime.join(config, fds, argv or ['/bin/bash'], env, workdir, stdio, detach, pty_theirs, log,
                              confinement, self.cgroup(name).procs(), user)
            except BaseException as e:  # noqa: B036
                sys.stderr.write('conductor exec: %s\n' % e)
            os._exit(126)
        for fd in fds + ([log] if log is not None else []):
            os.close(fd)
        if attach:
            master = _receive_master(pty_ours, pty_theirs)
            if master is not None:
                attach(master)
        deadline = time.time() + timeout if timeout else None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG if deadline else 0)
            if done:
                return exit_code(status)
            if time.time() > deadline:
                kill_tree(pid)  # the joining process and the command it forked
                os.waitpid(pid, 0)
                raise ExecTimeout('%s did not finish within %gs' % (' '.join(argv), timeout))
            time.sleep(0.02)

    def health(self, name):
        """Run the image's HEALTHCHECK once: {'healthy': bool, 'exit_code': int or None, 'output': its last 4 KiB}.
        The output goes through a pipe and only its last 4 KiB are kept, as Docker keeps 4 KiB: a check that
        prints without end costs neither the host's disk nor its memory."""
        import threading
        check = self.require(name)['run_healthcheck']
        if not check:
            raise ConductorError('container %r has no health check: its image has no HEALTHCHECK CMD and none was '
                                 'given (--health-cmd, healthcheck)' % name)
        argv = ['/bin/sh', '-c', check['test'][1]] if check['test'][0] == 'CMD-SHELL' else check['test'][1:]
        null = os.open(os.devnull, os.O_RDONLY)
        read, write = os.pipe()
        kept, ended = [b''], threading.Event()
        reader = threading.Thread(target=_keep_tail, args=(read, kept, ended), name='conductor-health-output')
        reader.start()
        try:
            code = self.exec(name, argv, stdio=(null, write, write), timeout=check['timeout'])
            output = None
        except ExecTimeout as e:
            code, output = None, str(e)
        finally:
            os.close(null)
            os.close(write)
            ended.set()
            reader.join()
            os.close(read)
        if output is None:
            output = kept[0].decode('utf-8', 'replace')
        return {'healthy': code == 0, 'exit_code': code, 'output': output.strip()}

    def wait_healthy(self, name, timeout):
        """Run the health check until it passes (returns its result) or timeout seconds pass (an error)."""
        check = self.require(name)['run_healthcheck'] or {}
        deadline = time.time() + timeout
        while True:
            self.require_running(name)
            result = self.health(name)
            if result['healthy']:
                return result
            if time.time() > deadline:
                raise ConductorError('container %r is not healthy after %gs: the last check exited %s: %s'
                                     % (name, timeout, result['exit_code'], result['output'] or '(no output)'))
            time.sleep(min(check.get('interval', 1.0), check.get('start_interval', 1.0), 1.0))

    # -- stop and delete -----------------------------------------------------------------------
    def stop(self, name, timeout=10):
        """SIGTERM PID 1, SIGKILL after timeout seconds; wait until the supervisor is gone too."""
        with self.store.lock(check_name('container', name)):
            config = self.require(name)
            with open(self.dir(name, 'stopping'), 'w'):
                pass  # first: the restart policy, woken by PID 1's end, must find it
            state = read_json(self.dir(name, 'state.json')) or {}
            if state and alive(state['pid'], state['pid_start']):
                terminate(state['pid'], state['pid_start'], timeout, config['run_stop_signal'])
            if state and alive(state['supervisor'], state['supervisor_start']):
                if _options.parse_restart(config.get('restart_policy'))[0] != 'no':  # it becomes the restart command: end it
                    self._wait_exit_code(name, 5.0)  # written before that
                    kill_tree(state['supervisor'])
                elif wait_gone(state['supervisor'], state['supervisor_start'], 5.0) is False:
                    kill_tree(state['supervisor'])
            return self.state(name)

    def delete(self, name):
        """Delete a stopped container's folder (its upper layer, log and records), its cgroup and its storage limit."""
        self.cgroup(name).remove()
        try:
            project = (self.config(name) or {}).get('storage_project')
        except ValueError:  # config.json cut short by a crash
            project = None
        with self.store.lock():
            trash = self.store.path('containers', temp_name('removed-' + name))
            os.rename(self.dir(name), trash)
            self.store.discard(trash)
            if project:
                _quota.release(self.store.path('containers'), project)

    def logs(self, name):
        """The log's files, oldest first: log.1 (rotated away past LOG_MAX) if there is one, and log."""
        self.require(name)
        rotated = self.dir(name, 'log.1')
        return ([rotated] if os.path.exists(rotated) else []) + [self.dir(name, 'log')]

    def log_max(self):
        """LOG_MAX from the config (default 10m): a detached container's log rotates past it, one old file kept."""
        return parse_size(self.store.config.get('LOG_MAX') or DEFAULT_LOG_MAX, 'LOG_MAX in the config', 1 << 10, '1k')

    def _log_writer(self, name, state):
        """Where exec -d writes: the supervisor's pipe when it caps the log, else the log itself."""
        if state.get('piped'):
            return os.open('/proc/%d/fd/0' % state['supervisor'], os.O_WRONLY | os.O_CLOEXEC)
        return os.open(self.dir(name, 'log'), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)


def _health(check):
    """The health check a container runs; HEALTHCHECK NONE (or test NONE) is none."""
    return None if not check or check['test'][0] == 'NONE' else check


def _keep_tail(fd, kept, ended, limit=HEALTH_OUTPUT_MAX):
    """Read the pipe fd to its end, keeping its last limit bytes in kept[0] and dropping the rest, so the
    writer never blocks. Once ended is set (the check is over) it stops when nothing more waits, or after
    16 more reads: a process the check left behind may write for ever."""
    import select
    budget = 16
    while budget:
        if not select.select([fd], [], [], 0.05)[0]:
            if ended.is_set():
                return
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        kept[0] = (kept[0] + chunk)[-limit:]
        if ended.is_set():
            budget -= 1


def _same_file(a, b):
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _argv(command, entrypoint, image):
    """Docker's rules: ENTRYPOINT (or --entrypoint) + the command given, else + the image's CMD; a given
    --entrypoint drops the image's CMD; with neither, /bin/bash."""
    first = entrypoint if entrypoint is not None else image.get('entrypoint') or []
    rest = command or (image.get('cmd') if entrypoint is None else None) or []
    return list(first) + list(rest) or ['/bin/bash']


def _terminal_pair():
    """A socket pair to pass a pty master over. The terminal code loads here, for attached runs only:
    the children use it from sys.modules, as after setns they can no longer reach the host's files."""
    import socket
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # noqa: F401
    return socket.socketpair(socket.AF_UNIX)


def _receive_master(ours, theirs):
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal
    theirs.close()
    try:
        return _terminal.receive_master(ours)
    finally:
        ours.close()
