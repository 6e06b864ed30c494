# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The image builder: plan a Conductorfile against the build cache, then run what is not cached.

Every step's cache key is known before anything runs: key = hash(parent key, the instruction after
variable expansion, and for COPY/ADD the path, mode, size, content hash and link target of every
source, or the key of the stage it copies from). ARG values enter the chain where they are declared,
SHELL and USER where they are set: so a step's key covers every build arg, shell and user it sees.
A plan tells check mode exactly which steps would run, and a rebuild of an unchanged file only reads
and hashes.

    make_plan   gathers what a plan reads: the store's images and cache keys, the build context
    Plan        splits the file into stages (FROM ... AS name), expands variables, and computes keys
                and cached steps, planning only the stages the last one needs, each once
    build       runs the uncached steps stage by stage (RUN through _runtime.build_step, COPY and ADD
                in _copy_child), each in a temporary folder renamed into layers/ when it succeeds,
                then writes the manifest of the last stage: only it becomes the image
"""

import contextlib
import os
import posixpath
import shutil
import signal
import stat
import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    TEMP_PREFIX, ConductorError, check_name, digest, env_dict, human_size, remove_tree, temp_name, temp_owner,
    tree_size, utc_now, walk, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._policy import BUILD_CAPS, COPY_CAPS
from ansible_collections.cs695.conductor.plugins.module_utils._processes import pid_alive
from ansible_collections.cs695.conductor.plugins.module_utils._stepnetworks import StepNetworks
from ansible_collections.cs695.conductor.plugins.module_utils import (
    _addresses, _bases, _cgroups, _conductorfile, _context, _runtime, _sandbox, _seccomp)
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

LAYER_COMMANDS = ('COPY', 'ADD', 'RUN')
BUILD_GROUP = '.build-'  # a RUN step's cgroup: .build-<PID>-..., as its folder's temp name
NETWORKS = ('default', 'none', 'host')  # what a build's RUN steps get: conductor build --network, RUN --network


class Step:
    def __init__(self, number, instruction, stage):
        self.number, self.instruction, self.stage, self.key = number, instruction, stage, None
        self.config, self.sources, self.argv, self.below, self.copy_from, self.mounts = None, [], None, [], None, []
        self.source_dir, self.run_env, self.network = None, {}, 'default'  # source_dir: the context's fd, or
        self.context = None  # the folder ADD downloaded into
        self.cached = True

    @property
    def makes_layer(self):
        return self.instruction.command in LAYER_COMMANDS


class Stage:
    """One FROM and the steps after it; planned (base, layers, config, chain) when the image needs it."""

    def __init__(self, index, instruction):
        self.index, self.instruction, self.name = index, instruction, None
        self.instructions, self.steps, self.planned = [], [], False
        self.base_spec = self.base = self.chain = self.resolved = None
        self.pending = False
        self.parent_layers, self.layers, self.config = [], [], {}


class Plan:
    """What a build of `instructions` under `name` will do, with nothing run yet. It reads only through
    its inputs:

    config      conductor.conf's settings (they shape a debootstrap base)
    images      name -> manifest of a built image (FROM image, COPY --from=image); raises if missing
    context     the build context folder (or a _context.Context), read for COPY, ADD and bind mounts
    layers, bases   the keys the store holds: those steps are cached
    build_args  --build-arg values; cache_root: where RUN --mount=type=cache folders live
    download    download(urls, instruction) -> (folder, names, digest) for ADD <URL>; None refuses URLs
    allowed_images  the built images FROM and COPY --from may name (--allow-image); None: all, as Docker.
                Stages of the file and debootstrap bases are always allowed.
    network     the RUN steps' network (conductor build --network): default, none or host
    """

    def __init__(self, name, instructions, config, images=None, context=None, layers=(), bases=(), nocache=False,
                 build_args=None, cache_root=None, download=None, allowed_images=None, network='default'):
        self.name, self.nocache = check_name('image', name), nocache
        self.allowed_images = None if allowed_images is None else \
            sorted(set(check_name('image', image) for image in allowed_images))
        if network not in NETWORKS:
            raise ConductorError('invalid build network %r: use default (a network namespace of its own for each RUN '
                                 'step), none or host' % network)
        self.network = network
        self.settings, self._images, self._context = config, images, context
        self.layer_keys, self.base_keys, self.cache_root = set(layers), set(bases), cache_root
        self._download = download
        self.build_args, self.used_args = dict(build_args or {}), set()
        self.stages, meta = [], []
        for ins in instructions:
            if ins.command == 'FROM':
                self.stages.append(Stage(len(self.stages), ins))
            elif self.stages:
                self.stages[-1].instructions.append(ins)
            else:
                meta.append(ins)
        self.meta_args = self._declare(meta, {})
        for stage in self.stages:
            stage.instruction = self._expand(stage.instruction, self.meta_args)
            stage.name = stage.instruction.args['name']
            if stage.name and any(s.name == stage.name for s in self.stages[:stage.index]):
                stage.instruction.fail('a stage named %s is already defined' % stage.name)
        self._visiting = []
        final = self._plan(self.stages[-1])
        self.steps = [step for stage in self.planned_stages for step in stage.steps]
        for number, step in enumerate(self.steps, 1):
            step.number = number
        self.base, self.base_spec, self.resolved, self.chain = final.base, final.base_spec, final.resolved, final.chain
        self.parent_layers, self.layers, self.config = final.parent_layers, final.layers, final.config
        self.warnings = ['build argument %s was given but no ARG uses it' % arg
                         for arg in sorted(set(self.build_args) - self.used_args)]

    @property
    def complete(self):
        """True when every step is in the cache (and no image it uses is pending): building would only
        write the manifest."""
        return all(s.cached for s in self.steps)

    @property
    def planned_stages(self):
        return [s for s in self.stages if s.planned]

    def image_id(self, layer_ids):
        """The id the image will have, given {layer key: layer id}; None while some step has to run."""
        if not self.complete or any(key not in layer_ids for key in self.layers):
            return None
        return image_digest(self.base, [layer_ids[key] for key in self.layers], self.config)

    # -- planning --------------------------------------------------------------------------------
    def _expand(self, ins, variables):
        if ins.args is None:
            ins = _conductorfile.expand(ins, variables)
        if ins.command == 'FROM':
            check_from(ins)
        return ins

    def _declare(self, instructions, scope):
        """ARG lines: each name's value is the --build-arg, else its default, else the global ARG's. As in
        Docker, a value enters the cache keys where it is used: in an expanded instruction, and in every
        RUN after it (RUN sees it in its environment)."""
        scope = dict(scope)
        for ins in instructions:
            ins = self._expand(ins, dict((k, v) for k, v in scope.items() if v is not None))
            for name, default in ins.args:
                if name in self.build_args:
                    self.used_args.add(name)
                    scope[name] = self.build_args[name]
                else:
                    scope[name] = default if default is not None else getattr(self, 'meta_args', {}).get(name)
        return scope

    def _stage(self, ref, ins, what):
        """The earlier-or-later stage a FROM or --from names (by name or number), planned; None if none."""
        by_name = dict((s.name, s) for s in self.stages if s.name)
        stage = by_name.get(ref.lower()) if not ref.isdigit() else (
            self.stages[int(ref)] if int(ref) < len(self.stages) else None)
        if ref.isdigit() and stage is None:
            ins.fail('%s %s: there is no stage number %s (stages count from 0)' % (ins.command, what, ref))
        if stage is None:
            return None
        if stage in self._visiting:
            cycle = [s.name or str(s.index) for s in self._visiting[self._visiting.index(stage):]] + [stage.name or ref]
            ins.fail('a cycle of stages (%s): a stage can only use stages that do not use it' % ' -> '.join(cycle))
        return self._plan(stage)

    def _image(self, ref, ins):
        """The manifest of a built image that FROM or COPY --from names; a clear error if there is none."""
        if ref == self.name:
            ins.fail('image %r cannot be built FROM itself' % ref)
        if self.allowed_images is not None and ref not in self.allowed_images:  # before any read: no oracle
            what = ins.command if ins.command == 'FROM' else ins.command + ' --from'
            ins.fail('%s names the image %r, which this build may not use (allowed: %s): give --allow-image %s (the '
                     'module\'s allowed_images) if it may' % (what, ref, ', '.join(self.allowed_images) or 'none', ref))
        try:
            check_name('image', ref)
            if self._images is None:
                raise ConductorError('no image named %r' % ref)
            return self._images(ref)
        except ConductorError as e:
            stages = ', '.join(s.name for s in self.stages if s.name) or 'none'
            ins.fail('%s is neither a stage of this file (named stages: %s) nor a built image: %s'
                     % (ref, stages, e))

    def _context_for(self, ins):
        if self._context is None:
            ins.fail('%s needs a build context: give the folder its sources are in' % ins.command)
        if not isinstance(self._context, _context.Context):
            self._context = _context.Context(self._context)
        return self._context

    def _plan(self, stage):
        if stage.planned:
            return stage
        self._visiting.append(stage)
        ref = stage.instruction.args['image']
        parent = self._stage(ref, stage.instruction, 'FROM') if not _bases.is_base_reference(ref) else None
        first = Step(0, stage.instruction, stage)
        if parent is not None:
            stage.pending = parent.pending
            stage.base, stage.chain, stage.parent_layers = parent.base, parent.chain, list(parent.layers)
            config, stage.resolved = dict(parent.config), parent.resolved
        elif _bases.is_base_reference(ref):
            stage.base_spec = _bases.base_spec(ref, self.settings)
            stage.base = stage.chain = _bases.base_key(stage.base_spec)
            stage.resolved, config = '%s:%s' % (stage.base_spec['distro'], stage.base_spec['suite']), {}
            first.cached = stage.base in self.base_keys
        else:
            manifest = self._image(ref, stage.instruction)
            stage.base, stage.parent_layers = manifest['base'], list(manifest['layers'])
            stage.chain = manifest.get('cache_id') or manifest['id']  # a loaded image's id is the archive's word
            stage.pending = bool(manifest.get('pending'))
            config, stage.resolved = dict(manifest.get('config', {})), manifest.get('resolved') or manifest.get('from')
        stage.steps.append(first)
        layers, scope, chain = list(stage.parent_layers), {}, stage.chain
        for ins in stage.instructions:
            if ins.command == 'ARG':
                scope = self._declare([ins], scope)
                continue
            variables = dict((k, v) for k, v in scope.items() if v is not None)
            variables.update(env_dict(config.get('env')))
            ins = self._expand(ins, variables)
            step = Step(0, ins, stage)
            if ins.command in ('RUN', 'CMD', 'ENTRYPOINT'):
                step.argv = _conductorfile.with_shell(ins, config.get('shell') or _conductorfile.DEFAULT_SHELL)
            if ins.command in ('COPY', 'ADD'):
                chain = digest(chain, ins.command, ins.args, config.get('workdir'), self._copy_sources(step))
            elif ins.command == 'RUN':
                step.run_env, step.network = variables, step_network(ins, self.network)
                arguments = sorted((k, v) for k, v in scope.items() if v is not None)
                chain = digest(chain, 'RUN', step.argv, ins.flags, self._run_mounts(step), arguments)
            else:
                chain = digest(chain, ins.command, step.argv or ins.args)
                config = _conductorfile.apply_config(config, ins if step.argv is None else _with_args(ins, step.argv))
            step.config, step.below = dict(config), list(layers)
            if step.makes_layer:
                step.key = chain[:32]
                step.cached = not self.nocache and step.key in self.layer_keys
                layers.append(step.key)
            stage.steps.append(step)
        config.pop('cmd_here', None)  # the parser's note for ENTRYPOINT, not part of the image
        for step in stage.steps if stage.pending else ():
            step.cached = False  # check mode: on an image an earlier task would build, every step would run
        stage.config, stage.chain, stage.layers, stage.planned = config, chain, layers, True
        self._visiting.remove(stage)
        return stage

    def _copy_sources(self, step):
        """What the key of a COPY or ADD covers: the context sources' digest, or the stage or image it copies from."""
        ins = step.instruction
        source = ins.args.get('from')
        if source:
            stage = self._stage(source, ins, '--from=%s' % source)
            if stage is not None:
                step.copy_from = (stage.base, stage.layers)
                return stage.chain
            if _bases.is_base_reference(source) or ':' in source:
                ins.fail('COPY --from=%s: use the name or number of a stage, or a built image' % source)
            manifest = self._image(source, ins)
            step.copy_from = (manifest['base'], manifest['layers'])
            step.cached = not manifest.get('pending')  # a pending image is never in the cache
            return manifest.get('cache_id') or manifest['id']
        urls = [s for s in ins.args['sources'] if '://' in s]
        if urls and self._download is None:
            ins.fail('ADD %s: downloads are off: build with --allow-downloads (the module\'s allow_downloads), or '
                     'fetch the file into the build context and ADD it from there' % urls[0])
        if urls:
            if len(urls) != len(ins.args['sources']):
                ins.fail('ADD: give URLs in an ADD of their own, not with files of the build context')
            step.source_dir, names, sources_digest = self._download(urls, ins)
            step.sources = [_context.Source(n) for n in names]
            return sources_digest
        if not ins.args['sources']:
            return None  # heredocs only: their text is in the instruction
        sources, sources_digest = self._context_for(ins).resolve(ins, ins.args['sources'], ins.command == 'ADD')
        step.sources, step.source_dir = sources, self._context.fd  # the copy reads through the plan's fd
        return sources_digest

    def _run_mounts(self, step):
        """RUN --mount: bind mounts from the context (their digest joins the key), cache folders kept between builds."""
        ins, digests = step.instruction, []
        for text in ins.flags.get('mount', []):
            mount = _conductorfile.parse_mount(ins, text)
            if mount['type'] == 'cache':
                folder = os.path.join(self.cache_root or '/nonexistent', 'build-cache',
                                      digest('cache', mount.get('id') or mount['target'])[:24])
                step.mounts.append((folder, mount['target'], False))
                continue
            if mount.get('from'):
                ins.fail('RUN --mount=type=bind,from=... is not supported: COPY --from the files first')
            if mount.get('rw', 'false') not in ('false', '0'):
                ins.fail('RUN --mount=type=bind is read-only here: copy the files (COPY) to change them')
            context = self._context_for(ins)
            sources, sources_digest = context.resolve(ins, [mount.get('source', '.')])
            step.mounts.append((sources[0], mount['target'], True))  # copied, checked, when the step runs
            step.context = context
            digests.append(sources_digest)
        return digests


