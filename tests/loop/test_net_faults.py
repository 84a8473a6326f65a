"""Network faults: resets, half-closes, vanishing and silent peers, cancellation at every
await point, failing protocols and EMFILE while accepting.

The misbehaving peer is usually a plain blocking socket driven from the default executor
(never from the loop's thread), so that it cannot stall the loop under test.  Each test runs
on the stdlib loop (the oracle) and on uvcffi's; cancellation tests also check that no fd
and (for uvcffi) no libuv handle is left behind.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import resource
import socket
import struct

import pytest

from netutil import (
    Recorder,
    assert_no_live_handles,
    close_server,
    collect_errors,
    fd_count,
    guard_non_blocking,
    is_uvcffi,
    make_certs,
    payload,
    run,
    settle,
    start_tcp_server,
    uvcffi_bug,
    wait_until,
)

MiB = 1024 * 1024


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
                         what="the server side's connection_made")
        return self.protocols[0]

    async def nth(self, n):
        await wait_until(lambda: len(self.protocols) > n and self.protocols[n].made.done(),
                         what=f"server-side connection #{n}")
        return self.protocols[n]

    async def all_lost(self, count=None):
        await wait_until(
            lambda: (count is None or len(self.protocols) >= count)
            and all(p.lost.done() for p in self.protocols),
            what="every server-side connection_lost",
        )


def raw_client(port: int, timeout: float = 5.0) -> socket.socket:
    """A blocking client socket, connected (the kernel completes the handshake even before
    the server accepts)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_until_eof(sock: socket.socket, limit: int | None = None) -> bytes:
    chunks = []
    total = 0
    while True:
        chunk = sock.recv(1024 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if limit is not None and total >= limit:
            return b"".join(chunks)


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# -- peers that reset, half-close, vanish or stay silent --------------------------------


def test_peer_resets_during_a_big_write(loop, request):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port)
        srv = await side.first()
        guard_non_blocking(request, loop, srv.transport)
        srv.transport.write(payload(20 * MiB))
        assert srv.transport.get_write_buffer_size() > 0  # the peer reads nothing
        reset(peer)
        exc = await srv.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), repr(exc)
        await settle()
        assert srv.lost_count == 1
        assert srv.transport.is_closing()
        srv.transport.write(b"after the reset")  # ignored
        await close_server(server)

    run(loop, main())
    assert errors == []  # an OSError ends the connection; it is not "unexpected"


def test_peer_resets_an_idle_connection(loop):
    side = ServerSide()
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port)
        peer.sendall(b"hello")
        srv = await side.first()
        await srv.wait_bytes(5)
        reset(peer)
        exc = await srv.lost
        assert isinstance(exc, ConnectionResetError), repr(exc)
        assert srv.lost_count == 1
        assert srv.eof_count == 0
        await close_server(server)

    run(loop, main())
    assert errors == []


def test_peer_resets_after_close_with_queued_writes(loop, request):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port)
        srv = await side.first()
        guard_non_blocking(request, loop, srv.transport)
        srv.transport.write(payload(20 * MiB))
        srv.transport.close()
        await asyncio.sleep(0.05)
        assert not srv.lost.done()  # waiting for the queue to drain
        reset(peer)
        exc = await srv.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), repr(exc)
        await settle()
        assert srv.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_close_with_queued_writes_to_a_slow_peer(loop, request):
    data = payload(20 * MiB, seed=41)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port, timeout=8)
        srv = await side.first()
        guard_non_blocking(request, loop, srv.transport)
        srv.transport.write(data)
        srv.transport.close()
        await asyncio.sleep(0.1)
        assert not srv.lost.done()
        received = await in_thread(recv_until_eof, peer)
        peer.close()
        assert received == data
        assert await srv.lost is None
        await close_server(server)

    run(loop, main())


def test_peer_half_closes(loop):
    class Answer(Recorder):
        def eof_received(self):
            super().eof_received()
            self.transport.write(b"answer to " + bytes(self.received))
            self.transport.close()
            return True

    side = ServerSide(Answer)

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port)
        peer.sendall(b"question")
        peer.shutdown(socket.SHUT_WR)
        reply = await in_thread(recv_until_eof, peer)
        peer.close()
        assert reply == b"answer to question"
        srv = await side.first()
        assert await srv.lost is None
        assert srv.events == ["made", "data", "eof", "lost"]
        await close_server(server)

    run(loop, main())


