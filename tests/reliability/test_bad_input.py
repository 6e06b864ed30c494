# SPDX-License-Identifier: GPL-3.0-or-later
"""A corpus of bad input: each case gets one clear error and a non-zero exit, and changes nothing
(the state root listing, the mounts, the links and the iptables rules are compared)."""
import os
import subprocess
import sys

import pytest

from leaks import snapshot

NAMES = [('', 'empty'), ('x' * 64, 'too long'), ('a/b', 'slash'), ('..', 'dot-dot'), ('caf\u00e9', 'unicode'),
         ('-x', 'leading dash'), ('a;rm -rf /', 'semicolon'), ('$(reboot)', 'command substitution'),
         ('a b', 'space'), ('`id`', 'backquote'), ('a|b', 'pipe'), ('*', 'glob')]

CONDUCTORFILES = [
    ('FROM debian:bookworm\nFORM x\n', 'unknown instruction FORM'),
    ('FROM debian:bookworm\nRUN\n', 'RUN needs arguments'),
    ('FROM\n', 'FROM needs arguments'),
    ('FROM debian:bookworm\nCOPY onlyone\n', 'COPY needs at least one source and a destination'),
    ('FROM debian:bookworm\nVOLUME ["/data", \n', 'VOLUME: invalid JSON array'),
    ('FROM debian:bookworm\nSHELL ["sh", 1]\n', 'SHELL: the JSON form must be a non-empty array of strings'),
    ('FROM debian:bookworm\nARG 1X=y\n', "ARG: invalid name '1X'"),
    ('FROM debian:bookworm\nCOPY --from=nosuch /a /b\n', 'nosuch is neither a stage of this file'),
    ('FROM debian:bookworm\nADD --checksum=sha256:0 a /b\n', 'ADD does not take --checksum'),
    ('FROM debian:bookworm\nRUN echo \\\n', 'the file ends inside a line continuation'),
    ('FROM debian:bookworm\nCOPY ../outside /x\n', 'leads out of the build context'),
    ('FROM debian:bookworm\nCOPY /etc/passwd /x\n', 'is an absolute path'),
    ('FROM debian:bookworm\nCOPY escape /x\n', 'leads through a symlink out of the build context'),
    ('FROM debian:bookworm\nCOPY missing.txt /x\n', 'is not in the build context'),
    ('FROM debian:bookworm\nCOPY *.none /x/\n', 'is not in the build context'),
    ('FROM Alpine:3.19\n', "invalid image reference 'Alpine:3.19'"),
    ('FROM debian:potato\n', "unknown debian tag 'potato'"),
    ('FROM ubuntu:hardy\n', "unknown ubuntu tag 'hardy'"),
    ('FROM nosuchimage\n', "no image named 'nosuchimage'"),
    ('RUN echo\n', 'must start with FROM'),
    ('FROM debian:bookworm AS a\nFROM a AS a\n', 'a stage named a is already defined'),
    ('FROM debian:bookworm AS a\nCOPY --from=a /x /y\n', 'a cycle of stages (a -> a)'),
    ('FROM debian:bookworm\nENV 1X=y\n', "ENV: invalid variable name '1X'"),
    ('FROM debian:bookworm\nCOPY --chown=a:b:c a /b\n', 'COPY --chown=a:b:c: use user[:group]'),
    ('# only a comment\n', 'no FROM'),
]

PORTS = [
    (['-e', '80-0'], "invalid host port '0'"), (['-e', '0-80'], "invalid container port '0'"),
    (['-e', '80-65536'], "invalid host port '65536'"), (['-p', '65536:80'], "invalid host port '65536'"),
    (['-e', 'abc-80'], "invalid container port 'abc'"), (['-p', '80:abc'], "invalid container port 'abc'"),
    (['-e', '80'], "invalid -e '80'"), (['-p', '80'], "invalid -p '80'"), (['-e', '-1-80'], 'invalid'),
    (['-e', '80-81', '-e', '90-81'], 'host port 81/tcp is given twice'),
    (['-e', '80-81', '-p', '81:90'], 'host port 81/tcp is given twice'),
    (['-e', '80-7070/sctp'], "invalid protocol 'sctp'"),
    (['-e', '80-9000'], "host port 9000/tcp is already published by container 'pub'"),
    (['-e', '80-9100'], 'host port 9100/tcp is in use by a program listening'),
]


