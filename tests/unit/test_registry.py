# SPDX-License-Identifier: GPL-3.0-or-later
"""References by Docker's rules, the registry client's pure parts, and OCI configs read as Conductor's."""
import base64
import json

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _archive, _oci, _reference, _registry
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError

DIGEST = 'sha256:' + 'ab' * 32


@pytest.mark.parametrize('text, expected', [
    ('python:3.12-slim', 'docker.io/library/python:3.12-slim'),
    ('python', 'docker.io/library/python:latest'),
    ('bitnami/redis', 'docker.io/bitnami/redis:latest'),
    ('index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'),
    ('ghcr.io/owner/app:v1.2', 'ghcr.io/owner/app:v1.2'),
    ('localhost/app', 'localhost/app:latest'),
    ('LAB.example:5000/course/db:16', 'lab.example:5000/course/db:16'),
    ('registry.lab:5000/a/b/c', 'registry.lab:5000/a/b/c:latest'),
    ('python@' + DIGEST, 'docker.io/library/python@' + DIGEST),
    ('python:3@' + DIGEST, 'docker.io/library/python:3@' + DIGEST),
    ('my_app.v2-x__y', 'docker.io/library/my_app.v2-x__y:latest'),
])
def test_references_read_as_docker_reads_them(text, expected):
    assert str(_reference.parse(text)) == expected


@pytest.mark.parametrize('text, why', [
    ('Python:3', "'Python' is not a name component"),
    ('python:', 'a tag is'),
    ('python:-x', 'a tag is'),
    ('python@sha256:abc', 'a digest is sha256: and 64 hex digits'),
    ('lab:99999/app', "'lab:99999' is not a registry host[:port]"),
    ('a//b', "'' is not a name component"),
    ('a/b_-c', "'b_-c' is not a name component"),
    ('../x', "'..' is not a registry host[:port]"),
    ('x' * 201, 'it must be 1 to 200 characters'),
    ('', 'it must be 1 to 200 characters'),
])
def test_malformed_references_get_one_clear_error(text, why):
    with pytest.raises(ConductorError, match='invalid image reference') as error:
        _reference.parse(text)
    assert why in str(error.value)


def test_image_names_plain_or_by_reference_and_their_files():
    assert _reference.image_name('web') == 'web', 'a plain name stays as it is'
    assert _reference.image_name('python:3') == 'docker.io/library/python:3'
    name = _reference.image_name('lab:5000/a/b:1')
    assert _reference.file_name(name) == 'lab:5000+a+b:1' and '/' not in _reference.file_name(name)
    assert _reference.from_file_name(_reference.file_name(name)) == name
    with pytest.raises(ConductorError, match="invalid image name '..'"):
        _reference.image_name('..')


def test_www_authenticate_challenges_are_parsed_with_commas_inside_quotes():
    params = _registry.parse_challenge('realm="https://auth.docker.io/token",service="registry.docker.io",'
                                       'scope="repository:library/python:pull,push"')
    assert params == {'realm': 'https://auth.docker.io/token', 'service': 'registry.docker.io',
                      'scope': 'repository:library/python:pull,push'}


def test_credentials_come_from_the_first_auth_file_that_names_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv('REGISTRY_AUTH_FILE', str(tmp_path / 'auth.json'))
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('XDG_RUNTIME_DIR', raising=False)

    def auth(user, password):
        return {'auth': base64.b64encode(('%s:%s' % (user, password)).encode()).decode()}
    (tmp_path / 'auth.json').write_text(json.dumps({'auths': {'lab:5000': auth('student', 'pw:with:colons')}}))
    (tmp_path / '.docker').mkdir()
    (tmp_path / '.docker' / 'config.json').write_text(json.dumps({'auths': {
        'https://index.docker.io/v1/': auth('hub', 'x'), 'lab:5000': auth('other', 'y')}}))
    assert _registry.credentials('lab:5000') == ('student', 'pw:with:colons'), 'the first file wins'
    assert _registry.credentials('docker.io') == ('hub', 'x'), "Docker's key for Docker Hub"
    assert _registry.credentials('ghcr.io') is None


def test_plain_http_only_for_insecure_registries_and_mirrors_by_registry():
    config = {'REGISTRY_INSECURE': 'lab:5000', 'REGISTRY_MIRRORS': 'docker.io=https://mirror.lab:5000,'
                                                                   'quay.io=http://lab:5000'}
    assert _registry.Endpoint.of(config, 'lab:5000').scheme == 'http'
    assert _registry.Endpoint.of(config, 'ghcr.io').scheme == 'https'
    assert _registry.Endpoint.of(config, 'docker.io').host == 'registry-1.docker.io'
    assert _registry.mirrors(config, 'docker.io') == ['https://mirror.lab:5000']
    assert [e.host for e in _registry.endpoints(config, _reference.parse('quay.io/a/b'))] == ['lab:5000', 'quay.io']
    with pytest.raises(ConductorError, match='plain HTTP, which Conductor uses only for registries listed in '
                                             'REGISTRY_INSECURE'):
        _registry.endpoints({'REGISTRY_MIRRORS': 'docker.io=http://mirror.lab'}, _reference.parse('python'))
    with pytest.raises(ConductorError, match="'docker.io' is not REGISTRY=https://MIRROR"):
        _registry.mirrors({'REGISTRY_MIRRORS': 'docker.io'}, 'docker.io')


