# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A build's COPY and ADD step: the child process that copies into the image, confined; and conductor cp's
and volume export/import's children (pack_child, unpack_child), which enter a container's root, a volume or a
host folder the same way.

_builder forks it (_sandbox.spawn) with the step's overlay ready to mount; copy_child mounts it, keeps no
fd of the host's but its source's, seals the imports, chroots into the image's merged view (so the
image's symlinks resolve inside it) and confines itself before it copies. Everything here runs in the
image, so it uses only modules loaded before _sandbox.seal_imports(): this file's imports, and tarfile
with its decompressors, which copy_child loads first for ADD.
"""

import os
import posixpath
import shutil
import stat

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, remove_tree, walk
from ansible_collections.cs695.conductor.plugins.module_utils import _context, _runtime, _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_


def copy_child(root: str, overlay: 'tuple[list[str], str, str, str]',
               source: 'int | str | tuple[list[str], str] | None', sources: 'list[_context.Source]', args: dict,
               workdir: str, confinement: _runtime.Confinement, report: int, scratch: 'int | None',
               cgroup: 'list[str]') -> None:  # pragma: no cover - runs in the child and never returns
    """COPY and ADD: the image's merged view as root (so its symlinks resolve inside it); the sources read
    through an fd: the context's (each entry checked against what the plan hashed as it is copied), or a
    read-only view of the stage or image --from names. Inside the image nothing is imported (every module
    this needs is loaded first) and the step is confined: its cgroup, COPY_CAPS and the seccomp filter, no
    fd of the host's but the source's and scratch (an unnamed file ADD's archives are copied to)."""
    import tarfile  # ADD: load it, and its decompressors, here too
    for name in ('gzip', 'bz2', 'lzma'):
        try:
            __import__(name)
        except ImportError:
            pass
    _runtime.join_cgroup(cgroup)
    sys_.unshare(sys_.CLONE_NEWNS)
    _sandbox.make_mounts_private()
    lowers, upper, work, merged = overlay
    _sandbox.mount_overlay(lowers, upper, work, merged, cwd=root, nodev=True)
    if isinstance(source, tuple):  # --from: its layers, read-only (one lower alone is bound)
        from_lowers, at = source
        if len(from_lowers) > 1:
            sys_.mount('overlay', at, 'overlay', sys_.MS_RDONLY | sys_.MS_NODEV, 'lowerdir=%s' % ':'.join(from_lowers))
        else:
            sys_.mount(from_lowers[0], at, None, sys_.MS_BIND)
            sys_.mount(None, at, None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY | sys_.MS_NODEV)
        source = at
    source_fd = source if isinstance(source, int) or source is None else os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    _sandbox.close_fds_except({0, 1, 2, report, source_fd, scratch})
    _sandbox.seal_imports()
    os.chroot(merged)
    os.chdir('/')
    _runtime.confine(confinement)
    os.umask(0o022)
    try:
        _copy(tarfile, source_fd, sources, args, workdir, scratch)
    except OSError as e:  # the cause, in the image's paths: the bare errno text names no file
        raise ConductorError('%s: %s' % (e.filename, e.strerror) if e.filename and e.strerror else str(e)) from None
    os._exit(0)


def _copy(tarfile, source_fd, sources, args, workdir, scratch):  # pragma: no cover - runs in the child
    """copy_child's copy, in the image. The WORKDIR is made first, as Docker's WORKDIR makes it, so that
    `COPY x .` copies into it; a destination that ends in /, /. or /.. names a folder, made if missing."""
    if not os.path.isdir(workdir):
        if os.path.lexists(workdir):
            raise ConductorError('the WORKDIR %s is not a folder in the image' % workdir)
        os.makedirs(workdir, 0o755)
    owner = _runtime.user_ids(args['chown'])[:2] if args.get('chown') else (0, 0)
    mode = int(args['chmod'], 8) if args.get('chmod') else None
    dest = posixpath.join(workdir, args['dest'])
    into = dest.endswith('/') or posixpath.basename(dest) in ('.', '..') or os.path.isdir(dest) or \
        len(args.get('inline', [])) + len(sources or args['sources']) > 1
    for word, text in args.get('inline', []):
        target = posixpath.join(dest, word) if into else dest
        _make_parent(target)
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)  # never written through: a fifo or a link the image planted there
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), 'w') as f:
            f.write(text)
        os.lchown(target, *owner)
        os.chmod(target, mode if mode is not None else 0o644)
    for item in sources or [_context.Source(s) for s in _glob_in(source_fd, args['sources'])]:
        # the top follows its links inside the source (a context's was resolved by the plan: followed no more);
        # nothing below it is followed
        top = sys_.openat2(source_fd, item.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, 0,
                           sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS if item.expected else sys_.RESOLVE_IN_ROOT)
        if item.archive:
            os.ftruncate(scratch, 0)
            _context.check_copied('', os.fstat(top), _context.copy_hashed(top, os.dup(scratch)), item.expected)
            os.lseek(scratch, 0, os.SEEK_SET)
            _extract(tarfile, scratch, dest, owner if args.get('chown') else None)
        elif stat.S_ISDIR(os.fstat(top).st_mode):
            if not os.path.isdir(dest):
                os.makedirs(dest)
                os.lchown(dest, *owner)  # a folder the copy makes belongs to --chown's user too
            for entry in item.entries if item.entries is not None else _listing(top):
                _copy_into(top, entry, posixpath.join(dest, entry), item.expected, owner, mode)
        else:
            _copy_into(top, '', posixpath.join(dest, posixpath.basename(item.path)) if into else dest, item.expected,
                       owner, mode)
        os.close(top)


