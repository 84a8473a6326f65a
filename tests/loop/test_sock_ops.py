"""add_reader/add_writer and the sock_* coroutines, on loopback sockets only.

Every test runs on the stdlib loop (the oracle) and on uvcffi's.  Waits are bounded by
``asyncio.wait_for`` (and a faulthandler guard for a loop that blocks for good), so a
broken loop fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import errno
import faulthandler
import io
import os
import select
import socket
import ssl
import sys
import tempfile

import pytest

import uvcffi
from conftest import skip_oracle_if

TIMEOUT = 10
PY311 = sys.version_info >= (3, 11)
NO_DGRAM_OPS = "sock_recvfrom, sock_recvfrom_into and sock_sendto are new in 3.11"


@pytest.fixture(autouse=True)
def _hang_guard():
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Sockets:
    """Creates sockets for a test and closes whatever is left at its end."""

    def __init__(self, tmp_path):
        self._tmp_path = tmp_path
        self._all = []

    def track(self, *socks):
        self._all.extend(socks)
        return socks[0] if len(socks) == 1 else socks

    def nonblocking(self, *socks):
        for s in socks:
            s.setblocking(False)
        return self.track(*socks)

    def pair(self, family=socket.AF_UNIX, type_=socket.SOCK_STREAM):
        return self.nonblocking(*socket.socketpair(family, type_))

    def listener(self, family=socket.AF_INET, backlog=100):
        srv = socket.socket(family, socket.SOCK_STREAM)
        self.track(srv)
        if family == socket.AF_UNIX:
            srv.bind(self.path("srv"))
        else:
            srv.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        srv.listen(backlog)
        srv.setblocking(False)
        return srv

    def stream_pair(self, kind):
        """A connected pair of non-blocking stream sockets of the given kind."""
        if kind == "socketpair":
            return self.pair()
        family = {"tcp4": socket.AF_INET, "tcp6": socket.AF_INET6, "unix": socket.AF_UNIX}[kind]
        srv = self.listener(family)
        client = self.track(socket.socket(family, socket.SOCK_STREAM))
        client.connect(srv.getsockname())
        srv.setblocking(True)
        conn, _ = srv.accept()
        self.track(conn)
        return self.nonblocking(client, conn)

    def udp(self, family=socket.AF_INET):
        s = self.track(socket.socket(family, socket.SOCK_DGRAM))
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        s.setblocking(False)
        return s

    def path(self, name):
        path = str(self._tmp_path / name)
        if len(path) >= 100:  # sun_path is 108 bytes
            path = os.path.join(tempfile.mkdtemp(prefix="uvc"), name)
        return path

    def close_all(self):
        for s in self._all:
            s.close()


@pytest.fixture
def socks(tmp_path):
    s = Sockets(tmp_path)
    yield s
    s.close_all()


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="this machine has no IPv6 loopback")
STREAM_KINDS = [
    "socketpair",
    "tcp4",
    pytest.param("tcp6", marks=needs_ipv6),
    "unix",
]


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=TIMEOUT):
    """Let the loop run until ``predicate()`` holds."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.001)


async def iterations(n=5):
    for _ in range(n):
        await asyncio.sleep(0)


