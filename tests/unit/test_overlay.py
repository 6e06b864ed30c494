# SPDX-License-Identifier: GPL-3.0-or-later
"""The classroom overlay's plan (every bad input one clear error, before anything is made) and its firewall rules,
as pure functions: the uplink is faked, no root. The overlay itself runs in tests/root/test_overlay.py."""
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _firewall, _nftables, _overlay
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

REMOTES = [{'address': '10.0.0.12', 'subnet': '10.88.2.0/24'}, {'address': '10.0.0.13', 'subnet': '10.88.3.0/24'}]


@pytest.fixture(autouse=True)
def uplink(monkeypatch):
    """An uplink eth0 with 10.0.0.11 and MTU 1500 (or what a test sets), reached by every route."""
    link = {'mtu': 1500}
    monkeypatch.setattr(_overlay, '_route_device', lambda address: 'eth0')
    monkeypatch.setattr(_overlay, '_uplink', lambda name: ('10.0.0.11', link['mtu']))
    return link


def test_a_plan_with_its_defaults():
    plan = _overlay.plan('10.88.1.0/24', list(reversed(REMOTES)))
    assert plan == {'vni': 695, 'port': 4789, 'uplink': 'eth0', 'local': '10.0.0.11', 'mtu': 1450,
                    'subnet': '10.88.1.0/24', 'network': '10.88.0.0/16', 'prefix': 30, 'remotes': REMOTES, 'services': []}
    assert _overlay.plan('10.88.1.0/24', REMOTES, services=['10.88.3.6', '10.88.3.6'])['services'] == ['10.88.3.6']
    with pytest.raises(ConductorError, match="in no other host's subnet"):
        _overlay.plan('10.88.1.0/24', REMOTES, services=['10.88.1.6'])
    assert _overlay.mac('10.88.2.0/24') == '02:cd:0a:58:02:00' and _overlay.gateway('10.88.2.0/24') == '10.88.2.0'
    assert _overlay.subnet_at('10.88.0.0/16', 3) == '10.88.3.0/24'
    assert _overlay.remote_of(plan, '10.88.3.6') == REMOTES[1]


@pytest.mark.parametrize('subnet, remotes, kwargs, message', [
    ('10.88.1.0/24', [{'address': '10.0.0.12', 'subnet': '10.88.1.128/25'}], {}, 'overlap'),
    ('10.88.1.0/24', [{'address': '10.0.0.12', 'subnet': '10.88.2.0/24'}, {'address': '10.0.0.13', 'subnet': '10.88.0.0/22'}],
     {}, 'overlap'),
    ('10.88.1.0/24', [REMOTES[0], dict(REMOTES[1], address='10.0.0.12')], {}, 'listed twice'),
    ('10.88.1.0/24', REMOTES, {'vni': 0}, 'invalid VNI'),
    ('10.88.1.0/24', REMOTES, {'vni': 2 ** 24}, 'invalid VNI'),
    ('10.88.1.0/24', REMOTES, {'vni': 'x'}, 'invalid VNI'),
    ('10.88.1.0/24', REMOTES, {'port': 0}, 'invalid UDP port'),
    ('10.88.1.0/24', REMOTES, {'port': 65536}, 'invalid UDP port'),
    ('10.88.1.0/24', [{'address': '10.0.0.12', 'subnet': '10.99.2.0/24'}], {}, 'outside the classroom network'),
    ('10.88.1.0/24', [{'address': '10.0.0.11', 'subnet': '10.88.2.0/24'}], {}, 'is this host'),
    ('10.88.1.0/24', [{'address': 'host2', 'subnet': '10.88.2.0/24'}], {}, 'invalid address'),
    ('10.88.1.0/24', [{'address': '10.0.0.12', 'subnet': 'ten'}], {}, 'is not a network'),
    ('10.88.1.0/31', [], {}, 'smaller than a container'),
    ('fd00::/64', [], {}, 'not IPv4'),
])
def test_bad_input_is_one_clear_error(subnet, remotes, kwargs, message):
    with pytest.raises(ConductorError) as e:
        _overlay.plan(subnet, remotes, **kwargs)
    assert message in str(e.value)


