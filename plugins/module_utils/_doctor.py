# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""`conductor doctor` and conductor_info: what this host lacks for Conductor, each with its fix.

    checks(store) -> [{'check': 'kernel.overlayfs', 'status': 'ok' | 'warning' | 'problem',
                       'detail': what was found, 'fix': how to fix it (None when ok)}, ...]

A problem keeps a feature from working (containers, images, their network); a warning names what works with
a limit or needs attention. Every check only reads: files under /proc and /sys, the state root, the
firewall's chains. PROC, SYS and MODULES are where it reads the kernel's, so tests can fake a host's answers.
"""

import importlib.util
import json
import os
import shutil
import subprocess

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, human_size
from ansible_collections.cs695.conductor.plugins.module_utils import _bases
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups
from ansible_collections.cs695.conductor.plugins.module_utils import _nftables
from ansible_collections.cs695.conductor.plugins.module_utils import _overlay
from ansible_collections.cs695.conductor.plugins.module_utils import _quota

PROC, SYS, MODULES = '/proc', '/sys', '/lib/modules'
NAMESPACES = ('pid', 'uts', 'net', 'mnt', 'ipc')
CGROUP_CONTROLLERS = ('cpu', 'memory', 'pids')
FREE_WARNING, FREE_PROBLEM = 4 << 30, 512 << 20  # a debootstrap base is about 300 MB, a build more
LIBRARIES = ((('seccomp', 'pyseccomp'), 'libseccomp', 'python3-seccomp (or pip install pyseccomp)', False),
             (('iptc',), 'python-iptables', 'python3-iptables (only the iptables backend needs it)', True))
NFT_RULE = '; '.join('%s "cdr*" meta mark & 0x%08x == 0x%08x accept' % (key, _nftables.MARK, _nftables.MARK)
                     for key in ('iifname', 'oifname'))


def _check(name, problem=None, detail='', fix=None, warning=False):
    status = 'ok' if problem is None else ('warning' if warning else 'problem')
    return {'check': name, 'status': status, 'detail': problem or detail, 'fix': fix if problem else None}


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def kernel() -> list:
    found = []
    filesystems = _read(os.path.join(PROC, 'filesystems')) or ''
    module = os.path.join(MODULES, os.uname().release, 'kernel/fs/overlayfs')
    overlay = 'overlay' in filesystems.split() or os.path.isdir(module)
    found.append(_check('kernel.overlayfs', None if overlay else 'overlayfs is not in the kernel',
                        'overlayfs', 'modprobe overlay, or use a kernel built with CONFIG_OVERLAY_FS'))
    missing = [n for n in NAMESPACES if not os.path.exists(os.path.join(PROC, 'self/ns', n))]
    found.append(_check('kernel.namespaces', 'namespaces missing: %s' % ', '.join(missing) if missing else None,
                        ', '.join(NAMESPACES), 'use a kernel with CONFIG_%s_NS' % '_NS, CONFIG_'.join(
                            n.upper() for n in missing)))
    try:
        version, tree = _cgroups.hierarchies(_read(os.path.join(PROC, 'self/mountinfo')))
    except ConductorError as e:
        version, tree = 'v1', {}
        found.append(_check('kernel.cgroups', str(e), fix='mount the cgroup file system'))
    if version == 'v2':
        controllers = (_read(os.path.join(tree, 'cgroup.controllers')) or '').split()
        lacking = [c for c in CGROUP_CONTROLLERS if c not in controllers]
    else:
        lacking = [c for c in CGROUP_CONTROLLERS if c not in tree]
    found.append(_check('kernel.cgroups', 'cgroup %s lacks the %s controller(s): limits on them cannot be set'
                        % (version, ', '.join(lacking)) if lacking else None,
                        'cgroup %s with %s' % (version, ', '.join(CGROUP_CONTROLLERS)),
                        'boot with cgroup_enable=%s (or systemd.unified_cgroup_hierarchy=1)' % ','.join(lacking)))
    status = _read(os.path.join(PROC, 'self/status')) or ''
    seccomp = 'Seccomp:' in status and os.path.exists(os.path.join(PROC, 'sys/kernel/seccomp/actions_avail'))
    found.append(_check('kernel.seccomp', None if seccomp else 'the kernel has no seccomp filters',
                        'seccomp filters', 'use a kernel with CONFIG_SECCOMP_FILTER: containers cannot be confined'))
    vxlan = os.path.isdir(os.path.join(SYS, 'module/vxlan')) or os.path.isdir(
        os.path.join(MODULES, os.uname().release, 'kernel/drivers/net/vxlan'))
    found.append(_check('kernel.vxlan', None if vxlan else 'no vxlan module: a classroom overlay cannot be made',
                        'vxlan', 'install the kernel modules package (linux-modules-extra on Ubuntu)', warning=True))
    return found


def firewall(config: dict) -> list:
    """The backend, its library, ip_forward, and forward chains of other tables whose policy would drop
    container traffic."""
    found = []
    try:
        backend = _nftables.backend(config)
        why = _nftables.detect()[1] if (os.environ.get('CONDUCTOR_FIREWALL_BACKEND') or config.get(
            'FIREWALL_BACKEND') or 'auto') == 'auto' else 'FIREWALL_BACKEND=%s' % backend
    except ConductorError as e:
        return [_check('firewall.backend', str(e), fix='set FIREWALL_BACKEND to auto, nftables or iptables')]
    try:
        if backend == 'nftables':
            _nftables.Nft()
        elif importlib.util.find_spec('iptc') is None:  # found, not loaded: loading it loads legacy tables
            raise ConductorError('python-iptables is not installed: apt-get install python3-iptables')
        found.append(_check('firewall.backend', detail='%s (%s)' % (backend, why)))
    except ConductorError as e:
        found.append(_check('firewall.backend', '%s (%s): %s' % (backend, why, e),
                            fix='install the library it names, or choose the other backend with FIREWALL_BACKEND'))
    found += forward_policies(backend)
    forwarding = (_read(os.path.join(PROC, 'sys/net/ipv4/ip_forward')) or '0').strip()
    found.append(_check('firewall.ip_forward', None if forwarding == '1' else
                        'net.ipv4.ip_forward is 0: containers reach nothing beyond the host until addnetwork sets it',
                        'net.ipv4.ip_forward=1',
                        'addnetwork sets it; to keep it across reboots and against other tools, write '
                        'net.ipv4.ip_forward=1 into /etc/sysctl.d/90-conductor.conf', warning=True))
    return found


def forward_policies(backend: str) -> list:
    """A check per forward chain of another table whose policy is drop: the nftables backend lets container
    traffic through it with two accepts of its own (until that table is loaded again); the iptables backend
    cannot."""
    try:
        change = _nftables.Change()
        dropping = change.state()[1]
    except ConductorError:
        return []  # no libnftables: no nftables chains to read (the backend's check says what is missing)
    found = [] if dropping else [_check('firewall.forward_policy', detail='no forward chain of another table drops '
                                        'container traffic')]
    for chain in dropping:
        where = '%s %s, chain %s' % (chain['family'], chain['table'], chain['name'])
        name = 'firewall.forward_policy.%s.%s.%s' % (chain['family'], chain['table'], chain['name'])
        if backend != 'nftables':
            found.append(_check(name, 'table %s has policy drop: it drops container traffic the legacy backend '
                                'allowed' % where, fix='set FIREWALL_BACKEND=nftables (or auto) in conductor.conf and '
                                'run conductor repair'))
        elif len(change.foreign_rules(chain)) == 2:
            found.append(_check(name, 'table %s has policy drop: conductor added its accept of what its own chain '
                                'accepted, which goes when that table is loaded again (firewall-cmd --reload, nft -f)'
                                % where,
                                fix=_persist_fix(chain), warning=True))
        else:
            found.append(_check(name, 'table %s has policy drop and drops container traffic: conductor adds its '
                                'accepts at its next network change (or now: conductor repair)' % where,
                                fix='conductor repair; then ' + _persist_fix(chain)))
    return found


def _persist_fix(chain):
    if chain['table'] == 'firewalld':
        return 'apply the conductor_host role with conductor_host_firewalld_zone: true (a firewalld zone for cdr+)'
    if chain['family'] == 'ip' and chain['table'] == 'filter':
        return ("with ufw: apply the conductor_host role (ufw route allow in on cdr+ and out on cdr+); else add "
                "iptables -A FORWARD -i cdr+ -m mark --mark 0x%08x/0x%08x -j ACCEPT (and the same with -o cdr+) to the "
                "host's saved rules"
                % (_nftables.MARK, _nftables.MARK))
    return 'add to chain %s of table %s %s in /etc/nftables.conf, last in the chain: %s' % (
        chain['name'], chain['family'], chain['table'], NFT_RULE)


def bases() -> list:
    found = [_check('images.debootstrap', None if shutil.which('debootstrap') else 'debootstrap is not installed: '
                    'FROM debian: and ubuntu: cannot be built', 'debootstrap', 'apt-get install debootstrap')]
    for distro, info in sorted(_bases.DISTROS.items()):
        present = os.path.exists(info['keyring'])
        found.append(_check('images.keyring.%s' % distro, None if present else
                            '%s is missing: FROM %s: cannot be verified' % (info['keyring'], distro), info['keyring'],
                            'apt-get install %s' % info['keyring_package'], warning=distro != 'debian'))
    return found


def overlay(root: str) -> list:
    """The classroom overlay, when this host has one: iproute2, and its device as the record asks."""
    record = _read(os.path.join(root, 'network', 'overlay.json'))
    if record is None:
        return []
    missing = [tool for tool in ('ip', 'bridge') if not shutil.which(tool)]
    if missing:
        return [_check('network.overlay', '%s not installed: the overlay cannot be made' % ' and '.join(missing), '',
                       'apt-get install iproute2')]
    plan = json.loads(record)
    about = 'subnet %s, %d other host(s), VNI %d, UDP %d' % (plan['subnet'], len(plan['remotes']), plan['vni'], plan['port'])
    return [_check('network.overlay', None if _overlay.matches(plan) else 'the classroom overlay (%s) is recorded, but its '
                   'device %s is missing or differs' % (about, _overlay.DEVICE), about,
                   'conductor restore (at boot, as the role installs it), or conductor overlay up')]


def storage(root: str) -> list:
    found = []
    try:
        _quota.require(root)
        found.append(_check('storage.quotas', detail='project quotas on %s' % root))
    except ConductorError as e:
        found.append(_check('storage.quotas', '--storage-size cannot be used here', fix=str(e), warning=True))
    folder = root
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    low = free < FREE_WARNING
    found.append(_check('storage.free', '%s free on %s' % (human_size(free), folder) if low else None,
                        '%s free on %s' % (human_size(free), folder),
                        'free space there (conductor rmcache, conductor image prune), or set ROOT in conductor.conf to '
                        'a larger file system', warning=free >= FREE_PROBLEM))
    return found


def libraries() -> list:
    """The Python libraries (python3-nftables is the firewall check's: only its backend needs it)."""
    found = []
    for modules, name, package, optional in LIBRARIES:
        present = any(importlib.util.find_spec(m) is not None for m in modules)
        found.append(_check('python.%s' % name, None if present else '%s is not installed' % name, name,
                            'apt-get install %s, or apply the conductor_host role' % package, warning=optional))
    return found


def checks(store) -> list:
    """Every check, in order: kernel, firewall, the overlay, images, storage, the supervisor's Lua, Python libraries."""
    return kernel() + firewall(store.config) + overlay(store.root) + bases() + storage(store.root) + supervisor() + \
        libraries()


def supervisor() -> list:
    """Lua 5.3 with luaposix, which each container's supervisor and ports' holder run on."""
    from ansible_collections.cs695.conductor.plugins.module_utils._runtime import find_lua, lua_command
    fix = 'apt-get install lua5.3 lua-posix, or apply the conductor_host role'
    try:
        where = '%s, luaposix in %s' % find_lua()
        lua, argv = lua_command('conductor-doctor', "for _, m in ipairs({'unistd', 'fcntl', 'sys.wait', 'signal'}) do "
                                "require('posix.' .. m) end")
    except ConductorError as e:
        return [_check('runtime.lua', str(e), fix=fix)]
    result = subprocess.run(argv, executable=lua, capture_output=True, text=True, check=False, cwd='/')
    problem = None if result.returncode == 0 else 'luaposix does not load: %s' % ' '.join(result.stderr.split())[:300]
    return [_check('runtime.lua', problem, where, fix)]


def summary(results: list) -> str:
    problems = [r for r in results if r['status'] == 'problem']
    warnings = [r for r in results if r['status'] == 'warning']
    return '%d problem(s), %d warning(s)' % (len(problems), len(warnings))