def payload(size):
    """Bytes in which a lost, duplicated or reordered chunk always shows."""
    block = os.urandom(65536)
    reps = -(-size // len(block))
    counter = b"".join(i.to_bytes(4, "big") + block[: 65536 - 4] for i in range(reps))
    return counter[:size]


async def recv_exactly(loop, sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, 1 << 20)
        assert chunk, "early EOF"
        got += chunk
    return bytes(got)


# ----------------------------------------------------------------------------------------
# add_reader / add_writer
# ----------------------------------------------------------------------------------------


def test_add_remove_reader_and_writer_return_values(loop, socks):
    a, _ = socks.pair()
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    assert loop.add_reader(a, lambda: None) is None
    assert loop.remove_writer(a) is False  # a reader only
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False
    assert loop.add_writer(a.fileno(), lambda: None) is None
    assert loop.remove_reader(a.fileno()) is False
    assert loop.remove_writer(a.fileno()) is True
    assert loop.remove_writer(a.fileno()) is False


def test_reader_fires_after_the_peer_writes(loop, socks):
    a, b = socks.pair()
    calls = []

    def on_readable(*args):
        calls.append((args, a.recv(100)))
        loop.remove_reader(a)

    async def main():
        loop.add_reader(a, on_readable, "x", 1)
        await iterations()
        assert calls == []  # nothing to read yet
        b.send(b"ping")
        await until(lambda: calls)

    run(loop, main())
    assert calls == [(("x", 1), b"ping")]


def test_writer_fires_with_its_args(loop, socks):
    a, _ = socks.pair()
    calls = []

    def on_writable(*args):
        calls.append(args)
        loop.remove_writer(a)

    async def main():
        loop.add_writer(a, on_writable, 1, "two")
        await until(lambda: calls)
        await iterations()

    run(loop, main())
    assert calls == [(1, "two")]  # once: the callback removed itself


def test_reader_is_level_triggered(loop, socks):
    a, b = socks.pair()
    calls = []
    b.send(b"x")

    async def main():
        loop.add_reader(a, calls.append, 1)
        await until(lambda: len(calls) >= 3)  # called again while unread data remains
        assert loop.remove_reader(a)
        n = len(calls)
        await iterations()
        assert len(calls) == n

    run(loop, main())


def test_replacing_a_reader_runs_only_the_new_one(loop, socks):
    a, b = socks.pair()
    calls = []

    def on_readable(name):
        calls.append(name)
        loop.remove_reader(a)

    async def main():
        loop.add_reader(a, on_readable, "old")
        await iterations()
        loop.add_reader(a, on_readable, "new")
        b.send(b"x")
        await until(lambda: calls)
        await iterations()

    run(loop, main())
    assert calls == ["new"]


def test_replacing_a_writer_runs_only_the_new_one(loop, socks):
    a, _ = socks.pair()
    calls = []

    def on_writable(name):
        calls.append(name)
        loop.remove_writer(a)

    async def main():
        loop.add_writer(a, on_writable, "old")
        loop.add_writer(a, on_writable, "new")
        await until(lambda: calls)
        await iterations()

    run(loop, main())
    assert calls == ["new"]


def test_reader_and_writer_on_one_fd(loop, socks):
    a, b = socks.pair()
    calls = []

    async def main():
        loop.add_reader(a, calls.append, "r")
        loop.add_writer(a, calls.append, "w")
        await until(lambda: "w" in calls)
        assert "r" not in calls  # writable, not readable
        b.send(b"x")
        await until(lambda: "r" in calls)
        # Removing the writer keeps the reader.
        assert loop.remove_writer(a)
        del calls[:]
        await until(lambda: len(calls) >= 2)
        assert set(calls) == {"r"}
        # And the other way round.
        loop.add_writer(a, calls.append, "w")
        assert loop.remove_reader(a)
        a.recv(10)
        del calls[:]
        await until(lambda: len(calls) >= 2)
        assert set(calls) == {"w"}
        assert loop.remove_writer(a)

    run(loop, main())


def test_a_callback_removing_the_other_one_of_the_same_event(loop, socks):
    # Both are due in the same iteration; the reader runs first and removes the writer,
    # whose Handle is then cancelled and must not run.
    a, b = socks.pair()
    calls = []

    def on_readable():
        calls.append("r")
        loop.remove_writer(a)
        loop.remove_reader(a)

    async def main():
        b.send(b"x")
        loop.add_writer(a, calls.append, "w")
        loop.add_reader(a, on_readable)
        await until(lambda: calls)
        await iterations()

    run(loop, main())
    assert calls == ["r"]


class FileLike:
    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd


def test_fd_as_an_object_with_fileno(loop, socks):
    a, b = socks.pair()
    calls = []
    obj = FileLike(a.fileno())

    async def main():
        loop.add_reader(obj, calls.append, "obj")
        b.send(b"x")
        await until(lambda: calls)
        # The same fd, whichever way it is named.
        assert loop.remove_reader(a.fileno())
        loop.add_writer(a.fileno(), lambda: None)
        assert loop.remove_writer(obj)

    run(loop, main())


@pytest.mark.parametrize("method", ["add_reader", "add_writer", "remove_reader", "remove_writer"])
def test_bad_fds_raise_value_error(loop, method):
    def bad_fileno():
        raise ValueError("closed")

    class Broken:
        fileno = staticmethod(bad_fileno)

    args = (lambda: None,) if method.startswith("add") else ()
    for bad in (-1, object(), FileLike("not a number"), FileLike(-5), Broken(), None):
        with pytest.raises(ValueError):
            getattr(loop, method)(bad, *args)


def test_add_reader_on_a_closed_fd_raises_oserror(loop, socks):
    a, _ = socks.pair()
    fd = a.fileno()
    a.close()
    with pytest.raises(OSError) as info:
        loop.add_reader(fd, lambda: None)
    assert info.value.errno == errno.EBADF
    assert loop.remove_reader(fd) is False


def test_add_reader_on_a_regular_file_raises_permission_error(loop, tmp_path):
    # epoll cannot watch a regular file, and both loops say so.
    with open(tmp_path / "f", "wb") as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f, lambda: None)
        assert loop.remove_reader(f) is False


def test_reader_exception_goes_to_the_exception_handler(loop, socks):
    _, b = socks.pair()
    seen = []
    loop.set_exception_handler(lambda loop, context: seen.append(context))

    def boom():
        loop.remove_writer(b)
        raise ZeroDivisionError

    async def main():
        loop.add_writer(b, boom)
        await until(lambda: seen)

    run(loop, main())
    assert isinstance(seen[0]["exception"], ZeroDivisionError)
    assert isinstance(seen[0]["handle"], asyncio.Handle)


def test_remove_reader_of_a_socket_closed_since(loop, socks):
    # A registered file object is found again after close(), when fileno() is -1.
    a, _ = socks.pair()
    loop.add_reader(a, lambda: None)
    a.close()
    assert loop.remove_reader(a) is True
    with pytest.raises(ValueError):  # no longer registered, and fileno() is -1
        loop.remove_reader(a)
    run(loop, iterations())


def test_closed_loop(loop, socks):
    a, _ = socks.pair()
    loop.close()
    with pytest.raises(RuntimeError):
        loop.add_reader(a, lambda: None)
    with pytest.raises(RuntimeError):
        loop.add_writer(a, lambda: None)
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


def test_close_closes_the_poll_handles_of_registered_fds(uvcffi_loop, socks):
    """A reader left registered is the user's: the leak check counts it, close() frees it."""
    loop = uvcffi_loop
    a, b = socks.pair()
    loop.add_reader(a, lambda: None)
    loop.add_writer(b, lambda: None)
    run(loop, iterations())
    assert loop._uv_handle_stats()["live"] == 2
    loop.close()
    stats = loop._uv_close_stats
    assert stats["handles_forgotten"] == 0  # closed by the loop, not by uv_walk
    assert stats["handles_opened"] == stats["handles_closed"]