def _with_args(ins, argv):
    ins = _conductorfile.Instruction(ins.source, ins.lineno, ins.text, ins.command, ins.rest, ins.flags, ins.heredocs)
    ins.args = argv
    return ins


def image_digest(base, layer_ids, config):
    return digest('image', base, layer_ids, config)


def check_from(ins):
    """Refuse a FROM that names an unknown distribution or tag, with the forms that work."""
    ref = ins.args['image']
    try:
        if _bases.is_base_reference(ref):
            _bases.resolve(ref)
        elif ':' in ref:
            raise ConductorError('unknown distribution %r in FROM %s: use debian:<tag>, ubuntu:<tag>, a stage name '
                                 'or the name of a built image' % (ref.partition(':')[0], ref))
    except ConductorError as e:
        raise ConductorError('%s:%d: %s' % (ins.source, ins.lineno, e))


def make_plan(store, name, steps, context=None, nocache=False, build_args=None, images=None, downloads=False,
              allowed_images=None, network='default'):
    """A Plan that reads the store's images (or images(name)) and cache keys and the build context;
    with downloads, ADD <URL> fetches into the state root's downloads/ folder. allowed_images: the built
    images FROM and COPY --from may name (None: all); network: the RUN steps'."""
    check_name('image', name)
    return Plan(name, steps, store.config, images or store.require_image, context, store.keys('layers'),
                store.keys('bases'), nocache, build_args, store.root,
                (lambda urls, ins: download(store, urls, ins)) if downloads else None, allowed_images, network)


