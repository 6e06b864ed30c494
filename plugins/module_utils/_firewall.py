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

import importlib.util
import os
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

CHAINS = (('filter', 'FORWARD', 'CONDUCTOR-FORWARD'), ('nat', 'PREROUTING', 'CONDUCTOR-PREROUTING'),
          ('nat', 'OUTPUT', 'CONDUCTOR-OUTPUT'), ('nat', 'POSTROUTING', 'CONDUCTOR-POSTROUTING'))


LIBRARY_FOLDERS = ('/usr/lib/%s-linux-gnu' % os.uname().machine, '/lib/%s-linux-gnu' % os.uname().machine,
                   '/usr/lib64', '/lib64', '/usr/lib', '/lib')


def import_iptc():
    """python-iptables, imported the quick way: 80 ms instead of 220.

    Its import costs three things we can spare: setuptools' distutils (iptc only wants
    get_python_lib, which the standard library's distutils has before Python 3.12), an ldconfig run to
    find the extensions folder (XTABLES_LIBDIR says it), and ctypes.util.find_library, which runs
    ldconfig for every library (the usual library folders answer first).
    """
    if 'iptc' in sys.modules:
        return sys.modules['iptc']
    if 'XTABLES_LIBDIR' not in os.environ:
        for folder in [os.path.join(f, 'xtables') for f in LIBRARY_FOLDERS]:
            if os.path.isdir(folder):
                os.environ['XTABLES_LIBDIR'] = folder
                break
    import ctypes.util
    shims = [f for f in sys.meta_path if type(f).__name__ == 'DistutilsMetaFinder'] if sys.version_info < (3, 12) else []
    find_library = ctypes.util.find_library
    for shim in shims:
        sys.meta_path.remove(shim)
    spec = importlib.util.find_spec('iptc')
    beside = [os.path.dirname(spec.submodule_search_locations[0])] if spec else []  # its own libxtwrapper
    ctypes.util.find_library = lambda name: _find_library(name, beside) or find_library(name)
    try:
        import iptc
        # iptc looks for a chain named like a target (DNAT, our chains) in every table, and so loads
        # raw, mangle and security into the host's netfilter: tell it the ones not loaded are absent
        with open('/proc/net/ip_tables_names') as f:
            loaded = set(f.read().split())
        for name in ('mangle', 'raw', 'security'):
            if name not in loaded:
                iptc.Table.existing_table_names.setdefault(name, False)
        iptc.Table(iptc.Table.FILTER)
    except ImportError as e:
        raise ConductorError('python-iptables is not installed (%s): pip install python-iptables, or apply the '
                             'cs695.conductor.conductor_host role' % e)
    except Exception as e:  # iptc raises its own errors, or OSError, when libxtables or the kernel says no
        raise ConductorError('the firewall cannot be used through python-iptables (%s): it needs the legacy xtables '
                             'kernel modules (ip_tables, iptable_nat) and libxtables; on an nft-only kernel, load them '
                             'with modprobe ip_tables iptable_nat or use a kernel that has them' % e)
    finally:
        sys.meta_path[:0] = shims
        ctypes.util.find_library = find_library
    return iptc


def _find_library(name, beside):
    """lib<name>.so.N in the usual folders (or lib<name>*.so beside iptc), without running ldconfig."""
    for folder in beside:
        found = sorted(f for f in os.listdir(folder) if f.startswith('lib' + name) and f.endswith('.so'))
        if found:
            return os.path.join(folder, found[0])
    for folder in LIBRARY_FOLDERS:
        try:
            found = sorted(f for f in os.listdir(folder) if f.startswith('lib%s.so.' % name))  # not .so: a linker script
        except OSError:
            continue
        if found:
            return os.path.join(folder, found[0])
    return None


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