def test_one_poll_handle_per_fd(uvcffi_loop, socks):
    loop = uvcffi_loop
    a, _ = socks.pair()
    before = loop._uv.counters()["handles_opened"]
    loop.add_reader(a, lambda: None)
    loop.add_writer(a, lambda: None)
    loop.add_reader(a, lambda: None)
    assert loop._uv.counters()["handles_opened"] == before + 1
    assert loop._uv_handle_stats()["live"] == 1
    loop.remove_reader(a)
    assert loop._uv_handle_stats()["live"] == 1
    loop.remove_writer(a)
    run(loop, iterations())
    assert loop._uv_handle_stats()["live"] == 0


def test_add_reader_keeps_a_blocking_fd_blocking(loop, socks):
    # libuv's uv_poll_init makes the fd non-blocking; asyncio leaves it alone, and so must
    # we, or a thread doing blocking reads on it would get BlockingIOError.
    r, w = os.pipe()
    try:
        assert os.get_blocking(r)
        loop.add_reader(r, lambda: None)
        assert os.get_blocking(r)
        assert loop.remove_reader(r)
        run(loop, iterations())
    finally:
        os.close(r)
        os.close(w)


# ----------------------------------------------------------------------------------------
# An fd closed (and reused) behind the loop's back
# ----------------------------------------------------------------------------------------


def test_fd_closed_and_reused_behind_the_loop(loop, socks):
    a, _ = socks.pair()
    fd = a.fileno()
    calls = []

    async def main():
        loop.add_reader(a, calls.append, "old")
        await iterations()
        a.close()  # behind the loop's back: the reader is still registered
        await iterations()
        c, d = socks.pair()  # very likely gets the same fd number
        new = c if c.fileno() == fd else d if d.fileno() == fd else None
        assert loop.remove_reader(fd) is True
        if new is None:
            pytest.skip("the fd number was not reused")
        peer = d if new is c else c

        def on_readable():
            calls.append(new.recv(10))
            loop.remove_reader(new)

        loop.add_reader(new, on_readable)
        peer.send(b"new")
        await until(lambda: b"new" in calls)

    run(loop, main())
    assert calls == [b"new"]


def test_reused_fd_is_watched_again_when_its_reader_is_replaced(uvcffi_loop, socks):
    """uvcffi re-registers an fd with epoll on every change (the stdlib loop does not when
    the mask stays the same, and would never report the new socket)."""
    loop = uvcffi_loop
    a, _ = socks.pair()
    fd = a.fileno()
    got = []

    async def main():
        loop.add_reader(a, lambda: None)
        await iterations()
        a.close()
        c, d = socks.pair()
        new, peer = (c, d) if c.fileno() == fd else (d, c)
        if new.fileno() != fd:
            pytest.skip("the fd number was not reused")
        loop.add_reader(fd, lambda: (got.append(new.recv(10)), loop.remove_reader(fd)))
        peer.send(b"x")
        await until(lambda: got)

    run(loop, main())
    assert got == [b"x"]


def test_socket_closed_and_fd_reused_between_two_sock_recv_in_one_step(loop, socks):
    # The first sock_recv ends and, in the same task step, its socket is closed and a new
    # socket gets the fd: the new socket must really be watched.
    a, b = socks.pair()
    fd = a.fileno()

    async def main():
        loop.call_later(0.01, b.send, b"first")
        assert await loop.sock_recv(a, 10) == b"first"
        a.close()
        with pytest.raises(ValueError):
            loop.remove_reader(a)  # the closed socket is not registered any more
        c, d = socks.pair()
        if c.fileno() != fd:
            pytest.skip("the fd number was not reused")
        loop.call_later(0.01, d.send, b"second")
        assert await loop.sock_recv(c, 10) == b"second"
        # And through add_reader with the bare fd.
        loop.call_later(0.01, d.send, b"third")
        assert await loop.sock_recv(c, 10) == b"third"
        got = loop.create_future()
        c.close()
        c2, d2 = socks.pair()
        if c2.fileno() != fd:
            pytest.skip("the fd number was not reused")
        loop.add_reader(fd, lambda: got.done() or got.set_result(c2.recv(10)))
        d2.send(b"fourth")
        assert await got == b"fourth"
        assert loop.remove_reader(fd)

    run(loop, main())


def test_back_to_back_waits_reuse_the_poll_handle(uvcffi_loop, socks):
    """A sock_* operation that waits right after another one on the same socket ended, in
    the same task step, re-arms the same poll handle: no libuv call, no syscall."""
    loop = uvcffi_loop
    a, b = socks.pair()

    async def main():
        loop.call_later(0.01, b.send, b"1")
        assert await loop.sock_recv(a, 10) == b"1"
        opened = loop._uv.counters()["handles_opened"]
        for i in range(2, 6):
            loop.call_later(0.01, b.send, b"%d" % i)
            assert await loop.sock_recv(a, 10) == b"%d" % i
        assert loop._uv.counters()["handles_opened"] == opened

    run(loop, main())
    run(loop, iterations())
    assert loop._uv_handle_stats()["live"] == 0  # closed once nothing waited any more


def test_parked_poll_handle_and_the_fd_slot_in_libuv(uvcffi_loop, socks):
    """Until the next uv_run a parked handle keeps the fd's slot in libuv: code giving a
    reused fd number to another libuv handle calls _sk_release_fd first.  No parked handle
    survives the end of a run."""
    from uvcffi._uv.poll import UVPoll

    loop = uvcffi_loop
    a, b = socks.pair()
    fd = a.fileno()

    def no_events(status, events):
        raise AssertionError("unexpected poll event")

    async def main():
        loop.call_later(0.01, b.send, b"x")
        await loop.sock_recv(a, 10)  # it waited: its handle is parked now
        a.close()
        c, _ = socks.pair()
        if c.fileno() != fd:
            pytest.skip("the fd number was not reused")
        with pytest.raises(FileExistsError):
            UVPoll(loop._uv, fd, no_events)
        loop._sk_release_fd(fd)
        UVPoll(loop._uv, fd, no_events).close()

    run(loop, main())

    # A run that ends right after a wait leaves nothing holding the fd.
    e, f = socks.pair()
    loop.call_later(0.01, f.send, b"y")
    assert run(loop, loop.sock_recv(e, 10)) == b"y"
    UVPoll(loop._uv, e.fileno(), no_events).close()
    run(loop, iterations())


