# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""A registry client for the OCI distribution spec, as Docker, podman and skopeo speak it: pull, push, login.

Where things come from, as podman and Docker have them:
- credentials: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, /run/containers/<uid>/auth.json,
  /etc/containers/auth.json, ~/.docker/config.json (the first that names the registry); `login` writes the
  first of the first three that applies;
- TLS: the system's CAs, plus every *.crt in <certs.d>/HOST[:PORT]/ (REGISTRY_CERTS_D in conductor.conf,
  by default /etc/containers/certs.d and /etc/docker/certs.d), and a client certificate there (*.cert, *.key);
- plain HTTP: only for a registry REGISTRY_INSECURE (comma-separated host[:port]) lists;
- mirrors: REGISTRY_MIRRORS=docker.io=https://mirror.lab:5000,... tried first, then the registry itself.

Auth is the registry's choice, answered on a 401: Basic with the stored credentials, or Bearer, whose
token comes from the realm the WWW-Authenticate header names, for the service and scope it names (the
flow of Docker Hub and ghcr.io), asked again once when a token expires.

A pull asks for the manifest (a manifest list or an OCI index picks linux on this machine's
architecture) and stops there when the image it names is the one the store has. Otherwise it fetches
the config and each layer the store lacks, several at a time, each into a temporary file whose sha256 is
checked as it streams and which is renamed only when it matches; then _archive.store_image unpacks and
checks them as a load does, and nothing enters the store before all of it is checked."""

import base64
import hashlib
import json
import os
import sys

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, human_size, remove_tree, temp_name, write_json)
from ansible_collections.cs695.conductor.plugins.module_utils._reference import Reference, parse
from ansible_collections.cs695.conductor.plugins.module_utils import _oci

ACCEPT = ', '.join(_oci.INDEX_TYPES + _oci.MANIFEST_TYPES)
SCHEMA1 = ('application/vnd.docker.distribution.manifest.v1+json',
           'application/vnd.docker.distribution.manifest.v1+prettyjws')
CERTS_D = '/etc/containers/certs.d:/etc/docker/certs.d'
TIMEOUT = 60
HUB = 'registry-1.docker.io'  # where docker.io's API is
HEX_DIGITS = frozenset('0123456789abcdef')


# -- configuration: credentials, TLS, insecure registries, mirrors -----------------------------------------
def auth_files(write: bool = False) -> 'list[str]':
    """The auth files, in the order they are read (write=True: those login may write, first is used)."""
    files = []
    if os.environ.get('REGISTRY_AUTH_FILE'):
        files.append(os.environ['REGISTRY_AUTH_FILE'])
    if os.environ.get('XDG_RUNTIME_DIR'):
        files.append(os.path.join(os.environ['XDG_RUNTIME_DIR'], 'containers', 'auth.json'))
    files.append('/run/containers/%d/auth.json' % os.getuid())
    if write:
        return files
    return files + ['/etc/containers/auth.json', os.path.join(os.path.expanduser('~'), '.docker', 'config.json')]


def credentials(registry: str) -> 'tuple[str, str] | None':
    """(user, password) for a registry from the first auth file that names it; None when none does."""
    keys = [registry] + (['https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io']
                         if registry == 'docker.io' else ['https://' + registry])
    for path in auth_files():
        try:
            with open(path) as f:
                auths = json.load(f).get('auths') or {}
        except (OSError, ValueError, AttributeError):
            continue
        for key in keys:
            entry = auths.get(key) if isinstance(auths, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get('auth'), str):
                try:
                    user, colon, password = base64.b64decode(entry['auth']).decode().partition(':')
                except ValueError:
                    raise ConductorError('the credentials for %s in %s are not base64 of user:password: log in again '
                                         '(conductor login %s)' % (registry, path, registry))
                if colon:
                    return user, password
    return None


def _listed(config, key):
    return [word.strip() for word in (config.get(key) or '').replace(' ', ',').split(',') if word.strip()]


def mirrors(config: dict, registry: str) -> 'list[str]':
    """REGISTRY_MIRRORS' endpoints (https://host[:port] or http://...) for a registry, in order."""
    found = []
    for item in _listed(config, 'REGISTRY_MIRRORS'):
        name, equals, url = item.partition('=')
        if not equals or '://' not in url:
            raise ConductorError('REGISTRY_MIRRORS in the config: %r is not REGISTRY=https://MIRROR[:PORT]' % item)
        if name == registry:
            found.append(url.rstrip('/'))
    return found


