# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection plugin benchmark: Ansible tasks inside containers through cs695.conductor.conductor.

- one ansible.builtin.command task: (a playbook of 11 command tasks - one of 1) / 10, on one container;
- a 10-task playbook (command, copy, template, stat, file, ...) over 20 containers with -f 10;
- put_file's path for 100 MB (`conductor exec NAME -- sh -c 'cat > PATH' < file`), its throughput and the
  largest resident size of the processes doing it, and an ansible.builtin.copy task of the same file.
Each with pipelining off and on. containers.podman's podman connection is compared where podman is installed.
Containers come from the test image with python3 (tests/helpers.py seed_image). BENCH_BEFORE=/path/to/another/checkout
adds that checkout's collection (its plugin and bin/conductor) as rows of their own, in the same run (a "before").
Run as root: make bench.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

from common import CHECKOUT, CONDUCTOR, helpers, podman, table

COUNT = int(os.environ.get('BENCH_CONTAINERS', '20'))
BIG = int(os.environ.get('BENCH_PUT_MB', '100'))
BEFORE = os.environ.get('BENCH_BEFORE')

TEN_TASKS = '''- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.command: "true"
    - ansible.builtin.copy: {content: "{{ inventory_hostname }}\\n", dest: /tmp/name, mode: "0644"}
    - ansible.builtin.template: {src: %(template)s, dest: /tmp/motd, mode: "0644"}
    - ansible.builtin.stat: {path: /tmp/motd}
    - ansible.builtin.file: {path: /tmp/folder, state: directory, mode: "0755"}
    - ansible.builtin.lineinfile: {path: /tmp/name, line: extra}
    - ansible.builtin.shell: "echo $HOME"
    - ansible.builtin.slurp: {src: /tmp/name}
    - ansible.builtin.file: {path: /tmp/folder, state: absent}
    - ansible.builtin.ping:
'''


def playbook(work, env, text, *args):
    path = os.path.join(work, 'play.yml')
    with open(path, 'w') as f:
        f.write(text)
    started = time.perf_counter()
    result = subprocess.run(['ansible-playbook', '-i', os.path.join(work, 'inventory'), path] + list(args),
                            env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-2000:])
    return time.perf_counter() - started


def commands(count):
    return '- hosts: c0\n  gather_facts: false\n  tasks:\n' + '    - ansible.builtin.command: "true"\n' * count


def put(cli, source):
    """put_file's path, timed; and the largest resident size of the processes it ran, in MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with open(source, 'rb') as f:
        subprocess.run(cli + ['exec', 'c0', '--', 'sh', '-c', 'cat > /tmp/big'], stdin=f, check=True)
    elapsed = time.perf_counter() - started
    return elapsed, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


def main():
    work = tempfile.mkdtemp(prefix='conductor-bench-')
    root = os.path.join(work, 'root')
    cli = CONDUCTOR + ['--root', root]
    try:
        helpers.seed_image(root, 'py')
        for i in range(COUNT):
            subprocess.check_call(cli + ['run', '-d', 'py', 'c%d' % i, '--', 'sleep', 'infinity'], stdout=subprocess.DEVNULL)
        sides = ([('before (%s)' % BEFORE, BEFORE)] if BEFORE else []) + [('', CHECKOUT)]
        for index, (dummy, checkout) in enumerate(sides):
            collections = os.path.join(work, 'collections%d' % index, 'ansible_collections', 'cs695')
            os.makedirs(collections)
            os.symlink(checkout, os.path.join(collections, 'conductor'))
        with open(os.path.join(work, 'inventory'), 'w') as f:
            f.write(''.join('c%d ansible_connection=cs695.conductor.conductor ansible_conductor_root=%s\n' % (i, root)
                            for i in range(COUNT)))
        template = os.path.join(work, 'motd.j2')
        with open(template, 'w') as f:
            f.write('welcome, {{ inventory_hostname }}\n')
        source = os.path.join(work, 'big')
        with open(source, 'wb') as f:
            for dummy in range(BIG):
                f.write(os.urandom(1 << 20))
        elapsed, rss = put(cli, source)  # first: the largest resident size is over every child waited for
        rows = []
        for pipelining in ('0', '1'):
            for index, (label, checkout) in enumerate(sides):  # before and after, one after the other
                env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'collections%d' % index),
                           ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', CONDUCTOR_CONFIG=os.devnull,
                           PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
                           ANSIBLE_PIPELINING=pipelining)
                one_task = (playbook(work, env, commands(11)) - playbook(work, env, commands(1))) / 10
                fleet = playbook(work, env, TEN_TASKS % {'template': template}, '-f', '10')
                copy = playbook(work, env, '- hosts: c0\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy: '
                                '{src: %s, dest: /tmp/copied-%s, mode: "0600"}\n' % (source, pipelining))
                rows.append(['cs695.conductor.conductor %s, pipelining %s' % (label, 'on' if pipelining == '1' else 'off'),
                             '%.0f ms' % (one_task * 1000), '%.1f s' % fleet, '%.1f s' % copy])
        if not podman():
            rows.append(['containers.podman.podman', 'podman not installed', '', ''])
    finally:
        helpers.stop_all(root)
        subprocess.run(['rm', '-rf', work], check=False)
    print('Connection benchmark: %d containers on this machine' % COUNT)
    table(['connection', 'one command task', '10 tasks x %d containers, -f 10' % COUNT,
           'copy task, %d MB' % BIG], rows)
    print("put_file's path, %d MB: %.2f s, %.0f MB/s; largest resident size of its processes: %.0f MiB"
          % (BIG, elapsed, BIG / elapsed, rss))


if __name__ == '__main__':
    main()
