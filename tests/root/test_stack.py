# SPDX-License-Identifier: GPL-3.0-or-later
"""conductor_stack through real ansible-playbook runs: many containers in one task, on a lab host (a network
namespace with a state root of its own, as in test_playbooks.py)."""
import json
import os

import helpers
# the lab hosts and their fixtures, shared with the playbooks' tests
from test_playbooks import course, lab, recap  # noqa: F401, pylint: disable=unused-import

PLAY = '''- hosts: classroom
  gather_facts: false
  environment: "{{ conductor_environment }}"
  tasks:
%s
      register: result
    - ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
      changed_when: false
      check_mode: false
'''
STACK = PLAY % '''    - cs695.conductor.conductor_stack:
        name: lab
        root: "{{ conductor_root }}"
        state: "{{ stack_state | default('started') }}"
        containers: "{{ entries }}"
        remove_orphans: "{{ orphans | default(false) }}"
        stop_timeout: 1'''


def entries(**changes):
    a = {'name': 'sa', 'image': 'img', 'volumes': ['sa-work:/course'],
         'network': {'internet': True, 'published_ports': [{'container_port': 80, 'host_port': 30001}]}}
    b = {'name': 'sb', 'image': 'img', 'memory': '64m', 'network': {}, 'peers': ['sa']}
    c = {'name': 'sc', 'image': 'img', 'env': {'WEEK': '1'}, 'command': 'sleep 1000'}
    return [dict(entry, **changes.get(entry['name'], {})) for entry in (a, b, c) if changes.get(entry['name']) != 'drop']


class Stack:
    def __init__(self, one):
        self.one, self.host = one, one.hosts[0]
        self.inventory = one.inventory()
        self.playbook = one.tmp / 'stack.yml'
        self.playbook.write_text(STACK)
        self.out = str(one.tmp / 'result.json')

    def play(self, playbook, *args, check=True, **extra):
        """Run the playbook with these extra vars; its task's result is in self.out."""
        if os.path.exists(self.out):
            os.unlink(self.out)
        return self.one.playbook(str(playbook), self.inventory, '-e', json.dumps(dict(extra, out=self.out)), *args,
                                 check=check)

    def result(self):
        with open(self.out) as f:
            return json.load(f)

    def run(self, listed, *args, check=True, **extra):
        result = self.play(self.playbook, *args, check=check, entries=listed, **extra)
        return recap(result.stdout)['lab0'], self.result(), result.stdout + result.stderr

    def ps(self):
        return {r['name']: r for r in json.loads(self.one.cli(self.host, 'ps', '--json').stdout)}

    def config(self, name):
        return json.loads(self.one.cli(self.host, 'inspect', name).stdout)['config']