class Endpoint:
    """One registry (or mirror) as it is reached: scheme, host[:port], the TLS context, the credentials."""

    def __init__(self, config, url, registry):
        scheme, dummy, host = url.partition('://')
        self.scheme, self.host, self.registry = scheme, host, registry
        self.insecure = _listed(config, 'REGISTRY_INSECURE')
        itself = host == (HUB if registry == 'docker.io' else registry)
        if scheme == 'http' and host not in self.insecure and not (itself and registry in self.insecure):
            raise ConductorError('%s is plain HTTP, which Conductor uses only for registries listed in '
                                 'REGISTRY_INSECURE in conductor.conf' % url)
        self.certs = [os.path.join(folder, host) for folder in (config.get('REGISTRY_CERTS_D') or CERTS_D).split(':')]
        self.login = credentials(registry if itself else host)  # a mirror never gets the registry's password
        self.tokens = {}  # scope: token

    @classmethod
    def of(cls, config, registry):
        """The registry itself: https, or http when it is listed as insecure."""
        insecure = registry in _listed(config, 'REGISTRY_INSECURE')
        return cls(config, '%s://%s' % ('http' if insecure else 'https', HUB if registry == 'docker.io' else registry),
                   registry)

    def _tls(self, host):
        """The TLS context for host: the system's CAs, plus the registry's own from certs.d (and a client
        certificate there)."""
        import ssl  # https alone: 8 ms
        context = ssl.create_default_context()
        for folder in self.certs if host == self.host else []:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                if name.endswith('.crt'):
                    context.load_verify_locations(cafile=path)
                elif name.endswith('.cert') and os.path.exists(path[:-5] + '.key'):
                    context.load_cert_chain(path, path[:-5] + '.key')
        return context

    def _send(self, scheme, host, method, url, headers, body):
        """One HTTP request on a connection of its own; the response, or one clear error."""
        try:
            return http_request(scheme, host, method, url, headers, body, self._tls(host) if scheme == 'https' else None)
        except (OSError, ValueError, UnicodeError) as e:
            if type(e).__module__ == 'ssl':  # ssl's errors: told apart without importing ssl
                raise ConductorError('TLS with %s failed (%s): if the registry\'s certificate comes from a CA of '
                                     'your own, put the CA in %s/ca.crt' % (host, getattr(e, 'reason', e),
                                                                            self.certs[0]))
            if isinstance(e, OSError):
                raise ConductorError('cannot reach %s (%s)' % (host, e))
            raise ConductorError('cannot ask %s: %s' % (host, e))  # a name or header no HTTP request can carry

    def request(self, method, path, scope, headers=None, body=None, stream=False, redirects=5):
        """One request, authenticated as the registry asks; the response (read into .data, or open when
        stream), following redirects (a blob store elsewhere gets no credentials)."""
        headers = dict(headers or {})
        for attempt in range(3):
            if scope in self.tokens:
                headers['Authorization'] = self.tokens[scope]
            scheme, host, url = self.scheme, self.host, path
            for dummy in range(redirects + 1):
                response = self._send(scheme, host, method, url, headers, body)
                location = response.getheader('Location')
                if response.status not in (301, 302, 303, 307, 308) or not location:
                    break
                response.close()
                if '://' in location:
                    new_scheme, dummy, rest = location.partition('://')
                    if scheme == 'https' and new_scheme != 'https':
                        raise ConductorError('the registry %s redirected a request from HTTPS to %s: refused'
                                             % (self.registry, location[:100]))
                    scheme = new_scheme
                    host, slash, url = rest.partition('/')
                    url = '/' + url
                    headers.pop('Authorization', None)
                else:
                    url = location
            if response.status != 401:
                if not stream:
                    response.data = response.read(_oci.JSON_MAX + 1)
                    response.close()
                return response
            challenge = response.getheader('WWW-Authenticate') or ''
            response.data = response.read(1 << 16)
            response.close()
            if host != self.host:  # where a redirect led: it gets no credentials of ours
                raise ConductorError('%s, where the registry %s redirected a request, asks for a login: refused (it '
                                     'gets no credentials of this registry)' % (host, self.registry))
            if attempt == 2:  # a fresh token (asked again once, for one that expired) or the password refused
                raise self._denied(_failed(response, '').args[0].partition('(')[2].rstrip(')'))
            self._authenticate(challenge, scope, retried=attempt > 0)

    def _authenticate(self, challenge, scope, retried):
        kind, dummy, params = challenge.partition(' ')
        kind = kind.lower()
        if kind == 'basic':
            if self.login is None or retried:
                raise self._denied()
            self.tokens[scope] = 'Basic ' + base64.b64encode(('%s:%s' % self.login).encode()).decode()
        elif kind == 'bearer':
            self.tokens[scope] = 'Bearer ' + self._token(parse_challenge(params), scope)
        else:
            raise ConductorError('the registry %s asks for %r authentication, which Conductor does not speak (Basic '
                                 'and Bearer it does)' % (self.registry, kind or challenge))

    def _denied(self, words=''):
        said = ' (it said: %s)' % words if words else ''
        if self.login is None:
            return ConductorError('the registry %s needs a login%s: conductor login %s'
                                  % (self.registry, said, self.registry))
        return ConductorError('the registry %s refused the user %r%s: a wrong password, an expired token or no '
                              'access to this image; log in again (conductor login %s)'
                              % (self.registry, self.login[0], said, self.registry))

    def _token(self, params, scope):
        """A bearer token from the realm, for the challenge's service and our scope (with credentials if any)."""
        import urllib.parse
        realm = params.get('realm')
        if not realm or '://' not in realm:
            raise ConductorError('the registry %s asked for a token without a realm to get it from' % self.registry)
        query = [('service', params['service'])] if params.get('service') else []
        query += [('scope', s) for s in scope.split(' ') if s]
        scheme, dummy, rest = realm.partition('://')
        host, slash, path = rest.partition('/')
        url = '/' + path + ('&' if '?' in path else '?') + urllib.parse.urlencode(query)
        headers = {}
        if scheme != 'https' and host not in self.insecure:
            raise ConductorError('the registry %s sends for its token to %s, which is not HTTPS: refused (list %s in '
                                 'REGISTRY_INSECURE if it is a lab\'s own)' % (self.registry, realm[:100], host))
        if self.login:
            headers['Authorization'] = 'Basic ' + base64.b64encode(('%s:%s' % self.login).encode()).decode()
        response = self._send(scheme, host, 'GET', url, headers, None)
        try:
            data = response.read(1 << 20)
        except OSError as e:
            raise ConductorError('cannot get a token for %s from %s (%s)' % (self.registry, realm, e))
        finally:
            response.close()
        if response.status == 401 or response.status == 403:
            raise self._denied()
        try:
            answer = json.loads(data)
            token = answer.get('token') or answer.get('access_token')
        except (ValueError, AttributeError):
            token = None
        if isinstance(token, str) and not (token and token.isascii() and token.isprintable() and ' ' not in token):
            token = None  # it goes into a header line: visible ASCII only
        if response.status != 200 or not isinstance(token, str):
            raise ConductorError('the token service %s of %s answered %d without a token'
                                 % (realm, self.registry, response.status))
        return token


