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

CHAINS = (('filter', 'FORWARD', 'CONDUCTOR-FORWARD'), ('filter', 'INPUT', 'CONDUCTOR-INPUT'),
          ('nat', 'PREROUTING', 'CONDUCTOR-PREROUTING'), ('nat', 'OUTPUT', 'CONDUCTOR-OUTPUT'),
          ('nat', 'POSTROUTING', 'CONDUCTOR-POSTROUTING'))
LINK_LOCAL = '169.254.0.0/16'
HOST_ACCESS = ('all', 'dns-only', 'none')
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


def container_chain(alloc):
    """The filter chain of one container: CONDUCTOR-<the tag of its veth's name>."""
    return 'CONDUCTOR-' + alloc['host_if'][3:]


def desired_rules(allocations, peers, pool):
    """{chain: [rule, ...]}: every rule conductor wants, each a dict the apply step turns into iptc.

    filter FORWARD -> CONDUCTOR-FORWARD: for each container, packets in from its veth, then packets out
    to it, jump to its own chain; whatever none of them accepts from or to a container veth is dropped
    here, never left to the host's FORWARD policy.
    filter INPUT -> CONDUCTOR-INPUT: from a container veth to the host: never to 127.0.0.0/8 (a frame
    routed there by route_localnet), never with a forged source, and only what host_access allows.
    """
    if not allocations:
        return {chain[2]: [] for chain in CHAINS}
    names = sorted(allocations)
    peers_of = {name: sorted(b if a == name else a for a, b in peers if name in (a, b) and a in allocations
                             and b in allocations) for name in names}
    # new packets only: replies to the host's own connections to 127.0.0.1-published ports come back this way
    to_loopback = {'in': 'cdr+', 'dst': '127.0.0.0/8', 'ctstate': 'NEW,INVALID,UNTRACKED', 'target': 'DROP'}
    rules = {'CONDUCTOR-FORWARD': [], 'CONDUCTOR-INPUT': [to_loopback],
             'CONDUCTOR-PREROUTING': [], 'CONDUCTOR-OUTPUT': [], 'CONDUCTOR-POSTROUTING': []}
    for direction in ('in', 'out'):
        rules['CONDUCTOR-FORWARD'] += [{direction: allocations[n]['host_if'], 'target': container_chain(allocations[n])}
                                       for n in names]
    rules['CONDUCTOR-FORWARD'] += [{'in': 'cdr+', 'target': 'DROP'}, {'out': 'cdr+', 'target': 'DROP'}]
    for name in names:
        alloc = allocations[name]
        ip, veth = alloc['container_ip'], alloc['host_if']
        own = [{'in': veth, 'src': '!' + ip, 'target': 'DROP'},  # a forged source address
               {'in': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT'},
               {'in': veth, 'out': 'cdr+', 'target': 'RETURN'}]  # to another container: its chain decides
        if alloc.get('internet'):
            if not alloc.get('link_local'):
                own.append({'in': veth, 'dst': LINK_LOCAL, 'target': 'DROP'})  # cloud metadata lives there
            own.append({'in': veth, 'out': alloc['uplink'], 'target': 'ACCEPT'})
        own += [{'in': veth, 'target': 'DROP'},
                {'out': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT'}]
        own += [{'out': veth, 'in': allocations[p]['host_if'], 'src': allocations[p]['container_ip'], 'target': 'ACCEPT'}
                for p in peers_of[name]]
        for port in alloc.get('ports', []):
            proto, inner, outer = port['protocol'], str(port['container_port']), str(port['host_port'])
            own.append({'out': veth, 'dst': ip, 'protocol': proto, 'dport': inner, 'target': 'ACCEPT'})
            dnat = {'protocol': proto, 'dport': outer, 'local': True, 'target': 'DNAT', 'to': '%s:%s' % (ip, inner)}
            rules['CONDUCTOR-PREROUTING'].append(dnat)
            rules['CONDUCTOR-OUTPUT'].append(dnat)
        own.append({'out': veth, 'target': 'DROP'})
        rules[container_chain(alloc)] = own
        if alloc.get('ports'):
            rules['CONDUCTOR-POSTROUTING'].append({'src': '127.0.0.0/8', 'dst': ip, 'target': 'MASQUERADE'})
        if alloc.get('internet'):
            rules['CONDUCTOR-POSTROUTING'].append({'src': ip, 'out': alloc['uplink'], 'target': 'MASQUERADE'})
        rules['CONDUCTOR-INPUT'].append({'in': veth, 'src': '!' + ip, 'target': 'DROP'})
        access = alloc.get('host_access') or 'all'
        if access != 'all':
            rules['CONDUCTOR-INPUT'].append({'in': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT'})
            if access == 'dns-only':
                rules['CONDUCTOR-INPUT'] += [{'in': veth, 'protocol': p, 'dport': '53', 'target': 'ACCEPT'}
                                             for p in ('udp', 'tcp')]
            rules['CONDUCTOR-INPUT'].append({'in': veth, 'target': 'DROP'})
    return rules


def table_of(chain):
    for table, dummy, name in CHAINS:
        if name == chain:
            return table
    return 'filter'  # a container's own chain


def apply(rules):
    """Make conductor's chains hold exactly `rules`; chains no longer wanted go, and with no rules left,
    every chain and the jumps from the host's chains go too. One commit per table."""
    iptc = import_iptc()
    teardown = not any(rules.values())
    for table_name in ('filter', 'nat'):
        table = iptc.Table(table_name)
        table.autocommit = False
        table.refresh()
        base = [(builtin, name) for tname, builtin, name in CHAINS if tname == table_name]
        ours = [c.name for c in table.chains if c.name.startswith('CONDUCTOR-')]
        wanted = [] if teardown else [c for c in rules if table_of(c) == table_name]
        for name in wanted:
            if not table.is_chain(name):
                table.create_chain(name)
        for name in [n for dummy, n in base if n in ours] + [n for n in ours if n not in dict(base).values()]:
            iptc.Chain(table, name).flush()  # base chains first: they jump to the containers' chains
        for builtin, name in base:
            jumps = [r for r in iptc.Chain(table, builtin).rules if r.target.name == name]
            if teardown:
                for rule in jumps:
                    iptc.Chain(table, builtin).delete_rule(rule)
            elif not jumps:
                jump = iptc.Rule()
                jump.target = iptc.Target(jump, name)
                iptc.Chain(table, builtin).insert_rule(jump)
        for name in ours:
            if name not in wanted:
                table.delete_chain(name)
        for name in wanted:
            chain = iptc.Chain(table, name)
            for spec in rules[name]:
                chain.append_rule(_rule(iptc, spec))
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
    if 'in' in spec:
        rule.in_interface = spec['in']
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
