# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The image builder: plan a Conductorfile against the build cache, then run what is not cached.

Every step's cache key is known before anything runs: key = hash(parent key, the instruction, and
for COPY the path, mode, size, content hash and link target of every source). So a plan tells check
mode exactly which steps would run, and a rebuild of an unchanged file only reads and hashes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import hashlib
import os
import posixpath
import shutil
import signal
import stat
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_name, digest, human_size, tree_size, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._images import public
from ansible_collections.cs695.conductor.plugins.module_utils import _bases, _conductorfile, _sandbox
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_


class Step:
    def __init__(self, number, instruction, key=None, config=None, sources=None):
        self.number, self.instruction, self.key = number, instruction, key
        self.config, self.sources = config, sources or []
        self.cached = True

    @property
    def makes_layer(self):
        return self.instruction.command in ('COPY', 'RUN')


class Plan:
    """What a build of `steps` under `name` will do, with nothing run yet."""

    def __init__(self, store, name, steps, context=None, nocache=False):
        self.store, self.name, self.context, self.nocache = store, check_name('image', name), context, nocache
        self.steps = [Step(i, s) for i, s in enumerate(steps, 1)]
        self.base_spec = None
        self._resolve_from(self.steps[0])
        chain, config = self.parent, dict(self.config)
        for step in self.steps[1:]:
            ins = step.instruction
            if ins.command == 'COPY':
                step.sources = resolve_sources(self._context_for(ins), ins.args['sources'], ins)
                chain = digest(chain, 'COPY', ins.args, config.get('workdir'),
                               sources_digest(self.real_context, step.sources))
            else:
                chain = digest(chain, ins.command, ins.args)
                config = _conductorfile.apply_config(config, ins)
            step.config = dict(config)
            if step.makes_layer:
                step.key = chain[:32]
                step.cached = not nocache and os.path.isfile(store.path('layers', step.key, 'layer.json'))
        self.config, self.chain = config, chain
        self.layers = self.parent_layers + [s.key for s in self.steps if s.makes_layer]

    def _resolve_from(self, step):
        ref = step.instruction.args
        first = self.steps[0]
        if _bases.is_base_reference(ref):
            self.base_spec = _bases.base_spec(ref, self.store.config)
            self.base = self.parent = _bases.base_key(self.base_spec)
            self.parent_layers, self.config = [], {}
            first.cached = os.path.isdir(self.store.path('bases', self.base))
            return
        if ':' in ref:
            where = (step.instruction.source, step.instruction.lineno, ref.partition(':')[0], ref)
            raise ConductorError('%s:%d: unknown distribution %r in FROM %s: use debian:<suite>, ubuntu:<suite> '
                                 'or the name of a built image' % where)
        if ref == self.name:
            raise ConductorError('%s:%d: image %r cannot be built FROM itself'
                                 % (step.instruction.source, step.instruction.lineno, ref))
        parent = self.store.require_image(ref)
        self.base, self.parent, self.parent_layers = parent['base'], parent['id'], list(parent['layers'])
        self.config = parent.get('config', {})

    def _context_for(self, instruction):
        if self.context is None:
            raise ConductorError('%s:%d: COPY needs a build context: give the folder its sources are in: %r'
                                 % (instruction.source, instruction.lineno, instruction.text))
        if not os.path.isdir(self.context):
            raise ConductorError('the build context %s is not a folder: give the folder the COPY sources are in'
                                 % self.context)
        self.real_context = os.path.realpath(self.context)
        return self.real_context

    @property
    def complete(self):
        """True when every step is in the cache: building would only write the manifest."""
        return all(s.cached for s in self.steps)

    def image_id(self):
        """The id the image will have, or None while some step still has to run."""
        if not self.complete:
            return None
        ids = []
        for key in self.layers:
            layer = self.store.layer(key)
            if layer is None:
                return None
            ids.append(layer['id'])
        return digest('image', self.base, ids, self.config)


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


def build(plan, out):
    """Run the plan's uncached steps, then write the manifest. Returns (manifest, changed)."""
    store = plan.store
    store.prepare()
    store.sweep('layers')
    total = len(plan.steps)
    base = _ensure_from(plan, out)
    layers = list(plan.parent_layers)
    for step in plan.steps[1:]:
        ins = step.instruction
        cached = step.makes_layer and step.cached
        out('Step %d/%d : %s%s' % (step.number, total, ins.text, ' (cached)' if cached else ''))
        if step.makes_layer:
            if not cached:
                _run_step(plan, step, base, layers, out)
            layers.append(step.key)
    return _write_manifest(plan, base, layers)


def _ensure_from(plan, out):
    step = plan.steps[0]
    out('Step 1/%d : %s%s' % (len(plan.steps), step.instruction.text, ' (cached)' if step.cached else ''))
    if plan.base_spec:
        return _bases.ensure_base(plan.store.root, plan.base_spec, out)
    return plan.base


