# SPDX-License-Identifier: GPL-3.0-or-later
"""The image builder on real debootstrap bases, overlayfs layers and namespaces."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import helpers

APP = '''FROM debian:bookworm
COPY app /opt/app
RUN /opt/app/hello.sh > /opt/app/ran.txt
ENV GREETING=hi
WORKDIR /opt/app
CMD ["/opt/app/hello.sh"]
'''


def ran(output):
    """The steps that ran: those printed without (cached)."""
    return [line.split(' : ', 1)[1] for line in output.splitlines()
            if line.startswith('Step ') and not line.endswith('(cached)')]


def layer_files(conductor, image):
    manifest = json.load(open(os.path.join(conductor.root, 'images', image + '.json')))
    return [os.path.join(conductor.root, 'layers', key, 'diff') for key in manifest['layers']], manifest


def test_build_makes_one_layer_per_step_and_a_manifest(conductor, context):
    out = conductor('build', 'app', context.write(APP)).stdout
    assert 'Step 2/6 : COPY app /opt/app\n' in out
    assert out.rstrip().splitlines()[-1].startswith('Successfully built app (id ')
    layers, manifest = layer_files(conductor, 'app')
    assert len(layers) == 2
    assert manifest['config'] == {'cmd': ['/opt/app/hello.sh'], 'env': ['GREETING=hi'], 'workdir': '/opt/app'}
    copied = os.path.join(layers[0], 'opt/app/hello.sh')
    st = os.lstat(copied)
    assert stat.S_IMODE(st.st_mode) == 0o755 and (st.st_uid, st.st_gid) == (0, 0)
    assert open(os.path.join(layers[1], 'opt/app/ran.txt')).read() == 'hello from the app\n'
    assert os.listdir(layers[1]) == ['opt'], 'the RUN layer holds only what the step wrote'
    images = json.loads(conductor('images', '--json').stdout)
    assert [(i['name'], i['id'], i['layers']) for i in images] == [('app', manifest['id'], manifest['layers'])]
    assert images[0]['size'] > 50 * 1000 * 1000
    table = conductor('images').stdout.splitlines()
    assert table[0].split() == ['NAME', 'ID', 'SIZE', 'CREATED', 'FROM'] and table[1].split()[:2] == ['app', manifest['id'][:12]]


def test_cache(conductor, context):
    path = context.write(APP)
    conductor('build', 'app', path)
    layers, manifest = layer_files(conductor, 'app')
    listing = conductor.listing()

    out = conductor('build', 'app', path).stdout
    assert ran(out) == ['ENV GREETING=hi', 'WORKDIR /opt/app', 'CMD ["/opt/app/hello.sh"]'], 'no step ran'
    assert 'unchanged' in out and conductor.listing() == listing, 'an unchanged rebuild writes nothing'

    os.utime(str(context / 'app' / 'data.txt'), (1, 1))
    assert ran(conductor('build', 'app', path).stdout)[:2] == ['ENV GREETING=hi', 'WORKDIR /opt/app']

    (context / 'app' / 'data.txt').write_text('changed\n')
    out = conductor('build', 'app', path).stdout
    assert ran(out)[:2] == ['COPY app /opt/app', 'RUN /opt/app/hello.sh > /opt/app/ran.txt']
    new_layers, new_manifest = layer_files(conductor, 'app')
    assert new_manifest['id'] != manifest['id'] and set(new_layers).isdisjoint(layers)

    out = conductor('build', '--no-cache', 'app', path).stdout
    assert ran(out)[:3] == ['FROM debian:bookworm', 'COPY app /opt/app', 'RUN /opt/app/hello.sh > /opt/app/ran.txt'] \
        or ran(out)[:2] == ['COPY app /opt/app', 'RUN /opt/app/hello.sh > /opt/app/ran.txt']
    assert layer_files(conductor, 'app')[1]['id'] != new_manifest['id'], '--no-cache gives new layers'


def test_deleting_in_a_later_step_hides_the_file(conductor, context):
    conductor('build', 'nomotd', context.write(
        'FROM debian:bookworm\nRUN rm /etc/motd\nRUN test ! -e /etc/motd && ls /etc > /etc-list\n'))
    layers, dummy = layer_files(conductor, 'nomotd')
    whiteout = os.lstat(os.path.join(layers[0], 'etc/motd'))
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert 'motd' not in open(os.path.join(layers[1], 'etc-list')).read().split()


def test_run_has_namespaces_proc_dev_and_resolv_conf_but_the_layer_does_not(conductor, context):
    conductor('build', 'probe', context.write('''FROM debian:bookworm
RUN echo "$$ $(hostname)" > /pid-host && test -e /proc/self/status && echo x > /dev/null && \\
    cat /etc/resolv.conf > /resolv-seen && ps -e -o pid= | wc -l > /procs && \\
    echo "nameserver 192.0.2.1" > /etc/resolv.conf
'''))
    layers, dummy = layer_files(conductor, 'probe')
    diff = layers[0]
    assert open(os.path.join(diff, 'pid-host')).read().split() == ['1', 'conductor-build']
    assert int(open(os.path.join(diff, 'procs')).read()) <= 4, 'the step sees only its own processes'
    assert open(os.path.join(diff, 'resolv-seen')).read() == open('/etc/resolv.conf').read()
    for absent in ('proc', 'dev', 'etc/resolv.conf', 'sys'):
        assert not os.path.lexists(os.path.join(diff, absent)), absent
    assert 'nameserver 192.0.2.1' not in open('/etc/resolv.conf').read()


def test_failing_run_shows_output_and_code_and_leaves_nothing(conductor, context):
    conductor('build', 'ok', context.write('FROM debian:bookworm\nCOPY app /app\n'))
    path = context.write('FROM debian:bookworm\nCOPY app /app\nRUN echo about to fail && exit 3\n')
    listing = conductor.listing()
    result = conductor('build', 'bad', path, check=False)
    assert result.returncode == 1
    assert 'about to fail' in result.stdout
    assert result.stderr == ("conductor build: %s:3: RUN failed with exit code 3: 'RUN echo about to fail && exit 3'\n"
                             % path)
    assert conductor.listing() == listing, 'no layer, image or temporary folder is left'


def test_copy_forms(conductor, context):
    (context / 'a.txt').write_text('a')
    (context / 'b.txt').write_text('b')
    os.symlink('a.txt', str(context / 'link'))
    conductor('build', 'copies', context.write('''FROM debian:bookworm
COPY a.txt b.txt /multi/
COPY *.txt /globbed/
COPY a.txt /renamed.txt
COPY ["app", "/json form/"]
WORKDIR /course
COPY link relative/
'''))
    layers, dummy = layer_files(conductor, 'copies')
    found = sorted(os.path.relpath(os.path.join(top, f), diff)
                   for diff in layers for top, dummy, files in os.walk(diff) for f in files)
    assert found == ['course/relative/a.txt', 'globbed/a.txt', 'globbed/b.txt', 'json form/data.txt',
                     'json form/hello.sh', 'multi/a.txt', 'multi/b.txt', 'renamed.txt']


def test_copy_follows_the_images_own_symlinks(conductor, context):
    """/bin is a symlink to usr/bin in bookworm: COPY to /bin/x must land in /usr/bin/x of the image."""
    conductor('build', 'binlink', context.write('FROM debian:bookworm\nCOPY app/hello.sh /bin/hello\n'))
    layers, dummy = layer_files(conductor, 'binlink')
    assert os.path.isfile(os.path.join(layers[0], 'usr/bin/hello'))
    assert not os.path.exists('/usr/bin/hello')


def test_copy_escapes_are_refused_and_change_nothing(conductor, context, tmp_path):
    (tmp_path / 'outside').write_text('secret')
    os.symlink(str(tmp_path / 'outside'), str(context / 'escape'))
    listing = conductor.listing()
    for source, message in (('../outside', 'leads out of the build context'),
                            ('/etc/passwd', 'is an absolute path'),
                            ('escape', 'leads through a symlink out of the build context'),
                            ('missing.txt', 'is not in the build context')):
        error = conductor.fails('build', 'x', context.write('FROM debian:bookworm\nCOPY %s /x\n' % source))
        assert message in error and ':2: ' in error
    assert conductor.listing() == listing


def test_from_local_image_shares_layers_and_rmi_keeps_shared_ones(conductor, context):
    conductor('build', 'parent', context.write(APP))
    conductor('build', 'child', context.write('FROM parent\nRUN echo child > /child\n'))
    parent_layers, parent = layer_files(conductor, 'parent')
    child_layers, child = layer_files(conductor, 'child')
    assert child_layers[:2] == parent_layers and len(child_layers) == 3
    assert child['config']['env'] == ['GREETING=hi'] and child['base'] == parent['base']

    conductor('rmi', 'parent')
    assert all(os.path.isdir(p) for p in child_layers), 'layers the child uses stay'
    conductor('build', 'parent', context.write(APP))
    conductor('rmi', 'child')
    assert not os.path.exists(child_layers[2]) and all(os.path.isdir(p) for p in parent_layers)
    assert 'no image named' in conductor.fails('rmi', 'child')


def test_rmcache_frees_unused_layers_and_bases(conductor, context, base_key):
    path = context.write(APP)
    conductor('build', 'app', path)
    (context / 'app' / 'data.txt').write_text('v2\n')
    conductor('build', 'app', path)  # orphans the first COPY and RUN layers
    layers_dir = os.path.join(conductor.root, 'layers')
    assert len(os.listdir(layers_dir)) == 4
    out = conductor('rmcache').stdout
    assert out.startswith('Removed 2 cached bases and layers, freed ')
    assert sorted(os.listdir(layers_dir)) == sorted(layer_files(conductor, 'app')[1]['layers'])
    conductor('rmi', 'app')
    assert conductor('rmcache').stdout.startswith('Removed 1 cached bases and layers, freed ')
    assert os.listdir(os.path.join(conductor.root, 'bases')) == ['.%s.lock' % base_key] or \
        os.listdir(os.path.join(conductor.root, 'bases')) == []


def test_sigkill_during_run_leaves_no_reusable_layer_and_no_process(conductor, context, root):
    marker = 'conductor-test-%d' % os.getpid()
    path = context.write('FROM debian:bookworm\nRUN touch /started && sleep 600 # %s\n' % marker)
    proc = subprocess.Popen([sys.executable, helpers.CLI, '--root', root, 'build', 'killed', path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    layers_dir = os.path.join(root, 'layers')
    deadline = time.time() + 60
    while not os.path.isdir(layers_dir) or not any(
            os.path.exists(os.path.join(layers_dir, d, 'diff/started')) for d in os.listdir(layers_dir)):
        assert time.time() < deadline, 'the RUN step never started'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while subprocess.run(['pgrep', '-f', marker], capture_output=True, check=False).returncode == 0:
        assert time.time() < deadline, 'the RUN step outlived the killed build'
        time.sleep(0.05)
    assert not any(not d.startswith('.tmp-') for d in os.listdir(layers_dir)), 'no committed layer'
    assert not os.path.exists(os.path.join(root, 'images', 'killed.json'))
    # The next build runs the step again (now a quick one under the same text is not the same step,
    # so check the same file): it must not reuse anything, and it sweeps the dead build's folder.
    context.write('FROM debian:bookworm\nRUN touch /started && true # %s\n' % marker)
    out = conductor('build', 'killed', str(context / 'Conductorfile')).stdout
    assert 'RUN touch' in ran(out)[0]
    assert [d for d in os.listdir(layers_dir) if d.startswith('.tmp-')] == []
    from ansible_collections.cs695.conductor.plugins.module_utils._cgroups import Cgroup
    parent = os.path.dirname(Cgroup('any').folders()[0])  # gone with its last group, or holding others'
    groups = os.listdir(parent) if os.path.isdir(parent) else []
    assert not [g for g in groups if g.startswith('.build-%d-' % proc.pid)], 'the killed step\'s cgroup is swept'


def test_a_students_dockerfile_cannot_name_an_image_it_is_not_allowed(conductor, context, tmp_path):
    """Grading: the instructor builds a student's Dockerfile with --allow-image base-only; the file copies the
    instructor's solution image, or starts from it."""
    conductor('build', 'base-only', context.write('FROM debian:bookworm\nRUN mkdir /work\n'))
    conductor('build', 'solution', context.write('FROM debian:bookworm\nRUN echo 42 > /answer\n'))
    student = tmp_path / 'student'
    student.mkdir()
    dockerfile = student / 'Dockerfile'
    before = conductor.listing()
    for text, line in (('FROM base-only\nCOPY --from=solution /answer /answer\n', "2: COPY --from names the image"),
                       ('FROM solution\nRUN cat /answer\n', '1: FROM names the image')):
        dockerfile.write_text(text)
        error = conductor.fails('build', '--allow-image', 'base-only', '-f', dockerfile, 'graded')
        assert "Dockerfile:%s 'solution', which this build may not use (allowed: base-only): give --allow-image " \
            "solution (the module's allowed_images) if it may" % line in error, error
        assert conductor.listing() == before, 'nothing built: the answer never reaches an image'
    # the controls: the allowed image, the file's own stages and a debootstrap base work
    dockerfile.write_text('FROM debian:bookworm AS tools\nRUN echo tool > /tool\nFROM base-only\n'
                          'COPY --from=tools /tool /tool\n')
    conductor('build', '--allow-image', 'base-only', '-f', dockerfile, 'graded')
    assert conductor('run', 'graded', 'g', '--', 'sh', '-c', 'cat /tool; ls -d /work').stdout == 'tool\n/work\n'
    dockerfile.write_text('FROM base-only\nCOPY --from=solution /answer /answer\n')
    conductor('build', '--allow-image', 'base-only', '--allow-image', 'solution', '-f', dockerfile, 'allowed')
    conductor('build', '-f', dockerfile, 'as-docker')  # no --allow-image: every image, as Docker
    assert conductor('run', 'as-docker', 'a', '--', 'cat', '/answer').stdout == '42\n'
