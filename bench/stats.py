# SPDX-License-Identifier: GPL-3.0-or-later
"""`conductor stats` at classroom size: one refresh (every container's figures read: cgroup files, veth counters)
with BENCH_STATS_CONTAINERS (100) networked containers running, inside a network namespace made for the run;
medians of BENCH_RUNS (10). The target: at most 100 ms a refresh. Also the whole `stats --no-stream --json`
command (two refreshes half a second apart, and the interpreter's start), and `top` of one container.

Run as root: make bench.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import CHECKOUT, CONDUCTOR, add_lab_netns, helpers, table

COUNT = int(os.environ.get('BENCH_STATS_CONTAINERS', '100'))
RUNS = int(os.environ.get('BENCH_RUNS', '10'))
NS = 'cdb-st-%d' % os.getpid()


def cli(root, *args):
    started = time.perf_counter()
    subprocess.run(['nsenter', '--net=/run/netns/' + NS, '--'] + CONDUCTOR + ['--root', root] + list(args),
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
    return time.perf_counter() - started


def main():
    helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-stats-')
    root = os.path.join(work, 'root')
    add_lab_netns(NS)
    try:
        helpers.seed_image(root, 'img')
        for i in range(COUNT):
            cli(root, 'run', '-d', '--network', 'bridge', 'img', 'c%d' % i, '--', 'sleep', 'infinity')
        probe = ('import json, sys, time; sys.path.insert(0, %r); import conductor_cli\n'
                 'from ansible_collections.cs695.conductor.plugins.module_utils._store import Store\n'
                 'from ansible_collections.cs695.conductor.plugins.module_utils import _stats\n'
                 'times = []\n'
                 'for i in range(%d):\n'
                 '    started = time.perf_counter(); rows = _stats.sample(Store(%r)); times.append(time.perf_counter() - started)\n'
                 'print(json.dumps([times, len(rows), sum(\'net_rx\' in r and \'cpu_ns\' in r for r in rows.values())]))\n'
                 % (os.path.join(CHECKOUT, 'bin'), RUNS, root))
        out = subprocess.run(['nsenter', '--net=/run/netns/' + NS, '--', sys.executable, '-c', probe], check=True,
                             capture_output=True, text=True).stdout  # in the namespace: its veths' counters
        refresh, count, complete = json.loads(out)
        if count != COUNT or complete != COUNT:
            raise SystemExit('stats saw %d containers, %d with every figure, of %d' % (count, complete, COUNT))
        whole = [cli(root, 'stats', '--no-stream', '--json') for dummy in range(max(3, RUNS // 3))]
        top = [cli(root, 'top', 'c0') for dummy in range(RUNS)]
        print('\nconductor stats with %d networked containers running (medians of %d)\n' % (COUNT, RUNS))
        table(('measure', 'time', 'target'),
              [('one refresh: every container\'s figures', '%.1f ms' % (statistics.median(refresh) * 1000), 'at most 100 ms'),
               ('stats --no-stream --json (2 refreshes 0.5 s apart)', '%.0f ms' % (statistics.median(whole) * 1000), ''),
               ('top c0', '%.0f ms' % (statistics.median(top) * 1000), '')])
    finally:
        subprocess.run(['nsenter', '--net=/run/netns/' + NS, '--'] + CONDUCTOR + ['--root', root, 'stop', '--all', '-t', '0'],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
        helpers.stop_all(root)
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        helpers.remove_root(work)


if __name__ == '__main__':
    sys.exit(main())