def step_network(ins, build_network='default'):
    """The network a RUN step gets: RUN --network=none or host, else the build's. RUN --network=host needs the
    build's host too, as BuildKit needs the network.host entitlement: a student's Dockerfile cannot reach the
    host's loopback and services unless the instructor says so for this build."""
    wanted = ins.flags.get('network', ['default'])[-1]
    if wanted == 'host' and build_network != 'host':
        ins.fail("RUN --network=host reaches the host's loopback and services, so it needs the build option "
                 "--network host (the module's build_network: host); or drop it: each RUN step has a network of its "
                 "own, with internet access")
    return build_network if wanted == 'default' else wanted


def download(store, urls, ins):
    """ADD <URL>: fetch each http(s) URL (as Docker does, on every build, the file kept 0600 and never
    unpacked) into downloads/<hash of the URLs>; returns (that folder, the file names, their digest)."""
    import urllib.request
    folder = store.path('downloads', digest('download', urls)[:24])
    os.makedirs(folder, 0o700, exist_ok=True)
    names, digests = [], []
    for url in urls:
        if not url.startswith(('http://', 'https://')):
            ins.fail('ADD %s: only http:// and https:// URLs can be downloaded' % url)
        name = posixpath.basename(url.split('?')[0].split('#')[0].rstrip('/')) or 'download'
        tmp = os.path.join(folder, temp_name(name))
        try:
            with urllib.request.urlopen(url, timeout=60) as response, \
                    os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except (OSError, ValueError) as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            detail = 'HTTP %s %s' % (e.code, e.reason) if hasattr(e, 'code') else getattr(e, 'reason', None) or e
            ins.fail('ADD %s: the download failed: %s' % (url, detail))
        os.rename(tmp, os.path.join(folder, name))
        names.append(name)
        digests.append(_context.file_hash(os.path.join(folder, name)))
    return folder, names, digest('downloads', names, digests)


