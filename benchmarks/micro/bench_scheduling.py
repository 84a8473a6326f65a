"""Scheduling through the public API: call_soon, timers, call_soon_threadsafe.

Each round schedules a batch of BATCH operations and then runs the loop until they are all
done, through ``run_forever`` (a loop cannot be stepped from outside through the public
API).  The per-op figure is the round's time / BATCH; it includes 1/BATCH of one
``run_forever``/``stop``, which ``bench_run_forever_stop`` measures alone.  Every round
checks that exactly the expected callbacks ran.
"""

from __future__ import annotations

import pytest

from ._util import BATCH, per_op, run_once


@pytest.mark.benchmark(group="overhead: run_forever + stop (per round)")
def bench_run_forever_stop(benchmark, loop):
    """The fixed cost in every batched round below: one iteration, then stop."""
    ran = []

    def body():
        ran.clear()
        loop.call_soon(ran.append, None)
        run_once(loop)
        assert ran == [None]

    per_op(benchmark, 1)
    benchmark(body)


@pytest.mark.benchmark(group="call_soon + callback runs")
def bench_call_soon(benchmark, loop):
    count = [0]

    def callback():
        count[0] += 1

    def body():
        count[0] = 0
        call_soon = loop.call_soon
        for _ in range(BATCH):
            call_soon(callback)
        run_once(loop)
        assert count[0] == BATCH

    per_op(benchmark, BATCH)
    benchmark(body)


@pytest.mark.benchmark(group="call_soon_threadsafe + callback runs (same thread)")
def bench_call_soon_threadsafe(benchmark, loop):
    """The call's own cost, wake-up signal included, made from the loop's thread.

    Every call signals the loop (asyncio writes a byte to its self-pipe, uvloop and
    uvcffi call uv_async_send); cross-thread latency is not measured here, because on a
    busy 2-core machine it would mostly measure the GIL's switch interval.
    """
    count = [0]

    def callback():
        count[0] += 1

    def body():
        count[0] = 0
        call_soon_threadsafe = loop.call_soon_threadsafe
        for _ in range(BATCH):
            call_soon_threadsafe(callback)
        run_once(loop)
        assert count[0] == BATCH

    per_op(benchmark, BATCH)
    benchmark(body)


@pytest.mark.benchmark(group="call_later + cancel (timer start/stop)")
def bench_call_later_cancel(benchmark, loop):
    """Arm a timer an hour away and cancel it; the loop then runs one iteration.

    The iteration matters: asyncio removes cancelled timers from its heap lazily, inside
    the loop's iteration, so without it the heap would only grow and the cost of that
    cleanup would be left out.
    """
    fired = [0]

    def callback():
        fired[0] += 1

    def body():
        call_later = loop.call_later
        for _ in range(BATCH):
            timer = call_later(3600.0, callback)
            timer.cancel()
        assert timer.cancelled() and timer.when() > loop.time() + 3000.0
        run_once(loop)
        assert fired[0] == 0

    per_op(benchmark, BATCH)
    benchmark(body)


@pytest.mark.benchmark(group="call_later(0) + timer fires")
def bench_call_later_fire(benchmark, loop):
    """Arm BATCH timers due now and run the loop until every one has fired.

    libuv keeps due times in whole milliseconds, so on uvloop and uvcffi a round may also
    wait for the next millisecond (at most 1 us per timer of the batch).
    """
    fired = [0]

    def callback():
        fired[0] += 1
        if fired[0] == BATCH:
            loop.stop()

    def body():
        fired[0] = 0
        call_later = loop.call_later
        for _ in range(BATCH):
            call_later(0, callback)
        # A loop that lost a timer would otherwise run forever: fail after 10 s instead.
        guard = call_later(10.0, loop.stop)
        loop.run_forever()
        guard.cancel()
        assert fired[0] == BATCH

    per_op(benchmark, BATCH)
    benchmark(body)
