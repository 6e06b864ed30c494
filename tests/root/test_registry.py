# SPDX-License-Identifier: GPL-3.0-or-later
"""Images through registries (issue 21). A real registry (Debian's docker-registry, distribution 2.8) is
started on loopback in the test run's own network namespace: plain HTTP listed as insecure, TLS with a test
CA and htpasswd users, or token auth with a small issuer of the test's own. It is filled by other tools than
Conductor (umoci, skopeo, busybox-static), so the client meets formats it did not write."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import helpers

IMAGE_CMD = 'echo hello from busybox'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry serving on 127.0.0.1 (in the test run's network namespace), stopped by its PID."""

    def __init__(self, folder, tls=None, auth=None):
        self.folder, self.port = str(folder), free_port()
        self.host = '127.0.0.1:%d' % self.port
        config = {'version': 0.1, 'log': {'level': 'error'}, 'http': {'addr': self.host},
                  'storage': {'filesystem': {'rootdirectory': os.path.join(self.folder, 'data')},
                              'delete': {'enabled': True}}}
        if tls:
            config['http']['tls'] = {'certificate': tls[0], 'key': tls[1]}
        if auth:
            config['auth'] = auth
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, 'config.yml')
        with open(path, 'w') as f:
            json.dump(config, f)  # YAML reads JSON
        self.log = open(os.path.join(self.folder, 'registry.log'), 'w')
        self.process = subprocess.Popen(['docker-registry', 'serve', path], stdout=self.log, stderr=self.log)
        for dummy in range(100):
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError('the registry did not start: %s' % open(self.log.name).read())

    def stop(self):
        self.process.terminate()
        self.process.wait()
        self.log.close()

    def blob_files(self):
        top = os.path.join(self.folder, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256')
        return dict((d, os.path.join(top, d[:2], d, 'data')) for sub in os.listdir(top)
                    for d in os.listdir(os.path.join(top, sub)))


def skopeo(*args):
    subprocess.run(['skopeo', '--insecure-policy'] + list(args), check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope='module')
def busybox_layout(tmp_path_factory):
    """An OCI layout made with umoci: one layer holding only a static busybox, its CMD an echo."""
    top = tmp_path_factory.mktemp('umoci')
    layout, bundle = str(top / 'layout'), str(top / 'bundle')
    subprocess.run(['umoci', 'init', '--layout', layout], check=True)
    subprocess.run(['umoci', 'new', '--image', layout + ':bb'], check=True)
    subprocess.run(['umoci', 'unpack', '--image', layout + ':bb', bundle], check=True, stdout=subprocess.DEVNULL)
    os.makedirs(os.path.join(bundle, 'rootfs', 'bin'))
    subprocess.run(['cp', '/bin/busybox', os.path.join(bundle, 'rootfs', 'bin', 'busybox')], check=True)
    for name in ('sh', 'echo', 'cat', 'sleep', 'id', 'ls'):
        os.symlink('busybox', os.path.join(bundle, 'rootfs', 'bin', name))
    subprocess.run(['umoci', 'repack', '--image', layout + ':bb', bundle], check=True)
    subprocess.run(['umoci', 'config', '--image', layout + ':bb', '--config.env', 'PATH=/bin', '--config.cmd', '/bin/sh',
                    '--config.cmd', '-c', '--config.cmd', IMAGE_CMD, '--config.label', 'course=cs695'], check=True)
    subprocess.run(['umoci', 'gc', '--layout', layout], check=True)
    return layout + ':bb'


class Lab(helpers.Conductor):
    """The CLI with a conductor.conf, an auth file and a HOME of the test's own (never the machine's)."""

    def __init__(self, root, folder, **settings):
        helpers.Conductor.__init__(self, root)
        self.folder = str(folder)
        os.makedirs(os.path.join(self.folder, 'home'), exist_ok=True)
        self.conf = os.path.join(self.folder, 'conductor.conf')
        self.configure(**settings)
        self.env = dict(os.environ, CONDUCTOR_CONFIG=self.conf, HOME=os.path.join(self.folder, 'home'),
                        REGISTRY_AUTH_FILE=os.path.join(self.folder, 'auth.json'))
        self.env.pop('XDG_RUNTIME_DIR', None)

    def configure(self, **settings):
        with open(self.conf, 'w') as f:
            f.write(''.join('%s=%s\n' % item for item in settings.items()))

    def __call__(self, *args, check=True, **kw):
        kw.setdefault('env', self.env)
        return helpers.Conductor.__call__(self, *args, check=check, **kw)

    def image(self, name):
        return dict((i['name'], i) for i in json.loads(self('images', '--json').stdout))[name]


@pytest.fixture
def plain(tmp_path):
    registry = Registry(tmp_path / 'registry')
    yield registry
    registry.stop()


@pytest.fixture
def lab(root, tmp_path, plain):
    return Lab(root, tmp_path / 'lab', REGISTRY_INSECURE=plain.host)


# -- plain HTTP, listed as insecure -------------------------------------------------------------------------
def test_an_image_with_only_busybox_is_pulled_run_and_re_pulled_by_its_manifest_alone(lab, plain, busybox_layout):
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % plain.host)
    ref = '%s/lab/busybox:1' % plain.host
    assert 'Pulled %s' % ref in lab('pull', ref).stdout
    image = lab.image(ref)
    assert image['config']['labels'] == {'course': 'cs695'} and image['layers'] == [], image
    assert lab('run', ref, 'b1').stdout == 'hello from busybox\n', 'its CMD, with no shell of Debian in the image'
    out = lab('run', ref, 'b2', '--', 'sh', '-c', 'ls /; id').stdout
    assert 'bin\n' in out and 'uid=0' in out
    lab('run', '-d', ref, 'b3', '--', 'sleep', '60')
    assert lab('exec', 'b3', '--', 'echo', 'in').stdout == 'in\n', 'exec needs nothing inside the image either'
    lab('stop', 'b3')
    assert 'Up to date: %s' % ref in lab('pull', ref).stdout
    requests = [line for line in open(plain.log.name).read().splitlines() if '"GET /v2/lab/busybox/' in line]
    assert not [r for r in requests if '/blobs/' in r][2:], 'no blob was fetched again: %s' % requests
    # bad input: one clear error each, the store unchanged
    before = lab.listing()
    for args, message in ((['pull', 'Lab/BusyBox'], "invalid image reference 'Lab/BusyBox'"),
                          (['pull', '%s/lab/busybox:nosuchtag' % plain.host], 'no such image'),
                          (['pull', '%s/lab/busybox@sha256:%s' % (plain.host, 'a' * 64)], 'no such image')):
        assert message in lab.fails(*args), args
        assert lab.listing() == before, args
    lab.configure()  # not listed as insecure: plain HTTP is refused, HTTPS meets a plain server
    error = lab.fails('pull', ref)
    assert 'TLS with %s failed' % plain.host in error and 'certs.d/%s/ca.crt' % plain.host in error, error


