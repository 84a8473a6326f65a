"""Helpers shared by the libuv-layer tests: drive a UVLoop the way uvcffi's asyncio loop does."""

from __future__ import annotations

from typing import Any, Callable

from uvcffi._uv.loop import EV_CLOSED, EVENT_WIDTH, RUN_NOWAIT, RUN_ONCE, UVLoop
from uvcffi._uv.timer import UVTimer


def dispatch(uvloop: UVLoop, events: list[int]) -> None:
    """Deliver one batch as uvcffi's asyncio loop does: CLOSED frees the id; id 0 (a
    disowned handle closing, e.g. a pooled timer) belongs to no one and is skipped."""
    assert len(events) % EVENT_WIDTH == 0
    for i in range(0, len(events), EVENT_WIDTH):
        kind, oid, a, b = events[i : i + EVENT_WIDTH]
        if oid == 0:
            assert kind == EV_CLOSED, f"event {kind} with id 0"
            continue
        obj = uvloop.objects[oid]
        assert obj is not None, f"event {kind} for id {oid}, which has no owner"
        if kind == EV_CLOSED:
            uvloop.release(oid)
            obj._on_closed()
        else:
            obj._on_event(kind, a, b)


def events_of(events: list[int]) -> list[tuple[int, ...]]:
    return [tuple(events[i : i + EVENT_WIDTH]) for i in range(0, len(events), EVENT_WIDTH)]


def run_until(uvloop: UVLoop, done: Callable[[], Any], timeout_ms: int = 5000) -> None:
    """RUN_ONCE until done(); a watchdog timer makes a broken loop fail, not hang.

    One RUN_ONCE is not enough: libuv may return from it with no events (epoll_pwait
    interrupted, e.g. by io_uring task work), which is why this loops.
    """
    fired: list[bool] = []
    watchdog = UVTimer(uvloop, lambda: fired.append(True))
    watchdog.start(timeout_ms)
    try:
        while not done():
            assert not fired, f"timed out after {timeout_ms} ms"
            dispatch(uvloop, uvloop.run(RUN_ONCE))
    finally:
        watchdog.close()
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))


def close_all(uvloop: UVLoop, *handles: Any) -> None:
    for h in handles:
        h.close()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
