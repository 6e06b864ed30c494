# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the bench scripts: timing commands and printing tables. Benchmarks, not tests."""
import os
import shutil
import statistics
import subprocess
import sys
import time

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONDUCTOR = [sys.executable, os.path.join(CHECKOUT, 'bin', 'conductor')]
sys.path.insert(0, os.path.join(CHECKOUT, 'tests'))
# re-exported for the bench scripts: the shared debootstrap base and the engine's import path
import helpers  # noqa: E402, F401, pylint: disable=unused-import


def timed(argv, **kw):
    """Run argv, fail loudly on a non-zero exit, return the wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, **kw)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit('%s failed: %s' % (' '.join(argv), result.stderr.decode()[-2000:]))
    return elapsed


def median_ms(samples):
    return '%.0f ms' % (statistics.median(samples) * 1000) if samples else 'n/a'


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = '| ' + ' | '.join('%-*s' % (w, h) for w, h in zip(widths, header)) + ' |'
    print(line)
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for row in rows:
        print('| ' + ' | '.join('%-*s' % (w, v) for w, v in zip(widths, row)) + ' |')


def podman():
    return shutil.which('podman')


def add_lab_netns(name):
    """A private network namespace standing for a lab host: lo up, and an uplink veth with a default route
    (to an address no one answers on), as the tests' lab hosts have. The caller deletes it (ip netns del)."""
    subprocess.check_call(['ip', 'netns', 'add', name])
    for args in (['link', 'set', 'lo', 'up'], ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1'],
                 ['addr', 'add', '203.0.113.2/24', 'dev', 'up0'], ['link', 'set', 'up0', 'up'],
                 ['link', 'set', 'up1', 'up'], ['route', 'add', 'default', 'via', '203.0.113.1']):
        subprocess.check_call(['ip', '-n', name] + args)
