"""cgroups for real: a build's RUN steps are limited as containers are, and the path systemd's delegation
takes is exercised on the kernel's own cgroup2 tree (this machine binds memory, cpu and pids to v1, so
that tree has no controller Conductor limits: its groups, moves and removal are what is tested)."""
import os
import subprocess
import time

import pytest

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
    assert not [g for g in os.listdir('/sys/fs/cgroup/pids/conductor') if g.startswith('.build-')] \
        if os.path.isdir('/sys/fs/cgroup/pids/conductor') else True, 'the step\'s group went with it'


def test_a_run_step_cannot_take_the_hosts_memory(conductor, context, limited):
    hog = 'perl -e \'$x = "x" x (256 * 1024 * 1024); print 6 * 7, "\\n"\''
    result = conductor('build', 'hog', context.write('FROM debian:bookworm\nRUN ' + hog + '\n'), check=False, env=limited)
    assert result.returncode != 0 and 'exit code 137' in result.stderr and '42' not in result.stdout, result
    small = 'perl -e \'$x = "x" x (16 * 1024 * 1024); print 6 * 7, "\\n"\''
    assert '\n42\n' in conductor('build', 'small', context.write('FROM debian:bookworm\nRUN ' + small + '\n'),
                                    env=limited).stdout


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
        holder = subprocess.Popen(['/bin/sh', '-c', _cgroups.HOLDER, 'conductor-cgroups', mount],
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
    """The no-op moves that keep the kernel's migration lock awake leave this process where it was, and
    stop on their own."""
    import threading
    before = open('/proc/self/cgroup').read()
    _cgroups.keep_migrations_quick(0.1)
    movers = [t for t in threading.enumerate() if t.name == 'conductor-cgroup-migrations']
    assert len(movers) == 1
    time.sleep(0.05)
    assert open('/proc/self/cgroup').read() == before
    movers[0].join(2)
    assert not movers[0].is_alive() and open('/proc/self/cgroup').read() == before
