# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ansible experience: the role, the demo and classroom playbooks, many hosts, parallel runs, ad hoc.

Every 'host' is a network namespace with a state root of its own; its Python interpreter is a small
wrapper that enters that namespace, so the modules run there and never touch the machine's network.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile

import pytest

import helpers
from netlab import CLIENT, ECHO, make_lan, plug, sh

PLAYBOOKS = os.path.join(helpers.CHECKOUT, 'playbooks')
ANSIBLE_BIN = os.path.dirname(sys.executable)


class Lab:
    """N simulated hosts: netns cdt-lab<pid>-<i>, an uplink veth each, a state root each (seeded with the
    shared base, or with seeded=False an empty folder: a fresh host)."""

    def __init__(self, tmp_path, count, seeded=True):
        self.tmp = tmp_path
        collections = tmp_path / 'collections' / 'ansible_collections' / 'cs695'
        collections.mkdir(parents=True)
        os.symlink(helpers.CHECKOUT, str(collections / 'conductor'))
        # TMPDIR: the conductor_host role packs the engine there on the controller (conductor_host_engine_archive)
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'collections'), ANSIBLE_NOCOLOR='1', TMPDIR=str(tmp_path),
                        ANSIBLE_HOST_KEY_CHECKING='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                        PATH=ANSIBLE_BIN + os.pathsep + os.environ['PATH'])
        self.hosts = []
        for i in range(count):
            ns = 'cdt-lab%d-%d' % (os.getpid(), i)
            sh('ip', 'netns', 'add', ns)
            for args in (['link', 'set', 'lo', 'up'], ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1'],
                         ['addr', 'add', '203.0.113.2/24', 'dev', 'up0'], ['link', 'set', 'up0', 'up'],
                         ['link', 'set', 'up1', 'up'], ['route', 'add', 'default', 'via', '203.0.113.1']):
                sh('ip', '-n', ns, *args)
            root = str(tmp_path / ('root%d' % i))
            if seeded:
                helpers.seed(root)
            else:
                os.mkdir(root)
            python = tmp_path / ('python%d' % i)
            python.write_text('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (ns, sys.executable))
            python.chmod(0o755)
            config = tmp_path / ('conductor%d.conf' % i)
            config.write_text('')
            self.hosts.append({'name': 'lab%d' % i, 'ns': ns, 'root': root, 'python': str(python),
                               'config': str(config)})

    def inventory(self, aliases=None, environment=None, host_vars=None):
        """An INI inventory; aliases maps extra host names onto lab hosts (several names, one machine);
        environment, more variables for the modules; host_vars, {host: {variable: value}}."""
        lines = ['[classroom]']
        for name, host in (aliases or {h['name']: h for h in self.hosts}).items():
            env = dict(environment or {}, CONDUCTOR_CONFIG=host['config'])
            more = ''.join(" %s='%s'" % (k, json.dumps(v)) for k, v in (host_vars or {}).get(name, {}).items())
            lines.append('%s ansible_connection=local ansible_python_interpreter=%s conductor_root=%s '
                         "conductor_environment='%s'%s" % (name, host['python'], host['root'], json.dumps(env), more))
        path = self.tmp / 'inventory'
        path.write_text('\n'.join(lines) + '\n')
        return str(path)

    def playbook(self, playbook, inventory, *args, check=True):
        result = subprocess.run(['ansible-playbook', '-i', inventory, playbook] + list(args),
                                capture_output=True, text=True, env=self.env, cwd=str(self.tmp), check=False)
        if check and result.returncode != 0:
            raise AssertionError(result.stdout[-6000:] + result.stderr[-3000:])
        return result

    def cli(self, host, *args):
        return subprocess.run(['nsenter', '--net=/run/netns/' + host['ns'], '--', sys.executable, helpers.CLI,
                               '--root', host['root']] + list(args), capture_output=True, text=True, check=True,
                              env=dict(os.environ, CONDUCTOR_CONFIG=host['config']))

    def lan(self):
        """The hosts on one simulated LAN (a bridge in a namespace of its own): lan0 10.254.2.1<i>/24 each."""
        self.lan_ns = 'cdt-lan%d' % os.getpid()
        make_lan(self.lan_ns)
        for i, host in enumerate(self.hosts):
            host['address'] = '10.254.2.%d' % (10 + i)
            plug(self.lan_ns, host['ns'], i, host['address'])

    def close(self):
        if getattr(self, 'lan_ns', None):
            sh('ip', 'netns', 'del', self.lan_ns, check=False)
        for host in self.hosts:
            names = [r['name'] for r in json.loads(self.cli(host, 'ps', '--json').stdout)]
            for name in names:
                self.cli(host, 'stop', '-t', '0', name)
            sh('ip', 'netns', 'del', host['ns'], check=False)


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
    result = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output, re.M):
        result[host] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', counts)}
    return result


