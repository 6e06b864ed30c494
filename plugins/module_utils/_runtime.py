# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What runs inside a container's processes, step by step, in the order the kernel needs it.

start (conductor run, conductor start): the CLI or module forks a child that runs launch():
    1. session and stdio     setsid; stdin/stdout/stderr from the caller, the log or a pty
    2. namespaces            unshare mount, UTS, IPC, network and PID
    3. root filesystem       private propagation, the overlay root, /dev (and the pty), /sys read-only,
                             /etc/hosts, hostname and resolv.conf bound from the state folder, then
                             the volumes and bind mounts
    4. identity              host name, loopback up
    5. PID 1                 fork it; this process becomes the supervisor (Lua), which reaps it and
                             writes its exit code
  and PID 1 goes on in _pid1():
    6. state and cgroup      a mount namespace of its own; the state record (host PID, start times);
                             join the container's cgroup (_cgroups.py; the supervisor stays out)
    7. /proc                 mounted for the new PID namespace, the host-global parts masked
    8. pivot_root            into the overlay, the old root detached: no path leads back
    9. confinement           confine(): a new session keyring, the capability bounding set, then
                             the seccomp filter (while CAP_SYS_ADMIN is still held, as runc does,
                             so setuid programs keep working), then the other capability sets
   10. exec                  report ready to the caller, wait for its go (its network is made by
                             then), then replace itself with the command

exec (conductor exec) runs join() in a forked child: the container's cgroup, setns into each
namespace (mount last),
confine(), fork (only children enter the PID namespace), a new session (never the caller's
terminal), exec.

