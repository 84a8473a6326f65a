"""asyncio's stream Transport over a libuv stream handle (TCP or Unix socket).

How data moves
--------------
Reading: libuv reads into the loop's arena during ``uv_run``; the READ event is turned into
bytes (one copy) by the ``_uv`` layer and handed to :meth:`_on_read` while the batch is
dispatched.  No user code may run then, so the chunk is appended to ``_incoming`` and the
transport's one pre-built Handle is queued to deliver everything that arrived in this
batch, in order, from the ready queue.  ``pause_reading`` stops libuv reading at once;
chunks already read stay queued and are delivered by ``resume_reading``.

Writing: ``write`` first calls ``uv_try_write`` with the caller's bytes (no copy); only
what the kernel does not take is queued in libuv (one copy, in C).  libuv keeps queued
writes in order and refuses a try-write while its queue is non-empty, so order holds.
The queue's size in bytes is libuv's ``write_queue_size``; it drives
``pause_writing``/``resume_writing`` at the high and low water marks, as asyncio does.

Closing: ``close`` stops reading and, once libuv's write queue is empty, calls
``connection_lost(None)``; ``abort`` and fatal errors drop the queue (libuv cancels the
queued writes) and call ``connection_lost(exc)``.  ``connection_lost`` is called exactly
once, and only after it has returned is the libuv handle closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import logging
import os
import socket
import warnings
from asyncio import trsock
from asyncio.constants import _SendfileMode
from typing import Any

from .._errors import exception_for
from .._uv.stream import UVStream
from .._uv.stream import try_write as _try_write
from .flowcontrol import FlowControl
from .handles import Handle, report_callback_error

logger = logging.getLogger("asyncio")

# After this many writes to a lost connection, warn (as asyncio does).
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_ECANCELED = -errno.ECANCELED


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


#: The empty drain-waiter list every transport starts with (never appended to).
_NO_WAITERS: list[Any] = []
#: The last local address a transport recorded, shared by the next ones that have it.
_last_sockname: Any = None


def _ignore_status(status: int) -> None:
    pass


class ReadyCall:
    """A transport's delivery callback as a ready-queue item without a Handle (see
    ``LoopCore._accepts_ready_items``), used while the loop is not in debug mode.

    Running it is one C-level call, ``context.run(callback)``, with no Python frame of its
    own, so ``callback`` must catch and report its own exceptions (with
    :func:`~uvcffi._loop.handles.report_callback_error`).  The transports capture the
    context when they are made, as asyncio's reader callbacks do."""

    __slots__ = ("_run",)
    _cancelled = False

    def __init__(self, callback: Any, context: contextvars.Context) -> None:
        self._run = functools.partial(context.run, callback)


class DeliveryMixin:
    """A transport's one ready-queue item for delivering what it received, made on first
    need (an idle connection never needs one): a Handle in debug mode -- which also names
    the callback in error reports -- else a :class:`ReadyCall`.  Both run ``_deliver`` in
    ``_read_context``, the context current when the transport was made, as asyncio's
    reader callbacks do.  The owner sets ``_read_context``, ``_deliver_handle = None`` and
    ``_delivery = None`` and defines ``_deliver``."""

    __slots__ = ()

    _loop: Any
    _read_context: contextvars.Context
    _deliver_handle: Handle | None
    _delivery: Any
    _delivery_queued: bool
    _deliver: Any  # the owner's method that delivers what is queued

    def _queue_delivery(self) -> None:
        self._delivery_queued = True
        loop = self._loop
        item = self._deliver_handle if loop._debug else self._delivery
        loop._ready.append(item if item is not None else self._delivery_item(loop._debug))

    def _report_delivery_error(self, exc: BaseException) -> None:
        """Report ``exc``, escaped from a protocol callback ``_deliver`` made, as the error
        of the delivery callback (asyncio reports its reader callback so).  This runs
        inside ``_read_context``, entered by the ready item, and from 3.12 on the exception
        handler runs in the context of the handle it is given: an entered context cannot
        be entered again, so that handle carries a copy, with the same values."""
        handle = Handle(self._deliver, (), self._loop, contextvars.copy_context())
        report_callback_error(handle, exc)

    def _delivery_item(self, debug: bool) -> Any:
        """The ready-queue item that runs _deliver, made the first time it is needed: a
        Handle in debug mode (or on a loop that takes only Handles), else a ReadyCall."""
        if debug or not getattr(self._loop, "_accepts_ready_items", False):
            handle = self._deliver_handle
            if handle is None:
                handle = Handle(self._deliver, (), self._loop, self._read_context)
                self._deliver_handle = handle
            if not debug:
                self._delivery = handle
            return handle
        item = self._delivery
        if item is None:
            item = self._delivery = ReadyCall(self._deliver, self._read_context)
        return item