def pending_image(name):
    """Check mode's stand-in for an image an earlier task would build: every step on it would run."""
    return {'name': name, 'id': 'pending-' + name, 'base': 'pending', 'layers': [], 'config': {}, 'pending': True}


def layer_ids(store, keys):
    """{key: id} of the layers the store holds among keys."""
    layers = (store.layer(key) for key in keys)
    return {layer['key']: layer['id'] for layer in layers if layer}


def load_steps(conductorfile=None, instructions=None, context=None):
    """Parse a Conductorfile (context: its folder by default) or inline instructions."""
    if conductorfile:
        steps = _conductorfile.parse_file(conductorfile, check_from)
        return steps, context or os.path.dirname(os.path.abspath(conductorfile))
    if instructions:
        return _conductorfile.parse('\n'.join(instructions), check_from=check_from), context
    raise ConductorError('nothing to build: give a Conductorfile or instructions')


# -- building --------------------------------------------------------------------------------------
def build(store, plan, out, networks=None):
    """Run the plan's uncached steps, stage by stage, then write the manifest. Returns (manifest, changed).
    networks: a StepNetworks the caller started early (its helper loads meanwhile) and ends, used if a RUN
    step needs it; without it, one is started here when one does."""
    store.prepare()
    store.sweep('layers')
    for warning in plan.warnings:
        out('[warning] %s' % warning)
    total = len(plan.steps)
    networked = any(s.instruction.command == 'RUN' and s.network == 'default' and not s.cached for s in plan.steps)
    with StepNetworks(store) if networks is None and networked else contextlib.nullcontext(networks) as networks:
        for stage in plan.planned_stages:
            for step in stage.steps:
                ins = step.instruction
                cached = step.cached and (step.makes_layer or step is stage.steps[0])
                out('Step %d/%d : %s%s' % (step.number, total, ins.text, ' (cached)' if cached else ''))
                if step is stage.steps[0] and stage.base_spec:
                    _bases.ensure_base(store.root, stage.base_spec, out)
                elif step.makes_layer and not step.cached:
                    _run_step(store, stage, step, plan.nocache, out, networks)
    return _write_manifest(store, plan)


