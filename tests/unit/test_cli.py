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
    (['build', 'bad/name'], "conductor build: invalid image name 'bad/name'"),
    (['rmi', 'nosuch'], "conductor rmi: no image named 'nosuch'"),
])
def test_errors_are_one_line(args, message, tmp_path):
    result = cli(*args, root=tmp_path / 'root')
    assert result.returncode != 0
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count('\n') == 1


@pytest.mark.parametrize('args', [['ps'], ['images'], ['exec', 'nothing', '--', 'true'], ['run', 'x', 'y']])
def test_commands_without_network_do_not_import_pyroute2_or_iptc(args, tmp_path):
    """pyroute2 and python-iptables cost about 150 ms to import: run, exec and ps must not pay it."""
    result = subprocess.run([sys.executable, '-X', 'importtime', helpers.CLI, '--root', str(tmp_path)] + args,
                            capture_output=True, text=True, check=False)
    imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time:')]
    assert imported and not [m for m in imported if m.split('.')[0] in ('pyroute2', 'iptc')]
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
