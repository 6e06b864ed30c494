# SPDX-License-Identifier: GPL-3.0-or-later
"""run --storage-size on real file systems: a loop device of the test's own, made ext4 (and XFS where mkfs.xfs
is installed), mounted in the test's folder and holding its state root. The image's base is bound in
from the test cache (as the other tests hard-link it), so nothing is copied.

Enforcement needs a kernel with quota support (ext4: CONFIG_QFMT_V2, XFS: CONFIG_XFS_QUOTA); where the
prjquota mount is refused, those tests skip and say so. The refusals, the bad input, the project IDs and
the seccomp rule that keeps a container from changing them run everywhere."""
import contextlib
import json
import os
import shutil
import subprocess

import pytest

import helpers
from helpers import Conductor
from ansible_collections.cs695.conductor.plugins.module_utils import _syscalls

KINDS = ['ext4'] + (['xfs'] if shutil.which('mkfs.xfs') else [])
MKFS = {'ext4': ['mkfs.ext4', '-q', '-O', 'quota,project'], 'xfs': ['mkfs.xfs', '-q']}
QUOTA_OPTION = {'ext4': 'prjquota', 'xfs': 'pquota'}
IOCTL = 'open(D, "<", "%s") or die; my $b = pack("x28"); print ioctl(D, %d, $b) ? "ok" : $!+0, "\\n"'
# chattr -P: read the folder's flags (FS_IOC_GETFLAGS) and flip only the inherit flag. Writing all flags at once
# would also clear ext4's extents flag, which ext4 refuses for everyone (EPERM): that says nothing about the filter.
FLIP_INHERIT = ('open(D, "<", "%s") or die; my $b = pack("x8"); ioctl(D, 0x80086601, $b) or die "getflags: $!"; '
                'print ioctl(D, 0x40086602, pack("L x4", unpack("L", $b) ^ 0x20000000)) ? "ok" : $!+0, "\\n"')


@contextlib.contextmanager
def loop_filesystem(folder, kind, options=None, mkfs=None):
    """A fresh file system on a loop device of a file in folder, mounted at folder/mnt; all undone after."""
    image, mnt = os.path.join(folder, 'disk.img'), os.path.join(folder, 'mnt')
    os.makedirs(mnt)
    with open(image, 'wb') as f:
        f.truncate(320 << 20)  # sparse; XFS wants at least 300 MiB
    subprocess.run((mkfs or MKFS[kind]) + [image], check=True, capture_output=True)
    device = subprocess.check_output(['losetup', '-f', '--show', image], text=True).strip()
    try:
        mounted = subprocess.run(['mount'] + (['-o', options] if options else []) + [device, mnt], capture_output=True,
                                 text=True, check=False)
        if mounted.returncode != 0:
            pytest.skip('this kernel cannot mount %s with %s (it lacks quota support: %s)'
                        % (kind, options, mounted.stderr.strip().splitlines()[0]))
        try:
            yield mnt, device
        finally:
            subprocess.run(['umount', mnt], check=True)
    finally:
        subprocess.run(['losetup', '-d', device], check=False)
        os.unlink(image)


@contextlib.contextmanager
def state_root_on(mnt, base_key):
    """A state root on mnt with the test cache's base bound in, and an image `img` of it; every container
    stopped and the bind undone after."""
    root = os.path.join(mnt, 'root')
    base = os.path.join(root, 'bases', base_key)
    os.makedirs(base)
    subprocess.run(['mount', '--bind', os.path.join(helpers.CACHE, 'bases', base_key), base], check=True)
    try:
        conductor = Conductor(root)
        context = os.path.join(mnt, 'ctx')
        os.makedirs(context)
        with open(os.path.join(context, 'Conductorfile'), 'w') as f:
            f.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n')
        conductor('build', 'img', os.path.join(context, 'Conductorfile'))
        yield conductor
    finally:
        helpers.stop_all(root)
        subprocess.run(['umount', base], check=True)
        shutil.rmtree(root)


def project_quota(path, project):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return _syscalls.get_project_quota(fd, project)
    finally:
        os.close(fd)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# -- everywhere ------------------------------------------------------------------------------------
@pytest.mark.parametrize('size', ['0', '-5m', '12q', '100k'])
def test_a_bad_storage_size_is_one_error_and_makes_nothing(conductor, context, size):
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    before = conductor.listing()
    message = conductor.fails('run', '--storage-size', size, 'img', 'q1')
    assert message == ("conductor run: invalid storage size %r: give a size of at least 1m, such as 512m or 2g\n"
                       % size)
    assert conductor.listing() == before


