"""UVAsync: waking the loop from another thread (libuv's test-async.c)."""

from __future__ import annotations

import threading
import time

import pytest

from uvcffi._uv.async_ import UVAsync
from uvcffi._uv.loop import EV_ASYNC, RUN_NOWAIT, RUN_ONCE
from uvcffi._uv.timer import UVTimer

from .uvutil import close_all, dispatch, events_of, run_until


def test_send_from_another_thread_wakes_run_once(uvloop):
    calls = []
    wake = UVAsync(uvloop, lambda: calls.append(threading.get_ident()))
    started = threading.Event()

    def sender():
        started.wait()
        time.sleep(0.05)  # let the main thread block in uv_run first
        wake.send()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        started.set()
        # Blocks in uv_run (the GIL released) until the send; if the send did not wake
        # the loop, or the sender could not run, the watchdog fails the test.
        run_until(uvloop, lambda: calls)
    finally:
        thread.join(10)
    assert calls == [threading.get_ident()]  # the callback runs on the loop thread
    close_all(uvloop, wake)


def test_run_once_releases_the_gil_while_it_waits(uvloop):
    # Another Python thread keeps running while the main thread sleeps in uv_run.
    wakes, progress = [], []
    wake = UVAsync(uvloop, lambda: wakes.append(1))

    def worker():
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            progress.append(1)
            time.sleep(0.001)
        wake.send()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        run_until(uvloop, lambda: wakes)
    finally:
        thread.join(10)
    # With the GIL held in uv_run the worker would stall at its first sleep until the
    # watchdog (5 s) ended uv_run, and run_until would have failed; here it kept going.
    assert len(progress) >= 2
    close_all(uvloop, wake)


def test_sends_before_the_loop_runs_coalesce(uvloop):
    calls = []
    wake = UVAsync(uvloop, lambda: calls.append(1))
    for _ in range(10):
        wake.send()
    events = uvloop.run(RUN_NOWAIT)
    assert events_of(events) == [(EV_ASYNC, wake._id, 0, 0)]  # one event for ten sends
    dispatch(uvloop, events)
    assert calls == [1]
    assert uvloop.run(RUN_NOWAIT) == []  # the pending flag was consumed
    wake.send()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1, 1]
    close_all(uvloop, wake)


def test_sends_from_many_threads_coalesce(uvloop):
    calls = []
    wake = UVAsync(uvloop, lambda: calls.append(1))

    def sender():
        for _ in range(200):
            wake.send()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1]
    close_all(uvloop, wake)


def test_each_handle_gets_its_own_event(uvloop):
    calls = []
    first = UVAsync(uvloop, lambda: calls.append("first"))
    second = UVAsync(uvloop, lambda: calls.append("second"))
    second.send()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == ["second"]
    first.send()
    second.send()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert sorted(calls) == ["first", "second", "second"]
    close_all(uvloop, first, second)


def test_send_after_close_raises_runtime_error(uvloop):
    wake = UVAsync(uvloop, lambda: None)
    wake.close()
    with pytest.raises(RuntimeError, match="closed"):
        wake.send()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))  # the CLOSED event: memory freed now
    with pytest.raises(RuntimeError, match="closed"):
        wake.send()
    wake.close()  # closing again is a no-op


def test_close_while_another_thread_sends(uvloop):
    # The lock between send() and close() means a racing sender sees RuntimeError, never
    # freed memory.
    calls = []
    wake = UVAsync(uvloop, lambda: calls.append(1))
    sent_once = threading.Event()
    outcome = []

    def sender():
        n = 0
        try:
            while True:
                wake.send()
                n += 1
                sent_once.set()
        except RuntimeError as exc:
            outcome.append((n, exc))
        except BaseException as exc:  # pragma: no cover - reported below
            outcome.append((n, exc))

    thread = threading.Thread(target=sender)
    thread.start()
    assert sent_once.wait(10)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    wake.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    n, exc = outcome[0]
    assert n >= 1 and isinstance(exc, RuntimeError), outcome
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1]  # sends after the first dispatch were cancelled by close


def test_referenced_async_handle_keeps_run_once_waiting(uvloop):
    wake = UVAsync(uvloop, lambda: None)
    watchdog_calls = []
    watchdog = UVTimer(uvloop, lambda: watchdog_calls.append(1))
    watchdog.start(50)
    watchdog.unref()  # the watchdog alone would not keep the loop alive
    # Referenced, the async handle keeps RUN_ONCE waiting, here until the watchdog; if it
    # did not, RUN_ONCE would return at once, every time, and the timer never fire.
    deadline = time.monotonic() + 5.0
    while not watchdog_calls and time.monotonic() < deadline:
        dispatch(uvloop, uvloop.run(RUN_ONCE))
    assert watchdog_calls == [1]
    assert wake.is_active()
    close_all(uvloop, wake, watchdog)
