# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""What every conductor module does around its one call into the engine."""

import gc

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store

ROOT_OPTION = dict(type='path')
# conductor_network's options, which conductor_container's network option takes too
PORTS_OPTION = dict(type='list', elements='dict', default=[], options=dict(
    container_port=dict(type='int', required=True),
    host_port=dict(type='int', required=True),
    protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
))
NETWORK_OPTIONS = dict(
    internet=dict(type='bool', default=False),
    published_ports=PORTS_OPTION,
    dns=dict(type='list', elements='str'),
    host_access=dict(type='str', choices=['all', 'dns-only', 'none']),
    link_local=dict(type='bool', default=False),
    classroom_service=dict(type='bool', default=False),
    ip=dict(type='str'),
    remote_peers=dict(type='list', elements='str'),
)


def run_module(module, action):
    """Call action(store, output_lines) and exit with its result dict; errors become one failed task."""
    gc.freeze()  # what the imports made (with the collector off: _bytecode) is never walked again
    gc.enable()
    output = []
    try:
        store = Store(module.params.get('root'))
        result = action(store, output.append)
    except ConductorError as e:
        tail = output[-20:]
        module.fail_json(msg=str(e), output_tail=tail)
    except OSError as e:
        module.fail_json(msg='%s (conductor modules need root: use become: true)' % e, output_tail=output[-20:])
    if not module._diff:
        result.pop('diff', None)
    for warning in result.pop('warnings', None) or []:
        module.warn(warning)
    module.exit_json(**result)
