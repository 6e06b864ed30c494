# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A container's files, from the host: conductor cp, diff, and volume export and import.

Whatever reads or writes inside a container's root, a volume or the host folder a student's files are copied
to is one of _copystep's children, chrooted into it and confined as a build's COPY step is: so a student's
symlink resolves inside their own files, never on the host. Between the two sides goes a tar stream.
"""

import contextlib
import os
import posixpath
import stat

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_name, walk
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._policy import COPY_CAPS
from ansible_collections.cs695.conductor.plugins.module_utils._processes import alive
from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes
from ansible_collections.cs695.conductor.plugins.module_utils import _copystep, _runtime, _sandbox, _seccomp
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

WHITEOUT_DEVICE = 0  # overlayfs marks a deleted path with a character device 0:0


def split(text: str) -> 'tuple[str | None, str]':
    """cp's argument: (NAME, PATH) for NAME:PATH, (None, text) for a host path or - (as Docker's: a host path
    with a colon in it is written ./a:b)."""
    name, colon, path = text.partition(':')
    if not (colon and name and '/' not in name):
        return None, text
    depth = 0
    for part in path.split('/'):
        depth = depth - 1 if part == '..' else depth + (part not in ('', '.'))
        if depth < 0:
            raise ConductorError('%s leads outside the container (past its /): give a path inside it, such as '
                                 '%s:/root/work' % (text, name))
    return check_name('container', name), path or '/'


def copy(store, source: str, dest: str) -> None:
    """conductor cp SOURCE DEST: one of them NAME:PATH (a running or exited container), the other a host path
    or - (a tar stream on stdin or stdout, as Docker's). Modes and owners (numbers, as the container has them)
    are kept, but setuid and setgid bits never reach the host."""
    (from_name, from_path), (to_name, to_path) = split(source), split(dest)
    if (from_name is None) == (to_name is None):
        raise ConductorError('give one side as NAME:PATH (a container\'s path) and the other as a host path or -, '
                             'got %r and %r' % (source, dest))
    containers = Containers(store)
    if from_name:
        with _container_view(containers, from_name, from_path) as view:
            if to_path == '-':
                with _std(1) as out:
                    _pack(store, view, from_path, out)
                return
            top, to_path = _top(from_path), _host_path(to_path)
            if top == '.' and not os.path.lexists(to_path) and os.path.isdir(os.path.dirname(to_path)):
                os.mkdir(to_path)  # NAME:DIR/. to a new folder: DIR's entries in it, as Docker's
            into = to_path if os.path.isdir(to_path) else os.path.dirname(to_path)
            if not os.path.isdir(into):
                raise ConductorError('cannot copy to %s: there is no folder %s on the host: make it first'
                                     % (to_path, into))
            with _scratch(store) as scratch:
                _pack(store, view, from_path, scratch, what='%s:%s' % (from_name, from_path))
                with _folder_view(into, host=True) as host:
                    _unpack(store, host, scratch, '/' + (os.path.basename(to_path) if into != to_path else ''),
                            None if top == '.' else top, to_host=True, room=into)
        return
    with _container_view(containers, to_name, to_path) as view:
        if from_path == '-':
            with _std(0) as source:
                _unpack(store, view, source, to_path, None)
            return
        top, from_path = _top(from_path), _host_path(from_path)
        if not os.path.lexists(from_path):
            raise ConductorError('cannot copy %s: there is no such file or folder on the host' % from_path)
        with _scratch(store) as scratch:
            with _folder_view(from_path if top == '.' else os.path.dirname(from_path), host=True) as host:
                _pack(store, host, '/' if top == '.' else '/' + top, scratch, top, what=from_path)
            _unpack(store, view, scratch, to_path, None if top == '.' else top)


def _room(folder):
    """The bytes a copy may write on folder's file system: what is free, less a reserve (a twentieth, at least
    1 GiB), so that a student's sparse or compressed giant never fills the disk other containers write on."""
    st = os.statvfs(folder)
    return max(0, st.f_bavail * st.f_frsize - max(1 << 30, st.f_blocks * st.f_frsize // 20))


def _host_path(path):
    """The host side of cp, volume export and import: an absolute path through no symlink. A link there may be
    one an earlier copy brought from a student's container (cp NAME:/hw grading/hw, hw a link to /etc/cron.d):
    followed, the next copy would write the student's file into the host's folder, or read the host's."""
    absolute = os.path.abspath(path)
    if os.path.realpath(absolute) != absolute:
        raise ConductorError('%s goes through a symbolic link (to %s): give the path itself (a link a copy made may '
                             'be a student\'s)' % (path, os.path.realpath(absolute)))
    return absolute


@contextlib.contextmanager
def _std(fd):
    """Our stdin or stdout, as another fd: a child's 0 and 1 are spawn's."""
    other = os.dup(fd)
    try:
        yield other
    finally:
        os.close(other)


def export_volume(store, name: str, output: str) -> dict:
    """volume export NAME -o FILE (- for stdout): the volume's files as a tar, owners and modes kept;
    {'files', 'size'}: how many files it holds, of how many bytes."""
    Volumes(store).require(name)
    with _folder_view(Volumes(store).dir(name, 'data')) as view:
        if output == '-':
            with _std(1) as out:
                return _pack(store, view, '/', out, '.')
        with _scratch(store) as scratch:
            summary = _pack(store, view, '/', scratch, '.', what='volume %s' % name)
            fd = os.open(_host_path(output), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                _send(scratch, fd)
            finally:
                os.close(fd)
    return summary


def import_volume(store, name: str, source: str) -> None:
    """volume import NAME -i FILE (- for stdin): a tar unpacked into the volume, every member kept inside it."""
    Volumes(store).require(name)
    opened = _std(0) if source == '-' else open(os.open(_host_path(source), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), 'rb')
    with opened as fd, _folder_view(Volumes(store).dir(name, 'data')) as view:
        _unpack(store, view, fd if isinstance(fd, int) else fd.fileno(), '/', None)


def diff(store, name: str) -> 'list[tuple[str, str]]':
    """conductor diff NAME: (kind, path) of what the container's own layer holds, against its image: A added,
    C changed, D deleted (a whiteout), as Docker's; a folder that holds a change is C."""
    containers = Containers(store)
    config = containers.require(name)
    lowers = store.lowerdirs(config.base, config.layers)
    upper = containers.dir(name, 'upper')
    changes = []
    for folder, dirs, files, fd in walk(upper):
        for entry in sorted(dirs + files):
            path = posixpath.join('/', folder[len(upper):].lstrip('/'), entry)
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, WHITEOUT_DEVICE):
                changes.append(('D', path))
            else:
                changes.append(('C' if _in_image(store.root, lowers, path) else 'A', path))
    return sorted(changes, key=lambda change: change[1])


CHANGES = ('CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK',
           'SHELL')  # what commit --change may say (Docker's list, and the other instructions that only set config)


def commit(store, name: str, image: str, changes: 'list[str] | tuple' = ()) -> dict:
    """conductor commit NAME IMAGE: the container's own layer becomes a new layer on its image, keyed by its
    content (_store.committed_key). A running container is frozen while its layer is copied (a consistent copy;
    nothing it runs is signalled or changed), then goes on. changes: Conductorfile instructions that set the new
    image's config (CMD, ENV, ...), as docker commit --change. The new image is any other: run, save, push it."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive, _bases, _conductorfile
    from ansible_collections.cs695.conductor.plugins.module_utils._buildplan import image_digest
    from ansible_collections.cs695.conductor.plugins.module_utils._common import remove_tree, temp_name, tree_size, utc_now, write_json
    from ansible_collections.cs695.conductor.plugins.module_utils._reference import image_name
    from ansible_collections.cs695.conductor.plugins.module_utils._store import committed_key
    import subprocess
    image = image_name(image)
    containers = Containers(store)
    record = containers.require(name)
    if store.image(image, checked=False) is not None:
        raise ConductorError('an image named %r exists: give another name, or remove it first (conductor rmi %s)'
                             % (image, image))
    source = store.image(record.image)
    config = dict(source['config']) if source and source.get('id') == record.image_id else {
        'env': record.environment, 'cmd': record.argv, 'workdir': record.run_workdir, 'user': record.run_as,
        'labels': record.run_labels}  # the image was rebuilt or removed: what the container runs with
    for text in changes:
        steps = _conductorfile.parse('FROM scratch\n' + text, '--change %r' % text)[1:]
        if len(steps) != 1 or steps[0].command not in CHANGES:
            raise ConductorError('--change %r is not one instruction that sets the image\'s config: give one of %s, '
                                 'as in a Conductorfile (--change \'CMD ["python3", "app.py"]\')' % (text, ', '.join(CHANGES)))
        config = _conductorfile.apply_config(config, _conductorfile.expand(steps[0], {}))
    config.pop('cmd_here', None)
    tmp = store.path('layers', temp_name('commit'))
    os.makedirs(tmp)
    try:
        with containers.store.lock(name):
            running = containers.state(name)['running']
            with containers.cgroup(name).frozen() if running else contextlib.nullcontext():
                copied = subprocess.run(['cp', '-a', '--reflink=auto', containers.dir(name, 'upper'),
                                         os.path.join(tmp, 'diff')], capture_output=True, text=True, check=False)
        if copied.returncode:
            raise ConductorError('cannot copy the files of container %r: %s' % (name, copied.stderr.strip()))
        below = record.layers[-1] if record.layers else record.base
        key = committed_key(below, _archive.diff_id(os.path.join(tmp, 'diff')))
        write_json(os.path.join(tmp, 'layer.json'), {
            'key': key, 'id': key, 'instruction': 'conductor commit %s %s' % (name, image),
            'size': tree_size(os.path.join(tmp, 'diff')), 'created': utc_now()})
        with store.lock():
            if store.image(image, checked=False) is not None:
                raise ConductorError('an image named %r was made meanwhile: give another name' % image)
            if not os.path.isdir(store.path('layers', key)):
                os.rename(tmp, store.path('layers', key))
            layers = list(record.layers) + [key]
            missing = [k for k in record.layers if store.layer(k) is None]
            if missing:
                raise ConductorError('layer %s of container %r is gone: its image was removed; nothing was made'
                                     % (missing[0], name))
            records = [store.layer(k) for k in layers]
            manifest = {'name': image, 'id': image_digest(record.base, [r['id'] for r in records], config),
                        'base': record.base, 'layers': layers, 'config': config, 'from': record.image,
                        'created': utc_now(),
                        'size': (_bases.base_info(store.root, record.base) or {}).get('size', 0) + sum(r['size'] for r in records)}
            write_json(store.image_path(image), manifest)
        return manifest
    finally:
        remove_tree(tmp)


def _in_image(store_root, lowers, path):
    """Whether path is in the image: found in a layer, top first, before a whiteout of it (no link followed)."""
    for lower in lowers:
        try:
            fd = _sandbox.open_in_root(os.path.join(store_root, lower), posixpath.dirname(path))
        except OSError:
            continue
        try:
            st = os.stat(posixpath.basename(path), dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        finally:
            os.close(fd)
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, WHITEOUT_DEVICE))
    return False


def _top(path):
    """The name a copied path has in the tar: its last part, or '.' (its entries) for a path ending in /."""
    return '.' if path.endswith('/.') or path in ('/', '.') else posixpath.basename(path.rstrip('/')) or '.'


def _confinement(store):
    return _runtime.Confinement(COPY_CAPS, _seccomp.filter_for(store.root, COPY_CAPS))


def _pack(store, view, path, out, arcname=None, what=None):
    """The tar of path in the view, written to out; {'files', 'size'}: how many files, of how many bytes. Into a
    scratch file (what is given), at most the room the state root's disk has."""
    arcname, lines, budget = arcname or _top(path), [], _room(store.root) if what else None
    code, message = _sandbox.spawn(lambda report: _copystep.pack_child(view, path, arcname, out, _confinement(store),
                                                                       report, budget), lines.append)
    if code:
        raise ConductorError('cannot read %s: %s' % (what or path, message or 'exit code %d' % code))
    if stat.S_ISREG(os.fstat(out).st_mode) and what:  # a scratch file, read next from its start
        os.lseek(out, 0, os.SEEK_SET)
    files, size = (int(n) for n in lines[-1].split())
    return {'files': files, 'size': size}


def _unpack(store, view, source, dest, top, to_host=False, room=None):
    """Unpack the tar on source into the view; at most the room on its disk (room: a folder on it; default the
    state root's, where containers and volumes are)."""
    budget = _room(room or store.root)
    code, message = _sandbox.spawn(lambda report: _copystep.unpack_child(view, source, dest, top, _confinement(store),
                                                                         report, to_host, budget))
    if code:
        raise ConductorError('cannot copy to %s: %s' % (dest, message or 'exit code %d' % code))


@contextlib.contextmanager
def _container_view(containers, name, path):
    """What the children enter: a running container's root (its /proc/<pid>/root, volumes and all), or an
    exited one's files, mounted in the child alone while this holds the container's lock (no start meanwhile):
    then a path in one of its volumes or binds, mounted only while it runs, is an error."""
    config = containers.require(name)
    with containers.store.lock(name):
        state = containers.state(name)
        inside = posixpath.normpath('/' + path.lstrip('/'))
        mounted = [b['target'] for b in config.binds if inside == b['target'] or inside.startswith(b['target'].rstrip('/') + '/')]
        if not state['running'] and mounted:
            raise ConductorError('%s:%s is in the volume or bind mount at %s, which is there only while %s runs: start '
                                 'it first, or copy from the volume itself (conductor volume export)'
                                 % (name, path, mounted[0], name))
        if not state['running']:
            folder = containers.dir(name)
            yield ('overlay', (containers.store.lowerdirs(config.base, config.layers), os.path.join(folder, 'upper'),
                               os.path.join(folder, 'work'), os.path.join(folder, 'rootfs'), containers.store.root))
            return
        fd = os.open('/proc/%d/root' % state['pid'], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if not alive(state['pid'], state['pid_start']):
                raise ConductorError('container %r stopped while its files were opened: run the command again' % name)
            yield ('fd', fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _folder_view(path, host=False):
    """A folder's fd, for a child to enter; a host's (host=True) opened through no symlink, whatever was checked
    before (_host_path): a copy of a student's files may have made one meanwhile."""
    fd = sys_.openat2(-100, path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, sys_.RESOLVE_NO_SYMLINKS) if host else \
        os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield ('fd', fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _scratch(store):
    """An unnamed file on the state root's file system: the tar between the two children."""
    fd = os.open(store.root, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


def _send(source, target):
    while os.sendfile(target, source, None, 1 << 24):
        pass