def _run_step(store, stage, step, replace, out, networks=None):
    ins = step.instruction
    started = time.time()
    tmp = store.path('layers', temp_name())
    for sub in ('diff', 'work', 'merged', 'from'):
        os.makedirs(os.path.join(tmp, sub))
    rel = os.path.relpath(tmp, store.root)
    overlay = (store.lowerdirs(stage.base, step.below), rel + '/diff', rel + '/work', os.path.join(tmp, 'merged'))
    workdir = step.config.get('workdir') or '/'
    try:
        if ins.command == 'RUN':
            resolv_conf = os.path.join(tmp, 'resolv.conf')
            env = dict(step.run_env)
            env.setdefault('HOME', '/root')
            mounts = _mount_sources(store, step, tmp)
            confinement = _runtime.Confinement(BUILD_CAPS, _seccomp.filter_for(store.root, BUILD_CAPS))
            cgroup = _step_cgroup(store, tmp)
            try:
                with _step_network(store, tmp, step.network, networks) as netns:
                    code, message = _sandbox.spawn(lambda report: _runtime.build_step(
                        store.root, overlay, resolv_conf, step.argv, env, workdir, confinement, step.config.get('user'),
                        mounts, step.network == 'none', cgroup.procs(), netns), out)
            except BaseException:  # noqa: B036 - interrupted: the group goes, quietly, and the cause is what shows
                _remove_quietly(cgroup)
                raise
            _cgroups.migrations_done()
            cgroup.remove()
        else:
            source = step.source_dir if not step.copy_from else (
                store.lowerdirs(*step.copy_from), os.path.join(tmp, 'from'))
            confinement = _runtime.Confinement(COPY_CAPS, _seccomp.filter_for(store.root, COPY_CAPS))
            scratch = os.open(tmp, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600) \
                if any(s.archive for s in step.sources) else None  # where ADD's archive is copied, checked, read
            cgroup = _step_cgroup(store, tmp)
            try:
                code, message = _sandbox.spawn(lambda report: _copy_child(
                    store.root, overlay, source, step.sources, ins.args, workdir, confinement, report, scratch,
                    cgroup.procs()), out)
            finally:
                if scratch is not None:
                    os.close(scratch)
                _remove_quietly(cgroup)
        if code != 0:
            raise _step_failed(ins, code, message)
        _commit(store, tmp, step, replace)
    finally:
        store.discard(tmp)
    layer = store.layer(step.key)
    out(' ---> %s (%s, %.1fs)' % (layer['id'][:12], human_size(layer['size']), time.time() - started))


