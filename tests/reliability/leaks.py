# SPDX-License-Identifier: GPL-3.0-or-later
"""What 'nothing leaked' means, measured: the state root, mounts, links, rules, processes."""
import json
import os
import subprocess

import helpers

LONG = os.environ.get('CONDUCTOR_RELIABILITY') == 'long'
FIGURES = {'iterations': 0, 'faults injected': 0, 'bad inputs tried': 0, 'leaks found': 0}


def supervisors(root=''):
    """PIDs of the conductor supervisors of containers under root (their arguments name the folder)."""
    result = subprocess.run(['pgrep', '-f', '^conductor-supervisor .*%s' % root], capture_output=True, text=True,
                            check=False)
    return set(result.stdout.split())


def snapshot(cli, lab):
    """Everything the host would show of conductor's work, for before/after comparisons."""
    root = cli.root
    network = os.path.join(root, 'network', 'allocations.json')
    return {
        'listing': cli.listing(),
        'mounts': helpers.mounts_under(root),
        'links': lab.links() if lab else None,
        'rules': lab.iptables() if lab else None,
        'allocations': json.load(open(network)) if os.path.exists(network) else {},
    }


def leftovers(cli, lab, before_supervisors):
    """After every container is stopped: what is still there that should not be (empty when clean)."""
    found = []
    root = cli.root
    for folder in ('containers', 'layers', 'bases', 'images'):
        path = os.path.join(root, folder)
        tmp = [e for e in os.listdir(path) if e.startswith('.tmp-')] if os.path.isdir(path) else []
        found += ['%s/%s' % (folder, e) for e in tmp]
    if os.path.isdir(os.path.join(root, 'containers')):
        found += ['container ' + n for n in os.listdir(os.path.join(root, 'containers'))]
    found += ['mount ' + m for m in helpers.mounts_under(root)]
    found += ['supervisor %s' % p for p in supervisors(root) - before_supervisors]
    network = os.path.join(root, 'network', 'allocations.json')
    if os.path.exists(network) and json.load(open(network)):
        found.append('allocations %s' % json.load(open(network)))
    if lab:
        links = [line for line in lab.links().splitlines() if ': cdr' in line or ': cdp' in line]
        found += ['link ' + line.split(':')[1].strip() for line in links]
        found += ['rule ' + r for r in lab.iptables() if 'CONDUCTOR' in r]
    return found
