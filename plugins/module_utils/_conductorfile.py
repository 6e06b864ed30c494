# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The Conductorfile parser: Docker's syntax for FROM, COPY, RUN, ENV, WORKDIR and CMD."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import posixpath
import shlex

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, env_dict, env_list, is_env_key

INSTRUCTIONS = ('FROM', 'COPY', 'RUN', 'ENV', 'WORKDIR', 'CMD', 'VOLUME', 'ENTRYPOINT', 'USER', 'LABEL', 'EXPOSE',
                'STOPSIGNAL')
SIGNALS = {'HUP': 1, 'INT': 2, 'QUIT': 3, 'KILL': 9, 'USR1': 10, 'USR2': 12, 'TERM': 15, 'CONT': 18, 'STOP': 19,
           'WINCH': 28, 'PWR': 30, 'RTMIN+3': 37}


class Instruction:
    """One parsed step. `args` is the canonical form: what the build cache hashes."""

    def __init__(self, source, lineno, text, command, args):
        self.source, self.lineno, self.text, self.command, self.args = source, lineno, text, command, args

    def __repr__(self):
        return 'Instruction(%s:%d %s %r)' % (self.source, self.lineno, self.command, self.args)


def parse_file(path):
    try:
        with open(path) as f:
            content = f.read()
    except (IOError, OSError) as e:
        raise ConductorError('cannot read Conductorfile %s: %s' % (path, e.strerror))
    return parse(content, path)


def parse(content, source='<instructions>'):
    """Parse Conductorfile text into a list of Instructions; the first is FROM."""
    steps = []
    for lineno, text in _logical_lines(content, source):
        steps.append(_parse_instruction(source, lineno, text))
    if not steps:
        raise ConductorError('%s: no instructions: a Conductorfile starts with FROM debian:<suite>, '
                             'FROM ubuntu:<suite> or FROM <image>' % source)
    for i, step in enumerate(steps):
        if (step.command == 'FROM') != (i == 0):
            what = 'must start with FROM' if i == 0 else 'may have only one FROM (multi-stage builds are not supported)'
            raise ConductorError('%s:%d: a Conductorfile %s: %r' % (source, step.lineno, what, step.text))
    return steps


