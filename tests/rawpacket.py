# SPDX-License-Identifier: GPL-3.0-or-later
"""Forged packets, as a container's root with NET_RAW can send them, and a UDP listener to catch them.

Run inside a network namespace (nsenter --net=/proc/PID/ns/net): the firewall sees exactly the packet
a raw socket in the container would send.

    rawpacket.py ip SRC DST PORT           an IPv4/UDP packet with any source, routed by the kernel
    rawpacket.py frame IFACE MAC SRC DST PORT   the same in an Ethernet frame put on IFACE as it is
    rawpacket.py listen ADDR PORT SECONDS  print what arrives on ADDR:PORT (UDP) within SECONDS
    rawpacket.py vxlan DST PORT VNI MAC INNER_SRC INNER_DST INNER_PORT [OUTER_SRC]
        a VXLAN packet to DST:PORT whose inner frame (to MAC) carries INNER_SRC -> INNER_DST:INNER_PORT (UDP);
        from a plain UDP socket, or with OUTER_SRC a raw one with that outer source
"""
import socket
import struct
import sys


def checksum(data):
    data += b'\0' * (len(data) % 2)
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff


def udp_packet(src, dst, port, payload=b'forged'):
    udp = struct.pack('!HHHH', 40000, port, 8 + len(payload), 0) + payload
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack('!H', checksum(header)) + header[12:]
    return header + udp  # UDP checksum 0: none, which IPv4 allows


def main(argv):
    if argv[0] == 'ip':
        src, dst, port = argv[1], argv[2], int(argv[3])
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            s.sendto(udp_packet(src, dst, port), (dst, 0))
    elif argv[0] == 'frame':
        iface, mac, src, dst, port = argv[1], argv[2], argv[3], argv[4], int(argv[5])
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((iface, 0))
            own = s.getsockname()[4]
            s.send(bytes.fromhex(mac.replace(':', '')) + own + b'\x08\x00' + udp_packet(src, dst, port))
    elif argv[0] == 'vxlan':
        dst, port, vni, mac, inner_src, inner_dst, inner_port = argv[1:8]
        frame = bytes.fromhex(mac.replace(':', '')) + bytes.fromhex('02cdeeeeee01') + b'\x08\x00' + \
            udp_packet(inner_src, inner_dst, int(inner_port))
        payload = struct.pack('!II', 0x08000000, int(vni) << 8) + frame
        if len(argv) > 8:
            with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
                s.sendto(udp_packet(argv[8], dst, int(port), payload), (dst, 0))
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(payload, (dst, int(port)))
    elif argv[0] == 'listen':
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((argv[1], int(argv[2])))
            s.settimeout(float(argv[3]))
            print('ready', flush=True)
            try:
                data, peer = s.recvfrom(100)
                print('received %s from %s' % (data.decode(), peer[0]), flush=True)
            except socket.timeout:
                print('nothing', flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