def _glob_in(source_fd, patterns):  # pragma: no cover - runs in the child
    """COPY --from sources: a pattern may be a glob, matched in the stage."""
    found = []
    for pattern in patterns:
        matches = _context.glob_in(source_fd, pattern) if _context.MAGIC.search(pattern) else [pattern]
        if not matches:
            raise ConductorError('COPY --from: nothing matches %s' % pattern)
        found.extend(matches)
    return found


def _make_parent(target):  # pragma: no cover - runs in the child
    parent = posixpath.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent)


def _listing(top):  # pragma: no cover - runs in the child
    """Every path below the folder fd top (a stage's, for COPY --from), parents first."""
    return [posixpath.join(folder[2:], name) if folder != '.' else name
            for folder, dirs, files, dummy in walk('.', dir_fd=top) for name in sorted(dirs + files)]


def _copy_into(top, entry, target, expected, owner, mode):  # pragma: no cover - runs in the child
    """Copy one entry of the source (_context.copy_entry) to target in the image, owned by owner as Docker's
    COPY does (root unless --chown), its mode kept unless --chmod. The target's folder is found as the
    image's links lead (the copy is chrooted into it); a file or link already there is replaced."""
    _make_parent(target)
    if os.path.lexists(target) and not os.path.isdir(target):
        os.unlink(target)
    folder, name = posixpath.split(target)
    parent = os.open(folder or '/', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = _context.copy_entry(top, entry, parent, name, expected)
        if st is None:
            return  # sockets, fifos and devices are not copied
        os.chown(name, owner[0], owner[1], dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, mode if mode is not None else stat.S_IMODE(st.st_mode), dir_fd=parent)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent)
    finally:
        os.close(parent)


def pack_child(view: tuple, path: str, arcname: str, out: int, confinement: _runtime.Confinement,
               report: int, budget: 'int | None' = None) -> None:  # pragma: no cover - runs in the child, never returns
    """conductor cp's and volume export's reading side: a tar of path (found as the view's own links lead),
    its top named arcname ('.': the folder's entries, each at the top), written to the fd out, its files' bytes at
    most budget (the room a scratch file has: a student's sparse 1 TB file must not fill the host's disk). Owners
    are kept as numbers: a name would be looked up through NSS, which loads libraries the view may hold."""
    import tarfile
    _enter(view, {out, report}, confinement)
    top = os.lstat(path)  # one clear error when it is missing, before anything is written
    counted = [0, 0, budget]
    with os.fdopen(out, 'wb') as f, tarfile.open(fileobj=f, mode='w|', format=tarfile.PAX_FORMAT) as tar:
        _context.keep_no_members(tar)  # a million files: not a million headers in memory
        if not stat.S_ISDIR(top.st_mode):
            parent = os.open(posixpath.dirname(path) or '/', os.O_PATH | os.O_DIRECTORY)
            _pack_entry(tarfile, tar, parent, posixpath.basename(path), arcname, counted)
        else:
            if arcname != '.':
                _pack_entry(tarfile, tar, os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW), '.', arcname, counted)
            for folder, dirs, files, fd in walk(path):  # by fds, at any depth, no link followed
                dirs.sort()
                inside = posixpath.relpath(folder, path)
                for name in sorted(dirs + files):
                    _pack_entry(tarfile, tar, fd, name, posixpath.normpath(posixpath.join(arcname, inside, name)),
                                counted)
    os.write(1, b'%d %d\n' % tuple(counted[:2]))  # to the parent: the files and their bytes
    os._exit(0)


