import pytest

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import apply_config, parse, parse_file


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
    assert steps[0].args == 'debian:bookworm'
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


@pytest.mark.parametrize('text, message', [
    ('FROM debian:bookworm\nFORM x', "Conductorfile:2: unknown instruction FORM (expected one of FROM, COPY, RUN, "
                                     "ENV, WORKDIR, CMD, VOLUME, ENTRYPOINT, USER, LABEL, EXPOSE, STOPSIGNAL): 'FORM x'"),
    ('FROM debian:bookworm\nRUN', "Conductorfile:2: RUN needs arguments: 'RUN'"),
    ('FROM debian:bookworm\nRUN ["echo", ', 'Conductorfile:2: RUN: invalid JSON array'),
    ('FROM debian:bookworm\nRUN [1, 2]', 'Conductorfile:2: RUN: the JSON form must be a non-empty array of strings'),
    ('FROM debian:bookworm\nRUN echo \\', 'Conductorfile:2: the file ends inside a line continuation'),
    ('FROM debian:bookworm\nCOPY onlyone', 'Conductorfile:2: COPY needs at least one source and a destination'),
    ('FROM debian:bookworm\nCOPY a b /dst', 'Conductorfile:2: COPY with several sources needs a destination folder'),
    ('FROM debian:bookworm\nCOPY --chown=1 a /b', 'Conductorfile:2: COPY options (--chown=1) are not supported'),
    ('FROM debian:bookworm\nENV 1A=b', "Conductorfile:2: ENV: invalid variable name '1A'"),
    ('FROM debian:bookworm\nENV A=1 B', 'Conductorfile:2: ENV needs KEY=VALUE for every entry'),
    ('RUN echo', 'Conductorfile:1: a Conductorfile must start with FROM'),
    ('FROM a\nFROM b', 'Conductorfile:2: a Conductorfile may have only one FROM'),
    ('FROM a b', 'Conductorfile:1: FROM takes one image'),
    ('# nothing\n\n', 'Conductorfile: no instructions'),
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
