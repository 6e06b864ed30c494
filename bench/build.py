# SPDX-License-Identifier: GPL-3.0-or-later
"""Build benchmark: cold build, cache-hit rebuild, rebuild after one COPY source changed.

Conductor and (where installed) podman build the same FROM + COPY + RUN file on the same
debootstrap base, in the same run, their builds alternated one by one: the machine drifts, and blocks
of runs taken minutes apart do not compare. BENCH_BEFORE=/path/to/another/checkout adds that checkout's
conductor as a row (a "before"). Conductor's builds run in a network namespace made for the bench (its
RUN steps get their veths and rules there). Prints medians as a Markdown table. Run as root: make bench.
"""
import os
import subprocess
import sys
import tempfile

from common import CHECKOUT, add_lab_netns, helpers, median_ms, podman, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '7'))
STEPS = 'COPY app /app\nRUN cat /app/main.txt > /app/copy.txt\n'
NS = 'cdb-build-%d' % os.getpid()


def bench(sides, change):
    """sides: [(build, reset)]. Returns [(cold, hit, changed)] per side, each a list of RUNS times; the
    sides take turns, and within a turn each does its cold build, cache hit and changed rebuild."""
    results = [([], [], []) for dummy in sides]
    for i in range(RUNS):
        for n, (build, reset) in enumerate(sides):
            cold, hit, changed = results[n]
            reset()
            cold.append(build())
            hit.append(build())
            change('%d-%d' % (i, n))
            changed.append(build())
    return results


def main():
    base = helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    ctx = os.path.join(work, 'ctx')
    os.makedirs(os.path.join(ctx, 'app'))

    def change(version):
        with open(os.path.join(ctx, 'app', 'main.txt'), 'w') as f:
            f.write('version %s\n' % version)
    change('first')
    with open(os.path.join(ctx, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\n' + STEPS)
    env = dict(os.environ, CONDUCTOR_CONFIG=os.devnull)  # the defaults, whatever the machine's config says

    def conductor(checkout, root):
        cli = ['nsenter', '--net=/run/netns/' + NS, '--', sys.executable, os.path.join(checkout, 'bin', 'conductor'),
               '--root', root, 'build', 'bench', os.path.join(ctx, 'Conductorfile')]

        def reset():
            subprocess.check_call(['rm', '-rf', root])
            helpers.seed(root)  # the base stays cached: "cold" means no layer is
        return lambda: timed(cli, env=env), reset
    rows, sides = [['conductor']], [conductor(CHECKOUT, os.path.join(work, 'root'))]
    if os.environ.get('BENCH_BEFORE'):
        before = os.path.abspath(os.environ['BENCH_BEFORE'])
        revision = subprocess.run(['git', '-C', before, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True,
                                  check=False).stdout.strip() or before
        rows.append(['conductor before (%s)' % revision])
        sides.append(conductor(before, os.path.join(work, 'root-before')))
    storage = ['--root', os.path.join(work, 'podman'), '--runroot', os.path.join(work, 'podman-run')]
    if podman():
        rootfs = os.path.join(helpers.CACHE, 'bases', base, 'rootfs')
        subprocess.check_call('tar -C %s -c . | podman %s import -q - localhost/bench-base >/dev/null'
                              % (rootfs, ' '.join(storage)), shell=True)
        with open(os.path.join(ctx, 'Containerfile'), 'w') as f:
            f.write('FROM localhost/bench-base\n' + STEPS)
        build = ['podman'] + storage + ['build', '-q', '--pull=never', '--isolation', 'chroot', '--network', 'host', '-t',
                                        'bench', '-f', os.path.join(ctx, 'Containerfile'), ctx]

        def podman_reset():
            subprocess.run(['podman'] + storage + ['rmi', '-f', 'bench'], capture_output=True, check=False)
            subprocess.run(['podman'] + storage + ['image', 'prune', '-f'], capture_output=True, check=False)
        rows.append(['podman %s (--isolation chroot)' % subprocess.check_output(['podman', '--version']).decode().split()[-1]])
        sides.append((lambda: timed(build), podman_reset))
    add_lab_netns(NS)
    try:
        for row, results in zip(rows, bench(sides, change)):
            row += [median_ms(r) for r in results]
    finally:
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        if podman():
            subprocess.run(['podman'] + storage + ['system', 'reset', '-f'], capture_output=True, check=False)
            subprocess.run(['umount', os.path.join(work, 'podman', 'overlay')], capture_output=True, check=False)
    if not podman():
        rows.append(['podman', 'not installed', '', ''])
    subprocess.check_call(['rm', '-rf', work])
    print('Build benchmark, median of %d runs, builds alternated (FROM + COPY + RUN; the base is cached for all)' % RUNS)
    table(['tool', 'cold build', 'cache-hit rebuild', 'changed COPY + RUN'], rows)
    print('targets: cache-hit rebuild <= 100 ms, changed COPY + RUN <= 400 ms (CLI wall time)')


if __name__ == '__main__':
    sys.exit(main())
