# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The few rtnetlink requests conductor's networks need, without pyroute2.

pyroute2 costs 55 to 190 ms to import (_fastimport.py), more than the whole budget of a RUN step's
network and half of addnetwork's; these requests are one message each:

    with Netlink() as nl:
        nl.add_veth('cdr...', 'eth0', netns_fd)     # the peer made inside that namespace, both ends down
        nl.add_address(index, '192.168.0.1', 24)
        nl.set_up(index)
        nl.add_default_route('192.168.0.1')
        nl.replace_route('192.168.0.1', '192.168.0.0', 16)   # a route, made or replaced
        nl.delete_route('0.0.0.0', 0)                        # the default route, if there is one
        nl.delete_link(index)

A Netlink socket acts in the network namespace it was made in, whatever the thread does later.
"""

import os
import socket
import struct

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 20, 24, 25
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY, RTA_METRICS, RTAX_MTU = 1, 5, 8, 2
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 4, 0, 1


def _attribute(kind, data):
    """One rtattr: length, type, the data padded to 4 bytes (text gets its NUL)."""
    if isinstance(data, str):
        data = data.encode() + b'\0'
    length = 4 + len(data)
    return struct.pack('=HH', length, kind) + data + b'\0' * (-length % 4)


def _link(index=0, flags=0, change=0):
    """An ifinfomsg."""
    return struct.pack('=BxHiII', socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    """A NETLINK_ROUTE socket in this thread's network namespace; each request waits for the kernel's answer
    and raises OSError when it says no."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)  # 0: NETLINK_ROUTE
        self.sequence = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def request(self, kind, body, flags=0):
        self.sequence += 1
        self.sock.send(struct.pack('=IHHII', 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.sequence, 0)
                       + body)
        while True:
            reply = self.sock.recv(65536)
            dummy, reply_kind, dummy, sequence, dummy = struct.unpack_from('=IHHII', reply)
            if reply_kind == NLMSG_ERROR and sequence == self.sequence:
                error = -struct.unpack_from('=i', reply, 16)[0]
                if error:
                    raise OSError(error, 'netlink: %s' % os.strerror(error))
                return

    def add_veth(self, name, peer, netns):
        """A veth pair, both ends down: `name` here, `peer` made in the network namespace of the fd `netns`."""
        peer_link = _link() + _attribute(IFLA_IFNAME, peer) + _attribute(IFLA_NET_NS_FD, struct.pack('=I', netns))
        info = _attribute(IFLA_INFO_KIND, 'veth') + _attribute(IFLA_INFO_DATA, _attribute(VETH_INFO_PEER, peer_link))
        self.request(RTM_NEWLINK, _link() + _attribute(IFLA_IFNAME, name) + _attribute(IFLA_LINKINFO, info),
                     NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index):
        self.request(RTM_NEWLINK, _link(index, IFF_UP, IFF_UP))

    def delete_link(self, index):
        self.request(RTM_DELLINK, _link(index))

    def add_address(self, index, address, prefix):
        packed = socket.inet_aton(address)
        self.request(RTM_NEWADDR, struct.pack('=BBBBI', socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
                     + _attribute(IFA_LOCAL, packed) + _attribute(IFA_ADDRESS, packed), NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway):
        self.request(RTM_NEWROUTE, _route(0) + _attribute(RTA_GATEWAY, socket.inet_aton(gateway)),
                     NLM_F_CREATE | NLM_F_EXCL)

    def replace_route(self, gateway, destination='0.0.0.0', prefix=0, mtu=None):
        """A route to destination/prefix via gateway, made or replaced (ip route replace); with mtu, its MTU."""
        metrics = _attribute(RTA_METRICS, _attribute(RTAX_MTU, struct.pack('=I', mtu))) if mtu else b''
        self.request(RTM_NEWROUTE, _route(prefix, RTPROT_STATIC) + _destination(destination, prefix)
                     + _attribute(RTA_GATEWAY, socket.inet_aton(gateway)) + metrics, NLM_F_CREATE | NLM_F_REPLACE)

    def delete_route(self, destination='0.0.0.0', prefix=0):
        """The route to destination/prefix; none is fine."""
        try:
            self.request(RTM_DELROUTE, _route(prefix) + _destination(destination, prefix))
        except OSError as e:
            if e.errno != 3:  # ESRCH: there was none
                raise


def _route(prefix, protocol=RTPROT_BOOT):
    """An rtmsg: IPv4, main table, a unicast route of `prefix` bits (static: made by an administrator's tool)."""
    return struct.pack('=BBBBBBBBI', socket.AF_INET, prefix, 0, 0, RT_TABLE_MAIN, protocol, RT_SCOPE_UNIVERSE,
                       RTN_UNICAST, 0)


def _destination(address, prefix):
    return _attribute(RTA_DST, socket.inet_aton(address)) if prefix else b''


NETLINK_NETFILTER, NFT_MSG_NEWGEN, NFT_MSG_GETGEN, NFNL_SUBSYS_NFTABLES, NFTA_GEN_ID = 12, 15, 16, 10, 1
NLA_TYPE_MASK = 0x3fff


def nftables_generation() -> 'int | None':
    """This network namespace's nftables generation: a number every change to its ruleset, by any tool, moves
    on (NFT_MSG_GETGEN). None where the kernel does not answer, or answers something else."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER) as sock:
            sock.settimeout(1)
            sock.send(struct.pack('=IHHII', 20, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, NLM_F_REQUEST, 1, 0)
                      + struct.pack('=BBH', socket.AF_UNSPEC, 0, 0))
            reply = sock.recv(65536)
        length, kind, dummy, sequence = struct.unpack_from('=IHHI', reply)
        if kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN or sequence != 1:
            return None
        end, offset = min(length, len(reply)), 20  # the nlmsghdr, then the nfgenmsg
        while offset + 4 <= end:
            size, attribute = struct.unpack_from('=HH', reply, offset)
            if size < 4 or offset + size > end:
                return None
            if attribute & NLA_TYPE_MASK == NFTA_GEN_ID and size >= 8:
                return struct.unpack_from('>I', reply, offset + 4)[0]
            offset += (size + 3) & ~3
    except (OSError, struct.error):
        return None
    return None
