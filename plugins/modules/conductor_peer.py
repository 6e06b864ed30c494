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
  - With O(remote_address), the peer is a container on another lab host of the classroom overlay
    (M(cs695.conductor.conductor_overlay)), known by its address there. This task writes this host's half of the
    peering (the rule for its own container); the same task on the other host, the other way round, writes the other
    half. Until both are there, nothing gets through.
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
    description: The two containers; with O(remote_address), the one container on this host.
    type: list
    elements: str
    required: true
  remote_address:
    description: The address of the peer, a container on another lab host (in that host's subnet of the overlay).
    type: str
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

- name: Let ann's container (on this host) and ben's (on another lab host, 10.88.2.6) reach each other
  cs695.conductor.conductor_peer:
    containers: [cs695-ann]
    remote_address: 10.88.2.6
'''

RETURN = r'''
peer:
  description: The peering after the task.
  returned: always
  type: dict
  sample: {containers: [db, web], state: present}
  contains:
    containers:
      description: The containers, sorted (one with O(remote_address)).
      type: list
      elements: str
      returned: always
    remote_address:
      description: The peer on another host.
      type: str
      returned: when O(remote_address) is given
    state:
      description: O(state).
      type: str
      returned: always
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_peer, ensure_remote_peer
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            containers=dict(type='list', elements='str', required=True),
            remote_address=dict(type='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            root=ROOT_OPTION,
        ),
        supports_check_mode=True,
    )
    containers, remote = module.params['containers'], module.params['remote_address']
    if len(containers) != (1 if remote else 2):
        module.fail_json(msg='containers must name exactly %s, got %d' % (
            'one container (the one on this host) with remote_address' if remote else 'two containers', len(containers)))

    def action(store, out):
        if remote:
            return ensure_remote_peer(store, containers[0], remote, state=module.params['state'],
                                      check_mode=module.check_mode)
        return ensure_peer(store, containers[0], containers[1], state=module.params['state'],
                           check_mode=module.check_mode)
    run_module(module, action)


if __name__ == '__main__':
    main()
