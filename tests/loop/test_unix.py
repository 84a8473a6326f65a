"""Unix domain stream sockets: create_unix_server / create_unix_connection.

Sockets live under pytest's tmp_path; the Linux abstract namespace is tested where it
exists.  Each test runs on the stdlib loop (the oracle) and on uvcffi's.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import socket
import sys
import uuid

import pytest

from conftest import skip_oracle_if
from netutil import (
    Recorder,
    close_server,
    fd_count,
    guard_non_blocking,
    payload,
    run,
    wait_until,
)

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX")

MiB = 1024 * 1024


class ServerSide:
    def __init__(self, cls=Recorder, **kwargs):
        self.cls = cls
        self.kwargs = kwargs
        self.protocols: list[Recorder] = []

    def __call__(self):
        proto = self.cls(**self.kwargs)
        self.protocols.append(proto)
        return proto

    async def first(self):
        await wait_until(lambda: self.protocols and self.protocols[0].made.done(),
                         what="the server side's connection_made")
        return self.protocols[0]

    async def all_lost(self, count=None):
        await wait_until(
            lambda: (count is None or len(self.protocols) >= count)
            and all(p.lost.done() for p in self.protocols),
            what="every server-side connection_lost",
        )


async def echo_once(loop, side, path, message=b"ping"):
    tr, client = await loop.create_unix_connection(Recorder, path)
    tr.write(message)
    got = await client.wait_bytes(len(message))
    tr.close()
    await client.lost
    return tr, got


@pytest.mark.parametrize("kind", ["str", "pathlib", "bytes"])
def test_unix_echo_with_path(loop, tmp_path, kind, request):
    base = tmp_path / "echo.sock"
    path = {"str": str(base), "pathlib": base, "bytes": os.fsencode(base)}[kind]
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_unix_server(side, path)
        assert server.is_serving()
        (sock,) = server.sockets
        assert sock.family == socket.AF_UNIX
        assert os.fsdecode(sock.getsockname()) == str(base)
        assert base.is_socket()
        tr, client = await loop.create_unix_connection(Recorder, path)
        assert tr.get_extra_info("socket").family == socket.AF_UNIX
        assert os.fsdecode(tr.get_extra_info("peername")) == str(base)
        srv = await side.first()
        assert os.fsdecode(srv.transport.get_extra_info("sockname")) == str(base)
        guard_non_blocking(request, loop, tr, srv.transport)
        data = payload(64 * 1024, seed=1)
        tr.write(data)
        got = await client.wait_bytes(len(data))
        assert got == data
        tr.close()
        assert await client.lost is None
        await side.all_lost()
        assert srv.lost_exc is None
        await close_server(server)

    run(loop, main())


def test_unix_large_transfer(loop, tmp_path, request):
    path = str(tmp_path / "big.sock")
    data = payload(8 * MiB, seed=2)
    side = ServerSide()

    async def main():
        server = await loop.create_unix_server(side, path)
        tr, client = await loop.create_unix_connection(Recorder, path)
        srv = await side.first()
        guard_non_blocking(request, loop, tr, srv.transport)
        tr.write(data)
        tr.write_eof()
        await srv.eof
        assert bytes(srv.received) == data
        srv.transport.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_unix_half_close(loop, tmp_path):
    path = str(tmp_path / "half.sock")
    side = ServerSide(keep_open=True)

    async def main():
        server = await loop.create_unix_server(side, path)
        tr, client = await loop.create_unix_connection(Recorder, path)
        assert tr.can_write_eof()
        tr.write(b"question")
        tr.write_eof()
        srv = await side.first()
        await srv.eof
        srv.transport.write(b"answer")
        srv.transport.close()
        await client.eof
        assert bytes(client.received) == b"answer"
        assert await client.lost is None
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_unix_transport_fds_stay_non_blocking(loop, tmp_path):
    path = str(tmp_path / "nb.sock")
    side = ServerSide()

    async def main():
        server = await loop.create_unix_server(side, path)
        tr, client = await loop.create_unix_connection(Recorder, path)
        srv = await side.first()
        blocking = [os.get_blocking(t.get_extra_info("socket").fileno())
                    for t in (tr, srv.transport)]
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)
        assert blocking == [False, False]

    run(loop, main())


def test_unix_server_removes_stale_socket_file(loop, tmp_path):
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(path)  # a socket file nobody listens on any more
    assert os.path.exists(path)
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_unix_server(side, path)
        _, got = await echo_once(loop, side, path)
        assert got == b"ping"
        await side.all_lost()
        await close_server(server)
        # A second server on the path the first one left behind.
        server = await loop.create_unix_server(side, path)
        _, got = await echo_once(loop, side, path, b"again")
        assert got == b"again"
        await side.all_lost(2)
        await close_server(server)

    run(loop, main())


def test_unix_server_refuses_a_path_that_is_not_a_socket(loop, tmp_path):
    path = tmp_path / "regular-file"
    path.write_bytes(b"keep me")

    async def main():
        for i in range(4):
            if i == 1:
                before = fd_count()
            with pytest.raises(OSError) as info:
                await loop.create_unix_server(ServerSide(), str(path))
            assert info.value.errno == errno.EADDRINUSE
        assert fd_count() == before

    run(loop, main())
    assert path.read_bytes() == b"keep me"


def test_unix_abstract_namespace(loop):
    if not sys.platform.startswith("linux"):
        pytest.skip("the abstract socket namespace is Linux-only")
    name = "\0uvcffi-test-" + uuid.uuid4().hex
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_unix_server(side, name)
        sockname = server.sockets[0].getsockname()
        assert sockname in (name, name.encode())
        tr, client = await loop.create_unix_connection(Recorder, name)
        assert tr.get_extra_info("peername") in (name, name.encode())
        tr.write(b"abstract")
        await client.wait_bytes(8)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_unix_server_and_connection_with_sock(loop, tmp_path):
    path = str(tmp_path / "sock.sock")
    side = ServerSide(echo=True)

    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        server = await loop.create_unix_server(side, sock=lsock)
        csock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        csock.connect(path)
        tr, client = await loop.create_unix_connection(Recorder, sock=csock)
        assert tr.get_extra_info("socket").fileno() == csock.fileno()
        tr.write(b"via sock")
        await client.wait_bytes(8)
        tr.close()
        await client.lost
        assert csock.fileno() == -1  # the transport closed it
        await side.all_lost()
        await close_server(server)
        assert lsock.fileno() == -1

    run(loop, main())


def test_unix_connect_missing_path(loop, tmp_path):
    async def main():
        # The first attempt may make the loop open fds it keeps (libuv's EMFILE reserve).
        for i in range(6):
            if i == 1:
                before = fd_count()
            with pytest.raises(FileNotFoundError):
                await loop.create_unix_connection(Recorder, str(tmp_path / "nobody-here"))
        assert fd_count() == before

    run(loop, main())


def test_unix_connect_refused(loop, tmp_path):
    path = str(tmp_path / "not-listening.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # bound, never listening

        async def main():
            with pytest.raises(ConnectionRefusedError):
                await loop.create_unix_connection(Recorder, path)

        run(loop, main())


def test_unix_path_too_long(loop, tmp_path):
    path = str(tmp_path / ("x" * 200))

    async def main():
        with pytest.raises(OSError):
            await loop.create_unix_server(ServerSide(), path)
        with pytest.raises(OSError):
            await loop.create_unix_connection(Recorder, path)

    run(loop, main())


def test_unix_argument_errors(loop, tmp_path):
    path = str(tmp_path / "args.sock")

    async def main():
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Recorder)
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Recorder, path, server_hostname="x")
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Recorder, path, ssl_handshake_timeout=1.0)
        with pytest.raises(ValueError):
            await loop.create_unix_server(ServerSide())
        with pytest.raises(TypeError):
            await loop.create_unix_server(ServerSide(), path, ssl=True)
        with pytest.raises(ValueError):
            await loop.create_unix_server(ServerSide(), path, ssl_handshake_timeout=1.0)
        with socket.socket(socket.AF_UNIX) as s:
            with pytest.raises(ValueError):
                await loop.create_unix_server(ServerSide(), path, sock=s)
            assert s.fileno() != -1
        with socket.socket() as tcp:
            with pytest.raises(ValueError):
                await loop.create_unix_server(ServerSide(), sock=tcp)
            assert tcp.fileno() != -1

    run(loop, main())


def test_unix_connection_ssl_without_server_hostname(loop, tmp_path):
    ssl = pytest.importorskip("ssl")

    async def main():
        with pytest.raises(ValueError):
            await loop.create_unix_connection(
                Recorder, str(tmp_path / "x.sock"),
                ssl=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))

    run(loop, main())


def test_unix_connection_ssl_shutdown_timeout_without_ssl(loop, tmp_path):
    skip_oracle_if(loop, sys.version_info < (3, 11), "ssl_shutdown_timeout is 3.11+")

    async def main():
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Recorder, str(tmp_path / "x.sock"),
                                              ssl_shutdown_timeout=1.0)
        with pytest.raises(ValueError):
            await loop.create_unix_server(ServerSide(), str(tmp_path / "x.sock"),
                                          ssl_shutdown_timeout=1.0)

    run(loop, main())


@pytest.mark.parametrize("case", ["path-and-sock", "tcp-sock"])
def test_unix_connection_argument_errors_leave_sock_alone(loop, tmp_path, case):
    """A ValueError about the arguments must not touch the caller's socket."""
    path = str(tmp_path / "args.sock")
    if case == "path-and-sock":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        args = (path,)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        args = ()
    fd = sock.fileno()

    async def main():
        with pytest.raises(ValueError):
            await loop.create_unix_connection(Recorder, *args, sock=sock)

    try:
        run(loop, main())
        assert sock.fileno() == fd
    finally:
        if sock.fileno() == -1:
            os.close(fd)  # the fd was leaked by a detach: do not leak it in the test run
        else:
            sock.close()


