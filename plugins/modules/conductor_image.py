#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_image
short_description: Build or remove a Conductor image from a Conductorfile
version_added: 0.1.0
description:
  - Builds an image from a Conductorfile (C(FROM), C(COPY), C(RUN), C(ENV), C(WORKDIR), C(CMD)), one
    overlayfs layer per C(COPY) and C(RUN) step, reusing the build cache of the managed host.
  - C(FROM debian:<suite>) and C(FROM ubuntu:<suite>) bases are made with debootstrap once and cached.
  - Idempotent. The task reports a change only when the image's manifest (its layers or config) changes,
    so rebuilding an unchanged Conductorfile runs nothing and reports C(changed=false).
  - In check mode the module works out from the build cache which steps would run, without running them.
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_pending
  - cs695.conductor.attributes.check_diff
options:
  name:
    description:
      - The image name, 1 to 63 characters from C(a-zA-Z0-9_.-), starting with a letter or digit.
    type: str
    required: true
  conductorfile:
    description:
      - Path of the Conductorfile on the managed host.
      - Mutually exclusive with O(instructions).
    type: path
  instructions:
    description:
      - The Conductorfile's lines, inline.
      - Mutually exclusive with O(conductorfile). C(COPY) then needs O(context).
    type: list
    elements: str
  context:
    description:
      - The folder C(COPY) sources are read from. Sources may not lead out of it.
      - Defaults to the folder of O(conductorfile).
    type: path
  build_args:
    description:
      - Values for the Conductorfile's C(ARG)s, as C(docker build --build-arg) gives them.
      - A value that no C(ARG) uses is reported as a warning, as Docker does.
      - A changed value rebuilds the steps from the first C(ARG) that declares it.
    type: dict
  allow_downloads:
    description:
      - Let C(ADD) download its C(http://) and C(https://) URLs, as C(conductor build --allow-downloads) does.
      - Off by default, so a Conductorfile cannot fetch from the network unless the playbook says so.
      - A download runs on every build (in check mode too); the step is rebuilt when the file changes.
    type: bool
    default: false
  allowed_images:
    description:
      - The built images the Conductorfile's C(FROM) and C(COPY --from) may name, as C(conductor build --allow-image)
        gives them; any other is an error before anything runs (in check mode too).
      - Stages of the same file and debootstrap bases (C(FROM debian:...), C(FROM ubuntu:...)) are always allowed.
      - Omitted, every image is allowed, as in Docker. Give it when building a student's Dockerfile, so that it cannot
        copy another image, such as the solution's. An empty list allows stages and bases only.
    type: list
    elements: str
  build_network:
    description:
      - The network of the C(RUN) steps, as C(conductor build --network) (and C(docker build --network)) sets it.
      - V(default) gives each C(RUN) step a network namespace of its own, with internet access through NAT as a
        container run with C(-i) has (so C(apt-get) works) and the host's C(HOST_ACCESS) default; the host's
        loopback, its abstract unix sockets and 169.254.0.0/16 are out of reach.
      - V(none) gives every C(RUN) step no network but its own loopback, as C(RUN --network=none) does.
      - V(host) runs the C(RUN) steps in the host's network namespace, with its loopback and services. Only this
        allows C(RUN --network=host), as BuildKit's C(--allow network.host) does; without it, such a line is an
        error. Give it only for a Conductorfile you trust.
      - Not part of the build cache's keys, as in Docker; check mode and idempotence are the same for every value.
    type: str
    choices: [default, none, host]
    default: default
  source:
    description:
      - V(build) builds the image from O(conductorfile) or O(instructions).
      - V(load) loads it from O(load_path), an archive C(conductor save) or O(archive_path) wrote, or C(docker save),
        C(podman save) or C(skopeo copy) wrote, unless the image already has the archive's id. It keeps its id, and
        no debootstrap or RUN step runs.
      - V(pull) pulls O(name), a reference such as V(python:3.12-slim) or V(registry.lab:5000/course/db:16), from its
        registry (or a mirror C(REGISTRY_MIRRORS) in conductor.conf names) when it is missing, as C(conductor pull)
        does. An image already here is left as it is unless O(force_source) is set.
    type: str
    choices: [build, load, pull]
    default: build
  pull:
    description:
      - With O(source=build), when to pull an image C(FROM) or C(COPY --from) names by reference (V(python:3.12-slim)),
        as C(conductor build --pull). V(missing) pulls what is not here, V(always) asks the registry every time (as
        C(docker build --pull)), V(never) uses only what is here. Only after the O(allowed_images) check.
    type: str
    choices: [missing, always, never]
    default: missing
  force_source:
    description:
      - With O(source=pull), ask the registry even when the image is here, and pull it again when the registry has
        another (its manifest's digest differs). Only the manifest is asked for when it has not changed.
    type: bool
    default: false
  push:
    description:
      - After building, loading or pulling, push the image to O(repository), unless the registry already holds the
        digest this image's last push there sent (one request to find out).
    type: bool
    default: false
  repository:
    description:
      - With O(push=true), the reference to push to, for example V(registry.lab:5000/course/app:1). Credentials come
        from C(conductor login) (the containers auth file) or C(~/.docker/config.json).
    type: str
  load_path:
    description: With O(source=load), the archive to load (a path on the managed host).
    type: path
  archive_path:
    description:
      - After building or loading, write the image to this OCI image layout archive (as C(conductor save) does),
        unless the archive there already holds the image's id.
      - The classroom playbook builds on one host, fetches the archive and loads it on the others.
    type: path
  archive_compress:
    description: Compress the layers in O(archive_path) with gzip.
    type: bool
    default: false
  state:
    description:
      - V(present) builds the image if it is missing or out of date.
      - V(absent) removes it, and the layers no other image uses.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Run every step again, ignoring the build cache (the CLI's C(--no-cache)). Always reports a change.
    type: bool
    default: false
notes:
  - Check mode cannot tell the new image id when a step would run; RV(image.id) then says so.
seealso:
  - name: Dockerfile reference
    description: The syntax Conductorfiles follow.
    link: https://docs.docker.com/reference/dockerfile/
'''

EXAMPLES = r'''
- name: Build the course image from a Conductorfile
  cs695.conductor.conductor_image:
    name: cs695
    conductorfile: /srv/course/Conductorfile

- name: Build an image from inline instructions
  cs695.conductor.conductor_image:
    name: tools
    instructions:
      - FROM debian:bookworm
      - RUN apt-get update && apt-get install -y --no-install-recommends curl
      - CMD ["/bin/bash"]

- name: Rebuild every step, ignoring the cache
  cs695.conductor.conductor_image:
    name: cs695
    conductorfile: /srv/course/Conductorfile
    force: true

- name: Build a student's Dockerfile, which may start from the course image but copy no other
  cs695.conductor.conductor_image:
    name: "grade-{{ student }}"
    conductorfile: "/srv/submissions/{{ student }}/Dockerfile"
    allowed_images: [cs695]

- name: Build on one host and write the archive to ship
  cs695.conductor.conductor_image:
    name: cs695
    conductorfile: /srv/course/Conductorfile
    archive_path: /var/tmp/cs695.oci.tar

- name: Load it on another host (no debootstrap, no RUN step)
  cs695.conductor.conductor_image:
    name: cs695
    source: load
    load_path: /var/tmp/cs695.oci.tar

- name: Pull an image from Docker Hub (or the mirror conductor.conf names)
  cs695.conductor.conductor_image:
    name: python:3.12-slim
    source: pull

- name: Build the course image and push it to the lab's registry
  cs695.conductor.conductor_image:
    name: cs695
    conductorfile: /srv/course/Conductorfile
    push: true
    repository: registry.lab:5000/course/cs695:2026

- name: Remove the image
  cs695.conductor.conductor_image:
    name: tools
    state: absent
'''

RETURN = r'''
image:
  description: The image after the task; empty when it was removed.
  returned: always
  type: dict
  contains:
    name:
      description: The image name.
      type: str
      sample: cs695
    id:
      description: The image id, a sha256 of its base, layers and config.
      type: str
      sample: 308cbd19efa18b50a72bfd97e496512161b98f25cd78e7ac058d124b129113e2
    layers:
      description: The cache keys of its layers, bottom first.
      type: list
      elements: str
      sample: [1cf2dca8b0e526668f64d964272afd2e]
    size:
      description: Bytes in the base and the layers.
      type: int
      sample: 287118724
    config:
      description: The default command, environment and working folder.
      type: dict
      sample: {cmd: [/bin/bash], env: [A=1], workdir: /}
    created:
      description: When this manifest was written (UTC).
      type: str
      sample: '2026-11-28T12:53:20Z'
    base:
      description: The cache key of the debootstrap base.
      type: str
      sample: 8c69f5efe936f7134d96b753d2beabdf
    from:
      description: What the Conductorfile's FROM named (the reference, for a pulled image).
      type: str
      sample: debian:bookworm
    resolved:
      description: What FROM resolved to (the suite, or the manifest digest of a pulled image).
      type: str
      sample: debian:bookworm
    digest:
      description: For a pulled image, the digest of the manifest it came by.
      type: str
      sample: sha256:3a5f275f6a3eb8337639935b7f4ee363fbea39a8bdf8d07547df30ddf4cb193e
would_run:
  description: In check mode, the steps that would run.
  returned: check mode
  type: list
  elements: str
  sample: ['RUN apt-get update']
archive:
  description: With O(archive_path), the archive written (not returned when the archive already held the image).
  returned: when an archive was written
  type: dict
  sample:
    name: cs695
    id: 308cbd19efa18b50a72bfd97e496512161b98f25cd78e7ac058d124b129113e2
    path: /var/tmp/cs695.oci.tar
    size: 196208640
pushed:
  description: With O(push=true), what was pushed (not returned when the registry already held it).
  returned: when the image was pushed
  type: dict
  sample:
    name: cs695
    reference: registry.lab:5000/course/cs695:2026
    digest: sha256:c5a239e543262e50d740f48d30b442f3d94d39fd33183b76957d5e08ffafe424
actions:
  description: V(archived) when O(archive_path) was (or in check mode would be) written, V(pushed) when the image
    was (or would be) pushed.
  returned: when an archive was written or the image pushed
  type: list
  elements: str
  sample: [archived, pushed]
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._imagetasks import ensure_image
from ansible_collections.cs695.conductor.plugins.module_utils._module import ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            conductorfile=dict(type='path'),
            instructions=dict(type='list', elements='str'),
            context=dict(type='path'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            force=dict(type='bool', default=False),
            build_args=dict(type='dict'),
            allow_downloads=dict(type='bool', default=False),
            allowed_images=dict(type='list', elements='str'),
            build_network=dict(type='str', choices=['default', 'none', 'host'], default='default'),
            source=dict(type='str', choices=['build', 'load', 'pull'], default='build'),
            force_source=dict(type='bool', default=False),
            pull=dict(type='str', choices=['missing', 'always', 'never'], default='missing'),
            push=dict(type='bool', default=False),
            repository=dict(type='str'),
            load_path=dict(type='path'),
            archive_path=dict(type='path'),
            archive_compress=dict(type='bool', default=False),
            root=ROOT_OPTION,
        ),
        mutually_exclusive=[('conductorfile', 'instructions')],
        required_if=[('source', 'load', ('load_path',)), ('push', True, ('repository',))],
        supports_check_mode=True,
    )
    p = module.params
    run_module(module, lambda store, out: ensure_image(
        store, p['name'], state=p['state'], conductorfile=p['conductorfile'], instructions=p['instructions'],
        context=p['context'], force=p['force'], build_args=p['build_args'], allow_downloads=p['allow_downloads'],
        source=p['source'], load_path=p['load_path'], archive_path=p['archive_path'],
        archive_compress=p['archive_compress'], check_mode=module.check_mode, out=out,
        allowed_images=p['allowed_images'], build_network=p['build_network'], force_source=p['force_source'],
        push=p['push'], repository=p['repository'], pull=p['pull']))


if __name__ == '__main__':
    main()
