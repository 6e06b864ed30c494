#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_container
short_description: Manage Conductor containers
version_added: 0.1.0
description:
  - Creates, starts, stops and removes containers made from Conductor images. Each runs in new PID,
    UTS, network, mount and IPC namespaces on an overlayfs root, with Docker's default capabilities.
  - The container stores the spec it was created with (image and its id, command, env, hostname,
    privileged, capabilities, security options, limits). A task with the same spec on a running container reports no change. A different spec,
    or the image having been rebuilt to another id, recreates the container; RV(differences) says why.
  - A started container keeps running after the task ends; its output goes to its log (C(conductor logs NAME)).
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_pending
  - cs695.conductor.attributes.check_diff
options:
  name:
    description: The container name, 1 to 63 characters from C(a-zA-Z0-9_.-), starting with a letter or digit.
    type: str
    required: true
  image:
    description: The image to run. Required unless O(state=absent).
    type: str
  command:
    description:
      - The command and its arguments. A string is split as a shell would.
      - Defaults to the image's C(CMD), else C(/bin/bash).
    type: raw
  env:
    description: Environment variables, added to the image's C(ENV).
    type: dict
    default: {}
  hostname:
    description: The hostname inside. Defaults to the container name.
    type: str
  privileged:
    description:
      - Keep every capability, load no seccomp filter, and leave C(/proc) and C(/sys) writable.
      - Only for containers whose users you trust with the host.
    type: bool
    default: false
  cap_add:
    description:
      - Capabilities to add to the default set (Docker's without C(MKNOD)), such as V(NET_ADMIN) or V(SYS_PTRACE).
      - Names with or without C(CAP_), in any case; V(ALL) adds every one. Unknown names fail the task.
    type: list
    elements: str
    default: []
  cap_drop:
    description: Capabilities to drop from the default set; V(ALL) drops every one (then O(cap_add) adds back).
    type: list
    elements: str
    default: []
  security_opts:
    description:
      - Docker's security options that Conductor knows.
      - V(seccomp=unconfined) loads no seccomp filter.
      - V(no-new-privileges) sets no_new_privs, so setuid programs such as C(su) and C(sudo) gain nothing.
    type: list
    elements: str
    default: []
  memory:
    description:
      - Memory limit, swap included, such as V(512m) or V(2g) (at least V(6m)). Omitted, C(MEMORY_LIMIT) from conductor.conf, else none.
      - A change is applied to the running container in place, as C(docker update) does (action V(updated));
        a limit below what the container uses now fails the task.
    type: str
  cpus:
    description: CPU limit in CPUs, such as V(1.5). Omitted, none. Changed in place, as O(memory).
    type: float
  pids_limit:
    description:
      - Process limit; V(-1) for none. Omitted, C(PIDS_LIMIT) from conductor.conf, else 2048, so a fork bomb stops there.
      - Changed in place, as O(memory).
    type: int
  storage_size:
    description:
      - A limit on what the container writes outside its volumes (its own layer), such as V(1g) (at least V(1m)),
        as C(docker run --storage-opt size=) on overlay2 over XFS. Omitted, none.
      - A write past it fails inside the container with C(Disk quota exceeded); the host's disk keeps its space.
      - Needs project quotas on the file system of the state root (XFS mounted with C(pquota), or ext4 with the
        C(project) and C(quota) features mounted with C(prjquota)); elsewhere the task fails and changes nothing.
      - Changed in place, as O(memory), on a container made with one; a limit below what it holds already fails the task.
        Giving one to a container made without one recreates it.
    type: str
  user:
    description: The user (and group) the command runs as, from the image's C(/etc/passwd). Defaults to the image's C(USER).
    type: str
  shm_size:
    description: The size of the container's C(/dev/shm), such as V(256m); C(64m) when omitted, as in Docker. What is
      written there counts against O(memory).
    type: str
  dns_search:
    description: DNS search domains of the container's C(resolv.conf), in order, as C(docker run --dns-search).
    type: list
    elements: str
    default: []
  etc_hosts:
    description: Extra entries of the container's C(/etc/hosts), host name to address, as C(docker run --add-host).
    type: dict
    default: {}
  read_only:
    description:
      - Mount the container's root read-only, as C(docker run --read-only). Its volumes, O(tmpfs), C(/dev), C(/proc)
        and C(/etc/hosts), C(/etc/hostname) and C(/etc/resolv.conf) stay as they are.
    type: bool
    default: false
  tmpfs:
    description:
      - A tmpfs of the container's own at each path, as C(docker run --tmpfs PATH[:OPTIONS]), such as V(/run) or
        V(/tmp:size=256m). Always C(nosuid) and C(nodev), C(noexec) unless the options say C(exec); V(64m) unless
        C(size=) says otherwise; C(mode=) in octal. What is written there counts against O(memory).
    type: list
    elements: str
    default: []
  ulimits:
    description:
      - Resource limits of the container's processes, as C(docker run --ulimit), such as V(nofile=1024:2048) or
        V(core=0); V(-1) for unlimited.
    type: list
    elements: str
    default: []
  sysctls:
    description:
      - Namespaced kernel parameters, as C(docker run --sysctl), such as C(net.ipv4.ip_unprivileged_port_start=0).
        Only those that belong to the container alone may be set (C(net.*), C(fs.mqueue.*), C(kernel.shm*),
        C(kernel.msg*), C(kernel.sem)).
    type: dict
    default: {}
  workdir:
    description: The command's working folder, as C(docker run -w); the image's C(WORKDIR) when omitted. Made if missing.
    type: str
  labels:
    description: Labels added to the image's, as C(docker run --label); C(conductor ps --filter label=KEY[=VALUE]) finds them.
    type: dict
    default: {}
  stop_signal:
    description: The signal a stop sends first, such as V(SIGINT); the image's C(STOPSIGNAL) when omitted, else V(SIGTERM).
    type: str
  env_file:
    description:
      - Files of C(KEY=VALUE) lines (C(#) comments and blank lines skipped) whose variables the container gets, as
        C(docker run --env-file); read on the host when the task runs, so a changed file recreates the container.
        O(env) wins over them.
    type: list
    elements: path
    default: []
  healthcheck:
    description:
      - A health check instead of the image's C(HEALTHCHECK), as C(docker run --health-cmd) and its siblings, used by
        O(state=healthy) and C(conductor healthcheck). Omitted, the image's.
    type: dict
    suboptions:
      test:
        description: A string run by C(/bin/sh -c), a list run as it is, or V(NONE) for no check at all.
        type: raw
      interval:
        description: Time between checks, such as V(30s).
        type: str
      timeout:
        description: Time a check may take, such as V(10s).
        type: str
      start_period:
        description: Time to start before failures count, such as V(1m).
        type: str
      retries:
        description: Failures in a row that make it unhealthy.
        type: int
  restart_policy:
    description:
      - Start the container again when its command ends, as Docker's restart policies do (C(docker run --restart)).
      - V(no) never does. V(on-failure) does when it ends with a non-zero exit code, at most N times with
        V(on-failure:N). V(always) does whatever the exit code. V(unless-stopped) is V(always), except that
        C(conductor restore) after a reboot leaves it down when it had been stopped.
      - The delay before a start doubles from 100 ms to 1 minute, and goes back to 100 ms after 10 seconds of running.
      - O(state=stopped), like C(conductor stop), ends it for good. The supervisor runs the C(conductor) command
        (the conductor_host role installs it) to start the container again.
      - A change recreates the container.
    type: str
    default: 'no'
  entrypoint:
    description:
      - Replaces the image's C(ENTRYPOINT); the image's C(CMD) is then not used either, as with C(docker run --entrypoint).
      - A list, or a string split as a shell would.
    type: raw
  volumes:
    description:
      - Docker's short syntax. V(NAME:/path) mounts a named volume (made on first use, filled with what the image
        holds at V(/path), and never deleted by a recreate, M(cs695.conductor.conductor_image) or rmcache);
        V(/host/path:/path) binds a host folder or file, which must exist; V(/path) alone is an anonymous volume,
        removed with the container. Add V(:ro) for read-only.
      - Every mount is nosuid and nodev, and its target is resolved inside the container's root.
      - A change recreates the container; the data in volumes stays.
    type: list
    elements: str
    default: []
  mounts:
    description: The same in Docker's long syntax.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description: V(volume) or V(bind).
        type: str
        choices: [volume, bind]
        default: volume
      source:
        description: The volume name, or the host path for V(bind). Omitted for an anonymous volume.
        type: str
      target:
        description: The absolute path inside the container.
        type: str
        required: true
      readonly:
        description: Mount it read-only.
        type: bool
        default: false
  discard_changes:
    description:
      - What to do when a recreate (a changed option or a rebuilt image) would discard what the container wrote
        in its own layer, outside its volumes. RV(differences) says how much, for example
        C(upper layer holds 12.0MB of changes outside volumes).
      - V(warn), as Docker does, recreates it and warns. V(refuse) fails the task and leaves the container as it is,
        so a student's work is never lost without a word; keep such work in O(volumes).
    type: str
    choices: [warn, refuse]
    default: warn
  pull:
    description:
      - When to pull an image named by reference (V(python:3.12-slim), V(registry.lab:5000/course/db:16)) from its
        registry, as C(docker run --pull) does. V(missing) pulls it when it is not here, V(always) asks the registry
        on every run and pulls it when the registry has another (a changed image recreates the container), V(never)
        uses only what is here.
      - An image with a plain name (one built or loaded here) is never pulled.
    type: str
    choices: [missing, always, never]
    default: missing
  state:
    description:
      - V(started) creates the container if needed and makes sure it runs.
      - V(healthy) is V(started), then runs the image's C(HEALTHCHECK) command in the container (as
        C(conductor healthcheck) does) until it passes, at most O(healthy_timeout) seconds; the task fails if it
        never passes, or if the image has no C(HEALTHCHECK). Waiting is not a change. Check mode does not run it.
      - V(present) creates it without starting it.
      - V(stopped) makes sure it does not run, keeping it and its files.
      - V(absent) stops it and deletes it with its files.
    type: str
    choices: [started, healthy, present, stopped, absent]
    default: started
  healthy_timeout:
    description: With O(state=healthy), how many seconds to wait for the health check to pass.
    type: float
    default: 60
  recreate:
    description: Remove and create the container even if its spec is unchanged.
    type: bool
    default: false
  restart:
    description: Restart a running container even if its spec is unchanged.
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds a stop waits after the stop signal before SIGKILL, as C(docker run --stop-timeout). Kept with the
        container, so every later stop (C(conductor stop), a recreate, a removal) waits as long; a stop this task
        makes waits as long too. Omitted, V(10).
      - A change is applied to the existing container, never by a recreate.
    type: float
  network:
    description:
      - Also give the started container a network, as M(cs695.conductor.conductor_network) does, in the same task.
      - Omitted, the container's network is left as it is.
    type: dict
    suboptions:
      internet:
        description: A default route via the host, NAT out of its uplink, and DNS.
        type: bool
        default: false
      published_ports:
        description: Container ports to publish as host ports.
        type: list
        elements: dict
        default: []
        suboptions:
          container_port:
            description: The port inside the container.
            type: int
            required: true
          host_port:
            description: The port on the host.
            type: int
            required: true
          protocol:
            description: The protocol.
            type: str
            choices: [tcp, udp]
            default: tcp
      dns:
        description: DNS servers for the container.
        type: list
        elements: str
      host_access:
        description: What of the host it reaches (V(all), V(dns-only), V(none)), as in M(cs695.conductor.conductor_network).
        type: str
        choices: [all, dns-only, none]
      link_local:
        description: With O(network.internet), 169.254.0.0/16 too, as in M(cs695.conductor.conductor_network).
        type: bool
        default: false
      classroom_service:
        description: A course service every container reaches on its exposed ports, as in M(cs695.conductor.conductor_network).
        type: bool
        default: false
      ip:
        description: Its address in the host's pool, as in M(cs695.conductor.conductor_network).
        type: str
      remote_peers:
        description: Exactly its peers on other lab hosts, by address, as in M(cs695.conductor.conductor_network).
        type: list
        elements: str
'''

EXAMPLES = r'''
- name: Run a web app from the course image
  cs695.conductor.conductor_container:
    name: web
    image: cs695
    command: python3 /opt/app/server.py
    env:
      APP_PORT: "8080"

- name: Run it with its network in one task
  cs695.conductor.conductor_container:
    name: web
    image: cs695
    network:
      internet: true
      published_ports:
        - container_port: 8080
          host_port: 80

- name: Start it and wait until its image's HEALTHCHECK passes
  cs695.conductor.conductor_container:
    name: web
    image: cs695
    state: healthy
    healthy_timeout: 120

- name: A student's container that may write at most 2 GiB (the state root is on XFS with pquota)
  cs695.conductor.conductor_container:
    name: alice
    image: cs695
    memory: 1g
    storage_size: 2g

- name: Stop it, keeping its files
  cs695.conductor.conductor_container:
    name: web
    state: stopped

- name: Remove it
  cs695.conductor.conductor_container:
    name: web
    state: absent
'''

RETURN = r'''
container:
  description: The container after the task (in check mode, the spec it would have).
  returned: always
  type: dict
  sample:
    name: web
    image: cs695
    image_id: 308cbd19efa18b50a72bfd97e496512161b98f25cd78e7ac058d124b129113e2
    argv: [python3, /opt/app/server.py]
    env: [APP_PORT=8080]
    storage_size: 2147483648
    storage_project: 100000
    status: running
    pid: 4242
actions:
  description: What the task did, in order (created, recreated, updated, started, restarted, stopped, removed, networked).
  returned: always
  type: list
  elements: str
  sample: [recreated, started]
differences:
  description: The options whose value differs from the container's stored spec, causing a recreate.
  returned: always
  type: list
  elements: str
  sample: [command, image_id]
health:
  description: With O(state=healthy), the check that passed.
  returned: when O(state=healthy), outside check mode
  type: dict
  sample:
    healthy: true
    exit_code: 0
    output: ''
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.cs695.conductor.plugins.module_utils._options import NAMES, argument_spec
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_container
from ansible_collections.cs695.conductor.plugins.module_utils._module import NETWORK_OPTIONS, ROOT_OPTION, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['started', 'healthy', 'present', 'stopped', 'absent'], default='started'),
            healthy_timeout=dict(type='float', default=60),
            recreate=dict(type='bool', default=False),
            discard_changes=dict(type='str', choices=['warn', 'refuse'], default='warn'),
            pull=dict(type='str', choices=['missing', 'always', 'never'], default='missing'),
            restart=dict(type='bool', default=False),
            network=dict(type='dict', options=NETWORK_OPTIONS),
            root=ROOT_OPTION,
            **argument_spec()
        ),
        required_if=[('state', 'started', ('image',)), ('state', 'healthy', ('image',)), ('state', 'present', ('image',))],
        supports_check_mode=True,
    )
    p = module.params
    run_module(module, lambda store, out: ensure_container(
        store, p['name'], state=p['state'], options={key: p[key] for key in NAMES},
        recreate=p['recreate'], restart=p['restart'], stop_timeout=p['stop_timeout'], network=p['network'],
        discard_changes=p['discard_changes'], check_mode=module.check_mode, healthy_timeout=p['healthy_timeout'],
        pull=p['pull']))


if __name__ == '__main__':
    main()
