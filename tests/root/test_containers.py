# SPDX-License-Identifier: GPL-3.0-or-later
"""The container runtime on real overlayfs, namespaces, pivot_root and capabilities."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import helpers

DEFAULT_CAPS = 0xa00425fb  # Docker's default set without MKNOD


@pytest.fixture
def image(conductor, context):
    conductor('build', 'img', context.write('FROM debian:bookworm\nCOPY app /app\nENV FROM_IMAGE=yes\n'
                                            'WORKDIR /app\nCMD ["/app/hello.sh"]\n'))
    return 'img'


def inspect(conductor, name):
    return json.loads(conductor('inspect', name).stdout)


def wait_for(predicate, timeout=10, what='condition'):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, 'timed out waiting for %s' % what
        time.sleep(0.02)


def pid_alive(pid):
    """Running, not a zombie waiting for the host's init to reap it."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except FileNotFoundError:
        return False


def test_pid1_hostname_and_isolation(conductor, image):
    out = conductor('run', image, 'iso', '--', 'sh', '-c', 'echo $$; hostname; ps -e -o pid= | wc -l').stdout.split()
    assert out == ['1', 'iso', '3'], 'PID 1, its own hostname, and only its own processes (sh, ps, wc)'
    assert socket.gethostname() != 'iso'
    assert conductor('run', '--hostname', 'lab', image, 'iso2', '--', 'hostname').stdout == 'lab\n'
    flags = conductor('run', image, 'iso3', '--', 'cat', '/sys/class/net/lo/flags').stdout
    assert int(flags, 16) & 1, 'its network namespace\'s loopback is up (IFF_UP): %s' % flags


def test_the_cli_leaves_with_all_its_output_and_quietly_without_a_reader(conductor, image):
    """bin/conductor ends with os._exit once its output is flushed: all of a long output is there, a reader that
    went away (| head -1) and a closed stdout are no traceback, and the code is the command's."""
    conductor('run', '-d', image, 'out', '--', 'sleep', '1000')
    assert conductor('exec', 'out', '--', 'seq', '1', '200000').stdout.split() == [str(i) for i in range(1, 200001)]
    cli = [sys.executable, helpers.CLI, '--root', conductor.root]
    listed = subprocess.run(cli + ['ps', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]['name'] == 'out'
    script = '"$@" images | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}" >&2'
    piped = subprocess.run(['bash', '-c', script, 'bash'] + cli, capture_output=True, text=True, check=False)
    assert piped.stderr.strip() in ('0', '141'), piped.stderr
    closed = subprocess.run(['bash', '-c', '"$@" ps >&-', 'bash'] + cli, capture_output=True, text=True, check=False)
    assert closed.returncode == 0 and closed.stderr == '', closed.stderr
    assert conductor('exec', 'out', '--', 'sh', '-c', 'exit 7', check=False).returncode == 7


def test_default_command_env_and_workdir(conductor, image):
    assert conductor('run', image, 'dflt').stdout == 'hello from the app\n'
    out = conductor('run', '-e', 'MINE=1', image, 'envs', '--', 'sh', '-c', 'echo $FROM_IMAGE $MINE $(pwd)').stdout
    assert out == 'yes 1 /app\n'


def test_dev_is_private_and_minimal(conductor, image):
    marker = 'conductor-test-%d' % os.getpid()
    out = conductor('run', image, 'dev', '--', 'sh', '-c', 'ls /dev; echo x > /dev/shm/%s' % marker).stdout.split()
    assert out == ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty',
                   'urandom', 'zero']
    assert not os.path.exists('/dev/shm/' + marker)


