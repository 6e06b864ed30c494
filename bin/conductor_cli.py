# Copyright (c) 2026 Conductor contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""conductor: the command line face of the cs695.conductor engine (plugins/module_utils).

bin/conductor runs main(); the code lives in this module so Python caches it compiled.
"""

import argparse
import json
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


_import_engine()
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError, check_name, human_size  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils._images import Store, public  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers  # noqa: E402
from ansible_collections.cs695.conductor.plugins.module_utils import _terminal  # noqa: E402


def cmd_build(store, args):
    """build NAME [CONDUCTORFILE]: build an image, one layer per COPY/RUN step, reusing the cache."""
    from ansible_collections.cs695.conductor.plugins.module_utils import _builder  # only build needs it
    check_name('image', args.name)
    steps, context = _builder.load_steps(args.conductorfile, context=args.context)
    plan = _builder.Plan(store, args.name, steps, context, nocache=args.no_cache)
    manifest, changed = _builder.build(plan, out=lambda line: print(line, flush=True))
    print('Successfully built %s (id %s)%s' % (manifest['name'], manifest['id'][:12], '' if changed else ', unchanged'))


def cmd_images(store, args):
    """images: list the images."""
    images = [public(m) for m in store.images()]
    if args.json:
        print(json.dumps(images, indent=2))
        return
    rows = [(m['name'], m['id'][:12], human_size(m['size']), m['created']) for m in images]
    _table(('NAME', 'ID', 'SIZE', 'CREATED'), rows)


def cmd_rmi(store, args):
    """rmi NAME: remove an image and the layers no other image uses."""
    manifest = store.remove_image(args.name)
    print('Removed image %s (id %s)' % (args.name, manifest['id'][:12]))


def cmd_rmcache(store, args):
    """rmcache: delete every cached base and layer that no image uses."""
    count, freed = store.prune()
    print('Removed %d cached bases and layers, freed %s' % (count, human_size(freed)))


def cmd_run(store, args):
    """run IMAGE NAME [-- COMMAND...]: create a container and start it, attached unless -d."""
    containers = Containers(store)
    containers.create(args.name, args.image, command=args.command or None, env=args.env,
                      hostname=args.hostname, privileged=args.privileged)
    try:
        if args.detach:
            containers.start(args.name)
            print(args.name)
            return 0
        return _attached(containers, lambda stdio, tty: containers.start(args.name, stdio, tty), args.name)
    except ConductorError:
        if not containers.state(args.name)['running']:
            containers.remove(args.name)  # a run that could not start leaves nothing behind
        raise


def cmd_start(store, args):
    """start NAME: run an exited container again, on its kept upper layer."""
    Containers(store).start(args.name)
    print(args.name)


def _attached(containers, start, name):
    """Start with our terminal attached (a new pty if stdin is one); return the container's exit code."""
    if not os.isatty(0):
        pid = start((0, 1, 2), False)
        os.waitpid(pid, 0)
        return containers.state(name)['exit_code']
    master, slave = _terminal.open_pty()
    try:
        pid = start((slave, slave, slave), True)
    finally:
        os.close(slave)
    _terminal.relay(master)
    os.waitpid(pid, 0)
    return containers.state(name)['exit_code']


def cmd_exec(store, args):
    """exec NAME [-- COMMAND...]: run a command in a running container's namespaces (default /bin/bash)."""
    containers = Containers(store)
    argv = args.command or None
    if args.detach:
        return containers.exec(args.name, argv, args.env, detach=True)
    if not os.isatty(0):
        return containers.exec(args.name, argv, args.env)
    master, slave = _terminal.open_pty()
    # the relay runs in a thread-free way: fork it off so exec can wait for the command here
    pid = os.fork()
    if pid == 0:
        os.close(slave)
        _terminal.relay(master)
        os._exit(0)
    os.close(master)
    try:
        return containers.exec(args.name, argv, args.env, stdio=(slave, slave, slave), tty=True)
    finally:
        os.close(slave)
        os.waitpid(pid, 0)


def cmd_ps(store, args):
    """ps: list containers with their status (running / exited (code))."""
    rows = Containers(store).list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _table(('NAME', 'IMAGE', 'STATUS', 'PID', 'ADDRESS', 'CREATED'),
           [(r['name'], r['image'], r['status'], r['pid'] or '-', r['address'] or '-', r['created']) for r in rows])


def cmd_inspect(store, args):
    """inspect NAME: print a container's config and state as JSON."""
    print(json.dumps(Containers(store).inspect(args.name), indent=2, sort_keys=True))


def cmd_logs(store, args):
    """logs NAME: print what a detached container (and exec -d) wrote to stdout and stderr."""
    containers = Containers(store)
    path = containers.logs(args.name)
    with open(path, 'rb') as log:
        while True:
            data = log.read(65536)
            if data:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                continue
            if not args.follow or not os.path.exists(path) or not containers.state(args.name)['running']:
                return
            time.sleep(0.2)


