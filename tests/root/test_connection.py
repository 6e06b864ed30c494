# SPDX-License-Identifier: GPL-3.0-or-later
"""The connection and inventory plugins, end to end: real containers, real ansible-playbook and ansible.

One state root for the module (containers take a moment to start, and the tests only read them or write
inside them), from the cached image with python3 and python3-apt (helpers.seed_image). The remote case
runs an sshd, with a host key and a client key made for the test, in a network namespace of its own.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import helpers
from test_playbooks import recap

ANSIBLE_BIN = os.path.dirname(sys.executable)
CONNECTION = 'cs695.conductor.conductor'


class Env:
    """A state root with containers, and Ansible set up to find this checkout as the collection."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = str(tmp / 'root')
        helpers.seed_image(self.root, 'py')
        self.cli = helpers.Conductor(self.root)
        self.cli('build', 'plain', self.file('Conductorfile', 'FROM debian:bookworm\nCMD ["sleep", "infinity"]\n'))
        collections = tmp / 'collections' / 'ansible_collections' / 'cs695'
        collections.mkdir(parents=True)
        os.symlink(helpers.CHECKOUT, str(collections / 'conductor'))
        # TMPDIR: the conductor_host role packs the engine there on the controller (conductor_host_engine_archive)
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / 'collections'), ANSIBLE_NOCOLOR='1', TMPDIR=str(tmp),
                        ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCAL_TEMP=str(tmp / 'ansible-local'),
                        ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', ANSIBLE_HOST_KEY_CHECKING='0',
                        PATH=ANSIBLE_BIN + os.pathsep + os.environ['PATH'])

    def file(self, name, text):
        path = self.tmp / name
        path.write_text(text)
        return str(path)

    def inventory(self, *lines):
        return self.file('inventory', '\n'.join(lines) + '\n')

    def host(self, name, **options):
        """An INI line for a container reached by the connection plugin, in this state root by default."""
        options.setdefault('ansible_conductor_root', self.root)
        return ' '.join([name, 'ansible_connection=' + CONNECTION] + ["%s='%s'" % kv for kv in sorted(options.items())])

    def ansible(self, program, *args, check=True, netns=None, env=None):
        prefix = ['nsenter', '--net=/run/netns/' + netns, '--'] if netns else []
        result = subprocess.run(prefix + [program] + list(args), capture_output=True, text=True, cwd=str(self.tmp),
                                env=dict(self.env, **(env or {})), check=False)
        if check and result.returncode != 0:
            raise AssertionError(result.stdout[-6000:] + result.stderr[-3000:])
        return result

    def playbook(self, text, inventory, *args, **kw):
        return self.ansible('ansible-playbook', '-i', inventory, self.file('play.yml', text), *args, **kw)


@pytest.fixture(scope='module')
def env(tmp_path_factory, base_key):
    one = Env(tmp_path_factory.mktemp('connection'))
    for name, image in (('web', 'py'), ('alpha', 'py'), ('beta', 'py'), ('bare', 'plain')):
        one.cli('run', '-d', image, name, '--', 'sleep', 'infinity')
    one.cli('exec', 'web', '--', 'sh', '-c', 'useradd -m student && echo student:secret | chpasswd && '
            'echo "student ALL=(ALL) ALL" > /etc/sudoers.d/student')
    one.cli('run', '-d', 'py', 'gone', '--', 'true')
    yield one
    helpers.stop_all(one.root)
    helpers.remove_root(one.root)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def make_deb(folder):
    """A tiny .deb, made here: apt installs it offline."""
    package = folder / 'pkg'
    (package / 'DEBIAN').mkdir(parents=True)
    (package / 'DEBIAN' / 'control').write_text('Package: conductor-hello\nVersion: 1.0\nArchitecture: all\n'
                                                'Maintainer: Tests <tests@example.org>\nDescription: a test package\n')
    (package / 'usr' / 'share' / 'conductor-hello').mkdir(parents=True)
    (package / 'usr' / 'share' / 'conductor-hello' / 'hello.txt').write_text('hello\n')
    subprocess.run(['dpkg-deb', '--root-owner-group', '--build', str(package), str(folder / 'hello.deb')],
                   check=True, capture_output=True)
    return str(folder / 'hello.deb')


