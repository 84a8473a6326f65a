"""A loop kept busy by callbacks still sees every kind of event promptly.

uvcffi skips libuv's poll in an iteration that has callbacks ready when libuv watches
nothing but the loop's own fds (the glue's ``uvc_run``, "Quiet iterations").  These tests
keep a loop busy with a ``call_soon`` chain -- the case where the skipping happens -- and
check, on both loops, that I/O, signals, threads, timers, DNS requests and child processes
are seen as soon as the stdlib loop sees them.  The last tests check that uvcffi really
skips, and stops skipping as soon as there is something to poll for.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable

import pytest

import uvcffi

# A busy chain that outlives this has missed an event.
CHAIN_SECONDS = 10.0


def busy_until(
    loop: Any, done: Callable[[], bool], step: Callable[[int], object] | None = None
) -> int:
    """Run a call_soon chain until ``done()``; return how many callbacks it took.

    ``step(i)`` runs in callback ``i`` before the check.  Fails if the chain runs for
    CHAIN_SECONDS without ``done()`` becoming true."""
    count = 0
    deadline = time.monotonic() + CHAIN_SECONDS
    timed_out = False

    def cb() -> None:
        nonlocal count, timed_out
        count += 1
        if step is not None:
            step(count)
        if done():
            loop.stop()
        elif time.monotonic() > deadline:
            timed_out = True
            loop.stop()
        else:
            loop.call_soon(cb)

    loop.call_soon(cb)
    loop.run_forever()
    assert not timed_out, f"the event was not seen in {count} busy iterations"
    return count


def test_reader_seen_within_two_iterations(loop: Any) -> None:
    a, b = socket.socketpair()
    seen: list[int] = []
    sent_at: list[int] = []
    try:
        loop.add_reader(a.fileno(), lambda: seen.append(len(a.recv(10))))

        def step(i: int) -> None:
            if i == 5:
                b.send(b"x")
                sent_at.append(i)

        count = busy_until(loop, lambda: bool(seen), step)
        loop.remove_reader(a.fileno())
    finally:
        a.close()
        b.close()
    assert seen == [1]
    assert count - sent_at[0] <= 2


@pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")
def test_signal_handler_runs_within_three_iterations(loop: Any) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("add_signal_handler needs the main thread")
    got: list[int] = []
    killed_at: list[int] = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, 1)
    try:

        def step(i: int) -> None:
            if i == 5:
                os.kill(os.getpid(), signal.SIGUSR1)
                killed_at.append(i)

        count = busy_until(loop, lambda: bool(got), step)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert got == [1]
    assert count - killed_at[0] <= 3


def test_threadsafe_callback_runs_while_busy(loop: Any) -> None:
    got: list[str] = []
    started = threading.Event()

    def other_thread() -> None:
        started.wait()
        loop.call_soon_threadsafe(got.append, "from thread")

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        busy_until(loop, lambda: bool(got), lambda i: started.set())
    finally:
        started.set()
        thread.join()
    assert got == ["from thread"]


def test_timer_fires_while_busy(loop: Any) -> None:
    fired: list[float] = []
    start = loop.time()
    loop.call_later(0.02, lambda: fired.append(loop.time()))
    busy_until(loop, lambda: bool(fired))
    assert fired[0] - start >= 0.02 - 0.001


def test_dns_request_completes_while_busy(loop: Any) -> None:
    fut = asyncio.ensure_future(
        loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM), loop=loop
    )
    busy_until(loop, fut.done)
    assert fut.result()[0][4] == ("127.0.0.1", 80)


@pytest.mark.skipif(sys.platform == "win32", reason="Unix processes")
def test_child_exit_seen_while_busy(loop: Any) -> None:
    async def spawn() -> Any:
        return await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")

    proc = loop.run_until_complete(spawn())
    waiter = asyncio.ensure_future(proc.wait(), loop=loop)
    busy_until(loop, waiter.done)
    assert waiter.result() == 0


# -- uvcffi's own behaviour: it really skips, and only when there is nothing to poll ------


@pytest.fixture
def uvloop_() -> Any:
    loop = uvcffi.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def _skipped(loop: Any) -> int:
    return loop._uv.polls_skipped  # type: ignore[no-any-return]


def busy_for(loop: Any, n: int) -> int:
    """A busy chain of ``n`` callbacks; returns how many NOWAIT polls uvcffi skipped."""
    before = loop._uv.polls_skipped
    ran = [0]
    busy_until(loop, lambda: ran[0] >= n, lambda i: ran.__setitem__(0, i))
    return loop._uv.polls_skipped - before  # type: ignore[no-any-return]


def test_busy_chain_alone_skips_polls(uvloop_: Any) -> None:
    # Every iteration but maybe the first (the kit's fresh state) is quiet.
    assert busy_for(uvloop_, 200) >= 199


def test_watched_fd_makes_every_iteration_poll(uvloop_: Any) -> None:
    a, b = socket.socketpair()
    try:
        uvloop_.add_reader(a.fileno(), lambda: None)
        assert busy_for(uvloop_, 200) == 0
        uvloop_.remove_reader(a.fileno())
        uvloop_.run_until_complete(asyncio.sleep(0))  # the poll handle's close callback
        assert busy_for(uvloop_, 200) >= 199
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")
def test_signal_handlers_make_every_iteration_poll(uvloop_: Any) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("add_signal_handler needs the main thread")
    uvloop_.add_signal_handler(signal.SIGUSR2, lambda: None)
    try:
        assert busy_for(uvloop_, 100) == 0
    finally:
        uvloop_.remove_signal_handler(signal.SIGUSR2)
    assert busy_for(uvloop_, 100) >= 99


def test_pending_timer_does_not_stop_skipping(uvloop_: Any) -> None:
    # The deadline timer is the loop's own: armed for a far timer, it is still quiet.
    handle = uvloop_.call_later(60, lambda: None)
    uvloop_.run_until_complete(asyncio.sleep(0.001))  # arms the deadline while blocking
    try:
        assert busy_for(uvloop_, 100) >= 99
    finally:
        handle.cancel()
