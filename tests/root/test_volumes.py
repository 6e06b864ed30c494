# SPDX-License-Identifier: GPL-3.0-or-later
"""Volumes and bind mounts: student work that outlives containers and image updates."""
import json
import os

import pytest


@pytest.fixture
def image(conductor, context):
    conductor('build', 'img', context.write('FROM debian:bookworm\nRUN mkdir -p /srv/app && echo seeded > '
                                            '/srv/app/seed.txt && ln -s /etc /srv/etc-link\nVOLUME /srv/app\n'
                                            'CMD ["sleep", "1000"]\n'))
    return 'img'


def volumes(conductor):
    return {v['name']: v for v in json.loads(conductor('volume', 'ls', '--json').stdout)}


def test_a_named_volume_keeps_its_data_across_stop_and_run(conductor, image):
    conductor('run', '-v', 'work:/srv/essays', image, 'first', '--', 'sh', '-c', 'echo homework > /srv/essays/hw.txt')
    conductor('stop', 'first')
    assert 'work' in volumes(conductor), 'stop deletes the container, not the volume'
    conductor('rmcache')
    out = conductor('run', '--mount', 'type=volume,source=work,target=/home/w', image, 'second', '--', 'cat',
                    '/home/w/hw.txt').stdout
    assert out == 'homework\n'
    assert volumes(conductor)['work']['used_by'] == ['second']


def test_the_images_volume_is_filled_on_first_use_and_goes_with_its_container(conductor, image):
    assert conductor('run', image, 'anon', '--', 'cat', '/srv/app/seed.txt').stdout == 'seeded\n'
    anonymous = [v for v in volumes(conductor).values() if v['anonymous']]
    assert len(anonymous) == 1 and anonymous[0]['used_by'] == ['anon'] and anonymous[0]['populated']
    conductor('stop', 'anon')
    assert not [v for v in volumes(conductor).values() if v['anonymous']]
    # a named volume on the same path is filled from the image too, once
    assert conductor('run', '-v', 'app:/srv/app', image, 'named', '--', 'cat', '/srv/app/seed.txt').stdout == 'seeded\n'


def test_a_read_only_bind_cannot_be_written(conductor, image, tmp_path):
    shared = tmp_path / 'course'
    shared.mkdir()
    (shared / 'handout.txt').write_text('read me\n')
    out = conductor('run', '-v', '%s:/course:ro' % shared, image, 'ro', '--', 'sh', '-c',
                    'cat /course/handout.txt; echo x > /course/handout.txt; echo rc=$?; grep " /course " /proc/mounts')
    assert out.stdout.startswith('read me\nrc=2\n') and 'Read-only file system' in out.stderr
    assert set(out.stdout.splitlines()[-1].split()[3].split(',')) >= {'ro', 'nosuid', 'nodev'}
    assert (shared / 'handout.txt').read_text() == 'read me\n'
    out = conductor('run', '-v', '%s:/course' % shared, image, 'rw', '--', 'sh', '-c', 'echo mine > /course/new.txt')
    assert (shared / 'new.txt').read_text() == 'mine\n', 'control: a writable bind writes through'


