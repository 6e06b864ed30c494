# SPDX-License-Identifier: GPL-3.0-or-later
"""Build contexts: .dockerignore with Docker's pattern rules, and ADD's archive checks, without root."""
import gzip
import io
import os
import tarfile

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import parse
from ansible_collections.cs695.conductor.plugins.module_utils._context import Context, is_ignored, read_patterns, through_link


def patterns(tmp_path, text):
    (tmp_path / '.dockerignore').write_text(text)
    return read_patterns(str(tmp_path / '.dockerignore'))


@pytest.mark.parametrize('text, ignored, kept', [
    ('*.key', ['a.key'], ['sub/a.key', 'a.keys']),  # * stays in one folder, as Go's filepath.Match
    ('**/*.key', ['a.key', 'sub/deep/a.key'], ['a.txt']),
    ('build', ['build', 'build/out/x'], ['src/build']),  # a matched folder takes what is in it
    ('/build\n# comment\n', ['build/x'], ['build.txt']),
    ('*.md\n!README.md', ['notes.md'], ['README.md']),  # the last match wins
    ('docs/?.txt\ndocs/[ab]*', ['docs/1.txt', 'docs/alpha'], ['docs/12.txt', 'docs/cat']),
    ('.git\nnode_modules\n*/temp*', ['.git/HEAD', 'node_modules/x/y', 'src/tempfile'], ['src/a/tempfile']),
])
def test_dockerignore_rules(tmp_path, text, ignored, kept):
    rules = patterns(tmp_path, text)
    assert [p for p in ignored if not is_ignored(rules, p)] == []
    assert [p for p in kept if is_ignored(rules, p)] == []


def test_ignored_files_are_neither_copied_nor_hashed(tmp_path):
    (tmp_path / 'app').mkdir()
    (tmp_path / 'app' / 'main.py').write_text('print(1)\n')
    (tmp_path / 'app' / 'secret.key').write_text('k\n')
    (tmp_path / '.conductorignore').write_text('**/*.key\n')
    context = Context(str(tmp_path))
    ins = parse('FROM x\nCOPY app /app\n')[1]
    sources, before = context.resolve(ins, ['app'])
    assert [s.as_list() for s in sources] == [['app', ['main.py'], False]]
    (tmp_path / 'app' / 'secret.key').write_text('changed\n')
    assert context.resolve(ins, ['app'])[1] == before, 'an ignored file does not change the cache key'
    with pytest.raises(ConductorError, match=r'COPY source app/secret.key is not in the build context .* \(or '
                                             r'.conductorignore excludes it\)'):
        context.resolve(ins, ['app/secret.key'])


def tar_with(tmp_path, name, *members):
    path = str(tmp_path / name)
    with tarfile.open(path, 'w:gz') as tar:
        for member_name, kind, target in members:
            info = tarfile.TarInfo(member_name)
            if kind == 'file':
                info.size = len(target)
                tar.addfile(info, io.BytesIO(target))
            else:
                info.type, info.linkname = {'sym': tarfile.SYMTYPE, 'hard': tarfile.LNKTYPE}[kind], target
                tar.addfile(info)
    return path


@pytest.mark.parametrize('members, problem', [
    ([('../../etc/cron.d/x', 'file', b'x')], 'leads out of the destination'),
    ([('a/../../x', 'file', b'x')], 'leads out of the destination'),
    ([('link', 'sym', '/etc'), ('link/passwd', 'file', b'x')], 'is written through a symlink the archive makes'),
    ([('h', 'hard', '../../etc/shadow')], 'is a hard link to outside the destination'),
])
def test_add_refuses_archives_that_escape(tmp_path, members, problem):
    tar_with(tmp_path, 'evil.tar.gz', *members)
    ins = parse('FROM x\nADD evil.tar.gz /dest/\n', 'Dockerfile')[1]
    with pytest.raises(ConductorError, match='Dockerfile:2: ADD: .* in evil.tar.gz %s: refused, nothing was changed'
                       % problem):
        Context(str(tmp_path)).resolve(ins, ['evil.tar.gz'], archives=True)


def test_add_unpacks_a_good_archive_and_copy_does_not(tmp_path):
    tar_with(tmp_path, 'good.tgz', ('/top/file', 'file', b'x'), ('top/link', 'sym', '/etc/passwd'))
    ins = parse('FROM x\nADD good.tgz /dest/\n')[1]
    assert Context(str(tmp_path)).resolve(ins, ['good.tgz'], archives=True)[0][0].archive is True
    assert Context(str(tmp_path)).resolve(ins, ['good.tgz'])[0][0].archive is False
    (tmp_path / 'plain.txt').write_text('not an archive')
    assert Context(str(tmp_path)).resolve(ins, ['plain.txt'], archives=True)[0][0].archive is False
    assert os.path.exists(str(tmp_path / 'good.tgz'))