def test_stack_check_run_rerun_change_orphans_and_teardown(lab, course):
    one = lab(1)
    stack = Stack(one)
    host = stack.host
    one.cli(host, 'build', 'img', course)

    counts, result, dummy = stack.run(entries(), '--check', '--diff')
    assert counts['changed'] == 1 and counts['failed'] == 0
    assert result['containers'] == {
        'sa': {'actions': ['created', 'started', 'networked', 'peered'], 'differences': []},
        'sb': {'actions': ['created', 'started', 'networked', 'peered'], 'differences': []},
        'sc': {'actions': ['created', 'started'], 'differences': []}}
    assert stack.ps() == {}, 'check mode made nothing'

    counts, result, dummy = stack.run(entries(), '--diff')
    assert counts['changed'] == 1 and result['containers']['sb']['actions'] == ['created', 'started', 'networked', 'peered']
    rows = stack.ps()
    assert sorted(rows) == ['sa', 'sb', 'sc'] and all(r['status'] == 'running' for r in rows.values())
    assert rows['sa']['address'] and rows['sb']['address'] and not rows['sc']['address']
    assert {stack.config(n)['stack'] for n in rows} == {'lab'}
    assert 'dport 30001 ' in helpers.firewall_rules(host['ns'])
    with open(os.path.join(host['root'], 'network', 'peers.json')) as f:
        assert json.load(f) == [['sa', 'sb']]
    pids = {n: r['pid'] for n, r in rows.items()}

    counts, result, dummy = stack.run(entries())
    assert counts['changed'] == 0 and all(r == {'actions': [], 'differences': []} for r in result['containers'].values())
    assert stack.run(entries(), '--check')[0]['changed'] == 0

    # a changed option recreates only its container and says why; a changed limit is applied in place
    counts, result, dummy = stack.run(entries(sc={'env': {'WEEK': '2'}}, sb={'memory': '128m'}))
    assert result['containers'] == {'sa': {'actions': [], 'differences': []},
                                    'sb': {'actions': ['updated'], 'differences': ['memory']},
                                    'sc': {'actions': ['recreated', 'started'], 'differences': ['env']}}
    rows = stack.ps()
    assert rows['sa']['pid'] == pids['sa'] and rows['sb']['pid'] == pids['sb'] and rows['sc']['pid'] != pids['sc']

    # a container no longer listed is an orphan: reported and left running, removed with remove_orphans
    listed = entries(sc='drop', sb={'memory': '128m'})
    counts, result, output = stack.run(listed)
    assert counts['changed'] == 0 and result['orphans'] == ['sc'] and 'remove_orphans' in output
    assert stack.ps()['sc']['status'] == 'running'
    counts, result, dummy = stack.run(listed, orphans=True)
    assert counts['changed'] == 1 and result['containers']['sc'] == {'actions': ['removed'], 'differences': []}
    assert sorted(stack.ps()) == ['sa', 'sb']

    # a peering no entry names any more is undone
    counts, result, dummy = stack.run(entries(sc='drop', sb={'memory': '128m', 'peers': []}))
    assert result['containers']['sb']['actions'] == ['unpeered'] == result['containers']['sa']['actions']
    with open(os.path.join(host['root'], 'network', 'peers.json')) as f:
        assert json.load(f) == []

    # a host port moves from one container to another in one task
    port = {'container_port': 80, 'host_port': 30001}
    moved = entries(sc='drop', sa={'network': {'published_ports': [dict(port, host_port=30002)]}},
                    sb={'memory': '128m', 'peers': [], 'network': {'published_ports': [port]}})
    counts, result, dummy = stack.run(moved)
    assert result['containers']['sa']['actions'] == ['networked'] == result['containers']['sb']['actions']
    rules = helpers.firewall_rules(host['ns'])
    assert rules.count('dport 30001 ') == rules.count('dport 30002 ') > 0

    # stopped keeps the containers; started again, each gets its network back (and nothing else changes)
    counts, result, dummy = stack.run(moved, stack_state='stopped')
    assert [r['actions'] for r in result['containers'].values()] == [['stopped'], ['stopped']]
    assert not [r for r in stack.ps().values() if r['status'] == 'running']
    counts, result, dummy = stack.run(moved)
    assert [r['actions'] for r in result['containers'].values()] == [['started'], ['started']]
    assert all(r['status'] == 'running' and r['address'] for r in stack.ps().values())
    assert stack.run(moved)[0]['changed'] == 0

    counts, result, dummy = stack.run([], stack_state='absent')
    assert counts['changed'] == 1 and sorted(result['containers']) == ['sa', 'sb']
    assert stack.ps() == {}
    assert [v['name'] for v in json.loads(one.cli(host, 'volume', 'ls', '--json').stdout)] == ['sa-work']
    assert 'CONDUCTOR' not in helpers.firewall_rules(host['ns'])
    assert stack.run([], stack_state='absent')[0]['changed'] == 0


def test_stack_bad_entries_fail_naming_the_entry_and_change_nothing(lab, course):
    one = lab(1)
    stack = Stack(one)
    one.cli(stack.host, 'build', 'img', course)
    cases = [
        (entries(sc={'name': 'sa'}), "containers[2] (sa): the name of containers[0] too: give each container one entry"),
        (entries(sc={'cap_add': ['BOGUS']}), "containers[2] (sc): unknown capability 'BOGUS' in cap_add"),
        (entries(sb={'cpus': 'lots'}), "containers[1] (sb): argument 'cpus' is of type"),
        (entries(sb={'colour': 'red'}), "containers[1] (sb): unknown option colour: use "),
        (entries(sb={'memory': 'lots'}), "containers[1] (sb): invalid memory limit 'lots'"),
        (entries(sc={'image': 'missing'}), "containers[2] (sc): no image named 'missing'"),
        (entries(sb={'network': {'published_ports': [{'container_port': 1, 'host_port': 30001}]}}),
         "containers[1] (sb): host port 30001/tcp is also published by containers[0] (sa)"),
        (entries(sc={'peers': ['sa']}), "containers[2] (sc): cannot peer with 'sa'"),
    ]
    for listed, message in cases:
        result = one.playbook(str(stack.playbook), stack.inventory, '-e', json.dumps(dict(entries=listed, out=stack.out)),
                              check=False)
        assert result.returncode != 0 and message in result.stdout, (message, result.stdout[-3000:])
        assert stack.ps() == {}, 'nothing was made: %s' % message