class Response:
    """An HTTP/1.1 response as it comes: status, reason, headers (lower-case names), and its body, read with
    read(size) (Content-Length, chunked, or up to the end of the connection)."""

    def __init__(self, sock, method):
        self.sock, self.file = sock, sock.makefile('rb')
        words = self.file.readline(65537).decode('latin-1').rstrip('\r\n').split(' ', 2)
        if len(words) < 2 or not words[0].startswith('HTTP/') or not words[1].isdigit():
            raise OSError('not an HTTP response: %r' % ' '.join(words)[:80])
        self.status, self.reason, self.headers = int(words[1]), words[2] if len(words) > 2 else '', {}
        for dummy in range(200):
            line = self.file.readline(65537).decode('latin-1')
            if line in ('\r\n', '\n', ''):
                break
            name, dummy, value = line.partition(':')
            self.headers.setdefault(name.strip().lower(), value.strip())
        else:
            raise OSError('more than 200 header lines')
        length = self.headers.get('content-length')
        if length is not None and not (length.isascii() and length.isdigit() and len(length) < 19):
            raise OSError('a bad Content-Length %r' % length[:20])
        self.left = int(length) if length is not None else None
        self.chunked = 'chunked' in self.headers.get('transfer-encoding', '').lower()
        if method == 'HEAD' or self.status in (204, 304):
            self.left, self.chunked = 0, False
        self.chunk = 0  # bytes left in the current chunk
        self.data = b''

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def read(self, size=-1):
        """Up to size bytes of the body (all of it with -1); b'' at its end."""
        if self.chunked:
            return self._read_chunked(size if size >= 0 else 1 << 62)
        if self.left is None:
            return self.file.read(size)  # up to the end of the connection
        size = self.left if size < 0 else min(size, self.left)
        data = self.file.read(size) if size else b''
        self.left -= len(data)
        if len(data) < size:
            raise OSError('the connection closed %d bytes before the end of the body' % self.left)
        return data

    def _read_chunked(self, size):
        parts = []
        while size > 0 and self.chunked:
            if not self.chunk:
                line = self.file.readline(1024).split(b';')[0].strip()
                if not line or len(line) > 15 or not HEX_DIGITS.issuperset(line.decode('latin-1').lower()):
                    raise OSError('a bad chunk size %r' % line[:20])
                self.chunk = int(line, 16)
                if not self.chunk:
                    while self.file.readline(65537) not in (b'\r\n', b'\n', b''):
                        pass  # trailers
                    self.chunked, self.left = False, 0
                    break
            data = self.file.read(min(size, self.chunk))
            if not data:
                raise OSError('the connection closed in the middle of a chunk')
            self.chunk -= len(data)
            size -= len(data)
            parts.append(data)
            if not self.chunk:
                self.file.readline(16)  # the CRLF after a chunk
        return b''.join(parts)

    def close(self):
        self.file.close()
        self.sock.close()


