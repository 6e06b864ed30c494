# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Images as OCI image layout archives: `save` writes one, `load` reads it back with the same id.

An archive is a tar of the OCI image layout: oci-layout, index.json (the image's name in the
annotation org.opencontainers.image.ref.name) and blobs/sha256/: one layer per step, the debootstrap
base first, then the image config (env, cmd, entrypoint, user, labels, ports, volumes, stop signal,
health check) and the manifest. Conductor's own record (the base's key and spec, each layer's key
and id, the image manifest) rides in the manifest annotation io.cs695.conductor, so a load restores
the same keys and the same image id, and the image runs without debootstrap.

Overlay whiteouts (0:0 character devices, and folders marked trusted.overlay.opaque) become OCI's
.wh.<name> and .wh..wh..opq files on the way out and overlay's own marks on the way in. Device
nodes are never saved (a container's /dev is its own) and a layer that holds one is refused.

load never trusts the archive: it takes the outer tar's regular files (the layout's names only) into a
temporary folder (from a plain tar that is a file, only what is read as JSON: the blobs are read where
they lie in it), checks every blob's sha256 and every layer's diff_id, and unpacks each layer into a
temporary folder, refusing any member that would land outside it. Only then, under the
store's lock, are the folders renamed into bases/ and layers/ and the manifest written: a killed
load leaves only .tmp- folders, which the next sweep removes.
"""

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import stat
import subprocess
import tarfile
import zlib

from ansible_collections.cs695.conductor.plugins.module_utils._buildplan import image_digest
from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, human_size, parse_size, remove_tree, temp_name, tree_size, utc_now, walk, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._context import BoundedHeader, member_path, through_link
from ansible_collections.cs695.conductor.plugins.module_utils._reference import image_name
from ansible_collections.cs695.conductor.plugins.module_utils._oci import (  # noqa: F401 (the vocabulary, re-exported)
    ANNOTATION, CONFIG, INDEX_TYPES, JSON_MAX, LAYER, LAYER_TYPES, MANIFEST, REF_NAME, pick_manifest)
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import HEALTH_DEFAULTS, SIGNALS, check_config
from ansible_collections.cs695.conductor.plugins.module_utils._store import HEX, check_keys, loaded_key
from ansible_collections.cs695.conductor.plugins.module_utils import _bases, _progress

OPAQUE = 'trusted.overlay.opaque'
WHITEOUT = '.wh.'
OPAQUE_MARK = '.wh..wh..opq'
KEPT_XATTRS = ('security.capability',)  # file capabilities (ping has one); nothing else is carried
NANOSECONDS = 1000000000


# -- save -------------------------------------------------------------------------------------------
def save(store, name: str, output: str, compress: bool = False, form: str = 'oci') -> dict:
    """Write image `name` to the archive `output` (renamed into place when complete); returns its summary.
    form: oci (an OCI image layout) or docker-archive (the same layout, its layers plain tars, with the
    manifest.json that docker load and podman load read)."""
    if form not in FORMATS:
        raise ConductorError('invalid archive format %r: use %s' % (form, ' or '.join(FORMATS)))
    manifest = store.require_image(name)
    tmp = store.path('images', temp_name('save'))
    partial = '%s.%s' % (output, temp_name())

    def written():  # the layers' blobs, then the archive of them
        return _progress.folder_bytes(partial if os.path.exists(partial) else os.path.join(tmp, 'blobs', 'sha256'))
    with _progress.shown('Saving %s' % manifest['name'], written):
        return _save(store, manifest, output, compress, form, tmp, partial)


def _save(store, manifest, output, compress, form, tmp, partial):
    try:
        top = write_layout(store, manifest['name'], tmp, compress and form == 'oci')
        entries = ['oci-layout', 'index.json']
        if form == 'docker-archive':
            oci_manifest = json.loads(_verified(tmp, top))
            tag = manifest['name'] if ':' in manifest['name'].rpartition('/')[2] else manifest['name'] + ':latest'
            _write(tmp, 'manifest.json', [{'Config': 'blobs/sha256/' + oci_manifest['config']['digest'][7:],
                                           'RepoTags': [tag] if '@' not in tag else [],
                                           'Layers': ['blobs/sha256/' + d['digest'][7:] for d in oci_manifest['layers']]}])
            entries.append('manifest.json')
        try:
            with tarfile.open(partial, 'w', format=tarfile.PAX_FORMAT) as tar:
                for entry in entries + ['blobs/sha256/' + n for n in sorted(
                        os.listdir(os.path.join(tmp, 'blobs', 'sha256')))]:
                    tar.add(os.path.join(tmp, entry), entry, recursive=False, filter=_plain)
            os.rename(partial, output)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    finally:
        remove_tree(tmp)
    return {'name': manifest['name'], 'id': manifest['id'], 'path': output, 'size': os.path.getsize(output)}


FORMATS = ('oci', 'docker-archive')


def write_layout(store, name: str, tmp: str, compress: bool) -> dict:
    """Image `name` as an OCI image layout in the new folder tmp (save's, and push's blobs); the index's
    descriptor of its manifest."""
    manifest = store.require_image(name)
    base = _bases.base_info(store.root, manifest['base'])
    if base is None:
        raise ConductorError('image %r has no base in this state root (made by an older Conductor?): build it again'
                             % name)
    layers = [store.layer(key) for key in manifest['layers']]
    os.makedirs(os.path.join(tmp, 'blobs', 'sha256'))
    folders = [store.path('bases', manifest['base'], 'rootfs')] + [store.path('layers', k, 'diff') for k in manifest['layers']]
    descriptors, diff_ids = [], []
    for folder in folders:
        descriptor, diff_id = _blob_of_layer(tmp, folder, compress)
        descriptors.append(descriptor)
        diff_ids.append(diff_id)
    config = _blob(tmp, CONFIG, json.dumps(oci_config(manifest, base, layers, diff_ids), sort_keys=True).encode())
    image = dict((k, v) for k, v in manifest.items() if k != 'pushed')  # where it went is this host's, not the image's
    record = {'image': image, 'base': base, 'layers': layers}
    oci_manifest = {'schemaVersion': 2, 'mediaType': MANIFEST, 'config': config, 'layers': descriptors,
                    'annotations': {ANNOTATION: json.dumps(record, sort_keys=True), REF_NAME: name}}
    top = _blob(tmp, MANIFEST, json.dumps(oci_manifest, sort_keys=True).encode())
    top['annotations'] = {REF_NAME: name, ANNOTATION + '.id': manifest['id']}
    _write(tmp, 'index.json', {'schemaVersion': 2, 'manifests': [top]})
    _write(tmp, 'oci-layout', {'imageLayoutVersion': '1.0.0'})
    return top


def _plain(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    info.mode = 0o644
    return info


def _write(folder, name, data):
    with open(os.path.join(folder, name), 'w') as f:
        json.dump(data, f, sort_keys=True)


def _blob(folder, media_type, data):
    """Store bytes as a blob; its descriptor."""
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(folder, 'blobs', 'sha256', digest), 'wb') as f:
        f.write(data)
    return {'mediaType': media_type, 'digest': 'sha256:' + digest, 'size': len(data)}


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes (and counts) what passes through to `out`."""

    def __init__(self, out):
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data) if self.out else len(data)


