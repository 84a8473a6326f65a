"""UVLoop: lifetime, the event queue, counters and the id registry (libuv's test-loop-*)."""

from __future__ import annotations

import time

import pytest

from uvcffi._ffi import lib
from uvcffi._uv.async_ import UVAsync
from uvcffi._uv.loop import (
    EV_CLOSED,
    EV_IDLE,
    EV_TIMER,
    RUN_DEFAULT,
    RUN_NOWAIT,
    RUN_ONCE,
    UVLoop,
)
from uvcffi._uv.loop_watcher import UVIdle
from uvcffi._uv.poll import UVPoll
from uvcffi._uv.timer import UVTimer

from .uvutil import dispatch, events_of


class TrackedTimer(UVTimer):
    """Counts _on_closed calls (the wrappers have __slots__; a subclass gets a __dict__)."""

    closed_calls = 0

    def _on_closed(self):
        self.closed_calls += 1


def test_create_and_close_an_empty_loop():
    uvloop = UVLoop()
    assert not uvloop.closed
    assert uvloop.ptr is not None
    assert uvloop.counters() == {
        "handles_opened": 0, "handles_closed": 0, "requests_started": 0, "requests_finished": 0,
    }
    stats = uvloop.close()
    assert stats == {
        "handles_opened": 0, "handles_closed": 0, "handles_forgotten": 0,
        "requests_started": 0, "requests_finished": 0,
    }
    assert uvloop.closed
    assert uvloop.ptr is None


def test_many_loops_are_independent():
    loops = [UVLoop() for _ in range(8)]
    timers = [UVTimer(loop, lambda: None) for loop in loops[::2]]
    for loop, timer in zip(loops[::2], timers):
        timer.start(0)
        assert events_of(loop.run(RUN_NOWAIT)) == [(EV_TIMER, timer._id, 0, 0)]
    for loop in loops[1::2]:
        assert loop.run(RUN_NOWAIT) == []
    for timer in timers:
        timer.close()
    for loop in loops:
        assert loop.close()["handles_forgotten"] == 0


@pytest.mark.parametrize("mode", [RUN_NOWAIT, RUN_ONCE, RUN_DEFAULT])
def test_run_on_an_empty_loop_returns_no_events_at_once(mode):
    # With nothing referenced, libuv's loop is not alive: no mode may block.
    uvloop = UVLoop()
    t0 = time.monotonic()
    assert uvloop.run(mode) == []
    assert uvloop.run(mode) == []
    assert time.monotonic() - t0 < 5.0
    uvloop.close()


def test_unreferenced_handles_do_not_keep_the_loop_alive():
    uvloop = UVLoop()
    calls = []
    wake = UVAsync(uvloop, lambda: calls.append("async"))
    wake.unref()
    # If unref() did not work, RUN_ONCE would wait for the watchdog timer below, which is
    # itself unreferenced, so that it cannot keep a correct loop alive.
    watchdog = UVTimer(uvloop, lambda: calls.append("watchdog"))
    watchdog.start(3000)
    watchdog.unref()
    dispatch(uvloop, uvloop.run(RUN_ONCE))
    assert calls == []
    wake.ref()
    wake.send()
    deadline = time.monotonic() + 5.0
    while not calls and time.monotonic() < deadline:
        dispatch(uvloop, uvloop.run(RUN_ONCE))  # may return early without events: loop
    assert calls == ["async"]
    wake.close()
    watchdog.close()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert uvloop.close()["handles_forgotten"] == 0


def test_counters_track_handles_opened_and_closed():
    uvloop = UVLoop()
    timer = UVTimer(uvloop, lambda: None)
    idle = UVIdle(uvloop, lambda: None)
    async_ = UVAsync(uvloop, lambda: None)
    counters = uvloop.counters()
    assert (counters["handles_opened"], counters["handles_closed"]) == (3, 0)

    timer.close()
    # Closed, but libuv has not run the close callback yet.
    assert uvloop.counters()["handles_closed"] == 0
    events = uvloop.run(RUN_NOWAIT)
    assert events_of(events) == [(EV_CLOSED, timer._id, lib.UV_TIMER, 0)]
    dispatch(uvloop, events)
    assert uvloop.counters()["handles_closed"] == 1

    idle.close()
    assert not async_.closed
    stats = uvloop.close()  # async_ is still open: the loop closes it and counts it
    assert stats == {
        "handles_opened": 3, "handles_closed": 3, "handles_forgotten": 1,
        "requests_started": 0, "requests_finished": 0,
    }


