# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Conductor's rules in nftables, through libnftables' JSON API (Debian's python3-nftables), and which backend a
host gets (`backend`).

The rules are _firewall's, the same tables (desired_rules, container_rules, jumps); this file only renders them,
into a table of conductor's own, `ip conductor`. Its base chains are the chains the legacy backend jumps to
from the host's chains (CONDUCTOR-FORWARD hooks forward, CONDUCTOR-INPUT input, CONDUCTOR-PREROUTING,
-OUTPUT and -POSTROUTING the nat hooks); the other chains are the same as there, each rule with a comment.

nftables differs from xtables in one way that matters: an accept ends a packet's walk through one base chain,
not through the hook. A forward chain of another table (iptables-nft's FORWARD, ufw's, an nftables.conf's
inet filter) whose policy is drop would still drop what conductor's chain accepted. So conductor's forward
chain runs first (priority filter - 10), every accept of its own on the forward path marks the packet (MARK, a
bit of the packet mark, which the kernel clears when a packet leaves a container's namespace: a container cannot
set it), and every such chain of another table gets two rules at its end, `iifname "cdr*"` and `oifname "cdr*"`
with `meta mark & MARK == MARK accept` (commented FOREIGN_COMMENT): they let through only what conductor's chain
accepted, from or to a container veth, and in place of the drop policy only (an admin's own drops before them
still apply). Without conductor's table (an `nft flush ruleset`)
nothing is marked, so the drop policy drops container traffic again: it fails closed. The rules go when the
last network goes; a tool that rewrites its table later (firewall-cmd --reload, nft -f) takes it away until
conductor's next change or `conductor repair` (README: what the role adds to ufw and firewalld).

