# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Containers: create, start, inspect, exec, stop and remove.

A running container is its command, PID 1 of a new PID namespace, and one small supervisor:

    perl -e 'wait; ...'    the supervisor (about 0.4 MiB): reaps PID 1, writes its exit code
     └ PID 1               forked from the CLI or module: /proc, pivot_root, capabilities, exec

The CLI (or module) forks a child that makes the mount, UTS, IPC, network and PID namespaces and
mounts the overlay root, /dev and /sys in them. It forks PID 1, then replaces itself with the
supervisor: perl is in every Debian and Ubuntu (perl-base is essential), starts in 3 ms and, unlike
sh or unshare, waits for a child it did not start itself. Every mount lives only in the container's
mount namespaces, so they vanish with its last process.

    containers/<name>/config.json   the spec: image, its layers, command, env, hostname, privileged
    containers/<name>/state.json    written by PID 1: host PID and start time, the supervisor's too
    containers/<name>/exitcode      written by the supervisor when PID 1 ends
    containers/<name>/log           stdout and stderr of a detached container and of exec -d
    containers/<name>/upper, work   the container's own overlay layer; rootfs/ is the mount point
    containers/<name>/hosts, hostname, resolv.conf   bind-mounted over the image's files
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import signal
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_name, is_env_key, read_json, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._images import _remove
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations
from ansible_collections.cs695.conductor.plugins.module_utils import _init, _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

NAMESPACES = ('ipc', 'uts', 'net', 'pid', 'mnt')  # mnt last: after it, host paths are gone
SUPERVISOR = 'wait; open(my $f, ">&=", 4); print $f (($? & 127) ? 128 + ($? & 127) : $? >> 8), "\\n"'
HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n'


def check_env(entries, where='environment entry'):
    for entry in entries or []:
        if not isinstance(entry, str) or '=' not in entry or not is_env_key(entry.partition('=')[0]):
            raise ConductorError('invalid %s %r: use KEY=VALUE, KEY made of letters, digits and _, '
                                 'not starting with a digit' % (where, entry))
    return list(entries or [])


