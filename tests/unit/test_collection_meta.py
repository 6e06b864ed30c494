# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection claims no Ansible it is not tested with: meta/runtime.yml's requires_ansible starts at or
above the major.minor of the ansible-core that requirements.txt pins (the one every test runs under)."""
import os
import re

import helpers


def read(*path):
    with open(os.path.join(helpers.CHECKOUT, *path), encoding='utf-8') as f:
        return f.read()


def version(text):
    return tuple(int(part) for part in text.split('.'))


def pinned_core():
    pins = re.findall(r'^ansible-core==([0-9]+(?:\.[0-9]+)+)\s*$', read('requirements.txt'), re.M)
    assert len(pins) == 1, 'requirements.txt must pin ansible-core once (ansible-core==X.Y.Z), found %r' % pins
    return version(pins[0])


def required_lower_bound():
    lines = re.findall(r'''^requires_ansible:\s*['"]?([^'"\n]*)['"]?\s*$''', read('meta', 'runtime.yml'), re.M)
    assert len(lines) == 1, 'meta/runtime.yml must have one requires_ansible line, found %r' % lines
    bounds = re.findall(r'>=\s*([0-9]+(?:\.[0-9]+)*)', lines[0])
    assert len(bounds) == 1, 'requires_ansible must have one lower bound (>=X.Y.Z), got %r' % lines[0]
    return version(bounds[0])


def test_requires_ansible_is_no_lower_than_the_tested_core():
    tested, required = pinned_core()[:2], required_lower_bound()
    assert required[:2] >= tested, (
        'meta/runtime.yml requires_ansible starts at %s, but only ansible-core %s (requirements.txt) is tested'
        % ('.'.join(map(str, required)), '.'.join(map(str, tested))))