def _blob_of_layer(folder, source, compress):
    """Tar the folder `source` into a blob (gzip if asked); its descriptor and the diff_id of the plain tar."""
    path = os.path.join(folder, 'blobs', 'sha256', temp_name('layer'))
    with open(path, 'wb') as f:
        outer = _Hashing(f)
        packed = gzip.GzipFile(fileobj=outer, mode='wb', mtime=0, compresslevel=1) if compress else outer
        plain = _Hashing(packed)
        with tarfile.open(fileobj=plain, mode='w|', format=tarfile.PAX_FORMAT) as tar:
            _tar_folder(tar, source)
        if compress:
            packed.close()
    digest = outer.hash.hexdigest()
    os.rename(path, os.path.join(folder, 'blobs', 'sha256', digest))
    return ({'mediaType': LAYER + ('+gzip' if compress else ''), 'digest': 'sha256:' + digest, 'size': outer.size},
            'sha256:' + plain.hash.hexdigest())


def diff_id(folder: str) -> str:
    """A layer folder's diff_id: the sha256 of the tar `save` writes of it (a commit's layer is keyed by it)."""
    plain = _Hashing(None)
    with tarfile.open(fileobj=plain, mode='w|', format=tarfile.PAX_FORMAT) as tar:
        _tar_folder(tar, folder)
    return 'sha256:' + plain.hash.hexdigest()


def _tar_folder(tar, top):
    """A layer's folder as an OCI layer: whiteouts as .wh. files, no device nodes, numeric owners."""
    for folder, dirs, files, fd in walk(top):
        dirs.sort()
        rel_folder = os.path.relpath(folder, top)
        for name in sorted(dirs + files):
            path = '/proc/self/fd/%d/%s' % (fd, name)  # through the folder's fd: short at any depth
            arcname = os.path.normpath(os.path.join(rel_folder, name))
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlay's whiteout: the name was deleted
                tar.addfile(_empty(os.path.join(os.path.dirname(arcname), WHITEOUT + name), st))
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue  # device nodes, fifos and sockets: a container's /dev is its own
            info = tar.gettarinfo(path, arcname)
            info.uname = info.gname = ''
            for attribute in KEPT_XATTRS:
                value = _xattr(path, attribute)
                if value is not None:
                    info.pax_headers['SCHILY.xattr.' + attribute] = value.decode('utf-8', 'surrogateescape')
            if info.isreg():
                with open(path, 'rb') as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if stat.S_ISDIR(st.st_mode) and _xattr(path, OPAQUE) == b'y':
                tar.addfile(_empty(os.path.join(arcname, OPAQUE_MARK), st))


def _empty(name, st):
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = st.st_mtime, 0o644
    return info


def _xattr(path, name):
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def oci_config(manifest: dict, base: dict, layers: list, diff_ids: 'list[str]') -> dict:
    """The OCI image config: what other tools (podman, skopeo) read of the image."""
    config = manifest.get('config', {})
    signal = config.get('stop_signal')
    names = dict((number, 'SIG' + name) for name, number in SIGNALS.items())
    image = {'Env': config.get('env') or [], 'WorkingDir': config.get('workdir') or '/',
             'Labels': config.get('labels') or {}, 'ExposedPorts': dict((p, {}) for p in config.get('exposed', [])),
             'Volumes': dict((v, {}) for v in config.get('volumes', []))}
    for key, value in (('Cmd', config.get('cmd')), ('Entrypoint', config.get('entrypoint')), ('User', config.get('user')),
                       ('StopSignal', names.get(signal, str(signal)) if signal else None),
                       ('Shell', config.get('shell'))):
        if value:
            image[key] = value
    health = config.get('healthcheck')
    if health:
        image['Healthcheck'] = {'Test': health['test'], 'Retries': health['retries'],
                                'Interval': int(health['interval'] * NANOSECONDS),
                                'Timeout': int(health['timeout'] * NANOSECONDS),
                                'StartPeriod': int(health['start_period'] * NANOSECONDS)}
    return {'created': manifest.get('created') or utc_now(), 'architecture': base['spec']['arch'], 'os': 'linux',
            'config': image, 'rootfs': {'type': 'layers', 'diff_ids': diff_ids},
            'history': [{'created': base.get('created'), 'created_by': 'debootstrap %s' % manifest.get('resolved')}] +
                       [{'created': layer.get('created'), 'created_by': layer.get('instruction')} for layer in layers]}


# -- load -------------------------------------------------------------------------------------------
# The most one layer may unpack to (its plain tar), LOAD_MAX_LAYER_SIZE in conductor.conf. A debootstrap
# base is about 200 MB and the biggest single steps of course images (a full TeX Live, a CUDA toolkit)
# stay well under 10 GB, while a gzip bomb of a few MB stops at 10 GiB instead of filling the disk.
DEFAULT_MAX_LAYER_SIZE = '10g'


