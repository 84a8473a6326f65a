"""subprocess_exec/subprocess_shell, asyncio.create_subprocess_*, and the transport API.

Each test runs on the stdlib loop (the oracle) and on uvcffi's; local processes only
(``sys.executable -S -c ...`` children, ``/bin/sh``, ``/bin/true``).  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import subprocess
import sys
import time

import pytest

import uvcffi
from conftest import skip_oracle_if

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
STDOUT = asyncio.subprocess.STDOUT
TIMEOUT = 20.0
PY = (sys.executable, "-S", "-c")  # -S: no site, a child starts in a few ms
# Where the uvcffi under test was imported from (src/ in development, site-packages when
# installed): children that import uvcffi must find the same one.
SRC = os.path.dirname(os.path.dirname(os.path.abspath(uvcffi.__file__)))


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def py(code, *args, **kwargs):
    return asyncio.create_subprocess_exec(*PY, code, *args, **kwargs)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def zombie_children():
    """Our children that have exited but were not reaped (state Z in /proc)."""
    me = os.getpid()
    zombies = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            zombies.append(int(name))
    return zombies


def process_state(pid):
    """The /proc state letter of ``pid``, or None once it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Recorder(asyncio.SubprocessProtocol):
    def __init__(self):
        loop = asyncio.get_event_loop()
        self.events = []
        self.data = {1: bytearray(), 2: bytearray()}
        self.transport = None
        self.made = loop.create_future()
        self.exited = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def pipe_data_received(self, fd, data):
        self.data[fd] += data
        if self.events[-1] != ("data", fd):
            self.events.append(("data", fd))

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(None)


# -- data through the pipes ---------------------------------------------------------------


def test_echo_through_stdin_and_stdout(loop):
    async def main():
        proc = await py("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])",
                        stdin=PIPE, stdout=PIPE)
        assert isinstance(proc.pid, int) and proc.returncode is None
        out, err = await proc.communicate(b"hello world")
        assert (out, err) == (b"dlrow olleh", None)
        assert proc.returncode == 0

    run(loop, main())


def test_stderr_separate_and_merged_into_stdout(loop):
    code = ("import sys; sys.stdout.write('out'); sys.stdout.flush(); "
            "sys.stderr.write('err'); sys.stderr.flush()")

    async def main():
        proc = await py(code, stdout=PIPE, stderr=PIPE)
        assert await proc.communicate() == (b"out", b"err")
        proc = await py(code, stdout=PIPE, stderr=STDOUT)
        assert proc.stderr is None
        assert await proc.communicate() == (b"outerr", None)

    run(loop, main())


def test_devnull(loop):
    code = "import sys; print(repr(sys.stdin.read())); print('to devnull', file=sys.stderr)"

    async def main():
        proc = await py(code, stdin=DEVNULL, stdout=PIPE, stderr=DEVNULL)
        assert await proc.communicate() == (b"''\n", None)
        proc = await py("print('gone')", stdin=DEVNULL, stdout=DEVNULL, stderr=STDOUT)
        assert await proc.communicate() == (None, None)
        assert proc.returncode == 0

    run(loop, main())


def test_file_objects_and_fds(loop, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"from a file")
    dst = tmp_path / "out"

    async def main():
        fd = os.open(src, os.O_RDONLY)
        try:
            with open(dst, "wb") as out:
                proc = await py("import sys; sys.stdout.write(sys.stdin.read().upper())",
                                stdin=fd, stdout=out)
                assert await proc.wait() == 0
        finally:
            os.close(fd)
        assert dst.read_bytes() == b"FROM A FILE"

    run(loop, main())