def test_a_progress_line_on_a_terminal_and_none_otherwise(lab, plain, busybox_layout):
    import pty
    ref = '%s/lab/busybox:1' % plain.host
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://' + ref)
    assert 'layers' not in lab('pull', ref).stderr, 'no progress into a pipe'
    lab('rmi', ref)
    lab('rmcache')
    master, slave = pty.openpty()
    try:
        subprocess.run([sys.executable, helpers.CLI, '--root', lab.root, 'pull', ref], env=lab.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=slave)
        shown = os.read(master, 65536).decode()
    finally:
        os.close(slave)
        os.close(master)
    assert '1 layers' in shown and 'MB' in shown, shown


def test_a_dockerfile_from_a_docker_hub_name_builds_unchanged_through_a_mirror(lab, plain, busybox_layout, context):
    """REGISTRY_MIRRORS: docker.io's names come from the lab's mirror (the mirror answers, so docker.io itself is
    never asked: the test sends nothing past loopback)."""
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/library/busybox:1.36' % plain.host)
    lab.configure(REGISTRY_INSECURE=plain.host, REGISTRY_MIRRORS='docker.io=http://%s' % plain.host)
    dockerfile = context.write('FROM busybox:1.36\nRUN echo built > /built\nCOPY --from=busybox:1.36 /bin/busybox '
                               '/copied\nCMD ["cat", "/built"]\n')
    lab('build', 'app', dockerfile)
    assert lab('run', 'app', 'a1').stdout == 'built\n'
    assert lab('run', 'app', 'a3', '--', 'sh', '-c', 'test -x /copied && echo copied').stdout == 'copied\n', \
        'COPY --from it'
    pulled = lab.image('docker.io/library/busybox:1.36')
    assert pulled['layers'] == [] and pulled['base'].startswith('sha256-')
    assert lab('run', 'busybox:1.36', 'a2').stdout == 'hello from busybox\n', 'Docker\'s short name finds it'
    error = lab.fails('rmi', 'docker.io/library/busybox:1.36')
    assert 'is used by container(s) a2' in error, 'the long name is the short one\'s image: %s' % error
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/library/busybox:latest' % plain.host)
    lab('pull', 'busybox')  # docker.io/library/busybox:latest, which the plain name finds
    assert lab('run', 'busybox', 'a4').stdout == 'hello from busybox\n'
    lab('rm', 'a4')
    assert 'Removed image busybox' in lab('rmi', 'busybox').stdout, 'rmi by the name run found it by'
    # --pull never: nothing is asked; a missing image is one clear error
    lab('rm', 'a2')
    (context / 'Dockerfile.never').write_text('FROM busybox:1.37\n')
    error = lab.fails('build', '--pull', 'never', 'app2', str(context / 'Dockerfile.never'))
    assert "no image named 'docker.io/library/busybox:1.37': pull it first" in error, error
    lab('build', '--pull', 'always', 'app', dockerfile)
    # DEBIAN_FROM=registry: FROM debian: is the mirror's image too, not debootstrap's
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/library/debian:bookworm' % plain.host)
    (context / 'Dockerfile.debian').write_text('FROM debian:bookworm\nRUN echo from-registry > /f\n')
    lab.configure(REGISTRY_INSECURE=plain.host, REGISTRY_MIRRORS='docker.io=http://%s' % plain.host,
                  DEBIAN_FROM='registry')
    lab('build', 'deb', str(context / 'Dockerfile.debian'))
    assert lab('run', 'deb', 'd1', '--', 'cat', '/f').stdout == 'from-registry\n'
    assert lab.image('docker.io/library/debian:bookworm')['base'].startswith('sha256-'), 'pulled, not debootstrapped'


