# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):
    # The option and requirements every conductor module shares.
    DOCUMENTATION = r'''
options:
  root:
    description:
      - The state root, the folder that holds Conductor's images, layers, bases and containers.
      - Defaults to E(CONDUCTOR_ROOT) on the managed host, else C(ROOT) in C(/etc/conductor/conductor.conf),
        else C(/var/lib/conductor).
    type: path
requirements:
  - Linux with overlayfs and namespaces, run as root (C(become=true)).
  - Python 3.9 or newer, and Lua 5.3 with luaposix (Debian's and Ubuntu's lua5.3 and lua-posix), on the managed host.
'''
