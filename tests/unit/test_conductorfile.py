# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import (
    apply_config, check_config, expand, lex, parse, parse_duration, parse_file, with_shell)


def test_docker_syntax():
    steps = parse('''# a comment
FROM debian:bookworm
copy a b /dst/
RUN apt-get update && \\
    # comments inside a continuation are dropped, as in Docker
    apt-get install -y curl
RUN ["echo", "hi"]
ENV A=1 B="two words"
ENV LEGACY some value
WORKDIR /app
WORKDIR sub
CMD ["python3", "app.py"]
''', 'Conductorfile')
    assert [s.command for s in steps] == ['FROM', 'COPY', 'RUN', 'RUN', 'ENV', 'ENV', 'WORKDIR', 'WORKDIR', 'CMD']
    assert steps[0].args == {'image': 'debian:bookworm', 'name': None}
    assert steps[1].args == {'sources': ['a', 'b'], 'dest': '/dst/'}
    assert steps[2].args == ['/bin/sh', '-c', 'apt-get update && apt-get install -y curl']
    assert steps[2].lineno == 4
    assert steps[3].args == ['echo', 'hi']
    assert steps[4].args == [['A', '1'], ['B', 'two words']]
    assert steps[5].args == [['LEGACY', 'some value']]
    config = {}
    for step in steps[4:]:
        config = apply_config(config, step)
    assert config.pop('cmd_here') is True  # the parser's note for a later ENTRYPOINT; Plan drops it
    assert config == {'env': ['A=1', 'B=two words', 'LEGACY=some value'], 'workdir': '/app/sub',
                      'cmd': ['python3', 'app.py']}


def test_shell_form_cmd_runs_through_sh():
    assert parse('FROM x\nCMD echo hi')[1].args == ['/bin/sh', '-c', 'echo hi']
    assert parse('FROM x\nRUN [[ -f x ]] && echo')[1].args == ['/bin/sh', '-c', '[[ -f x ]] && echo'], \
        'not a JSON array of strings: the shell form, as Docker reads it'
    assert parse('FROM x\nRUN [1, 2]')[1].args == ['/bin/sh', '-c', '[1, 2]']


@pytest.mark.parametrize('text, message', [
    ('FROM debian:bookworm\nFORM x', "Conductorfile:2: unknown instruction FORM (expected one of FROM, ARG, COPY, ADD, "
                                     "RUN, ENV, WORKDIR, CMD, ENTRYPOINT, SHELL, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME, "
                                     "HEALTHCHECK): 'FORM x'"),
    ('FROM debian:bookworm\nRUN', "Conductorfile:2: RUN needs arguments: 'RUN'"),
    ('FROM debian:bookworm\nRUN echo \\', 'Conductorfile:2: the file ends inside a line continuation'),
    ('FROM debian:bookworm\nCOPY onlyone', 'Conductorfile:2: COPY needs at least one source and a destination'),
    ('FROM debian:bookworm\nCOPY a b /dst', 'Conductorfile:2: COPY with several sources needs a destination folder'),
    ('FROM debian:bookworm\nCOPY --owner=1 a /b',
     'Conductorfile:2: COPY does not take --owner (its options: --from, --chown, --chmod, --link)'),
    ('FROM debian:bookworm\nCOPY --chmod=rwx a /b', 'Conductorfile:2: COPY --chmod=rwx: use an octal mode'),
    ('FROM debian:bookworm\nCOPY --chown=a:b:c a /b', 'Conductorfile:2: COPY --chown=a:b:c: use user[:group]'),
    ('FROM debian:bookworm\nARG 1BAD=x', "Conductorfile:2: ARG: invalid name '1BAD'"),
    ('FROM debian:bookworm\nARG A-B', "Conductorfile:2: ARG: invalid name 'A-B'"),
    ('FROM debian:bookworm\nSHELL /bin/bash -c', 'Conductorfile:2: SHELL takes a JSON array'),
    ('FROM debian:bookworm\nHEALTHCHECK --interval=soon CMD true', 'Conductorfile:2: HEALTHCHECK --interval=soon: use'),
    ('FROM debian:bookworm\nHEALTHCHECK curl x', 'Conductorfile:2: HEALTHCHECK takes CMD command or NONE'),
    ('FROM debian:bookworm\nRUN --mount=type=secret,target=/s true', 'Conductorfile:2: RUN --mount=type=secret is not'),
    ('FROM debian:bookworm\nRUN --mount=type=cache,target=/c,type=bind,source=/ true',
     "Conductorfile:2: RUN --mount: the option 'type' is given twice"),
    ('FROM debian:bookworm\nRUN --mount=target=/c,dst=/d true',
     "Conductorfile:2: RUN --mount: the option 'target' is given twice"),
    ('FROM debian:bookworm\nRUN <<EOF\necho', 'Conductorfile:2: the heredoc <<EOF never ends'),
    ('FROM debian:bookworm\nCOPY http://example.org/x /x', 'Conductorfile:2: COPY copies from the build context'),
    ('FROM debian:bookworm\nENV 1A=b', "Conductorfile:2: ENV: invalid variable name '1A'"),
    ('FROM debian:bookworm\nENV A=1 B', 'Conductorfile:2: ENV needs KEY=VALUE for every entry'),
    ('RUN echo', 'Conductorfile:1: a Conductorfile must start with FROM'),
    ('ARG A\nRUN echo', 'Conductorfile:2: a Conductorfile must start with FROM (only ARG may come before it)'),
    ('FROM a b', 'Conductorfile:1: FROM takes one image'),
    ('FROM a AS 1x', 'Conductorfile:1: FROM ... AS 1x: a stage name starts with a letter'),
    ('# nothing\n\n', 'Conductorfile: no FROM'),
])
def test_errors_name_file_line_and_text(text, message):
    with pytest.raises(ConductorError) as e:
        parse(text, 'Conductorfile')
    assert str(e.value).startswith(message)


