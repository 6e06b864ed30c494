#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: conductor_stack
short_description: Manage a set of Conductor containers, their networks and peerings in one task
version_added: 0.1.0
description:
  - Declares many containers in one task, as C(docker compose up) does for a compose file, each with its image,
    options, network, published ports and peers. All of them are compared with what runs in one pass, and only
    the differences are applied; RV(containers) says what was done to each, and why.
  - Each entry takes the options of M(cs695.conductor.conductor_container) and compares them the same way. A changed
    option or a rebuilt image recreates that container only, a changed limit is applied in place.
  - Changes are batched. Every network of the task is set up under one lock with one firewall commit per table,
    containers are created under one lock, and O(state=absent) stops the whole set at once.
  - The containers the task creates are labelled with the stack's O(name) (C(stack) in C(conductor inspect)). A
    listed container made earlier by M(cs695.conductor.conductor_container) is adopted (labelled, action
    V(adopted)) if its spec matches, else recreated. A container of another stack is refused.
  - A container of the stack that is no longer listed (an orphan) is left running and reported in RV(orphans) with
    a warning, as C(docker compose up) does; O(remove_orphans=true) removes it.
  - Every entry is checked (names, options, images, ports, peers) before anything is done, so a bad entry fails the
    task with one message naming it, for example C(containers[3]) and its name, and changes nothing.
author:
  - Conductor contributors (@cs695)
extends_documentation_fragment:
  - cs695.conductor.root
  - cs695.conductor.attributes
  - cs695.conductor.attributes.check_pending
  - cs695.conductor.attributes.check_diff
requirements:
  - python3-nftables (or, on the legacy iptables backend, python-iptables) on the managed host for
    O(containers[].network) (the cs695.conductor.conductor_host role installs them).
