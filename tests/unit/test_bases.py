# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _bases
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

SCRIPTS = _bases.SCRIPTS


@pytest.mark.parametrize('ref, mirror, keyring', [
    ('debian:bookworm', 'http://deb.debian.org/debian', '/usr/share/keyrings/debian-archive-keyring.gpg'),
    ('debian:trixie', 'http://deb.debian.org/debian', '/usr/share/keyrings/debian-archive-keyring.gpg'),
    ('ubuntu:focal', 'http://archive.ubuntu.com/ubuntu', '/usr/share/keyrings/ubuntu-archive-keyring.gpg'),
    ('ubuntu:jammy', 'http://archive.ubuntu.com/ubuntu', '/usr/share/keyrings/ubuntu-archive-keyring.gpg'),
    ('ubuntu:noble', 'http://archive.ubuntu.com/ubuntu', '/usr/share/keyrings/ubuntu-archive-keyring.gpg'),
])
def test_debootstrap_arguments(ref, mirror, keyring):
    spec = _bases.base_spec(ref, {}, arch='amd64')
    argv = _bases.debootstrap_argv(spec, '/t')
    suite = ref.split(':')[1]
    assert argv[:5] == ['debootstrap', '--arch=amd64', '--keyring=%s' % keyring,
                        '--components=%s' % ('main' if ref.startswith('debian') else 'main,universe'),
                        '--variant=minbase']
    assert '--include=iproute2,iputils-ping,procps' in argv
    assert argv[argv.index(suite):argv.index(suite) + 3] == [suite, '/t', mirror]


def test_suite_without_a_script_uses_the_family_script(monkeypatch):
    monkeypatch.setattr(_bases.os.path, 'exists', lambda p: False)
    assert _bases.debootstrap_argv(_bases.base_spec('ubuntu:noble', {}, 'amd64'), '/t')[-1] == SCRIPTS + '/gutsy'
    assert _bases.debootstrap_argv(_bases.base_spec('debian:forky', {}, 'amd64'), '/t')[-1] == SCRIPTS + '/sid'


def test_config_sets_mirror_variant_includes():
    config = {'DEBIAN_MIRROR': 'http://mirror.example/debian', 'BASE_VARIANT': 'buildd', 'BASE_INCLUDE': 'curl,vim'}
    spec = _bases.base_spec('debian:bookworm', config, 'arm64')
    assert spec == {'distro': 'debian', 'suite': 'bookworm', 'variant': 'buildd', 'arch': 'arm64',
                    'mirror': 'http://mirror.example/debian', 'include': ['curl', 'vim']}
    argv = _bases.debootstrap_argv(spec, '/t')
    assert '--variant=buildd' in argv and '--include=curl,vim' in argv and '--arch=arm64' in argv


def test_key_depends_on_everything_that_shapes_the_base():
    spec = _bases.base_spec('debian:bookworm', {}, 'amd64')
    keys = {_bases.base_key(spec)}
    for field, value in (('suite', 'trixie'), ('variant', 'buildd'), ('arch', 'arm64'),
                         ('mirror', 'http://other/'), ('include', ['curl'])):
        keys.add(_bases.base_key(dict(spec, **{field: value})))
    assert len(keys) == 6
    assert _bases.base_key(spec) == _bases.base_key(_bases.base_spec('debian:bookworm', {}, 'amd64'))


def test_unknown_suite_and_variant():
    with pytest.raises(ConductorError, match="unknown ubuntu tag 'bionicx' in FROM ubuntu:bionicx: use one of focal, "
                                             "jammy, .*, 20.04, 22.04, .*latest, rolling, each optionally with -slim"):
        _bases.base_spec('ubuntu:bionicx', {})
    with pytest.raises(ConductorError, match="unknown debian tag '12.5' in FROM debian:12.5-slim"):
        _bases.base_spec('debian:12.5-slim', {})


@pytest.mark.parametrize('ref, suite', [
    ('debian:12', 'bookworm'), ('debian:12-slim', 'bookworm'), ('debian:bookworm-slim', 'bookworm'),
    ('debian:11-slim', 'bullseye'), ('debian:stable', 'trixie'), ('debian:stable-slim', 'trixie'),
    ('debian:testing', 'forky'), ('debian:unstable', 'sid'), ('debian', 'trixie'), ('debian:latest', 'trixie'),
    ('docker.io/library/debian:12', 'bookworm'), ('library/debian:bookworm', 'bookworm'),
    ('ubuntu:22.04', 'jammy'), ('ubuntu:24.04', 'noble'), ('ubuntu', 'noble'), ('ubuntu:jammy', 'jammy'),
])
def test_from_tags_as_docker_users_write_them(ref, suite):
    """Each form maps to the suite debootstrap is given: one base for bookworm, 12 and 12-slim."""
    spec = _bases.base_spec(ref, {}, arch='amd64')
    assert spec['suite'] == suite
    argv = _bases.debootstrap_argv(spec, '/t')
    assert argv[argv.index('/t') - 1] == suite
    assert _bases.base_key(spec) == _bases.base_key(_bases.base_spec('%s:%s' % (spec['distro'], suite), {}, 'amd64'))
    with pytest.raises(ConductorError, match='BASE_VARIANT=tiny in the config is not a debootstrap variant'):
        _bases.base_spec('debian:bookworm', {'BASE_VARIANT': 'tiny'})


def test_missing_debootstrap_is_a_clear_error_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_bases, 'find_debootstrap', lambda: None)
    (tmp_path / 'bases').mkdir()
    with pytest.raises(ConductorError, match=r'debootstrap is not installed, so FROM debian:bookworm cannot be built: '
                                             r'install it \(apt-get install debootstrap\)'):
        _bases.ensure_base(str(tmp_path), _bases.base_spec('debian:bookworm', {}), print)
    assert list((tmp_path / 'bases').iterdir()) == []
