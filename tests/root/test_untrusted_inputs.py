# SPDX-License-Identifier: GPL-3.0-or-later
"""What a student hands the instructor to build: the Conductorfile and its image never run host code unconfined.

Each attack is made as a student would make it, next to a control that shows the honest path still works.
"""
import os
import subprocess
import sys

import helpers

# A module the image plants on every folder of the CLI's sys.path. Run, it says so on the build's output and
# leaves the chroot (root with every capability: mkdir, chroot, climb) to write a marker on the host.
PLANTED = '''import os
os.write(2, b'PLANTED module ran, uid %%d\\n' %% os.getuid())
try:
    os.makedirs('/.out', exist_ok=True)
    os.chroot('/.out')
    for _ in range(64):
        os.chdir('..')
    os.chroot('.')
    with open(%r, 'w') as f:
        f.write('host root, from a module in the image')
except OSError:
    pass
raise ImportError('planted')
'''
LATE_IMPORTS = ('traceback', 'fnmatch', 'linecache', 'tokenize', 'shutil', 'tempfile', 'glob')


def cli_path():
    """The folders the CLI's interpreter searches for modules: the ones an image can plant in."""
    out = subprocess.check_output([sys.executable, '-c', 'import sys; print("\\n".join(sys.path))'], text=True)
    return [p for p in out.splitlines() if p.startswith('/')] + [os.path.dirname(helpers.CLI)]


def planted_image(conductor, context, marker):
    """An image with a planted module for each name a child might import late, in each folder of sys.path."""
    plant = context / 'plant'
    for folder in cli_path():
        target = plant / folder.lstrip('/')
        target.mkdir(parents=True, exist_ok=True)
        for name in LATE_IMPORTS:
            (target / (name + '.py')).write_text(PLANTED % str(marker))
    conductor('build', 'planted', context.write('FROM debian:bookworm\nCOPY plant/ /\n'))


def failing_build(conductor, context, marker, text):
    """Build text on the planted image, expecting it to fail; assert that nothing planted ran. The result."""
    out = conductor('build', 'graded', context.write('FROM planted\n' + text), check=False)
    assert not marker.exists(), 'the image wrote on the host as root'
    assert 'PLANTED' not in out.stdout + out.stderr, 'a module of the image ran in the step: %s' % out.stdout
    return out


def test_a_failing_copy_step_runs_no_module_of_the_image(conductor, context, tmp_path):
    """COPY --chown of a user the image lacks fails inside the image's root: the error is reported without
    importing anything there."""
    marker = tmp_path / 'marker'
    planted_image(conductor, context, marker)
    out = failing_build(conductor, context, marker, 'COPY --chown=nosuchuser app /app\n')
    assert out.returncode != 0 and 'no such user' in out.stderr, out
    # control: the same image and context, an honest COPY --chown
    conductor('build', 'graded', context.write('FROM planted\nCOPY --chown=root app /app\n'))


def test_a_failing_copy_from_glob_runs_no_module_of_the_image(conductor, context, tmp_path):
    """COPY --from with a glob matches in the stage's files, inside the image: fnmatch is loaded before."""
    marker = tmp_path / 'marker'
    planted_image(conductor, context, marker)
    out = failing_build(conductor, context, marker, 'COPY --from=planted /etc/host*.nothing /x/\n')
    assert out.returncode != 0 and 'nothing matches' in out.stderr, out
    out = conductor('build', 'graded', context.write('FROM planted\nCOPY --from=planted /etc/host* /x/\n')).stdout
    assert 'PLANTED' not in out, 'control: the glob matches, and nothing planted ran'


def test_a_failing_run_step_runs_no_module_of_the_image(conductor, context, tmp_path):
    """A WORKDIR under a file fails in the RUN step's child after pivot_root: it is confined first, and imports
    nothing from the image."""
    marker = tmp_path / 'marker'
    planted_image(conductor, context, marker)
    out = failing_build(conductor, context, marker, 'WORKDIR /etc/passwd/below\nRUN true\n')
    assert out.returncode != 0 and 'Not a directory' in out.stderr, out
    out = conductor('build', 'graded', context.write('FROM planted\nWORKDIR /srv/below\nRUN pwd\n')).stdout
    assert '/srv/below' in out and 'PLANTED' not in out, 'control: the step runs in its new WORKDIR'


def test_a_failing_exec_runs_no_module_of_the_container(conductor, context, tmp_path):
    marker = tmp_path / 'marker'
    planted_image(conductor, context, marker)
    conductor('run', '-d', 'planted', 'p1', '--', 'sleep', '60')
    out = conductor('exec', '-u', 'nosuchuser', 'p1', '--', 'true', check=False)
    assert out.returncode != 0 and 'no such user' in out.stderr, out
    assert 'PLANTED' not in out.stdout + out.stderr and not marker.exists(), out
    assert conductor('exec', 'p1', '--', 'echo', 'ok').stdout == 'ok\n', 'control'