def http_request(scheme, host, method, url, headers, body=None, tls=None, timeout=TIMEOUT):
    """Send one request on a connection of its own (Connection: close); the Response. body: bytes or a file.
    Not http.client: with the email package it imports, 25 ms of every pull."""
    import socket
    name, colon, port = host.rpartition(':') if ':' in host else (host, '', '')
    port = int(port) if port.isdigit() else (443 if scheme == 'https' else 80)
    sock = socket.create_connection((name, port), timeout=timeout)
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=name)
        length = 0
        if isinstance(body, (bytes, bytearray)):
            length = len(body)
        elif body is not None:
            length = os.fstat(body.fileno()).st_size
            body.seek(0)
        lines = ['%s %s HTTP/1.1' % (method, url), 'Host: %s' % host, 'User-Agent: conductor',
                 'Connection: close'] + ['%s: %s' % item for item in headers.items() if item[0].lower() not in (
                     'host', 'content-length', 'connection')]
        if body is not None:
            lines.append('Content-Length: %d' % length)
        sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1'))
        if isinstance(body, (bytes, bytearray)):
            sock.sendall(body)
        elif body is not None:
            for chunk in iter(lambda: body.read(1 << 20), b''):
                sock.sendall(chunk)
        return Response(sock, method)
    except BaseException:
        sock.close()
        raise


def parse_challenge(params: str) -> 'dict[str, str]':
    """realm="...",service="...",scope="..." as a dict (values may hold commas inside their quotes)."""
    found, rest = {}, params.strip()
    while rest:
        key, equals, rest = rest.partition('=')
        if not equals:
            break
        if rest.startswith('"'):
            value, dummy, rest = rest[1:].partition('"')
        else:
            value, dummy, rest = rest.partition(',')
        found[key.strip().lower()] = value
        rest = rest.lstrip(' ,')
    return found


