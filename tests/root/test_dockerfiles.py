# SPDX-License-Identifier: GPL-3.0-or-later
"""Dockerfiles written the way course material is (tests/dockerfiles/*), built and run unchanged (issue 11).

Each folder is a build context. Every FROM resolves to the cached bookworm base (12, 12-slim,
bookworm-slim, oldstable, docker.io/library/debian:12-slim), so no test downloads a distribution.
"""
import json
import os
import resource
import shutil
import tarfile

import pytest

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'dockerfiles')


@pytest.fixture
def build(conductor, tmp_path):
    """build(folder, image=folder, *options): copy tests/dockerfiles/<folder> and build it; the copy's path."""
    def build(folder, *options, image=None):
        context = tmp_path / folder
        if not context.exists():
            shutil.copytree(os.path.join(HERE, folder), str(context))
        conductor('build', '-f', str(context / 'Dockerfile'), *options, image or folder)
        return context
    return build


def image_config(conductor, name):
    return next(i for i in json.loads(conductor('images', '--json').stdout) if i['name'] == name)['config']


def test_a_python_project_copies_into_its_workdir(conductor, build):
    """WORKDIR (given through an ARG) then `COPY requirements.txt .`, before anything made the folder: it
    is made, as Docker's WORKDIR makes it. `./`, `..`, a relative folder (with / and /.) and a file name."""
    build('python-app')
    assert conductor('run', 'python-app', 'py').stdout.splitlines() == [
        '/srv/app/src', '/srv/app/again/requirements.txt', '/srv/app/lib/requirements.txt',
        '/srv/app/renamed', '/srv/app/requirements.txt', '/srv/app/src/app.py', '/srv/requirements.txt']


def test_a_multi_stage_web_project(conductor, build, tmp_path):
    """ARG, multi-stage, LABEL, USER, ENTRYPOINT + CMD, COPY --from with --chown, ADD of a tarball, .dockerignore."""
    context = tmp_path / 'webapp'
    shutil.copytree(os.path.join(HERE, 'webapp'), str(context))
    with tarfile.open(str(context / 'site.tar.gz'), 'w:gz') as tar:
        tar.add(str(context / 'site'), arcname='css')
    build('webapp', '--build-arg', 'VERSION=2.5')
    assert conductor('run', 'webapp', 'web').stdout == 'serving <h1>webapp 2.5</h1> as www with --port 8080\ncss\n'
    listing = conductor('run', '--entrypoint', 'sh', 'webapp', 'ls', '--', '-c',
                        'ls -ln /srv/www /srv/www/static/css; ls / | grep -c build; ls -l /usr/local/bin/serve').stdout
    assert 'index.html' in listing and '1200 1200' in listing and 'style.css' in listing
    assert 'build.log' not in listing and 'index.html.in' not in listing, '.dockerignore and the build stage'
    assert listing.splitlines()[-2:] == ['0', listing.splitlines()[-1]] and listing.endswith('/usr/local/bin/serve\n')
    assert listing.splitlines()[-1].startswith('-rwxr-xr-x 1 root root'), 'COPY --chmod=0755'
    config = image_config(conductor, 'webapp')
    assert config['labels'] == {'org.opencontainers.image.title': 'webapp', 'course': 'cs695'}
    assert config['exposed'] == ['8080/tcp'] and config['user'] == 'www' and config['workdir'] == '/srv/www'
    assert config['healthcheck']['test'] == ['CMD-SHELL', 'test -s /srv/www/index.html']
    assert 'secrets' not in conductor('run', '--entrypoint', 'ls', 'webapp', 'ls2', '--', '/srv/www').stdout
    again = conductor('build', '-f', str(context / 'Dockerfile'), '--build-arg', 'VERSION=2.5', 'webapp').stdout
    assert 'unchanged' in again and again.count('(cached)') == 8, 'both FROMs and every step that makes a layer'
    changed = conductor('build', '-f', str(context / 'Dockerfile'), '--build-arg', 'VERSION=2.6', 'webapp').stdout
    steps = [line for line in changed.splitlines() if line.startswith('Step ')]
    assert steps[3].startswith('Step 4/16 : RUN sed') and not steps[3].endswith('(cached)'), \
        'the build arg reaches the RUN that sees it'
    assert steps[2].endswith('(cached)') and steps[6].endswith('(cached)'), 'and no step that does not see it'


def test_an_ssh_lab_with_build_args_user_and_volume(conductor, build):
    build('ssh-lab', '--build-arg', 'USERNAME=ada', '--build-arg', 'USER_UID=1234')
    out = conductor('run', 'ssh-lab', 'lab').stdout
    assert out == 'ada in /home/ada\nuid=1234(ada) gid=1234(ada) groups=1234(ada)\n'
    config = image_config(conductor, 'ssh-lab')
    assert config['volumes'] == ['/home/ada/work'] and config['stop_signal'] == 2
    assert 'LAB_HOME=/home/ada' in config['env']
    conductor('run', '-d', '--entrypoint', 'sleep', 'ssh-lab', 'lab2', '--', '1000')
    assert conductor('exec', 'lab2', '--', 'id', '-un').stdout == 'ada\n'
    assert conductor('exec', 'lab2', '--', 'stat', '-c', '%U', 'work').stdout == 'root\n', \
        'a volume at a path the image lacks is made root\'s, as Docker makes it'


