# SPDX-License-Identifier: GPL-3.0-or-later
"""cgroups for real: a build's RUN steps are limited as containers are, and the path systemd's delegation
takes is exercised on the kernel's own cgroup2 tree (this machine binds memory, cpu and pids to v1, so
that tree has no controller Conductor limits: its groups, moves and removal are what is tested)."""
import glob
import os
import subprocess
import sys
import time

import pytest

import helpers
from ansible_collections.cs695.conductor.plugins.module_utils import _cgroups
from ansible_collections.cs695.conductor.plugins.module_utils._runtime import join_cgroup

FORKS = 'i=0; while [ $i -lt %d ]; do sleep 30 & i=$((i+1)); done; echo started: $i'


@pytest.fixture
def limited(tmp_path):
    """A conductor.conf with a small process limit and a build memory limit."""
    config = tmp_path / 'conductor.conf'
    config.write_text('PIDS_LIMIT=40\nBUILD_MEMORY=64m\n')
    return dict(os.environ, CONDUCTOR_CONFIG=str(config))


def test_a_run_step_cannot_fork_past_the_process_limit(conductor, context, limited):
    """The attack: a Conductorfile whose RUN starts more processes than the host should give a student."""
    result = conductor('build', 'bomb', context.write('FROM debian:bookworm\nRUN ' + FORKS % 100 + '\n'),
                       check=False, env=limited)
    assert result.returncode != 0 and 'started: 100' not in result.stdout, result.stdout
    assert 'cannot fork' in result.stdout.lower(), result.stdout
    # the control: under the limit the same step builds, and it ran in a group of conductor's
    ok = conductor('build', 'few', context.write('FROM debian:bookworm\nRUN ' + FORKS % 10 + ' && cat /proc/self/cgroup\n'),
                   env=limited).stdout
    assert 'started: 10' in ok and '/conductor/.build-' in ok, ok
    parent = os.path.dirname(_cgroups.Cgroup('any').folders()[0])
    left = [g for g in (os.listdir(parent) if os.path.isdir(parent) else []) if g.startswith('.build-')
            and not os.path.exists('/proc/%s' % g.split('-')[1])]  # a build still running elsewhere is not ours
    assert not left, 'the step\'s group went with it'


def test_a_run_step_cannot_take_the_hosts_memory(conductor, context, limited):
    hog = 'perl -e \'$x = "x" x (256 * 1024 * 1024); print 6 * 7, "\\n"\''
    result = conductor('build', 'hog', context.write('FROM debian:bookworm\nRUN ' + hog + '\n'), check=False, env=limited)
    assert result.returncode != 0 and '42' not in result.stdout, result
    assert 'RUN was killed by SIGKILL (the out-of-memory killer does that: BUILD_MEMORY' in result.stderr, result
    small = 'perl -e \'$x = "x" x (16 * 1024 * 1024); print 6 * 7, "\\n"\''
    built = conductor('build', 'small', context.write('FROM debian:bookworm\nRUN ' + small + '\n'), env=limited)
    assert '\n42\n' in built.stdout


def cgroup2_mount():
    with open('/proc/self/mountinfo') as f:
        for line in f:
            if ' - cgroup2 ' in line:
                return line.split()[4], line
    return None, None