def _failed(response, what):
    """One clear error for a registry's refusal, with its own words when it gave some."""
    try:
        errors = json.loads(response.data).get('errors') or []
        words = '; '.join('%s: %s' % (e.get('code'), e.get('message')) for e in errors)
    except (ValueError, AttributeError, TypeError):
        words = ''
    return ConductorError('%s: the registry answered %d %s%s' % (what, response.status, response.reason,
                                                                 ' (%s)' % words if words else ''))


# -- pull ------------------------------------------------------------------------------------------------
def endpoints(config: dict, ref: Reference) -> 'list[Endpoint]':
    return [Endpoint(config, url, ref.registry) for url in mirrors(config, ref.registry)] + \
        [Endpoint.of(config, ref.registry)]


def fetch_manifest(endpoint: Endpoint, ref: Reference, reference: str, scope: str) -> 'tuple[dict, str, bytes]':
    """(manifest, its digest, its bytes) by tag or digest, the digest checked when the reference is one."""
    response = endpoint.request('GET', '/v2/%s/manifests/%s' % (ref.repository, reference), scope,
                                {'Accept': ACCEPT})
    if response.status == 404:
        raise _NotFound('%s has no image %s%s%s at %s' % (ref.registry, ref.repository, '@' if ':' in reference
                                                          else ':', reference, endpoint.host))
    if response.status != 200:
        raise _failed(response, 'the manifest of %s' % ref)
    data = response.data
    if len(data) > _oci.JSON_MAX:
        raise ConductorError('the manifest of %s is larger than %s: refused' % (ref, human_size(_oci.JSON_MAX)))
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    if reference.startswith('sha256:') and digest != reference:
        raise ConductorError('the registry sent a manifest for %s whose digest is %s: refused, nothing was pulled'
                             % (ref, digest))
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        manifest = None
    if not isinstance(manifest, dict):
        raise ConductorError('the manifest of %s is not a JSON object: refused' % ref)
    media = manifest.get('mediaType') or response.getheader('Content-Type', '').split(';')[0]
    if media in SCHEMA1 or manifest.get('schemaVersion') == 1:
        raise ConductorError('%s is a Docker schema 1 image, which registries stopped serving in 2019: push it '
                             'again with a current tool' % ref)
    manifest.setdefault('mediaType', media)
    return manifest, digest, data


class _NotFound(ConductorError):
    pass


def pull(store, text: str, out=None, progress: bool = False, check_only: bool = False) -> 'tuple[dict, bool]':
    """Pull an image by reference; (its manifest in the store, changed). A re-pull of an unchanged image asks
    only for the manifest (the index's entry for this machine when there is an index). check_only: ask only for
    the manifest, change nothing, and return ({'name', 'digest'} or the image when unchanged, changed)."""
    ref = parse(text)
    name = str(ref)
    errors = []
    for endpoint in endpoints(store.config, ref):
        try:
            return _pull_from(store, endpoint, ref, name, out, progress, check_only)
        except _NotFound as e:
            errors.append(str(e))
        except ConductorError as e:
            if endpoint.host == Endpoint.of(store.config, ref.registry).host:
                raise
            errors.append('the mirror %s: %s' % (endpoint.host, e))  # a mirror that fails: the next one
    raise ConductorError('%s: no such image (%s): check the name and tag' % (name, '; '.join(errors)))