def test_sock_recv_whose_socket_is_closed_in_the_same_iteration(loop, socks):
    # libuv registers an fd with epoll lazily, in the next uv_run, and aborts the process
    # if that fails: uvcffi must notice the close first.
    a, b = socks.pair()

    async def main():
        task = loop.create_task(loop.sock_recv(a, 10))
        await asyncio.sleep(0)  # the task now waits for readability
        a.close()
        await asyncio.sleep(0.05)
        task.cancel()
        (result,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(loop, uvcffi.Loop):
            # It runs the reader, whose recv raises the real error.
            assert isinstance(result, OSError) and result.errno == errno.EBADF
        else:
            # epoll forgot the fd: the stdlib loop never hears of it again.
            assert isinstance(result, asyncio.CancelledError)
        # The loop still works.
        c, d = socks.pair()
        d.send(b"ok")
        assert await loop.sock_recv(c, 10) == b"ok"

    run(loop, main())


def test_raw_fd_closed_right_after_add_reader(loop, socks):
    a, _ = socks.pair()
    fd = a.detach()
    calls = []

    async def main():
        loop.add_reader(fd, calls.append, "r")
        os.close(fd)
        await iterations()
        # uvcffi runs it once, to let it see EBADF; the stdlib loop never hears of it.
        assert calls == (["r"] if isinstance(loop, uvcffi.Loop) else [])
        assert loop.remove_reader(fd) is True

    run(loop, main())


def test_probe_without_a_spare_fd(uvcffi_loop, socks, monkeypatch):
    """When no epoll instance can be created for the probe (out of fds), an fstat stands in
    for it: a closed fd is still caught before libuv sees it."""
    import types

    import uvcffi._loop.sockets as sockets_module

    def no_epoll():
        raise OSError(errno.EMFILE, "Too many open files")

    fake_select = types.SimpleNamespace(epoll=no_epoll, EPOLLIN=select.EPOLLIN)
    monkeypatch.setattr(sockets_module, "select", fake_select)
    loop = uvcffi_loop
    a, _ = socks.pair()
    fd = a.detach()
    calls = []

    async def main():
        loop.add_reader(fd, calls.append, "r")
        os.close(fd)
        await iterations()
        assert calls == ["r"]
        assert loop.remove_reader(fd) is True

    run(loop, main())


def test_mask_change_on_an_fd_closed_behind_the_loop(uvcffi_loop, socks, tmp_path):
    """Adding a writer to a reader whose fd was closed -- and reused by a regular file,
    which epoll refuses -- runs both callbacks instead of letting libuv abort.  (The stdlib
    loop raises OSError from add_writer here.)"""
    loop = uvcffi_loop
    a, _ = socks.pair()
    fd = a.fileno()
    calls = []

    async def main():
        loop.add_reader(a, calls.append, "r")
        await iterations()
        a.close()
        with open(tmp_path / "f", "wb") as f:
            duplicated = f.fileno() != fd
            if duplicated:
                os.dup2(f.fileno(), fd)  # make the fd number a regular file
            try:
                loop.add_writer(fd, calls.append, "w")
                await until(lambda: len(calls) >= 2)
                assert sorted(calls[:2]) == ["r", "w"]
                assert loop.remove_reader(fd) is True
                assert loop.remove_writer(fd) is True
                # Adding to it raises, as for any fd epoll refuses.
                with pytest.raises(PermissionError):
                    loop.add_reader(fd, lambda: None)
            finally:
                if duplicated:
                    os.close(fd)

    run(loop, main())


def test_poll_error_runs_both_callbacks(loop, socks):
    # A refused connect: epoll says POLLERR (and POLLHUP); libuv stops the poll handle and
    # reports UV_EBADF, with no events.  Both callbacks run, and SO_ERROR tells the truth.
    closed = socks.track(socket.socket())
    closed.bind(("127.0.0.1", 0))  # bound, not listening: SYN gets RST
    s = socks.nonblocking(socket.socket())
    with pytest.raises(BlockingIOError):
        s.connect(closed.getsockname())
    calls = []
    errors = []

    def on_event(name):
        calls.append(name)
        errors.append(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
        if {"r", "w"} <= set(calls):
            loop.remove_reader(s)
            loop.remove_writer(s)

    async def main():
        loop.add_reader(s, on_event, "r")
        loop.add_writer(s, on_event, "w")
        await until(lambda: {"r", "w"} <= set(calls))

    run(loop, main())
    assert errors[0] == errno.ECONNREFUSED


def test_poll_error_reaches_the_waiting_recv(loop, socks):
    # A connected UDP socket to a closed port gets ECONNREFUSED from the ICMP error:
    # epoll says POLLERR, libuv stops the handle with UV_EBADF; the reader must run, its
    # recv raise the real error, and the socket keep working.
    port_holder = socks.udp()
    port = port_holder.getsockname()[1]
    port_holder.close()
    u = socks.udp()
    u.connect(("127.0.0.1", port))

    async def main():
        task = loop.create_task(loop.sock_recv(u, 100))
        await iterations()
        u.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError):
            await task
        # The socket still works for the next operation.
        u.send(b"again")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_recv(u, 100), TIMEOUT)

    run(loop, main())


