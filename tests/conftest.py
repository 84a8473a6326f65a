"""Shared fixtures: every loop contract test runs against the stdlib loop and uvcffi's.

The stdlib loop is the oracle: a test that passes on ``asyncio`` and fails on ``uvcffi`` is
a uvcffi bug.  For uvcffi loops the fixture also checks, after the test, that no libuv
handle was left open by its owner (the loop's own handles and armed timers excepted) and,
after closing, that libuv closed every handle it opened.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any, Callable

import pytest

import uvcffi

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvcffi": uvcffi.new_event_loop,
}


def check_uvcffi_handles(loop: Any) -> None:
    """Assert the leak invariants of a uvcffi loop (see module docstring)."""
    if not loop.is_closed():
        stats = loop._uv_handle_stats()
        assert stats["live"] == 0, f"libuv handles left open: {stats}"
        loop.close()
    final = loop._uv_close_stats
    assert final["handles_opened"] == final["handles_closed"], final
    assert final["requests_started"] == final["requests_finished"], final


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_factory(request: Any) -> Callable[[], asyncio.AbstractEventLoop]:
    return LOOP_FACTORIES[request.param]


@pytest.fixture
def loop(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Any:
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        if isinstance(loop, uvcffi.Loop):
            if not loop.is_closed():
                # Let close callbacks of handles closed in the test's last step arrive.
                loop.run_until_complete(asyncio.sleep(0))
            check_uvcffi_handles(loop)
        else:
            loop.close()
        gc.collect()


@pytest.fixture
def uvcffi_loop(loop: Any) -> Any:
    """The uvcffi loop alone, for tests of uvcffi-specific behaviour."""
    if not isinstance(loop, uvcffi.Loop):
        pytest.skip("uvcffi-specific behaviour; the stdlib loop has no counterpart")
    return loop


def run_briefly(loop: asyncio.AbstractEventLoop, n: int = 1) -> None:
    """Run ``n`` iterations' worth of callbacks."""

    async def once() -> None:
        pass

    for _ in range(n):
        loop.run_until_complete(once())


PYPY = sys.implementation.name == "pypy"


def skip_oracle_if(loop: Any, condition: bool, reason: str) -> None:
    """Skip the stdlib-loop run of a test where this Python's asyncio predates the
    behaviour being tested (uvcffi implements the current documented behaviour)."""
    if condition and not isinstance(loop, uvcffi.Loop):
        pytest.skip(f"stdlib loop on this Python: {reason}")
