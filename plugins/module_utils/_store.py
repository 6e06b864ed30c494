# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The state root: where everything lives, the lock around every change, and the image store.

    lock                   flock held by every change to shared records
    locks/<name>           flock held while one container is started, stopped or removed
    bases/<key>/           rootfs/ from debootstrap + base.json
    layers/<key>/          diff/ (one overlayfs upper dir per COPY/RUN step) + layer.json
    images/<name>.json     manifest: base, ordered layer keys, config, id, size, created
    containers/, network/  owned by _containers.py and _addresses.py

Everything is root's alone: the root and every folder in it are 0700, files 0600, so no other user
of the host can reach a file a container made (a setuid shell in its upper layer, say). A root made
by an older Conductor is tightened the first time a command takes the lock.

A folder or file still being made is named .tmp-<PID>-... (_common.temp_name); sweep() removes
those whose process is gone. The store knows nothing of containers: whoever removes images passes
in what else still uses layers (_operations.py does).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import os
import stat
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    TEMP_PREFIX, ConductorError, check_name, load_config, locked, read_json, remove_tree, state_root, temp_owner,
    tree_size)
from ansible_collections.cs695.conductor.plugins.module_utils._processes import pid_alive


class Store:
    def __init__(self, root=None, config=None):
        self.config = load_config() if config is None else config
        self.root = state_root(root, self.config)
        self._held = {}

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def prepare(self):
        if not os.path.isdir(self.root):
            os.makedirs(self.root, 0o700)
        if stat.S_IMODE(os.stat(self.root).st_mode) & 0o077:
            self.tighten()
        for folder in ('bases', 'layers', 'images'):
            path = self.path(folder)
            if not os.path.isdir(path):
                os.makedirs(path, 0o700)

    def tighten(self):
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

    @contextlib.contextmanager
    def lock(self, name=None):
        """Hold the state root's lock, or with a name that container's (locks/<name>).

        Re-entrant for this Store: an operation that holds a lock may call methods that take it too (a
        second flock of the same file would wait for ourselves). Take a container's lock before the
        root's, never after: then two commands cannot wait for each other."""
        key = name or ''
        if self._held.get(key):
            self._held[key] += 1
            try:
                yield
            finally:
                self._held[key] -= 1
            return
        self.prepare()
        if name:
            os.makedirs(self.path('locks'), 0o700, exist_ok=True)
        with locked(self.path('locks', name) if name else self.path('lock')):
            self._held[key] = 1
            try:
                yield
            finally:
                self._held[key] = 0

    def sweep(self, folder):
        """Remove temporary entries of processes that are gone (what a killed build or create left)."""
        path = self.path(folder)
        for entry in os.listdir(path):
            if is_orphan(entry):
                self.discard(os.path.join(path, entry))

    @staticmethod
    def discard(path):
        """Remove what a command leaves behind, or say what could not be removed and go on: a leftover
        never fails the command (ps, run, build) that happens to find it. The next sweep tries again."""
        try:
            remove_tree(path)
        except OSError as e:
            sys.stderr.write('conductor: warning: cannot remove %s (%s): the next command tries again\n' % (path, e))

    # -- reading -------------------------------------------------------------------------------
    def image(self, name):
        return read_json(self.path('images', check_name('image', name) + '.json'))

    def require_image(self, name):
        manifest = self.image(name)
        if manifest is None:
            raise ConductorError("no image named %r: build it first (conductor build %s) or see conductor images"
                                 % (name, name))
        return manifest

    def images(self):
        folder = self.path('images')
        names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith('.json')) if os.path.isdir(folder) else []
        return [m for m in (self.image(n) for n in names) if m]

    def layer(self, key):
        return read_json(self.path('layers', key, 'layer.json'))

    def keys(self, folder):
        """The finished entries of bases/ or layers/: what a build plan counts as cached."""
        path = self.path(folder)
        return set(n for n in os.listdir(path) if not n.startswith('.')) if os.path.isdir(path) else set()

    def lowerdirs(self, base, layers):
        """Overlay lowerdir entries, top layer first, relative to the root to keep the option short."""
        return ['layers/%s/diff' % key for key in reversed(layers)] + ['bases/%s/rootfs' % base]

    # -- removing: `others` are the other users of layers (containers' configs: base and layers) --
    def delete_image(self, name, others=()):
        """Delete the manifest and the layers nothing else uses; return the manifest."""
        with self.lock():
            manifest = self.require_image(name)
            os.unlink(self.path('images', name + '.json'))
            used = self._used(others)[1]
            for key in manifest['layers']:
                if key not in used:
                    remove_tree(self.path('layers', key))
        return manifest

    def prune(self, others=()):
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
        users = self.images() + list(others)
        return ({m['base'] for m in users}, {k for m in users for k in m['layers']})


def is_orphan(entry):
    """A temporary entry whose maker is gone. One with no readable owner is a leftover too."""
    if not entry.startswith(TEMP_PREFIX):
        return False
    owner = temp_owner(entry)
    return owner is None or not pid_alive(owner)


def _size_of(path):
    info = read_json(os.path.join(path, 'layer.json')) or read_json(os.path.join(path, 'base.json')) or {}
    return info.get('size', 0)


def public(manifest):
    """The image as users see it: what the module returns and `images --json` prints."""
    if not manifest:
        return {}
    return {key: manifest.get(key) for key in ('name', 'id', 'layers', 'size', 'config', 'created', 'base', 'from',
                                               'resolved')}
