# -*- coding: utf-8 -*-
# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module utils file is PRIVATE to the cs695.conductor collection: its API may change at any time.
"""Container options: one row per option, and the one place to add one.

A row says everything the faces and the engine need to know of an option:

    name       the key in config.json, the module option, the stack entry's key
    spec       the module's argument spec (conductor_container, and each conductor_stack entry)
    flag       the CLI's (flags, metavar, help) on run (and on update if in_place); None: not a flag
    check      the value as a task or the CLI gives it -> the value config.json stores, or ConductorError;
               given what it returns it returns it again, so a stored spec checks as it is
    in_place   a change is applied to the existing container (docker update), not by a recreate
    before     what a config.json written before the option existed means
    type       the type of the value config.json stores (the field's in _records.Config)

From the table come the run and update flags (bin/conductor_cli.py), the modules' argument specs,
`check` (every option of a container checked before anything is made), the recreate comparison
(`COMPARED`, `IN_PLACE`), the fields of a container's record and the reading of old ones (_records.py). tests/unit/test_options.py fails
when a module's DOCUMENTATION disagrees with the table. Adding an option: a row here, the step that
applies it (usually in _runtime or _containers.create), its entry in both modules' DOCUMENTATION.
"""

import os
import stat

from ansible_collections.cs695.conductor.plugins.module_utils._common import (
    ConductorError, check_env, check_name, env_list, parse_size)
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import (
    HEALTH_DEFAULTS, check_user, parse_duration, parse_signal)
from ansible_collections.cs695.conductor.plugins.module_utils._policy import capability_set
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups, _quota, _volumes

RESTART_POLICIES = ('no', 'on-failure', 'always', 'unless-stopped')


class Option:  # pylint: disable=too-few-public-methods
    """One row of OPTIONS (a class, not collections' namedtuple: that module costs every command 1 ms to load)."""
    __slots__ = ('name', 'spec', 'flag', 'check', 'in_place', 'before', 'type')

    def __init__(self, name, spec, flag, check, in_place, before, type):  # pylint: disable=redefined-builtin
        self.name, self.spec, self.flag, self.check, self.in_place, self.before, self.type = \
            name, spec, flag, check, in_place, before, type


def parse_restart(text):
    """Docker's restart policies: no, on-failure[:N], always, unless-stopped -> (policy, N or None)."""
    policy, colon, count = str(text or 'no').partition(':')
    if policy not in RESTART_POLICIES or (colon and (policy != 'on-failure' or not count.isdigit() or int(count) < 1)):
        raise ConductorError('invalid restart policy %r: use no, on-failure, on-failure:N (N at least 1), always or '
                             'unless-stopped' % text)
    return policy, int(count) if colon else None


def parse_security_opts(options):
    """Docker's --security-opt values Conductor knows: seccomp=unconfined, no-new-privileges[=true|false].
    Returns (seccomp on, no_new_privs)."""
    seccomp, no_new_privs = True, False
    for option in options or []:
        key, dummy, value = str(option).partition('=')
        if key == 'seccomp' and value == 'unconfined':
            seccomp = False
        elif key == 'no-new-privileges' and value in ('', 'true', 'false'):
            no_new_privs = value != 'false'
        else:
            raise ConductorError('unknown security option %r: use seccomp=unconfined or no-new-privileges' % option)
    return seccomp, no_new_privs


# -- the checks: the value given -> the value stored ------------------------------------------
def _image(value):
    if not isinstance(value, str) or not value:
        raise ConductorError('a container needs an image: give its name')
    return value


def _command(value, what='command'):
    """A list of strings, or a string split as a shell would (a task's); None: the image's."""
    if value is None:
        return None
    if isinstance(value, str):
        import shlex
        value = shlex.split(value)
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise ConductorError('invalid %s %r: give a non-empty list of strings' % (what, value))
    return value


def _entrypoint(value):
    """As the command; [] (or '') clears the image's ENTRYPOINT, as docker run --entrypoint ''."""
    return [] if value in ('', []) else _command(value, 'entrypoint')


