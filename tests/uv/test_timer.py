"""UVTimer and TimerPool (libuv's test-timer.c style: callbacks count, the test asserts)."""

from __future__ import annotations

import time

import pytest

from uvcffi._ffi import lib
from uvcffi._uv.loop import EV_CLOSED, EV_TIMER, RUN_NOWAIT
from uvcffi._uv.loop_watcher import UVIdle
from uvcffi._uv.timer import TimerPool, UVTimer

from .uvutil import close_all, dispatch, events_of, run_until

# ---------------------------------------------------------------------------------------
# UVTimer
# ---------------------------------------------------------------------------------------


def test_one_shot_timer_fires_once(uvloop):
    calls = []
    timer = UVTimer(uvloop, lambda: calls.append(uvloop.now()))
    start = uvloop.now()
    timer.start(10)
    assert timer.is_active()
    run_until(uvloop, lambda: calls)
    assert len(calls) == 1
    assert calls[0] - start >= 10  # libuv's own clock: never early
    assert not timer.is_active()
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 1
    close_all(uvloop, timer)


def test_timer_event_carries_the_handle_id(uvloop):
    timer = UVTimer(uvloop, lambda: None)
    timer.start(0)
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, timer._id, 0, 0)]
    close_all(uvloop, timer)


def test_repeating_timer_fires_until_stopped(uvloop):
    calls = []

    def on_timer():
        calls.append(1)
        if len(calls) == 3:
            timer.stop()

    timer = UVTimer(uvloop, on_timer)
    timer.start(1, 1)
    run_until(uvloop, lambda: len(calls) >= 3)
    assert not timer.is_active()
    # Keep the loop iterating for a while: a stopped timer never fires again.
    ticks = []
    pacer = UVTimer(uvloop, lambda: ticks.append(1))
    pacer.start(0, 1)
    run_until(uvloop, lambda: len(ticks) >= 5)
    assert len(calls) == 3
    close_all(uvloop, timer, pacer)


def test_timers_fire_in_due_order_then_start_order(uvloop):
    order = []
    late = UVTimer(uvloop, lambda: order.append("late"))
    first = UVTimer(uvloop, lambda: order.append("first"))
    second = UVTimer(uvloop, lambda: order.append("second"))
    late.start(30)
    first.start(1)
    second.start(1)
    run_until(uvloop, lambda: len(order) == 3)
    assert order == ["first", "second", "late"]
    close_all(uvloop, late, first, second)


def test_stopped_timer_does_not_fire(uvloop):
    calls = []
    timer = UVTimer(uvloop, lambda: calls.append(1))
    timer.start(0)
    timer.stop()
    assert not timer.is_active()
    assert uvloop.run(RUN_NOWAIT) == []
    timer.start(0)  # and can be started again
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1]
    close_all(uvloop, timer)


def test_restarting_replaces_the_due_time(uvloop):
    calls = []
    timer = UVTimer(uvloop, lambda: calls.append(1))
    timer.start(60_000)
    timer.start(0)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1]
    close_all(uvloop, timer)


def test_closed_timer_rejects_calls_and_closes_once(uvloop):
    timer = UVTimer(uvloop, lambda: None)
    timer.start(0)
    timer.close()
    timer.close()  # idempotent
    with pytest.raises(RuntimeError, match="UVTimer is closed"):
        timer.start(0)
    with pytest.raises(RuntimeError, match="UVTimer is closed"):
        timer.stop()
    # Closing an armed timer cancels it: only the CLOSED event arrives, once.
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_CLOSED, timer._id, lib.UV_TIMER, 0)]
    uvloop.release(timer._id)
    assert uvloop.run(RUN_NOWAIT) == []


# ---------------------------------------------------------------------------------------
# TimerPool
# ---------------------------------------------------------------------------------------


def test_pool_timer_event_carries_the_id_given_at_start(uvloop):
    pool = TimerPool(uvloop)
    owner = object()
    oid = uvloop.register(owner)
    ptr = pool.start(oid, 0)
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, oid, 0, 0)]
    uvloop.release(oid)
    pool.put(ptr)
    pool.clear()
    uvloop.run(RUN_NOWAIT)


def test_pool_reuses_fired_and_stopped_timers(uvloop):
    pool = TimerPool(uvloop)
    a = uvloop.register("a")
    ptr = pool.start(a, 0)
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, a, 0, 0)]
    uvloop.release(a)
    pool.put(ptr)  # fired one-shot timers are returned with put()

    b = uvloop.register("b")
    again = pool.start(b, 0)
    assert again == ptr  # the same uv_timer_t, re-armed
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, b, 0, 0)]
    uvloop.release(b)
    pool.put(again)

    c = uvloop.register("c")
    armed = pool.start(c, 60_000)
    assert armed == ptr
    pool.stop(armed)  # cancelled before firing: disarmed and kept
    assert uvloop.run(RUN_NOWAIT) == []
    uvloop.release(c)
    d = uvloop.register("d")
    assert pool.start(d, 0) == ptr
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, d, 0, 0)]
    uvloop.release(d)
    pool.put(ptr)

    # One libuv handle served all four owners.
    assert uvloop.counters()["handles_opened"] == 1
    pool.clear()
    uvloop.run(RUN_NOWAIT)
    assert uvloop.counters()["handles_closed"] == 1