def _pack_entry(tarfile, tar, folder, name, arcname, counted):  # pragma: no cover - runs in the child
    """One entry of the folder fd, as it is now: a regular file is opened without following a link or waiting on
    a FIFO (the student may swap it meanwhile), and only its bytes at that moment are read; devices, FIFOs and
    sockets are left out. Owners are kept as numbers: a name would be looked up through NSS."""
    st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=folder)
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=folder)
        with os.fdopen(fd, 'rb') as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return  # swapped for something else since
            info.size, info.mode = st.st_size, stat.S_IMODE(st.st_mode)
            _spend(counted[2], counted[1] + info.size, arcname)
            tar.addfile(info, f)
        counted[0], counted[1] = counted[0] + 1, counted[1] + info.size


MEMORY_MAX = 1 << 30  # the address space of cp's and volume import/export's children


def unpack_child(view: tuple, source: int, dest: str, top: 'str | None', confinement: _runtime.Confinement,
                 report: int, to_host: bool = False, budget: 'int | None' = None) -> None:  # pragma: no cover
    """conductor cp's and volume import's writing side: the tar on the fd source unpacked as Docker's cp does.
    top (the archive's top entry): into dest when dest is a folder, else as dest itself (its folder must
    exist); None: dest must be a folder. Every member is checked as ADD's are, inside the view. to_host:
    setuid and setgid bits are dropped, and a folder is never replaced by a file. budget: the files' bytes at
    most (the room on the destination's disk: a compressed archive of zeros must not fill it)."""
    import tarfile
    _enter(view, {source, report}, confinement)
    spent = [0, budget]
    if to_host:
        _unpack_beneath(tarfile, source, dest, top, spent)
        os._exit(0)
    rename = None
    if top is not None and not os.path.isdir(dest) and not dest.endswith('/'):  # DIR/ must be a folder
        rename, dest = (top, posixpath.basename(dest.rstrip('/'))), posixpath.dirname(dest.rstrip('/')) or '/'
    if not os.path.isdir(dest):
        raise ConductorError('%s is not a folder%s' % (dest, '' if os.path.lexists(dest) else ' (there is no such '
                                                       'folder): make it first'))
    _extract(tarfile, source, dest, None, rename, prefix='', spent=spent)
    os._exit(0)


