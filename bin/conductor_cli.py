# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""conductor: the command line face of the cs695.conductor engine (plugins/module_utils).

bin/conductor runs main(); the code lives in this module so Python caches it compiled.
"""

import os
import sys
import time
import types


def _import_engine():
    """Make this checkout importable as ansible_collections.cs695.conductor, as Ansible ships it."""
    checkout = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    for name, path in (('ansible_collections', []), ('ansible_collections.cs695', []),
                       ('ansible_collections.cs695.conductor', [checkout])):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = path
            sys.modules[name] = module


def _starts_a_container(argv):
    """run, start or exec: the first word that is neither an option nor --root's value."""
    words = list(argv)
    while words and words[0].startswith('-'):
        words = words[2:] if words[0] == '--root' else words[1:]
    return words[:1] in (['run'], ['start'], ['exec'])


_import_engine()
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups  # noqa: E402
if _starts_a_container(sys.argv[1:]):
    _cgroups.keep_migrations_quick()  # while the rest loads: the container's cgroup join is then quick
from ansible_collections.cs695.conductor.plugins.module_utils._common import (  # noqa: E402
    ConductorError, check_name, dumps, human_size, is_env_key)
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store, public  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils._reference import image_name, is_reference  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils import _operations, _options  # noqa: E402


def cmd_build(store, args):
    """build NAME [CONDUCTORFILE]: build an image, one layer per COPY/RUN step, reusing the cache."""
    import contextlib
    from ansible_collections.cs695.conductor.plugins.module_utils._stepnetworks import StepNetworks  # build's alone
    # the helper that networks RUN steps loads its code while the builder does: a build that needs none kills it
    with StepNetworks(store) if args.network in (None, 'default') else contextlib.nullcontext() as networks:
        from ansible_collections.cs695.conductor.plugins.module_utils import _builder, _buildplan  # build's alone
        image_name(args.name)
        if args.conductorfile and args.file:
            raise usage(args, 'give the file once: as CONDUCTORFILE or with -f, not both')
        path = args.conductorfile or args.file or _default_file()
        steps, context = _buildplan.load_steps(path, context=args.context)
        images = None
        if args.pull != 'never' and any(s.command in ('FROM', 'COPY') for s in steps):
            from ansible_collections.cs695.conductor.plugins.module_utils import _registry  # a registry's image
            images = _registry.build_images(store, args.pull or 'missing', _registry.progress_writer())
        plan = _buildplan.make_plan(store, args.name, steps, context, nocache=args.no_cache,
                                    build_args=_build_args(args.build_arg), downloads=args.allow_downloads,
                                    allowed_images=args.allow_image or None,
                                    network=args.network or 'default', images=images)
        from ansible_collections.cs695.conductor.plugins.module_utils import _progress
        _progress.enable()  # on a terminal: debootstrap and RUN steps show their time
        manifest, changed = _builder.build(store, plan, out=_progress.say, networks=networks)
    print('Successfully built %s (id %s)%s' % (manifest['name'], manifest['id'][:12], '' if changed else ', unchanged'))


def _build_args(entries):
    """--build-arg NAME=VALUE, or NAME alone for the value in conductor's own environment (Docker's rule)."""
    values = {}
    for entry in entries:
        name, equals, value = entry.partition('=')
        if not is_env_key(name):
            raise ConductorError('invalid --build-arg %r: use NAME=VALUE, NAME made of letters, digits and _' % entry)
        if equals or name in os.environ:
            values[name] = value if equals else os.environ[name]
    return values


def _default_file():
    """./Conductorfile, else ./Dockerfile, else ./Containerfile, as Docker and Podman look for theirs."""
    for name in ('Conductorfile', 'Dockerfile', 'Containerfile'):
        if os.path.exists(name):
            return name
    return 'Conductorfile'  # missing: the error names it


def cmd_images(store, args):
    """images: list the images."""
    images = [public(m) for m in store.images()]
    if args.json:
        print(dumps(images))
        return
    rows = [(m['name'], m['id'][:12], human_size(m['size']), m['created'],
             m['from'] + (' (%s)' % m['resolved'] if m['resolved'] and m['resolved'] != m['from'] else ''))
            for m in images]
    _table(('NAME', 'ID', 'SIZE', 'CREATED', 'FROM'), rows)


def cmd_pull(store, args):
    """pull REF: fetch an image from a registry (docker.io/library/ for a bare name, as Docker's)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    manifest, changed = _registry.pull(store, args.ref, _registry.progress_writer(), progress=True)
    print('%s %s (id %s, %s)' % ('Pulled' if changed else 'Up to date:', manifest['name'], manifest['id'][:12],
                                 manifest.get('digest')))


def cmd_push(store, args):
    """push NAME [REF]: upload an image to a registry, as REF (default: its own name, a reference)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    result = _registry.push(store, args.name, args.ref or args.name, _registry.progress_writer())
    print('Pushed %s as %s (%s)' % (result['name'], result['reference'], result['digest']))


def cmd_login(store, args):
    """login REGISTRY: check a user and password (read from standard input) and store them for pulls and pushes."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    if not args.password_stdin:
        raise usage(args, 'login reads the password from standard input: give --password-stdin (never on the '
                          'command line, where ps shows it)')
    path = _registry.login(store.config, args.registry, args.username, sys.stdin.readline().rstrip('\n'))
    print('Login Succeeded (stored in %s)' % path)


def cmd_logout(store, args):
    """logout REGISTRY: forget the stored credentials of a registry."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _registry
    changed = _registry.logout(args.registry)
    print('Removed the login of %s from %s' % (args.registry, ', '.join(changed)) if changed else
          'Not logged in to %s' % args.registry)


