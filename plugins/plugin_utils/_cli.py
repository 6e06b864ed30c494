# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""How the connection and inventory plugins reach containers: the conductor CLI, run on this machine or
on a lab VM over ssh. One code path for both: the plugins build `conductor ARGS...`, this file decides
where it runs.

Locally, the CLI is this collection's own bin/conductor under the controller's Python, so the plugins
and the engine are always the same version. Remotely it is `conductor` on the VM's PATH (the
conductor_host role installs it), reached with ssh in batch mode over one ControlMaster connection
per VM and user, kept for a minute, so a task does not pay for a handshake.
"""

import os
import shlex
import subprocess
import sys

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL_CLI = [sys.executable, os.path.join(COLLECTION, 'bin', 'conductor')]
SSH_FAILED = 255  # ssh's own exit code for a failed connection, as Ansible's ssh plugin takes it
CLI_ERROR_PREFIX = b'conductor '  # the CLI's own errors: "conductor exec: container 'x' is not running ..."


class Unreachable(Exception):
    """The VM, its conductor CLI or the state root cannot be reached: no command ran."""


class Target:
    """Where the containers are: a state root, and, for a lab VM, how to ssh there."""

    def __init__(self, root=None, host=None, executable=None, ssh_user=None, ssh_port=None,
                 ssh_private_key_file=None, ssh_args=None, timeout=10):
        self.root, self.host, self.executable = root, host, executable
        self.ssh_user, self.ssh_port, self.ssh_key, self.ssh_args = ssh_user, ssh_port, ssh_private_key_file, ssh_args
        self.timeout = int(timeout or 10)

    def describe(self):
        where = 'on %s' % self.host if self.host else 'on this machine'
        return '%s (state root %s)' % (where, self.root) if self.root else where

    def argv(self, args):
        """The argv that runs `conductor [--root ROOT] ARGS...` where the containers are."""
        conductor = shlex.split(self.executable) if self.executable else None
        args = (['--root', self.root] if self.root else []) + list(args)
        if not self.host:
            return (conductor or LOCAL_CLI) + args
        return self.ssh_argv() + [' '.join(shlex.quote(a) for a in (conductor or ['conductor']) + args)]

    def ssh_argv(self):
        control = os.path.expanduser('~/.ansible/cp')
        if not os.path.isdir(control):
            os.makedirs(control, 0o700)
        argv = ['ssh', '-o', 'BatchMode=yes', '-o', 'ControlMaster=auto', '-o', 'ControlPersist=60s',
                '-o', 'ControlPath=%s/conductor-%%C' % control, '-o', 'ConnectTimeout=%d' % self.timeout]
        argv += ['-p', str(self.ssh_port)] if self.ssh_port else []
        argv += ['-l', self.ssh_user] if self.ssh_user else []
        argv += ['-i', os.path.expanduser(self.ssh_key)] if self.ssh_key else []
        return argv + shlex.split(self.ssh_args or '') + ['--', self.host]

    def popen(self, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
        """Start the CLI; stdin and stdout may be files, streamed without passing through this process."""
        argv = self.argv(args)
        try:
            return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
        except OSError as e:
            raise Unreachable('cannot run %s %s: %s' % (argv[0], self.describe(), e.strerror))

    def check(self, process, stderr):
        """Raise Unreachable when ssh failed, or the CLI refused before running anything (a missing or
        stopped container, an unknown user, no state root); otherwise leave the exit code to the caller.
        A container's own program can imitate the CLI's error line; that only marks its own host
        unreachable."""
        first = stderr.lstrip().split(b'\n', 1)[0].decode('utf-8', 'replace')
        if self.host and process.returncode == SSH_FAILED:
            raise Unreachable('ssh to %s failed: %s (check ssh_user, ssh_port, ssh_private_key_file and that %s '
                              'is up)' % (self.host, first or 'exit code 255', self.host))
        if process.returncode and stderr.startswith(CLI_ERROR_PREFIX) and b': cannot run ' not in stderr.split(b'\n')[0]:
            raise Unreachable('%s %s' % (first, self.describe()))
        if self.host and process.returncode == 127 and first.endswith(('conductor: not found', 'conductor: command not found')):
            raise Unreachable('the conductor CLI is not installed %s: %s (run the cs695.conductor.conductor_host '
                              'role there, or set the executable option)' % (self.describe(), first))

    def run(self, args, in_data=None):
        """(rc, stdout, stderr) of `conductor ARGS...`, in_data on its stdin."""
        process = self.popen(args, stdin=subprocess.PIPE if in_data is not None else subprocess.DEVNULL)
        stdout, stderr = process.communicate(in_data)
        self.check(process, stderr)
        return process.returncode, stdout, stderr
