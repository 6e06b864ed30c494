# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The operations that need more than one part of the engine, in one place above them all.

    start          start the container, then reconnect its network (its veth went with its old netns)
    remove, stop   end its processes, tear down its network, then delete its files (conductor stop NAME...)
    kill           end several containers' processes at once, keeping them (conductor_stack state: stopped)
    remove_image   rmi: refuse while a container uses it; keep the layers containers still use
    prune          rmcache: keep every base and layer an image or a container uses
    remove_volume  volume rm: refuse while a container uses it
    prune_volumes  volume prune: the anonymous volumes no container uses

The CLI and the planning layer call these, never the pieces one by one. The network is imported
only when the container has one: run and exec never load python-iptables or python3-nftables.
"""

import time

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_name
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._options import parse_restart
from ansible_collections.cs695.conductor.plugins.module_utils._policy import (
    RESTART_DELAY_FIRST, RESTART_DELAY_LAST, RESTART_RESET)
from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes


def _network(store):
    from ansible_collections.cs695.conductor.plugins.module_utils._network import Network  # the firewall's library: only now
    return Network(store)


def start(store, name: str, stdio: 'tuple | None' = None, attach: 'callable | None' = None,
          restarting: 'dict | None' = None, network: 'dict | None' = None) -> int:
    """Containers.start with the network the container had, or with `network` (Network.add's keyword
    arguments: run -p, -P, --network bridge), made before its command runs. Returns the supervisor's PID."""
    def connect():
        if network is not None:
            _network(store).add(name, **network)
        else:
            _reconnect(store, name)
    networked = network is not None or name in Allocations(store).load()  # else its command need not wait
    return Containers(store).start(name, stdio, attach, started=connect if networked else None, restarting=restarting)


def start_many(store, names: 'list[str]') -> None:
    """start() for each of several containers: those without a network set up several at once (Containers.start_many),
    the others one by one with their network. Every one is tried; the first failure is raised after."""
    allocations = Allocations(store).load()
    errors = Containers(store).start_many([n for n in names if n not in allocations])
    for name in names:
        if name in allocations:
            try:
                start(store, name)
            except ConductorError as e:
                errors[name] = str(e)
    if errors:
        raise ConductorError(errors[next(n for n in names if n in errors)])


def restart_after_exit(store, name: str) -> str:
    """`conductor _restart NAME`: what a supervisor execs when PID 1 of a container with a restart policy
    ends. Starts it again, network and all, after a delay that doubles from RESTART_DELAY_FIRST to
    RESTART_DELAY_LAST and goes back to the first after RESTART_RESET seconds of running; unless stop
    ended it, or on-failure saw exit code 0, or on-failure:N has already started it again N times.
    Returns what it did, for the restart record and the tests."""
    containers = Containers(store)
    config = containers.config(name)
    if not config or containers.stopping(name):
        return 'stopped'
    if config.auto_remove:  # run --rm -d: its command ended on its own
        remove(store, name)
        return 'removed'
    policy, maximum = parse_restart(config.restart_policy)
    record, code = containers.restarts(name), containers.exit_code(name)
    if policy == 'no' or (policy == 'on-failure' and code == 0) or (maximum and record['count'] >= maximum):
        return 'done'
    ran = time.time() - record.get('at', 0)
    delay = RESTART_DELAY_FIRST if ran >= RESTART_RESET or not record.get('delay') else \
        min(record['delay'] * 2, RESTART_DELAY_LAST)
    time.sleep(delay)
    try:
        start(store, name, restarting={'count': record['count'] + 1, 'delay': delay, 'last_exit_code': code})
    except ConductorError:
        return 'stopped'  # stop came first, or someone started it by hand
    return 'restarted'


def restore(store) -> 'tuple[list[str], list[str]]':
    """`conductor restore`, at boot: start every container whose restart policy says so (always; on-failure
    unless it had exited 0; unless-stopped and on-failure unless stop ended it), each with its network,
    ports and peerings (the classroom overlay first, when its device is missing), then check the firewall
    against the records (rebuilding conductor's chains).
    A container whose records cannot be read is reported and left as it is. Returns (started, errors)."""
    containers = Containers(store)
    started, errors = [], []
    if Allocations(store).overlay():  # first: the containers' networks route through it
        try:
            if _network(store).overlay_restore():
                started.append('overlay')
        except ConductorError as e:
            errors.append('the overlay: %s' % e)
    for name in containers.names():
        try:
            config = containers.require(name)
            policy = parse_restart(config.restart_policy)[0]
            if policy == 'no' or containers.state(name)['running']:
                continue
            if policy != 'always' and containers.stopping(name):
                continue  # stop (or state: stopped) ended it
            if policy == 'on-failure' and containers.exit_code(name) == 0:
                continue
            start(store, name)
            started.append(name)
        except (ConductorError, OSError, ValueError, KeyError, TypeError) as e:
            errors.append('%s: %s' % (name, e))
    if Allocations(store).load() or Allocations(store).overlay():
        network = _network(store)
        network.repair()
    return started, errors


def _reconnect(store, name):
    network = Allocations(store).load().get(name)
    if network:
        _network(store).add(name, network['internet'], network['ports'], network.get('dns'), network.get('host_access'),
                            network.get('link_local'), classroom_service=bool(network.get('classroom_service')))


