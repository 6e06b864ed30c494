# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Conductor's netfilter rules, through python-iptables, in chains of its own: a few per container.

    filter FORWARD -> CONDUCTOR-FORWARD: -j CONDUCTOR-FROM, -j CONDUCTOR-TO, then drop whatever is left
                      from or to a container veth (never the host's FORWARD policy)
           CONDUCTOR-FROM / CONDUCTOR-TO: per container, -i / -o its veth -j CONDUCTOR-<tag>
    filter INPUT   -> CONDUCTOR-INPUT: drop container veths to 127.0.0.0/8, then per container
                      -i its veth -j CONDUCTOR-<tag>-IN (host_access)
    nat PREROUTING, OUTPUT -> CONDUCTOR-PREROUTING, CONDUCTOR-OUTPUT: -j CONDUCTOR-<tag>-DNAT (published ports)
    nat POSTROUTING        -> CONDUCTOR-POSTROUTING: -j CONDUCTOR-<tag>-SNAT (internet, loopback clients)
    with a classroom overlay (_overlay): CONDUCTOR-OVERLAY checks what arrives from the other hosts, and
    CONDUCTOR-INPUT guards the VXLAN port (overlay_rules)

<tag> is the container's veth name without 'cdr'. A change to one container's network deletes its jumps
and chains and makes them again; a peering inserts or deletes one rule in each of the pair's chains.
Other containers' rules are never read or rewritten. After each change the tables are checked against
desired_rules (every chain there, with the number of rules it should have, and the host's jumps into
ours); if anything differs (a reboot, a flush by another tool, a hand-deleted rule), every chain is
rebuilt from the allocations: that is a repair. One commit per table, under the xtables lock. The
host's chains get exactly one jump each into ours, removed with our chains when the last network
goes; their rules and policies are never touched otherwise.
"""

import contextlib
import fcntl
import ipaddress
import os
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils import _fastimport
from ansible_collections.cs695.conductor.plugins.module_utils._overlay import DEVICE as OVERLAY, gateway

CHAINS = (('filter', 'FORWARD', 'CONDUCTOR-FORWARD'), ('filter', 'INPUT', 'CONDUCTOR-INPUT'),
          ('nat', 'PREROUTING', 'CONDUCTOR-PREROUTING'), ('nat', 'OUTPUT', 'CONDUCTOR-OUTPUT'),
          ('nat', 'POSTROUTING', 'CONDUCTOR-POSTROUTING'))  # (table, the host's chain, our chain it jumps to)
TABLES = ('filter', 'nat')
FROM, TO = 'CONDUCTOR-FROM', 'CONDUCTOR-TO'
NAT_SUFFIXES = ('-DNAT', '-SNAT')  # a container's chains in the nat table; the others are in filter
LINK_LOCAL = '169.254.0.0/16'
HOST_ACCESS = ('all', 'dns-only', 'none')
XTABLES_LOCK = '/run/xtables.lock'  # what iptables -w, ufw, fail2ban and Docker take around a change


@contextlib.contextmanager
def xtables_lock(wait: float = 10.0):
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


def container_chain(alloc: dict, suffix: str = '') -> str:
    """One of a container's chains: CONDUCTOR-<the tag of its veth's name><suffix>."""
    return 'CONDUCTOR-' + alloc['host_if'][3:] + suffix


def shared_rules(overlay: 'dict | None' = None) -> dict:
    """{chain: [rule, ...]}: our chains that are not any one container's, with their fixed rules (and the
    overlay's, when there is one). The jumps into each container's chains are appended after these."""
    # new packets only: replies to the host's own connections to 127.0.0.1-published ports come back this way
    to_loopback = {'in': 'cdr+', 'dst': '127.0.0.0/8', 'ctstate': 'NEW,INVALID,UNTRACKED', 'target': 'DROP',
                   'comment': "never the host's loopback"}
    rules = {'CONDUCTOR-FORWARD': [{'target': FROM, 'comment': 'what each container may send'},
                                   {'target': TO, 'comment': 'what each container may receive'},
                                   {'in': 'cdr+', 'target': 'DROP', 'comment': 'from a container: nothing else'},
                                   {'out': 'cdr+', 'target': 'DROP', 'comment': 'to a container: nothing else'}],
             FROM: [], TO: [], 'CONDUCTOR-INPUT': [to_loopback],
             'CONDUCTOR-PREROUTING': [], 'CONDUCTOR-OUTPUT': [], 'CONDUCTOR-POSTROUTING': []}
    return overlay_rules(rules, overlay) if overlay else rules


def overlay_rules(rules: dict, overlay: dict) -> dict:
    """The shared chains with the overlay's rules added (the device is cdr..., so cdr+ covers it too).

    Forward, in order: no container sends VXLAN anywhere, nor anything to another lab host itself (its own
    services, which -i's NAT would reach as this host); what arrives from the overlay goes to CONDUCTOR-OVERLAY
    (never back into it; only a source in another host's subnet), then the receiving container's chain
    decides. What a container sends into the overlay is accepted by its own chain (to its remote peers,
    remote_peer_edits) or, to a course service on another host (the overlay's services), here; anything else
    falls to the drop. A connection across hosts needs both hosts' rules, the sender's and the receiver's:
    two students who each send first cannot open a channel that neither host allows.
    Input: VXLAN only from the other hosts' uplink addresses to this host's, never from a container or the
    overlay itself; nothing from the overlay reaches this host."""
    port, remotes = str(overlay['port']), overlay['remotes']
    vxlan = {'protocol': 'udp', 'dport': port}
    guard = [dict(vxlan, **{'in': 'cdr+', 'target': 'DROP', 'comment': 'VXLAN from a container, to anywhere'})]
    guard += [{'in': 'cdr+', 'dst': r['address'], 'target': 'DROP', 'comment': 'lab host %s itself' % r['address']}
              for r in remotes]
    services = [{'in': 'cdr+', 'out': OVERLAY, 'dst': address, 'target': 'ACCEPT',
                 'comment': 'classroom service %s on another host' % address} for address in overlay.get('services') or ()]
    forward = rules['CONDUCTOR-FORWARD']
    rules['CONDUCTOR-FORWARD'] = guard + [{'in': OVERLAY, 'target': 'CONDUCTOR-OVERLAY', 'comment': 'from another lab host'}] \
        + forward[:2] + services + forward[2:]
    rules['CONDUCTOR-OVERLAY'] = [{'out': OVERLAY, 'target': 'DROP', 'comment': 'never back into the overlay'}] + [
        {'src': r['subnet'], 'target': 'RETURN', 'comment': 'from the containers of lab host %s' % r['address']}
        for r in remotes] + [{'target': 'DROP', 'comment': 'a source no other lab host has'}]
    rules['CONDUCTOR-INPUT'] = [dict(vxlan, **{'in': 'cdr+', 'target': 'DROP', 'comment': 'VXLAN from a container'}),
                                {'in': OVERLAY, 'target': 'DROP', 'comment': 'the overlay never reaches this host'}] + [
        dict(vxlan, src=r['address'], dst=overlay['local'], target='RETURN', comment='VXLAN from lab host %s' % r['address'])
        for r in remotes] + [dict(vxlan, target='DROP', comment='VXLAN from anyone but the lab hosts')] + rules['CONDUCTOR-INPUT']
    return rules


def container_rules(alloc: dict, peer_allocs: 'list | tuple' = ()) -> dict:
    """{chain: [rule, ...]}: one container's own chains, each rule a dict that _rule turns into iptc.

    CONDUCTOR-<tag> sees what is forwarded from and to its veth: a forged source is dropped first, then
    what the container may send and receive. Its peers' accepts come first (peer_rule): a peer's own
    chain has already checked the packet's veth and source. CONDUCTOR-<tag>-IN: what it may send to
    the host itself."""
    ip, veth = alloc['container_ip'], alloc['host_if']
    own = [peer_rule(alloc, peer) for peer in peer_allocs]
    own += [rule for address in alloc.get('remote_peers') or () for chain, rule in remote_peer_edits(alloc, address)]
    own += [{'in': veth, 'src': '!' + ip, 'target': 'DROP', 'comment': 'a forged source address'},
            {'in': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT', 'comment': 'replies it sends'},
            {'in': veth, 'out': 'cdr+', 'target': 'RETURN', 'comment': "to another container: that one's chain decides"}]
    if alloc.get('internet'):
        if not alloc.get('link_local'):
            own.append({'in': veth, 'dst': LINK_LOCAL, 'target': 'DROP', 'comment': 'link-local: cloud metadata'})
        own.append({'in': veth, 'out': alloc['uplink'], 'target': 'ACCEPT', 'comment': 'the internet (-i)'})
    own += [{'in': veth, 'target': 'DROP', 'comment': 'anything else it sends'},
            {'out': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT', 'comment': 'replies to it'}]
    dnat = []
    for port in alloc.get('ports', []):
        proto, inner, outer = port['protocol'], str(port['container_port']), str(port['host_port'])
        published = 'published port %s/%s' % (outer, proto)
        own.append({'out': veth, 'dst': ip, 'protocol': proto, 'dport': inner, 'target': 'ACCEPT', 'comment': published})
        dnat.append({'protocol': proto, 'dport': outer, 'local': True, 'target': 'DNAT', 'to': '%s:%s' % (ip, inner),
                     'comment': published})
    for port in alloc.get('service') or ():  # a classroom service: every container here and on the other hosts
        own.append({'out': veth, 'in': 'cdr+', 'dst': ip, 'protocol': port['protocol'], 'dport': str(port['port']),
                    'target': 'ACCEPT', 'comment': 'classroom service port %d/%s' % (port['port'], port['protocol'])})
    own.append({'out': veth, 'target': 'DROP', 'comment': 'anything else to it'})
    host = [{'in': veth, 'src': '!' + ip, 'target': 'DROP', 'comment': 'a forged source address'}]
    access = alloc.get('host_access') or 'all'
    if access != 'all':
        host.append({'in': veth, 'ctstate': 'RELATED,ESTABLISHED', 'target': 'ACCEPT', 'comment': 'replies it sends'})
        if access == 'dns-only':
            host += [{'in': veth, 'protocol': p, 'dport': '53', 'target': 'ACCEPT', 'comment': 'DNS (host access dns-only)'}
                     for p in ('udp', 'tcp')]
        host.append({'in': veth, 'target': 'DROP', 'comment': 'host access %s' % access})
    snat = [{'src': '127.0.0.0/8', 'dst': ip, 'target': 'MASQUERADE', 'comment': 'clients of published ports on loopback'}
            ] if dnat else []
    if alloc.get('internet'):
        snat.append({'src': ip, 'out': alloc['uplink'], 'target': 'MASQUERADE', 'comment': 'the internet (-i)'})
    rules = {container_chain(alloc): own, container_chain(alloc, '-IN'): host,
             container_chain(alloc, '-DNAT'): dnat, container_chain(alloc, '-SNAT'): snat}
    return {chain: chain_rules for chain, chain_rules in rules.items() if chain_rules}


def peer_rule(alloc: dict, peer: dict) -> dict:
    """In alloc's chain: what its peer sends it, known by the peer's veth as well as its address."""
    return {'out': alloc['host_if'], 'in': peer['host_if'], 'src': peer['container_ip'], 'target': 'ACCEPT',
            'comment': 'peer %s' % peer['host_if']}


def remote_peer_edits(alloc: dict, address: str) -> 'list[tuple[str, dict]]':
    """[(chain, rule)]: a peering with a container on another lab host, this host's half: in alloc's chain, what
    the peer sends it and what it sends the peer, each known by the overlay device and both addresses (its own
    too: these come before the chain's drop of a forged source)."""
    chain, veth = container_chain(alloc), alloc['host_if']
    return [(chain, {'out': veth, 'in': OVERLAY, 'src': address, 'target': 'ACCEPT',
                     'comment': 'peer %s on another host' % address}),
            (chain, {'in': veth, 'src': alloc['container_ip'], 'out': OVERLAY, 'dst': address, 'target': 'ACCEPT',
                     'comment': 'to peer %s on another host' % address})]


def fast_paths(allocations: dict, overlay: 'dict | None', index=lambda device: 1) -> dict:
    """{device: [rule, ...]}: the overlay's fast path for peerings across hosts (nftables only, _nftables renders
    it into a table of the netdev family: one chain on each device's ingress). A packet of a peering is handed on
    from the device it arrives on, before routing, conntrack and the forward chain: on the container's veth, from
    its own address to its remote peer, into the overlay, to the remote host's gateway; on the overlay device,
    from the remote peer to the container, onto its veth. Each rule is the pair of remote_peer_edits' accepts
    (the veth or the overlay device, and both addresses); what no rule matches takes the forward path: so do a
    TTL of 1 (the forward path answers it), a frame not to the device's own MAC, a VLAN tag, IP options and the
    VXLAN port (`guard`), which the forward path drops. index(device): its interface index here, None when it
    does not exist (a stopped container has no veth). The kernel keeps a rule's out device by its index, and a
    rule whose device is gone drops what it matches: so the comment names the index too, and a device made again
    gets its rules made again at the next commit (conductor commits once it has made its devices)."""
    if not overlay or not index(OVERLAY):
        return {}
    subnets = [(ipaddress.ip_network(r['subnet']), r['subnet']) for r in overlay.get('remotes', [])]
    paths = {}
    for name in sorted(allocations):
        alloc = allocations[name]
        veth, ip = alloc['host_if'], alloc['container_ip']
        for address in alloc.get('remote_peers') or ():
            subnet = next((text for net, text in subnets if ipaddress.ip_address(address) in net), None)
            if subnet is None or not index(veth):
                continue
            to_peer = '%s to peer %s on another host, out %s #%d' % (ip, address, OVERLAY, index(OVERLAY))
            from_peer = 'peer %s on another host to %s, out %s #%d' % (address, ip, veth, index(veth))
            paths.setdefault(veth, []).append({'src': ip, 'dst': address, 'via': gateway(subnet), 'out': OVERLAY,
                                               'guard': overlay['port'], 'comment': to_peer})
            paths.setdefault(OVERLAY, []).append({'src': address, 'dst': ip, 'via': ip, 'out': veth,
                                                  'guard': overlay['port'], 'comment': from_peer})
    return paths


def jumps(alloc: dict, chains: 'dict | list') -> 'list[tuple[str, dict]]':
    """[(our shared chain, jump rule)]: the jumps into those of the container's chains that are in `chains`."""
    veth, own = alloc['host_if'], container_chain(alloc)
    about = 'the container on %s' % veth
    every = [(FROM, {'in': veth, 'target': own, 'comment': about}), (TO, {'out': veth, 'target': own, 'comment': about}),
             ('CONDUCTOR-INPUT', {'in': veth, 'target': own + '-IN', 'comment': about})]
    every += [(base, {'target': own + '-DNAT', 'comment': about}) for base in ('CONDUCTOR-PREROUTING', 'CONDUCTOR-OUTPUT')]
    every.append(('CONDUCTOR-POSTROUTING', {'target': own + '-SNAT', 'comment': about}))
    return [(base, jump) for base, jump in every if jump['target'] in chains]


def desired_rules(allocations: dict, peers: 'list | tuple', overlay: 'dict | None' = None) -> dict:
    """{chain: [rule, ...]}: every rule conductor wants, with no networks and no overlay none at all."""
    if not allocations and not overlay:
        return {}
    rules = shared_rules(overlay)
    for name in sorted(allocations):
        alloc = allocations[name]
        own = container_rules(alloc, [allocations[p] for p in partners(name, peers) if p in allocations])
        rules.update(own)
        for base, jump in jumps(alloc, own):
            rules[base].append(jump)
    return rules


def peer_edits(alloc: dict, other: dict) -> 'list[tuple[str, dict]]':
    """[(chain, rule)]: a peering's two rules, one in each container's chain."""
    return [(container_chain(a), peer_rule(a, b)) for a, b in ((alloc, other), (other, alloc))]


def partners(name: str, peers: 'list | tuple') -> 'list[str]':
    """The containers `name` is peered with, sorted."""
    return sorted(b if a == name else a for a, b in peers if name in (a, b))


def table_of(chain: str) -> str:
    return 'nat' if chain.endswith(NAT_SUFFIXES) or chain in dict(_base_chains('nat')).values() else 'filter'


def _base_chains(table_name):
    """[(the host's chain, ours it jumps to)] in a table."""
    return [(builtin, ours) for table, builtin, ours in CHAINS if table == table_name]


class Change:
    """One change to the firewall: the tables read once, edited in memory, checked, committed once each.

        change = Change()
        change.put(alloc, peer_allocs)      # a container's chains and jumps, made again
        change.drop(alloc)                  # ... deleted
        change.from_scratch()               # no edits: commit rebuilds everything (when no network is left)
        change.peer(alloc, other, present)  # one rule in each of the two chains
        change.remote_peer(alloc, address, present)  # one rule in its chain: a peer on another lab host
        repaired = change.commit(allocations, peers)

    A step that meets a missing chain stops the edit; commit then rebuilds everything."""

    def __init__(self):
        self.iptc = import_iptc()
        self.tables, self.dirty, self.broken = {}, set(), False

    def table(self, name: str):
        if name not in self.tables:
            table = self.iptc.Table(name)
            table.autocommit = False  # nothing reaches the kernel before commit
            table.refresh()
            self.tables[name] = table
        return self.tables[name]

    def chain(self, name: str):
        table_name = table_of(name)
        self.dirty.add(table_name)
        return self.iptc.Chain(self.table(table_name), name)

    def _edit(self, step, *args):
        if not self.broken:
            try:
                step(*args)
            except self.iptc.IPTCError:
                self.broken = True  # a chain of ours is missing: rebuilt at commit

    def from_scratch(self) -> None:
        """Edit nothing: commit rebuilds every chain, as it does anyway once the last network is gone (then
        the edits of drop would be thrown away: 2 ms of a RUN step's)."""
        self.broken = True

    def drop(self, alloc: dict) -> None:
        self._edit(self._drop, alloc)

    def _drop(self, alloc):
        names = [container_chain(alloc, suffix) for suffix in ('', '-IN') + NAT_SUFFIXES]
        present = [n for n in names if self.table(table_of(n)).is_chain(n)]
        for base, jump in jumps(alloc, present):
            self._delete(base, jump)
        for name in present:
            self.chain(name).flush()
            self.chain(name).delete()

    def put(self, alloc: dict, peer_allocs: 'list | tuple' = ()) -> None:
        self._edit(self._put, alloc, peer_allocs)

    def _put(self, alloc, peer_allocs):
        self._drop(alloc)
        own = container_rules(alloc, peer_allocs)
        for name, rules in own.items():
            self.table(table_of(name)).create_chain(name)
            for spec in rules:
                self.chain(name).append_rule(_rule(self.iptc, spec))
        for base, jump in jumps(alloc, own):
            self.chain(base).append_rule(_rule(self.iptc, jump))

    def peer(self, alloc: dict, other: dict, present: bool = True) -> None:
        self._edit(self._peer, peer_edits(alloc, other), present)

    def remote_peer(self, alloc: dict, address: str, present: bool = True) -> None:
        self._edit(self._peer, remote_peer_edits(alloc, address), present)

    def _peer(self, edits, present):
        for chain, spec in edits:
            if present:
                self.chain(chain).insert_rule(_rule(self.iptc, spec))
            else:
                self._delete(chain, spec)

    def _delete(self, chain, spec):
        """Delete every copy of a rule; none is fine (deleted by hand), a missing chain is not."""
        if not self.table(table_of(chain)).is_chain(chain):
            raise self.iptc.IPTCError('chain %s is missing' % chain)
        while True:
            try:
                self.chain(chain).delete_rule(_rule(self.iptc, spec))
            except self.iptc.IPTCError:
                return

    def commit(self, allocations: dict, peers: 'list | tuple', overlay: 'dict | None' = None) -> bool:
        """Check the edited tables against desired_rules(allocations, peers, overlay); rebuild them all when they
        differ. Then commit each changed table. Returns True when a repair was needed."""
        rules = desired_rules(allocations, peers, overlay)
        repaired = bool(rules) and (self.broken or self.damaged(rules))
        try:
            if repaired or not rules:  # with no rules, our chains and the host's jumps go too
                self.rebuild(rules)
            for name in TABLES:
                if name in self.dirty:
                    self.tables[name].commit()
        except Exception as e:  # iptc's own errors: the kernel refused, or another tool jumps to a chain of ours
            raise ConductorError("conductor's firewall chains could not be updated (%s): see iptables-legacy-save; a "
                                 "rule of another tool that jumps to a CONDUCTOR- chain keeps it from being deleted"
                                 % e)
        return repaired

    def damaged(self, rules: dict) -> bool:
        """Whether our chains differ from `rules`: a chain too many or missing, a rule count that differs,
        or a host chain without its one jump into ours. Counting is cheap; reading rules is not."""
        for table_name in TABLES:
            table = self.table(table_name)
            ours = [c.name for c in table.chains if c.name.startswith('CONDUCTOR-')]
            if set(ours) != {c for c in rules if table_of(c) == table_name}:
                return True
            if any(_count(table, name) != len(rules[name]) for name in ours):
                return True
            for builtin, name in _base_chains(table_name):
                if _targets(table, builtin).count(name.encode()) != 1:
                    return True
        return False

    def rebuild(self, rules: dict) -> None:
        """Make our chains hold exactly `rules`, from scratch; with none, delete them and the host's jumps."""
        for table_name in TABLES:
            self.dirty.add(table_name)
            _rebuild_table(self.iptc, self.table(table_name), rules)


def _rebuild_table(iptc, table, rules):
    table.refresh()  # what an edit left half done goes
    ours = [c.name for c in table.chains if c.name.startswith('CONDUCTOR-')]
    for name in ours:
        table.flush_entries(name)
    for builtin, name in _base_chains(table.name):
        while name.encode() in _targets(table, builtin):
            iptc.Chain(table, builtin).delete_rule(_rule(iptc, {'target': name}))
    for name in ours:
        table.delete_chain(name)
    wanted = [c for c in rules if table_of(c) == table.name]
    for name in wanted:
        table.create_chain(name)
    for name in wanted:
        for spec in rules[name]:
            iptc.Chain(table, name).append_rule(_rule(iptc, spec))
    for builtin, name in _base_chains(table.name) if rules else ():
        iptc.Chain(table, builtin).insert_rule(_rule(iptc, {'target': name}))


def clear() -> bool:
    """Take conductor's chains and the host's jumps into them out of the legacy tables (a move to nftables).
    Only tables the kernel has loaded are read: none loaded, nothing to do. Returns whether there was anything."""
    try:
        with open('/proc/net/ip_tables_names') as f:
            loaded = f.read().split()
    except FileNotFoundError:
        return False
    found = False
    tables = [t for t in TABLES if t in loaded]
    try:
        iptc = import_iptc() if tables else None
    except ConductorError:  # no python-iptables: what legacy rules there are cannot be ours
        return False
    for name in tables:
        table = iptc.Table(name)
        table.autocommit = False
        table.refresh()
        if any(c.name.startswith('CONDUCTOR-') for c in table.chains):
            found = True
            _rebuild_table(iptc, table, {})
            table.commit()
    return found


def _count(table, chain):
    count, entry = 0, table.first_rule(chain)
    while entry:
        count, entry = count + 1, table.next_rule(entry)
    return count


def _targets(table, chain):
    """The target names of a chain's rules (bytes), without parsing the rules."""
    result, entry = [], table.first_rule(chain)
    while entry:
        result.append(table.get_target(entry))
        entry = table.next_rule(entry)
    return result


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


def import_iptc():
    """python-iptables (imported the quick way, _fastimport), with the tables the host has not loaded declared
    absent: iptc looks for a chain named like a target (DNAT, our chains) in every table, which would load raw,
    mangle and security into the host's netfilter. Every use of iptc goes through here."""
    iptc = _fastimport.import_iptc()
    with open('/proc/net/ip_tables_names') as f:
        loaded = set(f.read().split())
    for name in ('mangle', 'raw', 'security'):
        if name not in loaded:
            iptc.Table.existing_table_names.setdefault(name, False)
    return iptc


def listing() -> dict:
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
