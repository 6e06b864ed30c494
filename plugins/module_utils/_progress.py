# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A progress line for long work (debootstrap, a RUN step, save, load): what runs, for how long, and the bytes
so far where there are any, redrawn in place on the terminal.

Nothing is shown unless the command line turned it on (enable(), when stderr is a terminal): modules, pipes and
logs never see a progress line.
"""

import _thread  # built in and loaded already: threading is loaded only when progress is shown
import contextlib
import os
import sys
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import human_size

_state = {'fd': None}
_LOCK = _thread.allocate_lock()  # one writer at a time: the progress line, or a line of output


def enable(fd: int = 2) -> bool:
    """Show progress on fd (stderr) if it is a terminal; whether it is."""
    if os.isatty(fd):
        _state['fd'] = fd
    return _state['fd'] is not None


def say(line: str) -> None:
    """Print a line of output: over the progress line, which the next redraw puts back below it."""
    with _LOCK:
        if _state['fd'] is not None:
            os.write(_state['fd'], b'\r\x1b[K')
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


@contextlib.contextmanager
def shown(label: str, count=None):
    """While the block runs, 'label: 12s' (and ', 3.4MB' from count(), bytes so far) every half second."""
    fd = _state['fd']
    if fd is None:
        yield
        return
    import threading
    started, done = time.monotonic(), threading.Event()

    def draw():
        while not done.wait(0.5):
            try:
                extra = ', %s' % human_size(count()) if count else ''
            except OSError:
                extra = ''  # what it counts is being made or removed
            with _LOCK:
                os.write(fd, ('\r\x1b[K%s: %ds%s' % (label, time.monotonic() - started, extra)).encode())
    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        with _LOCK:
            os.write(fd, b'\r\x1b[K')


def folder_bytes(*paths: str) -> int:
    """The bytes of the files in these folders (not below them) and of these files: a quick count to show."""
    total = 0
    for path in paths:
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                total += sum(e.stat(follow_symlinks=False).st_size for e in entries if e.is_file(follow_symlinks=False))
        elif os.path.exists(path):
            total += os.path.getsize(path)
    return total
