# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/plugin_utils/_cli.py: where the connection and inventory plugins run the conductor CLI, and which of
its failures make a host unreachable."""
import os
import shlex
import sys
import types

import pytest

import helpers

helpers.load_cli()  # makes ansible_collections.cs695.conductor importable from this checkout
from ansible_collections.cs695.conductor.plugins.plugin_utils._cli import Target, Unreachable  # noqa: E402


def test_on_this_machine_the_collections_own_cli_under_this_python():
    assert Target(root='/srv/c').argv(['exec', 'web', '--', 'id']) == [
        sys.executable, helpers.CLI, '--root', '/srv/c', 'exec', 'web', '--', 'id']
    assert Target(executable='sudo -n conductor').argv(['ps']) == ['sudo', '-n', 'conductor', 'ps']


def test_on_a_vm_one_quoted_command_over_a_reused_ssh_connection(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    target = Target(root='/srv/my root', host='lab1', ssh_user='admin', ssh_port=2222, ssh_private_key_file='~/k',
                    ssh_args='-o StrictHostKeyChecking=accept-new', timeout=3)
    argv = target.argv(['exec', 'web', '--', '/bin/sh', '-c', "echo 'it''s' $HOME; rm -rf /"])
    assert argv[-2:-1] == ['lab1'] and argv[-3] == '--', 'a host name is never taken for an option'
    assert shlex.split(argv[-1]) == ['conductor', '--root', '/srv/my root', 'exec', 'web', '--', '/bin/sh', '-c',
                                     "echo 'it''s' $HOME; rm -rf /"]
    options = ' '.join(argv[:-2])
    for expected in ('-o BatchMode=yes', '-o ControlMaster=auto', '-o ControlPersist=60s', '-o ConnectTimeout=3',
                     '-p 2222', '-l admin', '-i %s/k' % tmp_path, '-o StrictHostKeyChecking=accept-new',
                     '-o ControlPath=%s/.ansible/cp/conductor-%%C' % tmp_path):
        assert expected in options
    assert oct(os.stat(str(tmp_path / '.ansible' / 'cp')).st_mode & 0o777) == '0o700'


def finished(code):
    return types.SimpleNamespace(returncode=code)


@pytest.mark.parametrize('host, code, stderr, message', [
    ('lab1', 255, b'ssh: connect to host lab1 port 22: Connection refused\n',
     'ssh to lab1 failed: ssh: connect to host lab1 port 22: Connection refused (check ssh_user'),
    (None, 1, b"conductor exec: container 'web' is not running (exited (0)): start it first (conductor start web)\n",
     "conductor exec: container 'web' is not running (exited (0)): start it first (conductor start web) on this machine"),
    ('lab1', 126, b"conductor exec: [Errno 2] USER bob: no such user in the image's /etc/passwd\n",
     "conductor exec: [Errno 2] USER bob: no such user in the image's /etc/passwd on lab1"),
    ('lab1', 127, b'sh: 1: conductor: not found\n', 'the conductor CLI is not installed on lab1: sh: 1: conductor'),
])
def test_unreachable_when_nothing_ran(host, code, stderr, message):
    with pytest.raises(Unreachable) as e:
        Target(host=host).check(finished(code), stderr)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize('code, stderr', [
    (0, b''), (1, b'cat: /x: No such file or directory\n'), (127, b'/bin/sh: 1: /usr/bin/python3: not found\n'),
    (127, b'conductor exec: cannot run python3: No such file or directory\n'), (127, b'sh: 1: conductor-grade: not found\n'),
])
def test_a_commands_own_failure_is_its_exit_code(code, stderr):
    assert Target(host='lab1').check(finished(code), stderr) is None


def test_ps_json_carries_what_the_inventory_plugin_reads(tmp_path):
    """ports and peers of each container (conductor_ports, conductor_peers), from the network's records."""
    from ansible_collections.cs695.conductor.plugins.module_utils._common import write_json
    from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
    from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
    store = Store(str(tmp_path), config={})
    for name in ('a', 'b', 'c'):
        os.makedirs(str(tmp_path / 'containers' / name))
        write_json(str(tmp_path / 'containers' / name / 'config.json'),
                   {'name': name, 'image': 'py', 'created': 'now', 'base': 'b' * 64, 'layers': [], 'argv': ['/bin/sh'],
                    'environment': []})
    os.makedirs(str(tmp_path / 'network'))
    port = {'container_port': 8080, 'host_port': 20000, 'protocol': 'tcp'}
    write_json(str(tmp_path / 'network' / 'allocations.json'), {'a': {'container_ip': '192.168.0.2', 'ports': [port]}})
    write_json(str(tmp_path / 'network' / 'peers.json'), [['a', 'b']])
    rows = {row['name']: row for row in Containers(store).list()}
    assert (rows['a']['address'], rows['a']['ports'], rows['a']['peers']) == ('192.168.0.2', [port], ['b'])
    assert (rows['b']['ports'], rows['b']['peers'], rows['c']['peers']) == ([], ['a'], [])
    assert rows['c']['status'] == 'created' and not rows['c']['running']
