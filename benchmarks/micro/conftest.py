"""Fixtures shared by the micro-benchmarks: the loops to compare and the leak checks.

Every benchmark that goes through the public asyncio API takes the ``loop`` fixture (or
``loop_futures`` when Futures and Tasks matter), so it is written once and runs on each
loop in turn; the parameter becomes the suffix of the benchmark's name, e.g.
``bench_call_soon[uvloop]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

#: Loops compared by every public-API benchmark, the stdlib's first (the reference).
LOOP_NAMES = ("asyncio", "uvloop", "uvcffi")
#: Where Futures and Tasks are created by the loop, uvcffi also runs with the stdlib's
#: classes (C on CPython), to separate the loop's cost from our Future/Task's.
FUTURE_LOOP_NAMES = (*LOOP_NAMES, "uvcffi-stdlib-futures")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import uvcffi  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(
            f"uvcffi is not importable ({exc}): run with PYTHONPATH=src or pip install -e ."
        ) from exc


def pytest_report_header(config: pytest.Config) -> str:
    import uvcffi

    try:
        import uvloop

        uvloop_version = uvloop.__version__
    except ImportError:
        uvloop_version = "not importable"
    return (
        f"micro-benchmarks: {sys.implementation.name} {sys.version.split()[0]}, "
        f"uvcffi {uvcffi.__version__} (libuv {uvcffi.LIBUV_VERSION}), uvloop {uvloop_version}"
    )


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """Make the loop called ``name`` in LOOP_NAMES/FUTURE_LOOP_NAMES, or skip the test."""
    if name == "asyncio":
        # Explicitly the selector loop, whatever event loop policy may be installed.
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            # uvloop is only a yardstick (pip install uvcffi[bench]); it does not exist for
            # PyPy.  The skip reason is printed in the summary (-ra).
            pytest.skip(f"uvloop is not importable: {exc}")
        return uvloop.new_event_loop()
    import uvcffi

    if name == "uvcffi":
        return uvcffi.new_event_loop()
    if name == "uvcffi-stdlib-futures":
        return uvcffi.new_event_loop(stdlib_futures=True)
    raise ValueError(f"unknown loop {name!r}")


def _loop_fixture(request: pytest.FixtureRequest):
    loop = new_loop(request.param)
    # Errors that reach the exception handler (a failed callback, a broken transport)
    # would otherwise only be logged while the benchmark reports a time; fail instead.
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield loop
    finally:
        loop.close()
    assert not errors, f"the {request.param} loop reported errors: {errors}"


@pytest.fixture(params=LOOP_NAMES)
def loop(request: pytest.FixtureRequest):
    """Each loop of LOOP_NAMES in turn, closed after the test."""
    yield from _loop_fixture(request)


@pytest.fixture(params=FUTURE_LOOP_NAMES)
def loop_futures(request: pytest.FixtureRequest):
    """Each loop of FUTURE_LOOP_NAMES in turn, closed after the test."""
    yield from _loop_fixture(request)


@pytest.fixture
def uvcffi_loop():
    """One uvcffi loop, for the benchmarks of its internals."""
    import uvcffi

    loop = uvcffi.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None  # no procfs: the thread check still runs


@pytest.fixture(scope="session", autouse=True)
def _process_wide_state():
    """Make and close one loop of each kind, with a TCP server, before the first leak check.

    libuv opens a few descriptors once per process, on the first loop (the signal
    handling pipe), in uvloop's copy and in ours, and uvcffi keeps a /dev/null descriptor
    open after its first loop that made a TCP stream; none of them is a benchmark's leak.
    """
    for name in FUTURE_LOOP_NAMES:
        try:
            loop = new_loop(name)
        except pytest.skip.Exception:
            continue
        try:
            server = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
            server.close()
            loop.run_until_complete(server.wait_closed())
        finally:
            loop.close()


@pytest.fixture(autouse=True)
def _nothing_left_open(_process_wide_state):
    """Fail a benchmark that leaves a thread or a file descriptor (loop, socket) open.

    Being autouse, this fixture is set up before and torn down after the loop fixtures, so
    it sees the state once every loop and socket the test made should be closed.
    """
    threads = threading.active_count()
    fds = _open_fds()
    yield
    assert threading.active_count() == threads, "a benchmark left a thread running"
    assert _open_fds() == fds, "a benchmark left a file descriptor open"