@pytest.mark.parametrize('kind', KINDS)
def test_without_project_quotas_the_limit_is_refused_naming_the_file_system(tmp_path, base_key, kind):
    mkfs = {'ext4': ['mkfs.ext4', '-q'], 'xfs': ['mkfs.xfs', '-q']}[kind]  # no quota feature, no quota mount option
    with loop_filesystem(str(tmp_path), kind, mkfs=mkfs) as (mnt, device):
        with state_root_on(mnt, base_key) as conductor:
            before = conductor.listing()
            message = conductor.fails('run', '-d', '--storage-size', '20m', 'img', 'q1')
            assert message == (
                'conductor run: a storage size limit needs project quotas, but %s/containers is on %s (%s, mounted at '
                '%s) without them: mount it with prjquota (ext4: tune2fs -O project,quota first) or use XFS mounted '
                'with pquota, on a kernel with quota support; or leave the storage size out\n'
                % (conductor.root, kind, device, mnt))
            assert conductor.listing() == before, 'nothing made'
            conductor('run', '-d', 'img', 'q2')  # control: without a limit it runs
            assert conductor('exec', 'q2', '--', 'sh', '-c', 'head -c 1M /dev/zero > /big && echo ok').stdout == 'ok\n'


@pytest.mark.skipif('xfs' not in KINDS, reason='needs mkfs.xfs (xfsprogs): ext4 without quota support has no project IDs')
def test_a_project_id_set_on_a_folder_is_inherited_by_what_is_made_in_it(tmp_path):
    with loop_filesystem(str(tmp_path), 'xfs') as (mnt, device):
        folder = os.path.join(mnt, 'upper')
        os.makedirs(folder)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _syscalls.set_project(fd, 100042)
            assert _syscalls.project_of(fd) == 100042
        finally:
            os.close(fd)
        os.makedirs(os.path.join(folder, 'a', 'b'))
        with open(os.path.join(folder, 'a', 'b', 'file'), 'w') as f:
            f.write('x')
            assert _syscalls.project_of(f.fileno()) == 100042, 'inherited two folders down'


def test_a_container_cannot_change_project_ids_or_inherit_flags(conductor, context):
    """The quota's escape: root in the container moving its files to another project (chattr -p) or clearing
    a folder's inherit flag (chattr -P). The filter denies both ioctls; unconfined, the kernel takes them."""
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    script = IOCTL % ('/tmp', _syscalls.FS_IOC_FSSETXATTR) + ';' + FLIP_INHERIT % '/tmp'
    assert conductor('run', 'img', 'q1', '--', 'perl', '-e', script).stdout.split() == ['1', '1'], 'EPERM'
    control = conductor('run', '--security-opt', 'seccomp=unconfined', 'img', 'q2', '--', 'perl', '-e', script).stdout
    assert '1' not in control.split(), control
    getter = IOCTL % ('/tmp', 0x801c581f)  # reading them stays allowed (lsattr)
    assert conductor('run', 'img', 'q3', '--', 'perl', '-e', getter).stdout.split() == ['ok']


# -- where the kernel has quota support -----------------------------------------------------------
@pytest.mark.parametrize('kind', KINDS)
def test_writing_past_the_storage_size_fails_and_the_host_disk_keeps_its_space(tmp_path, base_key, kind):
    with loop_filesystem(str(tmp_path), kind, QUOTA_OPTION[kind]) as (mnt, dummy):
        storage_limited(mnt, base_key)


def storage_limited(mnt, base_key):
    with state_root_on(mnt, base_key) as conductor:
        conductor('run', '-d', '--storage-size', '20m', 'img', 'q1')
        config = json.loads(conductor('inspect', 'q1').stdout)
        project = config['config']['storage_project']
        assert config['limits']['storage_size'] == 20 << 20
        assert project_quota(mnt, project)[0] == 20 << 20
        free = free_bytes(mnt)
        attack = conductor('exec', 'q1', '--', 'sh', '-c', 'head -c 40M /dev/zero > /big; echo rc=$?', check=False)
        assert 'Disk quota exceeded' in attack.stdout + attack.stderr and 'rc=1' in attack.stdout, attack
        assert free - free_bytes(mnt) < 22 << 20, 'the file system lost at most the limit'
        control = 'rm -f /big; head -c 5M /dev/zero > /small && echo ok'
        assert conductor('exec', 'q1', '--', 'sh', '-c', control).stdout == 'ok\n'
        # a copy-up (a file of the image changed) counts too, and works under the limit
        assert conductor('exec', 'q1', '--', 'sh', '-c', 'echo x >> /etc/bash.bashrc && echo ok').stdout == 'ok\n'
        # changed live, as docker update does for memory
        conductor('update', '--storage-size', '60m', 'q1')
        assert project_quota(mnt, project)[0] == 60 << 20
        assert conductor('exec', 'q1', '--', 'sh', '-c', 'head -c 40M /dev/zero > /big && echo ok').stdout == 'ok\n'
        message = conductor.fails('update', '--storage-size', '10m', 'q1')
        assert message.startswith('conductor update: invalid storage size 10.5MB: the container already holds')
        # gone with the container: no limit, no files, its project ID free again
        conductor('stop', '-t', '0', 'q1')
        assert project_quota(mnt, project) == (0, 0, 0)
        conductor('run', '-d', '--storage-size', '20m', 'img', 'q2')
        assert json.loads(conductor('inspect', 'q2').stdout)['config']['storage_project'] == project