def proc_start_time(pid):
    """The process's start time in clock ticks since boot, or None if it has ended (zombies too)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rpartition(')')[2].split()
    except (IOError, OSError):
        return None
    return None if fields[0] in ('Z', 'X') else int(fields[19])


def alive(pid, start):
    """PID plus start time: a recycled PID is never taken for the container."""
    return bool(pid) and start is not None and proc_start_time(pid) == start


class Containers:
    def __init__(self, store):
        self.store = store

    def dir(self, name, *parts):
        return self.store.path('containers', check_name('container', name), *parts)

    # -- reading -------------------------------------------------------------------------------
    def config(self, name):
        return read_json(self.dir(name, 'config.json'))

    def require(self, name):
        config = self.config(name)
        if config is None:
            raise ConductorError('no container named %r: see conductor ps' % name)
        return config

    def names(self):
        folder = self.store.path('containers')
        return sorted(n for n in os.listdir(folder) if not n.startswith('.')) if os.path.isdir(folder) else []

    def state(self, name):
        """Reconcile what the files say with what the kernel says: running, exited (code) or created."""
        state = read_json(self.dir(name, 'state.json')) or {}
        code = self._exit_code(name)
        if state and alive(state['pid'], state['pid_start']):
            return dict(state, status='running', running=True, exit_code=None)
        if state and code is None and alive(state['supervisor'], state['supervisor_start']):
            code = self._wait_exit_code(name, 2.0)  # PID 1 just ended; the supervisor is writing
        if state:
            status = 'exited (%s)' % ('?' if code is None else code)
            return dict(state, status=status, running=False, exit_code=code)
        return {'status': 'created', 'running': False, 'exit_code': None, 'pid': None}

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
        return {'name': name, 'config': config, 'state': self.state(name)}

    def list(self):
        if os.path.isdir(self.store.path('containers')):
            with self.store.lock():
                self.store.sweep('containers')  # what a killed create or stop left
        result = []
        for name in self.names():
            config = self.config(name)
            if config:
                result.append(dict(self._summary(name, config)))
        return result

    def _summary(self, name, config):
        state = self.state(name)
        network = Allocations(self.store).load().get(name) or {}
        return {'name': name, 'image': config['image'], 'status': state['status'], 'pid': state.get('pid'),
                'address': network.get('container_ip', ''), 'created': config['created'],
                'running': state['running'], 'exit_code': state['exit_code']}

    # -- create and start ----------------------------------------------------------------------
    def create(self, name, image, command=None, env=None, hostname=None, privileged=False):
        """Make the container's folder and config; nothing runs yet."""
        check_name('container', name)
        env = check_env(env)
        if hostname is not None:
            check_name('hostname', hostname)
        if command is not None and (not command or not all(isinstance(a, str) for a in command)):
            raise ConductorError('invalid command %r: give a non-empty list of strings' % (command,))
        manifest = self.store.require_image(image)
        image_config = manifest.get('config', {})
        config = {
            'name': name, 'image': image, 'image_id': manifest['id'], 'base': manifest['base'],
            'layers': manifest['layers'], 'command': command, 'env': env, 'hostname': hostname,
            'privileged': bool(privileged),
            'argv': command or image_config.get('cmd') or ['/bin/bash'],
            'workdir': image_config.get('workdir') or '/',
            'environment': _merge_env(image_config.get('env', []), env),
            'created': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        }
        with self.store.lock():
            os.makedirs(self.store.path('containers'), 0o711, exist_ok=True)
            self.store.sweep('containers')
            folder = self.dir(name)
            if os.path.exists(folder):
                raise ConductorError('a container named %r already exists: stop it first (conductor stop %s) '
                                     'or choose another name' % (name, name))
            tmp = self.store.path('containers', '.tmp-%d-%s' % (os.getpid(), name))
            for sub in ('upper', 'work', 'rootfs'):
                os.makedirs(os.path.join(tmp, sub))
            host = hostname or name
            for file_name, content in (('hosts', HOSTS % host), ('hostname', host + '\n'),
                                       ('resolv.conf', upstream_resolv_conf(self.store.config))):
                with open(os.path.join(tmp, file_name), 'w') as f:
                    f.write(content)
            open(os.path.join(tmp, 'log'), 'a').close()
            write_json(os.path.join(tmp, 'config.json'), config)
            os.rename(tmp, folder)
        return config

    def start(self, name, stdio=None, attach=None):
        """Start the container's PID 1. stdio=None runs it detached, its output going to the log.

        For an attached run, stdio is the (stdin, stdout, stderr) fds, or with attach a pty of the
        container's own is made and attach(master) is called once it runs; the supervisor is then a
        child of this process: wait() it. Returns the supervisor's PID.
        """
        config = self.require(name)
        if self.state(name)['running']:
            raise ConductorError('container %r is already running' % name)
        for stale in ('state.json', 'exitcode'):
            if os.path.exists(self.dir(name, stale)):
                os.unlink(self.dir(name, stale))
        lowers = self.store.lowerdirs(config['base'], config['layers'])
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        pty_ours, pty_theirs = _terminal_pair() if attach else (None, None)
        detached = stdio is None and attach is None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(ready_r)
                if detached and os.fork():
                    os._exit(0)  # detached: the supervisor must not be our child
                self._launch(name, config, lowers, stdio, pty_theirs, ready_w)
            except BaseException as e:  # noqa: B036
                os.write(ready_w, ('error: %s\n' % e).encode())
            os._exit(125)
        os.close(ready_w)
        if detached:
            os.waitpid(pid, 0)
        master = None
        if attach:
            pty_theirs.close()
            master = _terminal_module().receive_master(pty_ours)
            pty_ours.close()
        with os.fdopen(ready_r, 'rb') as ready:
            line = ready.readline().decode('utf-8', 'replace').strip()
        if not line.startswith('ok '):
            if master is not None:
                os.close(master)
            if not detached:
                os.waitpid(pid, 0)
            raise ConductorError('container %r did not start: %s' % (name, line[len('error: '):] or
                                                                     'its setup ended without a word'))
        network = Allocations(self.store).load().get(name)
        if network:  # started again: its old veth went with its old network namespace
            from ansible_collections.cs695.conductor.plugins.module_utils._network import Network
            Network(self.store).add(name, network['internet'], network['ports'], network.get('dns'))
        if master is not None:
            attach(master)
        return pid

    def _launch(self, name, config, lowers, stdio, pty, ready_w):  # pragma: no cover - runs in the child
        """In the forked child: namespaces, mounts, then exec the supervisor. Never returns."""
        os.setsid()
        folder = self.dir(name)
        rootfs = os.path.join(folder, 'rootfs')
        if stdio is None and pty is None:
            null = os.open(os.devnull, os.O_RDONLY)
            log = os.open(os.path.join(folder, 'log'), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            stdio = (null, log, log)
        for target, fd in enumerate(stdio or ()):
            os.dup2(fd, target)
        sys_.unshare(sys_.CLONE_NEWNS | sys_.CLONE_NEWUTS | sys_.CLONE_NEWIPC | sys_.CLONE_NEWNET | sys_.CLONE_NEWPID)
        _sandbox.make_mounts_private()
        _sandbox.mount_overlay(lowers, os.path.join(folder, 'upper'), os.path.join(folder, 'work'), rootfs,
                               cwd=self.store.root)
        _sandbox.mount_dev(rootfs)
        if pty is not None:  # the terminal comes from the container's own devpts
            master, slave = _terminal_module().open_pty(os.path.join(rootfs, 'dev', 'pts'))
            _terminal_module().send_master(pty, master)
            for target in (0, 1, 2):
                os.dup2(slave, target)
            sys_.set_controlling_terminal(0)
        flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
        sys_.mount('sysfs', os.path.join(rootfs, 'sys'), 'sysfs', flags | (0 if config['privileged'] else sys_.MS_RDONLY))
        for file_name in ('hosts', 'hostname', 'resolv.conf'):
            _sandbox.bind_file(os.path.join(folder, file_name), rootfs, '/etc/' + file_name, create=True)
        sys_.sethostname(config['hostname'] or name)
        sys_.set_loopback_up()
        spec = {'rootfs': rootfs, 'argv': config['argv'], 'env': _container_env(config, pty is not None),
                'workdir': config['workdir'], 'privileged': config['privileged'], 'ready_fd': ready_w,
                'state_file': os.path.join(folder, 'state.json'),
                'supervisor': os.getpid(), 'supervisor_start': proc_start_time(os.getpid())}
        exitcode = os.open(os.path.join(folder, 'exitcode'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if os.fork() == 0:
            _init.pid1(spec)  # never returns
        os.close(ready_w)
        os.dup2(exitcode, 4)
        os.chdir('/')
        os.execve(_perl(), ['conductor-supervisor', '-e', SUPERVISOR, folder], {'PATH': _sandbox.DEFAULT_PATH})

    # -- exec ----------------------------------------------------------------------------------
    def exec(self, name, argv=None, env=None, workdir=None, stdio=None, detach=False, attach=None):
        """Run argv in the container's namespaces; returns its exit code (0 at once when detached).

        With attach, the command gets a pty of the container's own and attach(master) runs meanwhile.
        """
        config = self.require(name)
        env = check_env(env)
        state = self.state(name)
        if not state['running']:
            raise ConductorError('container %r is not running (%s): start it first (conductor start %s)'
                                 % (name, state['status'], name))
        fds = [os.open('/proc/%d/ns/%s' % (state['pid'], ns), os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
        if not alive(state['pid'], state['pid_start']):  # the fds must belong to PID 1, not a successor
            raise ConductorError('container %r stopped while exec was joining it' % name)
        log = os.open(self.dir(name, 'log'), os.O_WRONLY | os.O_APPEND) if detach else None
        pty_ours, pty_theirs = _terminal_pair() if attach else (None, None)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                self._join(config, fds, argv or ['/bin/bash'], env, workdir, stdio, detach, pty_theirs, log)
            except BaseException as e:  # noqa: B036
                sys.stderr.write('conductor exec: %s\n' % e)
            os._exit(126)
        for fd in fds + ([log] if log is not None else []):
            os.close(fd)
        if attach:
            pty_theirs.close()
            master = _terminal_module().receive_master(pty_ours)
            pty_ours.close()
            if master is not None:
                attach(master)
        dummy, status = os.waitpid(pid, 0)
        return _sandbox.exit_code(status)

    def _join(self, config, fds, argv, env, workdir, stdio, detach, pty, log):  # pragma: no cover - child
        """setns into each namespace, then fork: only children enter the new PID namespace."""
        for fd in fds:
            sys_.setns(fd)
        _init.drop_capabilities(config['privileged'])
        environment = _container_env(config, pty is not None)
        environment.update(e.partition('=')[::2] for e in env)
        if pty is not None:  # a terminal from the container's own devpts, as run has
            master, slave = _terminal_module().open_pty('/dev/pts')
            _terminal_module().send_master(pty, master)
            stdio = (slave, slave, slave)
        pid = os.fork()
        if pid == 0:
            if detach:
                os.setsid()
                stdio = (os.open(os.devnull, os.O_RDONLY), log, log)
            if stdio:
                for target, fd in enumerate(stdio):
                    os.dup2(fd, target)
            if pty is not None:
                os.setsid()
                sys_.set_controlling_terminal(0)
            try:
                _sandbox.exec_command(argv, environment, workdir or config['workdir'])
            except OSError as e:
                sys.stderr.write('conductor exec: cannot run %s: %s\n' % (argv[0], e.strerror))
                os._exit(127 if e.errno == errno.ENOENT else 126)
        if detach:
            os._exit(0)
        forward = _sandbox.forward_exit
        forward(pid)

    # -- stop and remove -----------------------------------------------------------------------
    def kill(self, name, timeout=10):
        """SIGTERM PID 1, SIGKILL after timeout seconds; wait until the supervisor is gone too."""
        self.require(name)
        state = read_json(self.dir(name, 'state.json')) or {}
        if state and alive(state['pid'], state['pid_start']):
            _terminate(state['pid'], state['pid_start'], timeout)
        if state and alive(state['supervisor'], state['supervisor_start']):
            if _wait_gone(state['supervisor'], state['supervisor_start'], 5.0) is False:
                _kill_tree(state['supervisor'])
        return self.state(name)

    def remove(self, name, timeout=10):
        """conductor.sh's stop: end every process, then delete the container and its state."""
        config = self.require(name)
        self.kill(name, timeout)
        if name in Allocations(self.store).load():
            from ansible_collections.cs695.conductor.plugins.module_utils._network import Network  # pyroute2: only now
            Network(self.store).remove(name)
        with self.store.lock():
            trash = self.store.path('containers', '.tmp-%d-removed-%s' % (os.getpid(), name))
            os.rename(self.dir(name), trash)
            _remove(trash)
        return config

    def logs(self, name):
        self.require(name)
        return self.dir(name, 'log')


def _terminal_pair():
    """A socket pair to pass a pty master over. The terminal code loads here, for attached runs only:
    the children use it from sys.modules, as after setns they can no longer reach the host's files."""
    import socket
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # noqa: F401
    return socket.socketpair(socket.AF_UNIX)


def _terminal_module():
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal
    return _terminal


def _merge_env(base, extra):
    env = dict(e.partition('=')[::2] for e in base)
    env.update(dict(e.partition('=')[::2] for e in extra or []))
    return ['%s=%s' % kv for kv in env.items()]


def _container_env(config, tty):
    env = dict(e.partition('=')[::2] for e in config['environment'])
    env.setdefault('PATH', _sandbox.DEFAULT_PATH)
    env.setdefault('HOME', '/root')
    env.setdefault('HOSTNAME', config['hostname'] or config['name'])
    if tty:
        env.setdefault('TERM', os.environ.get('TERM', 'xterm'))
    return env


def upstream_resolv_conf(config):
    """resolv.conf for a container: DNS from the config, else the host's servers. A loopback stub such as
    systemd-resolved's 127.0.0.53 is useless in another network namespace: then its upstream list."""
    if config.get('DNS'):
        return ''.join('nameserver %s\n' % server for server in config['DNS'].split())
    first = None
    for path in ('/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'):
        try:
            with open(path) as f:
                content = f.read()
        except (IOError, OSError):
            continue
        first = content if first is None else first
        servers = [line.split()[1] for line in content.splitlines() if line.startswith('nameserver') and len(line.split()) > 1]
        if any(not s.startswith('127.') and s != '::1' for s in servers):
            return content
    return first or ''


def _perl():
    for path in ('/usr/bin/perl', '/bin/perl'):
        if os.path.exists(path):
            return path
    raise ConductorError('perl is not installed (Debian and Ubuntu always have perl-base): apt-get install perl-base')


def _wait_gone(pid, start, timeout):
    """Wait up to timeout seconds for a process that is not our child to end; True once it has."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if not alive(pid, start):
            return True
        if pidfd is not None:
            import select  # stop alone waits: run and exec stay quick to start
            return bool(select.select([pidfd], [], [], timeout)[0])
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not alive(pid, start):
                return True
            time.sleep(0.01)
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _terminate(pid, start, timeout):
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not alive(pid, start):
            return
        try:
            os.kill(pid, sig)
        except OSError as e:
            if e.errno == errno.ESRCH:
                return
            raise
        if _wait_gone(pid, start, wait):
            return


def _kill_tree(pid):
    """SIGKILL pid and its descendants (a supervisor that lost track of its child)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    ppid = int(f.read().rpartition(')')[2].split()[1])
            except (IOError, OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            os.kill(current, signal.SIGKILL)
        except OSError:
            pass


# -- the Ansible face's planning: one declaration of the spec, compared option by option ------
SPEC_OPTIONS = ('image', 'image_id', 'command', 'env', 'hostname', 'privileged')


def desired_spec(store, image, command=None, env=None, hostname=None, privileged=False):
    """What a conductor_container task asks for, in the form config.json stores it."""
    if isinstance(command, str):
        import shlex
        command = shlex.split(command)
    if isinstance(env, dict):
        env = ['%s=%s' % (k, v) for k, v in sorted(env.items())]
    return {'image': image, 'image_id': store.require_image(image)['id'], 'command': command or None,
            'env': sorted(check_env(env)), 'hostname': hostname, 'privileged': bool(privileged)}


def ensure_container(store, name, state='started', image=None, command=None, env=None, hostname=None,
                     privileged=False, recreate=False, restart=False, stop_timeout=10, network=None,
                     check_mode=False):
    """Bring container `name` to `state`; returns changed, actions, differences, container and diff.

    network (a dict of internet, published_ports, dns) also gives a started container its network,
    as conductor_network would: one task instead of two.
    """
    containers = Containers(store)
    check_name('container', name)
    config = containers.config(name)
    running = bool(config) and containers.state(name)['running']
    before = dict(_spec_of(config), running=running) if config else {}
    actions, differences = [], []
    if state == 'absent':
        if config:
            actions.append('removed')
            if not check_mode:
                containers.remove(name, stop_timeout)
        return _result(containers, name, actions, differences, before, {}, check_mode)
    if image:
        desired = desired_spec(store, image, command, env, hostname, privileged)
    elif config:
        desired = _spec_of(config)  # no image given: take the container as it is (e.g. to stop it)
    else:
        raise ConductorError('image is required to create container %r' % name)
    if config:
        differences = [key for key in SPEC_OPTIONS if _spec_of(config)[key] != desired[key]]
        if differences or recreate:
            actions.append('recreated')
            if not check_mode:
                containers.remove(name, stop_timeout)
            config, running = None, False
    if config is None:
        if not actions:
            actions.append('created')
        if not check_mode:
            containers.create(name, image, desired['command'], desired['env'], hostname, privileged)
    if state == 'started':
        if running and restart:
            actions.append('restarted')
            if not check_mode:
                containers.kill(name, stop_timeout)
            running = False
        if not running:
            actions.append('started')
            if not check_mode:
                containers.start(name)
    elif state == 'stopped' and running:
        actions.append('stopped')
        if not check_mode:
            containers.kill(name, stop_timeout)
    after = dict(desired, running=(state == 'started'))
    networked = None
    if network is not None and state == 'started':
        if check_mode and actions:
            actions.append('networked')  # the container does not exist or run yet: it would be networked
        else:
            from ansible_collections.cs695.conductor.plugins.module_utils._network import ensure_network
            networked = ensure_network(store, name, 'present', network.get('internet'), network.get('published_ports'),
                                       network.get('dns'), check_mode)
            if networked['changed']:
                actions.append('networked')
    result = _result(containers, name, actions, differences, before, after, check_mode)
    if networked:
        result['container']['network'] = networked['network']
    return result


def _spec_of(config):
    if not config:
        return {}
    spec = {key: config.get(key) for key in SPEC_OPTIONS}
    spec['env'] = sorted(spec['env'] or [])
    return spec


def _result(containers, name, actions, differences, before, after, check_mode):
    container = {}
    if not check_mode and containers.config(name):
        info = containers.inspect(name)
        container = dict(info['config'], **{key: info['state'].get(key) for key in ('status', 'pid', 'exit_code')})
    elif check_mode:
        container = dict(after, name=name) if after else {}
    return {'changed': bool(actions), 'actions': actions, 'differences': differences, 'container': container,
            'diff': {'before': before, 'after': after}}


def exec_capture(store, name, argv, env=None, workdir=None, detach=False, creates=None, removes=None,
                 check_mode=False):
    """conductor_exec: run argv in the container, capturing stdout and stderr; creates/removes are
    paths inside the container, checked through /proc/<PID 1>/root as ansible.builtin.command does."""
    import tempfile
    containers = Containers(store)
    if isinstance(env, dict):
        env = ['%s=%s' % (k, v) for k, v in sorted(env.items())]
    state = containers.state(name) if containers.require(name) else {}
    if state.get('running'):
        root = '/proc/%d/root' % state['pid']
        for path, skip_if_exists in ((creates, True), (removes, False)):
            if path and os.path.lexists(root + '/' + path.lstrip('/')) == skip_if_exists:
                return {'changed': False, 'rc': 0, 'stdout': '', 'stderr': '', 'skipped': True,
                        'msg': 'skipped: %s %s' % (path, 'exists' if skip_if_exists else 'does not exist')}
    if check_mode:
        if not state.get('running'):
            raise ConductorError('container %r is not running (%s): start it first' % (name, state.get('status')))
        return {'changed': True, 'rc': 0, 'stdout': '', 'stderr': '', 'msg': 'not run in check mode'}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            rc = containers.exec(name, argv, env, workdir=workdir, stdio=(null, out.fileno(), err.fileno()),
                                 detach=detach)
        finally:
            os.close(null)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode('utf-8', 'replace') for f in (out, err))
    return {'changed': True, 'rc': rc, 'stdout': stdout.rstrip('\n'), 'stderr': stderr.rstrip('\n')}
