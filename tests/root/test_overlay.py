# SPDX-License-Identifier: GPL-3.0-or-later
"""The classroom overlay on three simulated lab hosts: each a network namespace with a state root of its own,
on one simulated LAN (a bridge in a fourth namespace). Students are spread over the hosts; what a student
could try (forged VXLAN, forged sources, the other hosts' own services) is tried from inside a container.

    cdt-lan<pid>        br0
    cdt-ovl<pid>-<i>    lan0 10.254.1.1<i>/24 (the uplink), conductor's overlay with subnet 10.88.<i+1>.0/24
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import helpers
from netlab import CLIENT, ECHO, make_lan, plug, sh

NETWORK, PORT, VNI = '10.88.0.0/16', 4789, 695
RAW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'rawpacket.py')


def address(i):
    return '10.254.1.%d' % (10 + i)


def subnet(i):
    return '10.88.%d.0/24' % (i + 1)


class Classroom:
    def __init__(self, tmp_path, count=3):
        self.lan = 'cdt-lan%d' % os.getpid()
        self.hosts, self.procs = [], []
        make_lan(self.lan)
        sh('ip', '-n', self.lan, 'addr', 'add', '10.254.1.1/24', 'dev', 'br0')  # the lab's router: not a lab host
        for i in range(count):
            root = str(tmp_path / ('root%d' % i))
            helpers.seed(root)
            host = {'ns': 'cdt-ovl%d-%d' % (os.getpid(), i), 'root': root, 'index': i}
            self.hosts.append(host)
            self.plug(host)
            host['cli'] = helpers.Conductor(root, host['ns'])

    def plug(self, host):
        """The host's namespace and its uplink on the LAN (again, after a reboot)."""
        plug(self.lan, host['ns'], host['index'], address(host['index']))
        sh('ip', '-n', host['ns'], 'route', 'add', 'default', 'via', '10.254.1.1')  # nobody there: -i needs a way out

    def up(self, host, *extra):
        others = ['%s=%s' % (address(h['index']), subnet(h['index'])) for h in self.hosts if h is not host]
        return host['cli']('overlay', 'up', '--subnet', subnet(host['index']), '--network', NETWORK, *(others + list(extra)))

    def pid(self, host, name):
        with open(os.path.join(host['root'], 'containers', name, 'state.json')) as f:
            return json.load(f)['pid']

    def address_of(self, host, name):
        rows = {r['name']: r for r in json.loads(host['cli']('ps', '--json').stdout)}
        return rows[name]['address']

    def inside(self, host, name, *argv, check=False, **kw):
        """A command in the container's network namespace (the host's Python and rawpacket.py: the image has none)."""
        return subprocess.run(['nsenter', '--net=/proc/%d/ns/net' % self.pid(host, name), '--'] + list(argv),
                              capture_output=True, text=True, check=check, **kw)

    def serve(self, host, name, code, *args):
        """A Python server in the container's namespace; returns it once it printed its first line."""
        proc = subprocess.Popen(['nsenter', '--net=/proc/%d/ns/net' % self.pid(host, name), '--', sys.executable, '-c',
                                 code] + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == 'ready'
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for host in self.hosts:
            subprocess.run(['nsenter', '--net=/run/netns/' + host['ns'], '--', sys.executable, helpers.CLI, '--root',
                            host['root'], 'stop', '--all', '-t', '0'], capture_output=True, check=False)
            helpers.stop_all(host['root'])
            sh('ip', 'netns', 'del', host['ns'], check=False)
        sh('ip', 'netns', 'del', self.lan, check=False)


# Both ends of a simultaneous open: bind UDP port ARGV[2], wait for a line on stdin, send to ARGV[1] on that port,
# print what comes back within 1.5 s
BOTH_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[2])))
s.settimeout(1.5)
print('ready', flush=True)
sys.stdin.readline()
for dummy in range(3):
    s.sendto(b'hello', (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.1)
try:
    print('received %s' % s.recvfrom(100)[0].decode(), flush=True)
except socket.timeout:
    print('nothing', flush=True)
"""


def simultaneous_open(room, port, *sides):
    """What each (host, container, the other's address) received, both sending from UDP `port` to `port`, the first
    one first."""
    procs = []
    for host, name, other in sides:
        procs.append(subprocess.Popen(['nsenter', '--net=/proc/%d/ns/net' % room.pid(host, name), '--', sys.executable,
                                       '-c', BOTH_SEND, other, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        room.procs.append(procs[-1])
        assert procs[-1].stdout.readline().strip() == 'ready'
    for proc in procs:
        proc.stdin.write('go\n')
        proc.stdin.flush()
        time.sleep(0.05)
    return [proc.stdout.read().strip() for proc in procs]


def reaches(room, host, name, kind, target, port, size=5):
    result = room.inside(host, name, sys.executable, '-c', CLIENT, kind, target, str(port), str(size), timeout=30)
    return result.returncode == 0, result.stdout.strip()


def pings(room, host, name, target):
    return room.inside(host, name, 'ping', '-c', '1', '-W', '1', target).returncode == 0


@pytest.fixture
def room(tmp_path, base_key):
    made = Classroom(tmp_path)
    yield made
    made.close()


def conductorfile(tmp_path, name, text):
    folder = tmp_path / name
    folder.mkdir()
    (folder / 'Conductorfile').write_text(text)
    return str(folder / 'Conductorfile')


def test_a_classroom_across_three_hosts(room, tmp_path):
    h0, h1, h2 = room.hosts
    for host in room.hosts:
        out = room.up(host).stdout
        assert 'VNI 695, UDP 4789, MTU 1450' in out and '2 other host(s)' in out
        assert 'already up' in room.up(host).stdout, 'a rerun changes nothing'
    plain = conductorfile(tmp_path, 'plain', 'FROM debian:bookworm\n')
    service = conductorfile(tmp_path, 'svc', 'FROM debian:bookworm\nEXPOSE 7000\n')
    students = {'ann': h0, 'ben': h1, 'cat': h2, 'dan': h0}
    for name, host in students.items():
        host['cli']('build', 'img', plain)
        host['cli']('run', '-d', '--restart', 'always', 'img', name, '--', 'sleep', 'infinity')
        host['cli']('addnetwork', name)
    h2['cli']('build', 'svc', service)
    h2['cli']('run', '-d', 'svc', 'db', '--', 'sleep', 'infinity')
    h2['cli']('addnetwork', '--classroom-service', 'db')
    ip = {name: room.address_of(host, name) for name, host in dict(students, db=h2).items()}
    for host in (h0, h1):  # the other hosts' containers may send to the service: the overlay is given it
        assert 'already up' not in room.up(host, '--service', ip['db']).stdout
    assert ip['ann'].startswith('10.88.1.') and ip['ben'].startswith('10.88.2.') and ip['db'].startswith('10.88.3.')
    # ann (host 0) and ben (host 1) are a team: each host writes its own half
    assert '<->' in h0['cli']('peer', 'ann', ip['ben']).stdout
    assert 'already peered' in h0['cli']('peer', 'ann', ip['ben']).stdout
    h1['cli']('peer', 'ben', ip['ann'])
    for name, host in students.items():
        room.serve(host, name, ECHO, 'tcp', 5000)
        room.serve(host, name, ECHO, 'udp', 5001)
    assert pings(room, h0, 'ann', ip['ben']) and pings(room, h1, 'ben', ip['ann'])
    assert reaches(room, h0, 'ann', 'tcp', ip['ben'], 5000)[0] and reaches(room, h1, 'ben', 'tcp', ip['ann'], 5000)[0]
    assert reaches(room, h0, 'ann', 'udp', ip['ben'], 5001) == (True, 'echo hello')
    # the team's packets take the fast path (table netdev conductor), each host its own half: what they sent is
    # counted there, on ann's veth and on the overlay device
    for host, mine, theirs in ((h0, 'ann', 'ben'), (h1, 'ben', 'ann')):
        counted = fast_rules(host)
        assert set(counted) == {(ip[mine], ip[theirs], 'veth'), (ip[theirs], ip[mine], 'cdroverlay')}, counted
        assert all(packets > 0 for packets in counted.values()), counted
    # through it, nothing goes that the forward path would drop: a forged source (ann claims dan's address, on her
    # host; dan claims ann's), the VXLAN port (dropped from any container), a broadcast frame. The control, ann as
    # herself to port 6000, arrives
    gateway_mac = json.loads(room.inside(h0, 'ann', 'ip', '-j', 'neigh', 'show', 'dev', 'eth0', check=True).stdout)
    for sender, how, port, arrives in (('ann', ['ip', ip['ann']], 6000, True), ('ann', ['ip', ip['dan']], 6000, False),
                                       ('dan', ['ip', ip['ann']], 6000, False), ('ann', ['ip', ip['ann']], PORT, False),
                                       ('ann', ['frame', 'eth0', 'ff:ff:ff:ff:ff:ff', ip['ann']], 6000, False)):
        listener = room.serve(h1, 'ben', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "%d", "1"]; '
                              'exec(open(%r).read())' % (port, RAW))
        room.inside(h0, sender, sys.executable, RAW, *(how + [ip['ben'], str(port)]), check=True)
        heard = listener.stdout.read().strip()
        assert heard == ('received forged from %s' % ip['ann'] if arrives else 'nothing'), (sender, how, port, heard)
    assert gateway_mac, 'ann has sent through her gateway: the frame control below uses its MAC'
    listener = room.serve(h1, 'ben', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "1"]; '
                          'exec(open(%r).read())' % RAW)
    room.inside(h0, 'ann', sys.executable, RAW, 'frame', 'eth0', gateway_mac[0]['lladdr'], ip['ann'], ip['ben'], '6000',
                check=True)
    assert listener.stdout.read().strip() == 'received forged from %s' % ip['ann'], 'the same frame to the gateway arrives'
    # a peering taken back takes its fast path with it, and its traffic stops at ann's host
    h0['cli']('unpeer', 'ann', ip['ben'])
    assert fast_rules(h0) == {}
    assert not pings(room, h0, 'ann', ip['ben']) and not reaches(room, h1, 'ben', 'tcp', ip['ann'], 5000)[0]
    h0['cli']('peer', 'ann', ip['ben'])
    assert pings(room, h0, 'ann', ip['ben'])
    # unpeered students reach nothing of each other, on the same host or another
    for (host, name), target in (((h2, 'cat'), 'ann'), ((h0, 'ann'), 'cat'), ((h0, 'dan'), 'ben'), ((h0, 'dan'), 'ann'),
                                 ((h2, 'cat'), 'ben')):
        assert not pings(room, host, name, ip[target]), (name, target)
        assert not reaches(room, host, name, 'tcp', ip[target], 5000)[0], (name, target)
        assert not reaches(room, host, name, 'udp', ip[target], 5001)[0], (name, target)
    # two unpeered students who both send first (a simultaneous open) open nothing: each host checks its sender.
    # The control: with a hand-made accept of whatever goes into the overlay (the receiver alone deciding), it opens.
    for host in (h0, h2):
        out = sh('nft', '-a', 'list', 'chain', 'ip', 'conductor', 'CONDUCTOR-FORWARD', ns=host['ns']).stdout
        after = [line.split()[-1] for line in out.splitlines() if 'what each container may receive' in line][0]
        sh('nft', 'add', 'rule', 'ip', 'conductor', 'CONDUCTOR-FORWARD', 'position', after, 'iifname', 'cdr*', 'oifname',
           'cdroverlay', 'accept', ns=host['ns'])
    assert 'received hello' in simultaneous_open(room, 5555, (h2, 'cat', ip['dan']), (h0, 'dan', ip['cat']))
    for host in (h0, h2):
        assert 'firewall repaired' in host['cli']('repair').stdout
    assert simultaneous_open(room, 5556, (h2, 'cat', ip['dan']), (h0, 'dan', ip['cat'])) == ['nothing', 'nothing']
    # the course service answers every student, on its exposed port only
    room.serve(h2, 'db', ECHO, 'tcp', 7000)
    room.serve(h2, 'db', ECHO, 'tcp', 7001)
    for name, host in students.items():
        assert reaches(room, host, name, 'tcp', ip['db'], 7000)[0], name
        assert not reaches(room, host, name, 'tcp', ip['db'], 7001)[0], name
    # a 5 MB transfer across the overlay (MTU 1450 under a 1500 veth): no black hole
    ok, answer = reaches(room, h0, 'ann', 'tcp', ip['ben'], 5000, 5 * 2 ** 20)
    assert ok and answer == '%d %s' % (5 * 2 ** 20, hashlib.sha256(b'x' * 5 * 2 ** 20).hexdigest())

    # crafted VXLAN from ann to her own host's VXLAN port: an inner packet that claims to be ben's, for ann herself
    # (ann's chain accepts ben). Control first: with the guard deleted by hand it arrives, so the test can see it.
    listener = room.serve(h0, 'ann', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "2"]; '
                          'exec(open(%r).read())' % RAW)
    mac = '02:cd:0a:58:01:00'  # host 0's device
    gateway = ip['ann'].rsplit('.', 1)[0] + '.%d' % (int(ip['ann'].rsplit('.', 1)[1]) - 1)  # host 0, on ann's veth
    vxlan = ['vxlan', gateway, str(PORT), str(VNI), mac, ip['ben'], ip['ann'], '6000']
    unguard(h0)
    room.inside(h0, 'ann', sys.executable, RAW, *vxlan, check=True)
    assert 'received forged from %s' % ip['ben'] in listener.stdout.read(), 'without the guard it gets through'
    assert 'firewall repaired' in h0['cli']('repair').stdout
    listener = room.serve(h0, 'ann', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "1"]; '
                          'exec(open(%r).read())' % RAW)
    room.inside(h0, 'ann', sys.executable, RAW, *vxlan, check=True)
    assert listener.stdout.read().strip() == 'nothing'
    h0['cli']('addnetwork', '-i', 'dan')  # a way out of the uplink, with NAT to host 0's address
    listener = room.serve(h0, 'ann', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "1"]; '
                          'exec(open(%r).read())' % RAW)
    room.inside(h0, 'dan', sys.executable, RAW, 'vxlan', address(0), *vxlan[2:], check=True)
    assert listener.stdout.read().strip() == 'nothing', 'its host\'s uplink address'
    # ... and to host 1's VXLAN port (NAT would give it host 0's address, which host 1 accepts VXLAN from)
    listener = room.serve(h1, 'ben', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "1"]; '
                          'exec(open(%r).read())' % RAW)
    room.inside(h0, 'dan', sys.executable, RAW, 'vxlan', address(1), str(PORT), str(VNI), '02:cd:0a:58:02:00',
                ip['ann'], ip['ben'], '6000', check=True)
    assert listener.stdout.read().strip() == 'nothing'
    # a forged outer source (host 1's uplink address) from a container to its host's VXLAN port
    listener = room.serve(h0, 'ann', 'import sys; sys.argv[1:] = ["listen", "0.0.0.0", "6000", "1"]; '
                          'exec(open(%r).read())' % RAW)
    room.inside(h0, 'dan', sys.executable, RAW, *(vxlan + [address(1)]), check=True)
    assert listener.stdout.read().strip() == 'nothing'

    # the other hosts' own services are out of reach through the overlay: a server on host 1 itself
    server = subprocess.Popen(['nsenter', '--net=/run/netns/' + h1['ns'], '--', sys.executable, '-c', ECHO, 'tcp', '7100'],
                              stdout=subprocess.PIPE, text=True)
    room.procs.append(server)
    assert server.stdout.readline().strip() == 'ready'
    ben_gateway = ip['ben'].rsplit('.', 1)[0] + '.%d' % (int(ip['ben'].rsplit('.', 1)[1]) - 1)
    control = subprocess.run(['nsenter', '--net=/run/netns/' + h1['ns'], '--', sys.executable, '-c', CLIENT, 'tcp',
                              ben_gateway, '7100', '5'], capture_output=True, text=True, timeout=30, check=False)
    assert control.returncode == 0, 'the server answers on host 1'
    for target in (ben_gateway, '10.88.2.0', address(1)):
        assert not reaches(room, h0, 'ann', 'tcp', target, 7100)[0], target
    # ... nor through -i's NAT, as host 0 (the lab's router is reached that way: the control)
    router = subprocess.Popen(['nsenter', '--net=/run/netns/' + room.lan, '--', sys.executable, '-c', ECHO, 'tcp', '7100'],
                              stdout=subprocess.PIPE, text=True)
    room.procs.append(router)
    assert router.stdout.readline().strip() == 'ready'
    assert reaches(room, h0, 'dan', 'tcp', '10.254.1.1', 7100)[0], 'dan has the internet'
    assert not reaches(room, h0, 'dan', 'tcp', address(1), 7100)[0], 'but not the other lab hosts'

    # a simulated reboot of host 0: its namespace gone with every link and rule, its containers' processes killed
    before = {n: room.address_of(h0, n) for n in ('ann', 'dan')}
    for name in ('ann', 'dan'):
        with open(os.path.join(h0['root'], 'containers', name, 'state.json')) as f:
            os.kill(json.load(f)['supervisor'], signal.SIGKILL)
    sh('ip', 'netns', 'del', h0['ns'])
    deadline = time.time() + 10
    while 'l0' in sh('ip', '-n', room.lan, '-o', 'link').stdout:
        assert time.time() < deadline
        time.sleep(0.05)
    room.plug(h0)
    assert overlay_check(h0)['status'] == 'problem', 'doctor sees the overlay missing'
    restored = h0['cli']('restore')
    assert 'restored overlay' in restored.stdout, restored.stdout
    assert {n: room.address_of(h0, n) for n in ('ann', 'dan')} == before, 'the same addresses'
    assert h0['cli']('overlay', 'ls').stdout.startswith('cdroverlay up: subnet 10.88.1.0/24')
    assert overlay_check(h0)['status'] == 'ok'
    room.serve(h0, 'ann', ECHO, 'tcp', 5000)
    assert pings(room, h0, 'ann', ip['ben']) and reaches(room, h1, 'ben', 'tcp', ip['ann'], 5000)[0], 'the team again'
    counted = fast_rules(h0)  # made again, for the new veth and overlay device
    assert len(counted) == 2 and all(packets > 0 for packets in counted.values()), counted
    assert not pings(room, h2, 'cat', ip['ann'])

    # teardown: no link, rule or route is left
    for host in room.hosts:
        host['cli']('stop', '--all', '-t', '0')
        assert 'overlay removed' in host['cli']('overlay', 'down').stdout
        assert 'no overlay' in host['cli']('overlay', 'down').stdout
        links = sh('ip', '-n', host['ns'], '-o', 'link').stdout
        assert 'cdr' not in links, links
        assert 'conductor' not in sh('ip', 'netns', 'exec', host['ns'], 'nft', 'list', 'ruleset').stdout
        assert '10.88.' not in sh('ip', '-n', host['ns'], 'route').stdout


def fast_rules(host):
    """{(source, destination, 'veth' or 'cdroverlay': the chain's device): packets} of the host's fast path, {} without it.

    Each rule hands a packet on to the device its comment names, by the index it names: it must be that device's
    index now."""
    listing = sh('nft', '-j', 'list', 'table', 'netdev', 'conductor', ns=host['ns'], check=False)
    if listing.returncode:
        return {}
    indexes = {link['ifname']: link['ifindex'] for link in json.loads(sh('ip', '-n', host['ns'], '-j', 'link').stdout)}
    result = {}
    for obj in json.loads(listing.stdout)['nftables']:
        if 'rule' in obj:
            rule = obj['rule']
            matches = {m['match']['left']['payload']['field']: m['match']['right'] for m in rule['expr']
                       if 'match' in m and 'payload' in m['match']['left']}
            out, number = rule['comment'].split(', out ')[1].split(' #')
            assert indexes[out] == int(number) and [e['fwd'] for e in rule['expr'] if 'fwd' in e][0]['dev'] == out
            packets = [e['counter']['packets'] for e in rule['expr'] if 'counter' in e][0]
            result[(matches['saddr'], matches['daddr'], 'cdroverlay' if rule['chain'] == 'cdroverlay' else 'veth')] = packets
    return result


def overlay_check(host):
    result = host['cli']('doctor', '--json', check=False)
    return [c for c in json.loads(result.stdout)['checks'] if c['check'] == 'network.overlay'][0]


def unguard(host):
    """Delete the rules that drop VXLAN from container veths and from anyone else (as a hand edit would): the control."""
    out = sh('nft', '-a', 'list', 'chain', 'ip', 'conductor', 'CONDUCTOR-INPUT', ns=host['ns']).stdout
    handles = [line.split()[-1] for line in out.splitlines() if 'VXLAN from a container' in line or 'VXLAN from anyone' in line]
    assert len(handles) == 2
    for handle in handles:
        sh('nft', 'delete', 'rule', 'ip', 'conductor', 'CONDUCTOR-INPUT', 'handle', handle, ns=host['ns'])


def snapshot(host):
    """The host's links, routes, rules and network records: equal before and after means nothing changed."""
    records = os.path.join(host['root'], 'network')
    files = {n: open(os.path.join(records, n)).read() for n in sorted(os.listdir(records))} if os.path.isdir(records) else {}
    return (sh('ip', '-n', host['ns'], '-o', 'link').stdout, sh('ip', '-n', host['ns'], 'route').stdout,
            sh('ip', 'netns', 'exec', host['ns'], 'nft', 'list', 'ruleset').stdout, files)


def test_bad_input_is_one_clear_error_and_changes_nothing(tmp_path, base_key):
    room = Classroom(tmp_path, count=2)
    try:
        h0, h1 = room.hosts
        cli = h0['cli']
        cli('build', 'img', conductorfile(tmp_path, 'plain', 'FROM debian:bookworm\n'))
        cli('run', '-d', 'img', 'ann', '--', 'sleep', 'infinity')
        assert 'has no network' in cli.fails('peer', 'ann', '10.88.2.6')
        fresh = snapshot(h0)
        remote = '%s=%s' % (address(1), subnet(1))
        assert 'overlap' in cli.fails('overlay', 'up', '--subnet', subnet(0), '%s=10.88.1.128/25' % address(1))
        assert 'listed twice' in cli.fails('overlay', 'up', '--subnet', subnet(0), remote, '%s=10.88.3.0/24' % address(1))
        assert 'invalid VNI' in cli.fails('overlay', 'up', '--subnet', subnet(0), '--vni', '16777216', remote)
        assert 'invalid UDP port' in cli.fails('overlay', 'up', '--subnet', subnet(0), '--port', '70000', remote)
        sh('ip', '-n', h0['ns'], 'link', 'set', 'lan0', 'mtu', '1300')
        assert 'MTU of 1300' in cli.fails('overlay', 'up', '--subnet', subnet(0), remote)
        sh('ip', '-n', h0['ns'], 'link', 'set', 'lan0', 'mtu', '1500')
        # another program's VXLAN device on the same VNI and port: the kernel refuses ours, after the rules went in
        sh('ip', '-n', h0['ns'], 'link', 'add', 'theirs', 'type', 'vxlan', 'id', str(VNI), 'dstport', str(PORT), 'local',
           address(0), 'dev', 'lan0')
        fresh = snapshot(h0)
        assert 'the overlay could not be made' in cli.fails('overlay', 'up', '--subnet', subnet(0), remote)
        assert snapshot(h0) == fresh, 'the rules taken out again, no device, no record'
        sh('ip', '-n', h0['ns'], 'link', 'del', 'theirs')
        fresh = snapshot(h0)
        assert 'overlaps 10.254.1.0/24' in cli.fails('overlay', 'up', '--subnet', '10.254.0.0/24', '--network',
                                                     '10.254.0.0/16', '%s=10.254.1.0/24' % address(1))
        assert snapshot(h0) == fresh
        cli('addnetwork', 'ann')  # from the default pool, 192.168.0.0/16: outside the overlay's subnet
        before = snapshot(h0)
        assert 'no classroom overlay' in cli.fails('peer', 'ann', '10.88.2.6')
        assert 'outside this host\'s overlay subnet' in cli.fails('overlay', 'up', '--subnet', subnet(0), remote)
        assert snapshot(h0) == before
        cli('stop', 'ann')
        cli('run', '-d', 'img', 'ann', '--', 'sleep', 'infinity')
        room.up(h0)
        cli('addnetwork', 'ann')
        before = snapshot(h0)
        assert "in no other host's subnet" in cli.fails('peer', 'ann', '10.88.1.6')
        assert "in no other host's subnet" in cli.fails('peer', 'ann', '10.99.0.6')
        assert "no container named 'nobody'" in cli.fails('peer', 'nobody', '10.88.2.6')
        assert 'cannot be a classroom service' in cli.fails('addnetwork', '--classroom-service', 'ann')
        assert snapshot(h0) == before
        # an address given (--ip) is kept; one that is taken or not a container's is refused
        cli('run', '-d', 'img', 'ben', '--', 'sleep', 'infinity')
        assert "cannot be a container's" in cli.fails('addnetwork', '--ip', '10.88.1.5', 'ben')  # a /30's host address
        taken = room.address_of(h0, 'ann')
        assert 'which container' in cli.fails('addnetwork', '--ip', taken, 'ben')
        assert snapshot(h0) == before
        cli('addnetwork', '--ip', '10.88.1.10', 'ben')
        assert room.address_of(h0, 'ben') == '10.88.1.10'
        cli('peer', 'ann', 'ben')
        cli('addnetwork', '--ip', '10.88.1.14', 'ben')  # moved: ann's rule for ben follows
        assert pings(room, h0, 'ann', '10.88.1.14') and pings(room, h0, 'ben', room.address_of(h0, 'ann'))
        # remote peers go with the subnets they were in: another plan for host 1, then no overlay
        cli('peer', 'ann', '10.88.2.6')
        assert 'peer 10.88.2.6 on another host' in helpers.firewall_rules(h0['ns'])
        cli('overlay', 'up', '--subnet', subnet(0), '%s=10.88.5.0/24' % address(1))
        assert '10.88.2.6' not in helpers.firewall_rules(h0['ns'])
        cli('peer', 'ann', '10.88.5.6')
        cli('overlay', 'down')
        assert '10.88.5.6' not in helpers.firewall_rules(h0['ns']) and 'cdroverlay' not in helpers.firewall_rules(h0['ns'])
        assert pings(room, h0, 'ann', '10.88.1.14'), 'the containers keep their addresses and peerings'
    finally:
        room.close()