def _pull_from(store, endpoint, ref, name, out, progress, check_only=False):
    scope = 'repository:%s:pull' % ref.repository
    manifest, digest, dummy = fetch_manifest(endpoint, ref, ref.reference, scope)
    have = store.image(name)
    if manifest.get('mediaType') in _oci.INDEX_TYPES or 'manifests' in manifest:
        try:
            chosen = _oci.pick_manifest(manifest, 'the index of %s' % name)
        except ValueError as e:
            raise ConductorError('the index of %s: %s' % (name, e))
        digest = chosen.get('digest')
        if not (isinstance(digest, str) and digest.startswith('sha256:') and len(digest) == 71 and
                HEX_DIGITS.issuperset(digest[7:])):
            raise ConductorError('the index of %s names the digest %r, not sha256: and 64 hex digits: refused'
                                 % (name, str(digest)[:80]))
        if not (have and have.get('digest') == digest) and not check_only:
            manifest, digest, dummy = fetch_manifest(endpoint, ref, digest, scope)
    if have and have.get('digest') == digest:
        return have, False
    if check_only:
        return {'name': name, 'digest': digest}, True
    if manifest.get('mediaType') not in _oci.MANIFEST_TYPES or not isinstance(manifest.get('layers'), list) or \
            not isinstance(manifest.get('config'), dict):
        raise ConductorError('%s: the registry sent a %s, not an image manifest' % (name, manifest.get('mediaType')))
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive  # blobs to store: only now
    tmp = store.path('images', temp_name('pull'))
    os.makedirs(os.path.join(tmp, 'blobs', 'sha256'), 0o700)
    try:
        limit = _archive.max_layer_size(store.config)
        fetch = _Fetcher(endpoint, ref, scope, tmp, limit)
        fetch.one(manifest['config'], _oci.JSON_MAX)
        try:
            annotations = manifest.get('annotations') if isinstance(manifest.get('annotations'), dict) else {}
            record = json.loads(annotations[_oci.ANNOTATION]) if _oci.ANNOTATION in annotations else None
            parts = _archive.parts_of(tmp, manifest, record, [name], digest, check_layers=False)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise ConductorError('the image %s is not one Conductor can store: %s: nothing was pulled' % (name, e))
        tick = fetch.ticker(manifest['layers'], out) if progress and out else None
        try:
            return _archive.store_image(store, parts, name, lambda index: fetch.stream(manifest['layers'][index]), tick)
        finally:
            if tick:
                out('\r%s, %d layers%s\n' % (human_size(fetch.done), len(manifest['layers']), ' ' * 20))
    finally:
        remove_tree(tmp)


class _Fetcher:
    """A pull's blobs: each as a _BlobStream (a layer, unpacked as it comes), or into tmp/blobs/sha256/<hex> (the
    config), renamed only once its digest and size matched."""

    def __init__(self, endpoint, ref, scope, tmp, limit):
        self.endpoint, self.ref, self.scope, self.tmp, self.limit = endpoint, ref, scope, tmp, limit
        self.done = self.fetched = 0

    def one(self, descriptor, limit=None):
        """The blob into its file in tmp; its path."""
        from ansible_collections.cs695.conductor.plugins.module_utils import _archive
        try:
            path = _archive.blob_file(self.tmp, descriptor)
        except ValueError as e:
            raise ConductorError('%s: %s: refused, nothing was pulled' % (self.ref, e))
        blob = self.stream(descriptor, limit)
        partial = path + '.' + temp_name()
        try:
            with open(partial, 'wb') as f:
                for chunk in iter(lambda: blob.read(1 << 20), b''):  # b'' only once its digest matched
                    f.write(chunk)
            os.rename(partial, path)
        finally:
            blob.close()
            if os.path.exists(partial):
                os.unlink(partial)
        return path

    def stream(self, descriptor, limit=None):
        """The blob as it comes (_BlobStream: its digest and size checked at its end)."""
        digest, size = descriptor.get('digest'), descriptor.get('size')
        cap = min(limit or self.limit, self.limit)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= cap or \
                not isinstance(digest, str) or not digest.startswith('sha256:'):
            raise ConductorError('blob %s of %s has size %r, more than %s or no size: refused, nothing was pulled'
                                 % (digest, self.ref, size, human_size(cap)))
        response = self.endpoint.request('GET', '/v2/%s/blobs/%s' % (self.ref.repository, digest), self.scope,
                                         stream=True)
        if response.status != 200:
            response.data = response.read(1 << 16)
            response.close()
            raise _failed(response, 'blob %s of %s' % (digest, self.ref))
        return _BlobStream(response, digest, size, self)

    def ticker(self, descriptors, out):
        """A progress line for out: bytes so far of the total, and the layers fetched."""
        total = sum(d.get('size') or 0 for d in descriptors if isinstance(d, dict))

        def tick():
            out('\r%s / %s, %d of %d layers ' % (human_size(self.done), human_size(total), self.fetched,
                                                 len(descriptors)))
        return tick


