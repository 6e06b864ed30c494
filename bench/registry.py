# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry benchmark (issue 21): pulling a 30 MB image of 3 layers from a registry on loopback, against
skopeo copying the same image to a folder, a cached re-pull, and a build whose FROM is pulled against a pull
plus a build on the local image. The registry (Debian's docker-registry) and every command run in a network
namespace of the bench's own. Sides alternate run by run; prints medians as a Markdown table. Run as root:
make bench (BENCH_RUNS, default 5)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from common import CONDUCTOR, helpers, median_ms, table, timed

RUNS = int(os.environ.get('BENCH_RUNS', '5'))


def make_image(work):
    """An OCI layout (umoci) of 3 layers of 10 MB each, half random and half text, so gzip does some work."""
    layout, bundle = os.path.join(work, 'layout'), os.path.join(work, 'bundle')
    subprocess.check_call(['umoci', 'init', '--layout', layout])
    subprocess.check_call(['umoci', 'new', '--image', layout + ':big'])
    subprocess.check_call(['umoci', 'unpack', '--image', layout + ':big', bundle], stdout=subprocess.DEVNULL)
    os.makedirs(os.path.join(bundle, 'rootfs', 'bin'))
    shutil.copy('/bin/busybox', os.path.join(bundle, 'rootfs', 'bin', 'busybox'))
    os.symlink('busybox', os.path.join(bundle, 'rootfs', 'bin', 'sh'))
    for n in range(3):
        with open(os.path.join(bundle, 'rootfs', 'data%d' % n), 'wb') as f:
            f.write(os.urandom(5 << 20) + (b'course material line %d\n' % n) * (5 << 20 // 24))
        subprocess.check_call(['umoci', 'repack', '--image', layout + ':big', bundle])
        shutil.rmtree(bundle)  # unpacked again: the next repack adds a layer on this one, not on the first
        subprocess.check_call(['umoci', 'unpack', '--image', layout + ':big', bundle], stdout=subprocess.DEVNULL)
    subprocess.check_call(['umoci', 'gc', '--layout', layout])
    return layout + ':big'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main():
    helpers.ensure_base()
    helpers.private_network()  # the registry and every request stay in a namespace of the bench's own
    work = tempfile.mkdtemp(prefix='conductor-bench-registry-')
    port = free_port()
    host = '127.0.0.1:%d' % port
    with open(os.path.join(work, 'registry.yml'), 'w') as f:
        f.write('{"version": 0.1, "log": {"level": "error"}, "http": {"addr": "%s"}, '
                '"storage": {"filesystem": {"rootdirectory": "%s/data"}}}' % (host, work))
    registry = subprocess.Popen(['docker-registry', 'serve', os.path.join(work, 'registry.yml')],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = os.path.join(work, 'conductor.conf')
    with open(conf, 'w') as f:
        f.write('REGISTRY_INSECURE=%s\n' % host)
    env = dict(os.environ, CONDUCTOR_CONFIG=conf)
    try:
        for dummy in range(100):
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        ref = '%s/bench/big:1' % host
        subprocess.check_call(['skopeo', '--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false',
                               'oci:' + make_image(work), 'docker://' + ref])
        ctx = os.path.join(work, 'ctx')
        os.makedirs(ctx)
        for name, text in (('pulled', 'FROM %s\nRUN echo step > /step\n' % ref),
                           ('local', 'FROM %s\nRUN echo step > /step\n' % ref)):
            with open(os.path.join(ctx, name), 'w') as f:
                f.write(text)
        skopeo, pulls, repulls, from_pulled, pull_then_build = [], [], [], [], []
        for i in range(RUNS):
            folder = os.path.join(work, 'skopeo%d' % i)
            skopeo.append(timed(['skopeo', '--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false',
                                 'docker://' + ref, 'dir:' + folder]))
            shutil.rmtree(folder)
            root = os.path.join(work, 'root%d' % i)
            cli = CONDUCTOR + ['--root', root]
            pulls.append(timed(cli + ['pull', ref], env=env))
            repulls.append(timed(cli + ['pull', ref], env=env))
            build = timed(cli + ['build', 'b', os.path.join(ctx, 'local')], env=env)  # FROM an image that is here
            pull_then_build.append(pulls[-1] + build)
            helpers.remove_root(root)
            helpers.seed(root)
            from_pulled.append(timed(cli + ['build', 'b', os.path.join(ctx, 'pulled')], env=env))
            helpers.stop_all(root)
            helpers.remove_root(root)
        print('\nA 30 MB image of 3 gzip layers from a registry on loopback (%d runs, sides alternating)\n' % RUNS)
        table(['measure', 'conductor', 'reference', 'target'], [
            ['pull into an empty store', median_ms(pulls), 'skopeo copy to dir: ' + median_ms(skopeo),
             'at most 1.3x skopeo'],
            ['re-pull, unchanged', median_ms(repulls), '-', 'at most 100 ms'],
            ['build FROM it, pulled by the build', median_ms(from_pulled),
             'pull + build on it: ' + median_ms(pull_then_build), 'no slower'],
        ])
    finally:
        registry.terminate()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
