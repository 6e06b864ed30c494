# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Processes in new namespaces on an overlayfs root: the steps, named in the order the kernel needs them.

Every mount is made inside a new mount namespace, so when the last process in it exits the kernel
drops them all: a crash or a SIGKILL cannot leave a mount behind on the host.
"""

import errno
import os
from _signal import SIGKILL  # signal, the same numbers as IntEnums, costs a command 1.5 ms (enum)
import stat
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._policy import DEFAULT_PATH, DEVICES
from ansible_collections.cs695.conductor.plugins.module_utils._processes import exit_code
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_


MESSAGE_MAX = 4096  # a child's error, at most (a pipe holds 64 KiB, read only once the child's output ends)


def spawn(child, out=None):
    """Fork; run child(report_fd) in the new process with stdout and stderr sent to out(line).

    child must exec or raise. An exception before exec is sent back over a close-on-exec pipe and
    returned as the message. Returns (exit code, message); signals give 128 + signal number.
    """
    walk_tb = None
    if os.environ.get('CONDUCTOR_DEBUG'):  # imported here, on the host: the child may be inside an image
        from traceback import walk_tb
    outr, outw = os.pipe()
    errr, errw = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(outr)
            os.close(errr)
            sys_.set_parent_death_signal(SIGKILL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(outw, 1)
            os.dup2(outw, 2)
            child(errw)
        except BaseException as e:  # noqa: B036 - the child must never return into the caller
            try:
                detail = str(e) or repr(e)
                if walk_tb:  # files and lines only: reading their source (linecache) would open the image's files
                    detail = ''.join('  File "%s", line %d, in %s\n' % (frame.f_code.co_filename, line,
                                                                        frame.f_code.co_name)
                                     for frame, line in walk_tb(e.__traceback__)) + repr(e)
                os.write(errw, detail.encode('utf-8', 'replace')[:MESSAGE_MAX])  # more would fill the pipe: a hang
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


def seal_imports():
    """From here on, no module can be imported: call it before chroot, pivot_root or the last setns. After
    those, the folders on sys.path are the image's, and a module planted there (traceback.py, say) would
    run as this process, with every capability and an fd to the host. A module that was not loaded before
    is then an ImportError, never the image's code."""
    sys.meta_path[:] = []
    sys.path_hooks[:] = []
    sys.path[:] = []
    sys.path_importer_cache.clear()


def close_fds_except(keep):
    """Close every fd of this forked child but keep. The caller may have had a thread holding a pipe end
    at fork time, the write end of exec's stdin for one: held here, the command would never see its end."""
    for fd in [int(n) for n in os.listdir('/proc/self/fd')]:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, already closed


def new_net_namespace():
    """A new, empty network namespace as an fd (close-on-exec); this thread stays in its own."""
    own = os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
    try:
        sys_.unshare(sys_.CLONE_NEWNET)
        try:
            return os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        finally:
            sys_.setns(own, sys_.CLONE_NEWNET)
    finally:
        os.close(own)


def make_mounts_private():
    sys_.mount(None, '/', None, sys_.MS_REC | sys_.MS_PRIVATE)


def mount_overlay(lowers, upper, work, merged, cwd=None, nodev=False, quota=False):
    """Mount lowers (top first) + upper at merged. Paths relative to cwd keep the option short.
    nodev: a device node made in the image or the container cannot be opened through it.
    quota: mounted without CAP_SYS_RESOURCE, as overlayfs writes to upper with its mounter's credentials,
    and with that capability ext4 lets every write past a quota limit."""
    if cwd:
        os.chdir(cwd)
    if quota:
        effective, permitted, inheritable = sys_.capability_sets()
        sys_.set_capability_sets(effective & ~(1 << sys_.CAP_SYS_RESOURCE), permitted, inheritable)
    try:
        sys_.mount('overlay', merged, 'overlay', sys_.MS_NODEV if nodev else 0,
                   'lowerdir=%s,upperdir=%s,workdir=%s' % (':'.join(lowers), upper, work))
    finally:
        if quota:
            sys_.set_capability_sets(effective, permitted, inheritable)


def open_in_root(root, path, flags=os.O_PATH):
    """An fd for path inside the folder root (a path or an fd), resolved as if root were /: no symlink,
    absolute or relative, and no .. leads out of it, whatever the container planted there."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if isinstance(root, str) else root
    try:
        return sys_.openat2(root_fd, path.lstrip('/') or '.', flags | os.O_CLOEXEC, 0,
                            sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS)
    finally:
        if root_fd is not root:
            os.close(root_fd)


def exists_in_root(root, path):
    """Whether path exists inside root (a symlink counts, as with lexists), resolved as open_in_root does."""
    try:
        os.close(open_in_root(root, path, os.O_PATH | os.O_NOFOLLOW))
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise
    return True


def mount_in_root(source, rootfs, target, fstype=None, flags=0, data=None):
    """Mount on target inside rootfs through an fd opened by open_in_root: never on a host path a
    symlink in the image or the container's upper layer points to."""
    fd = open_in_root(rootfs, target, os.O_PATH | os.O_NOFOLLOW)
    try:
        sys_.mount(source, '/proc/self/fd/%d' % fd, fstype, flags, data)
    finally:
        os.close(fd)