# -- trees of any depth ------------------------------------------------------------------------------
DEEP = 'perl -e \'for (1..5000) { mkdir "a" or die $!; chdir "a" or die $!; open(my $f, ">", "f") or die $! }\''


def test_a_5000_deep_tree_in_a_container_is_stopped_sized_and_removed(conductor, context, root):
    """shutil.rmtree and os.walk recurse: one student's deep tree failed stop, and the trash it left failed
    every later ps and run on the host (their sweep)."""
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    conductor('run', '-d', 'img', 'deep', '--', 'sleep', '60')
    conductor('exec', 'deep', '--', 'sh', '-c', DEEP)
    assert 'deep' in conductor('ps', '--size').stdout
    conductor('stop', '-t', '0', 'deep')
    assert os.listdir(os.path.join(root, 'containers')) == [], 'its folder went, with the tree'
    assert 'deep' not in conductor('ps').stdout
    assert conductor('run', 'img', 'after', '--', 'echo', 'ok').stdout == 'ok\n', 'control: the host still runs'


def test_a_run_step_making_a_5000_deep_tree_builds_and_is_removed(conductor, context, root):
    conductor('build', 'deep', context.write('FROM debian:bookworm\nRUN %s\n' % DEEP))
    assert conductor('run', 'deep', 'd1', '--', 'sh', '-c', 'test -d /a/a/a/a && echo ok').stdout == 'ok\n'
    # a failing step after the same tree: its folder goes, and later builds work
    out = conductor('build', 'deep2', context.write('FROM debian:bookworm\nRUN %s; false\n' % DEEP), check=False)
    assert out.returncode != 0 and 'RUN failed' in out.stderr, out
    assert not [n for n in os.listdir(os.path.join(root, 'layers')) if n.startswith('.tmp-')], 'nothing half made'
    conductor('stop', 'd1')
    conductor('rmi', 'deep')
    conductor('build', 'img', context.write('FROM debian:bookworm\nRUN true\n'))


# -- the build context is read once ------------------------------------------------------------------
class Swapper:
    """Swap a folder for a symlink (3 ms) and back, in a loop, as a student's running container can do to a
    context in their work volume; until stopped. calmer() doubles the time the real folder stays (from 3 ms
    up to 200 ms): on a loaded machine a build's plan and its step each take several 6 ms rounds, and one
    swap anywhere in them stops the build, so a test that needs builds to get through calms it after each
    refusal."""

    def __init__(self, path, target):
        import threading
        self.path, self.target, self.stop, self.real_for = str(path), str(target), threading.Event(), 0.003
        self.thread = threading.Thread(target=self._run, daemon=True)

    def calmer(self):
        self.real_for = min(self.real_for * 2, 0.2)

    def _run(self):
        real = self.path + '.real'
        while not self.stop.is_set():
            os.rename(self.path, real)
            os.symlink(self.target, self.path)
            self.stop.wait(0.003)
            os.unlink(self.path)
            os.rename(real, self.path)
            self.stop.wait(self.real_for)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_a_bind_source_swapped_for_a_symlink_mid_build_is_never_followed(conductor, context, tmp_path):
    """RUN --mount=type=bind was mounted by path: the plan hashed src, and the step bound what src was by then."""
    (tmp_path / 'host').mkdir()
    (tmp_path / 'host' / 'secret.txt').write_text('HOST SECRET\n')
    (context / 'src').mkdir()
    (context / 'src' / 'honest.txt').write_text('honest\n')
    path = context.write('FROM debian:bookworm\nRUN --mount=type=bind,source=src,target=/mnt/src '
                         'cat /mnt/src/*.txt > /seen\n')
    conductor('build', 'graded', path)
    assert conductor('run', 'graded', 'g0', '--', 'cat', '/seen').stdout == 'honest\n', 'control'
    seen, built, refusals = set(), 0, []
    with Swapper(context / 'src', tmp_path / 'host') as swapper:
        for n in range(100):  # until 3 got through: many builds meet a swapped folder and stop, quickly
            out = conductor('build', '--no-cache', 'graded', path, check=False)
            if out.returncode:
                refusals.append(out.stderr.strip().splitlines()[-1])
                swapper.calmer()
                continue
            seen.add(conductor('run', 'graded', 'g%d' % (n + 1), '--', 'cat', '/seen').stdout)
            built += 1
            if built == 3:
                break
    assert 'HOST SECRET\n' not in seen, 'a host folder was bound into the step'
    assert seen, 'some builds ran their step while the folder was swapped; the refusals: %s' % refusals
    unclear = [r for r in refusals if not any(m in r for m in SWAP_REFUSALS)]
    assert not unclear, 'each refusal says what happened'


