# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""python-iptables and python3-nftables, imported the quick way. Only the network commands call these.

Each patch below is a workaround for one library's import cost, not for a bug: if the library stops
paying that cost, drop the patch. How to check that each one still pays for itself:

    .venv/bin/python -X importtime -c 'import iptc'       (against import_iptc())

and bench/network.py prints both timings side by side ("import" rows). pyroute2 is no longer used: _netlink
makes the few rtnetlink requests conductor needs, for a fraction of its 55 to 190 ms import.
"""

import importlib.util
import os
import sys
import types

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

LIBRARY_FOLDERS = ('/usr/lib/%s-linux-gnu' % os.uname().machine, '/lib/%s-linux-gnu' % os.uname().machine,
                   '/usr/lib64', '/lib64', '/usr/lib', '/lib')


def _stub_package(name, missing):
    """An empty package `name` whose submodules import as usual, without running its __init__."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ConductorError('%s, or apply the cs695.conductor.conductor_host role' % missing)
    package = types.ModuleType(name)
    package.__path__, package.__spec__ = list(spec.submodule_search_locations), spec
    return package


def import_iptc():
    """python-iptables, imported the quick way: 7 ms instead of 220.

    Why, one patch per cost:
    - setuptools' distutils shim (a sys.meta_path finder) is skipped: iptc only wants get_python_lib,
      which the standard library's distutils has before Python 3.12. Still needed while setuptools
      installs the shim and Python is older than 3.12.
    - XTABLES_LIBDIR is set to the xtables folder: without it iptc runs ldconfig to find it.
    - ctypes.util.find_library is replaced for the import: it runs ldconfig (and gcc) for every
      library, while the usual library folders answer at once.
    - the package's __init__ is skipped: it imports ip6tc and iptc.easy, which conductor
      does not use (1 ms), beside ip4tc, whose names the stub package gets. Still needed while
      `python -X importtime -c 'import iptc'` shows iptc.ip6tc.
    What protects the host from iptc (the tables it would load) is _firewall's, not here: use
    _firewall.import_iptc.
    """
    if 'iptc' in sys.modules:
        return sys.modules['iptc']
    if 'XTABLES_LIBDIR' not in os.environ:
        for folder in [os.path.join(f, 'xtables') for f in LIBRARY_FOLDERS]:
            if os.path.isdir(folder):
                os.environ['XTABLES_LIBDIR'] = folder
                break
    import ctypes.util
    shims = [f for f in sys.meta_path if type(f).__name__ == 'DistutilsMetaFinder'] if sys.version_info < (3, 12) else []
    find_library = ctypes.util.find_library
    for shim in shims:
        sys.meta_path.remove(shim)
    spec = importlib.util.find_spec('iptc')
    beside = [os.path.dirname(spec.submodule_search_locations[0])] if spec else []  # its own libxtwrapper
    ctypes.util.find_library = lambda name: _find_library(name, beside) or find_library(name)
    try:
        iptc = _stub_package('iptc', 'python-iptables is not installed: pip install python-iptables')
        sys.modules['iptc'] = iptc
        from iptc import ip4tc
        iptc.__dict__.update((key, value) for key, value in vars(ip4tc).items() if not key.startswith('_'))
        iptc.Table(iptc.Table.FILTER)
    except Exception as e:  # iptc raises its own errors, or OSError, when libxtables or the kernel says no
        sys.modules.pop('iptc', None)  # the next call tries again
        if isinstance(e, ConductorError):
            raise
        if isinstance(e, ImportError):
            raise ConductorError('python-iptables is not installed (%s): pip install python-iptables, or apply the '
                                 'cs695.conductor.conductor_host role' % e)
        raise ConductorError('the firewall cannot be used through python-iptables (%s): it needs the legacy xtables '
                             'kernel modules (ip_tables, iptable_nat) and libxtables; on an nft-only kernel, load them '
                             'with modprobe ip_tables iptable_nat or use a kernel that has them' % e)
    finally:
        sys.meta_path[:0] = shims
        ctypes.util.find_library = find_library
    return iptc


def _find_library(name, beside):
    """lib<name>.so.N in the usual folders (or lib<name>*.so beside iptc), without running ldconfig."""
    for folder in beside:
        found = sorted(f for f in os.listdir(folder) if f.startswith('lib' + name) and f.endswith('.so'))
        if found:
            return os.path.join(folder, found[0])
    for folder in LIBRARY_FOLDERS:
        try:
            found = sorted(f for f in os.listdir(folder) if f.startswith('lib%s.so.' % name))  # not .so: a linker script
        except OSError:
            continue
        if found:
            return os.path.join(folder, found[0])
    return None


DISTRIBUTION_PACKAGES = ('/usr/lib/python3/dist-packages',)  # where Debian and Ubuntu put python3-nftables


def import_nftables():
    """The netfilter project's own Python binding to libnftables (Debian's python3-nftables): its Nftables class.

    Why not a plain import: the binding is not on PyPI, so a virtualenv without the system's site packages
    does not see it; it is loaded from the distribution's folder instead (it is pure Python over ctypes, so
    any Python 3 can run it). Nothing else is patched: it costs about 6 ms, the library's context included.
    """
    if 'nftables' not in sys.modules:
        try:
            import nftables  # noqa: F401, pylint: disable=unused-import
        except ImportError:
            for folder in DISTRIBUTION_PACKAGES:
                init = os.path.join(folder, 'nftables', '__init__.py')
                if os.path.isfile(init):
                    spec = importlib.util.spec_from_file_location('nftables', init,
                                                                  submodule_search_locations=[os.path.dirname(init)])
                    module = importlib.util.module_from_spec(spec)
                    sys.modules['nftables'] = module
                    try:
                        spec.loader.exec_module(module)
                    except Exception:
                        del sys.modules['nftables']
                        raise
                    break
    if 'nftables' not in sys.modules:
        raise ConductorError('the nftables firewall backend needs python3-nftables (the Python binding of libnftables): '
                             'apt-get install python3-nftables, apply the cs695.conductor.conductor_host role, or set '
                             'FIREWALL_BACKEND=iptables in conductor.conf')
    return sys.modules['nftables'].Nftables
