# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The conductor_image module's task: an image built, loaded, archived or removed, as the task asks.

ensure_image plans a build (_buildplan) and, unless in check mode, runs it (_builder); with source=load
it loads an archive (_archive) unless the image already has the archive's id; with archive_path it saves
the image unless that archive already holds it. Every result has changed, the image and a before/after
diff of its id and layers. As in _planning, check mode takes an image an earlier task would build or an
archive it would write as pending, and reports what it would do instead of failing.
"""

import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._planning import PENDING_IMAGE
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store, public
from ansible_collections.cs695.conductor.plugins.module_utils import _operations


def image_summary(manifest: 'dict | None') -> dict:
    """What the diff shows of an image: its id and layer keys."""
    return {'id': manifest['id'], 'layers': manifest['layers']} if manifest else {}


def ensure_image(store: Store, name: str, state: str = 'present', conductorfile: 'str | None' = None,
                 instructions: 'list[str] | None' = None, context: 'str | None' = None, force: bool = False,
                 check_mode: bool = False, out: 'callable | None' = None,
                 build_args: 'dict[str, object] | None' = None, allow_downloads: bool = False, source: str = 'build',
                 load_path: 'str | None' = None, archive_path: 'str | None' = None, archive_compress: bool = False,
                 allowed_images: 'list[str] | None' = None, build_network: str = 'default',
                 force_source: bool = False, push: bool = False, repository: 'str | None' = None,
                 pull: str = 'missing') -> dict:
    """Bring image `name` to `state`; the one entry point of the conductor_image module. source=load
    loads it from the archive load_path unless the image already has the archive's id; source=pull pulls
    `name` (a reference) when it is missing, or with force_source when the registry has another; archive_path
    exports it after building or loading unless that archive already holds the image's id; push sends it to
    `repository` unless the registry holds what the last push of it sent there."""
    out = out or (lambda line: None)
    before = store.image(name)
    if state == 'absent':
        if before and not check_mode:
            _operations.remove_image(store, name)
        return {'changed': before is not None, 'image': {},
                'diff': {'before': image_summary(before), 'after': {}}}
    if source == 'load':
        result = _load_image(store, name, before, load_path, force, check_mode)
    elif source == 'pull':
        result = _pull_image(store, name, before, force_source, check_mode, out)
    else:
        result = _build_image(store, name, before, conductorfile, instructions, context, force, check_mode, out,
                              build_args, allow_downloads, allowed_images, build_network, pull)
    if archive_path:
        from ansible_collections.cs695.conductor.plugins.module_utils import _archive
        image_id = result['image'].get('id')
        if _archive.archive_id(archive_path) != image_id:
            if not check_mode:
                result['archive'] = _archive.save(store, name, archive_path, archive_compress)
            result['changed'] = True
            result.setdefault('actions', []).append('archived')
    if push:
        _push_image(store, name, repository, result, check_mode)
    return result


def _pull_image(store, name, before, force_source, check_mode, out):
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    if before and not force_source:
        return {'changed': False, 'image': public(before),
                'diff': {'before': image_summary(before), 'after': image_summary(before)}}
    manifest, changed = _registry.pull(store, name, check_only=check_mode)
    if check_mode:
        after = image_summary(before) if not changed else {'id': PENDING_IMAGE, 'layers': []}
        return {'changed': changed, 'image': public(before) if not changed else dict(public(before), **manifest),
                'diff': {'before': image_summary(before), 'after': after}}
    out('Pulled %s (%s)' % (manifest['name'], manifest.get('digest')))
    return {'changed': changed, 'image': public(manifest),
            'diff': {'before': image_summary(before), 'after': image_summary(manifest)}}


def _push_image(store, name, repository, result, check_mode):
    """Push the image to repository unless the registry holds the digest its last push there sent."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    from ansible_collections.cs695.conductor.plugins.module_utils._reference import parse
    if not repository:
        raise ConductorError('push: true needs repository, the reference to push to (registry.lab:5000/course/app:1)')
    target = str(parse(repository))
    image = store.image(name)
    pushed = (image or {}).get('pushed') or {}
    if image is not None and pushed.get(target) and _registry.remote_digest(store, target) == pushed[target]:
        return
    if not check_mode:
        result['pushed'] = _registry.push(store, name, target)
    result['changed'] = True
    result.setdefault('actions', []).append('pushed')


def _build_image(store, name, before, conductorfile, instructions, context, force, check_mode, out, build_args,
                 allow_downloads, allowed_images=None, build_network='default', pull='missing'):
    from ansible_collections.cs695.conductor.plugins.module_utils import _builder, _buildplan  # only a build hashes
    steps, context = _buildplan.load_steps(conductorfile, instructions, context)
    build_args = dict((str(k), str(v)) for k, v in (build_args or {}).items())

    def pending(ref):  # check mode: an image FROM or COPY --from names, which an earlier task would build or pull
        return store.image(ref) or _buildplan.pending_image(ref)
    if check_mode:
        images = pending
    else:
        from ansible_collections.cs695.conductor.plugins.module_utils import _registry  # FROM a registry's image
        images = _registry.build_images(store, pull)
    plan = _buildplan.make_plan(store, name, steps, context, nocache=force, build_args=build_args,
                                images=images, downloads=allow_downloads,
                                allowed_images=allowed_images, network=build_network)
    if check_mode:
        image_id = plan.image_id(_buildplan.layer_ids(store, plan.layers))
        changed = force or image_id is None or before is None or before['id'] != image_id
        after = {'id': image_id or PENDING_IMAGE, 'layers': plan.layers}
        result = public(before) if before and not changed else dict(public(before), **after)
        return {'changed': changed, 'image': dict(result, name=name),
                'diff': {'before': image_summary(before), 'after': after if changed else image_summary(before)},
                'would_run': [s.instruction.text for s in plan.steps if not s.cached], 'warnings': plan.warnings}
    manifest, changed = _builder.build(store, plan, out)
    return {'changed': changed, 'image': public(manifest), 'warnings': plan.warnings,
            'diff': {'before': image_summary(before), 'after': image_summary(manifest)}}


def _load_image(store, name, before, load_path, force, check_mode):
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive
    if not load_path:
        raise ConductorError('source: load needs load_path, the archive conductor save (or archive_path) wrote')
    if check_mode and not os.path.exists(load_path):  # pending: an earlier task would write or copy it
        return {'changed': True, 'image': dict(public(before), name=name, id=PENDING_IMAGE),
                'diff': {'before': image_summary(before), 'after': {'id': PENDING_IMAGE, 'layers': []}}}
    archive = _archive.archive_id(load_path)
    if archive is None:
        raise ConductorError('%s is not an image archive Conductor wrote (or cannot be read): make it with conductor '
                             'save or the archive_path option' % load_path)
    if before and before['id'] == archive and not force:
        return {'changed': False, 'image': public(before),
                'diff': {'before': image_summary(before), 'after': image_summary(before)}}
    if check_mode:
        after = {'id': archive, 'layers': before['layers'] if before and before['id'] == archive else []}
        return {'changed': True, 'image': dict(public(before), name=name, id=archive),
                'diff': {'before': image_summary(before), 'after': after}}
    manifest, dummy = _archive.load(store, load_path, name)
    return {'changed': True, 'image': public(manifest),
            'diff': {'before': image_summary(before), 'after': image_summary(manifest)}}