def test_an_uplink_whose_mtu_leaves_too_little_room(uplink):
    uplink['mtu'] = 1329
    with pytest.raises(ConductorError, match='MTU of 1329.*at least 1330'):
        _overlay.plan('10.88.1.0/24', REMOTES)
    uplink['mtu'] = 1330
    assert _overlay.plan('10.88.1.0/24', REMOTES)['mtu'] == 1280


def test_the_cli_form_of_a_remote_and_an_address_outside_every_subnet():
    assert _overlay.parse_remote('10.0.0.12=10.88.2.0/24') == REMOTES[0]
    with pytest.raises(ConductorError, match='ADDRESS=SUBNET'):
        _overlay.parse_remote('10.0.0.12')
    with pytest.raises(ConductorError, match="in no other host's subnet"):
        _overlay.remote_of(_overlay.plan('10.88.1.0/24', REMOTES), '10.88.1.6')
    with pytest.raises(ConductorError, match='invalid subnet index'):
        _overlay.subnet_at('10.88.0.0/16', 256)


def test_the_overlay_rules():
    plan = _overlay.plan('10.88.1.0/24', REMOTES)
    alloc = {'container_ip': '10.88.1.2', 'host_ip': '10.88.1.1', 'host_if': 'cdraaaaaaaaaaa', 'internet': False,
             'ports': [], 'remote_peers': ['10.88.2.6'], 'service': [{'port': 5432, 'protocol': 'tcp'}]}
    rules = _firewall.desired_rules({'a': alloc}, [], plan)
    assert _firewall.desired_rules({}, [], plan)['CONDUCTOR-OVERLAY'] == rules['CONDUCTOR-OVERLAY']
    forward = [r['comment'] for r in rules['CONDUCTOR-FORWARD']]
    assert forward[:4] == ['VXLAN from a container, to anywhere', 'lab host 10.0.0.12 itself', 'lab host 10.0.0.13 itself',
                           'from another lab host']
    assert [r.get('src') for r in rules['CONDUCTOR-OVERLAY']] == [None, '10.88.2.0/24', '10.88.3.0/24', None]
    guard = rules['CONDUCTOR-INPUT'][:5]
    assert [(r.get('in'), r.get('src'), r.get('dst'), r['target']) for r in guard] == [
        ('cdr+', None, None, 'DROP'), ('cdroverlay', None, None, 'DROP'), (None, '10.0.0.12', '10.0.0.11', 'RETURN'),
        (None, '10.0.0.13', '10.0.0.11', 'RETURN'), (None, None, None, 'DROP')]
    own = rules['CONDUCTOR-aaaaaaaaaaa']
    assert own[:2] == [rule for chain, rule in _firewall.remote_peer_edits(alloc, '10.88.2.6')]
    assert (own[0]['in'], own[0]['src']) == ('cdroverlay', '10.88.2.6'), 'what the peer sends'
    assert (own[1]['out'], own[1]['src'], own[1]['dst']) == ('cdroverlay', '10.88.1.2', '10.88.2.6'), 'what it sends'
    assert not [r for r in rules['CONDUCTOR-FORWARD'] if r.get('out') == 'cdroverlay' and 'dst' not in r], \
        'nothing else into the overlay'
    with_service = _firewall.desired_rules({'a': alloc}, [], dict(plan, services=['10.88.3.6']))['CONDUCTOR-FORWARD']
    assert [r['dst'] for r in with_service if r.get('out') == 'cdroverlay'] == ['10.88.3.6']
    service = [r for r in own if 'classroom service' in r['comment']]
    assert service == [{'out': 'cdraaaaaaaaaaa', 'in': 'cdr+', 'dst': '10.88.1.2', 'protocol': 'tcp', 'dport': '5432',
                        'target': 'ACCEPT', 'comment': 'classroom service port 5432/tcp'}]
    for chain, chain_rules in rules.items():  # each renders for nftables, and says why
        for rule in chain_rules:
            assert rule['comment'] and _nftables.expressions(rule)


