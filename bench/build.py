"""Build benchmark: cold build, cache-hit rebuild, rebuild after one COPY source changed.

Conductor and (where installed) podman build the same FROM + COPY + RUN file on the same
debootstrap base, in the same run. Prints medians as a Markdown table. Run as root: make bench.
"""
import os
import subprocess
import sys
import tempfile

from common import CONDUCTOR, helpers, median_ms, podman, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '7'))
STEPS = 'COPY app /app\nRUN cat /app/main.txt > /app/copy.txt\n'


def bench(build, change, cold_reset):
    cold, hit, changed = [], [], []
    for i in range(RUNS):
        cold_reset()
        cold.append(build())
        hit.append(build())
        change(i)
        changed.append(build())
    return cold, hit, changed


def main():
    base = helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    ctx = os.path.join(work, 'ctx')
    os.makedirs(os.path.join(ctx, 'app'))

    def change(i):
        with open(os.path.join(ctx, 'app', 'main.txt'), 'w') as f:
            f.write('version %d\n' % i)
    change(-1)
    with open(os.path.join(ctx, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\n' + STEPS)
    root = os.path.join(work, 'root')

    def conductor_reset():
        subprocess.check_call(['rm', '-rf', root])
        helpers.seed(root)  # the base stays cached: "cold" means no layer is
    rows = []
    results = bench(lambda: timed(CONDUCTOR + ['--root', root, 'build', 'bench', os.path.join(ctx, 'Conductorfile')]),
                    change, conductor_reset)
    rows.append(['conductor'] + [median_ms(r) for r in results])

    if podman():
        storage = ['--root', os.path.join(work, 'podman'), '--runroot', os.path.join(work, 'podman-run')]
        rootfs = os.path.join(helpers.CACHE, 'bases', base, 'rootfs')
        subprocess.check_call('tar -C %s -c . | podman %s import -q - localhost/bench-base >/dev/null'
                              % (rootfs, ' '.join(storage)), shell=True)
        with open(os.path.join(ctx, 'Containerfile'), 'w') as f:
            f.write('FROM localhost/bench-base\n' + STEPS)
        build = ['podman'] + storage + ['build', '-q', '--pull=never', '--isolation', 'chroot', '--network', 'host', '-t', 'bench', '-f',
                                        os.path.join(ctx, 'Containerfile'), ctx]

        def podman_reset():
            subprocess.run(['podman'] + storage + ['rmi', '-f', 'bench'], capture_output=True, check=False)
            subprocess.run(['podman'] + storage + ['image', 'prune', '-f'], capture_output=True, check=False)
        try:
            results = bench(lambda: timed(build), change, podman_reset)
        finally:
            subprocess.run(['podman'] + storage + ['system', 'reset', '-f'], capture_output=True, check=False)
            subprocess.run(['umount', os.path.join(work, 'podman', 'overlay')], capture_output=True, check=False)
        rows.append(['podman %s (--isolation chroot)' % subprocess.check_output(['podman', '--version']).decode().split()[-1]]
                    + [median_ms(r) for r in results])
    else:
        rows.append(['podman', 'not installed', '', ''])
    subprocess.check_call(['rm', '-rf', work])
    print('Build benchmark, median of %d runs (FROM + COPY + RUN; the base is cached for both)' % RUNS)
    table(['tool', 'cold build', 'cache-hit rebuild', 'changed COPY + RUN'], rows)
    print('targets: cache-hit rebuild <= 100 ms, changed COPY + RUN <= 400 ms (CLI wall time)')


if __name__ == '__main__':
    sys.exit(main())
