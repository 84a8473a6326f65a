"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import asyncio

#: Operations per round of the batched benchmarks.  With 1000, a round's time in
#: microseconds reads directly as nanoseconds per operation.
BATCH = 1000


def run_once(loop: asyncio.AbstractEventLoop) -> None:
    """Run one iteration of ``loop`` through the public API: what is ready runs, then stop.

    ``stop()`` takes effect after the callbacks that were ready when it was scheduled, on
    every loop, so this is how a benchmark drains the ready queue without ``_run_once``
    (which uvloop does not expose).
    """
    loop.call_soon(loop.stop)
    loop.run_forever()


def per_op(benchmark, ops: int, reference: str = "asyncio") -> None:
    """Record how many operations one round does, for summary.py's per-op figures."""
    benchmark.extra_info["ops"] = ops
    benchmark.extra_info["reference"] = reference