def test_a_peer_or_service_address_must_be_a_containers():
    plan = _overlay.plan('10.88.1.0/24', REMOTES)
    for address in ('10.88.2.0', '10.88.2.1', '10.88.2.3', '10.88.2.5'):  # a /30's network, host and broadcast
        with pytest.raises(ConductorError, match="is not a container's address on lab host 10.0.0.12"):
            _overlay.remote_of(plan, address)
    assert _overlay.remote_of(plan, '10.88.2.6') == REMOTES[0]


def test_run_steps_take_the_last_subnets_and_an_address_avoids_the_hosts_networks():
    import ipaddress
    from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations

    class Store:
        config = {'POOL': '10.88.1.0/24', 'POOL_PREFIX': '30'}

        def path(self, *parts):
            return '/nonexistent/' + '/'.join(parts)
    book = Allocations(Store())
    assert book.allocate({})['container_ip'] == '10.88.1.2'
    assert book.allocate({}, last=True)['container_ip'] == '10.88.1.254'
    assert book.allocate({}, (), '10.88.1.6')['host_ip'] == '10.88.1.5'
    with pytest.raises(ConductorError, match='a network of this host'):
        book.allocate({}, [ipaddress.ip_network('10.88.1.0/28')], '10.88.1.6')


def test_the_fast_path_for_peerings_across_hosts():
    plan = _overlay.plan('10.88.1.0/24', REMOTES)
    alloc = {'container_ip': '10.88.1.2', 'host_if': 'cdraaaaaaaaaaa', 'remote_peers': ['10.88.2.6', '10.88.9.6']}
    stopped = {'container_ip': '10.88.1.6', 'host_if': 'cdrbbbbbbbbbbb', 'remote_peers': ['10.88.3.6']}
    indexes = {'cdroverlay': 3, 'cdraaaaaaaaaaa': 7}
    paths = _firewall.fast_paths({'a': alloc, 'b': stopped, 'c': {'container_ip': '10.88.1.10', 'host_if': 'cdrc'}},
                                 plan, indexes.get)
    assert paths == {  # 10.88.9.6 is in no remote subnet, b has no veth, c no remote peer: none of them
        'cdraaaaaaaaaaa': [{'src': '10.88.1.2', 'dst': '10.88.2.6', 'via': '10.88.2.0', 'out': 'cdroverlay', 'guard': 4789,
                            'comment': '10.88.1.2 to peer 10.88.2.6 on another host, out cdroverlay #3'}],
        'cdroverlay': [{'src': '10.88.2.6', 'dst': '10.88.1.2', 'via': '10.88.1.2', 'out': 'cdraaaaaaaaaaa', 'guard': 4789,
                        'comment': 'peer 10.88.2.6 on another host to 10.88.1.2, out cdraaaaaaaaaaa #7'}]}
    assert _firewall.fast_paths({'a': alloc}, None, indexes.get) == {}, 'no overlay'
    assert _firewall.fast_paths({'a': alloc}, plan, {'cdraaaaaaaaaaa': 7}.get) == {}, 'no overlay device'
    rule = _nftables._fast_rule('cdraaaaaaaaaaa', paths['cdraaaaaaaaaaa'][0])['add']['rule']
    assert (rule['family'], rule['table'], rule['chain']) == ('netdev', 'conductor', 'cdraaaaaaaaaaa')
    matched = [(e['match']['left'], e['match']['op'], e['match']['right']) for e in rule['expr'] if 'match' in e]
    assert matched == [({'meta': {'key': 'protocol'}}, '==', 'ip'),
                       ({'payload': {'protocol': 'ip', 'field': 'saddr'}}, '==', '10.88.1.2'),
                       ({'payload': {'protocol': 'ip', 'field': 'daddr'}}, '==', '10.88.2.6'),
                       ({'meta': {'key': 'pkttype'}}, '==', 'host'),  # not a broadcast, nor another's MAC
                       ({'payload': {'protocol': 'ether', 'field': 'type'}}, '==', 'ip'),  # no VLAN tag
                       ({'payload': {'protocol': 'ip', 'field': 'version'}}, '==', 4),
                       ({'payload': {'protocol': 'ip', 'field': 'hdrlength'}}, '==', 5),  # no IP options
                       ({'payload': {'protocol': 'ip', 'field': 'ttl'}}, '>', 1),  # the forward path answers a TTL of 1
                       ({'payload': {'protocol': 'th', 'field': 'dport'}}, '!=', 4789)]  # never to the VXLAN port
    assert rule['expr'][-1] == {'fwd': {'dev': 'cdroverlay', 'family': 'ip', 'addr': '10.88.2.0'}}