def _env(value):
    """KEY=VALUE entries (a task's dict, or the CLI's list), the last of a key winning, as Docker's; sorted."""
    entries = check_env(env_list(value or []))
    return ['%s=%s' % item for item in sorted(dict(e.partition('=')[::2] for e in entries).items())]


ENV_FILE_MAX = 1 << 20  # an env file is read whole, in memory: 1 MiB at most


def _env_file(value):
    """Docker's --env-file FILE...: each file's KEY=VALUE lines (# comments and blank lines skipped; KEY alone
    takes its value from this process's environment, as Docker's) -> {file: ['KEY=VALUE', ...]}, read now,
    so a file whose content changed is a changed option (a recreate). A dict is that form already."""
    if isinstance(value, dict):
        return {path: check_env(entries, 'entry of env file %s' % path) for path, entries in value.items()}
    files = {}
    for path in value or []:
        try:
            fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            with os.fdopen(fd, 'rb') as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise ConductorError('env file %s is not a regular file' % path)
                data = f.read(ENV_FILE_MAX + 1)
        except OSError as e:
            raise ConductorError('cannot read env file %s: %s' % (path, e.strerror))
        if len(data) > ENV_FILE_MAX:
            raise ConductorError('env file %s is larger than 1 MiB' % path)
        entries = []
        for line in data.decode('utf-8', 'replace').splitlines():
            line = line.strip()
            if line and not line.startswith('#'):
                entries.append(line if '=' in line else '%s=%s' % (line, os.environ.get(line, '')))
        files[str(path)] = check_env(entries, 'entry of env file %s' % path)
    return files


def _hostname(value):
    return None if value is None else check_name('hostname', value)


def _capabilities(option):
    def check(value):
        names = sorted(value or [])
        capability_set(**{option[4:]: names})  # cap_add -> add=...: unknown names are refused
        return names
    return check


def _security_opts(value):
    opts = sorted(value or [])
    parse_security_opts(opts)
    return opts


def _user(value):
    if value is not None and check_user(value) is None:
        raise ConductorError('invalid user %r: give a name or number from the image, such as student or 1000:1000'
                             % value)
    return value


def _restart_policy(value):
    parse_restart(value)
    return value or 'no'


def _shm_size(value):
    return parse_size(value, 'shm size', 1 << 20, '1m')


def _dns_search(value):
    """Search domains, in their order (it matters): names such as lab.example.edu."""
    domains = list(value or [])
    for domain in domains:
        try:
            if not isinstance(domain, str) or len(domain) > 253:
                raise ConductorError('too long')
            for part in domain.rstrip('.').split('.'):
                check_name('domain', part)
        except ConductorError:
            raise ConductorError('invalid DNS search domain %r: give a domain name such as lab.example.edu' % (domain,))
    return domains


def _etc_hosts(value):
    """Extra /etc/hosts entries: a task's {host: address}, or the CLI's HOST:ADDRESS (HOST=ADDRESS too, as
    Docker's --add-host) -> {host: address}."""
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = [tuple(str(entry).split('=' if '=' in str(entry) else ':', 1)) for entry in value or []]
    hosts = {}
    for pair in pairs:
        host, address = pair if len(pair) == 2 else (pair[0], '')
        check_name('host', host)
        if not _is_address(str(address)):
            raise ConductorError('invalid address %r for host %s: give an IPv4 or IPv6 address, such as '
                                 '--add-host db:10.0.0.5' % (address, host))
        hosts[host] = str(address)
    return dict(sorted(hosts.items()))


def _is_address(text):
    """An IPv4 address in dotted quads, or an IPv6 one (hexadecimal groups and colons), checked without
    importing ipaddress or socket: run must start quickly."""
    parts = text.split('.')
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        return True
    return ':' in text and 2 < len(text) < 46 and all(c in '0123456789abcdefABCDEF:.' for c in text)


