# SPDX-License-Identifier: GPL-3.0-or-later
"""Networking in a private lab (tests/root/netlab.py): veth, addresses, NAT, ports, peers, hygiene."""
import json
import os
import subprocess
import sys
import time

import pytest

from netlab import HOST_IP, INTERNET_IP, sh

pytestmark = pytest.mark.parametrize('netlab', ['iptables', 'nftables'], indirect=True)

SERVER = ('perl -MIO::Socket::INET -e \'$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) '
          'or die; while ($c = $s->accept) { <$c>; print $c "HTTP/1.0 200 OK\\r\\n\\r\\nhello from $ENV{HOSTNAME}\\n"; '
          'close $c }\'')
WGET = 'timeout 3 bash -c \'exec 3<>/dev/tcp/%s/80 && printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3\''


@pytest.fixture
def image(netconductor, context):
    netconductor('build', 'img', context.write('FROM debian:bookworm\n'))
    return 'img'


def run(cli, image, name, command=('sleep', '1000')):
    cli('run', '-d', image, name, '--', *command)


def address(cli, name):
    return {r['name']: r for r in json.loads(cli('ps', '--json').stdout)}[name]['address']


def allocations(root):
    path = os.path.join(root, 'network', 'allocations.json')
    return json.load(open(path)) if os.path.exists(path) else {}


def test_link_addresses_and_ping(netconductor, netlab, image):
    run(netconductor, image, 'c1')
    out = netconductor('addnetwork', 'c1').stdout
    assert out.startswith('c1: 192.168.0.2 on cdr')
    inside = netconductor('exec', 'c1', '--', 'ip', '-o', '-4', 'addr').stdout
    assert 'eth0    inet 192.168.0.2/24' in inside and 'lo    inet 127.0.0.1/8' in inside
    routes = netconductor('exec', 'c1', '--', 'ip', 'route').stdout.splitlines()
    assert '192.168.0.0/16 via 192.168.0.1 dev eth0 proto static ' in routes and not [r for r in routes if r.startswith('default')]
    sh('ping', '-c1', '-W2', '192.168.0.2', ns=netlab.host)
    netconductor('exec', 'c1', '--', 'ping', '-c1', '-W2', '192.168.0.1')
    assert address(netconductor, 'c1') == '192.168.0.2'


def test_internet_only_with_i(netconductor, netlab, image):
    run(netconductor, image, 'c1')
    netconductor('addnetwork', 'c1')
    assert netconductor('exec', 'c1', '--', 'bash', '-c', WGET % INTERNET_IP, check=False).returncode != 0
    out = netconductor('addnetwork', '-i', '--dns', '192.0.2.53', 'c1').stdout
    assert 'internet via up0' in out
    assert 'internet ok' in netconductor('exec', 'c1', '--', 'bash', '-c', WGET % INTERNET_IP).stdout
    assert netconductor('exec', 'c1', '--', 'cat', '/etc/resolv.conf').stdout == 'nameserver 192.0.2.53\n'
    netconductor('addnetwork', 'c1')  # back to no internet
    assert netconductor('exec', 'c1', '--', 'bash', '-c', WGET % INTERNET_IP, check=False).returncode != 0


def test_published_ports_from_outside_host_and_localhost(netconductor, netlab, image):
    run(netconductor, image, 'web', ('sh', '-c', SERVER))
    out = netconductor('addnetwork', '-e', '8080-8000', '-p', '8001:8080', '-e', '53-5353/udp', 'web').stdout
    assert 'ports 0.0.0.0:5353->53/udp, 0.0.0.0:8000->8080/tcp, 0.0.0.0:8001->8080/tcp' in out
    for ns, url in ((netlab.internet, 'http://%s:8000/' % HOST_IP), (netlab.host, 'http://%s:8000/' % HOST_IP),
                    (netlab.host, 'http://127.0.0.1:8000/'), (netlab.host, 'http://127.0.0.1:8001/')):
        assert netlab.fetch(ns, url) == 'hello from web\n', (ns, url)
    rules = netlab.iptables()
    assert any(all(w in r for w in ('5353', '192.168.0.2:53', 'udp')) for r in rules), rules