def test_a_manifest_list_picks_linux_on_this_architecture(monkeypatch):
    monkeypatch.setattr(_oci, 'machine_arch', lambda: 'arm64')
    index = {'manifests': [{'digest': 'a', 'platform': {'os': 'linux', 'architecture': 'amd64'}},
                           {'digest': 'w', 'platform': {'os': 'windows', 'architecture': 'arm64'}},
                           {'digest': 'b', 'platform': {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}}]}
    assert _archive.pick_manifest(index, 'x')['digest'] == 'b'
    with pytest.raises(ConductorError, match='x has no image for linux/arm64, only for linux/amd64, windows/arm64'):
        _archive.pick_manifest({'manifests': index['manifests'][:2]}, 'x')
    assert _archive.pick_manifest({'manifests': [{'digest': 'c'}]}, 'x')['digest'] == 'c', 'no platforms: the one'


def test_an_oci_config_is_read_as_conductors_and_checked():
    oci = {'architecture': 'amd64', 'config': {
        'Env': ['PATH=/usr/local/bin:/usr/bin', 'LANG=C.UTF-8'], 'Cmd': ['python3'], 'Entrypoint': None,
        'WorkingDir': '/app/', 'User': '1000:1000', 'Labels': {'a': 'b'}, 'ExposedPorts': {'8080/tcp': {}},
        'Volumes': {'/data': {}}, 'StopSignal': 'SIGINT',
        'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000, 'Retries': 2}}}
    config = _archive.from_oci_config(oci)
    assert config == {'env': ['PATH=/usr/local/bin:/usr/bin', 'LANG=C.UTF-8'], 'cmd': ['python3'], 'entrypoint': None,
                      'workdir': '/app', 'user': '1000:1000', 'labels': {'a': 'b'}, 'exposed': ['8080/tcp'],
                      'volumes': ['/data'], 'stop_signal': 2,
                      'healthcheck': {'test': ['CMD-SHELL', 'true'], 'interval': 5.0, 'timeout': 30.0,
                                      'start_period': 0.0, 'start_interval': 5.0, 'retries': 2}}
    _archive.check_config(config, 'test')
    assert _archive.from_oci_config({'config': {'Healthcheck': {'Test': ['NONE']}}}).get('healthcheck') is None
    bad = _archive.from_oci_config({'config': {'StopSignal': 'SIGNOPE'}})
    with pytest.raises(ConductorError, match="stop_signal is 'SIGNOPE'"):
        _archive.check_config(bad, 'the image config')


@pytest.mark.parametrize('raw, body', [
    (b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello', b'hello'),
    (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: x\r\n\r\n',
     b'hello'),
    (b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\nto the end', b'to the end'),
])
def test_the_http_client_reads_lengths_chunks_and_bodies_to_the_end(raw, body):
    import socket
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    response = _registry.Response(ours, 'GET')
    got = b''.join(iter(lambda: response.read(2), b''))
    response.close()
    assert (response.status, got) == (200, body)


def test_a_body_cut_short_is_an_error_not_a_short_blob():
    import socket
    ours, theirs = socket.socketpair()
    theirs.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf')
    theirs.close()
    response = _registry.Response(ours, 'GET')
    with pytest.raises(OSError, match='closed 6 bytes before the end'):
        response.read()
    response.close()


@pytest.mark.parametrize('members', [1, 3])
def test_gzip_layers_of_one_or_many_members_decompress_whole(members):
    import gzip
    import io
    import os
    data = os.urandom(1 << 20) + b'layer ' * (1 << 20)
    stream = _archive._Gunzipped(io.BytesIO(b''.join(gzip.compress(data, 1) for dummy in range(members))))  # pylint: disable=protected-access
    assert b''.join(iter(lambda: stream.read(65536), b'')) == data * members


def test_a_truncated_gzip_layer_is_an_error():
    import gzip
    import io
    stream = _archive._Gunzipped(io.BytesIO(gzip.compress(b'hello' * 1000)[:-12]))  # pylint: disable=protected-access
    with pytest.raises(EOFError, match='ends before its end marker'):
        b''.join(iter(lambda: stream.read(7), b''))


@pytest.mark.parametrize('raw, error', [
    (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nxx', 'a bad chunk size'),
    (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + b'f' * 20 + b'\r\n', 'a bad chunk size'),
    (b'HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nx', 'a bad Content-Length'),
])
def test_a_hostile_response_is_refused_not_read_without_end(raw, error):
    """A negative chunk size read to the end of the connection (a registry could send gigabytes)."""
    import socket
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    with pytest.raises(OSError, match=error):
        _registry.Response(ours, 'GET').read()
    ours.close()


def test_a_truncated_gzip_layer_file_read_ahead_is_an_error(tmp_path):
    """A file's gzip layer is read ahead by a thread (_ReadAhead): its end, or its damage, still reaches the reader,
    and leaving the block early stops the thread."""
    import gzip
    import os
    import threading
    data = os.urandom(3 << 20)
    whole, cut = tmp_path / 'whole', tmp_path / 'cut'
    whole.write_bytes(gzip.compress(data, 1))
    cut.write_bytes(whole.read_bytes()[:-12])
    with _archive._layer_stream(str(whole), 'whole') as stream:  # pylint: disable=protected-access
        assert b''.join(iter(lambda: stream.read(100000), b'')) == data
    with pytest.raises(EOFError, match='ends before its end marker'):
        with _archive._layer_stream(str(cut), 'cut') as stream:  # pylint: disable=protected-access
            b''.join(iter(lambda: stream.read(100000), b''))
    before = threading.active_count()
    with _archive._layer_stream(str(whole), 'whole') as stream:  # pylint: disable=protected-access
        stream.read(10)
    assert threading.active_count() == before


def test_many_gzip_members_decompress_in_bounded_memory():
    """Each member once appended 4 MiB to a buffer that was copied on every read: 256 of them took minutes."""
    import gzip
    import io
    member = gzip.compress(b'\0' * (1 << 20), 9)
    stream = _archive._Gunzipped(io.BytesIO(member * 64))  # pylint: disable=protected-access
    total, biggest = 0, 0
    for chunk in iter(lambda: stream.read(65536), b''):
        total += len(chunk)
        biggest = max(biggest, len(stream.out))
    assert total == 64 << 20 and biggest <= 5 << 20, biggest


def test_credentials_go_only_where_they_belong(tmp_path, monkeypatch):
    """A registry's token realm over plain HTTP, or a mirror, never gets the registry's password."""
    monkeypatch.setenv('REGISTRY_AUTH_FILE', str(tmp_path / 'auth.json'))
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('XDG_RUNTIME_DIR', raising=False)
    (tmp_path / 'auth.json').write_text(json.dumps({'auths': {'lab:5000': {
        'auth': base64.b64encode(b'student:s3cret').decode()}}}))
    registry = _registry.Endpoint.of({}, 'lab:5000')
    assert registry.login == ('student', 's3cret')
    with pytest.raises(ConductorError, match='sends for its token to http://evil:6000/token, which is not HTTPS'):
        registry._token({'realm': 'http://evil:6000/token'}, 'repository:a:pull')  # pylint: disable=protected-access
    mirror = _registry.Endpoint({}, 'https://mirror.lab:5000', 'lab:5000')
    assert mirror.login is None, "a mirror gets its own credentials, never the registry's"
    with pytest.raises(ConductorError, match='plain HTTP'):
        _registry.Endpoint({'REGISTRY_INSECURE': 'lab:5000'}, 'http://mirror.lab:5000', 'lab:5000')


class FakeResponse:
    def __init__(self, status, headers=None):
        self.status, self.reason, self.headers, self.data = status, '', dict(headers or {}), b''

    def getheader(self, name, default=None):
        return self.headers.get(name, default)

    def read(self, size=-1):  # pylint: disable=unused-argument
        return b''

    def close(self):
        pass


def test_a_redirected_host_that_asks_for_a_login_gets_no_credentials(tmp_path, monkeypatch):
    """The registry redirected a request to a host of its choosing, which answered 401 with a realm of its own:
    the stored password went there."""
    monkeypatch.setenv('REGISTRY_AUTH_FILE', str(tmp_path / 'auth.json'))
    monkeypatch.delenv('XDG_RUNTIME_DIR', raising=False)
    (tmp_path / 'auth.json').write_text(json.dumps({'auths': {'lab:5000': {
        'auth': base64.b64encode(b'student:s3cret').decode()}}}))
    endpoint = _registry.Endpoint.of({}, 'lab:5000')
    sent = []

    def send(scheme, host, method, url, headers, body):  # pylint: disable=unused-argument
        sent.append((host, dict(headers)))
        if host == 'lab:5000':
            return FakeResponse(307, {'Location': 'https://elsewhere:7000/steal'})
        return FakeResponse(401, {'WWW-Authenticate': 'Bearer realm="https://elsewhere:7000/token"'})
    monkeypatch.setattr(endpoint, '_send', send)
    with pytest.raises(ConductorError, match='where the registry lab:5000 redirected a request, asks for a login'):
        endpoint.request('GET', '/v2/a/manifests/1', 'repository:a:pull')
    assert all('Authorization' not in headers for host, headers in sent if host != 'lab:5000')
    assert [host for host, headers in sent] == ['lab:5000', 'elsewhere:7000'], 'no token was asked for'
    monkeypatch.setattr(endpoint, '_send', lambda *a: FakeResponse(307, {'Location': 'http://lab:5000/x'}))
    with pytest.raises(ConductorError, match='redirected a request from HTTPS to http://lab:5000/x: refused'):
        endpoint.request('GET', '/v2/a/manifests/1', 'repository:a:pull')