def test_the_delegated_path_on_the_kernels_cgroup2():
    """What systemd's Delegate=yes gives (a unit's group with its one process in it), made by hand: the
    holder moves itself into a leaf, then a container's group is made, joined and removed below it,
    and nothing above the unit is written."""
    mount, line = cgroup2_mount()
    if mount is None:
        pytest.skip('no cgroup2 mount on this host')
    slice_ = os.path.join(mount, 'cdt-%d.slice' % os.getpid())
    unit = os.path.join(slice_, 'lab.service')
    os.makedirs(unit)
    above = [open(os.path.join(d, 'cgroup.subtree_control')).read() for d in (mount, slice_)]
    holder = child = None
    try:
        holder = subprocess.Popen(['/bin/sh', '-c', _cgroups.HOLDER.format(unit)],
                                  preexec_fn=lambda: join_cgroup([os.path.join(unit, 'cgroup.procs')]))
        deadline = time.time() + 5
        while open(os.path.join(unit, 'holder', 'cgroup.procs')).read().split() != [str(holder.pid)] \
                if os.path.exists(os.path.join(unit, 'holder')) else True:
            assert time.time() < deadline, 'the holder never moved into its leaf'
            time.sleep(0.01)
        assert open(os.path.join(unit, 'cgroup.procs')).read() == '', 'no process left in the unit\'s own group'
        group = _cgroups.Cgroup('web', os.path.relpath(unit, mount), mountinfo=line, delegated=True)
        group.create({}, optional=('pids',))
        child = subprocess.Popen(['sleep', '30'], preexec_fn=lambda: join_cgroup(group.procs()))
        time.sleep(0.05)
        with open('/proc/%d/cgroup' % child.pid) as f:
            assert '0::/%s/web' % os.path.relpath(unit, mount) in f.read().splitlines()
        child.kill()
        child.wait()
        group.remove()
        assert sorted(d for d in os.listdir(unit) if os.path.isdir(os.path.join(unit, d))) == ['holder']
        assert [open(os.path.join(d, 'cgroup.subtree_control')).read() for d in (mount, slice_)] == above
    finally:
        for process in (child, holder):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for folder in (os.path.join(unit, 'web'), os.path.join(unit, 'holder'), unit, slice_):
            if os.path.isdir(folder):
                os.rmdir(folder)


def test_the_instructors_default_memory_limit(conductor, context, tmp_path):
    """MEMORY_LIMIT in conductor.conf: a container that sets no limit of its own gets it."""
    import json
    config = tmp_path / 'memory.conf'
    config.write_text('MEMORY_LIMIT=64m\n')
    env = dict(os.environ, CONDUCTOR_CONFIG=str(config))
    conductor('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'), env=env)
    hog = ['perl', '-e', '$x = "x" x (128 * 1024 * 1024); print 6 * 7, "\\n"']
    conductor('run', '-d', 'img', 'student', env=env)
    assert conductor('exec', 'student', '--', *hog, check=False, env=env).returncode == 137
    assert json.loads(conductor('inspect', 'student', env=env).stdout)['limits']['memory'] == 64 << 20
    conductor('run', '-d', '--memory', '512m', 'img', 'staff', env=env)  # the control: its own limit wins
    assert conductor('exec', 'staff', '--', *hog, env=env).stdout == '42\n'
    config.write_text('MEMORY_LIMIT=12q\n')
    before = conductor.listing()
    bad = conductor('run', '-d', 'img', 'bad', check=False, env=env)
    assert bad.returncode == 1 and bad.stderr == ("conductor run: invalid MEMORY_LIMIT in the config '12q': give a "
                                                  "size of at least 6m, such as 512m or 2g\n")
    assert conductor.listing() == before


def test_keeping_migrations_quick_moves_nothing():
    """The no-op moves that keep the kernel's migration lock awake (v2's: on v1 a process joins by tasks, with
    no such lock, and none is made) leave this process where it was, and stop on their own."""
    def threads():
        return set(os.listdir('/proc/self/task'))
    before, alone = open('/proc/self/cgroup').read(), threads()
    _cgroups.keep_migrations_quick(0.1)
    movers = threads() - alone
    assert len(movers) == (1 if _cgroups.hierarchies()[0] == 'v2' else 0), 'one thread makes the moves, on v2'
    time.sleep(0.05)
    assert open('/proc/self/cgroup').read() == before
    for dummy in range(200):  # it stops on its own, soon after its 0.1 s
        if not movers & threads():
            break
        time.sleep(0.01)
    assert not movers & threads() and open('/proc/self/cgroup').read() == before