def test_missing_file(tmp_path):
    with pytest.raises(ConductorError, match='cannot read Conductorfile .*missing: No such file'):
        parse_file(str(tmp_path / 'missing'))


def test_entrypoint_user_label_expose_stopsignal():
    config = {}
    for step in parse('FROM debian:bookworm\nCMD ["serve"]\nENTRYPOINT ["/app"]\nUSER student:staff\n'
                      'LABEL course=cs695 "lab.week"=3\nEXPOSE 80 53/udp\nSTOPSIGNAL SIGINT\n')[1:]:
        config = apply_config(config, step)
    assert config == {'env': [], 'cmd': ['serve'], 'cmd_here': True, 'entrypoint': ['/app'], 'user': 'student:staff',
                      'labels': {'course': 'cs695', 'lab.week': '3'}, 'exposed': ['53/udp', '80/tcp'], 'stop_signal': 2}
    inherited = apply_config({'cmd': ['old']}, parse('FROM x\nENTRYPOINT ["/new"]\n')[1])
    assert inherited['cmd'] is None, "a parent's CMD goes when ENTRYPOINT is set, as in Docker"
    for text, message in (('USER a b', 'USER:'), ('EXPOSE 99999', 'EXPOSE:'), ('STOPSIGNAL SIGNOPE', 'STOPSIGNAL:'),
                          ('LABEL novalue', 'LABEL needs key=value')):
        with pytest.raises(ConductorError, match=message):
            parse('FROM debian:bookworm\n' + text)


def test_docker_word_rules_and_variables():
    variables = {'X': '1', 'EMPTY': '', 'SPACED': 'a b'}
    assert lex('a "b c" \'$X\' ${X:+y} ${NONE:-z${X}} \\$X $SPACED', variables) == ['a', 'b c', '$X', 'y', 'z1', '$X', 'a b']
    assert lex('${EMPTY:-d} ${EMPTY-d} ${EMPTY:+a} ${EMPTY+a} $X$X ${X}x $', variables) == ['d', '', '', 'a', '11', '1x', '$']
    assert lex('"a  b"  c', None) == ['a  b', 'c'] and lex('$X', None) == ['$X']
    with pytest.raises(ValueError, match='never closed'):
        lex('"open', {})
    with pytest.raises(ValueError, match='is not a variable reference'):
        lex('${X/a/b}', variables)


def test_variables_are_expanded_where_docker_expands_them():
    steps = parse('ARG V=12\nFROM debian:${V}-slim AS build\nARG USERNAME\nENV HOME_DIR=/home/${USERNAME:-student} '
                  'WHO="$USERNAME x"\nWORKDIR ${HOME_DIR}/app\nRUN echo $HOME_DIR\nEXPOSE ${PORT:-80}\n')
    assert [s.args is None for s in steps] == [False, True, False, True, True, False, True]
    assert steps[5].args == ['/bin/sh', '-c', 'echo $HOME_DIR'], 'RUN leaves variables to the shell'
    values = {'V': '12', 'USERNAME': 'ann', 'HOME_DIR': '/home/ann'}
    assert expand(steps[1], values).args == {'image': 'debian:12-slim', 'name': 'build'}
    assert expand(steps[3], values).args == [['HOME_DIR', '/home/ann'], ['WHO', 'ann x']]
    assert expand(steps[4], values).args == '/home/ann/app'
    assert expand(steps[6], {}).args == ['80/tcp']
    with pytest.raises(ConductorError, match="Conductorfile:2: WORKDIR: A: needs A: 'WORKDIR ..A:.needs A.'"):
        expand(parse('FROM x\nWORKDIR ${A:?needs A}', 'Conductorfile')[1], {})


