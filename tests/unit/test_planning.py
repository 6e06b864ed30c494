# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules' decisions as pure functions: what a task would do, with no root and no state root."""
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _buildplan, _context, _options, _planning, _records, _volumes
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import parse

SPEC = _options.stored({'image': 'web', 'image_id': 'a' * 64, 'env': ['A=1']})  # every other option as it defaults


@pytest.mark.parametrize('current, running, desired, state, kw, actions', [
    ({}, False, SPEC, 'started', {}, ['created', 'started']),
    ({}, False, SPEC, 'present', {}, ['created']),
    (SPEC, True, SPEC, 'started', {}, []),
    (SPEC, False, SPEC, 'started', {}, ['started']),
    (SPEC, True, SPEC, 'started', {'restart': True}, ['restarted', 'started']),
    (SPEC, True, SPEC, 'started', {'recreate': True}, ['recreated', 'started']),
    (SPEC, True, SPEC, 'stopped', {}, ['stopped']),
    (SPEC, False, SPEC, 'stopped', {}, []),
    (SPEC, True, SPEC, 'present', {}, []),
    (SPEC, True, {}, 'absent', {}, ['removed']),
    ({}, False, {}, 'absent', {}, []),
])
def test_container_actions(current, running, desired, state, kw, actions):
    assert _planning.container_actions(current, running, desired, state, **kw)[0] == actions


def test_a_changed_option_or_a_rebuilt_image_recreates_and_says_why():
    changed = dict(SPEC, env=['A=2'], image_id='b' * 64)
    actions, differences = _planning.container_actions(SPEC, True, changed, 'started')
    assert actions == ['recreated', 'started']
    assert differences == ['env', 'image_id']


def test_a_changed_limit_is_applied_in_place():
    limited = dict(SPEC, memory=64 << 20, pids_limit=100)
    assert _planning.container_actions(SPEC, True, limited, 'started') == (['updated'], ['memory', 'pids_limit'])
    both = dict(limited, env=['A=2'])
    assert _planning.container_actions(SPEC, True, both, 'started')[0] == ['recreated', 'started']


def test_volumes_in_both_syntaxes_compare_by_what_they_mount():
    short = _planning.desired_spec(FakeStore(), {'image': 'web', 'volumes': ['/srv:/data:ro', 'work:/home/student/lab']})
    mounts = [{'type': 'volume', 'source': 'work', 'target': '/home/student/lab/'},
              {'type': 'bind', 'source': '/srv', 'target': '/data', 'readonly': True}]
    long = _planning.desired_spec(FakeStore(), {'image': 'web', 'mounts': mounts})
    assert short['volumes'] == long['mounts'] == [
        {'type': 'bind', 'source': '/srv', 'target': '/data', 'readonly': True},
        {'type': 'volume', 'source': 'work', 'target': '/home/student/lab', 'readonly': False}]
    actions, differences = _planning.container_actions(SPEC, True, dict(SPEC, volumes=short['volumes']), 'started')
    assert actions == ['recreated', 'started'] and differences == ['volumes']


def test_every_declared_option_is_compared_and_in_the_argument_spec():
    spec = _options.argument_spec()
    assert set(spec) == set(_options.NAMES)
    assert set(_options.COMPARED) == set(spec) | {'image_id'}
    assert spec['env'] == {'type': 'dict', 'default': {}}
    assert set(SPEC) == set(_options.COMPARED), 'SPEC, below, has every compared key'


class FakeStore:
    def require_image(self, name):
        return {'id': 'c' * 64}

    def image(self, name):
        return None  # not built yet


def test_check_mode_takes_a_missing_image_as_one_an_earlier_task_builds():
    spec = _planning.desired_spec(FakeStore(), {'image': 'web'}, check_mode=True)
    assert spec['image_id'] == _planning.PENDING_IMAGE
    assert _planning.container_actions({}, False, spec, 'started') == (['created', 'started'], [])
    assert _planning.container_actions(SPEC, True, dict(SPEC, image_id=spec['image_id']), 'started') == (
        ['recreated', 'started'], ['image_id'])  # rebuilt, to an id check mode cannot know