def cmd_save(store, args):
    """save: write an image to an OCI image layout archive (its base and every layer, its config)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive
    if not args.output:
        raise usage(args, 'save needs -o FILE: the archive to write')
    from ansible_collections.cs695.conductor.plugins.module_utils import _progress
    _progress.enable()
    summary = _archive.save(store, args.name, args.output, compress=args.gzip, form=args.format or 'oci')
    print('Saved %s (id %s) to %s, %s' % (summary['name'], summary['id'][:12], summary['path'],
                                          human_size(summary['size'])))


def cmd_load(store, args):
    """load: load an image from an archive `conductor save` wrote (-i -: standard input)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _archive
    if not args.input:
        raise usage(args, 'load needs -i FILE (or -i - for standard input): the archive to read')
    from ansible_collections.cs695.conductor.plugins.module_utils import _progress
    _progress.enable()
    manifest, changed = _archive.load(store, sys.stdin.buffer if args.input == '-' else args.input, args.name)
    print('Loaded %s (id %s)%s' % (manifest['name'], manifest['id'][:12], '' if changed else ', unchanged'))


def cmd_rmi(store, args):
    """rmi NAME: remove an image and the layers no other image uses."""
    manifest = _operations.remove_image(store, args.name)
    print('Removed image %s (id %s)' % (args.name, manifest['id'][:12]))


def cmd_rmcache(store, args):
    """rmcache: delete every cached base and layer that no image uses."""
    count, freed = _operations.prune(store)
    print('Removed %d cached bases and layers, freed %s' % (count, human_size(freed)))


def cmd_run(store, args):
    """run IMAGE NAME [-- COMMAND...]: create a container and start it, attached unless -d."""
    containers = Containers(store)
    if args.tty and not args.detach and not os.isatty(0):
        raise usage(args, '-t needs a terminal on standard input: leave -t out to use pipes')
    if args.rm and args.restart_policy and args.restart_policy != 'no':
        raise usage(args, '--rm and --restart contradict each other: a restart policy keeps the container')
    if args.restart_policy and args.restart_policy != 'no' and not args.detach:
        raise usage(args, '--restart %s needs -d: a restart policy supervises a detached container' % args.restart_policy)
    network = _run_network(args)
    spec = {name: getattr(args, name) for name in _options.NAMES if hasattr(args, name)}
    entrypoint = args.entrypoint
    spec.update(image=args.image, command=args.command or None, healthcheck=_run_healthcheck(args),
                entrypoint=[entrypoint] if entrypoint else entrypoint)  # one program, as docker run's: never split
    if args.pull not in (None, 'missing', 'always', 'never'):
        raise usage(args, 'invalid --pull %r: use missing, always or never' % args.pull)
    if is_reference(args.image) and (args.pull == 'always' or args.pull != 'never' and store.image(args.image) is None):
        from ansible_collections.cs695.conductor.plugins.module_utils import _registry  # a registry's image
        _registry.pull(store, args.image, _registry.progress_writer(), progress=True)
    containers.create(args.name, spec, auto_remove=bool(args.rm and args.detach))  # attached: removed below
    try:
        if args.detach:
            _operations.start(store, args.name, network=network)
            print(args.name)
            return 0
        return _attached(store, args.name, args.interactive, args.tty, network)
    except ConductorError:
        if not containers.state(args.name)['running']:
            _operations.remove(store, args.name)  # a run that could not start leaves nothing behind
        raise
    finally:
        if args.rm and not args.detach and containers.config(args.name) is not None:
            _operations.remove(store, args.name)


def cmd__restart(store, args):
    """_restart NAME: run by a container's supervisor when PID 1 ends (a restart policy), never by hand."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _runtime
    try:
        _runtime.return_to_host()
        _operations.restart_after_exit(store, args.name)
    except Exception as e:  # nobody reads our stderr: say it where `conductor logs` shows it
        with open(Containers(store).dir(args.name, 'log'), 'a') as log:
            log.write('conductor: the restart policy could not start %s again: %s\n' % (args.name, e))
        raise


def cmd_restore(store, args):
    """restore: after a boot, start every container whose restart policy says so, with its network (run at boot)."""
    started, errors = _operations.restore(store)
    for name in started:
        print('restored %s' % name)
    for error in errors:
        sys.stderr.write('conductor restore: %s: left as it is\n' % error)
    return 1 if errors else 0


def cmd_start(store, args):
    """start NAME: run an exited container again, on its kept upper layer."""
    _operations.start(store, args.name)
    print(args.name)


def cmd_update(store, args):
    """update NAME: change a container's limits, at once if it runs (as docker update)."""
    containers = Containers(store)
    config = containers.require(args.name)
    keys = _options.IN_PLACE
    changes = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    if not changes:
        raise usage(args, 'nothing to update: give %s' % ', '.join(f[0].split(', ')[-1] for f in UPDATE_FLAGS))
    current = {key: getattr(config, key) for key in keys}
    config = containers.update(args.name, **dict(current, **changes))
    print('%s: %s' % (args.name, ', '.join('%s %s' % (key, getattr(config, key)) for key in sorted(changes))))


def cmd_volume(store, args):
    """volume create|ls|inspect|rm|prune|export|import [NAME]: named volumes, kept until you remove them."""
    from ansible_collections.cs695.conductor.plugins.module_utils._volumes import Volumes
    volumes, action, name = Volumes(store), args.action, args.name
    if action in ('create', 'inspect', 'rm', 'export', 'import') and not name:
        raise usage(args, 'volume %s needs a NAME' % action)
    if action in ('export', 'import'):
        from ansible_collections.cs695.conductor.plugins.module_utils import _files
        given = args.output if action == 'export' else args.input
        if not given:
            raise usage(args, 'volume %s needs %s FILE (- for standard %s)' % (
                action, '-o' if action == 'export' else '-i', 'output' if action == 'export' else 'input'))
        if action == 'export':
            summary = _files.export_volume(store, name, given)
            if given != '-':
                print('Exported %s: %d files, %s, to %s' % (name, summary['files'], human_size(summary['size']), given))
        else:
            _files.import_volume(store, name, given)
    elif action == 'create':
        print(volumes.create(check_name('volume', name))['name'])
    elif action == 'ls':
        rows = [dict(v, used_by=_operations.volume_users(store, v['name'])) for v in volumes.list()]
        if args.json:
            print(dumps(rows))
            return
        _table(('NAME', 'ANONYMOUS', 'USED BY', 'CREATED'),
               [(v['name'], 'yes' if v['anonymous'] else 'no', ','.join(v['used_by']) or '-', v['created']) for v in rows])
    elif action == 'inspect':
        print(dumps(dict(volumes.require(name), path=volumes.dir(name, 'data'),
                         used_by=_operations.volume_users(store, name))))
    elif action == 'rm':
        _operations.remove_volume(store, name)
        print(name)
    elif action == 'prune':
        removed = _operations.prune_volumes(store)
        print('Removed %d anonymous volumes%s' % (len(removed), (': ' + ', '.join(removed)) if removed else ''))
    else:
        raise usage(args, 'unknown volume action %r: use create, ls, inspect, rm, prune, export or import' % action)


