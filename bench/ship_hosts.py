# SPDX-License-Identifier: GPL-3.0-or-later
"""Build on every host, or build once and ship (issue 13): N fresh state roots (no cached base), with
the time and the bytes received on this machine's default interface (the mirror's traffic).

'Build everywhere' runs conductor build in every root at once; 'ship' builds in one, saves, and loads in
the others at once. Run as root, with the mirror reachable: make bench (BENCH_SHIP_HOSTS=3,6).
"""
import os
import subprocess
import tempfile
import time

from common import CONDUCTOR, table

HOSTS = [int(n) for n in os.environ.get('BENCH_SHIP_HOSTS', '3,6').split(',')]
FILE = 'FROM debian:bookworm\nRUN echo course > /etc/motd\nCMD ["sleep", "infinity"]\n'


def received():
    """Bytes received on the interface of the default route (what the mirror sent, and little else)."""
    with open('/proc/net/route') as f:
        device = next(line.split()[0] for line in f.read().splitlines()[1:] if line.split()[1] == '00000000')
    with open('/proc/net/dev') as f:
        line = next(row for row in f if row.strip().startswith(device + ':'))
    return int(line.split(':', 1)[1].split()[0])


def at_once(commands):
    """Run the commands side by side; fail loudly if one fails."""
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    for process, command in zip(processes, commands):
        if process.wait() != 0:
            raise SystemExit('%s failed: %s' % (' '.join(command), process.stderr.read().decode()[-2000:]))


def measure(work, hosts, shipping):
    roots = [os.path.join(work, '%s-%d' % ('ship' if shipping else 'build', i)) for i in range(hosts)]
    conductorfile = os.path.join(work, 'Conductorfile')
    before, started = received(), time.perf_counter()
    if shipping:
        archive = os.path.join(work, 'course.tar')
        at_once([CONDUCTOR + ['--root', roots[0], 'build', 'course', conductorfile]])
        at_once([CONDUCTOR + ['--root', roots[0], 'save', 'course', '-o', archive]])
        at_once([CONDUCTOR + ['--root', root, 'load', '-i', archive] for root in roots[1:]])
    else:
        at_once([CONDUCTOR + ['--root', root, 'build', 'course', conductorfile] for root in roots])
    return time.perf_counter() - started, received() - before


def main():
    work = tempfile.mkdtemp(prefix='conductor-bench-ship-hosts-')
    with open(os.path.join(work, 'Conductorfile'), 'w') as f:
        f.write(FILE)
    rows = []
    try:
        for hosts in HOSTS:
            for shipping in (False, True):
                seconds, received_bytes = measure(work, hosts, shipping)
                rows.append(['%d hosts' % hosts, 'build once, ship' if shipping else 'build on every host',
                             '%.1f s' % seconds, '%.0f MB' % (received_bytes / 1e6)])
                subprocess.check_call(['rm', '-rf'] + [os.path.join(work, n) for n in os.listdir(work)
                                                       if n != 'Conductorfile'])
    finally:
        subprocess.run(['rm', '-rf', work], check=False)
    print('\nImages to N lab hosts with no cached base (one debootstrap per build; hosts are state roots here)\n')
    table(['hosts', 'how', 'time', 'received from the mirror'], rows)


if __name__ == '__main__':
    main()
