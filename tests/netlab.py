# SPDX-License-Identifier: GPL-3.0-or-later
"""A private network lab for the networking tests: nothing touches the machine's own network.

    netns cdt-h-<pid>  the 'host': conductor runs here, its iptables are its own
        up0 203.0.113.2/24, default route via 203.0.113.1
    netns cdt-i-<pid>  the 'internet': up1 203.0.113.1/24 and an HTTP server on port 80

backend: the firewall backend conductor is told to use (CONDUCTOR_FIREWALL_BACKEND), or None for auto.
"""
import os
import signal
import subprocess
import sys
import time

HOST_IP, INTERNET_IP = '203.0.113.2', '203.0.113.1'


def sh(*argv, ns=None, check=True, **kw):
    prefix = ['ip', 'netns', 'exec', ns] if ns else []
    return subprocess.run(prefix + list(argv), check=check, capture_output=True, text=True, **kw)


def without_counter(words):
    """An nftables rule's words without its `counter packets N bytes N`."""
    if 'counter' in words and words[words.index('counter') + 1:][:1] == ['packets']:
        at = words.index('counter')
        return words[:at] + words[at + 5:]
    return words


def make_lan(name):
    """A simulated LAN: network namespace `name` with a bridge br0, up."""
    sh('ip', 'netns', 'add', name)
    for args in (['link', 'set', 'lo', 'up'], ['link', 'add', 'br0', 'type', 'bridge'], ['link', 'set', 'br0', 'up']):
        sh('ip', '-n', name, *args)


def plug(lan, ns, index, address):
    """Lab host namespace `ns` (made if missing) on the LAN: its lan0 with address/24, port l<index> of br0."""
    if ns not in sh('ip', 'netns', 'list').stdout.split():
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', '-n', lan, 'link', 'add', 'l%d' % index, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', ns)
    sh('ip', '-n', lan, 'link', 'set', 'l%d' % index, 'master', 'br0', 'up')
    sh('ip', '-n', ns, 'addr', 'add', address + '/24', 'dev', 'lan0')
    sh('ip', '-n', ns, 'link', 'set', 'lan0', 'up')