TASKS = '''- hosts: web
  gather_facts: true
  tasks:
    - assert: {that: [ansible_hostname == "web", ansible_virtualization_type is defined]}
    - copy: {src: %(big)s, dest: /srv/big.bin, mode: "0600"}
    - stat: {path: /srv/big.bin, checksum_algorithm: sha256}
      register: big
    - assert: {that: [big.stat.checksum == "%(sha)s", big.stat.size == 5242880, big.stat.pw_name == "root"]}
    - copy: {src: %(empty)s, dest: /srv/empty, mode: "0640"}
    - copy: {content: "mine\\n", dest: /home/student/notes.txt, mode: "0600"}
      remote_user: student
    - stat: {path: /home/student/notes.txt}
      register: notes
    - assert: {that: [notes.stat.pw_name == "student", notes.stat.mode == "0600", notes.stat.size == 5]}
    - template: {src: %(template)s, dest: /etc/motd, mode: "0644"}
    - command: cat /etc/motd
      register: motd
    - assert: {that: [motd.stdout == "hello web from web"]}
    - fetch: {src: /srv/big.bin, dest: %(fetched)s/, flat: true}
    - fetch: {src: /srv/empty, dest: %(fetched)s/, flat: true}
    - copy: {src: %(deb)s, dest: /tmp/hello.deb, mode: "0644"}
    - apt: {deb: /tmp/hello.deb}
    - command: cat /usr/share/conductor-hello/hello.txt
      register: hello
      changed_when: false
    - assert: {that: [hello.stdout == "hello"]}
    - command: whoami
      register: who
      changed_when: false
      become: true
      become_method: su
      become_user: student
      vars: {ansible_pipelining: true}  # without, su to a user who cannot read root's temporary files needs setfacl
    - command: id -un
      register: sudo_who
      changed_when: false
      become: true
      become_method: sudo
      remote_user: student
      vars: {ansible_become_password: secret}
    - assert: {that: [who.stdout == "student", sudo_who.stdout == "root"]}
    - command: pwd
      register: pwd
      changed_when: false
      vars: {ansible_conductor_working_dir: /srv, ansible_conductor_extra_env: {COURSE: cs695}}
    - shell: echo "$COURSE"
      register: course
      changed_when: false
      vars: {ansible_conductor_extra_env: {COURSE: cs695}}
    - assert: {that: [pwd.stdout == "/srv", course.stdout == "cs695"]}
'''


@pytest.mark.parametrize('pipelining', ['0', '1'])
def test_a_playbook_in_a_container(env, tmp_path, pipelining):
    big = tmp_path / 'big.bin'
    big.write_bytes(os.urandom(5 << 20))
    (tmp_path / 'empty').write_bytes(b'')
    template = env.file('motd.j2', 'hello {{ inventory_hostname }} from {{ ansible_hostname }}\n')
    fetched = tmp_path / 'fetched'
    fetched.mkdir()
    inventory = env.inventory(env.host('web'))
    text = TASKS % dict(big=big, sha=sha256(str(big)), empty=tmp_path / 'empty', template=template, fetched=fetched,
                        deb=make_deb(tmp_path))
    result = env.playbook(text, inventory, env={'ANSIBLE_PIPELINING': pipelining})
    assert recap(result.stdout)['web']['failed'] == 0
    assert sha256(str(fetched / 'big.bin')) == sha256(str(big)) and (fetched / 'empty').read_bytes() == b''
    env.cli('exec', 'web', '--', 'dpkg', '--purge', 'conductor-hello')  # the other run installs it again


