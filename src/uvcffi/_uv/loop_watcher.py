"""Idle, check and prepare handles: a callback once per loop iteration.

libuv runs prepare handles just before polling for I/O, check handles just after, and
idle handles at the start of each iteration; an active idle handle also makes the poll
non-blocking.  The three share one implementation in libuv (``loop-watcher.c``) and here.
"""

from __future__ import annotations

from typing import Any, Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop


class _UVLoopWatcher(UVHandle):
    __slots__ = ("_callback",)
    _new: Any
    _start: Any
    _stop: Any

    def __init__(self, uvloop: UVLoop, callback: Callable[[], object]) -> None:
        super().__init__(uvloop)
        self._callback = callback
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(type(self)._new(loop_ptr, self._id, err), err[0])

    def start(self) -> None:
        check(type(self)._start(self._ensure_alive()))

    def stop(self) -> None:
        check(type(self)._stop(self._ensure_alive()))

    def _on_event(self, kind: int, a: int, b: int) -> None:
        self._callback()


class UVIdle(_UVLoopWatcher):
    __slots__ = ()
    _new = lib.uvc_idle_new
    _start = lib.uvc_idle_start
    _stop = lib.uvc_idle_stop


class UVCheck(_UVLoopWatcher):
    __slots__ = ()
    _new = lib.uvc_check_new
    _start = lib.uvc_check_start
    _stop = lib.uvc_check_stop


class UVPrepare(_UVLoopWatcher):
    __slots__ = ()
    _new = lib.uvc_prepare_new
    _start = lib.uvc_prepare_start
    _stop = lib.uvc_prepare_stop