def test_unix_server_start_serving_false(loop, tmp_path):
    path = pathlib.Path(tmp_path / "later.sock")
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_unix_server(side, path, start_serving=False)
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(Recorder, path)
        await server.start_serving()
        assert server.is_serving()
        _, got = await echo_once(loop, side, path)
        assert got == b"ping"
        await side.all_lost()
        server.close()
        assert not server.is_serving()
        await server.wait_closed()

    run(loop, main())


def test_unix_many_connections(loop, tmp_path):
    path = str(tmp_path / "many.sock")
    side = ServerSide(echo=True)
    n = 200

    async def main():
        server = await loop.create_unix_server(side, path, backlog=n)

        async def one(i):
            tr, client = await loop.create_unix_connection(Recorder, path)
            msg = b"%d;" % i
            tr.write(msg)
            got = await client.wait_bytes(len(msg))
            tr.close()
            await client.lost
            return got

        results = await asyncio.gather(*(one(i) for i in range(n)))
        assert results == [b"%d;" % i for i in range(n)]
        await side.all_lost(n)
        await close_server(server)

    run(loop, main())


@pytest.mark.parametrize("start_serving", [True, False])
def test_unix_server_create_and_close_leaves_no_fd(loop, tmp_path, start_serving):
    path = str(tmp_path / "cycle.sock")

    async def main():
        for i in range(5):
            if i == 1:
                before = fd_count()
            server = await loop.create_unix_server(ServerSide(), path,
                                                   start_serving=start_serving)
            await close_server(server)
        await asyncio.sleep(0)
        assert fd_count() == before

    run(loop, main())


