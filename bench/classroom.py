# SPDX-License-Identifier: GPL-3.0-or-later
"""Classroom benchmark: playbooks/classroom.yml for 20 and 100 students on one host, the image already built.

Times the first run, the idempotent rerun (changed=0) and --tags teardown, against a one-task playbook
(conductor_info) for scale; medians of BENCH_RUNS (3). The host is a private network namespace with a
state root of its own, its Python interpreter wrapped in nsenter, as in tests/root/test_playbooks.py.
Targets (issue 12), for 20 students: first run and teardown at most 6x the one-task playbook, rerun at
most 2x; at 100 students the rerun under 3x.

BENCH_CHECKOUT=/path/to/another/checkout measures that checkout's collection instead (a "before");
BENCH_STUDENTS="20 100" sets the class sizes. Run as root: make bench.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from common import add_lab_netns, helpers, table

RUNS = int(os.environ.get('BENCH_RUNS', '3'))
SIZES = [int(n) for n in os.environ.get('BENCH_STUDENTS', '20 100').split()]
NS = 'cdb-cls-%d' % os.getpid()
CHECKOUT = os.environ.get('BENCH_CHECKOUT') or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONE_TASK = '''- hosts: classroom
  gather_facts: false
  tasks:
    - cs695.conductor.conductor_info:
        root: "{{ conductor_root }}"
'''


def playbook(work, env, path, *args):
    """Wall seconds of one ansible-playbook run; fails loudly."""
    started = time.perf_counter()
    result = subprocess.run(['ansible-playbook', '-i', os.path.join(work, 'inventory'), path] + list(args), env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-2000:])
    return elapsed, result.stdout


def changed(output):
    return int(re.search(r'changed=(\d+)', output.split('PLAY RECAP', 1)[1]).group(1))


def main():
    work = tempfile.mkdtemp(prefix='conductor-bench-classroom-')
    collections = os.path.join(work, 'collections', 'ansible_collections', 'cs695')
    os.makedirs(collections)
    os.symlink(CHECKOUT, os.path.join(collections, 'conductor'))
    python = os.path.join(work, 'python')
    with open(python, 'w') as f:
        f.write('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (NS, sys.executable))
    os.chmod(python, 0o755)
    root, config = os.path.join(work, 'root'), os.path.join(work, 'conductor.conf')
    open(config, 'w').close()
    with open(os.path.join(work, 'inventory'), 'w') as f:
        f.write('[classroom]\nlab ansible_connection=local ansible_python_interpreter=%s conductor_root=%s '
                "conductor_environment='{\"CONDUCTOR_CONFIG\": \"%s\"}'\n" % (python, root, config))
    one_task = os.path.join(work, 'info.yml')
    with open(one_task, 'w') as f:
        f.write(ONE_TASK)
    conductorfile = os.path.join(work, 'Conductorfile')
    with open(conductorfile, 'w') as f:
        f.write('FROM debian:bookworm\nCMD ["sleep", "infinity"]\n')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'collections'), CONDUCTOR_CONFIG=config,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    classroom = os.path.join(CHECKOUT, 'playbooks', 'classroom.yml')
    conductor = ['nsenter', '--net=/run/netns/' + NS, '--', sys.executable, os.path.join(CHECKOUT, 'bin', 'conductor'),
                 '--root', root]
    rows = []
    try:
        add_lab_netns(NS)
        helpers.seed(root)
        for students in SIZES:
            extra = json.dumps({'classroom_courses': [{'name': 'cs695', 'conductorfile': conductorfile}],
                                'classroom_students': ['s%03d' % i for i in range(students)],
                                'classroom_prepare_hosts': False})
            samples = {'first': [], 'rerun': [], 'teardown': [], 'one task': []}
            for dummy in range(RUNS):
                subprocess.check_call(conductor + ['build', 'cs695', conductorfile], stdout=subprocess.DEVNULL, env=env)
                samples['one task'].append(playbook(work, env, one_task)[0])
                elapsed, dummy = playbook(work, env, classroom, '-e', extra)
                samples['first'].append(elapsed)
                elapsed, output = playbook(work, env, classroom, '-e', extra)
                if changed(output):
                    raise SystemExit('the rerun changed something:\n' + output[-3000:])
                samples['rerun'].append(elapsed)
                samples['teardown'].append(playbook(work, env, classroom, '-e', extra, '--tags', 'teardown')[0])
            base = statistics.median(samples['one task'])
            row = [str(students), '%.1f s' % base]
            for key in ('first', 'rerun', 'teardown'):
                value = statistics.median(samples[key])
                row.append('%.1f s (%.1fx)' % (value, value / base))
            rows.append(row)
    finally:
        subprocess.run(conductor + ['stop', '--all', '-t', '0'], env=env, capture_output=True, check=False)
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Classroom playbook, one host, image built (median of %d; %s)' % (RUNS, CHECKOUT))
    table(['students', 'one-task playbook', 'first run', 'idempotent rerun', '--tags teardown'], rows)
    print('targets at 20 students: first run and teardown <= 6x, rerun <= 2x; at 100 the rerun < 3x')


if __name__ == '__main__':
    main()
