"""UVPoll: readiness of a file descriptor (libuv's test-poll.c, on a socketpair)."""

from __future__ import annotations

import errno
import os
import socket
import tempfile

import pytest

from uvcffi._uv.loop import EV_CLOSED, EV_POLL, RUN_NOWAIT
from uvcffi._uv.loop_watcher import UVIdle
from uvcffi._uv.poll import DISCONNECT, READABLE, WRITABLE, UVPoll

from .uvutil import close_all, dispatch, events_of, run_until


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_readable_after_the_peer_writes(uvloop, pair):
    a, b = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append((status, events)))
    assert poll.fd == a.fileno()
    poll.start(READABLE)
    assert poll.is_active() and poll.events == READABLE
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == []  # nothing to read yet

    b.send(b"x")
    run_until(uvloop, lambda: calls)
    assert calls[0] == (0, READABLE)
    assert a.recv(10) == b"x"
    close_all(uvloop, poll)


def test_poll_event_carries_the_handle_id(uvloop, pair):
    a, b = pair
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: None)
    poll.start(READABLE)
    b.send(b"x")
    # The byte is already there: the first poll phase reports it.
    assert events_of(uvloop.run(RUN_NOWAIT)) == [(EV_POLL, poll._id, 0, READABLE)]
    close_all(uvloop, poll)


def test_readable_is_level_triggered(uvloop, pair):
    a, b = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    poll.start(READABLE)
    b.send(b"xy")
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [READABLE] * 3  # reported every iteration until read
    a.recv(10)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [READABLE] * 3
    close_all(uvloop, poll)


def test_writable_at_once(uvloop, pair):
    a, _ = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append((status, events)))
    poll.start(WRITABLE)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [(0, WRITABLE)]
    close_all(uvloop, poll)


def test_changing_the_event_mask(uvloop, pair):
    a, b = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    b.send(b"x")
    poll.start(READABLE | WRITABLE)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [READABLE | WRITABLE]
    poll.start(WRITABLE)  # one poll handle per fd: the mask is changed in place
    assert poll.events == WRITABLE
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls[1:] == [WRITABLE]
    close_all(uvloop, poll)


def test_stop_stops(uvloop, pair):
    a, b = pair
    calls, iterations = [], []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    pacer = UVIdle(uvloop, lambda: iterations.append(1))  # keeps the loop iterating
    pacer.start()
    poll.start(READABLE | WRITABLE)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 1
    poll.stop()
    assert not poll.is_active() and poll.events == 0
    b.send(b"x")  # readable and writable now, but not watched
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 1 and len(iterations) == 4
    poll.start(READABLE)  # a stopped handle can be started again
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls[1:] == [READABLE]
    close_all(uvloop, poll, pacer)


def test_disconnect_when_the_peer_closes(uvloop, pair):
    a, b = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    poll.start(READABLE | DISCONNECT)
    b.shutdown(socket.SHUT_WR)
    run_until(uvloop, lambda: calls)
    assert calls[0] & DISCONNECT
    close_all(uvloop, poll)


def test_close_stops_events_and_rejects_calls(uvloop, pair):
    a, b = pair
    calls = []
    poll = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    poll.start(READABLE)
    b.send(b"x")
    poll.close()
    with pytest.raises(RuntimeError, match="UVPoll is closed"):
        poll.start(READABLE)
    with pytest.raises(RuntimeError, match="UVPoll is closed"):
        poll.stop()
    events = events_of(uvloop.run(RUN_NOWAIT))
    assert [e[0] for e in events] == [EV_CLOSED]
    dispatch(uvloop, [x for e in events for x in e])
    assert calls == []
    # After CLOSED the fd is free for a new poll handle.
    again = UVPoll(uvloop, a.fileno(), lambda status, events: calls.append(events))
    again.start(READABLE)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert calls == [READABLE]
    close_all(uvloop, again)


def test_closed_fd_raises_ebadf(uvloop):
    s = socket.socket()
    fd = s.fileno()
    s.close()
    with pytest.raises(OSError) as info:
        UVPoll(uvloop, fd, lambda status, events: None)
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        UVPoll(uvloop, -1, lambda status, events: None)
    assert info.value.errno == errno.EBADF
    # A failed init leaves nothing behind: no handle counted, no id kept.
    assert uvloop.counters()["handles_opened"] == 0
    assert all(obj is None for obj in uvloop.objects)


def test_regular_file_raises_permission_error(uvloop):
    # epoll cannot watch regular files: libuv reports EPERM.
    with tempfile.TemporaryFile() as f:
        with pytest.raises(PermissionError) as info:
            UVPoll(uvloop, f.fileno(), lambda status, events: None)
    assert info.value.errno == errno.EPERM
    assert info.value.strerror == os.strerror(errno.EPERM).lower()


def test_second_poll_on_the_same_fd_raises_file_exists(uvloop, pair):
    a, _ = pair
    first = UVPoll(uvloop, a.fileno(), lambda status, events: None)
    first.start(READABLE)
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    with pytest.raises(FileExistsError) as info:
        UVPoll(uvloop, a.fileno(), lambda status, events: None)
    assert info.value.errno == errno.EEXIST
    assert uvloop.counters()["handles_opened"] == 1
    close_all(uvloop, first)
