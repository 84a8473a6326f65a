"""getaddrinfo and getnameinfo requests (``uv_getaddrinfo_t``, ``uv_getnameinfo_t``).

Both run the blocking libc call on libuv's thread pool (``UV_THREADPOOL_SIZE`` threads,
4 by default) and complete on the loop thread as one event.  A request has no close step:
the event is the last thing libuv says about it, so its id is released and its memory
freed as soon as the result has been read.

A request that has not reached a pool thread yet can be cancelled; it then completes with
``UV_ECANCELED``.  One already running cannot be interrupted, and completes normally.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Union

from .._errors import check, exception_for
from .._ffi import ffi, lib
from .loop import UVLoop

AddrInfo = tuple[Any, Any, int, str, tuple[Any, ...]]
Result = Union[BaseException, Any]

_AF_INET: int = lib.AF_INET
_AF_INET6: int = lib.AF_INET6
_HOSTLEN = 64  # > INET6_ADDRSTRLEN (46) with a %scope suffix


def _enum(value: int, enum_class: Any) -> Any:
    try:
        return enum_class(value)
    except ValueError:
        return value


def sockaddr_tuple(sa: Any) -> Any:
    """A ``struct sockaddr*`` as a socket-module address tuple (None if not IP)."""
    return _sockaddr_tuple(
        sa, ffi.new("char[]", _HOSTLEN), ffi.new("int*"), ffi.new("uint32_t*"),
        ffi.new("uint32_t*"),
    )


def _sockaddr_tuple(sa: Any, buf: Any, port: Any, flowinfo: Any, scope_id: Any) -> Any:
    family = lib.uvc_sockaddr_info(sa, buf, _HOSTLEN, port, flowinfo, scope_id)
    if family == _AF_INET:
        return ffi.string(buf).decode(), port[0]
    if family == _AF_INET6:
        return ffi.string(buf).decode(), port[0], flowinfo[0], scope_id[0]
    return None


class _Request:
    __slots__ = ("_uvloop", "_id", "_ptr", "_callback")

    def __init__(self, uvloop: UVLoop, callback: Callable[[Result], object]) -> None:
        self._uvloop = uvloop
        self._callback = callback
        self._ptr: Any = None
        self._id = uvloop.register(self)

    def _finish_init(self, ptr: Any, err: int) -> None:
        if ptr == ffi.NULL:
            self._uvloop.release(self._id)
            check(err)
            raise MemoryError
        self._ptr = ptr

    def cancel_request(self) -> None:
        """Ask libuv to drop the request if it has not started; the callback still runs."""
        if self._ptr is not None:
            lib.uvc_cancel(self._ptr)

    def _on_event(self, kind: int, status: int, b: int) -> None:
        ptr = self._ptr
        self._ptr = None
        self._uvloop.release(self._id)
        try:
            result: Result = exception_for(status) if status < 0 else self._read(ptr)
        finally:
            self._free(ptr)
        self._callback(result)

    def _read(self, ptr: Any) -> Any:
        raise NotImplementedError

    def _free(self, ptr: Any) -> None:
        raise NotImplementedError


class UVGetAddrInfo(_Request):
    """Resolve ``host``/``port``; ``callback`` gets a list of 5-tuples shaped like
    ``socket.getaddrinfo``'s, or the exception it would raise."""

    __slots__ = ()

    def __init__(
        self,
        uvloop: UVLoop,
        host: bytes | None,
        port: bytes | None,
        family: int,
        type: int,
        proto: int,
        flags: int,
        callback: Callable[[Result], object],
    ) -> None:
        super().__init__(uvloop, callback)
        err = ffi.new("int*")
        ptr = lib.uvc_getaddrinfo(
            uvloop.ptr,
            self._id,
            ffi.NULL if host is None else host,
            ffi.NULL if port is None else port,
            family,
            type,
            proto,
            flags,
            err,
        )
        self._finish_init(ptr, err[0])

    def _read(self, ptr: Any) -> list[AddrInfo]:
        out: list[AddrInfo] = []
        buf = ffi.new("char[]", _HOSTLEN)
        port = ffi.new("int*")
        flowinfo = ffi.new("uint32_t*")
        scope_id = ffi.new("uint32_t*")
        ai = lib.uvc_getaddrinfo_result(ptr)
        while ai != ffi.NULL:
            addr = _sockaddr_tuple(ai.ai_addr, buf, port, flowinfo, scope_id)
            if addr is not None:
                canon = ai.ai_canonname
                out.append((
                    _enum(ai.ai_family, socket.AddressFamily),
                    _enum(ai.ai_socktype, socket.SocketKind),
                    ai.ai_protocol,
                    ffi.string(canon).decode() if canon != ffi.NULL else "",
                    addr,
                ))
            ai = ai.ai_next
        return out

    def _free(self, ptr: Any) -> None:
        lib.uvc_getaddrinfo_free(ptr)


class UVGetNameInfo(_Request):
    """Reverse-resolve a numeric address; ``callback`` gets ``(host, service)``."""

    __slots__ = ()

    def __init__(
        self,
        uvloop: UVLoop,
        family: int,
        host: str,
        port: int,
        flowinfo: int,
        scope_id: int,
        flags: int,
        callback: Callable[[Result], object],
    ) -> None:
        storage = ffi.new("struct sockaddr_storage*")
        rc = lib.uvc_sockaddr_from(family, host.encode(), port, flowinfo, scope_id, storage)
        if rc < 0:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        super().__init__(uvloop, callback)
        err = ffi.new("int*")
        sa = ffi.cast("struct sockaddr*", storage)
        self._finish_init(lib.uvc_getnameinfo(uvloop.ptr, self._id, sa, flags, err), err[0])

    def _read(self, ptr: Any) -> tuple[str, str]:
        return (
            ffi.string(lib.uvc_getnameinfo_host(ptr)).decode(),
            ffi.string(lib.uvc_getnameinfo_service(ptr)).decode(),
        )

    def _free(self, ptr: Any) -> None:
        lib.uvc_getnameinfo_free(ptr)