def test_a_students_dockerfile_makes_the_host_pull_only_what_it_may_use(lab, plain, busybox_layout, context):
    """Graded with --allow-image, a student's FROM of any registry's image made the host pull it before the plan
    refused it: network and disk at the student's word. A FROM ${ARG} is pulled as it expands."""
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % plain.host)
    ref = '%s/lab/busybox:1' % plain.host
    (context / 'Dockerfile.student').write_text('FROM %s\nRUN echo hi\n' % ref)
    error = lab.fails('build', '--allow-image', 'cs695', 'graded', str(context / 'Dockerfile.student'))
    assert 'which this build may not use' in error, error
    asked = [line for line in open(plain.log.name).read().splitlines() if line.endswith('"conductor"')]
    assert asked == [], 'the registry was never asked: %s' % asked
    context.write('ARG BASE=%s\nFROM ${BASE}\nRUN echo from-arg > /f\n' % ref)  # the control, through an ARG
    lab('build', 'fromarg', str(context / 'Conductorfile'))
    assert [line for line in open(plain.log.name).read().splitlines() if '/v2/lab/busybox/manifests/1' in line
            and line.endswith('"conductor"')], 'pulled through the ARG'
    assert lab('run', 'fromarg', 'a', '--', 'cat', '/f').stdout == 'from-arg\n'


def test_push_then_pull_gives_back_the_same_digests(lab, plain, busybox_layout, root, tmp_path, context):
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % plain.host)
    lab('build', 'app', context.write('FROM %s/lab/busybox:1\nRUN echo v1 > /v\nCMD ["cat", "/v"]\n' % plain.host))
    pushed = lab('push', 'app', '%s/course/app:v1' % plain.host).stdout
    digest = pushed.split('(')[-1].rstrip(')\n')
    inspected = json.loads(subprocess.run(['skopeo', 'inspect', '--tls-verify=false', 'docker://%s/course/app:v1'
                                           % plain.host], check=True, capture_output=True, text=True).stdout)
    assert inspected['Digest'] == digest and inspected['Architecture'] == 'amd64', inspected
    other = Lab(str(tmp_path / 'other-root'), tmp_path / 'other', REGISTRY_INSECURE=plain.host)
    helpers.seed(other.root)
    try:
        other('pull', '%s/course/app:v1' % plain.host)
        got = other.image('%s/course/app:v1' % plain.host)
        assert got['digest'] == digest and got['id'] == lab.image('app')['id'], 'the same image, the same id'
        assert other('run', '%s/course/app:v1' % plain.host, 'x').stdout == 'v1\n'
        again = lab('push', 'app', '%s/course/app:v1' % plain.host).stdout
        assert digest in again, 'a push of the same image gives the same digest'
        # a student's container committed (conductor commit) pushes and pulls as any other image
        lab('run', '-d', 'app', 'student', '--', 'sh', '-c', 'echo graded > /g && exec sleep 1000')
        for dummy in range(50):
            if lab('exec', 'student', '--', 'cat', '/g', check=False).stdout == 'graded\n':
                break
            time.sleep(0.1)
        lab('commit', '--change', 'CMD ["cat", "/g"]', 'student', 'snap')
        lab('push', 'snap', '%s/course/snap:v1' % plain.host)
        other('pull', '%s/course/snap:v1' % plain.host)
        assert other('run', '%s/course/snap:v1' % plain.host, 'y').stdout == 'graded\n'
    finally:
        helpers.stop_all(other.root)
        helpers.remove_root(other.root)