@pytest.fixture
def corpus(netconductor, netlab, context, tmp_path):
    """A state with an image, a networked running container, an exited one, and an idle running one."""
    cli = netconductor
    cli('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    cli('run', '-d', 'img', 'pub')
    cli('addnetwork', '-e', '80-9000', 'pub')
    cli('run', '-d', 'img', 'idle')
    cli('run', 'img', 'done', '--', 'true')
    (tmp_path / 'outside').write_text('secret')
    os.symlink(str(tmp_path / 'outside'), str(context / 'escape'))
    listener = subprocess.Popen(['ip', 'netns', 'exec', netlab.host, sys.executable, '-c',
                                 'import socket, time; s = socket.socket(); s.bind(("0.0.0.0", 9100)); s.listen(); '
                                 'print("up", flush=True); time.sleep(120)'], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline() == 'up\n'
    yield cli
    listener.kill()
    listener.wait()


def cases(context):
    for name, why in NAMES:
        if name != 'a/b':  # a reference (docker.io/a/b:latest), which an image may be named by
            refused = ('invalid image name', 'invalid image reference', 'unknown option', why)
            yield ['build', name, context.write('FROM debian:bookworm\n')], refused
        yield ['run', 'img', name], ('invalid container name', 'unknown option', why)
        yield ['stop', name], ('invalid container name', 'no container named', 'unknown option', why)
    for text, message in CONDUCTORFILES:
        yield ['build', 'bad', context.write(text)], (message,)
    for args, message in PORTS:
        yield ['addnetwork'] + args + ['idle'], (message,)
    yield ['run', 'nosuch', 'c1'], ("no image named 'nosuch'",)
    yield ['run', 'img', 'pub'], ("a container named 'pub' already exists",)
    yield ['run', '-e', 'NOEQUALS', 'img', 'c1'], ("invalid environment entry 'NOEQUALS'",)
    yield ['run', '-e', '1X=y', 'img', 'c1'], ("invalid environment entry '1X=y'",)
    yield ['run', '--hostname', 'a;b', 'img', 'c1'], ("invalid hostname name 'a;b'",)
    yield ['exec', 'done', '--', 'true'], ("container 'done' is not running (exited (0))",)
    yield ['exec', 'ghost', '--', 'true'], ("no container named 'ghost'",)
    yield ['exec', '-e', '=x', 'pub', '--', 'true'], ("invalid environment entry '=x'",)
    for verb in ('stop', 'logs', 'inspect', 'start', 'addnetwork'):
        yield [verb, 'ghost'], ("no container named 'ghost'",)
    yield ['addnetwork', 'done'], ("container 'done' is not running",)
    yield ['peer', 'pub', 'pub'], ("cannot peer container 'pub' with itself",)
    yield ['peer', 'pub', 'idle'], ("container 'idle' has no network: addnetwork idle first",)
    yield ['peer', 'pub', 'ghost'], ("no container named 'ghost'",)
    yield ['rmi', 'ghost'], ("no image named 'ghost'",)
    yield ['rmi', 'img'], ("image 'img' is used by container(s) done, idle, pub",)
    yield ['stop', '-t', 'soon', 'pub'], ('must be a number of seconds',)
    yield ['frobnicate'], ("unknown command 'frobnicate'",)
    yield ['build'], ('missing NAME',)
    yield ['run', 'img'], ('missing NAME',)
    yield ['ps', 'extra'], ("unexpected argument 'extra'",)
    yield ['images', '--bogus'], ('unknown option --bogus',)


def test_bad_input_corpus(corpus, netlab, context, figures):
    cli = corpus
    tried = 0
    for args, messages in cases(context):
        before = snapshot(cli, netlab)
        error = cli.fails(*args)
        after = snapshot(cli, netlab)
        assert any(m in error for m in messages), (args, error)
        assert after == before, 'changed by %r' % (args,)
        tried += 1
    figures['bad inputs tried'] += tried
    assert tried >= 60