class UVStreamTransport(DeliveryMixin, FlowControl, asyncio.Transport):
    # loop.sendfile() works on this transport by reading and writing (no os.sendfile yet).
    _sendfile_compatible = _SendfileMode.FALLBACK

    """An ``asyncio.Transport`` (with ``BufferedProtocol`` support) over a UVStream.

    ``sock`` is a Python socket object for the same fd, or None to make one on first
    need; it never owns the fd (libuv does) and is detached when the handle closes.
    """

    def __init__(
        self,
        loop: Any,
        stream: UVStream,
        protocol: asyncio.BaseProtocol,
        *,
        family: int,
        sock: socket.socket | None = None,
        waiter: Any = None,
        server: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._loop = loop
        self._stream = stream
        self._family = family
        self._sock = sock
        self._server = server
        self._protocol: Any = None
        self._buffered = False
        self._closing = False
        self._conn_lost = 0
        self._connection_lost_called = False
        self._read_paused = False
        self._protocol_paused = False
        self._eof_written = False
        self._eof_received = False
        self._read_done = False
        self._incoming: list[Any] = []
        self._delivery_queued = False
        # Deliveries run in a copy of the context current now, as asyncio's reader
        # callback does.  The Handle serves debug mode (and names the callback in error
        # reports); otherwise the handle-free ReadyCall goes into the ready queue.  Both
        # are made on first need (_delivery_item): an idle connection -- most of a busy
        # server's -- never needs them, and they are a third of its Python memory.
        self._read_context = contextvars.copy_context()
        self._deliver_handle: Handle | None = None
        self._delivery: Any = None
        self._low_water = 0
        self._high_water = 0
        self._sendfile_running = False
        self._drain_waiters: list[Any] = _NO_WAITERS  # a list of its own once one waits
        self._set_write_buffer_limits()
        self.set_protocol(protocol)

        # on_write is set when a write is first queued (see _note_queued): an idle
        # connection keeps one bound method, not three.
        stream.on_read = self._on_read
        stream.on_shutdown = _ignore_status  # errors surface through reads and writes
        if server is not None:
            server._attach(self)
        self._set_address_info()

        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._stream.closed:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        try:
            info.append(f"fd={self._stream.fileno()}")
        except (RuntimeError, OSError):
            pass
        info.append(f"read={'paused' if self._read_paused else 'polling'}")
        info.append(f"write=<bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    # -- the socket object -----------------------------------------------------------------

    def _set_address_info(self) -> None:
        """Record "sockname" and "peername" now, as asyncio does (the peer's address must
        outlive the connection).  The socket object for "socket" is made only if asked for
        (get_extra_info): an idle connection does not pay for it."""
        global _last_sockname
        sock = self._sock
        if sock is None:
            if self._stream.closed:
                return
            try:
                sock = socket.socket(self._family, socket.SOCK_STREAM, 0,
                                     fileno=self._stream.fileno())
            except OSError:
                return
            temporary = True
        else:
            temporary = False
        try:
            try:
                sockname = sock.getsockname()
                # The connections a server accepts share its address: one tuple for all
                # of them, not one each (it is immutable).
                if sockname == _last_sockname:
                    sockname = _last_sockname
                else:
                    _last_sockname = sockname
            except OSError:
                sockname = None
            self._extra["sockname"] = sockname
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        finally:
            if temporary:
                fd = sock.detach()
                # PyPy's socket.socket(fileno=) made the fd blocking; libuv needs it not.
                os.set_blocking(fd, False)
            else:
                self._make_transport_socket()

    def _make_transport_socket(self) -> None:
        sock = self._socket()
        self._extra["socket"] = None if sock is None else trsock.TransportSocket(sock)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket" and "socket" not in self._extra:
            self._make_transport_socket()
        return self._extra.get(name, default)

    def _socket(self) -> socket.socket | None:
        if self._sock is None and not self._stream.closed:
            try:
                fd = self._stream.fileno()
                self._sock = socket.socket(self._family, socket.SOCK_STREAM, 0, fileno=fd)
                # PyPy's socket.socket(fileno=) puts the fd in blocking mode; libuv needs
                # it non-blocking (a read that fills its buffer is retried, and would block
                # the whole loop).
                os.set_blocking(fd, False)
            except OSError:
                return None
        if self._sock is not None:
            self._loop._fd_sockets.add(self._sock)
        return self._sock

    # -- protocol ------------------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    # -- reading -------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if self._closing or self._read_paused or self._stream.closed:
            return
        try:
            self._stream.read_start()
        except OSError as exc:
            self._fatal_error(exc, "Fatal error: could not start reading")

    @property
    def _paused(self) -> bool:
        """Python 3.9's sslproto reads this private flag of the transport it runs on."""
        return self._read_paused

    def is_reading(self) -> bool:
        return not self._read_paused and not self._closing

    def pause_reading(self) -> None:
        if self._closing or self._read_paused:
            return
        self._read_paused = True
        self._stream.read_stop()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._read_paused:
            return
        self._read_paused = False
        if self._incoming:
            self._queue_delivery()
        if not self._read_done:
            self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _on_read(self, data: bytes | None, exc: BaseException | None) -> None:
        """Called while a batch is dispatched: queue, don't deliver."""
        if exc is None:
            self._incoming.append(data)
        else:
            self._incoming.append(exc)
            # End of stream or an error: libuv will not read from it again, and
            # resume_reading() must not restart it (that would report EOF twice).
            self._read_done = True
            self._stream.read_stop()
        if not self._delivery_queued and not self._read_paused:
            # _queue_delivery, inlined (once per chunk read).
            self._delivery_queued = True
            loop = self._loop
            item = self._deliver_handle if loop._debug else self._delivery
            loop._ready.append(item if item is not None else self._delivery_item(loop._debug))

    def _deliver(self) -> None:
        self._delivery_queued = False
        incoming = self._incoming
        try:
            # After close() nothing more is delivered, EOF included: asyncio stops reading.
            while incoming and not self._read_paused and not self._closing:
                item = incoming.pop(0)
                if type(item) is bytes:
                    if self._buffered:
                        self._data_received(item)
                        continue
                    # _data_received for a plain Protocol, inlined: the common case.
                    try:
                        self._protocol.data_received(item)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._fatal_error(
                            exc, "Fatal error: protocol.data_received() call failed."
                        )
                elif isinstance(item, EOFError):
                    self._on_eof()
                else:
                    self._fatal_error(item, "Fatal read error on socket transport")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # Only a failure of the transport's own error handling gets here; the
            # ReadyCall has no Handle._run to report it.
            self._report_delivery_error(exc)

    def _data_received(self, data: bytes) -> None:
        protocol = self._protocol
        if not self._buffered:
            try:
                protocol.data_received(data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        # BufferedProtocol: asyncio names the call that failed, get_buffer() or
        # buffer_updated(), in the report.  The chunk is copied into as many buffers as
        # the protocol's get_buffer() takes to hold it; usually (sslproto's buffer is
        # 256 KiB) the first holds it all, and then no view of the chunk is made.
        left = len(data)
        view = None
        while left:
            try:
                buf = protocol.get_buffer(left)
                size = len(buf)
                if not size:
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                return
            try:
                if view is None and size >= left:
                    memoryview(buf)[:left] = data
                    n = left
                else:
                    if view is None:
                        view = memoryview(data)
                    n = min(size, left)
                    start = len(data) - left
                    memoryview(buf)[:n] = view[start : start + n]
                left -= n
                protocol.buffer_updated(n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
                return

    def _on_eof(self) -> None:
        self._eof_received = True
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- writing -------------------------------------------------------------------------

    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._sendfile_running:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        # _write, inlined for the common case of an open connection.
        if self._conn_lost:
            self._write(data)
            return
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview may change after we return
        stream = self._stream
        # UVStream.send without its frame: the kernel usually takes it all at once.
        ptr = stream._ptr
        n = 0
        if ptr is not None:
            n = _try_write(ptr, data, len(data))
            if n == len(data):
                return
        try:
            if not stream.send_rest(data, n):
                return
            if stream.on_write is None:
                stream.on_write = self._on_write
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if stream.closed:
                # send() refused a closed handle before writing anything: a write to a
                # lost connection, which _write counts and drops.
                self._write(data)
                return
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        self._maybe_pause_protocol()

    def _write(self, data: Any) -> None:
        if self._conn_lost or self._stream.closed:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        stream = self._stream
        if not isinstance(data, bytes):
            data = bytes(data)  # a bytearray or memoryview may change after we return
        try:
            if not stream.send(data):
                return
            if stream.on_write is None:
                stream.on_write = self._on_write
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _on_write(self, status: int) -> None:
        """A queued write finished (called during dispatch)."""
        if self._connection_lost_called:
            return
        if status < 0:
            if status == _ECANCELED:
                return
            self._loop._ready.append(
                Handle(
                    self._fatal_error,
                    (exception_for(status), "Fatal write error on socket transport"),
                    self._loop,
                    None,
                )
            )
            return
        size = self._stream.write_queue_size()
        if self._drain_waiters and size <= self._low_water:
            self._wake_drain_waiters(None)
        if self._protocol_paused and size <= self._low_water:
            self._loop._ready.append(Handle(self._maybe_resume_protocol, (), self._loop, None))
        if size == 0 and self._closing and not self._conn_lost:
            self._conn_lost += 1
            self._loop._ready.append(Handle(self._call_connection_lost, (None,), self._loop, None))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        try:
            self._stream.shutdown()  # libuv sends the FIN after the queued writes
        except OSError as exc:
            if exc.errno not in (errno.ENOTCONN, errno.EPIPE):
                self._fatal_error(exc, "Fatal error on write_eof")

    def get_write_buffer_size(self) -> int:
        return self._stream.write_queue_size()

    def _may_pause_protocol(self) -> bool:
        return not self._sendfile_running


    # -- sendfile (loop.sendfile's fallback) ------------------------------------------------

    def _wake_drain_waiters(self, exc: BaseException | None) -> None:
        waiters = self._drain_waiters
        self._drain_waiters = _NO_WAITERS
        for fut in waiters:
            if fut.done():
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

    async def _sendfile_drain(self) -> None:
        """Wait until the write queue is down to the low-water mark."""
        if self._conn_lost or self._connection_lost_called:
            raise ConnectionError("Connection closed by peer")
        if self.get_write_buffer_size() <= self._high_water:
            return
        fut = self._loop.create_future()
        if self._drain_waiters is _NO_WAITERS:
            self._drain_waiters = []
        self._drain_waiters.append(fut)
        await fut

    async def _sendfile(self, file: Any, offset: int, count: int | None) -> int:
        """Send ``file`` through this transport: read a block, write it, mind the queue.

        While it runs, the protocol's own writes are refused and its flow-control callbacks
        are not called, as in asyncio."""
        self._sendfile_running = True
        total = 0
        try:
            if offset:
                file.seek(offset)
            blocksize = min(count, 65536) if count else 65536
            buf = bytearray(blocksize)
            while True:
                if count:
                    blocksize = min(count - total, blocksize)
                    if blocksize <= 0:
                        return total
                view = memoryview(buf)[:blocksize]
                read = await self._loop.run_in_executor(None, file.readinto, view)
                if not read:
                    return total
                await self._sendfile_drain()
                self._write(bytes(view[:read]))
                total += read
        finally:
            self._sendfile_running = False
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)
            if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
                self._maybe_resume_protocol()

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stream.read_stop()
        if self._stream.write_queue_size() == 0:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        self._closing = True
        self._conn_lost += 1
        self._stream.read_stop()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._connection_lost_called:
            return
        self._connection_lost_called = True
        self._closing = True
        if self._drain_waiters:
            self._wake_drain_waiters(ConnectionError("Connection closed by peer"))
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._close_handle()
            self._protocol = None
            server = self._server
            if server is not None:
                self._server = None
                server._detach(self)

    def _close_handle(self) -> None:
        if self._sock is not None:
            self._loop._fd_sockets.discard(self._sock)
            self._sock.detach()  # the fd is libuv's: it closes it with the handle
            self._sock = None
        self._stream.close()
        self._incoming.clear()

    def __del__(self) -> None:
        # A transport dropped without close(): warn as asyncio does, and have the loop
        # thread close the handle (this may run in any thread, where libuv must not be
        # touched).
        stream = getattr(self, "_stream", None)
        if stream is None or stream.closed or getattr(self, "_closing", True):
            return
        warnings.warn(f"unclosed transport {self!r}", ResourceWarning, stacklevel=2,
                      source=self)
        sock = self._sock
        if sock is not None:
            sock.detach()
        loop = self._loop
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stream.close)
            except RuntimeError:
                pass
