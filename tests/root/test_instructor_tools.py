# SPDX-License-Identifier: GPL-3.0-or-later
"""The instructor's tools: stats and top, cp both ways (through a student's planted symlinks), diff, and the
hand-in of a volume (export and import), each next to an attack a student would try."""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

import helpers

from ansible_collections.cs695.conductor.plugins.module_utils._store import Store
from ansible_collections.cs695.conductor.plugins.module_utils._containers import Containers


@pytest.fixture
def image(root):
    helpers.seed_image(root, 'img')
    return 'img'


def cgroup_file(root, name, controller, file_name):
    with open(os.path.join(Containers(Store(root)).cgroup(name).groups[controller], file_name)) as f:
        return int(f.read())


def test_stats_agree_with_the_cgroup_files_and_top_shows_the_processes(conductor, image, root):
    conductor('run', '-d', image, 'burn', '--', 'sh', '-c', 'while :; do :; done')
    conductor('run', '-d', '--memory', '200m', image, 'hold', '--', 'python3', '-c',
              'import time\nb = bytearray(50 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n'
              'open("/tmp/ready", "w").close()\ntime.sleep(1000)')
    conductor('run', image, 'done', '--', 'true')
    conductor('addnetwork', 'hold')
    for dummy in range(100):
        if conductor('exec', 'hold', '--', 'test', '-e', '/tmp/ready', check=False).returncode == 0:
            break
        time.sleep(0.1)
    cpu_before, started = cgroup_file(root, 'burn', 'cpuacct', 'cpuacct.usage'), time.monotonic()
    rows = {r['name']: r for r in json.loads(conductor('stats', '--json', 'burn', 'hold', 'done').stdout)}
    cpu = (cgroup_file(root, 'burn', 'cpuacct', 'cpuacct.usage') - cpu_before) / 1e7 / (time.monotonic() - started)
    memory = cgroup_file(root, 'hold', 'memory', 'memory.usage_in_bytes')
    assert abs(rows['burn']['cpu_percent'] - cpu) <= 10, (rows['burn'], cpu)
    assert rows['burn']['cpu_percent'] > 50 and rows['hold']['cpu_percent'] < 10
    assert abs(rows['hold']['memory'] - memory) <= memory / 10 and rows['hold']['memory'] >= 50 << 20
    assert rows['hold']['memory_limit'] == 200 << 20 and rows['hold']['pids'] == 1
    assert rows['hold']['pids_limit'] == 2048 and 'io_read' in rows['hold']
    assert rows['hold']['net_rx'] >= 0 and 'net_rx' not in rows['burn'], 'the veth\'s counters, where there is one'
    assert rows['done'] == {'name': 'done', 'running': False, 'status': 'exited (0)'}
    table = conductor('stats', '--no-stream').stdout.splitlines()
    assert table[0].split()[:3] == ['NAME', 'CPU', '%'] and len(table) == 3, 'every running container, once'
    processes = json.loads(conductor('top', '--json', 'hold').stdout)
    assert [(p['pid_inside'], p['user']) for p in processes] == [(1, 'root')]
    assert processes[0]['command'].startswith('python3 -c') and processes[0]['rss'] >= 50 << 20
    assert 'no container named' in conductor.fails('stats', 'nobody') and 'no container named' in conductor.fails('top', 'nobody')
    assert 'is not running' in conductor.fails('top', 'done')


