# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Container networking: a veth pair per container (rtnetlink through _netlink), NAT, published ports and peerings.

    host netns:  cdr<hash> host_ip/prefix  <── veth ──>  container netns: eth0 container_ip/prefix
                                                          routes: POOL via host_ip (+ default with -i)

Only the commands that change the network import this module (and, when they change the firewall, its
backend's library: python3-nftables or python-iptables), which run, exec and ps must not pay. No pyroute2:
its import alone cost addnetwork half its time; _netlink sends the few requests needed. A build imports this
module only in the helper process that makes its RUN steps' networks (serve_steps): a namespace of the step's
own, a veth and the rules of a container with -i.
"""

import contextlib
import fcntl
import ipaddress
import os
import signal
import socket

from ansible_collections.cs695.conductor.plugins.module_utils._common import TEMP_PREFIX, ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import (
    Allocations, interface_names, normalize_ports, resolv_conf)
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._netlink import Netlink
from ansible_collections.cs695.conductor.plugins.module_utils._processes import alive, start_time, wait_gone
from ansible_collections.cs695.conductor.plugins.module_utils._policy import DEFAULT_PATH
from ansible_collections.cs695.conductor.plugins.module_utils._runtime import lua_command
from ansible_collections.cs695.conductor.plugins.module_utils._store import is_orphan
from ansible_collections.cs695.conductor.plugins.module_utils import _firewall
from ansible_collections.cs695.conductor.plugins.module_utils import _nftables
from ansible_collections.cs695.conductor.plugins.module_utils import _overlay
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

VETH_MTU = 1500  # what a container's veth has (the kernel's default for a new one)


class Network:
    def __init__(self, store):
        self.store = store
        self.containers = Containers(store)
        self.book = Allocations(store)
        self.repaired = False  # a change found the rules missing or damaged, and rebuilt them all
        self._backend = None  # 'nftables' or 'iptables', found by the first change
        self._trusting = False  # the record's nftables generation is in use by this command's change

    # -- addnetwork ----------------------------------------------------------------------------
    def add(self, name: str, internet: bool = False, ports: 'list | tuple' = (), dns: 'list | None' = None,
            host_access: 'str | None' = None, link_local: 'bool | None' = False, publish_all: bool = False,
            classroom_service: bool = False, ip: 'str | None' = None) -> dict:
        """Give a running container a network (or change it to these settings); returns its facts.

        host_access: what of the host it reaches on its gateway address (all, dns-only or none; default
        HOST_ACCESS in the config, else all). link_local: with internet, 169.254.0.0/16 too. publish_all:
        also publish every port the image EXPOSEs, on free host ports (docker run -P). classroom_service: every
        container here and on the overlay's other hosts reaches the ports its image EXPOSEs and it publishes.
        ip: its address (in the pool, the second of its /prefix), instead of the first free one."""
        return self.add_many({name: dict(internet=internet, ports=ports, dns=dns, host_access=host_access,
                                         link_local=link_local, publish_all=publish_all,
                                         classroom_service=classroom_service, container_ip=ip)})[name]

    def add_many(self, settings: dict) -> dict:
        """add for several containers at once ({name: add's keyword arguments}): one lock, one netlink
        socket and one firewall commit per table for them all. Returns {name: facts}."""
        states = {name: self.containers.require_running(name) for name in settings}
        reserved = {}
        with self._locked(), Netlink() as nl:
            change = self._change()
            allocations = self._sweep(self.book.load(), change)
            expected, networks, fresh, moved = bool(allocations), _host_networks(), [], []
            ports = {name: normalize_ports(wanted.get('ports')) for name, wanted in settings.items()}
            published = dict(allocations, **{name: {'ports': ports[name]} for name in settings})  # as it will be
            listening = _listening_ports()  # once: reading it is 10 ms with 100 containers' sockets
            try:
                for name, wanted in settings.items():
                    current = allocations.get(name)
                    self._check_ports(name, ports[name], published, (current or {}).get('ports', []), listening)
                    if wanted.get('publish_all'):
                        ports[name] = self._publish_exposed(name, ports[name], allocations)
                    if current and wanted.get('container_ip') and current['container_ip'] != wanted['container_ip']:
                        moved.append(name)
                    others = {n: a for n, a in allocations.items() if n != name}
                    alloc = dict(current if current and name not in moved else
                                 self.book.allocate(others, networks, wanted.get('container_ip')))
                    alloc.update({k: current[k] for k in ('remote_peers',) if current and k in current})
                    if wanted.get('remote_peers') is not None:  # an exact list (the modules'), else they stay
                        alloc['remote_peers'] = sorted({self.check_remote(name, a, True, dict(allocations, **{name: alloc}))
                                                        for a in wanted['remote_peers']}, key=ipaddress.ip_address)
                    host_if = interface_names(name)[0]
                    alloc.update(internet=bool(wanted.get('internet')), ports=ports[name], host_if=host_if,
                                 uplink=self._uplink() if wanted.get('internet') else None,
                                 dns=list(wanted['dns']) if wanted.get('dns') else None,
                                 host_access=self.host_access(wanted.get('host_access')),
                                 link_local=bool(wanted.get('link_local')),
                                 classroom_service=bool(wanted.get('classroom_service')),
                                 service=self._service_ports(name, ports[name]) if wanted.get('classroom_service') else None)
                    _release_ports(alloc)  # the old reservation, if any: the same ports are bound again below
                    allocations[name] = alloc
                    if name in moved or not current or current.get('pid') != states[name]['pid'] or host_if not in _links():
                        fresh.append(name)
                for name in settings:  # after every release: two of them may swap ports
                    reserved[name] = _reserve_ports(ports[name])
            except BaseException:
                for sock in [sock for sockets in reserved.values() for sock in sockets]:
                    sock.close()
                raise
            self._save(allocations)  # first: a crash from here on leaves allocations that stop cleans
            for name in settings:
                if name in fresh:
                    self._create_link(nl, allocations[name], interface_names(name)[1], states[name]['pid'])
                allocations[name]['pid'] = states[name]['pid']
            self._save(allocations)
            partners = {p for name in moved for p in self._partners(name, allocations)} - set(settings)
            for name in list(settings) + sorted(partners):  # a peer's rule names the address: a moved one's partners too
                change.put(allocations[name], [allocations[p] for p in self._partners(name, allocations)])
            self._commit(change, allocations, expected)  # the rules are in place before the links come up
            _write_sysctl('net/ipv4/ip_forward', '1')
            for name in settings:
                alloc, state = allocations[name], states[name]
                if alloc['ports']:  # DNAT of 127.0.0.1 needs loopback sources routable out of the veth
                    _write_sysctl('net/ipv4/conf/%s/route_localnet' % alloc['host_if'], '1')
                if name in fresh:
                    self._bring_up(nl, alloc, state['pid'])
                self._set_default_route(alloc, state['pid'])
                if reserved[name]:
                    alloc['port_holder'] = _hold(reserved[name], state['supervisor'], state['supervisor_start'])
            if any(reserved.values()):
                self._save(allocations)
        for name in settings:
            self._write_resolv_conf(name, allocations[name])
        return {name: facts(name, allocations[name]) for name in settings}

    def host_access(self, value: 'str | None' = None) -> str:
        access = value or self.store.config.get('HOST_ACCESS') or 'all'
        if access not in _firewall.HOST_ACCESS:
            raise ConductorError('invalid host access %r: use all, dns-only or none' % access)
        return access

    def _create_link(self, nl, alloc, peer_if, pid):
        """A veth pair, both ends down and without IPv6: the host end addressed; the other end made in the
        container's network namespace as eth0, and addressed there."""
        _delete_links((alloc['host_if'], peer_if))  # what a killed addnetwork left
        theirs = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY | os.O_CLOEXEC)
        try:
            nl.add_veth(alloc['host_if'], 'eth0', theirs)
        finally:
            os.close(theirs)
        for key, value in (('disable_ipv6', '1'), ('accept_ra', '0')):  # no rogue router advertisements
            _write_sysctl('net/ipv6/conf/%s/%s' % (alloc['host_if'], key), value, missing_ok=True)
        nl.add_address(socket.if_nametoindex(alloc['host_if']), alloc['host_ip'], alloc['prefix'])
        with self._inside(pid, sysctls=(('net/ipv6/conf/all/disable_ipv6', '1'),
                                        ('net/ipv6/conf/default/disable_ipv6', '1'))) as (inner, index):
            inner.add_address(index, alloc['container_ip'], alloc['prefix'])

    def _bring_up(self, nl, alloc, pid):
        """Both ends up, then the container's routes to the rest of the pool and to the classroom network."""
        nl.set_up(socket.if_nametoindex(alloc['host_if']))
        with self._inside(pid) as (inner, index):
            inner.set_up(index)
            self._route_pool(inner, alloc)

    def _route_pool(self, inner, alloc):
        """The container's routes to the pool, and to the classroom network with the overlay's MTU when it is under
        the veth's: its packets to another host fit the overlay from the start (the fast path, _firewall.fast_paths,
        sends no ICMP "too big"), and never outgrow its own interface (a jumbo uplink's overlay)."""
        overlay = self.book.overlay()
        mtu = overlay['mtu'] if overlay and overlay['mtu'] < VETH_MTU else None
        routes = [(self.book.pool()[0], None)] + ([(ipaddress.ip_network(overlay['network']), mtu)] if overlay else [])
        for network, mtu in routes:
            if not ipaddress.ip_network(alloc['subnet']) == network:
                inner.replace_route(alloc['host_ip'], str(network.network_address), network.prefixlen, mtu)

    def _service_ports(self, name, ports):
        """[{port, protocol}] a classroom service is reached on: what its image EXPOSEs and what it publishes."""
        found = {(p['container_port'], p['protocol']) for p in ports}
        for exposed in self.containers.require(name).exposed:
            number, dummy, protocol = exposed.partition('/')
            found.add((int(number), protocol or 'tcp'))
        if not found:
            raise ConductorError('container %r cannot be a classroom service: its image EXPOSEs no port and it publishes '
                                 'none; add EXPOSE to its Conductorfile, or publish a port' % name)
        return [{'port': port, 'protocol': protocol} for port, protocol in sorted(found)]

    def _set_default_route(self, alloc, pid):
        """With -i, or with published ports (replies to outside clients), a default route via the host.
        Without -i the firewall still drops everything it would forward that is not such a reply."""
        with self._inside(pid) as (inner, dummy):
            if alloc['internet'] or alloc['ports']:
                inner.replace_route(alloc['host_ip'])
            else:
                inner.delete_route()

    @contextlib.contextmanager
    def _inside(self, pid, sysctls=()):
        """(a Netlink socket in the container's network namespace, the index of its eth0 there), with its
        sysctls written there first: /proc/sys/net is the namespace of whoever opens it."""
        theirs = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with _entered(theirs):
                for path, value in sysctls:
                    _write_sysctl(path, value, missing_ok=True)
                inner = Netlink()  # the socket stays in the namespace it was made in
                index = socket.if_nametoindex('eth0')
        finally:
            os.close(theirs)
        with inner:
            yield inner, index

    def _uplink(self):
        """DEFAULT_IFC from the config, else the interface of the host's default route (from /proc: no pyroute2)."""
        configured = self.store.config.get('DEFAULT_IFC')
        if configured:
            if configured not in _links():
                raise ConductorError('DEFAULT_IFC=%s in the config is not an interface of this host: fix it or remove '
                                     'it to use the default route' % configured)
            return configured
        found = _default_interface()
        if not found:
            raise ConductorError('the host has no default route, so -i has no way out: add one, or set DEFAULT_IFC in '
                                 '/etc/conductor/conductor.conf')
        return found

    def _publish_exposed(self, name, ports, allocations):
        """`ports` and, for each port the image EXPOSEs that they do not publish, a free host port: the one
        it had, else the first in the host's ephemeral range no program and no container uses."""
        given = {(p['container_port'], p['protocol']) for p in ports}
        current = (allocations.get(name) or {}).get('ports', [])
        had = {(p['container_port'], p['protocol']): p['host_port'] for p in current}
        taken = (_listening_ports() - _host_ports(current)) | _host_ports(ports)
        for other, alloc in allocations.items():
            if other != name:
                taken |= _host_ports(alloc.get('ports', []))
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low, high = (int(n) for n in f.read().split())
        added = []
        for exposed in self.containers.require(name).exposed:
            number, dummy, protocol = exposed.partition('/')
            key = (int(number), protocol or 'tcp')
            if key in given:
                continue
            host_port = had.get(key)
            if host_port is None or (host_port, key[1]) in taken:
                host_port = next((n for n in range(low, high + 1) if (n, key[1]) not in taken), None)
            if host_port is None:
                raise ConductorError('no free host port left in %d-%d for port %s of container %r: stop some '
                                     'containers, or publish it with -p' % (low, high, exposed, name))
            taken.add((host_port, key[1]))
            added.append({'container_port': key[0], 'host_port': host_port, 'protocol': key[1]})
        return normalize_ports(list(ports) + added)

    def _check_ports(self, name, ports, allocations, had, listening):
        """Refuse a host port another container publishes (in allocations) or a program listens on
        (listening); a port the container `had` already is its own."""
        mine = _host_ports(had)
        for key in sorted(_host_ports(ports)):
            for other, alloc in allocations.items():
                if other != name and key in _host_ports(alloc.get('ports', [])):
                    raise ConductorError('host port %d/%s is already published by container %r: choose another'
                                         % (key + (other,)))
            if key not in mine and key in listening:
                raise ConductorError('host port %d/%s is in use by a program listening on this host: choose another'
                                     % key)

    # -- a build's RUN steps ------------------------------------------------------------------------
    def serve_steps(self, sock: socket.socket) -> int:  # pragma: no cover - the builder's helper process
        """The networks of a build's RUN steps, in a helper process a build forks (_stepnetworks.StepNetworks).
        For each message on `sock` (a step's tag, with the fd of its network namespace and the write end of
        its `ready` pipe): network the namespace as a container with -i and the default host_access, and
        write a byte to `ready` (the step execs only then). Then wait for 1 (the step is over: its veth goes
        with its namespace, a delete would wait 20 ms) or 0 (interrupted: it may still run, so the veth is
        deleted at once), remove the rules and the address, and answer ok or what failed. A message without
        fds (end) or an end of file (the build is gone) ends it. The tag is the step's temp name
        (.tmp-<PID of the build>-...), so a sweep forgets what a killed build and its helper left. No
        pyroute2: it costs more than the step's whole budget. Returns the exit code."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt reaches the build, which says so
        if _nftables.backend(self.store.config) == 'nftables':  # the firewall's library, now: the build does other things
            _nftables.Nft()
        else:
            _firewall.import_iptc()
        fresh = not os.path.isdir(self.book.folder)
        while True:
            message, fds, dummy, dummy = socket.recv_fds(sock, 4096, 2)
            if len(fds) != 2:  # end, or an end of file: the build is over, or gone
                if fresh:
                    self._tidy()
                return 0
            tag, (netns, ready), error = message.decode(), fds, None
            try:
                self._add_step(tag, netns)
                try:
                    os.write(ready, b'1')
                except BrokenPipeError:
                    pass  # the step failed before it waited for its network: its own error says why
            except Exception as e:  # pylint: disable=broad-except
                error = 'making it: %s' % (str(e) or repr(e))
            os.close(ready)  # without its byte the step does not run
            os.close(netns)
            verdict = sock.recv(16)
            try:
                self.remove(tag, links=verdict != b'1')
            except Exception as e:  # pylint: disable=broad-except
                error = error or 'removing it (the next sweep will): %s' % e
            if not verdict:
                return 1
            sock.send((error or 'ok').encode())

    def _tidy(self):
        """The network folder a build made, gone again if no network is left: a build leaves no trace in it."""
        with self.store.lock():
            if not self.book.load() and not self.book.peers() and not self.book.overlay():
                for name in ('allocations.json', 'peers.json', 'firewall'):
                    if os.path.exists(os.path.join(self.book.folder, name)):
                        os.unlink(os.path.join(self.book.folder, name))
                try:
                    os.rmdir(self.book.folder)
                except OSError:
                    pass  # something else is in it

    def _add_step(self, tag, netns):
        """The step's allocation, a veth into `netns` (eth0 there), its rules, then the links up and a default
        route (without internet, the firewall drops what is not for the host)."""
        with self._locked():
            change = self._change()
            allocations = self._sweep(self.book.load(), change)
            expected = bool(allocations)
            alloc = allocations[tag] = self.book.allocate(allocations, _host_networks(), last=True)
            online = bool(self.store.config.get('DEFAULT_IFC') or _default_interface())  # else the host alone
            alloc.update(internet=online, ports=[], host_if=interface_names(tag)[0], dns=None, link_local=False,
                         uplink=self._uplink() if online else None, host_access=self.host_access())
            self._save(allocations)  # first: a crash from here on leaves an allocation the next sweep cleans
            with Netlink() as nl:
                nl.add_veth(alloc['host_if'], 'eth0', netns)
                for key, value in (('disable_ipv6', '1'), ('accept_ra', '0')):
                    _write_sysctl('net/ipv6/conf/%s/%s' % (alloc['host_if'], key), value, missing_ok=True)
                host = socket.if_nametoindex(alloc['host_if'])
                nl.add_address(host, alloc['host_ip'], alloc['prefix'])
                change.put(alloc)
                self._commit(change, allocations, expected)  # the rules are in place before the links come up
                _write_sysctl('net/ipv4/ip_forward', '1')
                nl.set_up(host)
            with _entered(netns), Netlink() as inner:
                for path in ('net/ipv6/conf/all/disable_ipv6', 'net/ipv6/conf/default/disable_ipv6'):
                    _write_sysctl(path, '1', missing_ok=True)
                inner.set_up(socket.if_nametoindex('lo'))
                index = socket.if_nametoindex('eth0')
                inner.add_address(index, alloc['container_ip'], alloc['prefix'])
                inner.set_up(index)
                inner.add_default_route(alloc['host_ip'])

    # -- stop, peer ----------------------------------------------------------------------------
    def remove(self, *names: str, links: bool = True) -> None:
        """Delete the containers' veths, rules, peerings and addresses: one firewall commit per table for
        them all. Only their own links and rules are touched: another container's may be gone already.
        links=False leaves the veths to go with their network namespaces."""
        with self._locked():
            change = self._change()
            allocations = self.book.load()
            expected = bool(allocations)
            if not set(allocations) - set(names) and not self.book.overlay():
                change.from_scratch()  # the last networks: commit deletes every chain, edits would be thrown away
            for name in names:
                self._forget(change, allocations, name, links)
            self._sweep(allocations, change)
            self._save(allocations)
            self._commit(change, allocations, expected)

    def peer(self, a: str, b: str, present: bool = True) -> bool:
        """Allow (or with present=False, stop allowing) traffic between two networked containers."""
        return bool(self.peer_many([(a, b, present)]))

    def peer_many(self, requests: 'list | tuple') -> 'list[tuple[str, str]]':
        """peer or unpeer several pairs ([(a, b, present)]) with one commit per table; each pair is checked
        before anything changes. Returns the sorted pairs that changed."""
        with self._locked():
            allocations = self.book.load()
            peers, change, changed = set(self.book.peers()), self._change(), []
            for a, b, present in requests:
                self.check_pair(a, b, present, allocations)  # every pair, before anything changes
            for a, b, present in requests:
                pair = tuple(sorted((a, b)))
                if (pair in peers) == present:
                    continue
                peers = peers | {pair} if present else peers - {pair}
                changed.append(pair)
                if a in allocations and b in allocations:
                    change.peer(allocations[a], allocations[b], present)
            if changed:
                self._save_peers(peers)
                self._commit(change, allocations)
        return changed

    def peer_remote(self, name: str, address: str, present: bool = True) -> bool:
        """Let a networked container and a container on another lab host (its address, in that host's subnet)
        reach each other: this host's half, two rules in the container's chain (what it receives from the peer, what
        it sends it). That host writes the other half; until it does, nothing gets through."""
        with self._locked():
            allocations = self.book.load()
            address = self.check_remote(name, address, present, allocations)
            alloc = allocations.get(name) or {}
            had = set(alloc.get('remote_peers') or ())
            if (address in had) == present:
                return False
            alloc['remote_peers'] = sorted(had | {address} if present else had - {address}, key=ipaddress.ip_address)
            change = self._change()
            change.remote_peer(alloc, address, present)
            self._save(allocations)
            self._commit(change, allocations)
        return True

    def check_remote(self, name: str, address: str, present: bool, allocations: dict) -> str:
        """The address as peer_remote records it, once the container exists and (to peer) has a network, and the
        address is a container's on one of the overlay's other hosts."""
        self.containers.require(name)
        if not present:
            return str(ipaddress.ip_address(address)) if _is_ip(address) else address
        if name not in allocations:
            raise ConductorError('container %r has no network: addnetwork %s first' % (name, name))
        overlay = self.book.overlay()
        if not overlay:
            raise ConductorError('this host has no classroom overlay, so %s is out of reach: conductor overlay up '
                                 'first' % address)
        _overlay.remote_of(overlay, address)  # one of the other hosts' containers, or one clear error
        return str(ipaddress.ip_address(address))

    def overlay_up(self, plan: dict, check_mode: bool = False) -> dict:
        """Make the classroom overlay as `plan` (_overlay.plan) asks, with its rules; idempotent. Containers already
        networked keep their addresses, which must be in the plan's subnet. Returns {changed, before, after}. Check
        mode only reads: no lock, not even a state root made."""
        with contextlib.nullcontext() if check_mode else self._locked():
            before, allocations = self.book.overlay(), self.book.load()
            subnet = ipaddress.ip_network(plan['subnet'])
            for network, device in _host_networks(with_devices=True):
                if device.startswith('cdr'):
                    continue  # a container's veth, or the overlay's routes: ours
                for who, other in [('this host', plan['subnet'])] + [(r['address'], r['subnet']) for r in plan['remotes']]:
                    if network.overlaps(ipaddress.ip_network(other)):
                        raise ConductorError('the subnet %s of %s overlaps %s, which this host routes through %s: give the '
                                             'classroom another network' % (other, who, network, device))
            for name, alloc in sorted(allocations.items()):
                if not name.startswith(TEMP_PREFIX) and not ipaddress.ip_network(alloc['subnet']).subnet_of(subnet):
                    raise ConductorError('container %r has address %s, outside this host\'s overlay subnet %s: stop it '
                                         'first (it gets an address in the subnet when it is networked again)'
                                         % (name, alloc['container_ip'], subnet))
            if before == plan and _overlay.matches(plan):
                if not check_mode:
                    self._route_running(allocations)  # those a conductor before the routes' MTU networked
                    self._commit(self._change(), allocations, overlay=plan)  # the rules checked, as every change does
                return {'changed': False, 'before': before, 'after': plan}
            if not check_mode:
                self._overlay_apply(plan, allocations, before)
        return {'changed': True, 'before': before, 'after': plan}

    def _overlay_apply(self, plan, allocations, before):
        """The old device deleted first (so no port listens unguarded), then the rules (the VXLAN port guarded before
        the device listens; remote peers outside the plan's subnets dropped), then the device, then the records.
        When the device cannot be made (a VNI or port another program has), all is put back as the records say."""
        self._saving()
        kept = {name: alloc['remote_peers'] for name, alloc in allocations.items() if 'remote_peers' in alloc}
        _prune_remote_peers(allocations, plan)
        try:
            _overlay.delete()
            self._rebuild(allocations, plan)
            _overlay.make(plan)
        except BaseException:
            try:
                _overlay.delete()
            finally:
                for name, peers in kept.items():
                    allocations[name]['remote_peers'] = peers
                self._rebuild(allocations, before)
                if before:
                    try:
                        _overlay.make(before)
                    except ConductorError:
                        _overlay.delete()  # its rules stay: nothing listens, nothing is unguarded
            raise
        self._save(allocations)
        self.book.save_overlay(plan)
        _write_sysctl('net/ipv4/ip_forward', '1')
        self._route_running(allocations)
        self._commit(self._change(), allocations, overlay=plan)  # the fast path, now that its device is there

    def _route_running(self, allocations):
        """Running containers get the route to the classroom network now (the others at their next start)."""
        for name, alloc in allocations.items():
            state = {} if name.startswith(TEMP_PREFIX) else self.containers.state(name)
            if state.get('running') and state.get('pid') == alloc.get('pid'):  # PID and start time: never another's
                try:
                    with self._inside(alloc['pid']) as (inner, dummy):
                        self._route_pool(inner, alloc)
                except OSError:
                    pass  # it stopped meanwhile: its next start routes it

    def overlay_down(self, check_mode: bool = False) -> dict:
        """Remove the overlay: its device, its rules and its record. Containers keep their addresses."""
        with contextlib.nullcontext() if check_mode else self._locked():
            before = self.book.overlay()
            present = before is not None or _overlay.DEVICE in _links()
            if present and not check_mode:
                _overlay.delete()
                allocations = self.book.load()
                _prune_remote_peers(allocations, None)  # without the overlay no remote address means anything
                self._save(allocations)
                self.book.save_overlay(None)
                self._rebuild(allocations, None)
        return {'changed': present, 'before': before, 'after': None}

    def _rebuild(self, allocations, overlay):
        """Every rule rebuilt for these allocations and this overlay (the shared chains change): no repair."""
        change = self._change()
        change.from_scratch()
        self._commit(change, allocations, expected=False, overlay=overlay)

    def check_settings(self, wanted: dict, check_mode: bool = False) -> None:
        """What of a container's wanted network (Network.add_many's settings) can be checked before anything is made:
        its remote peers (on the overlay's other hosts) and its address (in the pool, a container's). In check mode a
        missing overlay is one an earlier task would make: then both wait for the real run."""
        overlay = self.book.overlay()
        if check_mode and not overlay:
            return
        for address in wanted.get('remote_peers') or ():
            if not overlay:
                raise ConductorError('this host has no classroom overlay, so %s is out of reach: conductor overlay up '
                                     'first' % address)
            _overlay.remote_of(overlay, address)
        if wanted.get('container_ip'):
            self.book.allocate({}, (), wanted['container_ip'])

    def overlay_restore(self) -> bool:
        """After a reboot: the recorded overlay made again when its device is missing or differs."""
        with self._locked():
            plan = self.book.overlay()
            if not plan or _overlay.matches(plan):
                return False
            self._overlay_apply(plan, self.book.load(), plan)
            return True

    def repair(self) -> None:
        """Check conductor's rules against its records and rebuild them all if they differ (after a reboot,
        or another tool's iptables -F); sets self.repaired. Every change does the same check."""
        with self._locked():
            change = self._change(thorough=True)
            allocations = self._sweep(self.book.load(), change)
            self._save(allocations)
            self._commit(change, allocations)
            self._leave(self._backend, always=True)

    def check_pair(self, a: str, b: str, present: bool, allocations: dict) -> 'tuple[str, str]':
        """The sorted pair, once both exist (and, to peer them, both have a network)."""
        if a == b:
            raise ConductorError('cannot peer container %r with itself' % a)
        for name in (a, b):
            self.containers.require(name)
            if present and name not in allocations:
                raise ConductorError('container %r has no network: addnetwork %s first' % (name, name))
        return tuple(sorted((a, b)))

    # -- shared steps --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """The store's lock, then the xtables lock: a change that cannot have both changes nothing."""
        try:
            wait = float(self.store.config.get('XTABLES_WAIT') or 10)
        except ValueError:
            raise ConductorError('XTABLES_WAIT=%s in the config is not a number of seconds: fix it, e.g. XTABLES_WAIT=10'
                                 % self.store.config.get('XTABLES_WAIT'))
        with self.store.lock(), _firewall.xtables_lock(wait):
            yield

    def _sweep(self, allocations, change):
        """Forget the networks of containers that are gone (a stop that was killed half way) and of RUN steps
        whose build is gone (their names are temp names: .tmp-<PID of the build>-...)."""
        for name in [n for n in allocations if self._gone(n)]:
            self._forget(change, allocations, name)
        return allocations

    def _gone(self, name):
        if name.startswith(TEMP_PREFIX):
            return is_orphan(name)
        return not os.path.exists(self.containers.dir(name, 'config.json'))

    def _forget(self, change, allocations, name, links=True):
        """Delete one container's links, rules and peerings, and drop it from `allocations`."""
        if links:
            _delete_links(interface_names(name))
        alloc = allocations.pop(name, None)
        _release_ports(alloc or {})
        partners = self._partners(name, allocations)
        self._save_peers([p for p in self.book.peers() if name not in p])
        if alloc:
            for other in partners:
                change.peer(alloc, allocations[other], False)
            change.drop(alloc)

    def _partners(self, name, allocations):
        return [p for p in _firewall.partners(name, self.book.peers()) if p in allocations]

    def _change(self, thorough=False):
        """A firewall change on this host's backend (_nftables.backend): nftables or iptables (legacy). thorough
        (repair): every rule counted, even when nftables' generation says nothing changed since the last commit."""
        if self._backend is None:
            self._backend = _nftables.backend(self.store.config)
        if self._backend == 'nftables':
            recorded = self._record()
            known = recorded[0] == 'nftables' and len(recorded) > 1 and not thorough
            self._trusting = known  # until this command saves anything: see _save
            return _nftables.Change(recorded[1] if known else None)
        return _firewall.Change()

    def _commit(self, change, allocations, expected=True, overlay=False):
        """Commit the change; a rebuild is a repair when there were rules to expect (not the first network).
        The first commit on another backend than the last one's takes the rules out of that one. overlay: the
        overlay the rules are for (default: the record's)."""
        peers = [p for p in self.book.peers() if p[0] in allocations and p[1] in allocations]
        overlay = self.book.overlay() if overlay is False else overlay
        if change.commit(allocations, peers, overlay) and expected:
            self.repaired = True
        self._leave(self._backend, settled=getattr(change, 'settled', None))

    def _leave(self, current, always=False, settled=None):
        """Record the backend the rules are in (network/firewall); take conductor's rules out of the other one
        when the record named it (a move), when there was no record (rules an older conductor left), or with
        always (repair: whatever the record says). The new backend's rules are in place first: no moment
        without them. settled: the nftables ruleset generation the commit left, when no other tool's came between."""
        previous = self._record()[0]
        if previous != current or always:
            if current == 'nftables':
                self.repaired = _firewall.clear() or self.repaired
            else:
                self.repaired = _nftables.clear() or self.repaired
        self._write_record(current, settled)

    def _save(self, allocations):
        self._saving()
        self.book.save(allocations)

    def _save_peers(self, peers):
        self._saving()
        self.book.save_peers(peers)

    def _saving(self):
        """Before the first save of a command that will commit: the generation taken out of the record, so that
        a command killed between its save and its commit is listed in full next time. A command refused before
        it saves anything leaves the record as it was."""
        if self._trusting:
            self._trusting = False
            self._write_record('nftables')

    def _write_record(self, backend, generation=None):
        """network/firewall: the backend, with nftables' generation after a commit (the next change compares)."""
        if os.path.isdir(self.book.folder):
            record = os.path.join(self.book.folder, 'firewall')
            with open(record + '.tmp', 'w') as f:
                f.write(backend + ('' if generation is None else ' ' + generation) + '\n')
            os.rename(record + '.tmp', record)

    def _record(self):
        """[backend, generation] of network/firewall, or [None]."""
        try:
            with open(os.path.join(self.book.folder, 'firewall')) as f:
                return f.read().split() or [None]
        except FileNotFoundError:
            return [None]

    def _write_resolv_conf(self, name, alloc):
        # in place, not by rename: the container sees this file through a bind mount of its inode
        with open(self.containers.dir(name, 'resolv.conf'), 'w') as f:
            config = self.containers.config(name)
            f.write(resolv_conf(self.store.config, alloc['dns'], config.dns_search if config else None))


def facts(name: str, alloc: dict) -> dict:
    """What addnetwork and the modules report about a container's network."""
    keys = ('subnet', 'host_ip', 'container_ip', 'prefix', 'host_if', 'internet', 'ports', 'dns', 'uplink',
            'host_access', 'link_local', 'remote_peers')
    return dict({key: alloc.get(key) for key in keys}, name=name, interface='eth0',
                classroom_service=bool(alloc.get('classroom_service')), service_ports=alloc.get('service') or [])


def _prune_remote_peers(allocations, overlay):
    """Each container's remote peers, less those in no other host's subnet of `overlay` (all of them without one)."""
    for alloc in allocations.values():
        if alloc.get('remote_peers'):
            kept = []
            for address in alloc['remote_peers'] if overlay else ():
                try:
                    _overlay.remote_of(overlay, address)
                    kept.append(address)
                except ConductorError:
                    pass  # that host's subnet changed: the peering went with it
            alloc['remote_peers'] = kept


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@contextlib.contextmanager
def _entered(netns):
    """This thread in the network namespace of the fd `netns`, then back in its own."""
    own = os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
    try:
        sys_.setns(netns, sys_.CLONE_NEWNET)
        try:
            yield
        finally:
            sys_.setns(own, sys_.CLONE_NEWNET)
    finally:
        os.close(own)


def _host_networks(with_devices=False):
    """The networks this namespace routes to (its main table, which has each address's own subnet too),
    without the default route; with_devices, as (network, device). From /proc/net/route, not a netlink dump:
    pyroute2 would parse every container's addresses and routes in Python, a cost that grows with the number
    of containers."""
    networks = []
    with open('/proc/net/route') as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            destination, mask = (ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(fields[i]), 'little')) for i in (1, 7))
            if int(mask):
                network = ipaddress.ip_network('%s/%s' % (destination, mask), strict=False)
                networks.append((network, fields[0]) if with_devices else network)
    return networks


def _delete_links(names):
    """Delete those of these links that exist in this network namespace. A container's veth goes with its
    network namespace, so after a stop there is none."""
    present = [name for name in names if name in _links()]
    if present:
        with Netlink() as nl:
            for name in present:
                try:
                    nl.delete_link(socket.if_nametoindex(name))
                except OSError:
                    pass  # gone meanwhile, with its namespace


def _default_interface():
    """The interface of this namespace's first default route (from /proc/net/route: no pyroute2), or None."""
    with open('/proc/net/route') as f:
        for fields in [line.split() for line in f.read().splitlines()[1:]]:
            if fields[1] == fields[7] == '00000000':  # destination and mask 0.0.0.0
                return fields[0]
    return None


def _links():
    """The names of this network namespace's links. /proc/net/dev, not /sys/class/net: /proc/net follows the
    caller's namespace, sysfs the mounter's."""
    with open('/proc/net/dev') as f:
        return {line.split(':')[0].strip() for line in f.read().splitlines()[2:]}


# Published ports are held, as docker-proxy and conmon hold them: a program that starts later on one gets
# "address in use" instead of silently losing its traffic to the container. The sockets are bound (TCP never
# listens: the DNAT rules take the traffic first) and passed to a small perl process that lives as long as
# the container's supervisor, polling its /proc/<pid>/stat (start time checked) every 2 s.
PORT_HOLDER = """local unistd = require 'posix.unistd'
unistd.chdir('/')  -- posix_spawn left it in the caller's folder: no mount stays pinned for its life
local function alive()
  local f = io.open('/proc/' .. PID .. '/stat')
  if not f then return false end
  local fields = f:read('a'):gsub('^.*%) ', ''); f:close()  -- after the command's name, whatever it holds
  local i = 0
  for field in fields:gmatch('%S+') do i = i + 1; if i == 20 then return field == START end end
  return false
end
while alive() do unistd.sleep(2) end"""  # holds fds 3, 4, ... until the supervisor PID (its start time START) is gone


def _reserve_ports(ports):
    """A bound socket for each published host port; one clear error if another program has one."""
    sockets = []
    try:
        for port, protocol in sorted(_host_ports(ports)):
            sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM))
            try:
                sockets[-1].bind(('0.0.0.0', port))
            except OSError as e:
                raise ConductorError('host port %d/%s cannot be reserved (%s): another program holds it; choose '
                                     'another' % (port, protocol, e.strerror))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _hold(sockets, supervisor, supervisor_start):
    """Hand the sockets (as fds 3, 4, ...) to a holder process in a session of its own, which ends when the
    supervisor does; returns its [PID, start time]. posix_spawn: this process is not copied for it (a module's is
    large: a fork took 3 to 6 ms of a classroom's 100 containers each). It gets no other fd of ours: some are not
    close-on-exec (libnftables' netlink socket, what our own parent left us)."""
    high = []
    try:
        for sock in sockets:
            high.append(fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 64))  # above every target number
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        high.append(null)
        keep = 3 + len(sockets)
        actions = [(os.POSIX_SPAWN_DUP2, null, target) for target in (0, 1, 2)]
        actions += [(os.POSIX_SPAWN_DUP2, fd, number) for number, fd in enumerate(high[:-1], 3)]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in sorted(int(n) for n in os.listdir('/proc/self/fd')) if fd >= keep]
        lua, argv = lua_command('conductor-ports', PORT_HOLDER, PID=str(supervisor), START=str(supervisor_start))
        try:
            holder = os.posix_spawn(lua, argv, {'PATH': DEFAULT_PATH}, file_actions=actions, setsid=True)
        except OSError as e:
            raise ConductorError('the holder of the published ports could not be started: %s' % e)
    finally:
        for fd in high:
            os.close(fd)
        for sock in sockets:
            sock.close()
    return [holder, start_time(holder)]


