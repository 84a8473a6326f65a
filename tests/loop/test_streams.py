"""asyncio's streams (open_connection, start_server and their Unix variants) on both loops.

The streams API is the stdlib's own, on top of the loop's transports: these tests check that
uvcffi's transports give it what it relies on (flow control for drain(), EOF, pause and
resume of reading, closing).
"""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from conftest import skip_oracle_if
from netutil import (
    close_server,
    guard_non_blocking,
    payload,
    run,
    wait_until,
)

MiB = 1024 * 1024


class Handlers:
    """start_server callbacks that record their writers and finish cleanly."""

    def __init__(self):
        self.writers: list[asyncio.StreamWriter] = []
        self.done: list[asyncio.Future] = []
        self.results: list = []

    def wrap(self, handler):
        async def client_connected(reader, writer):
            self.writers.append(writer)
            fut = asyncio.get_running_loop().create_future()
            self.done.append(fut)
            try:
                self.results.append(await handler(reader, writer))
            except BaseException as exc:
                self.results.append(exc)
                raise
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
                fut.set_result(None)

        return client_connected

    async def all_done(self, count=1):
        await wait_until(lambda: len(self.done) >= count and all(f.done() for f in self.done),
                         what="every server handler")


async def echo_lines(reader, writer):
    lines = 0
    while True:
        line = await reader.readline()
        if not line:
            return lines
        lines += 1
        writer.write(line.upper())
        await writer.drain()