CLEANS_UP = sys.version_info >= (3, 13)


@pytest.mark.parametrize("start_serving", [True, False])
def test_unix_server_close_and_its_socket_file(loop, tmp_path, start_serving):
    # 3.13 (cleanup_socket=True by default): closing the server removes its socket file;
    # before, the file stays, as it always did.
    path = str(tmp_path / "srv.sock")

    async def main():
        server = await loop.create_unix_server(ServerSide(), path, start_serving=start_serving)
        assert os.path.exists(path)
        await close_server(server)
        assert os.path.exists(path) is not CLEANS_UP

    run(loop, main())


@pytest.mark.skipif(not CLEANS_UP, reason="cleanup_socket is new in Python 3.13")
def test_unix_server_cleanup_socket_false_keeps_the_file(loop, tmp_path):
    path = str(tmp_path / "keep.sock")

    async def main():
        server = await loop.create_unix_server(ServerSide(), path, cleanup_socket=False)
        await close_server(server)
        assert os.path.exists(path)

    run(loop, main())


@pytest.mark.skipif(not CLEANS_UP, reason="cleanup_socket is new in Python 3.13")
def test_unix_server_leaves_a_file_that_replaced_its_socket(loop, tmp_path):
    path = str(tmp_path / "taken.sock")

    async def main():
        server = await loop.create_unix_server(ServerSide(), path)
        os.unlink(path)
        with open(path, "w") as f:  # someone else's file now, at the same path
            f.write("not ours")
        await close_server(server)
        with open(path) as f:
            assert f.read() == "not ours"

    run(loop, main())


@pytest.mark.skipif(not CLEANS_UP, reason="cleanup_socket is new in Python 3.13")
def test_unix_server_from_a_bound_sock_cleans_up_too(loop, tmp_path):
    path = str(tmp_path / "sock.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)

    async def main():
        server = await loop.create_unix_server(ServerSide(), sock=sock)
        await close_server(server)
        assert not os.path.exists(path)

    run(loop, main())


@pytest.mark.skipif(CLEANS_UP, reason="Python 3.13+ has cleanup_socket")
def test_unix_server_cleanup_socket_is_refused_before_3_13(loop, tmp_path):
    async def main():
        with pytest.raises(TypeError, match="cleanup_socket"):
            await loop.create_unix_server(ServerSide(), str(tmp_path / "x.sock"),
                                          cleanup_socket=True)

    run(loop, main())
