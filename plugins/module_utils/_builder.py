# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The image builder: plan a Conductorfile against the build cache, then run what is not cached.

Every step's cache key is known before anything runs: key = hash(parent key, the instruction, and
for COPY the path, mode, size, content hash and link target of every source). So a plan tells check
mode exactly which steps would run, and a rebuild of an unchanged file only reads and hashes.

    make_plan   reads what a plan needs: the parent image, the COPY sources and their hashes, the keys
                the store holds (the only place a command hashes files)
    Plan        computes keys and cached steps from those inputs alone (pure: unit tests need no root)
    build       runs the uncached steps (RUN through _runtime.build_step, COPY in _copy_child), each
                in a temporary folder renamed into layers/ when it succeeds, then writes the manifest
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import hashlib
import os
import posixpath
import shutil
import stat
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_name, digest, env_dict, human_size, temp_name, tree_size, utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._defaults import BUILD_CAPS
from ansible_collections.cs695.conductor.plugins.module_utils import _bases, _conductorfile, _runtime, _sandbox, _seccomp
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_


class Step:
    def __init__(self, number, instruction):
        self.number, self.instruction, self.key = number, instruction, None
        self.config, self.sources = None, []
        self.cached = True

    @property
    def makes_layer(self):
        return self.instruction.command in ('COPY', 'RUN')


class Plan:
    """What a build of `steps` under `name` will do, with nothing run yet. A pure function of its inputs:

    config   conductor.conf's settings (they shape a debootstrap base)
    parent   the manifest of the image FROM names, when it names one
    copies   {step number: (sources relative to context, their digest)} for every COPY step
    context  the real build context folder
    layers, bases   the keys the store holds: those steps are cached
    """

    def __init__(self, name, steps, config, parent=None, copies=None, context=None, layers=(), bases=(),
                 nocache=False):
        self.name, self.context, self.nocache = check_name('image', name), context, nocache
        self.steps = [Step(i, s) for i, s in enumerate(steps, 1)]
        self.base_spec = None
        first = self.steps[0]
        if from_parent(first.instruction, name) is None:
            self.base_spec = _bases.base_spec(first.instruction.args, config)
            self.base = self.parent = _bases.base_key(self.base_spec)
            self.parent_layers, image_config = [], {}
            self.resolved = '%s:%s' % (self.base_spec['distro'], self.base_spec['suite'])
            first.cached = self.base in bases
        else:
            self.base, self.parent, self.parent_layers = parent['base'], parent['id'], list(parent['layers'])
            image_config = parent.get('config', {})
            self.resolved = parent.get('resolved') or parent.get('from')
        chain, image_config = self.parent, dict(image_config)
        for step in self.steps[1:]:
            ins = step.instruction
            if ins.command == 'COPY':
                step.sources, sources_hash = copies[step.number]
                chain = digest(chain, 'COPY', ins.args, image_config.get('workdir'), sources_hash)
            else:
                chain = digest(chain, ins.command, ins.args)
                image_config = _conductorfile.apply_config(image_config, ins)
            step.config = dict(image_config)
            if step.makes_layer:
                step.key = chain[:32]
                step.cached = not nocache and step.key in layers
        image_config.pop('cmd_here', None)  # the parser's note for ENTRYPOINT, not part of the image
        self.config, self.chain = image_config, chain
        self.layers = self.parent_layers + [s.key for s in self.steps if s.makes_layer]

    @property
    def complete(self):
        """True when every step is in the cache: building would only write the manifest."""
        return all(s.cached for s in self.steps)

    def image_id(self, layer_ids):
        """The id the image will have, given {layer key: layer id}; None while some step has to run."""
        if not self.complete or any(key not in layer_ids for key in self.layers):
            return None
        return image_digest(self.base, [layer_ids[key] for key in self.layers], self.config)


def image_digest(base, layer_ids, config):
    return digest('image', base, layer_ids, config)


def from_parent(instruction, name):
    """The image a FROM line builds on, or None for a debootstrap base; refuses anything else."""
    ref = instruction.args
    if _bases.is_base_reference(ref):
        return None
    if ':' in ref:
        where = (instruction.source, instruction.lineno, ref.partition(':')[0], ref)
        raise ConductorError('%s:%d: unknown distribution %r in FROM %s: use debian:<suite>, ubuntu:<suite> '
                             'or the name of a built image' % where)
    if ref == name:
        raise ConductorError('%s:%d: image %r cannot be built FROM itself' % (instruction.source, instruction.lineno, ref))
    return ref


