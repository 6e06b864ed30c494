#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_exec
short_description: Run a command in a running Conductor container
version_added: 0.1.0
description:
  - Runs a command in all five namespaces of a running container, with the container's capabilities and
    seccomp filter, as C(conductor exec) does, and as the image's C(USER) (root if it names none) or O(user).
  - Like M(ansible.builtin.command), it reports a change whenever it runs the command, fails when the
    command exits non-zero, and can be skipped with O(creates) or O(removes).
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_pending
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details: In check mode the command does not run; O(creates) and O(removes) are still checked in a running container.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  container:
    description: The name of a running container.
    type: str
    required: true
  argv:
    description: The command as a list, no shell involved. Mutually exclusive with O(command).
    type: list
    elements: str
  command:
    description: The command as a string, split as a shell would (no shell features). Mutually exclusive with O(argv).
    type: str
  chdir:
    description: The folder inside the container to run in. Defaults to the image's C(WORKDIR).
    type: str
    aliases: [workdir]
  user:
    description:
      - The user (and group) to run as, a name or number of the image's, such as V(student) or V(1000:1000), as
        C(conductor exec -u). Defaults to the image's C(USER), else root.
    type: str
  tty:
    description:
      - Give the command a terminal of the container's own, as C(conductor exec) on a terminal (for programs that
        want one). Its stdout and stderr then both arrive in RV(stdout), with the terminal's line endings.
    type: bool
    default: false
  env:
    description: Environment variables, added to the container's.
    type: dict
    default: {}
  detach:
    description: Leave the command running in the background, its output going to the container's log.
    type: bool
    default: false
  creates:
    description: A path inside the container; if it exists, the command is not run.
    type: str
  removes:
    description: A path inside the container; if it does not exist, the command is not run.
    type: str
'''

EXAMPLES = r'''
- name: Show the container's addresses
  cs695.conductor.conductor_exec:
    container: web
    argv: [ip, -brief, address]
  register: addresses

- name: Install a package once
  cs695.conductor.conductor_exec:
    container: web
    command: sh -c "apt-get update && apt-get install -y curl"
    creates: /usr/bin/curl

- name: Run as the course's user, in its home, on a terminal
  cs695.conductor.conductor_exec:
    container: web
    argv: [sh, -c, "id -un; pwd; tty"]
    user: student
    workdir: /home/student
    tty: true

- name: Start a service in the background
  cs695.conductor.conductor_exec:
    container: web
    argv: [python3, -m, http.server, "9000"]
    detach: true
'''

RETURN = r'''
rc:
  description: The command's exit code (0 when detached).
  returned: always
  type: int
  sample: 0
stdout:
  description: What the command wrote to stdout (empty when detached).
  returned: always
  type: str
  sample: 'eth0 UP 192.168.1.2/24'
stderr:
  description: What the command wrote to stderr.
  returned: always
  type: str
  sample: ''
'''

import shlex

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._exec import capture
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type='str', required=True),
            argv=dict(type='list', elements='str'),
            command=dict(type='str'),
            chdir=dict(type='str', aliases=['workdir']),
            user=dict(type='str'),
            tty=dict(type='bool', default=False),
            env=dict(type='dict', default={}),
            detach=dict(type='bool', default=False),
            creates=dict(type='str'),
            removes=dict(type='str'),
            root=ROOT_OPTION,
        ),
        mutually_exclusive=[('argv', 'command'), ('tty', 'detach')],
        required_one_of=[('argv', 'command')],
        supports_check_mode=True,
    )
    p = module.params
    argv = p['argv'] or shlex.split(p['command'])

    def action(store, out):
        result = capture(store, p['container'], argv, env=p['env'], workdir=p['chdir'], user=p['user'],
                         tty=p['tty'], detach=p['detach'], creates=p['creates'], removes=p['removes'],
                         check_mode=module.check_mode)
        if result['rc'] != 0:
            module.fail_json(msg='the command exited with code %d' % result['rc'], **result)
        return result
    run_module(module, action)


if __name__ == '__main__':
    main()
