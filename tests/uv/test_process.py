"""UVProcess: uv_spawn, the EXIT event, kill, stdio slots, the fork hook, orphans.

libuv's test-spawn.c in spirit, on local children only (``sys.executable -S -c``).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from uvcffi._uv.loop import RUN_NOWAIT, UVLoop
from uvcffi._uv.pipe import UVPipe
from uvcffi._uv.process import STDIO_PIPE_IN, STDIO_PIPE_OUT, UVProcess

from .uvutil import dispatch
from .uvutil import run_until as _run_until


def run_until(uvloop, done, timeout_ms=10_000):
    return _run_until(uvloop, done, timeout_ms)


PY = os.fsencode(sys.executable)


def pyargs(code, *extra):
    return [PY, b"-S", b"-c", code.encode(), *[os.fsencode(e) for e in extra]]


def settle(uvloop):
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))


class Reader:
    """A UVPipe the child writes into, and what was read from it."""

    def __init__(self, uvloop):
        self.pipe = UVPipe(uvloop)
        self.chunks = []
        self.pipe.on_read = lambda data, exc: self.chunks.append(
            data if data is not None else exc)

    def slot(self):
        return (self.pipe, STDIO_PIPE_OUT)

    def start(self):
        self.pipe.read_start()

    def output(self):
        return b"".join(c for c in self.chunks if isinstance(c, bytes))

    def at_eof(self):
        return bool(self.chunks) and isinstance(self.chunks[-1], EOFError)

    def close(self):
        self.pipe.close()


def test_spawn_exit_status_and_event(uvloop):
    exits = []
    proc = UVProcess(uvloop, PY, pyargs("raise SystemExit(3)"), stdio=[0, 1, 2],
                     on_exit=lambda status, sig: exits.append((status, sig)))
    assert proc.pid > 0 and not proc.exited and proc.returncode is None
    run_until(uvloop, lambda: proc.exited)
    assert exits == [(3, 0)]
    assert proc.returncode == 3
    with pytest.raises(ProcessLookupError):
        proc.kill(signal.SIGTERM)
    proc.close()
    settle(uvloop)


def test_kill_gives_term_signal(uvloop):
    proc = UVProcess(uvloop, PY, pyargs("import time; time.sleep(30)"))
    proc.kill(signal.SIGKILL)
    run_until(uvloop, lambda: proc.exited)
    assert (proc.exit_status, proc.term_signal, proc.returncode) == (0, signal.SIGKILL, -9)
    proc.close()
    settle(uvloop)


def test_create_pipe_slots_are_socketpairs(uvloop):
    out = Reader(uvloop)
    into = UVPipe(uvloop)
    into.on_write = lambda status: None
    code = "import os, stat, sys; print(stat.S_ISSOCK(os.fstat(0).st_mode), sys.stdin.read())"
    proc = UVProcess(uvloop, PY, pyargs(code),
                     stdio=[(into, STDIO_PIPE_IN), out.slot(), 2])
    out.start()
    assert into.is_writable() and out.pipe.is_readable()
    into.write(b"via libuv")
    into.close()
    run_until(uvloop, lambda: proc.exited and out.at_eof())
    assert out.output() == b"True via libuv\n"
    for h in (proc, out):
        h.close()
    settle(uvloop)


def test_args_env_cwd(uvloop, tmp_path):
    out = Reader(uvloop)
    code = ("import os, sys; print(sys.argv[1:], os.getcwd(), "
            "sorted(i for i in os.environ.items() if i[0] != 'LC_CTYPE'))")  # locale coercion
    proc = UVProcess(uvloop, PY, pyargs(code, "a b", "", "c"), env=[b"K=v", b"E="],
                     cwd=os.fsencode(tmp_path), stdio=[None, out.slot(), 2])
    out.start()
    run_until(uvloop, lambda: proc.exited and out.at_eof())
    want = f"['a b', '', 'c'] {os.path.realpath(tmp_path)} [('E', ''), ('K', 'v')]\n"
    assert out.output().decode() == want
    for h in (proc, out):
        h.close()
    settle(uvloop)


def test_ignore_slots_give_dev_null(uvloop):
    out = Reader(uvloop)
    code = ("import os, sys; "
            "print(repr(sys.stdin.read()), os.path.samestat(os.fstat(2), os.stat(os.devnull)))")
    proc = UVProcess(uvloop, PY, pyargs(code), stdio=[None, out.slot(), None])
    out.start()
    run_until(uvloop, lambda: proc.exited and out.at_eof())
    assert out.output() == b"'' True\n"
    for h in (proc, out):
        h.close()
    settle(uvloop)


def test_spawn_errors_leave_nothing_open(uvloop):
    before = uvloop.counters()
    with pytest.raises(FileNotFoundError):
        UVProcess(uvloop, b"/uvcffi/no/such/program", [b"x"])
    with pytest.raises(FileNotFoundError):
        UVProcess(uvloop, PY, pyargs("pass"), cwd=b"/uvcffi/no/such/dir")
    with pytest.raises(OSError):
        UVProcess(uvloop, PY, pyargs("pass"), stdio=[0, 987654, 2])
    with pytest.raises(ValueError):
        UVProcess(uvloop, PY, [PY, b"-c", b"pa\0ss"])
    with pytest.raises(ValueError):
        UVProcess(uvloop, PY, [])
    settle(uvloop)
    after = uvloop.counters()
    assert after["handles_opened"] - before["handles_opened"] == 3
    assert after["handles_opened"] - after["handles_closed"] == (
        before["handles_opened"] - before["handles_closed"]
    )
    assert uvloop.objects.count(None) == len(uvloop.objects)  # every id released


def test_fork_hook_close_fds_pass_slot_pgid_umask(uvloop):
    out = Reader(uvloop)
    leaky = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leaky, True)
    passed = os.open(os.devnull, os.O_RDONLY)
    code = ("import os, sys\n"
            "def is_open(fd):\n"
            "    try:\n"
            "        os.fstat(fd)\n"
            "        return True\n"
            "    except OSError:\n"
            "        return False\n"
            "print(is_open(int(sys.argv[1])), is_open(int(sys.argv[2])), "
            "os.getpgid(0) == os.getpid(), oct(os.umask(0)))")
    slots = [None, out.slot(), 2] + [None] * passed
    slots[passed] = passed
    try:
        proc = UVProcess(uvloop, PY, pyargs(code, str(leaky), str(passed)), stdio=slots,
                         close_fds=True, pgid=0, umask=0o022)
        out.start()
        run_until(uvloop, lambda: proc.exited and out.at_eof())
        assert out.output() == b"False True True 0o22\n"
        # Without the hook, an inheritable fd leaks into the child: libuv closes nothing.
        out2 = Reader(uvloop)
        proc2 = UVProcess(uvloop, PY, pyargs(code, str(leaky), str(passed)),
                          stdio=[None, out2.slot(), 2])
        out2.start()
        run_until(uvloop, lambda: proc2.exited and out2.at_eof())
        assert out2.output().startswith(b"True False False")
    finally:
        os.close(leaky)
        os.close(passed)
    for h in (proc, out, proc2, out2):
        h.close()
    settle(uvloop)


def test_fork_hook_failure_is_reported_and_reaped(uvloop):
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(PermissionError):
        UVProcess(uvloop, PY, pyargs("pass"), pgid=0, new_session=True)
    with pytest.raises(OSError):
        UVProcess(uvloop, PY, pyargs("pass"), pgid=2**30)  # no such process group
    settle(uvloop)
    assert len(os.listdir("/proc/self/fd")) == before


def test_detached_is_a_new_session(uvloop):
    out = Reader(uvloop)
    proc = UVProcess(uvloop, PY, pyargs("import os; print(os.getsid(0) == os.getpid())"),
                     detached=True, stdio=[None, out.slot(), 2])
    out.start()
    run_until(uvloop, lambda: proc.exited and out.at_eof())
    assert out.output() == b"True\n"
    for h in (proc, out):
        h.close()
    settle(uvloop)


def test_exit_reported_without_libuvs_sigchld_handler(uvloop):
    # signal.signal() replaces libuv's C handler; the pidfd watch still reports the exit.
    proc = UVProcess(uvloop, PY, pyargs("import time; time.sleep(0.1)"))
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        run_until(uvloop, lambda: proc.exited)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert proc.returncode == 0
    proc.close()
    settle(uvloop)


def _gone(pid):
    return not os.path.exists(f"/proc/{pid}")


def test_closed_before_exit_is_reaped_by_a_thread_not_killed(uvloop, tmp_path):
    marker = tmp_path / "done"
    code = f"import time; time.sleep(0.2); open({str(marker)!r}, 'w').close()"
    proc = UVProcess(uvloop, PY, pyargs(code), stdio=[0, 1, 2])
    pid = proc.pid
    proc.close()  # libuv forgets the pid
    settle(uvloop)
    deadline = time.monotonic() + 10
    while not _gone(pid):
        assert time.monotonic() < deadline, "the orphaned child was never reaped"
        time.sleep(0.01)
    assert marker.exists()  # it ran to its end
    with pytest.raises(ProcessLookupError):
        proc.kill(signal.SIGTERM)


def test_orphan_can_still_be_killed(uvloop):
    proc = UVProcess(uvloop, PY, pyargs("import time; time.sleep(30)"))
    proc.close()
    settle(uvloop)
    proc.kill(signal.SIGKILL)  # through the orphan record
    deadline = time.monotonic() + 10
    while not _gone(proc.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_uvloop_close_orphans_running_children():
    loop = UVLoop()
    proc = UVProcess(loop, PY, pyargs("import time; time.sleep(0.2)"))
    stats = loop.close()
    assert stats["handles_forgotten"] == 0  # closed by its cancel_request hook
    assert stats["handles_opened"] == stats["handles_closed"]
    deadline = time.monotonic() + 10
    while not _gone(proc.pid):
        assert time.monotonic() < deadline, "zombie left by UVLoop.close"
        time.sleep(0.01)


def test_many_spawns_keep_ids_and_fds_bounded(uvloop):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        proc = UVProcess(uvloop, b"true", [b"true"], stdio=[0, 1, 2], close_fds=True)
        run_until(uvloop, lambda p=proc: p.exited)
        assert proc.returncode == 0
        proc.close()
        settle(uvloop)
    assert len(uvloop.objects) < 10
    assert len(os.listdir("/proc/self/fd")) == before
