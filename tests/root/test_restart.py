# SPDX-License-Identifier: GPL-3.0-or-later
"""Restart policies (issue 13): the supervisor runs `conductor _restart NAME` when PID 1 ends."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import helpers
from netlab import HOST_IP


@pytest.fixture
def image(conductor, context):
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    return 'img'


def record(root, name):
    with open(os.path.join(root, 'containers', name, 'restart.json')) as f:
        return json.load(f)


def settle(conductor, name, seconds):
    """The container's ps row once its restarts have stopped coming (at most `seconds`)."""
    deadline, last = time.time() + seconds, None
    while time.time() < deadline:
        row = {r['name']: r for r in json.loads(conductor('ps', '--json').stdout)}[name]
        if row == last and not row['running']:
            return row
        last = row
        time.sleep(1.0)
    return last


def test_on_failure_restarts_with_growing_delays_then_gives_up(conductor, image, root):
    conductor('run', '-d', '--restart', 'on-failure:3', image, 'crash', '--', 'sh', '-c', 'echo run >> /runs; exit 3')
    row = settle(conductor, 'crash', 30)
    assert (row['status'], row['restarts'], row['restart_policy']) == ('exited (3)', 3, 'on-failure:3')
    assert record(root, 'crash')['delay'] == 0.4, 'delays of 0.1, 0.2 and 0.4 s'
    with open(os.path.join(root, 'containers', 'crash', 'upper', 'runs')) as f:
        assert f.read() == 'run\n' * 4, 'the first run and three restarts, on the same upper layer'


def test_on_failure_leaves_a_clean_exit_alone(conductor, image, root):
    conductor('run', '-d', '--restart', 'on-failure', image, 'clean', '--', 'true')
    assert settle(conductor, 'clean', 10)['restarts'] == 0


