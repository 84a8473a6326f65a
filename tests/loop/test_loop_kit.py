"""Recycling a closed loop's libuv state for the next loop (uvcffi._loop.kit).

uvcffi-only: these tests look at which kit a loop got, because that reuse must never be
visible in what the loop does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import uvcffi
from uvcffi._loop import kit as kit_module


@pytest.fixture
def fresh_pool():
    """Start from an empty pool (kits made by earlier tests are closed, not leaked)."""
    while kit_module._pool:
        kit_module._pool.pop()._close()
    yield kit_module._pool
    while kit_module._pool:
        kit_module._pool.pop()._close()


async def _tick(seconds: float = 0.0) -> str:
    await asyncio.sleep(seconds)
    return "ok"


def test_next_loop_takes_the_closed_loops_kit(fresh_pool):
    first = uvcffi.new_event_loop()
    kit = first._kit
    assert first.run_until_complete(_tick()) == "ok"
    first.close()
    assert fresh_pool == [kit]
    second = uvcffi.new_event_loop()
    try:
        assert second._kit is kit
        assert fresh_pool == []
        assert second.run_until_complete(_tick(0.01)) == "ok"
    finally:
        second.close()


def test_closed_loop_cannot_reach_its_successor(fresh_pool):
    first = uvcffi.new_event_loop()
    fired: list[str] = []
    stale = first.call_later(10, fired.append, "stale")
    first.close()
    second = uvcffi.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="closed"):
            first.call_soon_threadsafe(fired.append, "late")
        with pytest.raises(RuntimeError, match="closed"):
            first.call_later(0, fired.append, "late")
        assert first._uv.closed and not second._uv.closed
        # A TimerHandle of the closed loop may share an id with a timer of the new one:
        # cancelling it must not disarm the new loop's timer.
        second.call_later(0.01, fired.append, "new")
        stale.cancel()
        second.run_until_complete(_tick(0.05))
        assert fired == ["new"]
    finally:
        second.close()


def test_reused_loop_has_a_fresh_clock(fresh_pool):
    uvcffi.new_event_loop().close()
    time.sleep(0.3)
    loop = uvcffi.new_event_loop()
    try:
        assert fresh_pool == []  # it did take the recycled kit
        # libuv's cached clock is what timers are armed against: 300 ms stale, every
        # timer would fire 300 ms late.
        assert abs(loop._uv.now() - time.monotonic() * 1000) < 100
    finally:
        loop.close()


def test_close_statistics_count_only_the_loops_own_handles(fresh_pool):
    for _ in range(2):  # a new kit, then a recycled one
        loop = uvcffi.new_event_loop()
        rsock, wsock = socket.socketpair()
        try:
            loop.add_reader(rsock, lambda: None)
            loop.call_later(10, lambda: None)
            loop.run_until_complete(_tick())
            assert loop._uv_handle_stats()["live"] == 1  # the reader
        finally:
            loop.close()
            rsock.close()
            wsock.close()
        stats = loop._uv_close_stats
        assert stats["handles_opened"] == stats["handles_closed"] >= 1
        assert stats["handles_forgotten"] == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signals_on_a_recycled_kit(fresh_pool):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    first = uvcffi.new_event_loop()
    kit = first._kit
    first.run_until_complete(_tick())
    # A signal byte that arrives once no loop runs belongs to nobody: the next owner of
    # the pipe must not see it as its own signal.
    os.write(kit.signal_wfd, bytes([signal.SIGUSR1]))
    first.close()
    second = uvcffi.new_event_loop()
    got: list[int] = []
    try:
        assert second._kit is kit
        second.add_signal_handler(signal.SIGUSR1, got.append, 1)
        second.run_until_complete(_tick(0.02))
        assert got == []
        os.kill(os.getpid(), signal.SIGUSR1)
        second.run_until_complete(_tick(0.05))
        assert got == [1]
    finally:
        second.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_loop_that_spawned_processes_is_recycled_quiet(fresh_pool):
    """libuv's SIGCHLD watcher stops with the last process handle; the kit then carries
    nothing of the processes, and the next loop spawns and reaps as a new one would."""
    loop = uvcffi.new_event_loop()
    kit = loop._kit

    async def spawn(code: str) -> int:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
        return await proc.wait()

    assert loop.run_until_complete(spawn("pass")) == 0
    loop.close()
    assert fresh_pool == [kit]
    stats = loop._uv_close_stats
    assert stats["handles_opened"] == stats["handles_closed"]
    # Children of the process that are none of the loop's business exit meanwhile.
    for _ in range(3):
        assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
    loop = uvcffi.new_event_loop()
    try:
        assert loop._kit is kit
        assert loop.run_until_complete(spawn("raise SystemExit(3)")) == 3
    finally:
        loop.close()


def test_pool_is_bounded_and_extra_kits_are_closed(fresh_pool):
    loops = [uvcffi.new_event_loop() for _ in range(kit_module.POOL_SIZE + 2)]
    kits = [loop._kit for loop in loops]
    for loop in loops:
        loop.close()
    assert fresh_pool == kits[: kit_module.POOL_SIZE]
    for kit in kits[kit_module.POOL_SIZE :]:
        assert kit.uv.closed
        for fd in (kit.signal_rfd, kit.signal_wfd):
            with pytest.raises(OSError):
                os.fstat(fd)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_use_the_parents_kits(fresh_pool):
    uvcffi.new_event_loop().close()
    parent_kit = fresh_pool[0]
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 1
        try:
            if kit_module._pool == []:
                loop = uvcffi.new_event_loop()
                try:
                    ok = loop._kit is not parent_kit and loop.run_until_complete(_tick(0.01))
                    code = 0 if ok == "ok" else 2
                finally:
                    loop.close()
            else:
                code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pooled kit is untouched by the child and still works.
    loop = uvcffi.new_event_loop()
    try:
        assert loop._kit is parent_kit
        assert loop.run_until_complete(_tick(0.01)) == "ok"
    finally:
        loop.close()


def test_threads_creating_loops_concurrently(fresh_pool):
    errors: list[BaseException] = []
    kits_seen: list[set[int]] = [set(), set()]

    def worker(index: int) -> None:
        try:
            for _ in range(100):
                loop = uvcffi.new_event_loop()
                try:
                    kits_seen[index].add(id(loop._kit))
                    # Two loops running at once must never share a kit.
                    assert loop._kit not in kit_module._pool
                    assert loop.run_until_complete(_tick()) == "ok"
                finally:
                    loop.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(fresh_pool) <= kit_module.POOL_SIZE + 1