@pytest.fixture
def lab(tmp_path, base_key):
    labs = []

    def make(count, seeded=True):
        labs.append(Lab(tmp_path, count, seeded))
        return labs[-1]
    yield make
    for one in labs:
        one.close()


@pytest.fixture
def course(tmp_path):
    folder = tmp_path / 'course'
    folder.mkdir()
    (folder / 'motd').write_text('welcome to cs695\n')
    (folder / 'Conductorfile').write_text('FROM debian:bookworm\nCOPY motd /etc/motd\nCMD ["sleep", "infinity"]\n')
    return str(folder / 'Conductorfile')


def test_role_check_mode_real_run_and_idempotence(lab):
    one = lab(1)
    host = one.hosts[0]
    inventory = one.inventory()
    config_dir = str(one.tmp / 'etc-conductor')
    sysctl = str(one.tmp / 'sysctl-conductor.conf')
    playbook = one.tmp / 'role.yml'
    playbook.write_text('- hosts: classroom\n  roles:\n    - role: cs695.conductor.conductor_host\n      vars:\n'
                        '        conductor_host_config_dir: %s\n        conductor_host_sysctl_file: %s\n'
                        '        conductor_subnet: 10.77.3.0/24\n        conductor_host_dns: [192.0.2.53]\n'
                        '        conductor_host_cli_path: %s/conductor\n        conductor_host_cli_lib: %s/lib\n'
                        '        conductor_host_cli_python: %s\n        conductor_host_total_pids_limit: "30000"\n'
                        '        conductor_host_total_memory_limit: 32g\n'
                        % (config_dir, sysctl, one.tmp, one.tmp, sys.executable))
    check = recap(one.playbook(str(playbook), inventory, '--check').stdout)['lab0']
    assert check['changed'] >= 2 and not os.path.exists(config_dir + '/conductor.conf')
    first = recap(one.playbook(str(playbook), inventory).stdout)['lab0']
    second = recap(one.playbook(str(playbook), inventory).stdout)['lab0']
    again_check = recap(one.playbook(str(playbook), inventory, '--check').stdout)['lab0']
    assert first['changed'] >= 3 and second['changed'] == 0 and again_check['changed'] == 0
    conf = open(config_dir + '/conductor.conf').read()
    assert 'POOL=10.77.3.0/24\nPOOL_PREFIX=30\n' in conf, 'a lab host\'s subnet of the classroom network'
    assert 'DEFAULT_IFC=up0\n' in conf and 'DNS=192.0.2.53\n' in conf
    assert 'TOTAL_PIDS_LIMIT=30000\n' in conf and 'TOTAL_MEMORY_LIMIT=32g\n' in conf, 'all containers together'
    assert sh('cat', '/proc/sys/net/ipv4/ip_forward', ns=host['ns']).stdout.strip() == '1'
    installed = subprocess.run([str(one.tmp / 'conductor'), '--root', host['root'], 'ps', '--json'],
                               capture_output=True, text=True, check=True)  # the CLI the connection plugin runs
    assert json.loads(installed.stdout) == []