def make_plan(store, name, steps, context=None, nocache=False):
    """Read what a Plan needs (the parent image, the COPY sources and their hashes, the cache's keys),
    then make it. Only here does a build hash files."""
    check_name('image', name)
    parent_name = from_parent(steps[0], name)
    parent = store.require_image(parent_name) if parent_name else None
    copies, real_context = {}, None
    for number, ins in enumerate(steps, 1):
        if ins.command == 'COPY':
            real_context = _real_context(context, ins)
            sources = resolve_sources(real_context, ins.args['sources'], ins)
            copies[number] = (sources, sources_digest(real_context, sources))
    return Plan(name, steps, store.config, parent, copies, real_context, store.keys('layers'), store.keys('bases'),
                nocache)


def layer_ids(store, keys):
    """{key: id} of the layers the store holds among keys."""
    layers = (store.layer(key) for key in keys)
    return {layer['key']: layer['id'] for layer in layers if layer}


def _real_context(context, instruction):
    if context is None:
        raise ConductorError('%s:%d: COPY needs a build context: give the folder its sources are in: %r'
                             % (instruction.source, instruction.lineno, instruction.text))
    if not os.path.isdir(context):
        raise ConductorError('the build context %s is not a folder: give the folder the COPY sources are in' % context)
    return os.path.realpath(context)


def resolve_sources(context, sources, instruction):
    """Map COPY sources to paths inside the real context; refuse any that lead out of it."""
    def fail(msg):
        raise ConductorError('%s:%d: %s: %r' % (instruction.source, instruction.lineno, msg, instruction.text))

    resolved = []
    for src in sources:
        if os.path.isabs(src):
            fail('COPY source %s is an absolute path: sources are relative to the build context %s' % (src, context))
        pattern = os.path.join(context, src)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(src) else [pattern]
        if not matches or not os.path.lexists(matches[0]):
            fail('COPY source %s is not in the build context %s' % (src, context))
        for path in matches:
            real = os.path.realpath(path)
            if real != context and not real.startswith(context + os.sep):
                how = 'through a symlink ' if os.path.normpath(path).startswith(context + os.sep) else ''
                fail('COPY source %s leads %sout of the build context %s' % (src, how, context))
            if not os.path.exists(real):
                fail('COPY source %s is a dangling symlink' % src)
            resolved.append(os.path.relpath(real, context))
    return resolved


def sources_digest(context, sources):
    """Hash what COPY would copy: path, mode, size, content and link target of every entry; never mtime."""
    h = hashlib.sha256()
    for source in sources:
        top = os.path.join(context, source)
        entries = [(source, top)]
        if os.path.isdir(top):
            for folder, dirs, files in os.walk(top):
                dirs.sort()
                for name in sorted(dirs + files):
                    path = os.path.join(folder, name)
                    entries.append((os.path.relpath(path, context), path))
        for rel, path in entries:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                extra = _file_hash(path)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                extra = ''
            else:
                raise ConductorError('COPY cannot copy %s: only files, folders and symlinks can be copied' % path)
            h.update(('%s\0%o\0%d\0%s\n' % (rel, st.st_mode, st.st_size if extra else 0, extra)).encode('utf-8', 'surrogateescape'))
    return h.hexdigest()


