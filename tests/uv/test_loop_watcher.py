"""Idle, check and prepare handles: once per loop iteration while started (test-idle.c,
test-loop-handles.c)."""

from __future__ import annotations

import time

import pytest

from uvcffi._ffi import lib
from uvcffi._uv.loop import (
    EV_CHECK,
    EV_CLOSED,
    EV_IDLE,
    EV_PREPARE,
    RUN_NOWAIT,
    RUN_ONCE,
)
from uvcffi._uv.loop_watcher import UVCheck, UVIdle, UVPrepare
from uvcffi._uv.timer import UVTimer

from .uvutil import close_all, dispatch, events_of

WATCHERS = [UVIdle, UVCheck, UVPrepare]
KIND = {UVIdle: EV_IDLE, UVCheck: EV_CHECK, UVPrepare: EV_PREPARE}
UV_TYPE = {UVIdle: lib.UV_IDLE, UVCheck: lib.UV_CHECK, UVPrepare: lib.UV_PREPARE}


@pytest.mark.parametrize("cls", WATCHERS, ids=lambda c: c.__name__)
def test_fires_once_per_iteration_while_started(uvloop, cls):
    calls = []
    watcher = cls(uvloop, lambda: calls.append(1))
    assert not watcher.is_active()
    watcher.start()
    assert watcher.is_active()
    for i in range(1, 6):
        events = uvloop.run(RUN_NOWAIT)
        assert events_of(events) == [(KIND[cls], watcher._id, 0, 0)]
        dispatch(uvloop, events)
        assert len(calls) == i
    close_all(uvloop, watcher)


@pytest.mark.parametrize("cls", WATCHERS, ids=lambda c: c.__name__)
def test_does_not_fire_after_stop(uvloop, cls):
    calls, iterations = [], []
    watcher = cls(uvloop, lambda: calls.append(1))
    # A second, independent watcher keeps the loop iterating after the first stops.
    pacer = UVIdle(uvloop, lambda: iterations.append(1))
    pacer.start()
    watcher.start()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    watcher.stop()
    assert not watcher.is_active()
    for _ in range(5):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert (len(calls), len(iterations)) == (1, 6)
    watcher.start()  # and it can be started again
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 2
    close_all(uvloop, watcher, pacer)


@pytest.mark.parametrize("cls", WATCHERS, ids=lambda c: c.__name__)
def test_stop_from_its_own_callback(uvloop, cls):
    calls = []

    def callback():
        calls.append(1)
        if len(calls) == 3:
            watcher.stop()

    watcher = cls(uvloop, callback)
    pacer = UVIdle(uvloop, lambda: None)
    pacer.start()
    watcher.start()
    for _ in range(10):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 3
    close_all(uvloop, watcher, pacer)


@pytest.mark.parametrize("cls", WATCHERS, ids=lambda c: c.__name__)
def test_start_and_stop_are_idempotent(uvloop, cls):
    calls = []
    watcher = cls(uvloop, lambda: calls.append(1))
    watcher.start()
    watcher.start()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [1]
    watcher.stop()
    watcher.stop()
    assert uvloop.run(RUN_NOWAIT) == []
    close_all(uvloop, watcher)


@pytest.mark.parametrize("cls", WATCHERS, ids=lambda c: c.__name__)
def test_close_reports_the_handle_type_and_rejects_calls(uvloop, cls):
    watcher = cls(uvloop, lambda: None)
    watcher.start()
    watcher.close()
    assert watcher.closed and not watcher.is_active()
    with pytest.raises(RuntimeError, match=f"{cls.__name__} is closed"):
        watcher.start()
    with pytest.raises(RuntimeError, match=f"{cls.__name__} is closed"):
        watcher.stop()
    # A handle closed while started delivers no more events, only CLOSED.
    events = uvloop.run(RUN_NOWAIT)
    assert events_of(events) == [(EV_CLOSED, watcher._id, UV_TYPE[cls], 0)]
    dispatch(uvloop, events)


def test_phases_run_idle_then_prepare_then_check(uvloop):
    order = []
    check = UVCheck(uvloop, lambda: order.append("check"))
    prepare = UVPrepare(uvloop, lambda: order.append("prepare"))
    idle = UVIdle(uvloop, lambda: order.append("idle"))
    for h in (check, prepare, idle):
        h.start()
    for _ in range(2):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert order == ["idle", "prepare", "check"] * 2
    close_all(uvloop, check, prepare, idle)


def test_many_watchers_of_one_kind_fire_each_iteration(uvloop):
    counts = [0] * 10

    def make(i):
        def callback():
            counts[i] += 1

        return callback

    watchers = [UVCheck(uvloop, make(i)) for i in range(10)]
    for w in watchers:
        w.start()
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert counts == [3] * 10
    close_all(uvloop, *watchers)


def test_active_idle_makes_run_once_not_block(uvloop):
    calls = []
    idle = UVIdle(uvloop, lambda: calls.append(1))
    # Without the idle handle RUN_ONCE would sleep until this timer (30 s).
    timer = UVTimer(uvloop, lambda: calls.append("timer"))
    timer.start(30_000)
    idle.start()
    t0 = time.monotonic()
    dispatch(uvloop, uvloop.run(RUN_ONCE))
    assert time.monotonic() - t0 < 10.0
    assert calls == [1]
    close_all(uvloop, idle, timer)
