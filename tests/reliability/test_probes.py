# SPDX-License-Identifier: GPL-3.0-or-later
"""Security probes, run inside a container as its root."""
import hashlib
import json
import os

from netlab import sh

PROBES = r'''
mkdir -p /x
perl -e 'chroot "/x" or die; chdir ".." for 1..40; chroot "."; print -e "MARKER" ? "escaped\n" : "inside\n"'
ls /dev | grep -cE "^(sd|vd|hd|nvme|xvd|mmcblk|loop|dm-)" || true
mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo mount-refused
mount --bind / /mnt 2>/dev/null && echo bound || echo bind-refused
(echo "|/tmp/x" > /proc/sys/kernel/core_pattern) 2>/dev/null && echo core-written || echo core-refused
(echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-written || echo sysrq-refused
touch /sys/kernel/conductor-probe 2>/dev/null && echo sys-written || echo sys-refused
test -e /proc/HOSTPID && echo host-process-visible || echo host-processes-hidden
ps -e -o pid= | wc -l
'''


def digest(*paths):
    return [hashlib.sha256(open(p, 'rb').read()).hexdigest() for p in paths]


def user_rules(lab):
    rules = lab.iptables()
    return [r for r in rules if '10.99.' in r or '10.98.' in r or r.startswith(':FORWARD') or r.startswith(':POSTROUTING')]


def test_probes_inside_a_container(netconductor, netlab, context, tmp_path):
    cli = netconductor
    host_files = digest('/etc/resolv.conf', '/etc/hosts')
    marker = tmp_path / 'host-only-marker'
    marker.write_text('host')
    iptables = netlab.host_iptables()  # the host's own rules, where its iptables command writes them
    sh(iptables, '-A', 'FORWARD', '-s', '10.99.0.0/24', '-j', 'ACCEPT', ns=netlab.host)
    sh(iptables, '-P', 'FORWARD', 'DROP', ns=netlab.host)
    sh(iptables, '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.98.0.0/24', '-j', 'MASQUERADE', ns=netlab.host)
    mine = user_rules(netlab)
    commands = [
        ('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n')),
        ('run', '-d', 'img', 'a'), ('run', '-d', 'img', 'b'), ('run', '-d', 'img', 'c'),
        ('addnetwork', '-i', '-e', '80-8080', 'a'), ('addnetwork', 'b'), ('addnetwork', 'c'), ('peer', 'a', 'c'),
    ]
    for command in commands:
        cli(*command)
        assert user_rules(netlab) == mine, 'changed by %r' % (command,)
    script = PROBES.replace('MARKER', str(marker)).replace('HOSTPID', str(os.getpid()))
    out = cli('exec', 'a', '--', 'sh', '-c', script).stdout.split('\n')
    assert out[:10] == ['inside', '0', 'mount-refused', 'bind-refused', 'core-refused', 'sysrq-refused',
                        'sys-refused', 'host-processes-hidden', '4', ''], out  # sleep, sh, ps, wc
    ips = {r['name']: r['address'] for r in json.loads(cli('ps', '--json').stdout)}

    def reaches(src, dst):
        return cli('exec', src, '--', 'ping', '-c1', '-W1', ips[dst], check=False).returncode == 0
    assert not reaches('a', 'b') and not reaches('b', 'a') and not reaches('b', 'c'), 'non-peers are isolated'
    assert reaches('a', 'c') and reaches('c', 'a'), 'peers reach each other'
    for command in [('unpeer', 'a', 'c'), ('exec', 'a', '--', 'true'), ('stop', '-t', '0', 'a'),
                    ('stop', '-t', '0', 'b'), ('stop', '-t', '0', 'c'), ('rmcache',)]:
        cli(*command)
        assert user_rules(netlab) == mine, 'changed by %r' % (command,)
    assert digest('/etc/resolv.conf', '/etc/hosts') == host_files
    assert marker.read_text() == 'host'