def test_stdout_floods_20mb_all_received(loop):
    size = 20 * 1024 * 1024
    code = ("import sys; b = bytes(range(256)) * 4096\n"
            f"for _ in range({size} // len(b)): sys.stdout.buffer.write(b)")

    async def main():
        proc = await py(code, stdout=PIPE)
        out, _ = await proc.communicate()
        assert len(out) == size
        assert out == bytes(range(256)) * (size // 256)
        assert proc.returncode == 0

    run(loop, main())


def test_child_closes_stdout_early(loop):
    code = "import os, time; os.write(1, b'early'); os.close(1); time.sleep(0.3)"

    async def main():
        tr, proto = await loop.subprocess_exec(Recorder, *PY, code, stdin=None,
                                               stderr=None)
        await proto.lost
        ev = proto.events
        assert proto.data[1] == b"early"
        # The pipe ended while the child still ran.
        assert ev.index(("pipe_lost", 1, None)) < ev.index("exited")
        tr.close()

    run(loop, main())


# -- the protocol and transport API ---------------------------------------------------------


def test_protocol_callbacks_in_asyncio_order(loop):
    code = "import sys; print('o'); print('e', file=sys.stderr)"

    async def main():
        tr, proto = await loop.subprocess_exec(Recorder, *PY, code)
        assert proto.events == ["made"]  # connection_made before subprocess_exec returns
        assert tr.get_pid() > 0
        assert tr.get_pipe_transport(3) is None
        stdin = tr.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(tr.get_pipe_transport(1), asyncio.ReadTransport)
        stdin.close()
        assert await proto.exited == 0
        await proto.lost
        ev = proto.events
        assert ev[0] == "made" and ev[-1] == ("lost", None)
        assert ev.count("exited") == 1
        for fd in (0, 1, 2):
            assert ev.count(("pipe_lost", fd, None)) == 1
        for fd in (1, 2):
            assert ev.index(("data", fd)) < ev.index(("pipe_lost", fd, None))
        assert proto.data == {1: b"o\n", 2: b"e\n"}
        assert tr.get_returncode() == 0
        assert tr.is_closing() is False
        tr.close()
        assert tr.is_closing()

    run(loop, main())


def test_transport_close_kills_running_child(loop):
    async def main():
        tr, proto = await loop.subprocess_exec(Recorder, *PY, "import time; time.sleep(30)")
        tr.close()
        # process_exited and connection_lost still come, with the kill as the status.
        assert await proto.exited == -signal.SIGKILL
        await proto.lost
        assert tr.get_returncode() == -signal.SIGKILL

    run(loop, main())


@pytest.mark.parametrize("code, expected", [
    ("pass", 0),
    ("raise SystemExit(3)", 3),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
], ids=["0", "3", "SIGTERM", "SIGKILL"])
def test_exit_codes(loop, code, expected):
    async def main():
        proc = await py(code)
        assert await proc.wait() == expected
        assert proc.returncode == expected

    run(loop, main())


def test_send_signal_terminate_kill(loop):
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)")

    async def main():
        proc = await py(code, stdout=PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGUSR1)
        assert await proc.wait() == 7

        proc = await py("import time; time.sleep(30)")
        proc.terminate()
        assert await proc.wait() == -signal.SIGTERM

        proc = await py("import time; time.sleep(30)")
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


def test_signals_after_exit_raise_process_lookup_error(loop):
    async def main():
        proc = await py("pass")
        assert await proc.wait() == 0
        for _ in range(5):
            await asyncio.sleep(0)  # connection_lost (no pipes: right after the exit)
        with pytest.raises(ProcessLookupError):
            proc.kill()
        with pytest.raises(ProcessLookupError):
            proc.terminate()
        with pytest.raises(ProcessLookupError):
            proc.send_signal(signal.SIGUSR1)

    run(loop, main())


def test_child_ignoring_sigterm_is_killed(loop):
    code = ("import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)")

    async def main():
        proc = await py(code, stdout=PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        proc.terminate()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.3)
        assert proc.returncode is None
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


