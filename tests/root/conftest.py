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