def _spend(budget, total, name):  # pragma: no cover - runs in the child
    if budget is not None and total > budget:
        raise ConductorError('%s: the copy would be larger than the room left on the disk it goes to (%d MB, less a '
                             'reserve): refused, nothing more is written' % (_shown(name), budget // 1000000))


def _unpack_beneath(tarfile, source, dest, top, spent):  # pragma: no cover - runs in the child
    """cp to the host, chrooted into the folder the copy lands in, which may hold other students' copies: dest is
    /NAME (the top entry, top, renamed NAME) or / (top kept). Each member is made by fds beneath that folder, only
    under its top entry, never through a symlink (one the archive made, or one already there), with no hard link,
    device or FIFO, no setuid or setgid bit, and no folder replaced by a file."""
    folder = os.open('/', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    name_to = posixpath.basename(dest.rstrip('/')) or top
    with os.fdopen(os.dup(source), 'rb') as f, tarfile.open(fileobj=f, mode='r|*', tarinfo=_context.BoundedHeader) as tar:
        _context.keep_no_members(tar)
        for member in tar:
            name = _renamed(_context.member_path(member.name), (top, name_to) if top else None)
            if name is None or (top and name != name_to and not name.startswith(name_to + '/')):
                raise ConductorError('%s leads out of what is copied: refused' % _shown(member.name))
            if name == '.':
                continue
            where, base = posixpath.split(name)
            try:
                parent = sys_.openat2(folder, where or '.', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                                      sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS)
            except OSError:
                raise ConductorError('%s goes through a symbolic link or a file: refused' % _shown(member.name)) from None
            try:
                _member_beneath(tar, member, parent, base, spent)
            finally:
                os.close(parent)


def _member_beneath(tar, member, parent, base, spent):  # pragma: no cover - runs in the child
    try:
        there = os.stat(base, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        there = None
    if there is not None and not (member.isdir() and stat.S_ISDIR(there.st_mode)):
        if stat.S_ISDIR(there.st_mode):
            raise ConductorError('%s is a folder: it is not replaced by a file; remove it first' % _shown(member.name))
        os.unlink(base, dir_fd=parent)  # a file or a link: replaced, never written through
    if member.isdir():
        if there is None or not stat.S_ISDIR(there.st_mode):
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    elif member.issym():
        os.symlink(member.linkname, base, dir_fd=parent)
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        return
    elif member.isfile():
        spent[0] += member.size
        _spend(spent[1], spent[0], member.name)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        with tar.extractfile(member) as fin, os.fdopen(os.dup(fd), 'wb') as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    else:
        return  # hard links (cp's tar has none), devices and FIFOs are not made on the host
    try:
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o1777)  # no setuid or setgid bit on the host
        os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)


def _enter(view, keep, confinement):  # pragma: no cover - runs in the child
    """Make the view (an fd of a folder, or ('overlay', (lowers, upper, work, merged, cwd)): an exited container's
    root, mounted in a mount namespace of this child's) the root, keep no other fd, seal the imports, confine."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_MAX, MEMORY_MAX))  # whatever an archive makes tarfile do
    kind, where = view
    if kind == 'overlay':
        sys_.unshare(sys_.CLONE_NEWNS)
        _sandbox.make_mounts_private()
        lowers, upper, work, merged, cwd = where
        _sandbox.mount_overlay(lowers, upper, work, merged, cwd=cwd, nodev=True)
        where = os.open(merged, os.O_PATH | os.O_DIRECTORY)
    _sandbox.close_fds_except(set(keep) | {0, 1, 2, where})
    _sandbox.seal_imports()
    os.fchdir(where)
    os.chroot('.')
    os.chdir('/')
    _runtime.confine(confinement)
    os.umask(0o022)


def _extract(tarfile, top, dest, owner, rename=None, prefix='ADD: ', spent=None):  # pragma: no cover
    """ADD of a local archive (and cp's unpacking): unpacked into dest. Every member is checked again here (the
    plan checked the names): its folder must resolve inside dest, so no symlink, made by the archive or already
    in the image, carries a member out of it. rename: (old, new) for the archive's top entry."""
    with os.fdopen(os.dup(top), 'rb') as f, tarfile.open(fileobj=f, mode='r|*', tarinfo=_context.BoundedHeader) as tar:
        _context.keep_no_members(tar)
        if not os.path.isdir(dest):
            os.makedirs(dest)
        real_dest = os.path.realpath(dest)
        for member in tar:
            name = _renamed(_context.member_path(member.name), rename)
            target = posixpath.join(dest, name) if name and name != '.' else dest
            parent = os.path.realpath(posixpath.dirname(target))
            if name is None or (parent != real_dest and not parent.startswith(real_dest.rstrip('/') + '/')):
                raise ConductorError('%s%s leads out of %s' % (prefix, _shown(member.name), dest))
            if target == dest:
                continue
            if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)):
                remove_tree(target)
            if member.isdir():
                if not os.path.isdir(target):
                    os.mkdir(target)
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                linked = _renamed(_context.member_path(member.linkname), rename)
                if linked is None:
                    raise ConductorError('%s%s links to outside %s' % (prefix, _shown(member.name), dest))
                os.link(posixpath.join(dest, linked), target)
            elif member.isfile():
                if spent:
                    spent[0] += member.size
                    _spend(spent[1], spent[0], member.name)
                with tar.extractfile(member) as fin, open(target, 'xb') as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            else:
                continue  # devices and fifos are not unpacked
            uid, gid = owner or (member.uid, member.gid)
            os.lchown(target, uid, gid)
            if not member.issym():
                os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime))


def _renamed(name, rename):  # pragma: no cover - runs in the child
    if rename and name and (name == rename[0] or name.startswith(rename[0] + '/')):
        return rename[1] + name[len(rename[0]):]
    return name


def _shown(name):  # pragma: no cover - runs in the child
    """A member's name in an error: an archive's may be 100 kB long."""
    return name if len(name) <= 200 else name[:200] + '...'
