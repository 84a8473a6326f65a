"""UDP: ``create_datagram_endpoint`` and its DatagramTransport, on ``uv_udp_t``.

The endpoint
------------
``create_datagram_endpoint`` follows asyncio's documented behaviour (Python 3.11's
signature: ``reuse_address`` is gone, so passing it is a TypeError): the same argument
checks and messages, numeric addresses used as they are and names resolved through
``self.getaddrinfo`` (libuv's thread pool), one socket tried per ``(family, proto)`` that
both addresses resolved to, the first error raised if none works.  Sockets are made,
configured (SO_REUSEPORT, SO_BROADCAST), bound and connected with the ``socket`` module,
as asyncio does -- a UDP ``connect`` never blocks -- and only then handed to libuv.

The transport over libuv (AF_INET, AF_INET6)
--------------------------------------------
The socket's fd is adopted by a ``uv_udp_t`` (:class:`~uvcffi._uv.udp.UVUDP`), which owns
it from then on: the Python socket object (the one behind ``get_extra_info('socket')``,
possibly the caller's ``sock=``) is detached when the handle closes -- or when the loop
closes with the endpoint still open -- so the fd is closed exactly once, by libuv.

Receiving: libuv reads every datagram into the loop's arena during ``uv_run``; the
``_uv`` layer copies it out with its sender's address (which travels in the arena right
after the data) while the batch is dispatched.  No user code may run then, so the
datagram is appended to ``_incoming`` and the transport's one delivery item (made on the
first datagram, see ``DeliveryMixin`` in stream_transport.py) is queued to call
``datagram_received`` (or ``error_received`` for a receive error, e.g.
ConnectionRefusedError once an ICMP port unreachable came back on a connected socket) for
everything that arrived in the batch, in order.  Nothing is delivered once ``close()`` or
``abort()`` was called.

Sending: ``sendto`` tries ``uv_udp_try_send`` first, from the caller's buffer; only if the
kernel would block (or sends are already queued, which libuv then insists on, keeping the
order) is a copy queued with ``uv_udp_send``.  Queued datagrams count towards the write
buffer size with their 8-byte UDP header, as in Python 3.13, and drive
``pause_writing``/``resume_writing`` at the high and low water marks.  Errors of a send
(synchronous or reported by a completion) go to ``error_received``.  As in 3.13, an empty
``sendto`` sends an empty datagram.  After the connection is lost, ``sendto`` drops its
data (warning after a few tries, as asyncio does for connected transports) whether the
transport is connected or not: there is no socket left to try.

Closing: ``close`` stops receiving and calls ``connection_lost(None)`` once libuv's queue
of sends is empty; ``abort`` closes the handle at once (libuv cancels the queued sends)
and calls ``connection_lost(None)``.  The libuv handle is closed after
``connection_lost`` has returned, so the socket is still usable inside it.

AF_UNIX datagram sockets
------------------------
libuv's UDP handle does not report the length of a sender's address, so Linux's abstract
Unix addresses cannot be decoded exactly.  Unix datagram endpoints therefore use a small
readiness-based transport instead: a ``uv_poll_t`` watches the socket, and the socket
module's ``recvfrom``/``sendto`` do the I/O, as in asyncio's selector loop.  It shares
the protocol, flow control and closing logic above.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import os
import socket
import stat
import sys
from asyncio import trsock
from typing import Any, Callable

from .._uv.poll import READABLE, WRITABLE, UVPoll
from .._uv.udp import UVUDP, make_sockaddr
from .core import LoopCore
from .flowcontrol import FlowControl
from .handles import Handle
from .stream_transport import DeliveryMixin

logger = logging.getLogger("asyncio")

# After this many sendto() calls on a lost connection, warn (as asyncio does).
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
# Each queued datagram counts its UDP header towards the write buffer (Python 3.13).
_HEADER_SIZE = 8
_HAS_IPV6 = hasattr(socket, "AF_INET6")
_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6) if _HAS_IPV6 else (socket.AF_INET,)
_MAX_CACHED_DESTINATIONS = 256
# 3.13 reworded the sock= type check and let every non-stream socket through (gh-114887).
_PY313 = sys.version_info >= (3, 13)
_UNSET: Any = object()
# Host names the socket module gives a meaning of its own: (IPv4, IPv6) equivalents.
_SPECIAL_HOSTS = {"": ("0.0.0.0", "::"), "<broadcast>": ("255.255.255.255", "<broadcast>")}
# The poll-based transport reads at most this many datagrams per readiness event.
_POLL_READS_PER_EVENT = 32


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not "
            "implemented."
        ) from None


def _numeric_addrinfo(host: Any, port: Any, family: int, proto: int) -> Any:
    """The getaddrinfo entry for a host that is already an IP address, else None."""
    if host is None or proto not in (0, socket.IPPROTO_UDP):
        return None
    if port is None or port == "" or port == b"":
        port = 0
    else:
        try:
            port = int(port)  # a service name ("domain") needs getaddrinfo
        except (TypeError, ValueError):
            return None
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str) or "%" in host:  # Linux's inet_pton refuses zone ids
        return None
    for af in _IP_FAMILIES if family == socket.AF_UNSPEC else (family,):
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        address = (host, port, 0, 0) if af == getattr(socket, "AF_INET6", None) else (host, port)
        return (af, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", address)
    return None


# ---------------------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------------------


class _DatagramTransport(DeliveryMixin, FlowControl, asyncio.DatagramTransport):
    """What both datagram transports share: protocol calls, flow control, closing.

    Subclasses provide the I/O: ``_start_reading``, ``_stop_reading``, ``_send_now``
    (send at once or return False), ``_enqueue`` (queue a copy), ``_pending`` (sends are
    queued), ``_drop_queue`` (abort) and ``_close_handle``.
    """

    def __init__(
        self, loop: Any, sock: socket.socket, protocol: Any, address: Any, waiter: Any
    ) -> None:
        extra: dict[str, Any] = {"socket": trsock.TransportSocket(sock)}
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None
        super().__init__(extra)
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._sock_fd = sock.fileno()
        self._family = sock.family
        self._protocol: Any = protocol
        self._protocol_connected = True
        self._address = address
        self._connected = extra["peername"] is not None
        self._closing = False
        self._conn_lost = 0
        self._buffer_size = 0
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        # Received datagrams (data, addr) and errors (None, exc) not delivered yet.
        self._incoming: collections.deque[tuple[Any, Any]] = collections.deque()
        self._delivery_queued = False
        # Deliveries run in a copy of the context current now (DeliveryMixin).
        self._read_context = contextvars.copy_context()
        self._deliver_handle: Handle | None = None
        self._delivery: Any = None

    def _announce(self, waiter: Any) -> None:
        loop = self._loop
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)  # only once connection_made() has run
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        info.append(f"write=<bufsize={self._buffer_size}>")
        return "<{}>".format(" ".join(info))

    # -- protocol ------------------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    # -- receiving (the subclass feeds _received during dispatch) -------------------------

    def _received(self, item: tuple[Any, Any]) -> None:
        """Called while a batch is dispatched: queue, don't deliver."""
        if self._closing:
            return
        self._incoming.append(item)
        if not self._delivery_queued:
            self._queue_delivery()

    def _deliver(self) -> None:
        self._delivery_queued = False
        incoming = self._incoming
        popleft = incoming.popleft
        while incoming:
            if self._closing:
                incoming.clear()
                return
            data, addr = popleft()
            try:
                if data is None:
                    self._protocol.error_received(addr)
                else:
                    self._protocol.datagram_received(data, addr)
            except (SystemExit, KeyboardInterrupt):
                self._requeue_rest()
                raise
            except BaseException as exc:
                # Reported as an exception of the delivery callback, as asyncio reports
                # one escaping its reader callback; the rest of the batch is delivered
                # next iteration, in order.
                self._requeue_rest()
                self._report_delivery_error(exc)
                return

    def _requeue_rest(self) -> None:
        if self._incoming and not self._delivery_queued:
            self._queue_delivery()

    # -- sending -------------------------------------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        try:
            if not self._pending() and self._send_now(data, addr):
                return
            self._enqueue(data, addr)
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on datagram transport")
            return
        self._buffer_size += len(data) + _HEADER_SIZE
        self._maybe_pause_protocol()

    def _sent(self, size: int, exc: BaseException | None) -> None:
        """A queued datagram left the queue (sent, or failed with ``exc``)."""
        self._buffer_size -= size + _HEADER_SIZE
        if self._conn_lost:
            return
        if exc is not None:
            self._protocol.error_received(exc)
        self._maybe_resume_protocol()
        if self._closing and not self._pending() and not self._conn_lost:
            self._conn_lost += 1
            self._call_connection_lost(None)

    # -- flow control --------------------------------------------------------------------

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._pending():
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._pending():
            self._drop_queue()
            self._buffer_size = 0
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._incoming.clear()
            self._close_handle()
            self._sock = None
            self._protocol = None

    # -- the I/O, per subclass -----------------------------------------------------------

    def _start_reading(self) -> None:
        raise NotImplementedError

    def _stop_reading(self) -> None:
        raise NotImplementedError

    def _send_now(self, data: Any, addr: Any) -> bool:
        raise NotImplementedError

    def _enqueue(self, data: Any, addr: Any) -> None:
        raise NotImplementedError

    def _pending(self) -> bool:
        raise NotImplementedError

    def _drop_queue(self) -> None:
        raise NotImplementedError

    def _close_handle(self) -> None:
        raise NotImplementedError

    def _loop_closing(self) -> None:
        """The loop is closing with this transport open (nothing may run any more)."""