def test_inventory_plugin_ad_hoc_ping_and_the_configure_playbook(env, tmp_path):
    source = env.file('lab.conductor.yml', 'plugin: cs695.conductor.conductor\nroot: %s\ninclude_stopped: true\n'
                      'filters:\n  - exclude: ansible_host == "bare"\n'
                      'keyed_groups:\n  - {key: conductor_image, prefix: image}\n' % env.root)
    listed = json.loads(env.ansible('ansible-inventory', '-i', source, '--list').stdout)
    assert sorted(listed['conductor']['hosts']) == ['alpha', 'beta', 'gone', 'web']
    alpha = listed['_meta']['hostvars']['alpha']
    assert alpha == {'ansible_connection': CONNECTION, 'ansible_host': 'alpha', 'ansible_conductor_root': env.root,
                     'conductor_image': 'py', 'conductor_status': 'running', 'conductor_address': None,
                     'conductor_ports': [], 'conductor_peers': []}
    assert listed['_meta']['hostvars']['gone']['conductor_status'].startswith('exited')
    assert sorted(listed['image_py']['hosts']) == ['alpha', 'beta', 'gone', 'web']

    ping = env.ansible('ansible', '-i', source, 'conductor', '-m', 'ping', check=False)
    assert ping.stdout.count('"ping": "pong"') == 3, ping.stdout
    assert "gone | UNREACHABLE!" in ping.stdout and "container 'gone' is not running (exited (0))" in ping.stdout

    running = env.file('running.conductor.yml', 'plugin: cs695.conductor.conductor\nroot: %s\n'
                       'filters:\n  - include: ansible_host in ["alpha", "beta"]\n  - exclude: true\n' % env.root)
    configure = os.path.join(helpers.CHECKOUT, 'playbooks', 'configure.yml')
    extra = json.dumps({'configure_debs': [make_deb(tmp_path)]})
    counts = recap(env.ansible('ansible-playbook', '-i', running, configure, '-f', '10', '-e', extra).stdout)
    assert sorted(counts) == ['alpha', 'beta'] and all(c['failed'] == 0 and c['changed'] == 3 for c in counts.values())
    for name in ('alpha', 'beta'):
        motd = env.cli('exec', name, '--', 'cat', '/etc/motd').stdout
        assert motd == 'Welcome to cs695, %s.\nThis container runs image py.\n' % name
        assert env.cli('exec', name, '--', 'dpkg', '-s', 'conductor-hello').stdout.count('Status: install ok installed')
    again = recap(env.ansible('ansible-playbook', '-i', running, configure, '-e', extra).stdout)
    assert all(c['changed'] == 0 and c['failed'] == 0 for c in again.values()), again


def test_symlinks_the_container_plants_lead_nowhere_outside_it(env, tmp_path):
    host_folder = tmp_path / 'host-folder'  # the same path inside the container is the container's own
    host_folder.mkdir()
    host_file = tmp_path / 'host-file'
    host_file.write_text('the host\'s\n')
    env.cli('exec', 'alpha', '--', 'sh', '-c', 'mkdir -p %s && touch %s && rm -rf /root/.ansible && ln -s %s /root/.ansible '
            '&& ln -s %s /srv/dest' % (host_folder, host_file, host_folder, host_file))
    inventory = env.inventory(env.host('alpha'))
    for pipelining in ('0', '1'):
        env.playbook('- hosts: alpha\n  gather_facts: false\n  tasks:\n'
                     '    - copy: {content: "written\\n", dest: /srv/dest, mode: "0644", follow: true}\n'
                     '    - command: "true"\n', inventory, env={'ANSIBLE_PIPELINING': pipelining})
    assert os.listdir(str(host_folder)) == [] and host_file.read_text() == 'the host\'s\n'
    assert env.cli('exec', 'alpha', '--', 'cat', str(host_file)).stdout == 'written\n'  # the link's target, inside


