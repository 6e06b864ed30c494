# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: conductor
short_description: Run tasks inside Conductor containers, on this machine or on a lab VM
description:
  - Runs commands in a running Conductor container and copies files in and out, through the C(conductor exec)
    command line, so every command runs as exec runs one; in all of the container's namespaces and its cgroup,
    in a new session, under its capabilities and seccomp filter, as O(remote_user).
  - Files are streamed through C(cat) run inside the container, so no path under the container's root is ever
    opened on the host (a symlink the container plants, even at C(~/.ansible), leads nowhere outside it). Owners
    and modes are those of O(remote_user); memory use does not grow with the file's size.
  - On this machine the plugin runs the collection's own C(bin/conductor) with the controller's Python, which
    needs root. With O(host) set it runs C(conductor) on that lab VM over ssh, one reused connection
    (ControlMaster) per VM; the P(cs695.conductor.conductor#inventory) inventory plugin fills these options in.
  - A stopped or missing container, an unknown user, a missing state root or a VM that cannot be reached make
    the host UNREACHABLE with that reason.
  - Supports pipelining, and C(become) with su or sudo where the image has them.
author:
  - Conductor contributors (@cs695)
version_added: 0.1.0
extends_documentation_fragment:
  - ansible.builtin.connection_pipelining
options:
  remote_addr:
    description: The container's name.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_conductor_container
  remote_user:
    description:
      - The user (C(name[:group]) or C(uid[:gid]), looked up in the image's /etc/passwd) commands run as.
      - Default is the image's C(USER), else root.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_conductor_user
    keyword:
      - name: remote_user
    cli:
      - name: user
  root:
    description:
      - The state root on the machine the containers run on.
      - Default is that machine's default (C(ROOT) in its conductor.conf, else /var/lib/conductor).
    type: str
    vars:
      - name: ansible_conductor_root
  working_dir:
    description: The folder commands start in. Default is the image's C(WORKDIR).
    type: str
    vars:
      - name: ansible_conductor_working_dir
  extra_env:
    description: Environment variables added to every command.
    type: dict
    default: {}
    vars:
      - name: ansible_conductor_extra_env
  timeout:
    description: Seconds to wait for the ssh connection to O(host), and for the password prompt of C(become).
    type: int
    default: 10
    vars:
      - name: ansible_conductor_timeout
  host:
    description: The lab VM the container runs on, reached with ssh. Empty means this machine.
    type: str
    vars:
      - name: ansible_conductor_host
  ssh_user:
    description: The user to ssh to O(host) as; it must be able to run C(conductor) (root, or see O(cli)).
    type: str
    vars:
      - name: ansible_conductor_ssh_user
  ssh_port:
    description: The ssh port of O(host).
    type: int
    vars:
      - name: ansible_conductor_ssh_port
  ssh_private_key_file:
    description: The private key to log in to O(host) with.
    type: path
    vars:
      - name: ansible_conductor_ssh_private_key_file
  ssh_args:
    description: More ssh options, as one string (for example C(-o StrictHostKeyChecking=accept-new)).
    type: str
    vars:
      - name: ansible_conductor_ssh_args
  cli:
    description:
      - The conductor command line, split like a shell would (for example C(sudo -n conductor)).
      - Default is C(conductor) on O(host), and the collection's C(bin/conductor) under the controller's Python on this machine.
    type: str
    vars:
      - name: ansible_conductor_cli
'''

EXAMPLES = r'''
# inventory.ini: containers on this machine, and on a lab VM
# [local]
# cs695-alice ansible_connection=cs695.conductor.conductor
# [lab1]
# cs695-bob ansible_connection=cs695.conductor.conductor ansible_conductor_host=lab1.example.org
#     ansible_conductor_ssh_user=root ansible_conductor_root=/srv/conductor

- name: Configure student containers
  hosts: all
  tasks:
    - name: Install the course tools
      ansible.builtin.apt:
        name: gcc
    - name: Copy the exercise sheet, as the student
      ansible.builtin.copy:
        src: sheet.pdf
        dest: /home/student/sheet.pdf
        mode: "0644"
      remote_user: student
'''

import os
import selectors
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.cs695.conductor.plugins.plugin_utils._cli import Target, Unreachable

display = Display()


class Connection(ConnectionBase):
    transport = 'cs695.conductor.conductor'
    has_pipelining = True

    def _target(self):
        return Target(root=self.get_option('root'), host=self.get_option('host'), executable=self.get_option('cli'),
                      ssh_user=self.get_option('ssh_user'), ssh_port=self.get_option('ssh_port'),
                      ssh_private_key_file=self.get_option('ssh_private_key_file'),
                      ssh_args=self.get_option('ssh_args'), timeout=self.get_option('timeout'))

    def _connect(self):
        if not self._connected:
            display.vvv('CONDUCTOR CONTAINER %s %s' % (self.get_option('remote_addr'), self._target().describe()),
                        host=self.get_option('remote_addr'))
            self._connected = True
        return self

    def _exec_args(self, argv):
        """`exec -u USER -w DIR -e K=V... NAME -- argv`: what the CLI is asked to run."""
        args = ['exec']
        if self.get_option('remote_user'):
            args += ['-u', self.get_option('remote_user')]
        if self.get_option('working_dir'):
            args += ['-w', self.get_option('working_dir')]
        for key, value in sorted((self.get_option('extra_env') or {}).items()):
            args += ['-e', '%s=%s' % (key, value)]
        return args + [self.get_option('remote_addr'), '--'] + list(argv)

    def _run(self, argv, in_data=None, stdin=subprocess.PIPE, stdout=subprocess.PIPE, prompt=False):
        """(rc, stdout, stderr) of argv in the container, with in_data, or the file stdin, on its stdin; a file
        stdout is written to directly. prompt: answer become's password prompt first."""
        target = self._target()
        try:
            process = target.popen(self._exec_args(argv), stdin=stdin, stdout=stdout)
            if prompt:
                self._answer_password_prompt(process)
            out, err = process.communicate(in_data)
            target.check(process, err)
        except Unreachable as e:
            raise AnsibleConnectionFailure('container %s: %s' % (self.get_option('remote_addr'), e))
        return process.returncode, out, err

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = [self._play_context.executable or '/bin/sh', '-c', cmd]
        display.vvv('EXEC %s' % argv, host=self.get_option('remote_addr'))
        return self._run(argv, in_data, prompt=bool(sudoable and self.become and self.become.expect_prompt()))

    def _answer_password_prompt(self, process):
        """become with a password (sudo -S): read until the become plugin sees its prompt or success, and
        answer the prompt on stdin. What was read is the become plugin's, not the command's."""
        seen = b''
        with selectors.DefaultSelector() as selector:
            for stream in (process.stdout, process.stderr):
                selector.register(stream, selectors.EVENT_READ)
            while not self.become.check_success(seen) and not self.become.check_password_prompt(seen):
                ready = selector.select(self.get_option('timeout'))
                chunks = [os.read(key.fileobj.fileno(), 4096) for key, dummy in ready]
                if not ready or not any(chunks):
                    process.kill()
                    process.communicate()
                    raise AnsibleError('container %s: no privilege escalation prompt within %ss: %s'
                                       % (self.get_option('remote_addr'), self.get_option('timeout'), to_native(seen)))
                seen += b''.join(chunks)
        if not self.become.check_success(seen):
            password = self.become.get_option('become_pass', playcontext=self._play_context) or ''
            process.stdin.write(to_bytes(password, errors='surrogate_or_strict') + b'\n')
            process.stdin.flush()

    def _absolute(self, path):
        """A relative remote path as ssh would take it: from the user's home; here, from /."""
        return path if path.startswith('/') else '/' + path

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv('PUT %s TO %s' % (in_path, out_path), host=self.get_option('remote_addr'))
        if not os.path.isfile(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleFileNotFound('file or module does not exist: %s' % in_path)
        script = 'cat > %s' % shlex.quote(self._absolute(out_path))
        with open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb') as source:
            rc, dummy, err = self._run(['/bin/sh', '-c', script], stdin=source)
        if rc != 0:
            raise AnsibleError('copying %s to %s in container %s failed (%d): %s'
                               % (in_path, out_path, self.get_option('remote_addr'), rc, to_native(err).strip()))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv('FETCH %s TO %s' % (in_path, out_path), host=self.get_option('remote_addr'))
        with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb') as target:
            rc, dummy, err = self._run(['cat', '--', self._absolute(in_path)], stdin=subprocess.DEVNULL, stdout=target)
        if rc != 0:
            raise AnsibleError('fetching %s from container %s failed (%d): %s'
                               % (in_path, self.get_option('remote_addr'), rc, to_native(err).strip()))

    def close(self):
        self._connected = False
