"""Timer handles (``uv_timer_t``).

libuv keeps timers in a C min-heap ordered by due time, then by start order, and runs
them after polling for I/O.  Two facts from libuv's docs shape how uvcffi uses them:
starting a timer does not update the loop's cached "now" (``uv_now``), and resolution is
one millisecond.

:class:`TimerPool` serves the asyncio loop, which arms one libuv timer per
``call_later``: pointers to stopped timers are kept and re-armed under a new id, so a
timer costs one C call to start and none to free.  :class:`UVTimer` is the general wrapper
(repeating timers, callbacks) for users of this layer.
"""

from __future__ import annotations

from typing import Any, Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop

# Re-armed timers are the hot path of call_later; these names skip two attribute lookups.
timer_start = lib.uvc_timer_start
timer_start_at = lib.uvc_timer_start_at
timer_stop = lib.uvc_timer_stop


class TimerPool:
    """Stopped ``uv_timer_t`` pointers ready for reuse, owned by one :class:`UVLoop`.

    The pointers are not registered objects: the id they carry is the id of whoever armed
    them last (the asyncio TimerHandle), passed to :meth:`start`.
    """

    __slots__ = ("_uvloop", "free", "max_free")

    def __init__(self, uvloop: UVLoop, max_free: int = 4096) -> None:
        self._uvloop = uvloop
        # Public for the asyncio loop's hot paths, which pop and append inline.
        self.free: list[Any] = []
        self.max_free = max_free

    def _take(self, oid: int) -> Any:
        if self.free:
            return self.free.pop()
        return self.new(oid)

    def new(self, oid: int) -> Any:
        """A new stopped timer (the pool was empty)."""
        err = ffi.new("int*")
        ptr = lib.uvc_timer_new(self._uvloop.ptr, oid, err)
        if ptr == ffi.NULL:
            check(err[0])
            raise MemoryError
        return ptr

    def start(self, oid: int, timeout_ms: int) -> Any:
        """Arm a timer that queues ``(TIMER, oid)`` after ``timeout_ms``; return it."""
        ptr = self._take(oid)
        check(timer_start(ptr, oid, timeout_ms, 0))
        return ptr

    def start_at(self, oid: int, due_ms: int) -> Any:
        """Arm a timer that queues ``(TIMER, oid)`` at ``due_ms`` on libuv's clock
        (milliseconds of CLOCK_MONOTONIC, as ``time.monotonic()``); return it."""
        ptr = self._take(oid)
        check(timer_start_at(ptr, oid, due_ms))
        return ptr

    def stop(self, ptr: Any) -> None:
        """Disarm a timer (cancelled before it fired) and keep it for reuse."""
        timer_stop(ptr)
        self.put(ptr)

    def put(self, ptr: Any) -> None:
        """Take back a stopped timer (one-shot timers are stopped when they fire)."""
        if len(self.free) < self.max_free:
            self.free.append(ptr)
        else:
            # The id it carries was its last owner's and may already be reused.
            lib.uvc_close_disowned(ptr)

    def clear(self) -> None:
        for ptr in self.free:
            lib.uvc_close_disowned(ptr)
        self.free.clear()


class UVTimer(UVHandle):
    """A libuv timer calling ``callback()`` after ``timeout`` ms, then every ``repeat``."""

    __slots__ = ("_callback",)

    def __init__(self, uvloop: UVLoop, callback: Callable[[], object]) -> None:
        super().__init__(uvloop)
        self._callback = callback
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_timer_new(loop_ptr, self._id, err), err[0])

    def start(self, timeout_ms: int, repeat_ms: int = 0) -> None:
        check(timer_start(self._ensure_alive(), self._id, timeout_ms, repeat_ms))

    def start_at(self, due_ms: int) -> None:
        """Fire once when libuv's clock reaches ``due_ms`` (milliseconds of CLOCK_MONOTONIC,
        as ``time.monotonic()``); re-arms a timer already started."""
        check(timer_start_at(self._ensure_alive(), self._id, due_ms))

    def stop(self) -> None:
        check(timer_stop(self._ensure_alive()))

    def _on_event(self, kind: int, a: int, b: int) -> None:
        self._callback()
