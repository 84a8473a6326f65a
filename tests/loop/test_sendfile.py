"""loop.sendfile(transport, file): asyncio's fallback behaviour, on both loops."""

from __future__ import annotations

import asyncio
import os

import pytest


class Collect(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.done = asyncio.get_event_loop().create_future()

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        if not self.done.done():
            self.done.set_result(bytes(self.data))


@pytest.fixture
def payload(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


async def _pair(loop):
    collected = []

    def factory():
        proto = Collect()
        collected.append(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    return server, transport, collected


@pytest.mark.parametrize(("offset", "count"), [(0, None), (1000, None), (5, 100_000)])
def test_sendfile_sends_the_requested_range(loop, payload, offset, count):
    path, data = payload

    async def main():
        server, transport, collected = await _pair(loop)
        with open(path, "rb") as f:
            sent = await loop.sendfile(transport, f, offset, count)
            position = f.tell()
        transport.write_eof()
        received = await asyncio.wait_for(collected[0].done, 20)
        transport.close()
        server.close()
        await server.wait_closed()
        return sent, position, received

    sent, position, received = loop.run_until_complete(main())
    want = data[offset:] if count is None else data[offset:offset + count]
    assert sent == len(want)
    assert position == offset + sent
    assert received == want


def test_sendfile_argument_errors(loop, payload, tmp_path):
    path, _ = payload
    text = tmp_path / "text.txt"
    text.write_text("x")

    async def main():
        server, transport, _ = await _pair(loop)
        try:
            with open(path, "rb") as f:
                with pytest.raises(ValueError):
                    await loop.sendfile(transport, f, -1)
                with pytest.raises(ValueError):
                    await loop.sendfile(transport, f, 0, 0)
                with pytest.raises(TypeError):
                    await loop.sendfile(transport, f, 1.5)
            with open(text) as f:
                with pytest.raises(ValueError, match="binary mode"):
                    await loop.sendfile(transport, f)
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    loop.run_until_complete(main())


def test_write_during_sendfile_is_refused(loop, payload):
    path, _ = payload

    async def main():
        server, transport, _ = await _pair(loop)
        try:
            with open(path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(transport, f))
                await asyncio.sleep(0)
                with pytest.raises(RuntimeError, match="sendfile is in progress"):
                    transport.write(b"x")
                await asyncio.wait_for(task, 20)
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    loop.run_until_complete(main())
