"""Futures and Tasks through the public API, on each loop (``loop_futures``).

uvcffi runs twice: with its own Future and Task, and with the stdlib's
(``stdlib_futures=True``), which separates what the loop costs from what our classes
cost.  Each round is one ``run_until_complete`` of a coroutine that does BATCH
operations; the per-op figure is the round's time / BATCH and includes 1/BATCH of the
``run_until_complete`` itself, measured alone by ``bench_run_until_complete_empty``.
Every round checks the results the operations returned.
"""

from __future__ import annotations

import asyncio

import pytest

from ._util import BATCH, per_op

# The sum 0 + 1 + ... + (BATCH - 1): what the rounds below must add up.
EXPECTED_SUM = BATCH * (BATCH - 1) // 2


@pytest.mark.benchmark(group="overhead: run_until_complete (per round)")
def bench_run_until_complete_empty(benchmark, loop_futures):
    """The fixed cost in every round below: a Task for an empty coroutine, run to the end."""
    loop = loop_futures

    async def empty():
        return 42

    def body():
        assert loop.run_until_complete(empty()) == 42

    per_op(benchmark, 1)
    benchmark(body)


@pytest.mark.benchmark(group="future round trip: create, set_result soon, await")
def bench_future_round_trip(benchmark, loop_futures):
    """One op: create_future(), call_soon(fut.set_result, i), and ``await fut``.

    The await really suspends the task (the result is set by a later callback), so the op
    includes the Future's done callback waking the Task up again.
    """
    loop = loop_futures

    async def round_trips():
        create_future = loop.create_future
        call_soon = loop.call_soon
        total = 0
        for i in range(BATCH):
            fut = create_future()
            call_soon(fut.set_result, i)
            total += await fut
        return total

    def body():
        assert loop.run_until_complete(round_trips()) == EXPECTED_SUM

    per_op(benchmark, BATCH)
    benchmark(body)


@pytest.mark.benchmark(group="task: create_task(trivial coroutine) + await it")
def bench_create_task_await(benchmark, loop_futures):
    """One op: create_task of a coroutine that returns at once, awaited by the caller."""
    loop = loop_futures

    async def trivial(i):
        return i

    async def spawn_and_await():
        create_task = loop.create_task
        total = 0
        for i in range(BATCH):
            total += await create_task(trivial(i))
        return total

    def body():
        assert loop.run_until_complete(spawn_and_await()) == EXPECTED_SUM

    per_op(benchmark, BATCH)
    benchmark(body)


@pytest.mark.benchmark(group="task step: await asyncio.sleep(0)")
def bench_sleep0_step(benchmark, loop_futures):
    """One op: a Task yields to the loop with sleep(0) and is stepped again.

    One callback per round, scheduled as the coroutine starts, records how many steps were
    done when it ran: 0 proves that the first sleep(0) really went through the loop
    rather than returning on the spot.
    """
    loop = loop_futures
    sleep = asyncio.sleep
    done = [0]
    seen = []

    def record():
        seen.append(done[0])

    async def steps():
        loop.call_soon(record)
        for _ in range(BATCH):
            await sleep(0)
            done[0] += 1
        return done[0]

    def body():
        done[0] = 0
        seen.clear()
        assert loop.run_until_complete(steps()) == BATCH
        assert seen == [0]

    per_op(benchmark, BATCH)
    benchmark(body)
