# SPDX-License-Identifier: GPL-3.0-or-later
"""Lab hosts as they are, in the private lab (tests/netlab.py): a forward policy of drop from iptables-nft (ufw's
default), from an nftables.conf's inet filter table, and from ufw itself (in a mount namespace of its own, so that
its /etc/ufw is the test's); a move between the two backends with containers running; `conductor doctor`.

Each host gets the same honest traffic and the same attacks: the internet and a published port answer, a
peered container is reached and an unpeered one is not, a forged source goes nowhere; the rules carry
comments; stop --all and repair leave the host's rules as they were."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import helpers
from netlab import HOST_IP, INTERNET_IP, sh
from test_firewall_changes import SERVER
from test_network import WGET
from test_network_isolation import delivered, frame, image, pid_of  # noqa: F401, pylint: disable=unused-import

from ansible_collections.cs695.conductor.plugins.module_utils import _doctor, _nftables

NFTABLES_CONF = ('table inet filter {\n chain input { type filter hook input priority filter; policy accept; }\n'
                 ' chain forward { type filter hook forward priority filter; policy drop; }\n}\n')


def containers(cli):
    """a: internet and a published port, peered with c; b: a network only; c: a network only."""
    cli('run', '-d', 'img', 'a', '--', 'perl', '-MIO::Socket::INET', '-e', SERVER)
    cli('run', '-d', 'img', 'b')
    cli('run', '-d', 'img', 'c')
    cli('addnetwork', '-i', '-p', '7080:8080', 'a')
    cli('addnetwork', 'b')
    cli('addnetwork', 'c')
    cli('peer', 'a', 'c')
    return {r['name']: r['address'] for r in json.loads(cli('ps', '--json').stdout)}


def honest_and_hostile(cli, netlab, ips):
    """What works on any host, and what never does."""
    assert 'internet ok' in cli('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP).stdout
    assert netlab.fetch(netlab.internet, 'http://%s:7080/' % HOST_IP) == 'served\n'
    cli('exec', 'c', '--', 'ping', '-c1', '-W2', ips['a'])  # peers
    assert cli('exec', 'b', '--', 'ping', '-c1', '-W1', ips['a'], check=False).returncode != 0, 'b is not a peer'
    pids = {name: pid_of(cli, name) for name in ips}
    forged = frame(cli, netlab, 'b', ips['a'], INTERNET_IP, 9999)  # b, without internet, forges a's address
    assert not delivered(netlab.internet, INTERNET_IP, 9999, pids['b'], *forged)
    assert not delivered(pids['c'], '0.0.0.0', 9998, pids['b'], *frame(cli, netlab, 'b', ips['a'], ips['c'], 9998))
    # controls: a's own address reaches the internet and its peer
    assert delivered(netlab.internet, INTERNET_IP, 9999, pids['a'], *frame(cli, netlab, 'a', ips['a'], INTERNET_IP, 9999))
    assert delivered(pids['c'], '0.0.0.0', 9998, pids['a'], *frame(cli, netlab, 'a', ips['a'], ips['c'], 9998))


def ruleset(netlab):
    return sh('nft', 'list', 'ruleset', ns=netlab.host).stdout


def leaves_nothing(cli, netlab, before):
    cli('stop', '--all', '-t', '0')
    assert netlab.iptables() == before, 'the host rules as they were: no table, chain or accept of ours'
    assert cli('repair').stdout == 'firewall intact\n'
    assert netlab.iptables() == before


def whole_host(cli, netlab, dropping):
    """The scenario on a host whose forward chain `dropping` ('family table chain') has policy drop."""
    before = netlab.iptables()
    ips = containers(cli)
    honest_and_hostile(cli, netlab, ips)
    text = ruleset(netlab)
    assert 'table ip conductor' in text and 'comment "a forged source address"' in text
    assert 'comment "published port 7080/tcp"' in text, 'the rules say why they are there'
    family, table, chain = dropping.split()
    ours = [line for line in sh('nft', 'list', 'chain', family, table, chain, ns=netlab.host).stdout.splitlines()
            if _nftables.FOREIGN_COMMENT in line]
    assert [line.split()[:2] for line in ours] == [['iifname', '"cdr*"'], ['oifname', '"cdr*"']]
    assert all('meta mark & 0x20000000 == 0x20000000 accept' in line for line in ours), 'what conductor accepted'
    listed = sh('nft', 'list', 'chain', family, table, chain, ns=netlab.host).stdout.splitlines()
    assert [line for line in listed if line.startswith('\t\t') and 'type ' not in line][-2:] == ours, \
        "last: in place of the drop policy, after the chain's own rules"
    leaves_nothing(cli, netlab, before)


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_an_iptables_nft_forward_policy_of_drop(netconductor, netlab, image):
    sh('iptables-nft', '-P', 'FORWARD', 'DROP', ns=netlab.host)  # what ufw's DEFAULT_FORWARD_POLICY="DROP" is
    sh('iptables-nft', '-A', 'FORWARD', '-s', '10.99.0.0/24', '-j', 'ACCEPT', ns=netlab.host)  # a rule of the host's
    whole_host(netconductor, netlab, 'ip filter FORWARD')
    listed = sh('iptables-nft', '-S', 'FORWARD', ns=netlab.host)
    assert listed.stdout == '-P FORWARD DROP\n-A FORWARD -s 10.99.0.0/24 -j ACCEPT\n' and 'Warning' not in listed.stderr


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_without_conductors_table_the_hosts_drop_policy_holds(netconductor, netlab, image):
    """The accepts in the host's dropping chain let through only what conductor's chain marked: once its table is
    gone (nft flush ruleset, nft -f of a config that starts with one), container traffic is dropped again, not
    let through unfiltered. repair brings it back."""
    sh('iptables-nft', '-P', 'FORWARD', 'DROP', ns=netlab.host)
    ips = containers(netconductor)
    assert 'internet ok' in netconductor('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP).stdout  # control
    sh('nft', 'delete', 'table', 'ip', 'conductor', ns=netlab.host)
    assert _nftables.FOREIGN_COMMENT in ruleset(netlab), 'the accepts in the host chain are still there'
    assert 'internet ok' not in netconductor('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP, check=False).stdout
    assert netconductor('exec', 'b', '--', 'ping', '-c1', '-W1', ips['a'], check=False).returncode != 0
    pids = {name: pid_of(netconductor, name) for name in ips}
    forged = frame(netconductor, netlab, 'b', ips['a'], INTERNET_IP, 9999)
    assert not delivered(netlab.internet, INTERNET_IP, 9999, pids['b'], *forged)
    assert netconductor('repair').stdout == 'firewall repaired: its rules were missing or damaged\n'
    honest_and_hostile(netconductor, netlab, ips)


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_an_nftables_conf_forward_policy_of_drop(netconductor, netlab, image, tmp_path):
    (tmp_path / 'nftables.conf').write_text(NFTABLES_CONF)
    sh('nft', '-f', str(tmp_path / 'nftables.conf'), ns=netlab.host)
    whole_host(netconductor, netlab, 'inet filter forward')


@pytest.mark.parametrize('netlab', ['iptables'], indirect=True)
def test_the_legacy_backend_cannot_pass_an_nftables_drop_and_doctor_says_so(netconductor, netlab, image, tmp_path):
    (tmp_path / 'nftables.conf').write_text(NFTABLES_CONF)
    sh('nft', '-f', str(tmp_path / 'nftables.conf'), ns=netlab.host)
    netconductor('run', '-d', image, 'a')
    netconductor('addnetwork', '-i', 'a')
    assert 'internet ok' not in netconductor('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP, check=False).stdout
    result = netconductor('doctor', '--json', check=False)
    checks = {c['check']: c for c in json.loads(result.stdout)['checks']}
    policy = checks['firewall.forward_policy.inet.filter.forward']
    assert result.returncode == 1 and policy['status'] == 'problem'
    assert 'inet filter, chain forward' in policy['detail'] and 'FIREWALL_BACKEND=nftables' in policy['fix']


class Ufw:
    """ufw with an /etc/ufw and /etc/default/ufw of the test's own (bind-mounted in a mount namespace made for
    each command), in the lab's host network namespace: the machine's ufw stays as it was."""

    def __init__(self, tmp_path, netlab):
        self.etc, self.default, self.netlab = tmp_path / 'ufw', tmp_path / 'ufw.default', netlab
        shutil.copytree('/etc/ufw', str(self.etc))
        shutil.copy('/etc/default/ufw', str(self.default))

    def __call__(self, *argv, env=None):
        script = ('mount --bind "$1" /etc/ufw && mount --bind "$2" /etc/default/ufw && shift 2 && '
                  'exec nsenter --net=/run/netns/%s -- "$@"' % self.netlab.host)
        result = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
                                 str(self.etc), str(self.default)] + list(argv),
                                capture_output=True, text=True, check=False, env=env)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        return result.stdout


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_a_host_with_ufw_and_the_roles_route_rules_survive_ufw_reload(netconductor, netlab, image, tmp_path):
    machine = (open('/etc/ufw/ufw.conf').read(), open('/etc/default/ufw').read())
    ufw = Ufw(tmp_path, netlab)
    assert 'DEFAULT_FORWARD_POLICY="DROP"' in ufw('cat', '/etc/default/ufw')
    ufw('ufw', '--force', 'enable')
    playbook = tmp_path / 'ufw.yml'
    playbook.write_text('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                        '    - ansible.builtin.include_role:\n        name: cs695.conductor.conductor_host\n'
                        '        tasks_from: firewall.yml\n      vars:\n        conductor_host_firewalld_zone: false\n')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    argv = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable,
            str(playbook)]
    assert 'changed=1' in ufw(*argv, env=dict(env, ANSIBLE_CONFIG=os.path.join(helpers.CHECKOUT, 'ansible.cfg')))
    again = ufw(*argv, env=dict(env, ANSIBLE_CONFIG=os.path.join(helpers.CHECKOUT, 'ansible.cfg')))
    assert 'changed=0' in again and 'ok=' in again, 'a rerun changes nothing'
    assert 'ALLOW FWD' in ufw('ufw', 'status')
    ufw('ufw', 'reload')  # ufw's rules as a reload leaves them (its first start leaves a few fewer)
    before = netlab.iptables()
    ips = containers(netconductor)
    honest_and_hostile(netconductor, netlab, ips)
    ufw('ufw', 'reload')  # ufw's chains made again while containers run
    honest_and_hostile(netconductor, netlab, ips)
    listed = sh('nft', '-a', 'list', 'chain', 'ip', 'filter', 'FORWARD', ns=netlab.host).stdout
    for handle in [line.split()[-1] for line in listed.splitlines() if _nftables.FOREIGN_COMMENT in line]:
        sh('nft', 'delete', 'rule', 'ip', 'filter', 'FORWARD', 'handle', handle, ns=netlab.host)  # as a reload may
    assert 'internet ok' in netconductor('exec', 'a', '--', 'bash', '-c', WGET % INTERNET_IP).stdout, \
        "the role's route rules alone let it through"
    assert netlab.fetch(netlab.internet, 'http://%s:7080/' % HOST_IP) == 'served\n'
    assert 'firewall repaired' in netconductor('repair').stdout, 'the accepts are part of what repair checks'
    leaves_nothing(netconductor, netlab, before)
    assert (open('/etc/ufw/ufw.conf').read(), open('/etc/default/ufw').read()) == machine, "the machine's ufw"


@pytest.mark.parametrize('netlab', ['iptables'], indirect=True)
def test_repair_moves_the_rules_to_the_other_backend_with_containers_running(netconductor, netlab, image):
    cli = netconductor
    before = netlab.iptables()
    ips = containers(cli)
    assert 'CONDUCTOR-FORWARD' in sh('iptables-legacy-save', ns=netlab.host).stdout
    nft = dict(os.environ, CONDUCTOR_FIREWALL_BACKEND='nftables')
    assert cli('repair', env=nft).stdout == 'firewall repaired: its rules were missing or damaged\n'
    assert 'CONDUCTOR' not in sh('iptables-legacy-save', ns=netlab.host).stdout, 'nothing left in the old backend'
    assert 'table ip conductor' in ruleset(netlab)
    honest_and_hostile(cli, netlab, ips)
    assert cli('repair', env=nft).stdout == 'firewall intact\n'
    cli('repair')  # and back, as FIREWALL_BACKEND=iptables
    legacy = sh('iptables-legacy-save', ns=netlab.host).stdout
    assert 'table ip conductor' not in ruleset(netlab) and 'CONDUCTOR-FORWARD' in legacy
    honest_and_hostile(cli, netlab, ips)
    leaves_nothing(cli, netlab, before)


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_doctor_names_a_drop_policy_and_no_ip_forward_with_their_fixes(netconductor, netlab, image, tmp_path):
    cli = netconductor
    (tmp_path / 'nftables.conf').write_text(NFTABLES_CONF)
    sh('nft', '-f', str(tmp_path / 'nftables.conf'), ns=netlab.host)
    sh('sysctl', '-qw', 'net.ipv4.ip_forward=0', ns=netlab.host)
    result = cli('doctor', check=False)
    assert result.returncode == 1
    assert 'FAIL  firewall.forward_policy.inet.filter.forward' in result.stdout
    assert 'fix: conductor repair; then add to chain forward of table inet filter in /etc/nftables.conf, last in ' \
        'the chain: %s' % _doctor.NFT_RULE in result.stdout
    checks = {c['check']: c for c in json.loads(cli('doctor', '--json', check=False).stdout)['checks']}
    assert checks['firewall.ip_forward']['status'] == 'warning'
    assert 'sysctl.d' in checks['firewall.ip_forward']['fix']
    assert checks['firewall.backend'] == {'check': 'firewall.backend', 'status': 'ok', 'fix': None,
                                          'detail': 'nftables (FIREWALL_BACKEND=nftables)'}
    cli('run', '-d', image, 'a')
    cli('addnetwork', '-i', 'a')  # adds the accepts: the drop is passed, until nftables.conf is loaded again
    checks = {c['check']: c for c in json.loads(cli('doctor', '--json').stdout)['checks']}
    policy = checks['firewall.forward_policy.inet.filter.forward']
    assert policy['status'] == 'warning' and _doctor.NFT_RULE in policy['fix']
    assert checks['firewall.ip_forward']['status'] == 'ok'


@pytest.mark.parametrize('netlab', ['nftables'], indirect=True)
def test_run_and_exec_never_load_libnftables(netconductor, netlab, image):
    netconductor('run', '-d', image, 'a')
    netconductor('addnetwork', '-i', 'a')
    for args in (['run', '-d', image, 'b'], ['exec', 'a', '--', 'true'], ['ps']):
        result = netconductor(*args, env=dict(os.environ, PYTHONPROFILEIMPORTTIME='1'))
        imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time:')]
        assert imported and not [m for m in imported if m.split('.')[0] in ('nftables', 'pyroute2', 'iptc')], args
    result = netconductor('addnetwork', 'b', env=dict(os.environ, PYTHONPROFILEIMPORTTIME='1'))
    assert 'nftables' in result.stderr, 'control: a network change does load it'