@pytest.mark.parametrize("how", ["close", "reset"])
def test_peer_connects_and_vanishes(loop, how):
    side = ServerSide(echo=True)
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side)
        for _ in range(5):
            peer = raw_client(port)
            if how == "reset":
                reset(peer)
            else:
                peer.close()
        # Whatever the server saw of them, each accepted connection ends exactly once.
        await asyncio.sleep(0.1)
        await side.all_lost()
        for p in side.protocols:
            assert p.made_count == 1 and p.lost_count == 1
            assert p.lost_exc is None or isinstance(p.lost_exc, ConnectionResetError)
        # And the server still serves.
        count = len(side.protocols)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"still there?")
        assert await client.wait_bytes(12) == b"still there?"
        tr.close()
        await client.lost
        await side.all_lost(count + 1)
        await close_server(server)

    run(loop, main())
    assert errors == []


def test_silent_peer_read_timeout(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        srv = await side.first()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.2)
        # The stream is still usable after the timed-out read.
        srv.transport.write(b"late")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"late"
        writer.close()
        await writer.wait_closed()
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_silent_peer_protocol_sees_nothing(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        peer = raw_client(port)
        srv = await side.first()
        await asyncio.sleep(0.2)
        assert srv.events == ["made"]
        assert not srv.lost.done()
        peer.close()
        assert await srv.lost is None
        await close_server(server)

    run(loop, main())


# -- failing protocols ----------------------------------------------------------------


def test_protocol_factory_raises_on_accept(loop):
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("factory failed")
        return Recorder(echo=True)

    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, factory)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        await wait_until(lambda: calls, what="the protocol factory's call")
        # The server goes on serving.
        tr2, client2 = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr2.write(b"ok")
        assert await client2.wait_bytes(2) == b"ok"
        tr2.close()
        await client2.lost
        tr.close()
        await client.lost
        await close_server(server)

    run(loop, main())
    # (asyncio reports the factory's exception only in debug mode.)
    del errors


def test_connection_lost_raising_still_closes(loop):
    class Raises(Recorder):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            raise ValueError("from connection_lost")

    side = ServerSide(Raises)
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await side.first()
        tr.close()
        await client.lost
        await srv.lost
        await settle()
        assert any(isinstance(e.get("exception"), ValueError) for e in errors)
        await close_server(server)

    run(loop, main())
    assert_no_live_handles(loop)


# -- cancellation at every await point -------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("pki-faults")))


async def cancel_at_each_step(make_coro, steps, close):
    """Start ``make_coro()``, let ``n`` loop iterations pass, cancel, for n in ``steps``;
    whatever finished anyway is closed with ``close(result)``.  Returns how many attempts
    were cancelled and how many finished."""
    cancelled = finished = 0
    for n in steps:
        task = asyncio.ensure_future(make_coro())
        for _ in range(n):
            await asyncio.sleep(0)
        task.cancel()
        try:
            result = await task
        except asyncio.CancelledError:
            cancelled += 1
        else:
            finished += 1
            await close(result)
    return cancelled, finished


async def close_pair(pair):
    tr, proto = pair
    tr.close()
    await asyncio.wait_for(proto.lost, 5)


async def close_streams(pair):
    _, writer = pair
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


def fds_settled(loop):
    """The fd count; for the stdlib loop after a garbage collection, because its happy
    eyeballs code leaves cancelled sockets in reference cycles that only the GC closes.
    uvcffi's fds belong to libuv handles, which the GC never closes: no collection there."""
    if not is_uvcffi(loop):
        gc.collect()
    return fd_count()


def run_cancellation_test(loop, make_server, make_coro, close, steps=range(0, 30)):
    side = ServerSide()

    async def main():
        server = await make_server(side)
        # Warm up: the loop opens some fds of its own on first use (libuv's EMFILE
        # reserve, the resolver's...).
        await close(await make_coro())
        await settle()
        await wait_until(lambda: all(p.lost.done() for p in side.protocols), what="warm-up")
        before = fd_count()
        cancelled, finished = await cancel_at_each_step(make_coro, steps, close)
        assert cancelled > 0
        # Every fd comes back, the server's side of each attempt included.
        await wait_until(lambda: fds_settled(loop) == before, timeout=5,
                         what=f"the fd count to come back to {before} (now {fd_count()})")
        await close_server(server)
        return cancelled, finished

    cancelled, finished = run(loop, main())
    print(f"cancelled {cancelled}, finished {finished}")
    assert_no_live_handles(loop)