def test_a_symlinked_target_in_the_image_stays_inside(conductor, image, tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    (shared / 'f').write_text('from the host\n')
    marker = '/etc/conductor-volume-probe-%d' % os.getpid()
    out = conductor('run', '-v', '%s:/srv/etc-link/%s' % (shared, os.path.basename(marker)), image, 'link', '--',
                    'cat', marker + '/f').stdout
    assert out == 'from the host\n', 'the image\'s /srv/etc-link -> /etc leads to the container\'s /etc'
    assert not os.path.exists(marker), 'and never to the host\'s'


def test_volume_rm_refuses_a_volume_in_use(conductor, image):
    conductor('run', '-d', '-v', 'busy:/data', image, 'user')
    assert conductor.fails('volume', 'rm', 'busy') == ("conductor volume: volume 'busy' is used by container(s) user: "
                                                       "stop them first (conductor stop NAME)\n")
    conductor('stop', '-t', '0', 'user')
    conductor('volume', 'rm', 'busy')
    assert 'busy' not in volumes(conductor)
    conductor('volume', 'create', 'spare')
    assert conductor('volume', 'prune').stdout == 'Removed 0 anonymous volumes\n' and 'spare' in volumes(conductor)


@pytest.mark.parametrize('args, message', [
    (['-v', 'relative/path:/x'], "invalid mount 'relative/path:/x': a bind source must be an absolute host path"),
    (['-v', ':/x'], "invalid mount ':/x': give a volume name, a host path or only the target"),
    (['-v', 'vol:relative'], "invalid mount 'vol:relative': the target 'relative' must be an absolute path"),
    (['--mount', 'type=tmpfs,target=/x'], "invalid mount 'type=tmpfs,target=/x': unknown type 'tmpfs'"),
    (['-v', '/no/such/folder:/x'], 'the bind source /no/such/folder does not exist: create it first'),
    (['-v', 'a:/x', '-v', 'b:/x'], 'two mounts have the target /x'),
])
def test_bad_mounts_are_one_error_and_change_nothing(conductor, image, args, message):
    before = conductor.listing()
    assert message in conductor.fails('run', *args, image, 'bad')
    assert conductor.listing() == before


def test_an_image_update_keeps_the_work_and_says_what_it_discards(conductor, context, root):
    """The classroom case: a teacher rebuilds the course image; the module recreates the container."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _planning, _store
    from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
    store = _store.Store(root, config={})
    conductor('build', 'course', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    task = {'image': 'course', 'volumes': ['alice-work:/srv/essays']}
    assert _planning.ensure_container(store, 'alice', options=task)['actions'] == ['created', 'started']
    conductor('exec', 'alice', '--', 'sh', '-c', 'echo essay > /srv/essays/essay.txt; '
              'head -c 2000000 /dev/zero > /root/scratch')
    conductor('build', 'course', context.write('FROM debian:bookworm\nENV V=2\nCMD ["sleep", "1000"]\n'))
    what = 'upper layer holds 2.0MB of changes outside volumes'
    with pytest.raises(ConductorError, match=r"container 'alice' would be recreated \(image_id changed\), but its %s"
                                             % what):
        _planning.ensure_container(store, 'alice', options=task, discard_changes='refuse')
    conductor('exec', 'alice', '--', 'test', '-e', '/root/scratch')  # refused: nothing was touched
    checked = _planning.ensure_container(store, 'alice', options=task, check_mode=True)
    assert checked['differences'] == ['image_id', what]
    updated = _planning.ensure_container(store, 'alice', options=task)
    assert updated['actions'] == ['recreated', 'started']
    assert updated['warnings'] == ["container 'alice' was recreated: its %s, now gone" % what]
    assert conductor('exec', 'alice', '--', 'cat', '/srv/essays/essay.txt').stdout == 'essay\n', 'the work is kept'
    assert conductor('exec', 'alice', '--', 'test', '-e', '/root/scratch', check=False).returncode == 1
    again = _planning.ensure_container(store, 'alice', options=task)
    assert again['changed'] is False, 'the same task again changes nothing'


def test_workdir_makes_its_folder(conductor, context):
    """Issue 11's WORKDIR bug: an image ending in WORKDIR /course failed every run with exit 127."""
    conductor('build', 'wd', context.write('FROM debian:bookworm\nWORKDIR /opt/here\n'))
    assert conductor('run', 'wd', 'wd', '--', 'pwd').stdout == '/opt/here\n'


def test_a_recreate_keeps_the_images_anonymous_volumes(conductor, context, root):
    """As docker compose does: the new container mounts the old one's anonymous volumes again."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _planning, _store
    store = _store.Store(root, config={})
    conductor('build', 'db', context.write('FROM debian:bookworm\nVOLUME /var/lib/db\nCMD ["sleep", "1000"]\n'))
    _planning.ensure_container(store, 'db', options={'image': 'db'})
    conductor('exec', 'db', '--', 'sh', '-c', 'echo rows > /var/lib/db/table')
    conductor('build', 'db', context.write('FROM debian:bookworm\nVOLUME /var/lib/db\nENV V=2\nCMD ["sleep", "1000"]\n'))
    assert _planning.ensure_container(store, 'db', options={'image': 'db'})['actions'] == ['recreated', 'started']
    assert conductor('exec', 'db', '--', 'cat', '/var/lib/db/table').stdout == 'rows\n'
    assert len([v for v in volumes(conductor).values() if v['anonymous']]) == 1
    conductor('stop', '-t', '0', 'db')
    assert not volumes(conductor), 'and it still goes with the container when that is removed'


def test_a_repeated_mount_field_is_refused_never_the_last_one_wins(conductor, image):
    before = conductor.listing()
    error = conductor.fails('run', '--mount', 'type=volume,source=work,target=/srv/w,type=bind,source=/', image, 'bad',
                            '--', 'ls', '/srv/w/root')
    assert "the field 'type' is given twice" in error
    assert conductor.listing() == before, 'nothing made: no container, no volume'
    out = conductor('run', '--mount', 'type=volume,source=work,target=/srv/w', image, 'good', '--', 'ls', '/srv/w')
    assert out.returncode == 0 and 'work' in volumes(conductor), 'control: the mount given once works'


def test_a_volume_is_filled_as_the_container_sees_its_target(conductor, context):
    """The fill skips its mount namespace only where no layer has anything at the target (seen with no symlink
    followed): a target reached through the image's symlink, or hidden by a later layer, is still looked at in the
    container's merged root."""
    conductor('build', 'linked', context.write('FROM debian:bookworm\nRUN mkdir -p /srv/app /srv/gone && echo seeded > '
                                               '/srv/app/seed.txt && echo old > /srv/gone/f && ln -s /srv /data\n'
                                               'RUN rm -rf /srv/gone\nCMD ["sleep", "1000"]\n'))
    for volume, target, expected in (('through', '/data/app', 'seed.txt\n'), ('hidden', '/srv/gone', ''),
                                     ('absent', '/nowhere/new', ''), ('plain', '/srv/app', 'seed.txt\n')):
        out = conductor('run', '-v', '%s:%s' % (volume, target), 'linked', volume, '--', 'ls', '-A', target).stdout
        assert out == expected, (target, out)
        assert volumes(conductor)[volume]['populated'], volume
