# SPDX-License-Identifier: GPL-3.0-or-later
"""Shipping benchmark (issue 13): save an image, load it into an empty state root, against building it there,
and against `podman load` of the same archive where podman is installed (runc, its own storage).

Building on a host means debootstrap (its time is in the base's base.json, from when the test base was
made) plus every step; loading means copying the archive and unpacking it. The loads take turns (conductor,
podman, and BENCH_BEFORE=/path/to/another/checkout's conductor when given), each into an empty store on the
same file system, so that the disk's state is the same for each. BENCH_TMPFS=1 loads each archive a second time
into a tmpfs the script mounts (and unmounts): there the unpacking's CPU decides, not the disk's state (on ext4
without a journal, every new inode steps over the inodes freed in its block group in the last minutes). Prints
medians as a Markdown table. Run as root: make bench.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import CONDUCTOR, helpers, median_ms, podman, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '3'))
BEFORE = os.environ.get('BENCH_BEFORE')
TMPFS = os.environ.get('BENCH_TMPFS') == '1'


def podman_load(work, archive):
    """Seconds of `podman load -i archive` into an empty store in work, which is removed after. Podman unpacks the
    archive into TMPDIR first (as Conductor does into its state root): work too, the same file system."""
    storage = os.path.join(work, 'podman')
    cmd = ['podman', '--root', storage, '--runroot', os.path.join(work, 'podman-run'), '--cgroup-manager', 'cgroupfs',
           '--runtime', 'runc']
    try:
        return timed(cmd + ['load', '-q', '-i', archive], env=dict(os.environ, TMPDIR=work))  # its copy of the archive too
    finally:
        subprocess.run(cmd + ['system', 'reset', '-f'], capture_output=True, check=False)
        subprocess.run(['umount', os.path.join(storage, 'overlay')], capture_output=True, check=False)
        subprocess.run(['rm', '-rf', storage, os.path.join(work, 'podman-run')], check=False)


def main():
    base = helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-ship-')
    root, ctx = os.path.join(work, 'root'), os.path.join(work, 'ctx')
    os.makedirs(ctx)
    with open(os.path.join(ctx, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\nRUN echo course > /etc/motd\nCMD ["sleep", "infinity"]\n')
    helpers.seed(root)
    build = timed(CONDUCTOR + ['--root', root, 'build', 'course', os.path.join(ctx, 'Conductorfile')])
    loaders = [('conductor', CONDUCTOR)]
    if BEFORE:
        loaders.insert(0, ('conductor before (%s)' % BEFORE, [sys.executable, os.path.join(BEFORE, 'bin', 'conductor')]))
    places = [('disk', work)]
    if TMPFS:
        places.append(('tmpfs', tempfile.mkdtemp(prefix='cbs-')))  # short: podman's runroot takes at most 50 characters
        subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'size=4g,mode=0700', 'bench-ship', places[-1][1]])
    rows = []
    try:
        for flag, label in (([], 'plain tar'), (['--gzip'], 'gzip layers')):
            archive = os.path.join(work, 'course%s.tar' % len(flag))
            saves, loads = [], {(place, name): [] for place, dummy in places for name, dummy in loaders + [('podman', None)]}
            for i in range(RUNS):
                saves.append(timed(CONDUCTOR + ['--root', root, 'save'] + flag + ['course', '-o', archive]))
                for place, folder in places:
                    for name, cli in loaders:
                        other = os.path.join(folder, 'other%d' % i)
                        loads[place, name].append(timed(cli + ['--root', other, 'load', '-i', archive]))
                        subprocess.check_call(['rm', '-rf', other])
                    if podman():
                        loads[place, 'podman'].append(podman_load(folder, archive))
            size = '%.0f MB' % (os.path.getsize(archive) / 1e6)
            for place, dummy in places:
                for name, dummy in loaders + [('podman', None)]:
                    samples, theirs = loads[place, name], loads[place, 'podman']
                    if samples:
                        ratio = ' (%.2fx podman)' % (statistics.median(samples) / statistics.median(theirs)) \
                            if theirs and name != 'podman' else ''
                        rows.append([label, size, median_ms(saves) if name == 'conductor' and place == 'disk' else '',
                                     place, name, median_ms(samples) + ratio])
    finally:
        if TMPFS:
            subprocess.run(['umount', places[-1][1]], check=False)
            os.rmdir(places[-1][1])
    with open(os.path.join(helpers.CACHE, 'bases', base, 'base.json')) as f:
        debootstrap = json.load(f).get('seconds')
    print('\nShipping an image: save once, load on every other host (debootstrap of the base took %ss here; '
          'the steps on top %.0f ms)\n' % (debootstrap, build * 1000))
    table(['archive', 'size', 'save', 'into', 'loader', 'load into an empty store'], rows)
    if not podman():
        print('podman is not installed: make bench BENCH_PODMAN=1 installs it')
    subprocess.check_call(['rm', '-rf', work])


if __name__ == '__main__':
    main()
