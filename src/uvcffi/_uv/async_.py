"""Async handles (``uv_async_t``): waking the loop from another thread.

``uv_async_send`` is the one libuv call that is safe from any thread.  Sends that arrive
before the loop gets round to them coalesce into one event, so the event means "look at
your thread-safe queues", never "one item arrived".

The memory of a closed handle is freed by the loop thread, while another thread may be
about to send; :meth:`UVAsync.send` and :meth:`UVAsync.close` therefore share a lock, and a
send after close raises instead of touching freed memory.
"""

from __future__ import annotations

import threading
from typing import Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop


class UVAsync(UVHandle):
    __slots__ = ("_callback", "_lock")

    def __init__(self, uvloop: UVLoop, callback: Callable[[], object]) -> None:
        super().__init__(uvloop)
        self._callback = callback
        self._lock = threading.Lock()
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_async_new(loop_ptr, self._id, err), err[0])

    def send(self) -> None:
        """Wake the loop; callable from any thread."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise RuntimeError("UVAsync is closed")
            check(lib.uvc_async_send(ptr))

    def close(self) -> None:
        with self._lock:
            super().close()

    def _on_event(self, kind: int, a: int, b: int) -> None:
        self._callback()
