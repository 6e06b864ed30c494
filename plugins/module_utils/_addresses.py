# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The network's bookkeeping, with no kernel in sight: ports, interface names, the address pool, DNS.

    network/allocations.json   {container: {subnet, host_ip, container_ip, host_if, internet, ports, dns}}
    network/peers.json         [[a, b], ...] with a < b
    network/overlay.json       the classroom overlay (_overlay.plan): its subnet is then the pool

Everything here is plain data, so `ps` can show addresses without importing a firewall library.
"""

import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, read_json, write_json

DEFAULT_POOL = '192.168.0.0/16'
DEFAULT_PREFIX = 24
PROTOCOLS = ('tcp', 'udp')


def parse_port(text: object, what: str = 'port') -> int:
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = None
    if port is None or not 0 < port < 65536 or str(text).strip() != str(port):
        raise ConductorError('invalid %s %r: use a number from 1 to 65535' % (what, text))
    return port


def parse_expose(text: str) -> dict:
    """conductor.sh's -e INNER-OUTER[/udp]: container port INNER published as host port OUTER."""
    inner, outer, protocol = _split_mapping(text, '-', '-e', 'CONTAINER_PORT-HOST_PORT, e.g. -e 8080-80')
    return _port(inner, outer, protocol, text)


def parse_publish(text: str) -> dict:
    """Docker's -p HOST:CONTAINER[/udp]."""
    outer, inner, protocol = _split_mapping(text, ':', '-p', 'HOST_PORT:CONTAINER_PORT, e.g. -p 80:8080')
    return _port(inner, outer, protocol, text)


def _split_mapping(text, separator, flag, form):
    spec, dummy, protocol = text.partition('/')
    first, sep, second = spec.partition(separator)
    if not sep:
        raise ConductorError('invalid %s %r: write %s publishes container port 8080 as host port 80' % (flag, text, form))
    return first, second, protocol or 'tcp'


def _port(inner, outer, protocol, text):
    if protocol not in PROTOCOLS:
        raise ConductorError('invalid protocol %r in %r: use tcp or udp' % (protocol, text))
    return {'container_port': parse_port(inner, 'container port'), 'host_port': parse_port(outer, 'host port'),
            'protocol': protocol}


def published(ports: 'list[dict]') -> str:
    """Published ports as Docker shows them: 0.0.0.0:8000->8080/tcp, ..."""
    return ', '.join('0.0.0.0:%d->%d/%s' % (p['host_port'], p['container_port'], p['protocol']) for p in ports)


def normalize_ports(ports: 'list | tuple | None') -> 'list[dict]':
    """Sorted, validated, without duplicates of a host port (one container port per host port)."""
    result, seen = [], set()
    for port in ports or []:
        entry = _port(port.get('container_port'), port.get('host_port'), port.get('protocol') or 'tcp', port)
        key = (entry['host_port'], entry['protocol'])
        if key in seen:
            raise ConductorError('host port %d/%s is given twice' % key)
        seen.add(key)
        result.append(entry)
    return sorted(result, key=lambda p: (p['host_port'], p['protocol']))


def resolv_conf(config: dict, servers: 'list | None' = None, search: 'list | None' = None) -> str:
    """A container's resolv.conf: the servers given, else DNS from the config, else the host's servers; with
    search (--dns-search), its search line instead of the host's.

    A loopback stub such as systemd-resolved's 127.0.0.53 is useless in another network namespace:
    then its upstream list."""
    content = _resolv_conf(config, servers)
    if not search:
        return content
    kept = [line for line in content.splitlines() if line.split()[:1] not in (['search'], ['domain'])]
    return '\n'.join(kept + ['search ' + ' '.join(search)]) + '\n'


def _resolv_conf(config, servers):
    servers = servers or (config.get('DNS') or '').split()
    if servers:
        return ''.join('nameserver %s\n' % server for server in servers)
    first = None
    for path in ('/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'):
        try:
            with open(path) as f:
                content = f.read()
        except (IOError, OSError):
            continue
        first = content if first is None else first
        found = [line.split()[1] for line in content.splitlines() if line.startswith('nameserver') and len(line.split()) > 1]
        if any(not s.startswith('127.') and s != '::1' for s in found):
            return content
    return first or ''


def interface_names(name: str) -> 'tuple[str, str]':
    """Host and temporary peer names for a container's veth: 15 characters at most, whatever the name."""
    import hashlib  # here and in pool(): ps, run and exec read allocations, and must start quickly
    tag = hashlib.sha256(name.encode()).hexdigest()[:11]
    return 'cdr' + tag, 'cdp' + tag


