"""Name resolution on libuv's thread pool: ``getaddrinfo`` and ``getnameinfo``.

asyncio runs ``socket.getaddrinfo`` in the default executor; uvcffi hands the request to
libuv, whose thread pool runs the same libc call and reports completion as a loop event,
so no Python thread and no GIL hand-off is involved.  Results and errors have the shapes
of the ``socket`` module's: a list of ``(family, type, proto, canonname, sockaddr)`` with
enum members where the values are known, and ``socket.gaierror`` on failure.

Cancelling the awaiting task asks libuv to drop the request if no pool thread has taken
it yet; either way the request's completion event arrives and frees it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from .._uv.dns import UVGetAddrInfo, UVGetNameInfo
from .core import LoopCore


def _encode_host(host: Any) -> bytes | None:
    if host is None:
        return None
    if isinstance(host, str):
        try:
            return host.encode("ascii")
        except UnicodeEncodeError:
            return host.encode("idna")
    if isinstance(host, (bytes, bytearray)):
        return bytes(host)
    raise TypeError(f"getaddrinfo() argument 1 must be string or None, not {type(host).__name__}")


def _encode_port(port: Any) -> bytes | None:
    if port is None:
        return None
    if isinstance(port, int):
        return str(port).encode()
    if isinstance(port, str):
        return port.encode()
    if isinstance(port, (bytes, bytearray)):
        return bytes(port)
    raise OSError("Int or String expected")


def _deliver(fut: Any, result: Any) -> None:
    if fut.cancelled():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)


class DNSMixin(LoopCore):
    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, Any, int, str, tuple[Any, ...]]]:
        self._check_closed()
        node = _encode_host(host)
        service = _encode_port(port)
        fut = self.create_future()
        request = UVGetAddrInfo(
            self._uv, node, service, family, type, proto, flags,
            lambda result: _deliver(fut, result),
        )
        try:
            return await fut  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            request.cancel_request()
            raise

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        self._check_closed()
        if not isinstance(sockaddr, tuple):
            raise TypeError("getnameinfo() argument 1 must be a tuple")
        if len(sockaddr) == 2:
            host, port = sockaddr
            flowinfo, scope_id = 0, 0
        elif len(sockaddr) == 4:
            host, port, flowinfo, scope_id = sockaddr
        else:
            raise TypeError("getnameinfo(): illegal sockaddr argument")
        if not isinstance(host, str) or not isinstance(port, int):
            raise TypeError("getnameinfo(): illegal sockaddr argument")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        fut = self.create_future()
        request = UVGetNameInfo(
            self._uv, family, host, port, flowinfo, scope_id, flags,
            lambda result: _deliver(fut, result),
        )
        try:
            return await fut  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            request.cancel_request()
            raise