def test_peers_reach_each_other_and_others_do_not(netconductor, netlab, image):
    for name in ('a', 'b', 'c'):
        run(netconductor, image, name)
        netconductor('addnetwork', name)
    ips = {n: address(netconductor, n) for n in 'abc'}

    def ping(src, dst):
        return netconductor('exec', src, '--', 'ping', '-c1', '-W1', ips[dst], check=False).returncode == 0
    assert not ping('a', 'b') and not ping('b', 'a')
    netconductor('peer', 'a', 'b')
    assert ping('a', 'b') and ping('b', 'a')
    assert not ping('a', 'c') and not ping('c', 'b')
    assert '(already peered)' in netconductor('peer', 'b', 'a').stdout
    netconductor('unpeer', 'a', 'b')
    assert not ping('a', 'b')


def test_port_conflicts_and_bad_input_change_nothing(netconductor, netlab, image, root):
    run(netconductor, image, 'p1')
    run(netconductor, image, 'p2')
    run(netconductor, image, 'idle')
    netconductor('addnetwork', '-e', '80-9000', 'p1')
    listener = subprocess.Popen(['ip', 'netns', 'exec', netlab.host, sys.executable, '-c',
                                 'import socket, time; s = socket.socket(); s.bind(("0.0.0.0", 9100)); s.listen(); '
                                 'time.sleep(60)'])
    try:
        sh(sys.executable, '-c', 'import time; time.sleep(0.5)')
        before = (netlab.iptables(), allocations(root), netlab.links())
        for args, message in (
                (['addnetwork', '-e', '80-9000', 'p2'], "host port 9000/tcp is already published by container 'p1'"),
                (['addnetwork', '-e', '80-9100', 'p2'], 'host port 9100/tcp is in use by a program listening'),
                (['addnetwork', '-e', '80-0', 'p2'], "invalid host port '0'"),
                (['addnetwork', '-e', '80-65536', 'p2'], "invalid host port '65536'"),
                (['addnetwork', '-e', 'abc-80', 'p2'], "invalid container port 'abc'"),
                (['addnetwork', '-e', '80', 'p2'], "invalid -e '80': write CONTAINER_PORT-HOST_PORT"),
                (['addnetwork', '-p', '80:80/sctp', 'p2'], "invalid protocol 'sctp'"),
                (['addnetwork', '-e', '80-7000', '-p', '7000:81', 'p2'], 'host port 7000/tcp is given twice'),
                (['addnetwork', 'ghost'], "no container named 'ghost'"),
                (['peer', 'p1', 'p1'], "cannot peer container 'p1' with itself"),
                (['peer', 'p1', 'idle'], "container 'idle' has no network: addnetwork idle first"),
                (['peer', 'p1', 'ghost'], "no container named 'ghost'")):
            assert message in netconductor.fails(*args), args
        assert (netlab.iptables(), allocations(root), netlab.links()) == before
    finally:
        listener.kill()
        listener.wait()