A build's RUN step runs build_step() in a forked child: a cgroup of its own (the process limit and
BUILD_MEMORY), fresh mount, PID, UTS and IPC namespaces, a network namespace the builder made (a veth
and a container's -i rules: the host's loopback, abstract unix sockets and 169.254.0.0/16 are out of
reach; none for RUN --network=none; the host's only with conductor build --network host), the
overlay (nodev), /proc masked, /sys read-only, /dev, pivot_root, confine() with the build's
capabilities (no NET_RAW, no NET_ADMIN: with --network host the step shares the host's network), exec.

What confine() applies comes from the caller as a Confinement: capability numbers, the compiled
seccomp filter (_seccomp.py) and no_new_privs; None for a privileged container.

After pivot_root or the last setns the host's Python library is out of reach: from those steps on,
nothing may import a module that is not already loaded.
"""

import errno
import fcntl
import os
import resource
from _signal import SIGKILL  # signal, the same numbers as IntEnums, costs a command 1.5 ms (enum)
import stat
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, Record, env_dict, utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._policy import (
    CAPABILITIES, DEFAULT_PATH, MASKED, MASKED_SYS, READ_ONLY)
from ansible_collections.cs695.conductor.plugins.module_utils._processes import forward_exit, start_time
from ansible_collections.cs695.conductor.plugins.module_utils._records import Config
from ansible_collections.cs695.conductor.plugins.module_utils import _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

CONTAINER_NAMESPACES = (sys_.CLONE_NEWNS | sys_.CLONE_NEWUTS | sys_.CLONE_NEWIPC | sys_.CLONE_NEWNET |
                        sys_.CLONE_NEWPID)
JOIN_ORDER = ('ipc', 'uts', 'net', 'pid', 'mnt')  # mnt last: after it, host paths are gone
# The supervisor, in Lua 5.3 with luaposix (Debian's lua5.3 and lua-posix: 0.33 MiB a container, perl's floor is
# 0.42): with a log cap (a detached container), copy its output from stdin to <folder>/log, rotating to log.1 past
# the cap, and reap PID 1 as soon as it ends (waking each second to look); then write its exit code to fd 4. When
# PID 1 ends, every other process of its namespace is gone already, so its output is all in the pipe: what the
# pipe holds then is kept, and no more (a writer passed out of the container, over a socket, could hold the pipe
# open and write for ever). With a restart policy, it then execs the restart command (conductor _restart NAME),
# which goes back to the host's namespaces through fds 5 to 9. Its arguments come in a chunk of their own
# (lua_command): D (the folder), MAX (the cap, 0: no log), RESTART (argv or {}). Nothing raises before the wait: a
# log that cannot be opened is read and dropped, so PID 1 is still reaped.
SUPERVISOR = """local unistd, fcntl, wait = require 'posix.unistd', require 'posix.fcntl', require 'posix.sys.wait'
local signal, poll = require 'posix.signal', require 'posix.poll'
signal.signal(signal.SIGCHLD, signal.SIG_DFL)  -- an ignored SIGCHLD (inherited through exec) would lose the code
local pid, how, status = 0
if MAX > 0 then
  local path, flags = D .. '/log', fcntl.O_WRONLY | fcntl.O_APPEND | fcntl.O_CREAT | fcntl.O_CLOEXEC
  local log = fcntl.open(path, flags, 384)
  local n = log and unistd.lseek(log, 0, unistd.SEEK_END) or 0
  local left  -- once PID 1 is reaped: the bytes still to keep, what the pipe held then (F_GETPIPE_SZ, 1032)
  while not left or left > 0 do
    local ready = poll.rpoll(0, left and 0 or 1000)
    if left and ready ~= 1 then break end
    local buf = ready == 1 and unistd.read(0, 65536) or ''
    if ready == 1 and (not buf or #buf == 0) then break end
    if log and #buf > 0 then  -- a wake-up with nothing read never rotates
      if n > 0 and n + #buf > MAX then
        os.rename(path, path .. '.1')
        local new = fcntl.open(path, flags, 384)
        if new then unistd.close(log); log, n = new, 0 end
      end
      unistd.write(log, buf); n = n + #buf
    end
    if left then
      left = left - #buf
    else
      pid, how, status = wait.wait(-1, wait.WNOHANG)
      if pid ~= 0 then left = fcntl.fcntl(0, 1032) or 65536 end
    end
  end
  if log then unistd.close(log) end
end
if pid == 0 then pid, how, status = wait.wait(-1) end
local code = not pid and 255 or how == 'exited' and status or 128 + status
unistd.write(4, code .. '\\n'); unistd.close(4)
if #RESTART > 0 then
  unistd.dup2(fcntl.open('/dev/null', fcntl.O_RDONLY | fcntl.O_CLOEXEC), 0)  -- the copy on 0 is inherited, no other
  unistd.execp(RESTART[1], {[0] = RESTART[1], table.unpack(RESTART, 2)})
end"""
LUA = '/usr/bin/lua5.3'
HOST_NAMESPACES = ('net', 'uts', 'ipc', 'pid', 'mnt')  # the supervisor's way back for a restart: fds 5 to 9
FIRST_NAMESPACE_FD = 5
CONFINEMENT_VERSION = 1  # in state.json: a container started before the hardening has none
USERS_MAX = 4 << 20  # /etc/passwd or /etc/group larger than this is refused: the largest sites' are far smaller
BOUND_FILES = ('hosts', 'hostname', 'resolv.conf')  # from the state folder over the image's /etc/


class Confinement:
    """What confine() applies: capability names, the seccomp program (BPF bytes or None), no_new_privs."""

    def __init__(self, caps, seccomp=None, no_new_privs=False):
        self.caps = [CAPABILITIES[name] for name in caps]
        self.seccomp, self.no_new_privs = seccomp, no_new_privs
        self.last_cap = CAPABILITIES['CHECKPOINT_RESTORE']  # the kernel's highest, read here on the host: in
        try:  # the child, /proc may be an image's folder (a copy step), and its file anything
            with open('/proc/sys/kernel/cap_last_cap') as f:
                self.last_cap = int(f.read())
        except (IOError, OSError, ValueError):
            pass


class Launch(Record):
    """What start hands the container's first process (runc's initConfig): everything was prepared by the
    caller, so the child only applies it."""
    config: Config                 # the container's record
    folder: str                    # containers/<name>: its upper, work, rootfs, state.json, log
    lowers: list                   # the image's layers, relative to root
    root: str                      # the state root
    binds: list                    # (host folder or file, target, read-only) for each volume and bind mount
    confinement: 'Confinement | None'
    cgroup: list                   # the files PID 1 joins its cgroups by (Cgroup.joins)
    log_max: int                   # the log rotates past it (detached)
    ready: int                     # the pipe PID 1 reports on: 'ok PID' or 'error: ...'
    stdio: 'tuple | None' = None   # the caller's (stdin, stdout, stderr); None with no pty: detached, to the log
    pty: 'object | None' = None    # the socket a pty master goes back over
    restart: 'list | None' = None  # what the supervisor execs when PID 1 ends (a restart policy)
    go: 'int | None' = None        # the pipe PID 1 waits on before exec: its network is made


def launch(spec: Launch) -> None:  # pragma: no cover - runs in the child
    """Steps 1 to 5 in the forked child of start; never returns. Detached (no stdio, no pty), the output goes
    through a pipe to the supervisor, which caps the log. With a restart command, the supervisor gets the host's
    namespaces as fds 5 to 9. With go, PID 1 waits, once ready, before it execs: for a byte when the caller has
    made its network, an end of file when it could not (PID 1 then ends, and the command never runs without it)."""
    config, folder, stdio, pty = spec.config, spec.folder, spec.stdio, spec.pty
    # 1. session and stdio; the host's namespaces kept for a restart (at 64 and up: clear of what follows)
    os.setsid()
    host_namespaces = []
    for name in HOST_NAMESPACES if spec.restart else ():
        fd = os.open('/proc/self/ns/' + name, os.O_RDONLY | os.O_CLOEXEC)
        host_namespaces.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64))
        os.close(fd)
    output = None
    if stdio is None and pty is None:
        output, writer = os.pipe()
        stdio = (os.open(os.devnull, os.O_RDONLY), writer, writer)
    for target, fd in enumerate(stdio or ()):
        os.dup2(fd, target)
    # 2. namespaces
    sys_.unshare(CONTAINER_NAMESPACES)
    # 3. root filesystem
    rootfs = os.path.join(folder, 'rootfs')
    _sandbox.make_mounts_private()
    _sandbox.mount_overlay(spec.lowers, os.path.join(folder, 'upper'), os.path.join(folder, 'work'), rootfs,
                           cwd=spec.root, nodev=spec.confinement is not None, quota=bool(config.storage_project))
    _sandbox.mount_dev(rootfs, config.shm_size)
    if pty is not None:
        _attach_pty(pty, os.path.join(rootfs, 'dev', 'pts'))
        sys_.set_controlling_terminal(0)
    mount_sys(rootfs, config.privileged)
    for file_name in BOUND_FILES:
        _sandbox.bind_file(os.path.join(folder, file_name), rootfs, '/etc/' + file_name, create=True)
    for source, target, readonly in spec.binds:  # volumes and bind mounts: nosuid, nodev, resolved inside the root
        _sandbox.bind_in_root(source, rootfs, target, readonly)
    for entry in config.tmpfs:  # 'PATH:size=N,mode=M[,exec]', as _options checked it
        target, dummy, options = entry.partition(':')
        values = dict(o.partition('=')[::2] for o in options.split(','))
        _sandbox.tmpfs_in_root(rootfs, target, int(values['size']), values['mode'], 'exec' in values)
    # 4. identity
    sys_.sethostname(config.hostname or config.name)
    sys_.set_loopback_up()
    # 5. PID 1, and this process becomes the supervisor
    lua, argv = lua_command('conductor-supervisor', SUPERVISOR, D=folder, MAX=spec.log_max if output is not None else 0,
                            RESTART=list(spec.restart or []))  # before PID 1 exists: a missing Lua stops here
    env = container_environment(config, pty is not None)
    supervisor = {'supervisor': os.getpid(), 'supervisor_start': start_time(), 'piped': output is not None}
    exitcode = os.open(os.path.join(folder, 'exitcode'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if os.fork() == 0:
        _pid1(spec, rootfs, env, supervisor)
    os.close(spec.ready)
    if spec.go is not None:
        os.close(spec.go)
    if output is not None:  # read the container's output; hold no writer of it ourselves, or it never ends
        null = os.open(os.devnull, os.O_WRONLY)
        for target, fd in ((0, output), (1, null), (2, null)):
            os.dup2(fd, target)
    os.dup2(exitcode, 4)  # after the stdio: output may have been fd 4
    os.set_inheritable(4, True)  # dup2 onto itself (exitcode was 4 already) keeps close-on-exec
    for number, fd in enumerate(host_namespaces, FIRST_NAMESPACE_FD):
        os.dup2(fd, number)  # inheritable: the supervisor and the restart command keep them; PID 1 never had them
    os.chdir('/')
    os.execve(lua, argv, {'PATH': DEFAULT_PATH})


def _pid1(spec, rootfs, env, supervisor):  # pragma: no cover
    """Steps 6 to 10, as the container's PID 1."""
    config, ready = spec.config, spec.ready
    try:
        # 6. state and cgroup
        sys_.set_parent_death_signal(SIGKILL)  # the supervisor gone means the container is
        join_cgroup(spec.cgroup)  # the supervisor stays out: an out-of-memory kill never takes it
        sys_.unshare(sys_.CLONE_NEWNS)  # a mount namespace of our own: pivot_root must not move the supervisor
        host_pid = int(os.readlink('/proc/self'))  # still the host's /proc: our PID out there
        write_json(os.path.join(spec.folder, 'state.json'), dict(supervisor, pid=host_pid, pid_start=start_time(),
                                                                 started=utc_now(), confined=CONFINEMENT_VERSION),
                   durable=False)
        # 7. /proc, and the namespaced sysctls given (before /proc/sys is made read-only)
        _sandbox.mount_proc(rootfs)
        for name, value in config.sysctls.items():
            _write_sysctl(rootfs, name, value)
        if not config.privileged:
            mask_proc(rootfs)
        # 8. pivot_root, with nothing to import from here on (sys.path is the image's)
        _sandbox.seal_imports()
        _sandbox.pivot_into(rootfs)
        if not os.path.isdir(config.run_workdir):  # WORKDIR (or -w) makes its folder, as Docker's does
            os.makedirs(config.run_workdir)
        if config.read_only:  # the root mount alone: /dev, /proc, volumes, tmpfs and /etc/hosts stay as they are
            sys_.mount(None, '/', None, sys_.MS_REMOUNT | sys_.MS_BIND | sys_.MS_RDONLY)
        for entry in config.ulimits:  # 'NAME=SOFT:HARD', before confine drops CAP_SYS_RESOURCE
            name, dummy, limits = entry.partition('=')
            resource.setrlimit(getattr(resource, 'RLIMIT_' + name.upper()),
                               tuple(resource.RLIM_INFINITY if int(n) == -1 else int(n) for n in limits.split(':')))
        # 9. confinement, then the image's USER (or --user)
        confine(spec.confinement)
        home = switch_user(config.run_as)
        if home and 'HOME' not in env_dict(config.environment):
            env['HOME'] = home
        # 10. exec
        os.write(ready, ('ok %d\n' % host_pid).encode())
        os.close(ready)
        if spec.go is not None and os.read(spec.go, 1) != b'1':  # the caller could not make its network: never run without
            os._exit(125)
    except Exception as e:
        os.write(ready, ('error: container setup failed: %s\n' % e).encode())
        os._exit(125)
    try:
        _sandbox.exec_command(config.argv, env, config.run_workdir)
    except OSError as e:
        sys.stderr.write('conductor: cannot run %s: %s\n' % (config.argv[0], e.strerror))
        os._exit(127 if e.errno == errno.ENOENT else 126)


class Join(Record):
    """What exec hands the process that joins a running container."""
    config: Config                 # the container's record
    namespaces: list               # fds of PID 1's namespaces, in JOIN_ORDER
    argv: list
    env: list                      # KEY=VALUE, over the container's environment
    workdir: str
    user: 'str | None'             # the image's USER or -u; None: root
    confinement: 'Confinement | None'
    cgroup: list                   # the files it joins its cgroups by (Cgroup.joins)
    stdio: 'tuple | None' = None   # the caller's (stdin, stdout, stderr); None: this process's
    detach: bool = False           # output to log, and return at once
    pty: 'object | None' = None    # the socket a pty master goes back over
    log: 'int | None' = None       # where a detached command writes


def join(spec: Join) -> None:  # pragma: no cover - runs in the child
    """exec: setns into each namespace fd (in JOIN_ORDER), confine, then fork: only children enter the
    new PID namespace. The forked child runs argv in a session of its own; this process forwards its
    exit code."""
    config, stdio, pty = spec.config, spec.stdio, spec.pty
    sys_.set_dumpable(False)  # until exec: the container's root cannot read our fds through /proc (runc's CVE-2016-9962)
    join_cgroup(spec.cgroup)  # while the host's /sys/fs/cgroup is still in reach
    _sandbox.seal_imports()  # after the last setns, sys.path is the container's
    for fd in spec.namespaces:
        sys_.setns(fd)
    confine(spec.confinement)
    environment = container_environment(config, pty is not None)
    home = switch_user(spec.user)
    if home and 'HOME' not in env_dict(config.environment):
        environment['HOME'] = home
    environment.update(env_dict(spec.env))
    if pty is not None:  # a terminal from the container's own devpts, as run has
        _attach_pty(pty, '/dev/pts')
        stdio = (0, 1, 2)
    pid = os.fork()
    if pid == 0:
        os.setsid()  # never the caller's controlling terminal: /dev/tty and TIOCSTI cannot reach it
        if spec.detach:
            stdio = (os.open(os.devnull, os.O_RDONLY), spec.log, spec.log)
        for target, fd in enumerate(stdio or ()):
            if fd != target:
                os.dup2(fd, target)
        if pty is not None:
            sys_.set_controlling_terminal(0)
        try:
            _sandbox.exec_command(spec.argv, environment, spec.workdir)
        except OSError as e:
            sys.stderr.write('conductor exec: cannot run %s: %s\n' % (spec.argv[0], e.strerror))
            os._exit(127 if e.errno == errno.ENOENT else 126)
    if spec.detach:
        os._exit(0)
    forward_exit(pid)


class RunStep(Record):
    """What the builder hands a RUN step's child, prepared: the child only applies it."""
    root: str                      # the state root
    overlay: tuple                 # (lowers, upper, work, merged) of the step's layer
    resolv_conf: str               # bound at /etc/resolv.conf
    argv: list
    env: dict
    workdir: str                   # made if missing
    confinement: Confinement       # the build's capabilities and seccomp filter
    user: 'str | None' = None      # USER, looked up in the image
    mounts: tuple = ()             # (host folder, target, read-only) from RUN --mount
    no_network: bool = False       # RUN --network=none: a fresh empty network namespace
    cgroup: tuple = ()             # the files the step joins its cgroups by (Cgroup.joins)
    netns: 'tuple | None' = None   # (fd, ready): the namespace the builder's helper networks; None: the host's


def build_step(spec: RunStep) -> None:  # pragma: no cover - child
    """A build's RUN step: its cgroup, fresh mount, PID, UTS and IPC namespaces, confined. Its network: with
    spec.netns (fd, ready), the namespace of the fd, whose veth the builder brings up meanwhile (a byte on the
    fd ready says it is done); else a fresh empty one (no_network: RUN --network=none); else the host's
    (conductor build --network host)."""
    netns, merged = spec.netns, spec.overlay[3]
    join_cgroup(spec.cgroup)
    if netns is not None:
        sys_.setns(netns[0], sys_.CLONE_NEWNET)
    sys_.unshare(sys_.CLONE_NEWNS | sys_.CLONE_NEWPID | sys_.CLONE_NEWUTS | sys_.CLONE_NEWIPC |
                 (sys_.CLONE_NEWNET if spec.no_network else 0))
    pid = os.fork()
    if pid:
        forward_exit(pid)
    sys_.set_parent_death_signal(SIGKILL)
    _sandbox.make_mounts_private()
    _sandbox.mount_overlay(*spec.overlay, cwd=spec.root, nodev=True)
    _sandbox.mount_dev(merged)  # first: mask_proc binds its /dev/null, never the image's (absent, or a link out)
    _sandbox.mount_proc(merged)
    mask_proc(merged)
    mount_sys(merged, False)
    _sandbox.bind_file(spec.resolv_conf, merged, '/etc/resolv.conf')
    for source, target, readonly in spec.mounts:
        _sandbox.bind_in_root(source, merged, target, readonly)
    sys_.sethostname('conductor-build')
    _sandbox.seal_imports()
    _sandbox.pivot_into(merged)
    confine(spec.confinement)  # before anything that can fail: the image's files decide what does
    if not os.path.isdir(spec.workdir):
        os.makedirs(spec.workdir)
    switch_user(spec.user)
    if netns is not None and os.read(netns[1], 1) != b'1':
        raise OSError(errno.ENETDOWN, "the step's network could not be made")
    _sandbox.exec_command(spec.argv, spec.env, spec.workdir)


# -- the steps ---------------------------------------------------------------------------------
def _attach_pty(sock, pts):  # pragma: no cover - runs in the child
    """Open a pty in the container's own devpts, send the master to the caller, make the slave our stdio."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # loaded by the caller already
    master, slave = _terminal.open_pty(pts)
    _terminal.send_master(sock, master)
    for target in (0, 1, 2):
        os.dup2(slave, target)


def mount_sys(rootfs: str, privileged: bool) -> None:
    flags = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
    _sandbox.mount_point(rootfs, '/sys')
    _sandbox.mount_in_root('sysfs', rootfs, '/sys', 'sysfs', flags | (0 if privileged else sys_.MS_RDONLY))
    for path in () if privileged else MASKED_SYS:  # a fresh sysfs: nothing in it was planted
        if os.path.isdir(rootfs + path):
            sys_.mount('tmpfs', rootfs + path, 'tmpfs', sys_.MS_RDONLY)


def _write_sysctl(rootfs, name, value):
    """Write a namespaced kernel parameter (checked by _options) through the container's own /proc."""
    path = os.path.join(rootfs, 'proc', 'sys', *name.split('.'))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(e.errno, 'sysctl %s: %s' % (name, e.strerror))
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise OSError(e.errno, 'sysctl %s=%s: %s' % (name, value, e.strerror))
    finally:
        os.close(fd)


def mask_proc(rootfs: str) -> None:
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


def confine(confinement: 'Confinement | None') -> None:
    """Step 9, in this order: a new session keyring (before the filter denies keyctl); the bounding set
    (root's next exec gets no more); no_new_privs if asked; the seccomp filter, loaded while
    CAP_SYS_ADMIN is still held, so no_new_privs is not needed and setuid programs keep working; then
    the effective, permitted, inheritable and ambient sets. None (privileged) keeps everything."""
    sys_.join_session_keyring()
    if confinement is None:
        return
    for cap in range(confinement.last_cap + 1):
        if cap not in confinement.caps:
            sys_.drop_bounding_capability(cap)
    if confinement.no_new_privs:
        sys_.set_no_new_privs()
    if confinement.seccomp:
        sys_.load_seccomp(confinement.seccomp)
    sys_.set_capabilities(confinement.caps)


def container_environment(config: Config, tty: bool) -> dict:
    """The command's environment: the image's and the container's, then PATH, HOME, HOSTNAME, TERM."""
    env = env_dict(config.environment)
    env.setdefault('PATH', DEFAULT_PATH)
    env.setdefault('HOME', '/root')
    env.setdefault('HOSTNAME', config.hostname or config.name)
    if tty:
        env.setdefault('TERM', os.environ.get('TERM', 'xterm'))
    return env


def join_cgroup(files: 'list | tuple') -> None:  # pragma: no cover - runs in the container's processes
    """Move this process, a forked child (one thread), into the container's cgroups: 0 (itself) to each of
    Cgroup.joins()."""
    for path in files:
        with open(path, 'w') as f:
            f.write('0')


def return_to_host() -> None:
    """The restart command's first step: join the host's namespaces again (fds 5 to 9, from the supervisor)."""
    for number, name in enumerate(HOST_NAMESPACES, FIRST_NAMESPACE_FD):
        sys_.setns(number)
        os.close(number)
    os.chdir('/')


def switch_user(spec: 'str | None') -> 'str | None':
    """USER name[:group] or uid[:gid], looked up in the image's own /etc/passwd and /etc/group (read as
    text after pivot_root or setns: no NSS module of the image is ever loaded). Sets the supplementary
    groups, the group and the user; returns the user's home folder, or None for root."""
    if not spec or spec in ('root', '0', '0:0'):
        return None
    uid, gid, name, home = user_ids(spec)
    groups = sorted({int(g[2]) for g in _entries('/etc/group') if name and name in g[3].split(',')} | {gid})
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    return home


def user_ids(spec: str) -> 'tuple[int, int, str | None, str]':
    """(uid, gid, name or None, home) for name[:group] or uid[:gid], from /etc/passwd and /etc/group read as
    text (the image's, after pivot_root or chroot)."""
    user, dummy, group = spec.partition(':')
    entry = _lookup('/etc/passwd', user, 2)
    if entry is None and not user.isdigit():
        raise OSError(errno.ENOENT, "USER %s: no such user in the image's /etc/passwd" % user)
    uid, gid = (int(entry[2]), int(entry[3])) if entry else (int(user), 0)
    if group:
        found = _lookup('/etc/group', group, 2)
        if found is None and not group.isdigit():
            raise OSError(errno.ENOENT, "USER %s: no such group in the image's /etc/group" % spec)
        gid = int(found[2]) if found else int(group)
    return uid, gid, entry[0] if entry else None, entry[5] if entry else '/'


def user_names(root: str) -> 'dict[int, str]':
    """{uid: name} from the /etc/passwd of the root given (a running container's /proc/<pid>/root), read as
    user_ids reads it."""
    names = {}
    for fields in _entries('/etc/passwd', root):
        if fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names


def _entries(path, root='/'):
    """/etc/passwd or /etc/group, each line split at its colons; none when there is no such file. It is read
    only as a regular file of at most USERS_MAX bytes, opened inside the root (the container's or the image's)
    without blocking: a FIFO, a device, a huge file or a link out of the root planted there is an error, never
    a wait, a host file or all memory."""
    try:
        fd = _sandbox.open_in_root(root, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise ConductorError('cannot read users and groups from %s (%s): make it a regular file' % (path, e.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConductorError('cannot read users and groups from %s: it is not a regular file: make it one' % path)
        data = b''
        while len(data) <= USERS_MAX:
            chunk = os.read(fd, USERS_MAX + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > USERS_MAX:
        raise ConductorError('cannot read users and groups from %s: it is larger than %d MiB: make it smaller'
                             % (path, USERS_MAX >> 20))
    return [line.split(':') for line in data.decode('utf-8', 'replace').split('\n') if line.count(':') >= 3]


def _lookup(path, key, id_field):
    for fields in _entries(path):
        if fields[0] == key or (key.isdigit() and fields[id_field] == key):
            return fields
    return None


def find_lua() -> 'tuple[str, str]':
    """(Lua 5.3, the folder of luaposix's posix.so) that the supervisor and the ports' holder run on. Without
    luaposix they would end at once, and PID 1 would have nobody to reap it."""
    arch = getattr(sys.implementation, '_multiarch', None)  # x86_64-linux-gnu; glob would load re for every start
    places = (['/usr/lib/%s/lua/5.3' % arch] if arch else []) + ['/usr/lib/lua/5.3'] + \
        ['/usr/lib/%s/lua/5.3' % entry for entry in sorted(os.listdir('/usr/lib')) if entry.endswith('-linux-gnu')]
    folders = [folder for folder in places if os.path.exists(folder + '/posix.so')]
    if os.path.exists(LUA) and folders:
        return LUA, folders[0]
    raise ConductorError('Lua 5.3 with luaposix is not installed (the supervisor of each container runs on it): '
                         'apt-get install lua5.3 lua-posix, or apply the conductor_host role')


def lua_command(name: str, code: str, **values) -> 'tuple[str, list[str]]':
    """(the Lua to exec, its argv) to run `code` as `name` (what ps shows): -E (no LUA_* variable counts), then a
    chunk that loads modules from luaposix's own folder alone (never the working folder, which Debian's
    package.path has: a student's hand-in could hold a posix/unistd.lua) and sets each value as a global: a str,
    an int or a list of str, every text quoted with each byte that is not a letter, a digit or one of
    ` /._-=:,@+` a decimal escape (exact, whatever it holds)."""
    lua, posix = find_lua()

    def text(value):
        return '"%s"' % ''.join(chr(b) if chr(b).isalnum() and b < 128 or chr(b) in ' /._-=:,@+' else '\\%03d' % b
                                for b in os.fsencode(value))

    def literal(value):
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list):
            return '{%s}' % ', '.join(text(v) for v in value)
        if isinstance(value, str):
            return text(value)
        raise TypeError('no Lua literal for %r' % (value,))
    setup = ['package.path, package.cpath = "", %s' % text(posix + '/?.so')]
    setup += ['%s = %s' % (key, literal(value)) for key, value in sorted(values.items())]
    return lua, [name, '-E', '-e', '\n'.join(setup), '-e', code]
