# SPDX-License-Identifier: GPL-3.0-or-later
"""A volume's fill knows a target is absent from the layers alone only when no layer could show anything there."""
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _volumes


def layers(tmp_path, *trees):
    """Layer folders (top first), each {relative path: 'dir', 'file' or ('link', target)}."""
    folders = []
    for index, tree in enumerate(trees):
        folder = tmp_path / ('layer%d' % index)
        folder.mkdir(parents=True)
        for path, kind in tree.items():
            where = folder / path
            where.parent.mkdir(parents=True, exist_ok=True)
            if kind == 'dir':
                where.mkdir()
            elif kind == 'file':
                where.write_text('x')
            else:
                os.symlink(kind[1], where)
        folders.append(str(folder))
    return folders


def test_absent_only_where_no_layer_could_show_it(tmp_path):
    assert _volumes._absent(layers(tmp_path / 'a', {'root': 'dir'}, {'etc': 'dir'}), '/root/work')
    assert _volumes._absent(layers(tmp_path / 'b', {}), '/root/work'), 'no folder on the way in any layer'
    for name, trees in (('in a lower layer', ({'root': 'dir'}, {'root/work': 'dir'})),
                        ('a symlink on the way', ({'root': ('link', '/srv')}, {'srv/work': 'dir'})),
                        ('a symlink at the target', ({'root/work': ('link', '/srv')},)),
                        ('a dangling symlink on the way', ({'root': ('link', '/nowhere')},)),
                        ('a file on the way', ({'root': 'file'},)),
                        ('a file at the target', ({'root/work': 'file'},))):
        assert not _volumes._absent(layers(tmp_path / name, *trees), '/root/work'), name
    assert not _volumes._absent([str(tmp_path / 'missing')], '/root/work'), 'a layer folder that is not there'
    assert not _volumes._absent(layers(tmp_path / 'c', {}), '/../etc'), 'nothing above a layer'


def test_a_redirected_folder_on_the_way_is_not_known(tmp_path):
    """A folder a later layer renamed, with redirect_dir=on, shows a lower folder of another path: not absent."""
    folders = layers(tmp_path, {'srv/moved': 'dir'}, {'srv/app/sub': 'dir'})
    assert _volumes._absent(folders, '/srv/moved/sub'), 'the control: without the redirect, nothing is there'
    try:
        os.setxattr(os.path.join(folders[0], 'srv/moved'), 'trusted.overlay.redirect', b'/srv/app')
    except OSError as e:  # not root, or a file system without trusted xattrs
        pytest.skip('cannot set a trusted xattr here: %s' % e)
    assert not _volumes._absent(folders, '/srv/moved/sub')
