# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The networks of a build's RUN steps: one helper process per build makes them (_network.serve_steps).

The helper loads the network code and python-iptables (25 ms) when it is forked, so fork it as early as
the build can: the CLI does before it even loads the builder, which then uses it or throws it away.

    with StepNetworks(store) as networks:    # forks the helper
        with networks.step(tag) as (netns, ready):
            ...                              # the step waits for a byte on ready before it execs

Forking early is the point, so this module imports only what the CLI has loaded already (and _socket, not
socket: 0.5 ms, not 3), and the fork freezes the garbage collector's view of the build's objects: a
collection would write to every page the parent shares with the helper, copying them (copy on write).
"""

import contextlib
import gc
import os
from _signal import SIGKILL  # signal, the same numbers as IntEnums, costs a command 1.5 ms (enum)
import struct

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils import _sandbox


class StepNetworks:
    """The network namespaces of a build's RUN steps, each with a veth and a container's -i rules, made by
    a helper process forked here: the network code and python-iptables load there while the build does
    other things, and each step's network is made while the step sets itself up, not on its way. One
    message per step: its tag with the namespace's fd and the write end of `ready` (a byte there lets the
    step exec); after the step, 1 (over) or 0 (interrupted: it may still run), answered once the rules are
    gone (the answer is read before the next step, or when the build ends). `end` ends the helper; so does
    the build's death (an end of file), after it removed what it made. A helper that was never asked for
    a network is killed at the end: it made nothing, and waiting for its imports would cost a cache hit."""

    def __init__(self, store):
        import _socket  # pylint: disable=import-outside-toplevel  # only a build that may network its steps needs it
        self.socket = _socket
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)  # both close-on-exec
        gc.freeze()  # the objects so far stay out of collections: their pages stay shared
        self.helper = os.fork()
        if self.helper == 0:  # pragma: no cover - the helper
            try:
                ours.close()
                from ansible_collections.cs695.conductor.plugins.module_utils._network import Network
                os._exit(Network(store).serve_steps(theirs))
            finally:
                os._exit(1)
        theirs.close()
        self.sock, self.removing, self.used = ours, False, False

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        try:
            if not self.used:
                os.kill(self.helper, SIGKILL)  # our own child, which has made nothing yet
            else:
                if self.removing:  # a failed set-up explains the step's failure: it is the error to show
                    failed = kind is not None
                    self._removed(raise_error=not failed or issubclass(kind, ConductorError), only_setup=failed)
                self.sock.send(b'end')  # a message, not an end of file: a step's first process may hold our end
        except OSError:
            pass  # the helper is gone already
        finally:
            self.sock.close()
            os.waitpid(self.helper, 0)

    def _removed(self, raise_error=True, only_setup=False):
        """Wait for the helper's answer about the last step's removal (asked for after the step: the layer's
        commit and the next step's set-up run meanwhile); raise what failed, or only a failed set-up."""
        self.removing = False
        try:
            answer = self.sock.recv(4096).decode('utf-8', 'replace') or 'the helper is gone'
        except OSError as e:
            answer = 'the helper is gone (%s)' % e
        if answer != 'ok' and raise_error and (answer.startswith('making it') or not only_setup):
            raise ConductorError("a RUN step's network: %s" % answer)

    @contextlib.contextmanager
    def step(self, tag):
        if self.removing:
            self._removed()
        self.used = True
        netns = _sandbox.new_net_namespace()
        ready, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.sock.sendmsg([tag.encode()], [(self.socket.SOL_SOCKET, self.socket.SCM_RIGHTS,
                                                struct.pack('2i', netns, ready_w))])
        except OSError as e:
            os.close(ready)
            os.close(netns)
            raise ConductorError("the helper that makes RUN steps' networks is gone (%s): build again" % e)
        finally:
            os.close(ready_w)
        over = False
        try:
            yield netns, ready
            over = True
        finally:
            for fd in (ready, netns):  # the namespace's last fd once the step is over: its veth goes with it
                os.close(fd)
            try:
                self.sock.send(b'1' if over else b'0')
                self.removing = True
            except OSError:
                pass  # the helper is gone: the next sweep removes what it made
            if not over:
                self._removed(raise_error=False)  # interrupted: gone before the build is
