"""UVUDP: datagrams through libuv's uv_udp_t (libuv's test-udp-*.c, loopback only).

Covers the event layout of glue/udp.c: data and sender address travel together in the read
arena, empty datagrams are delivered, a full arena leaves datagrams in the kernel instead
of truncating them, and queued sends complete in order under the handle's own id.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket

import pytest

from uvcffi._ffi import lib
from uvcffi._uv.loop import (
    EV_CLOSED,
    EV_UDP_RECV,
    EV_UDP_SEND,
    EVENT_WIDTH,
    RUN_NOWAIT,
    RUN_ONCE,
    UVLoop,
)
from uvcffi._uv.udp import IPV6ONLY, REUSEADDR, REUSEPORT, UVUDP, make_sockaddr

from .uvutil import close_all, dispatch, events_of, run_until

LOCAL = ("127.0.0.1", 0)


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def receiver(uvloop, family=socket.AF_INET, address=LOCAL):
    """A bound, receiving UVUDP and the list its on_recv fills."""
    got = []
    udp = UVUDP(uvloop, family)
    udp.on_recv = lambda data, addr, exc: got.append((data, addr, exc))
    udp.bind(family, address)
    udp.recv_start()
    return udp, got


def getsockopt(udp, level, option):
    """Read a socket option of the fd libuv owns, through a duplicate."""
    with socket.socket(fileno=os.dup(udp.fileno())) as s:
        return s.getsockopt(level, option)


# ---------------------------------------------------------------------------------------
# Receiving
# ---------------------------------------------------------------------------------------


def test_datagram_and_sender_address(uvloop):
    udp, got = receiver(uvloop)
    host, port = udp.getsockname()
    assert host == "127.0.0.1" and port > 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(LOCAL)
        peer.sendto(b"hello", (host, port))
        run_until(uvloop, lambda: got)
        assert got == [(b"hello", peer.getsockname(), None)]
    close_all(uvloop, udp)


def test_recv_event_layout(uvloop):
    """(UDP_RECV, id, nread, offset | addrlen << 32): data, then the sockaddr, 8-aligned."""
    udp, _ = receiver(uvloop)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"abc", udp.getsockname())
        peer_port = peer.getsockname()[1]
        events = []
        while not events:
            events = events_of(uvloop.run(RUN_ONCE))
    [(kind, oid, nread, b)] = events
    assert (kind, oid, nread) == (EV_UDP_RECV, udp._id, 3)
    offset, addrlen = b & 0xFFFFFFFF, b >> 32
    assert offset % 8 == 0
    assert addrlen == 16  # sizeof(struct sockaddr_in)
    assert uvloop.arena_bytes(offset, 3) == b"abc"
    sa = uvloop.arena_bytes(offset + 8, addrlen)
    assert int.from_bytes(sa[2:4], "big") == peer_port  # sin_port
    assert sa[4:8] == socket.inet_aton("127.0.0.1")
    close_all(uvloop, udp)


def test_empty_datagram_is_delivered(uvloop):
    udp, got = receiver(uvloop)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"", udp.getsockname())
        peer.sendto(b"after", udp.getsockname())
        run_until(uvloop, lambda: len(got) == 2)
        assert [g[0] for g in got] == [b"", b"after"]
        assert got[0][1] == ("127.0.0.1", peer.getsockname()[1])
    close_all(uvloop, udp)


def test_largest_datagrams(uvloop):
    udp, got = receiver(uvloop)
    payloads = [os.urandom(65507), bytes(60 * 1024), os.urandom(1)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        for p in payloads:
            peer.sendto(p, udp.getsockname())
        run_until(uvloop, lambda: len(got) == len(payloads))
    assert [g[0] for g in got] == payloads
    close_all(uvloop, udp)


def test_full_arena_leaves_datagrams_in_the_kernel(uvloop):
    """More data than the 256 KiB arena in one iteration: the rest waits, none is cut."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # beyond net.core.rmem_max, if we may
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", -1), 4 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    # Room for n datagrams of `size` in the kernel, counting its overhead generously.
    size = 10_000
    n = min(100, sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // (2 * size))
    if n < 30:
        sock.close()
        pytest.skip(f"the socket receive buffer holds only {n} datagrams of {size} bytes")
    sock.bind(LOCAL)
    udp = UVUDP(uvloop)
    udp.open(sock.detach())
    got = []
    udp.on_recv = lambda data, addr, exc: got.append(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for i in range(n):
            peer.sendto(i.to_bytes(4, "big") * (size // 4), udp.getsockname())
    udp.recv_start()
    batches = []

    def step():
        events = uvloop.run(RUN_NOWAIT)
        batches.append(len(events) // EVENT_WIDTH)
        dispatch(uvloop, events)
        return len(got) == n

    run_until(uvloop, step)
    assert [len(g) for g in got] == [size] * n
    assert [int.from_bytes(g[:4], "big") for g in got] == list(range(n))
    assert all(g == g[:4] * (size // 4) for g in got)
    # libuv reads up to 32 datagrams per wake-up; the arena holds fewer of these.
    assert max(batches) < 32, batches
    close_all(uvloop, udp)


def test_receive_ipv6(uvloop):
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    udp, got = receiver(uvloop, socket.AF_INET6, ("::1", 0))
    host, port, flowinfo, scope_id = udp.getsockname()
    assert (host, flowinfo, scope_id) == ("::1", 0, 0)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as peer:
        peer.bind(("::1", 0))
        peer.sendto(b"six", ("::1", port))
        run_until(uvloop, lambda: got)
        assert got == [(b"six", peer.getsockname(), None)]
    close_all(uvloop, udp)


def test_sender_addresses_are_cached_but_distinct(uvloop):
    udp, got = receiver(uvloop)
    peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for p in peers:
            p.bind(LOCAL)
        for _ in range(2):
            for p in peers:
                p.sendto(b"x", udp.getsockname())
        run_until(uvloop, lambda: len(got) == 6)
        names = [p.getsockname() for p in peers]
        assert [g[1] for g in got] == names * 2
        assert got[0][1] is got[3][1]  # decoded once
    finally:
        for p in peers:
            p.close()
    close_all(uvloop, udp)


def test_recv_stop(uvloop):
    udp, got = receiver(uvloop)
    udp.recv_stop()
    assert not udp.is_active()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"later", udp.getsockname())
        for _ in range(3):
            dispatch(uvloop, uvloop.run(RUN_NOWAIT))
        assert got == []
        udp.recv_start()
        run_until(uvloop, lambda: got)
    assert got[0][0] == b"later"
    close_all(uvloop, udp)


# ---------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------


def test_try_send_sends_without_queueing(uvloop):
    udp, got = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    assert sender.try_send(b"one", dest) is True
    assert sender.try_send(bytearray(b"two"), dest) is True
    assert sender.try_send(memoryview(b"xthreex")[1:-1], dest) is True
    assert sender.try_send(b"", dest) is True
    assert sender.send_queue_count() == 0
    run_until(uvloop, lambda: len(got) == 4)
    assert [g[0] for g in got] == [b"one", b"two", b"three", b""]
    # The first send bound the sender to an ephemeral port.
    assert got[0][1] == ("127.0.0.1", sender.getsockname()[1])
    close_all(uvloop, udp, sender)


def test_send_queues_a_copy_and_completes_in_order(uvloop):
    udp, got = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    done = []
    sender.on_send = done.append
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    data = bytearray(b"first")
    sender.send(data, dest)
    data[:] = b"XXXXX"  # the glue sent (or copied) it already
    sender.send(b"", dest)
    sender.send(b"third", dest)
    assert sender.send_queue_count() <= 3
    run_until(uvloop, lambda: len(done) == 3 and len(got) == 3)
    assert done == [None, None, None]
    assert [g[0] for g in got] == [b"first", b"", b"third"]
    assert sender.send_queue_count() == 0 and sender.send_queue_size() == 0
    assert uvloop.counters()["requests_started"] == uvloop.counters()["requests_finished"] == 3
    close_all(uvloop, udp, sender)


def test_send_events_carry_the_handle_id(uvloop):
    udp, _ = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    sender.on_send = lambda exc: None
    sender.send(b"x", make_sockaddr(socket.AF_INET, udp.getsockname()))
    events = []
    while not any(e[0] == EV_UDP_SEND for e in events):
        batch = uvloop.run(RUN_ONCE)
        events += events_of(batch)
        dispatch(uvloop, batch)
    assert (EV_UDP_SEND, sender._id, 0, 0) in events
    close_all(uvloop, udp, sender)


def test_try_send_refuses_while_sends_are_queued(uvloop):
    udp, got = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    done = []
    sender.on_send = done.append
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    sender.send(b"queued", dest)
    if sender.send_queue_count():
        assert sender.try_send(b"jumps the queue?", dest) is False
    run_until(uvloop, lambda: done)
    assert sender.try_send(b"now", dest) is True
    run_until(uvloop, lambda: len(got) == 2)
    assert [g[0] for g in got] == [b"queued", b"now"]
    close_all(uvloop, udp, sender)


def test_closing_cancels_queued_sends(uvloop):
    udp, _ = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    done = []
    sender.on_send = done.append
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    for _ in range(5):
        sender.send(b"x" * 1000, dest)
    queued = sender.send_queue_count()
    sender.close()
    events = uvloop.run(RUN_NOWAIT)
    kinds = [e[0] for e in events_of(events) if e[1] == sender._id]
    dispatch(uvloop, events)
    # Every send completes (sent, or cancelled) before the handle's CLOSED.
    assert kinds == [EV_UDP_SEND] * queued + [EV_CLOSED]
    assert len(done) == 5
    for exc in done[5 - queued :]:
        assert exc is None or exc.errno == errno.ECANCELED
    close_all(uvloop, udp)


# ---------------------------------------------------------------------------------------
# Connected handles, errors
# ---------------------------------------------------------------------------------------


def test_connect_and_disconnect(uvloop):
    udp, got = receiver(uvloop)
    client = UVUDP(uvloop, socket.AF_INET)
    client.connect(socket.AF_INET, udp.getsockname())
    assert client.getpeername() == udp.getsockname()
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    with pytest.raises(OSError) as info:
        client.try_send(b"x", dest)  # connected: no address
    assert info.value.errno == errno.EISCONN
    assert client.try_send(b"connected") is True
    client.disconnect()
    with pytest.raises(OSError) as info:
        client.getpeername()
    assert info.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as info:
        client.try_send(b"x")
    assert info.value.errno == errno.EDESTADDRREQ
    assert client.try_send(b"unconnected", dest) is True
    run_until(uvloop, lambda: len(got) == 2)
    assert [g[0] for g in got] == [b"connected", b"unconnected"]
    close_all(uvloop, udp, client)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(LOCAL)
        return s.getsockname()[1]


def test_icmp_refusal_is_reported_on_a_connected_handle(uvloop):
    client = UVUDP(uvloop, socket.AF_INET)
    errors = []
    client.on_recv = lambda data, addr, exc: errors.append(exc)
    client.connect(socket.AF_INET, ("127.0.0.1", _closed_port()))
    client.recv_start()
    assert client.try_send(b"anyone?") is True
    run_until(uvloop, lambda: errors)
    assert isinstance(errors[0], ConnectionRefusedError)
    close_all(uvloop, client)


def test_icmp_refusal_is_reported_by_try_send(uvloop):
    client = UVUDP(uvloop, socket.AF_INET)
    client.connect(socket.AF_INET, ("127.0.0.1", _closed_port()))
    assert client.try_send(b"anyone?") is True
    with socket.socket(fileno=os.dup(client.fileno())) as dup:
        # Wait for the ICMP error to reach the socket, without consuming it.
        select.select([dup], [], [], 2.0)
    with pytest.raises(ConnectionRefusedError):
        client.try_send(b"still?")
    close_all(uvloop, client)


def test_unconnected_send_without_address_fails(uvloop):
    udp = UVUDP(uvloop, socket.AF_INET)
    with pytest.raises(OSError) as info:
        udp.send(b"x")
    assert info.value.errno == errno.EDESTADDRREQ
    close_all(uvloop, udp)


def test_make_sockaddr_rejects_names(uvloop):
    with pytest.raises(OSError):
        make_sockaddr(socket.AF_INET, ("localhost", 1))
    with pytest.raises(OSError):
        make_sockaddr(socket.AF_INET, ("::1", 1))


# ---------------------------------------------------------------------------------------
# Sockets, options, lifetime
# ---------------------------------------------------------------------------------------


def test_bind_flags_set_socket_options(uvloop):
    plain = UVUDP(uvloop)
    plain.bind(socket.AF_INET, LOCAL)
    assert getsockopt(plain, socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
    reuse = UVUDP(uvloop)
    reuse.bind(socket.AF_INET, LOCAL, REUSEADDR)
    assert getsockopt(reuse, socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
    handles = [plain, reuse]
    if hasattr(socket, "SO_REUSEPORT"):
        port = UVUDP(uvloop)
        port.bind(socket.AF_INET, LOCAL, REUSEPORT)
        assert getsockopt(port, socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        handles.append(port)
    close_all(uvloop, *handles)


def test_ipv6only_flag(uvloop):
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    udp = UVUDP(uvloop)
    udp.bind(socket.AF_INET6, ("::1", 0), IPV6ONLY)
    assert getsockopt(udp, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    bad = UVUDP(uvloop)
    with pytest.raises(OSError) as info:
        bad.bind(socket.AF_INET, LOCAL, IPV6ONLY)  # IPv6-only on an IPv4 socket
    assert info.value.errno == errno.EINVAL
    close_all(uvloop, udp, bad)


def test_open_adopts_a_socket_without_making_it_reusable(uvloop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(LOCAL)
    name = sock.getsockname()
    udp = UVUDP(uvloop)
    udp.open(sock.fileno())
    # uv_udp_open sets SO_REUSEADDR; the glue puts it back.
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
    assert udp.getsockname() == name
    assert udp.fileno() == sock.fileno()
    assert fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK  # libuv's doing
    sock.detach()  # libuv closes the fd with the handle
    close_all(uvloop, udp)


def test_open_keeps_a_reuseaddr_the_socket_had(uvloop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp = UVUDP(uvloop)
    udp.open(sock.detach())
    assert getsockopt(udp, socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
    close_all(uvloop, udp)


def test_open_of_a_connected_socket_marks_the_handle_connected(uvloop):
    udp, got = receiver(uvloop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(udp.getsockname())
    client = UVUDP(uvloop)
    client.open(sock.detach())
    assert client.getpeername() == udp.getsockname()
    assert client.try_send(b"via fd") is True
    run_until(uvloop, lambda: got)
    assert got[0][0] == b"via fd"
    close_all(uvloop, udp, client)


def test_set_broadcast(uvloop):
    udp = UVUDP(uvloop, socket.AF_INET)
    udp.set_broadcast(True)
    assert getsockopt(udp, socket.SOL_SOCKET, socket.SO_BROADCAST) != 0
    udp.set_broadcast(False)
    assert getsockopt(udp, socket.SOL_SOCKET, socket.SO_BROADCAST) == 0
    close_all(uvloop, udp)


def test_open_closed_fd_raises_ebadf(uvloop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = s.fileno()
    s.close()
    udp = UVUDP(uvloop)
    with pytest.raises(OSError) as info:
        udp.open(fd)
    assert info.value.errno == errno.EBADF
    close_all(uvloop, udp)


def test_close_rejects_calls_and_frees_the_id(uvloop):
    udp, got = receiver(uvloop)
    oid = udp._id
    udp.close()
    assert udp.closed
    for call in (udp.recv_start, lambda: udp.try_send(b"x"), udp.getsockname):
        with pytest.raises(RuntimeError, match="UVUDP is closed"):
            call()
    udp.recv_stop()  # a no-op once closed
    assert udp.send_queue_size() == 0 and udp.send_queue_count() == 0
    events = uvloop.run(RUN_NOWAIT)
    assert events_of(events) == [(EV_CLOSED, oid, lib.UV_UDP, 0)]
    dispatch(uvloop, events)
    assert uvloop.objects[oid] is None
    assert got == []


def test_loop_close_with_handles_open_does_not_crash():
    uvloop = UVLoop()
    udp, _ = receiver(uvloop)
    sender = UVUDP(uvloop, socket.AF_INET)
    sender.on_send = lambda exc: None
    dest = make_sockaddr(socket.AF_INET, udp.getsockname())
    for _ in range(3):
        sender.send(b"x" * 100, dest)
    stats = uvloop.close()
    assert stats["handles_forgotten"] == 2
    assert stats["handles_opened"] == stats["handles_closed"]
    assert stats["requests_started"] == stats["requests_finished"]
    assert udp.closed and sender.closed
    sender.close()  # late calls are no-ops, not use-after-free
    udp.recv_stop()