def test_the_copy_step_copies_what_the_plan_hashed(conductor, tmp_path):
    """The copy step opened the context folder by path again: swapped, the layer held other files than its key
    covers. Each layer must be the good files under the good key, or the other files under their own key."""
    good, other = tmp_path / 'ctx', tmp_path / 'other'
    for folder, text in ((good, 'good\n'), (other, 'OTHER\n')):
        (folder / 'src').mkdir(parents=True)
        (folder / 'src' / 'data.txt').write_text(text)
    conductorfile = tmp_path / 'Conductorfile'
    conductorfile.write_text('FROM debian:bookworm\nCOPY src /src\n')
    keys = {}
    for folder, text in ((good, 'good\n'), (other, 'OTHER\n')):
        conductor('build', '--context', str(folder), 'img', conductorfile)
        keys[json_layers(conductor, 'img')[-1]] = text
    built, refusals = 0, []
    with Swapper(good, other) as swapper:
        for n in range(100):  # until 3 got through, as above
            out = conductor('build', '--no-cache', '--context', str(good), 'img', conductorfile, check=False)
            if out.returncode:
                refusals.append(out.stderr.strip().splitlines()[-1])
                swapper.calmer()
                continue
            built += 1
            key = json_layers(conductor, 'img')[-1]
            with open(os.path.join(conductor.root, 'layers', key, 'diff', 'src', 'data.txt')) as f:
                assert keys[key] == f.read(), 'build %d: the layer under %s holds files its key does not cover' % (n, key)
            if built == 3:
                break
    assert built, 'some builds ran while the folder was swapped; the refusals: %s' % refusals
    unclear = [r for r in refusals if not any(m in r for m in SWAP_REFUSALS)]
    assert not unclear, 'each refusal says what happened'


SWAP_REFUSALS = ('leads through a symlink out of the build context', 'is not in the build context',
                 'is a dangling symlink', 'goes through a symlink: give its real path',
                 'the build context changed while it was built', 'changed while it was copied',
                 'was moved while the build read it',
                 'is not a folder: give the folder the sources are in')  # the context itself, caught mid-swap


def json_layers(conductor, image):
    import json
    with open(os.path.join(conductor.root, 'images', image + '.json')) as f:
        return json.load(f)['layers']


def test_a_dockerignore_that_is_a_symlink_is_refused(conductor, context, tmp_path):
    """.dockerignore was read through a symlink: an oracle on the lines of any host file."""
    (tmp_path / 'host-file').write_text('app\n')
    os.symlink(str(tmp_path / 'host-file'), str(context / '.dockerignore'))
    error = conductor.fails('build', 'img', context.write('FROM debian:bookworm\nCOPY app /app\n'))
    assert '.dockerignore in the build context' in error and 'make it a plain file or remove it' in error, error
    os.unlink(str(context / '.dockerignore'))
    os.mkfifo(str(context / '.dockerignore'))
    error = conductor.fails('build', 'img', context.write('FROM debian:bookworm\nCOPY app /app\n'))
    assert 'is not a regular file' in error, error
    os.unlink(str(context / '.dockerignore'))
    (context / '.dockerignore').write_text('app/data.txt\n')
    conductor('build', 'img', context.write('FROM debian:bookworm\nCOPY app /app\n'))
    out = conductor('run', 'img', 'c', '--', 'ls', '/app').stdout
    assert out.split() == ['hello.sh'], 'control: a plain .dockerignore works'


def test_a_leftover_the_sweep_cannot_remove_never_fails_ps_or_run(conductor, context, root):
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    dead = subprocess.Popen(['true'])
    dead.wait()
    leftover = os.path.join(root, 'containers', '.tmp-%d-removed-x' % dead.pid)
    os.makedirs(leftover)
    with open(os.path.join(leftover, 'stuck'), 'w') as f:
        f.write('x')
    subprocess.run(['chattr', '+i', os.path.join(leftover, 'stuck')], check=True)  # this flag alone
    try:
        out = conductor('run', 'img', 'c1', '--', 'echo', 'ok')
        assert out.stdout == 'ok\n' and 'cannot remove %s' % leftover in out.stderr, out
        assert conductor('ps').returncode == 0
    finally:
        subprocess.run(['chattr', '-i', os.path.join(leftover, 'stuck')], check=True)
    conductor('ps')
    assert not os.path.exists(leftover), 'the next sweep takes it'