def _remove_quietly(cgroup):
    try:
        cgroup.remove()
    except ConductorError:
        pass  # its processes are not all gone yet: the next build sweeps it


def _mount_sources(store, step, tmp):
    """RUN --mount's (host folder, target, read-only): each bind source copied from the context into the step's
    folder, checked against what the plan hashed (the student may change the context meanwhile); each cache
    folder made if new."""
    mounts = []
    for number, (source, target, readonly) in enumerate(step.mounts):
        if isinstance(source, _context.Source):
            folder = os.path.join(tmp, 'bind-%d' % number)
            step.context.snapshot(source, folder)
            source = folder
        else:
            os.makedirs(source, 0o755, exist_ok=True)  # concurrent builds may share a cache
        mounts.append((source, target, readonly))
    return mounts


def _step_failed(ins, code, message):
    """One clear error for a failed step: the cause its child reported (in the image's paths), the signal
    that killed it with what usually sends that one, or the exit code of RUN's command."""
    where = '%s:%d: %s' % (ins.source, ins.lineno, ins.command)
    if message:
        return ConductorError('%s failed: %s: %r' % (where, message, ins.text))
    if code > 128:
        number = code - 128
        name = signal.Signals(number).name if number in signal.valid_signals() else 'signal %d' % number
        hint = {'SIGKILL': ' (the out-of-memory killer does that: BUILD_MEMORY in the config may be too low)',
                'SIGSYS': ' (a system call the seccomp filter refuses)'}.get(name, '')
        return ConductorError('%s was killed by %s%s: %r' % (where, name, hint, ins.text))
    return ConductorError('%s failed with exit code %d: %r' % (where, code, ins.text))