def _run_healthcheck(args):
    """Docker's --health-cmd and its tuning flags, or --no-healthcheck -> the healthcheck option."""
    tuning = {key: getattr(args, 'health_' + key) for key in ('interval', 'timeout', 'retries', 'start_period')
              if getattr(args, 'health_' + key) is not None}
    if args.no_healthcheck:
        if args.healthcheck or tuning:
            raise usage(args, '--no-healthcheck turns the health check off: give no --health-* flag with it')
        return {'test': ['NONE']}
    if tuning and not args.healthcheck:
        raise usage(args, '--health-%s tunes the check --health-cmd gives: give that too' % sorted(tuning)[0].replace('_', '-'))
    return dict(tuning, test=args.healthcheck) if args.healthcheck else None


def _run_network(args):
    """run's network, as addnetwork would make it: --network bridge (Docker's default network: a veth, NAT to
    the internet, DNS), which -p and -P imply; --network none (the default: its loopback alone)."""
    if args.network not in (None, 'none', 'bridge'):
        raise usage(args, 'unknown network %r: use bridge (a veth, with internet access) or none' % args.network)
    if args.network == 'none' and (args.publish or args.publish_all):
        raise usage(args, '-p and -P need a network: leave out --network none')
    if args.network != 'bridge' and not args.publish and not args.publish_all:
        return None
    from ansible_collections.cs695.conductor.plugins.module_utils import _addresses
    return dict(internet=True, ports=[_addresses.parse_publish(p) for p in args.publish], publish_all=args.publish_all)


def _attached(store, name, interactive, tty, network=None):
    """Start with our terminal attached: Docker's -t (a pty of the container's; our stdin must be a terminal)
    and -i (our stdin reaches it; without, it reads an end of file)."""
    if tty:
        from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # only on a terminal
        os.waitpid(_operations.start(store, name, attach=lambda master: _terminal.relay(master, interactive),
                                     network=network), 0)
    else:
        _through_pipes(lambda stdio: os.waitpid(_operations.start(store, name, stdio=stdio, network=network), 0),
                       interactive)
    return Containers(store).state(name)['exit_code']


def _through_pipes(call, stdin=True):
    """call(stdio) with pipes this process copies to and from its own stdin, stdout and stderr. A container
    never gets our fds themselves: through /proc/self/fd its root could reopen the file or terminal they
    are (a script fed to exec, the admin's terminal) for writing. stdin=False: it reads an end of file."""
    import _thread  # built in and loaded already: threading would cost run and exec 1 ms to import
    ends = [os.pipe() for dummy in range(3)]
    ours, theirs = [ends[0][1], ends[1][0], ends[2][0]], [ends[0][0], ends[1][1], ends[2][1]]

    def copy(source, target, close_target, done):
        try:
            for data in iter(lambda: os.read(source, 65536), b''):
                os.write(target, data)
        except OSError:
            pass  # the other end went away
        finally:
            os.close(target if close_target else source)
            done.release()

    def start(*args):  # a daemon thread (never waited for at exit); its lock is released when it is done
        done = _thread.allocate_lock()
        done.acquire()
        _thread.start_new_thread(copy, args + (done,))
        return done
    if stdin:
        start(0, ours[0], True)
    else:
        os.close(ours[0])
    outputs = [start(ours[1], 1, False), start(ours[2], 2, False)]
    try:
        return call(tuple(theirs))
    finally:
        for fd in theirs:
            os.close(fd)
        for done in outputs:  # all the output, until every writer in the container is done
            done.acquire()


def cmd_exec(store, args):
    """exec NAME [-- COMMAND...]: run a command in a running container's namespaces (default /bin/bash)."""
    from ansible_collections.cs695.conductor.plugins.module_utils._exec import exec_in
    containers = Containers(store)
    argv = args.command or None
    if args.detach:
        return exec_in(containers, args.name, argv, args.env, args.workdir, detach=True, user=args.user)
    if os.isatty(0):
        from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # only on a terminal
        return exec_in(containers, args.name, argv, args.env, args.workdir, attach=_terminal.relay, user=args.user)
    return _through_pipes(lambda stdio: exec_in(containers, args.name, argv, args.env, args.workdir, stdio=stdio,
                                                user=args.user))


def cmd_ps(store, args):
    """ps: list containers with their status (running / exited (code))."""
    containers = Containers(store)
    rows = [row for row in containers.list() if all(_matches(row, f, args) for f in args.filter)]
    if args.size:
        for row in rows:
            row['size'] = containers.size(row['name'])
    if args.json:
        print(dumps(rows))
        return
    from ansible_collections.cs695.conductor.plugins.module_utils._addresses import published
    header = ('NAME', 'IMAGE', 'STATUS', 'PID', 'ADDRESS', 'PORTS', 'CREATED') + (('SIZE',) if args.size else ())
    _table(header, [(r['name'], r['image'], r['status'], r['pid'] or '-', r['address'] or '-',
                     published(r['ports']) or '-', r['created'])
                    + ((human_size(r['size']),) if args.size else ()) for r in rows])


