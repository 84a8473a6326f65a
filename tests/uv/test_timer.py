"""UVTimer (libuv's test-timer.c style: callbacks count, the test asserts)."""

from __future__ import annotations

import time

import pytest

from uvcffi._ffi import lib
from uvcffi._uv.loop import EV_CLOSED, EV_TIMER, RUN_NOWAIT
from uvcffi._uv.timer import UVTimer

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
# start_at: absolute due times on libuv's clock (the asyncio loop's deadline timer)
# ---------------------------------------------------------------------------------------


def test_libuv_clock_is_time_monotonic_in_ms(uvloop):
    # start_at relies on it: due times are computed from time.monotonic().
    uvloop.update_time()
    after = time.monotonic() * 1000.0
    now = uvloop.now()
    # libuv's (possibly coarse) clock never runs ahead of the precise one; the lower bound
    # is generous and only catches a different clock or unit.
    assert after - 1000.0 < now <= after + 1.0


def test_start_at_fires_at_the_due_time(uvloop):
    fired = []
    timer = UVTimer(uvloop, lambda: fired.append((uvloop.now(), time.monotonic())))
    uvloop.update_time()
    due = uvloop.now() + 100
    timer.start_at(due)
    assert uvloop.run(RUN_NOWAIT) == []  # not due yet
    run_until(uvloop, lambda: fired)
    assert len(fired) == 1
    uv_now, real = fired[0]
    assert uv_now >= due  # never early, by libuv's clock...
    assert real * 1000.0 >= due  # ...nor by the real one
    close_all(uvloop, timer)


def test_start_at_a_past_due_time_fires_at_once_and_rearms(uvloop):
    timer = UVTimer(uvloop, lambda: None)
    timer.start_at(0)  # long past
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, timer._id, 0, 0)]
    timer.start_at(uvloop.now())  # a fired one-shot timer is armed again
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, timer._id, 0, 0)]
    timer.start_at(uvloop.now() + 60_000)
    timer.start_at(0)  # re-arming an armed timer moves its due time
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_TIMER, timer._id, 0, 0)]
    close_all(uvloop, timer)


def test_start_at_orders_by_due_time(uvloop):
    order = []
    uvloop.update_time()
    base = uvloop.now()
    timers = []
    for name, offset in {"c": 30, "a": 10, "b": 20}.items():
        timer = UVTimer(uvloop, lambda name=name: order.append(name))
        timer.start_at(base + offset)
        timers.append(timer)
    run_until(uvloop, lambda: len(order) == 3)
    assert order == ["a", "b", "c"]
    close_all(uvloop, *timers)