def test_a_grader_with_shell_entrypoint_and_cmd(conductor, build, tmp_path):
    build('grader')
    assert conductor('run', 'grader', 'g1').stdout == 'OK\n'
    (tmp_path / 'wrong').write_text('ft_split\n')
    result = conductor('run', '-v', '%s:/answer:ro' % (tmp_path / 'wrong'), 'grader', 'g2', '--', '/answer', check=False)
    assert (result.returncode, result.stdout) == (1, 'KO\n'), 'run IMG NAME -- x: ENTRYPOINT plus x'
    assert image_config(conductor, 'grader')['shell'] == ['/bin/bash', '-o', 'pipefail', '-c']


def test_run_mounts_cache_bind_and_no_network(conductor, build, root):
    context = build('cache-mount')
    names = iter(range(100))

    def show(path):
        return conductor('run', 'cache-mount', 'c%d' % next(names), '--', 'cat', path).stdout

    assert show('/fetch-count') == '1\n' and show('/combined') == 'one\ntwo\n' and show('/netdevs') == 'lo\n'
    conductor('build', '--no-cache', '-f', str(context / 'Dockerfile'), 'cache-mount')
    assert show('/fetch-count') == '2\n', 'the cache folder is kept between builds'
    (context / 'src' / 'a.txt').write_text('uno\n')
    out = conductor('build', '-f', str(context / 'Dockerfile'), 'cache-mount').stdout
    assert 'Step 2/4 : RUN --mount=type=cache' in out and out.count('(cached)') == 2, 'the bind source is in the key'
    assert show('/combined') == 'uno\ntwo\n'
    assert 'freed' in conductor('rmcache').stdout and not os.listdir(os.path.join(root, 'build-cache'))


def test_healthcheck_until_healthy(conductor, build):
    build('healthy')
    conductor('run', '-d', 'healthy', 'h')
    assert conductor('healthcheck', '--wait', '30', 'h').stdout == 'healthy\n'
    conductor('exec', 'h', '--', 'rm', '/tmp/ready')
    result = conductor('healthcheck', 'h', check=False)
    assert (result.returncode, result.stdout) == (1, 'unhealthy (exit code 1): \n')
    assert 'is not healthy after 1.5s' in conductor.fails('healthcheck', '--wait', '1.5', 'h')


def test_a_check_that_hangs_is_killed_at_its_timeout(conductor, context):
    conductor('build', 'slow', context.write('FROM debian:bookworm\nHEALTHCHECK --timeout=1s CMD sleep 60\n'))
    conductor('run', '-d', 'slow', 's', '--', 'sleep', '1000')
    result = conductor('healthcheck', 's', check=False)
    assert result.returncode == 1 and 'did not finish within 1s' in result.stdout
    assert conductor('exec', 's', '--', 'sh', '-c', 'ps -eo stat=,comm= | grep -v ^Z | grep -c sleep', check=False).stdout == '1\n', \
        'the hung check is gone (a zombie at most: PID 1 is sleep, which reaps nothing)'


def test_a_check_that_prints_without_end_keeps_its_last_4_kib_and_writes_no_file(conductor, context):
    """300 MiB of output: before, all of it went to a host temp file (unlinked, so only a file size limit shows it)."""
    conductor('build', 'chatty', context.write('FROM debian:bookworm\nHEALTHCHECK CMD yes student 2>/dev/null | '
                                               'head -c 314572800; echo done; exit 3\n'))
    conductor('run', '-d', 'chatty', 'c', '--', 'sleep', '1000')

    def no_file_over_1_mib():  # inherited by the check: a write past 1 MiB into any file kills it (SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    result = conductor('healthcheck', 'c', check=False, preexec_fn=no_file_over_1_mib)
    prefix = 'unhealthy (exit code 3): '
    assert result.stdout.startswith(prefix), result.stdout[:200] + result.stderr
    output = result.stdout[len(prefix):].rstrip('\n')
    assert len(output) <= 4096 and output.endswith('student\nstudent\ndone'), 'the last 4 KiB, cut at the start'
    conductor('build', 'quiet', context.write('FROM debian:bookworm\nHEALTHCHECK CMD sleep 1000 & echo first; '
                                              'echo second >&2; exit 1\n'))
    conductor('run', '-d', 'quiet', 'q', '--', 'sleep', '1000')
    result = conductor('healthcheck', 'q', check=False, preexec_fn=no_file_over_1_mib, timeout=120)  # a guard only
    assert result.stdout == 'unhealthy (exit code 1): first\nsecond\n', \
        'control: a short output is kept whole, and the sleep left behind with the pipe does not hold the check'


