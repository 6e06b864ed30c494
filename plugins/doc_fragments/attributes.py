# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Modules that change things: full check mode and diff.
    DOCUMENTATION = r'''
attributes:
  action_group:
    description: Use C(group/cs695.conductor.conductor) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - cs695.conductor.conductor
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
'''

    # Modules that only read.
    INFO_MODULE = r'''
attributes:
  action_group:
    description: Use C(group/cs695.conductor.conductor) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - cs695.conductor.conductor
  check_mode:
    support: full
    details: This module only reads.
  diff_mode:
    support: N/A
    details: This module only reads.
  platform:
    support: full
    platforms: posix
'''