class _UDPTransport(_DatagramTransport):
    """An IPv4 or IPv6 datagram transport on a libuv ``uv_udp_t``."""

    def __init__(
        self, loop: Any, sock: socket.socket, protocol: Any, address: Any, waiter: Any
    ) -> None:
        super().__init__(loop, sock, protocol, address, waiter)
        self._sizes: collections.deque[int] = collections.deque()  # queued, in order
        self._destinations: dict[Any, Any] = {}
        udp = UVUDP(loop._uv)
        try:
            udp.open(self._sock_fd)
        except BaseException:
            udp.close()
            raise
        udp.on_recv = self._on_recv
        udp.on_send = self._on_send
        self._udp = udp
        loop._datagram_transports_open().add(self)
        self._announce(waiter)

    # -- events, during dispatch: no user code -------------------------------------------

    def _on_recv(self, data: bytes | None, addr: Any, exc: BaseException | None) -> None:
        # _received, inlined: this runs once per datagram.
        if self._closing:
            return
        self._incoming.append((data, addr) if exc is None else (None, exc))
        if not self._delivery_queued:
            # _queue_delivery, inlined (once per datagram).
            self._delivery_queued = True
            loop = self._loop
            item = self._deliver_handle if loop._debug else self._delivery
            loop._ready.append(item if item is not None else self._delivery_item(loop._debug))

    def sendto(self, data: Any, addr: Any = None) -> None:
        # The common case first: bytes to an address sent to before (or on a connected
        # socket), nothing queued, the connection up.  Everything else, and every error,
        # takes the general path, which checks and reports in asyncio's order.
        if (type(data) is bytes and not self._address and not self._conn_lost
                and not self._sizes):
            if self._connected:
                sa = None
            else:
                try:
                    sa = self._destinations[addr]
                except (KeyError, TypeError):
                    sa = _UNSET
            if sa is not _UNSET:
                try:
                    if self._udp.try_send(data, sa):
                        return
                    self._enqueue(data, addr)
                except OSError as exc:
                    self._protocol.error_received(exc)
                    return
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on datagram transport")
                    return
                self._buffer_size += len(data) + _HEADER_SIZE
                self._maybe_pause_protocol()
                return
        super().sendto(data, addr)

    def _on_send(self, exc: BaseException | None) -> None:
        sizes = self._sizes
        if not sizes:
            return  # aborted: the queue was dropped and these are its cancellations
        size = sizes.popleft()
        if exc is None and not self._closing and not self._protocol_paused:
            self._buffer_size -= size + _HEADER_SIZE  # nothing for the protocol to hear
            return
        self._loop._ready.append(Handle(self._sent, (size, exc), self._loop, None))

    # -- I/O -----------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if self._closing:
            return
        try:
            self._udp.recv_start()
        except OSError as exc:
            self._fatal_error(exc, "Fatal error: could not start receiving")

    def _stop_reading(self) -> None:
        self._udp.recv_stop()

    def _destination(self, addr: Any) -> Any:
        """The ``struct sockaddr`` for ``addr``, None on a connected socket."""
        if self._connected:
            return None  # asyncio sends with send(), ignoring the address
        try:
            return self._destinations[addr]
        except KeyError:
            pass
        except TypeError:  # unhashable: the checks below say what is wrong
            return self._resolve(addr)
        sa = self._resolve(addr)
        cache = self._destinations
        if len(cache) >= _MAX_CACHED_DESTINATIONS:
            cache.clear()
        cache[addr] = sa
        return sa

    def _resolve(self, addr: Any) -> Any:
        """Check ``addr`` as the socket module's sendto() would, and convert it."""
        family = self._family
        name = socket.AddressFamily(family).name
        if not isinstance(addr, tuple):
            raise TypeError(f"sendto(): {name} address must be tuple, not {type(addr).__name__}")
        if family == socket.AF_INET and len(addr) != 2 or not 2 <= len(addr) <= 4:
            raise TypeError(f"sendto(): {name} address must be a tuple (host, port)")
        host, port = addr[0], addr[1]
        if not isinstance(port, int):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("sendto(): port must be 0-65535.")
        if isinstance(host, str):
            if host in _SPECIAL_HOSTS:  # as the socket module spells INADDR_*
                addr = (_SPECIAL_HOSTS[host][family == socket.AF_INET6],) + addr[1:]
            try:
                return make_sockaddr(family, addr)
            except OSError:
                pass  # not numeric: resolve it, as the socket module does (blocking)
        elif not isinstance(host, (bytes, bytearray)):
            raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
        return make_sockaddr(family, infos[0][4][:2] + tuple(addr[2:]))

    def _send_now(self, data: Any, addr: Any) -> bool:
        return self._udp.try_send(data, self._destination(addr))

    def _enqueue(self, data: Any, addr: Any) -> None:
        self._udp.send(data, self._destination(addr))
        self._sizes.append(len(data))

    def _pending(self) -> bool:
        return bool(self._sizes)

    def _drop_queue(self) -> None:
        # libuv cannot take back one queued send: closing the handle cancels them all.
        self._sizes.clear()
        self._detach_and_close()

    def _close_handle(self) -> None:
        self._detach_and_close()

    def _detach_and_close(self) -> None:
        sock = self._sock
        if sock is not None and sock.fileno() != -1:
            sock.detach()  # the fd is libuv's: it closes it with the handle
        self._udp.close()
        self._loop._datagram_transports_open().discard(self)

    def _loop_closing(self) -> None:
        sock = self._sock
        if sock is not None and sock.fileno() != -1:
            sock.detach()