def _tmpfs(value):
    """Docker's --tmpfs PATH[:OPTIONS]: a tmpfs of the container's own at PATH, always nosuid and nodev (and
    noexec, unless exec is given), 64m unless size= says otherwise. Options: size=, mode= (octal), exec,
    noexec. -> sorted 'PATH:size=...,mode=...[,exec]' strings."""
    mounts = {}
    for entry in value or []:
        path, dummy, text = str(entry).partition(':')
        if not path.startswith('/') or '..' in path.split('/') or path == '/':
            raise ConductorError('invalid tmpfs %r: give an absolute path below /, such as /run or /tmp:size=64m' % entry)
        options = {'size': str(64 << 20), 'mode': '1777', 'exec': False}
        for option in filter(None, text.split(',')):
            key, dummy, word = option.partition('=')
            if key == 'size':
                options['size'] = str(parse_size(word, 'tmpfs size', 4096, '4k'))
            elif key == 'mode' and word and all(c in '01234567' for c in word) and len(word) <= 4:
                options['mode'] = word
            elif key in ('exec', 'noexec') and not word:
                options['exec'] = key == 'exec'
            else:
                raise ConductorError('invalid tmpfs option %r in %r: use size=, mode= (octal), exec or noexec' % (option, entry))
        mounts[path.rstrip('/')] = '%s:size=%s,mode=%s%s' % (path.rstrip('/'), options['size'], options['mode'],
                                                             ',exec' if options['exec'] else '')
    return [mounts[path] for path in sorted(mounts)]


ULIMITS = ('core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
           'rtprio', 'rttime', 'sigpending', 'stack')  # Docker's names: RLIMIT_ and the name in capitals


def _ulimits(value):
    """Docker's --ulimit NAME=SOFT[:HARD] (a task's {name: 'SOFT[:HARD]'} too), -1 for unlimited ->
    sorted 'NAME=SOFT:HARD'."""
    items = value.items() if isinstance(value, dict) else [str(e).partition('=')[::2] for e in value or []]
    limits = {}
    for name, text in items:
        soft, dummy, hard = str(text).partition(':')
        hard = hard or soft
        if name not in ULIMITS or not all(n.lstrip('-').isdigit() and int(n) >= -1 for n in (soft, hard)) or \
                (int(hard) != -1 and (int(soft) == -1 or int(soft) > int(hard))):
            raise ConductorError('invalid ulimit %s=%s: use NAME=SOFT[:HARD] (numbers, -1 for unlimited, soft at most '
                                 'hard), NAME one of %s' % (name, text, ', '.join(ULIMITS)))
        limits[name] = '%s=%d:%d' % (name, int(soft), int(hard))
    return [limits[name] for name in sorted(limits)]


# Docker's namespaced sysctls: what a container may set, for itself alone
SYSCTLS = ('kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
           'kernel.shmmni', 'kernel.shm_rmid_forced')
SYSCTL_PREFIXES = ('fs.mqueue.', 'net.')
SYSCTL_CHARS = frozenset('abcdefghijklmnopqrstuvwxyz0123456789_.-')


def _sysctls(value):
    """Namespaced kernel parameters ({name: value}, or the CLI's NAME=VALUE) -> {name: value}, sorted."""
    items = value.items() if isinstance(value, dict) else [str(e).partition('=')[::2] for e in value or []]
    found = {}
    for name, text in items:
        text = str(text)
        if not (name in SYSCTLS or name.startswith(SYSCTL_PREFIXES)) or not SYSCTL_CHARS.issuperset(name) or \
                '..' in name or not text or '\n' in text or len(text) > 256:
            raise ConductorError('invalid sysctl %s=%s: only namespaced ones may be set (net.*, fs.mqueue.*, %s), '
                                 'with a one-line value' % (name, text, ', '.join(SYSCTLS)))
        found[name] = text
    return dict(sorted(found.items()))


def _workdir(value):
    if value is not None and (not isinstance(value, str) or not value.startswith('/') or '\0' in value):
        raise ConductorError('invalid workdir %r: give an absolute path inside the container, such as /srv/app' % (value,))
    return value


