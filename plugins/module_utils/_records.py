# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A container's record: containers/<name>/config.json as a typed, versioned `Config`.

Every field is always there. A config.json written by an older Conductor is brought to this version's
form once, when it is read (`upgrade`), so no reader guesses at an older form with `.get(key) or default`;
one written by a newer Conductor is refused. The fields are those below, made by `Containers.create`, plus
one per container option (`_options.OPTIONS`, typed by the row's `type`), as the row's check returned it.
"""

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, Record, read_json, write_json
from ansible_collections.cs695.conductor.plugins.module_utils import _options

VERSION = 2  # 1 (no version field) kept the image's WORKDIR, STOPSIGNAL, LABELS and HEALTHCHECK as workdir, ...


class Config(Record):
    """What a container is made of and runs with (runc's configs.Config)."""
    version: int
    name: str
    created: str                   # when it was made, UTC
    stack: 'str | None'            # the conductor_stack it belongs to
    image_id: 'str | None'         # the image it was made from: a rebuilt image recreates it
    base: str                      # and that image's base and layers (the overlay's lower folders)
    layers: list
    storage_project: 'int | None'  # its project quota (_quota.py), when it has a storage_size
    binds: list                    # each volume and bind mount: {type, source, target, readonly}, volumes named
    auto_remove: bool              # run --rm -d: deleted when its command ends (Docker's AutoRemove)
    # what it runs with: the options given, else what the image says
    argv: list
    environment: list              # KEY=VALUE: the image's, then the env files', then env
    run_as: 'str | None'
    run_workdir: str
    run_stop_signal: int
    run_labels: dict
    run_healthcheck: 'dict | None'
    exposed: list                  # the image's EXPOSE: what -P publishes

    def spec(self) -> dict:
        """The options, plus image_id: the form _options.check returns, compared to decide a recreate."""
        return _options.stored(self.as_dict())

    def write(self, path: str, durable: bool = True) -> None:
        write_json(path, self.as_dict(), durable)


for _option in _options.OPTIONS:  # and one field per container option
    Config.__annotations__[_option.name] = _option.type

MADE_BEFORE = {'stack': None, 'image_id': None, 'storage_project': None, 'binds': [], 'auto_remove': False,
               'run_as': None, 'exposed': []}


def upgrade(values: dict) -> dict:
    """A config.json as read -> this version's form. Version 1 kept what the image said (WORKDIR, STOPSIGNAL,
    LABELS, HEALTHCHECK) under the names the options have now: it moves to run_workdir, run_stop_signal,
    run_labels and run_healthcheck, what the container runs with (as run_as for the user). A field a config
    predates gets MADE_BEFORE's value, an option its row's `before`; a key no version knows is dropped."""
    version = values.get('version', 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ConductorError('container %s was made by a newer Conductor (config version %r): use that one'
                             % (values.get('name'), version))
    values = dict(values)
    if version < 2:
        values.update(run_workdir=values.get('workdir') or '/', run_stop_signal=values.get('stop_signal') or 15,
                      run_labels=values.get('labels') or {}, run_healthcheck=values.get('healthcheck'), workdir=None,
                      stop_signal=None, labels={}, healthcheck=None)
    for name, before in MADE_BEFORE.items():
        values.setdefault(name, before)
    for option in _options.OPTIONS:
        if values.get(option.name) is None:
            values[option.name] = option.before
    values['version'] = VERSION
    fields = Config.fields()
    return {name: values[name] for name in fields if name in values}


def read(path: str) -> 'Config | None':
    """The Config in the file at path, upgraded; None if there is none. A file cut short is a ValueError."""
    values = read_json(path)
    if values is None:
        return None
    if not isinstance(values, dict):
        raise ValueError('%s holds no JSON object' % path)
    try:
        return Config(**upgrade(values))
    except TypeError as e:  # a field missing that every version wrote: damaged
        raise ValueError('%s: %s' % (path, e))
