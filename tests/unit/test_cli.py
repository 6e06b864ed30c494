# SPDX-License-Identifier: GPL-3.0-or-later
import os
import subprocess
import sys

import pytest

import helpers


def cli(*args, root):
    return subprocess.run([sys.executable, helpers.CLI, '--root', str(root)] + list(args),
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize('command', ['build', 'images', 'rmi', 'rmcache'])
def test_help_on_every_command(command, tmp_path):
    result = cli(command, '--help', root=tmp_path)
    assert result.returncode == 0 and 'usage: conductor %s' % command in result.stdout


@pytest.mark.parametrize('args, message', [
    (['frobnicate'], "conductor: error: unknown command 'frobnicate'"),
    (['build'], 'conductor build: error: missing NAME'),
    (['build', 'x', 'missing/Conductorfile'], 'conductor build: cannot read Conductorfile missing/Conductorfile'),
    (['build', 'Bad/Name'], "conductor build: invalid image reference 'Bad/Name'"),
    (['rmi', 'nosuch'], "conductor rmi: no image named 'nosuch'"),
])
def test_errors_are_one_line(args, message, tmp_path):
    result = cli(*args, root=tmp_path / 'root')
    assert result.returncode != 0
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count('\n') == 1


@pytest.mark.parametrize('args', [['ps'], ['images'], ['exec', 'nothing', '--', 'true'], ['run', 'x', 'y']])
def test_commands_without_network_do_not_import_pyroute2_or_iptc(args, tmp_path):
    """pyroute2, python-iptables and python3-nftables cost about 150 ms to import: run, exec and ps must not pay it."""
    result = subprocess.run([sys.executable, '-X', 'importtime', helpers.CLI, '--root', str(tmp_path)] + args,
                            capture_output=True, text=True, check=False)
    imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time:')]
    assert imported and not [m for m in imported if m.split('.')[0] in ('pyroute2', 'iptc', 'nftables')]
    assert not [m for m in imported if m in ('re', 'json', 'json.decoder', 'hashlib')], \
        're (and json, which loads it) cost run, exec and ps 10 to 30 ms: the state files go through _common.loads'


def test_build_finds_a_dockerfile_and_takes_f(tmp_path):
    """No file given: ./Conductorfile, else ./Dockerfile, else ./Containerfile; -f names one."""
    work = tmp_path / 'ctx'
    work.mkdir()
    (work / 'Dockerfile').write_text('FROM debian:potato\n')  # fails fast, before any debootstrap
    (work / 'Other').write_text('FROM ubuntu:hardy\n')

    def run(*args):
        return subprocess.run([sys.executable, helpers.CLI, '--root', str(tmp_path / 'root')] + list(args),
                              capture_output=True, text=True, check=False, cwd=str(work))
    assert "unknown debian tag 'potato'" in run('build', 'x').stderr
    assert "unknown ubuntu tag 'hardy'" in run('build', 'x', '-f', 'Other').stderr
    assert 'give the file once' in run('build', 'x', 'Other', '-f', 'Other').stderr


@pytest.mark.parametrize('args, message', [
    (['run', '--privileged=false', 'img', 'x'], "conductor run: error: option --privileged takes no value, got 'false'"),
    (['run', '-d=1', 'img', 'x'], "conductor run: error: option -d takes no value, got '1'"),
    (['run', '-ix', 'img', 'x'], 'conductor run: error: unknown option -x'),
    (['stop'], 'conductor stop: error: give the containers to stop, or --all'),
    (['rm'], 'conductor rm: error: give the containers to remove'),
    (['frob'], "use one of build, pull, push, login, logout, images, save, load, rmi, rmcache, run, start, restore, update, volume, exec"),
])
def test_usage_errors_exit_2_with_error(args, message, tmp_path):
    """A true/false flag given a value is an error, never true (--privileged=false must not be privileged)."""
    result = cli(*args, root=tmp_path / 'root')
    assert result.returncode == 2 and message in result.stderr and ': error: ' in result.stderr, result.stderr
    assert '_restart' not in result.stderr, 'the internal command is never offered'


def test_short_flags_combine_and_take_their_values_attached():
    sys.path.insert(0, os.path.dirname(helpers.CLI))
    import conductor_cli
    args = conductor_cli.parse(['run', '-dt', '-eFOO=bar', '-e', 'A=b', '-u0', 'img', 'name', '--', 'ls', '-l'])
    assert (args.detach, args.tty, args.interactive, args.env, args.user) == (True, True, False, ['FOO=bar', 'A=b'], '0')
    assert (args.image, args.name, args.command) == ('img', 'name', ['ls', '-l'])
    args = conductor_cli.parse(['run', '--name', 'web', '-it', 'img', 'python3', '-m', 'http.server'])
    assert (args.image, args.name, args.command) == ('img', 'web', ['python3', '-m', 'http.server'])
    assert (args.interactive, args.tty) == (True, True)


def test_help_version_and_a_closed_pipe(tmp_path):
    assert cli('help', 'stop', root=tmp_path).stdout == cli('stop', '--help', root=tmp_path).stdout
    assert cli('--version', root=tmp_path).stdout.startswith('conductor ')
    for line in cli('run', '--help', root=tmp_path).stdout.splitlines():  # a long option's text starts below it
        assert not line.startswith('  -') or len(line) <= 22 or line[22:23] != ' ' or line[21] == ' ', line
    closed = subprocess.run('%s %s --root %s help run | head -c0' % (sys.executable, helpers.CLI, tmp_path),
                            shell=True, capture_output=True, text=True, check=False, executable='/bin/bash')
    assert closed.stderr == ''
