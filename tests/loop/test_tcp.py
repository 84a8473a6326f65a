"""TCP with protocols: transports, create_connection, create_server, connect_accepted_socket.

Loopback only.  Each test runs on the stdlib loop (the oracle) and on uvcffi's; a test the
stdlib loop fails is a wrong test.  Every wait is bounded (``netutil.run``).
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import gc
import inspect
import os
import socket
import sys
from asyncio import selector_events, trsock

import pytest

from conftest import skip_oracle_if
from netutil import (
    PY312,
    Recorder,
    assert_no_live_handles,
    close_server,
    collect_errors,
    fd_count,
    guard_non_blocking,
    is_uvcffi,
    payload,
    raise_nofile_limit,
    require_ipv6,
    run,
    settle,
    start_tcp_server,
    wait_until,
)

KiB = 1024
MiB = 1024 * 1024


class ServerSide:
    """A protocol factory that remembers the protocols it made."""

    def __init__(self, cls=Recorder, **kwargs):
        self.cls = cls
        self.kwargs = kwargs
        self.protocols: list[Recorder] = []

    def __call__(self):
        proto = self.cls(**self.kwargs)
        self.protocols.append(proto)
        return proto

    async def first(self) -> Recorder:
        await wait_until(lambda: self.protocols and self.protocols[0].made.done(),
                         what="the server side's connection_made")
        return self.protocols[0]

    async def all_lost(self, count: int | None = None) -> None:
        await wait_until(
            lambda: (count is None or len(self.protocols) >= count)
            and all(p.lost.done() for p in self.protocols),
            what="every server-side connection_lost",
        )


# -- data transfer -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [KiB, 100 * KiB, 10 * MiB], ids=["1KiB", "100KiB", "10MiB"])
def test_echo_every_byte(loop, size, request):
    data = payload(size, seed=size)
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        if size >= 64 * KiB:
            guard_non_blocking(request, loop, tr, (await side.first()).transport)
        tr.write(data)
        got = await client.wait_bytes(size)
        assert len(got) == size
        assert got == data
        tr.close()
        assert await client.lost is None
        await side.all_lost()
        srv = side.protocols[0]
        assert bytes(srv.received) == data
        assert srv.events[0] == "made" and srv.events[-2:] == ["eof", "lost"]
        assert srv.lost_exc is None
        assert (client.lost_count, srv.lost_count) == (1, 1)
        await close_server(server)

    run(loop, main())


class BufferedRecorder(asyncio.BufferedProtocol):
    """Receives into a small fixed buffer; ``echo`` writes every chunk back."""

    def __init__(self, bufsize, echo=False):
        loop = asyncio.get_running_loop()
        self.buf = bytearray(bufsize)
        self.echo = echo
        self.received = bytearray()
        self.hints: list[int] = []
        self.updates: list[int] = []
        self.transport = None
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.lost_count = 0

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, nbytes):
        assert 0 < nbytes <= len(self.buf)
        self.updates.append(nbytes)
        chunk = bytes(self.buf[:nbytes])
        self.received += chunk
        if self.echo:
            self.transport.write(chunk)

    def eof_received(self):
        self.eof.set_result(None)

    def connection_lost(self, exc):
        self.lost_count += 1
        self.lost.set_result(exc)


def test_buffered_protocol_echo(loop, request):
    size = 300 * KiB
    data = payload(size, seed=7)
    servers = []

    def factory():
        proto = BufferedRecorder(1000, echo=True)
        servers.append(proto)
        return proto

    async def main():
        server, port = await start_tcp_server(loop, factory)
        tr, client = await loop.create_connection(lambda: BufferedRecorder(777), "127.0.0.1",
                                                  port)
        await wait_until(lambda: servers and servers[0].transport, what="connection_made")
        guard_non_blocking(request, loop, tr, servers[0].transport)
        tr.write(data)
        await wait_until(lambda: len(client.received) >= size, what="the echo")
        assert bytes(client.received) == data
        assert max(client.updates) <= 777
        tr.close()
        assert await client.lost is None
        assert await servers[0].lost is None
        assert servers[0].eof.done()
        assert bytes(servers[0].received) == data
        assert max(servers[0].updates) <= 1000
        assert (client.lost_count, servers[0].lost_count) == (1, 1)
        await close_server(server)

    run(loop, main())


def test_buffered_protocol_empty_buffer_is_fatal(loop):
    class Empty(BufferedRecorder):
        def get_buffer(self, sizehint):
            return bytearray()

    errors = collect_errors(loop)
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(lambda: Empty(10), "127.0.0.1", port)
        srv = await side.first()
        srv.transport.write(b"data")
        exc = await client.lost
        assert isinstance(exc, RuntimeError)
        assert client.lost_count == 1
        assert [type(e.get("exception")) for e in errors] == [RuntimeError]
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_protocol_exception_in_data_received_closes(loop):
    class Broken(Recorder):
        def data_received(self, data):
            raise ZeroDivisionError("boom")

    errors = collect_errors(loop)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Broken, "127.0.0.1", port)
        srv = await side.first()
        srv.transport.write(b"data")
        exc = await client.lost
        assert isinstance(exc, ZeroDivisionError)
        assert client.lost_count == 1
        assert len(errors) == 1 and isinstance(errors[0]["exception"], ZeroDivisionError)
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_thousand_concurrent_connections(loop):
    n = 1000
    raise_nofile_limit(2 * n + 256)
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side, backlog=n)

        async def one(i):
            tr, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
            msg = b"%d\n" % i
            tr.write(msg)
            await proto.wait_bytes(len(msg))
            return tr, proto

        pairs = await asyncio.gather(*(one(i) for i in range(n)))
        # All n connections are open at the same time here.
        assert len(side.protocols) == n
        assert not any(p.lost.done() for _, p in pairs)
        for i, (_, proto) in enumerate(pairs):
            assert bytes(proto.received) == b"%d\n" % i
        for tr, _ in pairs:
            tr.close()
        excs = await asyncio.gather(*(p.lost for _, p in pairs))
        assert excs == [None] * n
        await side.all_lost(n)
        assert all(p.lost_count == 1 for p in side.protocols)
        await close_server(server)

    run(loop, main(), timeout=20)


def test_busy_connection_does_not_starve_others(loop):
    """While one connection streams as fast as it can, another one's round trips still
    complete promptly (reads are shared fairly between ready connections)."""

    async def sink(reader, writer):
        while await reader.read(1 << 20):
            pass
        writer.close()

    async def pong(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
        writer.close()

    async def main():
        flood_server = await asyncio.start_server(sink, "127.0.0.1", 0)
        ping_server = await asyncio.start_server(pong, "127.0.0.1", 0)
        _, flood_w = await asyncio.open_connection(
            "127.0.0.1", flood_server.sockets[0].getsockname()[1])
        ping_r, ping_w = await asyncio.open_connection(
            "127.0.0.1", ping_server.sockets[0].getsockname()[1])
        stop = False
        chunk = bytes(256 * KiB)
        sent = [0]

        async def flood():
            while not stop:
                flood_w.write(chunk)
                sent[0] += len(chunk)
                await flood_w.drain()

        flooding = asyncio.ensure_future(flood())
        await asyncio.sleep(0.1)
        worst = 0.0
        try:
            for i in range(20):
                t0 = loop.time()
                ping_w.write(b"%d\n" % i)
                assert await asyncio.wait_for(ping_r.readline(), 2) == b"%d\n" % i
                worst = max(worst, loop.time() - t0)
        finally:
            stop = True
            await flooding
        assert worst < 1.0, worst
        assert sent[0] >= 4 * MiB  # the flood really ran alongside
        for w in (flood_w, ping_w):
            w.close()
            await w.wait_closed()
        for server in (flood_server, ping_server):
            server.close()
            await server.wait_closed()
        await settle()

    run(loop, main())


# -- flow control --------------------------------------------------------------------------


def test_flow_control_pause_and_resume_writing(loop, request):
    size = 20 * MiB
    data = payload(size, seed=3)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        ctr, client = await loop.create_connection(lambda: Recorder(pause_on_made=True),
                                                   "127.0.0.1", port)
        assert not ctr.is_reading()
        srv = await side.first()
        guard_non_blocking(request, loop, ctr, srv.transport)
        tr = srv.transport
        assert tr.get_write_buffer_limits() == (16 * KiB, 64 * KiB)  # asyncio's defaults
        assert tr.get_write_buffer_size() == 0
        tr.write(data)
        # More than the kernel takes: the protocol is paused at once, by write() itself.
        assert srv.pause_count == 1
        assert srv.sizes_at_pause[0] > 64 * KiB
        buffered = tr.get_write_buffer_size()
        assert buffered > 64 * KiB
        # Once data is queued, a further write queues all of it.
        tr.write(data[:1000])
        assert tr.get_write_buffer_size() == buffered + 1000
        assert srv.pause_count == 1  # already paused: not called again
        await asyncio.sleep(0.1)
        assert srv.resume_count == 0
        assert tr.get_write_buffer_size() > 64 * KiB
        assert len(client.received) == 0
        ctr.resume_reading()
        assert ctr.is_reading()
        got = await client.wait_bytes(size + 1000)
        assert got == data + data[:1000]
        await wait_until(lambda: srv.resume_count == 1, what="resume_writing")
        assert srv.sizes_at_resume[0] <= 16 * KiB
        assert srv.events.index("pause") < srv.events.index("resume")
        assert srv.pause_count == 1
        assert tr.get_write_buffer_size() == 0
        ctr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_write_buffer_limits(loop, request):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        ctr, client = await loop.create_connection(lambda: Recorder(pause_on_made=True),
                                                   "127.0.0.1", port)
        srv = await side.first()
        guard_non_blocking(request, loop, ctr, srv.transport)
        tr = srv.transport
        tr.set_write_buffer_limits(high=100, low=10)
        assert tr.get_write_buffer_limits() == (10, 100)
        tr.set_write_buffer_limits(high=100)
        assert tr.get_write_buffer_limits() == (25, 100)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        tr.set_write_buffer_limits()
        assert tr.get_write_buffer_limits() == (16 * KiB, 64 * KiB)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=10, low=-1)
        assert tr.get_write_buffer_limits() == (16 * KiB, 64 * KiB)

        # High limits: a big write does not pause; lowering them below the buffered
        # size pauses at once.
        tr.set_write_buffer_limits(high=200 * MiB)
        tr.write(payload(20 * MiB))
        buffered = tr.get_write_buffer_size()
        assert buffered > 0
        assert srv.pause_count == 0
        tr.set_write_buffer_limits(high=buffered // 2, low=1000)
        assert srv.pause_count == 1
        ctr.resume_reading()
        await client.wait_bytes(20 * MiB)
        await wait_until(lambda: srv.resume_count == 1, what="resume_writing")
        assert srv.sizes_at_resume[0] <= 1000
        assert tr.get_write_buffer_size() == 0
        ctr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


# -- half-close, pause/resume reading ------------------------------------------------------


def test_write_eof_half_close(loop):
    class Replier(Recorder):
        def eof_received(self):
            super().eof_received()
            # The peer can still read: answer after its EOF, then close.
            self.transport.write(b"got " + bytes(self.received))
            self.transport.close()
            return True

    side = ServerSide(Replier)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert tr.can_write_eof()
        tr.write(b"hello")
        tr.write_eof()
        tr.write_eof()  # a second call is a no-op
        with pytest.raises(RuntimeError):
            tr.write(b"more")
        await client.eof
        assert bytes(client.received) == b"got hello"
        assert await client.lost is None
        assert client.events == ["made", "data", "eof", "lost"]
        await side.all_lost()
        srv = side.protocols[0]
        assert srv.events == ["made", "data", "eof", "lost"]
        assert srv.lost_exc is None
        await close_server(server)

    run(loop, main())


def test_eof_received_false_closes_transport(loop):
    side = ServerSide(keep_open=False)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"x")
        tr.write_eof()
        await side.all_lost()
        srv = side.protocols[0]
        assert srv.events == ["made", "data", "eof", "lost"]
        assert srv.lost_exc is None
        # The server closed its side in response: the client sees EOF.
        await client.eof
        assert await client.lost is None
        await close_server(server)

    run(loop, main())


def test_eof_received_true_keeps_transport_writable(loop):
    side = ServerSide(keep_open=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write_eof()
        srv = await side.first()
        await srv.eof
        await asyncio.sleep(0.05)
        assert not srv.lost.done()
        assert not srv.transport.is_closing()
        srv.transport.write(b"still open")
        await client.wait_bytes(10)
        assert bytes(client.received) == b"still open"
        srv.transport.close()
        await client.eof
        await client.lost
        await side.all_lost()
        assert srv.eof_count == 1 and srv.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_pause_and_resume_reading(loop):
    side = ServerSide(pause_on_made=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert tr.is_reading()
        srv = await side.first()
        stp = srv.transport
        assert not stp.is_reading()
        tr.write(b"x" * 100)
        await asyncio.sleep(0.1)
        assert len(srv.received) == 0
        stp.pause_reading()  # already paused: no-op
        assert not stp.is_reading()
        stp.resume_reading()
        stp.resume_reading()  # already reading: no-op
        assert stp.is_reading()
        await srv.wait_bytes(100)
        assert bytes(srv.received) == b"x" * 100
        tr.pause_reading()
        assert not tr.is_reading()
        tr.close()
        assert not tr.is_reading()
        await client.lost
        await side.all_lost()
        assert not stp.is_reading()
        await close_server(server)

    run(loop, main())


def test_pause_reading_in_connection_made(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11),
                   "before 3.11 (seen on 3.9) the stdlib transport starts reading after "
                   "connection_made even if it paused reading there")

    class Pauser(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()

    side = ServerSide(Pauser)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"early data")
        srv = await side.first()
        await asyncio.sleep(0.1)
        assert not srv.transport.is_reading()
        assert len(srv.received) == 0
        srv.transport.resume_reading()
        await srv.wait_bytes(10)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_pause_reading_in_data_received_before_eof(loop):
    """Data and EOF arrive together; the protocol pauses in data_received and resumes
    later: EOF is delivered once, after the data."""
    resumed = []
    last_words = payload(64 * KiB, seed=5)

    class Pauser(Recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.pause_reading()
            loop.call_later(0.05, self._resume)

        def _resume(self):
            resumed.append(1)
            if not self.transport.is_closing():
                self.transport.resume_reading()

    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(lambda: Pauser(pause_on_made=True),
                                                  "127.0.0.1", port)
        srv = await side.first()
        # 64 KiB exactly: with libuv's suggested read size that is one full read buffer,
        # so the FIN is read right after it, in the same batch (the case this tests).
        srv.transport.write(last_words)
        srv.transport.close()
        await side.all_lost()
        await asyncio.sleep(0.05)  # data and FIN are both in the client's socket now
        tr.resume_reading()
        exc = await client.lost
        await settle()
        await close_server(server)
        assert exc is None
        assert bytes(client.received) == last_words
        assert client.eof_count == 1
        assert client.events == ["made", "data", "eof", "lost"]

    run(loop, main())


def test_close_in_data_received_suppresses_eof(loop):
    """A protocol that closes its transport in data_received gets no eof_received, even
    if the EOF had already been read along with the data."""

    class Closer(Recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.close()

    side = ServerSide()
    last_words = payload(64 * KiB, seed=6)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(lambda: Closer(pause_on_made=True),
                                                  "127.0.0.1", port)
        srv = await side.first()
        # (64 KiB: one full read at libuv's suggested size, then the FIN in the same batch)
        srv.transport.write(last_words)
        srv.transport.close()
        await side.all_lost()
        await asyncio.sleep(0.05)
        tr.resume_reading()
        exc = await client.lost
        await settle()
        await close_server(server)
        assert exc is None
        assert bytes(client.received) == last_words
        assert client.events == ["made", "data", "lost"]

    run(loop, main())


def test_loop_close_with_open_transports_leaves_other_fds_alone(loop):
    """Closing the loop with a server and transports still open must not make their
    socket objects close, later, fd numbers that were reused meanwhile."""
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await side.first()
        fds = {tr.get_extra_info("socket").fileno(),
               srv.transport.get_extra_info("socket").fileno(),
               server.sockets[0].fileno()}
        return [server, tr, client, srv], fds

    objects, fds = run(loop, main())
    loop.close()
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(32)]
    try:
        reused = [fd for fd in opened if fd in fds]
        del objects
        side.protocols.clear()
        for _ in range(3):
            gc.collect()
        closed_behind_our_back = []
        for fd in reused:
            try:
                os.fstat(fd)
            except OSError:
                closed_behind_our_back.append(fd)
        assert closed_behind_our_back == []
    finally:
        for fd in opened:
            try:
                os.close(fd)
            except OSError:
                pass


# -- closing -------------------------------------------------------------------------------


def test_close_delivers_queued_writes_first(loop, request):
    size = 20 * MiB
    data = payload(size, seed=11)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        ctr, client = await loop.create_connection(lambda: Recorder(pause_on_made=True),
                                                   "127.0.0.1", port)
        srv = await side.first()
        guard_non_blocking(request, loop, ctr, srv.transport)
        tr = srv.transport
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        assert tr.is_closing()
        tr.close()  # idempotent
        await asyncio.sleep(0.1)
        # Nothing lost while the peer is not reading: the data is still queued.
        assert not srv.lost.done()
        ctr.resume_reading()
        got = await client.wait_bytes(size)
        assert got == data
        assert await srv.lost is None
        await client.eof
        assert await client.lost is None
        assert bytes(client.received) == data
        assert srv.lost_count == 1 and client.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_abort_drops_queued_writes(loop, request):
    size = 20 * MiB
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        ctr, client = await loop.create_connection(lambda: Recorder(pause_on_made=True),
                                                   "127.0.0.1", port)
        srv = await side.first()
        guard_non_blocking(request, loop, ctr, srv.transport)
        tr = srv.transport
        tr.write(payload(size))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        # connection_lost(None) without waiting for the peer to read anything.
        assert await srv.lost is None
        assert srv.lost_count == 1
        tr.abort()
        tr.close()
        ctr.resume_reading()
        exc = await client.lost
        assert exc is None or isinstance(exc, ConnectionResetError)
        assert len(client.received) < size
        await settle()
        assert srv.lost_count == 1
        await close_server(server)

    run(loop, main())


def test_write_eof_after_queued_writes(loop, request):
    size = 20 * MiB
    data = payload(size, seed=13)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        ctr, client = await loop.create_connection(
            lambda: Recorder(pause_on_made=True, keep_open=True), "127.0.0.1", port)
        srv = await side.first()
        guard_non_blocking(request, loop, ctr, srv.transport)
        srv.transport.write(data)
        assert srv.transport.get_write_buffer_size() > 0
        srv.transport.write_eof()  # the FIN goes after the queued data
        assert not srv.transport.is_closing()
        await asyncio.sleep(0.05)
        assert not client.eof.done()
        ctr.resume_reading()
        await client.eof
        assert bytes(client.received) == data
        # Half-closed: the client can still send.
        ctr.write(b"reply")
        await srv.wait_bytes(5)
        ctr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_many_writes_keep_their_order(loop, request):
    chunks = [payload(n, seed=n) for n in [3 * MiB, *range(1, 2000, 7), 2 * MiB, 5, 1 * MiB]]
    data = b"".join(chunks)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await side.first()
        guard_non_blocking(request, loop, tr, srv.transport)
        for chunk in chunks:
            tr.write(chunk)
        got = await srv.wait_bytes(len(data))
        assert got == data
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_connection_lost_exactly_once(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"bye")
        tr.close()
        tr.close()
        tr.abort()
        assert await client.lost is None
        tr.abort()
        tr.close()
        await side.all_lost()
        await settle()
        assert client.lost_count == 1
        assert side.protocols[0].lost_count == 1
        assert client.events.count("lost") == 1
        await close_server(server)

    run(loop, main())


def _stdlib_writelines_ignores_a_closed_transport() -> bool:
    """Whether this Python's selector socket transport drops writelines() data once it is
    closed, as write() always did.  Before 3.12 writelines() is WriteTransport's
    ``self.write(b"".join(...))``; 3.12 gave _SelectorSocketTransport a sendmsg()
    writelines() without write()'s ``_conn_lost`` check, so after close() it calls the
    cleared ``_write_ready`` (TypeError) -- CPython gh-136234, fixed in later 3.13/3.14
    patch releases by giving writelines() that check (never in 3.12)."""
    writelines = selector_events._SelectorSocketTransport.writelines
    if writelines is asyncio.WriteTransport.writelines:
        return True
    try:
        return "_conn_lost" in inspect.getsource(writelines)
    except OSError:  # no source: assume the unfixed 3.12 code
        return False


def test_write_after_close_is_ignored(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        tr.write(b"ignored")  # no exception
        await client.lost
        for _ in range(3):
            tr.write(b"after connection_lost")
        await side.all_lost()
        assert len(side.protocols[0].received) == 0
        await close_server(server)

    run(loop, main())


def test_writelines_after_close_is_ignored(loop):
    skip_oracle_if(loop, not _stdlib_writelines_ignores_a_closed_transport(),
                   "3.12+'s selector transport writelines() lacks write()'s closed-transport "
                   "check and raises TypeError after close() (CPython gh-136234)")
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        tr.writelines([b"also", b"ignored"])  # no exception
        await client.lost
        for _ in range(3):
            tr.writelines([b"after", b"connection_lost"])
        await side.all_lost()
        assert len(side.protocols[0].received) == 0
        await close_server(server)

    run(loop, main())


def test_write_type_checks(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        with pytest.raises(TypeError):
            tr.write("text")
        with pytest.raises(TypeError):
            tr.write(12)
        tr.write(b"")  # nothing, no error
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_write_bytes_like_objects_and_writelines(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(bytearray(b"ab"))
        tr.write(memoryview(b"xcdx")[1:3])
        tr.write(memoryview(bytearray(b"ef")))
        tr.writelines([b"g", bytearray(b"h"), memoryview(b"i")])
        tr.writelines(iter([b"j", b"k"]))
        tr.writelines([])
        tr.write_eof()
        srv = await side.first()
        await srv.eof
        assert bytes(srv.received) == b"abcdefghijk"
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_set_protocol_and_get_protocol(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert tr.get_protocol() is client
        tr.write(b"one")
        srv = await side.first()
        await srv.wait_bytes(3)
        second = Recorder()
        srv.transport.set_protocol(second)
        assert srv.transport.get_protocol() is second
        tr.write(b"two")
        await second.wait_bytes(3)
        tr.close()
        await client.lost
        assert await second.lost is None
        assert bytes(srv.received) == b"one"
        assert bytes(second.received) == b"two"
        assert second.events == ["data", "eof", "lost"]
        assert not srv.lost.done()
        await close_server(server)

    run(loop, main())


def test_get_extra_info_and_nodelay(loop):
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await side.first()
        for t in (tr, srv.transport):
            sock = t.get_extra_info("socket")
            assert isinstance(sock, trsock.TransportSocket)
            assert sock.family == socket.AF_INET
            assert sock.type == socket.SOCK_STREAM
            assert sock.fileno() >= 0
            # asyncio sets TCP_NODELAY on its TCP transports, client and accepted.
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert t.get_extra_info("sockname") == sock.getsockname()
            assert t.get_extra_info("peername") == sock.getpeername()
            assert t.get_extra_info("no such key") is None
            assert t.get_extra_info("no such key", "dflt") == "dflt"
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert srv.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert srv.transport.get_extra_info("sockname") == ("127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_transport_fds_stay_non_blocking(loop):
    """The loop's sockets must stay non-blocking, whoever made them and whatever the
    transport does with them (a blocking fd stalls the whole loop)."""
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        transports = []
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        transports.append(tr)
        transports.append((await side.first()).transport)
        sock = socket.create_connection(("127.0.0.1", port))
        tr2, _ = await loop.create_connection(Recorder, sock=sock)
        transports.append(tr2)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            tr3, _ = await loop.create_connection(Recorder, *listener.getsockname())
            conn, _ = listener.accept()
        tr4, _ = await loop.connect_accepted_socket(Recorder, conn)
        transports += [tr3, tr4]
        blocking = [os.get_blocking(t.get_extra_info("socket").fileno()) for t in transports]
        protocols = [t.get_protocol() for t in transports]
        for t in transports:
            t.close()
        await wait_for_protocols(side, 2)
        for p in protocols:
            await p.lost
        await side.all_lost(2)
        await close_server(server)
        assert blocking == [False] * len(transports)

    run(loop, main())


# -- create_connection -------------------------------------------------------------------


def test_create_connection_host_name(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "localhost", port)
        tr.write(b"ping")
        await client.wait_bytes(4)
        assert tr.get_extra_info("peername")[:2] == ("127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_create_connection_ipv6(loop):
    require_ipv6()
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side, host="::1")
        tr, client = await loop.create_connection(Recorder, "::1", port)
        assert tr.get_extra_info("socket").family == socket.AF_INET6
        assert tr.get_extra_info("peername")[:2] == ("::1", port)
        tr.write(b"ping6")
        await client.wait_bytes(5)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_create_connection_local_addr(loop):
    side = ServerSide()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port,
                                                  local_addr=("127.0.0.1", 0))
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        tr.close()
        await client.lost
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port,
                                                  local_addr=("127.0.0.1", free_port))
        assert tr.get_extra_info("sockname") == ("127.0.0.1", free_port)
        srv = await wait_for_protocols(side, 2)
        assert srv.transport.get_extra_info("peername") == ("127.0.0.1", free_port)
        tr.close()
        await client.lost
        await side.all_lost(2)
        await close_server(server)

    run(loop, main())


async def wait_for_protocols(side, n):
    await wait_until(lambda: len(side.protocols) >= n and side.protocols[n - 1].made.done(),
                     what=f"{n} server-side connections")
    return side.protocols[n - 1]


def test_create_connection_local_addr_in_use(loop):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()

        async def main():
            server, port = await start_tcp_server(loop, ServerSide())
            with pytest.raises(OSError) as info:
                await loop.create_connection(Recorder, "127.0.0.1", port, local_addr=busy)
            assert info.value.errno == errno.EADDRINUSE
            await close_server(server)

        run(loop, main())


def test_create_connection_local_addr_family_mismatch(loop):
    require_ipv6()
    skip_oracle_if(loop, sys.version_info < (3, 11),
                   "before 3.11 (seen on 3.9) asyncio binds a local address of the other "
                   "family and raises ValueError from socket.bind")

    async def main():
        server, port = await start_tcp_server(loop, ServerSide())
        with pytest.raises(OSError):
            await loop.create_connection(Recorder, "127.0.0.1", port, local_addr=("::1", 0))
        await close_server(server)

    run(loop, main())


def test_create_connection_refused(loop):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connecting is refused

        async def main():
            with pytest.raises(ConnectionRefusedError) as info:
                await loop.create_connection(Recorder, "127.0.0.1", port)
            assert info.value.errno == errno.ECONNREFUSED
            assert isinstance(info.value, OSError)

        run(loop, main())


def test_create_connection_sock(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        sock = socket.socket()
        sock.connect(("127.0.0.1", port))
        tr, client = await loop.create_connection(Recorder, sock=sock)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        tr.write(b"via sock")
        await client.wait_bytes(8)
        tr.close()
        await client.lost
        # The transport owned the socket and closed it.
        assert sock.fileno() == -1
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def _fake_getaddrinfo(loop, infos):
    """Make ``loop.getaddrinfo`` answer ``infos`` for the name 'multi.test'."""
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, *args, **kwargs):
        if host == "multi.test":
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (addr, port, *rest))
                    for family, addr, *rest in infos]
        return await real(host, port, *args, **kwargs)

    loop.getaddrinfo = getaddrinfo


@pytest.mark.parametrize("happy_eyeballs_delay", [None, 0.05])
def test_create_connection_tries_every_address(loop, happy_eyeballs_delay):
    require_ipv6()
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)  # 127.0.0.1 only
        # ::1 first, where nothing listens on that port: refused, then 127.0.0.1 works.
        _fake_getaddrinfo(loop, [(socket.AF_INET6, "::1", 0, 0),
                                 (socket.AF_INET, "127.0.0.1")])
        tr, client = await loop.create_connection(
            Recorder, "multi.test", port, happy_eyeballs_delay=happy_eyeballs_delay)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        tr.write(b"x")
        await client.wait_bytes(1)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


@pytest.mark.parametrize("happy_eyeballs_delay", [None, 0.05])
def test_create_connection_all_addresses_refused(loop, happy_eyeballs_delay):
    require_ipv6()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main():
            _fake_getaddrinfo(loop, [(socket.AF_INET6, "::1", 0, 0),
                                     (socket.AF_INET, "127.0.0.1")])
            with pytest.raises(OSError) as info:
                await loop.create_connection(Recorder, "multi.test", port,
                                             happy_eyeballs_delay=happy_eyeballs_delay)
            assert "Multiple exceptions" in str(info.value)

        run(loop, main())


def test_create_connection_all_errors(loop):
    if not hasattr(builtins, "ExceptionGroup"):
        pytest.skip("no ExceptionGroup before 3.11")
    skip_oracle_if(loop, not PY312, "all_errors= is 3.12+")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main():
            _fake_getaddrinfo(loop, [(socket.AF_INET, "127.0.0.1")])
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821
                await loop.create_connection(Recorder, "multi.test", port, all_errors=True)
            assert [type(e) for e in info.value.exceptions] == [ConnectionRefusedError]

        run(loop, main())


def test_create_connection_argument_errors(loop):
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError):
                await loop.create_connection(Recorder, "127.0.0.1", 1, sock=sock)
            assert sock.fileno() != -1
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder, "127.0.0.1", 1, server_hostname="x")
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder, "127.0.0.1", 1,
                                         ssl_handshake_timeout=1.0)
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError):
                await loop.create_connection(Recorder, sock=udp)
            assert udp.fileno() != -1

    run(loop, main())


def test_create_connection_ssl_shutdown_timeout_without_ssl(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11), "ssl_shutdown_timeout is 3.11+")

    async def main():
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder, "127.0.0.1", 1, ssl_shutdown_timeout=1.0)

    run(loop, main())


def test_create_connection_name_resolution_error(loop):
    async def main():
        with pytest.raises(socket.gaierror):
            await loop.create_connection(Recorder, "no-such-host.invalid", 80)

    run(loop, main())


# -- create_server ---------------------------------------------------------------------


def test_create_server_several_hosts(loop):
    require_ipv6()
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_server(side, ["127.0.0.1", "::1"], 0)
        assert len(server.sockets) == 2
        families = sorted(s.family for s in server.sockets)
        assert families == sorted([socket.AF_INET, socket.AF_INET6])
        for s in server.sockets:
            if s.family == socket.AF_INET6:
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        for s in server.sockets:
            host, port = s.getsockname()[:2]
            tr, client = await loop.create_connection(Recorder, host, port)
            tr.write(b"hi")
            await client.wait_bytes(2)
            tr.close()
            await client.lost
        await side.all_lost(2)
        await close_server(server)

    run(loop, main())


def test_create_server_port_zero_and_sockets(loop):
    async def main():
        server = await loop.create_server(ServerSide(), "127.0.0.1", 0)
        assert server.get_loop() is loop
        assert server.is_serving()
        (sock,) = server.sockets
        assert isinstance(sock, trsock.TransportSocket)
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert "sockets" in repr(server) or repr(server)
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        await server.wait_closed()
        # The port is free again.
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    run(loop, main())


def test_create_server_reuse_address(loop):
    async def main():
        server = await loop.create_server(ServerSide(), "127.0.0.1", 0, reuse_address=True)
        assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        await close_server(server)
        server = await loop.create_server(ServerSide(), "127.0.0.1", 0, reuse_address=False)
        assert not server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        await close_server(server)

    run(loop, main())


def test_create_server_reuse_port(loop):
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT on this platform")
    side = ServerSide(echo=True)

    async def main():
        one = await loop.create_server(side, "127.0.0.1", 0, reuse_port=True)
        port = one.sockets[0].getsockname()[1]
        two = await loop.create_server(side, "127.0.0.1", port, reuse_port=True)
        for server in (one, two):
            assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            assert server.sockets[0].getsockname()[1] == port
        with pytest.raises(OSError) as info:
            await loop.create_server(side, "127.0.0.1", port)  # without reuse_port
        assert info.value.errno == errno.EADDRINUSE
        for _ in range(4):
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            tr.write(b"rp")
            await client.wait_bytes(2)
            tr.close()
            await client.lost
        await side.all_lost(4)
        await close_server(one)
        await close_server(two)

    run(loop, main())


def test_create_server_backlog(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side, backlog=1)
        clients = [await loop.create_connection(Recorder, "127.0.0.1", port)
                   for _ in range(5)]
        for tr, client in clients:
            tr.write(b"b")
            await client.wait_bytes(1)
            tr.close()
            await client.lost
        await side.all_lost(5)
        await close_server(server)

    run(loop, main())


def test_create_server_sock(loop):
    side = ServerSide(echo=True)

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = await loop.create_server(side, sock=sock)
        assert server.sockets[0].getsockname() == ("127.0.0.1", port)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"s")
        await client.wait_bytes(1)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)
        assert sock.fileno() == -1  # the server closed it

    run(loop, main())


def test_create_server_argument_errors(loop):
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError):
                await loop.create_server(ServerSide(), "127.0.0.1", 0, sock=sock)
            assert sock.fileno() != -1
        with pytest.raises(ValueError):
            await loop.create_server(ServerSide())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError):
                await loop.create_server(ServerSide(), sock=udp)
        with pytest.raises(TypeError):
            await loop.create_server(ServerSide(), "127.0.0.1", 0, ssl=True)
        with pytest.raises(ValueError):
            await loop.create_server(ServerSide(), "127.0.0.1", 0, ssl_handshake_timeout=1)

    run(loop, main())


def test_create_server_address_in_use(loop):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        async def main():
            for i in range(4):
                if i == 1:
                    before = fd_count()  # after the loop's own lazily opened fds
                with pytest.raises(OSError) as info:
                    await loop.create_server(ServerSide(), "127.0.0.1", port)
                assert info.value.errno == errno.EADDRINUSE
            assert fd_count() == before  # no socket left behind

        run(loop, main())


def test_create_server_listen_error_leaves_sock_to_its_owner(loop):
    """create_server(sock=) on a socket that cannot listen (a connected one) raises, and
    the socket stays the caller's: once the caller closes it, nothing in the loop may
    close that fd number again (it may belong to someone else by then)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        connected = socket.create_connection(listener.getsockname())

        async def main():
            with pytest.raises(OSError) as info:
                await loop.create_server(ServerSide(), sock=connected)
            assert info.value.errno == errno.EINVAL
            await settle()

        run(loop, main())
    assert connected.fileno() != -1
    connected.close()
    reopened = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]
    try:
        live = loop._uv_handle_stats()["live"] if is_uvcffi(loop) else 0
        loop.close()
        closed_behind_our_back = []
        for fd in reopened:
            try:
                os.fstat(fd)
            except OSError:
                closed_behind_our_back.append(fd)
        assert (live, closed_behind_our_back) == (0, [])
    finally:
        for fd in reopened:
            try:
                os.close(fd)
            except OSError:
                pass


