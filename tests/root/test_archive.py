# SPDX-License-Identifier: GPL-3.0-or-later
"""Images shipped, not rebuilt (issue 13): conductor save writes an OCI image layout archive, load reads it back."""
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

import helpers

DOCKERFILE = '''FROM debian:bookworm
RUN rm /etc/issue && rm -rf /usr/share/doc && mkdir /usr/share/doc && touch /usr/share/doc/only
COPY app /opt/app
ENV GREETING=shipped
USER nobody
CMD ["sh", "-c", "echo $GREETING; ls /usr/share/doc; test -e /etc/issue || echo issue-gone; id -un"]
'''


@pytest.fixture
def other(tmp_path, conductor):
    """A second state root with nothing in it: no base, so a run there needs what load brings."""
    cli = type(conductor)(str(tmp_path / 'other-root'))
    yield cli
    helpers.stop_all(cli.root)
    helpers.remove_root(cli.root)


@pytest.fixture
def saved(conductor, context, tmp_path):
    conductor('build', 'course', context.write(DOCKERFILE))
    path = str(tmp_path / 'course.tar')
    assert 'Saved course' in conductor('save', 'course', '-o', path).stdout
    return path


def test_save_load_run_same_id_whiteouts_kept(conductor, other, saved, tmp_path):
    image = json.loads(conductor('images', '--json').stdout)[0]
    with tarfile.open(saved) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile('index.json'))
        manifest = json.load(tar.extractfile('blobs/sha256/' + index['manifests'][0]['digest'][7:]))
        config = json.load(tar.extractfile('blobs/sha256/' + manifest['config']['digest'][7:]))
        top = tarfile.open(fileobj=tar.extractfile('blobs/sha256/' + manifest['layers'][1]['digest'][7:]))
        whiteouts = sorted(n for n in top.getnames() if '.wh.' in n)
    assert names[:2] == ['oci-layout', 'index.json'] and all(n.startswith('blobs/sha256/') for n in names[2:])
    assert index['manifests'][0]['annotations']['org.opencontainers.image.ref.name'] == 'course'
    assert len(manifest['layers']) == 3 and config['config']['User'] == 'nobody'
    assert config['config']['Env'] == ['GREETING=shipped'] and config['rootfs']['type'] == 'layers'
    assert whiteouts == ['etc/.wh.issue', 'usr/share/doc/.wh..wh..opq'], 'overlay whiteouts as OCI has them'
    assert 'Loaded course' in other('load', '-i', saved).stdout
    loaded = json.loads(other('images', '--json').stdout)[0]
    assert loaded['id'] == image['id']
    assert loaded['base'] == 'sha256-' + config['rootfs']['diff_ids'][0][7:], 'stored under its content digest'
    assert all(k.startswith('sha256-') and len(k) == 71 for k in loaded['layers'])
    assert not os.path.exists(os.path.join(other.root, 'bases', '.' + image['base'] + '.lock')), 'no debootstrap ran'
    assert other('run', 'course', 'c').stdout == 'shipped\nonly\nissue-gone\nnobody\n'
    assert 'unchanged' in other('load', '-i', saved).stdout
    with open(saved, 'rb') as f:
        assert 'Loaded again' in other('load', '--name', 'again', '-i', '-', stdin=f).stdout
    gz = str(tmp_path / 'course.tgz.tar')
    conductor('save', '--gzip', 'course', '-o', gz)
    assert os.path.getsize(gz) < os.path.getsize(saved) / 2
    assert 'Loaded zipped' in other('load', '--name', 'zipped', '-i', gz).stdout
    ids = {i['name']: i['id'] for i in json.loads(other('images', '--json').stdout)}
    assert set(ids.values()) == {image['id']} and len(ids) == 3


def rewrite(path, out, change):
    """Copy the archive at path to out with change(name, data) -> data applied to every member."""
    with tarfile.open(path) as tar, tarfile.open(out, 'w') as new:
        for member in tar:
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return out


