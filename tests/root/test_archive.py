"""Images shipped, not rebuilt (issue 13): conductor save writes an OCI image layout archive, load reads it back."""
import hashlib
import io
import json
import os
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
    assert loaded['id'] == index['manifests'][0]['annotations']['io.cs695.conductor.loads-as'] != image['id']
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
    assert set(ids.values()) == {loaded['id']} and len(ids) == 3


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
    check of the layer's members can catch what is in it. The base blob is swapped for a tiny one (the
    root it is loaded into has the base already, so it is skipped) to keep the archives small."""
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
    with open(saved, 'rb') as f:
        half = f.read(os.path.getsize(saved) // 2)
    (tmp_path / 'truncated.tar').write_bytes(half)
    cases.append((str(tmp_path / 'truncated.tar'), 'is damaged or truncated'))
    with tarfile.open(str(tmp_path / 'random.tar'), 'w') as tar:
        tar.add(helpers.CLI, 'bin/conductor')
    cases.append((str(tmp_path / 'random.tar'), "is not an OCI image layout archive: unexpected entry 'bin/conductor'"))
    other('build', 'unrelated', str(tmp_path / 'unrelated'))  # a root in use: its records must stay as they are
    before = other.listing()
    for path, message in cases:
        assert message in other.fails('load', '-i', path), path
        assert other.listing() == before, path
    assert not os.path.exists('/etc/cron.d/x')


def test_a_killed_load_leaves_nothing_half_made(other, saved):
    process = subprocess.Popen([sys.executable, helpers.CLI, '--root', other.root, 'load', '-i', saved],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # while it unpacks the 190 MB base
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert other('images').stdout.count('\n') == 1, 'no image'
    for folder in ('bases', 'layers'):
        path = os.path.join(other.root, folder)
        assert all(n.startswith('.') for n in os.listdir(path)) if os.path.isdir(path) else True
    assert 'Loaded course' in other('load', '-i', saved).stdout
    assert not [n for n in os.listdir(os.path.join(other.root, 'images')) if n.startswith('.tmp-')], 'swept'
