# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall's rules as a pure function of the allocations, and Change against a fake python-iptables:
no root, no netfilter."""
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _firewall

A = {'container_ip': '192.168.0.2', 'host_ip': '192.168.0.1', 'host_if': 'cdraaaaaaaaaaa', 'internet': True,
     'uplink': 'eth0', 'ports': [{'container_port': 80, 'host_port': 8080, 'protocol': 'tcp'}]}
B = {'container_ip': '192.168.1.2', 'host_ip': '192.168.1.1', 'host_if': 'cdrbbbbbbbbbbb', 'internet': False,
     'ports': [], 'host_access': 'none'}


def bare(rules):
    """Rules without their comments (what nftables shows): the rules the tests below spell out."""
    if isinstance(rules, dict):
        return {chain: bare(chain_rules) for chain, chain_rules in rules.items()}
    return [{k: v for k, v in rule.items() if k != 'comment'} for rule in rules]


def test_every_rule_says_why_in_a_comment():
    rules = _firewall.desired_rules({'a': A, 'b': B}, [('a', 'b')])
    comments = [rule.get('comment') for chain_rules in rules.values() for rule in chain_rules]
    assert all(comments) and max(len(c) for c in comments) <= 100  # nftables keeps 128 bytes of a comment


def test_no_networks_no_rules():
    assert _firewall.desired_rules({}, []) == {}


def test_a_chain_per_container_that_checks_the_veth_and_the_source_first():
    rules = bare(_firewall.desired_rules({'a': A, 'b': B}, [('a', 'b')]))
    assert set(rules) == {'CONDUCTOR-FORWARD', 'CONDUCTOR-FROM', 'CONDUCTOR-TO', 'CONDUCTOR-INPUT',
                          'CONDUCTOR-PREROUTING', 'CONDUCTOR-OUTPUT', 'CONDUCTOR-POSTROUTING',
                          'CONDUCTOR-aaaaaaaaaaa', 'CONDUCTOR-aaaaaaaaaaa-IN', 'CONDUCTOR-aaaaaaaaaaa-DNAT',
                          'CONDUCTOR-aaaaaaaaaaa-SNAT', 'CONDUCTOR-bbbbbbbbbbb', 'CONDUCTOR-bbbbbbbbbbb-IN'}
    assert rules['CONDUCTOR-FORWARD'] == [{'target': 'CONDUCTOR-FROM'}, {'target': 'CONDUCTOR-TO'},
                                          {'in': 'cdr+', 'target': 'DROP'}, {'out': 'cdr+', 'target': 'DROP'}], \
        'every source checked before any destination; nothing from or to a container veth reaches the host policy'
    assert rules['CONDUCTOR-FROM'] == [{'in': 'cdraaaaaaaaaaa', 'target': 'CONDUCTOR-aaaaaaaaaaa'},
                                       {'in': 'cdrbbbbbbbbbbb', 'target': 'CONDUCTOR-bbbbbbbbbbb'}]
    assert rules['CONDUCTOR-PREROUTING'] == rules['CONDUCTOR-OUTPUT'] == [{'target': 'CONDUCTOR-aaaaaaaaaaa-DNAT'}]
    own = rules['CONDUCTOR-aaaaaaaaaaa']
    peer = {'out': 'cdraaaaaaaaaaa', 'in': 'cdrbbbbbbbbbbb', 'src': '192.168.1.2', 'target': 'ACCEPT'}
    assert own[0] == peer, 'a peer is known by its veth as well as its address'
    assert own[1] == {'in': 'cdraaaaaaaaaaa', 'src': '!192.168.0.2', 'target': 'DROP'}
    assert {'in': 'cdraaaaaaaaaaa', 'dst': '169.254.0.0/16', 'target': 'DROP'} in own
    assert all(r.get('in') == 'cdraaaaaaaaaaa' or r.get('out') == 'cdraaaaaaaaaaa' for r in own)
    assert own[-1] == {'out': 'cdraaaaaaaaaaa', 'target': 'DROP'}


def test_input_guards_loopback_first_and_host_access():
    rules = bare(_firewall.desired_rules({'a': A, 'b': B}, []))
    assert rules['CONDUCTOR-INPUT'][0] == {'in': 'cdr+', 'dst': '127.0.0.0/8', 'ctstate': 'NEW,INVALID,UNTRACKED',
                                           'target': 'DROP'}
    assert rules['CONDUCTOR-bbbbbbbbbbb-IN'][-1] == {'in': 'cdrbbbbbbbbbbb', 'target': 'DROP'}
    assert rules['CONDUCTOR-aaaaaaaaaaa-IN'] == [{'in': 'cdraaaaaaaaaaa', 'src': '!192.168.0.2', 'target': 'DROP'}]


class FakeIptc:
    """Tables as {chain: [spec]}, with the calls Change makes; a rule is its spec (see _rule below)."""

    class IPTCError(Exception):
        pass

    def __init__(self):
        self.kernel = {'filter': {'FORWARD': [], 'INPUT': []},
                       'nat': {'PREROUTING': [], 'OUTPUT': [], 'POSTROUTING': []}}
        self.commits, self.touched, self.tables = [], set(), {}

    def Table(self, name):
        if name not in self.tables:
            self.tables[name] = FakeTable(self, name)
        return self.tables[name]

    def Chain(self, table, name):
        return FakeChain(table, name)


class FakeTable:
    def __init__(self, iptc, name):
        self.iptc, self.name, self.autocommit = iptc, name, True
        self.refresh()

    def refresh(self):
        self.chains_ = {c: list(r) for c, r in self.iptc.kernel[self.name].items()}

    @property
    def chains(self):
        return [type('Chain', (), {'name': c}) for c in self.chains_]

    def is_chain(self, name):
        return name in self.chains_

    def create_chain(self, name):
        self.chains_[name] = []

    def delete_chain(self, name):
        self.iptc.touched.add(name)
        del self.chains_[name]

    def flush_entries(self, name):
        self.iptc.touched.add(name)
        self.chains_[name] = []

    def first_rule(self, chain):
        return (chain, 0) if self.chains_[chain] else None

    def next_rule(self, entry):
        return (entry[0], entry[1] + 1) if entry[1] + 1 < len(self.chains_[entry[0]]) else None

    def get_target(self, entry):
        return self.chains_[entry[0]][entry[1]]['target'].encode()

    def commit(self):
        self.iptc.commits.append(self.name)
        self.iptc.kernel[self.name] = {c: list(r) for c, r in self.chains_.items()}


class FakeChain:
    def __init__(self, table, name):
        self.table, self.name = table, name

    def rules(self):
        if self.name not in self.table.chains_:
            raise FakeIptc.IPTCError('no chain %s' % self.name)
        self.table.iptc.touched.add(self.name)
        return self.table.chains_[self.name]

    def flush(self):
        self.table.flush_entries(self.name)

    def delete(self):
        self.table.delete_chain(self.name)

    def append_rule(self, rule):
        self.rules().append(rule)

    def insert_rule(self, rule, position=0):
        self.rules().insert(position, rule)

    def delete_rule(self, rule):
        if rule not in self.rules():
            raise FakeIptc.IPTCError('no such rule')
        self.rules().remove(rule)


@pytest.fixture
def iptc(monkeypatch):
    fake = FakeIptc()
    monkeypatch.setattr(_firewall, 'import_iptc', lambda: fake)
    monkeypatch.setattr(_firewall, '_rule', lambda iptc, spec: spec)
    return fake


def rules_of(fake):
    return {c: r for table in fake.kernel.values() for c, r in table.items() if c.startswith('CONDUCTOR-')}


def same(rules, allocations, peers=()):
    """rules_of(...) holds desired_rules(...); the jumps into containers' chains may come in any order."""
    with_jumps = set(_firewall.shared_rules()) - {'CONDUCTOR-FORWARD'}

    def unordered(chains):
        return {c: sorted(map(repr, r)) if c in with_jumps else r for c, r in chains.items()}
    return unordered(rules) == unordered(_firewall.desired_rules(allocations, list(peers)))