def test_an_nginx_like_image_stops_with_its_signal(conductor, build):
    build('nginx-like')
    conductor('run', '-d', 'nginx-like', 'web')
    assert conductor('exec', 'web', '--', 'stat', '-c', '%U', '/var/www/html/index.html').stdout == 'www-data\n'
    config = json.loads(conductor('inspect', 'web').stdout)['config']
    assert config['exposed'] == ['443/tcp', '80/tcp'] and config['run_stop_signal'] == 3
    assert config['run_labels'] == {'maintainer': 'teaching team <cs695@example.org>'}


def test_heredocs_and_a_parent_image(conductor, build):
    build('course-base')
    build('heredocs', '--build-arg', 'WEEK=5')
    assert conductor('run', 'heredocs', 'w').stdout == 'tests for week 5\n'
    out = conductor('run', 'heredocs', 'w2', '--', 'sh', '-c', 'cat /etc/motd /setup.log; pwd').stdout
    assert out == 'Welcome to week 5-cs695\nsetting up week 5\ntools v1\n/course/week-5\n'


@pytest.mark.parametrize('text, message', [
    ('FROM debian:bookworm\nARG 9LIVES=x\n', "Dockerfile:2: ARG: invalid name '9LIVES'"),
    ('FROM debian:bookworm AS a\nRUN true\nFROM debian:bookworm\nCOPY --from=b /x /x\n',
     'Dockerfile:4: b is neither a stage of this file (named stages: a) nor a built image'),
    ('FROM debian:bookworm AS a\nCOPY --from=b /x /x\nFROM a AS b\n', 'Dockerfile:2: a cycle of stages (b -> a -> b)'),
    ('FROM debian:bookworm\nADD evil.tar /srv/\n', 'Dockerfile:2: ADD: ../../etc/cron.d/evil in evil.tar leads out of the '
                                                   'destination: refused, nothing was changed'),
    ('FROM debian:trusty\nRUN true\nFORM typo\n', "Dockerfile:1: unknown debian tag 'trusty' in FROM debian:trusty: use one "
                                                  "of bookworm, bullseye"),
])
def test_bad_dockerfiles_get_one_clear_error_and_change_nothing(conductor, tmp_path, text, message):
    (tmp_path / 'Dockerfile').write_text(text)
    with tarfile.open(str(tmp_path / 'evil.tar'), 'w') as tar:
        info = tarfile.TarInfo('../../etc/cron.d/evil')
        tar.addfile(info)
    before = conductor.listing()
    assert message in conductor.fails('build', '-f', str(tmp_path / 'Dockerfile'), 'bad')
    assert conductor.listing() == before


def test_add_downloads_only_when_allowed(conductor, context):
    """ADD <URL> from a server on loopback: refused by default, fetched with --allow-downloads."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    (context / 'served').mkdir()
    (context / 'served' / 'notes.txt').write_text('version 1\n')

    def handler(*args):
        return Quiet(*args, directory=str(context / 'served'))

    server = http.server.HTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = 'http://127.0.0.1:%d/notes.txt' % server.server_address[1]
        path = context.write('FROM debian:bookworm\nADD %s /srv/\n' % url)
        assert 'downloads are off: build with --allow-downloads' in conductor.fails('build', 'dl', path)
        conductor('build', '--allow-downloads', 'dl', path)
        assert conductor('run', 'dl', 'a', '--', 'stat', '-c', '%a %n', '/srv/notes.txt').stdout == \
            '600 /srv/notes.txt\n'
        assert 'unchanged' in conductor('build', '--allow-downloads', 'dl', path).stdout
        (context / 'served' / 'notes.txt').write_text('version 2\n')
        assert 'unchanged' not in conductor('build', '--allow-downloads', 'dl', path).stdout
        assert conductor('run', 'dl', 'b', '--', 'cat', '/srv/notes.txt').stdout == 'version 2\n'
        missing = context.write('FROM debian:bookworm\nADD %s.gone /srv/\n' % url)
        assert 'the download failed: HTTP 404 File not found' in conductor.fails('build', '--allow-downloads', 'dl2', missing)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize('text, message', [
    ('WORKDIR /etc/passwd\nCOPY Dockerfile .\n',
     "Dockerfile:3: COPY failed: the WORKDIR /etc/passwd is not a folder in the image: 'COPY Dockerfile .'"),
    ('COPY Dockerfile /etc/passwd/\n', "Dockerfile:2: COPY failed: /etc/passwd: File exists: 'COPY Dockerfile /etc/passwd/'"),
    ("RUN sh -c 'kill -SYS $$'\n",
     "Dockerfile:2: RUN was killed by SIGSYS (a system call the seccomp filter refuses): \"RUN sh -c 'kill -SYS $$'\""),
])
def test_a_failed_step_names_its_cause_never_a_bare_exit_code(conductor, tmp_path, text, message):
    (tmp_path / 'Dockerfile').write_text('FROM debian:bookworm\n')
    conductor('build', '-f', str(tmp_path / 'Dockerfile'), 'base')  # the store exists: "nothing changed" is exact
    (tmp_path / 'Dockerfile').write_text('FROM debian:bookworm\n' + text)
    before = conductor.listing()
    assert message in conductor.fails('build', '-f', str(tmp_path / 'Dockerfile'), 'bad')
    assert conductor.listing() == before
