"""UVGetAddrInfo and UVGetNameInfo on libuv's thread pool (test-getaddrinfo.c,
test-getnameinfo.c), compared with the ``socket`` module's answers for the same query.
Only loopback names and addresses, and one name that cannot exist (RFC 6761 .invalid).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

import uvcffi
from uvcffi._errors import uv_error_name
from uvcffi._uv.dns import UVGetAddrInfo, UVGetNameInfo
from uvcffi._uv.loop import (
    EV_GETADDRINFO,
    EVENT_WIDTH,
    RUN_NOWAIT,
    RUN_ONCE,
    UVLoop,
)
from uvcffi._uv.timer import UVTimer

from .uvutil import dispatch
from .uvutil import run_until as _run_until


def run_until(uvloop, done, timeout_ms=10_000):
    return _run_until(uvloop, done, timeout_ms)


INVALID_NAME = b"nonexistent.invalid"


def getaddrinfo(uvloop, host, port, family=0, type=0, proto=0, flags=0):
    """One request, run to completion; returns the list or the exception."""
    results = []
    UVGetAddrInfo(
        uvloop,
        None if host is None else host.encode(),
        None if port is None else str(port).encode(),
        family, type, proto, flags, results.append,
    )
    run_until(uvloop, lambda: results)
    assert len(results) == 1
    return results[0]


def stdlib_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    try:
        return socket.getaddrinfo(host, port, family, type, proto, flags)
    except socket.gaierror as exc:
        return exc


def has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# getaddrinfo
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [socket.SOCK_STREAM, 0], ids=["stream", "any-type"])
def test_numeric_ipv4_matches_socket_getaddrinfo(uvloop, type_):
    ours = getaddrinfo(uvloop, "127.0.0.1", 80, type=type_)
    assert ours == stdlib_getaddrinfo("127.0.0.1", 80, type=type_)
    assert ours  # and is not trivially empty
    family, kind, proto, canonname, sockaddr = ours[0]
    assert type(family) is socket.AddressFamily and family == socket.AF_INET
    assert type(kind) is socket.SocketKind
    assert isinstance(proto, int) and canonname == ""
    assert sockaddr == ("127.0.0.1", 80)


def test_localhost_matches_socket_getaddrinfo(uvloop):
    ours = getaddrinfo(uvloop, "localhost", 8080, type=socket.SOCK_STREAM)
    theirs = stdlib_getaddrinfo("localhost", 8080, type=socket.SOCK_STREAM)
    assert ours == theirs
    assert any(ai[4] == ("127.0.0.1", 8080) for ai in ours)


def test_ipv6_loopback_matches_socket_getaddrinfo(uvloop):
    if not has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1 cannot be bound)")
    ours = getaddrinfo(uvloop, "::1", 443, type=socket.SOCK_STREAM)
    assert ours == stdlib_getaddrinfo("::1", 443, type=socket.SOCK_STREAM)
    assert ours[0][0] == socket.AF_INET6
    assert ours[0][4] == ("::1", 443, 0, 0)  # IPv6 addresses are 4-tuples


def test_family_and_flags_are_passed_as_hints(uvloop):
    # AF_INET with AI_PASSIVE and no host: the wildcard address, as in socket's answer.
    args = (None, 9000, socket.AF_INET, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)
    ours = getaddrinfo(uvloop, *args)
    assert ours == stdlib_getaddrinfo(*args)
    assert ours[0][0] == socket.AF_INET and ours[0][1] == socket.SOCK_DGRAM
    assert ours[0][4] == ("0.0.0.0", 9000)


def test_canonical_name_is_returned_when_asked(uvloop):
    args = ("localhost", None, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    ours = getaddrinfo(uvloop, *args)
    assert ours == stdlib_getaddrinfo(*args)
    assert ours[0][3] != ""


def test_service_name_is_resolved(uvloop):
    results = []
    UVGetAddrInfo(uvloop, b"127.0.0.1", b"http", socket.AF_INET, socket.SOCK_STREAM, 0, 0,
                  results.append)
    run_until(uvloop, lambda: results)
    assert results[0] == stdlib_getaddrinfo("127.0.0.1", "http", socket.AF_INET,
                                            socket.SOCK_STREAM)


def test_invalid_name_raises_gaierror(uvloop):
    # .invalid never resolves (RFC 6761); without any resolver the lookup still fails,
    # and either way the error must be socket's, with a system EAI_* code.
    ours = getaddrinfo(uvloop, INVALID_NAME.decode(), 80, type=socket.SOCK_STREAM)
    assert isinstance(ours, socket.gaierror), ours
    eai_codes = {getattr(socket, n) for n in dir(socket) if n.startswith("EAI_")}
    assert ours.errno in eai_codes
    assert ours.strerror
    assert isinstance(stdlib_getaddrinfo(INVALID_NAME.decode(), 80), socket.gaierror)


def test_completion_event_frees_the_request_id(uvloop):
    results = []
    req = UVGetAddrInfo(uvloop, b"127.0.0.1", b"80", 0, socket.SOCK_STREAM, 0, 0,
                        results.append)
    oid = req._id
    assert uvloop.objects[oid] is req
    watchdog = UVTimer(uvloop, lambda: None)
    watchdog.start(10_000)
    seen = []
    while not results:
        events = uvloop.run(RUN_ONCE)
        seen += [tuple(events[i : i + EVENT_WIDTH]) for i in range(0, len(events), EVENT_WIDTH)]
        assert all(e[1] != watchdog._id for e in seen), "timed out"
        dispatch(uvloop, events)
    assert [e[:3] for e in seen] == [(EV_GETADDRINFO, oid, 0)]
    assert uvloop.objects[oid] is None and oid in uvloop.free_ids
    watchdog.close()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))


def test_requests_are_counted(uvloop):
    results = []
    hosts = [b"127.0.0.1", b"localhost", INVALID_NAME, b"127.0.0.1"]
    for host in hosts:
        UVGetAddrInfo(uvloop, host, b"80", 0, socket.SOCK_STREAM, 0, 0, results.append)
    UVGetNameInfo(uvloop, socket.AF_INET, "127.0.0.1", 80, 0, 0, 0, results.append)
    counters = uvloop.counters()
    # Completion is counted on the loop thread, when the loop runs: not yet.
    assert (counters["requests_started"], counters["requests_finished"]) == (5, 0)
    assert counters["handles_opened"] == 0  # requests are not handles
    run_until(uvloop, lambda: len(results) == 5)
    counters = uvloop.counters()
    assert (counters["requests_started"], counters["requests_finished"]) == (5, 5)
    assert sum(isinstance(r, socket.gaierror) for r in results) == 1


def test_many_concurrent_requests_all_complete(uvloop):
    # More requests than the pool has threads: they queue, and every callback runs once.
    results = []
    for i in range(40):
        UVGetAddrInfo(uvloop, b"127.0.0.1", str(1000 + i).encode(), socket.AF_INET,
                      socket.SOCK_STREAM, 0, 0, results.append)
    run_until(uvloop, lambda: len(results) == 40)
    ports = sorted(r[0][4][1] for r in results)
    assert ports == list(range(1000, 1040))


# ---------------------------------------------------------------------------------------
# getnameinfo
# ---------------------------------------------------------------------------------------


def getnameinfo(uvloop, family, host, port, flags=0):
    results = []
    UVGetNameInfo(uvloop, family, host, port, 0, 0, flags, results.append)
    run_until(uvloop, lambda: results)
    return results[0]


def test_getnameinfo_matches_socket_getnameinfo(uvloop):
    ours = getnameinfo(uvloop, socket.AF_INET, "127.0.0.1", 80)
    assert ours == socket.getnameinfo(("127.0.0.1", 80), 0)
    assert isinstance(ours[0], str) and isinstance(ours[1], str)


def test_getnameinfo_numeric_flags(uvloop):
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert getnameinfo(uvloop, socket.AF_INET, "127.0.0.1", 80, flags) == ("127.0.0.1", "80")
    if has_ipv6_loopback():
        assert getnameinfo(uvloop, socket.AF_INET6, "::1", 8080, flags) == ("::1", "8080")


def test_getnameinfo_of_a_non_numeric_host_raises_at_once(uvloop):
    for host in ("localhost", "300.1.1.1", ""):
        with pytest.raises(socket.gaierror) as info:
            UVGetNameInfo(uvloop, socket.AF_INET, host, 80, 0, 0, 0, lambda result: None)
        assert info.value.errno == socket.EAI_NONAME
    # Nothing was started and no id was kept.
    assert uvloop.counters()["requests_started"] == 0
    assert uvloop.objects == [None]


# ---------------------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------------------


def _assert_cancelled_error(exc):
    assert isinstance(exc, socket.gaierror), exc
    assert uv_error_name(exc.errno) == "EAI_CANCELED"


def test_cancelled_requests_complete_with_a_cancellation_error(uvloop):
    # Cancelling races the pool threads: each request either completes normally or
    # reports the cancellation, and every callback runs exactly once.
    results = []
    reqs = [
        UVGetAddrInfo(uvloop, b"localhost", b"80", 0, socket.SOCK_STREAM, 0, 0,
                      results.append)
        for _ in range(50)
    ]
    for req in reqs:
        req.cancel_request()
    run_until(uvloop, lambda: len(results) == 50)
    for result in results:
        if isinstance(result, BaseException):
            _assert_cancelled_error(result)
        else:
            assert result == stdlib_getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    # cancel_request after completion is a no-op.
    for req in reqs:
        req.cancel_request()
    assert uvloop.run(RUN_NOWAIT) == []


_CANCEL_SCRIPT = r"""
import json, socket
from uvcffi._uv.dns import UVGetAddrInfo, UVGetNameInfo
from uvcffi._uv.loop import UVLoop, RUN_ONCE, EVENT_WIDTH
from uvcffi._errors import uv_error_name