class _BlobStream:
    """A blob's bytes as the registry sends them, hashed and counted: more than its size, or at its end another
    digest or fewer bytes, is one clear error (raised from read), so nothing unpacked from it is ever kept."""

    def __init__(self, response, digest, size, fetcher):
        self.response, self.digest, self.size, self.fetcher = response, digest, size, fetcher
        self.hash, self.count, self.checked = hashlib.sha256(), 0, False

    def read(self, size=-1):
        want = self.size - self.count + 1  # one more than it should have: a longer blob is caught
        data = self.response.read(want if size < 0 else min(size, want))
        self.count += len(data)
        self.fetcher.done += len(data)
        if self.count > self.size or not data:
            self._check()
            return b''
        self.hash.update(data)
        return data

    def _check(self):
        if not self.checked:
            self.checked = True
            if self.count != self.size or 'sha256:' + self.hash.hexdigest() != self.digest:
                raise ConductorError('blob %s of %s does not match its digest (%d of %d bytes came): refused, '
                                     'nothing was pulled' % (self.digest, self.fetcher.ref, min(self.count, self.size),
                                                             self.size))
            self.fetcher.fetched += 1

    def close(self):
        self.response.close()


def progress_writer():
    """A writer for progress lines when stderr is a terminal; None otherwise (modules, pipes, logs)."""
    if not sys.stderr.isatty():
        return None

    def write(text):
        sys.stderr.write(text)
        sys.stderr.flush()
    return write


def build_images(store, policy: str = 'missing', out=None):
    """What a build reads the images FROM and COPY --from name with (make_plan's images): an image named by
    reference is pulled first by --pull's policy, always (once per build), missing (the default: only what the
    store lacks) or never. The plan asks only after its allowed_images check, so a student's Dockerfile built
    with --allow-image makes the host pull nothing else; stage names, plain names and debootstrap bases are never
    pulled (DEBIAN_FROM=registry sends debian: and ubuntu: here too); a FROM ${ARG} is pulled as it expands."""
    from ansible_collections.cs695.conductor.plugins.module_utils._reference import is_reference
    if policy not in ('always', 'missing', 'never'):
        raise ConductorError('invalid --pull %r: use always, missing or never' % policy)
    pulled = set()

    def image(name):
        if is_reference(name) and name not in pulled and (policy == 'always' or (
                policy == 'missing' and store.image(name) is None)):
            pull(store, name, out, progress=out is not None)
            pulled.add(name)
        return store.require_image(name)
    return image


# -- push ------------------------------------------------------------------------------------------------
def push(store, name: str, text: str, out=None) -> dict:
    """Push image `name` to the reference `text` (a tag; gzip layers, as registries hold them): each blob the
    registry lacks is uploaded, then the manifest. Returns the reference and the manifest's digest."""
    ref = parse(text)
    if ref.digest:
        raise ConductorError('push to a tag, not a digest (%s): the registry gives the digest' % text)
    store.require_image(name)
    endpoint = Endpoint.of(store.config, ref.registry)
    scope = 'repository:%s:pull,push' % ref.repository
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive
    tmp = store.path('images', temp_name('push'))
    try:
        top = _archive.write_layout(store, name, tmp, compress=True)
        path = _archive.blob_file(tmp, top)
        with open(path, 'rb') as f:
            data = f.read()
        manifest = json.loads(data)
        for descriptor in [manifest['config']] + manifest['layers']:
            _upload(endpoint, ref, scope, _archive.blob_file(tmp, descriptor), descriptor, out)
        response = endpoint.request('PUT', '/v2/%s/manifests/%s' % (ref.repository, ref.tag), scope,
                                    {'Content-Type': _oci.MANIFEST}, data)
        if response.status not in (200, 201):
            raise _failed(response, 'pushing the manifest of %s' % ref)
    finally:
        remove_tree(tmp)
    with store.lock():  # what was pushed where: the module's next run asks the registry for the digest alone
        image = store.image(name)
        if image is not None:
            image['pushed'] = dict(image.get('pushed') or {}, **{str(ref): top['digest']})
            write_json(store.image_path(name), image)
    return {'name': name, 'reference': str(ref), 'digest': top['digest']}


