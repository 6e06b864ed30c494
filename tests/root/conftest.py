# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration tests: real debootstrap, overlayfs and namespaces, as root, each test in its own state root.

The fixtures are in tests/conftest.py, shared with tests/reliability.
"""
import os

import pytest

if os.geteuid() != 0:
    pytest.skip('integration tests need root (namespaces, overlayfs, debootstrap)', allow_module_level=True)


@pytest.fixture(scope='session', autouse=True)
def in_a_network_of_its_own(private_network):  # pylint: disable=unused-argument
    """Every test of this suite runs in the test run's own network namespace: RUN steps make veths, chains and
    ip_forward where their build runs, never in the machine's."""


def pytest_configure(config):
    config.addinivalue_line('markers', 'one_backend: the test does not depend on the firewall backend, so it runs on '
                                       'nftables alone (CONDUCTOR_BOTH_BACKENDS=1 runs it on both)')


def pytest_collection_modifyitems(config, items):
    """A one_backend test of a file parametrized over both firewall backends runs on nftables alone: make test
    stays under 30 minutes. CONDUCTOR_BOTH_BACKENDS=1 runs every one on both."""
    if os.environ.get('CONDUCTOR_BOTH_BACKENDS'):
        return
    dropped = [item for item in items if item.get_closest_marker('one_backend')
               and getattr(item, 'callspec', None) and item.callspec.params.get('netlab') == 'iptables']
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