def test_child_killed_while_being_written_to(loop):
    code = ("import os, signal, sys\n"
            "sys.stdin.buffer.read(10)\n"
            "os.kill(os.getpid(), signal.SIGKILL)")

    async def main():
        # communicate() ignores BrokenPipeError and ConnectionResetError.
        proc = await py(code, stdin=PIPE, stdout=PIPE)
        out, err = await proc.communicate(b"x" * (8 * 1024 * 1024))
        assert out == b""
        assert proc.returncode == -signal.SIGKILL

        # Writing by hand: drain() reports the lost pipe.
        proc = await py("import sys, time; print('ready', flush=True); time.sleep(30)",
                        stdin=PIPE, stdout=PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        proc.kill()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(2000):
                proc.stdin.write(b"y" * 65536)
                await proc.stdin.drain()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


def test_cancel_communicate(loop):
    async def main():
        proc = await py("import sys, time; sys.stdin.read(); time.sleep(30)",
                        stdin=PIPE, stdout=PIPE, stderr=PIPE)
        task = asyncio.ensure_future(proc.communicate(b"some input"))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert proc.returncode is None
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


# -- Popen's arguments --------------------------------------------------------------------


def test_cwd_and_env(loop, tmp_path):
    async def main():
        proc = await py("import os; print(os.getcwd()); print(os.environ.get('UVC_TEST'))",
                        stdout=PIPE, cwd=tmp_path, env={"UVC_TEST": "value"})
        out, _ = await proc.communicate()
        assert out.decode().splitlines() == [os.path.realpath(tmp_path), "value"]
        proc = await py("import os; print(sorted(k for k in os.environ if k != 'LC_CTYPE'))",
                        stdout=PIPE, env={"ONLY": "1"})
        assert (await proc.communicate())[0] == b"['ONLY']\n"
        os.environ["UVC_INHERITED"] = "yes"
        try:
            proc = await py("import os; print(os.environ['UVC_INHERITED'])", stdout=PIPE)
            assert (await proc.communicate())[0] == b"yes\n"
        finally:
            del os.environ["UVC_INHERITED"]

    run(loop, main())


def test_subprocess_shell_and_executable(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell("echo $((6 * 7)); exit 4", stdout=PIPE)
        assert await proc.communicate() == (b"42\n", None)
        assert proc.returncode == 4
        # executable= runs another file under the given argv[0].
        proc = await asyncio.create_subprocess_exec("fakename", "-c", "echo $0",
                                                    executable="/bin/sh", stdout=PIPE)
        assert await proc.communicate() == (b"fakename\n", None)

    run(loop, main())


def test_pass_fds_and_close_fds(loop):
    r, w = os.pipe()
    leaky = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leaky, True)  # would reach the child unless close_fds closes it
    check = ("import os, sys\n"
             "w, leaky = int(sys.argv[1]), int(sys.argv[2])\n"
             "if w >= 0:\n"
             "    os.write(w, b'via pass_fds')\n"
             "try:\n"
             "    os.fstat(leaky)\n"
             "    print('leaked')\n"
             "except OSError:\n"
             "    print('closed')\n")

    async def main():
        proc = await py(check, str(w), str(leaky), stdout=PIPE, pass_fds=(w,))
        assert (await proc.communicate())[0] == b"closed\n"
        assert os.read(r, 100) == b"via pass_fds"
        # close_fds=False: inheritable fds reach the child, as with Popen.
        proc = await py(check, "-1", str(leaky), stdout=PIPE, close_fds=False)
        assert (await proc.communicate())[0] == b"leaked\n"
        # pass_fds without close_fds: Popen warns and closes the others anyway.
        with pytest.warns(RuntimeWarning, match="pass_fds overriding close_fds"):
            proc = await py(check, str(w), str(leaky), stdout=PIPE, pass_fds=[w],
                            close_fds=False)
        assert (await proc.communicate())[0] == b"closed\n"
        assert os.read(r, 100) == b"via pass_fds"
        # Without pass_fds, a non-inheritable fd never reaches the child.
        proc = await py(check, str(r), str(w), stdout=PIPE, stderr=DEVNULL)
        await proc.communicate()
        assert proc.returncode == 1  # os.write on the closed fd raised

    try:
        run(loop, main())
    finally:
        for fd in (r, w, leaky):
            os.close(fd)


def test_start_new_session(loop):
    async def main():
        proc = await py("import os; print(os.getsid(0) == os.getpid())", stdout=PIPE,
                        start_new_session=True)
        assert (await proc.communicate())[0] == b"True\n"
        proc = await py("import os; print(os.getsid(0))", stdout=PIPE)
        assert (await proc.communicate())[0] == f"{os.getsid(0)}\n".encode()

    run(loop, main())


def test_process_group(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11), "Popen has no process_group before 3.11")

    async def main():
        proc = await py("import os; print(os.getpgid(0) == os.getpid(), os.getsid(0))",
                        stdout=PIPE, process_group=0)
        assert (await proc.communicate())[0] == f"True {os.getsid(0)}\n".encode()
        # A session leader cannot change group: Popen fails, so do we.
        with pytest.raises(PermissionError):
            await py("pass", process_group=0, start_new_session=True)

    run(loop, main())