class Allocations:
    """The pool's allocations and the peerings, read and written under the store's lock."""

    def __init__(self, store):
        self.store = store
        self.folder = store.path('network')

    def load(self) -> dict:
        return read_json(os.path.join(self.folder, 'allocations.json'), {})

    def save(self, allocations: dict) -> None:
        os.makedirs(self.folder, 0o700, exist_ok=True)
        write_json(os.path.join(self.folder, 'allocations.json'), allocations)

    def peers(self) -> 'list[tuple]':
        return [tuple(p) for p in read_json(os.path.join(self.folder, 'peers.json'), [])]

    def save_peers(self, peers: 'list | set') -> None:
        os.makedirs(self.folder, 0o700, exist_ok=True)
        write_json(os.path.join(self.folder, 'peers.json'), sorted(set(tuple(sorted(p)) for p in peers)))

    def overlay(self) -> 'dict | None':
        return read_json(os.path.join(self.folder, 'overlay.json'), None)

    def save_overlay(self, overlay: 'dict | None') -> None:
        path = os.path.join(self.folder, 'overlay.json')
        if overlay is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        os.makedirs(self.folder, 0o700, exist_ok=True)
        write_json(path, overlay)

    def pool(self) -> tuple:
        """(the pool, the prefix each container gets of it): the overlay's subnet when there is one, else POOL."""
        import ipaddress
        overlay = self.overlay()
        if overlay:
            return ipaddress.ip_network(overlay['subnet']), int(overlay['prefix'])
        config = self.store.config
        try:
            pool = ipaddress.ip_network(config.get('POOL') or DEFAULT_POOL)
            prefix = int(config.get('POOL_PREFIX') or DEFAULT_PREFIX)
        except ValueError as e:
            raise ConductorError('POOL=%s in the config is not a network (%s): use e.g. POOL=192.168.0.0/16'
                                 % (config.get('POOL'), e))
        if pool.version != 4 or not pool.prefixlen <= prefix <= 30:
            raise ConductorError('POOL=%s, POOL_PREFIX=%d: use an IPv4 pool split into /%d..30 subnets'
                                 % (pool, prefix, pool.prefixlen))
        return pool, prefix

    def allocate(self, allocations: dict, taken_networks: 'list | tuple' = (), address: 'str | None' = None,
                 last: bool = False) -> dict:
        """The first free subnet of the pool (with last, the last: a build's RUN steps take those, and leave the
        first ones to the containers a playbook places there): not allocated, and not overlapping a host network.
        With `address`, the subnet that holds it, the container's address (docker run --ip), or one clear error."""
        import ipaddress
        pool, prefix = self.pool()
        allocated = {a['subnet'] for a in allocations.values()}
        if address:
            return self._allocate_address(address, pool, prefix, allocations, taken_networks)
        # what else could overlap: few networks, so each candidate is checked quickly however many containers
        others = [n for n in [ipaddress.ip_network(s) for s in allocated] + list(taken_networks)
                  if str(n) not in allocated or n.prefixlen != prefix]
        subnets = pool.subnets(new_prefix=prefix)
        for subnet in reversed(list(subnets)) if last else subnets:
            if str(subnet) not in allocated and not any(subnet.overlaps(other) for other in others):
                hosts = subnet.hosts()
                return {'subnet': str(subnet), 'host_ip': str(next(hosts)), 'container_ip': str(next(hosts)),
                        'prefix': prefix}
        raise ConductorError('the address pool %s is exhausted (%d containers have a network): stop some, or set a '
                             'larger POOL in the config' % (pool, len(allocations)))

    @staticmethod
    def _allocate_address(address, pool, prefix, allocations, taken_networks):
        import ipaddress
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            raise ConductorError('invalid address %r: write an IPv4 address of the pool %s' % (address, pool))
        subnet = ipaddress.ip_network('%s/%d' % (ip, prefix), strict=False)
        hosts = list(subnet.hosts())
        if ip not in pool or ip not in hosts or ip == hosts[0]:
            raise ConductorError('address %s cannot be a container\'s: use one of the pool %s that is not the first or '
                                 'last of its /%d (those are the host\'s and the broadcast)' % (ip, pool, prefix))
        for name, alloc in allocations.items():
            if ipaddress.ip_network(alloc['subnet']).overlaps(subnet):
                raise ConductorError('address %s is in %s, which container %r has: choose another' % (ip, alloc['subnet'], name))
        allocated = {ipaddress.ip_network(a['subnet']) for a in allocations.values()}
        for network in taken_networks:
            if network not in allocated and network.overlaps(subnet):
                raise ConductorError('address %s is in %s, a network of this host: choose another' % (ip, network))
        return {'subnet': str(subnet), 'host_ip': str(hosts[0]), 'container_ip': str(ip), 'prefix': prefix}
