"""TLS over the loop's stream transports: ssl= servers and connections, start_tls, timeouts.

A test CA and a server certificate for localhost / 127.0.0.1 / ::1 are made once per
module (with the cryptography package if it is installed, else the openssl command; the
module is skipped, saying why, if neither is there).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from conftest import skip_oracle_if
from netutil import (
    PY311,
    Recorder,
    close_server,
    collect_errors,
    guard_non_blocking,
    make_certs,
    payload,
    run,
    settle,
    start_tcp_server,
    uvcffi_bug,
    wait_until,
)

ssl = pytest.importorskip("ssl")

KiB = 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    certs = make_certs(str(tmp_path_factory.mktemp("pki")))
    print(f"test PKI made with {certs.how}")
    return certs


class ServerSide:
    def __init__(self, cls=Recorder, **kwargs):
        self.cls = cls
        self.kwargs = kwargs
        self.protocols: list = []

    def __call__(self):
        proto = self.cls(**self.kwargs)
        self.protocols.append(proto)
        return proto

    async def first(self):
        await wait_until(lambda: self.protocols and self.protocols[0].made.done(),
                         what="the server side's connection_made (handshake done)")
        return self.protocols[0]

    async def all_lost(self, count=None):
        await wait_until(
            lambda: (count is None or len(self.protocols) >= count)
            and all(p.lost.done() for p in self.protocols),
            what="every server-side connection_lost",
        )


async def tls_pair(loop, certs, side, **client_kwargs):
    server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
    tr, client = await loop.create_connection(
        Recorder, "127.0.0.1", port, ssl=certs.client_context(), server_hostname="localhost",
        **client_kwargs)
    return server, port, tr, client


def test_tls_echo_small(loop, certs):
    side = ServerSide(echo=True)

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side)
        tr.write(b"hello over tls")
        assert await client.wait_bytes(14) == b"hello over tls"
        tr.close()
        assert await client.lost is None
        await side.all_lost()
        assert bytes(side.protocols[0].received) == b"hello over tls"
        await close_server(server)

    run(loop, main())


def test_tls_echo_large(loop, certs, request):
    data = payload(2 * MiB, seed=31)
    side = ServerSide(echo=True)

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side)
        srv = await side.first()
        guard_non_blocking(request, loop, tr, srv.transport)
        tr.write(data)
        got = await client.wait_bytes(len(data))
        assert got == data
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_tls_extra_info(loop, certs):
    side = ServerSide()

    async def main():
        server_ctx = certs.server_context()
        client_ctx = certs.client_context()
        server, port = await start_tcp_server(loop, side, ssl=server_ctx)
        tr, client = await loop.create_connection(Recorder, "localhost", port, ssl=client_ctx)
        srv = await side.first()
        assert tr.get_extra_info("sslcontext") is client_ctx
        assert srv.transport.get_extra_info("sslcontext") is server_ctx
        for t in (tr, srv.transport):
            obj = t.get_extra_info("ssl_object")
            assert isinstance(obj, ssl.SSLObject)
            cipher = t.get_extra_info("cipher")
            assert isinstance(cipher, tuple) and len(cipher) == 3
            assert cipher == obj.cipher()
            assert t.get_extra_info("compression") == obj.compression()
            assert isinstance(t.get_extra_info("socket"), asyncio.trsock.TransportSocket)
        peercert = tr.get_extra_info("peercert")
        assert ("commonName", "localhost") in [rdn[0] for rdn in peercert["subject"]]
        assert ("DNS", "localhost") in peercert["subjectAltName"]
        assert tr.get_extra_info("ssl_object").server_hostname == "localhost"
        assert srv.transport.get_extra_info("peercert") is None  # no client certificate
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert srv.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_tls_client_close_reaches_server(loop, certs, request):
    # Before 3.11 the stdlib's sslproto reads the transport's private _paused flag.
    side = ServerSide(keep_open=False)

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side)
        assert not tr.can_write_eof()
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        tr.write(b"bye")
        tr.close()
        assert tr.is_closing()
        tr.write(b"ignored after close")
        assert await client.lost is None
        await side.all_lost()
        srv = side.protocols[0]
        assert bytes(srv.received) == b"bye"
        assert srv.lost_count == 1 and client.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_tls_server_close_reaches_client(loop, certs):
    side = ServerSide()

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side)
        srv = await side.first()
        srv.transport.write(b"from server")
        srv.transport.close()
        assert await client.lost is None
        assert bytes(client.received) == b"from server"
        if sys.version_info >= (3, 11):
            # The peer's close_notify is an EOF (3.11's sslproto; 3.9's goes straight to
            # connection_lost).
            assert client.eof_count == 1
        assert await srv.lost is None
        assert client.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_tls_abort(loop, certs):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side)
        srv = await side.first()
        tr.abort()
        assert await client.lost is None
        await side.all_lost()
        assert client.lost_count == 1 and srv.lost_count == 1
        await close_server(server)

    run(loop, main())
    del errors  # the server side may report the unclean end of the connection


def test_tls_streams(loop, certs):
    async def handler(reader, writer):
        line = await reader.readline()
        writer.write(line[::-1])
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0,
                                            ssl=certs.server_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=certs.client_context(), server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"abc\n")
        # The handler answers "\ncba", then closes.
        assert await reader.readline() == b"\n"
        assert await reader.read() == b"cba"
        writer.close()
        await writer.wait_closed()
        await close_server(server)

    run(loop, main())


def test_tls_unix(loop, certs, tmp_path):
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no AF_UNIX")
    path = str(tmp_path / "tls.sock")
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_unix_server(side, path, ssl=certs.server_context())
        tr, client = await loop.create_unix_connection(
            Recorder, path, ssl=certs.client_context(), server_hostname="localhost")
        assert tr.get_extra_info("ssl_object") is not None
        tr.write(b"unix+tls")
        assert await client.wait_bytes(8) == b"unix+tls"
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


class StartTLSServer(Recorder):
    """Plain text until "STARTTLS\\n", then TLS (same protocol object), echoing."""

    def __init__(self, context):
        super().__init__()
        self.context = context
        self.tls_transport = None
        self.upgraded = asyncio.get_running_loop().create_future()

    def data_received(self, data):
        if self.tls_transport is None:
            super().data_received(data)
            if bytes(self.received).endswith(b"STARTTLS\n"):
                self.transport.write(b"OK\n")
                asyncio.ensure_future(self.upgrade())
        else:
            self.received += data
            self.tls_transport.write(data)

    async def upgrade(self):
        loop = asyncio.get_running_loop()
        self.tls_transport = await loop.start_tls(self.transport, self, self.context,
                                                  server_side=True)
        self.upgraded.set_result(None)


def test_start_tls_both_sides(loop, certs):
    servers = []

    def factory():
        servers.append(StartTLSServer(certs.server_context()))
        return servers[-1]

    async def main():
        server, port = await start_tcp_server(loop, factory)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert tr.get_extra_info("ssl_object") is None
        tr.write(b"STARTTLS\n")
        assert await client.wait_bytes(3) == b"OK\n"
        client.received.clear()
        tls = await loop.start_tls(tr, client, certs.client_context(),
                                   server_hostname="localhost")
        assert tls.get_extra_info("ssl_object") is not None
        assert tls.get_extra_info("peercert") is not None
        assert tls.get_protocol() is client
        await servers[0].upgraded
        srv = servers[0]
        assert srv.tls_transport.get_extra_info("ssl_object") is not None
        tls.write(b"secret")
        assert await client.wait_bytes(6) == b"secret"
        tls.close()
        assert await client.lost is None
        await wait_until(lambda: srv.lost.done(), what="the server's connection_lost")
        assert srv.lost_count == 1 and client.lost_count == 1
        assert bytes(srv.received).endswith(b"secret")
        await close_server(server)

    run(loop, main())


def test_start_tls_argument_errors(loop, certs):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        with pytest.raises(TypeError):
            await loop.start_tls(tr, client, object())
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_tls_handshake_timeout(loop, certs):
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()  # the kernel completes the TCP handshake; nobody ever answers TLS
        port = mute.getsockname()[1]

        async def main():
            t0 = loop.time()
            with pytest.raises((ConnectionAbortedError, TimeoutError)):
                await loop.create_connection(
                    Recorder, "127.0.0.1", port, ssl=certs.client_context(),
                    server_hostname="localhost", ssl_handshake_timeout=0.3)
            elapsed = loop.time() - t0
            assert 0.25 <= elapsed < 5, elapsed
            await settle()

        run(loop, main())


def test_tls_server_handshake_timeout(loop, certs):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context(),
                                              ssl_handshake_timeout=0.3)
        # A plain client that never starts the TLS handshake.
        t0 = loop.time()
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        await client.lost  # the server gave up and closed
        elapsed = loop.time() - t0
        assert 0.25 <= elapsed < 5, elapsed
        assert all(not p.made.done() for p in side.protocols)
        await settle()
        await close_server(server)

    run(loop, main())
    del errors


@pytest.mark.parametrize("case", ["wrong-hostname", "unknown-ca"])
def test_tls_certificate_verification_fails(loop, certs, case):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
        if case == "wrong-hostname":
            kwargs = dict(ssl=certs.client_context(), server_hostname="wrong.example")
        else:
            kwargs = dict(ssl=certs.client_context(certs.other_ca), server_hostname="localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(Recorder, "127.0.0.1", port, **kwargs)
        # The server side never gets an application connection.
        await asyncio.sleep(0.05)
        assert all(not p.made.done() for p in side.protocols)
        await close_server(server)
        await settle()

    run(loop, main())
    del errors


def test_tls_argument_errors(loop, certs):
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError):
                # ssl with sock= and no host: server_hostname is required
                await loop.create_connection(Recorder, sock=sock, ssl=certs.client_context())
            assert sock.fileno() != -1

    run(loop, main())


def test_tls_shutdown_timeout(loop, certs, request):
    skip_oracle_if(loop, not PY311, "ssl_shutdown_timeout is 3.11+")
    if not PY311:
        uvcffi_bug(request, loop, "ssl_shutdown_timeout is accepted but ignored before "
                                  "Python 3.11: closing towards a peer that never answers "
                                  "the close_notify never completes")

    class Deaf(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()  # never reads the peer's close_notify

    side = ServerSide(Deaf)

    async def main():
        server, port, tr, client = await tls_pair(loop, certs, side, ssl_shutdown_timeout=0.3)
        srv = await side.first()
        t0 = loop.time()
        tr.close()
        try:
            await asyncio.wait_for(asyncio.shield(client.lost), 3)
        finally:
            tr.abort()
            srv.transport.abort()
        assert loop.time() - t0 < 3
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_tls_no_fd_leak(loop, certs):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
        for i in range(6):
            if i == 1:
                before = len(os.listdir("/proc/self/fd"))
            tr, client = await loop.create_connection(
                Recorder, "127.0.0.1", port, ssl=certs.client_context(),
                server_hostname="localhost")
            tr.write(b"x")
            await client.wait_bytes(1)
            tr.close()
            await client.lost
            await side.all_lost(i + 1)
        await settle()
        assert len(os.listdir("/proc/self/fd")) == before
        await close_server(server)

    run(loop, main())


def test_tls_large_write_to_a_paused_reader(loop, certs, request):
    """A big TLS write to a peer that does not read: the raw transport's flow control
    (which pauses and resumes the TLS layer) holds it, and every byte arrives once the
    peer reads."""
    size = 20 * MiB
    data = payload(size, seed=33)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
        tr, client = await loop.create_connection(
            Recorder, "127.0.0.1", port, ssl=certs.client_context(),
            server_hostname="localhost")
        tr.pause_reading()
        srv = await side.first()
        guard_non_blocking(request, loop, tr, srv.transport)
        srv.transport.write(data)
        await asyncio.sleep(0.1)
        assert len(client.received) == 0
        tr.resume_reading()
        got = await client.wait_bytes(size)
        assert got == data
        assert srv.pause_count == srv.resume_count
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_tls_connect_accepted_socket(loop, certs):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            connecting = asyncio.ensure_future(loop.create_connection(
                Recorder, *listener.getsockname(), ssl=certs.client_context(),
                server_hostname="localhost"))
            await wait_until(lambda: listener_ready(listener), what="a pending connection")
            conn, _ = listener.accept()
        srv_tr, srv = await loop.connect_accepted_socket(
            lambda: Recorder(echo=True), conn, ssl=certs.server_context())
        tr, client = await connecting
        assert srv_tr.get_extra_info("ssl_object").server_side
        tr.write(b"accepted over tls")
        assert await client.wait_bytes(17) == b"accepted over tls"
        tr.close()
        await client.lost
        await srv.lost
        assert conn.fileno() == -1

    run(loop, main())


def listener_ready(listener):
    import select

    return bool(select.select([listener], [], [], 0)[0])


def test_tls_create_connection_with_sock(loop, certs):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
        sock = socket.create_connection(("127.0.0.1", port))
        tr, client = await loop.create_connection(
            Recorder, sock=sock, ssl=certs.client_context(), server_hostname="localhost")
        tr.write(b"tls via sock")
        assert await client.wait_bytes(12) == b"tls via sock"
        tr.close()
        await client.lost
        await side.all_lost()
        assert sock.fileno() == -1
        await close_server(server)

    run(loop, main())


def test_tls_server_rejects_garbage(loop, certs):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side, ssl=certs.server_context())
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"GET / HTTP/1.0\r\n\r\n" * 10)  # not a TLS ClientHello
        await client.lost  # the server gives up on the handshake and closes
        assert all(not p.made.done() for p in side.protocols)
        # The server goes on serving TLS.
        tr, client = await loop.create_connection(
            Recorder, "127.0.0.1", port, ssl=certs.client_context(),
            server_hostname="localhost")
        tr.close()
        await client.lost
        # (the first connection's protocol was made but never connected: no
        # connection_lost for it)
        await side.protocols[-1].lost
        await close_server(server)

    run(loop, main())
    del errors


def test_stream_writer_start_tls_both_sides(loop, certs):
    if not hasattr(asyncio.StreamWriter, "start_tls"):
        reason = "StreamWriter.start_tls() is 3.11+"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    done = []

    async def handler(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(certs.server_context())
        assert writer.get_extra_info("ssl_object").server_side
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.append(line)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(certs.client_context(), server_hostname="localhost")
        assert writer.get_extra_info("peercert") is not None
        writer.write(b"secret line\n")
        assert await reader.readline() == b"SECRET LINE\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await wait_until(lambda: done, what="the server handler")
        await close_server(server)

    run(loop, main())
