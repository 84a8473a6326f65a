"""Timer handles (``uv_timer_t``).

libuv keeps timers in a C min-heap ordered by due time, then by start order, and runs
them after polling for I/O.  Two facts from libuv's docs shape how uvcffi uses them:
starting a timer does not update the loop's cached "now" (``uv_now``), and resolution is
one millisecond.

:class:`UVTimer` is the wrapper (one-shot or repeating, with a callback); the asyncio loop
uses one as its deadline timer, armed with :meth:`UVTimer.start_at` for the earliest
pending ``call_later`` (see ``uvcffi._loop.core``, "Timers").
"""

from __future__ import annotations

from typing import Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop

timer_start = lib.uvc_timer_start
timer_start_at = lib.uvc_timer_start_at
timer_stop = lib.uvc_timer_stop


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
