# SPDX-License-Identifier: GPL-3.0-or-later
"""Reliability and security suite: fault injection, concurrency, bad input, escape probes.

A quick profile runs in make test; CONDUCTOR_RELIABILITY=long runs the long one (100+ faults).
The figures (iterations, faults, inputs, leaks) are printed at the end of the run.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if os.geteuid() != 0:
    pytest.skip('the reliability suite needs root', allow_module_level=True)

from leaks import FIGURES, LONG  # noqa: E402


@pytest.fixture
def figures():
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if any(FIGURES.values()):
        terminalreporter.write_line('reliability (%s profile): %s' % (
            'long' if LONG else 'quick', ', '.join('%s %d' % item for item in FIGURES.items())))


@pytest.fixture(scope='session', autouse=True)
def in_a_network_of_its_own(private_network):  # pylint: disable=unused-argument
    """Every test of this suite runs in the test run's own network namespace: RUN steps make veths, chains and
    ip_forward where their build runs, never in the machine's."""
