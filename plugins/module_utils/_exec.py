# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""exec: a command run in a running container's namespaces (`exec_in`, the caller's side of _runtime.join),
the health check built on it (`health`, `wait_healthy`), and conductor_exec's run with its output captured
(`capture`)."""

import os
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_env, env_list
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers, receive_master, terminal_pair
from ansible_collections.cs695.conductor.plugins.module_utils._processes import alive, exit_code, kill_tree
from ansible_collections.cs695.conductor.plugins.module_utils._sandbox import exists_in_root
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups, _runtime, _sandbox

HEALTH_OUTPUT_MAX = 4096  # as Docker: the last 4 KiB of a health check's output are kept


class ExecTimeout(ConductorError):
    """An exec given a timeout ran past it, and was killed."""


def exec_in(containers: Containers, name: str, argv: 'list | None' = None, env: 'list | dict | None' = None,
            workdir: 'str | None' = None, stdio: 'tuple | None' = None, detach: bool = False, attach=None,
            user: 'str | None' = None, timeout: 'float | None' = None) -> int:
    """Run argv in the container's namespaces (_runtime.join); returns its exit code (0 at once
    when detached). With attach, the command gets a pty of the container's own and
    attach(master) runs meanwhile. After timeout seconds it is killed, and ExecTimeout raised."""
    _cgroups.keep_migrations_quick()
    config = containers.require(name)
    env = check_env(env)
    state = containers.require_running(name)
    fds = [os.open('/proc/%d/ns/%s' % (state['pid'], ns), os.O_RDONLY | os.O_CLOEXEC)
           for ns in _runtime.JOIN_ORDER]
    if not alive(state['pid'], state['pid_start']):  # the fds must belong to PID 1, not a successor
        raise ConductorError('container %r stopped while exec was joining it' % name)
    if _same_file('/proc/%d/root' % state['pid'], '/'):  # PID 1 has not left the host's root yet
        for fd in fds:
            os.close(fd)
        raise ConductorError('container %r is still starting: try again in a moment' % name)
    log = _log_writer(containers, name, state) if detach else None
    pty_ours, pty_theirs = terminal_pair() if attach else (None, None)
    spec = _runtime.Join(config=config, namespaces=fds, argv=argv or ['/bin/bash'], env=env, workdir=workdir or
                         config.run_workdir, user=user or config.run_as, stdio=stdio, detach=detach, pty=pty_theirs,
                         log=log, confinement=containers.confinement(config), cgroup=containers.cgroup(name).joins())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            _sandbox.close_fds_except(set(fds) | set(stdio or (0, 1, 2)) | {2} | ({log} if log is not None else set())
                                      | ({pty_theirs.fileno()} if pty_theirs is not None else set()))
            _runtime.join(spec)
        except BaseException as e:  # noqa: B036
            sys.stderr.write('conductor exec: %s\n' % e)
        os._exit(126)
    for fd in fds + ([log] if log is not None else []):
        os.close(fd)
    if attach:
        master = receive_master(pty_ours, pty_theirs)
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


def health(containers: Containers, name: str) -> dict:
    """Run the image's HEALTHCHECK once: {'healthy': bool, 'exit_code': int or None, 'output': its last 4 KiB}.
    The output goes through a pipe and only its last 4 KiB are kept, as Docker keeps 4 KiB: a check that
    prints without end costs neither the host's disk nor its memory."""
    import threading
    check = containers.require(name).run_healthcheck
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
        code = exec_in(containers, name, argv, stdio=(null, write, write), timeout=check['timeout'])
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


def wait_healthy(containers: Containers, name: str, timeout: float) -> dict:
    """Run the health check until it passes (returns its result) or timeout seconds pass (an error)."""
    check = containers.require(name).run_healthcheck or {}
    deadline = time.time() + timeout
    while True:
        containers.require_running(name)
        result = health(containers, name)
        if result['healthy']:
            return result
        if time.time() > deadline:
            raise ConductorError('container %r is not healthy after %gs: the last check exited %s: %s'
                                 % (name, timeout, result['exit_code'], result['output'] or '(no output)'))
        time.sleep(min(check.get('interval', 1.0), check.get('start_interval', 1.0), 1.0))


def _log_writer(containers, name, state):
    """Where exec -d writes: the supervisor's pipe when it caps the log, else the log itself."""
    if state.get('piped'):
        return os.open('/proc/%d/fd/0' % state['supervisor'], os.O_WRONLY | os.O_CLOEXEC)
    return os.open(containers.dir(name, 'log'), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)


def capture(store, name: str, argv: list, env: 'dict | None' = None, workdir: 'str | None' = None, detach: bool = False,
            creates: 'str | None' = None, removes: 'str | None' = None, check_mode: bool = False,
            user: 'str | None' = None, tty: bool = False) -> dict:
    """conductor_exec: run argv in the container, capturing stdout and stderr (with tty, a pty of the
    container's: both arrive in stdout); creates/removes are paths inside the container, checked through
    /proc/<PID 1>/root as ansible.builtin.command does."""
    containers = Containers(store)
    env = env_list(env)
    if not check_mode:
        containers.require(name)
    state = containers.state(name)  # in check mode a missing or stopped container is pending: it would run
    if state['running']:
        root = '/proc/%d/root' % state['pid']  # resolved inside it: a symlink the container made stays there
        for path, skip_if_exists in ((creates, True), (removes, False)):
            if path and exists_in_root(root, path) == skip_if_exists:
                return {'changed': False, 'rc': 0, 'stdout': '', 'stderr': '', 'skipped': True,
                        'msg': 'skipped: %s %s' % (path, 'exists' if skip_if_exists else 'does not exist')}
    if check_mode:
        return {'changed': True, 'rc': 0, 'stdout': '', 'stderr': '', 'msg': 'not run in check mode'}
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            if tty:
                rc = exec_in(containers, name, argv, env, workdir=workdir, user=user,
                             attach=lambda master: _drain(master, out.fileno()))
            else:
                rc = exec_in(containers, name, argv, env, workdir=workdir, stdio=(null, out.fileno(), err.fileno()),
                             detach=detach, user=user)
        finally:
            os.close(null)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode('utf-8', 'replace') for f in (out, err))
    return {'changed': True, 'rc': rc, 'stdout': stdout.rstrip('\r\n'), 'stderr': stderr.rstrip('\n')}


def _drain(master, into):
    """Copy a pty's output to the fd `into` until the container's side closes (EIO), then close it."""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break  # EIO: every process of the container's side has closed the terminal
            if not data:
                break
            os.write(into, data)
    finally:
        os.close(master)


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