def test_docker_schema_2_manifests_are_read(lab, plain, busybox_layout):
    ref = '%s/lab/v2s2:1' % plain.host
    skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', 'oci:' + busybox_layout, 'docker://' + ref)
    raw = json.loads(subprocess.run(['skopeo', 'inspect', '--raw', '--tls-verify=false', 'docker://' + ref], check=True,
                                    capture_output=True, text=True).stdout)
    assert raw['mediaType'] == 'application/vnd.docker.distribution.manifest.v2+json', raw
    lab('pull', ref)
    assert lab('run', ref, 'v').stdout == 'hello from busybox\n'
    assert lab.image(ref)['config']['labels'] == {'course': 'cs695'}


def test_zstd_layers_and_a_manifest_list_are_read(lab, plain, busybox_layout):
    skopeo('copy', '--dest-tls-verify=false', '--dest-compress-format', 'zstd', '--dest-compress',
           'oci:' + busybox_layout, 'docker://%s/lab/zstd:1' % plain.host)
    manifest = json.loads(subprocess.run(['skopeo', 'inspect', '--raw', '--tls-verify=false',
                                          'docker://%s/lab/zstd:1' % plain.host], check=True, capture_output=True,
                                         text=True).stdout)
    assert manifest['layers'][0]['mediaType'].endswith('+zstd'), 'the layer really is zstd'
    lab('pull', '%s/lab/zstd:1' % plain.host)
    assert lab('run', '%s/lab/zstd:1' % plain.host, 'z').stdout == 'hello from busybox\n'
    # a manifest list: this machine's entry is picked; one for another architecture only is refused
    raw = subprocess.run(['skopeo', 'inspect', '--raw', '--tls-verify=false', 'docker://%s/lab/zstd:1' % plain.host],
                         check=True, capture_output=True).stdout
    entry = {'mediaType': manifest.get('mediaType', 'application/vnd.oci.image.manifest.v1+json'), 'digest': 'sha256:' + hashlib.sha256(raw).hexdigest(),
             'size': len(raw)}
    both = [dict(entry, platform={'os': 'linux', 'architecture': 'arm64'}),
            dict(entry, platform={'os': 'linux', 'architecture': 'amd64'})]
    put_index(plain, 'lab/zstd', 'multi', both)
    put_index(plain, 'lab/zstd', 'armonly', both[:1])
    assert 'Pulled' in lab('pull', '%s/lab/zstd:multi' % plain.host).stdout
    before = lab.listing()
    error = lab.fails('pull', '%s/lab/zstd:armonly' % plain.host)
    assert 'has no image for linux/amd64, only for linux/arm64' in error, error
    assert lab.listing() == before


def test_whiteouts_and_opaque_folders_of_another_tool_become_overlayfs_own(lab, plain, busybox_layout, tmp_path):
    """umoci writes OCI's .wh. files: a deleted file, and a folder deleted and made again (opaque)."""
    layout = str(tmp_path / 'layout')
    shutil.copytree(busybox_layout.rpartition(':')[0], layout)
    bundle = str(tmp_path / 'bundle')

    def layer(change):
        if os.path.exists(bundle):
            shutil.rmtree(bundle)
        subprocess.run(['umoci', 'unpack', '--image', layout + ':bb', bundle], check=True, stdout=subprocess.DEVNULL)
        change(os.path.join(bundle, 'rootfs'))
        subprocess.run(['umoci', 'repack', '--image', layout + ':bb', bundle], check=True)

    def first(rootfs):
        os.makedirs(os.path.join(rootfs, 'etc', 'old'))
        for name in ('etc/motd', 'etc/keep', 'etc/old/a', 'etc/old/b'):
            with open(os.path.join(rootfs, name), 'w') as f:
                f.write(name + '\n')

    def second(rootfs):
        os.unlink(os.path.join(rootfs, 'etc', 'motd'))
        shutil.rmtree(os.path.join(rootfs, 'etc', 'old'))
        os.makedirs(os.path.join(rootfs, 'etc', 'old'))
        with open(os.path.join(rootfs, 'etc', 'old', 'new'), 'w') as f:
            f.write('new\n')
    layer(first)
    layer(second)
    ref = '%s/lab/whiteouts:1' % plain.host
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + layout + ':bb', 'docker://' + ref)
    lab('pull', ref)
    assert len(lab.image(ref)['layers']) == 2
    out = lab('run', ref, 'w', '--', 'sh', '-c', 'ls /etc; echo --; ls -a /etc/old').stdout
    etc, old = out.split('--\n')
    assert 'keep' in etc.split() and 'motd' not in etc.split(), 'the deleted file is gone, the kept one is there'
    assert old.split() == ['.', '..', 'new'], 'the folder made again holds only its new file: %s' % old


