# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Attach the user's terminal to a container through a pseudo-terminal of the container's own devpts.

The container side opens the pty pair in its /dev/pts (so `tty` names it /dev/pts/0 and no host
terminal is ever handed in) and passes the master over a socket to the CLI, which relays it.
"""

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty


# _IOW('T', 0x31, int) and _IOR('T', 0x30, unsigned int): the generic Linux numbers (x86, arm, riscv)
TIOCSPTLCK = getattr(termios, 'TIOCSPTLCK', 0x40045431)
TIOCGPTN = getattr(termios, 'TIOCGPTN', 0x80045430)


def open_pty(pts):
    """A pty pair from the devpts mounted at pts (posix_openpt, unlockpt, ptsname by hand)."""
    master = os.open(os.path.join(pts, 'ptmx'), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack('i', 0))
    number = struct.unpack('I', fcntl.ioctl(master, TIOCGPTN, b'\0' * 4))[0]
    slave = os.open(os.path.join(pts, str(number)), os.O_RDWR | os.O_NOCTTY)
    return master, slave


def send_master(sock, master):
    socket.send_fds(sock, [b'pty'], [master])
    os.close(master)


def receive_master(sock):
    """The master end the container side sent, sized like our terminal; None if it sent none."""
    try:
        fds = socket.recv_fds(sock, 16, 1)[1]
    except OSError:
        return None
    if not fds:
        return None
    _copy_size(fds[0])
    return fds[0]


def _copy_size(master):
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b'\0' * 8))
    except OSError:
        pass


def relay(master, forward_input=True):
    """Copy our stdin to the pty (unless forward_input is false: run -t without -i) and the pty to our
    stdout, raw, until the container side closes."""
    saved = termios.tcgetattr(0)
    previous = signal.signal(signal.SIGWINCH, lambda *_: _copy_size(master))
    tty.setraw(0)
    try:
        fds = [0, master] if forward_input else [master]
        while True:
            try:
                readable = select.select(fds, [], [])[0]
            except InterruptedError:
                continue
            if master in readable:
                try:
                    data = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b''
                if not data:
                    return
                os.write(1, data)
            if 0 in readable:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds = [master]
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        os.close(master)