def test_pool_keeps_at_most_max_free_and_closes_the_rest(uvloop):
    pool = TimerPool(uvloop, max_free=2)
    oids = [uvloop.register(i) for i in range(4)]
    ptrs = [pool.start(oid, 60_000) for oid in oids]
    assert len(set(ptrs)) == 4
    for ptr in ptrs:
        pool.stop(ptr)
    uvloop.run(RUN_NOWAIT)
    assert uvloop.counters()["handles_closed"] == 2  # the two the pool did not keep
    again = [pool.start(oids[0], 60_000), pool.start(oids[1], 60_000)]
    assert set(again) == set(ptrs[:2])
    assert uvloop.counters()["handles_opened"] == 4  # no new timer was needed
    for ptr in again:
        pool.stop(ptr)
    for oid in oids:
        uvloop.release(oid)
    pool.clear()
    uvloop.run(RUN_NOWAIT)
    assert uvloop.counters()["handles_closed"] == 4


def test_pool_clear_closes_every_kept_timer(uvloop):
    pool = TimerPool(uvloop)
    oids = [uvloop.register(i) for i in range(3)]
    ptrs = [pool.start(oid, 60_000) for oid in oids]
    for ptr in ptrs:
        pool.stop(ptr)
    for oid in oids:
        uvloop.release(oid)
    pool.clear()
    uvloop.run(RUN_NOWAIT)
    counters = uvloop.counters()
    assert counters["handles_opened"] == counters["handles_closed"] == 3


class Owner:
    """A registered owner for pool timers: records libuv's and the real clock at firing."""

    def __init__(self, uvloop):
        self.uvloop = uvloop
        self.fired = []

    def _on_event(self, kind, a, b):
        assert kind == EV_TIMER
        self.fired.append((self.uvloop.now(), time.monotonic()))


def test_libuv_clock_is_time_monotonic_in_ms(uvloop):
    # start_at relies on it: due times are computed from time.monotonic().
    uvloop.update_time()
    after = time.monotonic() * 1000.0
    now = uvloop.now()
    # libuv's (possibly coarse) clock never runs ahead of the precise one; the lower bound
    # is generous and only catches a different clock or unit.
    assert after - 1000.0 < now <= after + 1.0


def test_pool_start_at_fires_at_the_due_time(uvloop):
    pool = TimerPool(uvloop)
    owner = Owner(uvloop)
    oid = uvloop.register(owner)
    uvloop.update_time()
    due = uvloop.now() + 100
    ptr = pool.start_at(oid, due)
    assert uvloop.run(RUN_NOWAIT) == []  # not due yet
    run_until(uvloop, lambda: owner.fired)
    assert len(owner.fired) == 1
    uv_now, real = owner.fired[0]
    assert uv_now >= due  # never early, by libuv's clock...
    assert real * 1000.0 >= due  # ...nor by the real one
    uvloop.release(oid)
    pool.put(ptr)
    pool.clear()
    uvloop.run(RUN_NOWAIT)


def test_pool_start_at_a_past_due_time_fires_at_once(uvloop):
    pool = TimerPool(uvloop)
    owner = Owner(uvloop)
    oid = uvloop.register(owner)
    ptr = pool.start_at(oid, 0)  # long past
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, oid, 0, 0)]
    uvloop.release(oid)
    pool.put(ptr)
    # Re-armed from the pool under a new id, by absolute time.
    other = uvloop.register(Owner(uvloop))
    assert pool.start_at(other, uvloop.now()) == ptr
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, other, 0, 0)]
    uvloop.release(other)
    pool.put(ptr)
    pool.clear()
    uvloop.run(RUN_NOWAIT)


def test_pool_start_at_orders_by_due_time(uvloop):
    pool = TimerPool(uvloop)
    order = []

    class Named(Owner):
        def __init__(self, name):
            super().__init__(uvloop)
            self.name = name

        def _on_event(self, kind, a, b):
            order.append(self.name)

    uvloop.update_time()
    base = uvloop.now()
    names = {"c": 30, "a": 10, "b": 20}
    armed = []
    for name, offset in names.items():
        oid = uvloop.register(Named(name))
        armed.append((oid, pool.start_at(oid, base + offset)))
    run_until(uvloop, lambda: len(order) == 3)
    assert order == ["a", "b", "c"]
    for oid, ptr in armed:
        uvloop.release(oid)
        pool.put(ptr)
    pool.clear()
    uvloop.run(RUN_NOWAIT)


def test_pool_overflow_close_does_not_report_a_released_id(uvloop):
    pool = TimerPool(uvloop, max_free=0)
    oid = uvloop.register("first owner")
    ptr = pool.start(oid, 60_000)
    pool.stop(ptr)  # pool full (max_free=0): the timer is closed
    uvloop.release(oid)  # cancelled: the owner frees its id, as uvcffi.Loop does
    new_owner = UVIdle(uvloop, lambda: None)
    assert new_owner._id == oid  # the id has a new owner
    events = events_of(uvloop.run(RUN_NOWAIT))
    try:
        assert uvloop.counters()["handles_closed"] == 1
        # The pool's timer is disowned: its CLOSED event carries id 0, which no one owns.
        assert events == [(EV_CLOSED, 0, lib.UV_TIMER, 0)]
        dispatch(uvloop, [x for e in events for x in e])  # and is ignored
        assert uvloop.objects[oid] is new_owner
    finally:
        new_owner.close()
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))


def test_pool_clear_closes_disowned_timers(uvloop):
    pool = TimerPool(uvloop)
    owner = uvloop.register("owner")
    ptr = pool.start(owner, 0)
    uvloop.run(RUN_NOWAIT)
    uvloop.release(owner)
    pool.put(ptr)
    reused = UVIdle(uvloop, lambda: None)
    assert reused._id == owner
    pool.clear()
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_CLOSED, 0, lib.UV_TIMER, 0)]
    close_all(uvloop, reused)
