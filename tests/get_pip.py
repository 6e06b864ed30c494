# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for the get-pip.py that ansible-test downloads from a host this network cannot reach.

It installs pip from Python's own ensurepip, then what ansible-test asked for, from PyPI.
make sanity puts it where ansible-test looks for its cached copy.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
