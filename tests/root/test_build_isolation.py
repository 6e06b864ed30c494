# SPDX-License-Identifier: GPL-3.0-or-later
"""A build's RUN step in a network namespace of its own, in the private lab (tests/netlab.py): the build runs
in the lab's host namespace, so the machine's own network is never touched.

A student's Dockerfile that the instructor builds tries, from a RUN step, what a process on the host could
do: a service bound to the host's 127.0.0.1, an abstract unix socket (the CVE-2020-15257 class), the cloud
metadata address 169.254.169.254. Each must fail; the controls show the same honest path works with
`conductor build --network host`, and that a RUN step still reaches the internet (NAT)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import CLI
from netlab import INTERNET_IP, sh

SECRET = 'the host says hi'
METADATA = '169.254.169.254'
# bash's /dev/tcp and perl-base's Socket: the base image has no python
# (a dropped connection can only be seen to time out: 5 s)
TCP = "timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d && head -n 1 <&3' || echo REFUSED"
ABSTRACT = ("perl -MSocket -e 'socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die; "
            "connect($s, pack_sockaddr_un(\"\\0%s\")) or die \"REFUSED: $!\\n\"; print scalar <$s>' 2>&1; true")
SERVER = ('import socket, sys\n'
          'family, address = (socket.AF_UNIX, "\\0" + sys.argv[2]) if sys.argv[1] == "unix" else '
          '(socket.AF_INET, (sys.argv[1], int(sys.argv[2])))\n'
          's = socket.socket(family, socket.SOCK_STREAM)\n'
          's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
          's.bind(address)\n'
          's.listen(8)\n'
          'print("ready", flush=True)\n'
          'while True:\n'
          '    c, dummy = s.accept()\n'
          '    c.sendall(b"%s\\n")\n'
          '    c.close()\n' % SECRET)


@pytest.fixture
def serve(netlab):
    """serve(namespace, address, port): a server that greets each client with SECRET, bound in that namespace
    (address 'unix': the abstract socket named port). Stopped afterwards."""
    servers = []

    def start(namespace, address, port):
        proc = subprocess.Popen(['nsenter', '--net=/run/netns/' + namespace, '--', sys.executable, '-c', SERVER,
                                 address, str(port)], stdout=subprocess.PIPE, text=True)
        servers.append(proc)
        assert proc.stdout.readline() == 'ready\n'
    yield start
    for proc in servers:
        proc.kill()
        proc.wait()


def build_output(cli, context, command, *options):
    """The output of a build whose one RUN step runs `command` (--no-cache: it runs every time)."""
    path = context.write('FROM debian:bookworm\nRUN %s\n' % command)
    return cli('build', '--no-cache', *options, 'probe', path).stdout


def test_a_run_step_cannot_reach_a_service_on_the_hosts_loopback(netconductor, netlab, serve, context):
    serve(netlab.host, '127.0.0.1', 7000)
    out = build_output(netconductor, context, TCP % ('127.0.0.1', 7000))
    assert 'REFUSED' in out and SECRET not in out
    assert SECRET in build_output(netconductor, context, TCP % ('127.0.0.1', 7000), '--network', 'host')  # control


def test_a_run_step_cannot_connect_to_the_hosts_abstract_unix_sockets(netconductor, netlab, serve, context):
    name = 'conductor-test-%d' % os.getpid()
    serve(netlab.host, 'unix', name)
    out = build_output(netconductor, context, ABSTRACT % name)
    assert 'REFUSED' in out and SECRET not in out
    assert SECRET in build_output(netconductor, context, ABSTRACT % name, '--network', 'host')  # control


def test_a_run_step_cannot_read_the_metadata_address_but_reaches_the_internet(netconductor, netlab, serve, context):
    sh('ip', 'addr', 'add', METADATA + '/32', 'dev', 'lo', ns=netlab.internet)  # the lab's cloud metadata
    serve(netlab.internet, METADATA, 80)
    out = build_output(netconductor, context, TCP % (METADATA, 80))
    assert 'REFUSED' in out and SECRET not in out
    assert SECRET in build_output(netconductor, context, TCP % (METADATA, 80), '--network', 'host')  # control
    # the control: through NAT, as apt-get in a RUN step needs
    get = "bash -c 'exec 3<>/dev/tcp/%s/80 && printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3'" % INTERNET_IP
    out = build_output(netconductor, context, get)
    assert 'internet ok' in out


def test_run_network_host_needs_the_build_option(netconductor, netlab, serve, context, root):
    serve(netlab.host, '127.0.0.1', 7001)
    path = context.write('FROM debian:bookworm\nRUN --network=host %s\n' % (TCP % ('127.0.0.1', 7001)))
    before = netconductor.listing()
    error = netconductor.fails('build', 'probe', path)
    assert 'RUN --network=host' in error and '--network host' in error
    assert netconductor.listing() == before  # refused while planning: nothing ran, nothing changed
    assert SECRET in netconductor('build', '--network', 'host', 'probe', path).stdout
    assert 'invalid build network' in netconductor.fails('build', '--network', 'bridge', 'probe', path)


def test_run_network_none_and_the_step_network_leaves_nothing_behind(netconductor, netlab, context, root):
    rules, links = netlab.iptables(), netlab.links()
    out = build_output(netconductor, context, 'cat /proc/net/dev')
    assert 'eth0' in out  # its own veth
    out = build_output(netconductor, context, '--network=none cat /proc/net/dev')
    assert 'eth0' not in out and 'lo:' in out
    assert netlab.iptables() == rules and allocations(root) == {}
    deadline = time.time() + 10
    while netlab.links() != links:  # the host's end of a veth goes with the step's namespace, as the kernel gets to it
        assert time.time() < deadline, 'a RUN step left a link: %s' % netlab.links()
        time.sleep(0.05)


def test_a_build_whose_steps_need_no_network_kills_the_helper_it_started(netconductor, netlab, context, root):
    """The CLI forks the helper before it knows the plan: a cache hit, or a build without a networked RUN
    step, kills it unused, and neither it nor a trace of it outlives the build."""
    rules = netlab.iptables()
    cached = context.write('FROM debian:bookworm\nRUN echo cached > /cached\n')
    netconductor('build', 'probe', cached)
    for path in (cached, context.write('FROM debian:bookworm\nRUN --network=none echo none > /none\n')):
        build = subprocess.Popen(['nsenter', '--net=/run/netns/' + netlab.host, '--', sys.executable, CLI, '--root',
                                  root, 'build', 'probe', path], stdout=subprocess.PIPE, text=True,
                                 start_new_session=True)  # its session holds the build and the helper it forks
        out, dummy = build.communicate(timeout=60)
        assert build.returncode == 0 and 'Successfully built probe' in out
        assert session_processes(build.pid) == []
        assert not os.path.exists(os.path.join(root, 'network')) and netlab.iptables() == rules


def session_processes(sid):
    """The PIDs of the processes still in session `sid`."""
    found = []
    for name in os.listdir('/proc'):
        try:
            if name.isdigit() and os.getsid(int(name)) == sid:
                found.append(int(name))
        except ProcessLookupError:
            pass  # gone while we looked
    return found


def killed_build(cli, netlab, root, context, sig=signal.SIGKILL):
    """A build killed (SIGKILL, with its step and the helper that makes its network; or the build alone
    interrupted, as by Ctrl-C, with SIGINT) while its RUN step runs: returns the step's allocation name."""
    path = context.write('FROM debian:bookworm\nRUN sleep 600\n')
    build = subprocess.Popen(['nsenter', '--net=/run/netns/' + netlab.host, '--', sys.executable, CLI, '--root', root,
                              'build', 'probe', path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # nsenter execs the CLI: build.pid is the build's PID
    try:
        deadline = time.time() + 30
        while not (allocations(root) and 'CONDUCTOR-' in ''.join(netlab.iptables())):
            assert build.poll() is None and time.time() < deadline, 'the RUN step never got a network'
            time.sleep(0.05)
        names = list(allocations(root))
        assert names[0].startswith('.tmp-%d-' % build.pid)
    finally:
        if sig == signal.SIGKILL:
            os.killpg(build.pid, sig)
        else:
            os.kill(build.pid, sig)
        build.wait()
    return names[0]


def allocations(root):
    path = os.path.join(root, 'network', 'allocations.json')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def test_an_interrupted_or_failed_step_takes_its_network_with_it(netconductor, netlab, context, root):
    rules, links = netlab.iptables(), netlab.links()
    path = context.write('FROM debian:bookworm\nRUN exit 3\n')
    assert 'exit code 3' in netconductor.fails('build', 'probe', path)
    assert allocations(root) == {} and netlab.iptables() == rules
    config = context / 'conductor.conf'
    config.write_text('DEFAULT_IFC=nosuch0\n')  # a network that cannot be made: its error, not the step's
    result = netconductor('build', 'probe', path, check=False, env=dict(os.environ, CONDUCTOR_CONFIG=str(config)))
    assert result.returncode == 1 and "a RUN step's network: making it: DEFAULT_IFC=nosuch0" in result.stderr
    assert allocations(root) == {} and netlab.iptables() == rules
    killed_build(netconductor, netlab, root, context, signal.SIGINT)
    assert allocations(root) == {} and netlab.iptables() == rules  # removed by the build itself, no sweep
    deadline = time.time() + 10
    while netlab.links() != links:
        assert time.time() < deadline, 'an interrupted RUN step left a link: %s' % netlab.links()
        time.sleep(0.05)


def test_a_killed_builds_step_network_is_swept_by_repair_or_the_next_build(netconductor, netlab, context, root):
    rules = netlab.iptables()
    killed_build(netconductor, netlab, root, context)
    netconductor('repair')
    assert allocations(root) == {} and netlab.iptables() == rules
    left = killed_build(netconductor, netlab, root, context)
    out = build_output(netconductor, context, 'cat /proc/net/dev')  # the next build sweeps (its cgroup too)
    assert 'eth0' in out and allocations(root) == {} and netlab.iptables() == rules
    assert left not in json.dumps(allocations(root))