def test_start_serving_false_then_start_serving(loop):
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_server(side, "127.0.0.1", 0, start_serving=False)
        port = server.sockets[0].getsockname()[1]
        assert not server.is_serving()
        # Not listening yet: connecting is refused.
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, "127.0.0.1", port)
        await server.start_serving()
        assert server.is_serving()
        await server.start_serving()  # again: harmless
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"now")
        await client.wait_bytes(3)
        tr.close()
        await client.lost
        await side.all_lost()
        await close_server(server)

    run(loop, main())


def test_serve_forever_cancelled(loop):
    side = ServerSide(echo=True)

    async def main():
        server = await loop.create_server(side, "127.0.0.1", 0, start_serving=False)
        port = server.sockets[0].getsockname()[1]
        task = asyncio.ensure_future(server.serve_forever())
        await settle(3)
        assert server.is_serving()
        with pytest.raises(RuntimeError):
            await server.serve_forever()  # only one serve_forever at a time
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"sf")
        await client.wait_bytes(2)
        tr.close()
        await client.lost
        await side.all_lost()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
        assert server.sockets == ()
        with pytest.raises(RuntimeError):
            await server.serve_forever()  # closed

    run(loop, main())


def test_server_close_keeps_existing_connections(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        await side.first()
        server.close()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, "127.0.0.1", port)
        # The accepted connection still works.
        tr.write(b"alive")
        await client.wait_bytes(5)
        tr.close()
        await client.lost
        await side.all_lost()
        await server.wait_closed()

    run(loop, main())


