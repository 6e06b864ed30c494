# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A container's disk limit (run --storage-size) with project quotas, as Docker's overlay2 over XFS with pquota.

    require(folder)          the file system of the state root enforces project quotas, or one clear error
    assign(folder, dirs)     a project ID nothing on that file system uses, given to the container's upper and
                             work folders with the inherit flag, before anything is written in them
    set_limit(folder, project, size)   the project's block hard limit (0: none), changed live
    release(folder, project)           the limit cleared when the container is removed

Everything the container writes lands in its upper folder (copy-ups go through work), so it counts
against its project; a write past the limit fails with EDQUOT, "Disk quota exceeded", inside it.
"""

import os

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, human_size, mounts, parse_size
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls as sys_

PROJECT_FIRST = 100000  # above the small numbers admins give their own projects in /etc/projid
PROJECT_LAST = 1 << 31
MIN_SIZE = 1 << 20


def parse_storage_size(value):
    """'1g', '512m' or a number of bytes -> bytes; None stays None (no limit)."""
    return parse_size(value, 'storage size', MIN_SIZE, '1m')


def _open(folder):
    while not os.path.isdir(folder):  # the state root may not be made yet: its file system is its parent's
        folder = os.path.dirname(folder)
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def filesystem(path, mountinfo=None):
    """(type, source, mount point) of the file system path is on, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    best = ('unknown', '?', '/')
    for point, fstype, source, dummy in mounts(mountinfo):
        inside = path == point or path.startswith(point.rstrip('/') + '/')
        if inside and len(point) >= len(best[2]):
            best = (fstype, source, point)
    return best


def require(folder):
    """Refuse a storage limit where it cannot be enforced, naming the file system and the fix."""
    fd = _open(folder)
    try:
        enforced = sys_.project_limits_enforced(fd)
    except OSError:  # ENOSYS: no quotas on it at all; ENOTTY, EINVAL: a file system without them
        enforced = False
    finally:
        os.close(fd)
    if not enforced:
        fstype, source, point = filesystem(folder)
        raise ConductorError(
            'a storage size limit needs project quotas, but %s is on %s (%s, mounted at %s) without them: mount it '
            'with prjquota (ext4: tune2fs -O project,quota first) or use XFS mounted with pquota, on a kernel with '
            'quota support; or leave the storage size out' % (folder, fstype, source, point))


def assign(folder, dirs):
    """A project ID with no files and no limit on folder's file system, given to each of dirs (empty folders)."""
    fd = _open(folder)
    try:
        project = next(p for p in range(PROJECT_FIRST, PROJECT_LAST) if sys_.get_project_quota(fd, p) == (0, 0, 0))
    finally:
        os.close(fd)
    for path in dirs:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sys_.set_project(dir_fd, project)
        finally:
            os.close(dir_fd)
    return project


def usage(folder, project):
    """Bytes the project holds now."""
    fd = _open(folder)
    try:
        return sys_.get_project_quota(fd, project)[1]
    finally:
        os.close(fd)


def check_size(folder, project, size):
    """Refuse a limit below what the project holds already."""
    used = usage(folder, project)
    if size and size < used:
        raise ConductorError('invalid storage size %s: the container already holds %s in its own layer; give a '
                             'larger size, or delete files in it first' % (human_size(size), human_size(used)))


def set_limit(folder, project, size):
    """The project's block hard limit, live (check_size first, to refuse one below what it holds)."""
    fd = _open(folder)
    try:
        sys_.set_project_quota(fd, project, size or 0)
    finally:
        os.close(fd)


def release(folder, project):
    """Clear a removed container's limit, so its project ID is free again. Quotas turned off since: nothing to do."""
    try:
        set_limit(folder, project, 0)
    except OSError:
        pass