def max_layer_size(config: dict) -> int:
    return parse_size(config.get('LOAD_MAX_LAYER_SIZE') or DEFAULT_MAX_LAYER_SIZE,
                      'LOAD_MAX_LAYER_SIZE in the config', 1 << 20, '1m')


def archive_id(path: str):
    """The image id an archive holds (from index.json), or None if it is not one of ours."""
    try:
        with tarfile.open(path, tarinfo=_Header) as tar:
            index = json.loads(_read_json(tar.extractfile('index.json'), 'index.json'))
        return index['manifests'][0]['annotations'][ANNOTATION + '.id']
    except (OSError, KeyError, IndexError, ValueError, TypeError, tarfile.TarError, AttributeError, RecursionError,
            ConductorError):
        return None


def loaded_keys(diff_ids: list) -> 'list[str]':
    """The store keys of an archive's base and layers: OCI chain IDs of their diff_ids (see _store.loaded_key)."""
    keys = []
    for diff_id in diff_ids:
        keys.append(loaded_key(keys[-1] if keys else None, diff_id))
    return keys


def cache_id(keys: 'list[str]', config: dict) -> str:
    """What builds FROM a loaded image (and COPY --from it) key their steps on, instead of its id, which is
    the archive's word: a digest of its keys and config, so only the same content shares a build's cache."""
    return image_digest(keys[0], keys[1:], config)


def load(store, source: 'str | io.IOBase', name: 'str | None' = None) -> 'tuple[dict, bool]':
    """Load the archive at `source` (a path, or a readable binary stream); returns (manifest, changed).
    It may be an archive `conductor save` wrote, another tool's OCI archive (podman, skopeo, buildah,
    umoci) or a docker-archive (`docker save`, `podman save`).

    Nothing of the archive's record becomes a key or a path: each layer is stored under its chain ID
    (layers/sha256-..., bases/sha256-...), so no archive stands in for a build step or a debootstrap base.
    An image Conductor saved keeps its id (the same id on every host), another's has its config's digest
    (as Docker's); builds FROM it key their steps on its cache_id, from its content; its config is checked
    as a build checks it."""
    store.prepare()
    store.sweep('images')
    tmp = store.path('images', temp_name('load'))
    os.makedirs(tmp, 0o700)
    members = Members(tmp)
    try:
        with _progress.shown('Loading %s' % _where(source), members.done):
            _unpack_outer(source, members, max_layer_size(store.config))
            parts = read_archive(members, _where(source))
            return store_image(store, parts, name, lambda index: members.source(parts.layers[index][0]))
    finally:
        members.close()
        remove_tree(tmp)


class Members:
    """An archive's members by their path under the folder tmp: files there, or, from a plain tar that is a file,
    slices of it (path: (offset, size)), read where they lie."""

    def __init__(self, tmp: str):
        self.tmp, self.archive, self.in_place, self.slices, self.unpacking = tmp, None, False, {}, []

    def isfile(self, path: str) -> bool:
        return path in self.slices or os.path.isfile(path)

    def open(self, path: str):
        """The member for reading (a context manager)."""
        return _Slice(self.archive.fileno(), *self.slices[path]) if path in self.slices else open(path, 'rb')

    def source(self, path: str):
        """What a layer is unpacked from: its slice (the progress line counts what is read of it), or its file's path."""
        if path not in self.slices:
            return path
        self.unpacking.append(_Slice(self.archive.fileno(), *self.slices[path]))
        return self.unpacking[-1]

    def done(self) -> int:
        """Bytes so far, for the progress line: copied into tmp, and unpacked from where they lie."""
        return _progress.folder_bytes(os.path.join(self.tmp, 'blobs', 'sha256')) + sum(s.count for s in self.unpacking)

    def close(self):
        if self.archive is not None:
            self.archive.close()


class _Slice:
    """size bytes of the open file fd from offset, read with pread through a descriptor of its own (a thread that
    outlives the load, on ^C, never reads a file that took the archive's number), never past its end. A file that
    shrank or changed meanwhile gives other bytes: the blob's digest, or the layer's diff_id, catches them."""

    def __init__(self, fd, offset, size):
        self.fd, self.at, self.end, self.count = os.dup(fd), offset, offset + size, 0

    def read(self, size=-1):
        want = self.end - self.at if size is None or size < 0 else min(size, self.end - self.at)
        data = os.pread(self.fd, want, self.at) if want > 0 else b''
        self.at += len(data)
        self.count += len(data)
        return data

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Parts:
    """An image as an archive or a registry gives it, every blob in one folder and checked against its
    digest: its layers ([(path, label)], bottom first), its OCI config (parsed) and that config's digest,
    Conductor's record when Conductor saved it (else None), the names it came with, and the digest of the
    manifest it came by (a pull's; None for an archive)."""

    def __init__(self, layers, config, config_digest, record=None, names=(), digest=None):
        self.layers, self.config, self.config_digest = layers, config, config_digest
        self.record, self.names, self.digest = record, list(names), digest