def test_stop_leaves_no_trace_and_user_rules_survive(netconductor, netlab, image, root):
    iptables = netlab.host_iptables()  # on the nftables backend, iptables-nft's FORWARD with a drop policy: ufw's case
    sh(iptables, '-A', 'FORWARD', '-s', '10.99.0.0/24', '-j', 'ACCEPT', ns=netlab.host)
    sh(iptables, '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.98.0.0/24', '-j', 'MASQUERADE', ns=netlab.host)
    sh(iptables, '-P', 'FORWARD', 'DROP', ns=netlab.host)
    rules, links = netlab.iptables(), netlab.links()
    run(netconductor, image, 'a')
    run(netconductor, image, 'b')
    netconductor('addnetwork', '-i', '-e', '80-8080', 'a')
    netconductor('addnetwork', 'b')
    netconductor('peer', 'a', 'b')
    during = netlab.iptables()
    assert all(rule in during for rule in rules if not rule.startswith(':')), 'the user rules stay while we run'
    assert ':FORWARD DROP' in during or 'type filter hook forward priority filter; policy drop;' in during
    assert 'internet ok' in netconductor('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP).stdout
    netconductor('stop', '-t', '0', 'a')
    netconductor('stop', '-t', '0', 'b')
    assert netlab.iptables() == rules
    assert netlab.links() == links
    assert allocations(root) == {}
    assert json.load(open(os.path.join(root, 'network', 'peers.json'))) == []


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_long_names_and_parallel_allocation(netconductor, netlab, image, root):
    names = ['n' * 59 + '%04d' % i for i in range(2)] + ['par%02d' % i for i in range(18)]
    for name in names:
        run(netconductor, image, name)
    procs = [subprocess.Popen(['nsenter', '--net=/run/netns/' + netlab.host, '--', sys.executable, netconductor_cli(),
                               '--root', root, 'addnetwork', name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in names]
    assert all(p.wait() == 0 for p in procs), [p.stderr.read() for p in procs]
    got = allocations(root)
    assert len(got) == 20 and len({a['container_ip'] for a in got.values()}) == 20
    assert len({a['host_if'] for a in got.values()}) == 20 and all(len(a['host_if']) <= 15 for a in got.values())
    for name in names:
        netconductor('stop', '-t', '0', name)
    assert 'cdr' not in netlab.links()


def test_cycles_leave_nothing(netconductor, netlab, image, root):
    """run, addnetwork, stop: CONDUCTOR_NET_CYCLES times (25 in make test, to keep it under 30 minutes; set 100 or
    more for a long run), and nothing is left."""
    rules, links = netlab.iptables(), netlab.links()
    for i in range(int(os.environ.get('CONDUCTOR_NET_CYCLES', '25'))):
        run(netconductor, image, 'cyc')
        netconductor('addnetwork', '-i', '-e', '80-8080', 'cyc')
        netconductor('stop', '-t', '0', 'cyc')
    assert (netlab.iptables(), netlab.links(), allocations(root)) == (rules, links, {})


def netconductor_cli():
    import helpers
    return helpers.CLI


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_published_ports_are_held_while_the_container_lives(netconductor, netlab, image, root):
    """A program that starts later on a published port gets "address in use" (as with docker-proxy), not a port
    whose traffic silently goes to the container; the port is free again once the container is gone."""
    bind = ('import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[2] == "udp" else '
            'socket.SOCK_STREAM)\ntry:\n    s.bind(("0.0.0.0", int(sys.argv[1])))\nexcept OSError as e:\n'
            '    sys.exit(e.strerror)\n')
    run(netconductor, image, 'web', ('sh', '-c', SERVER))
    netconductor('addnetwork', '-e', '8080-8000', '-e', '53-5353/udp', 'web')
    for port, protocol in (('8000', 'tcp'), ('5353', 'udp')):
        result = sh(sys.executable, '-c', bind, port, protocol, ns=netlab.host, check=False)
        assert result.returncode == 1 and 'Address already in use' in result.stderr, (port, result.stderr)
    assert sh(sys.executable, '-c', bind, '8001', 'tcp', ns=netlab.host, check=False).returncode == 0, 'control'
    assert netlab.fetch(netlab.internet, 'http://%s:8000/' % HOST_IP) == 'hello from web\n', 'traffic still flows'
    netconductor('addnetwork', '-e', '8080-8002', 'web')  # a new port list: the old ports are let go
    with open(os.path.join(root, 'network', 'allocations.json')) as f:
        holder = json.load(f)['web']['port_holder'][0]
    fds = {int(n): os.readlink('/proc/%d/fd/%s' % (holder, n)) for n in os.listdir('/proc/%d/fd' % holder)}
    assert sorted(fds) == [0, 1, 2, 3] and fds[3].startswith('socket:'), 'the holder has its port and nothing of ours'
    assert sh(sys.executable, '-c', bind, '8000', 'tcp', ns=netlab.host, check=False).returncode == 0
    assert sh(sys.executable, '-c', bind, '8002', 'tcp', ns=netlab.host, check=False).returncode == 1
    netconductor('stop', 'web')
    assert sh(sys.executable, '-c', bind, '8002', 'tcp', ns=netlab.host, check=False).returncode == 0, 'freed'


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_run_with_a_network_has_it_from_its_first_instruction(netconductor, netlab, image):
    """run -p / --network bridge: the network exists before the command runs (PID 1 waits for it), and a
    network that cannot be made leaves no container that ran without it."""
    first = netconductor('run', '--network', 'bridge', image, 'n1', '--', 'sh', '-c',
                         'cat /sys/class/net/eth0/operstate; ' + WGET % INTERNET_IP).stdout
    assert first.startswith('up\n') and 'internet ok' in first, first
    netconductor('run', '-d', '-p', '8080:8080', image, 'n2', '--', 'sh', '-c', SERVER)
    deadline = time.time() + 10  # the server listens a moment after it starts
    while netlab.fetch(netlab.internet, 'http://%s:8080/' % HOST_IP) != 'hello from n2\n':
        assert time.time() < deadline, 'the published port never answered'
        time.sleep(0.1)
    taken = netconductor.fails('run', '-p', '8080:8080', image, 'n3', '--', 'sh', '-c', 'echo RAN > /dev/console; echo RAN')
    assert 'n3' not in netconductor('ps').stdout and 'RAN' not in taken, 'never run without its network, then removed'
    assert 'error: -p and -P need a network' in netconductor.fails('run', '--network', 'none', '-p', '1:2', image, 'n4')
