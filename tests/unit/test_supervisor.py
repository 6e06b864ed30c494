# SPDX-License-Identifier: GPL-3.0-or-later
"""The supervisor's Lua: its arguments arrive exactly, whatever they hold; it copies output to the capped log,
rotates it, reaps its child and writes the exit code (run here with a plain child, no container)."""
import os
import signal
import subprocess
import time

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _runtime

pytestmark = pytest.mark.skipif(not os.path.exists(_runtime.LUA), reason='lua5.3 is not installed (make setup installs it)')


def test_arguments_arrive_exactly():
    odd = ['/tmp/a "quoted" \\ back', 'line\nbreak\r\nand \r', ']]=]==]', 'ümlaut', '', '-e', "it's"]
    show = 'io.write(D, "|", MAX, "|", #RESTART); for _, v in ipairs(RESTART) do io.write("\\0", v) end'
    lua, argv = _runtime.lua_command('test', show, D=odd[0], MAX=7, RESTART=odd)
    out = subprocess.run(argv, executable=lua, capture_output=True, check=True).stdout
    head, *rest = out.split(b'\0')
    assert head == odd[0].encode() + b'|7|7' and rest == [v.encode() for v in odd]


def test_it_logs_rotates_reaps_and_writes_the_exit_code(tmp_path):
    for code, signal_number, ignore_sigchld in ((3, None, False), (0, 9, False), (4, None, True)):
        read, write = os.pipe()
        exitcode = os.open(str(tmp_path / 'exitcode'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the supervisor's process: its child first, then the supervisor itself
            child = os.fork()
            if child == 0:
                os.close(read)
                for dummy in range(2):  # two reads of 3000 bytes: the second goes past the cap of 4096
                    os.write(write, b'x' * 3000)
                    time.sleep(0.2)
                if signal_number:
                    os.kill(os.getpid(), signal_number)
                os._exit(code)
            os.close(write)
            if ignore_sigchld:  # kept through exec: a wait would then fail (and the code be lost) without a reset
                signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            os.dup2(read, 0)
            os.dup2(exitcode, 4)
            os.execv(*_runtime.lua_command('conductor-supervisor', _runtime.SUPERVISOR, D=str(tmp_path), MAX=4096, RESTART=[]))
        os.close(read)
        os.close(write)
        os.close(exitcode)
        assert os.waitpid(pid, 0)[1] == 0
        assert (tmp_path / 'exitcode').read_text() == '%d\n' % (128 + signal_number if signal_number else code)
        assert [(tmp_path / name).stat().st_size for name in ('log', 'log.1')] == [3000, 3000], 'rotated at the cap'


def test_a_writer_that_outlives_the_child_does_not_keep_it_unreaped(tmp_path):
    """A process that holds the output pipe past the child's end (in a container: a writer passed out over a
    socket), and writes to it without end, does not keep the supervisor: it reaps the child within about a second,
    keeps all the child wrote (here 200 KiB, more than one read, in a pipe of 1 MiB) and no more than the pipe held
    then, and leaves while the pipe is still open."""
    fcntl = pytest.importorskip('fcntl')
    read, write = os.pipe()
    fcntl.fcntl(write, 1031, 1 << 20)  # F_SETPIPE_SZ: the largest pipe an unprivileged writer makes
    go_read, go_write = os.pipe()
    holder = os.fork()
    if holder == 0:  # pragma: no cover - holds the writer, as the process the container handed it to
        os.close(read)
        os.read(go_read, 1)  # once the child has written all it writes
        try:
            while True:
                os.write(write, b'h' * 4096)
        finally:
            os._exit(0)
    os.close(go_read)
    exitcode = os.open(str(tmp_path / 'exitcode'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the supervisor's process: its child first, then the supervisor itself
        child = os.fork()
        if child == 0:
            os.write(write, b'c' * (200 << 10))
            os.write(go_write, b'!')
            os._exit(5)
        os.close(write)
        os.close(go_write)
        os.dup2(read, 0)
        os.dup2(exitcode, 4)
        os.execv(*_runtime.lua_command('conductor-supervisor', _runtime.SUPERVISOR, D=str(tmp_path), MAX=4 << 20,
                                       RESTART=[]))
    for fd in (read, write, go_write, exitcode):
        os.close(fd)
    try:
        for dummy in range(100):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail('the supervisor still waits for the end of a pipe held outside: its child is not reaped')
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)
    assert time.monotonic() - started < 4
    log = (tmp_path / 'log').read_bytes()
    assert (tmp_path / 'exitcode').read_text() == '5\n'
    assert log[:200 << 10] == b'c' * (200 << 10), 'all the child wrote is kept'
    assert len(log) <= (200 << 10) + (1 << 20) + 65536, "the outside writer's bytes: no more than the pipe held"


def test_a_quiet_container_past_its_cap_keeps_its_log(tmp_path):
    """Waking each second with nothing read never rotates: a log already past the cap (the cap was lowered) stays
    as it is until output comes."""
    (tmp_path / 'log').write_bytes(b'x' * 5000)
    (tmp_path / 'log.1').write_bytes(b'older')
    read, write = os.pipe()
    exitcode = os.open(str(tmp_path / 'exitcode'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        child = os.fork()
        if child == 0:
            os.close(read)
            time.sleep(2.5)  # quiet, past two of the supervisor's wake-ups
            os._exit(0)
        os.close(write)
        os.dup2(read, 0)
        os.dup2(exitcode, 4)
        os.execv(*_runtime.lua_command('conductor-supervisor', _runtime.SUPERVISOR, D=str(tmp_path), MAX=4096, RESTART=[]))
    for fd in (read, write, exitcode):
        os.close(fd)
    assert os.waitpid(pid, 0)[1] == 0
    assert (tmp_path / 'log').read_bytes() == b'x' * 5000 and (tmp_path / 'log.1').read_bytes() == b'older'


def test_no_module_comes_from_the_working_folder(tmp_path):
    """The ports' holder is spawned in its caller's folder (a student's hand-in, say): a posix/unistd.lua there is
    never loaded. The control: plain lua5.3 from that folder runs it."""
    (tmp_path / 'posix').mkdir()
    (tmp_path / 'posix' / 'unistd.lua').write_text('io.write("planted ran") os.exit(7)')
    code = 'local unistd = require "posix.unistd" io.write(type(unistd.getpid))'
    control = subprocess.run([_runtime.LUA, '-e', code], cwd=str(tmp_path), capture_output=True, text=True, check=False)
    assert (control.returncode, control.stdout) == (7, 'planted ran'), 'the planted module is found by a plain lua'
    lua, argv = _runtime.lua_command('test', code)
    out = subprocess.run(argv, executable=lua, cwd=str(tmp_path), env={'LUA_INIT': 'os.exit(9)', 'PATH': '/usr/bin'},
                         capture_output=True, text=True, check=True)
    assert out.stdout == 'function'
