"""Signal handles (``uv_signal_t``).

libuv installs its own C-level signal handlers and reports signals as events on the loop
that watches them.  The asyncio loop does *not* use this: asyncio's contract is built on
Python's ``signal`` module (handlers registered there, ``signal.set_wakeup_fd``), and
mixing the two would fight over the process's signal dispositions.  This wrapper is for
users of the low-level layer.
"""

from __future__ import annotations

from typing import Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop


class UVSignal(UVHandle):
    __slots__ = ("_callback", "signum")

    def __init__(self, uvloop: UVLoop, callback: Callable[[int], object]) -> None:
        super().__init__(uvloop)
        self._callback = callback
        self.signum = 0
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_signal_new(loop_ptr, self._id, err), err[0])

    def start(self, signum: int) -> None:
        check(lib.uvc_signal_start(self._ensure_alive(), signum))
        self.signum = signum

    def stop(self) -> None:
        check(lib.uvc_signal_stop(self._ensure_alive()))

    def _on_event(self, kind: int, a: int, b: int) -> None:
        self._callback(a)