@pytest.mark.parametrize('name, links, beneath', [
    ('a/b/c', {'a'}, True), ('a/b/c', {'a/b'}, True), ('a/b/c', {'a/b/c'}, False), ('a/b/c', {'a/bc', 'a/b/cd'}, False),
    ('ab/c', {'a'}, False), ('a', {'a'}, False), ('a/b', set(), False), ('x/y/z/w', {'q', 'x/y/z'}, True)])
def test_a_member_is_beneath_a_link_when_one_of_its_folders_is_one(name, links, beneath):
    """through_link looks up each folder above the member, as the scan of every link (name == link or beneath it)
    it replaced found, less the member itself (which the callers test apart)."""
    assert through_link(name, links) is beneath
    assert any(name == link or name.startswith(link + '/') for link in links) is (beneath or name in links)


def negative_size_archive(path, pax, size=-512):
    """A plain tar: one honest file, then a member of `size` (GNU's base-256 field, or a pax record). Read where it
    lies, tarfile (before CVE-2025-8194's fix) seeks back to a negative one's header, and again, for ever."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.GNU_FORMAT) as tar:
        honest = tarfile.TarInfo('honest')
        honest.size = 2
        tar.addfile(honest, io.BytesIO(b'ok'))
    data = buffer.getvalue().rstrip(b'\0')
    data += b'\0' * (-len(data) % 512)
    loop = tarfile.TarInfo('loop')
    if pax:
        loop.pax_headers = {'size': str(size)}
        data += loop.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    else:
        loop.size = size
        data += loop.tobuf(tarfile.GNU_FORMAT, 'utf-8', 'surrogateescape')
    with open(path, 'wb') as f:
        f.write(data + b'\0' * 1024)


@pytest.mark.parametrize('pax, size', [(False, -512), (True, -512), (False, 1 << 80)])
def test_a_member_of_negative_size_is_refused_not_read_for_ever(tmp_path, pax, size):
    from ansible_collections.cs695.conductor.plugins.module_utils._context import BoundedHeader
    negative_size_archive(str(tmp_path / 'loop.tar'), pax, size)
    seen, message = [], 'loop has a size of %d bytes, which no file has: refused' % size
    with pytest.raises(ConductorError, match=message):
        with tarfile.open(str(tmp_path / 'loop.tar'), tarinfo=BoundedHeader) as tar:
            for member in tar:
                seen.append(member.name)
                assert len(seen) < 10, 'the same members again and again: %s' % seen[:4]
    assert seen == ['honest'], 'the control: the honest member before it is read'
    ins = parse('FROM x\nADD loop.tar /dest/\n')[1]
    with pytest.raises(ConductorError, match=message):
        Context(str(tmp_path)).resolve(ins, ['loop.tar'], archives=True)


def test_adds_archive_check_bounds_the_first_header_and_a_damaged_archive_is_one_error(tmp_path):
    """Is it an archive? tarfile.is_tarfile read a gzip'd archive's first pax header whole: 64 MiB declared (8 GiB
    fit the field) from a file of a few KiB. A pax record tarfile cannot read makes the archive none (a file)."""
    big = tarfile.TarInfo('big')
    big.type, big.size = tarfile.XHDTYPE, 64 << 20
    with gzip.open(str(tmp_path / 'bomb.tar.gz'), 'wb') as f:
        f.write(big.tobuf(tarfile.GNU_FORMAT, 'utf-8', 'surrogateescape') + b'\0' * (1 << 20))
    broken = tarfile.TarInfo('broken')
    broken.pax_headers = {'GNU.sparse.realsize': 'zz'}
    (tmp_path / 'broken.tar').write_bytes(broken.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape') + b'\0' * 1024)
    ins = parse('FROM x\nADD bomb.tar.gz broken.tar /dest/\n')[1]
    with pytest.raises(ConductorError, match='an extended tar header .* of 67108864 bytes is larger than 4.2MB: refused'):
        Context(str(tmp_path)).resolve(ins, ['bomb.tar.gz'], archives=True)
    assert Context(str(tmp_path)).resolve(ins, ['broken.tar'], archives=True)[0][0].archive is False