def test_always_restarts_a_killed_command_and_stop_ends_it(conductor, image, root):
    conductor('run', '-d', '--restart', 'always', image, 'svc', '--', 'sleep', '1000')
    first = json.loads(conductor('inspect', 'svc').stdout)['state']
    os.kill(first['pid'], signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        state = json.loads(conductor('inspect', 'svc').stdout)['state']
        if state['running'] and state['pid'] != first['pid']:
            break
        time.sleep(0.2)
    assert state['running'] and state['pid'] != first['pid'], 'started again'
    conductor('stop', 'svc')
    time.sleep(1.5)
    assert json.loads(conductor('ps', '--json').stdout) == [], 'stop ends it for good'
    for pid in (state['supervisor'], first['supervisor']):
        assert not os.path.exists('/proc/%d' % pid) or 'conductor' not in open('/proc/%d/cmdline' % pid).read()


def test_a_restart_brings_the_network_back(netconductor, netlab, context):
    netconductor('build', 'img', context.write('FROM debian:bookworm\n'))
    server = ('perl -MIO::Socket::INET -e \'$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) '
              'or die; $c = $s->accept; <$c>; print $c "HTTP/1.0 200 OK\\r\\n\\r\\nserved\\n"; close $c\'')
    netconductor('run', '-d', '--restart', 'always', 'img', 'web', '--', 'sh', '-c', server)  # one answer, then exit
    netconductor('addnetwork', '-e', '8080-8000', 'web')
    for attempt in range(3):  # each answer ends the command; the policy starts it again, network and all
        deadline = time.time() + 20
        while time.time() < deadline:
            if netlab.fetch(netlab.internet, 'http://%s:8000/' % HOST_IP) == 'served\n':
                break
            time.sleep(0.3)  # between runs nothing answers yet
        else:
            raise AssertionError('no answer after restart %d' % attempt)
    assert json.loads(netconductor('inspect', 'web').stdout)['restarts']['count'] >= 2


@pytest.mark.parametrize('args, message', [
    (['--restart', 'sometimes'], "invalid restart policy 'sometimes'"),
    (['--restart', 'on-failure:-1'], "invalid restart policy 'on-failure:-1'"),
    (['--restart', 'always:2'], "invalid restart policy 'always:2'"),
])
def test_bad_policies_change_nothing(conductor, image, args, message):
    before = conductor.listing()
    assert message in conductor.fails('run', '-d', *args, image, 'x')
    assert 'needs -d' in conductor.fails('run', '--restart', 'always', image, 'y')
    assert conductor.listing() == before


def test_restore_after_a_reboot(netconductor, netlab, context, root):
    """A simulated reboot: every process of the containers killed, a fresh host network namespace (no veth, no
    rule). restore starts what its policy says, with its files, its address and its published port."""
    cli = netconductor
    cli('build', 'img', context.write('FROM debian:bookworm\n'))
    server = ('perl -MIO::Socket::INET -e \'$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) '
              'or die; while ($c = $s->accept) { <$c>; open(my $f, "<", "/kept"); print $c "HTTP/1.0 200 OK\\r\\n\\r\\n", '
              '<$f>; close $c }\'')
    cli('run', '-d', '--restart', 'always', 'img', 'web', '--', 'sh', '-c', server)
    cli('addnetwork', '-e', '8080-8000', 'web')
    cli('exec', 'web', '--', 'sh', '-c', 'echo written before the reboot > /kept')
    for policy, name in (('unless-stopped', 'quiet'), ('no', 'once'), ('on-failure', 'flaky')):
        cli('run', '-d', '--restart', policy, 'img', name, '--', 'sleep', '1000')
    cli('addnetwork', 'quiet')
    cli('peer', 'web', 'quiet')
    before = {r['name']: r for r in json.loads(cli('ps', '--json').stdout)}
    damaged = os.path.join(root, 'containers', 'once', 'config.json')
    with open(damaged) as f:
        good = f.read()
    with open(damaged, 'w') as f:
        f.write('{damaged')  # a record a crash cut short: reported, left as it is
    for row in before.values():  # the power goes: supervisors first, so no exit code is written
        os.kill(json.loads(open(os.path.join(root, 'containers', row['name'], 'state.json')).read())['supervisor'],
                signal.SIGKILL)
    netlab.reboot_host()
    result = cli('restore', check=False)
    assert result.returncode == 1 and 'once: ' in result.stderr and 'left as it is' in result.stderr
    assert sorted(result.stdout.split()) == ['flaky', 'quiet', 'restored', 'restored', 'restored', 'web']
    assert open(damaged).read() == '{damaged'
    assert netlab.fetch(netlab.internet, 'http://%s:8000/' % HOST_IP) == 'written before the reboot\n'
    after = {r['name']: r for r in json.loads(cli('ps', '--json').stdout) if r['name'] != 'once'}
    assert all(after[n]['running'] and after[n]['address'] == before[n]['address'] for n in ('web', 'quiet'))
    quiet_ip = after['quiet']['address']
    assert cli('exec', 'web', '--', 'ping', '-c', '1', '-W', '2', quiet_ip, check=False).returncode == 0, 'peering back'
    with open(damaged, 'w') as f:
        f.write(good)  # so the fixture can stop it


@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='systemd-analyze is not installed')
def test_the_restore_unit_the_role_installs_verifies(tmp_path):
    """This machine runs no systemd: the unit is checked with systemd-analyze verify, next to a broken control."""
    import jinja2
    with open(os.path.join(helpers.CHECKOUT, 'roles', 'conductor_host', 'templates', 'conductor-restore.service.j2')) as f:
        template = jinja2.Template(f.read())
    for name, cli, verifies in (('good', helpers.CLI, True), ('broken', str(tmp_path / 'missing'), False)):
        unit = tmp_path / name / 'conductor-restore.service'
        unit.parent.mkdir()
        unit.write_text(template.render(ansible_managed='test', conductor_host_config_dir='/etc/conductor',
                                        conductor_host_cli_path=cli))
        result = subprocess.run(['systemd-analyze', 'verify', str(unit)], capture_output=True, text=True, check=False)
        assert (result.returncode == 0) is verifies, (name, result.stderr)
    assert 'ExecStart=%s restore' % helpers.CLI in (tmp_path / 'good' / 'conductor-restore.service').read_text()
