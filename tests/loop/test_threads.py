"""The loop must not hold the GIL while it sleeps in uv_run (see build_ffi.py)."""

from __future__ import annotations

import asyncio
import threading


def test_other_threads_run_while_loop_waits(loop):
    # If uv_run slept in epoll holding the GIL, this thread could not run during the
    # sleep: its counter would barely move (a few thousand steps before the loop got to
    # epoll_wait) instead of millions.
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    async def sleep_and_count():
        start = count[0]
        await asyncio.sleep(0.5)
        return count[0] - start

    t = threading.Thread(target=spin)
    t.start()
    try:
        during_sleep = loop.run_until_complete(sleep_and_count())
    finally:
        stop.set()
        t.join()
    assert during_sleep > 1_000_000, during_sleep


def test_thread_blocked_on_lock_released_by_loop_callback(loop):
    # A worker waits for the loop to release a lock while the loop idles in uv_run.
    lock = threading.Lock()
    lock.acquire()
    got = []

    def worker():
        got.append(lock.acquire(timeout=5))
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=worker)
    t.start()
    loop.call_later(0.05, lock.release)
    guard = loop.call_later(10, loop.stop)  # a failure, not a hang
    loop.run_forever()
    guard.cancel()
    t.join()
    assert got == [True]
