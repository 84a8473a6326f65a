"""connect_read_pipe/connect_write_pipe: pipes, FIFOs, flow control, closing.

Each test runs on the stdlib loop (the oracle) and on uvcffi's; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import socket
import stat
import sys

import pytest

import uvcffi

TIMEOUT = 15.0


def has_is_reading(loop):
    """ReadTransport.is_reading() arrived in 3.10 (the stdlib's pipe transport lacks it
    on 3.9); uvcffi's has it everywhere."""
    return sys.version_info >= (3, 10) or isinstance(loop, uvcffi.Loop)


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Reader(asyncio.Protocol):
    def __init__(self):
        loop = asyncio.get_event_loop()
        self.events = []
        self.data = bytearray()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data):
        if self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        return True  # ignored by pipe transports: connection_lost follows anyway

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


class Writer(asyncio.BaseProtocol):
    def __init__(self):
        loop = asyncio.get_event_loop()
        self.events = []
        self.lost = loop.create_future()
        self.paused = 0
        self.resumed = 0
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport):
        self.events.append("made")

    def pause_writing(self):
        self.paused += 1
        self.can_write.clear()

    def resume_writing(self):
        self.resumed += 1
        self.can_write.set()

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


async def read_all(fd, size):
    """Read ``size`` bytes from a non-blocking fd, politely."""
    out = bytearray()
    while len(out) < size:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            await asyncio.sleep(0.001)
            continue
        if not chunk:
            break
        out += chunk
    return bytes(out)


def fd_is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- reading ----------------------------------------------------------------------------


def test_read_pipe_data_eof_then_lost(loop):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        assert proto.made.done()
        assert tr.get_extra_info("pipe") is rf
        assert not tr.is_closing()
        if has_is_reading(loop):
            assert tr.is_reading()
        os.write(w, b"hello ")
        os.write(w, b"world")
        os.close(w)
        assert await proto.lost is None
        assert bytes(proto.data) == b"hello world"
        assert proto.events == ["made", "data", "eof", ("lost", None)]
        assert tr.is_closing()
        assert rf.closed  # the transport closes the pipe object after connection_lost

    run(loop, main())


def test_read_pipe_pause_and_resume(loop):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        tr.pause_reading()
        if has_is_reading(loop):
            assert not tr.is_reading()
        tr.pause_reading()  # idempotent
        os.write(w, b"while paused")
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert proto.data == b""
        tr.resume_reading()
        if has_is_reading(loop):
            assert tr.is_reading()
        while len(proto.data) < 12:
            await asyncio.sleep(0.005)
        assert proto.data == b"while paused"
        tr.close()
        tr.close()  # idempotent
        assert await proto.lost is None
        assert proto.events == ["made", "data", ("lost", None)]
        assert rf.closed
        os.close(w)

    run(loop, main())


def test_read_pipe_close_while_data_pending_drops_it(loop):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        os.write(w, b"x" * 1000)
        tr.close()
        assert await proto.lost is None
        assert proto.data == b""
        os.close(w)

    run(loop, main())


def test_read_pipe_large_transfer(loop):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)
    wf = os.fdopen(w, "wb", buffering=0)
    size = 5 * 1024 * 1024
    data = os.urandom(1024) * (size // 1024)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        wtr, wproto = await loop.connect_write_pipe(Writer, wf)
        for i in range(0, size, 100_000):
            await wproto.can_write.wait()
            wtr.write(data[i:i + 100_000])
        wtr.close()
        assert await wproto.lost is None
        assert await proto.lost is None
        assert bytes(proto.data) == data

    run(loop, main())


def test_read_pipe_from_fifo(loop, tmp_path):
    path = str(tmp_path / "fifo")
    os.mkfifo(path)
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    rf = os.fdopen(r, "rb", buffering=0)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        os.write(w, b"through the fifo")
        os.close(w)
        assert await proto.lost is None
        assert proto.data == b"through the fifo"

    run(loop, main())


def test_read_pipe_on_a_socket(loop):
    a, b = socket.socketpair()

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, a)
        b.sendall(b"sock")
        b.close()
        assert await proto.lost is None
        assert proto.data == b"sock"
        assert a.fileno() == -1  # closed by the transport

    run(loop, main())


def test_pipe_transports_refuse_regular_files(loop, tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"data")

    async def main():
        with open(path, "rb") as f:
            with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only."):
                await loop.connect_read_pipe(Reader, f)
        with open(path, "wb") as f:
            with pytest.raises(
                ValueError, match="Pipe transport is only for pipes, sockets and character"
            ):
                await loop.connect_write_pipe(Writer, f)

    run(loop, main())


