# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: conductor
short_description: Conductor containers as inventory hosts, on this machine or on lab VMs
description:
  - Lists the containers of a state root with C(conductor ps --json), on this machine or on each lab VM of
    O(hosts) over ssh, and adds each as a host that the P(cs695.conductor.conductor#connection) connection
    plugin reaches.
  - A container on this machine is named as it is; one on a lab VM is named C(NAME@VM).
  - Every host is in the group C(conductor).
  - Reads files whose names end in C(conductor.yml) or C(conductor.yaml).
author:
  - Conductor contributors (@cs695)
version_added: 0.1.0
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [cs695.conductor.conductor]
  root:
    description: The state root, on this machine and on every VM that does not set its own. Default is each machine's default.
    type: str
  hosts:
    description:
      - The lab VMs to list containers from, over ssh. Empty means this machine.
      - Each is a name or a dictionary with C(name) and any of C(ssh_user), C(ssh_port), C(ssh_private_key_file),
        C(ssh_args), C(root) and C(cli).
      - A name that an inventory source read before this one has as a host takes that host's C(ansible_host),
        C(ansible_user), C(ansible_port), C(ansible_ssh_private_key_file) and C(ansible_ssh_common_args).
    type: list
    elements: raw
    default: []
  include_stopped:
    description: Whether containers that do not run are listed too (Ansible cannot reach them).
    type: bool
    default: false
  filters:
    description:
      - Jinja2 tests on each container's host variables, tried in order; the first that matches decides.
        Each is a dictionary with one key, C(include) or C(exclude). A container no test matches is included.
    type: list
    elements: dict
    default: []
  cli:
    description: The conductor command line on the VMs (see the connection plugin's O(cs695.conductor.conductor#connection:cli)).
    type: str
'''

EXAMPLES = r'''
# classroom.conductor.yml: the running containers of two lab VMs, grouped by image
plugin: cs695.conductor.conductor
root: /srv/conductor
hosts:
  - lab1            # takes ansible_host, ansible_user... of lab1 from an inventory read before
  - name: lab2.example.org
    ssh_user: root
    ssh_private_key_file: ~/.ssh/lab_ed25519
filters:
  - exclude: conductor_image == "grader"
  - include: inventory_hostname is match("cs695-")
  - exclude: true
keyed_groups:
  - key: conductor_image
    prefix: image
compose:
  student: ansible_host | regex_replace("^cs695-", "")

# Then: ansible-inventory -i lab.ini -i classroom.conductor.yml --graph
'''

import json
import os

from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.cs695.conductor.plugins.plugin_utils._cli import Target, Unreachable

CONNECTION = 'cs695.conductor.conductor'
SSH_VARS = (('ssh_user', 'ansible_user'), ('ssh_port', 'ansible_port'),
            ('ssh_private_key_file', 'ansible_ssh_private_key_file'), ('ssh_args', 'ansible_ssh_common_args'))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = 'cs695.conductor.conductor'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('conductor.yml', 'conductor.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        key = self.get_cache_key(path)
        use_cache, update_cache = self.get_option('cache') and cache, self.get_option('cache') and not cache
        machines = None
        if use_cache:
            machines = self._cache.get(key)
            update_cache = machines is None
        if machines is None:
            machines = [(vm, self._containers(vm)) for vm in self._machines()]
        if update_cache:
            self._cache[key] = machines
        for vm, containers in machines:
            for container in containers:
                self._add(vm, container)

    def _machines(self):
        """[{name, root, cli, ssh_*}]: one per lab VM of hosts, or this machine."""
        machines = []
        for entry in self.get_option('hosts') or [None]:
            vm = dict(entry) if isinstance(entry, dict) else {'name': entry}
            unknown = set(vm) - {'name', 'root', 'cli'} - {option for option, dummy in SSH_VARS}
            if unknown or (entry is not None and not vm.get('name')):
                raise AnsibleParserError('hosts entry %r: give a name, and only the keys name, root, cli, ssh_user, '
                                         'ssh_port, ssh_private_key_file, ssh_args' % (entry,))
            vm.setdefault('root', self.get_option('root'))
            vm.setdefault('cli', self.get_option('cli'))
            known = self.inventory.get_host(vm['name']) if vm['name'] else None
            if known is not None:  # the VM's own inventory entry: how Ansible itself would ssh there
                hostvars = combine_vars(get_group_vars(known.get_groups()), known.get_vars())
                vm['address'] = hostvars.get('ansible_host')
                for option, var in SSH_VARS:
                    if vm.get(option) is None and hostvars.get(var) is not None:
                        vm[option] = hostvars[var]
            machines.append(vm)
        return machines

    def _target(self, vm):
        return Target(root=vm['root'], host=vm.get('address') or vm['name'], executable=vm['cli'],
                      ssh_user=vm.get('ssh_user'), ssh_port=vm.get('ssh_port'),
                      ssh_private_key_file=vm.get('ssh_private_key_file'), ssh_args=vm.get('ssh_args'))

    def _containers(self, vm):
        target = self._target(vm)
        if not vm['name'] and vm['root'] and not os.path.isdir(vm['root']):
            raise AnsibleParserError('the state root %s does not exist on this machine: fix the root option'
                                     % vm['root'])
        try:
            rc, out, err = target.run(['ps', '--json'])
        except Unreachable as e:
            raise AnsibleParserError('listing containers: %s' % e)
        if rc != 0:
            raise AnsibleParserError('conductor ps %s failed (%d): %s' % (target.describe(), rc, to_native(err).strip()))
        try:
            return json.loads(out)
        except ValueError:
            raise AnsibleParserError('conductor ps --json %s printed no JSON list: %r' % (target.describe(), out[:200]))

    def _add(self, vm, container):
        if not container['running'] and not self.get_option('include_stopped'):
            return
        hostvars = {'ansible_connection': CONNECTION, 'ansible_host': container['name'],
                    'conductor_image': container['image'], 'conductor_status': container['status'],
                    'conductor_address': container.get('address') or None,
                    'conductor_ports': container.get('ports', []), 'conductor_peers': container.get('peers', [])}
        if vm['root']:
            hostvars['ansible_conductor_root'] = vm['root']
        if vm['cli']:
            hostvars['ansible_conductor_cli'] = vm['cli']
        if vm['name']:
            hostvars['ansible_conductor_host'] = vm.get('address') or vm['name']
            hostvars.update(('ansible_conductor_' + option, vm[option])
                            for option, dummy in SSH_VARS if vm.get(option) is not None)
        name = container['name'] + ('@' + vm['name'] if vm['name'] else '')
        if not self._wanted(name, hostvars):
            return
        self.inventory.add_group('conductor')
        self.inventory.add_host(name, group='conductor')
        for key, value in hostvars.items():
            self.inventory.set_variable(name, key, value)
        strict = self.get_option('strict')
        self._set_composite_vars(self.get_option('compose'), hostvars, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option('groups'), hostvars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, name, strict=strict)

    def _wanted(self, name, hostvars):
        """The first of filters that matches decides; none matching means included."""
        variables = dict(hostvars, inventory_hostname=name)
        for rule in self.get_option('filters') or []:
            if len(rule) != 1 or next(iter(rule)) not in ('include', 'exclude'):
                raise AnsibleParserError('filters entry %r: use one key, include or exclude, with a Jinja2 test' % (rule,))
            action, test = next(iter(rule.items()))
            try:
                matched = self._compose(test, variables) if isinstance(test, str) else test
            except Exception as e:
                raise AnsibleParserError('filters entry %r on %s: %s' % (rule, name, to_native(e)))
            if matched in (True, 'True', 'true'):
                return action == 'include'
        return True
