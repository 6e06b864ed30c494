# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Attach the user's terminal to a container through a new pseudo-terminal (run and exec without -d)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import select
import signal
import termios
import tty


def open_pty():
    """A pty pair sized like our terminal; the container gets the slave, never our own tty."""
    master, slave = os.openpty()
    _copy_size(master)
    return master, slave


def _copy_size(master):
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b'\0' * 8))
    except OSError:
        pass


def relay(master):
    """Copy our stdin to the pty and the pty to our stdout, raw, until the container side closes."""
    saved = termios.tcgetattr(0)
    previous = signal.signal(signal.SIGWINCH, lambda *_: _copy_size(master))
    tty.setraw(0)
    try:
        fds = [0, master]
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
