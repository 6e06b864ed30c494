# SPDX-License-Identifier: GPL-3.0-or-later
"""The table of container options (_options.OPTIONS) against what the faces say and do.

Each module's DOCUMENTATION must agree with the table: every option documented, with the table's type,
default, elements, choices and suboptions, and nothing documented that the table lacks."""
import os

import pytest
import yaml

import helpers
from ansible_collections.cs695.conductor.plugins.module_utils import _options
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

MODULES = os.path.join(helpers.CHECKOUT, 'plugins', 'modules')
KEYS = ('type', 'default', 'elements', 'choices', 'required')
# each module's own options, beside the table's
OWN = {'conductor_container': {'name', 'state', 'healthy_timeout', 'recreate', 'discard_changes', 'restart', 'stop_timeout',
                               'network', 'root', 'pull'},
       'conductor_stack': {'name', 'network', 'peers'}}


def documented(module):
    """The documented options of a container: conductor_container's own, conductor_stack's entries'."""
    with open(os.path.join(MODULES, module + '.py')) as f:
        source = f.read()
    text = source.split("DOCUMENTATION = r'''", 1)[1].split("'''", 1)[0]
    options = yaml.safe_load(text)['options']
    return options['containers']['suboptions'] if module == 'conductor_stack' else options


def disagreements(docs, spec, where):
    problems = []
    for name, option in spec.items():
        doc = docs.get(name)
        if doc is None:
            problems.append('%s: %s is not documented' % (where, name))
            continue
        for key in KEYS:
            want, have = option.get(key), doc.get(key)
            if key == 'required' and not want and not have:
                continue
            if want != have:
                problems.append('%s: %s has %s %r in the table, %r in the documentation' % (where, name, key, want, have))
        if 'options' in option:
            problems += disagreements(doc.get('suboptions') or {}, option['options'], '%s.%s' % (where, name))
    return problems


@pytest.mark.parametrize('module', sorted(OWN))
def test_each_modules_documentation_agrees_with_the_table(module):
    docs = documented(module)
    problems = disagreements(docs, _options.argument_spec(), module)
    assert not problems, '\n'.join(problems)
    assert set(docs) - set(_options.NAMES) - OWN[module] == set(), 'documented, but in no row of the table'


def test_a_stored_spec_checks_as_it_is():
    """check(check(x)) == check(x): create checks what the modules' planning already checked."""
    given = {'image': 'web', 'command': 'python3 -m http.server', 'env': {'B': '2', 'A': '1'}, 'cap_add': ['NET_ADMIN'],
             'security_opts': ['no-new-privileges'], 'memory': '64m', 'cpus': '0.5', 'pids_limit': '-1',
             'volumes': ['/srv:/data:ro', 'work:/home'], 'mounts': [{'target': '/cache'}], 'user': '1000:1000',
             'entrypoint': '', 'restart_policy': 'on-failure:3'}
    spec = _options.check(given)
    assert _options.check(spec) == spec
    assert spec['env'] == ['A=1', 'B=2'] and spec['command'] == ['python3', '-m', 'http.server']
    assert (spec['memory'], spec['cpus'], spec['pids_limit'], spec['entrypoint']) == (64 << 20, 0.5, -1, [])
    assert [v['target'] for v in spec['volumes']] == ['/data', '/home']


@pytest.mark.parametrize('options, message', [
    ({'image': 'web', 'colour': 'red'}, 'unknown container option colour'),
    ({'image': 'web', 'cap_add': ['BOGUS']}, "unknown capability 'BOGUS' in cap_add"),
    ({'image': 'web', 'env': ['1A=x']}, "invalid environment entry '1A=x'"),
    ({'image': 'web', 'restart_policy': 'sometimes'}, "invalid restart policy 'sometimes'"),
    ({'image': 'web', 'command': []}, 'invalid command []'),
    ({}, 'a container needs an image'),
])
def test_bad_options_get_one_clear_error(options, message):
    with pytest.raises(ConductorError) as e:
        _options.check(options)
    assert message in str(e.value)


def test_the_last_value_of_a_repeated_variable_wins_as_in_docker():
    assert _options.check({'image': 'web', 'env': ['A=1', 'B=x', 'A=2']})['env'] == ['A=2', 'B=x']


def test_old_configs_read_with_each_options_before():
    spec = _options.stored({'image': 'web', 'image_id': 'i', 'env': ['B=2', 'A=1']})
    assert spec['restart_policy'] == 'no' and spec['cap_add'] == [] and spec['env'] == ['A=1', 'B=2']
    assert set(spec) == set(_options.COMPARED)


def test_etc_hosts_from_a_task_or_the_command_line():
    assert _options.check({'image': 'web', 'etc_hosts': ['db:10.0.0.5', 'v6:fd00::1', 'web=192.168.1.2']})['etc_hosts'] == \
        {'db': '10.0.0.5', 'v6': 'fd00::1', 'web': '192.168.1.2'}
    assert _options.check({'image': 'web', 'etc_hosts': {'db': '10.0.0.5'}})['etc_hosts'] == {'db': '10.0.0.5'}
    for bad in (['db'], ['db:300.1.1.1'], ['../x:10.0.0.1']):
        with pytest.raises(ConductorError):
            _options.check({'image': 'web', 'etc_hosts': bad})


@pytest.mark.parametrize('module', sorted(f[:-3] for f in os.listdir(MODULES) if f.endswith('.py')))
def test_every_modules_documentation_parses(module):
    """ansible-doc and sanity read DOCUMENTATION as YAML: a stray ': ' in a description breaks the module's docs."""
    with open(os.path.join(MODULES, module + '.py')) as f:
        source = f.read()
    for name in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'):
        assert yaml.safe_load(source.split("%s = r'''" % name, 1)[1].split("'''", 1)[0]), name


def test_env_files_are_read_when_checked_and_the_image_env_then_files_then_env_win(tmp_path, monkeypatch):
    first, second = tmp_path / 'a.env', tmp_path / 'b.env'
    first.write_text('# the course\nCOURSE=cs695\n\nWEEK=1\nFROM_HOST\n')
    second.write_text('WEEK=2\n')
    monkeypatch.setenv('FROM_HOST', 'yes')
    spec = _options.check({'image': 'web', 'env_file': [str(first), str(second)]})
    assert spec['env_file'] == {str(first): ['COURSE=cs695', 'WEEK=1', 'FROM_HOST=yes'], str(second): ['WEEK=2']}
    assert _options.check(spec) == spec, 'the checked form checks as it is'
    first.write_text('COURSE=cs101\n')
    assert _options.check({'image': 'web', 'env_file': [str(first)]})['env_file'] != spec['env_file'], 'a change recreates'
    (tmp_path / 'bad.env').write_text('1A=x\n')
    os.mkfifo(str(tmp_path / 'fifo.env'))  # never read: it would block
    for path, message in ((tmp_path / 'bad.env', "invalid entry of env file"), (tmp_path / 'none.env', 'cannot read env file'),
                          (tmp_path, 'Is a directory'), (tmp_path / 'fifo.env', 'not a regular file')):
        with pytest.raises(ConductorError, match=message):
            _options.check({'image': 'web', 'env_file': [str(path)]})
    link = tmp_path / 'link.env'
    link.symlink_to(first)
    with pytest.raises(ConductorError, match='cannot read env file'):
        _options.check({'image': 'web', 'env_file': [str(link)]})