# ----------------------------------------------------------------------------------------
# sock_recv, sock_recv_into, sock_sendall
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_sock_recv_and_sendall(loop, socks, kind):
    a, b = socks.stream_pair(kind)

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await iterations()
        assert not task.done()
        await loop.sock_sendall(b, b"hello")
        assert await task == b"hello"
        # Data already there: returned without waiting.
        b.send(b"there")
        await asyncio.sleep(0.01)
        assert await loop.sock_recv(a, 100) == b"there"
        b.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv(a, 100) == b""

    run(loop, main())


def test_sock_recv_into(loop, socks):
    a, b = socks.pair()

    async def main():
        buf = bytearray(10)
        task = loop.create_task(loop.sock_recv_into(a, buf))
        await iterations()
        b.send(b"abc")
        assert await task == 3
        assert buf[:3] == b"abc"
        b.send(b"0123456789xyz")
        view = memoryview(buf)[2:6]
        assert await loop.sock_recv_into(a, view) == 4
        assert buf == bytearray(b"ab0123\0\0\0\0")

    run(loop, main())


@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_sock_sendall_megabytes_every_byte_checked(loop, socks, kind):
    a, b = socks.stream_pair(kind)
    data = payload(3 * 1024 * 1024 + 123)

    async def receive():
        got = bytearray(len(data))
        view = memoryview(got)
        n = 0
        while n < len(data):
            k = await loop.sock_recv_into(a, view[n:])
            assert k, "early EOF"
            n += k
        return got

    async def main():
        received, _ = await asyncio.gather(receive(), loop.sock_sendall(b, data))
        return received

    got = run(loop, main(), timeout=60)
    assert len(got) == len(data)
    assert got == data


def test_sock_sendall_other_buffers(loop, socks):
    a, b = socks.pair()
    chunks = bytearray(payload(1200000))  # sent in several partial sends

    async def main():
        await loop.sock_sendall(b, b"")
        await loop.sock_sendall(b, memoryview(b"xyz")[1:])
        send = loop.create_task(loop.sock_sendall(b, memoryview(chunks)[1:]))
        got = await recv_exactly(loop, a, 2 + len(chunks) - 1)
        await send
        return got

    got = run(loop, main())
    assert got == b"yz" + chunks[1:]


def test_sock_sendall_counts_bytes_not_items(uvcffi_loop, socks):
    """A buffer of 4-byte items is sent whole.  (The stdlib loop compares the bytes sent
    with len(), which counts items, and sends wrong data or never finishes.)"""
    import array

    loop = uvcffi_loop
    a, b = socks.pair()
    ints = array.array("i", range(300000))  # 1.2 MB: sent in several partial sends

    async def main():
        await loop.sock_sendall(b, b"")
        await loop.sock_sendall(b, memoryview(b"xyz")[1:])
        send = loop.create_task(loop.sock_sendall(b, ints))
        want = 2 + ints.itemsize * len(ints)
        got = bytearray()
        while len(got) < want:
            got += await loop.sock_recv(a, 65536)
        await send
        return bytes(got)

    got = run(loop, main())
    assert got == b"yz" + ints.tobytes()


def test_sock_sendall_to_a_closed_peer_raises(loop, socks):
    a, b = socks.pair()
    a.close()

    async def main():
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await loop.sock_sendall(b, b"x" * 1000000)

    run(loop, main())


# ----------------------------------------------------------------------------------------
# Datagrams: sock_recvfrom, sock_recvfrom_into, sock_sendto
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family", [socket.AF_INET, pytest.param(socket.AF_INET6, marks=needs_ipv6)]
)
def test_sock_recvfrom_and_sendto(loop, socks, family):
    skip_oracle_if(loop, not PY311, NO_DGRAM_OPS)
    a, b = socks.udp(family), socks.udp(family)

    async def main():
        task = loop.create_task(loop.sock_recvfrom(a, 100))
        await iterations()
        assert not task.done()
        assert await loop.sock_sendto(b, b"dgram", a.getsockname()) == 5
        data, addr = await task
        assert data == b"dgram"
        assert addr[:2] == b.getsockname()[:2]
        # Datagram boundaries are kept.
        await loop.sock_sendto(b, b"one", a.getsockname())
        await loop.sock_sendto(b, b"two", a.getsockname())
        assert (await loop.sock_recvfrom(a, 100))[0] == b"one"
        assert (await loop.sock_recvfrom(a, 2))[0] == b"tw"  # truncated

    run(loop, main())


def test_sock_recvfrom_into(loop, socks):
    skip_oracle_if(loop, not PY311, NO_DGRAM_OPS)
    a, b = socks.udp(), socks.udp()

    async def main():
        buf = bytearray(10)
        task = loop.create_task(loop.sock_recvfrom_into(a, buf))
        await iterations()
        b.sendto(b"hello", a.getsockname())
        n, addr = await task
        assert (n, addr, bytes(buf[:n])) == (5, b.getsockname(), b"hello")
        b.sendto(b"abcdefgh", a.getsockname())
        n, addr = await loop.sock_recvfrom_into(a, buf, 3)  # nbytes limits the read
        assert (n, bytes(buf[:3])) == (3, b"abc")

    run(loop, main())