def test_wait_closed_waits_for_connections(loop):
    skip_oracle_if(loop, not PY312, "Server.wait_closed() waits for connections from 3.12")
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        await side.first()
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        tr.close()
        await client.lost
        await asyncio.wait_for(waiter, 5)
        await side.all_lost()

    run(loop, main())


def test_wait_closed_before_close_waits_for_close(loop):
    async def main():
        server, port = await start_tcp_server(loop, ServerSide())
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        server.close()
        await asyncio.wait_for(waiter, 5)
        await server.wait_closed()  # closed: returns at once

    run(loop, main())


def test_server_async_context_manager(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        async with server as entered:
            assert entered is server
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            tr.write(b"cm")
            await client.wait_bytes(2)
            tr.close()
            await client.lost
            await side.all_lost()
        assert not server.is_serving()
        assert server.sockets == ()

    run(loop, main())


def test_connect_accepted_socket(loop):
    side = ServerSide(echo=True)

    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            conn, _ = listener.accept()
        str_, srv = await loop.connect_accepted_socket(side, conn)
        assert srv is side.protocols[0]
        assert str_.get_extra_info("sockname") == ("127.0.0.1", port)
        assert str_.get_extra_info("peername") == tr.get_extra_info("sockname")
        tr.write(b"accepted")
        await client.wait_bytes(8)
        tr.close()
        await client.lost
        assert await srv.lost is None
        assert conn.fileno() == -1  # the transport closed it

    run(loop, main())


def test_connect_accepted_socket_argument_errors(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError):
                await loop.connect_accepted_socket(ServerSide(), udp)
            assert udp.fileno() != -1
        with socket.socket() as sock:
            with pytest.raises(ValueError):
                await loop.connect_accepted_socket(ServerSide(), sock,
                                                   ssl_handshake_timeout=1.0)
            assert sock.fileno() != -1

    run(loop, main())


def test_no_handle_or_fd_leak_after_many_connections(loop):
    side = ServerSide(echo=True)

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await client.lost
        await side.all_lost(1)
        await settle()
        before = fd_count()
        for _ in range(50):
            tr, client = await loop.create_connection(Recorder, "127.0.0.1", port)
            tr.write(b"x")
            await client.wait_bytes(1)
            tr.close()
            await client.lost
        await side.all_lost(51)
        await settle()
        assert fd_count() == before
        await close_server(server)

    run(loop, main())
    assert_no_live_handles(loop)


def test_protocol_factory_error_in_create_connection(loop):
    side = ServerSide()

    def broken():
        raise ZeroDivisionError("no protocol today")

    async def main():
        server, port = await start_tcp_server(loop, side)
        for i in range(4):
            with pytest.raises(ZeroDivisionError):
                await loop.create_connection(broken, "127.0.0.1", port)
            if not is_uvcffi(loop):
                gc.collect()  # the stdlib loop leaves that socket to the GC
            if i == 0:
                await side.all_lost(1)
                await settle()
                before = fd_count()
        await side.all_lost(4)
        await settle()
        assert fd_count() == before
        await close_server(server)

    run(loop, main())
    assert_no_live_handles(loop)


@pytest.mark.parametrize("start_serving", [True, False])
def test_server_create_and_close_leaves_no_fd(loop, start_serving):
    async def main():
        for i in range(5):
            if i == 1:
                before = fd_count()
            server = await loop.create_server(ServerSide(), "127.0.0.1", 0,
                                              start_serving=start_serving)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            server2 = await loop.create_server(ServerSide(), sock=sock,
                                               start_serving=start_serving)
            await close_server(server)
            await close_server(server2)
            assert sock.fileno() == -1
        await settle()
        assert fd_count() == before

    run(loop, main())
    assert_no_live_handles(loop)


# -- Server.close_clients() / abort_clients() (3.13) ---------------------------------------


def _no_clients_api_before_3_13(loop):
    skip_oracle_if(loop, sys.version_info < (3, 13), "close_clients/abort_clients are new in 3.13")


@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_close_or_abort_clients(loop, how):
    _no_clients_api_before_3_13(loop)
    side = ServerSide()
    server_side = side.protocols

    async def main():
        server, port = await start_tcp_server(loop, side)
        clients = []
        for _ in range(3):
            clients.append(await loop.create_connection(Recorder, "127.0.0.1", port))
        await wait_until(lambda: len(server_side) == 3 and all(p.made.done() for p in server_side))
        getattr(server, how)()
        # Every accepted connection goes, and each client sees its end.
        for proto in server_side:
            assert await asyncio.wait_for(proto.lost, 5) is None
        for _, proto in clients:
            await asyncio.wait_for(proto.lost, 5)
        # The server itself still serves.
        assert server.is_serving()
        tr, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        await wait_until(lambda: len(server_side) == 4)
        tr.close()
        await proto.lost
        await close_server(server)

    run(loop, main())


def test_server_close_then_close_clients_lets_wait_closed_return(loop):
    _no_clients_api_before_3_13(loop)

    async def main():
        server, port = await start_tcp_server(loop, Recorder)
        tr, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # a connection is still open
        server.close_clients()
        await asyncio.wait_for(waiter, 5)
        await asyncio.wait_for(proto.lost, 5)

    run(loop, main())


def test_abort_clients_drops_unsent_data(loop):
    _no_clients_api_before_3_13(loop)
    side = ServerSide()

    async def main():
        server, port = await start_tcp_server(loop, side)
        tr, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.pause_reading()  # the client reads nothing: the server's writes back up
        server_proto = await side.first()
        srv_tr = server_proto.transport
        while srv_tr.get_write_buffer_size() == 0:
            srv_tr.write(b"x" * 65536)
            await asyncio.sleep(0)
        server.abort_clients()
        assert srv_tr.is_closing()
        assert await asyncio.wait_for(server_proto.lost, 5) is None
        assert srv_tr.get_write_buffer_size() == 0
        tr.close()
        await close_server(server)

    run(loop, main())