# A host booted with systemd on cgroup v2, made from this one: new mount, PID, cgroup, UTS, IPC and network
# namespaces; the host's root read-only (the checkout stays in sight, wherever it is), with $1 (the test's
# folder) writable, and TMPDIR in it; a tmpfs /run; the
# cgroup2 tree (the test's own group, through the cgroup namespace) alone at /sys/fs/cgroup; and systemd
# as PID 1, in container mode, reaching only a target of its own.
SYSTEMD_HOST = """set -e
mount --make-rprivate /
new="$1/sysroot"; mkdir -p "$new"
mount --rbind / "$new"
mount -o remount,bind,ro "$new"
mkdir -p "$new$1" && mount --bind "$1" "$new$1"
umount -R "$new/sys/fs/cgroup" && mount -t cgroup2 cgroup2 "$new/sys/fs/cgroup"
mount -t tmpfs -o mode=755 tmpfs "$new/run"
mount -t proc proc "$new/proc"
mount -o remount,bind,ro "$new/dev"
mkdir -p "$new/run/systemd/system"
printf '[Unit]\\nDescription=a test host\\nDefaultDependencies=no\\n' > "$new/run/systemd/system/cdt.target"
cd "$new"
exec chroot "$new" env -i container=conductor-test PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd \\
    --system --unit=cdt.target --log-target=console --show-status=no
"""


@pytest.fixture
def systemd_host(tmp_path):
    """run(argv) inside a host whose PID 1 is systemd and whose cgroups are v2; yields (run, its cgroup)."""
    mount, dummy = cgroup2_mount()
    if mount is None or not os.path.exists('/lib/systemd/systemd'):
        pytest.skip('needs a cgroup2 mount and systemd')
    group = os.path.join(mount, 'cdt-systemd-%d' % os.getpid())
    os.mkdir(group)
    with open(tmp_path / 'systemd.log', 'w') as log:
        host = subprocess.Popen(['unshare', '--mount', '--pid', '--fork', '--cgroup', '--uts', '--ipc', '--net',
                                 'sh', '-c', SYSTEMD_HOST, 'systemd-host', str(tmp_path)], stdout=log, stderr=log,
                                preexec_fn=lambda: join_cgroup([os.path.join(group, 'cgroup.procs')]))
    pid1 = None

    def run(*argv, check=True):
        result = subprocess.run(['nsenter', '-t', pid1, '-m', '-p', '-u', '-i', '-n', '-C', '-r', '-w', '--'] + list(argv),
                                capture_output=True, text=True, check=False,
                                env=dict(os.environ, CONDUCTOR_CONFIG=os.devnull, TMPDIR=str(tmp_path)))
        assert result.returncode == 0 or not check, result
        return result
    try:
        deadline = time.time() + 30
        while pid1 is None or run('systemctl', 'is-system-running', check=False).stdout.strip() not in ('running', 'degraded'):
            assert time.time() < deadline and host.poll() is None, (tmp_path / 'systemd.log').read_text()
            time.sleep(0.1)
            procs = os.path.join(group, 'init.scope', 'cgroup.procs')
            pid1 = (open(procs).read().split() or [None])[0] if os.path.exists(procs) else None
        yield run, group
    finally:
        if pid1:
            os.kill(int(pid1), 9)  # the PID namespace, and every process in it, ends with its PID 1
        host.wait()
        deadline = time.time() + 10
        while os.path.isdir(group):
            try:
                for top, dirs, files in os.walk(group, topdown=False):
                    os.rmdir(top)
            except OSError:
                assert time.time() < deadline, 'cgroups of the systemd host stay busy'
                time.sleep(0.05)