def test_desired_spec_is_what_config_json_stores():
    spec = _planning.desired_spec(FakeStore(), {'image': 'web', 'command': 'sleep "1 2"', 'env': {'B': 2, 'A': 'x'},
                                                'hostname': None, 'privileged': None, 'cap_add': ['SYS_PTRACE', 'NET_ADMIN']})
    assert spec == dict(_options.stored({'image': 'web', 'image_id': 'c' * 64}), command=['sleep', '1 2'],
                        env=['A=x', 'B=2'], cap_add=['NET_ADMIN', 'SYS_PTRACE'])
    assert (spec['privileged'], spec['restart_policy'], spec['volumes']) == (False, 'no', []), 'the defaults as stored'
    with pytest.raises(ConductorError, match="invalid environment entry '1A=x'"):
        _planning.desired_spec(FakeStore(), {'image': 'web', 'env': {'1A': 'x'}})
    for policy in ('sometimes', 'on-failure:-1', 'on-failure:0', 'always:3'):
        with pytest.raises(ConductorError, match='invalid restart policy %r: use no, on-failure' % policy):
            _planning.desired_spec(FakeStore(), {'image': 'web', 'restart_policy': policy})


def _config(values):
    """A Config as _records.read makes it from a config.json holding values."""
    made = dict(version=2, name='web', created='now', base='b' * 64, layers=[], argv=['/bin/bash'], environment=[],
                run_workdir='/', run_stop_signal=15, run_labels={}, run_healthcheck=None)
    return _records.Config(**_records.upgrade(dict(made, **values)))


def test_stored_spec_ignores_env_order_and_other_keys():
    config = _config(dict(SPEC, env=['B=2', 'A=1']))
    assert _planning.stored_spec(config) == dict(SPEC, env=['A=1', 'B=2'])
    older = {key: value for key, value in SPEC.items()
             if key not in ('cap_add', 'cap_drop', 'security_opts', 'memory', 'cpus', 'pids_limit', 'volumes', 'mounts',
                            'user', 'entrypoint')}
    assert _planning.stored_spec(_config(older)) == SPEC  # a container made before these options compares equal
    assert _planning.stored_spec(None) == {}


@pytest.mark.parametrize('current, pid, differs', [
    (None, 10, True),
    ({'internet': True, 'ports': [], 'dns': None, 'pid': 10}, 10, False),
    ({'internet': False, 'ports': [], 'dns': None, 'pid': 10}, 10, True),
    ({'internet': True, 'ports': [], 'dns': None, 'pid': 9}, 10, True),  # restarted: a new netns, no veth
])
def test_network_differs(current, pid, differs):
    assert _planning.network_differs(current, {'internet': True, 'ports': [], 'dns': None}, pid) is differs


FILE = 'FROM debian:bookworm\nCOPY app /app\nRUN make\nENV A=1\nRUN echo done\n'


class FakeContext(_context.Context):
    """A context whose one source has the digest given: nothing is read."""

    def __init__(self, sources_digest='d' * 64):
        self.folder, self.fd, self.sources_digest = '/nowhere', None, sources_digest

    def resolve(self, ins, sources, archives=False):
        return [_context.Source(s, []) for s in sources], self.sources_digest


def pure_plan(sources_digest='d' * 64, **kw):
    """A Plan made from its inputs alone: no store, no files, nothing hashed."""
    args = dict(context=FakeContext(sources_digest), layers=(), bases=())
    args.update(kw)
    return _buildplan.Plan('img', parse(FILE), {}, **args)


def test_plan_is_a_pure_function_of_its_inputs():
    plan = pure_plan()
    assert [s.cached for s in plan.steps] == [False, False, False, True, False]  # ENV makes no layer
    assert plan.image_id({}) is None
    assert pure_plan().layers == plan.layers
    assert pure_plan('e' * 64).layers[0] != plan.layers[0]


def test_plan_counts_what_the_store_holds_as_cached():
    first = pure_plan()
    plan = pure_plan(layers=set(first.layers), bases={first.base})
    assert plan.complete
    ids = {key: 'id-' + key for key in plan.layers}
    assert plan.image_id(ids) == pure_plan(layers=set(first.layers), bases={first.base}).image_id(ids)
    assert plan.image_id(dict(ids, **{plan.layers[0]: 'other'})) != plan.image_id(ids)
    assert not pure_plan(layers=set(first.layers), bases={first.base}, nocache=True).complete