loop = UVLoop()
results = []
reqs = []
for i in range(300):
    if i % 3 == 2:
        req = UVGetNameInfo(loop, socket.AF_INET, "127.0.0.1", 80, 0, 0, 0, results.append)
    else:
        req = UVGetAddrInfo(loop, b"localhost", b"80", 0, socket.SOCK_STREAM, 0, 0,
                            results.append)
    # At once: the one pool thread is busy with an earlier request, or still waking up.
    req.cancel_request()
    reqs.append(req)
while len(results) < len(reqs):
    events = loop.run(RUN_ONCE)
    for i in range(0, len(events), EVENT_WIDTH):
        kind, oid, a, b = events[i : i + EVENT_WIDTH]
        loop.objects[oid]._on_event(kind, a, b)
errors = [r for r in results if isinstance(r, BaseException)]
print(json.dumps({
    "callbacks": len(results),
    "ok": len(results) - len(errors),
    "cancelled": sum(isinstance(e, socket.gaierror) and uv_error_name(e.errno) == "EAI_CANCELED"
                     for e in errors),
    "other_errors": [repr(e) for e in errors
                     if not (isinstance(e, socket.gaierror)
                             and uv_error_name(e.errno) == "EAI_CANCELED")],
    "counters": loop.counters(),
    "ids_in_use": sum(obj is not None for obj in loop.objects),
    "close": loop.close(),
}))
"""


def test_cancel_drops_requests_still_queued():
    # A subprocess with a one-thread pool, cancelling each request right after submitting
    # it, makes queued requests certain in practice (180-300 of 300 are cancelled); the
    # pool size is fixed when a process first uses it, hence the subprocess.
    src = os.path.dirname(os.path.dirname(os.path.abspath(uvcffi.__file__)))
    env = dict(os.environ, UV_THREADPOOL_SIZE="1",
               PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _CANCEL_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["callbacks"] == 300
    assert out["other_errors"] == []
    assert out["ok"] + out["cancelled"] == 300
    assert out["cancelled"] >= 1, out
    assert out["counters"]["requests_started"] == out["counters"]["requests_finished"] == 300
    assert out["ids_in_use"] == 0
    assert out["close"]["requests_finished"] == 300


def test_loop_close_cancels_pending_requests():
    uvloop = UVLoop()
    results = []
    for _ in range(100):
        UVGetAddrInfo(uvloop, b"localhost", b"80", 0, socket.SOCK_STREAM, 0, 0,
                      results.append)
    stats = uvloop.close()  # must not wait for the whole queue, nor leave any behind
    assert stats["requests_started"] == stats["requests_finished"] == 100
    assert results == []  # the events produced while closing are discarded


def test_loop_close_releases_requests_in_flight():
    # The glue frees requests completing while the loop closes (their events are
    # discarded); the wrappers must drop their pointers, so that a late cancel_request()
    # cannot reach the freed loop.
    uvloop = UVLoop()
    results = []
    reqs = [
        UVGetAddrInfo(uvloop, b"localhost", b"80", 0, socket.SOCK_STREAM, 0, 0,
                      results.append)
        for _ in range(20)
    ]
    reqs += [
        UVGetNameInfo(uvloop, socket.AF_INET, "127.0.0.1", 80, 0, 0, 0, results.append)
        for _ in range(5)
    ]
    stats = uvloop.close()
    assert stats["requests_started"] == stats["requests_finished"] == 25
    assert [req for req in reqs if req._ptr is not None] == []
    for req in reqs:
        req.cancel_request()  # a no-op now
    assert results == []