def _labels(value):
    """A task's {key: value}, or the CLI's KEY=VALUE (KEY alone: an empty value, as Docker's) -> sorted dict."""
    items = value.items() if isinstance(value, dict) else [str(e).partition('=')[::2] for e in value or []]
    labels = {}
    for key, text in items:
        if not key or not isinstance(key, str) or '\n' in key + str(text) or len(key) > 255:
            raise ConductorError('invalid label %r: give KEY=VALUE, such as course=cs695' % (key,))
        labels[key] = str(text)
    return dict(sorted(labels.items()))


def _stop_signal(value):
    """SIGTERM, TERM or 15 -> 'SIGTERM'; None: the image's STOPSIGNAL, else SIGTERM."""
    if value is None:
        return None
    number = parse_signal(value)
    if number is None:
        raise ConductorError('invalid stop signal %r: give a signal such as SIGTERM, SIGINT or 15' % (value,))
    import signal  # here: its IntEnums cost every command 1.5 ms to import
    return signal.Signals(number).name if number in signal.valid_signals() and number < signal.SIGRTMIN else \
        str(number)


def _stop_timeout(value):
    """Seconds stop waits for the command to end before it kills it; None: 10, as Docker's."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1
    if isinstance(value, bool) or not 0 <= seconds <= 86400:
        raise ConductorError('invalid stop timeout %r: give seconds from 0 to 86400, such as 10' % (value,))
    return seconds


def _healthcheck(value):
    """A health check given in the task, overriding the image's HEALTHCHECK: test (a string, run by /bin/sh -c;
    a list, run as it is; or ['NONE'], no check), interval, timeout and start_period (durations such as 30s,
    or seconds) and retries -> Docker's form, with its defaults. None: the image's."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get('test'):
        raise ConductorError('invalid healthcheck %r: give at least its test, such as {test: "curl -f localhost"}' % (value,))
    test = value['test']
    if isinstance(test, str):
        test = ['NONE'] if test.upper() == 'NONE' else ['CMD-SHELL', test]
    elif not isinstance(test, list) or not all(isinstance(word, str) and word for word in test):
        raise ConductorError('invalid healthcheck test %r: give a string or a list of words' % (test,))
    elif test[0] not in ('CMD', 'CMD-SHELL', 'NONE'):
        test = ['CMD'] + test
    if test[0] != 'NONE' and len(test) < 2:
        raise ConductorError('invalid healthcheck test %r: it names no command' % (test,))
    check = dict(HEALTH_DEFAULTS, test=test)
    for key in ('interval', 'timeout', 'start_period', 'start_interval'):
        given = value.get(key)
        if given is not None:
            seconds = float(given) if isinstance(given, (int, float)) and not isinstance(given, bool) else parse_duration(given)
            if seconds is None or seconds < 0:
                raise ConductorError('invalid healthcheck %s %r: give a duration such as 30s, 1m30s or 500ms' % (key, given))
            check[key] = seconds
    if value.get('retries') is not None:
        if isinstance(value['retries'], bool) or not str(value['retries']).isdigit() or int(value['retries']) < 1:
            raise ConductorError('invalid healthcheck retries %r: give a whole number of at least 1' % (value['retries'],))
        check['retries'] = int(value['retries'])
    return check


def _specs(parser):
    def check(value):
        return sorted(_volumes.normalize(value, parser), key=lambda spec: spec['target'])
    return check


HEALTH_OPTIONS = dict(test=dict(type='raw'), interval=dict(type='str'), timeout=dict(type='str'),
                      start_period=dict(type='str'), retries=dict(type='int'))
MOUNT_OPTIONS = dict(type=dict(type='str', choices=['volume', 'bind'], default='volume'), source=dict(type='str'),
                     target=dict(type='str', required=True), readonly=dict(type='bool', default=False))