def test_cancel_create_connection(loop):
    port = []

    async def make_server(side):
        server, p = await start_tcp_server(loop, side)
        port.append(p)
        return server

    run_cancellation_test(
        loop, make_server,
        lambda: loop.create_connection(Recorder, "127.0.0.1", port[0]), close_pair)


def test_cancel_create_connection_with_name_and_local_addr(loop):
    port = []

    async def make_server(side):
        server, p = await start_tcp_server(loop, side)
        port.append(p)
        return server

    run_cancellation_test(
        loop, make_server,
        lambda: loop.create_connection(Recorder, "localhost", port[0],
                                       local_addr=("127.0.0.1", 0)),
        close_pair)


def test_cancel_create_connection_happy_eyeballs(loop):
    port = []

    async def make_server(side):
        server, p = await start_tcp_server(loop, side)
        port.append(p)
        return server

    run_cancellation_test(
        loop, make_server,
        lambda: loop.create_connection(Recorder, "localhost", port[0],
                                       happy_eyeballs_delay=0.01),
        close_pair)


def test_cancel_open_connection(loop):
    port = []

    async def make_server(side):
        server, p = await start_tcp_server(loop, side)
        port.append(p)
        return server

    run_cancellation_test(
        loop, make_server, lambda: asyncio.open_connection("127.0.0.1", port[0]),
        close_streams)


def test_cancel_create_unix_connection(loop, tmp_path):
    path = str(tmp_path / "cancel.sock")

    async def make_server(side):
        return await loop.create_unix_server(side, path)

    run_cancellation_test(
        loop, make_server, lambda: loop.create_unix_connection(Recorder, path), close_pair)


def test_cancel_tls_create_connection(loop, certs):
    port = []
    errors = collect_errors(loop)

    async def make_server(side):
        server, p = await start_tcp_server(loop, side, ssl=certs.server_context())
        port.append(p)
        return server

    run_cancellation_test(
        loop, make_server,
        lambda: loop.create_connection(Recorder, "127.0.0.1", port[0],
                                       ssl=certs.client_context(),
                                       server_hostname="localhost"),
        close_pair, steps=range(0, 40))
    del errors  # the server side may report handshakes cut short


def _cancel_with_own_sockets(loop, start, steps=range(0, 20)):
    """Like run_cancellation_test, for coroutines that take a socket the test made:
    ``start(side, port)`` returns ``(coro, sock)``.  A socket the coroutine never got to
    own (cancelled before it ran) is closed here; every other fd must come back."""
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        coro, sock = start(side, port)
        await close_pair(await coro)
        await settle()
        before = fds_settled(loop)
        cancelled = 0
        for n in steps:
            coro, sock = start(side, port)
            task = asyncio.ensure_future(coro)
            for _ in range(n):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await close_pair(await task)
            except asyncio.CancelledError:
                cancelled += 1
            await settle(2)
            if sock.fileno() != -1 and n == 0:
                sock.close()  # the coroutine never ran: the socket is still the test's
        assert cancelled > 0
        await wait_until(lambda: fds_settled(loop) == before, timeout=5,
                         what=f"the fd count to come back to {before} (now {fd_count()})")
        await side.all_lost()
        await close_server(server)

    run(loop, main())
    assert_no_live_handles(loop)


def test_cancel_create_connection_with_sock(loop):
    def start(side, port):
        sock = socket.create_connection(("127.0.0.1", port))
        return loop.create_connection(Recorder, sock=sock), sock

    _cancel_with_own_sockets(loop, start)


def test_cancel_connect_accepted_socket(loop):
    def start(side, port):
        a, b = socket.socketpair()
        b.close()  # the peer is gone: the transport sees EOF and closes
        return loop.connect_accepted_socket(Recorder, a), a

    _cancel_with_own_sockets(loop, start)


