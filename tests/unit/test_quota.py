# SPDX-License-Identifier: GPL-3.0-or-later
"""--storage-size without root: its syntax, the planning of a change, and _quota's decisions against a fake
kernel (the quota calls themselves run in tests/root/test_storage_quota.py)."""
import errno
import struct

import pytest

import helpers
from ansible_collections.cs695.conductor.plugins.module_utils import _options, _planning, _quota, _syscalls
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

MOUNTINFO = ('22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n'
             '40 22 7:3 / /srv/lab rw,relatime shared:9 - xfs /dev/loop3 rw,inode64,prjquota\n'
             '41 22 0:50 / /srv/lab/scratch rw,relatime shared:10 - tmpfs tmpfs rw\n')


@pytest.mark.parametrize('text, size', [('1g', 1 << 30), ('20m', 20 << 20), ('1m', 1 << 20), ('512MB', 512 << 20),
                                        (str(5 << 20), 5 << 20), (None, None), ('', None)])
def test_storage_sizes(text, size):
    assert _quota.parse_storage_size(text) == size


@pytest.mark.parametrize('text', ['0', '-1g', '12q', 'g', '100k', 'lots'])
def test_bad_storage_sizes(text):
    with pytest.raises(ConductorError, match=r"^invalid storage size '%s': give a size of at least 1m, such as 512m "
                                             r"or 2g$" % text):
        _quota.parse_storage_size(text)


@pytest.mark.parametrize('path, expected', [
    ('/var/lib/conductor', ('ext4', '/dev/vda', '/')),
    ('/srv/lab/root/containers', ('xfs', '/dev/loop3', '/srv/lab')),
    ('/srv/lab/scratch/root', ('tmpfs', 'tmpfs', '/srv/lab/scratch')),
    ('/srv/laboratory', ('ext4', '/dev/vda', '/')),
])
def test_the_file_system_of_a_path_is_its_longest_mount_point(path, expected, monkeypatch):
    monkeypatch.setattr(_quota.os.path, 'realpath', lambda p: p)
    monkeypatch.setattr(_quota.os.path, 'exists', lambda p: True)
    assert _quota.filesystem(path, MOUNTINFO) == expected


def test_no_project_quotas_is_one_error_naming_the_file_system_and_the_fix(tmp_path, monkeypatch):
    def no_quotas(fd):
        raise OSError(errno.ENOSYS, 'quotactl: Function not implemented')
    monkeypatch.setattr(_syscalls, 'project_limits_enforced', no_quotas)
    monkeypatch.setattr(_quota, 'filesystem', lambda path: ('ext4', '/dev/vda', '/'))
    folder = str(tmp_path / 'root' / 'containers')  # not made yet: its parent's file system counts
    with pytest.raises(ConductorError) as error:
        _quota.require(folder)
    assert str(error.value) == (
        'a storage size limit needs project quotas, but %s is on ext4 (/dev/vda, mounted at /) without them: mount it '
        'with prjquota (ext4: tune2fs -O project,quota first) or use XFS mounted with pquota, on a kernel with quota '
        'support; or leave the storage size out' % folder)
    monkeypatch.setattr(_syscalls, 'project_limits_enforced', lambda fd: False)  # accounted, not enforced
    with pytest.raises(ConductorError, match='needs project quotas'):
        _quota.require(folder)
    monkeypatch.setattr(_syscalls, 'project_limits_enforced', lambda fd: True)
    _quota.require(folder)


def test_a_new_container_gets_the_first_project_nothing_uses(tmp_path, monkeypatch):
    used = {_quota.PROJECT_FIRST: (0, 4096, 1), _quota.PROJECT_FIRST + 1: (20 << 20, 0, 0)}  # files; a limit alone
    given = []
    monkeypatch.setattr(_syscalls, 'get_project_quota', lambda fd, project: used.get(project, (0, 0, 0)))
    monkeypatch.setattr(_syscalls, 'set_project', lambda fd, project: given.append(project))
    (tmp_path / 'upper').mkdir()
    (tmp_path / 'work').mkdir()
    assert _quota.assign(str(tmp_path), [str(tmp_path / 'upper'), str(tmp_path / 'work')]) == _quota.PROJECT_FIRST + 2
    assert given == [_quota.PROJECT_FIRST + 2] * 2


def test_a_limit_below_what_the_container_holds_is_refused(tmp_path, monkeypatch):
    limits = []
    monkeypatch.setattr(_syscalls, 'get_project_quota', lambda fd, project: (20 << 20, 30000000, 12))
    monkeypatch.setattr(_syscalls, 'set_project_quota', lambda fd, project, size: limits.append((project, size)))
    with pytest.raises(ConductorError, match=r'^invalid storage size 10.0MB: the container already holds 30.0MB in its '
                                             r'own layer; give a larger size, or delete files in it first$'):
        _quota.check_size(str(tmp_path), 100000, 10000000)
    _quota.check_size(str(tmp_path), 100000, 40 << 20)
    _quota.set_limit(str(tmp_path), 100000, 40 << 20)
    _quota.set_limit(str(tmp_path), 100000, None)
    assert limits == [(100000, 40 << 20), (100000, 0)]


def test_the_quota_block_is_the_kernels_if_dqblk(monkeypatch):
    calls = []
    monkeypatch.setattr(_syscalls, 'quotactl_fd', lambda fd, command, project, buffer: calls.append(
        (command, project, buffer.raw)))
    _syscalls.set_project_quota(3, 100007, (20 << 20) + 1)
    command, project, raw = calls[0]
    assert (command, project, len(raw)) == (_syscalls.Q_SETQUOTA, 100007, 72)
    fields = struct.unpack('QQQQQQQQI4x', raw)
    assert fields[0] == (20 << 10) + 1 and fields[1:8] == (0,) * 7 and fields[8] == _syscalls.QIF_BLIMITS


def test_a_changed_storage_size_is_applied_in_place_once_the_container_has_one():
    spec = {key: None for key in _options.COMPARED}
    sized = dict(spec, storage_size=20 << 20)
    assert _planning.container_actions(sized, True, dict(sized, storage_size=1 << 30), 'started') == \
        (['updated'], ['storage_size'])
    assert _planning.container_actions(sized, True, spec, 'started') == (['updated'], ['storage_size'])
    # made without one, its files belong to no project: only a new container can have one
    assert _planning.container_actions(spec, True, sized, 'started') == (['recreated', 'started'], ['storage_size'])


def test_the_cli_takes_storage_size_on_run_and_update():
    cli = helpers.load_cli()
    args = cli.parse(['run', '--storage-size', '1g', '-d', 'img', 'c1'])
    assert args.storage_size == '1g' and args.detach
    assert cli.parse(['update', '--storage-size=2g', 'c1']).storage_size == '2g'