def _matches(row, given, args):
    """ps --filter label=KEY or label=KEY=VALUE, as Docker's: every filter given must match."""
    kind, dummy, wanted = given.partition('=')
    if kind != 'label' or not wanted:
        raise usage(args, 'unknown filter %r: use label=KEY or label=KEY=VALUE' % given)
    key, equals, value = wanted.partition('=')
    return key in row['labels'] and (not equals or row['labels'][key] == value)


def cmd_inspect(store, args):
    """inspect NAME: print a container's config and state as JSON."""
    print(dumps(Containers(store).inspect(args.name)))


def cmd_stats(store, args):
    """stats [NAME...]: what containers use now: CPU, memory, processes, block and network I/O (live on a terminal)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _stats
    if args.json or args.no_stream or not os.isatty(1):
        rows = _stats.measure(store, args.name)
        if args.json:
            print(dumps(rows))
        else:
            _stats_table(rows)
        return 0
    before = _stats.sample(store, args.name)
    try:
        time.sleep(0.5)
        while True:  # until interrupted, as docker stats: the table redrawn in place each second
            after = _stats.sample(store, args.name)
            sys.stdout.write('\x1b[H\x1b[J')
            _stats_table(_stats.figures(before, after))
            sys.stdout.flush()
            before = after
            time.sleep(1)
    except KeyboardInterrupt:  # Ctrl-C ends it, quietly
        return 0


def _stats_table(rows):
    def pair(row, first, second):
        return '-' if row.get(first) is None else '%s / %s' % (human_size(row[first]), human_size(row[second]))

    def pct(value):
        return '-' if value is None else '%.2f%%' % value
    _table(('NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'),
           [(r['name'], pct(r.get('cpu_percent')), pair(r, 'memory', 'memory_limit'), pct(r.get('memory_percent')),
             pair(r, 'net_rx', 'net_tx'), pair(r, 'io_read', 'io_write'),
             '-' if r.get('pids') is None else '%d / %s' % (r['pids'], 'max' if r['pids_limit'] in (None, -1) else r['pids_limit']))
            if r['running'] else (r['name'], r['status'], '-', '-', '-', '-', '-') for r in rows])


def cmd_top(store, args):
    """top NAME: a running container's processes (PID on the host and inside, user, CPU, memory, command)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _stats
    rows = _stats.top(store, args.name)
    if args.json:
        print(dumps(rows))
        return
    _table(('PID', 'PID INSIDE', 'USER', '%CPU', 'RSS', 'COMMAND'),
           [(r['pid'], r['pid_inside'], _printable(r['user']), '%.1f' % r['cpu_percent'], human_size(r['rss']),
             _printable(' '.join(r['command'].split())))
            for r in rows])


def cmd_cp(store, args):
    """cp SOURCE DEST: copy files between a container (NAME:PATH, running or not) and the host (a path, or - for a tar stream)."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _files
    _files.copy(store, args.source, args.dest)


def cmd_diff(store, args):
    """diff NAME: what a container added (A), changed (C) and deleted (D) against its image."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _files
    for kind, path in _files.diff(store, args.name):
        print('%s %s' % (kind, _printable(path)))


def cmd_commit(store, args):
    """commit NAME IMAGE: make a container's files (its own layer) a new image, while it runs or not."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _files
    manifest = _files.commit(store, args.name, args.image, args.change)
    print('%s %s' % (manifest['name'], manifest['id'][:12]))


def cmd_healthcheck(store, args):
    """healthcheck NAME: run the image's HEALTHCHECK once in the container (podman healthcheck run); exit 1 if it fails."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _exec
    containers = Containers(store)
    result = _exec.wait_healthy(containers, args.name, args.wait) if args.wait else _exec.health(containers, args.name)
    print('healthy' if result['healthy'] else 'unhealthy (exit code %s): %s' % (result['exit_code'], result['output']))
    return 0 if result['healthy'] else 1


def cmd_logs(store, args):
    """logs NAME: print what a detached container (and exec -d) wrote to stdout and stderr."""
    containers = Containers(store)
    paths = containers.logs(args.name)
    for path in paths[:-1]:  # log.1: what rotated away past LOG_MAX
        import shutil  # logs alone: run and exec stay quick to start
        with open(path, 'rb') as old:
            shutil.copyfileobj(old, sys.stdout.buffer)
    path = paths[-1]
    for dummy in range(50):  # the supervisor renames log to log.1, then makes a new log: a moment without one
        try:
            log = open(path, 'rb')
            break
        except FileNotFoundError:
            time.sleep(0.01)
    else:
        return
    try:
        while True:
            data = log.read(65536)
            if data:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                continue
            if not args.follow or not os.path.exists(path) or not containers.state(args.name)['running']:
                return
            if os.stat(path).st_ino != os.fstat(log.fileno()).st_ino:  # rotated: read the new log from its start
                log.close()
                log = open(path, 'rb')
                continue
            time.sleep(0.2)
    finally:
        log.close()


def cmd_stop(store, args):
    """stop NAME...: SIGTERM, SIGKILL after the timeout, then delete the containers (conductor.sh's stop; --keep: Docker's)."""
    if args.all == bool(args.name):
        raise usage(args, 'give container names or --all, not both' if args.all else
                    'give the containers to stop, or --all for every one')
    timeout = args.time  # None: each container's own --stop-timeout, else 10
    if args.keep:
        names = Containers(store).names() if args.all else args.name
        for name in names:
            Containers(store).require(name)  # each named one exists, before any is stopped
        _operations.stop(store, names, timeout)
        for name in names:
            print(name)
        return 0
    return _removed(args, *_operations.rm(store, None if args.all else args.name, timeout=timeout))


def cmd_rm(store, args):
    """rm NAME...: delete exited containers, their files and anonymous volumes (-f: running ones too, killed)."""
    if not args.name:
        raise usage(args, 'give the containers to remove')
    containers = Containers(store)
    running = [n for n in args.name if containers.config(n) is not None and containers.state(n)['running']]
    if running and not args.force:
        raise ConductorError('%s is running: stop it first (conductor stop), or rm -f to kill it' % running[0])
    return _removed(args, *_operations.rm(store, args.name, timeout=0))


