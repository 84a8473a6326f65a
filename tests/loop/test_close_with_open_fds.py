"""Closing a uvcffi loop with transports and servers still open.

libuv closes every fd its handles own; the Python socket objects over those fds must be
detached first, or collecting them later would close whatever file reuses the number.
"""

from __future__ import annotations

import asyncio
import gc
import os

import pytest

import uvcffi


@pytest.fixture
def uv_loop():
    loop = uvcffi.new_event_loop()
    yield loop
    loop.close()


def test_socket_objects_are_detached_when_the_loop_closes(uv_loop):
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return server, writer

    server, writer = uv_loop.run_until_complete(main())
    transport_sock = writer.get_extra_info("socket")
    server_sock = server.sockets[0]
    fds = [transport_sock.fileno(), server_sock.fileno()]
    assert all(fd >= 0 for fd in fds)
    uv_loop.close()
    assert transport_sock.fileno() == -1
    assert server_sock.fileno() == -1
    # The fd numbers are free again: reuse them, then collect the old objects.
    reused = [os.open(os.devnull, os.O_RDONLY) for _ in fds]
    try:
        del transport_sock, server_sock, writer, server
        gc.collect()
        for fd in reused:
            os.fstat(fd)  # still open: nobody closed it behind our back
    finally:
        for fd in reused:
            os.close(fd)