def test_a_storage_size_that_cannot_be_enforced_leaves_the_stack_as_it_was(lab, course):
    """Adding storage_size recreates a container; where the state root has no project quotas, the task
    fails before the old container is removed (a student's work is in it)."""
    one = lab(1)
    stack = Stack(one)
    one.cli(stack.host, 'build', 'img', course)
    stack.run(entries(sa='drop', sb='drop'))
    before = stack.ps()['sc']
    result = one.playbook(str(stack.playbook), stack.inventory, '-e', json.dumps(dict(
        entries=entries(sa='drop', sb='drop', sc={'storage_size': '64m'}), out=stack.out)), check=False)
    assert result.returncode != 0 and 'a storage size limit needs project quotas' in result.stdout, result.stdout[-3000:]
    after = stack.ps()['sc']
    assert after['status'] == 'running' and after['pid'] == before['pid'] and after['created'] == before['created']


CONTAINER = PLAY % '''    - cs695.conductor.conductor_container:
        name: "{{ container }}"
        image: img
        root: "{{ conductor_root }}"
        env: "{{ env | default({}) }}"
        command: "{{ command | default(omit) }}"
        memory: "{{ memory | default(omit) }}"
        network: "{{ network | default(omit) }}"
        stop_timeout: 1'''


def test_conductor_container_is_a_stack_of_one_in_no_stack(lab, course):
    """conductor_container runs through conductor_stack's executor, but its containers are no stack's: no
    stack's orphans, never removed with one; a stack's container it changes stays the stack's."""
    one = lab(1)
    stack = Stack(one)
    one.cli(stack.host, 'build', 'img', course)
    playbook = one.tmp / 'container.yml'
    playbook.write_text(CONTAINER)

    def container(*args, check=True, **extra):
        result = stack.play(playbook, *args, check=check, **extra)
        return stack.result() if check else result

    stack.run(entries())
    taken = container(container='loose', network={'published_ports': [{'container_port': 80, 'host_port': 30001}]},
                      check=False)
    assert taken.returncode != 0 and "host port 30001/tcp is already published by container 'sa': choose another" \
        in taken.stdout, taken.stdout[-3000:]
    assert 'loose' not in stack.ps(), 'refused before the container was made'

    network = {'published_ports': [{'container_port': 80, 'host_port': 30005}]}
    made = container(container='loose', network=network)
    assert made['actions'] == ['created', 'started', 'networked'] and made['container']['network']['ports'][0]['host_port'] == 30005
    assert stack.config('loose')['stack'] is None
    checked = container('--check', container='loose', network=network, memory='64m')
    assert checked['actions'] == ['updated'] and checked['differences'] == ['memory'], 'its network is as asked'
    assert checked['container']['network']['ports'][0]['host_port'] == 30005
    assert container(container='loose', network=network, memory='64m')['actions'] == ['updated']
    pid = stack.ps()['loose']['pid']

    counts, result, dummy = stack.run(entries(), orphans=True)
    assert counts['changed'] == 0 and 'loose' not in result['containers'] and result['orphans'] == []
    assert stack.ps()['loose']['pid'] == pid

    # a stack's container changed by conductor_container stays the stack's, recreated or not
    recreated = container(container='sc', env={'WEEK': '3'}, command='sleep 1000')
    # stop_timeout too: conductor_container's is the container's own; the stack's top-level one only overrides stops
    assert recreated['actions'] == ['recreated', 'started'] and recreated['differences'] == ['env', 'stop_timeout']
    assert stack.config('sc')['stack'] == 'lab'
    counts, result, dummy = stack.run(entries(sc='drop'))
    assert result['orphans'] == ['sc']
    counts, result, dummy = stack.run(entries())
    assert result['containers']['sc'] == {'actions': ['recreated', 'started'], 'differences': ['env', 'stop_timeout']}

    counts, result, dummy = stack.run([], stack_state='absent')
    assert sorted(result['containers']) == ['sa', 'sb', 'sc']
    assert list(stack.ps()) == ['loose'] and stack.ps()['loose']['pid'] == pid
