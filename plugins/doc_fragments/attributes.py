# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):
    # Every conductor module: the action group and the platform.
    DOCUMENTATION = r'''
attributes:
  action_group:
    description: Use C(group/cs695.conductor.conductor) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - cs695.conductor.conductor
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''

    # Modules that change things: full check mode and diff.
    CHECK_DIFF = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
'''

    # Modules whose task may act on an image or container an earlier task makes: a dry run of a playbook.
    CHECK_PENDING = r'''
attributes:
  check_mode:
    details: A dry run of a whole playbook works on a fresh host (see the notes).
notes:
  - In check mode, an image or container that does not exist yet, or a container without a network yet, is taken
    as one an earlier task of the play would make (check mode only pretended to), so that a dry run of a whole
    playbook on a fresh host succeeds and reports what each task would do. Outside check mode it is the usual error.
'''

    # Modules that only read.
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: This module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: This module only reads.
'''
