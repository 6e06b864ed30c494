# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Image references, by Docker's rules, and the names images have in the store.

`python:3.12-slim` is `docker.io/library/python:3.12-slim`: the first part of a name is a registry
when it has a '.' or a ':' or is `localhost`, else the registry is docker.io, whose one-part names
live under `library/`. Without a tag or a digest the tag is `latest`.

An image in the store is named either as Conductor always named its images (`web`, a plain name:
`check_name`'s rule) or by its whole reference (`docker.io/library/python:3.12-slim`, what a pull or
a build with such a name made). `image_name` gives the name a user's text means; `file_name` is its
manifest's file (images/<file>.json): '/' is never in a file name, and '+' never in an image name.
No regular expressions: run and exec import this, and re costs them 5 ms."""

from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_name

DEFAULT_REGISTRY = 'docker.io'
LOWER = frozenset('abcdefghijklmnopqrstuvwxyz0123456789')
HOST_CHARS = LOWER | frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZ.-')
TAG_CHARS = LOWER | frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-')
HEX = frozenset('0123456789abcdef')
MAX_LENGTH = 200  # a file name holds 255 bytes; Docker's own limit on a name is 255


class Reference:
    """registry, repository, tag (None with a digest alone) and digest ('sha256:...' or None)."""

    def __init__(self, registry, repository, tag, digest):
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest

    def __str__(self):
        return '%s/%s%s%s' % (self.registry, self.repository, ':' + self.tag if self.tag else '',
                              '@' + self.digest if self.digest else '')

    @property
    def reference(self):
        """What the registry's manifest URL ends with: the digest if there is one, else the tag."""
        return self.digest or self.tag

    def with_digest(self, digest):
        return Reference(self.registry, self.repository, None, digest)


def parse(text: str) -> Reference:
    """A Reference from text as Docker reads it; one clear error for a malformed one."""
    def bad(why):
        raise ConductorError('invalid image reference %r: %s (as Docker writes them: [REGISTRY[:PORT]/]NAME[:TAG]'
                             '[@sha256:DIGEST], the name in lower case)' % (text, why))
    if not isinstance(text, str) or not text or len(text) > MAX_LENGTH:
        bad('it must be 1 to %d characters' % MAX_LENGTH)
    name, at, digest = text.partition('@')
    if at and not (digest.startswith('sha256:') and len(digest) == 71 and HEX.issuperset(digest[7:])):
        bad('a digest is sha256: and 64 hex digits')
    parts = name.split('/')
    registry = DEFAULT_REGISTRY
    if len(parts) > 1 and ('.' in parts[0] or ':' in parts[0] or parts[0] == 'localhost'):
        registry = parts.pop(0)
        host, colon, port = registry.partition(':')
        good_port = not colon or port.isdigit() and 0 < int(port) < 65536
        if not host or not HOST_CHARS.issuperset(host) or host[0] in '.-' or not good_port:
            bad('%r is not a registry host[:port]' % registry)
        registry = registry.lower()
    last, colon, tag = parts[-1].partition(':')
    parts[-1] = last
    if colon and not (tag and len(tag) <= 128 and TAG_CHARS.issuperset(tag) and tag[0] not in '.-'):
        bad('a tag is 1 to 128 letters, digits, _, . and -, not starting with . or -')
    for part in parts:
        if not _component(part):
            bad('%r is not a name component: lower-case letters and digits, separated by ., _, __ or -' % part)
    if registry in ('index.docker.io', 'registry-1.docker.io'):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        parts.insert(0, 'library')
    return Reference(registry, '/'.join(parts), tag or (None if at else 'latest'), digest or None)


def _component(part):
    if not part or part[0] not in LOWER or part[-1] not in LOWER:
        return False
    separator = ''
    for char in part:
        if char in LOWER:
            if separator not in ('', '.', '_', '__') and set(separator) != {'-'}:
                return False
            separator = ''
        elif char in '._-':
            separator += char
        else:
            return False
    return True


def is_reference(text: str) -> bool:
    """Whether a user's image text names an image by reference (it has a tag, a path or a digest), not by a
    plain name."""
    return isinstance(text, str) and any(c in text for c in ':/@')


def image_name(text: str, what: str = 'image') -> str:
    """The store's name for the image a user's text means: a plain name as it is, a reference normalized."""
    if is_reference(text):
        return str(parse(text))
    return check_name(what, text)


def file_name(name: str) -> str:
    """The manifest file's name (without .json) of an image named name (image_name's form)."""
    return name.replace('/', '+')


def from_file_name(stem: str) -> str:
    return stem.replace('+', '/')
