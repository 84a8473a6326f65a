"""Pipe handles (``uv_pipe_t``): Unix domain sockets, pipes and FIFOs."""

from __future__ import annotations

import os
from typing import Union

from .._errors import check
from .._ffi import ffi, lib
from .loop import UVLoop
from .stream import UVStream

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _name(path: PathLike) -> bytes:
    name = os.fsencode(path)
    return name


class UVPipe(UVStream):
    __slots__ = ()

    def __init__(self, uvloop: UVLoop, ipc: bool = False) -> None:
        super().__init__(uvloop)
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_pipe_new(loop_ptr, self._id, 1 if ipc else 0, err), err[0])

    def open(self, fd: int) -> None:
        """Adopt an existing pipe or socket fd; libuv will close it with the handle."""
        check(lib.uvc_pipe_open(self._ensure_alive(), fd))

    def bind(self, path: PathLike) -> None:
        name = _name(path)
        check(lib.uvc_pipe_bind(self._ensure_alive(), name, len(name)))

    def connect(self, path: PathLike) -> None:
        """Start connecting; ``on_connect(status)`` reports the outcome."""
        name = _name(path)
        check(lib.uvc_pipe_connect(self._ensure_alive(), self._id, name, len(name)))
