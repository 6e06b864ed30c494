# SPDX-License-Identifier: GPL-3.0-or-later
"""Scale benchmark: addnetwork (-i, one port), peer, and stop of a networked container, with 0, 50 and
100 other networked containers present. Medians of BENCH_RUNS (5), inside a network namespace made for
the run. The ratio of 100 to 0 is the point: a change must not cost more with more containers.

BENCH_CHECKOUT=/path/to/another/checkout measures that checkout's bin/conductor instead (a "before").
Run as root: make bench.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import helpers, median_ms, table

RUNS = int(os.environ.get('BENCH_RUNS', '5'))
SIZES = [int(n) for n in os.environ.get('BENCH_SIZES', '0 50 100').split()]
NS = 'cdb-s-%d' % os.getpid()
CHECKOUT = os.environ.get('BENCH_CHECKOUT') or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_ns(argv):
    return ['nsenter', '--net=/run/netns/' + NS, '--'] + argv  # not ip netns exec: it hides /sys/fs/cgroup


def timed(argv):
    """(wall, CPU) seconds of a command: on a shared 2-core machine CPU time is the steadier of the two."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dummy, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status:
        raise SystemExit('%s failed: %s' % (' '.join(argv), proc.stderr.read().decode()[-2000:]))
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def cell(samples):
    return '%s (%s CPU)' % (median_ms([s[0] for s in samples]), median_ms([s[1] for s in samples]))


def quiet(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def bench(work):
    root = os.path.join(work, 'root')
    helpers.seed(root)
    cli = in_ns([sys.executable, os.path.join(CHECKOUT, 'bin', 'conductor'), '--root', root])
    with open(os.path.join(work, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\nCMD ["sleep", "100000"]\n')
    quiet(cli + ['build', 'bench', os.path.join(work, 'Conductorfile')])
    present, rows, results = 0, [], {}
    for size in SIZES:
        while present < size:  # the crowd: networked containers, each with internet and a published port
            quiet(cli + ['run', '-d', 'bench', 'bg%d' % present])
            quiet(cli + ['addnetwork', '-i', '-e', '80-%d' % (20000 + present), 'bg%d' % present])
            present += 1
        add, peer, stop = [], [], []
        for i in range(RUNS):
            quiet(cli + ['run', '-d', 'bench', 'x'])
            quiet(cli + ['run', '-d', 'bench', 'y'])
            add.append(timed(cli + ['addnetwork', '-i', '-e', '80-8080', 'x']))
            quiet(cli + ['addnetwork', 'y'])
            peer.append(timed(cli + ['peer', 'x', 'y']))
            stop.append(timed(cli + ['stop', '-t', '0', 'x']))
            quiet(cli + ['stop', '-t', '0', 'y'])
        results[size] = (add, peer, stop)
    one_by_one = ['sh', '-c', 'for n in $(seq 0 %d); do "$@" stop -t 0 bg$n; done' % (present - 1), 'sh'] + cli
    everything = timed(cli + ['stop', '--all', '-t', '0'] if os.environ.get('BENCH_CHECKOUT') is None else one_by_one)
    for label, index in (('addnetwork -i -e', 0), ('peer', 1), ('stop (networked)', 2)):
        walls = [statistics.median(s[0] for s in results[size][index]) for size in SIZES]
        cpus = [statistics.median(s[1] for s in results[size][index]) for size in SIZES]
        ratio = '%.2f (%.2f CPU)' % (walls[-1] / walls[0], cpus[-1] / cpus[0]) if len(SIZES) > 1 else ''
        rows.append([label] + [cell(results[size][index]) for size in SIZES] + [ratio])
    how = 'one by one' if os.environ.get('BENCH_CHECKOUT') else 'stop --all'
    rows.append(['stopping all %d (%s)' % (present, how)] + [''] * (len(SIZES) - 1) + [cell([everything]), ''])
    return rows


def main():
    helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    subprocess.check_call(['ip', 'netns', 'add', NS])
    try:
        for argv in (['ip', 'link', 'set', 'lo', 'up'], ['ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1'],
                     ['ip', 'addr', 'add', '203.0.113.2/24', 'dev', 'up0'], ['ip', 'link', 'set', 'up0', 'up'],
                     ['ip', 'link', 'set', 'up1', 'up'], ['ip', 'route', 'add', 'default', 'via', '203.0.113.1']):
            subprocess.check_call(in_ns(argv))
        rows = bench(work)
    finally:
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Scale benchmark (%s), medians of %d runs, with N networked containers present, in a private network namespace'
          % (CHECKOUT, RUNS))
    table(['operation'] + ['N = %d' % s for s in SIZES] + ['%d / %d' % (SIZES[-1], SIZES[0])], rows)
    print('targets: ratio <= 1.3; addnetwork <= 150 ms\n')


if __name__ == '__main__':
    main()