def test_cp_both_ways_never_follows_a_students_symlink_out(conductor, image, tmp_path):
    secret, landing = tmp_path / 'secret.txt', tmp_path / 'landing'
    secret.write_text('the host\'s\n')
    landing.mkdir()
    conductor('run', '-d', image, 'st', '--', 'sleep', '1000')
    conductor('exec', 'st', '--', 'sh', '-c', 'mkdir /coursework && ln -s / /coursework/escape && ln -s %s /coursework/tohost && '
              'echo inside > /coursework/f && chown 1000:1000 /coursework/f && chmod 4755 /coursework/f' % landing)
    # the attack, out: the path leads through the student's link to / ... which is the container's /
    assert 'No such file' in conductor.fails('cp', 'st:/coursework/escape%s' % secret, tmp_path / 'got')
    assert not (tmp_path / 'got').exists()
    # the attack, in: the destination leads through a link to a host folder ... which is the container's
    handout = tmp_path / 'handout.txt'
    handout.write_text('handout\n')
    conductor.fails('cp', handout, 'st:/coursework/tohost/')
    conductor.fails('cp', handout, 'st:/coursework/tohost/planted.txt')
    assert os.listdir(landing) == []
    # control: the honest copies, both ways, modes and owners kept (setuid never on the host)
    conductor('cp', 'st:/coursework', tmp_path / 'out')
    out = tmp_path / 'out'
    assert (out / 'f').read_text() == 'inside\n' and os.readlink(out / 'escape') == '/'
    st = os.lstat(out / 'f')
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o755)
    stream = subprocess.run([sys.executable, helpers.CLI, '--root', conductor.root, 'cp', 'st:/coursework/f', '-'],
                            capture_output=True, check=True).stdout
    member = tarfile.open(fileobj=io.BytesIO(stream)).getmember('f')
    assert (member.uid, member.mode) == (1000, 0o4755), 'a tar stream keeps everything'
    conductor('cp', handout, 'st:/coursework/')
    conductor('cp', handout, 'st:/coursework/renamed.txt')
    assert conductor('exec', 'st', '--', 'cat', '/coursework/handout.txt', '/coursework/renamed.txt').stdout == 'handout\n' * 2
    with tarfile.open(tmp_path / 'in.tar', 'w') as tar:
        tar.add(handout, arcname='from-tar.txt')
    conductor('cp', '-', 'st:/coursework', stdin=open(tmp_path / 'in.tar', 'rb'))
    assert conductor('exec', 'st', '--', 'cat', '/coursework/from-tar.txt').stdout == 'handout\n'
    # bad input: one error each
    assert 'no container named' in conductor.fails('cp', 'nobody:/x', tmp_path / 'y')
    assert 'one side as NAME:PATH' in conductor.fails('cp', handout, tmp_path / 'z')
    assert 'no such file or folder on the host' in conductor.fails('cp', tmp_path / 'missing', 'st:/coursework')
    assert 'leads outside the container' in conductor.fails('cp', 'st:../../etc/shadow', tmp_path / 'shadow')
    assert 'No such file' in conductor.fails('cp', 'st:/coursework/missing', tmp_path / 'm')
    assert 'no folder' in conductor.fails('cp', 'st:/coursework/f', tmp_path / 'no' / 'such' / 'f')