class NetLab:
    def __init__(self, backend=None):
        self.backend = backend
        self.host, self.internet = 'cdt-h-%d' % os.getpid(), 'cdt-i-%d' % os.getpid()
        sh('ip', 'netns', 'add', self.internet)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.internet)
        self._make_host()
        server = ('import http.server\n'
                  'class H(http.server.BaseHTTPRequestHandler):\n'
                  '    def do_GET(self):\n'
                  '        self.send_response(200); self.end_headers(); self.wfile.write(b"internet ok\\n")\n'
                  '    def log_message(self, *a): pass\n'
                  'http.server.HTTPServer(("%s", 80), H).serve_forever()\n' % INTERNET_IP)
        self.server = subprocess.Popen(['ip', 'netns', 'exec', self.internet, sys.executable, '-c', server])
        deadline = time.time() + 10
        while self.fetch(self.internet, 'http://%s/' % INTERNET_IP) != 'internet ok\n':
            assert time.time() < deadline, 'the internet namespace did not come up'
            time.sleep(0.05)

    def _make_host(self):
        sh('ip', 'netns', 'add', self.host)
        sh('ip', 'link', 'set', 'lo', 'up', ns=self.host)
        sh('ip', 'link', 'add', 'up0', 'netns', self.host, 'type', 'veth', 'peer', 'name', 'up1', 'netns', self.internet)
        sh('ip', 'addr', 'add', HOST_IP + '/24', 'dev', 'up0', ns=self.host)
        sh('ip', 'link', 'set', 'up0', 'up', ns=self.host)
        sh('ip', 'route', 'add', 'default', 'via', INTERNET_IP, ns=self.host)
        sh('ip', 'addr', 'add', INTERNET_IP + '/24', 'dev', 'up1', ns=self.internet)
        sh('ip', 'link', 'set', 'up1', 'up', ns=self.internet)

    def reboot_host(self):
        """What a reboot leaves of the host's network: a fresh namespace, its uplink, no veth, no rule."""
        sh('ip', 'netns', 'del', self.host)
        deadline = time.time() + 10
        while 'up1' in sh('ip', '-o', 'link', ns=self.internet).stdout:  # the old pair goes with the old namespace
            assert time.time() < deadline, 'the old host namespace did not go away'
            time.sleep(0.05)
        self._make_host()

    def fetch(self, ns, url):
        """GET url from inside netns ns: the body, or None if it cannot be reached within 2 s."""
        code = ('import sys, urllib.request\n'
                'try: sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())\n'
                'except Exception as e: sys.exit(1)\n')
        result = sh(sys.executable, '-c', code, url, ns=ns, check=False)
        return result.stdout if result.returncode == 0 else None

    def links(self):
        return sh('ip', '-o', 'link', ns=self.host).stdout

    def iptables(self):
        """The host namespace's rules, legacy and nftables, counters dropped: equal before and after means
        untouched.

        A legacy table with no rules and ACCEPT policies is left out: the kernel keeps a legacy table once it
        is used in a namespace, and an empty one filters exactly as a missing one does.
        """
        out = sh('iptables-legacy-save', ns=self.host).stdout
        tables, current = [], None
        for line in out.splitlines():
            if line.startswith('*'):
                current = [line]
                tables.append(current)
            elif current is not None and not line.startswith('#'):
                current.append(line.split(' [')[0])
        legacy = [line for table in tables
                  if any(line.startswith("-A") or (line.startswith(":") and line.split()[1] not in ("ACCEPT", "-")) for line in table)
                  for line in table]
        return legacy + [' '.join(without_counter(line.split())) for line in
                         sh('nft', 'list', 'ruleset', ns=self.host).stdout.splitlines() if line.strip()]

    def host_iptables(self):
        """The iptables command of the host's own rules: iptables-nft where conductor writes nftables (the
        ufw case), else legacy. Without a backend given, the one conductor picks (auto)."""
        return 'iptables-nft' if self.nftables() else 'iptables-legacy'

    def nftables(self):
        """Whether conductor writes nftables here: the backend given, else the one it picks (auto)."""
        from ansible_collections.cs695.conductor.plugins.module_utils import _nftables
        return (self.backend or _nftables.backend({})) == 'nftables'

    def saved(self):
        """conductor's rules in order: [(table or chain, rule, packet count)], each rule with its chain's name
        (as iptables-save's -A CHAIN ...)."""
        rules, where = [], None
        if self.nftables():
            for line in sh('nft', 'list', 'table', 'ip', 'conductor', ns=self.host, check=False).stdout.splitlines():
                words = line.split()
                if line.startswith('\tchain '):
                    where = words[1]
                elif line.startswith('\t\t') and words[0] != 'type':
                    count = int(words[words.index('packets') + 1]) if 'packets' in words else 0
                    rules.append((where, ' '.join(['-A', where] + without_counter(words)), count))
            return rules
        for line in sh('iptables-legacy-save', '-c', ns=self.host).stdout.splitlines():
            if line.startswith('*'):
                where = line[1:]
            elif line.startswith('['):
                counters, rule = line.split(' ', 1)
                rules.append((where, rule, int(counters.strip('[]').split(':')[0])))
        return rules

    def flush_conductor_chains(self):
        """What another tool's iptables -F (or nft flush) does to conductor's chains in the lab's host."""
        if self.nftables():
            for line in sh('nft', 'list', 'table', 'ip', 'conductor', ns=self.host).stdout.splitlines():
                if line.startswith('\tchain '):
                    sh('nft', 'flush', 'chain', 'ip', 'conductor', line.split()[1], ns=self.host)
            return
        for table in ('filter', 'nat'):
            out = sh('iptables-legacy-save', '-t', table, ns=self.host).stdout
            for chain in [line[1:].split()[0] for line in out.splitlines() if line.startswith(':CONDUCTOR-')]:
                sh('iptables-legacy', '-t', table, '-F', chain, ns=self.host)

    def lose_everything(self):
        """What a reboot leaves of conductor's rules: nothing (no chains of ours, no jumps)."""
        if self.nftables():
            sh('nft', 'delete', 'table', 'ip', 'conductor', ns=self.host)
            return
        for table in ('filter', 'nat'):
            sh('iptables-legacy', '-t', table, '-F', ns=self.host)
            sh('iptables-legacy', '-t', table, '-X', ns=self.host)

    def delete_first_rule(self, chain):
        """A rule deleted by hand: the first of one of conductor's chains."""
        if self.nftables():
            out = sh('nft', '-a', 'list', 'chain', 'ip', 'conductor', chain, ns=self.host).stdout
            handle = [line.split()[-1] for line in out.splitlines() if line.startswith('\t\t') and '# handle' in line][0]
            sh('nft', 'delete', 'rule', 'ip', 'conductor', chain, 'handle', handle, ns=self.host)
            return
        table = ['-t', 'nat'] if chain.endswith(('-DNAT', '-SNAT')) else []
        sh('iptables-legacy', *table, '-D', chain, '1', ns=self.host)

    def close(self):
        self.server.send_signal(signal.SIGTERM)
        self.server.wait()
        for ns in (self.host, self.internet):
            sh('ip', 'netns', 'del', ns, check=False)


# A TCP (reads to the end, answers with the length and SHA-256) or UDP (echoes) server, and its client: run with
# the host's Python inside a container's network namespace (nsenter --net=/proc/PID/ns/net), as the image has none.
ECHO = '''
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port))
if kind == 'tcp':
    s.listen(16)
print('ready', flush=True)
while True:
    if kind == 'tcp':
        c, peer = s.accept()
        data = b''
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.sendall(('%d %s' % (len(data), __import__('hashlib').sha256(data).hexdigest())).encode())
        c.close()
    else:
        data, peer = s.recvfrom(2048)
        s.sendto(b'echo ' + data, peer)
'''

CLIENT = '''
import socket, sys
kind, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM)
s.settimeout(3)
try:
    if kind == 'tcp':
        s.connect((host, port))
        s.sendall(b'x' * size)
        s.shutdown(socket.SHUT_WR)
        print(s.recv(200).decode())
    else:
        s.sendto(b'hello', (host, port))
        print(s.recv(200).decode())
except OSError as e:
    print('failed: %s' % e)
    sys.exit(1)
'''
