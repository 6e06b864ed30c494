# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Base root filesystems made by debootstrap, cached under bases/<key>/ by everything that shapes them."""

import glob
import os
import shutil
import subprocess
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, digest, locked, read_json, temp_name, tree_size, utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils import _progress, _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

DISTROS = {
    'debian': {
        'suites': ('buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'sid'),
        'mirror': 'http://deb.debian.org/debian',
        'keyring': '/usr/share/keyrings/debian-archive-keyring.gpg',
        'keyring_package': 'debian-archive-keyring',
        'components': 'main',
        'script': 'sid',
    },
    'ubuntu': {
        'suites': ('focal', 'jammy', 'noble', 'oracular', 'plucky', 'questing'),
        'mirror': 'http://archive.ubuntu.com/ubuntu',
        'keyring': '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
        'keyring_package': 'ubuntu-keyring',
        'components': 'main,universe',
        'script': 'gutsy',
    },
}
# Tags as Docker users write them, mapped to the suite debootstrap gets. The aliases follow Debian's and
# Ubuntu's releases as of 2026-11 (Debian 13 trixie is stable; Ubuntu 24.04 noble is the latest LTS).
TAGS = {
    'debian': {'10': 'buster', '11': 'bullseye', '12': 'bookworm', '13': 'trixie', '14': 'forky',
               'oldstable': 'bookworm', 'stable': 'trixie', 'testing': 'forky', 'unstable': 'sid', 'latest': 'trixie'},
    'ubuntu': {'20.04': 'focal', '22.04': 'jammy', '24.04': 'noble', '24.10': 'oracular', '25.04': 'plucky',
               '25.10': 'questing', 'latest': 'noble', 'rolling': 'questing'},
}
REGISTRY_PREFIXES = ('docker.io/library/', 'docker.io/', 'library/')
DEFAULT_VARIANT = 'minbase'
DEFAULT_INCLUDE = ('iproute2', 'iputils-ping', 'procps')
VARIANTS = ('minbase', 'buildd', 'fakechroot', '-')
SCRIPTS = '/usr/share/debootstrap/scripts'


def _split(ref):
    for prefix in REGISTRY_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    distro, dummy, tag = ref.partition(':')
    return distro, tag


def is_base_reference(ref):
    """debian[:tag] or ubuntu[:tag] (also as docker.io/library/debian:tag): a debootstrap base."""
    return _split(ref)[0] in DISTROS


def resolve(ref):
    """(distro, suite) for a FROM reference: a codename, a version number, an alias such as stable or
    latest, no tag at all, and any of those with -slim (minbase is the default variant anyway)."""
    distro, tag = _split(ref)
    tag = tag or 'latest'
    tag = tag[:-len('-slim')] if tag.endswith('-slim') else tag
    suite = TAGS[distro].get(tag, tag)
    if suite not in DISTROS[distro]['suites']:
        forms = sorted(DISTROS[distro]['suites']) + sorted(TAGS[distro])
        raise ConductorError('unknown %s tag %r in FROM %s: use one of %s, each optionally with -slim'
                             % (distro, tag, ref, ', '.join(forms)))
    return distro, suite


def host_arch():
    """Debian's name for this machine's architecture."""
    known = {'x86_64': 'amd64', 'aarch64': 'arm64', 'ppc64le': 'ppc64el', 's390x': 's390x', 'riscv64': 'riscv64'}
    machine = os.uname().machine
    if machine in known:
        return known[machine]
    try:
        return subprocess.check_output(['dpkg', '--print-architecture']).decode().strip()
    except (OSError, subprocess.CalledProcessError):
        return machine


def base_spec(ref, config, arch=None):
    """What a FROM debian:<suite> / ubuntu:<suite> line asks debootstrap for, with the config applied."""
    distro, suite = resolve(ref)
    info = DISTROS[distro]
    variant = config.get('BASE_VARIANT') or DEFAULT_VARIANT
    if variant not in VARIANTS:
        raise ConductorError('BASE_VARIANT=%s in the config is not a debootstrap variant: use one of %s'
                             % (variant, ', '.join(VARIANTS)))
    include = config.get('BASE_INCLUDE')
    include = include.replace(',', ' ').split() if include is not None else list(DEFAULT_INCLUDE)
    return {
        'distro': distro,
        'suite': suite,
        'variant': variant,
        'arch': arch or host_arch(),
        'mirror': config.get('%s_MIRROR' % distro.upper()) or info['mirror'],
        'include': sorted(set(include)),
    }


def base_key(spec):
    return digest('base', spec)[:32]


def debootstrap_argv(spec, target):
    """The debootstrap command line for spec (suites newer than the host's debootstrap use the family script)."""
    info = DISTROS[spec['distro']]
    argv = ['debootstrap', '--arch=%s' % spec['arch'], '--keyring=%s' % info['keyring'],
            '--components=%s' % info['components']]
    if spec['variant'] != '-':
        argv.append('--variant=%s' % spec['variant'])
    if spec['include']:
        argv.append('--include=%s' % ','.join(spec['include']))
    argv += [spec['suite'], target, spec['mirror']]
    if not os.path.exists(os.path.join(SCRIPTS, spec['suite'])):
        argv.append(os.path.join(SCRIPTS, info['script']))
    return argv


def find_debootstrap():
    for path in os.environ.get('PATH', '').split(os.pathsep) + ['/usr/sbin', '/sbin']:
        candidate = os.path.join(path, 'debootstrap')
        if path and os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_base(root, spec, out):
    """Return bases/<key>/rootfs, running debootstrap first if no build has made it yet."""
    key = base_key(spec)
    bases = os.path.join(root, 'bases')
    final = os.path.join(bases, key)
    if os.path.isdir(final):
        return key
    debootstrap = find_debootstrap()
    if not debootstrap:
        raise ConductorError('debootstrap is not installed, so FROM %s:%s cannot be built: '
                             'install it (apt-get install debootstrap) or run make setup'
                             % (spec['distro'], spec['suite']))
    keyring = DISTROS[spec['distro']]['keyring']
    if not os.path.exists(keyring):
        package = DISTROS[spec['distro']]['keyring_package']
        raise ConductorError('the %s archive keyring %s is missing, so FROM %s:%s cannot be verified: install it '
                             '(apt-get install %s)' % (spec['distro'], keyring, spec['distro'], spec['suite'], package))
    with locked(os.path.join(bases, '.%s.lock' % key)):  # one debootstrap per base, however many builds wait
        if os.path.isdir(final):
            return key
        tmp = os.path.join(bases, temp_name(key))
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        argv = debootstrap_argv(spec, os.path.join(tmp, 'rootfs'))
        argv[0] = debootstrap
        out(' ---> %s' % ' '.join(argv[1:-2] if argv[-1].startswith(SCRIPTS) else argv[1:]))
        started = time.time()
        with _progress.shown('debootstrap %s:%s' % (spec['distro'], spec['suite']),  # bytes: the packages fetched
                             lambda: _progress.folder_bytes(os.path.join(tmp, 'rootfs', 'var', 'cache', 'apt', 'archives'))):
            code, message = _sandbox.spawn(lambda report: _debootstrap_child(argv), out)
        if code != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ConductorError('debootstrap of %s:%s failed with exit code %d%s: check the mirror %s '
                                 'and the output above' % (spec['distro'], spec['suite'], code,
                                                           ' (%s)' % message if message else '', spec['mirror']))
        _tidy_base(os.path.join(tmp, 'rootfs'))
        write_json(os.path.join(tmp, 'base.json'), {
            'key': key, 'spec': spec, 'size': tree_size(os.path.join(tmp, 'rootfs')),
            'created': utc_now(),
            'seconds': round(time.time() - started, 1)})
        os.rename(tmp, final)
    return key


def _debootstrap_child(argv):  # pragma: no cover - runs in the child
    # debootstrap mounts /proc and /sys in its target: a mount namespace of its own keeps them off the host
    sys_.unshare(sys_.CLONE_NEWNS)
    _sandbox.make_mounts_private()
    os.execv(argv[0], argv)


def _tidy_base(rootfs):
    """Drop what debootstrap copied from the host (resolv.conf, hostname) and the downloaded .debs."""
    for name, content in (('etc/resolv.conf', ''), ('etc/hostname', 'localhost\n')):
        path = os.path.join(rootfs, name)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, 'w') as f:
            f.write(content)
        os.chmod(path, 0o644)
    for deb in glob.glob(os.path.join(rootfs, 'var/cache/apt/archives/*.deb')):
        os.unlink(deb)


def base_info(root, key):
    return read_json(os.path.join(root, 'bases', key, 'base.json'))
