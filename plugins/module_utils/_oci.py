# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""OCI's vocabulary, shared by archives (_archive) and registries (_registry): media types, the most JSON
read into memory, and the pick of this machine's image from an index or a manifest list. Small, so a
re-pull (a manifest and nothing else) does not load the archive code."""

import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

ANNOTATION = 'io.cs695.conductor'
REF_NAME = 'org.opencontainers.image.ref.name'
MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
CONFIG = 'application/vnd.oci.image.config.v1+json'
LAYER = 'application/vnd.oci.image.layer.v1.tar'
JSON_MAX = 4 << 20  # index.json, a manifest, a config: Conductor writes a few kB; a few MiB leaves room for labels
LAYER_TYPES = {LAYER: None, LAYER + '+gzip': 'gzip', LAYER + '+zstd': 'zstd',
               'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
               'application/vnd.docker.image.rootfs.diff.tar': None}
INDEX_TYPES = ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')
MANIFEST_TYPES = (MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json')


def pick_manifest(index: dict, what: str) -> dict:
    """The descriptor for linux on this machine's architecture in an OCI index or a Docker manifest list; the
    only image manifest of an index without platforms (a layout Conductor or skopeo wrote)."""
    manifests = [m for m in index.get('manifests') or [] if isinstance(m, dict)]
    with_platform = [m for m in manifests if isinstance(m.get('platform'), dict)]
    if not with_platform:
        images = [m for m in manifests if m.get('mediaType', MANIFEST) in MANIFEST_TYPES + INDEX_TYPES]
        if len(images) != 1:
            raise ValueError('%s must name exactly one image manifest, it names %d' % (what, len(images)))
        return images[0]
    arch = machine_arch()
    for m in with_platform:
        if m['platform'].get('os') == 'linux' and m['platform'].get('architecture') == arch:
            return m
    raise ConductorError('%s has no image for linux/%s, only for %s: nothing was loaded' % (
        what, arch, ', '.join(sorted('%s/%s' % (m['platform'].get('os'), m['platform'].get('architecture'))
                                     for m in with_platform))))


def machine_arch() -> str:
    """OCI's (Go's) name for this machine's architecture."""
    machine = os.uname().machine
    return {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm', 'armv6l': 'arm', 'i686': '386', 'i386': '386',
            'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64'}.get(machine, machine)
