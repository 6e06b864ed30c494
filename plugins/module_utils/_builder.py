# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The image builder: run the steps a plan (_buildplan.Plan) found uncached, then write the image.

    build       runs the uncached steps stage by stage (RUN through _runtime.build_step, in a cgroup and a
                network of its own; COPY and ADD in _copystep.copy_child), each in a temporary folder
                renamed into layers/ when it succeeds, then writes the manifest of the last stage: only it
                becomes the image
"""

import contextlib
import os
import shutil
import signal
import time

from ansible_collections.cs695.conductor.plugins.module_utils._buildplan import Plan, image_digest
from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    TEMP_PREFIX, ConductorError, human_size, remove_tree, temp_name, temp_owner, tree_size, utc_now, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._copystep import copy_child
from ansible_collections.cs695.conductor.plugins.module_utils._policy import BUILD_CAPS, COPY_CAPS
from ansible_collections.cs695.conductor.plugins.module_utils._processes import pid_alive
from ansible_collections.cs695.conductor.plugins.module_utils._stepnetworks import StepNetworks
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
from ansible_collections.cs695.conductor.plugins.module_utils import (
    _addresses, _bases, _cgroups, _context, _progress, _runtime, _sandbox, _seccomp)

BUILD_GROUP = '.build-'  # a RUN step's cgroup: .build-<PID>-..., as its folder's temp name


def build(store: Store, plan: Plan, out: 'callable',
          networks: 'StepNetworks | None' = None) -> 'tuple[dict, bool]':
    """Run the plan's uncached steps, stage by stage, then write the manifest. Returns (manifest, changed).
    networks: a StepNetworks the caller started early (its helper loads meanwhile) and ends, used if a RUN
    step needs it; without it, one is started here when one does."""
    store.prepare(trees=True)
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
                    spec = _runtime.RunStep(
                        root=store.root, overlay=overlay, resolv_conf=resolv_conf, argv=step.argv, env=env,
                        workdir=workdir, confinement=confinement, user=step.config.get('user'), mounts=tuple(mounts),
                        no_network=step.network == 'none', cgroup=tuple(cgroup.joins()), netns=netns)
                    with _progress.shown('Step %d: RUN' % step.number):
                        code, message = _sandbox.spawn(lambda report: _runtime.build_step(spec), out)
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
                code, message = _sandbox.spawn(lambda report: copy_child(
                    store.root, overlay, source, step.sources, ins.args, workdir, confinement, report, scratch,
                    cgroup.joins()), out)
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
        write_json(store.image_path(plan.name), manifest)
    return manifest, True