def test_closed_event_reports_the_handle_type():
    uvloop = UVLoop()
    handles = [UVTimer(uvloop, lambda: None), UVIdle(uvloop, lambda: None),
               UVAsync(uvloop, lambda: None)]
    expected = {h._id: t for h, t in zip(handles, (lib.UV_TIMER, lib.UV_IDLE, lib.UV_ASYNC))}
    for h in handles:
        h.close()
    events = events_of(uvloop.run(RUN_NOWAIT))
    assert sorted((oid, a) for kind, oid, a, b in events if kind == EV_CLOSED) == sorted(
        expected.items()
    )
    assert len(events) == 3
    uvloop.close()


def test_close_twice_raises():
    uvloop = UVLoop()
    uvloop.close()
    with pytest.raises(RuntimeError, match="already closed"):
        uvloop.close()


def test_new_handle_on_a_closed_loop_raises():
    uvloop = UVLoop()
    uvloop.close()
    with pytest.raises(RuntimeError, match="closed"):
        UVTimer(uvloop, lambda: None)


def test_ids_start_at_one_and_are_distinct():
    uvloop = UVLoop()
    handles = [UVIdle(uvloop, lambda: None) for _ in range(5)]
    ids = [h._id for h in handles]
    assert 0 not in ids
    assert len(set(ids)) == 5
    assert all(uvloop.objects[h._id] is h for h in handles)
    for h in handles:
        h.close()
    uvloop.close()


def test_id_of_a_closed_handle_is_reused_only_after_its_closed_event():
    uvloop = UVLoop()
    first = TrackedTimer(uvloop, lambda: None)
    old_id = first._id
    first.close()
    assert first.closed
    # Closed, but libuv may still report it: its id must not have a new owner yet.
    second = UVTimer(uvloop, lambda: None)
    assert second._id != old_id
    assert uvloop.objects[old_id] is first

    events = uvloop.run(RUN_NOWAIT)
    assert events_of(events) == [(EV_CLOSED, old_id, lib.UV_TIMER, 0)]
    dispatch(uvloop, events)
    assert first.closed_calls == 1
    assert uvloop.objects[old_id] is None

    third = UVTimer(uvloop, lambda: None)
    assert third._id == old_id
    assert uvloop.objects[old_id] is third
    second.close()
    third.close()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert uvloop.close()["handles_forgotten"] == 0


def test_failed_handle_creation_releases_its_id():
    uvloop = UVLoop()
    with pytest.raises(OSError):
        UVPoll(uvloop, -1, lambda status, events: None)  # EBADF from uv_poll_init
    assert uvloop.counters()["handles_opened"] == 0
    assert uvloop.objects == [None, None]
    assert uvloop.free_ids == [1]
    timer = UVTimer(uvloop, lambda: None)
    assert timer._id == 1
    timer.close()
    assert uvloop.close()["handles_forgotten"] == 0


def test_events_are_a_flat_list_of_ints_in_libuv_order():
    uvloop = UVLoop()
    idle = UVIdle(uvloop, lambda: None)
    timer = UVTimer(uvloop, lambda: None)
    idle.start()
    timer.start(0)
    events = uvloop.run(RUN_NOWAIT)
    assert all(type(x) is int for x in events)
    # libuv runs idle handles at the start of an iteration and due timers at its end.
    assert events_of(events) == [(EV_IDLE, idle._id, 0, 0), (EV_TIMER, timer._id, 0, 0)]
    idle.close()
    timer.close()
    uvloop.close()


def test_now_is_cached_until_update_time():
    uvloop = UVLoop()
    t0 = uvloop.now()
    assert isinstance(t0, int) and t0 >= 0
    time.sleep(0.05)
    assert uvloop.now() == t0  # cached: nothing ran
    uvloop.update_time()
    t1 = uvloop.now()
    # 50 ms passed; libuv's coarse clock may lag it by a tick, never by 40 ms, and the
    # upper bound only catches a wrong unit (seconds vs. ms vs. ns).
    assert 40 <= t1 - t0 < 60_000
    uvloop.close()


def test_run_updates_now():
    uvloop = UVLoop()
    idle = UVIdle(uvloop, lambda: None)
    idle.start()  # an active handle, so that run() performs an iteration
    t0 = uvloop.now()
    time.sleep(0.05)
    uvloop.run(RUN_NOWAIT)
    assert uvloop.now() - t0 >= 40
    idle.close()
    uvloop.close()


def test_handles_left_open_are_marked_closed_by_loop_close():
    uvloop = UVLoop()
    timer = UVTimer(uvloop, lambda: None)
    async_ = UVAsync(uvloop, lambda: None)
    assert uvloop.close()["handles_forgotten"] == 2
    # The glue freed them: the wrappers must know, and refuse instead of touching memory.
    assert timer.closed and async_.closed
    assert not timer.is_active()
    with pytest.raises(RuntimeError, match="UVTimer is closed"):
        timer.start(0)
    with pytest.raises(RuntimeError, match="closed"):
        async_.send()
    timer.close()  # a no-op, as for any closed handle
    async_.close()
