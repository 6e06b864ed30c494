#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_info
short_description: List Conductor images and containers
version_added: 0.1.0
description:
  - Returns the images and containers on the managed host, as C(conductor images) and C(conductor ps) list them.
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
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._store import public
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(argument_spec=dict(root=ROOT_OPTION), supports_check_mode=True)
    run_module(module, lambda store, out: {
        'changed': False,
        'images': [public(m) for m in store.images()],
        'containers': Containers(store).list(),
    })


if __name__ == '__main__':
    main()
