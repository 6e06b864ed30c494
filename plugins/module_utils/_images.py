# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The state root: image manifests, the layers and bases they use, and the lock around every change.

    lock                   flock held by every mutation
    bases/<key>/           rootfs/ from debootstrap + base.json
    layers/<key>/          diff/ (one overlayfs upper dir per COPY/RUN step) + layer.json
    images/<name>.json     manifest: base, ordered layer keys, config, id, size, created
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_name, load_config, locked, pid_alive, read_json, state_root)


class Store:
    def __init__(self, root=None, config=None):
        self.config = load_config() if config is None else config
        self.root = state_root(root, self.config)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def prepare(self):
        for folder in ('bases', 'layers', 'images'):
            path = self.path(folder)
            if not os.path.isdir(path):
                os.makedirs(path, 0o711)

    def lock(self):
        self.prepare()
        return locked(self.path('lock'))

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

    def lowerdirs(self, base, layers):
        """Overlay lowerdir entries, top layer first, relative to the root to keep the option short."""
        return ['layers/%s/diff' % key for key in reversed(layers)] + ['bases/%s/rootfs' % base]

    # -- removing ------------------------------------------------------------------------------
    def remove_image(self, name):
        """Delete the manifest and the layers no other image uses; return the manifest."""
        with self.lock():
            manifest = self.require_image(name)
            users = sorted(c['name'] for c in self._container_configs() if c['image'] == name)
            if users:
                raise ConductorError('image %r is used by container(s) %s: stop them first (conductor stop NAME)'
                                     % (name, ', '.join(users)))
            os.unlink(self.path('images', name + '.json'))
            used = self._used()[1]
            for key in manifest['layers']:
                if key not in used:
                    _remove(self.path('layers', key))
        return manifest

    def prune(self):
        """rmcache: delete every base and layer no image uses, and what dead builds left; return (count, bytes)."""
        count = freed = 0
        with self.lock():
            used_bases, used_layers = self._used()
            for folder, used in (('bases', used_bases), ('layers', used_layers)):
                for entry in os.listdir(self.path(folder)):
                    path = self.path(folder, entry)
                    if entry.startswith('.tmp-'):
                        if pid_alive(int(entry.split('-')[1])):
                            continue  # a build still running owns it
                    elif entry.startswith('.') or entry in used:
                        continue
                    size = _size_of(path)
                    _remove(path)
                    count, freed = count + 1, freed + size
        return count, freed

    def sweep(self, folder):
        """Remove temporary folders of builds whose process is gone (a killed build's leftovers)."""
        path = self.path(folder)
        for entry in os.listdir(path):
            if entry.startswith('.tmp-') and not pid_alive(int(entry.split('-')[1])):
                _remove(os.path.join(path, entry))

    def _used(self):
        """Bases and layers some image or container still needs."""
        users = self.images() + self._container_configs()
        return ({m['base'] for m in users}, {k for m in users for k in m['layers']})

    def _container_configs(self):
        folder = self.path('containers')
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        return [c for c in (read_json(os.path.join(folder, n, 'config.json')) for n in names if not n.startswith('.')) if c]


def _size_of(path):
    info = read_json(os.path.join(path, 'layer.json')) or read_json(os.path.join(path, 'base.json')) or {}
    return info.get('size', 0)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil  # only removals need it: run and exec stay quick to start
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def public(manifest):
    """The image as users see it: what the module returns and `images --json` prints."""
    if not manifest:
        return {}
    return {key: manifest[key] for key in ('name', 'id', 'layers', 'size', 'config', 'created', 'base', 'from')}
