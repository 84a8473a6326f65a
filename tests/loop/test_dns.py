"""getaddrinfo/getnameinfo: same shapes and errors as the socket module's (loopback only)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from conftest import PYPY, skip_oracle_if


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", b"127.0.0.1", None])
def test_getaddrinfo_matches_socket_module(loop, host):
    kwargs = dict(family=socket.AF_INET, type=socket.SOCK_STREAM)
    got = loop.run_until_complete(loop.getaddrinfo(host, 8080, **kwargs))
    want = socket.getaddrinfo(host, 8080, **kwargs)
    assert sorted(got) == sorted(want)
    family, type_, proto, canonname, sockaddr = got[0]
    assert isinstance(family, socket.AddressFamily)
    assert isinstance(type_, socket.SocketKind)


def test_getaddrinfo_ipv6_loopback(loop):
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    got = loop.run_until_complete(loop.getaddrinfo("::1", 80, type=socket.SOCK_STREAM))
    assert got == socket.getaddrinfo("::1", 80, type=socket.SOCK_STREAM)
    assert len(got[0][4]) == 4


def test_getaddrinfo_service_names_and_flags(loop):
    kwargs = dict(family=socket.AF_INET, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    got = loop.run_until_complete(loop.getaddrinfo(None, "http", **kwargs))
    assert got == socket.getaddrinfo(None, "http", **kwargs)


def test_getaddrinfo_failure_is_gaierror(loop):
    with pytest.raises(socket.gaierror) as info:
        loop.run_until_complete(
            loop.getaddrinfo("not a valid host name!", 80, flags=socket.AI_NUMERICHOST)
        )
    assert info.value.errno == socket.EAI_NONAME


def test_getaddrinfo_bad_argument_types(loop):
    with pytest.raises((TypeError, OSError)):
        loop.run_until_complete(loop.getaddrinfo(1234, 80))
    # CPython's socket module raises OSError for a float port, PyPy's TypeError.
    with pytest.raises((TypeError, OSError)):
        loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 1.5))


def test_getaddrinfo_many_concurrent(loop):
    async def main():
        return await asyncio.gather(
            *(loop.getaddrinfo("127.0.0.1", i, type=socket.SOCK_STREAM) for i in range(100))
        )

    results = loop.run_until_complete(main())
    assert [r[0][4][1] for r in results] == list(range(100))


def test_getaddrinfo_cancelled(loop):
    async def main():
        tasks = [
            asyncio.ensure_future(loop.getaddrinfo("localhost", i, type=socket.SOCK_STREAM))
            for i in range(50)
        ]
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # Each one is either cancelled or finished before the cancel arrived.
        for r in results:
            assert isinstance(r, (asyncio.CancelledError, list))
        # The loop still resolves afterwards.
        return await loop.getaddrinfo("127.0.0.1", 1, type=socket.SOCK_STREAM)

    assert loop.run_until_complete(main())[0][4] == ("127.0.0.1", 1)


def test_getnameinfo(loop):
    got = loop.run_until_complete(loop.getnameinfo(("127.0.0.1", 80)))
    assert got == socket.getnameinfo(("127.0.0.1", 80), 0)
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    got = loop.run_until_complete(loop.getnameinfo(("127.0.0.1", 8080), flags))
    assert got == ("127.0.0.1", "8080")


def test_getnameinfo_errors(loop):
    skip_oracle_if(loop, PYPY, "PyPy's socket.getnameinfo raises IndexError for a 1-tuple")
    with pytest.raises(TypeError):
        loop.run_until_complete(loop.getnameinfo(("127.0.0.1",)))
    with pytest.raises(socket.gaierror):
        loop.run_until_complete(loop.getnameinfo(("not-numeric", 80)))
