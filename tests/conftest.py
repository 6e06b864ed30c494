"""Fixtures shared by the suites that need root (tests/root, tests/reliability)."""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

helpers.load_cli()
os.environ['CONDUCTOR_CONFIG'] = os.devnull  # the machine's own conductor.conf must not shape the tests


@pytest.fixture(scope='session')
def base_key():
    return helpers.ensure_base()


@pytest.fixture
def root(tmp_path, base_key):
    path = str(tmp_path / 'root')
    helpers.seed(path)
    yield path
    helpers.stop_all(path)
    leaked = helpers.mounts_under(path)
    helpers.remove_root(path)
    assert not leaked, 'mounts left behind: %s' % leaked


class Conductor:
    """Runs the CLI on one state root; with netns, inside that network namespace."""

    def __init__(self, root, netns=None):
        self.root, self.netns = root, netns

    def __call__(self, *args, check=True, **kw):
        # nsenter, not ip netns exec: that one mounts a sysfs of its own over /sys, hiding /sys/fs/cgroup
        prefix = ['nsenter', '--net=/run/netns/' + self.netns, '--'] if self.netns else []
        result = subprocess.run(prefix + [sys.executable, helpers.CLI, '--root', self.root] + [str(a) for a in args],
                                capture_output=True, text=True, check=False, **kw)
        if check and result.returncode != 0:
            command = ' '.join(map(str, args))
            raise AssertionError('conductor %s failed (%d):\n%s%s' % (command, result.returncode, result.stdout, result.stderr))
        return result

    def fails(self, *args):
        result = self(*args, check=False)
        assert result.returncode != 0, result.stdout
        assert result.stderr.count('\n') == 1, 'not one line: %r' % result.stderr
        return result.stderr

    def listing(self):
        """Every path under the root, with the mtime of each file: 'nothing changed' means this is equal."""
        entries = []
        for top, dirs, files in os.walk(self.root):
            if top == self.root:  # caches and lock files: what a failed command may leave behind is the rest
                dirs[:] = [d for d in dirs if d not in ('bases', 'seccomp', 'locks')]
            for name in dirs + files:
                path = os.path.join(top, name)
                st = os.lstat(path)
                entries.append((os.path.relpath(path, self.root), 0 if name in dirs else st.st_mtime_ns))
        return sorted(entries)


@pytest.fixture
def conductor(root):
    return Conductor(root)


class Context(type(pathlib.Path())):
    def write(self, text):
        """Write the context's Conductorfile; return its path."""
        (self / 'Conductorfile').write_text(text)
        return str(self / 'Conductorfile')


@pytest.fixture
def context(tmp_path):
    """A build context with an app folder."""
    ctx = Context(str(tmp_path / 'ctx'))
    (ctx / 'app').mkdir(parents=True)
    (ctx / 'app' / 'hello.sh').write_text('#!/bin/sh\necho hello from the app\n')
    os.chmod(str(ctx / 'app' / 'hello.sh'), 0o755)
    (ctx / 'app' / 'data.txt').write_text('data\n')
    return ctx


@pytest.fixture
def netlab():
    from netlab import NetLab
    lab = NetLab()
    yield lab
    lab.close()


@pytest.fixture
def netconductor(root, netlab):
    """The CLI in the lab's host namespace; every container is stopped afterwards."""
    cli = Conductor(root, netlab.host)
    yield cli
    for name in os.listdir(os.path.join(root, 'containers')) if os.path.isdir(os.path.join(root, 'containers')) else []:
        if not name.startswith('.'):
            cli('stop', '-t', '0', name, check=False)
