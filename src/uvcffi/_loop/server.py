"""``asyncio.Server`` for uvcffi: listening libuv stream handles and their connections.

Accepting happens while a batch is dispatched (``uv_accept`` is a C call, not user code);
the protocol factory and the transport are then made from the ready queue.  When
``accept`` fails with an error libuv passes on (ENOBUFS, ENOMEM...), it is reported to the
exception handler and the server goes on serving.  Running out of descriptors (EMFILE,
ENFILE) differs from asyncio: libuv's "EMFILE trick" frees a reserved descriptor, accepts
the waiting connections and closes them at once, and reports nothing; the server keeps
serving and accepts normally once descriptors are free again.  asyncio instead reports
the error and leaves the connection waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from asyncio import trsock
from typing import Any, Callable

from .._errors import exception_for
from .._uv.pipe import UVPipe
from .._uv.stream import UVStream
from .._uv.tcp import UVTCP
from .handles import Handle
from .stream_transport import UVStreamTransport

logger = logging.getLogger("asyncio")


class _Listener:
    """One listening socket: its Python socket object, and the libuv handle on its fd
    once the server serves (None before: the fd is then still the socket object's)."""

    __slots__ = ("sock", "handle", "socket_file")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.handle: UVStream | None = None
        # (path, inode) of a Unix socket's file to remove on close (3.13's cleanup_socket).
        self.socket_file: tuple[str, int] | None = None

    def remove_socket_file(self) -> None:
        """Remove the socket file, unless something else has taken its path since."""
        path, inode = self.socket_file  # type: ignore[misc]
        self.socket_file = None
        try:
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)


class Server(asyncio.AbstractServer):
    def __init__(
        self,
        loop: Any,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> None:
        self._loop = loop
        self._listeners: list[_Listener] | None = [_Listener(sock) for sock in sockets]
        self._protocol_factory = protocol_factory
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        # The transports of this server's connections, until their connection_lost.
        self._clients: set[Any] = set()
        self._waiters: list[Any] | None = []
        self._serving = False
        self._serving_forever_fut: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # -- connection accounting (transports call these) --------------------------------------

    def _attach(self, transport: Any) -> None:
        self._clients.add(transport)

    def _detach(self, transport: Any) -> None:
        self._clients.discard(transport)
        if not self._clients and self._listeners is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # -- accepting ---------------------------------------------------------------------------

    def _start_serving(self) -> None:
        if self._serving or self._listeners is None:
            return
        # listen() through the socket module first: its errors are asyncio's, and a
        # socket that cannot listen is never handed to libuv, so it stays its owner's.
        for listener in self._listeners:
            listener.sock.listen(self._backlog)
        self._serving = True
        loop = self._loop
        for listener in self._listeners:
            sock = listener.sock
            handle: UVStream
            if sock.family == socket.AF_UNIX:
                handle = UVPipe(loop._uv)
            else:
                handle = UVTCP(loop._uv)  # AF_UNSPEC: open() adopts the fd
            try:
                handle.open(sock.fileno())  # type: ignore[attr-defined]
                handle.on_connection = (
                    lambda status, lst=listener: self._on_connection(lst, status)
                )
                handle.listen(self._backlog)
            except BaseException:
                handle.close()
                raise
            # From here libuv owns the fd; the socket object is detached before it closes.
            loop._fd_sockets.add(sock)
            listener.handle = handle

    def _on_connection(self, listener: _Listener, status: int) -> None:
        """A connection is waiting (called during dispatch: accept it, defer the rest)."""
        loop = self._loop
        if status < 0:
            loop._ready.append(Handle(self._report_accept_error, (exception_for(status),),
                                      loop, None))
            return
        family = listener.sock.family
        client: UVStream = UVPipe(loop._uv) if family == socket.AF_UNIX else UVTCP(loop._uv)
        try:
            listener.handle.accept(client)  # type: ignore[union-attr]
        except OSError as exc:
            client.close()
            loop._ready.append(Handle(self._report_accept_error, (exc,), loop, None))
            return
        loop._ready.append(Handle(self._make_transport, (client, family), loop, None))

    def _report_accept_error(self, exc: BaseException) -> None:
        self._loop.call_exception_handler(
            {
                "message": "socket.accept() out of system resource",
                "exception": exc,
                "socket": self.sockets[0] if self.sockets else None,
            }
        )

    def _make_transport(self, client: UVStream, family: int) -> None:
        if self._listeners is None:
            client.close()  # the server closed since the connection was accepted
            return
        loop = self._loop
        try:
            if family != socket.AF_UNIX:
                client.nodelay(True)  # type: ignore[attr-defined]
            protocol = self._protocol_factory()
            if self._ssl_context is not None:
                loop._make_ssl_transport(
                    client, protocol, self._ssl_context, family=family, server_side=True,
                    server=self, ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout,
                )
            else:
                UVStreamTransport(loop, client, protocol, family=family, server=self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            client.close()
            loop.call_exception_handler(
                {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
            )

    # -- the AbstractServer API ---------------------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop  # type: ignore[no-any-return]

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[Any, ...]:
        if self._listeners is None:
            return ()
        return tuple(trsock.TransportSocket(lst.sock) for lst in self._listeners)

    def close(self) -> None:
        listeners = self._listeners
        if listeners is None:
            return
        self._listeners = None
        for listener in listeners:
            if listener.handle is None:
                listener.sock.close()  # never served: the fd is still the socket's
                continue
            self._loop._fd_sockets.discard(listener.sock)
            listener.sock.detach()  # libuv closes the fd with the handle
            listener.handle.close()
        for listener in listeners:
            if listener.socket_file is not None:
                listener.remove_socket_file()
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if not self._clients:
            self._wakeup()

    def _remove_on_close(self, sock: socket.socket, path: str, inode: int) -> None:
        """Have close() remove ``sock``'s file at ``path`` if it still has ``inode``."""
        for listener in self._listeners or ():
            if listener.sock is sock:
                listener.socket_file = (path, inode)

    def close_clients(self) -> None:  # 3.13
        """Close every connection this server accepted (their transports' close())."""
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:  # 3.13
        """Abort every connection this server accepted, dropping unsent data."""
        for transport in list(self._clients):
            transport.abort()

    async def start_serving(self) -> None:
        self._start_serving()
        # Let the libuv listen take effect before returning, as asyncio yields once.
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._listeners is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection it accepted is gone."""
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
