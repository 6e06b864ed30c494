# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""The Conductorfile parser: Docker's Dockerfile syntax, instructions, flags, heredocs and variables.

parse() splits the text into Instructions: comments dropped, continuations joined, heredoc bodies
collected, --flags taken off. An instruction whose text holds no variable is checked at once; one
with a $VAR is checked by expand(), when the builder knows the values of the ARGs and ENVs it sees
(Docker's rule: FROM, ARG, COPY, ADD, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL and VOLUME
expand variables; RUN, CMD and ENTRYPOINT leave them to the shell). Plain string work only: this
file is imported by run, which must not pay for `re`.
"""

import errno
import os
import posixpath
import stat

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, env_dict, env_list, is_env_key, loads)
from ansible_collections.cs695.conductor.plugins.module_utils._syscalls import AT_FDCWD, RESOLVE_NO_SYMLINKS, openat2

INSTRUCTIONS = ('FROM', 'ARG', 'COPY', 'ADD', 'RUN', 'ENV', 'WORKDIR', 'CMD', 'ENTRYPOINT', 'SHELL', 'USER', 'LABEL',
                'EXPOSE', 'STOPSIGNAL', 'VOLUME', 'HEALTHCHECK')
EXPANDED = ('FROM', 'ARG', 'COPY', 'ADD', 'ENV', 'WORKDIR', 'USER', 'LABEL', 'EXPOSE', 'STOPSIGNAL', 'VOLUME')
FLAGS = {  # the --flags each instruction takes; a repeated flag keeps every value (RUN --mount)
    'COPY': ('from', 'chown', 'chmod', 'link'),
    'ADD': ('chown', 'chmod', 'link'),
    'RUN': ('mount', 'network'),
    'HEALTHCHECK': ('interval', 'timeout', 'start-period', 'start-interval', 'retries'),
}
HEREDOCS = ('RUN', 'COPY', 'ADD')
DEFAULT_SHELL = ['/bin/sh', '-c']
CONDUCTORFILE_MAX = 4 << 20
HEALTH_DEFAULTS = {'interval': 30.0, 'timeout': 30.0, 'start_period': 0.0, 'start_interval': 5.0, 'retries': 3}
SIGNALS = {'HUP': 1, 'INT': 2, 'QUIT': 3, 'KILL': 9, 'USR1': 10, 'USR2': 12, 'TERM': 15, 'CONT': 18, 'STOP': 19,
           'WINCH': 28, 'PWR': 30, 'RTMIN+3': 37}
NAME_CHARS = frozenset('abcdefghijklmnopqrstuvwxyz0123456789_.-')


class Instruction:
    """One step. `args` is the canonical form the build cache hashes; None until expand() has run for
    an instruction with variables. `script` is the shell form's text (None for the JSON form)."""

    def __init__(self, source, lineno, text, command, rest, flags=None, heredocs=()):
        self.source, self.lineno, self.text, self.command, self.rest = source, lineno, text, command, rest
        self.flags, self.heredocs, self.args, self.script = dict(flags or {}), list(heredocs), None, None

    def __repr__(self):
        return 'Instruction(%s:%d %s %r)' % (self.source, self.lineno, self.command, self.args)

    def fail(self, msg):
        raise ConductorError('%s:%d: %s: %r' % (self.source, self.lineno, msg, self.text))

    @property
    def has_variables(self):
        return self.command in EXPANDED and ('$' in self.rest or any('$' in str(v) for v in self.flags.values()) or
                                             any('$' in body for dummy, body, expands in self.heredocs if expands))


