"""The firewall's rules as a pure function of the allocations: no root, no netfilter."""
from ansible_collections.cs695.conductor.plugins.module_utils import _firewall

A = {'container_ip': '192.168.0.2', 'host_ip': '192.168.0.1', 'host_if': 'cdraaaaaaaaaaa', 'internet': True,
     'uplink': 'eth0', 'ports': [{'container_port': 80, 'host_port': 8080, 'protocol': 'tcp'}]}
B = {'container_ip': '192.168.1.2', 'host_ip': '192.168.1.1', 'host_if': 'cdrbbbbbbbbbbb', 'internet': False,
     'ports': [], 'host_access': 'none'}


def test_no_networks_no_rules():
    assert not any(_firewall.desired_rules({}, [], '192.168.0.0/16').values())


def test_a_chain_per_container_that_checks_the_veth_and_the_source_first():
    rules = _firewall.desired_rules({'a': A, 'b': B}, [('a', 'b')], '192.168.0.0/16')
    assert set(rules) == {'CONDUCTOR-FORWARD', 'CONDUCTOR-INPUT', 'CONDUCTOR-PREROUTING', 'CONDUCTOR-OUTPUT',
                          'CONDUCTOR-POSTROUTING', 'CONDUCTOR-aaaaaaaaaaa', 'CONDUCTOR-bbbbbbbbbbb'}
    forward = rules['CONDUCTOR-FORWARD']
    assert forward[:4] == [{'in': 'cdraaaaaaaaaaa', 'target': 'CONDUCTOR-aaaaaaaaaaa'},
                           {'in': 'cdrbbbbbbbbbbb', 'target': 'CONDUCTOR-bbbbbbbbbbb'},
                           {'out': 'cdraaaaaaaaaaa', 'target': 'CONDUCTOR-aaaaaaaaaaa'},
                           {'out': 'cdrbbbbbbbbbbb', 'target': 'CONDUCTOR-bbbbbbbbbbb'}]
    assert forward[4:] == [{'in': 'cdr+', 'target': 'DROP'}, {'out': 'cdr+', 'target': 'DROP'}], \
        'nothing from or to a container veth reaches the host FORWARD policy'
    own = rules['CONDUCTOR-aaaaaaaaaaa']
    assert own[0] == {'in': 'cdraaaaaaaaaaa', 'src': '!192.168.0.2', 'target': 'DROP'}
    assert {'in': 'cdraaaaaaaaaaa', 'dst': '169.254.0.0/16', 'target': 'DROP'} in own
    assert all(r.get('in') == 'cdraaaaaaaaaaa' or r.get('out') == 'cdraaaaaaaaaaa' for r in own)
    assert own[-1] == {'out': 'cdraaaaaaaaaaa', 'target': 'DROP'}
    peer = {'out': 'cdrbbbbbbbbbbb', 'in': 'cdraaaaaaaaaaa', 'src': '192.168.0.2', 'target': 'ACCEPT'}
    assert peer in rules['CONDUCTOR-bbbbbbbbbbb'], 'a peer is known by its veth as well as its address'


def test_input_guards_loopback_and_host_access():
    rules = _firewall.desired_rules({'a': A, 'b': B}, [], '192.168.0.0/16')['CONDUCTOR-INPUT']
    assert rules[0] == {'in': 'cdr+', 'dst': '127.0.0.0/8', 'ctstate': 'NEW,INVALID,UNTRACKED', 'target': 'DROP'}
    assert {'in': 'cdrbbbbbbbbbbb', 'target': 'DROP'} in rules and {'in': 'cdraaaaaaaaaaa', 'target': 'DROP'} not in rules
