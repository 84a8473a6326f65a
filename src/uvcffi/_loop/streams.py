"""TCP and Unix stream connections and servers, and TLS on top of them.

``create_connection`` resolves through ``getaddrinfo`` (libuv's thread pool) and connects
with ``uv_tcp_connect`` directly: libuv creates the socket, so no Python socket object
exists until a transport's ``get_extra_info('socket')`` asks for one.  Servers bind Python
sockets first -- so bind errors, socket options and ``server.sockets`` are exactly the
socket module's -- then hand each fd to a libuv handle that listens on it.  Either way the
fd belongs to libuv from then on: Python socket objects over it are detached before libuv
closes it, so it is closed exactly once.

TLS is the stdlib's own ``asyncio.sslproto.SSLProtocol`` placed between our transport and
the application's protocol, as asyncio's loops do, so certificates, handshake and
shutdown timeouts and close semantics are asyncio's.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import itertools
import logging
import os
import socket
import stat
import sys
from asyncio import sslproto
from typing import Any, Callable

from .._errors import exception_for
from .._uv.pipe import UVPipe
from .._uv.stream import UVStream
from .._uv.tcp import UVTCP
from .core import LoopCore
from .server import Server
from .stream_transport import UVStreamTransport

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

logger = logging.getLogger("asyncio")

_HAS_IPV6 = hasattr(socket, "AF_INET6")
_SSL_SHUTDOWN_TIMEOUT_SUPPORTED = sys.version_info >= (3, 11)
# 3.13 added create_unix_server(cleanup_socket=True); before, the argument does not exist.
_CLEANUP_SOCKET_DEFAULT = sys.version_info >= (3, 13)
_NOT_GIVEN: Any = object()


def _socket_file_of(sock: socket.socket) -> tuple[str, int] | None:
    """The path a listening Unix socket is bound to and that file's inode, for removing it
    when the server closes (3.13's cleanup_socket); None for abstract or unnamed ones."""
    path = sock.getsockname()
    if not path or path[0] in (0, "\x00"):
        return None
    try:
        return path, os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _interleave_addrinfos(infos: list[Any], first_family_count: int = 1) -> list[Any]:
    """Alternate address families (RFC 8305), ``first_family_count`` of the first first."""
    by_family: dict[int, list[Any]] = collections.OrderedDict()
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    result: list[Any] = []
    if first_family_count > 1:
        result.extend(lists[0][: first_family_count - 1])
        del lists[0][: first_family_count - 1]
    result.extend(
        a for a in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if a is not None
    )
    return result


def _check_ssl_args(
    ssl: Any, ssl_handshake_timeout: Any, ssl_shutdown_timeout: Any
) -> None:
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def _ssl_protocol(
    loop: Any, app_protocol: Any, sslcontext: Any, waiter: Any, **kwargs: Any
) -> Any:
    if not _SSL_SHUTDOWN_TIMEOUT_SUPPORTED:
        kwargs.pop("ssl_shutdown_timeout", None)
    return sslproto.SSLProtocol(loop, app_protocol, sslcontext, waiter, **kwargs)


class StreamsMixin(LoopCore):
    # -- helpers -----------------------------------------------------------------------------

    async def _connect_stream(self, handle: UVStream, start: Callable[[], None]) -> None:
        """Run ``start`` (a uv connect) and wait for its CONNECT event."""
        fut = self.create_future()

        def on_connect(status: int) -> None:
            if not fut.done():
                fut.set_result(status)

        handle.on_connect = on_connect
        start()
        status = await fut
        if status < 0:
            raise exception_for(status)

    async def _connect_tcp(self, info: Any, local_infos: list[Any] | None) -> UVTCP:
        family, _, _, _, address = info
        tcp = UVTCP(self._uv, family)
        try:
            if local_infos is not None:
                for laddr in local_infos:
                    if laddr[0] != family:
                        continue
                    try:
                        tcp.bind(family, laddr[4])
                        break
                    except OSError as exc:
                        raise OSError(
                            exc.errno,
                            f"error while attempting to bind on address {laddr[4]!r}: "
                            f"{(exc.strerror or '').lower()}",
                        ) from None
                else:
                    raise OSError(f"no matching local address with family={family} found")
            try:
                await self._connect_stream(tcp, lambda: tcp.connect(family, address))
            except OSError as exc:
                raise OSError(exc.errno, f"Connect call failed {address}") from None
            return tcp
        except BaseException:
            tcp.close()
            raise

    async def _ensure_resolved(self, address: Any, *, family: int = 0, type: int = 0,
                               proto: int = 0, flags: int = 0) -> list[Any]:
        host, port = address[:2]
        infos = await self.getaddrinfo(host, port, family=family, type=type, proto=proto,
                                       flags=flags)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        return infos

    def _make_transport(self, stream: UVStream, protocol: Any, *, family: int,
                        sock: Any = None, waiter: Any = None, server: Any = None) -> Any:
        return UVStreamTransport(self, stream, protocol, family=family, sock=sock,
                                 waiter=waiter, server=server)

    def _make_ssl_transport(
        self, stream: UVStream, app_protocol: Any, sslcontext: Any, *, family: int,
        waiter: Any = None, server_side: bool = False, server_hostname: str | None = None,
        server: Any = None, sock: Any = None, ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> Any:
        ssl_protocol = _ssl_protocol(
            self, app_protocol, sslcontext, waiter, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        UVStreamTransport(self, stream, ssl_protocol, family=family, sock=sock, server=server)
        return ssl_protocol._app_transport

    async def _finish_stream(
        self, stream: UVStream, protocol_factory: Callable[[], Any], *, family: int,
        ssl: Any, server_hostname: str | None, sock: Any = None, server_side: bool = False,
        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._make_ssl_transport(
                stream, protocol, sslcontext, family=family, waiter=waiter,
                server_side=server_side, server_hostname=server_hostname, sock=sock,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        else:
            transport = self._make_transport(stream, protocol, family=family, sock=sock,
                                             waiter=waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- TCP -------------------------------------------------------------------------------

    async def create_connection(
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: Any = None,
        local_addr: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[Any, Any]:
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1  # RFC 8305 default

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await self._ensure_resolved(
                (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            local_infos = None
            if local_addr is not None:
                local_infos = await self._ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM, proto=proto,
                    flags=flags,
                )
            if interleave:
                infos = _interleave_addrinfos(infos, interleave)
            exceptions: list[BaseException] = []
            tcp: UVTCP | None = None
            if happy_eyeballs_delay is None:
                for info in infos:
                    try:
                        tcp = await self._connect_tcp(info, local_infos)
                        break
                    except OSError as exc:
                        exceptions.append(exc)
            else:
                tcp = await self._happy_eyeballs(infos, local_infos, happy_eyeballs_delay,
                                                 exceptions)
            if tcp is None:
                self._raise_connect_errors(exceptions, all_errors)
            assert tcp is not None
            stream_family = infos[0][0] if tcp is None else self._tcp_family(tcp)
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            tcp = UVTCP(self._uv)  # AF_UNSPEC: no socket yet, open() adopts one
            try:
                sock.setblocking(False)
                tcp.open(sock.fileno())
            except BaseException:
                tcp.close()
                raise
            stream_family = sock.family

        try:
            tcp.nodelay(True)
        except OSError:
            pass
        try:
            return await self._finish_stream(
                tcp, protocol_factory, family=stream_family, ssl=ssl,
                server_hostname=server_hostname, sock=sock,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        except BaseException:
            if sock is not None:
                sock.detach()
            tcp.close()
            raise

    @staticmethod
    def _tcp_family(tcp: UVTCP) -> int:
        name = tcp.getsockname()
        return socket.AF_INET6 if name is not None and len(name) == 4 else socket.AF_INET

    @staticmethod
    def _raise_connect_errors(exceptions: list[BaseException], all_errors: bool) -> None:
        if not exceptions:
            raise OSError("create_connection() found no address to connect to")
        if all_errors and sys.version_info >= (3, 11):  # ExceptionGroup exists from 3.11
            raise ExceptionGroup("create_connection failed", exceptions)  # noqa: F821
        if len(exceptions) == 1:
            raise exceptions[0]
        model = str(exceptions[0])
        if all(str(exc) == model for exc in exceptions):
            raise exceptions[0]
        raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in exceptions)))

    async def _happy_eyeballs(
        self, infos: list[Any], local_infos: list[Any] | None, delay: float,
        exceptions: list[BaseException],
    ) -> UVTCP | None:
        """Start one attempt per ``delay`` (RFC 8305); the first to connect wins."""
        pending: set[asyncio.Future[Any]] = set()
        winner: UVTCP | None = None
        try:
            for info in infos:
                pending.add(asyncio.ensure_future(self._connect_tcp(info, local_infos),
                                                  loop=self))
                while pending:
                    done, pending = await asyncio.wait(
                        pending, timeout=delay, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        exc = task.exception()
                        if exc is None:
                            winner = task.result()
                            return winner
                        exceptions.append(exc)
                    if not done:
                        break  # the delay passed: start the next attempt
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if exc is None:
                        winner = task.result()
                        return winner
                    exceptions.append(exc)
            return None
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                try:
                    tcp = await task
                except BaseException:
                    continue
                if tcp is not winner:
                    tcp.close()

    async def create_server(
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets: list[socket.socket] = []
            if host == "":
                hosts: list[Any] = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = list(host)
            infos: set[Any] = set()
            for h in hosts:
                infos.update(await self._ensure_resolved(
                    (h, port), family=family, type=socket.SOCK_STREAM, flags=flags))
            completed = False
            try:
                for af, socktype, proto, _, sa in infos:
                    try:
                        s = socket.socket(af, socktype, proto)
                    except OSError:
                        if self._debug:
                            logger.warning("create_server() failed to create socket.socket"
                                           "(%r, %r, %r)", af, socktype, proto, exc_info=True)
                        continue
                    sockets.append(s)
                    if reuse_address:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                    if reuse_port:
                        if not hasattr(socket, "SO_REUSEPORT"):
                            raise ValueError("reuse_port not supported by socket module")
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if keep_alive:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                    if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                    try:
                        s.bind(sa)
                    except OSError as err:
                        raise OSError(
                            err.errno,
                            f"error while attempting to bind on address {sa!r}: "
                            f"{(err.strerror or '').lower()}",
                        ) from None
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(self, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout)
        if start_serving:
            try:
                server._start_serving()
            except BaseException:
                if sock is None:
                    server.close()  # sockets we made: close them
                raise
            await asyncio.sleep(0)
        if self._debug:
            logger.info("%r is serving", server)
        return server

    async def connect_accepted_socket(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        stream: UVStream
        if sock.family == socket.AF_UNIX:
            stream = UVPipe(self._uv)
        else:
            stream = UVTCP(self._uv)
        adopted = False
        try:
            sock.setblocking(False)
            stream.open(sock.fileno())  # type: ignore[attr-defined]
            adopted = True
            return await self._finish_stream(
                stream, protocol_factory, family=sock.family, ssl=ssl, server_hostname=None,
                sock=sock, server_side=True, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        except BaseException:
            if not stream.closed:
                if adopted:
                    sock.detach()
                stream.close()
            raise

    # -- Unix sockets ------------------------------------------------------------------------

    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        ssl: Any = None,
        sock: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[Any, Any]:
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        pipe = UVPipe(self._uv)
        adopted = False  # once libuv owns the caller's fd, the sock object must let go
        try:
            if path is not None:
                await self._connect_stream(pipe, lambda: pipe.connect(path))
            else:
                sock.setblocking(False)
                pipe.open(sock.fileno())
                adopted = True
            return await self._finish_stream(
                pipe, protocol_factory, family=socket.AF_UNIX, ssl=ssl,
                server_hostname=server_hostname, sock=sock,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        except BaseException:
            if not pipe.closed:
                if adopted:
                    sock.detach()
                pipe.close()
            raise

    async def create_unix_server(
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: Any = _NOT_GIVEN,
    ) -> Server:
        # cleanup_socket (3.13): closing the server removes its socket file.
        if cleanup_socket is _NOT_GIVEN:
            cleanup_socket = _CLEANUP_SOCKET_DEFAULT
        elif not _CLEANUP_SOCKET_DEFAULT:
            raise TypeError(
                "create_unix_server() got an unexpected keyword argument 'cleanup_socket'"
            )
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # A socket file left by a previous server is removed, as asyncio does.
            if path[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    message = f"Address {path!r} is already in use"
                    raise OSError(errno.EADDRINUSE, message) from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        cleanup = _socket_file_of(sock) if cleanup_socket else None
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout)
        if cleanup is not None:
            server._remove_on_close(sock, *cleanup)
        if start_serving:
            try:
                server._start_serving()
            except BaseException:
                if path is not None:
                    server.close()  # the socket is ours: close it
                raise
            await asyncio.sleep(0)
        return server

    # -- sendfile --------------------------------------------------------------------------

    async def sendfile(
        self,
        transport: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send a file through a transport; returns the number of bytes sent.

        uvcffi has no zero-copy path yet: the file is read in blocks (in the default
        executor) and written through the transport, minding its flow control, which is
        asyncio's fallback; ``fallback=False`` therefore raises SendfileNotAvailableError.
        """
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if not isinstance(transport, UVStreamTransport):
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not isinstance(offset, int):
            raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
        if count is not None:
            if not isinstance(count, int):
                raise TypeError(f"count must be a positive integer (got {count!r})")
            if count <= 0:
                raise ValueError(f"count must be a positive integer (got {count!r})")
        if offset < 0:
            raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
        if not fallback:
            raise asyncio.SendfileNotAvailableError(
                f"fallback is disabled and native sendfile is not supported for "
                f"transport {transport!r}"
            )
        return await transport._sendfile(file, offset, count)

    # -- TLS upgrade ---------------------------------------------------------------------------

    async def start_tls(
        self,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> Any:
        if _ssl is None:
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not isinstance(transport, UVStreamTransport):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()
        ssl_protocol = _ssl_protocol(
            self, protocol, sslcontext, waiter, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False,
        )
        # Pause early so that "ssl_protocol.data_received()" doesn't have a chance to get
        # called before "ssl_protocol.connection_made()".
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport
