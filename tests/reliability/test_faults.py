# SPDX-License-Identifier: GPL-3.0-or-later
"""SIGKILL the CLI and the modules at random points; the next ps, stop and build must reconcile."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import helpers
from leaks import LONG, leftovers, supervisors

ITERATIONS = 100 if LONG else 10
RUN_STEP = 'RUN echo "%s" > /made && cat /made > /made-too\n'


def cli_argv(cli, *args):
    return ['nsenter', '--net=/run/netns/' + cli.netns, '--', sys.executable, helpers.CLI, '--root', cli.root] + list(args)


def kill_after(argv, delay, env=None):
    """Start argv in a process group of its own, SIGKILL that group after delay seconds."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    time.sleep(delay)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we started: the CLI, or ansible and its module
    except ProcessLookupError:
        pass
    proc.wait()


def containers(cli):
    return [r['name'] for r in json.loads(cli('ps', '--json').stdout)]


def test_sigkill_at_random_points(netconductor, netlab, context, figures, tmp_path):
    cli = netconductor
    rng = random.Random(int(os.environ.get('CONDUCTOR_SEED', '695')))
    before_supervisors = supervisors(cli.root)
    cli('build', 'base', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    ansible_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'collections'),
                       PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    (tmp_path / 'collections' / 'ansible_collections' / 'cs695').mkdir(parents=True)
    os.symlink(helpers.CHECKOUT, str(tmp_path / 'collections' / 'ansible_collections' / 'cs695' / 'conductor'))
    interpreter = tmp_path / 'python'
    interpreter.write_text('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (netlab.host, sys.executable))
    interpreter.chmod(0o755)
    operations = ['build', 'run', 'exec', 'addnetwork', 'peer', 'stop', 'module']
    for i in range(ITERATIONS):
        operation = operations[i % len(operations)] if i < len(operations) else rng.choice(operations)
        delay = rng.uniform(0.0, 0.25)
        marker = 'iteration-%d' % i
        if operation != 'build':
            for name in ('a', 'b'):
                if name not in containers(cli):
                    cli('run', '-d', 'base', name)
        if operation in ('peer',):
            cli('addnetwork', 'a')
            cli('addnetwork', 'b')
        if operation == 'build':
            argv = cli_argv(cli, 'build', 'img%d' % (i % 3), context.write('FROM base\n' + RUN_STEP % marker))
        elif operation == 'run':
            argv = cli_argv(cli, 'run', '-d', 'base', 'r%d' % i)
        elif operation == 'exec':
            argv = cli_argv(cli, 'exec', 'a', '--', 'sh', '-c', 'sleep 0.1; echo %s' % marker)
        elif operation == 'addnetwork':
            argv = cli_argv(cli, 'addnetwork', '-i', '-e', '80-%d' % (10000 + i), 'a')
        elif operation == 'peer':
            argv = cli_argv(cli, 'peer', 'a', 'b')
        elif operation == 'stop':
            argv = cli_argv(cli, 'stop', '-t', '1', 'a')
        else:  # an Ansible module, killed with the ansible process that runs it
            delay = rng.uniform(0.5, 3.0)
            argv = ['ansible', 'localhost', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % interpreter,
                    '-m', 'cs695.conductor.conductor_network', '-a',
                    'container=a internet=true published_ports=[{"container_port":80,"host_port":%d}] root=%s'
                    % (11000 + i, cli.root)]
        kill_after(argv, delay, ansible_env if operation == 'module' else None)
        figures['faults injected'] += 1
        figures['iterations'] += 1
        # reconcile: ps works, every container stops, a build works and reuses nothing half-made
        names = containers(cli)
        for name in names:
            cli('stop', '-t', '0', name)
        out = cli('build', 'check', context.write('FROM base\n' + RUN_STEP % marker)).stdout
        layer = json.load(open(os.path.join(cli.root, 'images', 'check.json')))['layers'][-1]
        diff = os.path.join(cli.root, 'layers', layer, 'diff')
        assert open(os.path.join(diff, 'made')).read() == marker + '\n', out
        assert open(os.path.join(diff, 'made-too')).read() == marker + '\n', 'a half-written layer was reused'
        assert cli('run', 'check', 'probe%d' % i, '--', 'cat', '/made-too').stdout == marker + '\n'
        cli('stop', 'probe%d' % i)
        cli('rmcache')
        found = leftovers(cli, netlab, before_supervisors)
        figures['leaks found'] += len(found)
        assert found == [], 'iteration %d (%s after %.3f s) left %s' % (i, operation, delay, found)
    for image in json.loads(cli('images', '--json').stdout):
        cli('run', image['name'], 'usable-' + image['name'], '--', 'true')  # no image became unusable
        cli('stop', 'usable-' + image['name'])