def parse_file(path, check_from=None):
    """Parse the file at path, read as a regular file reached through no symlink: a student who can swap
    the folder of the file they handed in cannot make the build read a host file, and show its lines in
    errors."""
    try:
        fd = openat2(AT_FDCWD, os.path.abspath(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS)
        with os.fdopen(fd, 'rb') as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConductorError('cannot read Conductorfile %s: it is not a regular file' % path)
            content = f.read(CONDUCTORFILE_MAX + 1)
    except (IOError, OSError) as e:
        if e.errno == errno.ELOOP:
            raise ConductorError('cannot read Conductorfile %s: its path goes through a symlink: give its real path (%s)'
                                 % (path, os.path.realpath(path)))
        raise ConductorError('cannot read Conductorfile %s: %s' % (path, e.strerror))
    if len(content) > CONDUCTORFILE_MAX:
        raise ConductorError('cannot read Conductorfile %s: it is larger than %d bytes' % (path, CONDUCTORFILE_MAX))
    return parse(content.decode('utf-8', 'replace'), path, check_from)


def parse(content, source='<instructions>', check_from=None):
    """Parse Conductorfile text into Instructions: optional ARGs, then stages that each start with FROM.
    check_from(instruction) runs on each FROM as soon as it is read, so a bad FROM is the first error."""
    steps = []
    for lineno, text, heredocs in _logical_lines(content, source):
        ins = _split(source, lineno, text, heredocs)
        if not ins.has_variables:
            ins = expand(ins, {})
        if ins.command == 'FROM' and check_from and ins.args:
            check_from(ins)
        if ins.command not in ('FROM', 'ARG') and not any(s.command == 'FROM' for s in steps):
            ins.fail('a Conductorfile must start with FROM (only ARG may come before it)')
        steps.append(ins)
    if not any(s.command == 'FROM' for s in steps):
        raise ConductorError('%s: no FROM: a Conductorfile starts with FROM debian:<tag>, FROM ubuntu:<tag> '
                             'or FROM <image>' % source)
    return steps


def _logical_lines(content, source):
    """Yield (first line number, text, heredocs): comments dropped, backslash continuations joined, and
    for RUN, COPY and ADD the bodies of their <<WORD heredocs as (word, body, expand) tuples."""
    lines = content.splitlines()
    parts, start, i = [], None, 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if stripped.startswith('#') or (not stripped and start is None):
            continue  # as in Docker, a comment inside a continuation does not end it
        if start is None:
            start = lineno
        if stripped.endswith('\\'):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        text, heredocs = ' '.join(p for p in parts if p), []
        if text.split(None, 1)[0].upper() in HEREDOCS:
            for word, strip_tabs, quoted in _heredoc_markers(text):
                body = []
                while i < len(lines) and (lines[i].lstrip('\t') if strip_tabs else lines[i]) != word:
                    body.append(lines[i].lstrip('\t') if strip_tabs else lines[i])
                    i += 1
                if i == len(lines):
                    raise ConductorError('%s:%d: the heredoc <<%s never ends: put a line with only %s after its '
                                         'text: %r' % (source, start, word, word, text))
                i += 1
                heredocs.append((word, '\n'.join(body) + '\n', not quoted))
        yield start, text, heredocs
        parts, start = [], None
    if start is not None:
        raise ConductorError('%s:%d: the file ends inside a line continuation (a trailing "\\"): %r'
                             % (source, start, ' '.join(parts)))


def _heredoc_markers(text):
    """(word, strip tabs, quoted) for each <<WORD, <<-WORD, <<"WORD" or <<'WORD' in text, in order."""
    markers, at = [], text.find('<<')
    while at >= 0:
        rest = text[at + 2:]
        strip_tabs = rest.startswith('-')
        rest = rest[1:] if strip_tabs else rest
        quote = rest[:1] if rest[:1] in '"\'' and rest[:1] else ''
        rest = rest[len(quote):]
        word = ''
        while len(word) < len(rest) and (rest[len(word)].isalnum() or rest[len(word)] == '_'):
            word += rest[len(word)]
        if word and not word[0].isdigit() and (not quote or rest[len(word):].startswith(quote)):
            markers.append((word, strip_tabs, bool(quote)))
        at = text.find('<<', at + 2)
    return markers


def _split(source, lineno, text, heredocs):
    """The instruction word and its --flags taken off the text; the rest is left for its parser."""
    ins = Instruction(source, lineno, text, None, '', heredocs=heredocs)
    word, dummy, rest = text.partition(' ')
    ins.command, rest = word.upper(), rest.strip()
    if ins.command not in INSTRUCTIONS:
        ins.fail('unknown instruction %s (expected one of %s)' % (word, ', '.join(INSTRUCTIONS)))
    while rest.startswith('--'):
        flag, dummy, rest = rest.partition(' ')
        name, equals, value = flag[2:].partition('=')
        if name not in FLAGS.get(ins.command, ()):
            known = ', '.join('--' + f for f in FLAGS.get(ins.command, ())) or 'none'
            ins.fail('%s does not take --%s (its options: %s)' % (ins.command, name, known))
        if not equals or not value:
            ins.fail('--%s needs a value: --%s=VALUE' % (name, name))
        ins.flags.setdefault(name, []).append(value)
        rest = rest.strip()
    ins.rest = rest
    if not rest:
        ins.fail('%s needs arguments' % ins.command)
    return ins


def expand(ins, variables):
    """A copy of ins with its arguments parsed, $VAR and ${VAR...} replaced from variables where
    Docker expands them. Errors name the file, the line and the text."""
    new = Instruction(ins.source, ins.lineno, ins.text, ins.command, ins.rest, ins.flags, ins.heredocs)
    variables = variables if ins.command in EXPANDED else None

    def words(text, split=True):
        try:
            return lex(text, variables, split)
        except ValueError as e:
            new.fail('%s: %s' % (ins.command, e))

    words.variables = variables
    new.flags = dict((name, [words(v, False) for v in values]) for name, values in ins.flags.items())
    new.args = _ARGUMENTS[ins.command](new, words)
    return new


# -- Docker's word rules --------------------------------------------------------------------------
def lex(text, variables, split=True):
    """Words as Docker's shell lexer reads them: whitespace separates words (with split), '...' is
    literal, a backslash escapes the next character, and outside single quotes $VAR, ${VAR},
    ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?message} are replaced from
    variables (None: left as written). An expanded value is never split. ValueError on a bad form."""
    words, word, started, quote, i = [], [], False, None, 0
    while i < len(text):
        c = text[i]
        if quote == "'":
            quote = None if c == "'" else quote
            word.extend(c if c != "'" else '')
        elif c == '\\' and i + 1 < len(text):
            if quote == '"' and text[i + 1] not in '"\\$':
                word.append(c)
            word.append(text[i + 1])
            started, i = True, i + 1
        elif c == '$' and variables is not None:
            value, i = _variable(text, i, variables)
            word.append(value)
            started = True
            continue
        elif c in '"\'' and quote is None:
            quote, started = c, True
        elif c == '"' and quote == '"':
            quote = None
        elif c.isspace() and split and quote is None:
            if started:
                words.append(''.join(word))
            word, started = [], False
        else:
            word.append(c)
            started = True
        i += 1
    if quote:
        raise ValueError('a %s quote is never closed' % quote)
    if not split:
        return ''.join(word)
    return words + ([''.join(word)] if started else [])


def substitute(text, variables):
    """Only the variable references in text replaced (a heredoc's body): quotes stay as written."""
    if variables is None:
        return text
    out, i = [], 0
    while i < len(text):
        if text.startswith('\\$', i):
            out.append('$')
            i += 2
        elif text[i] == '$':
            value, i = _variable(text, i, variables)
            out.append(value)
        else:
            out.append(text[i])
            i += 1
    return ''.join(out)


def _variable(text, i, variables):
    """The value of the variable reference at text[i] == '$', and the index after it."""
    if text[i + 1:i + 2] != '{':
        end = i + 1
        while end < len(text) and (text[end].isalnum() or text[end] == '_'):
            end += 1
        return (variables.get(text[i + 1:end], '') if end > i + 1 else '$'), end
    depth, end = 0, i + 1
    while end < len(text):
        depth += {'{': 1, '}': -1}.get(text[end], 0)
        if depth == 0:
            break
        end += 1
    if depth:
        raise ValueError('${ at %r is never closed with }' % text[i:])
    inner = text[i + 2:end]
    name = ''
    while len(name) < len(inner) and (inner[len(name)].isalnum() or inner[len(name)] == '_'):
        name += inner[len(name)]
    operator, word = inner[len(name):len(name) + 2], inner[len(name) + 2:]
    if operator[:1] != ':':
        operator, word = operator[:1], inner[len(name) + 1:]
    if not is_env_key(name) or operator not in ('', ':-', '-', ':+', '+', ':?', '?'):
        raise ValueError('${%s} is not a variable reference: use ${NAME}, ${NAME:-default} or ${NAME:+alternative}'
                         % inner)
    value, is_set = variables.get(name), name in variables
    present = is_set and (value != '' or ':' not in operator)
    if operator in ('', ):
        result = value or ''
    elif operator in (':-', '-'):
        result = value if present else lex(word, variables, False)
    elif operator in (':+', '+'):
        result = lex(word, variables, False) if present else ''
    else:
        if not present:
            raise ValueError('%s: %s' % (name, lex(word, variables, False) or 'is not set'))
        result = value
    return result, end + 1


# -- each instruction's arguments ---------------------------------------------------------------
def _json_array(ins, words=None):
    """Docker's exec form: a JSON array of strings (expanded where the instruction expands)."""
    try:
        value = loads(ins.rest)
    except ValueError as e:
        ins.fail('%s: invalid JSON array (%s); use ["arg", ...] or the shell form without brackets' % (ins.command, e))
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        ins.fail('%s: the JSON form must be a non-empty array of strings' % ins.command)
    return [words(v, False) for v in value] if words else value


def _command(ins, words):
    """RUN, CMD, ENTRYPOINT: the JSON form as it is, the shell form through the default shell (SHELL
    changes it when the builder applies it: see with_shell). Text that is not a JSON array of strings
    is the shell form, as in Docker (RUN [[ -f x ]] && ...). A lone heredoc is the script itself."""
    if ins.rest.startswith('['):
        try:
            value = loads(ins.rest)
        except ValueError:
            value = None
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    ins.script = ins.rest
    if ins.heredocs:
        if ins.rest.startswith('<<') and len(ins.heredocs) == 1 and ' ' not in ins.rest:
            ins.script = ins.heredocs[0][1]
        else:  # the shell reads the heredocs itself
            ins.script = '\n'.join([ins.rest] + [body + word for word, body, dummy in ins.heredocs])
    return DEFAULT_SHELL + [ins.script]


def with_shell(ins, shell):
    """The argv of a RUN, CMD or ENTRYPOINT under the current SHELL."""
    return list(shell) + [ins.script] if ins.script is not None else ins.args


def _run(ins, words):
    for mount in ins.flags.get('mount', []):
        parse_mount(ins, mount)
    if ins.flags.get('network', ['default'])[-1] not in ('default', 'none', 'host'):
        ins.fail('RUN --network takes default, none or host')
    return _command(ins, words)


def parse_mount(ins, text):
    """RUN --mount=type=cache|bind,target=...[,source=...][,from=...][,id=...][,readonly|rw]: a dict."""
    mount = {}
    for item in text.split(','):
        key, equals, value = item.partition('=')
        key = {'dst': 'target', 'destination': 'target', 'src': 'source', 'ro': 'readonly', 'readwrite': 'rw'}.get(key, key)
        if key in ('readonly', 'rw') and not equals:
            value = 'true'
        if key not in ('type', 'target', 'source', 'from', 'id', 'readonly', 'rw', 'sharing', 'mode', 'uid', 'gid'):
            ins.fail('RUN --mount: unknown option %r (use type, target, source, from, id, readonly)' % key)
        if key in mount:
            ins.fail('RUN --mount: the option %r is given twice: give each option once' % key)
        mount[key] = value
    mount.setdefault('type', 'bind')
    if mount['type'] not in ('cache', 'bind'):
        ins.fail('RUN --mount=type=%s is not supported: use type=cache or type=bind' % mount['type'])
    if not mount.get('target', '').startswith('/'):
        ins.fail('RUN --mount needs an absolute target=/path')
    return mount


def _from(ins, words):
    """FROM image [AS name]: {'image': ..., 'name': stage name or None}."""
    parts = words(ins.rest)
    if len(parts) == 3 and parts[1].upper() == 'AS':
        name = parts[2].lower()
        if not name[:1].isalpha() or not NAME_CHARS.issuperset(name):
            ins.fail('FROM ... AS %s: a stage name starts with a letter and has only a-z, 0-9, _, . and -' % parts[2])
        return {'image': parts[0], 'name': name}
    if len(parts) != 1 or not parts[0]:
        ins.fail('FROM takes one image and optionally AS name: FROM debian:bookworm AS build')
    return {'image': parts[0], 'name': None}


def _arg(ins, words):
    """ARG NAME[=default] ...: [[name, default or None], ...]."""
    pairs = []
    for word in words(ins.rest):
        name, equals, value = word.partition('=')
        if not is_env_key(name):
            ins.fail('ARG: invalid name %r: use letters, digits and _, not starting with a digit' % name)
        pairs.append([name, value if equals else None])
    return pairs


def _copy(ins, words):
    """COPY/ADD [--from=...] [--chown=...] [--chmod=...] src... dest, or heredocs as sources."""
    for name in ('chown', 'chmod', 'from', 'link'):
        if len(ins.flags.get(name, ())) > 1:
            ins.fail('%s --%s is given twice' % (ins.command, name))
    chown, chmod = ins.flags.get('chown', [None])[0], ins.flags.get('chmod', [None])[0]
    if chown is not None and check_user(chown) is None:
        ins.fail('%s --chown=%s: use user[:group] or uid[:gid], such as student or 1000:1000' % (ins.command, chown))
    if chmod is not None and not (3 <= len(chmod) <= 4 and all(c in '01234567' for c in chmod)):
        ins.fail('%s --chmod=%s: use an octal mode such as 755 or 0644' % (ins.command, chmod))
    parts = _json_array(ins, words) if ins.rest.startswith('[') else words(ins.rest)
    inline = [[word, substitute(body, words.variables) if expands else body] for word, body, expands in ins.heredocs]
    parts = [p for p in parts if not p.startswith('<<')]
    if len(parts) + len(inline) < 2:
        ins.fail('%s needs at least one source and a destination' % ins.command)
    sources, dest = parts[:-1], parts[-1]
    if len(sources) + len(inline) > 1 and not dest.endswith('/'):
        ins.fail('%s with several sources needs a destination folder ending in "/"' % ins.command)
    for source in sources:
        if ins.command == 'COPY' and '://' in source:
            ins.fail('COPY copies from the build context; ADD is the instruction for URLs')
    args = {'sources': sources, 'dest': dest}
    args.update((k, v) for k, v in (('from', ins.flags.get('from', [None])[0]), ('chown', chown),
                                    ('chmod', chmod), ('inline', inline)) if v)
    return args


def _env(ins, words):
    parts = words(ins.rest)
    if '=' not in parts[0]:  # the legacy form: ENV KEY value with spaces
        key, dummy, value = ins.rest.partition(' ')
        pairs = [(key, words(value.strip(), False))]
        if not value.strip():
            ins.fail('ENV needs KEY=VALUE')
    else:
        if any('=' not in w for w in parts):
            ins.fail('ENV needs KEY=VALUE for every entry')
        pairs = [w.partition('=')[::2] for w in parts]
    for key, dummy in pairs:
        if not is_env_key(key):
            ins.fail('ENV: invalid variable name %r' % key)
    return [list(p) for p in pairs]


def _workdir(ins, words):
    if ins.rest.startswith('['):
        ins.fail('WORKDIR takes a path, not a JSON array')
    return words(ins.rest, False)


def _label(ins, words):
    """LABEL key=value ...: recorded in the image's config, as Docker does."""
    parts = words(ins.rest)
    if any('=' not in w or not w.partition('=')[0] for w in parts):
        ins.fail('LABEL needs key=value for every entry')
    return [list(w.partition('=')[::2]) for w in parts]


def _expose(ins, words):
    """EXPOSE 80 8080/tcp 53/udp 7000-7002: recorded (inspect shows them), published only when asked."""
    ports = []
    for word in words(ins.rest):
        port, dummy, protocol = word.partition('/')
        first, dash, last = port.partition('-')
        numbers = (first, last) if dash else (first,)
        if not all(n.isdigit() and 0 < int(n) < 65536 for n in numbers) or (protocol or 'tcp') not in ('tcp', 'udp') \
                or int(numbers[-1]) - int(numbers[0]) not in range(0, 1024):
            ins.fail('EXPOSE: %r is not a port such as 80, 8080/tcp, 53/udp or 7000-7002' % word)
        ports.extend('%d/%s' % (n, protocol or 'tcp') for n in range(int(numbers[0]), int(numbers[-1]) + 1))
    return ports


def parse_signal(text):
    """SIGTERM, TERM or 15 -> 15; None if it is not a signal."""
    name = str(text).upper()
    name = name[3:] if name.startswith('SIG') else name
    if name.isdigit() and 0 < int(name) < 65:
        return int(name)
    return SIGNALS.get(name)


def _stopsignal(ins, words):
    value = words(ins.rest, False).strip()
    if parse_signal(value) is None:
        ins.fail('STOPSIGNAL: %r is not a signal such as SIGTERM, SIGINT or 15' % value)
    return parse_signal(value)


def check_user(text):
    """name[:group] or uid[:gid]; None if it is not one."""
    user, dummy, group = str(text).strip().partition(':')
    if not user or any(part and not all(c.isalnum() or c in '_.-' for c in part) for part in (user, group)):
        return None
    return str(text).strip()


def _user(ins, words):
    """USER name[:group] or uid[:gid], looked up in the image's /etc/passwd and /etc/group at run."""
    value = words(ins.rest, False)
    if check_user(value) is None:
        ins.fail('USER: %r is not a user name or number, such as student or 1000:1000' % value)
    return check_user(value)


def _volume(ins, words):
    """VOLUME /path ... or VOLUME ["/path", ...]: folders each container gets an anonymous volume for."""
    paths = _json_array(ins, words) if ins.rest.startswith('[') else words(ins.rest)
    for path in paths:
        if not path.startswith('/'):
            ins.fail('VOLUME: %r is not an absolute path' % path)
    return sorted(posixpath.normpath(p) for p in paths)


def _shell(ins, words):
    if not ins.rest.startswith('['):
        ins.fail('SHELL takes a JSON array, such as ["/bin/bash", "-c"]')
    return _json_array(ins)


def parse_duration(text):
    """Docker's durations: 30s, 1m30s, 500ms, 1h; seconds as a float, None if it is not one."""
    units, total, number = {'h': 3600, 'm': 60, 's': 1, 'ms': 0.001, 'us': 1e-6}, 0.0, ''
    text, i = str(text), 0
    while i < len(text):
        if text[i].isdigit() or text[i] == '.':
            number += text[i]
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] in units else text[i]
        if unit not in units or not number or number.count('.') > 1:
            return None
        total, number, i = total + float(number) * units[unit], '', i + len(unit)
    return None if number or not text else total