def test_umask_and_pipesize(loop):
    skip_oracle_if(loop, sys.version_info < (3, 10), "Popen has no pipesize before 3.10")

    async def main():
        code = ("import fcntl, os; print(oct(os.umask(0)), "
                "fcntl.fcntl(1, 1032))")  # F_GETPIPE_SZ
        proc = await py(code, stdout=PIPE, umask=0o027, pipesize=256 * 1024)
        assert (await proc.communicate())[0] == f"0o27 {256 * 1024}\n".encode()

    run(loop, main())


def test_spawn_errors(loop, tmp_path):
    not_exec = tmp_path / "not-executable"
    not_exec.write_text("#!/bin/sh\n")
    a_file = tmp_path / "file"
    a_file.write_text("")

    async def main():
        fds = fd_count()
        with pytest.raises(FileNotFoundError) as info:
            await asyncio.create_subprocess_exec("uvcffi-no-such-program", stdout=PIPE)
        assert info.value.errno == errno.ENOENT
        assert info.value.filename == "uvcffi-no-such-program"
        with pytest.raises(FileNotFoundError) as info:
            await py("pass", cwd=str(tmp_path / "missing"), stdin=PIPE, stdout=PIPE)
        assert info.value.filename == str(tmp_path / "missing")
        with pytest.raises(NotADirectoryError):
            await py("pass", cwd=str(a_file))
        with pytest.raises(PermissionError) as info:
            await asyncio.create_subprocess_exec(str(not_exec), stderr=PIPE)
        assert info.value.filename == str(not_exec)
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_shell("true", executable="/uvcffi/no/shell")
        with pytest.raises(OSError) as info:
            await py("pass", stdout=12345)  # not an open fd
        assert info.value.errno == errno.EBADF
        assert fd_count() == fds  # the pipes made for the failed spawns are closed

    run(loop, main())


def test_bad_arguments(loop):
    async def main():
        exec_ = loop.subprocess_exec
        shell = loop.subprocess_shell
        for kwargs in ({"universal_newlines": True}, {"shell": True}, {"bufsize": 1},
                       {"text": True}, {"encoding": "utf-8"}, {"errors": "strict"}):
            with pytest.raises(ValueError):
                await exec_(Recorder, *PY, "pass", **kwargs)
        for kwargs in ({"universal_newlines": True}, {"shell": False}, {"bufsize": 1},
                       {"text": True}, {"encoding": "utf-8"}, {"errors": "strict"}):
            with pytest.raises(ValueError):
                await shell(Recorder, "true", **kwargs)
        with pytest.raises(ValueError, match="cmd must be a string"):
            await shell(Recorder, ["true"])
        with pytest.raises(TypeError):
            await exec_(Recorder, 42)
        with pytest.raises(TypeError):
            await exec_(Recorder, *PY, "pass", None)
        with pytest.raises(TypeError):
            await exec_(Recorder, *PY, "pass", no_such_argument=1)
        with pytest.raises(ValueError):
            await exec_(Recorder, *PY, "pass\0")
        with pytest.raises(ValueError):
            await exec_(Recorder, *PY, "pass", env={"A=B": "1"})
        with pytest.raises(ValueError):
            await exec_(Recorder, *PY, "pass", startupinfo=object())
        with pytest.raises(ValueError):
            await exec_(Recorder, *PY, "pass", creationflags=1)
        with pytest.raises(TypeError):
            await exec_(Recorder, *PY, "pass", pipesize="big")

    run(loop, main())


def test_preexec_fn_and_user_are_refused(uvcffi_loop):
    loop = uvcffi_loop

    async def main():
        with pytest.raises(NotImplementedError, match="start_new_session"):
            await py("pass", preexec_fn=os.setsid)
        with pytest.raises(NotImplementedError):
            await py("pass", user=os.getuid())
        with pytest.raises(NotImplementedError):
            await py("pass", restore_signals=False)

    run(loop, main())


# -- many children, reaping, other waiters, fork ---------------------------------------


def test_500_short_lived_children_leak_nothing(loop):
    async def main():
        # Warm up: the loop's own lazily made fds and handles.
        proc = await asyncio.create_subprocess_exec("/bin/true", stdout=PIPE)
        await proc.communicate()
        fds = fd_count()
        for i in range(500):
            if i % 2:
                proc = await asyncio.create_subprocess_exec("/bin/true")
                assert await proc.wait() == 0
            else:
                proc = await asyncio.create_subprocess_exec("/bin/echo", str(i), stdout=PIPE)
                assert await proc.communicate() == (f"{i}\n".encode(), None)
        await asyncio.sleep(0.05)
        gc.collect()
        assert fd_count() == fds
        assert zombie_children() == []
        if isinstance(loop, uvcffi.Loop):
            assert loop._uv_handle_stats()["live"] == 0

    run(loop, main(), timeout=40)


