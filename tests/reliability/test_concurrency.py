# SPDX-License-Identifier: GPL-3.0-or-later
"""Many commands at once: each succeeds or fails cleanly, and nothing is corrupted."""
import json
import os
import subprocess
import sys

import helpers
from leaks import leftovers, supervisors


def test_twenty_concurrent_run_and_addnetwork(netconductor, netlab, context, figures):
    cli = netconductor
    before = supervisors(cli.root)
    cli('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    script = ('set -e; {cli} run -d img c$1 >/dev/null; {cli} addnetwork -e 80-$((12000 + $1)) c$1 >/dev/null'
              .format(cli='%s %s --root %s' % (sys.executable, helpers.CLI, cli.root)))
    procs = [subprocess.Popen(['nsenter', '--net=/run/netns/' + netlab.host, '--', 'sh', '-c', script, 'sh', str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(20)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    figures['iterations'] += 20
    assert all(code == 0 for code, _err in results), results
    rows = json.loads(cli('ps', '--json').stdout)
    assert len(rows) == 20 and all(r['status'] == 'running' for r in rows)
    assert len({r['address'] for r in rows}) == 20
    allocations = json.load(open(os.path.join(cli.root, 'network', 'allocations.json')))
    assert sorted(p['host_port'] for a in allocations.values() for p in a['ports']) == list(range(12000, 12020))
    for row in rows:
        cli('stop', '-t', '0', row['name'])
    assert leftovers(cli, netlab, before) == []


def test_ten_concurrent_builds_sharing_one_base(conductor, context, figures, tmp_path):
    files = []
    for i in range(10):
        path = tmp_path / ('Conductorfile%d' % i)
        shared = 'RUN echo shared > /shared\n'
        path.write_text('FROM debian:bookworm\n%sRUN echo %d > /own\n' % (shared, i))
        files.append(str(path))
    procs = [subprocess.Popen([sys.executable, helpers.CLI, '--root', conductor.root, 'build', 'b%d' % i, f],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, f in enumerate(files)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    figures['iterations'] += 10
    assert all(code == 0 for code, _err in results), results
    images = {i['name']: i for i in json.loads(conductor('images', '--json').stdout)}
    assert len(images) == 10
    assert len({i['layers'][0] for i in images.values()}) == 1, 'the shared step is one layer'
    for i in range(10):
        out = conductor('run', 'b%d' % i, 'r%d' % i, '--', 'cat', '/shared', '/own').stdout
        assert out == 'shared\n%d\n' % i
        conductor('stop', 'r%d' % i)
    layers = os.listdir(os.path.join(conductor.root, 'layers'))
    assert not [entry for entry in layers if entry.startswith('.tmp-')]


def _in_lab(netlab, script, *args):
    return subprocess.run(['nsenter', '--net=/run/netns/' + netlab.host, '--', 'sh', '-c', script, 'sh'] + list(args),
                          capture_output=True, text=True, check=False)


def _parallel(cli, netlab, jobs, argv_of):
    """One conductor process per item, all at once: [(exit code, stderr)]."""
    procs = [subprocess.Popen(['nsenter', '--net=/run/netns/' + netlab.host, '--', sys.executable, helpers.CLI,
                               '--root', cli.root] + argv_of(item), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for item in jobs]
    return [(p.wait(), p.stderr.read()) for p in procs]


def _rules(netlab):
    return sorted(netlab.iptables())


def test_eight_networked_containers_stopped_two_at_a_time(netconductor, netlab, context, figures):
    cli = netconductor
    before = supervisors(cli.root)
    cli('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    names = ['s%d' % i for i in range(8)]
    for i, name in enumerate(names):
        cli('run', '-d', 'img', name)
        cli('addnetwork', '-i', '-e', '80-%d' % (13000 + i), name)
    cli('peer', 's0', 's1')
    result = _in_lab(netlab, 'printf "%s\\n" "$@" | xargs -P 2 -n 1 {} {} --root {} stop -t 0'.format(
        sys.executable, helpers.CLI, cli.root), *names)
    figures['iterations'] += 8
    assert (result.returncode, result.stderr) == (0, ''), result.stderr
    assert sorted(result.stdout.split()) == names
    assert leftovers(cli, netlab, before) == []


def test_parallel_addnetworks_and_stops_leave_the_rules_of_those_running(netconductor, netlab, context, figures):
    cli = netconductor
    cli('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    keep, go = ['k%d' % i for i in range(3)], ['g%02d' % i for i in range(20)]
    for name in keep + go:
        cli('run', '-d', 'img', name)
    for i, name in enumerate(keep):
        cli('addnetwork', '-e', '80-%d' % (14000 + i), name)
    cli('peer', 'k0', 'k1')
    alone = _rules(netlab)
    results = _parallel(cli, netlab, enumerate(go), lambda item: ['addnetwork', '-i', '-e', '80-%d' % (14100 + item[0]),
                                                                  item[1]])
    results += _parallel(cli, netlab, go[:4], lambda name: ['peer', name, 'k2'])
    results += _parallel(cli, netlab, go, lambda name: ['stop', '-t', '0', name])
    figures['iterations'] += 44
    assert results == [(0, '')] * 44, 'each succeeds, and none found the rules damaged'
    assert _rules(netlab) == alone, 'exactly the rules of the containers still running'
    netlab.flush_conductor_chains()
    assert 'firewall repaired' in cli('peer', 'k0', 'k2').stderr
    cli('unpeer', 'k0', 'k2')
    assert _rules(netlab) == alone, 'as a rebuild from the allocations makes them'
    assert json.loads(cli('inspect', 'k2').stdout)['network']['ports'][0]['host_port'] == 14002