def _full_unix_dgram(socks):
    """A receiver and a non-blocking sender whose sendto would block (the queue is full)."""
    path = socks.path("dg")
    receiver = socks.track(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    receiver.bind(path)
    receiver.setblocking(False)
    sender = socks.nonblocking(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    sender.connect(path)
    sent = 0
    try:
        while True:
            sender.sendto(b"fill", path)
            sent += 1
    except BlockingIOError:
        pass
    return receiver, sender, path, sent


def test_sock_sendto_waits_while_the_peer_queue_is_full(loop, socks):
    skip_oracle_if(loop, not PY311, NO_DGRAM_OPS)
    receiver, sender, path, sent = _full_unix_dgram(socks)

    async def main():
        task = loop.create_task(loop.sock_sendto(sender, b"last", path))
        await iterations()
        assert not task.done()
        assert receiver.recv(100) == b"fill"
        assert await task == 4
        got = [receiver.recv(100) for _ in range(sent)]
        assert got[-1] == b"last"

    run(loop, main())


# ----------------------------------------------------------------------------------------
# sock_connect, sock_accept
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, host",
    [
        (socket.AF_INET, "127.0.0.1"),
        (socket.AF_INET, "localhost"),
        pytest.param(socket.AF_INET6, "::1", marks=needs_ipv6),
        (socket.AF_UNIX, None),
    ],
)
def test_sock_connect_and_accept(loop, socks, family, host):
    srv = socks.listener(family)
    port_or_path = srv.getsockname() if family == socket.AF_UNIX else srv.getsockname()[1]
    client = socks.nonblocking(socket.socket(family, socket.SOCK_STREAM))

    async def main():
        accept = loop.create_task(loop.sock_accept(srv))
        await iterations()
        assert not accept.done()
        address = port_or_path if family == socket.AF_UNIX else (host, port_or_path)
        await loop.sock_connect(client, address)
        conn, peer = await accept
        socks.track(conn)
        assert conn.gettimeout() == 0  # accepted sockets are non-blocking
        if family != socket.AF_UNIX:
            assert peer[:2] == client.getsockname()[:2]
            assert client.getpeername()[:2] == srv.getsockname()[:2]
        await loop.sock_sendall(client, b"over the wire")
        assert await loop.sock_recv(conn, 100) == b"over the wire"

    run(loop, main())


def test_sock_accept_with_a_connection_already_waiting(loop, socks):
    srv = socks.listener()
    client = socks.track(socket.create_connection(srv.getsockname()))

    async def main():
        conn, peer = await loop.sock_accept(srv)
        socks.track(conn)
        assert peer == client.getsockname()

    run(loop, main())


def test_sock_connect_refused(loop, socks):
    # A bound socket that does not listen answers SYN with RST, and keeps the port ours.
    closed = socks.track(socket.socket())
    closed.bind(("127.0.0.1", 0))
    client = socks.nonblocking(socket.socket())

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(client, closed.getsockname())
        other = socks.nonblocking(socket.socket())
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(other, ("localhost", closed.getsockname()[1]))

    run(loop, main())


def test_sock_connect_unknown_host(loop, socks):
    client = socks.nonblocking(socket.socket())

    async def main():
        with pytest.raises(socket.gaierror):
            await loop.sock_connect(client, ("nonexistent.invalid", 80))

    run(loop, main())


def test_sock_connect_unix_to_a_missing_path(loop, socks):
    client = socks.nonblocking(socket.socket(socket.AF_UNIX))

    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.sock_connect(client, socks.path("nobody"))

    run(loop, main())


# ----------------------------------------------------------------------------------------
# Checks: debug mode, SSL sockets
# ----------------------------------------------------------------------------------------


def _op_calls(sock, tmp_path):
    f = open(tmp_path / "sendfile", "wb+")  # closed by the caller
    return f, {
        "sock_recv": (sock, 1),
        "sock_recv_into": (sock, bytearray(1)),
        "sock_recvfrom": (sock, 1),
        "sock_recvfrom_into": (sock, bytearray(1)),
        "sock_sendall": (sock, b"x"),
        "sock_sendto": (sock, b"x", ("127.0.0.1", 1)),
        "sock_connect": (sock, ("127.0.0.1", 1)),
        "sock_accept": (sock,),
        "sock_sendfile": (sock, f),
    }


OPS = [
    "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into", "sock_sendall",
    "sock_sendto", "sock_connect", "sock_accept", "sock_sendfile",
]


@pytest.mark.parametrize("op", OPS)
def test_blocking_socket_is_refused_in_debug_mode(loop, tmp_path, op):
    skip_oracle_if(loop, not hasattr(asyncio.AbstractEventLoop, op), NO_DGRAM_OPS)
    loop.set_debug(True)
    with socket.socket() as sock:
        f, calls = _op_calls(sock, tmp_path)
        with f, pytest.raises(ValueError, match="the socket must be non-blocking"):
            run(loop, getattr(loop, op)(*calls[op]))


@pytest.mark.parametrize("op", OPS)
def test_ssl_socket_is_refused(loop, tmp_path, op):
    skip_oracle_if(loop, not hasattr(asyncio.AbstractEventLoop, op), NO_DGRAM_OPS)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain = socket.socket()
    with ctx.wrap_socket(plain, server_hostname="x", do_handshake_on_connect=False) as sock:
        sock.setblocking(False)
        f, calls = _op_calls(sock, tmp_path)
        with f, pytest.raises(TypeError, match="SSLSocket"):
            run(loop, getattr(loop, op)(*calls[op]))


# ----------------------------------------------------------------------------------------
# Cancellation leaves the socket usable, and no reader or writer behind
# ----------------------------------------------------------------------------------------


async def cancel_while_waiting(coro):
    loop = asyncio.get_event_loop()
    task = loop.create_task(coro)
    await iterations()
    assert not task.done(), "expected the operation to wait"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("op", ["sock_recv", "sock_recv_into"])
def test_cancelled_recv_leaves_the_socket_usable(loop, socks, op):
    a, b = socks.pair()
    arg = 100 if op == "sock_recv" else bytearray(100)

    async def main():
        await cancel_while_waiting(getattr(loop, op)(a, arg))
        assert loop.remove_reader(a) is False  # the reader went with the cancellation
        b.send(b"after")
        result = await getattr(loop, op)(a, arg)
        assert result == (b"after" if op == "sock_recv" else 5)

    run(loop, main())


@pytest.mark.parametrize("op", ["sock_recvfrom", "sock_recvfrom_into"])
def test_cancelled_recvfrom_leaves_the_socket_usable(loop, socks, op):
    skip_oracle_if(loop, not PY311, NO_DGRAM_OPS)
    a, b = socks.udp(), socks.udp()
    arg = 100 if op == "sock_recvfrom" else bytearray(100)

    async def main():
        await cancel_while_waiting(getattr(loop, op)(a, arg))
        assert loop.remove_reader(a) is False
        b.sendto(b"after", a.getsockname())
        result, addr = await getattr(loop, op)(a, arg)
        assert result == (b"after" if op == "sock_recvfrom" else 5)
        assert addr == b.getsockname()

    run(loop, main())


def test_cancelled_sendall_leaves_the_socket_usable(loop, socks):
    a, b = socks.pair()
    data = payload(8 * 1024 * 1024)  # more than the socket buffers hold

    async def drain():
        got = bytearray()
        while True:
            try:
                chunk = a.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.02)
                try:
                    chunk = a.recv(1 << 20)
                except BlockingIOError:
                    return got
            got += chunk

    async def main():
        await cancel_while_waiting(loop.sock_sendall(b, data))
        assert loop.remove_writer(b) is False
        first = await drain()
        await loop.sock_sendall(b, b"tail")
        rest = bytearray()
        while not rest.endswith(b"tail"):
            rest += await loop.sock_recv(a, 1 << 20)
        return bytes(first + rest)

    got = run(loop, main())
    assert got.endswith(b"tail")
    assert data.startswith(got[:-4])  # a prefix of the cancelled data, then the new one