options:
  name:
    description: The stack's name, recorded in each of its containers. Same rules as a container name.
    type: str
    required: true
  state:
    description:
      - V(started) creates what is missing and makes sure every listed container runs, with its network and peers.
      - V(present) creates them without starting them; V(stopped) makes sure they do not run. Neither touches networks.
      - V(absent) stops and removes every container of the stack (the listed ones and any other labelled with O(name)),
        their networks going with one firewall commit per table. Named volumes are kept; anonymous ones go.
    type: str
    choices: [started, present, stopped, absent]
    default: started
  containers:
    description:
      - The containers. Only O(containers[].name) is needed with O(state=absent).
      - Each entry is checked by this module, so an error names the entry by its index and name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The container's name.
        type: str
        required: true
      image:
        description: The image to run. Required in every entry unless O(state=absent).
        type: str
      command:
        description: The command, a list or a string split as a shell would. Defaults to the image's.
        type: raw
      entrypoint:
        description: Replaces the image's C(ENTRYPOINT), as in M(cs695.conductor.conductor_container).
        type: raw
      env:
        description: Environment variables, added to the image's C(ENV).
        type: dict
        default: {}
      hostname:
        description: The hostname inside. Defaults to the container name.
        type: str
      user:
        description: The user (and group) the command runs as.
        type: str
      privileged:
        description: Keep every capability and load no seccomp filter (see M(cs695.conductor.conductor_container)).
        type: bool
        default: false
      cap_add:
        description: Capabilities to add to the default set.
        type: list
        elements: str
        default: []
      cap_drop:
        description: Capabilities to drop from the default set.
        type: list
        elements: str
        default: []
      security_opts:
        description: Docker's security options that Conductor knows (V(seccomp=unconfined), V(no-new-privileges)).
        type: list
        elements: str
        default: []
      memory:
        description: Memory limit, swap included, such as V(1g). A change is applied in place (action V(updated)).
        type: str
      cpus:
        description: CPU limit in CPUs. Changed in place.
        type: float
      pids_limit:
        description: Process limit; V(-1) for none. Changed in place.
        type: int
      storage_size:
        description:
          - A limit on what the container writes outside its volumes, such as V(2g); needs project quotas on the state
            root's file system, as in M(cs695.conductor.conductor_container). Changed in place once it has one.
        type: str
      shm_size:
        description: The size of the container's C(/dev/shm), such as V(256m); C(64m) when omitted, as in Docker. What is
          written there counts against O(containers[].memory).
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
          - Mount the container's root read-only, as C(docker run --read-only). Its volumes, O(containers[].tmpfs), C(/dev), C(/proc)
            and C(/etc/hosts), C(/etc/hostname) and C(/etc/resolv.conf) stay as they are.
        type: bool
        default: false
      tmpfs:
        description:
          - A tmpfs of the container's own at each path, as C(docker run --tmpfs PATH[:OPTIONS]), such as V(/run) or
            V(/tmp:size=256m). Always C(nosuid) and C(nodev), C(noexec) unless the options say C(exec); V(64m) unless
            C(size=) says otherwise; C(mode=) in octal. What is written there counts against O(containers[].memory).
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
      stop_timeout:
        description:
          - Seconds a stop waits after the stop signal before SIGKILL, as C(docker run --stop-timeout); kept with the
            container, for every later stop. Omitted, V(10) (or the stack's O(stop_timeout)). A change is applied in place.
        type: float
      env_file:
        description:
          - Files of C(KEY=VALUE) lines (C(#) comments and blank lines skipped) whose variables the container gets, as
            C(docker run --env-file); read on the host when the task runs, so a changed file recreates the container.
            O(containers[].env) wins over them.
        type: list
        elements: path
        default: []
      healthcheck:
        description:
          - A health check instead of the image's C(HEALTHCHECK), as C(docker run --health-cmd) and its siblings, used by
            C(conductor healthcheck). Omitted, the image's.
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
        description: V(no), V(on-failure[:N]), V(always) or V(unless-stopped), as in M(cs695.conductor.conductor_container).
        type: str
        default: 'no'
      volumes:
        description: Docker's short syntax (V(NAME:/path), V(/host/path:/path[:ro]), V(/path)).
        type: list
        elements: str
        default: []
      mounts:
        description: Docker's long syntax.
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
      network:
        description:
          - The container's network, as M(cs695.conductor.conductor_network) gives it; applied with O(state=started).
          - Omitted, the container's network is left as it is.
        type: dict
        suboptions:
          internet:
            description: A default route via the host, NAT out of its uplink, and DNS.
            type: bool
            default: false
          published_ports:
            description: Container ports to publish as host ports, dicts of C(container_port), C(host_port), C(protocol).
            type: list
            elements: dict
            default: []
          dns:
            description: DNS servers for the container.
            type: list
            elements: str
          host_access:
            description: What of the host it reaches.
            type: str
            choices: [all, dns-only, none]
          link_local:
            description: With O(containers[].network.internet), 169.254.0.0/16 too.
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
      peers:
        description:
          - Containers this one may reach and be reached by (M(cs695.conductor.conductor_peer)); both need a network.
          - A peering between two listed containers that no entry names any more is undone. A peering with a container
            outside the list is only made, never undone.
        type: list
        elements: str
  remove_orphans:
    description: Also remove the stack's containers that are no longer listed (as C(docker compose up --remove-orphans)).
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds between the stop signal and SIGKILL when this task stops containers; they are stopped all at once.
      - Omitted, each container waits its own O(containers[].stop_timeout), else V(10).
    type: float
  discard_changes:
    description:
      - What to do when a recreate would discard what a container wrote outside its volumes, as in
        M(cs695.conductor.conductor_container). V(refuse) fails the task before anything is done.
    type: str
    choices: [warn, refuse]
    default: warn
  pull:
    description:
      - When to pull the containers' images that are named by reference, as in M(cs695.conductor.conductor_container),
        V(missing), V(always) (a changed image recreates its containers) or V(never).
    type: str
    choices: [missing, always, never]
    default: missing
'''

EXAMPLES = r'''
- name: A container per student, each with a work volume and a published port
  cs695.conductor.conductor_stack:
    name: classroom
    containers:
      - name: cs695-alice
        image: cs695
        hostname: alice
        env: {STUDENT: alice}
        volumes: ["cs695-alice-work:/root/work"]
        memory: 1g
        network:
          published_ports: [{container_port: 8080, host_port: 20000}]
      - name: cs695-bob
        image: cs695
        hostname: bob
        env: {STUDENT: bob}
        volumes: ["cs695-bob-work:/root/work"]
        memory: 1g
        network:
          published_ports: [{container_port: 8080, host_port: 20001}]
        peers: [cs695-alice]

- name: Tear it all down (named volumes are kept)
  cs695.conductor.conductor_stack:
    name: classroom
    state: absent
    stop_timeout: 2
'''

RETURN = r'''
containers:
  description:
    - For each listed container, and each removed one, what the task did (or would do in check mode), in order, and the
      options whose value differs from the container's stored spec.
    - Actions are V(adopted), V(created), V(recreated), V(updated), V(started), V(stopped), V(removed), V(networked),
      V(peered) and V(unpeered).
  returned: always
  type: dict
  sample:
    cs695-alice: {actions: [], differences: []}
    cs695-bob: {actions: [recreated, started, networked], differences: [env]}
orphans:
  description: The stack's containers that are not listed (removed only with O(remove_orphans=true)).
  returned: always
  type: list
  elements: str
  sample: [cs695-carol]
'''

from ansible_collections.cs695.conductor.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.cs695.conductor.plugins.module_utils._options import argument_spec
from ansible_collections.cs695.conductor.plugins.module_utils._planning import ensure_stack
from ansible_collections.cs695.conductor.plugins.module_utils._module import NETWORK_OPTIONS, ROOT_OPTION, run_module

# One entry of containers. Checked here, entry by entry, so that an error names the entry: Ansible's own check
# of a list's suboptions does not say which element failed.
ENTRY_OPTIONS = dict(argument_spec(), name=dict(type='str', required=True),
                     network=dict(type='dict', options=NETWORK_OPTIONS), peers=dict(type='list', elements='str', default=[]))


def checked_entries(module):
    validator, entries = ArgumentSpecValidator(ENTRY_OPTIONS), []
    for index, entry in enumerate(module.params['containers']):
        name = entry.get('name')
        unknown = sorted(set(entry) - set(ENTRY_OPTIONS))
        if unknown:
            module.fail_json(msg='containers[%d] (%s): unknown option %s: use %s' % (
                index, name, ', '.join(unknown), ', '.join(sorted(ENTRY_OPTIONS))))
        result = validator.validate(entry)
        if result.error_messages:
            module.fail_json(msg='containers[%d] (%s): %s' % (index, name, '; '.join(result.error_messages)))
        entries.append(result.validated_parameters)
    return entries


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['started', 'present', 'stopped', 'absent'], default='started'),
            containers=dict(type='list', elements='dict', default=[]),
            remove_orphans=dict(type='bool', default=False),
            stop_timeout=dict(type='float'),
            discard_changes=dict(type='str', choices=['warn', 'refuse'], default='warn'),
            pull=dict(type='str', choices=['missing', 'always', 'never'], default='missing'),
            root=ROOT_OPTION,
        ),
        supports_check_mode=True,
    )
    p = module.params
    entries = p['containers'] if p['state'] == 'absent' else checked_entries(module)
    run_module(module, lambda store, out: ensure_stack(
        store, p['name'], entries, state=p['state'], remove_orphans=p['remove_orphans'], stop_timeout=p['stop_timeout'],
        discard_changes=p['discard_changes'], check_mode=module.check_mode, pull=p['pull']))


if __name__ == '__main__':
    main()