class FakeNft:
    """What table netdev conductor holds: listed as libnftables' JSON; commands are only recorded."""

    def __init__(self, chains):
        self.chains, self.ctx = chains, None

    def run(self, *commands, what=None):
        (verb, body), = commands[0].items()
        if body == {'chains': None}:
            return [{'chain': {'family': 'netdev', 'table': 'conductor', 'name': n, 'dev': d}} for n, (d, r) in self.chains.items()]
        objects = [{'chain': {'family': 'netdev', 'table': 'conductor', 'name': n}} for n, (d, r) in self.chains.items()]  # nft 1.0.6: no dev
        return objects + [{'rule': {'chain': n, 'comment': c, 'handle': h}} for n, (d, r) in self.chains.items() for c, h in r]


def fast_change(chains):
    change = object.__new__(_nftables.Change)
    change.nft, change._state = FakeNft(chains), None
    return change


def test_the_fast_path_changes_only_what_differs(monkeypatch):
    plan = _overlay.plan('10.88.1.0/24', REMOTES)
    alloc = {'container_ip': '10.88.1.2', 'host_if': 'cdraaaaaaaaaaa', 'remote_peers': ['10.88.2.6']}
    indexes = {'cdroverlay': 3, 'cdraaaaaaaaaaa': 7}
    monkeypatch.setattr(_nftables, '_index', indexes.get)
    wanted = _firewall.fast_paths({'a': alloc}, plan, indexes.get)
    made = fast_change({}).fast_path({'a': alloc}, plan)
    assert made[0] == {'add': {'table': {'family': 'netdev', 'name': 'conductor'}}}
    assert [c['add']['chain']['dev'] for c in made if 'chain' in c.get('add', {})] == ['cdraaaaaaaaaaa', 'cdroverlay']
    assert made[1]['add']['chain'] == {'family': 'netdev', 'table': 'conductor', 'name': 'cdraaaaaaaaaaa', 'type': 'filter',
                                       'hook': 'ingress', 'dev': 'cdraaaaaaaaaaa', 'prio': 10, 'policy': 'accept'}
    assert len([c for c in made if 'rule' in c.get('add', {})]) == 2
    as_made = {device: (device, [(spec['comment'], i) for i, spec in enumerate(rules)]) for device, rules in wanted.items()}
    assert fast_change(as_made).fast_path({'a': alloc}, plan) == [], 'as it should be: nothing sent'
    # the veth was made again (a new index) and another container's veth is gone: its chain goes, and the overlay's
    # rule to the old index is replaced
    stale = dict(as_made, cdrgone=('cdrgone', [('x', 9)]))
    stale['cdroverlay'] = ('cdroverlay', [(wanted['cdroverlay'][0]['comment'].replace('#7', '#5'), 4)])
    batch = fast_change(stale).fast_path({'a': alloc}, plan)
    where = {'family': 'netdev', 'table': 'conductor'}
    assert batch[:3] == [{'flush': {'chain': dict(where, name='cdrgone')}}, {'delete': {'chain': dict(where, name='cdrgone')}},
                         {'delete': {'rule': dict(where, chain='cdroverlay', handle=4)}}]
    assert batch[3]['add']['rule']['comment'].endswith('#7') and len(batch) == 4
    gone = fast_change(as_made).fast_path({}, plan)
    assert gone == [{'delete': {'table': {'family': 'netdev', 'name': 'conductor'}}}], 'no peering: the table goes'
    assert fast_change({}).fast_path({}, None) == []