def test_cancelled_sendto_leaves_the_socket_usable(loop, socks):
    skip_oracle_if(loop, not PY311, NO_DGRAM_OPS)
    receiver, sender, path, sent = _full_unix_dgram(socks)

    async def main():
        await cancel_while_waiting(loop.sock_sendto(sender, b"never", path))
        assert loop.remove_writer(sender) is False
        got = [receiver.recv(100) for _ in range(sent)]
        assert b"never" not in got
        assert await loop.sock_sendto(sender, b"after", path) == 5
        assert receiver.recv(100) == b"after"

    run(loop, main())


def test_cancelled_accept_leaves_the_socket_usable(loop, socks):
    srv = socks.listener()

    async def main():
        await cancel_while_waiting(loop.sock_accept(srv))
        assert loop.remove_reader(srv) is False
        client = socks.nonblocking(socket.socket())
        accept = loop.create_task(loop.sock_accept(srv))
        await loop.sock_connect(client, srv.getsockname())
        conn, _ = await accept
        socks.track(conn)

    run(loop, main())


def test_cancelled_connect_while_resolving(loop, socks):
    srv = socks.listener()
    client = socks.nonblocking(socket.socket())
    port = srv.getsockname()[1]

    async def main():
        task = loop.create_task(loop.sock_connect(client, ("localhost", port)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await loop.sock_connect(client, ("127.0.0.1", port))
        conn, _ = await loop.sock_accept(srv)
        socks.track(conn)

    run(loop, main())


def fill_accept_queue(socks, srv):
    """Connect until the listener's accept queue is full; return how many are queued."""
    for queued in range(10):
        probe = socket.socket()
        probe.setblocking(False)
        try:
            probe.connect(srv.getsockname())
        except BlockingIOError:
            pass
        _, writable, _ = select.select([], [probe], [], 0.2)
        if not writable:
            probe.close()  # still in progress: the queue is full
            return queued
        socks.track(probe)
    raise AssertionError("the accept queue never filled up")


def test_cancelled_connect_while_connecting(loop, socks):
    # With listen(0) and one connection queued, the kernel drops further SYNs: a connect
    # stays in progress until the queue has room (and the SYN is retransmitted, ~1 s).
    srv = socks.listener(backlog=0)
    queued = fill_accept_queue(socks, srv)  # PyPy's listen(0) means a backlog of 1
    client = socks.nonblocking(socket.socket())

    async def main():
        task = loop.create_task(loop.sock_connect(client, srv.getsockname()))
        await asyncio.sleep(0.1)
        if task.done():
            pytest.skip("this kernel completed the connection despite the full backlog")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_writer(client) is False
        # Make room: the connection attempt, still going on, then completes.
        for _ in range(queued):
            conn, _ = await loop.sock_accept(srv)
            socks.track(conn)
        await loop.sock_connect(client, srv.getsockname())
        conn2, _ = await loop.sock_accept(srv)
        socks.track(conn2)
        await loop.sock_sendall(client, b"made it")
        assert await loop.sock_recv(conn2, 100) == b"made it"

    run(loop, main())


def test_cancel_one_of_two_waiters_on_the_same_socket(loop, socks):
    # A second sock_recv on the same socket replaces the first one's reader (asyncio's
    # behaviour); cancelling the replaced one must not remove the second one's reader.
    a, b = socks.pair()

    async def main():
        first = loop.create_task(loop.sock_recv(a, 100))
        await iterations()
        second = loop.create_task(loop.sock_recv(a, 100))
        await iterations()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        b.send(b"for the second")
        assert await second == b"for the second"

    run(loop, main())


# ----------------------------------------------------------------------------------------
# sock_sendfile (the read-and-sendall path)
# ----------------------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path):
    data = payload(1024 * 1024 + 777)  # several chunks of the fallback's 256 KiB
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


@pytest.mark.parametrize(
    "offset, count",
    [(0, None), (1000, None), (0, 100), (300000, 500000), (5, 10**9)],
)
def test_sock_sendfile(loop, socks, data_file, offset, count):
    f, data = data_file
    a, b = socks.pair()
    want = data[offset : offset + count] if count else data[offset:]

    async def main():
        sent, got = await asyncio.gather(
            loop.sock_sendfile(b, f, offset, count), recv_exactly(loop, a, len(want))
        )
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(want)
    assert got == want
    assert f.tell() == offset + len(want)


def test_sock_sendfile_starts_at_offset_wherever_the_file_is(loop, socks, data_file):
    f, data = data_file
    f.seek(12345)
    a, b = socks.pair()

    async def main():
        return await asyncio.gather(
            loop.sock_sendfile(b, f, 0, 1000), recv_exactly(loop, a, 1000)
        )

    sent, got = run(loop, main())
    assert (sent, got, f.tell()) == (1000, data[:1000], 1000)


def test_sock_sendfile_empty_file_and_in_memory_file(loop, socks, tmp_path):
    a, b = socks.pair()
    (tmp_path / "empty").write_bytes(b"")

    async def main():
        with open(tmp_path / "empty", "rb") as f:
            assert await loop.sock_sendfile(b, f) == 0
            assert f.tell() == 0
        memory = io.BytesIO(b"0123456789")
        sent, got = await asyncio.gather(
            loop.sock_sendfile(b, memory, 2, 5), recv_exactly(loop, a, 5)
        )
        assert (sent, got, memory.tell()) == (5, b"23456", 7)

    run(loop, main())


def test_sock_sendfile_parameter_errors(loop, socks, tmp_path):
    a, b = socks.pair()
    udp = socks.udp()
    path = tmp_path / "f"
    path.write_bytes(b"data")

    async def main():
        with open(path, "rb") as f:
            for sock, kwargs, exc, match in [
                (udp, {}, ValueError, "only SOCK_STREAM"),
                (b, {"count": 0}, ValueError, "count must be a positive integer"),
                (b, {"count": -1}, ValueError, "count must be a positive integer"),
                (b, {"count": "1"}, TypeError, "count must be a positive integer"),
                (b, {"offset": -1}, ValueError, "offset must be a non-negative integer"),
                (b, {"offset": 1.5}, TypeError, "offset must be a non-negative integer"),
            ]:
                with pytest.raises(exc, match=match):
                    await loop.sock_sendfile(sock, f, **kwargs)
        with open(path) as text:
            with pytest.raises(ValueError, match="binary mode"):
                await loop.sock_sendfile(b, text)

    run(loop, main())


def test_sock_sendfile_without_fallback(uvcffi_loop, socks, data_file):
    """uvcffi has only the read-and-send path, so ``fallback=False`` cannot be honoured
    (the stdlib's Unix loop would use os.sendfile here)."""
    f, _ = data_file
    _, b = socks.pair()
    with pytest.raises(asyncio.SendfileNotAvailableError):
        run(uvcffi_loop, uvcffi_loop.sock_sendfile(b, f, fallback=False))
    assert f.tell() == 0


def test_cancelled_sendfile_updates_the_file_position(loop, socks, tmp_path):
    a, b = socks.pair()
    data = payload(16 * 1024 * 1024)
    path = tmp_path / "big"
    path.write_bytes(data)

    async def main():
        with open(path, "rb") as f:
            task = loop.create_task(loop.sock_sendfile(b, f))
            await asyncio.sleep(0.2)  # the peer reads nothing: the transfer stalls
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            position = f.tell()
        assert 0 <= position < len(data)
        assert loop.remove_writer(b) is False
        # The socket still works: drain what was sent, then send more.
        send = loop.create_task(loop.sock_sendall(b, b"usable"))
        got = bytearray()
        while not got.endswith(b"usable"):
            got += await loop.sock_recv(a, 1 << 20)
        await send
        assert data.startswith(got[: -len(b"usable")])

    run(loop, main(), timeout=30)


# ----------------------------------------------------------------------------------------
# Many at once
# ----------------------------------------------------------------------------------------


def test_many_concurrent_echo_pairs(loop, socks):
    n_pairs, n_messages = 200, 20
    pairs = [socks.pair() for _ in range(n_pairs)]

    async def echo(sock):
        while True:
            data = await loop.sock_recv(sock, 65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            await loop.sock_sendall(sock, data)

    async def client(i, sock):
        for j in range(n_messages):
            message = f"{i}:{j};".encode() * (1 + (i * j) % 50)
            await loop.sock_sendall(sock, message)
            assert await recv_exactly(loop, sock, len(message)) == message
        sock.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv(sock, 10) == b""

    async def main():
        servers = [loop.create_task(echo(b)) for _, b in pairs]
        await asyncio.gather(*(client(i, a) for i, (a, _) in enumerate(pairs)))
        await asyncio.gather(*servers)

    run(loop, main(), timeout=60)


def test_many_concurrent_tcp_connections(loop, socks):
    srv = socks.listener(backlog=256)
    n = 100

    async def serve():
        handlers = []
        for _ in range(n):
            conn, _ = await loop.sock_accept(srv)
            socks.track(conn)
            handlers.append(loop.create_task(loop.sock_sendall(conn, b"hi %d" % conn.fileno())))
        await asyncio.gather(*handlers)

    async def connect():
        s = socks.nonblocking(socket.socket())
        await loop.sock_connect(s, srv.getsockname())
        data = await loop.sock_recv(s, 100)
        assert data.startswith(b"hi ")

    async def main():
        await asyncio.gather(serve(), *(connect() for _ in range(n)))

    run(loop, main(), timeout=60)

