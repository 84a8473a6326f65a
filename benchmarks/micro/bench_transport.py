"""Transport write/read through the public Protocol API, over loopback TCP and Unix sockets.

A client and an echo server run on the same loop.  The client writes a small numbered
message, the server's ``data_received`` writes it back, and the client's
``data_received`` checks it and writes the next one, ROUND_TRIPS times per round, with no
Future or Task involved.  An op is one hop: one ``transport.write`` and the peer's
``data_received`` for those bytes (plus the loop iteration that carries them), so the
per-op figure is the round's time / (2 * ROUND_TRIPS); it includes 1/1000 of one
``run_forever``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile

import pytest

from ._util import per_op

ROUND_TRIPS = 500
HOPS = 2 * ROUND_TRIPS
MESSAGE_SIZE = 16


def _message(i: int) -> bytes:
    return b"%016d" % i


class EchoServer(asyncio.Protocol):
    def __init__(self, transports: list[asyncio.Transport]) -> None:
        self.transports = transports

    def connection_made(self, transport):
        self.transport = transport
        self.transports.append(transport)

    def data_received(self, data):
        self.transport.write(data)


class PingClient(asyncio.Protocol):
    """Sends message i, waits for it to come back whole, then sends i + 1."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lost = loop.create_future()
        self.start(0)

    def start(self, round_trips: int) -> None:
        self.goal = round_trips
        self.done = 0
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)

    def data_received(self, data):
        # TCP may split or merge; on loopback with one message in flight it never does,
        # but the check below must hold either way.
        self.buffer += data
        if len(self.buffer) < MESSAGE_SIZE:
            return
        if self.buffer != _message(self.done):
            raise AssertionError(f"echo {self.buffer!r} for message {self.done}")
        self.buffer = b""
        self.done += 1
        if self.done < self.goal:
            self.transport.write(_message(self.done))
        else:
            self.loop.stop()


@pytest.fixture(params=["tcp", "unix"])
def echo_link(request, loop):
    """(client protocol, client transport) connected to an echo server on ``loop``."""
    server_transports: list[asyncio.Transport] = []
    tmpdir = None
    if request.param == "tcp":
        server = loop.run_until_complete(
            loop.create_server(lambda: EchoServer(server_transports), "127.0.0.1", 0)
        )
        port = server.sockets[0].getsockname()[1]
        connect = loop.create_connection(lambda: PingClient(loop), "127.0.0.1", port)
    else:
        # A short directory of our own: Unix socket paths are limited to ~100 bytes.
        tmpdir = tempfile.mkdtemp(prefix="uvbench")
        path = os.path.join(tmpdir, "echo.sock")
        server = loop.run_until_complete(
            loop.create_unix_server(lambda: EchoServer(server_transports), path)
        )
        connect = loop.create_unix_connection(lambda: PingClient(loop), path)
    try:
        transport, client = loop.run_until_complete(connect)
        try:
            if request.param == "tcp":
                # Small messages one at a time: Nagle's algorithm would add delays.
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            yield client, transport
        finally:
            transport.close()
            loop.run_until_complete(asyncio.wait_for(client.lost, 10))
    finally:
        for server_transport in server_transports:
            server_transport.close()
        server.close()
        loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 10))
        # Let the server side's connection_lost run before the loop closes.
        loop.run_until_complete(asyncio.sleep(0))
        if tmpdir is not None:
            shutil.rmtree(tmpdir)


def bench_echo_hop(benchmark, loop, echo_link):
    client, transport = echo_link
    kind = transport.get_extra_info("socket").family
    kind = "unix" if kind == socket.AF_UNIX else "tcp"
    # One table per socket kind, with the loops side by side.
    benchmark.group = f"transport ({kind}): write + peer data_received (one hop)"

    def body():
        client.start(ROUND_TRIPS)
        transport.write(_message(0))
        # A loop that lost data would otherwise wait forever: fail after 10 s instead.
        guard = loop.call_later(10.0, loop.stop)
        loop.run_forever()
        guard.cancel()
        assert client.done == ROUND_TRIPS

    per_op(benchmark, HOPS, reference=f"asyncio-{kind}")
    benchmark(body)