def test_cancel_start_tls(loop, certs):
    side = ServerSide()  # a plain server: the TLS handshake never completes

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost(1)
        await settle()
        before = fds_settled(loop)
        for n in range(0, 12):
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            task = asyncio.ensure_future(loop.start_tls(
                tr, client, certs.client_context(), server_hostname="localhost"))
            for _ in range(n):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            if n == 0:
                assert not tr.is_closing()  # start_tls never ran
                tr.close()
            # start_tls closes the transport when cancelled (its protocol is the TLS
            # layer by then, which does not pass connection_lost on to ours).
            assert tr.is_closing()
            await side.all_lost(n + 2)
        await side.all_lost()
        await wait_until(lambda: fds_settled(loop) == before, timeout=5,
                         what=f"the fd count to come back to {before} (now {fd_count()})")
        await close_server(server)

    run(loop, main())
    assert_no_live_handles(loop)


def test_cancel_refused_connection_attempts(loop):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main():
            async def attempt():
                try:
                    return await loop.create_connection(Recorder, "127.0.0.1", port)
                except ConnectionRefusedError:
                    return None

            async def nothing(_):
                pass

            await attempt()
            before = fd_count()
            await cancel_at_each_step(attempt, range(0, 10), nothing)
            await settle()
            assert fd_count() == before

        run(loop, main())
    assert_no_live_handles(loop)


# -- EMFILE while accepting ---------------------------------------------------------------


def _fill_fds():
    """Open /dev/null until EMFILE; return the fds."""
    fds = []
    try:
        while True:
            fds.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        if exc.errno != errno.EMFILE:
            for fd in fds:
                os.close(fd)
            raise
    return fds


class _LowFdLimit:
    """Lower RLIMIT_NOFILE's soft limit just above the fds in use; restore on exit."""

    def __enter__(self):
        self.saved = resource.getrlimit(resource.RLIMIT_NOFILE)
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, self.saved[1]))
        return self

    def __exit__(self, *exc_info):
        resource.setrlimit(resource.RLIMIT_NOFILE, self.saved)


def test_emfile_while_accepting_server_keeps_serving(loop):
    side = ServerSide(echo=True)
    collect_errors(loop)  # asyncio reports the failed accept()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost(1)
        pending = socket.socket()  # made before the limit: it needs an fd itself
        fds = []
        with _LowFdLimit():
            try:
                fds = _fill_fds()
                pending.setblocking(False)
                assert pending.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
                await asyncio.sleep(0.2)  # the server tries to accept: EMFILE
            finally:
                for fd in fds:
                    os.close(fd)
        assert len(fds) > 0
        # Descriptors are free again: new connections are served.
        for i in range(3):
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            msg = b"after EMFILE %d" % i
            tr.write(msg)
            assert await client.wait_bytes(len(msg)) == msg
            tr.close()
            await client.lost
        # The connection made while the process was out of fds does not hang for ever:
        # it is either served now or was closed.
        pending.setblocking(True)
        pending.settimeout(5)

        def probe():
            try:
                pending.sendall(b"?")
                return pending.recv(10)
            except (ConnectionResetError, BrokenPipeError):
                return b""

        answer = await in_thread(probe)
        pending.close()
        assert answer in (b"?", b"")
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_emfile_pending_connection_is_served_and_reported(loop, request):
    """asyncio reports the failed accept to the exception handler and accepts the waiting
    connection once descriptors are free again."""
    uvcffi_bug(request, loop, "libuv's EMFILE trick accepts and closes the waiting "
                              "connection and reports nothing to the exception handler "
                              "(a difference from asyncio that server.py documents)")
    side = ServerSide(echo=True)
    errors = collect_errors(loop)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost(1)
        pending = socket.socket()
        fds = []
        with _LowFdLimit():
            try:
                fds = _fill_fds()
                pending.setblocking(False)
                pending.connect_ex(("127.0.0.1", port))
                await asyncio.sleep(0.2)
            finally:
                for fd in fds:
                    os.close(fd)
        pending.setblocking(True)
        pending.settimeout(5)

        def probe():
            try:
                pending.sendall(b"?")
                return pending.recv(10)
            except (ConnectionResetError, BrokenPipeError):
                return b""

        try:
            answer = await in_thread(probe)
        finally:
            pending.close()
            await asyncio.sleep(0.05)
            await side.all_lost()
            await close_server(server)
        assert answer == b"?"
        assert any(isinstance(e.get("exception"), OSError)
                   and e["exception"].errno == errno.EMFILE for e in errors)

    run(loop, main())
