# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall, change by change, in the private lab (tests/netlab.py): one container's network change
touches only its own rules, a peering only the pair's, and rules lost to a flush or a hand edit come back."""
import json
import os
import subprocess
import sys

import pytest

import helpers
from netlab import HOST_IP, sh

pytestmark = pytest.mark.parametrize('netlab', ['iptables', 'nftables'], indirect=True)

SERVER = ('$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; '
          'while ($c = $s->accept) { <$c>; print $c "HTTP/1.0 200 OK\\r\\n\\r\\nserved\\n"; close $c }')


@pytest.fixture
def image(netconductor, context):
    netconductor('build', 'img', context.write('FROM debian:bookworm\nEXPOSE 8080 53/udp\nCMD ["sleep", "1000"]\n'))
    return 'img'


def saved(netlab):
    return netlab.saved()


def tag(cli, name):
    return json.load(open(os.path.join(cli.root, 'network', 'allocations.json')))[name]['host_if'][3:]


def without(rules, *tags):
    return [r for r in rules if not any(t in r[1] for t in tags)]


def networked(cli, *names):
    for name in names:
        cli('run', '-d', 'img', name)
        cli('addnetwork', '-i', '-e', '8080-%d' % (9000 + len(name) + ord(name[-1])), name)


def test_one_containers_change_leaves_every_other_rule_untouched(netconductor, netlab, image):
    networked(netconductor, 'a', 'b')
    netconductor('peer', 'a', 'b')
    ips = {n: json.loads(netconductor('inspect', n).stdout)['network']['container_ip'] for n in 'ab'}
    netconductor('exec', 'a', '--', 'ping', '-c1', '-W2', ips['b'])  # counts in a's and b's rules
    before = saved(netlab)
    assert any(count for table, rule, count in before if tag(netconductor, 'b') in rule)
    netconductor('run', '-d', 'img', 'c')
    assert netconductor('addnetwork', '-i', '-p', '7000:8080', 'c').stderr == ''
    netconductor('addnetwork', '-p', '7001:8080', '--host-access', 'none', 'c')  # a change, then removal
    after = saved(netlab)
    assert without(after, tag(netconductor, 'c')) == before, 'rules of a and b: same order, counters kept'
    assert len(after) > len(before)
    netconductor('stop', '-t', '0', 'c')
    assert saved(netlab) == before


def test_peer_and_unpeer_touch_only_the_pair(netconductor, netlab, image):
    networked(netconductor, 'a', 'b', 'c')
    before = saved(netlab)
    netconductor('peer', 'a', 'b')
    peered = saved(netlab)
    added = [r for r in peered if r not in before]
    assert len(added) == 2 and all(tag(netconductor, 'a') in r[1] and tag(netconductor, 'b') in r[1] for r in added)
    assert [r for r in peered if r in before] == before
    netconductor('unpeer', 'b', 'a')
    assert saved(netlab) == before


def test_flushed_or_lost_rules_are_repaired(netconductor, netlab, image):
    networked(netconductor, 'a', 'b')
    netconductor('peer', 'a', 'b')
    whole = [r[:2] for r in saved(netlab)]
    netlab.flush_conductor_chains()  # as another tool's iptables -F would
    result = netconductor('addnetwork', '-i', '-e', '8080-%d' % (9000 + 1 + ord('b')), 'b')
    assert result.stderr == 'conductor addnetwork: firewall repaired: its rules were missing or damaged\n'
    assert [r[:2] for r in saved(netlab)] == whole
    netlab.lose_everything()  # as a reboot leaves it: no chains of ours, no jumps
    assert 'firewall repaired' in netconductor('unpeer', 'a', 'b').stderr
    netlab.flush_conductor_chains()
    assert netconductor('repair').stdout == 'firewall repaired: its rules were missing or damaged\n'
    assert netconductor('repair').stdout == 'firewall intact\n'
    netconductor('peer', 'a', 'b')
    assert sorted(r[:2] for r in saved(netlab)) == sorted(whole)
    ip = json.loads(netconductor('inspect', 'b').stdout)['network']['container_ip']
    netconductor('exec', 'a', '--', 'ping', '-c1', '-W2', ip)


