"""TCP handles (``uv_tcp_t``)."""

from __future__ import annotations

import socket
from typing import Any

from .._errors import check
from .._ffi import ffi, lib
from .dns import sockaddr_tuple
from .loop import UVLoop
from .stream import UVStream

IPV6ONLY: int = lib.UV_TCP_IPV6ONLY
REUSEPORT: int = lib.UV_TCP_REUSEPORT


def make_sockaddr(family: int, address: tuple[Any, ...]) -> Any:
    """A ``struct sockaddr_storage*`` for a numeric (host, port[, flowinfo, scope_id])."""
    host, port = address[0], address[1]
    flowinfo = address[2] if len(address) > 2 else 0
    scope_id = address[3] if len(address) > 3 else 0
    storage = ffi.new("struct sockaddr_storage*")
    rc = lib.uvc_sockaddr_from(family, host.encode(), port, flowinfo, scope_id, storage)
    if rc < 0:
        raise OSError(f"invalid address for {socket.AddressFamily(family).name}: {address!r}")
    return storage


class UVTCP(UVStream):
    __slots__ = ()

    def __init__(self, uvloop: UVLoop, family: int = socket.AF_UNSPEC) -> None:
        super().__init__(uvloop)
        loop_ptr = self._register()
        err = ffi.new("int*")
        self._finish_init(lib.uvc_tcp_new(loop_ptr, self._id, family, err), err[0])

    def open(self, fd: int) -> None:
        """Adopt an existing socket; libuv will close it with the handle."""
        check(lib.uvc_tcp_open(self._ensure_alive(), fd))

    def bind(self, family: int, address: tuple[Any, ...], flags: int = 0) -> None:
        storage = make_sockaddr(family, address)
        check(lib.uvc_tcp_bind(self._ensure_alive(), ffi.cast("struct sockaddr*", storage), flags))

    def connect(self, family: int, address: tuple[Any, ...]) -> None:
        """Start connecting; ``on_connect(status)`` reports the outcome."""
        storage = make_sockaddr(family, address)
        sa = ffi.cast("struct sockaddr*", storage)
        check(lib.uvc_tcp_connect(self._ensure_alive(), self._id, sa))

    def nodelay(self, enable: bool) -> None:
        check(lib.uvc_tcp_nodelay(self._ensure_alive(), 1 if enable else 0))

    def getsockname(self) -> Any:
        storage = ffi.new("struct sockaddr_storage*")
        check(lib.uvc_tcp_getsockname(self._ensure_alive(), storage))
        return sockaddr_tuple(ffi.cast("struct sockaddr*", storage))

    def getpeername(self) -> Any:
        storage = ffi.new("struct sockaddr_storage*")
        check(lib.uvc_tcp_getpeername(self._ensure_alive(), storage))
        return sockaddr_tuple(ffi.cast("struct sockaddr*", storage))

    def close_reset(self) -> None:
        """Close with a RST (SO_LINGER 0) instead of a FIN."""
        ptr = self._ptr
        if ptr is not None:
            self._ptr = None
            if lib.uvc_tcp_close_reset(ptr) < 0:
                lib.uvc_close(ptr)