def test_other_waitpid_users_are_not_disturbed(loop):
    async def main():
        # A child of ours is running, so libuv's SIGCHLD watcher is active.
        proc = await py("import time; time.sleep(0.3)")
        done = subprocess.run([*PY, "raise SystemExit(5)"])
        assert done.returncode == 5
        pid = os.fork()
        if pid == 0:
            os._exit(6)
        assert os.waitpid(pid, 0)[1] >> 8 == 6
        assert await proc.wait() == 0

    run(loop, main())


def test_exit_seen_when_sigchld_handler_is_replaced(loop):
    # libuv learns of exits from a process-wide SIGCHLD handler that any library may
    # replace; uvcffi also watches each child through a pidfd, so no exit is ever missed.
    got = []

    async def main():
        proc = await py("import time; time.sleep(0.2)")
        previous = signal.signal(signal.SIGCHLD, lambda *args: got.append(args[0]))
        try:
            assert await proc.wait() == 0
            proc = await asyncio.create_subprocess_exec("/bin/true")
            assert await proc.wait() == 0
        finally:
            signal.signal(signal.SIGCHLD, previous)  # SIG_DFL: libuv's handler is gone
        proc = await asyncio.create_subprocess_exec("/bin/true")
        assert await proc.wait() == 0

    run(loop, main())


FORK_SCRIPT = r"""
import asyncio, os, sys
import uvcffi

PY = (sys.executable, "-S", "-c")

async def in_child():
    proc = await asyncio.create_subprocess_exec(*PY, "print('grandchild')", stdout=-1)
    out, _ = await proc.communicate()
    return out == b"grandchild\n" and proc.returncode == 0

async def main():
    # A child runs on this loop while we fork: libuv's SIGCHLD watcher is active.
    running = await asyncio.create_subprocess_exec(*PY, "import time; time.sleep(0.3)")
    pid = os.fork()
    if pid == 0:
        try:
            ok = uvcffi.run(in_child())
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(2)
        os._exit(0 if ok else 1)
    status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
    print(os.waitstatus_to_exitcode(status[1]), await running.wait())

uvcffi.run(main())
"""


def test_fork_child_runs_its_own_uvcffi_loop(loop):
    async def main():
        env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", FORK_SCRIPT,
                                                    stdout=PIPE, stderr=PIPE, env=env)
        out, err = await proc.communicate()
        assert (out, proc.returncode) == (b"0 0\n", 0), err.decode()

    run(loop, main())


# -- uvcffi: what happens to children when the loop goes away ------------------------------


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while process_state(pid) is not None:
        assert time.monotonic() < deadline, f"child {pid} not reaped: {process_state(pid)}"
        time.sleep(0.01)


def test_loop_closed_early_leaves_child_running_and_no_zombie(tmp_path):
    marker = tmp_path / "marker"
    loop = uvcffi.new_event_loop()
    try:
        async def main():
            code = f"import time; time.sleep(0.3); open({str(marker)!r}, 'w').close()"
            proc = await py(code)
            return proc

        proc = run(loop, main())
    finally:
        loop.close()
    stats = loop._uv_close_stats
    assert stats["handles_opened"] == stats["handles_closed"]
    pid = proc.pid
    assert process_state(pid) not in (None, "Z")  # closing the loop did not kill it
    _wait_gone(pid)  # ... and the reaper thread reaped it when it exited
    assert marker.exists()
    assert pid not in zombie_children()
    with pytest.raises(ProcessLookupError):
        proc._transport._proc.kill(signal.SIGTERM)  # the orphan record knows it is gone
    proc._transport._closed = True  # no ResourceWarning from this test


def test_closed_transport_then_closed_loop_kills_and_reaps():
    loop = uvcffi.new_event_loop()
    try:
        async def main():
            tr, proto = await loop.subprocess_exec(Recorder, *PY, "import time; time.sleep(30)")
            tr.close()  # kills; the loop closes before the exit is seen
            return tr.get_pid()

        pid = run(loop, main())
    finally:
        loop.close()
    _wait_gone(pid)
    assert zombie_children() == []