def put_index(registry, repository, tag, manifests):
    body = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
                       'manifests': manifests}).encode()
    connection = http.client.HTTPConnection(registry.host)
    connection.request('PUT', '/v2/%s/manifests/%s' % (repository, tag), body,
                       {'Content-Type': 'application/vnd.oci.image.index.v1+json'})
    response = connection.getresponse()
    assert response.status == 201, response.read()
    connection.close()


def test_a_corrupted_blob_is_refused_and_nothing_enters_the_store(lab, plain, busybox_layout):
    skopeo('copy', '--dest-tls-verify=false', '--dest-compress-format', 'zstd', '--dest-compress',
           'oci:' + busybox_layout, 'docker://%s/lab/zstd:1' % plain.host)
    lab('pull', '%s/lab/zstd:1' % plain.host)  # the control, and a store in use
    lab('rmi', '%s/lab/zstd:1' % plain.host)
    lab('rmcache')  # its layer too: the pull below must fetch the same layer again
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % plain.host)
    manifest = json.loads(subprocess.run(['skopeo', 'inspect', '--raw', '--tls-verify=false',
                                          'docker://%s/lab/busybox:1' % plain.host], check=True, capture_output=True,
                                         text=True).stdout)
    layer = manifest['layers'][0]['digest'][7:]
    with open(plain.blob_files()[layer], 'r+b') as f:  # the same size, other bytes: the registry serves it as it is
        f.seek(100)
        f.write(b'\0' * 64)
    before = lab.listing()
    error = lab.fails('pull', '%s/lab/busybox:1' % plain.host)
    assert 'blob sha256:%s of %s/lab/busybox:1 does not match its digest' % (layer, plain.host) in error, error
    assert lab.listing() == before, 'nothing entered the store'


