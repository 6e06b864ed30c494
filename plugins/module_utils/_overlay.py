# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The classroom overlay: one VXLAN device per lab host, the way flannel's vxlan backend makes it.

    host A (10.88.1.0/24)                                      host B (10.88.2.0/24)
    cdr<veth> ── routing ── cdroverlay (VNI, UDP port) ══ LAN ══ cdroverlay ── routing ── cdr<veth>

Each other host is three static entries on the device, none learned and no multicast:

    route  10.88.2.0/24 via 10.88.2.0 dev cdroverlay onlink      (its subnet, through a gateway name)
    neigh  10.88.2.0 lladdr 02:cd:0a:58:02:00 dev cdroverlay     (the gateway's MAC: made from the subnet)
    fdb    02:cd:0a:58:02:00 dev cdroverlay dst <B's uplink>     (where frames for that MAC go)

A host's device MAC is made from its own subnet, so no host needs to ask another for it. The device is named
cdr..., so the firewall's rules for container veths (cdr+) cover it: what comes out of it is dropped unless
a container's chain accepts it. The device's MTU is the uplink's less VXLAN's 50 bytes.

This file holds the plan (checked, pure) and the device (made through iproute2, `ip` and `bridge`: an
overlay changes rarely, and reading it back as JSON is what `ip -j` is for). The firewall's part is
_firewall.overlay_rules; network/overlay.json is the record (_network.Network.overlay_up).
"""

import ipaddress
import json
import subprocess

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

DEVICE = 'cdroverlay'
DEFAULT_VNI, DEFAULT_PORT, DEFAULT_PREFIX = 695, 4789, 30
OVERHEAD = 50  # outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14
MIN_MTU = 1280  # what IPv6 needs, and a sane floor for a classroom's transfers


def parse_remote(text: str) -> dict:
    """ADDRESS=SUBNET, the CLI's form of another host: its uplink address and its containers' subnet."""
    address, sep, subnet = str(text).partition('=')
    if not sep or not address or not subnet:
        raise ConductorError('invalid remote host %r: write ADDRESS=SUBNET, e.g. 10.0.0.12=10.88.2.0/24' % text)
    return {'address': address.strip(), 'subnet': subnet.strip()}


def plan(subnet: str, remotes: 'list | tuple' = (), vni: 'int | str | None' = None, port: 'int | str | None' = None,
         uplink: 'str | None' = None, network: 'str | None' = None, prefix: 'int | str | None' = None,
         services: 'list | tuple' = ()) -> dict:
    """The overlay as asked, every part checked: the record `up` compares and writes. Nothing is changed.

    subnet: this host's containers' subnet (its pool); remotes: [{address, subnet}] of the other hosts;
    network: the classroom's network, which every subnet is in (default: the /16 around subnet); uplink:
    the interface the other hosts are reached on (default: the route to the first of them, else the default
    route's); prefix: what each container gets of the subnet (default /30); services: the addresses of the course
    services on the other hosts, which every container here may send to (their hosts decide the ports)."""
    vni, port = _number(vni, DEFAULT_VNI, 1, 2 ** 24 - 1, 'VNI'), _number(port, DEFAULT_PORT, 1, 65535, 'UDP port')
    prefix = _number(prefix, DEFAULT_PREFIX, 8, 30, 'container prefix')
    local = _network(subnet, 'the subnet')
    if network:
        classroom = _network(network, 'the classroom network')
    else:
        classroom = local.supernet(new_prefix=16) if local.prefixlen > 16 else local
    if local.prefixlen > prefix:
        raise ConductorError('the subnet %s is smaller than a container\'s /%d: give each host a larger subnet, e.g. a '
                             '/24' % (local, prefix))
    seen, subnets, checked = {}, [('this host', local)], []
    for remote in remotes:
        if not isinstance(remote, dict) or not remote.get('address') or not remote.get('subnet'):
            raise ConductorError('invalid remote host %r: give each an address and a subnet' % (remote,))
        address = _address(remote['address'])
        if address in seen:
            raise ConductorError('remote host %s is listed twice (subnets %s and %s): list each host once'
                                 % (address, seen[address], remote['subnet']))
        seen[address] = remote['subnet']
        checked.append({'address': address, 'subnet': str(_network(remote['subnet'], 'the subnet of %s' % address))})
        subnets.append((address, ipaddress.ip_network(checked[-1]['subnet'])))
    for i, (who, one) in enumerate(subnets):
        if not one.subnet_of(classroom):
            raise ConductorError('the subnet %s of %s is outside the classroom network %s: give every host a subnet '
                                 'in it, or a larger network' % (one, who, classroom))
        for other_who, other in subnets[:i]:
            if one.overlaps(other):
                raise ConductorError('the subnets of %s (%s) and %s (%s) overlap: give each host a subnet of its own'
                                     % (other_who, other, who, one))
    uplink = uplink or _route_device(checked[0]['address'] if checked else None)
    local_address, uplink_mtu = _uplink(uplink)
    if local_address in seen:
        raise ConductorError('remote host %s is this host (its address on %s): list only the other hosts'
                             % (local_address, uplink))
    mtu = uplink_mtu - OVERHEAD
    if mtu < MIN_MTU:
        raise ConductorError('the uplink %s has an MTU of %d, which leaves the overlay %d after VXLAN\'s %d bytes, less '
                             'than %d: raise the uplink\'s MTU to at least %d, or choose another uplink'
                             % (uplink, uplink_mtu, mtu, OVERHEAD, MIN_MTU, MIN_MTU + OVERHEAD))
    result = {'vni': vni, 'port': port, 'uplink': uplink, 'local': local_address, 'mtu': mtu, 'subnet': str(local),
              'network': str(classroom), 'prefix': prefix,
              'remotes': sorted(checked, key=lambda r: ipaddress.ip_address(r['address']))}
    for service in services:
        remote_of(result, service)  # a container's address on one of the other hosts, or one clear error
    result['services'] = sorted({_address(service) for service in services}, key=ipaddress.ip_address)
    return result


def subnet_at(network: str, index: 'int | str', prefix: 'int | str' = 24) -> str:
    """The index-th /prefix of the classroom network (0: the first): a host's subnet from its place in the inventory."""
    classroom = _network(network, 'the classroom network')
    prefix = _number(prefix, 24, classroom.prefixlen, 30, 'host subnet prefix')
    count = 2 ** (prefix - classroom.prefixlen)
    number = _number(index, None, 0, count - 1, 'subnet index')
    return str(ipaddress.ip_network((int(classroom.network_address) + number * 2 ** (32 - prefix), prefix)))


def remote_of(overlay: dict, address: str) -> dict:
    """The remote host whose subnet holds `address` (a container on another host), or one clear error."""
    ip = _address(address)
    for remote in overlay.get('remotes', []):
        if ipaddress.ip_address(ip) in ipaddress.ip_network(remote['subnet']):
            hosts = list(ipaddress.ip_network('%s/%d' % (ip, overlay.get('prefix', DEFAULT_PREFIX)), strict=False).hosts())
            if ipaddress.ip_address(ip) not in hosts[1:]:
                raise ConductorError('%s is not a container\'s address on lab host %s (each container has the second or a '
                                     'later address of a /%d there; the first is that host\'s): give the container\'s'
                                     % (ip, remote['address'], overlay.get('prefix', DEFAULT_PREFIX)))
            return remote
    raise ConductorError('%s is in no other host\'s subnet (%s): peer a container on another host by its address '
                         'there, or a container here by its name'
                         % (ip, ', '.join(r['subnet'] for r in overlay.get('remotes', [])) or 'there are none'))


def mac(subnet: str) -> str:
    """The device MAC of the host with this subnet: locally administered, its network address in the last 4 bytes."""
    return '02:cd:' + ':'.join('%02x' % b for b in ipaddress.ip_network(subnet).network_address.packed)


def gateway(subnet: str) -> str:
    """The name of a remote host's gateway on the overlay: its subnet's network address (never a container's)."""
    return str(ipaddress.ip_network(subnet).network_address)


def matches(overlay: dict) -> bool:
    """Whether the kernel's device is the one `overlay` asks for, with every remote's entries."""
    link = _ip_json('-d', 'link', 'show', 'dev', DEVICE)
    if not link:
        return False
    info = link[0].get('linkinfo', {}).get('info_data', {})
    if (info.get('id'), info.get('port'), info.get('local'), link[0].get('mtu'), link[0].get('address')) != (
            overlay['vni'], overlay['port'], overlay['local'], overlay['mtu'], mac(overlay['subnet'])):
        return False
    if 'UP' not in link[0].get('flags', []):
        return False
    fdb = {(e.get('mac'), e.get('dst')) for e in _json(['bridge', '-j', 'fdb', 'show', 'dev', DEVICE]) if e.get('dst')}
    routes = {r.get('dst') for r in _ip_json('route', 'show', 'dev', DEVICE)}
    return fdb == {(mac(r['subnet']), r['address']) for r in overlay['remotes']} and \
        routes == {r['subnet'] for r in overlay['remotes']}


def make(overlay: dict) -> None:
    """The device as `overlay` asks, made from scratch (a device that differs is deleted first)."""
    delete()
    _ip('link', 'add', DEVICE, 'address', mac(overlay['subnet']), 'mtu', str(overlay['mtu']), 'type', 'vxlan',
        'id', str(overlay['vni']), 'dstport', str(overlay['port']), 'local', overlay['local'], 'dev', overlay['uplink'],
        'nolearning')  # nothing learned from what arrives: only the entries below say where a MAC is
    for remote in overlay['remotes']:
        _run(['bridge', 'fdb', 'append', mac(remote['subnet']), 'dev', DEVICE, 'dst', remote['address'], 'self',
              'permanent'])
    for path, value in (('ipv6/conf/%s/disable_ipv6' % DEVICE, '1'), ('ipv4/conf/%s/rp_filter' % DEVICE, '1')):
        try:
            with open('/proc/sys/net/' + path, 'w') as f:
                f.write(value)  # strict: what arrives must come from a subnet routed through the overlay
        except OSError:
            pass  # no IPv6 in this kernel
    _ip('link', 'set', DEVICE, 'up')
    for remote in overlay['remotes']:
        _ip('neigh', 'replace', gateway(remote['subnet']), 'lladdr', mac(remote['subnet']), 'dev', DEVICE,
            'nud', 'permanent')
        _ip('route', 'replace', remote['subnet'], 'via', gateway(remote['subnet']), 'dev', DEVICE, 'onlink')


def delete() -> bool:
    """Delete the device (its routes, neighbours and forwarding entries go with it). Returns whether it was there."""
    if not _ip_json('link', 'show', 'dev', DEVICE):
        return False
    _ip('link', 'del', DEVICE)
    return True


def _number(value, default, low, high, what):
    if value is None or value == '':
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high or str(value).strip() != str(number):
        raise ConductorError('invalid %s %r: use a number from %d to %d' % (what, value, low, high))
    return number


def _network(text, what):
    try:
        network = ipaddress.ip_network(str(text).strip())
    except ValueError as e:
        raise ConductorError('%s %r is not a network (%s): write e.g. 10.88.1.0/24' % (what, text, e))
    if network.version != 4:
        raise ConductorError('%s %s is not IPv4: the overlay carries IPv4 only' % (what, network))
    return network


def _address(text):
    try:
        address = ipaddress.ip_address(str(text).strip())
    except ValueError:
        raise ConductorError('invalid address %r: write an IPv4 address, e.g. 10.0.0.12' % (text,))
    if address.version != 4:
        raise ConductorError('invalid address %s: the overlay runs over IPv4' % address)
    return str(address)


def _route_device(address):
    """The interface the route to `address` leaves by (or the default route's)."""
    routes = _ip_json('route', 'get', address) if address else _ip_json('route', 'show', 'default')
    if not routes or not routes[0].get('dev'):
        raise ConductorError('no route to %s: give the uplink (--uplink), or add a route' % (address or 'the internet'))
    return routes[0]['dev']


def _uplink(name):
    """(the uplink's first IPv4 address, its MTU)."""
    links = _ip_json('-4', 'addr', 'show', 'dev', name) if name and name != DEVICE else None
    if not links:
        raise ConductorError('the uplink %r is not an interface of this host: give one that reaches the other hosts'
                             % name)
    addresses = [a['local'] for a in links[0].get('addr_info', []) if a.get('family') == 'inet']
    if not addresses:
        raise ConductorError('the uplink %s has no IPv4 address: give it one, or choose another uplink' % name)
    return addresses[0], int(links[0]['mtu'])


def _ip(*args):
    _run(['ip'] + list(args))


def _ip_json(*args):
    return _json(['ip', '-j'] + list(args), missing_ok=True)


def _json(argv, missing_ok=True):
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if missing_ok:
            return []
        raise ConductorError('%s failed: %s' % (' '.join(argv), result.stderr.strip()))
    return json.loads(result.stdout or '[]')


def _run(argv):
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConductorError('the overlay could not be made: %s said %s' % (' '.join(argv), result.stderr.strip()))