OPTIONS = (
    Option('image', dict(type='str'), None, _image, False, None, 'str'),
    Option('command', dict(type='raw'), None, _command, False, None, 'list | None'),
    Option('env', dict(type='dict', default={}), ('-e, --env', 'K=V...', 'set an environment variable'),
           _env, False, [], 'list'),
    Option('env_file', dict(type='list', elements='path', default=[]),
           ('--env-file', 'FILE...', 'read environment variables from a file of KEY=VALUE lines (-e wins over it)'),
           _env_file, False, {}, 'dict'),
    Option('hostname', dict(type='str'), ('--hostname', 'NAME', 'hostname inside (default: the container name)'),
           _hostname, False, None, 'str | None'),
    Option('privileged', dict(type='bool', default=False),
           ('--privileged', None, 'keep every capability, no seccomp filter, /proc and /sys writable'),
           bool, False, False, 'bool'),
    Option('cap_add', dict(type='list', elements='str', default=[]),
           ('--cap-add', 'CAP...', 'add a capability to the default set (NET_ADMIN, SYS_PTRACE, ALL, ...)'),
           _capabilities('cap_add'), False, [], 'list'),
    Option('cap_drop', dict(type='list', elements='str', default=[]),
           ('--cap-drop', 'CAP...', 'drop a capability from the default set (or ALL)'),
           _capabilities('cap_drop'), False, [], 'list'),
    Option('security_opts', dict(type='list', elements='str', default=[]),
           ('--security-opt', 'OPT...', 'seccomp=unconfined, or no-new-privileges'), _security_opts, False, [], 'list'),
    Option('memory', dict(type='str'), ('-m, --memory', 'BYTES', 'memory limit, such as 512m or 2g (default: '
                                        'MEMORY_LIMIT in the config, else none)'),
           _cgroups.parse_memory, True, None, 'int | None'),
    Option('cpus', dict(type='float'), ('--cpus', 'NUMBER', 'CPU limit in CPUs, such as 1.5 (default: none)'),
           _cgroups.parse_cpus, True, None, 'float | None'),
    Option('pids_limit', dict(type='int'), ('--pids-limit', 'N', 'process limit (default: PIDS_LIMIT in the '
                                            'config, else 2048; -1: none)'),
           _cgroups.parse_pids, True, None, 'int | None'),
    Option('storage_size', dict(type='str'),
           ('--storage-size', 'BYTES', "limit on what it writes (its own layer), such as 1g; needs project quotas "
            "on the state root's file system (default: none)"),
           _quota.parse_storage_size, True, None, 'int | None'),
    Option('volumes', dict(type='list', elements='str', default=[]),
           ('-v, --volume', 'SRC:DST[:ro]...', 'a volume (NAME:/path, or /path for an anonymous one) or a host '
            'folder (/host/path:/path)'),
           _specs(_volumes.parse_volume), False, [], 'list'),
    Option('mounts', dict(type='list', elements='dict', default=[], options=MOUNT_OPTIONS),
           ('--mount', 'type=..,source=..,target=..[,readonly]...', "the same, in Docker's long form"),
           _specs(_volumes.parse_mount), False, [], 'list'),
    Option('user', dict(type='str'), ('-u, --user', 'USER[:GROUP]', "run as this user of the image (default: "
                                      "its USER, else root)"),
           _user, False, None, 'str | None'),
    Option('entrypoint', dict(type='raw'), ('--entrypoint', 'PROGRAM', "run this instead of the image's "
                                            "ENTRYPOINT (and its CMD)"),
           _entrypoint, False, None, 'list | None'),
    Option('shm_size', dict(type='str'), ('--shm-size', 'BYTES', 'size of /dev/shm, such as 256m (default: 64m, as '
                                          "Docker's); it counts against the memory limit"),
           _shm_size, False, None, 'int | None'),
    Option('dns_search', dict(type='list', elements='str', default=[]),
           ('--dns-search', 'DOMAIN...', "a DNS search domain of the container's resolv.conf"), _dns_search, False, [], 'list'),
    Option('etc_hosts', dict(type='dict', default={}),
           ('--add-host', 'HOST:ADDRESS...', "an entry of the container's /etc/hosts"), _etc_hosts, False, {}, 'dict'),
    Option('read_only', dict(type='bool', default=False),
           ('--read-only', None, "mount the container's root read-only (its volumes, tmpfs, /dev and /etc/hosts stay "
            "writable)"), bool, False, False, 'bool'),
    Option('tmpfs', dict(type='list', elements='str', default=[]),
           ('--tmpfs', 'PATH[:OPTIONS]...', 'a tmpfs of its own at PATH (64m, nosuid, nodev, noexec; options: size=, '
            'mode=, exec)'), _tmpfs, False, [], 'list'),
    Option('ulimits', dict(type='list', elements='str', default=[]),
           ('--ulimit', 'NAME=SOFT[:HARD]...', 'a resource limit of its processes, such as nofile=1024:2048'),
           _ulimits, False, [], 'list'),
    Option('sysctls', dict(type='dict', default={}),
           ('--sysctl', 'NAME=VALUE...', 'a namespaced kernel parameter (net.*, fs.mqueue.*, kernel.shm*, kernel.msg*, '
            'kernel.sem)'), _sysctls, False, {}, 'dict'),
    Option('workdir', dict(type='str'), ('-w, --workdir', 'DIR', "the command's working folder (default: the image's "
                                         "WORKDIR); made if missing, as Docker's"), _workdir, False, None, 'str | None'),
    Option('labels', dict(type='dict', default={}),
           ('-l, --label', 'KEY=VALUE...', "a label, added to the image's (ps --filter label=KEY[=VALUE] finds it)"),
           _labels, False, {}, 'dict'),
    Option('stop_signal', dict(type='str'),
           ('--stop-signal', 'SIGNAL', "the signal stop sends first (default: the image's STOPSIGNAL, else SIGTERM)"),
           _stop_signal, False, None, 'str | None'),
    Option('stop_timeout', dict(type='float'),
           ('--stop-timeout', 'SECONDS', 'how long stop waits after the stop signal before SIGKILL (default: 10)'),
           _stop_timeout, True, None, 'float | None'),
    Option('healthcheck', dict(type='dict', options=HEALTH_OPTIONS),
           ('--health-cmd', 'COMMAND', "a health check run by /bin/sh -c, instead of the image's HEALTHCHECK (NONE: "
            "none; --health-interval, --health-timeout, --health-retries, --health-start-period tune it)"),
           _healthcheck, False, None, 'dict | None'),
    Option('restart_policy', dict(type='str', default='no'),
           ('--restart', 'POLICY', 'no, on-failure[:N], always or unless-stopped: start it again when its command '
            'ends (needs -d)'),
           _restart_policy, False, 'no', 'str'),
)
BY_NAME = {option.name: option for option in OPTIONS}
NAMES = tuple(BY_NAME)
IN_PLACE = tuple(o.name for o in OPTIONS if o.in_place)
COMPARED = NAMES + ('image_id',)  # image_id: a rebuilt image recreates its containers