def as_printed(host, command):
    """A command the README or a playbook prints, run word for word from the checkout's root as after make setup
    and . .venv/bin/activate: no ANSIBLE_* settings (ansible.cfg finds the collection), conductor on PATH. It runs
    on a lab host: in its network namespace, with its state root and config given through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(CONDUCTOR_ROOT=host['root'], CONDUCTOR_CONFIG=host['config'], ANSIBLE_NOCOLOR='1',
               PATH=os.pathsep.join([os.path.dirname(helpers.CLI), ANSIBLE_BIN, os.environ['PATH']]))
    result = subprocess.run(['nsenter', '--net=/run/netns/' + host['ns'], '--'] + shlex.split(command),
                            cwd=helpers.CHECKOUT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, '%s: %s%s' % (command, result.stdout[-4000:], result.stderr[-2000:])
    return result


def test_demo_and_the_readme_commands_as_printed(lab):
    one = lab(1)
    host = one.hosts[0]
    # The demo's RUN apt-get needs the real network: build the image out here, the playbook finds it cached.
    subprocess.run(helpers.MACHINE_NET + [sys.executable, helpers.CLI, '--root', host['root'], 'build', '--network', 'host',
                                          'demo', os.path.join(helpers.CHECKOUT, 'examples', 'Conductorfile')],
                   check=True, capture_output=True)
    first = as_printed(host, 'ansible-playbook playbooks/demo.yml')  # what make demo runs
    assert 'Hello from demo' in first.stdout and 'WARNING' not in first.stdout + first.stderr
    assert recap(as_printed(host, 'ansible-playbook playbooks/demo.yml').stdout)['localhost']['changed'] == 0
    assert one.cli(host, 'ps').stdout.count('running') == 1
    stop = re.search(r'Stop it with: (.*?)"', first.stdout).group(1)
    assert recap(as_printed(host, stop).stdout)['localhost']['changed'] == 1
    assert json.loads(one.cli(host, 'ps', '--json').stdout) == []
    as_printed(host, 'ansible-playbook playbooks/demo.yml')
    assert recap(as_printed(host, 'ansible-playbook playbooks/demo.yml --tags stop').stdout)['localhost']['changed'] == 1
    assert json.loads(one.cli(host, 'ps', '--json').stdout) == []
    assert 'conductor_info' in as_printed(host, 'ansible-doc cs695.conductor.conductor_info').stdout
    with open(os.path.join(helpers.CHECKOUT, 'README.md')) as f:
        session = re.search(r'```console\n(.*?)```', f.read(), re.S).group(1)
    commands = re.findall(r'^# (conductor .*)$', session, re.M)
    assert commands[0] == 'conductor build demo examples/Conductorfile' and commands[-1] == 'conductor stop web'
    for command in commands:
        as_printed(host, command)
    assert json.loads(one.cli(host, 'ps', '--json').stdout) == []


def task_results(output, task):
    """{host: 'ok'|'changed'|'skipping'|...} for the task whose name starts with task (items collapsed)."""
    block = output.split('TASK [' + task, 1)[1].split('\nTASK [', 1)[0]
    results = {}
    for status, host in re.findall(r'^(ok|changed|skipping|failed|fatal): \[(\S+)\]', block, re.M):
        results[host] = 'changed' if 'changed' in (status, results.get(host)) else status
    return results


def test_classroom_on_five_hosts_in_parallel(lab, course):
    many = lab(5)
    inventory = many.inventory()
    students = ['alice', 'bob', 'carol']
    extra = json.dumps({'classroom_courses': [{'name': 'cs695', 'conductorfile': course}],
                        'classroom_students': students, 'classroom_prepare_hosts': False,
                        'classroom_controller_dir': str(many.tmp / 'controller')})  # the test's own, not /tmp's
    classroom = os.path.join(PLAYBOOKS, 'classroom.yml')
    first = many.playbook(classroom, inventory, '-f', '5', '-e', extra).stdout
    counts = recap(first)
    assert sorted(counts) == ['lab%d' % i for i in range(5)] and all(c['failed'] == 0 for c in counts.values())
    builds = task_results(first, 'Build one image per course')
    assert builds == dict(lab0='changed', **{'lab%d' % i: 'skipping' for i in range(1, 5)}), 'exactly one host builds'
    assert task_results(first, 'Load the course images') == dict(
        lab0='skipping', **{'lab%d' % i: 'changed' for i in range(1, 5)})
    ids = {json.loads(many.cli(host, 'images', '--json').stdout)[0]['id'] for host in many.hosts}
    assert len(ids) == 1, 'the same id everywhere: a build gives each layer a random id, so none was rebuilt'
    for host in many.hosts:
        rows = json.loads(many.cli(host, 'ps', '--json').stdout)
        assert sorted(r['name'] for r in rows) == ['cs695-' + s for s in students]
        assert all(r['status'] == 'running' for r in rows) and len({r['address'] for r in rows}) == 3
        rules = helpers.firewall_rules(host['ns'])
        assert all('dport %d ' % port in rules for port in (20000, 20001, 20002))
        work = {v['name']: v['used_by'] for v in json.loads(many.cli(host, 'volume', 'ls', '--json').stdout)}
        assert work == {'cs695-%s-work' % s: ['cs695-' + s] for s in students}, 'a work volume per student'
    again = many.playbook(classroom, inventory, '-f', '5', '-e', extra).stdout
    rerun = recap(again)
    assert all(c['changed'] == 0 for c in rerun.values()), again[-8000:]
    with open(course, 'a') as f:
        f.write('ENV WEEK=2\n')
    changed = many.playbook(classroom, inventory, '-f', '5', '-e', extra).stdout
    assert task_results(changed, 'Build one image per course')['lab0'] == 'changed'
    assert set(task_results(changed, 'Load the course images').values()) == {'skipping', 'changed'}
    assert len({json.loads(many.cli(host, 'images', '--json').stdout)[0]['id'] for host in many.hosts} - ids) == 1
    many.playbook(classroom, inventory, '-f', '5', '-e', extra, '--tags', 'teardown')
    for host in many.hosts:
        assert json.loads(many.cli(host, 'ps', '--json').stdout) == []
        kept = sorted(v['name'] for v in json.loads(many.cli(host, 'volume', 'ls', '--json').stdout))
        assert kept == ['cs695-%s-work' % s for s in students], 'teardown keeps the students\' work'
        assert 'CONDUCTOR' not in helpers.firewall_rules(host['ns'])


def test_ten_parallel_module_runs_on_one_host(lab, course):
    one = lab(1)
    host = one.hosts[0]
    one.cli(host, 'build', 'img', course)
    inventory = one.inventory({'worker%d' % i: host for i in range(10)})
    playbook = one.tmp / 'parallel.yml'
    playbook.write_text('''- hosts: classroom
  gather_facts: false
  environment: "{{ conductor_environment }}"
  tasks:
    - cs695.conductor.conductor_container:
        name: "{{ inventory_hostname }}"
        image: img
        root: "{{ conductor_root }}"
    - cs695.conductor.conductor_network:
        container: "{{ inventory_hostname }}"
        published_ports: [{container_port: 80, host_port: "{{ 30000 + inventory_hostname[6:] | int }}"}]
        root: "{{ conductor_root }}"
''')
    counts = recap(one.playbook(str(playbook), inventory, '-f', '10').stdout)
    assert len(counts) == 10 and all(c['failed'] == 0 and c['changed'] == 2 for c in counts.values())
    rows = json.loads(one.cli(host, 'ps', '--json').stdout)
    assert len(rows) == 10 and len({r['address'] for r in rows}) == 10 and all(r['address'] for r in rows)


def test_ad_hoc_calls(lab, course):
    one = lab(1)
    host = one.hosts[0]
    one.cli(host, 'build', 'testimage', course)
    inventory = one.inventory({'localhost': host})
    env = one.env
    result = subprocess.run(['ansible', 'localhost', '-i', inventory, '-m', 'cs695.conductor.conductor_container',
                             '-a', 'name=eg image=testimage root=%s' % host['root']],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0 and 'CHANGED' in result.stdout, result.stdout + result.stderr
    result = subprocess.run(['ansible', 'localhost', '-i', inventory, '-m', 'cs695.conductor.conductor_info',
                             '-a', 'root=%s' % host['root']], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0 and '"status": "running"' in result.stdout, result.stdout + result.stderr


def listing(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, folders, files in os.walk(root) for name in folders + files)


MATRIX = '''- hosts: classroom
  gather_facts: false
  environment: "{{ conductor_environment }}"
  module_defaults:
    group/cs695.conductor.conductor:
      root: "{{ conductor_root }}"
  tasks:
    - cs695.conductor.conductor_image: {name: img, conductorfile: %s}
    - cs695.conductor.conductor_volume: {name: shared}
    - cs695.conductor.conductor_container: {name: "{{ item }}", image: img, volumes: ["shared:/shared"]}
      loop: [ma, mb]
    - cs695.conductor.conductor_network: {container: "{{ item }}", published_ports: [{container_port: 80, host_port: 30080}]}
      loop: [ma]
    - cs695.conductor.conductor_network: {container: mb}
    - cs695.conductor.conductor_peer: {containers: [ma, mb]}
    - cs695.conductor.conductor_exec: {container: ma, argv: [touch, /shared/made], creates: /shared/made}
'''


def test_check_mode_on_a_fresh_host(lab, course):
    """--check --diff of whole playbooks on an empty state root: no failure, a change for every step that
    would happen, nothing created. Then the same playbook for real changes as much, and a check after it nothing."""
    one = lab(1, seeded=False)
    host = one.hosts[0]
    inventory = one.inventory({'localhost': host})
    demo = one.playbook(os.path.join(PLAYBOOKS, 'demo.yml'), inventory, '--check', '--diff')
    assert recap(demo.stdout)['localhost'] == dict(recap(demo.stdout)['localhost'], changed=3, failed=0)
    assert 'Stop it with: ansible-playbook playbooks/demo.yml -e demo_state=absent' in demo.stdout
    (one.tmp / 'classroom-vars.yml').write_text(  # as the README writes it
        'classroom_courses: [{name: cs695, conductorfile: %s}]\nclassroom_students: [alice, bob]\n'
        'classroom_prepare_hosts: false\n' % course)
    classroom = os.path.join(PLAYBOOKS, 'classroom.yml')
    counts = recap(one.playbook(classroom, inventory, '-e', '@classroom-vars.yml', '--check', '--diff').stdout)
    assert counts['localhost']['changed'] == 2 and counts['localhost']['failed'] == 0, counts  # image, the stack
    counts = recap(one.playbook(classroom, inventory, '-e', '@classroom-vars.yml', '--tags', 'teardown', '--check').stdout)
    assert counts['localhost']['changed'] == 0 and counts['localhost']['failed'] == 0
    matrix = one.tmp / 'matrix.yml'
    matrix.write_text(MATRIX % course)
    check = recap(one.playbook(str(matrix), inventory, '--check', '--diff').stdout)['localhost']
    assert check['changed'] == 7 and check['failed'] == 0, check  # every task
    assert listing(host['root']) == [], 'check mode created nothing'
    helpers.seed(host['root'])  # the base only, so the real run needs no debootstrap
    real = recap(one.playbook(str(matrix), inventory).stdout)['localhost']
    assert real['changed'] == check['changed'] and real['failed'] == 0, real
    assert recap(one.playbook(str(matrix), inventory, '--check').stdout)['localhost']['changed'] == 0


PENDING = '''- hosts: classroom
  gather_facts: false
  module_defaults:
    group/cs695.conductor.conductor:
      root: "{{ conductor_root }}"
  tasks:
    - name: In check mode, what a missing image or container is asked for would happen
      check_mode: true
      block:
        - {cs695.conductor.conductor_image: {name: child, instructions: [FROM missing, CMD sleep 9]}, register: child}
        - {cs695.conductor.conductor_container: {name: eg, image: missing}, register: container}
        - {cs695.conductor.conductor_network: {container: eg, internet: true}, register: network}
        - {cs695.conductor.conductor_peer: {containers: [eg, eh]}, register: peer}
        - {cs695.conductor.conductor_exec: {container: eg, argv: ["true"]}, register: exec}
        - {cs695.conductor.conductor_network: {container: eg, state: absent}, register: unnetwork}
    - name: For real, each is the error it always was
      ignore_errors: true
      block:
        - {cs695.conductor.conductor_image: {name: child, instructions: [FROM missing]}, register: real_child}
        - {cs695.conductor.conductor_container: {name: eg, image: missing}, register: real_container}
        - {cs695.conductor.conductor_network: {container: eg}, register: real_network}
        - {cs695.conductor.conductor_peer: {containers: [eg, eh]}, register: real_peer}
        - {cs695.conductor.conductor_exec: {container: eg, argv: ["true"]}, register: real_exec}
    - name: Check
      ansible.builtin.assert:
        that:
          - child is changed and child.image.id == '(built when run)' and child.would_run | length == 2
          - container is changed and container.actions == ['created', 'started']
          - container.diff.after.image_id == '(built when run)' and container.diff.before == {}
          - network is changed and network.diff.before == {} and network.network.internet
          - peer is changed and peer.peer.containers == ['eg', 'eh']
          - exec is changed and unnetwork is not changed
          - real_child.msg is search("no image named 'missing'")
          - real_container.msg is search("no image named 'missing'")
          - real_network.msg is search("no container named 'eg'")
          - real_peer.msg is search("no container named 'eg'")
          - real_exec.msg is search("no container named 'eg'")
'''


def test_check_mode_takes_missing_images_and_containers_as_pending(lab):
    one = lab(1, seeded=False)
    playbook = one.tmp / 'pending.yml'
    playbook.write_text(PENDING)
    counts = recap(one.playbook(str(playbook), one.inventory(), '--diff').stdout)['lab0']
    assert counts['failed'] == 0 and counts['ignored'] == 5, counts


def test_build_args_and_waiting_until_healthy(lab, tmp_path):
    one = lab(1)
    inventory = one.inventory()
    playbook = tmp_path / 'healthy.yml'
    playbook.write_text('''- hosts: classroom
  module_defaults:
    group/cs695.conductor.conductor:
      root: "{{ conductor_root }}"
  tasks:
    - cs695.conductor.conductor_image:
        name: ready
        build_args: {DELAY: "{{ delay }}", UNUSED: x}
        instructions:
          - FROM debian:bookworm
          - ARG DELAY=0
          - RUN echo "sleep $DELAY; touch /tmp/ready; exec sleep 1000" > /start.sh
          - HEALTHCHECK --interval=1s CMD test -f /tmp/ready
          - CMD ["sh", "/start.sh"]
    - cs695.conductor.conductor_container:
        name: svc
        image: ready
        state: healthy
        healthy_timeout: "{{ wait }}"
      register: svc
    - ansible.builtin.assert:
        that: svc.health.healthy
''')
    first = one.playbook(str(playbook), inventory, '-e', 'delay=2 wait=30')
    assert recap(first.stdout)['lab0']['changed'] == 2 and 'no ARG uses it' in first.stdout + first.stderr
    assert recap(one.playbook(str(playbook), inventory, '-e', 'delay=2 wait=30').stdout)['lab0']['changed'] == 0
    late = one.playbook(str(playbook), inventory, '-e', 'delay=600 wait=2', check=False)
    assert late.returncode != 0 and "container 'svc' is not healthy after 2s" in late.stdout


REGISTRY_ROLE = '''
- hosts: localhost
  gather_facts: false
  roles:
    - role: cs695.conductor.conductor_registry
      vars: %s
'''


def test_classroom_on_three_hosts_through_a_registry_the_role_set_up(lab, course, tmp_path):
    """classroom_registry: the build host pushes, the other hosts pull, through a registry the conductor_registry
    role configured (a lab CA, htpasswd users), reached on a network of the test's own."""
    many = lab(3)
    net, address = 'cdt-regnet%d' % os.getpid(), '10.254.0.1'
    sh('ip', 'netns', 'add', net)
    registry = None
    try:
        for args in (['link', 'set', 'lo', 'up'], ['link', 'add', 'br0', 'type', 'bridge'],
                     ['addr', 'add', address + '/24', 'dev', 'br0'], ['link', 'set', 'br0', 'up']):
            sh('ip', '-n', net, *args)
        for i, host in enumerate(many.hosts):
            sh('ip', '-n', net, 'link', 'add', 'rg%d' % i, 'type', 'veth', 'peer', 'name', 'reg0', 'netns', host['ns'])
            sh('ip', '-n', net, 'link', 'set', 'rg%d' % i, 'master', 'br0', 'up')
            sh('ip', '-n', host['ns'], 'addr', 'add', '10.254.0.%d/24' % (10 + i), 'dev', 'reg0')
            sh('ip', '-n', host['ns'], 'link', 'set', 'reg0', 'up')
        folder = tmp_path / 'registry'
        settings = {'conductor_registry_listen': address + ':5000', 'conductor_registry_hostname': address,
                    'conductor_registry_config_dir': str(folder / 'etc'), 'conductor_registry_data_dir': str(folder / 'data'),
                    'conductor_registry_ca_dir': str(folder / 'ca'), 'conductor_registry_install_packages': False,
                    'conductor_registry_service': False,
                    'conductor_registry_users': [{'name': 'instructor', 'password': 's3cret'}]}
        role = tmp_path / 'registry.yml'
        role.write_text(REGISTRY_ROLE % json.dumps(settings))
        local = tmp_path / 'local'
        local.write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        out = many.playbook(str(role), str(local)).stdout
        assert recap(out)['localhost']['changed'] >= 4, out
        out = many.playbook(str(role), str(local)).stdout
        assert recap(out)['localhost']['changed'] == 0, 'the role is idempotent: ' + out[-3000:]
        assert 's3cret' not in out
        registry = subprocess.Popen(['nsenter', '--net=/run/netns/' + net, '--', 'docker-registry', 'serve',
                                     str(folder / 'etc' / 'config.yml')], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        certs_d, auth = tmp_path / 'certs.d', tmp_path / 'auth.json'
        for host in many.hosts:  # what the conductor_host role would write: where the hosts' CAs are
            with open(host['config'], 'w') as f:
                f.write('REGISTRY_CERTS_D=%s\n' % certs_d)
        inventory = many.inventory(environment={'REGISTRY_AUTH_FILE': str(auth)})
        extra = json.dumps({'classroom_courses': [{'name': 'cs695', 'conductorfile': course}],
                            'classroom_students': ['alice', 'bob'], 'classroom_prepare_hosts': False,
                            'classroom_registry': address + ':5000',
                            'classroom_registry_ca': str(folder / 'ca' / 'ca.crt'),
                            'classroom_registry_certs_d': str(certs_d), 'classroom_registry_user': 'instructor',
                            'classroom_registry_password': 's3cret', 'classroom_registry_auth_file': str(auth)})
        classroom = os.path.join(PLAYBOOKS, 'classroom.yml')
        first = many.playbook(classroom, inventory, '-f', '3', '-e', extra).stdout
        assert task_results(first, 'Pull the course images from the registry') == {
            'lab0': 'skipping', 'lab1': 'changed', 'lab2': 'changed'}, first[-6000:]
        assert task_results(first, 'Load the course images')['lab1'] == 'skipping', 'no archive went anywhere'
        assert not (tmp_path / 'controller').exists()
        ids = set()
        for host in many.hosts:
            images = json.loads(many.cli(host, 'images', '--json').stdout)
            ids |= {i['id'] for i in images}
            rows = json.loads(many.cli(host, 'ps', '--json').stdout)
            assert sorted(r['name'] for r in rows) == ['cs695-alice', 'cs695-bob']
            assert all(r['status'] == 'running' for r in rows)
        assert len(ids) == 1, 'the same image id on every host'
        again = many.playbook(classroom, inventory, '-f', '3', '-e', extra).stdout
        assert all(c['changed'] == 0 for c in recap(again).values()), again[-8000:]
        many.playbook(classroom, inventory, '-f', '3', '-e', extra, '--tags', 'teardown')
        for host in many.hosts:
            assert json.loads(many.cli(host, 'images', '--json').stdout) == []
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait()
        sh('ip', 'netns', 'del', net, check=False)


def test_a_classroom_overlay_with_teams_and_a_service_on_three_hosts(lab, course, tmp_path):
    """classroom_network: overlay. Students given per host, a team across two hosts, a course service on a third:
    one run sets it up, a rerun changes nothing, teardown removes the overlay. Names resolve in the containers."""
    many = lab(3)
    many.lan()
    service = tmp_path / 'db'
    service.mkdir()
    (service / 'Conductorfile').write_text('FROM debian:bookworm\nEXPOSE 7000\nCMD ["sleep", "infinity"]\n')
    students = {'lab0': ['ann', 'cat'], 'lab1': ['ben'], 'lab2': ['dan']}
    inventory = many.inventory(host_vars={h['name']: {'conductor_overlay_address': h['address'],
                                                      'classroom_students': students[h['name']]} for h in many.hosts})
    extra = json.dumps({'classroom_courses': [{'name': 'cs695', 'conductorfile': course}], 'classroom_prepare_hosts': False,
                        'classroom_network': 'overlay', 'classroom_teams': [['ann', 'ben']],
                        'classroom_services': [{'name': 'db', 'conductorfile': str(service / 'Conductorfile'),
                                                'host': 'lab2'}],
                        'classroom_controller_dir': str(many.tmp / 'controller')})
    classroom = os.path.join(PLAYBOOKS, 'classroom.yml')
    small = many.playbook(classroom, inventory, '-e', extra, '-e', '{"conductor_subnet": "10.88.9.0/30"}', check=False)
    assert small.returncode != 0 and 'has more student containers and services than its subnet' in small.stdout
    assert not any(json.loads(many.cli(h, 'ps', '--json').stdout) for h in many.hosts), 'checked before anything'
    check = many.playbook(classroom, inventory, '-f', '3', '-e', extra, '--check', '--diff').stdout
    assert all(c['failed'] == 0 for c in recap(check).values()), check[-6000:]
    assert set(task_results(check, 'Join the lab hosts into one classroom network').values()) == {'changed'}
    assert not any('cdroverlay' in sh('ip', '-n', h['ns'], '-o', 'link').stdout for h in many.hosts), 'check mode made none'
    first = many.playbook(classroom, inventory, '-f', '3', '-e', extra).stdout
    assert all(c['failed'] == 0 for c in recap(first).values()), first[-6000:]
    assert set(task_results(first, 'Join the lab hosts into one classroom network').values()) == {'changed'}
    h0, h1, h2 = many.hosts
    rows = {h['name']: {r['name']: r for r in json.loads(many.cli(h, 'ps', '--json').stdout)} for h in many.hosts}
    assert sorted(rows['lab0']) == ['cs695-ann', 'cs695-cat'] and sorted(rows['lab2']) == ['cs695-dan', 'db']
    ann, ben, db = rows['lab0']['cs695-ann']['address'], rows['lab1']['cs695-ben']['address'], rows['lab2']['db']['address']
    assert (ann, ben, db) == ('10.88.1.2', '10.88.2.2', '10.88.3.6'), 'fixed by each one\'s place on its host'
    assert 'peer 10.88.2.2 on another host' in helpers.firewall_rules(h0['ns']), 'ann\'s half, on her host'
    assert 'peer 10.88.1.2 on another host' in helpers.firewall_rules(h1['ns'])

    def run(host, name, *argv):
        return subprocess.run(['nsenter', '--net=/run/netns/' + host['ns'], '--', sys.executable, helpers.CLI, '--root',
                               host['root'], 'exec', name, '--'] + list(argv), capture_output=True, text=True,
                              env=dict(os.environ, CONDUCTOR_CONFIG=host['config']), check=False)
    for name in ('ben', 'cs695-ben', 'db'):  # the teammate by student and container name, and the service
        assert run(h0, 'cs695-ann', 'getent', 'hosts', name).stdout.split()[0] == {'db': db}.get(name, ben)
        if name != 'db':  # the service answers on its exposed port alone: see below
            assert run(h0, 'cs695-ann', 'ping', '-c', '1', '-W', '2', name).returncode == 0, name
    assert run(h1, 'cs695-ben', 'ping', '-c', '1', '-W', '2', 'ann').returncode == 0
    assert run(h0, 'cs695-cat', 'ping', '-c', '1', '-W', '1', ben).returncode != 0, 'not in the team'
    assert run(h2, 'cs695-dan', 'ping', '-c', '1', '-W', '1', ann).returncode != 0
    with open(os.path.join(h2['root'], 'containers', 'db', 'state.json')) as f:
        db_pid = json.load(f)['pid']
    servers = [subprocess.Popen(['nsenter', '--net=/proc/%d/ns/net' % db_pid, '--', sys.executable, '-c', ECHO, 'tcp',
                                 str(port)], stdout=subprocess.PIPE, text=True) for port in (7000, 7001)]
    try:
        assert all(server.stdout.readline().strip() == 'ready' for server in servers)
        for host, name in ((h0, 'cs695-cat'), (h1, 'cs695-ben'), (h2, 'cs695-dan')):
            with open(os.path.join(host['root'], 'containers', name, 'state.json')) as f:
                pid = json.load(f)['pid']
            for port, answers in ((7000, True), (7001, False)):
                result = subprocess.run(['nsenter', '--net=/proc/%d/ns/net' % pid, '--', sys.executable, '-c', CLIENT,
                                         'tcp', db, str(port), '5'], capture_output=True, text=True, timeout=30, check=False)
                assert (result.returncode == 0) is answers, (name, port, result.stdout)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    again = many.playbook(classroom, inventory, '-f', '3', '-e', extra).stdout
    assert all(c['changed'] == 0 for c in recap(again).values()), again[-8000:]
    many.playbook(classroom, inventory, '-f', '3', '-e', extra, '--tags', 'teardown')
    for host in many.hosts:
        assert json.loads(many.cli(host, 'ps', '--json').stdout) == []
        assert 'cdroverlay' not in sh('ip', '-n', host['ns'], '-o', 'link').stdout
        assert 'CONDUCTOR' not in helpers.firewall_rules(host['ns'])


def test_collect_the_students_work_from_two_hosts(lab, tmp_path):
    """playbooks/collect.yml: every student's work volume, from every host, in one folder per course on the
    controller, a summary line each (a missing volume is an error line), and with classroom_snapshot a commit of each
    running container."""
    many = lab(2)
    students = {'lab0': ['ann', 'ben'], 'lab1': ['cat', 'dan']}
    for host in many.hosts:
        helpers.seed_image(host['root'], 'img')
        for student in students[host['name']]:
            if student == 'dan':
                continue  # dan never started: no work volume
            many.cli(host, 'run', '-d', '-v', 'cs695-%s-work:/root/work' % student, 'img', 'cs695-' + student, '--',
                     'sleep', 'infinity')
            many.cli(host, 'exec', 'cs695-' + student, '--', 'sh', '-c', 'cd /root/work && echo essay of %s > essay.txt && '
                     'mkdir src && echo code > src/main.c' % student)
    inventory = many.inventory(host_vars={h['name']: {'classroom_students': students[h['name']]} for h in many.hosts})
    extra = json.dumps({'classroom_courses': [{'name': 'cs695'}], 'classroom_collect_dir': str(tmp_path / 'handins'),
                        'classroom_snapshot': True, 'classroom_snapshot_tag': 'final'})
    checked = many.playbook(os.path.join(PLAYBOOKS, 'collect.yml'), inventory, '-e', extra, '--check').stdout
    assert all(c['failed'] == 0 for c in recap(checked).values()), checked[-4000:]
    assert not (tmp_path / 'handins' / 'cs695' / 'ann.tar').exists(), '--check fetches nothing'
    out = many.playbook(os.path.join(PLAYBOOKS, 'collect.yml'), inventory, '-e', extra).stdout
    assert all(c['failed'] == 0 for c in recap(out).values()), out[-4000:]
    handins = tmp_path / 'handins'
    assert sorted(os.listdir(handins / 'cs695')) == ['ann.tar', 'ben.tar', 'cat.tar']
    with tarfile.open(handins / 'cs695' / 'cat.tar') as tar:
        assert tar.extractfile('essay.txt').read() == b'essay of cat\n' and 'src/main.c' in tar.getnames()
    summary = (handins / 'summary.txt').read_text().splitlines()
    assert [line.split(':')[0] for line in summary] == ['cs695/ann on lab0', 'cs695/ben on lab0', 'cs695/cat on lab1',
                                                        'cs695/dan on lab1'], summary
    assert summary[0].endswith(': 18B, 2 files; snapshot cs695-ann:final'), summary
    assert "error: conductor volume: no volume named 'cs695-dan-work'" in summary[3]
    images = {r['name'] for r in json.loads(many.cli(many.hosts[1], 'images', '--json').stdout)}
    assert 'docker.io/library/cs695-cat:final' in images or 'cs695-cat:final' in images, images
    assert os.listdir(many.hosts[0]['root']).count('handins') == 0, 'the exports are not left on the host'
