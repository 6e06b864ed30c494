# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The state root: where everything lives, the lock around every change, and the image store.

    lock                   flock held by every change to shared records
    locks/<name>           flock held while one container is started, stopped or removed
    bases/<key>/           rootfs/ from debootstrap + base.json
    layers/<key>/          diff/ (one overlayfs upper dir per COPY/RUN step) + layer.json
    images/<name>.json     manifest: base, ordered layer keys, config, id, size, created (a reference's
                           '/' is '+' in the file name: _reference.file_name)
    containers/, network/  owned by _containers.py and _addresses.py

A key is 32 hex digits (a build step's cache key, a debootstrap base's) or sha256-<64 hex digits> (a
loaded layer's or base's: the OCI chain ID of its content, see loaded_key): the two forms never meet,
so no archive can stand in for a build step or a base. Keys become paths and overlay options, so
every manifest and every overlay checks them (check_keys, lowerdirs): a record with another key, a
forged or damaged one, is refused with its name.

Everything is root's alone: the root and every folder in it are 0700, files 0600, so no other user
of the host can reach a file a container made (a setuid shell in its upper layer, say). A root made
by an older Conductor is tightened the first time a command takes the lock.

A folder or file still being made is named .tmp-<PID>-... (_common.temp_name); sweep() removes
those whose process is gone. The store knows nothing of containers: whoever removes images passes
in what else still uses layers (_operations.py does).
"""

import fcntl
import os
import stat
import struct
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    TEMP_PREFIX, ConductorError, load_config, locked, read_json, remove_tree, state_root, temp_owner,
    tree_size)
from ansible_collections.cs695.conductor.plugins.module_utils._processes import pid_alive
from ansible_collections.cs695.conductor.plugins.module_utils._reference import (
    file_name, from_file_name, image_name, is_reference, parse)

LOADED = 'sha256-'
HEX = frozenset('0123456789abcdef')


class Store:
    def __init__(self, root=None, config=None):
        self.config = load_config() if config is None else config
        self.root = state_root(root, self.config)
        self._held = {}

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def prepare(self, trees: bool = False) -> None:
        """The state root and its folders, made if missing; concurrent commands may make them at once. trees (a build,
        a load, a pull: what makes bases and layers): bases/ and layers/ marked tops of hierarchies too (spread)."""
        os.makedirs(self.root, 0o700, exist_ok=True)
        if stat.S_IMODE(os.stat(self.root).st_mode) & 0o077:
            self.tighten()
        for folder in ('bases', 'layers', 'images'):
            os.makedirs(self.path(folder), 0o700, exist_ok=True)
            if trees and folder != 'images':
                spread(self.path(folder))

    def tighten(self) -> None:
        """Make a state root from before the hardening root's alone: folders 0700, records 0600."""
        os.chmod(self.root, 0o700)
        for folder in os.listdir(self.root):
            path = self.path(folder)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
        containers = self.path('containers')
        for name in os.listdir(containers) if os.path.isdir(containers) else []:
            folder = os.path.join(containers, name)
            if os.path.isdir(folder) and not os.path.islink(folder):
                os.chmod(folder, 0o700)
                for record in ('config.json', 'state.json', 'log'):
                    if os.path.isfile(os.path.join(folder, record)):
                        os.chmod(os.path.join(folder, record), 0o600)

    def lock(self, name: 'str | None' = None) -> '_Lock':
        """Hold the state root's lock, or with a name that container's (locks/<name>), for a with-block.

        Re-entrant for this Store: an operation that holds a lock may call methods that take it too (a
        second flock of the same file would wait for ourselves). Take a container's lock before the
        root's, never after: then two commands cannot wait for each other."""
        return _Lock(self, name)

    def sweep(self, folder: str) -> None:
        """Remove temporary entries of processes that are gone (what a killed build or create left)."""
        path = self.path(folder)
        for entry in os.listdir(path):
            if is_orphan(entry):
                self.discard(os.path.join(path, entry))

    @staticmethod
    def discard(path: str) -> None:
        """Remove what a command leaves behind, or say what could not be removed and go on: a leftover
        never fails the command (ps, run, build) that happens to find it. The next sweep tries again."""
        try:
            remove_tree(path)
        except OSError as e:
            sys.stderr.write('conductor: warning: cannot remove %s (%s): the next command tries again\n' % (path, e))

    # -- reading -------------------------------------------------------------------------------
    def image(self, name: str, checked: bool = True):
        """The manifest of image `name`, or None; its keys checked (checked=False: as it is, for rmi)."""
        manifest = read_json(self.image_path(name))
        if manifest is None and not is_reference(name):  # python: Docker's docker.io/library/python:latest, if pulled
            try:
                manifest = read_json(self.image_path(str(parse(name))))
            except ConductorError:
                pass  # a plain name no reference can be (upper case): only itself
        if manifest is not None and checked:
            check_keys(manifest, 'image %r' % name, 'remove it (conductor rmi %s) and build or load it again' % name)
        return manifest

    def image_path(self, name: str) -> str:
        """The manifest file of the image a user's name means (a plain name, or a reference normalized)."""
        return self.path('images', file_name(image_name(name)) + '.json')

    def require_image(self, name: str, checked: bool = True):
        manifest = self.image(name, checked)
        if manifest is None:
            name = image_name(name)
            if '/' in name:
                raise ConductorError('no image named %r: pull it first (conductor pull %s) or see conductor images'
                                     % (name, name))
            raise ConductorError("no image named %r: build it first (conductor build %s) or see conductor images"
                                 % (name, name))
        return manifest

    def images(self) -> 'list[dict]':
        """Every image whose manifest is sound: one damaged or forged manifest never breaks a listing or
        rmcache (run, build and rmi name it)."""
        folder = self.path('images')
        names = sorted(from_file_name(n[:-5]) for n in os.listdir(folder) if n.endswith('.json') and
                       not n.startswith(TEMP_PREFIX)) if os.path.isdir(folder) else []
        manifests = (self._listed(n) for n in names)
        return [m for m in manifests if m and bad_key(m) is None]

    def _listed(self, name):
        try:
            return self.image(name, checked=False)
        except ConductorError:
            return None  # a file no image name maps to: not one of ours

    def layer(self, key: str) -> 'dict | None':
        return read_json(self.path('layers', check_key(key, 'layer'), 'layer.json'))

    def keys(self, folder: str) -> 'set[str]':
        """The finished entries of bases/ or layers/: what a build plan counts as cached."""
        path = self.path(folder)
        return set(n for n in os.listdir(path) if not n.startswith('.')) if os.path.isdir(path) else set()

    def lowerdirs(self, base: str, layers: list) -> 'list[str]':
        """Overlay lowerdir entries, top layer first, relative to the root to keep the option short. Every key
        is checked here too: a container's record carries its image's keys, and a key is a path and a mount
        option (`..`, `:` and `,` would reach other folders)."""
        check_keys({'base': base, 'layers': layers}, 'this overlay', 'remove the container and its image and '
                   'make them again')
        return ['layers/%s/diff' % key for key in reversed(layers)] + ['bases/%s/rootfs' % base]

    # -- removing: `others` are the other users of layers (containers' configs: base and layers) --
    def delete_image(self, name: str, others: 'list | tuple' = ()):
        """Delete the manifest and the layers nothing else uses; return the manifest."""
        with self.lock():
            manifest = self.require_image(name, checked=False)
            path = self.image_path(name)
            if not os.path.exists(path):  # python: the docker.io/library/python:latest it found
                path = self.image_path(str(parse(name)))
            os.unlink(path)
            used = self._used(others)[1]
            layers = manifest.get('layers') if isinstance(manifest, dict) else None
            for key in layers if isinstance(layers, list) else []:
                if is_key(key) and key not in used:  # a forged manifest's other keys are left alone
                    remove_tree(self.path('layers', key))
        return manifest

    def prune(self, others: 'list | tuple' = ()) -> 'tuple[int, int]':
        """rmcache: delete every base and layer nothing uses, what dead builds left, the RUN
        --mount=type=cache folders and ADD's downloads; return (count, bytes)."""
        count = freed = 0
        with self.lock():
            for caches in (self.path('build-cache'), self.path('downloads')):
                for entry in os.listdir(caches) if os.path.isdir(caches) else []:
                    size = tree_size(os.path.join(caches, entry))
                    remove_tree(os.path.join(caches, entry))
                    count, freed = count + 1, freed + size
            used_bases, used_layers = self._used(others)
            for folder, used in (('bases', used_bases), ('layers', used_layers)):
                for entry in os.listdir(self.path(folder)):
                    if entry.startswith('.') and not is_orphan(entry) or entry in used:
                        continue  # a lock file, a build still running, or in use
                    path = self.path(folder, entry)
                    size = _size_of(path)
                    remove_tree(path)
                    count, freed = count + 1, freed + size
        return count, freed

    def _used(self, others):
        """Bases and layers some image, or one of `others`, still needs."""
        users = self.images() + [m for m in others if bad_key(m) is None]
        return ({m['base'] for m in users}, {k for m in users for k in m['layers']})