def _healthcheck(ins, words):
    """HEALTHCHECK [--interval=30s ...] CMD command | NONE: recorded, run by `state: healthy` and `health`."""
    if ins.rest.upper() == 'NONE':
        return {'test': ['NONE']}
    word, dummy, rest = ins.rest.partition(' ')
    if word.upper() != 'CMD' or not rest.strip():
        ins.fail('HEALTHCHECK takes CMD command or NONE')
    check = Instruction(ins.source, ins.lineno, ins.text, 'CMD', rest.strip())
    argv = _command(check, words)
    health = dict(HEALTH_DEFAULTS, test=['CMD-SHELL', check.script] if check.script is not None else ['CMD'] + argv)
    for flag in FLAGS['HEALTHCHECK']:
        for value in ins.flags.get(flag, []):
            if flag == 'retries':
                if not value.isdigit() or int(value) < 1:
                    ins.fail('HEALTHCHECK --retries=%s: use a whole number of at least 1' % value)
                health['retries'] = int(value)
            elif parse_duration(value) is None:
                ins.fail('HEALTHCHECK --%s=%s: use a duration such as 30s, 1m30s or 500ms' % (flag, value))
            else:
                health[flag.replace('-', '_')] = parse_duration(value)
    return health


_ARGUMENTS = {
    'FROM': _from,
    'ARG': _arg,
    'COPY': _copy,
    'ADD': _copy,
    'RUN': _run,
    'ENV': _env,
    'WORKDIR': _workdir,
    'CMD': _command,
    'ENTRYPOINT': _command,
    'SHELL': _shell,
    'USER': _user,
    'LABEL': _label,
    'EXPOSE': _expose,
    'STOPSIGNAL': _stopsignal,
    'VOLUME': _volume,
    'HEALTHCHECK': _healthcheck,
}


