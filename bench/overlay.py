# SPDX-License-Identifier: GPL-3.0-or-later
"""The classroom overlay on two simulated lab hosts (network namespaces on one bridge, as in the tests):

- TCP throughput between two peered containers on different hosts (iperf3, BENCH_SECONDS each), against the
  two hosts' own namespaces over the same LAN, alternating, medians of BENCH_RUNS (3);
- the round trip of a ping, containers against hosts (the overlay's added latency);
- the same two on a LAN shaped to each of BENCH_LAN_RATES (1gbit,10gbit: a lab's, where the wire, not the CPU, is
  the limit; an empty value skips it);
- `conductor peer NAME REMOTE_ADDRESS` (and unpeer) against a local `peer` (and unpeer), with BENCH_PRESENT
  (0 and 60) other networked containers on the host.

BENCH_BEFORE=/path/to/another/checkout adds a second pair of hosts running that checkout's conductor (a "before"), on the
same LAN, its throughput and ping taking turns with the others in every round, and its peerings with this one's.

iperf3 is installed with apt when missing (as BENCH_PODMAN installs podman). Run as root: make bench.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import CONDUCTOR, helpers, table
from netlab import make_lan, plug, sh

RUNS = int(os.environ.get('BENCH_RUNS', '3'))
SECONDS = os.environ.get('BENCH_SECONDS', '3')
PRESENT = [int(n) for n in os.environ.get('BENCH_PRESENT', '0,60').split(',')]
PEER_RUNS = int(os.environ.get('BENCH_PEER_RUNS', '7'))
RATES = [r for r in os.environ.get('BENCH_LAN_RATES', '1gbit,10gbit').split(',') if r]
BEFORE = os.environ.get('BENCH_BEFORE')


def iperf3():
    if not shutil.which('iperf3'):
        subprocess.run(['apt-get', 'install', '-y', '-q', 'iperf3'], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    return shutil.which('iperf3')


class Host:
    def __init__(self, lan, index, work, checkout=None):
        """Lab host `index` on the LAN; with checkout, running that checkout's conductor (the second pair's subnets are
        the first pair's again: each pair is an overlay of its own)."""
        self.ns, self.address = 'cdb-ovl%d-%d' % (os.getpid(), index), '10.254.3.%d' % (10 + index)
        self.subnet, self.root = '10.88.%d.0/24' % (index % 2 + 1), os.path.join(work, 'root%d' % index)
        self.conductor = [sys.executable, os.path.join(checkout, 'bin', 'conductor')] if checkout else CONDUCTOR
        plug(lan, self.ns, index, self.address)
        helpers.seed(self.root)

    def cli(self, *args, timed=False):
        started = time.perf_counter()
        subprocess.run(['nsenter', '--net=/run/netns/' + self.ns, '--'] + self.conductor + ['--root', self.root]
                       + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
        return time.perf_counter() - started if timed else None

    def container(self, name):
        self.cli('run', '-d', 'img', name, '--', 'sleep', 'infinity')
        self.cli('addnetwork', name)
        with open(os.path.join(self.root, 'containers', name, 'state.json')) as f:
            pid = json.load(f)['pid']
        argv = ['nsenter', '--net=/run/netns/' + self.ns, '--'] + self.conductor + ['--root', self.root, 'ps', '--json']
        rows = subprocess.run(argv, check=True, capture_output=True, text=True, env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
        address = {r['name']: r['address'] for r in json.loads(rows.stdout)}[name]
        return '/proc/%d/ns/net' % pid, address


def throughput(server_ns, client_ns, address):
    """Gbit/s received, from a client in client_ns to an iperf3 server in server_ns."""
    server = subprocess.Popen(['nsenter', '--net=' + server_ns, '--', 'iperf3', '-s', '-1', '-p', '5201'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for dummy in range(50):
            out = subprocess.run(['nsenter', '--net=' + client_ns, '--', 'iperf3', '-c', address, '-p', '5201', '-t',
                                  SECONDS, '-J'], capture_output=True, text=True, check=False)
            result = json.loads(out.stdout or '{}')
            if out.returncode == 0 and 'error' not in result:
                return result['end']['sum_received']['bits_per_second'] / 1e9
            time.sleep(0.1)  # the server is not listening yet
        raise SystemExit('iperf3 failed: %s' % out.stdout[-500:])
    finally:
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the client never reached it: it is not left behind
            server.kill()
            server.wait()


def rtt(client_ns, address):
    """The median round trip in ms of 50 pings."""
    out = subprocess.run(['nsenter', '--net=' + client_ns, '--', 'ping', '-c', '50', '-i', '0.01', address],
                         capture_output=True, text=True, check=True).stdout
    return statistics.median(float(line.split('time=')[1].split()[0]) for line in out.splitlines() if 'time=' in line)


def main():
    helpers.ensure_base()
    iperf3()
    work = tempfile.mkdtemp(prefix='conductor-bench-overlay-')
    lan = 'cdb-lan%d' % os.getpid()
    make_lan(lan)
    hosts = []
    try:
        hosts = [Host(lan, i, work) for i in range(2)] + ([Host(lan, i, work, BEFORE) for i in (2, 3)] if BEFORE else [])
        folder = os.path.join(work, 'ctx')
        os.makedirs(folder)
        with open(os.path.join(folder, 'Conductorfile'), 'w') as f:
            f.write('FROM debian:bookworm\n')
        for host in hosts:
            other = hosts[hosts.index(host) ^ 1]  # its pair's other host
            host.cli('overlay', 'up', '--subnet', host.subnet, '--network', '10.88.0.0/16',
                     '%s=%s' % (other.address, other.subnet))
            host.cli('build', 'img', os.path.join(folder, 'Conductorfile'))
        pairs = []  # (label, the client's namespace, the server's, the server's address)
        for label, first in [('containers over the overlay', 0)] + ([('before (%s)' % BEFORE, 2)] if BEFORE else []):
            (a_ns, a_ip), (b_ns, b_ip) = hosts[first].container('a'), hosts[first + 1].container('b')
            hosts[first].cli('peer', 'a', b_ip)
            hosts[first + 1].cli('peer', 'b', a_ip)
            pairs.append((label, a_ns, b_ns, b_ip))
        h0, h1 = ('/run/netns/' + h.ns for h in hosts[:2])
        dummy, a_ns, b_ns, b_ip = pairs[0]
        plain, plain_rtt, overlay, overlay_rtt = [], [], {p[0]: [] for p in pairs}, {p[0]: [] for p in pairs}
        for dummy in range(RUNS):  # alternating, so all see the same machine
            plain.append(throughput(h1, h0, hosts[1].address))
            plain_rtt.append(rtt(h0, hosts[1].address))
            for label, client, server, address in pairs:
                overlay[label].append(throughput(server, client, address))
                overlay_rtt[label].append(rtt(client, address))
        p, pr = statistics.median(plain), statistics.median(plain_rtt)
        print('\nTCP throughput and ping between two simulated lab hosts (%d runs of %s s, alternating; medians)\n'
              % (RUNS, SECONDS))
        rows = [('hosts\' own namespaces over the LAN', '%.2f Gbit/s' % p, '%.3f ms' % pr)]
        for label in overlay:
            o, orr = statistics.median(overlay[label]), statistics.median(overlay_rtt[label])
            rows.append((label, '%.2f Gbit/s (%.0f%%)' % (o, 100 * o / p), '%.3f ms (+%.3f ms)' % (orr, orr - pr)))
        table(('path', 'throughput', 'ping round trip'), rows)
        shaped = []
        for rate in RATES:  # a lab's LAN, not a veth: each host's uplink shaped to the rate (tbf)
            burst = '4mb' if rate.endswith('gbit') and float(rate[:-4]) > 1 else '512kb'
            for host in hosts:
                sh('tc', 'qdisc', 'replace', 'dev', 'lan0', 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', '50ms',
                   ns=host.ns)
            plain_rate, overlay_rate = [], []
            for dummy in range(RUNS):
                plain_rate.append(throughput(h1, h0, hosts[1].address))
                overlay_rate.append(throughput(b_ns, a_ns, b_ip))
            for host in hosts:
                sh('tc', 'qdisc', 'del', 'dev', 'lan0', 'root', ns=host.ns)
            p, o = statistics.median(plain_rate), statistics.median(overlay_rate)
            shaped.append(('LAN at %s' % rate, '%.2f Gbit/s' % p, '%.2f Gbit/s (%.0f%%)' % (o, 100 * o / p)))
        if shaped:
            print('\nThe same on a LAN of a given rate (each host\'s uplink shaped with tbf), medians of %d\n' % RUNS)
            table(('LAN', 'hosts\' own namespaces', 'containers over the overlay'), shaped)
        rows, made = [], 0
        sides = [(hosts[0], b_ip)] + ([(hosts[2], pairs[1][3])] if BEFORE else [])  # (host, its remote peer's address)
        for host, dummy in sides:
            host.container('c')
        for present in PRESENT:
            while made < present:
                for host, dummy in sides:
                    host.container('p%d' % made)
                made += 1
            times = {}
            for dummy in range(PEER_RUNS):
                for host, remote_address in sides:  # taking turns
                    times.setdefault((host.ns, 'remote'), []).append(host.cli('peer', 'c', remote_address, timed=True))
                    times.setdefault((host.ns, 'local'), []).append(host.cli('peer', 'c', 'a', timed=True))
                    host.cli('unpeer', 'c', remote_address)
                    host.cli('unpeer', 'c', 'a')
            rows.append([str(present)] + ['%.0f ms' % (statistics.median(times[(host.ns, kind)]) * 1000)
                                          for host, dummy in sides for kind in ('local', 'remote')])
        print('\nA peering, local and across hosts, with other networked containers present (medians of %d)\n' % PEER_RUNS)
        table(['containers present', 'peer NAME NAME2', 'peer NAME REMOTE_ADDRESS']
              + (['before: peer NAME NAME2', 'before: peer NAME REMOTE_ADDRESS'] if BEFORE else []), rows)
    finally:
        for host in hosts:
            argv = ['nsenter', '--net=/run/netns/' + host.ns, '--'] + host.conductor + ['--root', host.root, 'stop', '--all', '-t', '0']
            subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
            helpers.stop_all(host.root)
            sh('ip', 'netns', 'del', host.ns, check=False)
        sh('ip', 'netns', 'del', lan, check=False)
        helpers.remove_root(work)


if __name__ == '__main__':
    sys.exit(main())
