#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_network
short_description: Connect a Conductor container to the host, the internet and published ports
version_added: 0.1.0
description:
  - Gives a running container a veth pair to the host with an address from the pool (C(conductor addnetwork)).
  - With O(internet=true) it gets a default route via the host, NAT out of the host's uplink and the
    host's upstream DNS servers.
  - O(published_ports) are reachable from other machines via any host address, from the host itself and via
    C(127.0.0.1). A host port that another container publishes or a program listens on is refused.
  - Idempotent. A rerun with the same settings reports no change; a changed port list applies only the difference.
  - Every rule lives in conductor's own iptables chains; the host's own rules and policies are never changed.
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
  container:
    description: The name of a running container.
    type: str
    required: true
  internet:
    description: A default route via the host, NAT out of its uplink (C(DEFAULT_IFC)), and DNS.
    type: bool
    default: false
  published_ports:
    description: Container ports to publish as host ports.
    type: list
    elements: dict
    default: []
    suboptions:
      container_port:
        description: The port inside the container.
        type: int
        required: true
      host_port:
        description: The port on the host.
        type: int
        required: true
      protocol:
        description: The protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
  dns:
    description: DNS servers for the container. Defaults to C(DNS) in the config, else the host's upstream servers.
    type: list
    elements: str
  host_access:
    description:
      - What of the host the container reaches on its gateway address.
      - V(all), as Docker; V(dns-only), port 53 only; V(none), nothing (its published ports still work).
      - Defaults to C(HOST_ACCESS) in the config, else V(all).
    type: str
    choices: [all, dns-only, none]
  link_local:
    description: With O(internet), let the container reach 169.254.0.0/16 too, where cloud metadata services live.
    type: bool
    default: false
  classroom_service:
    description:
      - Make the container a course service (C(conductor addnetwork --classroom-service)) every container reaches,
        on this host and, through the classroom overlay (M(cs695.conductor.conductor_overlay)), on the other lab hosts.
      - Only on the ports its image EXPOSEs and those it publishes; it needs at least one.
    type: bool
    default: false
  ip:
    description:
      - The container's address (C(--ip)), in the host's pool (the overlay's subnet when there is one), instead of
        the first free one. The host takes the first address of its /prefix, so the container's is the second or later.
      - A fixed address lets a playbook name a container on another host (in C(etc_hosts), or a peering's
        O(cs695.conductor.conductor_peer#module:remote_address)) before it exists.
    type: str
  remote_peers:
    description:
      - Exactly the containers on other lab hosts this one is peered with, by their addresses there (this host's half
        of each peering, as M(cs695.conductor.conductor_peer) with C(remote_address) makes one). A peering not listed
        is undone.
      - Not given, the peerings stay as they are.
    type: list
    elements: str
  state:
    description: V(present) connects the container; V(absent) removes its link, rules, peerings and address.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Put the web container on the internet and publish its port 8080 as host port 80
  cs695.conductor.conductor_network:
    container: web
    internet: true
    published_ports:
      - container_port: 8080
        host_port: 80

- name: Take its network away again
  cs695.conductor.conductor_network:
    container: web
    state: absent
'''

RETURN = r'''
network:
  description: The container's network after the task; empty when removed.
  returned: always
  type: dict
  sample:
    name: web
    interface: eth0
    host_if: cdr1f0e4c7b2a9
    subnet: 192.168.0.0/24
    host_ip: 192.168.0.1
    container_ip: 192.168.0.2
    prefix: 24
    internet: true
    uplink: eth0
    ports: [{container_port: 8080, host_port: 80, protocol: tcp}]
    dns: null
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_network
from ansible_collections.cs695.conductor.plugins.module_utils._module import NETWORK_OPTIONS, ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            NETWORK_OPTIONS,
            container=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            root=ROOT_OPTION,
        ),
        supports_check_mode=True,
    )
    p = module.params

    def action(store, out):
        return ensure_network(store, p['container'], state=p['state'], internet=p['internet'],
                              ports=p['published_ports'], dns=p['dns'], host_access=p['host_access'],
                              link_local=p['link_local'], classroom_service=p['classroom_service'], ip=p['ip'],
                              remote_peers=p['remote_peers'], check_mode=module.check_mode)
    run_module(module, action)


if __name__ == '__main__':
    main()