def forge(path, out, layer):
    """A well-formed archive whose top layer is the tar bytes `layer`: every digest recomputed, so only the
    check of the layer's members can catch what is in it. The base blob is swapped for a tiny one to keep
    the archives small."""
    with tarfile.open(path) as tar:
        blobs = dict((m.name, tar.extractfile(m).read()) for m in tar if m.isfile() and m.size < (1 << 24))
    index = json.loads(blobs['index.json'])
    manifest = json.loads(blobs['blobs/sha256/' + index['manifests'][0]['digest'][7:]])
    config = json.loads(blobs['blobs/sha256/' + manifest['config']['digest'][7:]])

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs['blobs/sha256/' + digest] = data
        return {'digest': 'sha256:' + digest, 'size': len(data)}
    tiny = layer_with(('tiny', tarfile.REGTYPE, None))
    manifest['layers'][0].update(put(tiny), mediaType='application/vnd.oci.image.layer.v1.tar')
    config['rootfs']['diff_ids'][0] = 'sha256:' + hashlib.sha256(tiny).hexdigest()
    manifest['layers'][-1].update(put(layer), mediaType='application/vnd.oci.image.layer.v1.tar')
    config['rootfs']['diff_ids'][-1] = 'sha256:' + hashlib.sha256(layer).hexdigest()
    manifest['config'].update(put(json.dumps(config).encode()))
    index['manifests'][0].update(put(json.dumps(manifest).encode()))
    blobs['index.json'] = json.dumps(index).encode()
    with tarfile.open(out, 'w') as new:
        used = [manifest['config']['digest'], index['manifests'][0]['digest']] + [d['digest'] for d in manifest['layers']]
        for name in ['oci-layout', 'index.json'] + ['blobs/sha256/' + d[7:] for d in used]:
            info = tarfile.TarInfo(name)
            info.size = len(blobs[name])
            new.addfile(info, io.BytesIO(blobs[name]))
    return out