def test_a_hand_deleted_rule_comes_back(netconductor, netlab, image):
    networked(netconductor, 'a', 'b')
    whole = [r[:2] for r in saved(netlab)]
    chain = 'CONDUCTOR-' + tag(netconductor, 'a')
    netlab.delete_first_rule(chain)
    assert len(saved(netlab)) == len(whole) - 1
    netconductor('addnetwork', '-i', '-e', '8080-%d' % (9000 + 1 + ord('a')), 'a')  # its own next change
    assert sorted(r[:2] for r in saved(netlab)) == sorted(whole), 'the jumps into its chains come last now'
    netlab.delete_first_rule(chain + '-DNAT')
    assert 'firewall repaired' in netconductor('peer', 'a', 'b').stderr  # another change repairs it too
    pair = (tag(netconductor, 'a'), tag(netconductor, 'b'))
    assert sorted(r[:2] for r in saved(netlab) if not all(t in r[1] for t in pair)) == sorted(whole)


def test_publish_all_picks_free_host_ports(netconductor, netlab, image):
    netconductor('run', '-d', 'img', 'web', '--', 'perl', '-MIO::Socket::INET', '-e', SERVER)
    out = netconductor('addnetwork', '-P', '-p', '7000:8080', 'web').stdout
    low = int(sh('cat', '/proc/sys/net/ipv4/ip_local_port_range', ns=netlab.host).stdout.split()[0])
    ports = json.loads(netconductor('inspect', 'web').stdout)['network']['ports']
    assert [(p['container_port'], p['protocol']) for p in ports] == [(8080, 'tcp'), (53, 'udp')]
    assert ports[0]['host_port'] == 7000 and ports[1]['host_port'] == low, 'a port given with -p is kept'
    assert '0.0.0.0:%d->53/udp' % low in out
    assert netlab.fetch(netlab.internet, 'http://%s:7000/' % HOST_IP) == 'served\n'
    row = [r for r in json.loads(netconductor('ps', '--json').stdout) if r['name'] == 'web'][0]
    assert row['ports'] == ports
    assert '0.0.0.0:%d->53/udp' % low in netconductor('ps').stdout
    netconductor('run', '-d', 'img', 'web2')
    netconductor('addnetwork', '-P', 'web2')
    second = json.loads(netconductor('inspect', 'web2').stdout)['network']['ports']
    assert sorted((p['host_port'], p['protocol']) for p in second) == [(low, 'tcp'), (low + 1, 'udp')], \
        "a port another container publishes is skipped, per protocol"
    netconductor('addnetwork', '-P', 'web2')
    assert json.loads(netconductor('inspect', 'web2').stdout)['network']['ports'] == second, 'the same ports again'
    rules = '\n'.join(r[1] for r in saved(netlab))
    assert 'dport %d ' % low in rules and HOST_IP not in rules


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_batch_stop_names_unknown_ones_and_all(netconductor, netlab, image):
    rules = saved(netlab)
    networked(netconductor, 'a', 'b')
    netconductor('run', '-d', 'img', 'c')
    netconductor('peer', 'a', 'b')
    result = netconductor('stop', '-t', '0', 'a', 'ghost', 'b', 'Bad/Name', check=False)
    assert result.returncode == 1 and result.stdout == 'a\nb\n'
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0] == "conductor stop: no container named 'ghost': see conductor ps"
    assert errors[1].startswith("conductor stop: invalid container name 'Bad/Name': use 1 to 63 characters")
    assert [r['name'] for r in json.loads(netconductor('ps', '--json').stdout)] == ['c']
    assert saved(netlab) == rules
    assert 'give the containers to stop, or --all' in netconductor.fails('stop')
    assert 'not both' in netconductor.fails('stop', '--all', 'c')
    assert netconductor('stop', '--all', '-t', '0').stdout == 'c\n'
    assert netconductor('stop', '--all').stdout == '', 'nothing to stop is not an error'


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_stop_and_peer_do_not_import_pyroute2(netconductor, netlab, image):
    networked(netconductor, 'a', 'b')

    def imported(*args):
        result = subprocess.run(['nsenter', '--net=/run/netns/' + netlab.host, '--', sys.executable, '-X', 'importtime',
                                 helpers.CLI, '--root', netconductor.root] + list(args),
                                capture_output=True, text=True, check=True)
        return {line.split('|')[-1].strip().split('.')[0] for line in result.stderr.splitlines()
                if line.startswith('import time:')}
    assert 'pyroute2' not in imported('peer', 'a', 'b') | imported('stop', '-t', '0', 'a')
    assert 'cdr' + tag(netconductor, 'b') in netlab.links() and 'cdr' not in netlab.links().replace(
        'cdr' + tag(netconductor, 'b'), '')
