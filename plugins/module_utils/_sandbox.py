# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Processes in new namespaces on an overlayfs root: the steps, named in the order the kernel needs them.

Every mount is made inside a new mount namespace, so when the last process in it exits the kernel
drops them all: a crash or a SIGKILL cannot leave a mount behind on the host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import signal
import stat

from ansible_collections.cs695.conductor.plugins.module_utils._defaults import DEFAULT_PATH, DEVICES
from ansible_collections.cs695.conductor.plugins.module_utils._processes import exit_code
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_


def spawn(child, out=None):
    """Fork; run child(report_fd) in the new process with stdout and stderr sent to out(line).

    child must exec or raise. An exception before exec is sent back over a close-on-exec pipe and
    returned as the message. Returns (exit code, message); signals give 128 + signal number.
    """
    outr, outw = os.pipe()
    errr, errw = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(outr)
            os.close(errr)
            sys_.set_parent_death_signal(signal.SIGKILL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(outw, 1)
            os.dup2(outw, 2)
            child(errw)
        except BaseException as e:  # noqa: B036 - the child must never return into the caller
            try:
                import traceback
                detail = traceback.format_exc() if os.environ.get('CONDUCTOR_DEBUG') else str(e) or repr(e)
                os.write(errw, detail.encode('utf-8', 'replace'))
            finally:
                os._exit(125)
        os._exit(0)
    os.close(outw)
    os.close(errw)
    with os.fdopen(outr, 'rb') as stream:
        for line in stream:
            if out:
                out(line.decode('utf-8', 'replace').rstrip('\n'))
    with os.fdopen(errr, 'rb') as errors:
        message = errors.read().decode('utf-8', 'replace')
    dummy, status = os.waitpid(pid, 0)
    return exit_code(status), message


def make_mounts_private():
    sys_.mount(None, '/', None, sys_.MS_REC | sys_.MS_PRIVATE)


def mount_overlay(lowers, upper, work, merged, cwd=None, nodev=False):
    """Mount lowers (top first) + upper at merged. Paths relative to cwd keep the option short.
    nodev: a device node made in the image or the container cannot be opened through it."""
    if cwd:
        os.chdir(cwd)
    sys_.mount('overlay', merged, 'overlay', sys_.MS_NODEV if nodev else 0,
               'lowerdir=%s,upperdir=%s,workdir=%s' % (':'.join(lowers), upper, work))


def mount_proc(rootfs):
    sys_.mount('proc', os.path.join(rootfs, 'proc'), 'proc', sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC)


def mount_dev(rootfs):
    """A private /dev: tmpfs with a few nodes, its own devpts and shm. Never the host's /dev."""
    dev = os.path.join(rootfs, 'dev')
    sys_.mount('tmpfs', dev, 'tmpfs', sys_.MS_NOSUID, 'mode=755,size=65536k')
    old = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for name in ('pts', 'shm'):
            os.mkdir(os.path.join(dev, name), 0o755)
    finally:
        os.umask(old)
    sys_.mount('devpts', os.path.join(dev, 'pts'), 'devpts', sys_.MS_NOSUID | sys_.MS_NOEXEC,
               'newinstance,ptmxmode=0666,mode=0620,gid=5')
    sys_.mount('shm', os.path.join(dev, 'shm'), 'tmpfs', sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC,
               'mode=1777,size=65536k')
    for name, target in (('ptmx', 'pts/ptmx'), ('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'),
                         ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
        os.symlink(target, os.path.join(dev, name))


def bind_file(source, rootfs, target, create=False):
    """Bind source over target inside rootfs. With create, a missing target (or a symlink in its
    place) becomes an empty file first: in the container's own upper layer, never in the image."""
    path = os.path.join(rootfs, target.lstrip('/'))
    if create and (os.path.islink(path) or not os.path.exists(path)):
        if os.path.lexists(path):
            os.unlink(path)
        open(path, 'a').close()
    if os.path.isfile(path) and not os.path.islink(path):
        sys_.mount(source, path, None, sys_.MS_BIND)


def pivot_into(rootfs):
    """Make rootfs the root and detach the old one, so no path leads back (chroot would)."""
    old_root = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
    os.chdir(rootfs)
    sys_.pivot_root('.', '.')
    os.fchdir(old_root)
    os.close(old_root)
    sys_.umount('.', sys_.MNT_DETACH)
    os.chdir('/')


def exec_command(argv, env, cwd):
    """Replace this process with argv, found on the image's PATH, in cwd.

    The PATH search is done here, not by os.execvpe: after pivot_root or setns the host's Python
    library is out of reach, and execvpe imports modules lazily.
    """
    env = dict(env)
    env.setdefault('PATH', DEFAULT_PATH)
    os.chdir(cwd)
    if '/' in argv[0]:
        os.execve(argv[0], argv, env)
    error = OSError(errno.ENOENT, 'command not found on PATH (%s)' % env['PATH'])
    for folder in env['PATH'].split(':'):
        try:
            os.execve(os.path.join(folder or '.', argv[0]), argv, env)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                error = e
    raise error