def _run_step(plan, step, base, layers, out):
    store, ins = plan.store, step.instruction
    started = time.time()
    tmp = store.path('layers', '.tmp-%d-%s' % (os.getpid(), os.urandom(4).hex()))
    for sub in ('diff', 'work', 'merged'):
        os.makedirs(os.path.join(tmp, sub))
    rel = os.path.relpath(tmp, store.root)
    overlay = (store.lowerdirs(base, layers), rel + '/diff', rel + '/work', os.path.join(tmp, 'merged'))
    try:
        if ins.command == 'RUN':
            shutil.copyfile('/etc/resolv.conf', os.path.join(tmp, 'resolv.conf'))
            env = dict(e.partition('=')[::2] for e in step.config.get('env', []))
            env.setdefault('HOME', '/root')
            code, message = _sandbox.spawn(lambda report: _run_child(
                store.root, overlay, tmp, ins.args, env, step.config.get('workdir') or '/'), out)
        else:
            code, message = _sandbox.spawn(lambda report: _copy_child(
                store.root, overlay, plan.real_context, step.sources, ins.args['dest'],
                step.config.get('workdir') or '/'), out)
        if code != 0:
            raise ConductorError('%s:%d: %s failed with exit code %d%s: %r' % (
                ins.source, ins.lineno, ins.command, code, ': ' + message if message else '', ins.text))
        _commit(store, tmp, step, plan.nocache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    layer = store.layer(step.key)
    out(' ---> %s (%s, %.1fs)' % (layer['id'][:12], human_size(layer['size']), time.time() - started))


def _run_child(root, overlay, tmp, argv, env, workdir):  # pragma: no cover - runs in the child
    """RUN: fresh mount, PID, UTS and IPC namespaces, the host's network, /proc, /dev and resolv.conf."""
    sys_.unshare(sys_.CLONE_NEWNS | sys_.CLONE_NEWPID | sys_.CLONE_NEWUTS | sys_.CLONE_NEWIPC)
    pid = os.fork()
    if pid:
        _sandbox.forward_exit(pid)
    sys_.set_parent_death_signal(signal.SIGKILL)
    _sandbox.make_mounts_private()
    lowers, upper, work, merged = overlay
    _sandbox.mount_overlay(lowers, upper, work, merged, cwd=root)
    _sandbox.mount_proc(merged)
    _sandbox.mount_dev(merged)
    _sandbox.bind_file(os.path.join(tmp, 'resolv.conf'), merged, '/etc/resolv.conf')
    sys_.sethostname('conductor-build')
    _sandbox.pivot_into(merged)
    if not os.path.isdir(workdir):
        os.makedirs(workdir)
    _sandbox.exec_command(argv, env, workdir)


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
        'size': tree_size(os.path.join(tmp, 'diff')), 'created': _now()})
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


def _write_manifest(plan, base, layers):
    store = plan.store
    with store.lock():
        ids = []
        for key in layers:
            layer = store.layer(key)
            if layer is None:
                raise ConductorError('layer %s was removed while %s was being built (by rmcache?): build again'
                                     % (key, plan.name))
            ids.append(layer)
        base_info = _bases.base_info(store.root, base) or {}
        image_id = digest('image', base, [layer['id'] for layer in ids], plan.config)
        old = store.image(plan.name)
        if old and old['id'] == image_id:
            return old, False
        manifest = {
            'name': plan.name, 'id': image_id, 'base': base, 'layers': layers, 'chain': plan.chain,
            'config': plan.config, 'from': plan.steps[0].instruction.args, 'created': _now(),
            'size': base_info.get('size', 0) + sum(layer['size'] for layer in ids),
        }
        write_json(store.path('images', plan.name + '.json'), manifest)
    return manifest, True


def _now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _discard(line):
    pass


def summary(manifest):
    """What the diff shows of an image: its id and layer keys."""
    return {'id': manifest['id'], 'layers': manifest['layers']} if manifest else {}


def ensure_image(store, name, state='present', conductorfile=None, instructions=None, context=None,
                 force=False, check_mode=False, out=None):
    """Bring image `name` to `state`; the one entry point of the conductor_image module."""
    out = out or _discard
    before = store.image(check_name('image', name))
    if state == 'absent':
        if before and not check_mode:
            store.remove_image(name)
        return {'changed': before is not None, 'image': {}, 'diff': {'before': summary(before), 'after': {}}}
    steps, context = load_steps(conductorfile, instructions, context)
    plan = Plan(store, name, steps, context, nocache=force)
    if check_mode:
        image_id = plan.image_id()
        changed = force or image_id is None or before is None or before['id'] != image_id
        after = {'id': image_id or '(built when run)', 'layers': plan.layers}
        result = public(before) if before and not changed else dict(public(before), **after)
        return {'changed': changed, 'image': dict(result, name=name),
                'diff': {'before': summary(before), 'after': after if changed else summary(before)},
                'would_run': [s.instruction.text for s in plan.steps if not s.cached]}
    manifest, changed = build(plan, out)
    return {'changed': changed, 'image': public(manifest),
            'diff': {'before': summary(before), 'after': summary(manifest)}}
