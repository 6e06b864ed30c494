#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_volume
short_description: Manage Conductor's named volumes
version_added: 0.1.0
description:
  - A named volume keeps data apart from any container (C(conductor volume create)). Containers mount it with
    O(cs695.conductor.conductor_container#module:volumes), so a student's work outlives a recreate for a new image.
  - A volume is never deleted by stopping or recreating a container, by removing an image, or by rmcache; only
    V(absent) deletes it, and not while a container uses it.
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_diff
options:
  name:
    description: The volume name, 1 to 63 characters from C(a-zA-Z0-9_.-), starting with a letter or digit.
    type: str
    required: true
  state:
    description: V(present) makes the volume if needed; V(absent) deletes it and its data, unless a container uses it.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: A volume for alice's work
  cs695.conductor.conductor_volume:
    name: alice-work

- name: Delete it, with everything in it
  cs695.conductor.conductor_volume:
    name: alice-work
    state: absent
'''

RETURN = r'''
volume:
  description: The volume after the task ({} once absent).
  returned: always
  type: dict
  sample: {name: alice-work, created: '2026-11-28T10:00:00Z', anonymous: false, populated: false}
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_volume
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            root=ROOT_OPTION,
        ),
        supports_check_mode=True,
    )
    p = module.params
    run_module(module, lambda store, out: ensure_volume(store, p['name'], p['state'], module.check_mode))


if __name__ == '__main__':
    main()
