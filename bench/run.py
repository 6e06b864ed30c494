# SPDX-License-Identifier: GPL-3.0-or-later
"""Runtime benchmark: run /bin/true to completion, exec /bin/true, 50 detached starts, supervision memory.

Side by side in one run: the floor (overlay mount + unshare + chroot /bin/true), conductor, and podman
where installed (runc, cgroupfs, no default ulimits, --network none). Prints medians as a Markdown table.
BENCH_BEFORE=/path/to/another/checkout adds that checkout's conductor as a row of its own (a "before"), measured
in the same run. Run as root: make bench.
"""
import json
import os
import subprocess
import sys
import tempfile

from common import CONDUCTOR, helpers, median_ms, podman, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '20'))
MANY = int(os.environ.get('BENCH_MANY', '50'))
BEFORE = os.environ.get('BENCH_BEFORE')


def pss_kib(pid):
    with open('/proc/%d/smaps_rollup' % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith('Pss:'))


def bench_floor(work, rootfs):
    for sub in ('upper', 'work', 'merged'):
        os.makedirs(os.path.join(work, 'floor', sub))
    script = ('mount -t overlay overlay -o lowerdir={0},upperdir={1}/upper,workdir={1}/work {1}/merged && '
              'chroot {1}/merged /bin/true').format(rootfs, os.path.join(work, 'floor'))
    argv = ['unshare', '--mount', '--pid', '--fork', '--uts', '--ipc', '--net', '--', 'sh', '-c', script]
    return [timed(argv) for dummy in range(RUNS)]


def conductors(work):
    """[(label, cli)]: this checkout's conductor, after BENCH_BEFORE's when given; each with a state root of its own
    where image bench is built."""
    sides = ([('conductor before (%s)' % BEFORE, BEFORE)] if BEFORE else []) + [('conductor', None)]
    result = []
    for label, checkout in sides:
        folder = os.path.join(work, 'before' if checkout else 'after')
        root = os.path.join(folder, 'root')
        helpers.seed(root)
        cli = ([sys.executable, os.path.join(checkout, 'bin', 'conductor')] if checkout else CONDUCTOR) + ['--root', root]
        os.makedirs(os.path.join(folder, 'ctx'))
        with open(os.path.join(folder, 'ctx', 'Conductorfile'), 'w') as f:
            f.write('FROM debian:bookworm\n')
        subprocess.check_call(cli + ['build', 'bench', os.path.join(folder, 'ctx', 'Conductorfile')],
                              stdout=subprocess.DEVNULL)
        result.append((label, cli, root))
    return result


def bench_conductors(sides):
    """Each measure taking turns between the sides (and the interpreter alone), so that a slow spell of the
    machine falls on all of them: {label: (run, exec, many, pss)}, and the interpreter's samples."""
    runs, execs, many, interpreter = {}, {}, {}, []
    for label, cli, root in sides:
        subprocess.check_call(cli + ['run', '-d', 'bench', 'svc', '--', 'sleep', '1000'], stdout=subprocess.DEVNULL)
    for i in range(RUNS):
        interpreter.append(timed([sys.executable, '-c', 'pass']))
        for label, cli, root in sides:
            runs.setdefault(label, []).append(timed(cli + ['run', 'bench', 'once%d' % i, '--', '/bin/true']))
            subprocess.check_call(cli + ['stop', 'once%d' % i], stdout=subprocess.DEVNULL)
            execs.setdefault(label, []).append(timed(cli + ['exec', 'svc', '--', '/bin/true']))
    for i in range(MANY):
        for label, cli, root in sides:
            many[label] = many.get(label, 0) + timed(cli + ['run', '-d', 'bench', 'many%d' % i, '--', 'sleep', '1000'])
    results = {}
    for label, cli, root in sides:
        supervisors = [json.load(open(os.path.join(root, 'containers', 'many%d' % i, 'state.json')))['supervisor']
                       for i in range(MANY)]
        results[label] = (runs[label], execs[label], many[label], sum(pss_kib(pid) for pid in supervisors) / MANY)
    for label, cli, root in sides:
        subprocess.check_call(cli + ['stop', '--all', '-t', '0'], stdout=subprocess.DEVNULL)
    return results, interpreter


