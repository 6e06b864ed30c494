# SPDX-License-Identifier: GPL-3.0-or-later
"""A container's record (_records): typed fields, one upgrade at read time, the typed-record base it is built on."""
import json

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _options, _records
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, Record

MADE = dict(name='web', created='now', base='b' * 64, layers=['c' * 64], argv=['/bin/sh'], environment=['A=1'])


class Point(Record):
    x: int
    y: int = 0


def test_a_record_takes_its_fields_by_keyword_and_refuses_others():
    point = Point(x=1)
    assert (point.x, point.y, point.as_dict(), Point.fields()) == (1, 0, {'x': 1, 'y': 0}, ('x', 'y'))
    assert point.replace(y=2) == Point(x=1, y=2) != point
    assert repr(point) == 'Point(x=1, y=0)'
    with pytest.raises(TypeError, match='Point needs the field x'):
        Point(y=1)
    with pytest.raises(TypeError, match='Point has no field z'):
        Point(x=1, z=2)


def test_a_version_1_config_is_upgraded_once_at_read(tmp_path):
    """What version 1 kept as what the image said moves to run_*; the option names start empty again."""
    path = tmp_path / 'config.json'
    path.write_text(json.dumps(dict(MADE, image='web', workdir='/srv', stop_signal=2, labels={'a': 'b'},
                                    healthcheck={'test': ['CMD', 'true']}, retired_key=1)))
    config = _records.read(str(path))
    assert (config.version, config.run_workdir, config.run_stop_signal, config.run_labels) == (2, '/srv', 2, {'a': 'b'})
    assert config.run_healthcheck == {'test': ['CMD', 'true']}
    assert (config.workdir, config.stop_signal, config.labels, config.healthcheck) == (None, None, {}, None)
    assert (config.binds, config.stack, config.run_as, config.exposed, config.auto_remove) == ([], None, None, [], False)
    assert 'retired_key' not in config.as_dict()
    for option in _options.OPTIONS:  # an option the config predates: the row's `before`
        if option.name not in ('image', 'workdir', 'labels', 'stop_signal', 'healthcheck'):
            assert getattr(config, option.name) == option.before, option.name
    config.write(str(path))
    assert _records.read(str(path)) == config  # written back as version 2, it reads the same


def test_a_newer_or_damaged_config_is_refused(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps(dict(MADE, version=_records.VERSION + 1)))
    with pytest.raises(ConductorError, match='container web was made by a newer Conductor'):
        _records.read(str(path))
    path.write_text(json.dumps({'name': 'web'}))  # fields every version wrote are missing
    with pytest.raises(ValueError, match='needs the field'):
        _records.read(str(path))
    path.write_text('[]')
    with pytest.raises(ValueError, match='holds no JSON object'):
        _records.read(str(path))
    assert _records.read(str(tmp_path / 'none.json')) is None


@pytest.mark.parametrize('option', _options.OPTIONS, ids=lambda o: o.name)
def test_each_row_stores_the_type_its_field_says(option):
    """A row's default, checked, and its `before` are of the row's `type` (the Config field's annotation)."""
    kinds = {'str': str, 'int': int, 'float': float, 'bool': bool, 'list': list, 'dict': dict, 'None': type(None)}
    allowed = tuple(kinds[kind.strip()] for kind in option.type.split('|'))
    assert _records.Config.__annotations__[option.name] == option.type
    if option.name != 'image':  # the one option every config has had, with no default
        assert isinstance(option.check(option.spec.get('default')), allowed)
        assert isinstance(option.before, allowed)


def test_stop_timeout_is_seconds_in_a_day():
    check = _options.BY_NAME['stop_timeout'].check
    assert (check(None), check(0), check('2.5'), check(86400)) == (None, 0.0, 2.5, 86400.0)
    for bad in (-1, 86401, 'soon', True):
        with pytest.raises(ConductorError, match='invalid stop timeout'):
            check(bad)
    assert 'stop_timeout' in _options.IN_PLACE