Each change is one transaction: the table is listed once (as text: its chains, and each rule's comment, jump
and handle, which is how a rule of ours is found again to be deleted), edited in memory, and sent as one batch.
Before it is sent, the rule count of every chain it will leave is compared with desired_rules (13 ms of
listing with 60 containers); when anything differs, the table is made again from desired_rules in the same
single transaction: that is a repair. The listing is skipped when the ruleset's generation (which any change
by any tool moves on) is still the one conductor's last commit left, and the change deletes nothing: then
nothing can differ but what this change does (a new container's network costs no listing).
"""

import os
import shutil
import socket

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils import _fastimport
from ansible_collections.cs695.conductor.plugins.module_utils import _firewall
from ansible_collections.cs695.conductor.plugins.module_utils import _netlink

FAMILY, TABLE = 'ip', 'conductor'
FAST_FAMILY, FAST_PRIORITY = 'netdev', 10  # the overlay's fast path: after an admin's ingress chains at priority 0
BASE = {'CONDUCTOR-FORWARD': ('filter', 'forward', -10), 'CONDUCTOR-INPUT': ('filter', 'input', 0),
        'CONDUCTOR-PREROUTING': ('nat', 'prerouting', -100), 'CONDUCTOR-OUTPUT': ('nat', 'output', -100),
        'CONDUCTOR-POSTROUTING': ('nat', 'postrouting', 100)}  # our base chains: (type, hook, priority)
FOREIGN_COMMENT = 'conductor: what table ip conductor accepted'
MARK = 0x20000000  # the packet mark's bit that says: conductor's forward chain accepted this packet
MARKED = {'&': [{'meta': {'key': 'mark'}}, MARK]}
BACKENDS = ('auto', 'nftables', 'iptables')


def backend(config: dict) -> str:
    """The firewall backend for this host: FIREWALL_BACKEND (CONDUCTOR_FIREWALL_BACKEND in the environment
    first), or with auto (the default): nftables where the host's iptables command is iptables-nft, or where
    it has no legacy iptables, or where an nftables table exists; else iptables (python-iptables, legacy)."""
    wanted = os.environ.get('CONDUCTOR_FIREWALL_BACKEND') or config.get('FIREWALL_BACKEND') or 'auto'
    if wanted not in BACKENDS:
        raise ConductorError('FIREWALL_BACKEND=%s in the config is not a firewall backend: use auto, nftables or '
                             'iptables' % wanted)
    if wanted != 'auto':
        return wanted
    return detect()[0]


def detect() -> 'tuple[str, str]':
    """(backend, why) for FIREWALL_BACKEND=auto."""
    command = shutil.which('iptables', path='/usr/sbin:/sbin:/usr/bin:/bin')
    if command is None:
        return 'nftables', 'the host has no iptables command'
    if 'nft' in os.path.basename(os.path.realpath(command)):
        return 'nftables', '%s is iptables-nft' % command
    try:
        tables = listed(Nft().run({'list': {'tables': None}}), 'table')
    except ConductorError:
        return 'iptables', '%s is legacy iptables, and python3-nftables is not installed' % command
    if [t for t in tables if (t['family'], t['name']) != (FAMILY, TABLE)]:
        return 'nftables', 'nftables tables exist (%s)' % ', '.join('%s %s' % (t['family'], t['name']) for t in tables)
    return 'iptables', '%s is legacy iptables, and no nftables rules exist' % command


class Nft:
    """A libnftables context speaking JSON: run(*commands) -> the output's list of objects."""

    def __init__(self):
        nftables = _fastimport.import_nftables()
        try:
            self.ctx = nftables()
        except OSError as e:
            raise ConductorError('libnftables cannot be loaded (%s): apt-get install libnftables1, or set '
                                 'FIREWALL_BACKEND=iptables in conductor.conf' % e)
        self.ctx.set_json_output(True)
        self.ctx.set_handle_output(True)

    def run(self, *commands, what='read the rules'):
        code, output, error = self.ctx.json_cmd({'nftables': list(commands)})
        if code != 0:
            raise ConductorError('nftables could not %s: %s (see nft list ruleset; a rule of another tool that jumps '
                                 'to a chain of table ip conductor keeps it from being changed)'
                                 % (what, ' '.join((error or 'error %d' % code).split())[:500]))
        return output.get('nftables', []) if isinstance(output, dict) else []


def listed(objects: list, kind: str) -> list:
    return [o[kind] for o in objects if kind in o]


def _names(spec_chain):
    return {'family': FAMILY, 'table': TABLE, 'name': spec_chain}


def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def _address(value):
    if '/' in value:
        addr, length = value.split('/')
        return {'prefix': {'addr': addr, 'len': int(length)}}
    return value


def expressions(spec: dict, mark: bool = True) -> list:
    """One of _firewall's rules as nftables JSON expressions; mark: its accept marks the packet (MARK)."""
    result = []
    for key, meta in (('in', 'iifname'), ('out', 'oifname')):
        if key in spec:
            result.append(_match({'meta': {'key': meta}}, spec[key].replace('+', '*')))
    for key, field in (('src', 'saddr'), ('dst', 'daddr')):
        if key in spec:
            value = spec[key]
            result.append(_match({'payload': {'protocol': 'ip', 'field': field}}, _address(value.lstrip('!')),
                                 '!=' if value.startswith('!') else '=='))
    if 'protocol' in spec:
        result.append(_match({'payload': {'protocol': spec['protocol'], 'field': 'dport'}}, int(spec['dport'])))
    if spec.get('local'):
        result.append(_match({'fib': {'result': 'type', 'flags': ['daddr']}}, 'local'))
    if 'ctstate' in spec:
        result.append(_match({'ct': {'key': 'state'}}, spec['ctstate'].lower().split(','), 'in'))
    result.append({'counter': None})  # what `nft list ruleset` shows an admin: how much each rule matched
    target = spec['target']
    if target == 'DNAT':
        addr, port = spec['to'].split(':')
        result.append({'dnat': {'addr': addr, 'port': int(port)}})
    elif target == 'ACCEPT' and mark:  # marked: another table's forward chain lets through what conductor accepted
        result += [{'mangle': {'key': {'meta': {'key': 'mark'}}, 'value': {'|': [{'meta': {'key': 'mark'}}, MARK]}}},
                   {'accept': None}]
    elif target in ('ACCEPT', 'DROP', 'RETURN', 'MASQUERADE'):
        result.append({target.lower(): None})
    else:
        result.append({'jump': {'target': target}})
    return result


def _rule(chain, spec, verb='add'):
    forwarded = chain != 'CONDUCTOR-INPUT' and not chain.endswith('-IN')  # marks only on the forward path
    rule = dict(_names(chain), chain=chain, expr=expressions(spec, forwarded))
    del rule['name']
    if spec.get('comment'):
        rule['comment'] = spec['comment']
    return {verb: {'rule': rule}}


def _chain(name):
    chain = _names(name)
    if name in BASE:
        kind, hook, prio = BASE[name]
        chain.update(type=kind, hook=hook, prio=prio, policy='accept')
    return {'add': {'chain': chain}}


class Change:
    """One change to table ip conductor, with _firewall.Change's calls (put, drop, peer, from_scratch, commit)."""

    def __init__(self, generation: 'str | None' = None):
        """generation: the ruleset_generation conductor's last commit left (its record). When the ruleset is still
        at it, nothing has changed since: the table is not listed unless a deletion needs handles."""
        self.nft = Nft()
        self.batch, self.broken, self._state, self._table, self._foreign = [], False, None, None, {}
        self.chains, self.reset, self.delta = None, set(), {}  # what the edits leave: see _send
        self.start = ruleset_generation()
        self.unchanged = generation is not None and self.start == generation
        self.settled = None  # after commit: the generation it left, when no other tool committed meanwhile

    def state(self) -> 'tuple[set, list]':
        """(our chains' names, other tables' forward chains whose policy is drop), read once; with them, whether
        table netdev conductor (the fast path) is there (`fast_table`)."""
        if self._state is None:
            chains = listed(self.nft.run({'list': {'chains': None}}), 'chain')
            # the fast path's table is never left empty: where it is, it has chains (a chain whose device goes away
            # stays, on Linux 6.18, and takes it again when it comes back)
            self.fast_table = any((c['family'], c['table']) == (FAST_FAMILY, TABLE) for c in chains)
            ours = {c['name'] for c in chains if (c['family'], c['table']) == (FAMILY, TABLE)}
            dropping = [c for c in chains if c.get('hook') == 'forward' and c.get('policy') == 'drop'
                        and c['family'] in ('ip', 'inet') and (c['family'], c['table']) != (FAMILY, TABLE)]
            self._state = (ours, dropping)
        return self._state

    def table(self) -> dict:
        """{chain: [(comment, the jump's target or None, handle)]}: our table's rules, read once per change.

        Read as text: libnftables writes the JSON of 700 rules in 35 ms, their text in 13 (on this kind of
        machine). Only what a rule of ours is found again by is parsed: its comment (ours have no quote
        in them), its jump and its handle."""
        if self._table is None:
            self._table = {}
            if self.state()[0]:
                self.nft.ctx.set_json_output(False)
                try:
                    code, output, error = self.nft.ctx.cmd('list table %s %s' % (FAMILY, TABLE))
                finally:
                    self.nft.ctx.set_json_output(True)
                chain = None
                for line in output.splitlines() if code == 0 else ():
                    words = line.split()
                    if line.startswith('\tchain '):
                        chain = self._table.setdefault(words[1], [])
                    elif line.startswith('\t\t') and words[0] != 'type' and '# handle ' in line:
                        comment = line.split(' comment "', 1)[1].split('"', 1)[0] if ' comment "' in line else None
                        jump = words[words.index('jump') + 1] if 'jump' in words else None
                        chain.append((comment, jump, int(words[-1])))
        return self._table

    def _send(self, *commands):
        """Add commands to the batch, and follow what they do: `chains` (ours after the edits), `reset` (chains
        flushed or made: their rules are only what follows) and `delta` (rules added minus deleted, per chain)."""
        if self.chains is None:
            self.chains = set(self.state()[0])
        for command in commands:
            (verb, body), = command.items()
            if 'chain' in body:
                name = body['chain']['name']
                if verb == 'delete':
                    self.chains.discard(name)
                elif verb == 'add' and name in self.chains:
                    continue  # add of a chain that is there: nothing changes
                else:
                    self.chains.add(name)
                self.reset.add(name)
                self.delta[name] = 0
            elif body['rule']['chain'] in self.chains:
                chain = body['rule']['chain']
                self.delta[chain] = self.delta.get(chain, 0) + (-1 if verb == 'delete' else 1)
            else:
                self.broken = True  # a chain of ours is missing: the commit makes the table again
        self.batch += commands

    def _handles(self, chain, comment, jump=None):
        return [handle for c, j, handle in self.table().get(chain, ()) if (c, j) == (comment, jump)]

    def _edit(self, step, *args):
        if not self.broken:
            step(*args)

    def from_scratch(self) -> None:
        self.broken = True

    def drop(self, alloc: dict) -> None:
        self._edit(self._drop, alloc)

    def _drop(self, alloc, keep=()):
        ours = self.state()[0]
        names = [_firewall.container_chain(alloc, suffix) for suffix in ('', '-IN') + _firewall.NAT_SUFFIXES]
        present = [n for n in names if n in ours and n not in keep]
        self._delete_jumps(alloc, present)
        for name in present:
            self._send({'flush': {'chain': _names(name)}}, {'delete': {'chain': _names(name)}})

    def _delete_jumps(self, alloc, chains):
        for base, jump in _firewall.jumps(alloc, chains):
            if base not in self.state()[0]:
                self.broken = True
                return
            for handle in self._handles(base, jump['comment'], jump['target']):
                self._send({'delete': {'rule': dict(_names(base), chain=base, handle=handle)}})

    def put(self, alloc: dict, peer_allocs: 'list | tuple' = ()) -> None:
        self._edit(self._put, alloc, peer_allocs)

    def _put(self, alloc, peer_allocs):
        own = _firewall.container_rules(alloc, peer_allocs)
        self._drop(alloc, keep=own)  # the chains it no longer has
        ours = self.state()[0]
        self._delete_jumps(alloc, [name for name in own if name in ours])
        for name, rules in own.items():
            self._send(_chain(name), {'flush': {'chain': _names(name)}}, *[_rule(name, spec) for spec in rules])
        for base, jump in _firewall.jumps(alloc, own):
            self._send(_rule(base, jump))

    def peer(self, alloc: dict, other: dict, present: bool = True) -> None:
        self._edit(self._peer, _firewall.peer_edits(alloc, other), present)

    def remote_peer(self, alloc: dict, address: str, present: bool = True) -> None:
        self._edit(self._peer, _firewall.remote_peer_edits(alloc, address), present)

    def _peer(self, edits, present):
        for chain, spec in edits:
            if chain not in self.state()[0]:
                self.broken = True
                return
            if present:
                self._send(_rule(chain, spec, 'insert'))
            else:
                for handle in self._handles(chain, spec['comment']):
                    self._send({'delete': {'rule': dict(_names(chain), chain=chain, handle=handle)}})

    def commit(self, allocations: dict, peers: 'list | tuple', overlay: 'dict | None' = None) -> bool:
        """Check, then send the edits (or, when the table differs from desired_rules, the whole table) as one
        transaction, with the accepts other tables' dropping forward chains need. True when it was a repair."""
        rules = _firewall.desired_rules(allocations, peers, overlay)
        repaired = bool(rules) and (self.broken or self.damaged(rules))
        batch = self.rebuild(rules) if repaired or not rules else self.batch
        foreign, fast = self.foreign(bool(rules)), self.fast_path(allocations, overlay)
        try:
            self.nft.run(*(batch + foreign + fast), what="update conductor's rules")
        except ConductorError:
            if not fast:
                raise
            # a device the fast path names went away since it was looked up (a container ended): nothing was
            # changed, so once more with the devices that are there now
            self.nft.run(*(batch + foreign + self.fast_path(allocations, overlay)), what="update conductor's rules")
        after = ruleset_generation()
        if self.start and after:
            (where, before), (there, now) = self.start.rsplit(':', 1), after.rsplit(':', 1)
            if where == there and int(now) - int(before) in (0, 1):  # our one transaction, or none: nobody else's
                self.settled = after
        return repaired or bool(rules and foreign)  # accepts missing in a dropping chain: a repair too

    def damaged(self, rules: dict) -> bool:
        """Whether our table, as it will be after the edits, differs from `rules`: a chain too many or missing, or
        a rule count that differs. Every count is checked, from the listing and the edits, unless the ruleset is
        still as the last commit left it and nothing was listed: then only the chains the edits made or flushed
        are counted. Counting is cheap; comparing rules is not."""
        self._send()
        if self.chains != set(rules):
            return True
        listed = self._table is not None or not self.unchanged
        for name, chain_rules in rules.items():
            if name in self.reset:
                count = self.delta.get(name, 0)
            elif listed:
                count = len(self.table().get(name, ())) + self.delta.get(name, 0)
            else:
                continue
            if count != len(chain_rules):
                return True
        return False

    def rebuild(self, rules: dict) -> list:
        """The batch that makes table ip conductor hold exactly `rules`; with none, that deletes it."""
        table = {'table': {'family': FAMILY, 'name': TABLE}}
        batch = [{'add': table}, {'delete': table}]  # add first: a delete of a missing table fails
        if rules:
            batch.append({'add': table})
            batch += [_chain(name) for name in rules]
            batch += [_rule(name, spec) for name, chain_rules in rules.items() for spec in chain_rules]
        return batch

    def fast_path(self, allocations: dict, overlay: 'dict | None') -> list:
        """The batch that makes table netdev conductor hold _firewall.fast_paths (for the devices that exist),
        where it does not already; with none, that deletes it. A rule is known by its comment, which names both
        its addresses and the index of the device it hands packets to; a chain by its name, which is its device's.
        The table is listed only when it is there: a host with no peering across hosts pays nothing more."""
        wanted = _firewall.fast_paths(allocations, overlay, _index)
        self.state()
        table = {'family': FAST_FAMILY, 'name': TABLE}
        if not wanted:
            return [{'delete': {'table': table}}] if self.fast_table else []
        current = {}  # {chain: (its device, {comment: handle})}
        for obj in self.nft.run({'list': {'table': table}}) if self.fast_table else ():
            if 'chain' in obj:
                # nft 1.0.6 lists a netdev chain without its device: then it is the one it is named after (ours are)
                current[obj['chain']['name']] = (obj['chain'].get('dev', obj['chain']['name']), {})
            elif 'rule' in obj:
                current.setdefault(obj['rule']['chain'], (None, {}))[1][obj['rule'].get('comment')] = obj['rule']['handle']
        where = {'family': FAST_FAMILY, 'table': TABLE}
        batch = []
        for name, (device, dummy) in current.items():
            if name not in wanted or device != name:
                batch += [{'flush': {'chain': dict(where, name=name)}}, {'delete': {'chain': dict(where, name=name)}}]
        for device, rules in wanted.items():
            chain_device, have = current.get(device, (None, {}))
            if chain_device != device:  # missing, or deleted above
                have = {}
                batch.append({'add': {'chain': dict(where, name=device, type='filter', hook='ingress', dev=device,
                                                    prio=FAST_PRIORITY, policy='accept')}})
            comments = {spec['comment'] for spec in rules}
            batch += [{'delete': {'rule': dict(where, chain=device, handle=handle)}}
                      for comment, handle in have.items() if comment not in comments]
            batch += [_fast_rule(device, spec) for spec in rules if spec['comment'] not in have]
        return ([] if self.fast_table else [{'add': {'table': table}}]) + batch if batch else []

    def foreign_rules(self, chain: dict) -> list:
        """Our accepts in another table's chain (listed objects, with their handles)."""
        key = (chain['family'], chain['table'], chain['name'])
        if key not in self._foreign:
            rules = listed(self.nft.run({'list': {'chain': {'family': key[0], 'table': key[1], 'name': key[2]}}}), 'rule')
            self._foreign[key] = [r for r in rules if r.get('comment') == FOREIGN_COMMENT]
        return self._foreign[key]

    def foreign(self, wanted: bool) -> list:
        """The batch that gives each other table's dropping forward chain our accept of marked packets (wanted)
        or takes it away, where that is not so already."""
        batch = []
        for chain in self.state()[1]:
            where = {'family': chain['family'], 'table': chain['table'], 'chain': chain['name']}
            mine = self.foreign_rules(chain)
            if wanted and len(mine) == 2:
                continue
            batch += [{'delete': {'rule': dict(where, handle=r['handle'])}} for r in mine]
            if wanted:  # appended: in place of the drop policy, after the chain's own rules
                batch += [{'add': {'rule': dict(where, comment=FOREIGN_COMMENT, expr=expr)}} for expr in foreign_rules()]
        return batch


def _fast_rule(device, spec):
    """One of _firewall.fast_paths' rules, on the ingress of `device`: an IPv4 packet with no options and a TTL
    over 1, in an untagged frame to the device's own MAC (`ether type` sees a VLAN tag the kernel took out), not to
    the VXLAN port, between the two addresses, is handed to spec['out'], to the neighbour spec['via'] (fwd
    decrements the TTL, as a router does)."""
    def field(protocol, name):
        return {'payload': {'protocol': protocol, 'field': name}}
    expr = [_match({'meta': {'key': 'protocol'}}, 'ip'), _match(field('ip', 'saddr'), spec['src']),
            _match(field('ip', 'daddr'), spec['dst']), _match({'meta': {'key': 'pkttype'}}, 'host'),
            _match(field('ether', 'type'), 'ip'), _match(field('ip', 'version'), 4), _match(field('ip', 'hdrlength'), 5),
            _match(field('ip', 'ttl'), 1, '>'), _match(field('th', 'dport'), spec['guard'], '!='), {'counter': None},
            {'fwd': {'dev': spec['out'], 'family': 'ip', 'addr': spec['via']}}]
    return {'add': {'rule': {'family': FAST_FAMILY, 'table': TABLE, 'chain': device, 'expr': expr,
                             'comment': spec['comment']}}}


def _index(device):
    """The interface index of a network device in this namespace, or None."""
    try:
        return socket.if_nametoindex(device)
    except OSError:
        return None


def foreign_rules() -> list:
    """The accepts in another table's dropping forward chain: from or to a container veth, and marked."""
    return [[_match({'meta': {'key': key}}, 'cdr*'), _match(MARKED, MARK), {'accept': None}]
            for key in ('iifname', 'oifname')]


def ruleset_generation() -> 'str | None':
    """Which ruleset this is, and how far it has changed: the boot, the network namespace and its nftables
    generation (which starts again with each namespace and each boot), or None when the kernel does not say."""
    number = _netlink.nftables_generation()
    if number is None:
        return None
    try:
        with open('/proc/sys/kernel/random/boot_id') as f:
            boot = f.read().strip()
        namespace = os.stat('/proc/thread-self/ns/net').st_ino
    except OSError:
        return None
    return '%s:%d:%d' % (boot, namespace, number)


def clear() -> bool:
    """Take conductor's table and its accepts in other tables away (a move to the iptables backend). Returns
    whether there was anything."""
    try:
        change = Change()
    except ConductorError:  # no python3-nftables or libnftables: no rules of ours there either
        return False
    if not change.state()[0] and not change.fast_table and not any(change.foreign_rules(c) for c in change.state()[1]):
        return False
    change.commit({}, [])
    return True
