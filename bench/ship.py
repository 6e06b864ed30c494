# SPDX-License-Identifier: GPL-3.0-or-later
"""Shipping benchmark (issue 13): save an image, load it into an empty state root, against building it there.

Building on a host means debootstrap (its time is in the base's base.json, from when the test base was
made) plus every step; loading means copying the archive and unpacking it. Prints medians as a
Markdown table. Run as root: make bench.
"""
import json
import os
import subprocess
import tempfile

from common import CONDUCTOR, helpers, median_ms, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '3'))


def main():
    base = helpers.ensure_base()
    work = tempfile.mkdtemp(prefix='conductor-bench-ship-')
    root, ctx = os.path.join(work, 'root'), os.path.join(work, 'ctx')
    os.makedirs(ctx)
    with open(os.path.join(ctx, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\nRUN echo course > /etc/motd\nCMD ["sleep", "infinity"]\n')
    helpers.seed(root)
    build = timed(CONDUCTOR + ['--root', root, 'build', 'course', os.path.join(ctx, 'Conductorfile')])
    rows = []
    for flag, label in (([], 'plain tar'), (['--gzip'], 'gzip layers')):
        archive = os.path.join(work, 'course%s.tar' % len(flag))
        saves, loads = [], []
        for i in range(RUNS):
            saves.append(timed(CONDUCTOR + ['--root', root, 'save'] + flag + ['course', '-o', archive]))
            other = os.path.join(work, 'other%d' % i)
            loads.append(timed(CONDUCTOR + ['--root', other, 'load', '-i', archive]))
            subprocess.check_call(['rm', '-rf', other])
        rows.append([label, '%.0f MB' % (os.path.getsize(archive) / 1e6), median_ms(saves), median_ms(loads)])
    with open(os.path.join(helpers.CACHE, 'bases', base, 'base.json')) as f:
        debootstrap = json.load(f).get('seconds')
    print('\nShipping an image: save once, load on every other host (debootstrap of the base took %ss here; '
          'the steps on top %.0f ms)\n' % (debootstrap, build * 1000))
    table(['archive', 'size', 'save', 'load into an empty root'], rows)
    subprocess.check_call(['rm', '-rf', work])


if __name__ == '__main__':
    main()