def test_read_pipe_on_unpollable_device_is_refused(uvcffi_loop):
    # asyncio's loop logs its selector's EPERM and never reads; uvcffi says so at once
    # (libuv would abort on a device epoll refuses).
    loop = uvcffi_loop
    with open(os.devnull, "rb") as f:
        with pytest.raises(PermissionError):
            run(loop, loop.connect_read_pipe(Reader, f))
        assert not f.closed


def test_read_pipe_eio_from_a_pty_is_not_reported(loop):
    pytest.importorskip("pty")
    import pty

    master, slave = pty.openpty()
    mf = os.fdopen(master, "rb", buffering=0)
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, mf)
        os.write(slave, b"tty line\n")
        while b"tty line" not in proto.data:
            await asyncio.sleep(0.005)
        os.close(slave)  # the master now reads EIO
        exc = await proto.lost
        assert isinstance(exc, OSError)

    run(loop, main())
    assert errors == []


def test_read_pipe_data_received_error_is_reported_and_reading_goes_on(loop):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    got = []

    class Fussy(asyncio.Protocol):
        def data_received(self, data):
            got.append(data)
            if data == b"bad":
                raise ZeroDivisionError("fussy")

    async def main():
        tr, _ = await loop.connect_read_pipe(Fussy, rf)
        os.write(w, b"bad")
        while not errors:
            await asyncio.sleep(0.005)
        os.write(w, b"good")
        while b"good" not in got:
            await asyncio.sleep(0.005)
        tr.close()

    try:
        run(loop, main())
    finally:
        os.close(w)
    assert got == [b"bad", b"good"]
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    assert errors[0]["message"].startswith("Exception in callback ")


def test_read_pipe_delivers_in_the_context_current_at_connect(loop):
    var = contextvars.ContextVar("var", default="unset")
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)
    seen = []

    class Peek(asyncio.Protocol):
        def data_received(self, data):
            seen.append(var.get())

    async def connect():
        var.set("at connect")
        return await loop.connect_read_pipe(Peek, rf)

    async def main():
        tr, _ = await loop.create_task(connect())  # a copy: the set stays in there
        assert var.get() == "unset"
        os.write(w, b"x")
        while not seen:
            await asyncio.sleep(0.005)
        tr.close()

    try:
        run(loop, main())
    finally:
        os.close(w)
    assert seen == ["at connect"]


# -- writing ----------------------------------------------------------------------------


