# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Processes as the kernel reports them: liveness, waiting, ending them, and their exit codes.

A process is known by its PID plus its start time (field 22 of /proc/<pid>/stat), never by the PID
alone: a PID is recycled, the pair is not.
"""

import errno
import os
from _signal import SIGKILL, SIGTERM  # signal, the same numbers as IntEnums, costs a command 1.5 ms (enum)
import time


def proc_stat(pid='self'):
    """The fields of /proc/<pid>/stat after the command name, or None if there is no such process.

    fields[0] is the state, fields[1] the parent PID, fields[19] the start time in clock ticks.
    """
    try:
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rpartition(')')[2].split()
    except (IOError, OSError):
        return None


def start_time(pid='self'):
    """The process's start time in clock ticks since boot, or None if it has ended (zombies too)."""
    fields = proc_stat(pid)
    return None if fields is None or fields[0] in ('Z', 'X') else int(fields[19])


def alive(pid, start):
    """PID plus start time: a recycled PID is never taken for the process we started."""
    return bool(pid) and start is not None and start_time(pid) == start


def pid_alive(pid):
    """Whether some process has this PID (the owner of a temporary folder, say)."""
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def exit_code(status):
    """A wait status as a shell reports it: the exit code, or 128 + the signal number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def forward_exit(pid):
    """Wait for pid and leave with its exit code (the intermediate process of a PID namespace)."""
    while True:
        try:
            dummy, status = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover
            continue
    os._exit(exit_code(status))


def wait_gone(pid, start, timeout):
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


def terminate(pid, start, timeout, first=SIGTERM):
    """`first` (SIGTERM, or the image's STOPSIGNAL), then SIGKILL after timeout seconds; returns once gone."""
    for sig, wait in ((first, timeout), (SIGKILL, 10.0)):
        if not alive(pid, start):
            return
        try:
            os.kill(pid, sig)
        except OSError as e:
            if e.errno == errno.ESRCH:
                return
            raise
        if wait_gone(pid, start, wait):
            return


def kill_tree(pid):
    """SIGKILL pid and its descendants (a supervisor that lost track of its child)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            fields = proc_stat(entry)
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            os.kill(current, SIGKILL)
        except OSError:
            pass