def test_bad_input_one_clear_error_each_and_nothing_changed(env, tmp_path):
    before = env.cli.listing()

    def outside(listing, container):
        return [entry for entry in listing if not entry[0].startswith('containers/%s/' % container)]
    inventory = env.inventory(
        env.host('nosuch'), env.host('bare'), env.host('stranger', ansible_host='alpha', ansible_user='nobody-here'),
        env.host('noroot', ansible_host='alpha', ansible_conductor_root=str(tmp_path / 'missing')),
        env.host('offline', ansible_host='alpha', ansible_conductor_host='127.0.0.1', ansible_conductor_ssh_port='1'))
    result = env.ansible('ansible', '-i', inventory, 'all', '-m', 'ping', check=False)
    out = result.stdout
    assert "nosuch | UNREACHABLE!" in out and "no container named 'nosuch': see conductor ps" in out
    assert "stranger | UNREACHABLE!" in out and "USER nobody-here: no such user in the image's /etc/passwd" in out
    assert "noroot | UNREACHABLE!" in out and 'the state root %s does not exist' % (tmp_path / 'missing') in out
    assert "offline | UNREACHABLE!" in out and 'ssh to 127.0.0.1 failed' in out and 'Connection refused' in out
    assert "bare | FAILED!" in out and '/usr/bin/python3: not found' in out
    raw = env.ansible('ansible', '-i', inventory, 'bare', '-m', 'raw', '-a', 'cat /etc/debian_version')
    assert raw.stdout.startswith('bare | CHANGED | rc=0')
    assert outside(env.cli.listing(), 'bare') == outside(before, 'bare')  # bare ran raw, and ping's mkdir
    missing = env.file('bad.conductor.yml', 'plugin: cs695.conductor.conductor\nroot: %s\n' % (tmp_path / 'missing'))
    listed = env.ansible('ansible-inventory', '-i', missing, '--list', check=False)
    message = 'the state root %s does not exist on this machine: fix the root option' % (tmp_path / 'missing')
    assert ''.join(message.split()) in ''.join(listed.stderr.split())  # warnings are wrapped
    offline = env.file('offline.conductor.yml', 'plugin: cs695.conductor.conductor\nhosts:\n'
                       '  - {name: 127.0.0.1, ssh_port: 1}\n')
    listed = env.ansible('ansible-inventory', '-i', offline, '--list', check=False)
    assert ''.join('listing containers: ssh to 127.0.0.1 failed'.split()) in ''.join(listed.stderr.split())


def test_inventory_cache(env, tmp_path):
    source = env.file('cached.conductor.yml', 'plugin: cs695.conductor.conductor\nroot: %s\ncache: true\n'
                      'cache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n' % (env.root, tmp_path / 'cache'))

    def hosts():
        return sorted(json.loads(env.ansible('ansible-inventory', '-i', source, '--list').stdout)['conductor']['hosts'])
    first = hosts()
    env.cli('run', '-d', 'plain', 'late', '--', 'sleep', 'infinity')
    try:
        assert hosts() == first and 'late' not in first, 'listed from the cache'
        shutil.rmtree(str(tmp_path / 'cache'))
        assert hosts() == sorted(first + ['late'])
    finally:
        env.cli('stop', '-t', '0', 'late')


