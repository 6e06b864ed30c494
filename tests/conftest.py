# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the suites that need root (tests/root, tests/reliability)."""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402
from helpers import Conductor  # noqa: E402

helpers.load_cli()
os.environ['CONDUCTOR_CONFIG'] = os.devnull  # the machine's own conductor.conf must not shape the tests


@pytest.fixture(scope='session')
def base_key():
    return helpers.ensure_base()


@pytest.fixture(scope='session')
def private_network(base_key):  # pylint: disable=redefined-outer-name,unused-argument
    """The rest of the run in a network namespace of its own (helpers.private_network), once the base is made
    (debootstrap needs the machine's network). The root suites use it for every test (autouse)."""
    helpers.private_network()


@pytest.fixture
def root(tmp_path, base_key):
    path = str(tmp_path / 'root')
    helpers.seed(path)
    yield path
    helpers.stop_all(path)
    leaked = helpers.mounts_under(path)
    helpers.remove_root(path)
    assert not leaked, 'mounts left behind: %s' % leaked


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
def netlab(request, monkeypatch):
    """The private lab (tests/netlab.py). Parametrized indirectly with a firewall backend ('iptables',
    'nftables'), conductor is told to use that one; otherwise it picks one itself (auto)."""
    from netlab import NetLab
    backend = getattr(request, 'param', None)
    if backend:
        monkeypatch.setenv('CONDUCTOR_FIREWALL_BACKEND', backend)
    lab = NetLab(backend)
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