def test_cp_of_an_exited_container_keeps_a_large_file_whole(conductor, image, tmp_path, root):
    made = conductor('run', image, 'ex', '--', 'sh', '-c', 'test -e /big || head -c 50000000 /dev/urandom > /big; '
                     'sha256sum /big*').stdout.split()[0]
    conductor('cp', 'ex:/big', tmp_path / 'big')
    with open(tmp_path / 'big', 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == made
    conductor('cp', tmp_path / 'big', 'ex:/big2')
    assert not helpers.mounts_under(root + '/containers'), 'the exited container\'s view is gone'
    conductor('start', 'ex')
    for dummy in range(100):
        digests = conductor('logs', 'ex').stdout.split()
        if len(digests) == 4:
            break
        time.sleep(0.1)
    assert digests == [made, '/big', made, '/big2'], 'the file out, and in again, is the same'


def test_diff_shows_what_was_added_changed_and_deleted(conductor, image):
    conductor('run', '-d', image, 'd', '--', 'sleep', '1000')
    conductor('exec', 'd', '--', 'sh', '-c', 'echo new > /root/added.txt && echo more >> /etc/issue && rm /etc/debian_version')
    changes = conductor('diff', 'd').stdout.splitlines()
    assert {'A /root/added.txt', 'C /etc/issue', 'D /etc/debian_version', 'C /etc', 'C /root'} <= set(changes)
    assert 'no container named' in conductor.fails('diff', 'nobody')


def test_a_volume_is_handed_in_and_back_and_an_archive_never_unpacks_outside(conductor, image, tmp_path):
    conductor('run', '-v', 'work:/coursework', image, 'w', '--', 'sh', '-c', 'mkdir /coursework/src && echo code > /coursework/src/a.c '
              '&& chown 1000:1000 /coursework/src/a.c && chmod 640 /coursework/src/a.c')
    conductor('volume', 'export', 'work', '-o', tmp_path / 'work.tar')
    with tarfile.open(tmp_path / 'work.tar') as tar:
        member = tar.getmember('src/a.c')
        assert (member.uid, member.gid, member.mode) == (1000, 1000, 0o640)
    conductor('volume', 'create', 'back')
    conductor('volume', 'import', 'back', '-i', tmp_path / 'work.tar')
    assert conductor('run', '-v', 'back:/b', image, 'r', '--', 'stat', '-c', '%u %a %n', '/b/src/a.c').stdout == '1000 640 /b/src/a.c\n'
    # a student's crafted archive: a link to a host folder, then a member through it, and a member with ..
    landing = tmp_path / 'landing'
    landing.mkdir()
    for members in ([('link', tarfile.SYMTYPE, str(landing)), ('link/pwned', tarfile.REGTYPE, '')],
                    [('../../../../%s/pwned' % landing, tarfile.REGTYPE, '')]):
        with tarfile.open(tmp_path / 'evil.tar', 'w') as tar:
            for name, kind, target in members:
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.size = kind, target, 0 if kind != tarfile.REGTYPE else 3
                tar.addfile(info, io.BytesIO(b'pwn') if kind == tarfile.REGTYPE else None)
        conductor.fails('volume', 'import', 'back', '-i', tmp_path / 'evil.tar')
        assert os.listdir(landing) == []
    assert 'needs -o FILE' in conductor.fails('volume', 'export', 'work')
    assert 'no volume' in conductor.fails('volume', 'export', 'nothing', '-o', tmp_path / 'x.tar')


def test_commit_of_a_running_container_makes_an_image_that_runs_saves_and_loads(conductor, image, tmp_path):
    conductor('run', '-d', image, 'student', '--', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; '
              'sleep 0.05; done')
    conductor('exec', 'student', '--', 'sh', '-c', 'echo my work > /root/essay.txt && rm /etc/debian_version')
    before = json.loads(conductor('inspect', 'student').stdout)['state']

    def listing():  # but what the student's counter writes
        return [entry for entry in conductor.listing() if not entry[0].startswith('containers/student/upper/tmp')]
    unchanged = listing()
    assert 'is not one instruction' in conductor.fails('commit', 'student', 'graded', '--change', 'RUN rm -rf /')
    assert 'unknown instruction' in conductor.fails('commit', 'student', 'graded', '--change', 'not an instruction')
    assert 'an image named \'img\' exists' in conductor.fails('commit', 'student', 'img')
    assert 'no container named' in conductor.fails('commit', 'nobody', 'graded')
    assert listing() == unchanged, 'a refused commit changes nothing'
    conductor('commit', 'student', 'graded', '--change', 'CMD ["cat", "/root/essay.txt"]', '--change', 'ENV GRADED=1')
    after = json.loads(conductor('inspect', 'student').stdout)['state']
    assert after['running'] and (after['pid'], after['pid_start']) == (before['pid'], before['pid_start'])
    count = conductor('exec', 'student', '--', 'cat', '/tmp/count').stdout
    time.sleep(0.3)
    assert conductor('exec', 'student', '--', 'cat', '/tmp/count').stdout != count, 'it goes on, thawed'
    assert conductor('run', 'graded', 'g1').stdout == 'my work\n'
    out = conductor('run', 'graded', 'g2', '--', 'sh', '-c', 'echo $GRADED; ls /etc/debian_version 2>&1; true').stdout
    assert out.startswith('1\n') and 'No such file' in out, 'the deleted image file stays deleted'
    conductor('save', 'graded', '-o', tmp_path / 'graded.tar')
    conductor('rm', 'g1', 'g2')
    conductor('rmi', 'graded')
    conductor('load', '-i', tmp_path / 'graded.tar')
    assert conductor('run', 'graded', 'g3').stdout == 'my work\n'
    layers = json.loads(conductor('images', '--json').stdout)
    assert all(key.startswith('sha256-') for row in layers if row['name'] == 'graded' for key in row['layers'][-1:])


def on_a_terminal(root, *args):
    """The CLI with its stderr on a pseudo-terminal: (exit code, what the terminal got)."""
    import pty
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, helpers.CLI, '--root', root] + [str(a) for a in args],
                               stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b''
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        seen += data
    os.close(master)
    return process.wait(), seen.decode('utf-8', 'replace')


