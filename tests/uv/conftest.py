"""Fixtures of the libuv-layer tests (one file per handle type, as libuv's own test/)."""

from __future__ import annotations

import faulthandler

import pytest

from uvcffi._uv.loop import UVLoop


@pytest.fixture(autouse=True)
def _hang_guard():
    # A loop that blocks forever must fail the run with stacks, not hang it.
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def uvloop():
    """A UVLoop that must end with every handle closed and every request finished."""
    loop = UVLoop()
    yield loop
    stats = loop.close()
    assert stats["handles_forgotten"] == 0, f"the test left handles open: {stats}"
    assert stats["handles_opened"] == stats["handles_closed"], stats
    assert stats["requests_finished"] == stats["requests_started"], stats