def is_key(key: object) -> bool:
    """A base or layer key Conductor makes: 32 hex digits (built) or sha256-<64 hex digits> (loaded)."""
    if not isinstance(key, str):
        return False
    body = key[len(LOADED):] if key.startswith(LOADED) else key
    return len(body) == (64 if body is not key else 32) and HEX.issuperset(body)


def check_key(key: object, kind: str) -> str:
    if not is_key(key):
        raise ConductorError('%r is not a %s key Conductor makes (32 hex digits, or sha256- and 64)' % (key, kind))
    return key


def loaded_key(below: 'str | None', diff_id: object) -> str:
    """The key of a loaded layer (or base, below=None): the OCI chain ID of it and the layers under it,
    sha256(chain ID below + ' ' + diff_id), as sha256-<hex>. A built key is 32 hex digits, so the two never meet."""
    import hashlib  # load's alone: run and exec stay quick to start
    if not (isinstance(diff_id, str) and diff_id.startswith('sha256:') and is_key(LOADED + diff_id[7:])):
        raise ConductorError('%r is not a diff_id (sha256:<64 hex digits>)' % (diff_id,))
    if below is None:
        return LOADED + diff_id[7:]
    return LOADED + hashlib.sha256(('sha256:%s %s' % (below[len(LOADED):], diff_id)).encode()).hexdigest()