def test_plan_on_a_parent_image():
    parent = {'id': 'p' * 64, 'base': 'b' * 32, 'layers': ['l' * 32], 'config': {'env': ['X=1'], 'workdir': '/srv'}}
    plan = _buildplan.Plan('img', parse('FROM web\nRUN true\n'), {}, images={'web': parent}.__getitem__)
    assert plan.base == 'b' * 32 and plan.layers[0] == 'l' * 32 and len(plan.layers) == 2
    assert plan.config == {'env': ['X=1'], 'workdir': '/srv'}


# -- conductor_stack: stack_actions is pure ---------------------------------------------------------
NET = {'internet': False, 'ports': [], 'dns': None, 'host_access': 'all', 'link_local': False}


def want(spec=None, network=None, peers=(), **flags):
    return dict({'spec': spec or SPEC, 'network': network, 'peers': list(peers)}, **flags)


def have(spec=None, running=True, stack='lab', network=None, pid=7):
    return {'spec': spec or SPEC, 'running': running, 'pid': pid, 'stack': stack, 'network': network}


def test_a_stack_on_an_empty_host_creates_starts_networks_and_peers_everything():
    plan, orphans, peer = _planning.stack_actions('lab', {'a': want(network=NET), 'b': want(network=NET, peers=['a']),
                                                          'c': want()}, {}, set())
    assert plan == {'a': (['created', 'started', 'networked', 'peered'], []),
                    'b': (['created', 'started', 'networked', 'peered'], []), 'c': (['created', 'started'], [])}
    assert orphans == [] and peer == [('a', 'b', True)]


def test_an_unchanged_stack_does_nothing():
    alloc = dict(NET, pid=7)
    plan, orphans, peer = _planning.stack_actions(
        'lab', {'a': want(network=NET), 'b': want(network=NET, peers=['a'])},
        {'a': have(network=alloc), 'b': have(network=alloc)}, {('a', 'b')})
    assert plan == {'a': ([], []), 'b': ([], [])} and orphans == [] and peer == []


def test_only_the_changed_container_is_recreated_and_its_peering_made_again():
    alloc = dict(NET, pid=7)
    plan, dummy, peer = _planning.stack_actions(
        'lab', {'a': want(network=NET), 'b': want(dict(SPEC, env=['A=2']), network=NET, peers=['a'])},
        {'a': have(network=alloc), 'b': have(network=alloc)}, {('a', 'b')})
    assert plan == {'a': (['peered'], []), 'b': (['recreated', 'started', 'networked', 'peered'], ['env'])}
    assert peer == [('a', 'b', True)]  # the recreate's stop undid it


def test_a_changed_network_or_a_restarted_container_is_networked_again():
    plan = _planning.stack_actions('lab', {'a': want(network=dict(NET, internet=True)), 'b': want(network=NET)},
                                   {'a': have(network=dict(NET, pid=7)), 'b': have(network=dict(NET, pid=6))}, set())[0]
    assert plan == {'a': (['networked'], []), 'b': (['networked'], [])}
    stopped = _planning.stack_actions('lab', {'a': want(network=NET)},
                                      {'a': have(running=False, pid=None, network=dict(NET, pid=7))}, set())[0]
    assert stopped == {'a': (['started'], [])}, 'start reconnects the same network'


def test_orphans_are_reported_and_removed_only_when_asked_and_other_stacks_are_left_alone():
    current = {'a': have(), 'gone': have(), 'theirs': have(stack='other'), 'loose': have(stack=None)}
    plan, orphans, dummy = _planning.stack_actions('lab', {'a': want()}, current, set())
    assert orphans == ['gone'] and plan == {'a': ([], [])}
    plan, orphans, dummy = _planning.stack_actions('lab', {'a': want()}, current, set(), remove_orphans=True)
    assert orphans == ['gone'] and plan['gone'] == (['removed'], [])
    plan = _planning.stack_actions('lab', {'a': want()}, current, set(), state='absent')[0]
    assert plan == {'a': (['removed'], []), 'gone': (['removed'], [])}


def test_a_container_made_outside_the_stack_is_adopted_or_recreated():
    assert _planning.stack_actions('lab', {'a': want()}, {'a': have(stack=None)}, set())[0] == {'a': (['adopted'], [])}
    plan = _planning.stack_actions('lab', {'a': want(dict(SPEC, env=[]))}, {'a': have(stack=None)}, set())[0]
    assert plan == {'a': (['recreated', 'started'], ['env'])}


