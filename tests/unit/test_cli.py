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