def apply_config(config, step):
    """Return the image config after a step that changes it (ENV, WORKDIR, CMD, ENTRYPOINT, ...)."""
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
    elif step.command == 'SHELL':
        config['shell'] = step.args
    elif step.command == 'HEALTHCHECK':
        config['healthcheck'] = None if step.args['test'] == ['NONE'] else step.args
    check_config(dict((k, v) for k, v in config.items() if k != 'cmd_here'), '%s:%d' % (step.source, step.lineno))
    return config


# -- an image's config, as apply_config makes it ----------------------------------------------------
def _strings(value):
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _absolute(value):
    return isinstance(value, str) and value.startswith('/') and posixpath.normpath(value) == value


def _port(value):
    port, dummy, protocol = value.partition('/') if isinstance(value, str) else ('', '', '')
    return port.isdigit() and protocol in ('tcp', 'udp') and value == '%d/%s' % (int(port), protocol) and \
        0 < int(port) < 65536


def _seconds(value):
    return type(value) in (int, float) and 0 <= value < 1e9


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)  # JSON's true is no number


def _health(value):
    """null, or a HEALTHCHECK as _healthcheck records it: what the runtime reads is there, nothing else."""
    if value is None:
        return True
    if not isinstance(value, dict) or not set(HEALTH_READ) <= set(value) <= set(HEALTH_DEFAULTS) | {'test'}:
        return False
    test = value['test']
    return _strings(test) and test[0] in ('CMD', 'CMD-SHELL') and len(test) > 1 and \
        _integer(value['retries']) and value['retries'] >= 1 and \
        all(_seconds(value[k]) for k in value if k not in ('test', 'retries'))


