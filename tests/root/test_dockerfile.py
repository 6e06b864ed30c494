# SPDX-License-Identifier: GPL-3.0-or-later
"""Dockerfile instructions beyond the first six: ENTRYPOINT, USER, LABEL, EXPOSE, STOPSIGNAL (issue 11)."""
import json
import time

DOCKERFILE = '''FROM debian:12-slim
LABEL course=cs695 maintainer="a teacher"
RUN useradd -m -u 1500 student && mkdir /srv/app && chown student /srv/app
EXPOSE 8080 53/udp
STOPSIGNAL SIGINT
USER student
RUN id -un > /srv/app/built-by
WORKDIR /srv/app
ENTRYPOINT ["echo", "entry"]
CMD ["default", "args"]
'''


def test_entrypoint_cmd_and_user_as_docker_has_them(conductor, context):
    conductor('build', 'df', context.write(DOCKERFILE))
    assert conductor('run', 'df', 'a').stdout == 'entry default args\n'
    assert conductor('run', 'df', 'b', '--', 'x', 'y').stdout == 'entry x y\n', 'run IMG NAME -- x y: ENTRYPOINT x y'
    assert conductor('run', '--entrypoint', 'id', 'df', 'c', '--', '-un').stdout == 'student\n'
    assert conductor('run', '--entrypoint', 'cat', 'df', 'd', '--', '/srv/app/built-by').stdout == 'student\n', \
        'the RUN after USER ran as that user'
    assert conductor('run', '--entrypoint', 'sh', 'df', 'e', '--', '-c', 'echo $HOME; id -u; id -G').stdout \
        == '/home/student\n1500\n1500\n'
    assert conductor('run', '-u', 'root', '--entrypoint', 'id', 'df', 'f', '--', '-un').stdout == 'root\n'
    conductor('run', '-d', '--entrypoint', 'sleep', 'df', 'g', '--', '1000')
    assert conductor('exec', 'g', '--', 'id', '-un').stdout == 'student\n'
    assert conductor('exec', '-u', 'root', 'g', '--', 'id', '-un').stdout == 'root\n'


def test_labels_exposed_ports_and_the_stop_signal(conductor, context):
    conductor('build', 'df', context.write(DOCKERFILE))
    trap = "trap '' TERM; trap 'exit 0' INT; while :; do sleep 0.1; done"  # deaf to SIGTERM
    conductor('run', '-d', '-u', 'root', '--entrypoint', 'sh', 'df', 'svc', '--', '-c', trap)
    config = json.loads(conductor('inspect', 'svc').stdout)['config']
    assert config['run_labels'] == {'course': 'cs695', 'maintainer': 'a teacher'}  # the image's, what it runs with
    assert config['exposed'] == ['53/udp', '8080/tcp'] and config['run_stop_signal'] == 2
    started = time.time()
    conductor('stop', 'svc')
    assert time.time() - started < 5, 'SIGINT, the image\'s STOPSIGNAL, ended it at once'


def test_a_user_the_image_lacks_is_refused_at_run(conductor, context):
    conductor('build', 'df', context.write(DOCKERFILE))
    message = conductor.fails('run', '-u', 'nobody-here', 'df', 'h')
    assert "USER nobody-here: no such user in the image's /etc/passwd" in message
    assert 'invalid user' in conductor.fails('run', '-u', 'a b', 'df', 'i')


def test_exec_as_a_user_reads_only_a_regular_passwd_of_bounded_size(conductor, context):
    """A student's container plants its /etc/passwd or /etc/group: exec -u (and Ansible's remote_user) fails at once
    with the error, never waits on a FIFO, reads a device for ever or follows a link through /proc."""
    conductor('build', 'df', context.write(DOCKERFILE))
    conductor('run', '-d', '-u', 'root', '--entrypoint', 'sleep', 'df', 'u', '--', '1000')
    conductor('exec', 'u', '--', 'sh', '-c', 'cp /etc/passwd /etc/passwd.real && cp /etc/group /etc/group.real')
    plants = [('rm /etc/passwd && mkfifo /etc/passwd', 'from /etc/passwd: it is not a regular file'),
              ('rm /etc/group && mkfifo /etc/group', 'from /etc/group: it is not a regular file'),
              ('truncate -s 64M /etc/passwd', 'from /etc/passwd: it is larger than 4 MiB'),
              ('ln -sf /dev/zero /etc/passwd', 'from /etc/passwd: it is not a regular file'),
              ('ln -sf /proc/1/root/etc/passwd.real /etc/passwd',
               'from /etc/passwd (openat2 etc/passwd: Too many levels of symbolic links)')]
    for plant, error in plants:
        conductor('exec', 'u', '--', 'sh', '-c', 'rm -f /etc/passwd /etc/group && cp /etc/passwd.real /etc/passwd && '
                  'cp /etc/group.real /etc/group && ' + plant)
        result = conductor('exec', '-u', 'student', 'u', '--', 'id', '-un', check=False, timeout=120)  # a guard only
        assert result.returncode != 0 and 'cannot read users and groups ' + error in result.stderr, (plant, result)
    conductor('exec', 'u', '--', 'sh', '-c', 'rm -f /etc/passwd /etc/group && ln -s passwd.real /etc/passwd && '
              'cp /etc/group.real /etc/group')
    assert conductor('exec', '-u', 'student', 'u', '--', 'id', '-un').stdout == 'student\n', \
        'control: a regular file, even through a link inside the container, is read'
