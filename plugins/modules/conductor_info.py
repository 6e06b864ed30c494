#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_info
short_description: List Conductor images and containers, and check the host
version_added: 0.1.0
description:
  - Returns the images and containers on the managed host, as C(conductor images) and C(conductor ps) list them.
  - With O(doctor=true), also what C(conductor doctor --json) checks (kernel, firewall backend and forward policies,
    C(ip_forward), debootstrap and keyrings, project quotas, free space, Python libraries), each with its fix.
  - With O(stats=true), also what each running container uses now, as C(conductor stats --json) reports it.
options:
  stats:
    description:
      - Also return what each running container uses now (CPU, memory, processes, block and network I/O) as
        RV(stats), measured over half a second.
    type: bool
    default: false
  doctor:
    description:
      - Also check the host, as C(conductor doctor) does, and return the result as RV(doctor).
      - The task does not fail on a problem; the C(conductor_host) role does, with every fix in its message.
    type: bool
    default: false
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.info_module
'''

EXAMPLES = r'''
- name: What runs on the lab hosts?
  cs695.conductor.conductor_info:
  register: conductor

- name: Ad hoc, from the command line
  ansible.builtin.debug:
    msg: ansible labhosts -b -m cs695.conductor.conductor_info
'''

RETURN = r'''
images:
  description: The images.
  returned: always
  type: list
  elements: dict
  sample: [{name: cs695, id: 308cbd19efa1..., size: 287118724, layers: [1cf2dca8b0e5...], created: '2026-11-28T12:53:20Z'}]
containers:
  description: The containers with their status.
  returned: always
  type: list
  elements: dict
  sample: [{name: web, image: cs695, status: running, pid: 4242, exit_code: null, created: '2026-11-28T13:00:00Z'}]
stats:
  description:
    - With O(stats=true), one entry per running container, as C(conductor stats --json) gives it.
    - C(cpu_percent) (100 is one core), C(memory) and C(memory_limit) (bytes), C(memory_percent), C(pids) and
      C(pids_limit) (-1 for none), C(io_read) and C(io_write), C(net_rx) and C(net_tx) (bytes, as the container sees
      them); a figure the host keeps no file for is left out.
  returned: when O(stats=true)
  type: list
  elements: dict
  sample: [{name: web, running: true, status: running, cpu_percent: 12.5, memory: 52428800, memory_limit: 209715200,
            memory_percent: 25.0, pids: 3, pids_limit: 2048, io_read: 0, io_write: 4096, net_rx: 1200, net_tx: 800}]
doctor:
  description:
    - The host's checks, with O(doctor=true). Each check has C(check) (its name), C(status) (V(ok), V(warning) or
      V(problem)), C(detail) (what was found) and C(fix) (how to fix it, or null).
    - C(problems) lists the checks whose status is V(problem); C(summary) counts them.
  returned: when O(doctor=true)
  type: dict
  sample:
    summary: 1 problem(s), 0 warning(s)
    problems: [{check: images.debootstrap, status: problem, detail: debootstrap is not installed, fix: apt-get install debootstrap}]
    checks: [{check: kernel.overlayfs, status: ok, detail: overlayfs, fix: null}]
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._store import public
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def gather(store, doctor, stats):
    result = {'changed': False, 'images': [public(m) for m in store.images()], 'containers': Containers(store).list()}
    if stats:
        from ansible_collections.cs695.conductor.plugins.module_utils import _stats
        result['stats'] = _stats.measure(store)
    if doctor:
        from ansible_collections.cs695.conductor.plugins.module_utils import _doctor
        checks = _doctor.checks(store)
        result['doctor'] = {'checks': checks, 'summary': _doctor.summary(checks),
                            'problems': [c for c in checks if c['status'] == 'problem']}
    return result


def main():
    module = AnsibleModule(argument_spec=dict(root=ROOT_OPTION, doctor=dict(type='bool', default=False),
                                              stats=dict(type='bool', default=False)),
                           supports_check_mode=True)
    run_module(module, lambda store, out: gather(store, module.params['doctor'], module.params['stats']))


if __name__ == '__main__':
    main()