@pytest.fixture
def sshd(tmp_path):
    """An sshd listening on 127.0.0.1:2222 inside a network namespace of its own, keys made for the test."""
    if not os.path.exists('/usr/sbin/sshd'):
        pytest.skip('openssh-server is not installed')
    folder = tmp_path / 'ssh'
    folder.mkdir()
    for key in ('host_key', 'client_key'):
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(folder / key)], check=True)
    shutil.copy(str(folder / 'client_key.pub'), str(folder / 'authorized_keys'))
    (folder / 'known_hosts').write_text('[127.0.0.1]:2222 ' + (folder / 'host_key.pub').read_text())
    config = folder / 'sshd_config'
    config.write_text('Port 2222\nListenAddress 127.0.0.1\nHostKey %(f)s/host_key\nAuthorizedKeysFile %(f)s/authorized_keys\n'
                      'PidFile none\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n'
                      'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' % {'f': folder})
    ns = 'cdt-ssh%d' % os.getpid()
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    subprocess.run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'], check=True)
    made_run_sshd = not os.path.isdir('/run/sshd')  # sshd's privilege separation folder
    if made_run_sshd:
        os.mkdir('/run/sshd', 0o755)
    server = subprocess.Popen(['nsenter', '--net=/run/netns/' + ns, '--', '/usr/sbin/sshd', '-D', '-e', '-f', str(config)],
                              stderr=open(str(folder / 'sshd.log'), 'w'))
    try:
        for dummy in range(100):  # until it listens: a client in the namespace connects
            probe = subprocess.run(['nsenter', '--net=/run/netns/' + ns, '--', 'ssh', '-p', '2222', '-i',
                                    str(folder / 'client_key'), '-o', 'BatchMode=yes', '-o',
                                    'UserKnownHostsFile=%s' % (folder / 'known_hosts'), 'root@127.0.0.1', 'true'],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                break
            assert server.poll() is None, (folder / 'sshd.log').read_text()
            time.sleep(0.1)
        home = tempfile.mkdtemp(prefix='cdt-')  # short: a ControlPath socket's path has at most 107 bytes
        yield {'ns': ns, 'folder': folder, 'home': home}
        control = os.path.join(home, '.ansible', 'cp')
        for name in os.listdir(control) if os.path.isdir(control) else []:  # the ControlMasters, and so their sessions
            subprocess.run(['ssh', '-o', 'ControlPath=' + os.path.join(control, name), '-O', 'exit', 'vm'],
                           capture_output=True, check=False)
        shutil.rmtree(home)
    finally:
        server.send_signal(signal.SIGTERM)  # nsenter execs sshd: this is sshd's PID; its sessions end with it
        server.wait()
        subprocess.run(['ip', 'netns', 'del', ns], check=False)
        if made_run_sshd:
            os.rmdir('/run/sshd')


def test_containers_on_a_lab_vm_over_ssh(env, sshd, tmp_path):
    folder = sshd['folder']
    cli = 'env CONDUCTOR_CONFIG=/dev/null %s %s' % (sys.executable, helpers.CLI)  # as the role's wrapper runs it
    ssh_args = '-o UserKnownHostsFile=%s' % (folder / 'known_hosts')
    plugin = ['plugin: cs695.conductor.conductor', 'root: %s' % env.root, 'cli: %s' % cli,
              'filters:', '  - include: ansible_host in ["web", "beta"]', '  - exclude: true']
    spelled_out = env.file('vm.conductor.yml', '\n'.join(plugin + [
        'hosts:', '  - name: 127.0.0.1', '    ssh_port: 2222', '    ssh_user: root',
        '    ssh_private_key_file: %s' % (folder / 'client_key'), '    ssh_args: %s' % ssh_args, '']))
    home = {'HOME': sshd['home']}  # the ControlMaster sockets: ~/.ansible/cp
    inventory = env.ansible('ansible-inventory', '-i', spelled_out, '--list', netns=sshd['ns'], env=home)
    listed = json.loads(inventory.stdout)
    assert sorted(listed.get('conductor', {}).get('hosts', [])) == ['beta@127.0.0.1', 'web@127.0.0.1'], inventory.stderr
    web = listed['_meta']['hostvars']['web@127.0.0.1']
    assert web['ansible_conductor_host'] == '127.0.0.1' and web['ansible_conductor_ssh_port'] == 2222

    # the usual way: the VM's own inventory entry says how to ssh there
    lab = env.file('lab.ini', "vm1 ansible_host=127.0.0.1 ansible_port=2222 ansible_user=root "
                   "ansible_ssh_private_key_file=%s ansible_ssh_common_args='%s'\n" % (folder / 'client_key', ssh_args))
    from_lab = env.file('lab.conductor.yml', '\n'.join(plugin + ['hosts: [vm1]', '']))
    big = tmp_path / 'big.bin'
    big.write_bytes(os.urandom(5 << 20))
    play = ('- hosts: conductor\n  gather_facts: true\n  tasks:\n'
            '    - assert: {that: [ansible_hostname == ansible_host, ansible_conductor_host == "127.0.0.1"]}\n'
            '    - copy: {src: %s, dest: /srv/ssh.bin, mode: "0644"}\n'
            '    - fetch: {src: /srv/ssh.bin, dest: "%s/{{ ansible_host }}.bin", flat: true}\n'
            '    - command: "true"\n' % (big, tmp_path))
    for pipelining in ('0', '1'):
        result = env.ansible('ansible-playbook', '-i', lab, '-i', from_lab, env.file('play.yml', play), '-f', '10',
                             netns=sshd['ns'], env=dict(home, ANSIBLE_PIPELINING=pipelining))
        counts = recap(result.stdout)
        assert sorted(counts) == ['beta@vm1', 'web@vm1'] and all(c['failed'] == 0 for c in counts.values())
    assert sha256(str(tmp_path / 'web.bin')) == sha256(str(big)) == sha256(str(tmp_path / 'beta.bin'))
    assert [n for n in os.listdir(os.path.join(sshd['home'], '.ansible', 'cp')) if n.startswith('conductor-')]