def _release_ports(alloc):
    """End the holder of a container's ports (they are free once it is gone)."""
    holder = alloc.pop('port_holder', None)
    if holder and holder[1] is not None and alive(*holder):
        os.kill(holder[0], signal.SIGKILL)
        wait_gone(holder[0], holder[1], 2.0)


def _host_ports(ports):
    return {(p['host_port'], p['protocol']) for p in ports}


def _listening_ports():
    """(port, protocol) of every listening TCP socket and bound UDP socket in this network namespace."""
    result = set()
    for protocol, files in (('tcp', ('tcp', 'tcp6')), ('udp', ('udp', 'udp6'))):
        for name in files:
            try:
                with open('/proc/net/' + name) as f:
                    lines = f.read().splitlines()[1:]
            except (IOError, OSError):
                continue
            for line in lines:
                fields = line.split()
                if protocol == 'udp' or fields[3] == '0A':  # 0A: TCP_LISTEN
                    result.add((int(fields[1].rsplit(':', 1)[1], 16), protocol))
    return result


def _write_sysctl(path, value, missing_ok=False):
    full = '/proc/sys/' + path
    try:
        with open(full) as f:
            if f.read().strip() == value:
                return
    except (IOError, OSError):
        if missing_ok:  # IPv6 off in the kernel: nothing to turn off
            return
        raise
    with open(full, 'w') as f:
        f.write(value)