def test_a_change_touches_only_its_containers_chains(iptc):
    assert _firewall.Change().commit({'b': B}, []) is True  # nothing there yet: built from scratch
    assert same(rules_of(iptc), {'b': B}, [])
    iptc.touched.clear()
    change = _firewall.Change()
    change.put(A)
    assert change.commit({'a': A, 'b': B}, []) is False
    assert same(rules_of(iptc), {'a': A, 'b': B}, [])
    shared = set(_firewall.shared_rules())
    assert all('aaaaaaaaaaa' in c or c in shared for c in iptc.touched), iptc.touched


def test_peers_then_a_batch_removal_commits_each_table_once(iptc):
    _firewall.Change().commit({'a': A, 'b': B}, [])
    change = _firewall.Change()
    change.peer(A, B)
    assert change.commit({'a': A, 'b': B}, [('a', 'b')]) is False
    assert iptc.commits[-1:] == ['filter'], 'a peering changes the filter table only'
    iptc.commits.clear()
    change = _firewall.Change()
    change.peer(A, B, False)
    change.drop(A)
    change.drop(B)
    assert change.commit({}, []) is False
    assert sorted(iptc.commits) == ['filter', 'nat'] and rules_of(iptc) == {}
    assert iptc.kernel['filter']['FORWARD'] == [], "the host's chains lose their jumps with the last network"


def test_damage_anywhere_is_repaired(iptc):
    _firewall.Change().commit({'a': A, 'b': B}, [])
    del iptc.kernel['filter']['CONDUCTOR-bbbbbbbbbbb'][0]  # someone else's hand, in another container's chain
    change = _firewall.Change()
    change.put(A)
    assert change.commit({'a': A, 'b': B}, []) is True
    assert same(rules_of(iptc), {'a': A, 'b': B}, [])
    iptc.kernel['filter'] = {'FORWARD': [], 'INPUT': []}  # a reboot, or iptables -F -X
    change = _firewall.Change()
    change.drop(B)  # meets a missing chain: the edit stops, the commit rebuilds
    assert change.commit({'a': A}, []) is True and same(rules_of(iptc), {'a': A}, [])