def test_with_systemd_the_groups_are_in_a_delegated_unit(systemd_host, root, conductor, context):
    """systemd 252 as PID 1 on cgroup v2: the first start brings up conductor-cgroups.service with
    Delegate=yes; the containers' and RUN steps' groups are made inside it, and go with them."""
    run, group = systemd_host
    cli = [sys.executable, helpers.CLI, '--root', root]
    conductor('build', 'img', context.write('FROM debian:bookworm\n'))
    run(*cli, 'run', '-d', 'img', 'web', '--', 'sleep', '1000')
    unit = os.path.join(group, 'system.slice', 'conductor-cgroups.service')
    show = run('systemctl', 'show', '-p', 'Delegate', '-p', 'ActiveState', '-p', 'TasksMax', '-p', 'KillMode',
               'conductor-cgroups.service').stdout
    half = int(run('cat', '/proc/sys/kernel/pid_max').stdout) // 2  # TOTAL_PIDS_LIMIT's default (its own pid_max)
    assert sorted(show.split()) == ['ActiveState=active', 'Delegate=yes', 'KillMode=process',
                                    'TasksMax=%d' % half], show
    web = glob.glob(os.path.join(unit, 'web-*'))
    assert len(web) == 1 and open(os.path.join(web[0], 'cgroup.procs')).read().strip(), 'PID 1 is in the group'
    assert open(os.path.join(unit, 'cgroup.procs')).read() == '' and \
        open(os.path.join(unit, 'holder', 'cgroup.procs')).read().strip(), 'the unit\'s own process is in holder/'
    step = run(*cli, 'build', 'step', context.write('FROM img\nRUN sed -n "s/^0:://p" /proc/self/cgroup\n')).stdout
    assert '/system.slice/conductor-cgroups.service/.build-' in step, step
    # the unit's one process killed (pkill sleep, the OOM killer): the unit and its containers live on
    holder = int(open(os.path.join(unit, 'holder', 'cgroup.procs')).read().split()[0])
    os.kill(holder, 9)
    deadline = time.time() + 10
    procs = os.path.join(unit, 'holder', 'cgroup.procs')  # systemd removes the empty holder/ on the way
    while (open(procs).read().split() if os.path.exists(procs) else []) in ([], [str(holder)]):
        assert time.time() < deadline, 'the holder was not made again'
        time.sleep(0.05)
    assert 'ActiveState=active' in run('systemctl', 'show', '-p', 'ActiveState', 'conductor-cgroups.service').stdout
    assert open(os.path.join(web[0], 'cgroup.procs')).read().strip(), 'the container still runs'
    run(*cli, 'run', '-d', 'img', 'web2', '--', 'sleep', '1000')
    run(*cli, 'stop', '-t', '0', 'web', 'web2')
    assert not os.path.exists(web[0]) and os.listdir(unit).count('holder') == 1


def test_all_containers_together_stay_under_the_total_limits(conductor, context, tmp_path):
    """The attack: a container whose own process limit is above what all may have together forks as far as it
    can. The totals are in the test's own parent group (CGROUP_PARENT), so the host's stays as it was."""
    parent = 'conductor-test-total-%d' % os.getpid()
    config = tmp_path / 'total.conf'
    config.write_text('CGROUP_PARENT=%s\nTOTAL_PIDS_LIMIT=60\nTOTAL_MEMORY_LIMIT=128m\n' % parent)
    env = dict(os.environ, CONDUCTOR_CONFIG=str(config))
    groups = {c: os.path.dirname(folder) for c, folder in _cgroups.Cgroup('any', parent).groups.items()}
    memory_file = 'memory.max' if _cgroups.hierarchies()[0] == 'v2' else 'memory.limit_in_bytes'
    try:
        conductor('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'), env=env)
        conductor('run', '-d', '--pids-limit', '1000', '--memory', '1g', 'img', 'bomb', env=env)
        quiet = FORKS.replace('sleep 30 &', 'sleep 30 >/dev/null 2>&1 &')  # the output ends with the loop
        forks = conductor('exec', 'bomb', '--', 'sh', '-c', quiet % 100, check=False, env=env)
        assert 'started: 100' not in forks.stdout and 'cannot fork' in forks.stderr.lower(), forks
        assert int(open(os.path.join(groups['pids'], 'pids.current')).read()) <= 60
        hog = ['perl', '-e', '$x = "x" x (256 * 1024 * 1024); print 6 * 7, "\\n"']
        assert conductor('exec', 'bomb', '--', *hog, check=False, env=env).returncode == 137, 'killed at 128m, not 1g'
        assert open(os.path.join(groups['pids'], 'pids.max')).read() == '60\n'
        assert open(os.path.join(groups['memory'], memory_file)).read() == '%d\n' % (128 << 20)
        conductor('stop', '-t', '0', 'bomb', env=env)
        # the control: under the totals, containers start and fork as before
        conductor('run', '-d', 'img', 'calm', env=env)
        assert 'started: 10' in conductor('exec', 'calm', '--', 'sh', '-c', quiet % 10, env=env).stdout
    finally:
        for name in ('bomb', 'calm'):
            conductor('stop', '-t', '0', name, check=False, env=env)
        for folder in set(groups.values()):
            if os.path.isdir(folder):
                os.rmdir(folder)