def make_dirs_in_root(rootfs, target):
    """Make folder target inside rootfs (and its parents), each step resolved as open_in_root does: a
    symlink in the image leads somewhere inside the root, never out of it. Returns an O_PATH fd."""
    parts = [p for p in target.split('/') if p]
    for depth in range(1, len(parts) + 1):
        path = '/'.join(parts[:depth])
        try:
            os.close(open_in_root(rootfs, path, os.O_PATH | os.O_DIRECTORY))
        except FileNotFoundError:
            parent = open_in_root(rootfs, '/'.join(parts[:depth - 1]), os.O_PATH | os.O_DIRECTORY)
            try:
                os.mkdir(parts[depth - 1], 0o755, dir_fd=parent)
            except FileExistsError:  # a symlink to nothing: we do not guess where its folder should be
                raise OSError(errno.ENOENT, 'mount target %s: /%s is a symlink to a folder that does not exist in the '
                                            'image; make that folder in the image or choose another target'
                              % (target, path))
            finally:
                os.close(parent)
    return open_in_root(rootfs, target, os.O_PATH | os.O_DIRECTORY)


def tmpfs_in_root(rootfs, target, size, mode, executable=False):
    """A tmpfs at target inside rootfs (made if missing, resolved inside the root), nosuid and nodev, noexec
    unless executable: --tmpfs."""
    fd = make_dirs_in_root(rootfs, target)
    try:
        sys_.mount('tmpfs', '/proc/self/fd/%d' % fd, 'tmpfs', sys_.MS_NOSUID | sys_.MS_NODEV |
                   (0 if executable else sys_.MS_NOEXEC), 'size=%d,mode=%s' % (size, mode))
    finally:
        os.close(fd)


def bind_in_root(source, rootfs, target, readonly=False):
    """Bind the host folder or file source at target inside rootfs (made if missing), nosuid and nodev,
    read-only if asked. The target is resolved inside the root: an image's symlink cannot lead out."""
    if os.path.isdir(source):
        os.close(make_dirs_in_root(rootfs, target))
    else:
        os.close(make_dirs_in_root(rootfs, os.path.dirname(target)))
        bind_file(source, rootfs, target, create=True)
    flags = sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_NOSUID | sys_.MS_NODEV | (sys_.MS_RDONLY if readonly else 0)
    if os.path.isdir(source):
        fd = open_in_root(rootfs, target, os.O_PATH | os.O_DIRECTORY)
        try:
            sys_.mount(source, '/proc/self/fd/%d' % fd, None, sys_.MS_BIND | sys_.MS_REC)
        finally:
            os.close(fd)
    fd = open_in_root(rootfs, target)  # now the new mount, on top
    try:
        sys_.mount(None, '/proc/self/fd/%d' % fd, None, flags)
    finally:
        os.close(fd)


def mount_point(rootfs, target):
    """Make the folder target inside rootfs if the image lacks it (a pulled image may have no /proc or /dev):
    in the container's own upper layer, never through a symlink out (make_dirs_in_root)."""
    os.close(make_dirs_in_root(rootfs, target))


def mount_proc(rootfs):
    mount_point(rootfs, '/proc')
    mount_in_root('proc', rootfs, '/proc', 'proc', sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC)


def mount_dev(rootfs, shm_size=None):
    """A private /dev: tmpfs with a few nodes, its own devpts and shm (shm_size bytes, default 64 MiB as
    Docker's). Never the host's /dev."""
    mount_point(rootfs, '/dev')
    mount_in_root('tmpfs', rootfs, '/dev', 'tmpfs', sys_.MS_NOSUID, 'mode=755,size=65536k')
    dev = os.path.join(rootfs, 'dev')  # a tmpfs of our own now: nothing in it was planted
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
               'mode=1777,size=%dk' % ((shm_size or 64 << 20) >> 10))
    for name, target in (('ptmx', 'pts/ptmx'), ('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'),
                         ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
        os.symlink(target, os.path.join(dev, name))


def bind_file(source, rootfs, target, create=False):
    """Bind source over target inside rootfs, if it is there. With create, a missing target (or a symlink in its
    place; and its folder) becomes an empty file first: in the container's own upper layer, never in the image, and
    never through a symlink out of the root (the folder is opened with open_in_root)."""
    folder, name = os.path.split(target.lstrip('/'))
    if create:  # its folder made too (an image with no /etc); a symlink to nowhere in the way is an error
        parent = make_dirs_in_root(rootfs, folder)
    else:
        try:
            parent = open_in_root(rootfs, folder, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            return  # a missing folder (an image with no /etc): no file there to bind on
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if create and (st is None or stat.S_ISLNK(st.st_mode)):
            if st is not None:
                os.unlink(name, dir_fd=parent)
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=parent))
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if st is not None and stat.S_ISREG(st.st_mode):
            mount_in_root(source, rootfs, target, None, sys_.MS_BIND)
    finally:
        os.close(parent)


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