def _file_hash(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_steps(conductorfile=None, instructions=None, context=None):
    """Parse a Conductorfile (context: its folder by default) or inline instructions."""
    if conductorfile:
        steps = _conductorfile.parse_file(conductorfile)
        return steps, context or os.path.dirname(os.path.abspath(conductorfile))
    if instructions:
        return _conductorfile.parse('\n'.join(instructions)), context
    raise ConductorError('nothing to build: give a Conductorfile or instructions')


def build(store, plan, out):
    """Run the plan's uncached steps, then write the manifest. Returns (manifest, changed)."""
    store.prepare()
    store.sweep('layers')
    total = len(plan.steps)
    base = _ensure_from(store, plan, out)
    layers = list(plan.parent_layers)
    for step in plan.steps[1:]:
        ins = step.instruction
        cached = step.makes_layer and step.cached
        out('Step %d/%d : %s%s' % (step.number, total, ins.text, ' (cached)' if cached else ''))
        if step.makes_layer:
            if not cached:
                _run_step(store, plan, step, base, layers, out)
            layers.append(step.key)
    return _write_manifest(store, plan, base, layers)


def _ensure_from(store, plan, out):
    step = plan.steps[0]
    out('Step 1/%d : %s%s' % (len(plan.steps), step.instruction.text, ' (cached)' if step.cached else ''))
    if plan.base_spec:
        return _bases.ensure_base(store.root, plan.base_spec, out)
    return plan.base


def _run_step(store, plan, step, base, layers, out):
    ins = step.instruction
    started = time.time()
    tmp = store.path('layers', temp_name())
    for sub in ('diff', 'work', 'merged'):
        os.makedirs(os.path.join(tmp, sub))
    rel = os.path.relpath(tmp, store.root)
    overlay = (store.lowerdirs(base, layers), rel + '/diff', rel + '/work', os.path.join(tmp, 'merged'))
    workdir = step.config.get('workdir') or '/'
    try:
        if ins.command == 'RUN':
            resolv_conf = os.path.join(tmp, 'resolv.conf')
            shutil.copyfile('/etc/resolv.conf', resolv_conf)
            env = env_dict(step.config.get('env'))
            env.setdefault('HOME', '/root')
            confinement = _runtime.Confinement(BUILD_CAPS, _seccomp.filter_for(store.root, BUILD_CAPS))
            code, message = _sandbox.spawn(lambda report: _runtime.build_step(
                store.root, overlay, resolv_conf, ins.args, env, workdir, confinement, step.config.get('user')), out)
        else:
            code, message = _sandbox.spawn(lambda report: _copy_child(
                store.root, overlay, plan.context, step.sources, ins.args['dest'], workdir), out)
        if code != 0:
            raise ConductorError('%s:%d: %s failed with exit code %d%s: %r' % (
                ins.source, ins.lineno, ins.command, code, ': ' + message if message else '', ins.text))
        _commit(store, tmp, step, plan.nocache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    layer = store.layer(step.key)
    out(' ---> %s (%s, %.1fs)' % (layer['id'][:12], human_size(layer['size']), time.time() - started))


def _copy_child(root, overlay, context, sources, dest, workdir):  # pragma: no cover - runs in the child
    """COPY: the image's merged view as root (so its symlinks resolve inside it), the context as cwd."""
    sys_.unshare(sys_.CLONE_NEWNS)
    _sandbox.make_mounts_private()
    lowers, upper, work, merged = overlay
    _sandbox.mount_overlay(lowers, upper, work, merged, cwd=root)
    context_fd = os.open(context, os.O_RDONLY | os.O_DIRECTORY)
    os.chroot(merged)
    os.fchdir(context_fd)  # relative paths now read the context, absolute ones write the image
    os.umask(0o022)
    dest = posixpath.join(workdir, dest)
    for source in sources:
        if os.path.isdir(source):
            _copy_tree(source, dest)
            continue
        target = posixpath.join(dest, os.path.basename(source)) if dest.endswith('/') or os.path.isdir(dest) else dest
        parent = posixpath.dirname(target)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        _copy_one(source, target)
    os._exit(0)


def _copy_tree(source, dest):  # pragma: no cover - runs in the child
    if not os.path.isdir(dest):
        os.makedirs(dest)
    for folder, dirs, files in os.walk(source):
        below = folder[len(source):].lstrip('/')  # not relpath: getcwd() fails outside the chroot
        for name in dirs + files:
            _copy_one(os.path.join(folder, name), os.path.join(dest, below, name))


def _copy_one(source, target):  # pragma: no cover - runs in the child
    """Copy a file, symlink or folder entry, owned by root as Docker's COPY does, mode kept."""
    st = os.lstat(source)
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(target):
            os.mkdir(target)
    else:
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copyfile(source, target)
    os.lchown(target, 0, 0)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _commit(store, tmp, step, replace):
    """Turn a finished step's folder into layers/<key>: a rename under the lock, so all or nothing."""
    shutil.rmtree(os.path.join(tmp, 'work'))
    os.rmdir(os.path.join(tmp, 'merged'))
    resolv = os.path.join(tmp, 'resolv.conf')
    if os.path.exists(resolv):
        os.unlink(resolv)
    write_json(os.path.join(tmp, 'layer.json'), {
        'key': step.key, 'id': os.urandom(16).hex(), 'instruction': step.instruction.text,
        'size': tree_size(os.path.join(tmp, 'diff')), 'created': utc_now()})
    final = store.path('layers', step.key)
    with store.lock():
        if os.path.isdir(final):
            if not replace:
                return  # a concurrent build made the same layer first: keep theirs
            old = '%s-old' % tmp
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)


def _write_manifest(store, plan, base, layers):
    with store.lock():
        records = []
        for key in layers:
            layer = store.layer(key)
            if layer is None:
                raise ConductorError('layer %s was removed while %s was being built (by rmcache?): build again'
                                     % (key, plan.name))
            records.append(layer)
        base_info = _bases.base_info(store.root, base) or {}
        image_id = image_digest(base, [layer['id'] for layer in records], plan.config)
        old = store.image(plan.name)
        if old and old['id'] == image_id:
            return old, False
        manifest = {
            'name': plan.name, 'id': image_id, 'base': base, 'layers': layers, 'chain': plan.chain,
            'config': plan.config, 'from': plan.steps[0].instruction.args, 'resolved': plan.resolved,
            'created': utc_now(),
            'size': base_info.get('size', 0) + sum(layer['size'] for layer in records),
        }
        write_json(store.path('images', plan.name + '.json'), manifest)
    return manifest, True
