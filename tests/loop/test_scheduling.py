"""call_soon, call_later/call_at, cancellation, ordering, time: run on both loops."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time

import pytest

import uvcffi
from conftest import skip_oracle_if


def test_call_soon_runs_in_fifo_order_with_args(loop):
    seen = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 2, 3, 4]


def test_callbacks_scheduled_by_callbacks_run_next_iteration(loop):
    seen = []

    def first():
        seen.append("first")
        loop.call_soon(seen.append, "scheduled-by-first")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # stop() ends the loop after the current batch, which did not include the new one.
    assert seen == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["first", "second", "scheduled-by-first"]


def test_call_soon_returns_cancellable_handle(loop):
    seen = []
    handle = loop.call_soon(seen.append, "x")
    assert isinstance(handle, asyncio.Handle)
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == []


def test_call_soon_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in-ctx")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["in-ctx", "default"]


def test_call_later_orders_by_deadline(loop):
    seen = []
    loop.call_later(0.03, seen.append, 3)
    loop.call_later(0.01, seen.append, 1)
    loop.call_later(0.02, seen.append, 2)
    loop.call_later(0.04, loop.stop)
    loop.run_forever()
    assert seen == [1, 2, 3]


def test_timers_with_equal_deadline_all_run(loop):
    # asyncio documents the order of callbacks due at exactly the same time as undefined.
    seen = []
    when = loop.time() + 0.01
    for i in range(20):
        loop.call_at(when, seen.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert sorted(seen) == list(range(20))


def test_timer_never_runs_before_its_deadline(loop):
    late = []

    def check(when):
        late.append(loop.time() - when)

    for i in range(50):
        delay = (i % 7) * 0.0013
        h = loop.call_later(delay, lambda: None)
        loop.call_at(h.when(), check, h.when())
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert len(late) == 50
    assert min(late) >= 0.0


def test_call_later_timing(loop):
    t0 = loop.time()
    fired = []
    loop.call_later(0.1, lambda: (fired.append(loop.time()), loop.stop()))
    loop.run_forever()
    assert fired and 0.1 <= fired[0] - t0 < 1.0


def test_call_at_and_when(loop):
    when = loop.time() + 0.01
    handle = loop.call_at(when, loop.stop)
    assert isinstance(handle, asyncio.TimerHandle)
    assert handle.when() == when
    loop.run_forever()
    assert loop.time() >= when


def test_cancelled_timer_does_not_run(loop):
    seen = []
    h = loop.call_later(0.01, seen.append, "cancelled")
    loop.call_later(0.01, seen.append, "kept")
    h.cancel()
    h.cancel()  # twice is fine
    assert h.cancelled()
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert seen == ["kept"]


def test_timer_cancelled_by_earlier_callback_in_same_iteration(loop):
    seen = []
    when = loop.time() + 0.01
    victim = None

    def killer():
        seen.append("killer")
        victim.cancel()

    loop.call_at(when, killer)
    victim = loop.call_at(when, seen.append, "victim")
    loop.call_at(when + 0.02, loop.stop)
    loop.run_forever()
    assert seen == ["killer"]


def test_many_timers_scheduled_and_cancelled(loop):
    seen = []
    handles = [loop.call_later(0.001 * (i % 10), seen.append, i) for i in range(2000)]
    for h in handles[::2]:
        h.cancel()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert sorted(seen) == list(range(1, 2000, 2))


def test_many_timers_fire_in_two_waves(loop):
    seen = []
    n = 10_000
    for i in range(n):
        loop.call_later(0.001 * (i % 5), seen.append, i)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    for i in range(n):
        loop.call_later(0, seen.append, n + i)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert sorted(seen) == list(range(2 * n))


def test_earlier_timer_added_while_a_later_one_waits_wakes_the_loop(loop):
    # The loop sleeps until its earliest deadline; a timer scheduled later for an earlier
    # time must move that deadline (uvcffi re-arms its one libuv timer).
    loop.call_later(30, lambda: None).cancel()
    late = loop.call_later(30, lambda: None)

    async def main():
        fut = loop.create_future()
        await asyncio.sleep(0.01)  # the loop has slept with the 30 s deadline armed
        loop.call_later(0.02, fut.set_result, "early")
        return await asyncio.wait_for(fut, 5)

    try:
        assert loop.run_until_complete(main()) == "early"
    finally:
        late.cancel()


def test_cancelling_the_earliest_timer_keeps_the_next_one(loop):
    seen = []

    async def main():
        first = loop.call_later(0.03, seen.append, "first")
        loop.call_later(0.06, seen.append, "second")
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.1)

    loop.run_until_complete(main())
    assert seen == ["second"]


def test_timer_handles_keep_asyncio_semantics(loop):
    h = loop.call_later(10, print)
    assert isinstance(h, asyncio.TimerHandle)
    assert h.when() == pytest.approx(loop.time() + 10, abs=1)
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()
    h.cancel()  # twice is harmless
    assert "cancelled" in repr(h)


def test_equal_deadlines_run_in_scheduling_order(loop):
    skip_oracle_if(loop, True, "asyncio's heap does not order timers with equal deadlines")
    when = loop.time() + 0.01
    seen = []
    for i in range(50):
        loop.call_at(when, seen.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert seen == list(range(50))


def test_shared_deadline_skips_cancelled_timers_and_keeps_order(loop):
    # Timers at one exact deadline share an entry in uvcffi's timer table; cancelling
    # some of them must drop just those.  The plain int deadline shares with the float.
    when = int(loop.time()) + 1
    seen = []
    handles = [loop.call_at(float(when) if i % 2 else when, seen.append, i) for i in range(6)]
    handles[1].cancel()
    handles[4].cancel()
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert sorted(seen) == [0, 2, 3, 5]
    if isinstance(loop, uvcffi.Loop):
        assert seen == [0, 2, 3, 5]
        assert loop._timer_cancelled_count == 0
        assert loop._pending_timers() == []


class _UnhashableDeadline(float):
    """A number that compares like a float but cannot be hashed (as a 0-d numpy array)."""

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other):
        return _UnhashableDeadline(float(self) + other)


def test_call_at_accepts_an_unhashable_deadline(loop):
    seen = []
    when = _UnhashableDeadline(loop.time() + 0.005)
    handle = loop.call_at(when, seen.append, "due")
    assert handle.when() is when
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert seen == ["due"]


def test_call_later_on_a_clock_of_unhashable_numbers(loop):
    # loop.time() + delay is the deadline; a clock of the loop's own may make it unhashable.
    loop.time = lambda: _UnhashableDeadline(time.monotonic())
    seen = []
    handle = loop.call_later(0.005, seen.append, "due")
    assert isinstance(handle.when(), _UnhashableDeadline)
    loop.call_later(0.015, loop.stop)
    loop.run_forever()
    assert seen == ["due"]


def test_sweep_keeps_the_live_timers_of_a_shared_deadline(loop):
    skip_oracle_if(loop, True, "looks at uvcffi's timer table")
    when = loop.time() + 0.02
    seen = []
    handles = [loop.call_at(when, seen.append, i) for i in range(300)]
    lone = loop.call_at(when + 3600, print)
    for h in handles[::3] + handles[1::3]:
        h.cancel()
    lone.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()  # 201 of 301 cancelled: this iteration sweeps them
    assert loop._timer_cancelled_count == 0
    assert len(loop._pending_timers()) == 100
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert seen == list(range(2, 300, 3))


def test_a_wholly_cancelled_shared_deadline_is_dropped_before_sleeping(loop):
    skip_oracle_if(loop, True, "looks at uvcffi's timer table")
    when = loop.time() + 0.005
    fired = []
    handles = [loop.call_at(when, fired.append, i) for i in range(3)]
    for h in handles:
        h.cancel()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert fired == []
    assert loop._timer_cancelled_count == 0
    assert loop._pending_timers() == []


def test_cancelled_timers_do_not_pile_up(loop):
    skip_oracle_if(loop, True, "looks at uvcffi's timer heap")
    # Long timeouts cancelled early (most wait_for timeouts) must not stay in the heap.
    handles = [loop.call_later(3600, print) for _ in range(1000)]
    for h in handles[:990]:
        h.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration sweeps them
    assert len(loop._pending_timers()) == 10
    assert loop._timer_cancelled_count == 0
    for h in handles[990:995]:
        h.cancel()  # too few to sweep: counted, and skipped when they come up
    loop.call_soon(loop.stop)
    loop.run_forever()
    pending = loop._pending_timers()
    assert len(pending) == 10
    assert loop._timer_cancelled_count == sum(t.cancelled() for t in pending) == 5
    for h in handles[995:]:
        h.cancel()


def test_zero_and_negative_delays_run_next_iteration(loop):
    seen = []
    loop.call_later(0, seen.append, "zero")
    loop.call_later(-1, seen.append, "negative")
    loop.call_at(loop.time() - 10, seen.append, "past")
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert sorted(seen) == ["negative", "past", "zero"]


def test_far_future_timer_can_be_cancelled(loop):
    h = loop.call_later(10**9, lambda: None)
    h2 = loop.call_later(float("inf"), lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    h.cancel()
    h2.cancel()


def test_none_delay_or_when_is_type_error(loop):
    skip_oracle_if(loop, sys.version_info < (3, 10), "no None check before 3.10")
    with pytest.raises(TypeError):
        loop.call_later(None, lambda: None)
    with pytest.raises(TypeError):
        loop.call_at(None, lambda: None)


def test_time_is_monotonic_clock(loop):
    a = loop.time()
    b = time.monotonic()
    c = loop.time()
    assert a <= b <= c


def test_call_soon_threadsafe_wakes_sleeping_loop(loop):
    seen = []

    def from_thread():
        time.sleep(0.05)
        loop.call_soon_threadsafe(lambda: (seen.append(threading.get_ident()), loop.stop()))

    t = threading.Thread(target=from_thread)
    t.start()
    # Nothing else is scheduled: the loop sleeps until the thread wakes it.
    loop.run_forever()
    t.join()
    assert seen == [threading.get_ident()]


def test_call_soon_threadsafe_from_many_threads_loses_nothing(loop):
    n_threads, per_thread = 4, 500
    count = [0]
    done = threading.Event()

    def bump():
        count[0] += 1
        if count[0] == n_threads * per_thread:
            loop.stop()

    def worker():
        done.wait()
        for _ in range(per_thread):
            loop.call_soon_threadsafe(bump)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    loop.call_soon(done.set)
    loop.run_forever()
    for t in threads:
        t.join()
    assert count[0] == n_threads * per_thread


def test_stop_before_run_forever_runs_one_iteration(loop):
    seen = []
    loop.call_soon(seen.append, 1)
    loop.stop()
    loop.run_forever()
    assert seen == [1]
    # The loop can run again afterwards.
    loop.call_soon(seen.append, 2)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [1, 2]


def test_run_until_complete_returns_result_and_raises_exception(loop):
    async def ok():
        await asyncio.sleep(0)
        return "result"

    async def bad():
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == "result"
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(bad())


def test_run_until_complete_with_future_from_other_loop_fails(loop):
    other = asyncio.new_event_loop()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_run_until_complete_stopped_early(loop):
    async def forever():
        await asyncio.sleep(10)

    loop.call_soon(loop.stop)
    task = loop.create_task(forever())
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
        loop.run_until_complete(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)


def test_is_running_and_nested_run_refused(loop):
    # CPython 3.13.0's own loop forgets that it runs once a nested run_forever() has been
    # refused, so the nested run_until_complete below would really run (and hang).
    skip_oracle_if(loop, sys.version_info[:3] == (3, 13, 0),
                   "3.13.0 resets its running state after refusing a nested run_forever()")
    states = []

    async def inner():
        states.append(loop.is_running())
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_until_complete(coro)
        coro.close()

    assert not loop.is_running()
    loop.run_until_complete(inner())
    assert states == [True]
    assert not loop.is_running()


def test_running_another_loop_inside_a_running_loop_refused(loop_factory):
    outer = asyncio.new_event_loop()
    inner = loop_factory()
    try:

        async def main():
            with pytest.raises(RuntimeError, match="another loop is running"):
                inner.run_forever()

        outer.run_until_complete(main())
    finally:
        inner.close()
        outer.close()


def test_get_running_loop_inside_callbacks(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [loop]
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_create_task_and_future_belong_to_loop(loop):
    async def coro():
        return 1

    fut = loop.create_future()
    task = loop.create_task(coro(), name="named")
    assert asyncio.isfuture(fut) and fut.get_loop() is loop
    assert task.get_name() == "named"
    assert loop.run_until_complete(task) == 1


def test_create_task_rejects_non_coroutine(loop):
    with pytest.raises(TypeError):
        loop.create_task(lambda: None)


def test_task_factory(loop):
    calls = []

    def factory(loop_, coro, **kwargs):
        calls.append(kwargs)
        return asyncio.Task(coro, loop=loop_, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def coro():
        return "ok"

    task = loop.create_task(coro(), name="via-factory")
    assert isinstance(task, asyncio.Task)
    assert task.get_name() == "via-factory"
    assert loop.run_until_complete(task) == "ok"
    assert len(calls) == 1
    loop.set_task_factory(None)
    with pytest.raises(TypeError):
        loop.set_task_factory(1)


def test_task_context_argument(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11), "create_task(context=) is new in 3.11")
    var = contextvars.ContextVar("var")
    ctx = contextvars.Context()
    ctx.run(var.set, "task-ctx")

    async def read():
        return var.get("missing")

    assert loop.run_until_complete(loop.create_task(read(), context=ctx)) == "task-ctx"
    assert loop.run_until_complete(loop.create_task(read())) == "missing"


def test_debug_switched_on_while_a_task_step_is_queued(loop, caplog):
    # A task queued on the ready deque without a Handle (uvcffi, debug off) and run once
    # debug mode is on: a slow step is reported as the task, like any slow step.
    import logging

    async def slow():
        time.sleep(0.06)

    loop.slow_callback_duration = 0.05

    async def main():
        task = loop.create_task(slow())
        loop.set_debug(True)
        await task

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(main())
    loop.set_debug(False)
    assert any("Executing <Task" in r.getMessage() for r in caplog.records)


def test_timer_set_after_a_long_callback_is_not_late(loop):
    # libuv measures sleeps from the time it cached at its last iteration; a callback that
    # blocked for 0.3 s must not make a 10 ms timer it starts wait 0.3 s longer.
    done = loop.create_future()

    def blocker():
        time.sleep(0.3)
        start = loop.time()
        loop.call_later(0.01, lambda: done.set_result(loop.time() - start))

    loop.call_soon(blocker)
    late = loop.run_until_complete(asyncio.wait_for(done, 5))
    assert 0.01 <= late < 0.2


def test_loop_time_is_the_monotonic_clock(loop):
    before = time.monotonic()
    now = loop.time()
    assert before <= now <= time.monotonic()


def test_subclass_time_override_is_kept(loop_factory):
    base = loop_factory()
    base.close()

    class FakeClock(type(base)):
        def time(self):
            return 12345.0

    loop = FakeClock()
    try:
        assert loop.time() == 12345.0
    finally:
        loop.close()


def test_timers_follow_an_overridden_time(loop_factory):
    # call_later and call_at use loop.time()'s reference, as asyncio documents: a loop
    # whose time() is a clock of its own (a test's virtual clock) fires timers by it.
    base = loop_factory()
    base.close()

    class Clocked(type(base)):
        fake = 1000.0

        def time(self):
            return self.fake

    loop = Clocked()
    fired = []
    steps = []

    def step(i):
        # Real time passes between steps; only the fake clock decides what is due.
        steps.append((i, list(fired)))
        if i == 20:
            loop.fake = 1003.0
        elif i == 40:
            loop.fake = 1006.0
        if i < 60:
            loop.call_soon(step, i + 1)
        else:
            loop.stop()

    try:
        later = loop.call_later(5, fired.append, "later")
        at = loop.call_at(1002, fired.append, "at")
        assert later.when() == 1005.0 and at.when() == 1002.0
        loop.call_soon(step, 0)
        loop.run_forever()
    finally:
        loop.close()
    assert fired == ["at", "later"]
    before = dict(steps)
    assert before[20] == []  # nothing is due before the fake clock moves
    assert before[40] == ["at"]
    assert before[60] == ["at", "later"]


def test_sleeping_loop_wakes_for_a_timer_by_an_offset_clock(loop_factory):
    # The loop sleeps until the next timer is due by loop.time(), whatever its origin.
    base = loop_factory()
    base.close()

    class Offset(type(base)):
        def time(self):
            return time.monotonic() + 1_000_000.0

    loop = Offset()
    try:
        start = time.monotonic()
        loop.call_later(0.05, loop.stop)
        # A failure, not a hang, if the loop sleeps by the wrong clock: a thread stops it
        # (a guard timer would be armed by that same clock).
        guard = threading.Timer(10, loop.call_soon_threadsafe, (loop.stop,))
        guard.start()
        loop.run_forever()
        elapsed = time.monotonic() - start
        guard.cancel()
        guard.join()
    finally:
        loop.close()
    assert 0.05 - 0.001 <= elapsed < 5