class _PollDatagramTransport(_DatagramTransport):
    """A datagram transport for other families (AF_UNIX): readiness from a ``uv_poll_t``,
    I/O by the socket module, as asyncio's selector loop does it."""

    max_size = 256 * 1024

    def __init__(
        self, loop: Any, sock: socket.socket, protocol: Any, address: Any, waiter: Any
    ) -> None:
        super().__init__(loop, sock, protocol, address, waiter)
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._reading = False
        self._poll = UVPoll(loop._uv, self._sock_fd, self._on_poll)
        self._poll_handle = Handle(self._poll_ready, (), loop, None)
        self._poll_queued = False
        self._ready_events = 0
        self._announce(waiter)

    def _watch(self) -> None:
        poll = self._poll
        events = (READABLE if self._reading else 0) | (WRITABLE if self._buffer else 0)
        if poll.closed or events == poll.events:
            return
        if events:
            poll.start(events)
        else:
            poll.stop()

    def _on_poll(self, status: int, events: int) -> None:
        """During dispatch: remember what is ready, act from the ready queue."""
        self._ready_events |= events if status == 0 else (READABLE | WRITABLE)
        if not self._poll_queued:
            self._poll_queued = True
            self._loop._ready.append(self._poll_handle)

    def _poll_ready(self) -> None:
        self._poll_queued = False
        events, self._ready_events = self._ready_events, 0
        if self._conn_lost or self._sock is None:
            return
        if events & READABLE and self._reading:
            self._read_ready()
        if events & WRITABLE and self._buffer:
            self._write_ready()

    def _read_ready(self) -> None:
        sock = self._sock
        for _ in range(_POLL_READS_PER_EVENT):
            if self._closing or sock is None:
                return
            try:
                data, addr = sock.recvfrom(self.max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)

    def _write_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer[0]
            try:
                sent = self._send_now(data, addr)
            except OSError as exc:
                buffer.popleft()
                self._sent(len(data), exc)
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            if not sent:
                break
            buffer.popleft()
            self._sent(len(data), None)
            if self._sock is None:  # _sent called connection_lost
                return
        self._watch()

    def _start_reading(self) -> None:
        if self._closing:
            return
        self._reading = True
        self._watch()

    def _stop_reading(self) -> None:
        self._reading = False
        self._watch()

    def _send_now(self, data: Any, addr: Any) -> bool:
        sock = self._sock
        try:
            if self._connected:
                sock.send(data)  # type: ignore[union-attr]
            else:
                sock.sendto(data, addr)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return False
        return True

    def _enqueue(self, data: Any, addr: Any) -> None:
        self._buffer.append((bytes(data), addr))
        self._watch()

    def _pending(self) -> bool:
        return bool(self._buffer)

    def _drop_queue(self) -> None:
        self._buffer.clear()
        self._watch()

    def _close_handle(self) -> None:
        self._buffer.clear()
        self._poll.close()  # stops watching before the fd is closed
        sock = self._sock
        if sock is not None:
            sock.close()


