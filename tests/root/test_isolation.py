# SPDX-License-Identifier: GPL-3.0-or-later
"""Isolation on a shared lab host. Each test makes the attack a student who is root in a container
would make, shows that it fails, and next to it a control that shows the honest path still works."""
import fcntl
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import helpers
from netlab import sh

DEFAULT_CAPS = 0xa00425fb  # Docker's default set without MKNOD
X86_64 = platform.machine() == 'x86_64'
SYSCALLS = ('for (@ARGV) { my ($n, $nr, @a) = split /[=,]/; $! = 0; '  # name=number[,argument...]
            'my $r = syscall($nr, map { $_ + 0 } (@a, 0, 0, 0, 0, 0)[0..4]); '
            'print "$n=", ($r == -1 ? $!+0 : "ok"), "\\n" }')


@pytest.fixture
def image(conductor, context):
    conductor('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    return 'img'


def capability_sets(status):
    return {line.split(':')[0]: int(line.split()[1], 16) for line in status.splitlines() if line.startswith('Cap')}


# -- devices -------------------------------------------------------------------------------------
@pytest.fixture
def loop_device(tmp_path):
    """A host block device whose contents the test knows (the machine's own disk cannot be opened)."""
    backing = tmp_path / 'disk.img'
    backing.write_bytes(b'HOST-DISK-SECRET' + b'\0' * (1 << 20))
    device = subprocess.check_output(['losetup', '-f', '--show', str(backing)], text=True).strip()
    yield device
    subprocess.run(['losetup', '-d', device], check=False)


def test_a_host_disk_cannot_be_made_or_read(conductor, image, loop_device):
    with open(loop_device, 'rb') as disk:
        assert disk.read(16) == b'HOST-DISK-SECRET', 'the target is real: the host reads it'
    rdev = os.stat(loop_device).st_rdev
    attack = 'mknod /tmp/disk b %d %d; echo mknod=$?; head -c 16 /tmp/disk; echo; echo read=$?' % (
        os.major(rdev), os.minor(rdev))
    out = conductor('run', image, 'dev1', '--', 'sh', '-c', attack).stdout
    assert 'mknod=1' in out and 'HOST-DISK-SECRET' not in out, 'no MKNOD: the node cannot be made'
    out = conductor('run', '--cap-add', 'MKNOD', image, 'dev2', '--', 'sh', '-c', attack + '; grep " / " /proc/mounts').stdout
    assert 'HOST-DISK-SECRET' not in out, 'given MKNOD, the devices cgroup (v1) or the nodev root still refuse it'
    assert 'nodev' in out.splitlines()[-1].split()[3].split(','), out
    control = 'head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; head -c 5 /dev/urandom | wc -c; ls /dev/shm'
    assert conductor('run', image, 'dev3', '--', 'sh', '-c', control).stdout.split() == ['3', 'null-ok', '5']


def test_exec_and_its_children_are_in_every_group_of_the_container(conductor, image):
    """exec's process joins the container's groups as PID 1 did (on v1 through tasks, moving itself alone): every
    controller, a forked child too, so no exec'd process escapes the device, memory or process limits."""
    conductor('run', '-d', image, 'groups')
    pid1 = conductor('exec', 'groups', '--', 'cat', '/proc/1/cgroup').stdout
    mine = conductor('exec', 'groups', '--', 'sh', '-c', 'cat /proc/self/cgroup; sh -c "cat /proc/self/cgroup"').stdout

    def ours(text):  # the controllers' lines (a named hierarchy, such as systemd's, is the caller's)
        return [line for line in text.splitlines() if '/conductor/' in line]
    assert len(ours(pid1)) >= 3 and ours(mine) == ours(pid1) * 2, (pid1, mine)


# -- capabilities --------------------------------------------------------------------------------
def test_every_capability_set_is_cut_for_pid1_and_exec(conductor, image):
    conductor('run', '-d', image, 'caps')
    for status in (conductor('run', image, 'caps1', '--', 'cat', '/proc/self/status').stdout,
                   conductor('exec', 'caps', '--', 'cat', '/proc/self/status').stdout):
        sets = capability_sets(status)
        assert sets == {'CapInh': 0, 'CapPrm': DEFAULT_CAPS, 'CapEff': DEFAULT_CAPS, 'CapBnd': DEFAULT_CAPS,
                        'CapAmb': 0}, sets
    added = capability_sets(conductor('run', '--cap-add', 'net_admin', image, 'caps2', '--', 'cat',
                                      '/proc/self/status').stdout)
    assert added['CapEff'] == added['CapBnd'] == DEFAULT_CAPS | 1 << 12
    only = capability_sets(conductor('run', '--cap-drop', 'ALL', '--cap-add', 'CAP_NET_BIND_SERVICE', image, 'caps3',
                                     '--', 'cat', '/proc/self/status').stdout)
    assert only['CapEff'] == only['CapBnd'] == 1 << 10


def test_an_unknown_capability_is_one_error_and_makes_nothing(conductor, image):
    before = conductor.listing()
    message = conductor.fails('run', '--cap-add', 'SYS_EVERYTHING', image, 'bad')
    assert message == ("conductor run: unknown capability 'SYS_EVERYTHING' in cap_add: use names such as NET_ADMIN "
                       "or SYS_PTRACE (see man 7 capabilities), or ALL\n")
    assert conductor.listing() == before


# -- seccomp -------------------------------------------------------------------------------------
@pytest.mark.skipif(not X86_64, reason='system call numbers below are x86_64 ones')
def test_seccomp_denies_the_kernels_attack_surface(conductor, image):
    calls = ['keyctl=250', 'add_key=248', 'request_key=249', 'bpf=321', 'perf_event_open=298', 'userfaultfd=323',
             'open_by_handle_at=304', 'kexec_load=246', 'init_module=175', 'iopl=172', 'ioperm=173', 'swapoff=168',
             'acct=163', 'settimeofday=164', 'clone3=435', 'getpid=39']
    out = conductor('run', image, 'sc1', '--', 'perl', '-e', SYSCALLS, *calls).stdout.split()
    denied = dict(line.split('=') for line in out)
    assert denied.pop('clone3') == '38', 'clone3 says ENOSYS, so glibc falls back to clone'
    assert denied.pop('getpid') == 'ok'
    assert set(denied.values()) == {'1'}, 'every other one fails with EPERM: %s' % denied
    # control: the same calls without the filter reach the kernel, which answers otherwise
    out = conductor('run', '--security-opt', 'seccomp=unconfined', image, 'sc2', '--', 'perl', '-e', SYSCALLS,
                    'keyctl=250', 'clone3=435').stdout.split()
    assert out == ['keyctl=22', 'clone3=22']


@pytest.mark.skipif(not X86_64, reason='system call numbers below are x86_64 ones')
def test_seccomp_is_an_allow_list_as_dockers(conductor, image):
    """Calls the old deny list let through and Docker's profile refuses, each with a real use."""
    calls = ['kcmp=312,1,1,0',  # comparing two processes' files: SYS_PTRACE's
             'personality=135,262144',  # ADDR_NO_RANDOMIZE: turning ASLR off, as setarch -R does
             'migrate_pages=256',  # not in Docker's list at all
             'vsock=41,40,1', 'vsock_high=41,4294967336,1',  # AF_VSOCK, the hypervisor; then with bit 32 set,
             'alg=41,38,5',  # which the kernel drops: Docker's "family > AF_VSOCK" let that one through; AF_ALG
             'newer=500',  # a number above the list's highest: ENOSYS, as an older kernel says
             'getpid=39', 'ask_personality=135,4294967295', 'inet=41,2,1']  # controls
    script = 'echo $(perl -e %s %s) $(setarch x86_64 -R true 2>&1); apt-get --version | head -1' % (
        shlex.quote(SYSCALLS), ' '.join(calls))
    out = conductor('run', image, 'al1', '--', 'sh', '-c', script).stdout
    assert out.split('\n')[0].split() == [
        'kcmp=1', 'personality=1', 'migrate_pages=1', 'vsock=1', 'vsock_high=1', 'alg=1', 'newer=38', 'getpid=ok',
        'ask_personality=ok', 'inet=ok', 'setarch:', 'failed', 'to', 'set', 'personality', 'to', 'x86_64:',
        'Operation', 'not', 'permitted'], out
    assert out.split('\n')[1].startswith('apt '), 'control: an ordinary program runs'
    # the capability unlocks its group, as --cap-add does in Docker
    out = conductor('run', '--cap-add', 'SYS_PTRACE', image, 'al2', '--', 'perl', '-e', SYSCALLS, calls[0]).stdout
    assert out == 'kcmp=ok\n'
    # control: the kernel itself allows each one the filter refused
    out = conductor('run', '--security-opt', 'seccomp=unconfined', image, 'al3', '--', 'perl', '-e', SYSCALLS,
                    *calls[:4]).stdout.split()
    assert out[:2] == ['kcmp=ok', 'personality=ok'] and '1' not in (out[2][-1], out[3][-1]), out


I386_CALL = """.globl _start
_start: movl $4, %%eax; movl $1, %%ebx; movl $msg, %%ecx; movl $5, %%edx; int $0x80
        movl $%d, %%eax; movl $%d, %%ebx; movl $%d, %%ecx; movl $zero, %%edx; int $0x80
        negl %%eax; js done; movl %%eax, %%ebx; jmp out
done:   xorl %%ebx, %%ebx
out:    movl $1, %%eax; int $0x80
msg:    .ascii "i386 "
zero:   .long 0
"""


# ioctl(0, FS_IOC32_GETFLAGS, &flags), then FS_IOC32_SETFLAGS with only the inherit flag flipped: writing all
# flags at once would also clear ext4's extents flag, which ext4 refuses to everyone (EPERM), filter or not.
I386_FLIP_INHERIT = """.globl _start
_start: movl $4, %eax; movl $1, %ebx; movl $msg, %ecx; movl $5, %edx; int $0x80
        movl $54, %eax; xorl %ebx, %ebx; movl $0x80046601, %ecx; movl $flags, %edx; int $0x80
        xorl $0x20000000, flags
        movl $54, %eax; xorl %ebx, %ebx; movl $0x40046602, %ecx; movl $flags, %edx; int $0x80
        negl %eax; js done; movl %eax, %ebx; jmp out
done:   xorl %ebx, %ebx
out:    movl $1, %eax; int $0x80
        .data
msg:    .ascii "i386 "
flags:  .long 0
"""


@pytest.fixture
def i386_programs(tmp_path):
    """Static 32-bit programs that print "i386", make one call through int 0x80 and exit with its errno."""
    folder = tmp_path / 'i386'
    folder.mkdir()
    for name, number, arg, arg2 in [('getpid', 20, 0, 0), ('keyctl', 288, 0, 0), ('unshare_user', 310, 0x10000000, 0),
                                    ('personality', 136, 0x40000, 0), ('kcmp', 349, 1, 0),
                                    ('setflags', 54, 0, 0x40046602)]:  # chattr -P through FS_IOC32_SETFLAGS
        (folder / (name + '.s')).write_text(I386_CALL % (number, arg, arg2) if name != 'setflags' else I386_FLIP_INHERIT)
        try:
            subprocess.run(['as', '--32', '-o', str(folder / (name + '.o')), str(folder / (name + '.s'))], check=True)
            subprocess.run(['ld', '-m', 'elf_i386', '-o', str(folder / name), str(folder / (name + '.o'))], check=True)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip('binutils cannot make 32-bit x86 programs here')
    if subprocess.run([str(folder / 'getpid')], capture_output=True, check=False).stdout != b'i386 ':
        pytest.skip('this kernel does not run 32-bit x86 programs (IA32 emulation off)')
    return folder


@pytest.mark.skipif(not X86_64, reason='32-bit x86 programs on x86_64')
def test_32_bit_programs_run_under_the_same_list(conductor, image, i386_programs):
    script = ('for p in getpid keyctl unshare_user personality kcmp; do /i386/$p; echo $p=$?; done; '
              '/i386/setflags < /tmp; echo setflags=$?')  # chattr's flags, 32-bit: the quota's way out
    out = conductor('run', '-v', '%s:/i386:ro' % i386_programs, image, 'x86', '--', 'sh', '-c', script).stdout
    assert out.split() == ['i386', 'getpid=0', 'i386', 'keyctl=1', 'i386', 'unshare_user=1', 'i386', 'personality=1',
                           'i386', 'kcmp=1', 'i386', 'setflags=1'], 'they run, and the 32-bit ABI is no way round: %r' % out
    control = conductor('run', '--security-opt', 'seccomp=unconfined', '-v', '%s:/i386:ro' % i386_programs, image,
                        'x86b', '--', 'sh', '-c', '/i386/setflags < /tmp; echo setflags=$?').stdout
    assert control.split()[-1] != 'setflags=1', 'control: the kernel itself takes it: %r' % control


def test_no_user_namespaces(conductor, image):
    out = conductor('run', image, 'ns1', '--', 'sh', '-c', 'unshare -U -r id -u 2>&1; echo rc=$?').stdout
    assert 'rc=1' in out and 'Operation not permitted' in out
    conductor('run', '-d', image, 'ns2')
    assert 'rc=1' in conductor('exec', 'ns2', '--', 'sh', '-c', 'unshare -U -r true; echo rc=$?').stdout
    out = conductor('run', '--security-opt', 'seccomp=unconfined', image, 'ns3', '--', 'unshare', '-U', '-r', 'id', '-u')
    assert out.stdout == '0\n', 'control: without the filter the same command makes one'


def test_setuid_programs_still_work_unless_no_new_privileges(conductor, image):
    switch = ['su', '-s', '/bin/sh', 'nobody', '-c', 'id -u; grep NoNewPrivs /proc/self/status']
    assert conductor('run', image, 'su1', '--', *switch).stdout.split() == ['65534', 'NoNewPrivs:', '0']
    nnp = conductor('run', '--security-opt', 'no-new-privileges', image, 'su2', '--', 'grep', 'NoNewPrivs',
                    '/proc/self/status').stdout.split()
    assert nnp == ['NoNewPrivs:', '1']
    message = conductor.fails('run', '--security-opt', 'apparmor=unconfined', image, 'su3')
    assert message.startswith("conductor run: unknown security option 'apparmor=unconfined'")


# -- the caller's terminal -----------------------------------------------------------------------
def under_script(conductor, *args, stdin_null=False):
    """Run the CLI in a new terminal (script), as an admin at a terminal would; return what it shows."""
    command = ' '.join(shlex.quote(a) for a in [sys.executable, helpers.CLI, '--root', conductor.root] + list(args))
    result = subprocess.run(['script', '-qec', command + (' < /dev/null' if stdin_null else ''), '/dev/null'],
                            capture_output=True, text=True, timeout=60, check=False)
    return result.stdout


def test_exec_cannot_write_to_the_callers_terminal(conductor, image):
    conductor('run', '-d', image, 'tty')
    attack = under_script(conductor, 'exec', 'tty', '--', 'sh', '-c', 'echo PWNED > /dev/tty; echo rc=$?',
                          stdin_null=True)
    assert 'PWNED' not in attack and 'rc=2' in attack, attack
    control = under_script(conductor, 'exec', 'tty', '--', 'sh', '-c', 'echo $(tty) > /dev/tty; echo rc=$?')
    assert '/dev/pts/0' in control and 'rc=0' in control, 'with a terminal, exec gets a pty of the container\'s own'


# -- the state root ------------------------------------------------------------------------------
@pytest.fixture
def open_root(conductor):
    """A state root whose parent every user may traverse, so only Conductor's own modes protect it.
    Yields (root, the CLI on it)."""
    parent = tempfile.mkdtemp(prefix='conductor-perm-', dir='/tmp')
    os.chmod(parent, 0o755)
    root = os.path.join(parent, 'root')
    helpers.seed(root)
    yield root, type(conductor)(root)
    helpers.stop_all(root)
    leaked = helpers.mounts_under(root)
    helpers.remove_root(parent)
    assert not leaked


def as_nobody(*argv):
    return subprocess.run(['runuser', '-u', 'nobody', '--'] + list(argv), capture_output=True, text=True, check=False)


def test_a_setuid_shell_in_a_container_gives_the_hosts_users_nothing(open_root, context):
    open_root, cli = open_root
    cli('build', 'img', context.write('FROM debian:bookworm\nCMD ["sleep", "1000"]\n'))
    cli('run', '-d', '-e', 'SECRET=hunter2', 'img', 'victim')
    cli('exec', 'victim', '--', 'sh', '-c', 'cp /bin/sh /tmp/rootsh && chmod 4755 /tmp/rootsh')
    planted = os.path.join(open_root, 'containers', 'victim', 'upper', 'tmp', 'rootsh')
    assert os.stat(planted).st_mode & 0o4000, 'the attack is real: a setuid-root shell in the upper layer'
    assert as_nobody('test', '-x', os.path.dirname(open_root)).returncode == 0, 'only conductor protects the root'
    attempt = as_nobody(planted, '-p', '-c', 'id -u')
    assert attempt.returncode != 0 and 'Permission denied' in attempt.stderr
    assert as_nobody('cat', os.path.join(open_root, 'containers', 'victim', 'config.json')).returncode != 0
    for path in ('', 'containers', 'containers/victim', 'bases', 'layers', 'images'):
        assert os.stat(os.path.join(open_root, path)).st_mode & 0o077 == 0, path
    assert os.stat(os.path.join(open_root, 'containers', 'victim', 'config.json')).st_mode & 0o077 == 0
    # control: inside, users other than root still use the container as before
    assert cli('exec', 'victim', '--', 'su', '-s', '/bin/sh', 'nobody', '-c', 'ls / | wc -l; cat /etc/hostname').stdout \
        .split()[1:] == ['victim']


def test_an_older_state_root_is_tightened(open_root, context):
    open_root, cli = open_root
    cli('build', 'img', context.write('FROM debian:bookworm\n'))
    cli('run', 'img', 'old', '--', 'true')
    for path, mode in (('', 0o755), ('containers', 0o711), ('containers/old', 0o755), ('containers/old/config.json', 0o644)):
        os.chmod(os.path.join(open_root, path), mode)  # as a Conductor before the hardening left it
    cli('ps')
    for path in ('', 'containers', 'containers/old', 'containers/old/config.json'):
        assert os.stat(os.path.join(open_root, path)).st_mode & 0o077 == 0, path
    assert json.loads(cli('ps', '--json').stdout)[0]['name'] == 'old'


# -- builds --------------------------------------------------------------------------------------
def test_a_run_step_cannot_change_the_hosts_network(netconductor, netlab, context):
    """The build runs in the lab's host namespace, so a failure of this test cannot touch the machine."""
    cli = netconductor
    links = netlab.links()
    forwarding = sh('cat', '/proc/sys/net/ipv4/ip_forward', ns=netlab.host).stdout.strip()
    for step in ('ip link add cdt-evil type veth peer name cdt-evil2',
                 'echo %s > /proc/sys/net/ipv4/ip_forward' % forwarding,
                 'ip addr add 10.123.0.1/32 dev lo'):
        result = cli('build', 'evil', context.write('FROM debian:bookworm\nRUN %s\n' % step), check=False)
        assert result.returncode == 1, step
    for dummy in range(100):  # a step's veth goes with its namespace, which the kernel tears down a moment later
        if netlab.links() == links:
            break
        time.sleep(0.1)
    assert netlab.links() == links
    assert '10.123.0.1' not in sh('ip', '-o', 'addr', ns=netlab.host).stdout
    control = 'FROM debian:bookworm\nRUN ip -o link show lo > /links && cat /proc/sys/net/ipv4/ip_forward > /fwd\n'
    cli('build', 'good', context.write(control))
    cli('run', 'good', 'good', '--', 'cat', '/links')


# -- concurrency and other tools ---------------------------------------------------------------
def test_two_concurrent_starts_give_one_container(conductor, image, root):
    conductor('run', image, 'twice', '--', 'sh', '-c', 'test -e /ran && exec sleep 1000; touch /ran')
    results = []

    def start():
        results.append(conductor('start', 'twice', check=False))
    threads = [threading.Thread(target=start) for dummy in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [(r.returncode, r.stderr) for r in results]
    assert "container 'twice' is already running" in ''.join(r.stderr for r in results)
    supervisors = subprocess.run(['pgrep', '-f', 'conductor-supervisor .*%s/containers/twice' % root],
                                 capture_output=True, text=True, check=False).stdout.split()
    assert len(supervisors) == 1


def test_the_firewall_waits_for_the_xtables_lock(netconductor, netlab, image, tmp_path):
    cli = netconductor
    lock = tmp_path / 'xtables.lock'
    config = tmp_path / 'conductor.conf'
    config.write_text('XTABLES_WAIT=1\n')
    env = dict(os.environ, XTABLES_LOCKFILE=str(lock), CONDUCTOR_CONFIG=str(config))
    cli('run', '-d', image, 'web')
    before = (cli.listing(), netlab.iptables(), netlab.links())
    with open(str(lock), 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as iptables -w, ufw or fail2ban would while changing rules
        result = cli('addnetwork', '-i', 'web', check=False, env=env)
    assert result.returncode == 1 and result.stderr.count('\n') == 1
    assert 'has held the xtables lock %s for 1 s, so the firewall was left as it was' % lock in result.stderr
    assert (cli.listing(), netlab.iptables(), netlab.links()) == before
    cli('addnetwork', '-i', 'web', env=env)  # control: once the lock is free, it goes through


# -- paths inside the container's root -----------------------------------------------------------
def test_symlinks_in_the_upper_layer_never_lead_host_side_code_out(conductor, image, tmp_path, root):
    """A container whose /etc is a symlink to a host folder (made here in its upper layer, where a
    container or an image could leave one) is started again: the hosts, hostname and resolv.conf
    binds must not delete or create files in that host folder."""
    target = tmp_path / 'host-folder'
    target.mkdir()
    os.symlink('/etc/passwd', str(target / 'hosts'))  # a symlink the old code would have unlinked
    before = sorted(os.listdir(str(target)))
    conductor('run', image, 'planter', '--', 'true')
    upper = os.path.join(root, 'containers', 'planter', 'upper')
    if os.path.isdir(os.path.join(upper, 'etc')):
        subprocess.check_call(['rm', '-rf', os.path.join(upper, 'etc')])
    os.symlink(str(target), os.path.join(upper, 'etc'))
    result = conductor('start', 'planter', check=False)
    assert sorted(os.listdir(str(target))) == before and os.path.islink(str(target / 'hosts'))
    assert result.returncode == 1 and "container 'planter' did not start" in result.stderr
    # control: a container that keeps its /etc starts again as usual
    conductor('run', image, 'keeper', '--', 'sh', '-c', 'test -e /ran && exec sleep 1000; touch /ran')
    conductor('start', 'keeper')


def test_creates_and_removes_are_resolved_inside_the_container(conductor, image, tmp_path):
    from ansible_collections.cs695.conductor.plugins.module_utils import _exec, _store
    marker = tmp_path / 'host-only'
    marker.write_text('host')
    conductor('run', '-d', image, 'paths')
    conductor('exec', 'paths', '--', 'sh', '-c', 'ln -s / /up && touch /inside')
    store = _store.Store(conductor.root, config={})
    skipped = _exec.capture(store, 'paths', ['true'], creates='/up' + str(marker), check_mode=True)
    assert not skipped.get('skipped'), 'the host file is not seen through the planted symlink'
    control = _exec.capture(store, 'paths', ['true'], creates='/inside', check_mode=True)
    assert control['skipped'] and control['msg'] == 'skipped: /inside exists'


def test_containers_started_before_the_hardening_are_marked(conductor, image, root):
    conductor('run', '-d', image, 'older')
    conductor('run', '-d', image, 'newer')
    path = os.path.join(root, 'containers', 'older', 'state.json')
    with open(path) as f:
        state = json.load(f)
    del state['confined']  # as a Conductor before the hardening wrote it
    with open(path, 'w') as f:
        json.dump(state, f)
    statuses = {r['name']: r['status'] for r in json.loads(conductor('ps', '--json').stdout)}
    assert statuses == {'older': 'running (unconfined)', 'newer': 'running'}


def test_disk_use_of_each_container(conductor, image):
    conductor('run', '-d', image, 'writer')
    conductor('exec', 'writer', '--', 'sh', '-c', 'head -c 3000000 /dev/zero > /root/work.bin')
    sizes = {r['name']: r['size'] for r in json.loads(conductor('ps', '--size', '--json').stdout)}
    assert 3000000 <= sizes['writer'] < 3100000
    assert json.loads(conductor('inspect', 'writer').stdout)['size'] == sizes['writer']
    assert 'SIZE' in conductor('ps', '-s').stdout.splitlines()[0]


# -- resources -----------------------------------------------------------------------------------
def cgroup_folders(root, name):
    from ansible_collections.cs695.conductor.plugins.module_utils import _containers, _store
    return _containers.Containers(_store.Store(root, config={})).cgroup(name).folders()


def test_a_fork_bomb_stops_at_the_default_pids_limit(conductor, image):
    """2100 sleeps stand in for the bomb: past the limit of 2048, and harmless to the host without one."""
    conductor('run', '-d', image, 'bomb')
    bomb = conductor('exec', 'bomb', '--', 'sh', '-c', 'for i in $(seq 2100); do sleep 60 >/dev/null 2>&1 & done; echo all', check=False)
    assert 'Cannot fork' in bomb.stderr and 'all' not in bomb.stdout
    info = json.loads(conductor('inspect', 'bomb').stdout)
    assert info['limits']['pids'] == 2048 and 2000 < info['usage']['pids'] <= 2048, info['usage']
    conductor('stop', '-t', '0', 'bomb')
    conductor('run', '-d', '--pids-limit', '20', image, 'small')  # control: a limit of one's own, and room under it
    conductor('exec', 'small', '--', 'sh', '-c', 'for i in $(seq 10); do sleep 60 >/dev/null 2>&1 & done')
    assert 10 < json.loads(conductor('inspect', 'small').stdout)['usage']['pids'] <= 20


def test_a_memory_hog_is_stopped_at_its_limit(conductor, image, root):
    conductor('run', '-d', '--memory', '64m', image, 'hog')
    hog = conductor('exec', 'hog', '--', 'perl', '-e', '$x = "x" x (256 * 1024 * 1024); print "allocated\\n"',
                    check=False)
    assert hog.returncode == 137 and 'allocated' not in hog.stdout, 'killed by the out-of-memory killer'
    assert conductor('exec', 'hog', '--', 'perl', '-e', '$x = "x" x (16 * 1024 * 1024); print "ok\\n"').stdout == 'ok\n'
    assert json.loads(conductor('ps', '--json').stdout)[0]['status'] == 'running', 'the container lives on'
    conductor('update', 'hog', '--memory', '512m', '--cpus', '1')  # in place, as docker update
    assert conductor('exec', 'hog', '--', 'perl', '-e', '$x = "x" x (128 * 1024 * 1024); print "ok\\n"').stdout == 'ok\n'
    info = json.loads(conductor('inspect', 'hog').stdout)
    assert info['limits'] == {'memory': 512 << 20, 'cpus': 1.0, 'pids': 2048, 'storage_size': None} and info['usage']['pids'] >= 1
    folders = cgroup_folders(root, 'hog')
    assert folders and all(os.path.isdir(f) for f in folders)
    conductor('stop', '-t', '0', 'hog')
    assert not any(os.path.exists(f) for f in folders), 'the cgroup goes with the container'


@pytest.mark.parametrize('args, message', [
    (['--memory', '0'], "invalid memory limit '0': give a size of at least 6m"),
    (['--memory', '12q'], "invalid memory limit '12q'"),
    (['--cpus', '-1'], "invalid cpus limit '-1'"),
    (['--pids-limit', 'abc'], "invalid pids limit 'abc'"),
])
def test_bad_limits_are_one_error_and_change_nothing(conductor, image, args, message):
    before = conductor.listing()
    assert message in conductor.fails('run', *args, image, 'bad')
    assert conductor.listing() == before


def test_a_limit_below_use_is_refused(conductor, image):
    conductor('run', '-d', image, 'busy')
    conductor('exec', 'busy', '--', 'sh', '-c', 'for i in 1 2 3 4 5; do sleep 60 >/dev/null 2>&1 & done')
    message = conductor.fails('update', 'busy', '--pids-limit', '2')
    assert "the pids limit 2 is below the" in message and "processes the container 'busy' runs now" in message
    assert json.loads(conductor('inspect', 'busy').stdout)['limits']['pids'] == 2048


def read_if_there(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ''


def test_an_endless_log_is_capped(conductor, image, root, tmp_path):
    config = tmp_path / 'conductor.conf'
    config.write_text('LOG_MAX=256k\n')
    env = dict(os.environ, CONDUCTOR_CONFIG=str(config))
    writer = 'head -c 3000000 /dev/zero | tr "\\0" "x" | fold -w 99; echo THE-END; exec sleep 1000'
    conductor('run', '-d', image, 'chatty', '--', 'sh', '-c', writer, env=env)
    folder = os.path.join(root, 'containers', 'chatty')
    deadline = time.time() + 20
    while 'THE-END' not in read_if_there(os.path.join(folder, 'log')):  # between a rotation's rename and reopen
        assert time.time() < deadline, 'the output did not arrive'
        time.sleep(0.1)
    sizes = [os.path.getsize(os.path.join(folder, f)) for f in ('log', 'log.1')]
    assert all(size <= (256 << 10) + (64 << 10) for size in sizes), sizes  # one pipe read past the cap at most
    logs = conductor('logs', 'chatty').stdout
    assert logs.endswith('THE-END\n') and len(logs) == sum(sizes), 'control: the newest output is all there'


def test_exec_never_gets_the_callers_files(conductor, image, tmp_path):
    """Found in review: a non-tty exec used to hand the caller's fds in, and /proc/self/fd/0 reopened the
    caller's stdin file for writing (a grading script fed to exec, rewritten by the student)."""
    script = tmp_path / 'grade.sh'
    script.write_text('echo grading\n')
    conductor('run', '-d', image, 'fds')
    with open(str(script)) as stdin:
        out = conductor('exec', 'fds', '--', 'sh', '-c', 'cat; echo pwned > /proc/self/fd/0', stdin=stdin).stdout
    assert out == 'echo grading\n', 'control: what we feed still arrives'
    assert script.read_text() == 'echo grading\n'


def test_sys_firmware_and_power_counters_are_masked(conductor, image):
    out = conductor('run', image, 'sysmask', '--', 'sh', '-c', 'ls -A /sys/firmware | wc -l; ls /sys/kernel | wc -l')
    firmware, kernel = out.stdout.split()
    assert firmware == '0' and int(kernel) > 0, 'control: the rest of /sys is there'
