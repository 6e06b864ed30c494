#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_overlay
short_description: Join the lab hosts' Conductor containers into one classroom network (VXLAN)
version_added: 0.1.0
description:
  - Makes this host's part of the classroom overlay (C(conductor overlay up)), the way flannel's vxlan backend does
    it. One VXLAN device, C(cdroverlay), goes on the uplink. Each other host becomes a static forwarding entry,
    a neighbour and a route for its subnet. There is no multicast and nothing is learned.
  - This host's containers get their addresses from O(subnet) (each a /30 of it), so every container has an address
    that is unique in the classroom.
  - The firewall's isolation does not change. A container reaches a container on another host only when the two
    are peered (M(cs695.conductor.conductor_peer) with C(remote_address), on both hosts), or when that one is a
    course service (C(classroom_service) of M(cs695.conductor.conductor_network)).
  - UDP to the VXLAN port is accepted only from the other hosts' uplink addresses, never from a container.
  - There is no encryption. Traffic between hosts crosses the lab network in the clear, as any VXLAN does.
  - V(absent) removes the device, its rules and its record. Containers keep their addresses.
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_diff
requirements:
  - iproute2 (C(ip), C(bridge)) and python3-nftables (or python-iptables on the legacy backend) on the managed host.
options:
  subnet:
    description:
      - This host's subnet of the classroom network, for example V(10.88.1.0/24).
      - Give it, or O(index).
    type: str
  index:
    description: Which /24 of O(network) is this host's (0 is the first), instead of O(subnet).
    type: int
  network:
    description:
      - The classroom network that every host's subnet is in, for example V(10.88.0.0/16).
      - Defaults to the /16 around O(subnet). It is required with O(index).
    type: str
  remotes:
    description:
      - The other lab hosts. A play can give them from its hosts' variables (see the examples).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The host's uplink address, where its VXLAN device listens.
        type: str
        required: true
      subnet:
        description: Its subnet of the classroom network.
        type: str
      index:
        description: Its /24 of O(network), instead of O(remotes[].subnet).
        type: int
  services:
    description:
      - The addresses of the course services on the other hosts (C(classroom_service) of
        M(cs695.conductor.conductor_network)). Every container here may send to them; their hosts decide the ports.
      - A container sends nothing else into the overlay but to its own peers (see M(cs695.conductor.conductor_peer)).
    type: list
    elements: str
    default: []
  vni:
    description: The VXLAN network identifier, the same on every host.
    type: int
    default: 695
  port:
    description: The VXLAN UDP port, the same on every host.
    type: int
    default: 4789
  uplink:
    description:
      - The interface the other hosts are reached on. Defaults to the interface of the route to the first remote host.
      - The overlay's MTU is the uplink's, less VXLAN's 50 bytes.
    type: str
  state:
    description: Whether the overlay is there.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Join every lab host of the play into one classroom network (each has the host var conductor_subnet)
  cs695.conductor.conductor_overlay:
    subnet: "{{ conductor_subnet }}"
    network: 10.88.0.0/16
    remotes: "{{ classroom_remotes }}"
  vars:
    classroom_remotes: >-
      {%- set found = [] -%}
      {%- for host in ansible_play_hosts_all if host != inventory_hostname -%}
      {%- set _ = found.append({'address': hostvars[host].ansible_facts.default_ipv4.address,
                                'subnet': hostvars[host].conductor_subnet}) -%}
      {%- endfor -%}
      {{ found }}

- name: Two hosts, given by hand
  cs695.conductor.conductor_overlay:
    subnet: 10.88.1.0/24
    remotes:
      - {address: 10.0.0.12, subnet: 10.88.2.0/24}

- name: Remove the overlay
  cs695.conductor.conductor_overlay:
    state: absent
'''

RETURN = r'''
overlay:
  description: The overlay after the task; empty when removed.
  returned: always
  type: dict
  sample:
    vni: 695
    port: 4789
    uplink: eth0
    local: 10.0.0.11
    mtu: 1450
    subnet: 10.88.1.0/24
    network: 10.88.0.0/16
    prefix: 30
    remotes: [{address: 10.0.0.12, subnet: 10.88.2.0/24}]
    services: [10.88.2.6]
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_overlay
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            subnet=dict(type='str'),
            index=dict(type='int'),
            network=dict(type='str'),
            remotes=dict(type='list', elements='dict', default=[], options=dict(
                address=dict(type='str', required=True), subnet=dict(type='str'), index=dict(type='int'))),
            vni=dict(type='int', default=695),
            port=dict(type='int', default=4789),
            uplink=dict(type='str'),
            services=dict(type='list', elements='str', default=[]),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            root=ROOT_OPTION,
        ),
        mutually_exclusive=[('subnet', 'index')],
        required_if=[('state', 'present', ('subnet', 'index'), True)],
        supports_check_mode=True,
    )
    p = module.params

    def action(store, out):
        return ensure_overlay(store, state=p['state'], subnet=p['subnet'], index=p['index'], network=p['network'],
                              remotes=p['remotes'], vni=p['vni'], port=p['port'], uplink=p['uplink'],
                              services=p['services'], check_mode=module.check_mode)
    run_module(module, action)


if __name__ == '__main__':
    main()
