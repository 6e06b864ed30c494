# SPDX-License-Identifier: GPL-3.0-or-later
"""Network benchmark: addnetwork, run + addnetwork, against podman's bridge network and plain `ip`.

Everything runs inside a network namespace made for the run, so neither conductor nor podman touches
the machine's own links or firewall. Prints medians as Markdown tables, then the import costs.
Run as root: make bench.
"""
import os
import subprocess
import sys
import tempfile

from common import CHECKOUT, CONDUCTOR, helpers, median_ms, podman, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '15'))
NS = 'cdb-%d' % os.getpid()


def in_ns(argv):
    return ['nsenter', '--net=/run/netns/' + NS, '--'] + argv  # not ip netns exec: it hides /sys/fs/cgroup


def bench_ip():
    """The floor: create and delete a netns and a veth with iproute2."""
    script = ('ip netns add cdb-floor && ip link add cdbf0 type veth peer name cdbf1 netns cdb-floor && '
              'ip link del cdbf0 && ip netns del cdb-floor')
    return [timed(in_ns(['sh', '-c', script])) for dummy in range(RUNS)]


def bench_conductor(work):
    root = os.path.join(work, 'root')
    helpers.seed(root)
    cli = in_ns(CONDUCTOR + ['--root', root])
    with open(os.path.join(work, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\n')
    subprocess.check_call(cli + ['build', 'bench', os.path.join(work, 'Conductorfile')], stdout=subprocess.DEVNULL)
    add, both = [], []
    for i in range(RUNS):
        start = timed(cli + ['run', '-d', 'bench', 'n%d' % i, '--', 'sleep', '1000'])
        net = timed(cli + ['addnetwork', '-i', '-e', '80-8080', 'n%d' % i])
        add.append(net)
        both.append(start + net)
        subprocess.check_call(cli + ['stop', '-t', '0', 'n%d' % i], stdout=subprocess.DEVNULL)
    return add, both


def bench_podman(work, rootfs):
    conf = os.path.join(work, 'containers.conf')
    with open(conf, 'w') as f:
        f.write('[containers]\ndefault_ulimits = []\n')
    env = dict(os.environ, CONTAINERS_CONF=conf)
    cmd = in_ns(['podman', '--root', os.path.join(work, 'podman'), '--runroot', os.path.join(work, 'podman-run'),
                 '--cgroup-manager', 'cgroupfs', '--runtime', 'runc'])
    subprocess.check_call('tar -C %s -c . | %s import -q - localhost/bench >/dev/null' % (rootfs, ' '.join(cmd)),
                          shell=True, env=env)
    results = {}
    try:
        for network in ('none', 'bridge'):
            samples = []
            for i in range(RUNS):
                name = '%s%d' % (network, i)
                extra = ['-p', '%d:8080' % (9000 + i)] if network == 'bridge' else []
                samples.append(timed(cmd + ['run', '-d', '--name', name, '--network', network] + extra +
                                     ['localhost/bench', 'sleep', '1000'], env=env))
                subprocess.run(cmd + ['rm', '-f', '-t', '0', name], env=env, capture_output=True, check=False)
            results[network] = samples
    finally:
        subprocess.run(cmd + ['rm', '-af', '-t', '0'], env=env, capture_output=True, check=False)
        subprocess.run(cmd + ['system', 'reset', '-f'], env=env, capture_output=True, check=False)
        subprocess.run(['umount', os.path.join(work, 'podman', 'overlay')], capture_output=True, check=False)
    return results


def import_costs():
    py = sys.executable
    sys_path = 'import sys; sys.path.insert(0, %r); import helpers; helpers.load_cli(); ' % os.path.join(CHECKOUT, 'tests')
    cases = [
        ('python3-nftables as conductor imports it, with a libnftables context', sys_path + 'from ansible_collections.'
         'cs695.conductor.plugins.module_utils._fastimport import import_nftables; import_nftables()()'),
        ('import iptc (plain)', 'import iptc'),
        ('iptc as conductor imports it', sys_path + 'from ansible_collections.cs695.conductor.plugins.'
         'module_utils._fastimport import import_iptc; import_iptc()'),
    ]
    rows = []
    for label, code in cases:
        timing = 'import time; t = time.perf_counter(); %s; print(time.perf_counter() - t)'
        samples = [float(subprocess.check_output(in_ns([py, '-c', timing % code])).split()[-1]) for dummy in range(5)]
        rows.append([label, median_ms(samples)])
    return rows


def main():
    base = helpers.ensure_base()
    rootfs = os.path.join(helpers.CACHE, 'bases', base, 'rootfs')
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    subprocess.check_call(['ip', 'netns', 'add', NS])
    try:
        subprocess.check_call(in_ns(['ip', 'link', 'set', 'lo', 'up']))
        subprocess.check_call(in_ns(['ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']))
        subprocess.check_call(in_ns(['ip', 'addr', 'add', '203.0.113.2/24', 'dev', 'up0']))
        for link in ('up0', 'up1'):
            subprocess.check_call(in_ns(['ip', 'link', 'set', link, 'up']))
        subprocess.check_call(in_ns(['ip', 'route', 'add', 'default', 'via', '203.0.113.1']))
        floor = bench_ip()
        add, both = bench_conductor(work)
        rows = [['ip: netns + veth, create and delete', median_ms(floor), ''],
                ['conductor (-i, one port)', median_ms(add), median_ms(both)]]
        if podman():
            results = bench_podman(work, rootfs)
            none, bridge = results['none'], results['bridge']
            added = [b - n for b, n in zip(sorted(bridge), sorted(none))]
            rows.append(['podman bridge network, one port (runc)', '%s more than --network none' % median_ms(added),
                         median_ms(bridge)])
        else:
            rows.append(['podman', 'not installed', ''])
        imports = import_costs()  # in the namespace too: iptc loads the filter table of the netns it runs in
    finally:
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Network benchmark, medians of %d runs, in a private network namespace' % RUNS)
    table(['tool', 'addnetwork', 'run -d + addnetwork'], rows)
    print('target: addnetwork <= 250 ms\n')
    print('Import costs, medians of 5 fresh interpreters')
    table(['import', 'time'], imports)


if __name__ == '__main__':
    main()