def _removed(args, configs, errors, repaired):
    for config in configs:
        print(config.name)
    for line in errors + (['firewall repaired: its rules were missing or damaged'] if repaired else []):
        sys.stderr.write('conductor %s: %s\n' % (args.verb, line))
    return 1 if errors else 0


def cmd_addnetwork(store, args):
    """addnetwork NAME: connect a running container to the host; -i for internet, -e/-p/-P to publish ports."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _addresses, _network  # the firewall's library: only here
    ports = [_addresses.parse_expose(e) for e in args.expose] + [_addresses.parse_publish(p) for p in args.publish]
    network = _network.Network(store)
    facts = network.add(args.name, args.internet, ports, args.dns, args.host_access, args.link_local, args.publish_all,
                        args.classroom_service, args.ip)
    internet = ', internet via %s' % facts['uplink'] if facts['internet'] else ''
    ports = ', ports ' + _addresses.published(facts['ports']) if facts['ports'] else ''
    print('%s: %s on %s (host %s)%s%s' % (args.name, facts['container_ip'], facts['host_if'], facts['host_ip'], internet, ports))
    _repaired(args, network)


def cmd_peer(store, args):
    """peer NAME NAME2|REMOTE_ADDRESS: let two networked containers reach each other, both ways (one on another
    lab host by its address there: this host's half)."""
    return _peer(store, args, True, '<->', 'already peered')


def cmd_unpeer(store, args):
    """unpeer NAME NAME2|REMOTE_ADDRESS: isolate two peered containers from each other again."""
    return _peer(store, args, False, '-/-', 'were not peered')


def _peer(store, args, present, sign, unchanged):
    from ansible_collections.cs695.conductor.plugins.module_utils import _network
    network = _network.Network(store)
    if Containers(store).config(args.name2) is None and _is_address(args.name2):
        changed = network.peer_remote(args.name, args.name2, present)
    else:
        changed = network.peer(args.name, args.name2, present)
    print('%s %s %s%s' % (args.name, sign, args.name2, '' if changed else ' (%s)' % unchanged))
    _repaired(args, network)


def _is_address(text):
    parts = text.split('.')
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def cmd_overlay(store, args):
    """overlay up|down|ls [ADDRESS=SUBNET...]: the classroom overlay, a VXLAN device to the other lab hosts."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network, _overlay
    network = _network.Network(store)
    if args.action == 'up':
        subnet = args.subnet or store.config.get('POOL')
        if not subnet:
            raise ConductorError("give this host's subnet of the classroom network: --subnet 10.88.1.0/24 (or POOL in "
                                 "the config, as the conductor_host role writes it from conductor_subnet)")
        plan = _overlay.plan(subnet, [_overlay.parse_remote(r) for r in args.remote], args.vni, args.port, args.uplink,
                             args.network, services=args.service)
        result = network.overlay_up(plan)
        print('overlay %s: %s on %s (VNI %d, UDP %d, MTU %d), %d other host(s)%s'
              % (_overlay.DEVICE, plan['subnet'], plan['uplink'], plan['vni'], plan['port'], plan['mtu'],
                 len(plan['remotes']), '' if result['changed'] else ' (already up)'))
    elif args.action == 'down':
        if args.remote:
            raise usage(args, 'overlay down takes no remote hosts')
        print('overlay removed' if network.overlay_down()['changed'] else 'no overlay')
    elif args.action in ('ls', 'list'):
        overlay = network.book.overlay()
        up = bool(overlay) and _overlay.matches(overlay)
        if args.json:
            print(dumps({'overlay': overlay, 'up': up}))
        elif not overlay:
            print('no overlay')
        else:
            print('%s %s: subnet %s of %s, VNI %d, UDP %d, uplink %s (%s), MTU %d'
                  % (_overlay.DEVICE, 'up' if up else 'DOWN (conductor restore, or overlay up, makes it again)',
                     overlay['subnet'], overlay['network'], overlay['vni'], overlay['port'], overlay['uplink'],
                     overlay['local'], overlay['mtu']))
            _table(("HOST", "SUBNET"), [(r["address"], r["subnet"]) for r in overlay["remotes"]])
            if overlay.get('services'):
                print('course services on the other hosts: %s' % ', '.join(overlay['services']))
    else:
        raise usage(args, 'unknown action %r: use up, down or ls' % args.action)
    _repaired(args, network)


def cmd_repair(store, args):
    """repair: rebuild the firewall rules from conductor's records if they are missing or damaged."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _network
    network = _network.Network(store)
    network.repair()
    print('firewall repaired: its rules were missing or damaged' if network.repaired else 'firewall intact')


def cmd_doctor(store, args):
    """doctor: what this host lacks for Conductor (kernel, firewall, debootstrap, storage, libraries), with fixes."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _doctor
    results = _doctor.checks(store)
    if args.json:
        print(dumps({'checks': results, 'summary': _doctor.summary(results)}))
    else:
        marks = {'ok': 'ok', 'warning': 'WARN', 'problem': 'FAIL'}
        for result in results:
            print('%-4s  %-28s  %s' % (marks[result['status']], result['check'], result['detail']))
            if result['fix']:
                print('%-4s  %-28s  fix: %s' % ('', '', result['fix']))
        print(_doctor.summary(results))
    return 1 if any(r['status'] == 'problem' for r in results) else 0


def _repaired(args, network):
    if network.repaired:
        sys.stderr.write('conductor %s: firewall repaired: its rules were missing or damaged\n' % args.verb)


def _printable(text):
    """A name a student chose, as it is printed: a newline or an escape sequence shown, never obeyed."""
    return ''.join(c if c.isprintable() else '\\x%02x' % ord(c) if ord(c) < 256 else '\\u%04x' % ord(c) for c in text)


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print('  '.join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


# The command table: function, positional arguments, options (flags, destination, metavar, help).
# A metavar marks an option that takes a value, one ending in ... may repeat. "[-- X...]" takes the rest.
ENV = ('-e, --env', 'env', 'K=V...', 'set an environment variable')
USER = ('-u, --user', 'user', 'USER[:GROUP]', "run as this user of the image (default: its USER, else root)")
# run's and update's container options: one row each in _options.OPTIONS
RUN_FLAGS = [(option.flag[0], option.name, option.flag[1], option.flag[2]) for option in _options.OPTIONS if option.flag]
UPDATE_FLAGS = [flag for flag in RUN_FLAGS if flag[1] in _options.IN_PLACE]
JSON = ('--json', 'json', None, 'print the list as JSON')
COMMANDS = {
    'build': (cmd_build, 'NAME [CONDUCTORFILE]', [
        ('-f, --file', 'file', 'FILE', 'the Conductorfile or Dockerfile (default: ./Conductorfile, ./Dockerfile, '
         './Containerfile)'),
        ('--context', 'context', 'DIR', "folder COPY sources are read from (default: the Conductorfile's folder)"),
        ('--build-arg', 'build_arg', 'NAME=VALUE...', 'a value for an ARG of the Conductorfile'),
        ('--allow-downloads', 'allow_downloads', None, 'let ADD download its http(s) URLs (off by default)'),
        ('--allow-image', 'allow_image', 'NAME...', 'a built image FROM and COPY --from may name; given, no other '
         'may (default: all; stages of the file and FROM debian:/ubuntu: always may)'),
        ('--network', 'network', 'MODE', "the RUN steps' network: default (a namespace of its own for each step, "
         "with internet access), none, or host (the host's own: its loopback and services; also allows RUN "
         "--network=host)"),
        ('--no-cache', 'no_cache', None, 'run every step, ignoring the build cache'),
        ('--pull', 'pull', 'POLICY', 'images FROM and COPY --from name by reference: missing (default: pull what is '
         'not here), always (pull again, as docker build --pull) or never')]),
    'pull': (cmd_pull, 'REF', []),
    'push': (cmd_push, 'NAME [REF]', []),
    'login': (cmd_login, 'REGISTRY', [('-u, --username', 'username', 'USER', 'the user'),
                                      ('--password-stdin', 'password_stdin', None, 'read the password from standard input')]),
    'logout': (cmd_logout, 'REGISTRY', []),
    'images': (cmd_images, '', [JSON]),
    'save': (cmd_save, 'NAME', [('-o, --output', 'output', 'FILE', 'the archive to write'),
                                ('--gzip', 'gzip', None, 'compress each layer with gzip (oci only)'),
                                ('--format', 'format', 'FORMAT', 'oci (default: an OCI image layout) or '
                                 'docker-archive (what docker load and podman load read)')]),
    'load': (cmd_load, '', [('-i, --input', 'input', 'FILE', 'the archive to read (- for standard input)'),
                            ('--name', 'name', 'NAME', 'the name to load it under (default: the name it was saved with)')]),
    'rmi': (cmd_rmi, 'NAME', []),
    'rmcache': (cmd_rmcache, '', []),
    'run': (cmd_run, 'IMAGE NAME [-- COMMAND...]', [
        ('--name', 'name', 'NAME', "the container's name, as Docker's: then every word after IMAGE is the command"),
        ('--pull', 'pull', 'POLICY', 'an IMAGE named by reference (python:3.12-slim) that is not here is pulled '
         '(missing, the default); always asks the registry first; never does not'),
        ('--rm', 'rm', None, 'delete the container (and its anonymous volumes) when its command ends'),
        ('-d, --detach', 'detach', None, 'run in the background; output goes to the log'),
        ('-i, --interactive', 'interactive', None, 'connect standard input to the container (without: it reads an '
         'end of file)'),
        ('-t, --tty', 'tty', None, "give the container a terminal of its own, attached to this one (-it for a shell)"),
        ('--network', 'network', 'MODE', 'bridge: a network as addnetwork -i makes it (a veth, NAT to the internet, '
         'DNS), before its command runs; none (default): its loopback alone'),
        ('-p, --publish', 'publish', 'HOST:CONTAINER...', 'publish container port CONTAINER as host port HOST, as '
         'addnetwork -p (implies --network bridge)'),
        ('-P, --publish-all', 'publish_all', None, 'publish every port the image EXPOSEs on free host ports '
         '(implies --network bridge)'),
    ] + RUN_FLAGS + [
        ('--health-interval', 'health_interval', 'DURATION', 'time between checks (default 30s)'),
        ('--health-timeout', 'health_timeout', 'DURATION', 'time a check may take (default 30s)'),
        ('--health-retries', 'health_retries', 'N', 'failures in a row that make it unhealthy (default 3)'),
        ('--health-start-period', 'health_start_period', 'DURATION', 'time to start before failures count (default 0s)'),
        ('--no-healthcheck', 'no_healthcheck', None, "run no health check, not even the image's HEALTHCHECK")]),
    '_restart': (cmd__restart, 'NAME', []),
    'start': (cmd_start, 'NAME', []),
    'restore': (cmd_restore, '', []),
    'update': (cmd_update, 'NAME', UPDATE_FLAGS),
    'volume': (cmd_volume, 'ACTION [NAME]', [
        JSON, ('-o, --output', 'output', 'FILE', 'export: the tar to write (- for standard output)'),
        ('-i, --input', 'input', 'FILE', 'import: the tar to unpack into the volume (- for standard input)')]),
    'exec': (cmd_exec, 'NAME [-- COMMAND...]', [
        ('-d, --detach', 'detach', None, 'leave the command running; output goes to the log'), ENV, USER,
        ('-w, --workdir', 'workdir', 'DIR', "working folder of the command (default: the image's WORKDIR)")]),
    'ps': (cmd_ps, '', [JSON, ('-s, --size', 'size', None, "show each container's disk use (its own layer)"),
                        ('-f, --filter', 'filter', 'label=KEY[=VALUE]...', 'only the containers with this label')]),
    'inspect': (cmd_inspect, 'NAME', []),
    'stats': (cmd_stats, '[NAME...]', [('--no-stream', 'no_stream', None, 'print the figures once, not a live table'),
                                       ('--json', 'json', None, 'print the figures once, as JSON')]),
    'top': (cmd_top, 'NAME', [('--json', 'json', None, 'print the processes as JSON')]),
    'cp': (cmd_cp, 'SOURCE DEST', []),
    'diff': (cmd_diff, 'NAME', []),
    'commit': (cmd_commit, 'NAME IMAGE', [('-c, --change', 'change', 'INSTRUCTION...', 'set the new image\'s config '
                                           'with a Conductorfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, '
                                           'VOLUME, WORKDIR, ...)')]),
    'healthcheck': (cmd_healthcheck, 'NAME', [('--wait', 'wait', 'SECONDS', 'run it until it passes, for at most this long')]),
    'logs': (cmd_logs, 'NAME', [('-f, --follow', 'follow', None, 'keep printing until the container stops')]),
    'stop': (cmd_stop, '[NAME...]', [('-t, --time', 'time', 'SECONDS',
                                      "seconds between SIGTERM and SIGKILL (default: the container's --stop-timeout, "
                                      "else 10)"),
                                     ('-a, --all', 'all', None, 'stop every container'),
                                     ('--keep', 'keep', None, "keep the containers, exited, as Docker's stop does "
                                      "(conductor start runs one again)")]),
    'rm': (cmd_rm, '[NAME...]', [('-f, --force', 'force', None, 'kill and delete running containers too')]),
    'addnetwork': (cmd_addnetwork, 'NAME', [
        ('-i, --internet', 'internet', None, 'a default route via the host, NAT out of its uplink, and DNS'),
        ('-e, --expose', 'expose', 'INNER-OUTER...',
         "conductor.sh's form: publish container port INNER as host port OUTER (-e 8080-80; add /udp for UDP)"),
        ('-p, --publish', 'publish', 'HOST:CONTAINER...',
         "Docker's form: publish container port CONTAINER as host port HOST (-p 80:8080; add /udp for UDP)"),
        ('-P, --publish-all', 'publish_all', None, 'publish every port the image EXPOSEs, on free host ports'),
        ('--dns', 'dns', 'SERVER...', 'a DNS server for the container (default: the host\'s upstream servers)'),
        ('--host-access', 'host_access', 'MODE', 'what of the host it reaches: all (default), dns-only or none'),
        ('--link-local', 'link_local', None, 'with -i, let it reach 169.254.0.0/16 (cloud metadata) too'),
        ('--classroom-service', 'classroom_service', None, 'every container here and on the overlay\'s other hosts '
         'reaches the ports its image EXPOSEs (and those it publishes)'),
        ('--ip', 'ip', 'ADDRESS', 'its address, in the pool (default: the first free one)')]),
    'peer': (cmd_peer, 'NAME NAME2', []),
    'unpeer': (cmd_unpeer, 'NAME NAME2', []),
    'overlay': (cmd_overlay, 'ACTION [REMOTE...]', [
        ('--subnet', 'subnet', 'SUBNET', "this host's subnet of the classroom network (default: POOL in the config)"),
        ('--network', 'network', 'NETWORK', 'the classroom network every host\'s subnet is in (default: the /16 '
         'around --subnet)'),
        ('--vni', 'vni', 'N', 'the VXLAN network identifier, the same on every host (default 695)'),
        ('--port', 'port', 'PORT', 'the VXLAN UDP port, the same on every host (default 4789)'),
        ('--uplink', 'uplink', 'IFACE', 'the interface the other hosts are reached on (default: the route to them)'),
        ('--service', 'service', 'ADDRESS...', 'a course service on another host, which every container here may send to'),
        JSON]),
    'repair': (cmd_repair, '', []),
    'doctor': (cmd_doctor, '', [JSON]),
}
ROOT = ('--root', 'root', 'DIR', 'state root (default: $CONDUCTOR_ROOT, ROOT in the config, /var/lib/conductor)')
HELP = ('-h, --help', 'help', None, 'show this help')
VERSION = ('--version', 'version', None, "print conductor's version")


class UsageError(Exception):
    """A command line that cannot be run: printed as it is, exit code 2 (or help and version: 0)."""


def usage(args, message):
    return UsageError('conductor %s: error: %s' % (args.verb, message))


def parse(argv):
    """argv -> args. Hand-made, not argparse or getopt: they import re, 11 ms on every command."""
    args = types.SimpleNamespace(root=None)
    argv = list(argv)
    while argv and argv[0].startswith('-'):
        _apply(args, *_getopt_one(argv, [ROOT, HELP, VERSION], 'conductor'))
    if getattr(args, 'version', False):
        raise UsageError('conductor %s' % _version())
    if getattr(args, 'help', False) or not argv:
        raise UsageError('' if getattr(args, 'help', False) else 'conductor: error: a command is required')
    verb = argv.pop(0)
    if verb == 'help':  # conductor help [COMMAND], as git's and docker's
        if argv and argv[0] not in COMMANDS:
            raise UsageError('conductor help: error: unknown command %r' % argv[0])
        raise UsageError(_help(argv[0]) if argv else '')
    if verb not in COMMANDS:
        raise UsageError('conductor: error: unknown command %r: use one of %s'
                         % (verb, ', '.join(v for v in COMMANDS if not v.startswith('_'))))
    func, usage, options = COMMANDS[verb]
    prog = 'conductor ' + verb
    options = options + [ROOT, HELP]
    for dummy, dest, metavar, unused in options:
        if not hasattr(args, dest):  # --root may come before the command
            setattr(args, dest, [] if metavar and metavar.endswith('...') else (None if metavar else False))
    words = usage.split()
    remainder = '[--' in words  # run and exec: after the names, everything is the command
    names = [w for w in words if not w.startswith('[') and not w.endswith(']')]
    rest = []
    while argv:
        if getattr(args, 'name', None) and 'NAME' in names and remainder:  # run --name NAME IMAGE [COMMAND...]
            names.remove('NAME')
        if argv[0] == '--':
            rest += argv[1:]
            break
        if argv[0].startswith('-') and len(argv[0]) > 1 and not (remainder and len(rest) >= len(names)):
            _apply(args, *_getopt_one(argv, options, prog))
        else:
            rest.append(argv.pop(0))  # after IMAGE NAME of run and exec, everything is the command
    if args.help:
        raise UsageError(_help(verb))
    optional = [w.strip('[]') for w in words if w.startswith('[') and w.endswith(']') and not w.endswith('...]')]
    if len(rest) < len(names):
        raise UsageError('%s: error: missing %s (see %s --help)' % (prog, ' '.join(names[len(rest):]), prog))
    for name in names + optional:
        setattr(args, name.lower(), rest.pop(0) if rest else None)
    if remainder:
        args.command = rest
    elif words and words[-1].endswith('...]'):  # stop's [NAME...]: every other word
        setattr(args, words[-1].strip('[].').lower(), rest)
    elif rest:
        raise UsageError('%s: error: unexpected argument %r (see %s --help)' % (prog, rest[0], prog))
    args.func, args.verb = func, verb
    return args


def _getopt_one(argv, options, prog):
    """Take one option off argv: (option, value, prog). As Docker's: --flag=VALUE or --flag VALUE, -f VALUE or
    -fVALUE, and short true/false flags combined (-it, -dt). A true/false flag given a value is an error, never
    true: --privileged=false must not give a privileged container."""
    word = argv.pop(0)
    if not word.startswith('--') and len(word) > 2 and word[2] != '=':  # -it, -eFOO=bar (not -d=...)
        option = _option(word[:2], options, prog)
        if option[2]:
            return option, word[2:], prog
        argv.insert(0, '-' + word[2:])
        return option, None, prog
    flag, equals, value = word.partition('=')
    option = _option(flag, options, prog)
    if not option[2]:
        if equals:
            raise UsageError('%s: error: option %s takes no value, got %r: give it for true, leave it out for false'
                             % (prog, flag, value))
        return option, None, prog
    if not equals:
        if not argv:
            raise UsageError('%s: error: option %s requires an argument' % (prog, flag))
        value = argv.pop(0)
    return option, value, prog


def _option(flag, options, prog):
    for option in options:
        if flag in option[0].split(', '):
            return option
    raise UsageError('%s: error: unknown option %s (see %s --help)' % (prog, flag, prog))


def _apply(args, option, value, prog):
    dummy, dest, metavar, unused = option
    if metavar and metavar.endswith('...'):
        getattr(args, dest).append(value)
    elif metavar == 'SECONDS':
        try:
            setattr(args, dest, float(value))
        except ValueError:
            raise UsageError('%s: error: %s must be a number of seconds, got %r' % (prog, option[0], value))
    else:
        setattr(args, dest, value if metavar else True)


def _version():
    """The collection's version: galaxy.yml in a checkout, MANIFEST.json where the collection is installed."""
    top = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    try:
        with open(os.path.join(top, 'galaxy.yml')) as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('version:'))
    except (OSError, StopIteration):
        import json
        try:
            with open(os.path.join(top, 'MANIFEST.json')) as f:
                return json.load(f)['collection_info']['version']
        except (OSError, ValueError, KeyError):
            return 'unknown'