def test_capabilities_mount_proc_and_sys(conductor, image):
    script = ('grep CapBnd /proc/self/status; mount -t tmpfs x /mnt 2>/dev/null; echo mount=$?; '
              '(echo x > /proc/sys/kernel/core_pattern) 2>/dev/null; echo core=$?; '
              '(echo h > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?; touch /sys/x 2>/dev/null; echo sys=$?; '
              'head -c1 /proc/kcore | wc -c; ls /dev | grep -c -E "^(sd|vd|nvme|xvd)" || true')
    lines = conductor('run', image, 'caps', '--', 'sh', '-c', script).stdout.split('\n')
    assert int(lines[0].split()[1], 16) == DEFAULT_CAPS
    assert lines[1] == 'mount=32'
    assert all(line.split('=')[1] != '0' for line in lines[2:5]), lines  # core_pattern, sysrq-trigger, /sys
    assert lines[5:7] == ['0', '0'], 'kcore reads nothing and no host disk is in /dev'
    privileged = conductor('run', '--privileged', image, 'priv', '--', 'grep', 'CapBnd', '/proc/self/status').stdout
    assert int(privileged.split()[1], 16) > DEFAULT_CAPS


def test_chroot_escape_stays_inside(conductor, image, tmp_path):
    marker = tmp_path / 'host-only-marker'
    marker.write_text('host')
    escape = ('mkdir "x"; chroot "x" or die "chroot: $!"; chdir ".." for 1..30; chroot "."; '
              'print -e "%s" ? "escaped\\n" : "inside\\n"; print -e "/app/hello.sh" ? "root ok\\n" : "?\\n"' % marker)
    assert conductor('run', image, 'esc', '--', 'perl', '-e', escape).stdout == 'inside\nroot ok\n'


def test_exec_joins_every_namespace(conductor, image):
    conductor('run', '-d', image, 'svc', '--', 'sleep', '1000')
    pid = inspect(conductor, 'svc')['state']['pid']
    for ns in ('ipc', 'mnt', 'net', 'pid', 'uts'):
        inside = conductor('exec', 'svc', '--', 'readlink', '/proc/self/ns/' + ns).stdout.strip()
        assert inside == os.readlink('/proc/%d/ns/%s' % (pid, ns))
    assert conductor('exec', 'svc', '--', 'ps', '-e', '-o', 'comm=').stdout.split() == ['sleep', 'ps']
    assert conductor('exec', 'svc', '--', 'sh', '-c', 'exit 7', check=False).returncode == 7
    assert conductor('exec', 'svc', '--', 'grep', 'CapBnd', '/proc/self/status').stdout.split()[1] == '%016x' % DEFAULT_CAPS
    assert conductor('exec', '-e', 'X=2', 'svc', '--', 'sh', '-c', 'echo $X $FROM_IMAGE $(pwd)').stdout == '2 yes /app\n'
    conductor('exec', '-d', 'svc', '--', 'sh', '-c', 'echo from-exec-d; sleep 1000')
    wait_for(lambda: 'from-exec-d' in conductor('logs', 'svc').stdout, what='exec -d output in the log')
    assert conductor('exec', 'svc', '--', 'pgrep', '-c', 'sleep').stdout.strip() == '2'


