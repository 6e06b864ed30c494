# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The Ansible modules' planning: what a task asks for, compared with what is, turned into actions.

Each ensure_* reads the current state, asks a pure function what to do (inputs in, actions out:
container_actions, network_differs, _buildplan's Plan; unit tests need no root), and then, unless
in check mode, carries the actions out through the engine. Every result has changed, the actions and
a before/after diff.

Check mode plans each task on its own, so in a dry run of a whole playbook an image or a container an
earlier task only pretended to make is missing: each ensure_* then takes it as pending (it would be
made when run) and reports what it would do to it, instead of the error a real run gives.

A container option is declared once, in _options.OPTIONS: the module's argument spec, the spec
config.json stores and the comparison that decides a recreate all come from there.
"""

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_name, human_size)
from ansible_collections.cs695.conductor.plugins.module_utils._addresses import Allocations, normalize_ports
from ansible_collections.cs695.conductor.plugins.module_utils._reference import is_reference
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers
from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes
from ansible_collections.cs695.conductor.plugins.module_utils import _exec, _operations, _options, _quota


# -- containers --------------------------------------------------------------------------------
PENDING_IMAGE = '(built when run)'  # check mode: the id of an image an earlier task would build


def desired_spec(store, options: dict, check_mode: bool = False, pull: str = 'missing') -> dict:
    """What a conductor_container task asks for, in the form config.json stores it (_options.check); its
    image pulled first as pull_image says."""
    return with_image(store, _options.check(options), check_mode, pull)


def with_image(store, spec: dict, check_mode: bool, pull: str) -> dict:
    """spec with the id of its image (pulled first as pull_image says; pending when check mode cannot tell)."""
    image = pull_image(store, spec['image'], pull, check_mode)
    spec['image_id'] = image['id'] if image else PENDING_IMAGE
    return spec


def pull_image(store, name: str, pull: str, check_mode: bool) -> 'dict | None':
    """The manifest of the image a task names; one named by reference is pulled first by the pull policy, as
    docker run's --pull: missing (when it is not here), always (when the registry has another) or never. In check
    mode nothing is pulled, and an image a pull would bring (or change) is None: pending."""
    if pull not in PULL_POLICIES:
        raise ConductorError('invalid pull %r: use %s' % (pull, ', '.join(PULL_POLICIES)))
    image = store.image(name)
    if pull == 'never' or not is_reference(name) or (image is not None and pull == 'missing'):
        return image if image is not None or check_mode else store.require_image(name)
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry  # a registry: only now
    if check_mode:
        return image if image is not None and not _registry.pull(store, name, check_only=True)[1] else None
    return _registry.pull(store, name)[0]


PULL_POLICIES = ('missing', 'always', 'never')


def stored_spec(config) -> dict:
    """The compared part of a container's record (_records.Config.spec); {} when there is no container."""
    return config.spec() if config else {}


def container_actions(current: dict, running: bool, desired: dict, state: str, recreate: bool = False,
                      restart: bool = False) -> 'tuple[list, list]':
    """Pure: what to do to a container. current is its stored spec ({} if there is none), desired the
    spec asked for (or current itself when no image is given). Returns (actions, differences):
    actions in order from removed, recreated, created, updated, restarted, started, stopped."""
    if state == 'absent':
        return (['removed'] if current else []), []
    actions, differences = [], []
    if current:
        differences = [key for key in _options.COMPARED if current[key] != desired[key]]
        in_place = [key for key in _options.IN_PLACE if key != 'storage_size' or current.get('storage_size')]
        if recreate or [key for key in differences if key not in in_place]:
            actions.append('recreated')
            current, running = {}, False
        elif differences:
            actions.append('updated')
    if not current and not actions:
        actions.append('created')
    if state == 'started':
        if running and restart:
            actions.append('restarted')
            running = False
        if not running:
            actions.append('started')
    elif state == 'stopped' and running:
        actions.append('stopped')
    return actions, differences


def ensure_container(store, name: str, state: str = 'started', options: 'dict | None' = None,
                     recreate: bool = False, restart: bool = False, stop_timeout: 'float | None' = None,
                     network: 'dict | None' = None, discard_changes: str = 'warn', check_mode: bool = False,
                     healthy_timeout: float = 60, pull: str = 'missing') -> dict:
    """Bring container `name` to `state` with `options` (_options.NAMES); returns changed,
    actions, differences, container and diff. `healthy` is `started`, then the image's HEALTHCHECK run
    until it passes (at most healthy_timeout seconds; not in check mode): waiting changes nothing.

    network (a dict of internet, published_ports, dns, host_access, link_local) also gives a started
    container its network, as conductor_network would: one task instead of two.

    A stack of one, run by conductor_stack's executor (_converge) with no stack: the container joins none,
    keeps the one it is in (conductor_stack's), and no other container is looked at.
    """
    containers = Containers(store)
    check_name('container', name)
    options = options or {}
    wait_healthy, state = state == 'healthy', 'started' if state == 'healthy' else state
    want = {'peers': [], 'recreate': recreate, 'restart': restart}
    if state != 'absent':
        if options.get('image'):
            want['spec'] = desired_spec(store, options, check_mode, pull)
        else:  # no image given: take the container as it is (e.g. to stop it)
            want['spec'] = stored_spec(containers.config(name))
            if not want['spec']:
                raise ConductorError('image is required to create container %r' % name)
        want['network'] = _network_wanted(store, network, check_mode) if network is not None and state == 'started' else None
    plan, dummy, current, warnings = _converge(store, None, {name: want}, state, False, stop_timeout, discard_changes,
                                               check_mode)
    (actions, differences), (before, after) = plan.get(name, ([], [])), _diff([name], current, {name: want}, state)
    result = {'changed': bool(actions), 'actions': actions, 'differences': differences, 'warnings': warnings,
              'container': _container_facts(containers, name, after.get(name, {}), check_mode),
              'diff': {'before': before.get(name, {}), 'after': after.get(name, {})}}
    if want.get('network') is not None:
        from ansible_collections.cs695.conductor.plugins.module_utils import _network  # the firewall's library: only now
        alloc = Allocations(store).load().get(name) or {}
        if check_mode and 'networked' in actions:
            alloc = dict(alloc, **want['network'])  # as it would be
        result['container']['network'] = _network.facts(name, alloc)
    if wait_healthy and not check_mode:
        result['health'] = _exec.wait_healthy(containers, name, healthy_timeout)
    return result


def _check_discarded(containers, name, differences, discard_changes, check_mode, warnings):
    """Before a recreate: what the container wrote outside its volumes goes with it. Say how much (in
    differences and a warning), or with discard_changes=refuse fail before anything is done."""
    discarded = containers.size(name)
    if not discarded:
        return
    what = 'upper layer holds %s of changes outside volumes' % human_size(discarded)
    if discard_changes == 'refuse':
        raise ConductorError('container %r would be recreated (%s), but its %s: keep that data in a volume, '
                             'or set discard_changes: warn to recreate anyway'
                             % (name, ', '.join(differences) + ' changed' if differences else 'recreate: true', what))
    differences.append(what)
    warnings.append('container %r %s recreated: its %s%s' % (
        name, 'would be' if check_mode else 'was', what, '' if check_mode else ', now gone'))


def _anonymous_volumes(config):
    """{target: volume} of a container's anonymous volumes: a recreate mounts them again, so the data the
    image's VOLUME folders hold survives an image update."""
    return {s['target']: s['source'] for s in (config.binds if config else [])
            if s['type'] == 'volume' and s['source'].startswith('anon-')}


def _container_facts(containers, name, after, check_mode):
    if check_mode:
        return dict(after, name=name) if after else {}
    config = containers.config(name)
    if not config:
        return {}
    state = containers.state(name)
    return dict(config.as_dict(), **{key: state.get(key) for key in ('status', 'pid', 'exit_code')})


# -- networks and peers ------------------------------------------------------------------------
def network_differs(current, wanted, running_pid):
    """Pure: whether a container's network must be (re)applied. current is its allocation (or None),
    wanted the internet, ports and dns asked for (a flag missing from an older allocation is false); a restarted
    container (another PID) needs its veth again."""
    def having(key, value):
        return bool(current.get(key)) if isinstance(value, bool) else current.get(key)
    return not current or any(having(k, v) != v for k, v in wanted.items()) or current.get('pid') != running_pid


def ensure_network(store, name, state='present', internet=False, ports=None, dns=None, host_access=None,
                   link_local=False, classroom_service=False, ip=None, remote_peers=None, check_mode=False):
    """conductor_network: the network of `name` as asked; only the differences are applied."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network  # the firewall's library: only now
    containers = Containers(store)
    if not check_mode:
        containers.require(name)  # in check mode a missing container is pending: it would be networked
    current = Allocations(store).load().get(name)
    before = _network.facts(name, current) if current else {}
    if state == 'absent':
        if current and not check_mode:
            _network.Network(store).remove(name)
        return {'changed': bool(current), 'network': {}, 'diff': {'before': before, 'after': {}}}
    wanted = _network_wanted(store, {'internet': internet, 'published_ports': ports, 'dns': dns,
                                     'host_access': host_access, 'link_local': link_local,
                                     'classroom_service': classroom_service, 'ip': ip, 'remote_peers': remote_peers},
                             check_mode)
    if not network_differs(current, wanted, containers.state(name).get('pid')):
        return {'changed': False, 'network': before, 'diff': {'before': before, 'after': before}}
    if check_mode:
        after = dict(before or {'name': name, 'interface': 'eth0'}, **wanted)
    else:
        after = _network.Network(store).add_many({name: wanted})[name]
    return {'changed': True, 'network': after, 'diff': {'before': before, 'after': after}}


def ensure_peer(store, a, b, state='present', check_mode=False):
    """conductor_peer: the peering of a and b as asked."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network
    network = _network.Network(store)
    present = state == 'present'
    pair = tuple(sorted((a, b)))
    if check_mode:
        book = Allocations(store)
        allocations = book.load()
        if a == b or all(n in allocations for n in pair):  # else one is pending: it would be networked first
            network.check_pair(a, b, present, allocations)
        changed = (pair in set(book.peers())) != present
    else:
        changed = network.peer(a, b, present)
    return {'changed': changed, 'peer': {'containers': list(pair), 'state': state},
            'diff': {'before': {'peered': present != changed}, 'after': {'peered': present}}}


def ensure_remote_peer(store, name, address, state='present', check_mode=False):
    """conductor_peer with remote_address: this host's half of a peering with a container on another lab host."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network
    network = _network.Network(store)
    present = state == 'present'
    if check_mode:
        allocations = Allocations(store).load()
        if name in allocations or not present:  # else it is pending: it would be networked first
            address = network.check_remote(name, address, present, allocations)
        changed = (address in ((allocations.get(name) or {}).get('remote_peers') or [])) != present
    else:
        changed = network.peer_remote(name, address, present)
    return {'changed': changed, 'peer': {'containers': [name], 'remote_address': address, 'state': state},
            'diff': {'before': {'peered': present != changed}, 'after': {'peered': present}}}


def ensure_overlay(store, state='present', subnet=None, index=None, network=None, remotes=(), vni=None, port=None,
                   uplink=None, services=(), check_mode=False):
    """conductor_overlay: the classroom overlay as asked (remotes: [{address, subnet or index}]); subnets may be given
    by their index in the classroom network (a /24 each), as a play's hosts have one."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network, _overlay
    if state == 'absent':
        result = _network.Network(store).overlay_down(check_mode)
    else:
        def place(given, at, who):
            if given:
                return given
            if at is None:
                raise ConductorError('give %s a subnet, or an index into the classroom network' % who)
            if not network:
                raise ConductorError('an index needs the classroom network: give network, e.g. 10.88.0.0/16')
            return _overlay.subnet_at(network, at)
        plan = _overlay.plan(place(subnet, index, 'this host'),
                             [{'address': r.get('address'), 'subnet': place(r.get('subnet'), r.get('index'),
                                                                            'remote host %s' % r.get('address'))}
                              for r in remotes], vni, port, uplink, network, services=services or ())
        result = _network.Network(store).overlay_up(plan, check_mode)
    return {'changed': result['changed'], 'overlay': result['after'] or {},
            'diff': {'before': result['before'] or {}, 'after': result['after'] or {}}}


# -- stacks ------------------------------------------------------------------------------------
def stack_actions(stack: 'str | None', desired: dict, current: dict, peers: set, state: str = 'started',
                  remove_orphans: bool = False) -> 'tuple[dict, list, list]':
    """Pure: what conductor_stack (and conductor_container, a stack of one) does to each container.

    desired: {name: {spec, network, peers, recreate, restart}} as the task asks (network: the wanted settings,
    or None to leave a container's network as it is; recreate and restart: container_actions', False when
    missing); current: {name: {spec, running, pid, stack, network}} of the containers on the host that
    matter (the listed ones and the stack's members; network: the allocation or None); peers: the host's
    peerings, as sorted pairs. stack None is conductor_container's: no members, so no orphans, and a
    container is never adopted. Returns (plan, orphans, peer): plan {name: (actions, differences)} for the
    listed containers and the removed ones; orphans, the members no longer listed; peer, the
    [(a, b, present)] peerings to make or undo."""
    members = sorted(n for n, have in current.items() if have['stack'] == stack) if stack is not None else []
    if state == 'absent':
        return {n: (['removed'], []) for n in sorted(set(members) | (set(desired) & set(current)))}, [], []
    plan, orphans = {}, [n for n in members if n not in desired]
    for name, want in desired.items():
        have = current.get(name) or {}
        actions, differences = container_actions(have.get('spec', {}), have.get('running', False), want['spec'], state,
                                                 want.get('recreate', False), want.get('restart', False))
        if stack is not None and have and have['stack'] != stack and 'recreated' not in actions:
            actions.insert(0, 'adopted')  # made by conductor_container: labelled as the stack's, nothing else
        if state == 'started' and want['network'] is not None:
            alloc, fresh = have.get('network'), bool({'created', 'recreated'} & set(actions))
            pid = alloc and alloc.get('pid') if 'started' in actions else have.get('pid')  # start reconnects it
            if fresh or network_differs(alloc, want['network'], pid):
                actions.append('networked')
        plan[name] = (actions, differences)
    for name in orphans if remove_orphans else []:
        plan[name] = (['removed'], [])
    wanted = {tuple(sorted((name, other))) for name, want in desired.items() for other in want['peers']}
    peer = []
    if state == 'started':
        renewed = {n for n, (actions, dummy) in plan.items() if {'recreated', 'removed'} & set(actions)}
        peer = [pair + (True,) for pair in sorted(wanted) if pair not in peers or renewed & set(pair)]
        peer += [pair + (False,) for pair in sorted(peers)
                 if pair not in wanted and all(n in desired for n in pair) and not renewed & set(pair)]
        for a, b, present in peer:
            for name in (a, b):
                if name in plan:
                    plan[name][0].append('peered' if present else 'unpeered')
    return plan, orphans, peer


def ensure_stack(store, stack: str, entries: list, state: str = 'started', remove_orphans: bool = False,
                 stop_timeout: 'float | None' = None, discard_changes: str = 'warn', check_mode: bool = False,
                 pull: str = 'missing') -> dict:
    """conductor_stack: the containers of `entries` (dicts of name, _options.NAMES, network, peers) as
    asked, all compared in one run, only the differences applied, each kind of change batched (one
    firewall commit for all networks); state absent removes the stack's containers. Every entry is
    checked before anything is done: a bad one fails the task naming it, with nothing changed."""
    check_name('stack', stack)
    desired = _stack_desired(store, entries, state, check_mode, pull)
    plan, orphans, current, warnings = _converge(store, stack, desired, state, remove_orphans, stop_timeout,
                                                 discard_changes, check_mode)
    changed = [n for n, (actions, dummy) in plan.items() if actions]
    before, after = _diff(changed, current, desired, state)
    return {'changed': bool(changed), 'warnings': warnings, 'orphans': orphans,
            'containers': {n: {'actions': actions, 'differences': differences} for n, (actions, differences) in plan.items()},
            'diff': {'before': before, 'after': after}}


def _stack_desired(store, entries, state, check_mode, pull='missing'):
    """{name: {spec, network, peers, index}} from the task's entries, each checked as create would check it;
    an error names the entry."""
    desired, ports = {}, {}
    for index, entry in enumerate(entries):
        name = entry.get('name')
        try:
            check_name('container', name)
            if name in desired:
                raise ConductorError('the name of containers[%d] too: give each container one entry'
                                     % desired[name]['index'])
            if state == 'absent':
                desired[name] = {'index': index, 'peers': []}
                continue
            options = {key: entry.get(key) for key in _options.NAMES}
            if not options['image']:
                raise ConductorError('image is required: name the image to run')
            spec = _options.check(options)  # every option checked; the image after every entry is
            network = None if entry.get('network') is None else _network_wanted(store, entry['network'], check_mode)
            for port in network['ports'] if network else []:
                key = (port['host_port'], port['protocol'])
                if key in ports:
                    raise ConductorError('host port %d/%s is also published by %s: choose another' % (key + (ports[key],)))
                ports[key] = 'containers[%d] (%s)' % (index, name)
            peers = list(entry.get('peers') or [])
            for other in peers:
                check_name('container', other)
                if other == name:
                    raise ConductorError('a container cannot be peered with itself: remove %r from its peers' % name)
        except ConductorError as e:
            raise _entry_error(index, name, e)
        desired[name] = {'spec': spec, 'network': network, 'peers': peers, 'index': index}
    for name, want in desired.items():  # only now is anything pulled: a bad entry fails the task first
        if 'spec' in want:
            try:
                with_image(store, want['spec'], check_mode, pull)
            except ConductorError as e:
                raise _entry_error(want['index'], name, e)
    return desired


def _network_wanted(store, network, check_mode=False):
    """A task's network option (conductor_network's, conductor_container's, or a stack entry's: internet,
    published_ports, dns, host_access, link_local, classroom_service, ip) as Network.add_many takes it and an
    allocation records it (ip as container_ip, only when given)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network  # the firewall's library: only now
    wanted = {'internet': bool(network.get('internet')), 'ports': normalize_ports(network.get('published_ports')),
              'dns': list(network['dns']) if network.get('dns') else None,
              'host_access': _network.Network(store).host_access(network.get('host_access')),
              'link_local': bool(network.get('link_local')), 'classroom_service': bool(network.get('classroom_service'))}
    if network.get('ip'):
        wanted['container_ip'] = network['ip']
    if network.get('remote_peers') is not None:  # exactly these; not given: as they are
        wanted['remote_peers'] = sorted(set(network['remote_peers']), key=_address_key)
    _network.Network(store).check_settings(wanted, check_mode)  # before anything is made, in check mode too
    return wanted


def _address_key(text):
    import ipaddress
    try:
        return (0, ipaddress.ip_address(text))
    except ValueError:
        return (1, text)  # not an address: Network.add_many says so


def _entry_error(index, name, message):
    """An error about one container: a stack's names its entry (index); conductor_container's (None) needs not."""
    return ConductorError(message if index is None else 'containers[%d] (%s): %s' % (index, name, message))


def _converge(store, stack, desired, state, remove_orphans, stop_timeout, discard_changes, check_mode):
    """The executor of conductor_stack and conductor_container: read the containers that matter, check
    everything, plan with stack_actions and, unless in check mode, apply the plan. stack None: the one
    container of desired, on its own (ensure_container). Returns (plan, orphans, current, warnings)."""
    containers = Containers(store)
    book = Allocations(store)
    allocations, peers = book.load(), set(book.peers())
    current = {}
    for name in (desired if stack is None else containers.names()):  # a lone container reads only its own config
        config = containers.config(name)
        if config and (name in desired or config.stack == stack):
            running = containers.state(name)
            current[name] = {'spec': stored_spec(config), 'running': running['running'], 'pid': running.get('pid'),
                             'stack': config.stack, 'network': allocations.get(name),
                             'adopt': _anonymous_volumes(config)}
    for name, want in desired.items():
        other = (current.get(name) or {}).get('stack')
        if stack is not None and other not in (None, stack):
            raise _entry_error(want['index'], name, 'this container belongs to stack %r: remove it there, or choose '
                                                    'another name' % other)
    _check_peers(desired, allocations, current, check_mode)
    plan, orphans, peer = stack_actions(stack, desired, current, peers, state, remove_orphans)
    _check_ports_free(desired, allocations, plan)
    warnings = []
    for name, (actions, differences) in plan.items():
        if desired.get(name, {}).get('spec', {}).get('storage_size') and ('created' in actions or 'recreated' in actions):
            _quota.require(store.path('containers'))  # before anything is removed or made; in check mode too
        if 'recreated' in actions:
            _check_discarded(containers, name, differences, discard_changes, check_mode, warnings)
    if orphans and not remove_orphans and state != 'absent':
        warnings.append('container(s) %s of stack %r are no longer listed and were left as they are: set '
                        'remove_orphans: true to remove them' % (', '.join(orphans), stack))
    if not check_mode:
        _apply(store, stack, plan, desired, current, peer, stop_timeout)
    return plan, orphans, current, warnings


def _diff(names, current, desired, state):
    """Diff mode's before and after of these containers: {name: its spec and whether it runs}, of those there are."""
    return ({n: dict(current[n]['spec'], running=current[n]['running']) for n in names if n in current},
            {n: dict(desired[n]['spec'], running=state == 'started') for n in names if n in desired and state != 'absent'})


def _check_peers(desired, allocations, current, check_mode):
    """Every peer an entry names is networked by the stack, or (unless pending in check mode) already is."""
    for name, want in desired.items():
        for other in want.get('peers', []):
            if other in desired:
                ok = desired[other]['network'] is not None
            else:
                ok = other in allocations or (check_mode and other not in current)
            if not ok or want['network'] is None:
                raise _entry_error(want['index'], name, 'cannot peer with %r: both need a network (give each a '
                                                        'network, or network %r first)' % (other, other))


def _check_ports_free(desired, allocations, plan):
    """No entry publishes a host port a container outside the task keeps (the network would refuse it
    only after the containers were made)."""
    kept = {(p['host_port'], p['protocol']): other for other, alloc in allocations.items() if other not in desired
            and 'removed' not in plan.get(other, ([], []))[0] for p in alloc.get('ports', [])}
    for name, want in desired.items():
        if 'networked' not in plan.get(name, ([], []))[0]:
            continue
        for port in want['network']['ports']:
            key = (port['host_port'], port['protocol'])
            if key in kept:
                raise _entry_error(want.get('index'), name, 'host port %d/%s is already published by container %r: '
                                                            'choose another' % (key + (kept[key],)))


def _apply(store, stack, plan, desired, current, peer, stop_timeout):
    """Carry out stack_actions' plan, one kind of change at a time for all containers."""
    containers = Containers(store)

    def having(action):
        return [n for n, (actions, dummy) in plan.items() if action in actions]
    for action, keep_volumes in (('removed', False), ('recreated', True)):
        if having(action):
            dummy, errors, dummy = _operations.rm(store, having(action), stop_timeout, keep_volumes)
            if errors:
                raise ConductorError(errors[0])
    for name in having('adopted'):
        containers.set_stack(name, stack)
    with store.lock():  # one acquisition for every create
        for name in having('created') + having('recreated'):
            spec, had = desired[name]['spec'], current.get(name, {})
            containers.create(name, {key: spec[key] for key in _options.NAMES}, adopt=had.get('adopt'),
                              stack=stack or had.get('stack'))  # conductor_container's recreate keeps its stack
    for name in having('updated'):
        containers.update(name, **{key: desired[name]['spec'][key] for key in _options.IN_PLACE})
    _operations.stop(store, having('restarted') + having('stopped'), stop_timeout)
    _operations.start_many(store, having('started'))
    networked = having('networked')
    if networked or peer:
        from ansible_collections.cs695.conductor.plugins.module_utils import _network  # the firewall's library: only now
        network = _network.Network(store)
        if networked:
            network.add_many({n: desired[n]['network'] for n in sorted(networked)})
        if peer:
            network.peer_many(peer)


# -- volumes -----------------------------------------------------------------------------------
def ensure_volume(store, name, state='present', check_mode=False):
    """conductor_volume: a named volume present or absent (absent refuses while a container uses it)."""
    volumes = Volumes(store)
    before = volumes.get(check_name('volume', name)) or {}
    summary = {'name': name} if before else {}
    if state == 'absent':
        if before:
            if check_mode and _operations.volume_users(store, name):
                _operations.remove_volume(store, name)  # in use: the same error a real run gives, nothing done
            elif not check_mode:
                _operations.remove_volume(store, name)
        return {'changed': bool(before), 'volume': {}, 'diff': {'before': summary, 'after': {}}}
    if before:
        return {'changed': False, 'volume': before, 'diff': {'before': summary, 'after': summary}}
    after = {'name': name} if check_mode else volumes.create(name)
    return {'changed': True, 'volume': after, 'diff': {'before': {}, 'after': {'name': name}}}