def test_a_peering_no_entry_names_is_undone_but_not_one_with_an_outside_container():
    plan, dummy, peer = _planning.stack_actions('lab', {'a': want(network=NET), 'b': want(network=NET)},
                                                {'a': have(network=dict(NET, pid=7)), 'b': have(network=dict(NET, pid=7))},
                                                {('a', 'b'), ('a', 'x')})
    assert peer == [('a', 'b', False)] and plan['a'] == (['unpeered'], [])


def test_stopped_and_present_stacks_leave_networks_and_peers_alone():
    plan, dummy, peer = _planning.stack_actions('lab', {'a': want(network=NET, peers=['b']), 'b': want(network=NET)},
                                                {'a': have(), 'b': have()}, set(), state='stopped')
    assert plan == {'a': (['stopped'], []), 'b': (['stopped'], [])} and peer == []


# conductor_container: a stack of one, in no stack (None)
LIMITED = dict(SPEC, memory=64 << 20)


@pytest.mark.parametrize('have_, want_, state, plan', [
    (None, want(network=NET), 'started', {'a': (['created', 'started', 'networked'], [])}),
    (have(stack=None, network=dict(NET, pid=7)), want(network=NET), 'started', {'a': ([], [])}),
    (have(stack=None, network=dict(NET, pid=7)), want(LIMITED, network=NET), 'started', {'a': (['updated'], ['memory'])}),
    (have(stack=None, running=False, pid=None, network=dict(NET, pid=7)), want(network=NET), 'started',
     {'a': (['started'], [])}),  # start reconnects it
    (have(stack=None, network=dict(NET, pid=7)), want(network=NET, restart=True), 'started',
     {'a': (['restarted', 'started'], [])}),
    (have(stack=None, network=dict(NET, pid=7)), want(network=NET, recreate=True), 'started',
     {'a': (['recreated', 'started', 'networked'], [])}),
    (have(stack=None, network=dict(NET, pid=7)), want(network=dict(NET, internet=True)), 'started', {'a': (['networked'], [])}),
    (have(stack=None), want(network=NET), 'stopped', {'a': (['stopped'], [])}),
    (have(stack=None), want(network=NET), 'present', {'a': ([], [])}),
    (have(), want(), 'started', {'a': ([], [])}),  # a stack's container: never adopted into no stack
    (have(), want(LIMITED), 'started', {'a': (['updated'], ['memory'])}),
    (have(), want(), 'absent', {'a': (['removed'], [])}),
    (None, want(), 'absent', {}),
])
def test_a_lone_container_is_a_stack_of_one(have_, want_, state, plan):
    current = {'a': have_} if have_ else {}
    assert _planning.stack_actions(None, {'a': want_}, current, {('a', 'x')}, state) == (plan, [], [])


def test_a_lone_container_leaves_every_other_container_alone():
    """No stack has no members: the host's other containers are no orphans, whatever remove_orphans says."""
    current = {'a': have(stack=None), 'loose': have(stack=None), 'theirs': have()}
    for state in ('started', 'absent'):
        assert _planning.stack_actions(None, {'a': want()}, current, {('a', 'loose')}, state, remove_orphans=True) == (
            {'a': ([] if state == 'started' else ['removed'], [])}, [], [])


@pytest.mark.parametrize('text, field', [
    ('type=volume,target=/data,type=bind,source=/', 'type'),
    ('type=bind,source=/srv,target=/data,src=/', 'source'),
    ('type=volume,target=/data,destination=/etc', 'target'),
    ('type=bind,source=/srv,target=/data,readonly,ro=false', 'readonly'),
])
def test_a_repeated_mount_field_is_an_error_never_the_last_one_wins(text, field):
    with pytest.raises(ConductorError) as e:
        _volumes.parse_mount(text)
    assert str(e.value) == ("invalid mount %r: the field %r is given twice: give each of type, source, target and "
                            "readonly once" % (text, field))
    assert _volumes.parse_mount('type=bind,source=/srv,target=/data,readonly') == \
        {'type': 'bind', 'source': '/srv', 'target': '/data', 'readonly': True}