def test_open_connection_readline_and_eof(loop):
    handlers = Handlers()

    async def main():
        server = await asyncio.start_server(handlers.wrap(echo_lines), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert writer.get_extra_info("peername") == ("127.0.0.1", port)
        for word in (b"alpha", b"beta", b"gamma"):
            writer.write(word + b"\n")
            await writer.drain()
            assert await reader.readline() == word.upper() + b"\n"
        assert writer.can_write_eof()
        writer.write_eof()
        assert await reader.readline() == b""  # the server closed after our EOF
        assert reader.at_eof()
        assert await reader.read() == b""
        writer.close()
        assert writer.is_closing()
        await writer.wait_closed()
        await handlers.all_done()
        assert handlers.results == [3]
        await close_server(server)

    run(loop, main())


def test_readexactly_read_and_readuntil(loop):
    handlers = Handlers()

    async def sender(reader, writer):
        writer.write(b"0123456789")
        writer.write(b"head|body||tail")
        writer.write(b"xyz")
        await writer.drain()

    async def main():
        server = await asyncio.start_server(handlers.wrap(sender), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readexactly(4) == b"0123"
        assert await reader.readexactly(6) == b"456789"
        assert await reader.readuntil(b"|") == b"head|"
        assert await reader.readuntil(b"||") == b"body||"
        assert await reader.read(2) == b"ta"
        assert await reader.readexactly(2) == b"il"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(10)  # only "xyz" left before EOF
        assert info.value.partial == b"xyz"
        assert info.value.expected == 10
        assert await reader.read(100) == b""
        writer.close()
        await writer.wait_closed()
        await handlers.all_done()
        await close_server(server)

    run(loop, main())


def test_readline_limit(loop):
    handlers = Handlers()

    async def sender(reader, writer):
        writer.write(b"x" * 100 + b"\nshort\n")
        await writer.drain()

    async def main():
        server = await asyncio.start_server(handlers.wrap(sender), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=50)
        with pytest.raises(ValueError):
            await reader.readline()
        assert await reader.readline() == b"short\n"
        writer.close()
        await writer.wait_closed()
        await handlers.all_done()
        await close_server(server)

    run(loop, main())


def test_streams_large_transfer(loop, request):
    data = payload(6 * MiB, seed=21)
    handlers = Handlers()

    async def sink(reader, writer):
        got = await reader.read()  # to EOF
        writer.write(len(got).to_bytes(8, "big"))
        await writer.drain()
        return got

    async def main():
        server = await asyncio.start_server(handlers.wrap(sink), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await wait_until(lambda: handlers.writers, what="the server handler")
        guard_non_blocking(request, loop, writer.transport, handlers.writers[0].transport)
        for i in range(0, len(data), 1000 * 1000):
            writer.write(data[i:i + 1000 * 1000])
            await writer.drain()
        writer.write_eof()
        count = int.from_bytes(await reader.readexactly(8), "big")
        assert count == len(data)
        writer.close()
        await writer.wait_closed()
        await handlers.all_done()
        assert handlers.results[0] == data
        await close_server(server)

    run(loop, main())


def test_drain_waits_for_a_slow_reader(loop, request):
    chunk_size = 1 * MiB
    handlers = Handlers()
    state = {"blocked": None}

    async def slow_reader(reader, writer):
        # Read nothing until the writer's drain() has had to wait, then read it all,
        # chunk by chunk, checking each one.
        await wait_until(lambda: state["blocked"] is not None, timeout=8,
                         what="a blocked drain()")
        index = 0
        while True:
            try:
                block = await reader.readexactly(chunk_size)
            except asyncio.IncompleteReadError as exc:
                assert exc.partial == b""
                return index
            assert block == index.to_bytes(4, "big") * (chunk_size // 4), index
            index += 1

    async def main():
        server = await asyncio.start_server(handlers.wrap(slow_reader), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await wait_until(lambda: handlers.writers, what="the server handler")
        guard_non_blocking(request, loop, writer.transport, handlers.writers[0].transport)
        high = writer.transport.get_write_buffer_limits()[1]
        sent = 0
        while sent < 200:
            writer.write(sent.to_bytes(4, "big") * (chunk_size // 4))
            sent += 1
            drain = asyncio.ensure_future(writer.drain())
            await asyncio.sleep(0)
            if not drain.done():
                # Flow control: drain() waits while the buffer is above the high mark.
                assert writer.transport.get_write_buffer_size() > high
                state["blocked"] = sent
                await drain
                assert writer.transport.get_write_buffer_size() <= high
                break
            await drain
        else:
            raise AssertionError("drain() never had to wait")
        for _ in range(3):  # a little more once the reader reads
            writer.write(sent.to_bytes(4, "big") * (chunk_size // 4))
            sent += 1
            await writer.drain()
        writer.write_eof()
        await handlers.all_done()
        assert handlers.results == [sent]
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await close_server(server)

    run(loop, main())


def test_many_stream_clients(loop):
    handlers = Handlers()
    n = 100

    async def main():
        server = await asyncio.start_server(handlers.wrap(echo_lines), "127.0.0.1", 0,
                                            backlog=n)
        port = server.sockets[0].getsockname()[1]

        async def client(i):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"client %d\n" % i)
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return line

        lines = await asyncio.gather(*(client(i) for i in range(n)))
        assert lines == [b"CLIENT %d\n" % i for i in range(n)]
        await handlers.all_done(n)
        await close_server(server)

    run(loop, main())


def test_server_serve_forever_and_context_manager(loop):
    handlers = Handlers()

    async def main():
        server = await asyncio.start_server(handlers.wrap(echo_lines), "127.0.0.1", 0,
                                            start_serving=False)
        port = server.sockets[0].getsockname()[1]
        async with server:
            task = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0)  # serve_forever() starts listening in its first step
            assert server.is_serving()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x\n")
            assert await reader.readline() == b"X\n"
            writer.close()
            await writer.wait_closed()
            await handlers.all_done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not server.is_serving()

    run(loop, main())


def test_writer_close_while_reader_waits(loop):
    handlers = Handlers()

    async def waiter(reader, writer):
        return await reader.read(100)  # the client closes: EOF

    async def main():
        server = await asyncio.start_server(handlers.wrap(waiter), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pending = asyncio.ensure_future(reader.read(100))
        await asyncio.sleep(0.02)
        assert not pending.done()
        writer.close()
        await writer.wait_closed()
        await handlers.all_done()
        assert handlers.results == [b""]
        # Our own reader sees EOF once our transport is closed.
        assert await asyncio.wait_for(pending, 5) == b""
        await close_server(server)

    run(loop, main())


def test_unix_streams(loop, tmp_path):
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no AF_UNIX")
    path = str(tmp_path / "streams.sock")
    handlers = Handlers()

    async def main():
        server = await asyncio.start_unix_server(handlers.wrap(echo_lines), path)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"over unix\n")
        assert await reader.readline() == b"OVER UNIX\n"
        writer.write(b"a\nb\n")
        assert await reader.readexactly(4) == b"A\nB\n"
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await handlers.all_done()
        assert handlers.results == [3]
        await close_server(server)

    run(loop, main())


def test_open_connection_refused(loop):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main():
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)

        run(loop, main())


def test_stream_writer_wait_closed_twice_and_write_after_close(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11),
                   "before 3.11 (seen on 3.9) a second wait_closed() may raise")
    handlers = Handlers()

    async def reader_task(reader, writer):
        return await reader.read()

    async def main():
        server = await asyncio.start_server(handlers.wrap(reader_task), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"last")
        writer.close()
        writer.write(b"ignored")  # the transport ignores writes once closing
        await writer.wait_closed()
        await writer.wait_closed()
        await handlers.all_done()
        assert handlers.results == [b"last"]
        await close_server(server)

    run(loop, main())