def layer_with(*members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = extra
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = extra
            tar.addfile(info, io.BytesIO(b'') if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


def test_bad_archives_get_one_clear_error_and_change_nothing(conductor, other, saved, tmp_path):
    helpers.seed(other.root)
    (tmp_path / 'unrelated').write_text('FROM debian:bookworm\nRUN touch /x\n')

    def corrupt_top_layer(name, data):
        return data[:-1024] + b'x' * 1024 if name.startswith('blobs/') and len(data) == 10240 else data
    cases = [
        (rewrite(saved, str(tmp_path / 'flipped.tar'), corrupt_top_layer), 'does not match its digest or size'),
        (rewrite(saved, str(tmp_path / 'plain.tar'), lambda n, d: d.replace(b'1.0.0', b'9.9.9')
                 if n == 'oci-layout' else d), 'oci-layout is not version 1.0.0'),
        (forge(saved, str(tmp_path / 'dotdot.tar'), layer_with(('../../etc/cron.d/x', tarfile.REGTYPE, None))),
         '../../etc/cron.d/x leads out of the layer: refused, nothing was loaded'),
        (forge(saved, str(tmp_path / 'abs.tar'), layer_with(('/etc/passwd', tarfile.REGTYPE, None))),
         '/etc/passwd leads out of the layer'),
        (forge(saved, str(tmp_path / 'through.tar'),
               layer_with(('etc', tarfile.SYMTYPE, '/etc'), ('etc/shadow', tarfile.REGTYPE, None))),
         'etc/shadow is written through a symlink of the layer'),
        (forge(saved, str(tmp_path / 'hard.tar'), layer_with(('h', tarfile.LNKTYPE, '/etc/shadow'))),
         'h is a hard link to outside the layer'),
        (forge(saved, str(tmp_path / 'dev.tar'), layer_with(('sda', tarfile.CHRTYPE, (8, 0)))),
         'sda is a device node or fifo'),
    ]
    whiteout = tarfile.TarInfo('.wh.x')  # a regular member of 2**62 bytes that is not unpacked: tarfile skips
    whiteout.size = 1 << 62  # its data a block at a time, through an end of file that gives nothing, for ever
    cases.append((forge(saved, str(tmp_path / 'whiteout.tar'), whiteout.tobuf(tarfile.GNU_FORMAT, 'utf-8', 'strict') +
                        b'\0' * 1024), 'is larger than LOAD_MAX_LAYER_SIZE'))
    with open(saved, 'rb') as f:
        half = f.read(os.path.getsize(saved) // 2)
    (tmp_path / 'truncated.tar').write_bytes(half)
    cases.append((str(tmp_path / 'truncated.tar'), 'is damaged or truncated'))
    with tarfile.open(str(tmp_path / 'random.tar'), 'w') as tar:
        tar.add(helpers.CLI, 'bin/conductor')
    cases.append((str(tmp_path / 'random.tar'), "is not an image archive Conductor can load (an OCI archive or a "
                                                "docker-archive): unexpected entry 'bin/conductor'"))
    with tarfile.open(saved) as tar:  # an honest archive, and after it a member of size -512: read where it lies,
        end = max(m.offset_data + -(-m.size // 512) * 512 for m in tar)  # tarfile would go back to that header for ever
    with open(saved, 'rb') as f:
        honest = f.read(end)
    loop = tarfile.TarInfo('blobs/sha256/' + 'f' * 64)
    loop.size = -512
    with open(str(tmp_path / 'negative.tar'), 'wb') as f:
        f.write(honest + b'\0' * (-len(honest) % 512) + loop.tobuf(tarfile.GNU_FORMAT, 'utf-8', 'surrogateescape') +
                b'\0' * 1024)
    cases.append((str(tmp_path / 'negative.tar'), 'has a size of -512 bytes, which no file has: refused, nothing was loaded'))
    other('build', 'unrelated', str(tmp_path / 'unrelated'))  # a root in use: its records must stay as they are
    before = other.listing()
    for path, message in cases:
        assert message in other.fails('load', '-i', path, timeout=120), path
        assert other.listing() == before, path
    assert not os.path.exists('/etc/cron.d/x')


def test_a_killed_load_leaves_nothing_half_made(other, saved):
    process = subprocess.Popen([sys.executable, helpers.CLI, '--root', other.root, 'load', '-i', saved],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bases, deadline = os.path.join(other.root, 'bases'), time.time() + 30
    while not (os.path.isdir(bases) and any(n.startswith('.tmp-') for n in os.listdir(bases))):
        assert time.time() < deadline and process.poll() is None, 'the load never began to unpack its base'
        time.sleep(0.005)
    time.sleep(0.2)  # while it unpacks the 190 MB base
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert other('images').stdout.count('\n') == 1, 'no image'
    for folder in ('bases', 'layers'):
        path = os.path.join(other.root, folder)
        assert all(n.startswith('.') for n in os.listdir(path)) if os.path.isdir(path) else True
    assert 'Loaded course' in other('load', '-i', saved).stdout
    assert not [n for n in os.listdir(os.path.join(other.root, 'images')) if n.startswith('.tmp-')], 'swept'


def test_a_plain_archive_is_read_where_it_lies_and_a_change_to_it_during_the_load_is_caught(
        other, saved, tmp_path, monkeypatch):
    """A plain archive in a file is read where it lies: none of its blobs is copied into the state root (the
    control: gzip'd, it is copied first). The attack: the archive is a student's, in their own volume, and they
    rewrite its top layer in place while the instructor's load runs: after the scan (its digest catches it), or
    after the digests were checked (the layer's diff_id, checked as it unpacks, catches it). Nothing is stored."""
    helpers.load_cli()
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive
    from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
    from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
    helpers.seed(other.root)
    store = Store(other.root, config={})
    store.prepare(trees=True)  # the folders any load makes first
    with tarfile.open(saved) as tar:
        index = json.load(tar.extractfile('index.json'))
        manifest = json.load(tar.extractfile('blobs/sha256/' + index['manifests'][0]['digest'][7:]))
        blobs = [m.name for m in tar if m.name.startswith('blobs/')]
        top = tar.getmember('blobs/sha256/' + manifest['layers'][-1]['digest'][7:])
    read_archive, store_image = _archive.read_archive, _archive.store_image

    def rewrite_top_layer(path):  # its last KiB (the tar's end), as corrupt_top_layer: same size, other bytes
        with open(path, 'r+b') as f:
            f.seek(top.offset_data + top.size - 1024)
            f.write(b'x' * 1024)
    before = other.listing()
    for step, message in (('read_archive', 'does not match its digest or size'),
                          ('store_image', 'does not match its diff_id')):
        handed_in = str(tmp_path / ('handed-in-%s.tar' % step))
        shutil.copy(saved, handed_in)
        real = {'read_archive': read_archive, 'store_image': store_image}[step]

        def meanwhile(*args, real=real, handed_in=handed_in):
            rewrite_top_layer(handed_in)
            return real(*args)
        monkeypatch.setattr(_archive, step, meanwhile)
        with pytest.raises(ConductorError, match=message):
            _archive.load(store, handed_in, 'changed')
        monkeypatch.setattr(_archive, step, real)
        assert other.listing() == before, step

    zipped, copied = str(tmp_path / 'course.tar.gz'), {}
    with open(saved, 'rb') as f, gzip.open(zipped, 'wb') as out:
        shutil.copyfileobj(f, out)

    def seen(members, where):
        folder = os.path.join(members.tmp, 'blobs', 'sha256')
        copied[where] = (sorted(os.listdir(folder)) if os.path.isdir(folder) else [], len(members.slices))
        return read_archive(members, where)
    monkeypatch.setattr(_archive, 'read_archive', seen)
    for path, name in ((saved, 'in-place'), (zipped, 'copied')):
        assert _archive.load(store, path, name)[1]
    assert copied[saved] == ([], len(blobs)), 'no blob is copied'
    assert len(copied[zipped][0]) == len(blobs) and copied[zipped][1] == 0, 'the control: each blob is copied'
    assert [i['name'] for i in json.loads(other('images', '--json').stdout)] == ['copied', 'in-place']


# -- archives a student makes by hand (issue 19): nothing in them is a key, a path or a size to trust ----
TAR_LAYER = 'application/vnd.oci.image.layer.v1.tar'
ANNOTATION = 'io.cs695.conductor'


def files_layer(files):
    """A layer's tar bytes: {name: bytes (a file), or ('link', target) (a symlink)}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def craft(out, layers, keys, config=None, name='student', gzipped=False, index_pad=0, label_pad=0, image_id='a' * 64):
    """An image archive as a student writes one by hand, in the form conductor save writes: the tar bytes
    `layers` (the base first), and in Conductor's record the base and layer `keys` it claims and the image
    `config`. Every digest is right, so only what Conductor does with the record can stop it. index_pad
    pads index.json, label_pad the manifest; both compress to nothing in the gzipped outer archive."""
    blobs = {}

    def put(data, media):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {'mediaType': media, 'digest': 'sha256:' + digest, 'size': len(data)}
    descriptors = [put(gzip.compress(layer) if gzipped else layer, TAR_LAYER + ('+gzip' if gzipped else ''))
                   for layer in layers]
    diff_ids = ['sha256:' + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = dict({'env': []}, **(config or {}))
    if label_pad:
        config['labels'] = {'pad': ' ' * label_pad}
    image = {'name': name, 'id': image_id, 'base': keys[0], 'layers': keys[1:], 'config': config,
             'created': '2026-12-01T00:00:00Z', 'size': 0}
    record = {'image': image, 'base': {'key': keys[0], 'size': 0, 'spec': {'arch': 'amd64', 'distro': 'debian'}},
              'layers': [{'key': key, 'id': 'b' * 32, 'instruction': 'RUN true', 'size': 0} for key in keys[1:]]}
    oci_config = put(json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {},
                                 'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}).encode(),
                     'application/vnd.oci.image.config.v1+json')
    manifest = put(json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                               'config': oci_config, 'layers': descriptors,
                               'annotations': {ANNOTATION: json.dumps(record)}}).encode(),
                   'application/vnd.oci.image.manifest.v1+json')
    manifest['annotations'] = {'org.opencontainers.image.ref.name': name, ANNOTATION + '.id': image['id']}
    index = json.dumps({'schemaVersion': 2, 'manifests': [manifest]}).encode() + b' ' * index_pad
    members = [('oci-layout', b'{"imageLayoutVersion": "1.0.0"}'), ('index.json', index)]
    with tarfile.open(out, 'w:gz' if index_pad or label_pad else 'w') as tar:
        for member, data in members + [('blobs/sha256/' + d, b) for d, b in sorted(blobs.items())]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def outside_listing(path):
    return sorted((os.path.relpath(os.path.join(top, n), path)) for top, dirs, files in os.walk(path)
                  for n in dirs + files)


def test_forged_keys_sizes_and_values_in_an_archive_are_refused(other, tmp_path, base_key):
    """Keys that are paths (.., through a symlink an earlier load made) or mount options (:), a huge
    index.json or manifest, a stop signal no kernel has: one clear error each, nothing changed in the store
    and nothing made or removed outside it."""
    helpers.seed(other.root)
    outside = tmp_path / 'outside'  # a host folder next to the state root
    outside.mkdir()
    (outside / 'keep').write_text('host file\n')
    tiny = files_layer({'tiny': b''})
    layer = files_layer({'bin/tool': b'#!/bin/sh\necho forged\n'})
    # the control, and the step a symlink attack builds on: a layer whose diff holds a link to the host folder
    assert 'Loaded linked' in other('load', '-i', craft(str(tmp_path / 'linked.tar'), [tiny, files_layer(
        {'link': ('link', str(outside))})], [base_key, 'a' * 32], name='linked')).stdout
    honest = craft(str(tmp_path / 'honest.tar'), [tiny, layer], [base_key, 'c' * 32],
                   config={'stop_signal': 10, 'cmd': ['/bin/tool']}, name='honest')
    assert 'Loaded honest' in other('load', '-i', honest).stdout
    message = "which is not a key Conductor makes"
    cases = [
        (craft(str(tmp_path / 'dotdot.tar'), [tiny, layer], [base_key, '../../made-by-load']),
         "has the layer key '../../made-by-load', " + message),
        (craft(str(tmp_path / 'colon.tar'), [tiny, layer, layer], [base_key, 'd' * 32, 'd' * 32 + ':containers']),
         "has the layer key '%s:containers', %s" % ('d' * 32, message)),
        (craft(str(tmp_path / 'comma.tar'), [tiny, layer], ['%s,upperdir=/' % base_key, 'e' * 32]),
         "has the base key '%s,upperdir=/', %s" % (base_key, message)),
        (craft(str(tmp_path / 'symlink.tar'), [tiny, layer], [base_key, 'a' * 32 + '/diff/link/evil']),
         "has the layer key '%s/diff/link/evil', %s" % ('a' * 32, message)),
        (craft(str(tmp_path / 'index.tar'), [tiny, layer], [base_key, 'f' * 32], index_pad=64 << 20),
         'index.json is larger than 4.2MB: refused, nothing was loaded'),
        (craft(str(tmp_path / 'manifest.tar'), [tiny, layer], [base_key, 'f' * 32], label_pad=5 << 20),
         'a manifest or config, is larger than 4.2MB: refused, nothing was loaded'),
        (craft(str(tmp_path / 'signal.tar'), [tiny, layer], [base_key, 'f' * 32], config={'stop_signal': 999}),
         "the image config's stop_signal is 999: it must be a signal number from 1 to 64"),
        (craft(str(tmp_path / 'user.tar'), [tiny, layer], [base_key, 'f' * 32], config={'user': 'root\nx'}),
         "the image config's user is 'root\\nx': it must be user[:group] or uid[:gid]"),
        (craft(str(tmp_path / 'env.tar'), [tiny, layer], [base_key, 'f' * 32], config={'env': ['A=\0']}),
         "the image config's env is ['A=\\x00']: it must be a list of KEY=VALUE"),
    ]
    padded = io.BytesIO()
    with tarfile.open(fileobj=padded, mode='w', format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo('f')
        info.pax_headers['comment'] = ' ' * (64 << 20)  # tarfile reads a pax header whole, before the member
        tar.addfile(info, io.BytesIO(b''))
    cases.append((craft(str(tmp_path / 'pax.tar'), [tiny, padded.getvalue()], [base_key, 'f' * 32], gzipped=True),
                  'an extended tar header (a pax header or long name) of 67108882 bytes is larger than 4.2MB'))
    assert os.path.getsize(cases[4][0]) < (1 << 20), 'a small archive, a big index.json'
    before, host = other.listing(), outside_listing(str(outside))
    bases = sorted(os.listdir(os.path.join(other.root, 'bases')))
    for path, expected in cases:
        assert expected in other.fails('load', '-i', path), path
        assert other.listing() == before, path
        assert sorted(os.listdir(os.path.join(other.root, 'bases'))) == bases, path
        assert outside_listing(str(outside)) == host and not (tmp_path / 'made-by-load').exists(), path
    loaded = dict((i['name'], i) for i in json.loads(other('images', '--json').stdout))['honest']
    assert loaded['config']['stop_signal'] == 10 and loaded['layers'][0].startswith('sha256-'), 'the control'


def test_an_archive_cannot_claim_a_build_steps_cache_key(conductor, other, context, tmp_path, base_key):
    """A student who knows the instructor's Conductorfile knows its cache keys: an archive that claims one
    with a layer of the student's is loaded under its own digest, and the instructor's build runs the step."""
    grading = context.write('FROM debian:bookworm\nRUN echo graded > /result\nCMD ["cat", "/result"]\n')
    conductor('build', 'reference', grading)
    with open(os.path.join(conductor.root, 'images', 'reference.json')) as f:
        reference = json.load(f)
    key = reference['layers'][0]  # what the student computes from the file
    helpers.seed(other.root)
    forged = craft(str(tmp_path / 'forged.tar'), [files_layer({'tiny': b''}), files_layer({'result': b'forged\n'})],
                   [base_key, key])
    assert 'Loaded student' in other('load', '-i', forged).stdout
    assert not os.path.exists(os.path.join(other.root, 'layers', key))
    built = other('build', 'graded', grading).stdout
    assert 'echo graded > /result (cached)' not in built and 'echo graded > /result' in built, built
    assert other('run', 'graded', 'g').stdout == 'graded\n'
    assert 'echo graded > /result (cached)' in other('build', 'graded', grading).stdout, 'the real step is cached'
    # an image's id is the archive's word: one that claims the reference's id shares none of its builds' cache
    twin = craft(str(tmp_path / 'twin.tar'), [files_layer({'tiny': b''}), files_layer({'result': b'forged\n'})],
                 [base_key, key], name='twin', image_id=reference['id'])
    assert 'Loaded twin' in conductor('load', '-i', twin).stdout
    assert 'COPY app /app' in conductor('build', 'on-twin', context.write('FROM twin\nCOPY app /app\n')).stdout
    on_reference = conductor('build', 'on-reference', context.write('FROM reference\nCOPY app /app\n')).stdout
    assert 'COPY app /app (cached)' not in on_reference, on_reference
    assert conductor('run', 'on-reference', 'r').stdout == 'graded\n'


def test_an_archive_cannot_stand_in_for_a_debootstrap_base(other, context, tmp_path, base_key):
    """An archive whose base claims the key of FROM debian:bookworm's base, loaded where that base is not
    yet made: the base is stored under its digest, and a build FROM debian:bookworm never sees it."""
    forged = craft(str(tmp_path / 'base.tar'), [files_layer({'forged': b'', 'bin/sh': b'#!/forged\n'})], [base_key])
    assert 'Loaded student' in other('load', '-i', forged).stdout
    assert not os.path.exists(os.path.join(other.root, 'bases', base_key))
    helpers.seed(other.root)  # the real base, as debootstrap would make it
    built = other('build', 'clean', context.write('FROM debian:bookworm\nRUN test ! -e /forged && echo clean\n'))
    assert 'clean' in built.stdout


def test_a_layer_over_LOAD_MAX_LAYER_SIZE_is_refused_while_unpacking(other, tmp_path, base_key):
    """A gzip bomb: a layer of a few kB that unpacks to 3 MiB, under LOAD_MAX_LAYER_SIZE=1m."""
    config = tmp_path / 'conductor.conf'
    config.write_text('LOAD_MAX_LAYER_SIZE=1m\n')
    env = dict(os.environ, CONDUCTOR_CONFIG=str(config))
    helpers.seed(other.root)
    tiny = files_layer({'tiny': b''})
    bomb = craft(str(tmp_path / 'bomb.tar'), [tiny, files_layer({'zeros': bytes(3 << 20)})], [base_key, 'a' * 32],
                 gzipped=True)
    assert os.path.getsize(bomb) < (64 << 10)
    fits = craft(str(tmp_path / 'fits.tar'), [tiny, files_layer({'zeros': bytes(512 << 10)})], [base_key, 'a' * 32],
                 gzipped=True, name='fits')
    assert 'Loaded fits' in other('load', '-i', fits, env=env).stdout, 'the control: under the limit'
    before = other.listing()
    result = other('load', '-i', bomb, check=False, env=env)
    assert result.returncode == 1 and result.stderr.count('\n') == 1, result.stderr
    assert 'unpacked is larger than LOAD_MAX_LAYER_SIZE (1.0MB): refused, nothing was loaded' in result.stderr
    assert other.listing() == before


def test_a_forged_manifest_in_the_store_is_refused_by_run_and_build_and_removed_by_rmi(
        other, context, tmp_path, base_key):
    """A manifest with a key that is a path (as an older Conductor's load wrote them): run and build name it and
    refuse it, images and rmcache still work, and rmi removes the record without touching the path."""
    helpers.seed(other.root)
    victim = tmp_path / 'victim'
    (victim / 'diff').mkdir(parents=True)
    (victim / 'diff' / 'keep').write_text('host file\n')
    os.makedirs(os.path.join(other.root, 'images'), exist_ok=True)
    with open(os.path.join(other.root, 'images', 'evil.json'), 'w') as f:
        json.dump({'name': 'evil', 'id': 'e' * 64, 'base': base_key, 'layers': ['../../victim'], 'config': {}}, f)
    expected = "image 'evil' has the layer key '../../victim', which is not a key Conductor makes"
    assert expected in other.fails('run', 'evil', 'e')
    assert expected in other.fails('build', 'on-top', context.write('FROM evil\nRUN true\n'))
    assert other('images').stdout.count('\n') == 1 and other('rmcache').returncode == 0
    other('rmi', 'evil')
    assert not os.path.exists(os.path.join(other.root, 'images', 'evil.json'))
    assert (victim / 'diff' / 'keep').read_text() == 'host file\n'


def test_load_where_it_was_built_build_from_it_rmi_and_rmcache(conductor, saved, context):
    """The honest paths around content-addressed layers: a load into the root that built the image (its layers
    come in under their digests; the built ones stay as cache), twice, a build FROM it, rmi and rmcache."""
    built = json.loads(conductor('images', '--json').stdout)[0]
    assert 'Loaded course' in conductor('load', '-i', saved).stdout
    loaded = json.loads(conductor('images', '--json').stdout)[0]
    assert loaded['id'] == built['id'] and loaded['base'] != built['base'] and loaded['layers'] != built['layers']
    assert 'unchanged' in conductor('load', '-i', saved).stdout
    assert conductor('run', 'course', 'c').stdout == 'shipped\nonly\nissue-gone\nnobody\n'
    derived = context.write('FROM course\nUSER root\nRUN echo derived > /derived\nCMD ["cat", "/derived"]\n')
    conductor('build', 'derived', derived)
    assert 'echo derived > /derived (cached)' in conductor('build', 'derived', derived).stdout
    assert conductor('run', 'derived', 'd').stdout == 'derived\n'
    conductor('stop', 'c', 'd')
    conductor('rmi', 'derived')
    conductor('rmi', 'course')
    conductor('rmcache')
    for folder in ('bases', 'layers'):
        assert [n for n in os.listdir(os.path.join(conductor.root, folder)) if not n.startswith('.')] == [], folder


def with_top_layer(path, out, layer, key='d' * 32):
    """A copy of the archive at path with one more layer (tar bytes) on top, claimed under `key`: record,
    manifest, config and index.json rewritten with every digest right and appended (the later index.json wins)."""
    shutil.copyfile(path, out)
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile('index.json'))
        manifest = json.load(tar.extractfile('blobs/sha256/' + index['manifests'][0]['digest'][7:]))
        config = json.load(tar.extractfile('blobs/sha256/' + manifest['config']['digest'][7:]))
    record, new = json.loads(manifest['annotations'][ANNOTATION]), {}

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        new['blobs/sha256/' + digest] = data
        return {'digest': 'sha256:' + digest, 'size': len(data)}
    manifest['layers'].append(dict(put(layer), mediaType=TAR_LAYER))
    config['rootfs']['diff_ids'].append('sha256:' + hashlib.sha256(layer).hexdigest())
    record['image']['layers'].append(key)
    record['layers'].append({'key': key, 'id': key, 'instruction': 'COPY null /dev/null', 'size': 0})
    manifest['annotations'][ANNOTATION] = json.dumps(record)
    manifest['config'].update(put(json.dumps(config).encode()))
    index['manifests'][0].update(put(json.dumps(manifest).encode()))
    new['index.json'] = json.dumps(index).encode()
    with tarfile.open(out, 'a') as tar:
        for name, data in new.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def test_a_loaded_layers_dev_null_never_brings_a_host_file_into_a_build(other, saved, context, tmp_path):
    """A layer whose /dev/null is a link to a host file (save keeps no device nodes, so a loaded base has no
    /dev/null of its own): a RUN step FROM it masks /proc/keys with its own /dev/null, never the link's target."""
    secret = tmp_path / 'secret'
    secret.write_text('host secret\n')
    forged = with_top_layer(saved, str(tmp_path / 'devnull.tar'), files_layer({'dev/null': ('link', str(secret))}))
    assert 'Loaded devnull' in other('load', '-i', forged, '--name', 'devnull').stdout
    built = other('build', 'peek', context.write('FROM devnull\nUSER root\nRUN cat /proc/keys; echo step-ran\n'))
    assert 'step-ran' in built.stdout and 'host secret' not in built.stdout, built.stdout


def test_a_copied_dev_null_link_never_brings_a_host_file_into_a_build(conductor, context, tmp_path):
    """The same through COPY: a context folder with a null link copied into /dev/ of the image."""
    secret = tmp_path / 'secret'
    secret.write_text('host secret\n')
    (context / 'dev').mkdir()
    os.symlink(str(secret), str(context / 'dev' / 'null'))
    built = conductor('build', 'peek', context.write('FROM debian:bookworm\nCOPY dev/ /dev/\n'
                                                     'RUN cat /proc/keys; echo step-ran\n'))
    assert 'step-ran' in built.stdout and 'host secret' not in built.stdout, built.stdout


def test_a_load_places_its_layers_in_block_groups_of_their_own(other, saved):
    """bases/ and layers/ are marked tops of hierarchies (chattr +T) by a load, and nothing else of their flags
    changes: on ext4, Orlov then places each layer the load makes in a block group with many free inodes. Where the
    file system keeps no such flag (tmpfs, XFS, btrfs), the load works all the same."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _store
    store = _store.Store(other.root, config={})
    store.prepare()
    probe = os.path.join(other.root, 'probe')
    os.mkdir(probe)
    try:
        kept = _flags(probe)
        _store.spread(probe)
        if not _flags(probe) & _store.FS_TOPDIR_FL:
            pytest.skip('the state root\'s file system keeps no top-of-hierarchy flag')
        assert _flags(probe) == kept | _store.FS_TOPDIR_FL
    finally:
        os.rmdir(probe)
    before = {folder: _flags(store.path(folder)) for folder in ('bases', 'layers', 'images')}
    other('load', '-i', saved)
    assert {folder: _flags(store.path(folder)) for folder in before} == dict(
        before, bases=before['bases'] | _store.FS_TOPDIR_FL, layers=before['layers'] | _store.FS_TOPDIR_FL)


def _flags(folder):
    """The folder's inode flags (FS_IOC_GETFLAGS: lsattr's), or 0 where the file system has none."""
    import fcntl
    from ansible_collections.cs695.conductor.plugins.module_utils import _store
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return int.from_bytes(fcntl.ioctl(fd, _store.FS_IOC_GETFLAGS, bytes(8))[:4], sys.byteorder)
    except OSError:
        return 0
    finally:
        os.close(fd)