def store_image(store, parts: Parts, name: 'str | None' = None, fetch=None, tick=None) -> 'tuple[dict, bool]':
    """Unpack each layer the store lacks into a temporary folder (its diff_id checked as it unpacks), several
    at a time, then, under the store's lock, rename them in and write the manifest; (manifest, changed).
    fetch(index), when given, gives what layer index is unpacked from instead of its path: a stream to unpack as it
    comes (a pull's, whose digest is checked at its end), or a load's slice of its archive; tick() runs every 0.1 s
    meanwhile (a progress line)."""
    store.prepare(trees=True)
    limit = max_layer_size(store.config)
    config = parts.config if isinstance(parts.config, dict) else {}
    diff_ids = config.get('rootfs', {}).get('diff_ids') if isinstance(config.get('rootfs'), dict) else None
    if not isinstance(diff_ids, list) or not parts.layers or len(diff_ids) != len(parts.layers):
        raise ConductorError('the image\'s manifest and config disagree on the layers (%d layers, diff_ids %r): '
                             'nothing was loaded' % (len(parts.layers), diff_ids if diff_ids is None else len(diff_ids)))
    if parts.record is not None:
        if not isinstance(parts.record, dict) or not isinstance(parts.record.get('layers'), list) or \
                len(parts.layers) != 1 + len(parts.record['layers']):
            raise ConductorError('the archive\'s manifest, config and record disagree on the layers: nothing was '
                                 'loaded')
        image, infos = _image(parts.record, diff_ids, name), [parts.record.get('base')] + parts.record['layers']
    else:
        image, infos = _foreign_image(parts, diff_ids, name), [None] * len(parts.layers)
    if parts.digest:
        image['digest'] = parts.digest  # the manifest a pull came by: a re-pull compares it
    keys = [('bases', image['base'])] + [('layers', key) for key in image['layers']]
    made, jobs = [], []

    def job(index, folder, kind, key):
        def unpack():
            content = os.path.join(folder, 'rootfs' if kind == 'bases' else 'diff')
            os.makedirs(content)
            path, label = parts.layers[index]
            source = fetch(index) if fetch is not None else path
            try:
                _unpack_layer(source, label, diff_ids[index], content, limit)
            finally:
                if source is not path:
                    source.close()
            write_json(os.path.join(folder, 'base.json' if kind == 'bases' else 'layer.json'),
                       _layer_info(kind, key, diff_ids[index], infos[index], tree_size(content), parts.config))
        return unpack
    try:
        for index, (kind, key) in enumerate(keys):
            if os.path.isdir(store.path(kind, key)):
                continue  # already here: the same content, by its digest
            made.append((store.path(kind, temp_name(key)), kind, key))
            jobs.append(job(index, *made[-1]))
        in_threads(jobs, PARALLEL, tick)
        with store.lock():
            while made:
                folder, kind, key = made[-1]
                if not os.path.isdir(store.path(kind, key)):  # else a concurrent load made it first
                    os.rename(folder, store.path(kind, key))
                made.pop()
                remove_tree(folder)
            gone = [key for kind, key in keys if not os.path.isdir(store.path(kind, key))]
            if gone:  # an rmcache or rmi meanwhile took a layer this image shares: nothing is written
                raise ConductorError('layer %s was removed (rmi or rmcache) while this image was stored: load or pull '
                                     'it again' % gone[0])
            old = store.image(image['name'], checked=False)
            if old and all(old.get(k) == image.get(k) for k in ('id', 'cache_id', 'digest')):
                return old, False
            image['size'] = _bases.base_info(store.root, image['base'])['size'] + sum(
                store.layer(key)['size'] for key in image['layers'])
            write_json(store.image_path(image['name']), image)
        return image, True
    finally:
        for folder, dummy, dummy in made:
            remove_tree(folder)


PARALLEL = 3  # layers fetched and unpacked at once, as Docker's max-concurrent-downloads