def test_exit_codes_and_logs(conductor, image):
    result = conductor('run', image, 'three', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3', check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, 'out\n', 'err\n')
    conductor('run', '-d', image, 'bg', '--', 'sh', '-c', 'echo started; echo oops >&2; exit 4')
    wait_for(lambda: inspect(conductor, 'bg')['state']['status'] == 'exited (4)', what='exit 4')
    assert conductor('logs', 'bg').stdout == 'started\noops\n'
    rows = {r['name']: r for r in json.loads(conductor('ps', '--json').stdout)}
    assert rows['three']['status'] == 'exited (3)' and rows['bg']['exit_code'] == 4
    conductor('run', '-d', image, 'killed', '--', 'sleep', '1000')
    os.kill(inspect(conductor, 'killed')['state']['pid'], signal.SIGKILL)
    wait_for(lambda: inspect(conductor, 'killed')['state']['status'] == 'exited (137)', what='exit 137')
    table = conductor('ps').stdout
    assert 'exited (137)' in table and 'exited (3)' in table


def test_logs_follow(conductor, image):
    conductor('run', '-d', image, 'ticker', '--', 'sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.2; done')
    assert conductor('logs', '-f', 'ticker', timeout=20).stdout == 'tick 1\ntick 2\ntick 3\n'


def test_stop_removes_processes_mounts_and_state(conductor, image, root):
    conductor('run', '-d', image, 'stubborn', '--', 'sleep', '1000')  # PID 1 ignores SIGTERM
    state = inspect(conductor, 'stubborn')['state']
    started = time.time()
    conductor('stop', '-t', '1', 'stubborn')
    assert time.time() - started >= 1, 'the SIGKILL came after the timeout'
    assert not pid_alive(state['pid']) and not pid_alive(state['supervisor'])
    assert not os.path.exists(os.path.join(root, 'containers', 'stubborn'))
    assert 'no container named' in conductor.fails('stop', 'stubborn')
    conductor('run', '-d', image, 'polite', '--', 'sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait')
    started = time.time()
    conductor('stop', 'polite')
    assert time.time() - started < 5, 'a PID 1 that handles SIGTERM stops at once'


def test_start_reuses_the_upper_layer(conductor, image):
    assert conductor('run', image, 'again', '--', 'sh', '-c', 'echo x >> /counter; wc -l < /counter').stdout == '1\n'
    conductor('start', 'again')
    wait_for(lambda: inspect(conductor, 'again')['state']['status'] == 'exited (0)', what='second run')
    assert conductor('logs', 'again').stdout == '2\n'


def test_host_files_are_untouched(conductor, image):
    def digest():
        return [hashlib.sha256(open(p, 'rb').read()).hexdigest() for p in ('/etc/hosts', '/etc/resolv.conf', '/etc/hostname')]
    before = digest()
    out = conductor('run', image, 'files', '--', 'sh', '-c',
                    'cat /etc/hostname; echo 10.0.0.1 x >> /etc/hosts; echo nameserver 192.0.2.9 > /etc/resolv.conf; '
                    'grep -c x /etc/hosts').stdout
    assert out == 'files\n1\n'
    assert digest() == before


def test_sigkill_of_cli_or_supervisor_is_reconciled(conductor, image, root):
    for delay in (0.005, 0.02, 0.05, 0.1):
        proc = subprocess.Popen([sys.executable, helpers.CLI, '--root', root, 'run', '-d', image, 'k', '--',
                                 'sleep', '1000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        conductor('ps')
        if os.path.exists(os.path.join(root, 'containers', 'k')):
            state = inspect(conductor, 'k')['state']
            conductor('stop', '-t', '1', 'k')
            if state.get('pid'):
                assert not pid_alive(state['pid'])
        assert not os.path.exists(os.path.join(root, 'containers', 'k'))
        assert not helpers.mounts_under(root)
    conductor('run', '-d', image, 'sup', '--', 'sleep', '1000')
    state = inspect(conductor, 'sup')['state']
    os.kill(state['supervisor'], signal.SIGKILL)
    wait_for(lambda: not pid_alive(state['pid']), what='PID 1 to follow its supervisor')
    assert inspect(conductor, 'sup')['state']['status'] == 'exited (?)'
    conductor('stop', 'sup')
    assert not os.listdir(os.path.join(root, 'containers'))


def test_bad_input_is_refused_and_changes_nothing(conductor, image):
    conductor('run', image, 'done', '--', 'true')
    listing = conductor.listing()
    for args, message in (
            (['run', image, 'done'], "a container named 'done' already exists"),
            (['run', 'nosuch', 'c1'], "no image named 'nosuch'"),
            (['run', image, 'bad/name'], "invalid container name 'bad/name'"),
            (['run', '-e', 'NOEQUALS', image, 'c2'], "invalid environment entry 'NOEQUALS'"),
            (['run', '-e', '1X=a', image, 'c2'], "invalid environment entry '1X=a'"),
            (['run', '--hostname', 'a b', image, 'c2'], "invalid hostname name 'a b'"),
            (['exec', 'done', '--', 'true'], "container 'done' is not running (exited (0))"),
            (['exec', 'ghost', '--', 'true'], "no container named 'ghost'"),
            (['stop', 'ghost'], "no container named 'ghost'"),
            (['logs', 'ghost'], "no container named 'ghost'"),
            (['inspect', 'ghost'], "no container named 'ghost'"),
            (['rmi', image], "image 'img' is used by container(s) done")):
        assert message in conductor.fails(*args), args
    assert conductor.listing() == listing


def test_attached_run_and_exec_get_a_pty(conductor, image, root):
    """On a terminal (script(1) gives us one), run -it and exec attach through a new pseudo-terminal. Without
    -t run uses pipes, even on a terminal, and without -i its command reads an end of file, as Docker's."""
    cli = '%s %s --root %s' % (sys.executable, helpers.CLI, root)
    attached = "sh -c '[ -t 0 ] && [ -t 1 ] && echo attached $(tty); exit %d'"
    result = subprocess.run(['script', '-qec', cli + ' run -it img tty1 -- ' + attached % 5, '/dev/null'],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 5 and 'attached /dev/pts/0' in result.stdout, result.stdout + result.stderr
    piped = "sh -c '[ -t 0 ] || echo no terminal; read line && echo read $line || echo end of file'"
    result = subprocess.run(['script', '-qec', 'echo typed | ' + cli + ' run img tty3 -- ' + piped, '/dev/null'],
                            capture_output=True, text=True, check=False)
    assert 'no terminal' in result.stdout and 'end of file' in result.stdout, result.stdout + result.stderr
    assert conductor('run', '-i', image, 'tty4', '--', 'cat', input='typed\n').stdout == 'typed\n'
    assert 'error: -t needs a terminal' in conductor.fails('run', '-t', image, 'tty5')
    assert 'tty5' not in conductor('ps').stdout, 'refused before the container was made'
    conductor('run', '-d', image, 'tty2', '--', 'sleep', '1000')
    result = subprocess.run(['script', '-qec', cli + ' exec tty2 -- ' + attached % 6, '/dev/null'],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 6 and 'attached /dev/pts/0' in result.stdout, result.stdout + result.stderr


def test_docker_habits_run_name_rm_and_stop_keep(conductor, image):
    """run --name (every word after IMAGE is the command), run --rm, rm (refused while it runs, -f kills),
    stop --keep (Docker's stop: the container stays, exited, and starts again)."""
    assert conductor('run', '--rm', '--name', 'gone', image, 'echo', 'hi', 'there').stdout == 'hi there\n'
    assert 'gone' not in conductor('ps').stdout
    conductor('run', '-d', '--name=keeper', image, 'sleep', '1000')
    assert conductor('stop', '--keep', '-t', '0', 'keeper').stdout == 'keeper\n'
    assert 'keeper' in conductor('ps').stdout and 'exited (137)' in conductor('ps').stdout
    conductor('start', 'keeper')
    assert 'running' in conductor('ps').stdout
    assert 'keeper is running: stop it first' in conductor.fails('rm', 'keeper')
    assert conductor('rm', '-f', 'keeper').stdout == 'keeper\n'
    conductor('run', image, 'done', '--', 'true')
    assert conductor('rm', 'done').stdout == 'done\n' and 'done' not in conductor('ps').stdout
    assert '--rm and --restart contradict' in conductor.fails('run', '--rm', '-d', '--restart', 'always', image, 'x')


def test_run_rm_detached_deletes_the_container_when_its_command_ends(conductor, image):
    """run --rm -d (Docker's AutoRemove): the container and its anonymous volume go when the command ends on its
    own, or when stop --keep ends it; a named volume stays. The control, run -d without --rm, is kept, exited."""
    def names():
        return [row['name'] for row in json.loads(conductor('ps', '--json').stdout)]

    def volumes():
        return conductor('volume', 'ls').stdout

    def gone(name):
        for dummy in range(100):  # the supervisor deletes it after the command's end
            if name not in names():
                return True
            time.sleep(0.1)
        return False
    conductor('run', '--rm', '-d', '-v', '/scratch', '-v', 'kept:/kept', image, 'rmd1', '--', 'sh', '-c',
              'echo work > /kept/out; sleep 0.5')
    conductor('run', '-d', image, 'kept1', '--', 'true')
    assert 'anon-' in volumes() and 'rmd1' in names()
    assert gone('rmd1'), 'deleted when its command ended'
    assert 'anon-' not in volumes() and 'kept' in volumes(), 'its anonymous volume with it; the named one stays'
    assert 'kept1' in names() and 'exited (0)' in conductor('ps').stdout, 'the control is kept'
    conductor('run', '--rm', '-d', image, 'rmd2', '--', 'sleep', '1000')
    assert conductor('stop', '--keep', '-t', '0', 'rmd2').stdout == 'rmd2\n'
    assert 'rmd2' not in names(), "stop deletes it, as Docker's"


def test_shm_size_sets_the_size_of_dev_shm(conductor, image):
    """--shm-size (the row the options table was made for): Docker's 64m by default."""
    size = "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d ' ' -f 2"
    assert conductor('run', image, 'shm1', '--', 'sh', '-c', size).stdout == '65536\n'
    assert conductor('run', '--shm-size', '256m', image, 'shm2', '--', 'sh', '-c', size).stdout == '262144\n'
    assert "invalid shm size '1k'" in conductor.fails('run', '--shm-size', '1k', image, 'shm3')


def test_dns_search_and_add_host_write_the_containers_files(conductor, image):
    out = conductor('run', '--dns-search', 'lab.example.edu', '--dns-search', 'example.edu', '--add-host', 'db:10.0.0.5',
                    '--add-host', 'v6=fd00::5', image, 'names', '--', 'sh', '-c',
                    'grep ^search /etc/resolv.conf; grep -E "db|v6" /etc/hosts').stdout
    assert out == 'search lab.example.edu example.edu\n10.0.0.5\tdb\nfd00::5\tv6\n'
    assert "invalid address 'nowhere' for host db" in conductor.fails('run', '--add-host', 'db:nowhere', image, 'n2')
    assert 'invalid DNS search domain' in conductor.fails('run', '--dns-search', 'bad domain', image, 'n3')


def test_read_only_tmpfs_ulimits_and_sysctls(conductor, image):
    """--read-only: the root refuses writes, the tmpfs and volumes take them; --tmpfs is noexec unless asked;
    --ulimit reaches the command; --sysctl sets the container's own parameter and never a host-wide one."""
    script = ('touch /root/x 2>/dev/null && echo root-writable; touch /run/x && echo run-ok; '
              'cp /bin/true /run/t && /run/t 2>/dev/null && echo run-exec; ulimit -n; ulimit -Hn; '
              'cat /proc/sys/net/ipv4/ip_unprivileged_port_start; cat /proc/sys/kernel/shmmni; df -k /run | tail -1')
    out = conductor('run', '--read-only', '--tmpfs', '/run:size=8m', '--ulimit', 'nofile=100:200',
                    '--sysctl', 'net.ipv4.ip_unprivileged_port_start=80', '--sysctl', 'kernel.shmmni=1024',
                    image, 'ro', '--', 'sh', '-c', script).stdout.splitlines()
    assert out[:5] == ['run-ok', '100', '200', '80', '1024'], out
    assert out[5].split()[1] == '8192', 'the tmpfs has the size asked for'
    control = conductor('run', '--tmpfs', '/run:exec', image, 'rw', '--', 'sh', '-c', script).stdout.splitlines()
    assert control[:3] == ['root-writable', 'run-ok', 'run-exec'], control
    for flag, message in (('kernel.hostname=x', 'invalid sysctl kernel.hostname=x'),
                          ('vm.swappiness=0', 'invalid sysctl vm.swappiness=0'),
                          ('net.ipv4/../../kernel/core_pattern=x', 'invalid sysctl')):
        assert message in conductor.fails('run', '--sysctl', flag, image, 'bad')
    assert 'invalid ulimit nofile=2:1' in conductor.fails('run', '--ulimit', 'nofile=2:1', image, 'bad')
    assert 'invalid tmpfs' in conductor.fails('run', '--tmpfs', 'run', image, 'bad')


def test_workdir_labels_and_stop_signal(conductor, image, root):
    """-w (made if missing), --label (ps --filter finds it), --stop-signal (what stop sends first); a config
    written before these options existed still reads, runs and stops as it did."""
    assert conductor('run', '-w', '/srv/made', '-l', 'course=cs695', '-l', 'team', image, 'w1', '--', 'pwd').stdout == \
        '/srv/made\n'
    trap = "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.1; done"
    conductor('run', '-d', '--stop-signal', 'USR1', '-l', 'course=cs101', image, 'w2', '--', 'sh', '-c', trap)
    assert [r['name'] for r in json.loads(conductor('ps', '--json', '--filter', 'label=course').stdout)] == ['w1', 'w2']
    assert [r['name'] for r in json.loads(conductor('ps', '--json', '-f', 'label=course=cs695').stdout)] == ['w1']
    assert [r['name'] for r in json.loads(conductor('ps', '--json', '-f', 'label=team', '-f', 'label=course').stdout)] == ['w1']
    assert "error: unknown filter 'status=running'" in conductor.fails('ps', '--filter', 'status=running')
    time.sleep(0.5)
    conductor('stop', '--keep', '-t', '5', 'w2')
    assert 'got USR1' in conductor('logs', 'w2').stdout and 'exited (7)' in conductor('ps').stdout
    # a config as version 1 wrote it: the image's WORKDIR and STOPSIGNAL under the names the options have now
    path = os.path.join(root, 'containers', 'w2', 'config.json')
    with open(path) as f:
        old = json.load(f)
    old.update(workdir='/srv/old', stop_signal=10, labels={'course': 'cs101'})
    for key in ('version', 'run_workdir', 'run_stop_signal', 'run_labels', 'shm_size', 'dns_search', 'etc_hosts'):
        old.pop(key)
    with open(path, 'w') as f:
        json.dump(old, f)
    conductor('start', 'w2')
    time.sleep(0.5)
    assert conductor('exec', 'w2', '--', 'pwd').stdout == '/srv/old\n'
    conductor('stop', '--keep', '-t', '5', 'w2')
    assert conductor('logs', 'w2').stdout.count('got USR1') == 2, 'signal 10 (USR1), as the old config said'


def test_stop_timeout_is_the_containers_own_until_stop_says_otherwise(conductor, image):
    """--stop-timeout: how long stop waits after SIGTERM before SIGKILL, kept with the container and changed in
    place by update; stop -t overrides it. A command that takes 3 s to end after SIGTERM is killed (137) under
    1 s and ends on its own (0) under the default 10 s, the control."""
    slow = "trap 'sleep 3; exit 0' TERM; echo ready; while :; do sleep 0.1; done"

    def stopped(name, *flags):
        conductor('stop', '--keep', *flags, name)
        return json.loads(conductor('ps', '--json').stdout)

    def exit_code(rows, name):
        return [r['exit_code'] for r in rows if r['name'] == name][0]
    conductor('run', '-d', '--stop-timeout', '1', image, 'st1', '--', 'sh', '-c', slow)
    conductor('run', '-d', image, 'st2', '--', 'sh', '-c', slow)
    time.sleep(0.5)
    assert exit_code(stopped('st1'), 'st1') == 137, 'killed after its own 1 s'
    assert exit_code(stopped('st2'), 'st2') == 0, 'the control: 10 s is time enough to end'
    assert json.loads(conductor('inspect', 'st1').stdout)['config']['stop_timeout'] == 1.0
    conductor('update', '--stop-timeout', '30', 'st1')  # in place: the container is kept
    conductor('start', 'st1')
    time.sleep(0.5)
    assert exit_code(stopped('st1'), 'st1') == 0, 'given 30 s now'
    conductor('start', 'st1')
    time.sleep(0.5)
    assert exit_code(stopped('st1', '-t', '1'), 'st1') == 137, 'stop -t wins over the container\'s own'
    assert 'invalid stop timeout' in conductor.fails('run', '--stop-timeout', '-1', image, 'bad')


def test_env_file(conductor, image, tmp_path):
    env = tmp_path / 'course.env'
    env.write_text('# course settings\nCOURSE=cs695\nWEEK=1\n')
    out = conductor('run', '--env-file', str(env), '-e', 'WEEK=2', image, 'ef', '--', 'sh', '-c', 'echo $COURSE $WEEK').stdout
    assert out == 'cs695 2\n', '-e wins over the file'


def test_a_health_check_given_at_run_replaces_the_images(conductor, context):
    conductor('build', 'hc', context.write('FROM debian:bookworm\nHEALTHCHECK CMD test -f /from-image\n'))
    conductor('run', '-d', '--health-cmd', 'test -f /given', '--health-timeout', '5s', 'hc', 'h1', '--', 'sleep', '1000')
    assert conductor('healthcheck', 'h1', check=False).returncode == 1
    conductor('exec', 'h1', '--', 'touch', '/given')
    assert conductor('healthcheck', 'h1').returncode == 0
    conductor('run', '-d', '--no-healthcheck', 'hc', 'h2', '--', 'sleep', '1000')
    assert 'has no health check' in conductor.fails('healthcheck', 'h2')
    conductor('run', '-d', 'hc', 'h3', '--', 'sleep', '1000')
    conductor('exec', 'h3', '--', 'touch', '/from-image')
    assert conductor('healthcheck', 'h3').returncode == 0, "without flags, the image's"
    assert 'error: --health-timeout tunes the check' in conductor.fails('run', '--health-timeout', '1s', 'hc', 'h4')


def test_a_writer_of_the_output_passed_out_of_the_container_cannot_keep_its_exit_code_unwritten(conductor, root, tmp_path):
    """A detached container's output goes through a pipe to its supervisor, which reaps PID 1 once the pipe ends.
    The attack: PID 1 hands its stdout to a process outside its PID namespace (over a unix socket in a bind
    mount: another container, here this test), writes a line and exits. The pipe then never ends; the supervisor
    must still see PID 1 go, keep its exit code and what it wrote, and leave."""
    helpers.seed_image(root, 'py')
    shared = tmp_path / 'shared'  # the socket's folder alone: the state root is under tmp_path too
    shared.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection, fds = None, []
    try:
        listener.bind(str(shared / 'out.sock'))
        listener.listen(1)
        listener.settimeout(20)
        leak = ('import socket,sys\ns = socket.socket(socket.AF_UNIX)\ns.connect("/x/out.sock")\n'
                'socket.send_fds(s, [b"fd"], [1])\nprint("bye", flush=True)\nsys.exit(5)\n')
        conductor('run', '-d', '-v', '%s:/x' % shared, 'py', 'leaker', '--', 'python3', '-c', leak)
        control = 'import sys\nprint("bye", flush=True)\nsys.exit(6)\n'
        conductor('run', '-d', 'py', 'honest', '--', 'python3', '-c', control)
        connection = listener.accept()[0]
        dummy, fds, dummy, dummy = socket.recv_fds(connection, 16, 1)
        state = inspect(conductor, 'leaker')['state']
        wait_for(lambda: inspect(conductor, 'leaker')['state']['status'] == 'exited (5)', timeout=15,
                 what='the exit code of a container whose output pipe is held outside it')
        assert not pid_alive(state['supervisor'])
        assert conductor('logs', 'leaker').stdout == 'bye\n'
        wait_for(lambda: inspect(conductor, 'honest')['state']['status'] == 'exited (6)', what='the control')
        assert conductor('logs', 'honest').stdout == 'bye\n'
    finally:
        for fd in fds:
            os.close(fd)
        if connection is not None:
            connection.close()
        listener.close()