def remote_digest(store, text: str) -> 'str | None':
    """The digest of the manifest a registry holds under a reference (None when it has none): one request."""
    ref = parse(text)
    endpoint = Endpoint.of(store.config, ref.registry)
    response = endpoint.request('HEAD', '/v2/%s/manifests/%s' % (ref.repository, ref.reference),
                                'repository:%s:pull' % ref.repository, {'Accept': ACCEPT})
    if response.status == 404:
        return None
    if response.status != 200:
        raise _failed(response, 'the manifest of %s' % ref)
    return response.getheader('Docker-Content-Digest')


def _upload(endpoint, ref, scope, path, descriptor, out):
    digest = descriptor['digest']
    response = endpoint.request('HEAD', '/v2/%s/blobs/%s' % (ref.repository, digest), scope)
    if response.status == 200:
        return
    response = endpoint.request('POST', '/v2/%s/blobs/uploads/' % ref.repository, scope, {'Content-Length': '0'}, b'')
    location = response.getheader('Location')
    if response.status != 202 or not location:
        raise _failed(response, 'starting the upload of %s to %s' % (digest, ref))
    if '://' in location:
        scheme, dummy, rest = location.partition('://')
        host, slash, location = rest.partition('/')
        if host != endpoint.host:
            raise ConductorError('the registry %s sent the upload of %s to another host, %s: refused' % (
                ref.registry, digest, host))
        location = '/' + location
    if out:
        out('Pushing %s (%s)\n' % (digest[7:19], human_size(descriptor['size'])))
    with open(path, 'rb') as f:
        response = endpoint.request('PUT', location + ('&' if '?' in location else '?') + 'digest=' + digest, scope,
                                    {'Content-Type': 'application/octet-stream',
                                     'Content-Length': str(descriptor['size'])}, f)
    if response.status not in (201, 204):
        raise _failed(response, 'uploading %s to %s' % (digest, ref))


# -- login -----------------------------------------------------------------------------------------------
def login(config: dict, registry: str, user: str, password: str) -> str:
    """Check the credentials against the registry (GET /v2/, as Docker's login), then store them in the
    containers auth file (mode 0600); returns the file's path."""
    registry = parse(registry + '/x').registry if '/' not in registry else parse(registry).registry
    if not user or not password:
        raise ConductorError('login needs a user (-u) and a password (on standard input, --password-stdin)')
    endpoint = Endpoint.of(config, registry)
    endpoint.login = (user, password)
    response = endpoint.request('GET', '/v2/', '')
    if response.status != 200:
        raise endpoint._denied() if response.status in (401, 403) else _failed(response, 'login to %s' % registry)
    path = auth_files(write=True)[0]
    _edit_auths(path, lambda auths: auths.__setitem__(registry, {'auth': base64.b64encode(
        ('%s:%s' % (user, password)).encode()).decode()}))
    return path


def logout(registry: str) -> 'list[str]':
    """Remove the registry's credentials from every auth file login writes; the files changed."""
    registry = parse(registry + '/x').registry if '/' not in registry else parse(registry).registry
    changed = []
    for path in auth_files(write=True):
        if os.path.exists(path) and _edit_auths(path, lambda auths: auths.pop(registry, None)):
            changed.append(path)
    return changed


def _edit_auths(path, edit):
    """Change the auths of an auth file (made, 0600, if missing); whether anything changed."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as e:
        raise ConductorError('cannot read the auth file %s (%s): fix or remove it' % (path, e))
    if not isinstance(data, dict):
        raise ConductorError('the auth file %s is not a JSON object: fix or remove it' % path)
    auths = data.setdefault('auths', {})
    before = json.dumps(auths, sort_keys=True)
    edit(auths)
    if json.dumps(auths, sort_keys=True) == before:
        return False
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    partial = '%s.%s' % (path, temp_name())
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.rename(partial, path)
    return True
