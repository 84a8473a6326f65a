"""UDP handles (``uv_udp_t``).

Receiving: after :meth:`UVUDP.recv_start`, each datagram lands in the loop's read arena,
followed by a copy of the sender's ``struct sockaddr``, and arrives as one UDP_RECV event
(``glue/udp.c`` draws the layout).  :meth:`UVUDP._on_event` hands
``on_recv(data, addr, None)`` the bytes (copied once) and the sender as a socket-module
address tuple, or ``on_recv(None, None, exc)`` for a receive error (e.g.
ConnectionRefusedError on a connected socket after an ICMP port unreachable).  Empty
datagrams are delivered as ``b""``.  Sender addresses are decoded once per distinct
``sockaddr`` and cached: a peer that sends many datagrams costs a dictionary lookup.

Sending: :meth:`try_send` sends now from the caller's buffer, without a copy, and says
whether it could; :meth:`send` queues a copy, completed in order by UDP_SEND events as
``on_send(None)`` or ``on_send(exc)``.  A connected handle sends with no address; an
unconnected one needs an address made by this module's :func:`make_sockaddr`.

Sends carry the handle's own id: libuv completes every queued send (with UV_ECANCELED if
the handle is closed first) before the close callback, and the id is only released on
CLOSED, so no send event can outlive its handle's id.

:meth:`open` adopts an existing socket.  libuv's ``uv_udp_open`` sets SO_REUSEADDR on it;
the glue puts the option back as it was, so adopting a socket does not make its port
stealable.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

from .._errors import check, exception_for
from .._ffi import ffi, lib
from .dns import _HOSTLEN, _sockaddr_tuple
from .handle import UVHandle
from .loop import EV_UDP_RECV, EV_UDP_SEND, UVLoop
from .tcp import make_sockaddr as _make_storage

__all__ = ["IPV6ONLY", "REUSEADDR", "REUSEPORT", "UVUDP", "make_sockaddr"]

IPV6ONLY: int = lib.UV_UDP_IPV6ONLY
REUSEADDR: int = lib.UV_UDP_REUSEADDR
REUSEPORT: int = lib.UV_UDP_REUSEPORT

_UV_EAGAIN: int = lib.UV_EAGAIN
_NULL = ffi.NULL
_try_send = lib.uvc_udp_try_send
_send = lib.uvc_udp_send
_from_buffer = ffi.from_buffer
_cast = ffi.cast
_MAX_CACHED_ADDRESSES = 256
_SOCKADDR = ffi.typeof("struct sockaddr*")


def make_sockaddr(family: int, address: tuple[Any, ...]) -> Any:
    """A numeric (host, port[, flowinfo, scope_id]) as the ``struct sockaddr*`` that
    :meth:`UVUDP.try_send`, :meth:`UVUDP.send`, ``bind`` and ``connect`` take.

    The pointer keeps its storage alive (through the buffer it was made from), so an
    address kept by the caller costs no conversion per send."""
    return _from_buffer(_SOCKADDR, ffi.buffer(_make_storage(family, address)))


def _as_sockaddr(addr: Any) -> Any:
    return _NULL if addr is None else addr


class UVUDP(UVHandle):
    """Callbacks (set by the owner before use):

    * ``on_recv(data, addr, exc)``: a datagram (``bytes``, possibly empty) and its
      sender's address tuple with ``exc`` None, or ``(None, None, exc)`` for an error;
    * ``on_send(exc)``: one queued send finished; ``exc`` is None or the error.
    """

    __slots__ = (
        "on_recv",
        "on_send",
        "_arena_ptr",
        "_addresses",
        "_host",
        "_port",
        "_flowinfo",
        "_scope_id",
    )

    def __init__(self, uvloop: UVLoop, family: int = socket.AF_UNSPEC) -> None:
        super().__init__(uvloop)
        self.on_recv: Callable[[bytes | None, Any, BaseException | None], object] | None = None
        self.on_send: Callable[[BaseException | None], object] | None = None
        loop_ptr = self._register()
        self._arena_ptr: Any = lib.uvc_arena(loop_ptr)
        # Sender addresses already decoded: raw sockaddr bytes -> address tuple.
        self._addresses: dict[bytes, Any] = {}
        self._host = ffi.new("char[]", _HOSTLEN)
        self._port = ffi.new("int*")
        self._flowinfo = ffi.new("uint32_t*")
        self._scope_id = ffi.new("uint32_t*")
        err = ffi.new("int*")
        self._finish_init(lib.uvc_udp_new(loop_ptr, self._id, family, err), err[0])

    # -- events --------------------------------------------------------------------------

    def _on_event(self, kind: int, a: int, b: int) -> None:
        if kind == EV_UDP_RECV:
            if a < 0:
                self.on_recv(None, None, exception_for(a))  # type: ignore[misc]
                return
            offset = b & 0xFFFFFFFF
            addrlen = b >> 32
            # UVLoop.arena_bytes, inlined: this runs once per datagram, and the arena
            # view exists from the loop's first read on (which produced this event).
            uvloop = self._uvloop
            arena = uvloop._arena
            if arena is None:  # the loop's first read: arena_bytes makes the view
                data = uvloop.arena_bytes(offset, a)
                arena = uvloop._arena
            else:
                data = arena[offset : offset + a]
            if addrlen:
                at = offset + ((a + 7) & ~7)
                raw = arena[at : at + addrlen]
                addr = self._addresses.get(raw)
                if addr is None:
                    addr = self._decode(at, raw)
            else:
                addr = None
            self.on_recv(data, addr, None)  # type: ignore[misc]
        elif kind == EV_UDP_SEND:
            self.on_send(None if a == 0 else exception_for(a))  # type: ignore[misc]

    def _decode(self, at: int, raw: bytes) -> Any:
        sa = _cast("struct sockaddr*", self._arena_ptr + at)
        addr = _sockaddr_tuple(sa, self._host, self._port, self._flowinfo, self._scope_id)
        cache = self._addresses
        if len(cache) >= _MAX_CACHED_ADDRESSES:
            cache.clear()
        cache[raw] = addr
        return addr

    # -- set-up --------------------------------------------------------------------------

    def open(self, fd: int) -> None:
        """Adopt an existing datagram socket; libuv will close it with the handle."""
        check(lib.uvc_udp_open(self._ensure_alive(), fd))

    def bind(self, family: int, address: tuple[Any, ...], flags: int = 0) -> None:
        """Bind to a numeric address; flags: IPV6ONLY, REUSEADDR, REUSEPORT."""
        sa = _as_sockaddr(make_sockaddr(family, address))
        check(lib.uvc_udp_bind(self._ensure_alive(), sa, flags))

    def connect(self, family: int, address: tuple[Any, ...]) -> None:
        """Fix the peer: sends then take no address, and only its datagrams arrive."""
        sa = _as_sockaddr(make_sockaddr(family, address))
        check(lib.uvc_udp_connect(self._ensure_alive(), sa))

    def disconnect(self) -> None:
        check(lib.uvc_udp_connect(self._ensure_alive(), _NULL))

    def set_broadcast(self, on: bool) -> None:
        check(lib.uvc_udp_set_broadcast(self._ensure_alive(), 1 if on else 0))

    def set_ttl(self, ttl: int) -> None:
        check(lib.uvc_udp_set_ttl(self._ensure_alive(), ttl))

    # -- receiving -----------------------------------------------------------------------

    def recv_start(self) -> None:
        check(lib.uvc_udp_recv_start(self._ensure_alive()))

    def recv_stop(self) -> None:
        if self._ptr is not None:
            check(lib.uvc_udp_recv_stop(self._ptr))

    # -- sending -------------------------------------------------------------------------

    def try_send(self, data: Any, addr: Any = None) -> bool:
        """Send ``data`` now if the kernel takes it and nothing is queued; return whether
        it was sent.  ``addr`` is a :func:`make_sockaddr` result, None when connected."""
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError("UVUDP is closed")
        if type(data) is not bytes:
            data = _from_buffer(data)
        rc = _try_send(ptr, data, len(data), _NULL if addr is None else addr)
        if rc >= 0:
            return True
        if rc == _UV_EAGAIN:
            return False
        raise exception_for(rc)

    def send(self, data: Any, addr: Any = None) -> None:
        """Queue a copy of ``data``; ``on_send`` is called when it has been sent."""
        if type(data) is not bytes:
            data = _from_buffer(data)
        check(_send(self._ensure_alive(), self._id, data, len(data), _as_sockaddr(addr)))

    def send_queue_size(self) -> int:
        """Bytes queued by :meth:`send` and not sent yet."""
        ptr = self._ptr
        return 0 if ptr is None else lib.uvc_udp_send_queue_size(ptr)  # type: ignore[no-any-return]

    def send_queue_count(self) -> int:
        """Sends queued by :meth:`send` whose ``on_send`` has not been reported yet."""
        ptr = self._ptr
        return 0 if ptr is None else lib.uvc_udp_send_queue_count(ptr)  # type: ignore[no-any-return]

    # -- addresses -----------------------------------------------------------------------

    def getsockname(self) -> Any:
        storage = ffi.new("struct sockaddr_storage*")
        check(lib.uvc_udp_getsockname(self._ensure_alive(), storage))
        return self._to_tuple(storage)

    def getpeername(self) -> Any:
        storage = ffi.new("struct sockaddr_storage*")
        check(lib.uvc_udp_getpeername(self._ensure_alive(), storage))
        return self._to_tuple(storage)

    def _to_tuple(self, storage: Any) -> Any:
        sa = _cast("struct sockaddr*", storage)
        return _sockaddr_tuple(sa, self._host, self._port, self._flowinfo, self._scope_id)

    def fileno(self) -> int:
        return check(lib.uvc_fileno(self._ensure_alive()))
