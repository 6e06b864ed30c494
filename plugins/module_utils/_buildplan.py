# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A build's plan: a Conductorfile read against the build cache, with nothing run yet.

Every step's cache key is known before anything runs: key = hash(parent key, the instruction after
variable expansion, and for COPY/ADD the path, mode, size, content hash and link target of every
source, or the key of the stage it copies from). ARG values enter the chain where they are declared,
SHELL and USER where they are set: so a step's key covers every build arg, shell and user it sees.
A plan tells check mode exactly which steps would run, and a rebuild of an unchanged file only reads
and hashes.

    load_steps  the Conductorfile (or a task's instructions), parsed into instructions
    make_plan   gathers what a plan reads: the store's images and cache keys, the build context, and
                with downloads, ADD's URLs (download: fetched while planning, so their digest is in the key)
    Plan        splits the file into stages (FROM ... AS name), expands variables, and computes keys
                and cached steps, planning only the stages the last one needs, each once

_builder.build then runs the steps the plan found uncached.
"""

import os
import posixpath
import shutil

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, digest, env_dict, temp_name)
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import Instruction
from ansible_collections.cs695.conductor.plugins.module_utils._reference import image_name, is_reference, parse
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
from ansible_collections.cs695.conductor.plugins.module_utils import _bases, _conductorfile, _context

LAYER_COMMANDS = ('COPY', 'ADD', 'RUN')
NETWORKS = ('default', 'none', 'host')  # what a build's RUN steps get: conductor build --network, RUN --network


class Step:
    def __init__(self, number, instruction, stage):
        self.number, self.instruction, self.stage, self.key = number, instruction, stage, None
        self.config, self.sources, self.argv, self.below, self.copy_from, self.mounts = None, [], None, [], None, []
        self.source_dir, self.run_env, self.network = None, {}, 'default'  # source_dir: the context's fd, or
        self.context = None  # the folder ADD downloaded into
        self.cached = True

    @property
    def makes_layer(self) -> bool:
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

    def __init__(self, name: str, instructions: 'list[Instruction]', config: 'dict[str, str]',
                 images: 'callable | None' = None, context: 'str | _context.Context | None' = None,
                 layers: 'list | tuple' = (), bases: 'list | tuple' = (), nocache: bool = False,
                 build_args: 'dict[str, str] | None' = None, cache_root: 'str | None' = None,
                 download: 'callable | None' = None,
                 allowed_images: 'list | tuple | None' = None, network: str = 'default') -> None:
        self.name, self.nocache = image_name(name), nocache
        self.allowed_images = None if allowed_images is None else \
            sorted(set(image_name(image) for image in allowed_images))
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
    def complete(self) -> bool:
        """True when every step is in the cache (and no image it uses is pending): building would only
        write the manifest."""
        return all(s.cached for s in self.steps)

    @property
    def planned_stages(self) -> 'list[Stage]':
        return [s for s in self.stages if s.planned]

    def image_id(self, layer_ids: 'dict[str, str]') -> 'str | None':
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
        try:
            ref = image_name(ref)
        except ConductorError as e:
            ins.fail(str(e))
        if ref == self.name:
            ins.fail('image %r cannot be built FROM itself' % ref)
        if self.allowed_images is not None and ref not in self.allowed_images:  # before any read: no oracle
            what = ins.command if ins.command == 'FROM' else ins.command + ' --from'
            ins.fail('%s names the image %r, which this build may not use (allowed: %s): give --allow-image %s (the '
                     'module\'s allowed_images) if it may' % (what, ref, ', '.join(self.allowed_images) or 'none', ref))
        try:
            if self._images is None:
                raise ConductorError('no image named %r' % ref)
            return self._images(ref)
        except ConductorError as e:
            stages = ', '.join(s.name for s in self.stages if s.name) or 'none'
            ins.fail('%s is neither a stage of this file (named stages: %s) nor a built image: %s'
                     % (ref, stages, e))

    def _debootstrapped(self, ref):
        """FROM debian:/ubuntu: comes from debootstrap, unless DEBIAN_FROM=registry sends it to a registry."""
        return _bases.is_base_reference(ref) and self.settings.get('DEBIAN_FROM') != 'registry'

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
        parent = self._stage(ref, stage.instruction, 'FROM') if not self._debootstrapped(ref) else None
        first = Step(0, stage.instruction, stage)
        if parent is not None:
            stage.pending = parent.pending
            stage.base, stage.chain, stage.parent_layers = parent.base, parent.chain, list(parent.layers)
            config, stage.resolved = dict(parent.config), parent.resolved
        elif self._debootstrapped(ref):
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
            if self._debootstrapped(source):
                ins.fail('COPY --from=%s: use the name or number of a stage, or an image (built, loaded or pulled)'
                         % source)
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


def image_digest(base: str, layer_ids: 'list[str]', config: dict) -> str:
    return digest('image', base, layer_ids, config)


def check_from(ins: Instruction) -> None:
    """Refuse a FROM that names an unknown distribution or tag, with the forms that work."""
    ref = ins.args['image']
    try:
        if _bases.is_base_reference(ref):
            _bases.resolve(ref)
        elif is_reference(ref):
            parse(ref)  # a registry's image: pulled when the plan reads it (_registry.build_images)
    except ConductorError as e:
        raise ConductorError('%s:%d: %s' % (ins.source, ins.lineno, e))


def make_plan(store: Store, name: str, steps: 'list[Instruction]', context: 'str | _context.Context | None' = None,
              nocache: bool = False, build_args: 'dict[str, str] | None' = None,
              images: 'callable | None' = None, downloads: bool = False,
              allowed_images: 'list | tuple | None' = None, network: str = 'default') -> Plan:
    """A Plan that reads the store's images (or images(name)) and cache keys and the build context;
    with downloads, ADD <URL> fetches into the state root's downloads/ folder. allowed_images: the built
    images FROM and COPY --from may name (None: all); network: the RUN steps'."""
    image_name(name)
    return Plan(name, steps, store.config, images or store.require_image, context, store.keys('layers'),
                store.keys('bases'), nocache, build_args, store.root,
                (lambda urls, ins: download(store, urls, ins)) if downloads else None, allowed_images, network)


def step_network(ins: Instruction, build_network: str = 'default') -> str:
    """The network a RUN step gets: RUN --network=none or host, else the build's. RUN --network=host needs the
    build's host too, as BuildKit needs the network.host entitlement: a student's Dockerfile cannot reach the
    host's loopback and services unless the instructor says so for this build."""
    wanted = ins.flags.get('network', ['default'])[-1]
    if wanted == 'host' and build_network != 'host':
        ins.fail("RUN --network=host reaches the host's loopback and services, so it needs the build option "
                 "--network host (the module's build_network: host); or drop it: each RUN step has a network of its "
                 "own, with internet access")
    return build_network if wanted == 'default' else wanted


def download(store: Store, urls: 'list[str]', ins: Instruction) -> 'tuple[str, list[str], str]':
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


def pending_image(name: str) -> dict:
    """Check mode's stand-in for an image an earlier task would build: every step on it would run."""
    return {'name': name, 'id': 'pending-' + name, 'base': 'pending', 'layers': [], 'config': {}, 'pending': True}


def layer_ids(store: Store, keys: 'list | tuple') -> 'dict[str, str]':
    """{key: id} of the layers the store holds among keys."""
    layers = (store.layer(key) for key in keys)
    return {layer['key']: layer['id'] for layer in layers if layer}


def load_steps(conductorfile: 'str | None' = None, instructions: 'list[str] | None' = None,
               context: 'str | None' = None) -> 'tuple[list[Instruction], str | None]':
    """Parse a Conductorfile (context: its folder by default) or inline instructions."""
    if conductorfile:
        steps = _conductorfile.parse_file(conductorfile, check_from)
        return steps, context or os.path.dirname(os.path.abspath(conductorfile))
    if instructions:
        return _conductorfile.parse('\n'.join(instructions), check_from=check_from), context
    raise ConductorError('nothing to build: give a Conductorfile or instructions')
