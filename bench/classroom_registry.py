# SPDX-License-Identifier: GPL-3.0-or-later
"""Shipping a course image to 3 lab hosts (issue 21): playbooks/classroom.yml's first run through the controller
(save, fetch, copy, load) against through a registry (classroom_registry: push once, pull on the others).

Each host is a network namespace with a state root of its own, seeded with the debootstrap base (so the build
runs its steps, not debootstrap), its Python wrapped in nsenter, as in tests/root/test_playbooks.py; the hosts
and the registry (Debian's docker-registry, plain HTTP, listed as insecure) share a bridge in a namespace of the
bench's own. Fresh roots for every run, the two ways alternating; medians of BENCH_RUNS (2). Run as root:
make bench."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import CHECKOUT, add_lab_netns, helpers, table

RUNS = int(os.environ.get('BENCH_RUNS', '2'))
HOSTS = 3
TAG = 'cdb-creg-%d' % os.getpid()
ADDRESS = '10.254.1.1'


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def main():
    work = tempfile.mkdtemp(prefix='conductor-bench-creg-')
    collections = os.path.join(work, 'collections', 'ansible_collections', 'cs695')
    os.makedirs(collections)
    os.symlink(CHECKOUT, os.path.join(collections, 'conductor'))
    with open(os.path.join(work, 'Conductorfile'), 'w') as f:
        f.write('FROM debian:bookworm\nRUN echo course > /etc/motd\nCMD ["sleep", "infinity"]\n')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'collections'),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    net = TAG + '-net'
    registry = None
    spaces = [net] + ['%s-%d' % (TAG, i) for i in range(HOSTS)]
    try:
        sh('ip', 'netns', 'add', net)
        for args in (['link', 'set', 'lo', 'up'], ['link', 'add', 'br0', 'type', 'bridge'],
                     ['addr', 'add', ADDRESS + '/24', 'dev', 'br0'], ['link', 'set', 'br0', 'up']):
            sh('ip', '-n', net, *args)
        hosts = []
        for i in range(HOSTS):
            ns = spaces[1 + i]
            add_lab_netns(ns)
            sh('ip', '-n', net, 'link', 'add', 'rg%d' % i, 'type', 'veth', 'peer', 'name', 'reg0', 'netns', ns)
            sh('ip', '-n', net, 'link', 'set', 'rg%d' % i, 'master', 'br0', 'up')
            sh('ip', '-n', ns, 'addr', 'add', '10.254.1.%d/24' % (10 + i), 'dev', 'reg0')
            sh('ip', '-n', ns, 'link', 'set', 'reg0', 'up')
            python = os.path.join(work, 'python%d' % i)
            with open(python, 'w') as f:
                f.write('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (ns, sys.executable))
            os.chmod(python, 0o755)
            config = os.path.join(work, 'conductor%d.conf' % i)
            with open(config, 'w') as f:
                f.write('REGISTRY_INSECURE=%s:5000\n' % ADDRESS)
            hosts.append((ns, python, config))
        with open(os.path.join(work, 'registry.yml'), 'w') as f:
            f.write('{"version": 0.1, "log": {"level": "error"}, "http": {"addr": "%s:5000"}, '
                    '"storage": {"filesystem": {"rootdirectory": "%s/data"}, "delete": {"enabled": true}}}'
                    % (ADDRESS, work))
        registry = subprocess.Popen(['nsenter', '--net=/run/netns/' + net, '--', 'docker-registry', 'serve',
                                     os.path.join(work, 'registry.yml')], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        times = {'controller': [], 'registry': []}
        for run in range(RUNS):
            for way in ('controller', 'registry'):
                roots = [os.path.join(work, 'root-%s-%d-%d' % (way, run, i)) for i in range(HOSTS)]
                for root in roots:
                    helpers.seed(root)
                with open(os.path.join(work, 'inventory'), 'w') as f:
                    f.write('[classroom]\n' + ''.join(
                        'lab%d ansible_connection=local ansible_python_interpreter=%s conductor_root=%s '
                        "conductor_environment='%s'\n" % (i, python, root, json.dumps({'CONDUCTOR_CONFIG': config}))
                        for i, ((ns, python, config), root) in enumerate(zip(hosts, roots))))
                extra = {'classroom_courses': [{'name': 'cs695', 'conductorfile': os.path.join(work, 'Conductorfile')}],
                         'classroom_students': ['alice', 'bob'], 'classroom_prepare_hosts': False,
                         'classroom_controller_dir': os.path.join(work, 'controller-%s-%d' % (way, run))}
                if way == 'registry':
                    extra['classroom_registry'] = '%s:5000' % ADDRESS
                started = time.perf_counter()
                result = subprocess.run(['ansible-playbook', '-f', str(HOSTS), '-i', os.path.join(work, 'inventory'),
                                         os.path.join(CHECKOUT, 'playbooks', 'classroom.yml'), '-e', json.dumps(extra)],
                                        env=env, capture_output=True, text=True, check=False)
                times[way].append(time.perf_counter() - started)
                if result.returncode != 0:
                    raise SystemExit(result.stdout[-4000:] + result.stderr[-2000:])
                for (ns, python, config), root in zip(hosts, roots):
                    helpers.stop_all(root)
                    helpers.remove_root(root)
        print('\nThe classroom playbook\'s first run on %d hosts, 2 students each, one course image (the base is '
              '190 MB; %d runs, alternating)\n' % (HOSTS, RUNS))
        table(['shipping', 'first run'], [
            ['through the controller (save, fetch, copy, load)', '%.1f s' % statistics.median(times['controller'])],
            ['through a registry (push, pull)', '%.1f s' % statistics.median(times['registry'])]])
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait()
        for ns in spaces:
            subprocess.run(['ip', 'netns', 'del', ns], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