def test_write_pipe_writes_and_close_flushes(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    wf = os.fdopen(w, "wb", buffering=0)
    size = 1024 * 1024

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        assert tr.get_extra_info("pipe") is wf
        assert tr.can_write_eof()
        tr.write(b"a" * size)  # more than the pipe holds: most of it is queued
        assert tr.get_write_buffer_size() > 0
        tr.close()
        assert tr.is_closing()
        tr.write(b"dropped")  # after close: silently dropped, as asyncio does
        data = await read_all(r, size + 100)
        assert data == b"a" * size
        assert await proto.lost is None
        assert wf.closed
        os.close(r)

    run(loop, main())


def test_write_pipe_accepts_bytearray_and_memoryview(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        buf = bytearray(b"abc")
        tr.write(buf)
        buf[:] = b"xyz"  # the transport copied it (or wrote it) already
        tr.write(memoryview(b"def"))
        tr.writelines([b"g", b"h"])
        tr.write(b"")
        tr.write_eof()
        assert await proto.lost is None
        assert await read_all(r, 8) == b"abcdefgh"
        os.close(r)

    run(loop, main())


def test_write_pipe_flow_control_with_slow_reader(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    wf = os.fdopen(w, "wb", buffering=0)
    total = 2 * 1024 * 1024

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        received = bytearray()

        async def slow_reader():
            while len(received) < total:
                try:
                    chunk = os.read(r, 16 * 1024)
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                    continue
                if not chunk:
                    break
                received.extend(chunk)
                await asyncio.sleep(0.0005)

        reader = asyncio.ensure_future(slow_reader())
        max_buffered = 0
        sent = 0
        block = bytes(range(256)) * 128  # 32 KiB
        while sent < total:
            await proto.can_write.wait()
            tr.write(block)
            sent += len(block)
            max_buffered = max(max_buffered, tr.get_write_buffer_size())
        tr.close()
        await reader
        assert await proto.lost is None
        assert proto.paused >= 1 and proto.resumed >= 1
        # The writer waited: the queue never grew far past the high-water mark.
        assert max_buffered <= 64 * 1024 + len(block)
        assert len(received) == total
        assert bytes(received) == block * (total // len(block))
        os.close(r)

    run(loop, main())


def test_write_pipe_reader_closed_is_noticed_without_writing(loop):
    r, w = os.pipe()
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        os.close(r)
        assert await proto.lost is None
        assert tr.is_closing()

    run(loop, main())


def test_write_pipe_reader_closed_with_data_queued(loop):
    r, w = os.pipe()
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        tr.write(b"x" * (1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        os.close(r)
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)
        assert tr.get_write_buffer_size() == 0

    run(loop, main())


def test_write_pipe_abort_drops_queued_data(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        tr.write(b"y" * (1024 * 1024))
        queued = tr.get_write_buffer_size()
        assert queued > 0
        tr.abort()
        assert tr.get_write_buffer_size() == 0
        assert await proto.lost is None
        data = await read_all(r, 1024 * 1024)
        assert len(data) == 1024 * 1024 - queued  # only what was written before abort
        os.close(r)

    run(loop, main())


def test_write_pipe_to_fifo(loop, tmp_path):
    path = str(tmp_path / "fifo")
    os.mkfifo(path)
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        assert stat.S_ISFIFO(os.fstat(w).st_mode)
        tr.write(b"into the fifo")
        tr.close()
        assert await proto.lost is None
        assert await read_all(r, 13) == b"into the fifo"
        os.close(r)

    run(loop, main())


def test_write_pipe_to_dev_null(loop):
    # A character device epoll refuses: asyncio writes to it directly, so do we.
    f = open(os.devnull, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, f)
        for _ in range(100):
            tr.write(b"z" * 65536)
        assert tr.get_write_buffer_size() == 0
        tr.close()
        assert await proto.lost is None
        assert f.closed

    run(loop, main())


def test_write_pipe_write_after_peer_closed_is_dropped(loop):
    r, w = os.pipe()
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, wf)
        os.close(r)
        await proto.lost
        for _ in range(3):
            tr.write(b"late")  # no exception
        with pytest.raises((TypeError, AssertionError)):
            tr.write("text")

    run(loop, main())


def test_pipe_fd_is_closed_exactly_once(loop):
    # The pipe object's fd is closed by the transport; libuv closes only its own copy.
    # A double close would hit the fds opened right after.
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", buffering=0)

    async def main():
        tr, proto = await loop.connect_read_pipe(Reader, rf)
        tr.close()
        await proto.lost
        reused = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]
        for _ in range(5):
            await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
        try:
            assert all(fd_is_open(fd) for fd in reused)
        finally:
            for fd in reused:
                os.close(fd)
        os.close(w)

    run(loop, main())


def test_connect_pipe_with_a_tty(loop):
    pytest.importorskip("pty")
    import pty

    master, slave = pty.openpty()
    sf = os.fdopen(slave, "wb", buffering=0)
    os.set_blocking(master, False)

    async def main():
        tr, proto = await loop.connect_write_pipe(Writer, sf)
        tr.write(b"to the terminal\n")
        got = b""
        while b"terminal" not in got:
            try:
                got += os.read(master, 1024)
            except BlockingIOError:
                await asyncio.sleep(0.005)
        tr.close()
        assert await proto.lost is None
        os.close(master)

    run(loop, main())


def test_uvcffi_pipe_handles_and_fds_are_released(uvcffi_loop):
    loop = uvcffi_loop

    async def rounds(n):
        for _ in range(n):
            r, w = os.pipe()
            rf = os.fdopen(r, "rb", buffering=0)
            wf = os.fdopen(w, "wb", buffering=0)
            rtr, rp = await loop.connect_read_pipe(Reader, rf)
            wtr, wp = await loop.connect_write_pipe(Writer, wf)
            wtr.write(b"ping")
            wtr.close()
            await wp.lost
            await rp.lost
            assert rp.data == b"ping"
        await asyncio.sleep(0)

    # The first round makes the loop's own lazily opened fds (signal wake-up, libuv's
    # reserve fd for EMFILE); after that, nothing may accumulate.
    run(loop, rounds(1))
    fds = len(os.listdir("/proc/self/fd"))
    run(loop, rounds(50))
    assert loop._uv_handle_stats()["live"] == 0
    assert len(os.listdir("/proc/self/fd")) == fds
