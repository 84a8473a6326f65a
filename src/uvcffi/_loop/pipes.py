"""``connect_read_pipe``/``connect_write_pipe`` on ``uv_pipe_t``.

The transports behave as asyncio's ``_UnixReadPipeTransport`` and
``_UnixWritePipeTransport``: pipes, FIFOs, sockets and character devices (ttys) are
accepted, anything else is refused with asyncio's ValueError; ``get_extra_info('pipe')`` is
the pipe object given, and the transport closes it after ``connection_lost``.

Who closes the fd.  libuv takes ownership of the fd given to ``uv_pipe_open`` and closes it
with the handle, while asyncio's contract is that the transport closes the *pipe object*.
So libuv gets a duplicate (``os.dup``): libuv closes the duplicate, the pipe object closes
the original, each exactly once, and the pipe object's fd stays valid (and the pipe open,
so its peer sees no EOF) until ``connection_lost`` has returned, as with asyncio.

Reading is the stream transport's scheme (``stream_transport.py``): libuv reads into the
loop's arena, chunks are queued while the batch is dispatched and delivered to
``data_received`` from one ready Handle.  At end of file the protocol gets
``eof_received()`` and then ``connection_lost(None)`` whatever ``eof_received`` returned,
as asyncio does for pipes; a read error (EIO from a pty is only logged in debug mode, as in
asyncio) closes the transport with the exception.

Writing: ``uv_try_write`` first, libuv's write queue for the rest; the queue's size drives
``pause_writing``/``resume_writing`` at the water marks (64 KiB high, a quarter low, by
default).  ``write_eof`` and ``close`` flush the queue, then close: a pipe has no
half-close.  ``abort`` and write errors close libuv's handle at once (libuv drops the queued
data), then call ``connection_lost`` with the error.  Writes after that are dropped and
counted, with asyncio's warning after five.

Noticing that the reader went away.  asyncio watches a write pipe (FIFO or socket) for
readability: the write end of a pipe reports an error when the read end is closed, and the
transport closes itself -- ``connection_lost(None)``, or BrokenPipeError if data was still
queued -- instead of waiting for the next write to fail.  A subprocess whose stdin is a
pipe relies on it to see ``pipe_connection_lost(0)`` when the child exits.  Here a
``uv_poll_t`` watches the pipe object's own fd (libuv's handle has the duplicate; epoll
keys registrations by fd number, so both coexist).

Character devices that epoll refuses (``/dev/null``, ``/dev/zero``; libuv would abort on
them) are probed first: for writing they are written directly, which never blocks (asyncio
does the same in effect); for reading there is nothing to wait for, and
``connect_read_pipe`` raises PermissionError (asyncio's loop would log the error from its
selector and never read).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import errno
import logging
import os
import select
import stat
import warnings
from typing import Any, Callable

from .._errors import exception_for
from .._uv.pipe import UVPipe
from .._uv.poll import READABLE, UVPoll
from .core import LoopCore
from .flowcontrol import FlowControl
from .handles import Handle
from .stream_transport import DeliveryMixin

logger = logging.getLogger("asyncio")

LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_ECANCELED = -errno.ECANCELED


def _set_result_unless_cancelled(fut: Any, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _epoll_accepts(fd: int) -> bool:
    """Whether epoll can watch ``fd`` (it refuses regular files and some devices)."""
    epoll = getattr(select, "epoll", None)
    if epoll is None:  # pragma: no cover - not Linux
        return True
    probe = epoll()
    try:
        probe.register(fd, select.EPOLLIN)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _open_uv_pipe(loop: Any, fd: int) -> UVPipe:
    """A libuv pipe handle on a duplicate of ``fd``, which libuv then owns."""
    dup = os.dup(fd)
    try:
        handle = UVPipe(loop._uv)
    except BaseException:
        os.close(dup)
        raise
    try:
        handle.open(dup)
    except BaseException:
        handle.close()
        os.close(dup)
        raise
    return handle


class UVReadPipeTransport(DeliveryMixin, asyncio.ReadTransport):
    def __init__(self, loop: Any, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: Any = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol: Any = protocol
        self._closing = False
        self._paused = False
        self._eof = False
        self._lost = False
        self._stream: UVPipe | None = None
        mode = os.fstat(self._fileno).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is for pipes/sockets only.")
        if stat.S_ISCHR(mode) and not _epoll_accepts(self._fileno):
            self._pipe = None
            self._protocol = None
            raise PermissionError(
                errno.EPERM,
                f"cannot read fd {self._fileno} as a pipe: the device does not support "
                "polling (epoll refuses it)",
            )
        self._stream = stream = _open_uv_pipe(loop, self._fileno)
        stream.on_read = self._on_read
        self._incoming: collections.deque[Any] = collections.deque()
        # What was read waits here for the one delivery item (DeliveryMixin).
        self._delivery_queued = False
        self._read_context = contextvars.copy_context()
        self._deliver_handle: Handle | None = None
        self._delivery: Any = None
        loop.call_soon(protocol.connection_made, self)
        # only start reading when connection_made() has been called
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        if self._pipe is not None:
            info.append("polling" if self.is_reading() else "idle")
        return "<{}>".format(" ".join(info))

    # -- reading -------------------------------------------------------------------------

    def _start_reading(self) -> None:
        stream = self._stream
        if not self.is_reading() or self._eof or stream is None or stream.closed:
            return
        try:
            stream.read_start()
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")

    def _on_read(self, data: bytes | None, exc: BaseException | None) -> None:
        """Called while a batch is dispatched: queue, don't deliver."""
        if exc is not None:
            self._eof = True  # libuv has stopped reading: EOF or error
            self._stream.read_stop()  # type: ignore[union-attr]
            self._incoming.append(exc)
        else:
            self._incoming.append(data)
        if not self._delivery_queued and not self._paused:
            self._queue_delivery()

    def _deliver(self) -> None:
        self._delivery_queued = False
        incoming = self._incoming
        try:
            while incoming and not self._paused:
                if self._closing:
                    incoming.clear()  # asyncio stops reading at close(): drop late data
                    return
                item = incoming.popleft()
                if isinstance(item, bytes):
                    self._protocol.data_received(item)
                elif isinstance(item, EOFError):
                    if self._loop.get_debug():
                        logger.info("%r was closed by peer", self)
                    self._closing = True
                    self._loop.call_soon(self._protocol.eof_received)
                    self._schedule_connection_lost(None)
                else:
                    self._fatal_error(item, "Fatal read error on pipe transport")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # data_received() raised: reported as the callback that delivers, as asyncio
            # reports its reader callback (the ready item may have no _run to do it).
            self._report_delivery_error(exc)
        finally:
            # The rest is still delivered, from the next iteration.
            if incoming and not self._paused and not self._delivery_queued:
                self._queue_delivery()

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        if self._stream is not None:
            self._stream.read_stop()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._incoming and not self._delivery_queued:
            self._queue_delivery()
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    # -- protocol and closing ------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport"
                     ) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        if self._stream is not None:
            self._stream.read_stop()
        self._schedule_connection_lost(exc)

    def _schedule_connection_lost(self, exc: BaseException | None) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            stream = self._stream
            if stream is not None:
                self._stream = None
                stream.close()  # closes libuv's duplicate of the fd
            self._incoming.clear()
            self._pipe.close()
            self._pipe = None
            self._protocol = None

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is None:
            return
        _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
        pipe.close()
        _close_from_any_thread(self._loop, self._stream)