def _help(verb=None):
    if verb is None:
        lines = ['usage: conductor [--root DIR] COMMAND ...', '',
                 'Build images and run containers from Linux primitives.', '', 'commands:']
        lines += ['  %-11s %s' % (v, f.__doc__.split(': ', 1)[1]) for v, (f, dummy, unused) in COMMANDS.items()
                  if not v.startswith('_')]
        lines += ['', 'options:'] + [_option_help(o) for o in (ROOT, HELP, VERSION)]
        lines += ['', "Run 'conductor COMMAND --help' or 'conductor help COMMAND' for a command's arguments."]
        return '\n'.join(lines)
    func, usage, options = COMMANDS[verb]
    lines = ['usage: conductor %s [OPTIONS] %s' % (verb, usage), '', func.__doc__, '', 'options:']
    lines += [_option_help(o) for o in options + [ROOT, HELP]]
    return '\n'.join(lines)


def _option_help(option):
    """An option's help line; a name too long for its column puts the text on the next line, as argparse does."""
    name = ('%s %s' % (option[0], option[2] or '')).rstrip()
    if len(name) >= 20:
        return '  %s\n  %-20s %s' % (name, '', option[3])
    return '  %-20s %s' % (name, option[3])


def main(argv=None):
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader went away (conductor images | head -1): quiet, as a tool SIGPIPE ends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's last flush would complain
        return 128 + 13


def _main(argv):
    if os.path.basename(sys.argv[0]).startswith('conductor'):
        os.environ.setdefault('CONDUCTOR_CLI', os.path.realpath(sys.argv[0]))  # what a restart policy runs again
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        message = str(e) or _help()
        (sys.stdout if ': error: ' not in message else sys.stderr).write(message + '\n')
        return 2 if ': error: ' in message else 0
    try:
        code = args.func(Store(args.root), args)
    except UsageError as e:
        sys.stderr.write('%s\n' % e)
        return 2
    except ConductorError as e:
        sys.stderr.write('conductor %s: %s\n' % (args.verb, _printable(str(e))))  # names a student chose, in it
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('conductor %s: interrupted\n' % args.verb)
        return 130
    except BrokenPipeError:
        raise  # main's: quiet
    except OSError as e:
        sys.stderr.write('conductor %s: %s%s\n' % (args.verb, e, '' if os.geteuid() == 0 else ' (conductor needs root)'))
        return 1
    return code or 0
