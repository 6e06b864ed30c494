"""Integration tests: real debootstrap, overlayfs and namespaces, as root, each test in its own state root.

The fixtures are in tests/conftest.py, shared with tests/reliability.
"""
import os

import pytest

if os.geteuid() != 0:
    pytest.skip('integration tests need root (namespaces, overlayfs, debootstrap)', allow_module_level=True)