def remove(store, name: str, timeout: 'float | None' = None, keep_volumes: bool = False):
    """conductor.sh's stop: end every process, remove the network, then delete the container and its
    anonymous volumes (kept with keep_volumes, for a recreate to take over, as docker compose does)."""
    configs, errors, dummy = rm(store, [name], timeout, keep_volumes)
    if errors:
        raise ConductorError(errors[0])
    return configs[0]


def rm(store, names: 'list | tuple | None' = None, timeout: 'float | None' = None,
       keep_volumes: bool = False) -> 'tuple[list, list[str], bool]':
    """Docker's rm -f, and conductor.sh's stop: conductor stop NAME... and conductor rm (every container when
    names is None), each name its own request as in Docker. The processes are ended in parallel, the networks torn down together (one firewall commit
    per table), then the containers deleted. Returns (the removed containers' configs, one error per
    name that is no container, whether the firewall had to be repaired)."""
    containers = Containers(store)
    names = containers.names() if names is None else list(dict.fromkeys(names))
    configs, errors = {}, {}
    import contextlib  # here alone: its import costs every command 1 ms
    with contextlib.ExitStack() as held:
        for name in sorted(names):  # the containers' locks, always in one order, then the store's
            try:
                held.enter_context(store.lock(check_name('container', name)))
                configs[name] = containers.require(name)  # a start cannot slip in from here on
            except ConductorError as e:
                errors[name] = str(e)
        _each(configs, lambda name: containers.stop(name, timeout))
        networked = [n for n in configs if n in Allocations(store).load()]
        network = _network(store) if networked else None
        if network:
            network.remove(*networked)
        volumes = Volumes(store)
        for name, config in configs.items():
            containers.delete(name)
            for spec in [] if keep_volumes else config.binds:  # anonymous volumes go with it; named never
                volume = volumes.get(spec['source']) if spec['type'] == 'volume' else None
                if volume and volume['anonymous'] and volume['container'] == name:
                    volumes.delete(volume['name'])
    return ([configs[n] for n in names if n in configs], [errors[n] for n in names if n in errors],
            bool(network and network.repaired))


def stop(store, names: 'list | tuple', timeout: 'float | None' = None) -> None:
    """Docker's stop: end several containers' processes at once (their stop timeouts side by side), keeping the containers.
    timeout None: each container's own stop_timeout. One run with --rm -d is then deleted, as Docker's stop does."""
    containers = Containers(store)
    _each(names, lambda name: containers.stop(name, timeout))
    auto_remove = [config.name for config in map(containers.config, names) if config and config.auto_remove]
    if auto_remove:
        rm(store, auto_remove, timeout=0)


def _each(names, call):
    """call(name) for each name at once, in threads: stop timeouts run side by side, not one after another."""
    if len(names) < 2:
        for name in names:
            call(name)
        return
    import threading
    failures = []

    def attempt(name):
        try:
            call(name)
        except Exception as e:  # pylint: disable=broad-except
            failures.append(e)
    threads = [threading.Thread(target=attempt, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def remove_image(store, name: str):
    """rmi: delete an image no container uses, and the layers nothing else needs."""
    with store.lock():
        store.require_image(name, checked=False)  # rmi removes a damaged manifest too
        path = _image_path(store, name)
        configs = [c.as_dict() for c in Containers(store).configs()]
        users = sorted(c['name'] for c in configs if _image_path(store, c['image']) == path)
        if users:
            raise ConductorError('image %r is used by container(s) %s: stop them first (conductor stop NAME)'
                                 % (name, ', '.join(users)))
        return store.delete_image(name, configs)


def _image_path(store, name):
    """The manifest file a container's image name means (busybox:1.36 is docker.io/library/busybox:1.36's)."""
    try:
        image = store.image(name, checked=False)
        named = image.get('name') if isinstance(image, dict) and isinstance(image.get('name'), str) else name
        return store.image_path(named)
    except ConductorError:
        return None  # not a name any image has


def volume_users(store, name: str) -> 'list[str]':
    return sorted(c.name for c in Containers(store).configs()
                  if any(s['type'] == 'volume' and s['source'] == name for s in c.binds))


def remove_volume(store, name: str) -> None:
    """volume rm: delete a volume and its data, unless a container uses it."""
    with store.lock():
        Volumes(store).require(name)
        users = volume_users(store, name)
        if users:
            raise ConductorError('volume %r is used by container(s) %s: stop them first (conductor stop NAME)'
                                 % (name, ', '.join(users)))
        Volumes(store).delete(name)


def prune_volumes(store) -> 'list[str]':
    """volume prune: delete the anonymous volumes no container uses; named ones are kept. Returns their names."""
    with store.lock():
        removed = [v['name'] for v in Volumes(store).list() if v['anonymous'] and not volume_users(store, v['name'])]
        for name in removed:
            Volumes(store).delete(name)
    return removed


def prune(store) -> 'tuple[int, int]':
    """rmcache: delete every base and layer no image or container uses; return (count, bytes)."""
    with store.lock():
        return store.prune([c.as_dict() for c in Containers(store).configs()])