HEALTH_READ = ('test', 'interval', 'timeout', 'start_period', 'retries')
CONFIG_CHECKS = {  # key: (check, what it must be)
    'env': (lambda v: isinstance(v, list) and all(
        isinstance(e, str) and '=' in e and is_env_key(e.partition('=')[0]) for e in v), 'a list of KEY=VALUE'),
    'cmd': (lambda v: v is None or _strings(v), 'null or a non-empty list of strings'),
    'entrypoint': (lambda v: v is None or _strings(v), 'null or a non-empty list of strings'),
    'shell': (_strings, 'a non-empty list of strings'),
    'workdir': (lambda v: v is None or _absolute(v), 'an absolute, normalised path'),
    'user': (lambda v: v is None or isinstance(v, str) and check_user(v) == v, 'user[:group] or uid[:gid]'),
    'labels': (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
               'an object of strings'),
    'exposed': (lambda v: isinstance(v, list) and all(_port(p) for p in v), 'a list of ports such as 80/tcp'),
    'volumes': (lambda v: isinstance(v, list) and all(_absolute(p) for p in v), 'a list of absolute paths'),
    'stop_signal': (lambda v: v is None or _integer(v) and 0 < v < 65, 'a signal number from 1 to 64'),
    'healthcheck': (_health, 'null or a HEALTHCHECK as Conductor records it (test, interval, timeout, start_period, '
                             'start_interval, retries)'),
}


def _texts(value):
    if isinstance(value, dict):
        value = list(value) + list(value.values())
    return [t for v in value for t in _texts(v)] if isinstance(value, list) else [value]


def check_config(config, where):
    """Refuse an image config whose values Conductor would not make: the build checks every config it
    makes (apply_config), load the config an archive brings. One clear error naming the value."""
    if not isinstance(config, dict):
        raise ConductorError('%s: the image config is not an object' % where)
    for key, value in sorted(config.items()):
        check, form = CONFIG_CHECKS.get(key, (None, None))
        if check is None:
            raise ConductorError('%s: the image config has the unknown key %r' % (where, key))
        if not check(value) or any(isinstance(t, str) and '\0' in t for t in _texts(value)):
            text = repr(value)
            raise ConductorError('%s: the image config\'s %s is %s: it must be %s'
                                 % (where, key, text if len(text) < 80 else text[:76] + '...', form))
    return config