def test_a_context_path_through_a_symlink_is_refused_so_a_swap_before_the_plan_gets_nothing(conductor, tmp_path):
    """The context folder itself swapped for a symlink to a host folder just before the plan opens it: the
    plan opened the host folder (9 of 15 builds copied the host's file in the review)."""
    (tmp_path / 'host' / 'etc').mkdir(parents=True)
    (tmp_path / 'host' / 'etc' / 'hostname').write_text('HOST SECRET\n')
    hw1 = tmp_path / 'vol' / 'hw1'
    (hw1 / 'etc').mkdir(parents=True)
    (hw1 / 'etc' / 'hostname').write_text('honest\n')
    dockerfile = tmp_path / 'Dockerfile'  # the instructor's copy of the file
    dockerfile.write_text('FROM debian:bookworm\nCOPY etc/hostname /leak\n')
    conductor('build', '--context', str(hw1), '-f', str(dockerfile), 'leak')
    assert conductor('run', 'leak', 'l0', '--', 'cat', '/leak').stdout == 'honest\n', 'control'
    seen, refused = set(), 0
    with Swapper(hw1, tmp_path / 'host'):
        for n in range(15):
            out = conductor('build', '--no-cache', '--context', str(hw1), '-f', str(dockerfile), 'leak', check=False)
            if out.returncode == 0:
                seen.add(conductor('run', 'leak', 'l%d' % (n + 1), '--', 'cat', '/leak').stdout)
            refused += 'goes through a symlink: give its real path' in out.stderr
    assert 'HOST SECRET\n' not in seen, 'the plan opened a host folder as the context'
    assert refused, 'some builds met the symlink, and said so'
    link = tmp_path / 'link'
    os.symlink(str(hw1), str(link))
    error = conductor.fails('build', '--context', str(link), '-f', str(dockerfile), 'leak')
    assert 'goes through a symlink: give its real path (%s)' % hw1 in error, error


def test_a_context_changed_after_the_plan_hashed_it_never_becomes_a_cached_layer(conductor, tmp_path):
    """One student changes a starter file while their build runs an earlier step: the copy step copied the new
    content under the key of the old, and every later build of the same files (the instructor's) used it."""
    import threading
    contexts = []
    for name in ('a', 'b'):
        (tmp_path / name / 'src').mkdir(parents=True)
        (tmp_path / name / 'src' / 'app.txt').write_text('honest\n')
        contexts.append(tmp_path / name)
    dockerfile = tmp_path / 'Dockerfile'
    for text in ('RUN sleep 2\nCOPY src/ /app/\n',
                 'RUN sleep 2\nRUN --mount=type=bind,source=src,target=/src cat /src/app.txt > /seen\n'):
        dockerfile.write_text('FROM debian:bookworm\n' + text)
        timer = threading.Timer(1.0, (contexts[0] / 'src' / 'app.txt').write_text, ['EVIL BACKDOOR\n'])
        timer.start()
        out = conductor('build', '--no-cache', '--context', str(contexts[0]), '-f', str(dockerfile), 'a', check=False)
        timer.join()
        assert out.returncode != 0 and 'the build context changed while it was built' in out.stderr, out
        (contexts[0] / 'src' / 'app.txt').write_text('honest\n')
        out = conductor('build', '--context', str(contexts[1]), '-f', str(dockerfile), 'b').stdout
        path = '/app/app.txt' if 'COPY' in text else '/seen'
        assert conductor('run', 'b', 'b%d' % len(text), '--', 'cat', path).stdout == 'honest\n', out


def test_files_the_dockerignore_excludes_reach_no_step(conductor, context):
    (context / 'solution').mkdir()
    (context / 'solution' / 'answer').write_text('SECRET ANSWER\n')
    (context / '.dockerignore').write_text('solution\n')
    os.symlink('solution/answer', str(context / 'notes'))
    error = conductor.fails('build', 'img', context.write('FROM debian:bookworm\nCOPY notes /n\n'))
    assert 'COPY source notes is not in the build context' in error and 'excludes it' in error, error
    conductor('build', 'img', context.write(
        'FROM debian:bookworm\nRUN --mount=type=bind,target=/ctx sh -c "cat /ctx/solution/answer; ls /ctx" > /seen\n'))
    seen = conductor('run', 'img', 'c', '--', 'cat', '/seen').stdout
    assert 'SECRET' not in seen and 'app' in seen.split(), 'control: the rest of the context is there: %r' % seen


def test_an_image_with_a_5000_deep_tree_is_saved_and_refused_by_load_with_one_error(conductor, context, tmp_path):
    """save walks the layer through its folders' fds (paths past PATH_MAX failed it); load unpacks by path, so
    a layer deeper than PATH_MAX is one clear error that changes nothing (a named limit)."""
    conductor('build', 'deep', context.write('FROM debian:bookworm\nRUN %s\n' % DEEP))
    conductor('save', 'deep', '-o', str(tmp_path / 'deep.tar'))
    conductor('rmi', 'deep')
    listing = conductor.listing()
    error = conductor.fails('load', '-i', str(tmp_path / 'deep.tar'))
    assert 'cannot be unpacked (' in error and 'File name too long' in error, error
    assert conductor.listing() == listing