def in_threads(jobs: list, count: int, tick=None) -> None:
    """Run the callables, count at a time, in threads; tick() every 0.1 s meanwhile; the first error raised
    (the jobs not begun yet are not begun)."""
    if len(jobs) < 2 and tick is None:
        for function in jobs:
            function()
        return
    import threading
    queue, errors = list(jobs), []

    def work():
        while queue and not errors:
            try:
                function = queue.pop(0)
            except IndexError:
                return
            try:
                function()
            except BaseException as e:  # pylint: disable=broad-except
                errors.append(e)
    threads = [threading.Thread(target=work, daemon=True) for dummy in range(min(count, len(jobs)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            if tick:
                tick()
            thread.join(0.1)  # returns as soon as it ends
    if errors:
        raise errors[0]


def _foreign_image(parts, diff_ids, name):
    """The manifest for an image another tool made: its id is its config's digest, its config read from OCI's."""
    try:
        keys = loaded_keys(diff_ids)
    except ConductorError as e:
        raise ConductorError('the image config names a bad layer digest: %s: nothing was loaded' % e)
    config = check_config(from_oci_config(parts.config), 'the image config (nothing was loaded)')
    if name is None:
        if len(parts.names) != 1:
            raise ConductorError('the archive names %s: give the name to load it as (-n NAME, the module\'s name)'
                                 % ('no image' if not parts.names else 'several images (%s)' % ', '.join(parts.names)))
        name = parts.names[0]
    created = parts.config.get('created')
    image = {'name': image_name(name), 'id': parts.config_digest[7:], 'cache_id': cache_id(keys, config),
             'base': keys[0], 'layers': keys[1:], 'config': config,
             'from': image_name(name) if parts.digest else 'archive', 'resolved': parts.digest,
             'created': _text(created) or utc_now()}
    return image


def from_oci_config(oci: dict) -> dict:
    """Conductor's image config (check_config's keys) from an OCI or Docker image config: what runs reads."""
    image = oci.get('config') if isinstance(oci, dict) else None
    image = image if isinstance(image, dict) else {}
    config = {'env': image.get('Env') or [], 'cmd': image.get('Cmd') or None,
              'entrypoint': image.get('Entrypoint') or None, 'workdir': image.get('WorkingDir') or None,
              'user': image.get('User') or None, 'labels': image.get('Labels') or {},
              'exposed': sorted(image.get('ExposedPorts') or {}), 'volumes': sorted(image.get('Volumes') or {})}
    if config['workdir']:
        config['workdir'] = posixpath.normpath(config['workdir'])
    if image.get('Shell'):
        config['shell'] = image['Shell']
    signal = image.get('StopSignal')
    if signal:
        text = str(signal).upper()
        number = int(text) if text.isdigit() else SIGNALS.get(text[3:] if text.startswith('SIG') else text)
        config['stop_signal'] = number if number is not None else signal  # an unknown name: check_config says so
    health = image.get('Healthcheck')
    if isinstance(health, dict) and health.get('Test') and health['Test'][0] != 'NONE':
        seconds = dict((key, health[field] / NANOSECONDS) for key, field in (
            ('interval', 'Interval'), ('timeout', 'Timeout'), ('start_period', 'StartPeriod'),
            ('start_interval', 'StartInterval')) if isinstance(health.get(field), int) and health[field] > 0)
        config['healthcheck'] = dict(HEALTH_DEFAULTS, test=health['Test'], **seconds)
        if isinstance(health.get('Retries'), int) and health['Retries'] > 0:
            config['healthcheck']['retries'] = health['Retries']
    return config


# -- reading an archive ------------------------------------------------------------------------------
JSON_NAMES = ('oci-layout', 'index.json', 'manifest.json', 'repositories')


def _layout_name(name):
    """A name an OCI layout or a docker-archive holds: oci-layout, index.json, manifest.json, repositories,
    blobs/sha256/<digest>; <id>.json, <id>.tar, <id>/layer.tar, <id>/json, <id>/VERSION (id: 64 hex digits)."""
    if name in JSON_NAMES:
        return True
    folder, dummy, base = name.rpartition('/')
    if folder == 'blobs/sha256':
        return len(base) == 64 and HEX.issuperset(base)
    if not folder:
        stem, dot, ext = base.partition('.')
        return len(stem) == 64 and HEX.issuperset(stem) and ext in ('json', 'tar')
    return len(folder) == 64 and HEX.issuperset(folder) and base in ('layer.tar', 'json', 'VERSION')


def _check_space(folder, size, source):
    """Refuse a member that would leave the state root's file system with less than 1 GiB free."""
    st = os.statvfs(folder)
    if size > st.f_bavail * st.f_frsize - (1 << 30):
        raise ConductorError('%s holds %s more than the state root has free (keeping 1 GiB): refused, nothing was '
                             'loaded' % (_where(source), human_size(size)))


def _is_json_name(name):
    return name in JSON_NAMES or name.endswith('.json') or posixpath.basename(name) in ('json', 'VERSION')


def _unpack_outer(source, members, limit):
    """The archive's files into members.tmp: only regular files (folders made as needed, symlinks left out), each
    name plain and at most three deep, each under its cap (JSON_MAX for what is read as JSON, limit for the rest).
    From a plain tar that is a file (a path), what is not read as JSON is not copied: members.slices says where it
    lies in the archive, which stays open as members.archive."""
    tmp = members.tmp
    try:
        tar = _open_outer(source, members)
    except (OSError, ValueError, tarfile.TarError) as e:
        raise ConductorError('cannot read the archive %s: %s' % (_where(source), e))
    try:
        with tar:
            for member in tar:
                name = member_path(member.name)
                if (member.isdir() or member.issym()) and name is not None:
                    continue  # folders are made as needed; a symlink (docker-archive's legacy <id>/layer.tar) is
                    # never made: what manifest.json names must be a file of the archive
                if not member.isreg() or member.issparse() or name is None or not _layout_name(name):
                    raise ConductorError('%s is not an image archive Conductor can load (an OCI archive or a '
                                         'docker-archive): unexpected entry %r, nothing was loaded'
                                         % (_where(source), member.name))
                if _is_json_name(name):
                    too_big, cap = _too_json(name), JSON_MAX
                else:
                    too_big, cap = _too_big('%s of the archive' % name, limit), limit
                if member.size > cap:
                    too_big()
                _check_space(tmp, member.size, source)  # read where it lies or not, a layer needs that room unpacked
                if members.in_place and not _is_json_name(name):  # where it lies; a later copy wins
                    if member.offset_data + member.size > os.fstat(members.archive.fileno()).st_size:
                        raise EOFError('%s ends past the end of the archive' % name)
                    members.slices[os.path.join(tmp, name)] = (member.offset_data, member.size)
                    continue
                os.makedirs(os.path.join(tmp, os.path.dirname(name)), 0o700, exist_ok=True)
                with tar.extractfile(member) as f, open(os.path.join(tmp, name), 'wb') as out:  # a later copy wins, as tar's
                    _stream(f, out.write, cap, too_big)
    except (OSError, EOFError, ValueError, tarfile.TarError, zlib.error) as e:
        raise ConductorError('the archive %s is damaged or truncated (%s): nothing was loaded' % (_where(source), e))


def _open_outer(source, members):
    """The outer archive as a tarfile: read where its members lie (members.in_place set) when it is a plain tar in a
    file; else (compressed, a pipe, standard input) as a stream, as it comes."""
    if not isinstance(source, str):
        return tarfile.open(fileobj=source, mode='r|*', tarinfo=_Header)
    f = open(source, 'rb')  # pylint: disable=consider-using-with  # Members.close closes it, or the except below
    try:
        if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            try:
                tar = tarfile.open(fileobj=f, mode='r:', tarinfo=_Header)
                members.archive, members.in_place = f, True
                return tar
            except tarfile.ReadError:  # compressed, or no tar at all: the stream's reading says which
                f.seek(0)
        tar = tarfile.open(fileobj=f, mode='r|*', tarinfo=_Header)
        members.archive = f  # Members.close closes it
        return tar
    except BaseException:
        f.close()
        raise


def read_archive(members: Members, where: str) -> Parts:
    """The Parts of a read archive: an OCI image layout (index.json) or a docker-archive (manifest.json)."""
    tmp = members.tmp
    try:
        if members.isfile(os.path.join(tmp, 'index.json')):
            return _read_layout(members)
        if members.isfile(os.path.join(tmp, 'manifest.json')):
            return _read_docker_archive(members)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise ConductorError('%s is not an image archive Conductor can load: %s: nothing was loaded'
                             % (where, e if not isinstance(e, RecursionError) else 'JSON nested too deeply'))
    raise ConductorError('%s is neither an OCI archive (it has no index.json) nor a docker-archive (no manifest.json): '
                         'nothing was loaded; Conductor loads what conductor save, docker save, podman save and '
                         'skopeo copy write' % where)


def _json_file(members, name):
    with members.open(os.path.join(members.tmp, name)) as f:
        return json.loads(_read_json(f, name))


def _read_layout(members):
    """Check an OCI layout and every blob's digest; its Parts."""
    if _json_file(members, 'oci-layout').get('imageLayoutVersion') != '1.0.0':
        raise ValueError('oci-layout is not version 1.0.0')
    index = _json_file(members, 'index.json')
    top = pick_manifest(index, 'index.json')
    descriptor = top
    if top.get('mediaType') in INDEX_TYPES:
        descriptor = pick_manifest(json.loads(_verified(members, top)), 'the index %s' % top.get('digest'))
    manifest = json.loads(_verified(members, descriptor))
    record = json.loads(manifest.get('annotations', {}).get(ANNOTATION, 'null'))
    names = [top['annotations'][REF_NAME]] if isinstance(top.get('annotations'), dict) and \
        isinstance(top['annotations'].get(REF_NAME), str) else []
    return parts_of(members, manifest, record, names)


def parts_of(tmp: 'str | Members', manifest: dict, record, names: 'list[str]', digest: 'str | None' = None,
             check_layers: bool = True) -> Parts:
    """Parts from an image manifest whose blobs are in tmp/blobs/sha256 (a folder, or an archive's Members): the
    config checked and read, each layer's media type checked, and each layer blob checked (check_layers=False: a
    pull's, checked as it came)."""
    members = tmp if isinstance(tmp, Members) else Members(tmp)
    config = json.loads(_verified(members, manifest['config']))
    descriptors = manifest['layers']
    if not isinstance(descriptors, list) or not isinstance(config, dict):
        raise ValueError('the layers must be a list and the config an object')
    layers = []
    for descriptor in descriptors:
        descriptor = descriptor if isinstance(descriptor, dict) else {}
        if descriptor.get('mediaType') not in LAYER_TYPES:
            raise ConductorError('layer %s has media type %s: only tar layers (plain, gzip or zstd) load: nothing was '
                                 'loaded' % (descriptor.get('digest'), descriptor.get('mediaType')))
        if check_layers:
            _verified(members, descriptor, read=False)
        layers.append((blob_file(members.tmp, descriptor), descriptor['digest']))
    return Parts(layers, config, manifest['config']['digest'], record, names, digest)


def _read_docker_archive(members):
    """A docker-archive (docker save, podman save): manifest.json names one image's config and layer tars."""
    entries = _json_file(members, 'manifest.json')
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise ValueError('manifest.json must name exactly one image (this archive names %s)'
                         % (len(entries) if isinstance(entries, list) else 'none'))
    entry = entries[0]

    def member(path):
        name = member_path(path) if isinstance(path, str) else None
        if name is None or not members.isfile(os.path.join(members.tmp, name)):
            raise ValueError('manifest.json names %r, which is not a file of the archive' % (path,))
        return os.path.join(members.tmp, name)
    with members.open(member(entry['Config'])) as f:
        data = _read_json(f, entry['Config'])
    config = json.loads(data)
    tags = entry.get('RepoTags') or []
    return Parts([(member(p), p) for p in entry['Layers']], config, 'sha256:' + hashlib.sha256(data).hexdigest(),
                 None, [t for t in tags if isinstance(t, str)])


def _image(record, diff_ids, name):
    """The manifest a load writes: its keys from the layers' digests, its config checked, the rest text."""
    saved = record.get('image') if isinstance(record, dict) else None
    if not isinstance(saved, dict):
        raise ConductorError('the archive\'s %s annotation has no image record: nothing was loaded' % ANNOTATION)
    check_keys(saved, 'the archive\'s image record', 'nothing was loaded (the keys are not used, but an archive '
               'conductor save wrote has only sound ones)')
    try:
        keys = loaded_keys(diff_ids)
    except ConductorError as e:
        raise ConductorError('the archive\'s config names a bad layer digest: %s: nothing was loaded' % e)
    config = check_config(saved.get('config', {}), 'the archive\'s image config (nothing was loaded)')
    image_id = saved.get('id')
    if not isinstance(image_id, str) or len(image_id) != 64 or not HEX.issuperset(image_id):
        raise ConductorError('the archive\'s image id %r is not 64 hex digits: nothing was loaded' % (image_id,))
    return {'name': image_name(name or saved.get('name')), 'id': image_id, 'cache_id': cache_id(keys, config),
            'base': keys[0], 'layers': keys[1:], 'config': config, 'from': _text(saved.get('from')),
            'resolved': _text(saved.get('resolved')), 'created': _text(saved.get('created')) or utc_now()}


def _text(value, most=200):
    """A string of the archive's record kept for display (a layer's instruction, a date), or None."""
    return value[:most] if isinstance(value, str) else None


def _layer_info(kind, key, diff_id, info, size, oci_config=None):
    """layer.json or base.json of a loaded layer: its key, digest and size are ours; from the archive, only text."""
    info = info if isinstance(info, dict) else {}
    if not info and kind == 'bases' and isinstance(oci_config, dict):  # another tool's image: its architecture
        arch = oci_config.get('architecture')
        arch = {'arm': 'armhf', '386': 'i386', 'ppc64le': 'ppc64el'}.get(arch, arch)
        info = {'spec': {'arch': arch}}
    made = {'key': key, 'diff_id': diff_id, 'size': size, 'created': _text(info.get('created'))}
    if kind == 'layers':
        return dict(made, id=key, instruction=_text(info.get('instruction'), 4096))
    saved = info.get('spec') if isinstance(info.get('spec'), dict) else {}
    spec = dict((k, _text(saved.get(k))) for k in ('distro', 'suite', 'variant', 'mirror') if _text(saved.get(k)))
    return dict(made, spec=dict(spec, arch=_text(saved.get('arch')) or _bases.host_arch()))


class _Header(BoundedHeader):
    """An archive's or a layer's tar header: its extended records refused past JSON_MAX."""
    LIMIT = JSON_MAX

    def _proc_member(self, tarfile):  # pylint: disable=redefined-outer-name
        try:
            return super()._proc_member(tarfile)
        except ConductorError as e:
            if str(e).endswith('nothing was loaded'):  # from a header this one's extended record precedes
                raise
            raise ConductorError('%s, nothing was loaded' % e) from None


def _too_big(what, limit):
    def fail():
        raise ConductorError('%s is larger than LOAD_MAX_LAYER_SIZE (%s): refused, nothing was loaded; raise '
                             'LOAD_MAX_LAYER_SIZE in conductor.conf only for an image you trust'
                             % (what, human_size(limit)))
    return fail


def _stream(f, write, limit, too_big):
    """Pass f's bytes to write, 1 MiB at a time; too_big() (which raises) as soon as more than limit come.
    Returns the count."""
    total = 0
    for chunk in iter(lambda: f.read(1 << 20), b''):
        total += len(chunk)
        if total > limit:
            too_big()
        write(chunk)
    return total


def _read_json(f, what):
    """At most JSON_MAX bytes of f; an error past that."""
    data = f.read(JSON_MAX + 1)
    if len(data) > JSON_MAX:
        _too_json(what)()
    return data


def _too_json(what):
    def fail():
        raise ConductorError('%s is larger than %s: refused, nothing was loaded' % (what, human_size(JSON_MAX)))
    return fail


def _where(source):
    return source if isinstance(source, str) else '(standard input)'


def blob_file(tmp, descriptor):
    digest = descriptor.get('digest') if isinstance(descriptor, dict) else None
    if not isinstance(digest, str) or not digest.startswith('sha256:') or len(digest) != 71 or \
            not HEX.issuperset(digest[7:]):
        raise ValueError('a blob digest must be sha256:<64 hex digits>, not %r' % (digest,))
    return os.path.join(tmp, 'blobs', 'sha256', digest[7:])


def _verified(tmp, descriptor, read=True):
    """A blob's content (or None), after checking its size and sha256 against the descriptor; tmp: a folder, or an
    archive's Members. A blob is read no further than its size; one read into memory (a manifest, a config) is at
    most JSON_MAX."""
    members = tmp if isinstance(tmp, Members) else Members(tmp)
    path = blob_file(members.tmp, descriptor)
    size = descriptor.get('size')

    def mismatch():
        raise ConductorError('blob %s does not match its digest or size (damaged archive): nothing was loaded'
                             % descriptor['digest'])
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        mismatch()
    if read and size > JSON_MAX:
        _too_json('blob %s, a manifest or config,' % descriptor['digest'])()
    if not members.isfile(path):
        raise ConductorError('blob %s is missing from the archive: nothing was loaded' % descriptor['digest'])
    h, kept = hashlib.sha256(), []

    def take(chunk):
        h.update(chunk)
        if read:
            kept.append(chunk)
    with members.open(path) as f:
        if _stream(f, take, size, mismatch) != size or 'sha256:' + h.hexdigest() != descriptor['digest']:
            mismatch()
    return b''.join(kept) if read else None


@contextlib.contextmanager
def _layer_stream(source, label):
    """The plain tar of a layer blob (a path, its slice of an archive, or a readable: a pull's blob as it comes), by
    its first bytes: gzip, zstd (through Debian's zstd, a pipe) or none."""
    f = open(source, 'rb') if isinstance(source, str) else source
    try:
        f = _Prefixed(f.read(4), f)
        if f.first[:2] == b'\x1f\x8b' and isinstance(source, (str, _Slice)):
            with _ReadAhead(_Gunzipped(f)) as plain:  # a file's: a pull's blob is read as it comes, its digest at its end
                yield plain
        elif f.first[:2] == b'\x1f\x8b':
            yield _Gunzipped(f)
        elif f.first == b'\x28\xb5\x2f\xfd':
            with _unzstd(f, label) as plain:
                yield plain
        else:
            yield f
    finally:
        if isinstance(source, str):
            f.close()


class _Prefixed:
    """A stream with its first bytes, which were read to tell its compression, given back first."""

    def __init__(self, first, f):
        self.first, self.pending, self.f = first, first, f

    def read(self, size=-1):
        if self.pending:
            data, self.pending = (self.pending, b'') if size < 0 else (self.pending[:size], self.pending[size:])
            return data
        return self.f.read(size)

    def close(self):
        self.f.close()


@contextlib.contextmanager
def _unzstd(f, label):
    """zstd's output for the stream f, which a thread feeds it; an error of the feeding (a blob that does not
    match its digest) or of zstd is raised when the output has been read."""
    import threading
    try:
        child = subprocess.Popen(['zstd', '-dcq'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ConductorError('layer %s is zstd-compressed and zstd is not installed (apt-get install zstd): nothing '
                             'was loaded' % label)
    errors = []

    def feed():
        try:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                child.stdin.write(chunk)
        except (OSError, ConductorError) as e:  # zstd gone (its error comes below) or the blob refused
            errors.append(e)
        finally:
            try:
                child.stdin.close()
            except OSError:
                pass
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield child.stdout
    finally:
        child.stdout.close()
        code = child.wait()
        feeder.join()
    if errors and isinstance(errors[0], ConductorError):
        raise errors[0]
    if code:
        raise OSError('zstd could not decompress it (exit code %d)' % code)


def _unpack_layer(source, label, diff_id, target, limit):
    """Unpack one layer (a path, or a readable whose reading to its end checks its digest) into the new, empty
    folder target, in one pass: every byte of its plain tar hashed and counted (no more than limit) as it is read,
    every member checked (no .., no absolute or escaping link, nothing written through a symlink, no device node,
    no sparse file) and the bytes written counted against limit; then its diff_id checked (a mismatch: the caller
    removes the folder, nothing enters the store)."""
    too_big = _too_big('layer %s unpacked' % label, limit)
    links, budget = set(), [limit, too_big]
    try:
        with _layer_stream(source, label) as f:
            counted = _Counted(f, limit, too_big)
            # tarfile's stream keeps what it read ahead and slices off each read: a bigger buffer is copied more
            # (1 MiB cost a Debian base's unpacking 0.7 s of 1.9, 64 KiB almost nothing)
            with tarfile.open(fileobj=counted, mode='r|', tarinfo=_Header, bufsize=1 << 16) as tar:
                for member in tar:
                    _unpack_member(tar, member, target, links, label, budget)
            for dummy in iter(lambda: counted.read(1 << 20), b''):
                pass  # what follows the end of the archive counts too
        if not isinstance(source, (str, _Slice)):
            for dummy in iter(lambda: source.read(1 << 20), b''):
                pass  # the rest of the blob, to its end: its digest is checked there
    except (OSError, EOFError, tarfile.TarError, zlib.error, RecursionError, ValueError, OverflowError) as e:
        if not isinstance(source, (str, _Slice)):
            try:  # a damaged blob says so (its digest), rather than what its damage did to the unpacking
                for dummy in iter(lambda: source.read(1 << 20), b''):
                    pass
            except OSError:
                pass
        raise ConductorError('layer %s cannot be unpacked (%s): nothing was loaded'
                             % (label, e if not isinstance(e, RecursionError) else 'too deep'))
    if 'sha256:' + counted.hash.hexdigest() != diff_id:
        raise ConductorError('layer %s does not match its diff_id in the config: nothing was loaded' % label)


class _Gunzipped:
    """gzip's members, one after another, decompressed 1 MiB at a time by zlib (which checks each member's CRC
    and size): gzip.GzipFile reads 8 KiB at a time, and half a pull's time went to its calls."""

    def __init__(self, f):
        self.f, self.inflate, self.input, self.out = f, zlib.decompressobj(31), b'', bytearray()
        self.ended = self.started = False

    def read(self, size=-1):
        size = size if size >= 0 else 1 << 62
        while len(self.out) < size and not self.ended:
            if not self.input:
                self.input = self.f.read(1 << 20)
                if not self.input:
                    if self.started:
                        raise EOFError('the gzip stream ends before its end marker')
                    self.ended = True  # at the end of a member (or of nothing at all): the end
                    break
            self.started = True
            self.out += self.inflate.decompress(self.input, min(max(size - len(self.out), 1 << 16), 1 << 22))
            if self.inflate.eof:  # a member ended: another may follow
                self.input, self.inflate, self.started = self.inflate.unused_data, zlib.decompressobj(31), False
            else:
                self.input = self.inflate.unconsumed_tail
        data = bytes(self.out[:size])
        del self.out[:size]
        return data


class _ReadAhead:
    """A file's stream read ahead, 1 MiB at a time, by a thread of its own: zlib lets go of the interpreter while it
    decompresses, so a gzip layer inflates on one core while the unpacking goes on on the other. An error of
    the reading is raised where its data would have been; leaving the block stops the thread."""

    def __init__(self, f):
        import queue
        import threading
        self.f, self.queue, self.data, self.at, self.ended, self.stopped = f, queue.Queue(4), b'', 0, False, False
        self.thread = threading.Thread(target=self._fill, daemon=True)

    def _fill(self):
        try:
            chunk = True
            while chunk and not self.stopped:
                chunk = self.f.read(1 << 20)
                self.queue.put(chunk)
        except BaseException as e:  # pylint: disable=broad-except
            self.queue.put(e)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped = True
        while self.thread.is_alive():  # it may wait to put a chunk: take them until it sees stopped
            while not self.queue.empty():
                self.queue.get_nowait()
            self.thread.join(0.01)
        return False

    def read(self, size=-1):
        size = size if size >= 0 else 1 << 62
        while len(self.data) - self.at < size and not self.ended:
            chunk = self.queue.get()
            if isinstance(chunk, BaseException):
                self.ended = True
                raise chunk
            self.ended = not chunk
            self.data, self.at = self.data[self.at:] + chunk, 0
        data = self.data[self.at:self.at + size]  # what is left stays where it is: a read copies only what it takes
        self.at += len(data)
        return data


class _Counted:
    """A readable stream that hashes and counts what is read through it; too_big() past limit bytes."""

    def __init__(self, f, limit, too_big):
        self.f, self.limit, self.too_big, self.count, self.hash = f, limit, too_big, 0, hashlib.sha256()

    def read(self, size=-1):
        data = self.f.read(size)
        self.count += len(data)
        if self.count > self.limit:
            self.too_big()
        self.hash.update(data)
        return data


def _unpack_member(tar, member, target, links, blob, budget):
    def refuse(why):
        raise ConductorError('layer %s: %s %s: refused, nothing was loaded' % (blob, member.name, why))

    if member.size > budget[0]:  # before anything returns: tarfile would skip its data a block at a time
        budget[1]()
    name = member_path(member.name)
    if name is None or member.name.startswith('/'):
        refuse('leads out of the layer')
    if name == '.':
        return
    if name in links or through_link(name, links):
        refuse('is written through a symlink of the layer')
    folder, base = os.path.split(name)
    parent = os.path.join(target, folder)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    if base == OPAQUE_MARK:
        os.setxattr(parent, OPAQUE, b'y')
        return
    if base.startswith(WHITEOUT):
        path = os.path.join(parent, base[len(WHITEOUT):])
        if os.path.lexists(path):
            refuse('deletes a path the same layer makes')
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        return
    path = os.path.join(target, name)
    if member.ischr() or member.isblk() or member.isfifo():
        refuse('is a device node or fifo')
    if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path) and not os.path.islink(path)):
        refuse('appears twice')
    if member.isdir():
        if not os.path.isdir(path):
            os.mkdir(path)
    elif member.issym():
        os.symlink(member.linkname, path)
        links.add(name)
    elif member.islnk():
        linked = member_path(member.linkname)
        if linked is None or member.linkname.startswith('/') or \
                linked in links or through_link(linked, links):
            refuse('is a hard link to outside the layer')
        os.link(os.path.join(target, linked), path)
        return  # a hard link shares its target's owner, mode and times
    elif member.issparse():
        refuse('is a sparse file')
    elif member.isreg():
        with tar.extractfile(member) as f, open(path, 'xb') as out:
            budget[0] -= _stream(f, out.write, budget[0], budget[1])
    else:
        refuse('has an unknown type')
    os.lchown(path, member.uid, member.gid)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
        for attribute in KEPT_XATTRS:
            value = member.pax_headers.get('SCHILY.xattr.' + attribute)
            if value is not None:
                os.setxattr(path, attribute, value.encode('utf-8', 'surrogateescape'))
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