def committed_key(below: str, diff_id: str) -> str:
    """The key of a container's layer made an image's (conductor commit): its content's digest chained to the
    key below it, as a loaded layer's (the chain ID itself, when the layers below are loaded ones)."""
    import hashlib
    if below.startswith(LOADED):
        return loaded_key(below, diff_id)
    loaded_key(None, diff_id)  # checked: a diff_id
    return LOADED + hashlib.sha256(('%s %s' % (check_key(below, 'layer'), diff_id)).encode()).hexdigest()


def bad_key(manifest: object) -> 'str | None':
    """What is wrong with a manifest's (or a container record's) keys, as words; None when they are sound."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get('layers'), list):
        return 'no list of layers'
    if not is_key(manifest.get('base')):
        return 'the base key %r' % (manifest.get('base'),)
    for key in manifest['layers']:
        if not is_key(key):
            return 'the layer key %r' % (key,)
    return None


def check_keys(manifest: object, what: str, fix: str) -> None:
    """Refuse a record whose base or layer keys Conductor did not make: they become paths and mount options."""
    bad = bad_key(manifest)
    if bad is not None:
        raise ConductorError('%s has %s, which is not a key Conductor makes (32 hex digits, or sha256- and 64): a '
                             'damaged or forged record, not used: %s' % (what, bad, fix))


def is_orphan(entry: str) -> bool:
    """A temporary entry whose maker is gone. One with no readable owner is a leftover too."""
    if not entry.startswith(TEMP_PREFIX):
        return False
    owner = temp_owner(entry)
    return owner is None or not pid_alive(owner)


def _size_of(path):
    info = read_json(os.path.join(path, 'layer.json')) or read_json(os.path.join(path, 'base.json')) or {}
    return info.get('size', 0)


def public(manifest: 'dict | None') -> dict:
    """The image as users see it: what the module returns and `images --json` prints."""
    if not manifest:
        return {}
    return {key: manifest.get(key) for key in ('name', 'id', 'layers', 'size', 'config', 'created', 'base', 'from',
                                               'resolved', 'digest')}


# chattr's flags (_IOR/_IOW('f', 1/2, long): the size of a long is in the number; the kernel reads an int), and +T
FS_IOC_GETFLAGS = 0x80006601 | struct.calcsize('l') << 16
FS_IOC_SETFLAGS = 0x40006602 | struct.calcsize('l') << 16
FS_TOPDIR_FL = 0x20000


def spread(folder: str) -> None:
    """Mark folder a top of directory hierarchies (chattr +T), where the file system keeps the flag (ext2/3/4; else
    nothing changes). ext4's Orlov allocator then places each folder made in it, and so the tree a build or a load
    makes under it, in a block group with many free inodes, rather than beside its siblings: not where a layer just
    removed was. On ext4 without a journal, making an inode steps over every inode freed in its group in the last
    minutes (60 to 300 s), one by one: a load of a 196 MB Debian image into a store just emptied took 7 s, and
    2.7 s with the flag. Only the flag is added: the others, read first, are written back as they were."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        flags = int.from_bytes(fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(8))[:4], sys.byteorder)  # an int, however named
        if not flags & FS_TOPDIR_FL:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, (flags | FS_TOPDIR_FL).to_bytes(4, sys.byteorder) + bytes(4))
    except OSError:
        pass  # tmpfs, XFS, btrfs: no such flag; a placement, never a failure
    finally:
        os.close(fd)


class _Lock:
    """Store.lock's with-block: the flock, or one more level of the one this Store holds already."""

    def __init__(self, store, name):
        self.store, self.name, self.flock = store, name, None

    def __enter__(self):
        key, held = self.name or '', self.store._held
        if held.get(key):
            held[key] += 1
            return
        self.store.prepare()
        if self.name:
            os.makedirs(self.store.path('locks'), 0o700, exist_ok=True)
        flock = locked(self.store.path('locks', self.name) if self.name else self.store.path('lock'))
        flock.__enter__()
        self.flock, held[key] = flock, 1

    def __exit__(self, *exc):
        key, held = self.name or '', self.store._held
        if self.flock is None:
            held[key] -= 1
        else:
            held[key] = 0
            self.flock.__exit__(*exc)