def cmd_stop(store, args):
    """stop NAME: SIGTERM, SIGKILL after the timeout, then delete the container and its state."""
    Containers(store).remove(args.name, timeout=args.time)
    print(args.name)


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print('  '.join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write('%s: error: %s (see %s --help)\n' % (self.prog, message, self.prog))
        sys.exit(2)


def parser(only=None):
    """The argument parser; with only=VERB, just that command's part (building all 11 costs 9 ms)."""
    top = _Parser(prog='conductor', description='Build images and run containers from Linux primitives.')
    top.add_argument('--root', help='state root (default: $CONDUCTOR_ROOT, ROOT in the config, /var/lib/conductor)')
    sub = top.add_subparsers(dest='verb', metavar='COMMAND', parser_class=_Parser)
    sub.required = True

    def command(func, name):
        if only not in (None, name):
            return argparse.ArgumentParser(add_help=False)  # a throwaway: this command is not asked for
        doc = func.__doc__
        p = sub.add_parser(name, help=doc.split(': ', 1)[1], description=doc)
        p.add_argument('--root', default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(func=func)
        return p

    p = command(cmd_build, 'build')
    p.add_argument('name', metavar='NAME', help='image name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}')
    p.add_argument('conductorfile', metavar='CONDUCTORFILE', nargs='?', default='Conductorfile',
                   help='the Conductorfile (default: ./Conductorfile)')
    p.add_argument('--context', help="folder COPY sources are read from (default: the Conductorfile's folder)")
    p.add_argument('--no-cache', action='store_true', help='run every step, ignoring the build cache')
    p = command(cmd_images, 'images')
    p.add_argument('--json', action='store_true', help='print the list as JSON')
    p = command(cmd_rmi, 'rmi')
    p.add_argument('name', metavar='NAME')
    command(cmd_rmcache, 'rmcache')

    p = command(cmd_run, 'run')
    p.add_argument('-d', '--detach', action='store_true', help='run in the background; output goes to the log')
    p.add_argument('-e', '--env', action='append', default=[], metavar='K=V', help='set an environment variable')
    p.add_argument('--hostname', help='hostname inside (default: the container name)')
    p.add_argument('--privileged', action='store_true', help='keep every capability and leave /proc, /sys writable')
    p.add_argument('image', metavar='IMAGE')
    p.add_argument('name', metavar='NAME', help='container name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}')
    p.add_argument('command', metavar='COMMAND', nargs=argparse.REMAINDER,
                   help="after --: the command and its arguments (default: the image's CMD, else /bin/bash)")
    p = command(cmd_start, 'start')
    p.add_argument('name', metavar='NAME')
    p = command(cmd_exec, 'exec')
    p.add_argument('-d', '--detach', action='store_true', help='leave the command running; output goes to the log')
    p.add_argument('-e', '--env', action='append', default=[], metavar='K=V', help='set an environment variable')
    p.add_argument('name', metavar='NAME')
    p.add_argument('command', metavar='COMMAND', nargs=argparse.REMAINDER,
                   help='after --: the command and its arguments (default: /bin/bash)')
    p = command(cmd_ps, 'ps')
    p.add_argument('--json', action='store_true', help='print the list as JSON')
    p = command(cmd_inspect, 'inspect')
    p.add_argument('name', metavar='NAME')
    p = command(cmd_logs, 'logs')
    p.add_argument('-f', '--follow', action='store_true', help='keep printing until the container stops')
    p.add_argument('name', metavar='NAME')
    p = command(cmd_stop, 'stop')
    p.add_argument('-t', '--time', type=float, default=10, metavar='SECONDS',
                   help='seconds between SIGTERM and SIGKILL (default 10)')
    p.add_argument('name', metavar='NAME')
    return top


def _verb(argv):
    """The command word in argv (skipping --root's value), if it is one of ours."""
    words = iter(argv)
    for word in words:
        if word == '--root':
            next(words, None)
        elif not word.startswith('-'):
            return word if word in VERBS else None
    return None


VERBS = ('build', 'images', 'rmi', 'rmcache', 'run', 'start', 'exec', 'ps', 'inspect', 'logs', 'stop')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parser(_verb(argv)).parse_args(argv)
    if getattr(args, 'command', None) and args.command[0] == '--':
        args.command = args.command[1:]
    try:
        code = args.func(Store(args.root), args)
    except ConductorError as e:
        sys.stderr.write('conductor %s: %s\n' % (args.verb, e))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('conductor %s: interrupted\n' % args.verb)
        return 130
    except OSError as e:
        sys.stderr.write('conductor %s: %s%s\n' % (args.verb, e, '' if os.geteuid() == 0 else ' (conductor needs root)'))
        return 1
    return code or 0