class UVWritePipeTransport(FlowControl, asyncio.WriteTransport):
    def __init__(self, loop: Any, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: Any = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol: Any = protocol
        self._conn_lost = 0
        self._closing = False  # set by close(), write_eof(), abort() and errors
        self._lost = False  # connection_lost() scheduled
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        self._stream: UVPipe | None = None
        self._peer_watch: UVPoll | None = None
        mode = os.fstat(self._fileno).st_mode
        is_char = stat.S_ISCHR(mode)
        is_fifo = stat.S_ISFIFO(mode)
        is_socket = stat.S_ISSOCK(mode)
        if not (is_char or is_fifo or is_socket):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        if is_char and not _epoll_accepts(self._fileno):
            os.set_blocking(self._fileno, False)  # as asyncio; such a device never blocks
        else:
            self._stream = stream = _open_uv_pipe(loop, self._fileno)
            stream.on_write = self._on_write
        loop.call_soon(protocol.connection_made, self)
        if is_fifo or is_socket:
            # only start watching when connection_made() has been called
            loop.call_soon(self._watch_peer)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        if self._pipe is not None:
            bufsize = self.get_write_buffer_size()
            info.append("polling" if bufsize else "idle")
            info.append(f"bufsize={bufsize}")
        return "<{}>".format(" ".join(info))

    # -- the reader going away -----------------------------------------------------------

    def _watch_peer(self) -> None:
        if self._closing or self._pipe is None:
            return
        try:
            watch = UVPoll(self._loop._uv, self._fileno, self._on_peer_event)
            watch.start(READABLE)
        except OSError:
            return  # not watchable: a closed reader then shows as EPIPE on the next write
        self._peer_watch = watch

    def _on_peer_event(self, status: int, events: int) -> None:
        """During dispatch: readable (or an error) on a write pipe means the reader left."""
        self._stop_peer_watch()
        if not self._lost:
            self._loop._ready.append(Handle(self._peer_closed, (), self._loop, None))

    def _peer_closed(self) -> None:
        if self._lost:
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self.get_write_buffer_size():
            self._close(BrokenPipeError())
        else:
            self._close(None)

    def _stop_peer_watch(self) -> None:
        watch = self._peer_watch
        if watch is not None:
            self._peer_watch = None
            watch.close()

    # -- writing -------------------------------------------------------------------------

    def get_write_buffer_size(self) -> int:
        stream = self._stream
        return 0 if stream is None else stream.write_queue_size()

    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # a bytearray or memoryview may change after we return
        stream = self._stream
        try:
            if stream is None:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fileno, view):]
                return
            n = stream.try_write(data)
            if n == len(data):
                return
            stream.write(data[n:] if n else data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._conn_lost += 1
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        self._maybe_pause_protocol()

    def _on_write(self, status: int) -> None:
        """One queued write finished (called during dispatch)."""
        if self._lost:
            return
        loop = self._loop
        if status < 0:
            if status != _ECANCELED:
                # Close now, not from a callback: the reader-gone watch may report in the
                # same batch and must see that data was lost.  (An OSError is never passed
                # to the exception handler, so no user code runs here.)
                exc = exception_for(status)
                self._conn_lost += 1
                if loop.get_debug():
                    loop._ready.append(Handle(
                        logger.debug, ("%r: %s", self, "Fatal write error on pipe transport"),
                        loop, None,
                    ))
                self._close(exc)
            return
        size = self._stream.write_queue_size()  # type: ignore[union-attr]
        if size == 0 and self._closing:
            self._lost = True
            loop._ready.append(Handle(self._drained_and_closing, (), loop, None))
        elif self._protocol_paused and size <= self._low_water:
            loop._ready.append(Handle(self._maybe_resume_protocol, (), loop, None))

    def _drained_and_closing(self) -> None:
        self._maybe_resume_protocol()
        self._stop_peer_watch()
        self._call_connection_lost(None)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self.get_write_buffer_size():
            self._stop_peer_watch()
            self._schedule_connection_lost(None)

    def abort(self) -> None:
        self._close(None)

    # -- flow control --------------------------------------------------------------------

    # -- protocol and closing ------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._pipe is not None and not self._closing:
            # write_eof is all what we needed to close the write pipe
            self.write_eof()

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport"
                     ) -> None:
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
        self._close(exc)

    def _close(self, exc: BaseException | None = None) -> None:
        self._closing = True
        self._stop_peer_watch()
        stream = self._stream
        if stream is not None and stream.write_queue_size():
            # Drop the queue now, as asyncio clears its buffer: libuv cancels the queued
            # writes.  The pipe object keeps the pipe open until connection_lost.
            self._stream = None
            stream.close()
        self._schedule_connection_lost(exc)

    def _schedule_connection_lost(self, exc: BaseException | None) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._stop_peer_watch()
            stream = self._stream
            if stream is not None:
                self._stream = None
                stream.close()
            self._pipe.close()
            self._pipe = None
            self._protocol = None

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is None:
            return
        _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
        # The poll handle watches the pipe object's fd: stop it before that fd closes.
        _close_from_any_thread(self._loop, self._peer_watch)
        _close_from_any_thread(self._loop, self._stream)
        pipe.close()


def _close_from_any_thread(loop: Any, handle: Any) -> None:
    """A finaliser may run in any thread, where libuv must not be touched."""
    if handle is None or handle.closed or loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(handle.close)
    except RuntimeError:
        pass


class PipesMixin(LoopCore):
    def _make_read_pipe_transport(self, pipe: Any, protocol: Any, waiter: Any = None,
                                  extra: dict[str, Any] | None = None) -> UVReadPipeTransport:
        return UVReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe: Any, protocol: Any, waiter: Any = None,
                                   extra: dict[str, Any] | None = None) -> UVWritePipeTransport:
        return UVWritePipeTransport(self, pipe, protocol, waiter, extra)

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any], pipe: Any
                                ) -> tuple[Any, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_read_pipe_transport(pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("Read pipe %r connected: (%r, %r)", pipe.fileno(), transport, protocol)
        return transport, protocol

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any], pipe: Any
                                 ) -> tuple[Any, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_write_pipe_transport(pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("Write pipe %r connected: (%r, %r)", pipe.fileno(), transport,
                         protocol)
        return transport, protocol