@contextlib.contextmanager
def _step_network(store, tmp, network, networks):
    """A RUN step's network and its resolv.conf (tmp/resolv.conf). Yields build_step's netns: (the fd of a
    network namespace of its own, the fd the step reads a byte from before it execs) for default, through
    networks (StepNetworks); None for the host's (host) or a fresh empty one (none, made by the step)."""
    if network != 'default':
        shutil.copyfile('/etc/resolv.conf', os.path.join(tmp, 'resolv.conf'))
        yield None
        return
    with open(os.path.join(tmp, 'resolv.conf'), 'w') as f:
        f.write(_addresses.resolv_conf(store.config))  # a loopback stub (127.0.0.53) is out of reach: its upstreams
    with networks.step(os.path.basename(tmp)) as netns:
        yield netns


def _step_cgroup(store, tmp):
    """A RUN step's cgroup, as a container's: the process limit (PIDS_LIMIT, else 2048) and BUILD_MEMORY
    from the config. Named after the step's folder (.build-<PID>-...): unique on the host, never a
    container's name. The groups of builds that were killed are removed first."""
    limits = {'pids': _cgroups.default_pids(store.config),
              'memory': _cgroups.parse_memory(store.config.get('BUILD_MEMORY'), 'BUILD_MEMORY in the config')}
    parent = store.config.get('CGROUP_PARENT')
    cgroup = _cgroups.Cgroup(BUILD_GROUP + os.path.basename(tmp)[len(TEMP_PREFIX):], parent)
    for name in cgroup.siblings():
        owner = temp_owner(name, BUILD_GROUP)
        if owner is not None and not pid_alive(owner):
            try:
                _cgroups.Cgroup(name, parent).remove()
            except ConductorError:
                pass  # its processes are not all gone yet: the next build tries again
    cgroup.create(limits, optional=('pids',), totals=_cgroups.total_limits(store.config))
    _cgroups.keep_migrations_quick()  # the step's join, just after the fork
    return cgroup


def _copy_child(root, overlay, source, sources, args, workdir, confinement, report, scratch,
                cgroup):  # pragma: no cover - runs in the child
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
    """_copy_child's copy, in the image. The WORKDIR is made first, as Docker's WORKDIR makes it, so that
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


def _extract(tarfile, top, dest, owner):  # pragma: no cover - runs in the child
    """ADD of a local archive: unpacked into dest. Every member is checked again here (the plan checked
    the names): its folder must resolve inside dest, so no symlink, made by the archive or already in
    the image, carries a member out of it."""
    with os.fdopen(os.dup(top), 'rb') as f, tarfile.open(fileobj=f, mode='r:*') as tar:
        _context.keep_no_members(tar)
        if not os.path.isdir(dest):
            os.makedirs(dest)
        real_dest = os.path.realpath(dest)
        for member in tar:
            name = _context.member_path(member.name)
            target = posixpath.join(dest, name) if name and name != '.' else dest
            parent = os.path.realpath(posixpath.dirname(target))
            if name is None or (parent != real_dest and not parent.startswith(real_dest.rstrip('/') + '/')):
                raise ConductorError('ADD: %s leads out of %s' % (member.name, dest))
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
                linked = _context.member_path(member.linkname)
                if linked is None:
                    raise ConductorError('ADD: %s links to outside %s' % (member.name, dest))
                os.link(posixpath.join(dest, linked), target)
            elif member.isfile():
                with tar.extractfile(member) as fin, open(target, 'xb') as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            else:
                continue  # devices and fifos are not unpacked
            uid, gid = owner or (member.uid, member.gid)
            os.lchown(target, uid, gid)
            if not member.issym():
                os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime))


def _commit(store, tmp, step, replace):
    """Turn a finished step's folder into layers/<key>: a rename under the lock, so all or nothing."""
    remove_tree(os.path.join(tmp, 'work'))
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
            remove_tree(old)
        else:
            os.rename(tmp, final)


def _write_manifest(store, plan):
    base, layers = plan.base, plan.layers
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
            'config': plan.config, 'from': plan.stages[-1].instruction.args['image'], 'resolved': plan.resolved,
            'created': utc_now(),
            'size': base_info.get('size', 0) + sum(layer['size'] for layer in records),
        }
        write_json(store.path('images', plan.name + '.json'), manifest)
    return manifest, True