def test_heredocs_flags_shell_and_healthcheck():
    steps = parse('FROM x\nRUN <<EOF\necho one\necho two\nEOF\nRUN python3 - <<-"PY" && true\n\tprint(1)\n\tPY\n'
                  'COPY --chmod=0755 --chown=app:app <<\'EOF\' /usr/local/bin/hello\n#!/bin/sh\necho $WHO\nEOF\n'
                  'SHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nRUN --mount=type=cache,target=/var/cache/apt '
                  '--network=none apt-get update\n'
                  'HEALTHCHECK --interval=1m30s --timeout=500ms --retries=5 CMD ["curl", "-f", "http://localhost/"]\n'
                  'HEALTHCHECK NONE\n')
    assert steps[1].args == ['/bin/sh', '-c', 'echo one\necho two\n'] and steps[1].lineno == 2
    assert steps[2].args == ['/bin/sh', '-c', 'python3 - <<-"PY" && true\nprint(1)\nPY']
    assert steps[3].args == {'sources': [], 'dest': '/usr/local/bin/hello', 'chown': 'app:app', 'chmod': '0755',
                             'inline': [['EOF', '#!/bin/sh\necho $WHO\n']]}
    assert steps[3].lineno == 9 and steps[4].args == ['/bin/bash', '-eo', 'pipefail', '-c']
    assert with_shell(steps[5], steps[4].args) == ['/bin/bash', '-eo', 'pipefail', '-c', 'apt-get update']
    assert steps[5].flags == {'mount': ['type=cache,target=/var/cache/apt'], 'network': ['none']}
    assert steps[6].args == {'test': ['CMD', 'curl', '-f', 'http://localhost/'], 'interval': 90.0, 'timeout': 0.5,
                             'start_period': 0.0, 'start_interval': 5.0, 'retries': 5}
    config = apply_config(apply_config({}, steps[6]), steps[4])
    assert config['healthcheck']['retries'] == 5 and config['shell'] == ['/bin/bash', '-eo', 'pipefail', '-c']
    assert apply_config(config, steps[7])['healthcheck'] is None, 'HEALTHCHECK NONE turns off a parent\'s check'
    assert parse_duration('1h2m3s') == 3723 and parse_duration('5') is None and parse_duration('') is None


def built_config(text):
    config = {}
    for ins in parse(text):
        if ins.command not in ('FROM', 'RUN', 'COPY', 'ADD', 'ARG'):
            config = apply_config(config, ins)
    config.pop('cmd_here', None)
    return config


def test_every_config_a_build_makes_passes_the_check_load_uses():
    config = built_config('FROM debian\nENV A=1 B="two words"\nWORKDIR /srv/../app\nUSER 1000:1000\nLABEL a=b c=\n'
                          'EXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nSHELL ["/bin/bash", "-c"]\n'
                          'HEALTHCHECK --interval=5s CMD true\nENTRYPOINT ["/x"]\nCMD echo hi\n')
    assert check_config(config, 'here') == config and config['stop_signal'] == 2 and config['workdir'] == '/app'
    assert check_config(built_config('FROM debian\nHEALTHCHECK NONE\nENTRYPOINT /x\n'), 'here')


@pytest.mark.parametrize('key, value, form', [
    ('stop_signal', 999, 'a signal number from 1 to 64'),
    ('stop_signal', True, 'a signal number from 1 to 64'),
    ('stop_signal', 'SIGTERM', 'a signal number from 1 to 64'),
    ('env', ['1A=x'], 'a list of KEY=VALUE'),
    ('env', ['A=\0'], 'a list of KEY=VALUE'),
    ('cmd', [], 'null or a non-empty list of strings'),
    ('cmd', 'sh', 'null or a non-empty list of strings'),
    ('entrypoint', [1], 'null or a non-empty list of strings'),
    ('workdir', 'relative', 'an absolute, normalised path'),
    ('workdir', '/a/../..', 'an absolute, normalised path'),
    ('user', 'root\nx', 'user[:group] or uid[:gid]'),
    ('labels', {'a': 1}, 'an object of strings'),
    ('exposed', ['99999/tcp'], 'a list of ports such as 80/tcp'),
    ('exposed', ['80/sctp'], 'a list of ports such as 80/tcp'),
    ('volumes', ['data'], 'a list of absolute paths'),
    ('shell', [], 'a non-empty list of strings'),
    ('healthcheck', {'test': ['CMD-SHELL', 'true']}, 'null or a HEALTHCHECK'),
    ('healthcheck', {'test': ['NONE'], 'interval': 1, 'timeout': 1, 'start_period': 0, 'retries': 1}, 'null or a'),
    ('healthcheck', {'test': ['CMD', 'x'], 'interval': -1, 'timeout': 1, 'start_period': 0, 'retries': 1}, 'null or'),
    ('healthcheck', {'test': ['CMD', 'x'], 'interval': 1, 'timeout': 1, 'start_period': 0, 'retries': 0}, 'null or'),
])
def test_config_values_no_build_makes_are_refused(key, value, form):
    with pytest.raises(ConductorError) as error:
        check_config({'env': [], key: value}, 'the archive')
    assert str(error.value).startswith("the archive: the image config's %s is " % key) and form in str(error.value)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ConductorError, match="the archive: the image config has the unknown key 'privileged'"):
        check_config({'privileged': True}, 'the archive')
