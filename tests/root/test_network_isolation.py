# SPDX-License-Identifier: GPL-3.0-or-later
"""Network isolation on a shared lab host, in the private lab (tests/netlab.py). A container's root has
NET_RAW, so it can send any packet: these tests send them with a raw socket from the container's own
network namespace, as such a student would, and check where they arrive. Each has a control."""
import json
import os
import subprocess
import sys

import pytest

from netlab import INTERNET_IP, sh

pytestmark = pytest.mark.parametrize('netlab', ['iptables', 'nftables'], indirect=True)

RAW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'rawpacket.py')


@pytest.fixture
def image(netconductor, context):
    netconductor('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    return 'img'


def pid_of(cli, name):
    return json.loads(cli('inspect', name).stdout)['state']['pid']


def in_netns(target, *argv):
    """argv in a network namespace: a netns name, or a container's PID 1."""
    path = '/proc/%d/ns/net' % target if isinstance(target, int) else '/run/netns/' + target
    return ['nsenter', '--net=' + path, '--'] + list(argv)


class Listener:
    """A UDP listener in a namespace, started before the packet is sent."""

    def __init__(self, target, address, port, seconds=2):
        self.proc = subprocess.Popen(in_netns(target, sys.executable, RAW, 'listen', address, str(port), str(seconds)),
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == 'ready\n'

    def result(self):
        out = self.proc.communicate(timeout=10)[0]
        return out.strip()


def send(target, *args):
    subprocess.run(in_netns(target, sys.executable, RAW, *args), check=True, capture_output=True)


def delivered(listen_in, address, port, send_from, *packet):
    listener = Listener(listen_in, address, port)
    send(send_from, *packet)
    return listener.result().startswith('received')


def veth(cli, netlab, name):
    """(host-side MAC of its veth, its gateway address): where a frame from its eth0 goes."""
    alloc = json.load(open(os.path.join(cli.root, 'network', 'allocations.json')))[name]
    mac = sh('cat', '/sys/class/net/%s/address' % alloc['host_if'], ns=netlab.host).stdout.strip()
    return mac, alloc['host_ip']


def frame(cli, netlab, name, src, dst, port):
    """The packet as a frame on the container's eth0, to the host's end: no route needed, only NET_RAW."""
    return ('frame', 'eth0', veth(cli, netlab, name)[0], src, dst, str(port))


@pytest.fixture
def lab(netconductor, image):
    """a: internet; b: network only; c: peered with a."""
    cli = netconductor
    for name in ('a', 'b', 'c'):
        cli('run', '-d', image, name)
    cli('addnetwork', '-i', 'a')
    cli('addnetwork', 'b')
    cli('addnetwork', 'c')
    cli('peer', 'a', 'c')
    ips = {r['name']: r['address'] for r in json.loads(cli('ps', '--json').stdout)}
    return cli, ips, {name: pid_of(cli, name) for name in ips}


def test_a_forged_source_reaches_neither_the_internet_nor_an_unpeered_container(lab, netlab):
    cli, ips, pids = lab
    # b, with no internet, forges a's address (a has internet), and one outside the pool
    for forged in (ips['a'], '10.55.0.1'):
        packet = frame(cli, netlab, 'b', forged, INTERNET_IP, 9999)
        assert not delivered(netlab.internet, INTERNET_IP, 9999, pids['b'], *packet), forged
    # b forges a's address towards c, which trusts a (they are peers)
    assert not delivered(pids['c'], '0.0.0.0', 9998, pids['b'], *frame(cli, netlab, 'b', ips['a'], ips['c'], 9998))
    # controls: a reaches the internet and c with its own address
    assert delivered(netlab.internet, INTERNET_IP, 9999, pids['a'], *frame(cli, netlab, 'a', ips['a'], INTERNET_IP, 9999))
    assert delivered(pids['c'], '0.0.0.0', 9998, pids['a'], *frame(cli, netlab, 'a', ips['a'], ips['c'], 9998))


def test_a_frame_to_127_0_0_1_never_reaches_the_hosts_loopback_services(netconductor, netlab, image):
    cli = netconductor
    cli('run', '-d', image, 'web')
    cli('addnetwork', '-p', '8081:8080', 'web')  # a published port: route_localnet is on for its veth
    mac, gateway = veth(cli, netlab, 'web')
    pid = pid_of(cli, 'web')
    ip = json.loads(cli('ps', '--json').stdout)[0]['address']
    # a service the host binds to loopback only, and a frame to it put on the container's eth0
    assert not delivered(netlab.host, '127.0.0.1', 9997, pid, 'frame', 'eth0', mac, ip, '127.0.0.1', '9997')
    # control: the same frame to the host's address on the veth arrives
    assert delivered(netlab.host, gateway, 9997, pid, 'frame', 'eth0', mac, ip, gateway, '9997')


def test_host_access_and_link_local(netconductor, netlab, image):
    cli = netconductor
    for name, args in (('open', []), ('dnsonly', ['--host-access', 'dns-only']), ('closed', ['--host-access', 'none'])):
        cli('run', '-d', image, name)
        cli('addnetwork', '-i', *args, name)
    book = json.load(open(os.path.join(cli.root, 'network', 'allocations.json')))
    for name, reaches_service, reaches_dns in (('open', True, True), ('dnsonly', False, True), ('closed', False, False)):
        gateway, ip, pid = book[name]['host_ip'], book[name]['container_ip'], pid_of(cli, name)
        assert delivered(netlab.host, gateway, 9996, pid, *frame(cli, netlab, name, ip, gateway, 9996)) \
            is reaches_service, name
        assert delivered(netlab.host, gateway, 53, pid, *frame(cli, netlab, name, ip, gateway, 53)) is reaches_dns, name
        # the internet stays reachable whatever the host access
        assert delivered(netlab.internet, INTERNET_IP, 9995, pid, *frame(cli, netlab, name, ip, INTERNET_IP, 9995)), name
    # link-local (cloud metadata) only when asked for
    sh('ip', 'addr', 'add', '169.254.169.254/32', 'dev', 'up1', ns=netlab.internet)
    sh('ip', 'route', 'add', '169.254.169.254/32', 'via', INTERNET_IP, ns=netlab.host)
    ip, pid = book['open']['container_ip'], pid_of(cli, 'open')
    metadata = frame(cli, netlab, 'open', ip, '169.254.169.254', 80)
    assert not delivered(netlab.internet, '169.254.169.254', 80, pid, *metadata)
    cli('addnetwork', '-i', '--link-local', 'open')
    assert delivered(netlab.internet, '169.254.169.254', 80, pid, *metadata)


@pytest.mark.one_backend  # veths, addresses and processes: the same on either backend
def test_no_ipv6_and_no_router_advertisements(netconductor, netlab, image):
    cli = netconductor
    cli('run', '-d', image, 'v6')
    cli('addnetwork', 'v6')
    host_if = json.load(open(os.path.join(cli.root, 'network', 'allocations.json')))['v6']['host_if']
    for key, value in (('disable_ipv6', '1'), ('accept_ra', '0')):
        assert sh('cat', '/proc/sys/net/ipv6/conf/%s/%s' % (host_if, key), ns=netlab.host).stdout.strip() == value
    inside = cli('exec', 'v6', '--', 'ip', '-6', 'addr').stdout
    assert inside.strip() == '', 'no IPv6 address inside: %r' % inside
    assert cli('exec', 'v6', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0').stdout, 'control: IPv4 as before'
