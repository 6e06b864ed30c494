# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible-level benchmark: a playbook that starts 10 networked containers, each with a published port.

The first run and the idempotent rerun are timed for cs695.conductor and, where podman is installed,
for containers.podman's podman_container doing the same (bridge network, -p), side by side in one run.
Both run inside a private network namespace. containers.podman comes from the `ansible` package on
PyPI, unpacked into a temporary folder for this run only. BENCH_BEFORE=/path/to/another/checkout adds that
checkout's collection as a row of its own, in the same run (a "before"). Run as root: make bench.
"""
import os
import subprocess
import sys
import tempfile
import time
import zipfile

from common import CHECKOUT, add_lab_netns, helpers, podman, table

COUNT = int(os.environ.get('BENCH_CONTAINERS', '10'))
NS = 'cdb-ans-%d' % os.getpid()
ANSIBLE_PACKAGE = 'ansible==10.7.0'  # carries containers.podman
BEFORE = os.environ.get('BENCH_BEFORE')

CONDUCTOR_PLAY = '''- hosts: bench
  gather_facts: false
  tasks:
    - cs695.conductor.conductor_container:
        name: "c{{ item }}"
        image: bench
        network:
          published_ports: [{container_port: 8080, host_port: "{{ 21000 + item }}"}]
        root: %(root)s
      loop: "{{ range(%(count)d) | list }}"
'''

PODMAN_PLAY = '''- hosts: bench
  gather_facts: false
  environment:
    CONTAINERS_CONF: %(conf)s
    CONTAINERS_STORAGE_CONF: %(storage_conf)s
  tasks:
    - containers.podman.podman_container:
        name: "p{{ item }}"
        image: localhost/bench
        command: [sleep, "1000"]
        network: bridge
        ports: ["{{ 22000 + item }}:8080"]
      loop: "{{ range(%(count)d) | list }}"
'''


def playbook(work, text, env):
    # in a folder of its own: Ansible searches a playbook's own collections/ folder first, and would run the
    # "after" collection in work/collections for BENCH_BEFORE's row too
    os.makedirs(os.path.join(work, 'plays'), exist_ok=True)
    path = os.path.join(work, 'plays', 'play.yml')
    with open(path, 'w') as f:
        f.write(text)
    started = time.perf_counter()
    result = subprocess.run(['ansible-playbook', '-i', os.path.join(work, 'inventory'), path], env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-2000:])
    return elapsed


def main():
    base = helpers.ensure_base()
    rootfs = os.path.join(helpers.CACHE, 'bases', base, 'rootfs')
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    collections = os.path.join(work, 'collections', 'ansible_collections')
    os.makedirs(os.path.join(collections, 'cs695'))
    os.symlink(CHECKOUT, os.path.join(collections, 'cs695', 'conductor'))
    if BEFORE:
        os.makedirs(os.path.join(work, 'before', 'ansible_collections', 'cs695'))
        os.symlink(BEFORE, os.path.join(work, 'before', 'ansible_collections', 'cs695', 'conductor'))
    python = os.path.join(work, 'python')
    with open(python, 'w') as f:
        f.write('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (NS, sys.executable))
    os.chmod(python, 0o755)
    with open(os.path.join(work, 'inventory'), 'w') as f:
        f.write('bench ansible_connection=local ansible_python_interpreter=%s\n' % python)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'collections'),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    rows = []
    try:
        add_lab_netns(NS)
        root = os.path.join(work, 'root')
        helpers.seed(root)
        with open(os.path.join(work, 'Conductorfile'), 'w') as f:
            f.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n')
        subprocess.check_call([sys.executable, os.path.join(CHECKOUT, 'bin', 'conductor'), '--root', root, 'build',
                               'bench', os.path.join(work, 'Conductorfile')], stdout=subprocess.DEVNULL)
        play = CONDUCTOR_PLAY % {'root': root, 'count': COUNT}
        if BEFORE:
            before_env = dict(env, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'before'))
            first, rerun = playbook(work, play, before_env), playbook(work, play, before_env)
            rows.append(['cs695.conductor before (%s)' % BEFORE, '%.1f s' % first, '%.1f s' % rerun])
            helpers.stop_all(root)
            for i in range(COUNT):
                subprocess.check_call(['nsenter', '--net=/run/netns/' + NS, '--', sys.executable,  # the rules are there
                                       os.path.join(CHECKOUT, 'bin', 'conductor'), '--root', root, 'rm', '-f', 'c%d' % i],
                                      stdout=subprocess.DEVNULL)
        first, rerun = playbook(work, play, env), playbook(work, play, env)
        rows.append(['cs695.conductor', '%.1f s' % first, '%.1f s' % rerun])
        helpers.stop_all(root)
        if podman():
            rows.append(bench_podman(work, rootfs, env))
        else:
            rows.append(['containers.podman', 'podman not installed', ''])
    finally:
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Ansible benchmark: %d containers, each networked with a published port (one host, local connection)'
          % COUNT)
    table(['collection', 'first run', 'idempotent rerun'], rows)
    print('target: conductor at most 0.7x podman on both runs')


def bench_podman(work, rootfs, env):
    wheel_dir = os.path.join(work, 'wheel')
    subprocess.check_call([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d', wheel_dir,
                           ANSIBLE_PACKAGE], stdout=subprocess.DEVNULL)
    wheel = os.path.join(wheel_dir, os.listdir(wheel_dir)[0])
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith('ansible_collections/containers/podman/')]
        archive.extractall(os.path.join(work, 'collections'), members)
    conf, storage_conf = os.path.join(work, 'containers.conf'), os.path.join(work, 'storage.conf')
    storage, run = os.path.join(work, 'podman'), os.path.join(work, 'podman-run')
    with open(conf, 'w') as f:  # this machine refuses podman's default rlimits, and crun's cgroup setup
        f.write('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n')
    with open(storage_conf, 'w') as f:
        f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' % (storage, run))
    cmd = ['nsenter', '--net=/run/netns/' + NS, '--', 'podman']
    penv = dict(env, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage_conf)
    subprocess.check_call('tar -C %s -c . | %s import -q - localhost/bench >/dev/null' % (rootfs, ' '.join(cmd)),
                          shell=True, env=penv)
    play = PODMAN_PLAY % {'conf': conf, 'storage_conf': storage_conf, 'count': COUNT}
    try:
        first, rerun = playbook(work, play, penv), playbook(work, play, penv)
    finally:
        subprocess.run(cmd + ['rm', '-af', '-t', '0'], env=penv, capture_output=True, check=False)
        subprocess.run(cmd + ['system', 'reset', '-f'], env=penv, capture_output=True, check=False)
        subprocess.run(['umount', os.path.join(storage, 'overlay')], capture_output=True, check=False)
    return ['containers.podman (bridge, runc)', '%.1f s' % first, '%.1f s' % rerun]


if __name__ == '__main__':
    main()
