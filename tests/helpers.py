# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the test suites: the engine's import path, and one debootstrap base per test run.

Run as a script, it makes that base (the Makefile does so before the Ansible tests).
"""
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(CHECKOUT, 'bin', 'conductor')
CLI_MODULE = os.path.join(CHECKOUT, 'bin', 'conductor_cli.py')
CACHE = os.environ.get('CONDUCTOR_TEST_CACHE') or os.path.join(CHECKOUT, '.cache', 'test-root')
BASE_FROM = 'debian:bookworm'
# The prefix that runs a command in the machine's own network namespace, for the few that need its network
# (apt in a RUN step of a Conductorfile of ours, built with --network host): once private_network() has run,
# the rest of the test run is in one of its own. (PID 1's namespace file may be closed to us: keep our own.)
MACHINE_NET = []


def private_network():
    """Move this test process, and so every command the tests start, into a network namespace of its own
    (loopback up): each RUN step makes a veth, conductor's chains and ip_forward in the namespace its build
    runs in, and the tests must leave the machine's network as they found it."""
    load_cli()
    from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls
    if not MACHINE_NET:
        machine = os.open('/proc/self/ns/net', os.O_RDONLY)  # kept open for the whole run
        MACHINE_NET[:] = ['nsenter', '--net=/proc/%d/fd/%d' % (os.getpid(), machine), '--']
    _syscalls.unshare(_syscalls.CLONE_NEWNET)
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)


def load_cli():
    """Import bin/conductor as a module; doing so makes the engine importable too."""
    if 'conductor_cli' not in sys.modules:
        loader = importlib.machinery.SourceFileLoader('conductor_cli', CLI_MODULE)
        spec = importlib.util.spec_from_loader('conductor_cli', loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        sys.modules['conductor_cli'] = module
    return sys.modules['conductor_cli']


def ensure_base():
    """Build the default debian:bookworm base once into CACHE (reused across runs); return its key."""
    load_cli()
    from ansible_collections.cs695.conductor.plugins.module_utils import _bases
    from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
    store = Store(CACHE, config={})
    store.prepare()
    spec = _bases.base_spec(BASE_FROM, {})
    return _bases.ensure_base(store.root, spec, out=lambda line: None)


def seed(root):
    """Give a fresh state root the shared base, as hard links: no debootstrap, a few ms."""
    key = ensure_base()
    os.makedirs(os.path.join(root, 'bases'), exist_ok=True)
    target = os.path.join(root, 'bases', key)
    if not os.path.exists(target):
        subprocess.check_call(['cp', '-al', os.path.join(CACHE, 'bases', key), target])
    return key


PYTHON_IMAGE = ('FROM debian:bookworm\nRUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
                '--no-install-recommends python3 python3-apt sudo && rm -rf /var/lib/apt/lists/*\n')


def ensure_image(name, conductorfile=PYTHON_IMAGE):
    """Build an image into CACHE (the default: bookworm with python3, python3-apt and sudo, for Ansible
    modules); return its layer keys. The first build needs the mirror (about 5 s), later ones are cache hits."""
    ensure_base()
    folder = os.path.join(CACHE, 'images-src', name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'Conductorfile'), 'w') as f:
        f.write(conductorfile)
    subprocess.run(MACHINE_NET + [sys.executable, CLI, '--root', CACHE, 'build', '--network', 'host', name,
                                  os.path.join(folder, 'Conductorfile')],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull))
    with open(os.path.join(CACHE, 'images', name + '.json')) as f:
        return json.load(f)['layers']


def seed_image(root, name, conductorfile=PYTHON_IMAGE):
    """Give a fresh state root an image of CACHE (ensure_image), as hard links of its layers."""
    seed(root)
    layers = ensure_image(name, conductorfile)
    for folder in ('layers', 'images'):
        os.makedirs(os.path.join(root, folder), mode=0o700, exist_ok=True)
    for key in layers:
        if not os.path.exists(os.path.join(root, 'layers', key)):
            subprocess.check_call(['cp', '-al', os.path.join(CACHE, 'layers', key), os.path.join(root, 'layers', key)])
    shutil.copy(os.path.join(CACHE, 'images', name + '.json'), os.path.join(root, 'images', name + '.json'))


def firewall_rules(ns):
    """The rules of network namespace `ns` as text, legacy (iptables-legacy-save) and nftables (nft list ruleset):
    whichever backend conductor chose, its rules are in here."""
    legacy = subprocess.run(['ip', 'netns', 'exec', ns, 'iptables-legacy-save'], capture_output=True, text=True,
                            check=True).stdout
    return legacy + subprocess.run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'ruleset'], capture_output=True,
                                   text=True, check=True).stdout


def mounts_under(path):
    """Mount points under path in this mount namespace."""
    with open('/proc/self/mountinfo') as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def stop_all(root):
    """Stop every container under root: a test's containers never outlive it."""
    load_cli()
    from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
    from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
    containers = Containers(Store(root, config={}))
    for name in containers.names():
        if containers.config(name):
            containers.stop(name, timeout=0)
            containers.cgroup(name).remove()  # the host's cgroup tree is left as the test found it


def remove_root(root):
    load_cli()
    from ansible_collections.cs695.conductor.plugins.module_utils._common import remove_tree
    try:
        remove_tree(root)  # a loop: a test's 5000-deep tree goes too (shutil.rmtree recurses)
    except OSError:
        pass  # a mount left behind: the fixture reports it


class Conductor:
    """Runs the CLI on one state root; with netns, inside that network namespace."""

    def __init__(self, root, netns=None):
        self.root, self.netns = root, netns

    def __call__(self, *args, check=True, **kw):
        # nsenter, not ip netns exec: that one mounts a sysfs of its own over /sys, hiding /sys/fs/cgroup
        prefix = ['nsenter', '--net=/run/netns/' + self.netns, '--'] if self.netns else []
        result = subprocess.run(prefix + [sys.executable, CLI, '--root', self.root] + [str(a) for a in args],
                                capture_output=True, text=True, check=False, **kw)
        if check and result.returncode != 0:
            command = ' '.join(map(str, args))
            raise AssertionError('conductor %s failed (%d):\n%s%s' % (command, result.returncode, result.stdout, result.stderr))
        return result

    def fails(self, *args, **kw):
        result = self(*args, check=False, **kw)
        assert result.returncode != 0, result.stdout
        assert result.stderr.count('\n') == 1, 'not one line: %r' % result.stderr
        return result.stderr

    def listing(self):
        """Every path under the root, with the mtime of each file: 'nothing changed' means this is equal."""
        entries = []
        for top, dirs, files in os.walk(self.root):
            if top == self.root:  # caches and lock files: what a failed command may leave behind is the rest
                dirs[:] = [d for d in dirs if d not in ('bases', 'seccomp', 'locks')]
            for name in dirs + files:
                path = os.path.join(top, name)
                st = os.lstat(path)
                entries.append((os.path.relpath(path, self.root), 0 if name in dirs else st.st_mtime_ns))
        return sorted(entries)


if __name__ == '__main__':
    print('test base %s in %s' % (ensure_base(), CACHE))
    print('test image py (python3, for the connection plugin) in %s: layers %s' % (CACHE, ensure_image('py')))