def _logical_lines(content, source):
    """Yield (first line number, text): comments dropped, backslash continuations joined."""
    parts, start = [], None
    for lineno, line in enumerate(content.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith('#') or (not stripped and start is None):
            continue  # as in Docker, a comment inside a continuation does not end it
        if start is None:
            start = lineno
        if stripped.endswith('\\'):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        yield start, ' '.join(p for p in parts if p)
        parts, start = [], None
    if start is not None:
        raise ConductorError('%s:%d: the file ends inside a line continuation (a trailing "\\"): %r'
                             % (source, start, ' '.join(parts)))


def _parse_instruction(source, lineno, text):
    def fail(msg):
        raise ConductorError('%s:%d: %s: %r' % (source, lineno, msg, text))

    word, dummy, rest = text.partition(' ')
    command, rest = word.upper(), rest.strip()
    if command not in INSTRUCTIONS:
        fail('unknown instruction %s (expected one of %s)' % (word, ', '.join(INSTRUCTIONS)))
    if not rest:
        fail('%s needs arguments' % command)
    return Instruction(source, lineno, text, command, _ARGUMENTS[command](rest, fail))


def _json_array(rest, fail, command):
    """Docker's exec form: a JSON array of strings; a '[' that is not one is an error here."""
    try:
        value = json.loads(rest)
    except ValueError as e:
        fail('%s: invalid JSON array (%s); use ["arg", ...] or the shell form without brackets' % (command, e))
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        fail('%s: the JSON form must be a non-empty array of strings' % command)
    return value


def _command_args(command):
    def parse(rest, fail):
        if rest.startswith('['):
            return _json_array(rest, fail, command)
        return ['/bin/sh', '-c', rest]
    return parse


def _from_args(rest, fail):
    words = rest.split()
    if len(words) != 1:
        fail('FROM takes one image: debian:<suite>, ubuntu:<suite> or the name of a built image')
    return words[0]


def _copy_args(rest, fail):
    if rest.startswith('--'):
        fail('COPY options (%s) are not supported' % rest.split()[0])
    if rest.startswith('['):
        words = _json_array(rest, fail, 'COPY')
    else:
        try:
            words = shlex.split(rest)
        except ValueError as e:
            fail('COPY: %s' % e)
    if len(words) < 2:
        fail('COPY needs at least one source and a destination')
    sources, dest = words[:-1], words[-1]
    if len(sources) > 1 and not dest.endswith('/'):
        fail('COPY with several sources needs a destination folder ending in "/"')
    return {'sources': sources, 'dest': dest}


def _env_args(rest, fail):
    try:
        words = shlex.split(rest)
    except ValueError as e:
        fail('ENV: %s' % e)
    if '=' not in words[0]:  # the legacy form: ENV KEY value with spaces
        key, dummy, value = rest.partition(' ')
        pairs = [(key, value.strip())]
        if not pairs[0][1]:
            fail('ENV needs KEY=VALUE')
    else:
        pairs = [w.partition('=')[::2] for w in words]
        if any('=' not in w for w in words):
            fail('ENV needs KEY=VALUE for every entry')
    for key, dummy in pairs:
        if not is_env_key(key):
            fail('ENV: invalid variable name %r' % key)
    return [list(p) for p in pairs]


def _workdir_args(rest, fail):
    if rest.startswith('['):
        fail('WORKDIR takes a path, not a JSON array')
    return rest


def _label_args(rest, fail):
    """LABEL key=value ...: recorded in the image's config, as Docker does."""
    try:
        words = shlex.split(rest)
    except ValueError as e:
        fail('LABEL: %s' % e)
    if any('=' not in w or not w.partition('=')[0] for w in words):
        fail('LABEL needs key=value for every entry')
    return [list(w.partition('=')[::2]) for w in words]


def _expose_args(rest, fail):
    """EXPOSE 80 8080/tcp 53/udp: recorded (inspect shows them), published only when asked."""
    ports = []
    for word in rest.split():
        port, dummy, protocol = word.partition('/')
        if not port.isdigit() or not 0 < int(port) < 65536 or (protocol or 'tcp') not in ('tcp', 'udp'):
            fail('EXPOSE: %r is not a port such as 80, 8080/tcp or 53/udp' % word)
        ports.append('%d/%s' % (int(port), protocol or 'tcp'))
    return ports


def parse_signal(text):
    """SIGTERM, TERM or 15 -> 15; None if it is not a signal."""
    name = str(text).upper()
    name = name[3:] if name.startswith('SIG') else name
    if name.isdigit() and 0 < int(name) < 65:
        return int(name)
    return SIGNALS.get(name)


def _stopsignal_args(rest, fail):
    if parse_signal(rest.strip()) is None:
        fail('STOPSIGNAL: %r is not a signal such as SIGTERM, SIGINT or 15' % rest)
    return parse_signal(rest.strip())


def check_user(text):
    """name[:group] or uid[:gid]; None if it is not one."""
    user, dummy, group = str(text).strip().partition(':')
    if not user or any(part and not all(c.isalnum() or c in '_.-' for c in part) for part in (user, group)):
        return None
    return str(text).strip()


def _user_args(rest, fail):
    """USER name[:group] or uid[:gid], looked up in the image's /etc/passwd and /etc/group at run."""
    if check_user(rest) is None:
        fail('USER: %r is not a user name or number, such as student or 1000:1000' % rest)
    return check_user(rest)


def _volume_args(rest, fail):
    """VOLUME /path ... or VOLUME ["/path", ...]: folders each container gets an anonymous volume for."""
    paths = _json_array(rest, fail, 'VOLUME') if rest.startswith('[') else rest.split()
    for path in paths:
        if not path.startswith('/'):
            fail('VOLUME: %r is not an absolute path' % path)
    return sorted(posixpath.normpath(p) for p in paths)


_ARGUMENTS = {
    'FROM': _from_args,
    'COPY': _copy_args,
    'RUN': _command_args('RUN'),
    'ENV': _env_args,
    'WORKDIR': _workdir_args,
    'CMD': _command_args('CMD'),
    'VOLUME': _volume_args,
    'ENTRYPOINT': _command_args('ENTRYPOINT'),
    'USER': _user_args,
    'LABEL': _label_args,
    'EXPOSE': _expose_args,
    'STOPSIGNAL': _stopsignal_args,
}


def apply_config(config, step):
    """Return the image config after an ENV, WORKDIR or CMD step."""
    config = dict(config, env=list(config.get('env', [])))
    if step.command == 'ENV':
        env = env_dict(config['env'])
        env.update(dict(step.args))
        config['env'] = env_list(env)
    elif step.command == 'WORKDIR':
        config['workdir'] = posixpath.normpath(posixpath.join(config.get('workdir') or '/', step.args))
    elif step.command == 'CMD':
        config['cmd'] = step.args
        config['cmd_here'] = True  # set in this file: a later ENTRYPOINT keeps it (Docker's rule)
    elif step.command == 'ENTRYPOINT':
        config['entrypoint'] = step.args
        if not config.get('cmd_here'):
            config['cmd'] = None  # a CMD from the parent image makes no sense with a new ENTRYPOINT
    elif step.command == 'USER':
        config['user'] = step.args
    elif step.command == 'LABEL':
        config['labels'] = dict(config.get('labels') or {}, **dict(step.args))
    elif step.command == 'EXPOSE':
        config['exposed'] = sorted(set(config.get('exposed', [])) | set(step.args))
    elif step.command == 'STOPSIGNAL':
        config['stop_signal'] = step.args
    elif step.command == 'VOLUME':
        config['volumes'] = sorted(set(config.get('volumes', [])) | set(step.args))
    return config
