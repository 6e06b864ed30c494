# SPDX-License-Identifier: GPL-3.0-or-later
"""Firewall backends side by side: addnetwork -i -p, peer and stop of a networked container on the nftables
backend and on the legacy one (python-iptables), with BENCH_PRESENT (60) other networked containers present on
each. Each backend has a network namespace and a state root of its own, and the runs alternate between the two,
so both see the same load. Medians of BENCH_RUNS (7). Also how long `run` and `exec` take, which never load a
firewall library. BENCH_BEFORE=/path/to/another/checkout adds a third host, alternating with the two: that
checkout's conductor (on its own backend choice). Run as root: make bench.
"""
import os
import statistics
import subprocess
import sys
import tempfile

from common import helpers, table
from scale import timed

RUNS = int(os.environ.get('BENCH_RUNS', '7'))
PRESENT = int(os.environ.get('BENCH_PRESENT', '60'))
BACKENDS = ('iptables', 'nftables')
BEFORE = os.environ.get('BENCH_BEFORE')
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def namespace(name):
    subprocess.check_call(['ip', 'netns', 'add', name])
    for argv in (['ip', 'link', 'set', 'lo', 'up'], ['ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1'],
                 ['ip', 'addr', 'add', '203.0.113.2/24', 'dev', 'up0'], ['ip', 'link', 'set', 'up0', 'up'],
                 ['ip', 'link', 'set', 'up1', 'up'], ['ip', 'route', 'add', 'default', 'via', '203.0.113.1']):
        subprocess.check_call(['nsenter', '--net=/run/netns/' + name, '--'] + argv)


def quiet(argv, env):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)


def main():
    helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-fw-')
    hosts = {}
    labels = list(BACKENDS) + (['before'] if BEFORE else [])
    try:
        for backend in labels:
            ns = 'cdb-fw-%s-%d' % (backend[:3], os.getpid())
            namespace(ns)
            root = os.path.join(work, backend)
            helpers.seed(root)
            env = dict(os.environ, CONDUCTOR_CONFIG=os.devnull)
            if backend in BACKENDS:
                env['CONDUCTOR_FIREWALL_BACKEND'] = backend
            checkout = BEFORE if backend == 'before' else CHECKOUT
            cli = ['nsenter', '--net=/run/netns/' + ns, '--', sys.executable, os.path.join(checkout, 'bin', 'conductor'),
                   '--root', root]
            hosts[backend] = (ns, cli, env)
            with open(os.path.join(work, 'Conductorfile'), 'w') as f:
                f.write('FROM debian:bookworm\nCMD ["sleep", "100000"]\n')
            quiet(cli + ['build', 'bench', os.path.join(work, 'Conductorfile')], env)
            for i in range(PRESENT):
                quiet(cli + ['run', '-d', 'bench', 'bg%d' % i], env)
                quiet(cli + ['addnetwork', '-i', '-p', '%d:80' % (20000 + i), 'bg%d' % i], env)
        samples = {(b, what): [] for b in labels for what in ('add', 'peer', 'stop', 'run', 'exec')}
        for dummy in range(RUNS):
            for backend in labels:
                ns, cli, env = hosts[backend]
                quiet(cli + ['run', '-d', 'bench', 'y'], env)
                quiet(cli + ['addnetwork', 'y'], env)
                samples[backend, 'run'].append(timed_env(cli + ['run', '-d', 'bench', 'x'], env))
                samples[backend, 'exec'].append(timed_env(cli + ['exec', 'x', '--', 'true'], env))
                samples[backend, 'add'].append(timed_env(cli + ['addnetwork', '-i', '-p', '8080:80', 'x'], env))
                samples[backend, 'peer'].append(timed_env(cli + ['peer', 'x', 'y'], env))
                samples[backend, 'stop'].append(timed_env(cli + ['stop', '-t', '0', 'x'], env))
                quiet(cli + ['stop', '-t', '0', 'y'], env)
        rows = []
        for label, what in (('addnetwork -i -p', 'add'), ('peer', 'peer'), ('stop (networked)', 'stop'),
                            ('run -d', 'run'), ('exec true', 'exec')):
            cells = [cell(samples[b, what]) for b in labels]
            ratio = statistics.median(s[0] for s in samples['nftables', what]) / statistics.median(
                s[0] for s in samples['iptables', what])
            rows.append([label] + cells + ['%.2f' % ratio])  # the ratio of this checkout's two backends
    finally:
        for backend, (ns, cli, env) in hosts.items():
            subprocess.run(cli + ['stop', '--all', '-t', '0'], env=env, stdout=subprocess.DEVNULL, check=False)
            subprocess.run(['ip', 'netns', 'del', ns], check=False)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Firewall backends, medians of %d alternating runs, %d networked containers present on each' % (RUNS, PRESENT))
    table(['operation', 'legacy iptables', 'nftables'] + (['before (%s)' % BEFORE] if BEFORE else [])
          + ['nftables / legacy'], rows)
    print('targets: addnetwork on nftables <= legacy, and <= 150 ms\n')


def cell(runs):
    wall, cpu = (statistics.median(run[i] for run in runs) * 1000 for i in (0, 1))
    return '%.0f ms (%.0f CPU)' % (wall, cpu)


def timed_env(argv, env):
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return timed(argv)
    finally:
        os.environ.clear()
        os.environ.update(old)


if __name__ == '__main__':
    main()