def argument_spec():
    """The modules' argument spec of the options (a copy: Ansible changes what it is given)."""
    return {o.name: dict(o.spec, options=dict(o.spec['options'])) if 'options' in o.spec else dict(o.spec)
            for o in OPTIONS}


def check(options):
    """Every option of a container ({name: value as given}; absent ones get their defaults), checked before
    anything is made, so a caller can check many containers first. Returns the spec config.json stores."""
    unknown = sorted(set(options) - set(NAMES))
    if unknown:
        raise ConductorError('unknown container option %s: use %s' % (', '.join(unknown), ', '.join(NAMES)))
    return {o.name: o.check(options.get(o.name, o.spec.get('default'))) for o in OPTIONS}


def stored(config):
    """The options a container's config.json holds, each filled with its `before` where a config written
    before it existed lacks it, plus image_id: the form `check` returns, compared to decide a recreate."""
    spec = {o.name: config[o.name] if config.get(o.name) is not None else o.before for o in OPTIONS}
    for name in ('env', 'cap_add', 'cap_drop', 'security_opts'):  # older configs kept them in the order given
        spec[name] = sorted(spec[name])
    for name in ('volumes', 'mounts'):
        spec[name] = sorted(spec[name], key=lambda item: item['target'])
    spec['image_id'] = config.get('image_id')
    return spec