# ---------------------------------------------------------------------------------------
# The loop's side
# ---------------------------------------------------------------------------------------


class DatagramMixin(LoopCore):
    def _datagram_transports_open(self) -> set[_UDPTransport]:
        """The libuv-backed datagram transports whose handle is still open."""
        transports: set[_UDPTransport] | None = self.__dict__.get("_udp_transports")
        if transports is None:
            transports = self.__dict__["_udp_transports"] = set()
        return transports

    def _close_uv(self) -> None:
        # libuv closes the fds of handles still open; detach their socket objects first,
        # so that a socket object dropped later cannot close a reused fd number.
        for transport in list(self._datagram_transports_open()):
            transport._loop_closing()
        self._datagram_transports_open().clear()
        super()._close_uv()

    def _make_datagram_transport(
        self, sock: socket.socket, protocol: Any, address: Any = None, waiter: Any = None
    ) -> _DatagramTransport:
        if sock.family in _IP_FAMILIES:
            return _UDPTransport(self, sock, protocol, address, waiter)
        return _PollDatagramTransport(self, sock, protocol, address, waiter)

    async def _resolve_datagram_address(
        self, addr: Any, family: int, proto: int, flags: int
    ) -> list[Any]:
        info = _numeric_addrinfo(addr[0], addr[1], family, proto)
        if info is not None:
            return [info]
        return await self.getaddrinfo(  # type: ignore[no-any-return]
            addr[0], addr[1], family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
        )

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
        reuse_address: Any = _UNSET,
    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
        """Create a datagram endpoint; see asyncio's documentation (module docstring)."""
        if reuse_address is not _UNSET:
            # AbstractEventLoop still names it, but asyncio's loop dropped it in 3.11.
            raise TypeError(
                "create_datagram_endpoint() got an unexpected keyword argument "
                "'reuse_address' (removed in Python 3.11: SO_REUSEADDR lets any other "
                "socket take over a UDP port; reuse_port is the safe alternative)"
            )
        r_addr = None
        own_sock = sock is None
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                if not _PY313:
                    raise ValueError(f"A UDP Socket was expected, got {sock!r}")
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
                # 3.13's loop takes any other type too (SOCK_SEQPACKET, SOCK_RAW...);
                # libuv's UDP handle serves datagram sockets only (README, differences).
                raise ValueError(
                    f"uvcffi's datagram transport needs a SOCK_DGRAM socket, got {sock!r}"
                )
            options = {
                "local_addr": local_addr, "remote_addr": remote_addr, "family": family,
                "proto": proto, "flags": flags, "reuse_port": reuse_port,
                "allow_broadcast": allow_broadcast,
            }
            given = [f"{k}={v}" for k, v in options.items() if v]
            if given:
                raise ValueError(
                    "socket modifier keyword arguments can not be used when sock is "
                    f"specified. ({', '.join(given)})"
                )
            sock.setblocking(False)
        else:
            pairs = await self._datagram_address_pairs(
                local_addr, remote_addr, family, proto, flags
            )
            errors: list[OSError] = []
            for (fam, pro), (local, remote) in pairs:
                candidate = None
                try:
                    candidate = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                    if reuse_port:
                        _set_reuseport(candidate)
                    if allow_broadcast:
                        candidate.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                    candidate.setblocking(False)
                    if local_addr:
                        candidate.bind(local)
                    if remote_addr:
                        if not allow_broadcast:
                            candidate.connect(remote)  # a datagram connect never blocks
                        r_addr = remote
                except OSError as exc:
                    if candidate is not None:
                        candidate.close()
                    errors.append(exc)
                except BaseException:
                    if candidate is not None:
                        candidate.close()
                    raise
                else:
                    sock = candidate
                    break
            else:
                raise errors[0]

        protocol = protocol_factory()
        waiter = self.create_future()
        try:
            transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        except BaseException:
            if own_sock:
                sock.close()
            raise
        if self._debug:
            if local_addr:
                logger.info(
                    "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                    local_addr, remote_addr, transport, protocol,
                )
            else:
                logger.debug(
                    "Datagram endpoint remote_addr=%r created: (%r, %r)",
                    remote_addr, transport, protocol,
                )
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_address_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list[Any]:
        """``[((family, proto), (local, remote)), ...]`` to try, in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                        os.remove(local_addr)  # a stale socket file from an earlier run
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error(
                        "Unable to check or remove stale UNIX socket %r: %r", local_addr, err
                    )
            return [((family, proto), (local_addr, remote_addr))]
        # Group the resolved addresses by (family, proto), keeping getaddrinfo's order.
        by_key: dict[tuple[int, int], list[Any]] = {}
        for index, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self._resolve_datagram_address(addr, family, proto, flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                # The last address of a (family, proto) is the one tried, as in asyncio.
                by_key.setdefault((fam, pro), [None, None])[index] = address
        pairs = [
            (key, (local, remote))
            for key, (local, remote) in by_key.items()
            if not ((local_addr and local is None) or (remote_addr and remote is None))
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

