"""The loop must not hold the GIL while it sleeps in uv_run (see build_ffi.py)."""

from __future__ import annotations

import asyncio
import threading
import time


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


def test_every_threadsafe_call_wakes_a_sleeping_loop(loop):
    # A thread calls in one callback at a time, each only after the loop has run the
    # previous one and gone back to sleep: every call must wake it.  (uvcffi sends one
    # wake-up per sleep; a flag left set from the last one would leave the loop asleep
    # here until the guard timer, and the count short.)
    rounds = 100
    ran = []
    done_one = threading.Event()

    def worker():
        for i in range(rounds):
            loop.call_soon_threadsafe(on_call, i)
            if not done_one.wait(5):
                return
            done_one.clear()
            time.sleep(0.001)  # let the loop go back to sleep
        loop.call_soon_threadsafe(loop.stop)

    def on_call(i):
        ran.append(i)
        done_one.set()

    t = threading.Thread(target=worker)
    guard = loop.call_later(30, loop.stop)
    t.start()
    loop.run_forever()
    guard.cancel()
    t.join()
    assert ran == list(range(rounds))


def test_threadsafe_calls_from_many_threads_all_run(loop):
    # Threads racing the loop as it goes to sleep and wakes up: nothing may be lost.
    threads, per_thread = 4, 2000
    seen = [0] * threads
    finished = loop.create_future()
    left = [threads * per_thread]

    def on_call(j, k):
        assert k == seen[j] + 1
        seen[j] = k
        left[0] -= 1
        if not left[0]:
            finished.set_result(None)

    def producer(j):
        for k in range(1, per_thread + 1):
            loop.call_soon_threadsafe(on_call, j, k)
            if k % 50 == 0:
                time.sleep(0.0005)  # let the loop drain the queue and sleep again

    async def main():
        ts = [threading.Thread(target=producer, args=(j,)) for j in range(threads)]
        for t in ts:
            t.start()
        try:
            await asyncio.wait_for(finished, 30)
        finally:
            for t in ts:
                t.join()

    loop.run_until_complete(main())
    assert seen == [per_thread] * threads