def bench_podman(work, rootfs):
    conf = os.path.join(work, 'containers.conf')
    with open(conf, 'w') as f:
        f.write('[containers]\ndefault_ulimits = []\n')  # this machine refuses podman's default rlimits
    env = dict(os.environ, CONTAINERS_CONF=conf)
    cmd = ['podman', '--root', os.path.join(work, 'podman'), '--runroot', os.path.join(work, 'podman-run'),
           '--cgroup-manager', 'cgroupfs', '--runtime', 'runc']
    try:  # the import too: a podman that fails there (no runc) has mounted its storage already
        subprocess.check_call('tar -C %s -c . | %s import -q - localhost/bench >/dev/null' % (rootfs, ' '.join(cmd)),
                              shell=True, env=env)
        run = [timed(cmd + ['run', '--rm', '--network', 'none', 'localhost/bench', '/bin/true'], env=env)
               for dummy in range(RUNS)]
        subprocess.check_call(cmd + ['run', '-d', '--name', 'svc', '--network', 'none', 'localhost/bench', 'sleep',
                                     '1000'], env=env, stdout=subprocess.DEVNULL)
        execs = [timed(cmd + ['exec', 'svc', '/bin/true'], env=env) for dummy in range(RUNS)]
        many = sum(timed(cmd + ['run', '-d', '--name', 'many%d' % i, '--network', 'none', 'localhost/bench', 'sleep',
                                '1000'], env=env) for i in range(MANY))
        conmons = subprocess.check_output(['pgrep', '-f', 'conmon.*%s' % work]).split()
        pss = sum(pss_kib(int(pid)) for pid in conmons) / max(len(conmons), 1)
        return run, execs, many, pss
    finally:
        subprocess.run(cmd + ['rm', '-af', '-t', '0'], env=env, capture_output=True, check=False)
        subprocess.run(cmd + ['system', 'reset', '-f'], env=env, capture_output=True, check=False)
        subprocess.run(['umount', os.path.join(work, 'podman', 'overlay')], capture_output=True, check=False)


def main():
    base = helpers.ensure_base()
    rootfs = os.path.join(helpers.CACHE, 'bases', base, 'rootfs')
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    try:
        floor = bench_floor(work, rootfs)
        results, interpreter = bench_conductors(conductors(work))
        rows = [['floor: overlay + unshare + chroot', median_ms(floor), '', '', ''],
                ['floor: the interpreter alone (python -c pass)', '', median_ms(interpreter), '', '']]
        for label, (run, execs, many, pss) in results.items():
            rows.append([label, median_ms(run), median_ms(execs), '%.2f s' % many, '%.0f KiB' % pss])
        if podman():
            run, execs, many, pss = bench_podman(work, rootfs)
            rows.append(['podman (runc, --network none)', median_ms(run), median_ms(execs), '%.2f s' % many,
                         '%.0f KiB (conmon)' % pss])
        else:
            rows.append(['podman', 'not installed', '', '', ''])
    finally:
        subprocess.run(['rm', '-rf', work], check=False)
    print('Runtime benchmark, medians of %d runs (the conductors and the interpreter taking turns); %d detached '
          'containers started one after another (the conductors taking turns)' % (RUNS, MANY))
    table(['tool', 'run /bin/true', 'exec /bin/true', '%d detached starts' % MANY, 'supervision PSS / container'],
          rows)
    print('targets: run <= 50 ms, exec within 20 ms of the interpreter alone, 50 starts <= 2.5 s, '
          "supervision PSS <= conmon's")


if __name__ == '__main__':
    main()
