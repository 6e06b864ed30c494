# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Conductor's netfilter rules, through python-iptables, in chains of its own.

The rules are a pure function of the allocations and peerings: every change rebuilds conductor's
chains from them in one commit per table, so a crash between two commands leaves nothing that the
next command does not put right. The host's chains get exactly one jump each into ours, removed with
our chains when the last network goes; their rules and policies are never touched otherwise.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import fcntl
import os
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._fastimport import import_iptc

CHAINS = (('filter', 'FORWARD', 'CONDUCTOR-FORWARD'), ('nat', 'PREROUTING', 'CONDUCTOR-PREROUTING'),
          ('nat', 'OUTPUT', 'CONDUCTOR-OUTPUT'), ('nat', 'POSTROUTING', 'CONDUCTOR-POSTROUTING'))

XTABLES_LOCK = '/run/xtables.lock'  # what iptables -w, ufw, fail2ban and Docker take around a change


@contextlib.contextmanager
def xtables_lock(wait=10.0):
    """Hold the xtables lock, as `iptables -w` does: a commit rewrites whole tables, and without the
    lock it could drop a rule another tool added meanwhile. Waits up to `wait` seconds, then fails
    before anything was changed. XTABLES_LOCKFILE names another lock file, as for iptables."""
    path = os.environ.get('XTABLES_LOCKFILE') or XTABLES_LOCK
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.time() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() >= deadline:
                    raise ConductorError('another program (iptables, ufw, fail2ban, Docker) has held the xtables lock %s '
                                         'for %g s, so the firewall was left as it was: try again, or find the holder '
                                         'with fuser %s (XTABLES_WAIT in the config sets the wait)' % (path, wait, path))
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def desired_rules(allocations, peers, pool):
    """{chain: [rule, ...]}: every rule conductor wants, each a dict the apply step turns into iptc."""
    if not allocations:
        return {chain[2]: [] for chain in CHAINS}
    forward = [{'dst': pool, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT'},
               {'src': pool, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT'}]
    prerouting, output, postrouting, drops = [], [], [], []
    for a, b in peers:
        if a in allocations and b in allocations:
            ip_a, ip_b = allocations[a]['container_ip'], allocations[b]['container_ip']
            forward += [{'src': ip_a, 'dst': ip_b, 'target': 'ACCEPT'}, {'src': ip_b, 'dst': ip_a, 'target': 'ACCEPT'}]
    for name in sorted(allocations):
        alloc = allocations[name]
        ip = alloc['container_ip']
        for port in alloc.get('ports', []):
            proto, inner, outer = port['protocol'], str(port['container_port']), str(port['host_port'])
            forward.append({'dst': ip, 'protocol': proto, 'dport': inner, 'target': 'ACCEPT'})
            dnat = {'protocol': proto, 'dport': outer, 'local': True, 'target': 'DNAT', 'to': '%s:%s' % (ip, inner)}
            prerouting.append(dnat)
            output.append(dnat)
        if alloc.get('ports'):
            postrouting.append({'src': '127.0.0.0/8', 'dst': ip, 'target': 'MASQUERADE'})  # publishing on 127.0.0.1
        if alloc.get('internet'):
            forward.append({'src': ip, 'out': alloc['uplink'], 'target': 'ACCEPT'})
            postrouting.append({'src': ip, 'out': alloc['uplink'], 'target': 'MASQUERADE'})
        drops += [{'src': ip, 'target': 'DROP'}, {'dst': ip, 'target': 'DROP'}]  # isolated unless allowed above
    return {'CONDUCTOR-FORWARD': forward + drops, 'CONDUCTOR-PREROUTING': prerouting,
            'CONDUCTOR-OUTPUT': output, 'CONDUCTOR-POSTROUTING': postrouting}


def apply(rules):
    """Make conductor's chains hold exactly `rules`; with none left, remove the chains and the jumps."""
    iptc = import_iptc()
    teardown = not any(rules.values())
    for table_name in ('filter', 'nat'):
        table = iptc.Table(table_name)
        table.autocommit = False
        table.refresh()
        for tname, builtin, chain_name in CHAINS:
            if tname != table_name:
                continue
            parent = iptc.Chain(table, builtin)
            jumps = [r for r in parent.rules if r.target.name == chain_name]
            exists = table.is_chain(chain_name)
            if teardown:
                for rule in jumps:
                    parent.delete_rule(rule)
                if exists:
                    iptc.Chain(table, chain_name).flush()
                    table.delete_chain(chain_name)
                continue
            chain = iptc.Chain(table, chain_name) if exists else table.create_chain(chain_name)
            chain.flush()
            for spec in rules[chain_name]:
                chain.append_rule(_rule(iptc, spec))
            if not jumps:
                jump = iptc.Rule()
                jump.target = iptc.Target(jump, chain_name)
                parent.insert_rule(jump)
        try:
            table.commit()
        except Exception as e:
            raise ConductorError('the %s table could not be updated: %s' % (table_name, e))
        table.autocommit = True


def _rule(iptc, spec):
    rule = iptc.Rule()
    if 'src' in spec:
        rule.src = spec['src']
    if 'dst' in spec:
        rule.dst = spec['dst']
    if 'out' in spec:
        rule.out_interface = spec['out']
    if 'protocol' in spec:
        rule.protocol = spec['protocol']
        match = rule.create_match(spec['protocol'])
        match.dport = spec['dport']
    if spec.get('local'):
        rule.create_match('addrtype').dst_type = 'LOCAL'
    if 'ctstate' in spec:
        rule.create_match('conntrack').ctstate = spec['ctstate']
    target = rule.create_target(spec['target'])
    if 'to' in spec:
        target.to_destination = spec['to']
    return rule


def listing():
    """Every rule of every table and chain, with policies: what tests compare before and after."""
    iptc = import_iptc()
    result = {}
    for table_name in ('filter', 'nat', 'mangle'):
        table = iptc.Table(table_name)
        table.refresh()
        for chain in table.chains:
            policy = chain.get_policy().name if chain.is_builtin() else None
            result['%s/%s' % (table_name, chain.name)] = (policy, [_describe(r) for r in chain.rules])
    return result


def _describe(rule):
    matches = sorted((m.name, sorted(m.parameters.items())) for m in rule.matches)
    return (rule.src, rule.dst, rule.protocol, rule.in_interface, rule.out_interface, matches,
            rule.target.name, sorted(rule.target.parameters.items()))
