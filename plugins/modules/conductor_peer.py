#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_peer
short_description: Let two networked Conductor containers reach each other
version_added: 0.1.0
description:
  - Containers are isolated from each other by default. A peering allows traffic between two containers
    that have a network (M(cs695.conductor.conductor_network)), both ways (C(conductor peer)).
  - V(absent) removes the peering again (C(conductor unpeer)).
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_pending
  - cs695.conductor.attributes.check_diff
requirements:
  - python3-nftables (or, on the legacy iptables backend, python-iptables) on the managed host (the
    cs695.conductor.conductor_host role installs them).
options:
  containers:
    description: The two containers.
    type: list
    elements: str
    required: true
  state:
    description: Whether the two may reach each other.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Let the web container talk to its database
  cs695.conductor.conductor_peer:
    containers: [web, db]
'''

RETURN = r'''
peer:
  description: The peering after the task.
  returned: always
  type: dict
  sample: {containers: [db, web], state: present}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_peer
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type='list', elements='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            root=ROOT_OPTION,
        ),
        supports_check_mode=True,
    )
    containers = module.params['containers']
    if len(containers) != 2:
        module.fail_json(msg='containers must name exactly two containers, got %d' % len(containers))

    def action(store, out):
        return ensure_peer(store, containers[0], containers[1], state=module.params['state'],
                           check_mode=module.check_mode)
    run_module(module, action)


if __name__ == '__main__':
    main()
