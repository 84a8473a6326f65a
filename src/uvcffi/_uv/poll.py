"""Poll handles (``uv_poll_t``): readiness of a file descriptor.

libuv allows only one poll handle per fd, so a user of this layer that wants both
readability and writability keeps one :class:`UVPoll` and changes its event mask.  The fd
must stay open while the handle is active: libuv cannot notice an fd closed behind its back
(epoll silently drops it), so owners stop or close the handle before closing the fd.
"""

from __future__ import annotations

from typing import Callable

from .._errors import check
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import UVLoop

READABLE: int = lib.UV_READABLE
WRITABLE: int = lib.UV_WRITABLE
DISCONNECT: int = lib.UV_DISCONNECT
PRIORITIZED: int = lib.UV_PRIORITIZED


class UVPoll(UVHandle):
    """Calls ``callback(status, events)``: status is 0 or a negative libuv error."""

    __slots__ = ("_callback", "fd", "events")

    def __init__(self, uvloop: UVLoop, fd: int, callback: Callable[[int, int], object]) -> None:
        super().__init__(uvloop)
        self._callback = callback
        self.fd = fd
        self.events = 0
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_poll_new(loop_ptr, fd, self._id, err), err[0])

    def start(self, events: int) -> None:
        check(lib.uvc_poll_start(self._ensure_alive(), events))
        self.events = events

    def stop(self) -> None:
        check(lib.uvc_poll_stop(self._ensure_alive()))
        self.events = 0

    def _on_event(self, kind: int, a: int, b: int) -> None:
        self._callback(a, b)
