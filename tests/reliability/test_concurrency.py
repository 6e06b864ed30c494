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