# -- archives other tools wrote, and archives other tools read ---------------------------------------------
def test_docker_and_oci_archives_of_other_tools_load_and_ours_are_read_by_skopeo(lab, busybox_layout, tmp_path):
    docker_archive, oci_archive = str(tmp_path / 'docker.tar'), str(tmp_path / 'oci.tar')
    skopeo('copy', 'oci:' + busybox_layout, 'docker-archive:%s:lab/busybox:2' % docker_archive)
    skopeo('copy', 'oci:' + busybox_layout, 'oci-archive:%s:bb' % oci_archive)
    assert 'Loaded docker.io/lab/busybox:2' in lab('load', '-i', docker_archive).stdout
    assert lab('run', 'lab/busybox:2', 'd').stdout == 'hello from busybox\n'
    assert 'Loaded bb' in lab('load', '-i', oci_archive).stdout, 'the name in its index'
    assert lab('run', 'bb', 'o').stdout == 'hello from busybox\n'
    assert lab.image('bb')['id'] == lab.image('docker.io/lab/busybox:2')['id'], 'its config digest, both ways'
    for form, transport in (('docker-archive', 'docker-archive'), ('oci', 'oci-archive')):
        out = str(tmp_path / ('ours-%s.tar' % form))
        lab('save', '--format', form, '-o', out, 'bb')
        inspected = json.loads(subprocess.run(['skopeo', 'inspect', '%s:%s' % (transport, out)], check=True,
                                              capture_output=True, text=True).stdout)
        assert inspected['Labels'] == {'course': 'cs695'} and inspected['Os'] == 'linux', inspected
    # bad input: a truncated archive, one of an unknown format
    with open(docker_archive, 'rb') as f:
        half = f.read(os.path.getsize(docker_archive) // 2)
    (tmp_path / 'half.tar').write_bytes(half)
    (tmp_path / 'text.tar').write_text('not an archive\n')
    before = lab.listing()
    for path, message in ((str(tmp_path / 'half.tar'), 'is damaged or truncated'),
                          (str(tmp_path / 'text.tar'), 'cannot read the archive')):
        assert message in lab.fails('load', '-i', path), path
        assert lab.listing() == before


def test_podman_loads_our_archives_and_we_load_podmans(lab, plain, busybox_layout, tmp_path):
    """podman (Debian's, vfs storage of the test's own) loads both our formats; we load what its save writes."""
    import tempfile
    runroot = tempfile.mkdtemp(prefix='cdt-podman-')  # podman takes a runroot of at most 50 characters
    podman = ['podman', '--root', str(tmp_path / 'podman'), '--runroot', runroot,
              '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none']
    env = dict(os.environ, TMPDIR=str(tmp_path))
    try:
        _podman_round_trip(lab, plain, busybox_layout, tmp_path, podman, env)
    finally:
        subprocess.run(['rm', '-rf', runroot], check=True)


def _podman_round_trip(lab, plain, busybox_layout, tmp_path, podman, env):

    def run_podman(*args):
        return subprocess.run(podman + list(args), check=True, capture_output=True, text=True, env=env).stdout
    skopeo('copy', 'oci:' + busybox_layout, 'docker-archive:%s:lab/busybox:2' % (tmp_path / 'in.tar'))
    lab('load', '-i', str(tmp_path / 'in.tar'), '--name', 'course')
    for form in ('docker-archive', 'oci'):
        out = str(tmp_path / ('ours-%s.tar' % form))
        lab('save', '--format', form, '-o', out, 'course')
        assert 'Loaded image' in run_podman('load', '-i', out), form
    inspected = json.loads(run_podman('image', 'inspect', 'localhost/course:latest'))[0]
    assert inspected['Config']['Labels'] == {'course': 'cs695'}, inspected['Config']
    for form in ('docker-archive', 'oci-archive'):
        out = str(tmp_path / ('podman-%s.tar' % form))
        run_podman('save', '--format', form, '-o', out, 'localhost/course:latest')
        lab('load', '-i', out, '--name', 'from-' + form)
        assert lab('run', 'from-' + form, 'p-' + form).stdout == 'hello from busybox\n', form
    buildah = ['buildah'] + podman[1:7]  # the same storage
    container = subprocess.run(buildah + ['from', 'scratch'], check=True, capture_output=True, text=True,
                               env=env).stdout.strip()
    for args in (['copy', container, '/bin/busybox', '/bin/busybox'],
                 ['config', '--cmd', '["/bin/busybox", "echo", "from buildah"]', container],
                 ['commit', '-q', container, 'lab/buildah:1'],
                 ['push', '-q', 'lab/buildah:1', 'oci-archive:' + str(tmp_path / 'buildah.tar')], ['rm', container]):
        subprocess.run(buildah + args, check=True, capture_output=True, env=env)
    lab('load', '-i', str(tmp_path / 'buildah.tar'), '--name', 'from-buildah')
    assert lab('run', 'from-buildah', 'b').stdout == 'from buildah\n', "buildah's OCI archive"
    ref = '%s/lab/from-podman:1' % plain.host  # podman's archive, into a registry by skopeo, pulled
    skopeo('copy', '--dest-tls-verify=false', 'docker-archive:' + str(tmp_path / 'podman-docker-archive.tar'),
           'docker://' + ref)
    lab('pull', ref)
    assert lab('run', ref, 'p-reg').stdout == 'hello from busybox\n'


# -- TLS with a test CA in certs.d, htpasswd users; token auth ------------------------------------------------
def make_ca(folder):
    """A test CA and a server certificate for 127.0.0.1 it signed: (ca.crt, server.crt, server.key)."""
    os.makedirs(folder, exist_ok=True)

    def run(*args):
        subprocess.run(['openssl'] + list(args), check=True, cwd=folder, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    run('req', '-x509', *key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=lab CA')
    run('req', *key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    with open(os.path.join(folder, 'san.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1\n')
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
        '-out', 'server.crt', '-extfile', 'san.ext')
    return [os.path.join(folder, n) for n in ('ca.crt', 'server.crt', 'server.key')]


def test_tls_with_a_lab_ca_and_htpasswd_users(root, tmp_path, busybox_layout):
    ca, cert, key = make_ca(str(tmp_path / 'ca'))
    htpasswd = str(tmp_path / 'htpasswd')
    with open(htpasswd, 'w') as f:
        subprocess.run(['htpasswd', '-Bbn', 'student', 's3cret'], check=True, stdout=f)
    registry = Registry(tmp_path / 'registry', tls=(cert, key), auth={'htpasswd': {'realm': 'lab', 'path': htpasswd}})
    try:
        certs_d = tmp_path / 'certs.d'
        (tmp_path / 'skopeo-certs').mkdir()
        (tmp_path / 'skopeo-certs' / 'ca.crt').write_bytes(open(ca, 'rb').read())
        skopeo('copy', '--dest-creds', 'student:s3cret', '--dest-cert-dir', str(tmp_path / 'skopeo-certs'),
               'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % registry.host)
        lab = Lab(root, tmp_path / 'lab', REGISTRY_CERTS_D=str(certs_d))
        ref = '%s/lab/busybox:1' % registry.host
        error = lab.fails('pull', ref)
        assert 'TLS with %s failed' % registry.host in error and '%s/%s/ca.crt' % (certs_d, registry.host) in error
        (certs_d / registry.host).mkdir(parents=True)
        (certs_d / registry.host / 'ca.crt').write_bytes(open(ca, 'rb').read())
        assert 'needs a login: conductor login %s' % registry.host in lab.fails('pull', ref)
        error = lab.fails('login', '-u', 'student', '--password-stdin', registry.host, input='wrong\n')
        assert "refused the user 'student'" in error, error
        assert not os.path.exists(lab.env['REGISTRY_AUTH_FILE']), 'a refused login stores nothing'
        assert 'Login Succeeded' in lab('login', '-u', 'student', '--password-stdin', registry.host,
                                        input='s3cret\n').stdout
        assert oct(os.stat(lab.env['REGISTRY_AUTH_FILE']).st_mode & 0o777) == '0o600'
        lab('pull', ref)
        assert lab('run', ref, 't').stdout == 'hello from busybox\n'
        lab('push', ref, '%s/lab/again:1' % registry.host)
        lab('logout', registry.host)
        assert registry.host not in open(lab.env['REGISTRY_AUTH_FILE']).read()
    finally:
        registry.stop()


class TokenIssuer:
    """A token service as Docker Hub's: GET /token?service=..&scope=.. with Basic credentials gives a JWT signed by
    the test's key (its certificate in x5c), granting the asked actions to student:s3cret, none to anyone else."""

    def __init__(self, folder, expired=False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        import datetime
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, 'lab token issuer')])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(
            self.key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
            now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256())
        self.bundle = os.path.join(str(folder), 'issuer.crt')
        os.makedirs(str(folder), exist_ok=True)
        with open(self.bundle, 'wb') as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.expired, self.asked = expired, []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                issuer.asked.append(self.path)
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(json.dumps({'token': issuer.token(self.path, self.headers.get('Authorization'))}).encode())

            def log_message(self, *args):
                pass
        self.server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        self.realm = 'http://127.0.0.1:%d/token' % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, path, authorization):
        import urllib.parse
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        good = authorization == 'Basic ' + base64.b64encode(b'student:s3cret').decode()
        access = []
        for scope in query.get('scope', []) if good else []:
            kind, name, actions = scope.split(':')
            access.append({'type': kind, 'name': name, 'actions': actions.split(',')})
        now = int(time.time()) - (7200 if self.expired else 0)
        claims = {'iss': 'lab-issuer', 'sub': 'student' if good else '', 'aud': query['service'][0], 'exp': now + 300,
                  'nbf': now - 10, 'iat': now, 'jti': os.urandom(8).hex(), 'access': access}
        header = {'typ': 'JWT', 'alg': 'ES256', 'x5c': [base64.b64encode(self.der).decode()]}

        def part(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b'=').decode()
        signing = '%s.%s' % (part(header), part(claims))
        r, s = utils.decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        signature = base64.urlsafe_b64encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big')).rstrip(b'=').decode()
        return signing + '.' + signature

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_bearer_tokens_from_a_token_service_and_an_expired_token(root, tmp_path, busybox_layout):
    issuer = TokenIssuer(tmp_path / 'issuer')
    auth = {'token': {'realm': issuer.realm, 'service': 'lab-registry', 'issuer': 'lab-issuer',
                      'rootcertbundle': issuer.bundle}}
    registry = Registry(tmp_path / 'registry', auth=auth)
    try:
        lab = Lab(root, tmp_path / 'lab', REGISTRY_INSECURE=registry.host)
        ref = '%s/lab/busybox:1' % registry.host
        with open(os.path.join(lab.folder, 'auth.json'), 'w') as f:  # as podman login would have left it
            json.dump({'auths': {registry.host: {'auth': base64.b64encode(b'student:s3cret').decode()}}}, f)
        layout = tmp_path / 'ours.tar'
        skopeo('copy', 'oci:' + busybox_layout, 'docker-archive:%s:lab/busybox:1' % layout)
        lab('load', '-i', str(layout), '--name', 'bb')
        issuer_host = issuer.realm.split('/')[2]
        error = lab.fails('push', 'bb', ref)  # the realm is plain HTTP: the password must not go there
        assert 'sends for its token to %s, which is not HTTPS: refused' % issuer.realm in error, error
        assert not issuer.asked, 'not even asked'
        lab.configure(REGISTRY_INSECURE='%s,%s' % (registry.host, issuer_host))  # the lab's own, listed
        lab('push', 'bb', ref)
        assert any('scope=repository%3Alab%2Fbusybox%3Apull%2Cpush' in a for a in issuer.asked), issuer.asked
        lab('rmi', 'bb')
        lab('pull', ref)
        assert lab('run', ref, 'tok').stdout == 'hello from busybox\n'
        os.unlink(os.path.join(lab.folder, 'auth.json'))
        error = lab.fails('pull', '%s/lab/other:1' % registry.host)
        assert 'needs a login' in error, error
        issuer.expired = True
        with open(os.path.join(lab.folder, 'auth.json'), 'w') as f:
            json.dump({'auths': {registry.host: {'auth': base64.b64encode(b'student:s3cret').decode()}}}, f)
        before = lab.listing()
        error = lab.fails('pull', ref + '0')
        assert "refused the user 'student'" in error and 'expired token' in error, error
        assert lab.listing() == before
    finally:
        registry.stop()
        issuer.stop()


# -- the modules, through a real ansible-playbook run --------------------------------------------------------
PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  environment: %(env)s
  vars:
    reg: "%(host)s"
    root: "%(root)s"
  tasks:
    - name: Pull (check mode first, then for real, then again)
      cs695.conductor.conductor_image: {name: "{{ reg }}/lab/busybox:1", source: pull, root: "{{ root }}"}
      check_mode: true
      register: checked
    - cs695.conductor.conductor_image: {name: "{{ reg }}/lab/busybox:1", source: pull, root: "{{ root }}"}
      register: pulled
    - cs695.conductor.conductor_image: {name: "{{ reg }}/lab/busybox:1", source: pull, root: "{{ root }}",
                                        force_source: true}
      register: again
    - name: Build on it and push (then again, which the registry already holds)
      cs695.conductor.conductor_image:
        name: app
        instructions: ["FROM {{ reg }}/lab/busybox:1", "RUN echo pushed > /p", 'CMD ["cat", "/p"]']
        push: true
        repository: "{{ reg }}/course/app:1"
        root: "{{ root }}"
      register: pushed
    - cs695.conductor.conductor_image:
        name: app
        instructions: ["FROM {{ reg }}/lab/busybox:1", "RUN echo pushed > /p", 'CMD ["cat", "/p"]']
        push: true
        repository: "{{ reg }}/course/app:1"
        root: "{{ root }}"
      register: pushed_again
    - name: A container of an image that is not here yet (pull missing, the default)
      cs695.conductor.conductor_container:
        {name: c1, image: "{{ reg }}/course/app:1", root: "{{ root }}", state: present}
      check_mode: true
      register: c_checked
    - cs695.conductor.conductor_container:
        {name: c1, image: "{{ reg }}/course/app:1", root: "{{ root }}", state: present}
      register: c_made
    - cs695.conductor.conductor_container:
        {name: c1, image: "{{ reg }}/course/app:1", root: "{{ root }}", state: present, pull: always}
      register: c_again
    - ansible.builtin.assert:
        that:
          - checked is changed and pulled is changed and again is not changed
          - pulled.image.digest is match('sha256:')
          - pushed is changed and pushed.pushed.digest is match('sha256:') and 'pushed' in pushed.actions
          - pushed_again is not changed
          - c_checked is changed and c_made is changed and c_again is not changed
'''


def test_the_modules_pull_push_and_run_idempotently(lab, plain, busybox_layout, tmp_path):
    skopeo('copy', '--dest-tls-verify=false', 'oci:' + busybox_layout, 'docker://%s/lab/busybox:1' % plain.host)
    collections = tmp_path / 'collections' / 'ansible_collections' / 'cs695'
    collections.mkdir(parents=True)
    os.symlink(helpers.CHECKOUT, str(collections / 'conductor'))
    env = dict((k, lab.env[k]) for k in ('CONDUCTOR_CONFIG', 'HOME', 'REGISTRY_AUTH_FILE'))
    playbook = tmp_path / 'registry.yml'
    playbook.write_text(PLAYBOOK % {'env': json.dumps(env), 'host': plain.host, 'root': lab.root})
    (tmp_path / 'inventory').write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n'
                                        % sys.executable)
    bin_folder = os.path.dirname(sys.executable)
    result = subprocess.run([os.path.join(bin_folder, 'ansible-playbook'), '-i', str(tmp_path / 'inventory'),
                             str(playbook)], capture_output=True, text=True, cwd=str(tmp_path),
                            env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'collections'),
                                     ANSIBLE_NOCOLOR='1', PATH=bin_folder + os.pathsep + os.environ['PATH']), check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert lab('start', 'c1').returncode == 0