def test_long_work_shows_progress_on_a_terminal_and_nothing_elsewhere(conductor, image, root, tmp_path, context):
    code, seen = on_a_terminal(root, 'save', image, '-o', tmp_path / 'img.tar')
    assert code == 0 and '\rSaving img: ' in seen.replace('\x1b[K', '') and 'MB' in seen, seen[-500:]
    code, seen = on_a_terminal(root, 'load', '-i', tmp_path / 'img.tar', '--name', 'again')
    assert code == 0 and 'Loading %s: ' % (tmp_path / 'img.tar') in seen, seen[-500:]
    code, seen = on_a_terminal(root, 'build', '--network', 'none', 'slow', context.write('FROM img\nRUN sleep 1.5\n'))
    assert code == 0 and 'Step 2: RUN: 1s' in seen, seen[-500:]
    piped = conductor('save', image, '-o', tmp_path / 'img2.tar')
    assert piped.stderr == '' and '\r' not in piped.stdout, 'no progress line in a pipe'


def test_what_an_earlier_copy_brought_never_leads_the_next_one_out(conductor, image, tmp_path, root):
    """A second review's attacks: a link an earlier cp brought to the host, a FIFO and a deep tree in the copied
    folder, a crafted archive's huge names, a commit killed while the container was frozen, a name that fakes output."""
    victim, grading = tmp_path / 'victim', tmp_path / 'grading'
    victim.mkdir()
    grading.mkdir()
    (victim / 'secret').write_text('the host\'s\n')
    conductor('run', '-d', '-v', 'hw:/vol', image, 'st', '--', 'sleep', '1000')
    conductor('exec', 'st', '--', 'sh', '-c', 'ln -s %s /hw && mkdir -p /d && mkfifo /d/pipe && echo x > /d/f' % victim)
    conductor('cp', 'st:/hw', grading / 'hw')
    assert os.readlink(grading / 'hw') == str(victim), 'a link is copied as a link'
    conductor('exec', 'st', '--', 'sh', '-c', 'rm /hw && echo "* * * * * root touch /tmp/pwned" > /hw')
    assert 'goes through a symbolic link' in conductor.fails('cp', 'st:/hw', grading / 'hw')
    assert 'goes through a symbolic link' in conductor.fails('cp', grading / 'hw' / '.', 'st:/loot')
    assert 'goes through a symbolic link' in conductor.fails('volume', 'export', 'hw', '-o', grading / 'hw')
    assert os.listdir(victim) == ['secret'] and 'secret' not in conductor('exec', 'st', '--', 'ls', '/').stdout
    conductor('cp', 'st:/hw', grading / 'hw2')  # control: a path of the host's own
    assert (grading / 'hw2').read_text().startswith('* * * * *')
    # a link an earlier copy left inside the copied folder is replaced, never written through
    conductor('exec', 'st', '--', 'sh', '-c', 'mkdir /w && ln -s / /w/l')
    conductor('cp', 'st:/w', grading)
    assert os.readlink(grading / 'w' / 'l') == '/'
    conductor('exec', 'st', '--', 'sh', '-c', 'rm /w/l && mkdir /w/l && echo mine > /w/l/x')
    conductor('cp', 'st:/w', grading)
    assert (grading / 'w' / 'l' / 'x').read_text() == 'mine\n' and not (grading / 'x').exists()
    assert oct(os.stat(grading).st_mode & 0o777) != '0o777'
    # a FIFO is left out, never waited on; a tree deeper than Python's recursion limit goes whole
    conductor('cp', 'st:/d', grading / 'd')
    assert sorted(os.listdir(grading / 'd')) == ['f']
    conductor('exec', 'st', '--', 'sh', '-c', 'cd /vol && i=0; while [ $i -lt 1200 ]; do mkdir d && cd d; i=$((i+1)); '
              'done; echo deep > bottom')
    out = conductor('volume', 'export', 'hw', '-o', tmp_path / 'deep.tar').stdout
    assert 'Exported hw: 1 files' in out
    # a crafted archive: a name too long for the pipe an error goes back on, a pax header of 8 MiB
    for name, pax in (('../' + 'a' * 100000, {}), ('f', {'comment': ' ' * (8 << 20)})):
        with tarfile.open(tmp_path / 'evil.tar', 'w', format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(name)
            info.pax_headers.update(pax)
            tar.addfile(info, io.BytesIO(b''))
        error = conductor.fails('volume', 'import', 'hw', '-i', tmp_path / 'evil.tar', timeout=60)
        assert 'leads out' in error or 'extended tar header' in error, error
    # a commit killed while the container was frozen (simulated: the freezer written as it would have left it)
    freezer = Containers(Store(root)).cgroup('st').groups['freezer']
    with open(os.path.join(freezer, 'freezer.state'), 'w') as f:
        f.write('FROZEN')
    conductor('stop', '-t', '1', 'st')
    assert conductor('ps', '--json').stdout.strip() == '[]', 'stop thaws it first'
    # an exited container's volume is not there to copy: one error, never an empty folder
    conductor('run', '-v', 'hw:/vol', image, 'ex', '--', 'sh', '-c', 'mkdir -p "/root/x\nD /etc/passwd"')
    assert 'there only while ex runs' in conductor.fails('cp', 'ex:/vol/bottom', tmp_path / 'b')
    assert 'A /root/x\\x0aD /etc/passwd' in conductor('diff', 'ex').stdout.splitlines(), 'shown, never obeyed'


def test_a_sparse_giant_or_a_huge_member_never_fills_the_disk(conductor, image, tmp_path, root):
    conductor('run', '-d', '-v', 'big:/vol', image, 'sp', '--', 'sleep', '1000')
    conductor('exec', 'sp', '--', 'sh', '-c', 'truncate -s 15T /vol/hole && echo small > /vol/note')
    free = os.statvfs(root).f_bavail
    assert 'larger than the room left' in conductor.fails('cp', 'sp:/vol', tmp_path / 'out')
    assert 'larger than the room left' in conductor.fails('volume', 'export', 'big', '-o', tmp_path / 'big.tar')
    assert os.statvfs(root).f_bavail >= free - (64 << 20) // os.statvfs(root).f_frsize, 'no scratch file filled it'
    conductor('exec', 'sp', '--', 'rm', '/vol/hole')
    conductor('cp', 'sp:/vol/note', tmp_path / 'note')  # control
    assert (tmp_path / 'note').read_text() == 'small\n'
    header = tarfile.TarInfo('giant')
    header.size = 15 << 40  # a header that says 15 TiB: refused before a byte is written
    (tmp_path / 'giant.tar').write_bytes(header.tobuf(tarfile.GNU_FORMAT))
    assert 'larger than the room left' in conductor.fails('volume', 'import', 'big', '-i', tmp_path / 'giant.tar')
    assert 'larger than the room left' in conductor.fails('cp', '-', 'sp:/vol', stdin=open(tmp_path / 'giant.tar', 'rb'))
