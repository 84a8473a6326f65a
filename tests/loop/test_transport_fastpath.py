"""What the transports' per-message fast paths must keep: callback contexts, error reports,
and the caller's bytes-like objects.

uvcffi delivers received data through a handle-free ready-queue item outside debug mode and
through a Handle in debug mode; both must behave as asyncio's reader callback: one context,
copied when the transport is made, for every data_received/eof_received (or
datagram_received) of the connection.  Each test runs on the stdlib loop (the oracle) and on
uvcffi's.  Loopback only; every wait is bounded (``netutil.run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import sys
import tempfile

import pytest

from conftest import skip_oracle_if
from netutil import (
    close_server,
    collect_errors,
    payload,
    run,
    settle,
    start_tcp_server,
    wait_until,
)

var = contextvars.ContextVar("var", default="unset")
count = contextvars.ContextVar("count", default=0)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class ContextRecorder(asyncio.Protocol):
    """Records what the context variables hold in each callback, and counts data_received
    calls in ``count`` (so a count that persists proves one context for all of them)."""

    def __init__(self):
        self.seen: list[tuple[str, str, int]] = []
        self.received = bytearray()
        self.eof = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.seen.append(("made", var.get(), count.get()))
        var.set("set in connection_made")

    def data_received(self, data):
        self.seen.append(("data", var.get(), count.get()))
        count.set(count.get() + 1)
        self.received += data

    def eof_received(self):
        self.seen.append(("eof", var.get(), count.get()))
        self.eof.set_result(None)
        return True

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def open_stream(loop, family, factory):
    """A client connection made by ``factory`` to an echo server; (server, transport,
    protocol, cleanup path or None)."""
    if family == "unix":
        path = os.path.join(tempfile.mkdtemp(prefix="uvcffi-test-"), "s")
        server = await loop.create_unix_server(Echo, path)
        tr, proto = await loop.create_unix_connection(factory, path)
        return server, tr, proto, path
    server, port = await start_tcp_server(loop, Echo)
    tr, proto = await loop.create_connection(factory, "127.0.0.1", port)
    return server, tr, proto, None


@pytest.mark.parametrize("family", ["tcp", "unix"])
@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_stream_callbacks_share_the_context_of_the_connection(loop, family, debug):
    loop.set_debug(debug)

    async def main():
        var.set("creator")
        server, tr, proto, path = await open_stream(loop, family, ContextRecorder)
        for i in range(3):
            tr.write(b"x%d" % i)
            await wait_until(lambda n=2 * (i + 1): len(proto.received) == n, what="the echo")
        tr.write_eof()  # the server's echo protocol closes: our eof_received follows
        await proto.eof
        tr.close()
        await proto.lost
        await close_server(server)
        if path is not None:
            # From 3.13 closing a create_unix_server() server removes its socket file
            # (cleanup_socket=True, CPython gh-111246); before, it is the caller's to remove.
            if sys.version_info < (3, 13):
                os.unlink(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        # The creator's context is untouched by what the callbacks set.
        assert var.get() == "creator" and count.get() == 0
        return proto.seen

    seen = run(loop, main())
    # connection_made runs in a context of its own; every read callback sees the creator's
    # value and the count kept by the previous ones.
    assert seen == [
        ("made", "creator", 0),
        ("data", "creator", 0),
        ("data", "creator", 1),
        ("data", "creator", 2),
        ("eof", "creator", 3),
    ]


def test_switching_debug_mode_keeps_one_read_context(loop):
    async def main():
        var.set("creator")
        server, tr, proto, _ = await open_stream(loop, "tcp", ContextRecorder)
        for i in range(4):
            loop.set_debug(i % 2 == 1)
            tr.write(b"y%d" % i)
            await wait_until(lambda n=2 * (i + 1): len(proto.received) == n, what="the echo")
        loop.set_debug(False)
        tr.close()
        await proto.lost
        await close_server(server)
        return proto.seen

    seen = run(loop, main())
    assert [c for _, _, c in seen[1:]] == [0, 1, 2, 3]


class DatagramContextRecorder(asyncio.DatagramProtocol):
    def __init__(self):
        self.seen: list[tuple[str, int]] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.seen.append((var.get(), count.get()))
        count.set(count.get() + 1)


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_datagram_callbacks_share_the_context_of_the_endpoint(loop, debug):
    loop.set_debug(debug)

    async def main():
        var.set("creator")
        tr, proto = await loop.create_datagram_endpoint(
            DatagramContextRecorder, local_addr=("127.0.0.1", 0))
        var.set("changed after creation")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"d%d" % i, tr.get_extra_info("sockname"))
                await wait_until(lambda n=i + 1: len(proto.seen) == n, what="the datagram")
        tr.close()
        await settle()
        return proto.seen

    assert run(loop, main()) == [("creator", 0), ("creator", 1), ("creator", 2)]


class FailsOnSecond(asyncio.Protocol):
    def __init__(self):
        self.chunks: list[bytes] = []
        self.lost_calls: list[BaseException | None] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.chunks.append(data)
        if len(self.chunks) == 2:
            raise ZeroDivisionError("boom")

    def connection_lost(self, exc):
        self.lost_calls.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_data_received_error_is_reported_and_closes_the_connection_once(loop, debug):
    loop.set_debug(debug)
    errors = collect_errors(loop)

    async def main():
        server, tr, proto, _ = await open_stream(loop, "tcp", FailsOnSecond)
        tr.write(b"one")
        await wait_until(lambda: len(proto.chunks) == 1, what="the first echo")
        tr.write(b"two")
        exc = await proto.lost
        # Nothing is delivered after the failure, even what is still arriving.
        await settle()
        assert proto.chunks == [b"one", b"two"]
        assert proto.lost_calls == [exc]
        assert isinstance(exc, ZeroDivisionError)
        await close_server(server)
        return tr, proto

    tr, proto = run(loop, main())
    assert len(errors) == 1
    assert errors[0]["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    assert errors[0]["transport"] is tr and errors[0]["protocol"] is proto


class BufferedFails(asyncio.BufferedProtocol):
    """A BufferedProtocol whose get_buffer() or buffer_updated() raises on first use."""

    def __init__(self, where):
        self.where = where
        self.buf = bytearray(64)
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        if self.where == "get_buffer":
            raise ZeroDivisionError("boom")
        return self.buf

    def buffer_updated(self, nbytes):
        raise ZeroDivisionError("boom")

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.parametrize("where", ["get_buffer", "buffer_updated"])
def test_buffered_protocol_errors_name_the_call_that_failed(loop, where):
    errors = collect_errors(loop)

    async def main():
        server, tr, proto, _ = await open_stream(loop, "tcp", lambda: BufferedFails(where))
        tr.write(b"ping")
        exc = await proto.lost
        assert isinstance(exc, ZeroDivisionError)
        await close_server(server)

    run(loop, main())
    assert [e["message"] for e in errors] == [f"Fatal error: protocol.{where}() call failed."]


class DatagramFailsOnFirst(asyncio.DatagramProtocol):
    def __init__(self):
        self.received: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received.append(data)
        if len(self.received) == 1:
            raise ZeroDivisionError("boom")


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_datagram_received_error_is_reported_as_a_callback_error(loop, debug):
    loop.set_debug(debug)
    errors = collect_errors(loop)

    async def main():
        tr, proto = await loop.create_datagram_endpoint(
            DatagramFailsOnFirst, local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"d%d" % i, tr.get_extra_info("sockname"))
            await wait_until(lambda: len(proto.received) == 3, what="the datagrams")
        # The endpoint stays open and keeps receiving, in order.
        assert not tr.is_closing()
        assert proto.received == [b"d0", b"d1", b"d2"]
        tr.close()
        await settle()

    run(loop, main())
    assert len(errors) == 1
    assert errors[0]["message"].startswith("Exception in callback ")
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    assert isinstance(errors[0]["handle"], asyncio.Handle)


class Collector(asyncio.Protocol):
    def __init__(self):
        self.received = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data


def test_a_mutable_buffer_may_change_once_write_returned(loop):
    # asyncio's docs promise nothing either way; 3.11's selector transport copied what it
    # could not send at once into its bytearray buffer, 3.12's keeps a memoryview of the
    # caller's object instead ("zero-copy writes", CPython gh-91166), so a later change
    # reaches the peer.  uvcffi keeps copying.
    skip_oracle_if(loop, sys.version_info >= (3, 12),
                   "3.12+'s selector transport buffers a memoryview of the caller's object, "
                   "not a copy (zero-copy writes, CPython gh-91166)")
    size = 8 * 1024 * 1024  # more than the kernel takes at once: part of it is queued
    original = payload(size)

    async def main():
        side: list[Collector] = []

        def factory():
            side.append(Collector())
            return side[-1]

        server, port = await start_tcp_server(loop, factory)
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        buf = bytearray(original)
        tr.write(buf)
        tr.write(memoryview(buf)[:4])
        assert tr.get_write_buffer_size() > 0
        buf[:] = bytes(size)  # zeros: must not reach the peer
        await wait_until(lambda: side and len(side[0].received) == size + 4,
                         what="all the data", timeout=20.0)
        assert bytes(side[0].received) == original + original[:4]
        tr.close()
        await close_server(server)

    run(loop, main())


class AddressRecorder(asyncio.Protocol):
    """Records the transport's address info when the connection is lost."""

    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        t = self.transport
        self.lost.set_result((t.get_extra_info("sockname"), t.get_extra_info("peername")))


def test_address_info_outlives_the_connection_and_socket_is_made_on_demand(loop):
    async def main():
        recorders = []

        def factory():
            recorders.append(AddressRecorder())
            return recorders[-1]

        server, port = await start_tcp_server(loop, factory)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        await wait_until(lambda: len(recorders) == 2, what="two accepted connections")
        server_side = recorders[0].transport
        tsock = server_side.get_extra_info("socket")
        assert tsock is not None and tsock.fileno() >= 0
        assert tsock.getpeername() == server_side.get_extra_info("peername")
        assert server_side.get_extra_info("socket") is tsock  # made once
        assert server_side.get_extra_info("nonexistent", "dflt") == "dflt"
        local = [c.getpeername() for c in clients]
        peers = {c.getsockname() for c in clients}
        for c in clients:
            c.close()  # the peer goes first: getpeername() would now fail
        names = [await r.lost for r in recorders]
        await close_server(server)
        return local, peers, names

    local, peers, names = run(loop, main())
    assert [n[0] for n in names] == local
    assert {n[1] for n in names} == peers
