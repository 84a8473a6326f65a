"""uvcffi internals that have no public API of their own, on one uvcffi loop.

Event drain: how much it costs to turn a batch of libuv events into ready callbacks and
run them: one ``LoopCore._run_once`` (``uv_run`` collects the events in C, the dispatch
appends Handles to the ready queue, the callbacks run), timed alone with pytest-benchmark's
``pedantic`` while an untimed setup arms BATCH due timers or READERS pending reads.  Every
round checks that each callback ran (each byte arrived).  Per op = round / events.  The
callbacks are trivial, so the figure is dominated by the drain itself; it deliberately
does not time ``_dispatch`` alone, whose shape changes with the timer design.

Future and Task in isolation: uvcffi's own classes against the stdlib's C classes
(``_asyncio``; PyPy has none) and its pure-Python ones, all on the same uvcffi loop, so
the differences are the classes' alone.

These benchmarks use private names of uvcffi (``_run_once``, ``_ready``); when
those change, the benchmarks fail loudly rather than measure something else.
"""

from __future__ import annotations

import asyncio
import asyncio.futures
import asyncio.tasks
import socket

import pytest

from uvcffi._futures import Future as UvFuture
from uvcffi._tasks import Task as UvTask

from ._util import BATCH, per_op, run_once

#: pedantic() rounds for the drain benchmarks, whose setup cannot be in the timed body.
DRAIN_ROUNDS = 100
#: Connections whose reads one drain round collects.
READERS = 1000

_C_FUTURE = getattr(asyncio.futures, "_CFuture", None)
_C_TASK = getattr(asyncio.tasks, "_CTask", None)
_NO_C = "no C asyncio accelerator (_asyncio) on this Python"
_NO_C_FUTURE = pytest.mark.skipif(_C_FUTURE is None, reason=_NO_C)
_NO_C_TASK = pytest.mark.skipif(_C_TASK is None, reason=_NO_C)

FUTURE_CLASSES = [
    pytest.param(UvFuture, id="uvcffi"),
    pytest.param(_C_FUTURE, id="stdlib-C", marks=_NO_C_FUTURE),
    pytest.param(asyncio.futures._PyFuture, id="stdlib-Py"),
]
TASK_CLASSES = [
    pytest.param(UvTask, id="uvcffi"),
    pytest.param(_C_TASK, id="stdlib-C", marks=_NO_C_TASK),
    pytest.param(asyncio.tasks._PyTask, id="stdlib-Py"),
]
#: The stdlib's C class where it exists, else its Python one (PyPy).
CLASS_REFERENCE = "stdlib-C" if _C_FUTURE is not None else "stdlib-Py"


# ----------------------------------------------------------------------------------------
# Event drain
# ----------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="drain: N timers due at once, one _run_once (uvcffi)")
def bench_drain_timers(benchmark, uvcffi_loop):
    """BATCH timers, all already due, armed by the setup; one ``_run_once`` turns them
    into ready callbacks and runs those (a counter increment each)."""
    loop = uvcffi_loop
    fired = [0]

    def callback():
        fired[0] += 1

    def setup():
        assert not loop._ready
        fired[0] = 0
        # A second in the past: due at libuv's next timer phase whatever its cached time.
        when = loop.time() - 1.0
        for _ in range(BATCH):
            loop.call_at(when, callback)

    def target():
        loop._run_once()
        assert fired[0] == BATCH

    per_op(benchmark, BATCH, reference="")
    benchmark.pedantic(target, setup=setup, rounds=DRAIN_ROUNDS, warmup_rounds=2)


class _Counter(asyncio.Protocol):
    received = 0

    def data_received(self, data):
        _Counter.received += len(data)


@pytest.fixture
def readers(uvcffi_loop):
    """READERS transports on socketpairs, and the plain sockets that write to them."""
    loop = uvcffi_loop
    peers, transports = [], []
    try:
        for _ in range(READERS):
            ours, theirs = socket.socketpair()
            peers.append(theirs)
            try:
                transport, _ = loop.run_until_complete(
                    loop.connect_accepted_socket(_Counter, ours)
                )
            except BaseException:
                ours.close()
                raise
            transports.append(transport)
        yield peers
    finally:
        for transport in transports:
            transport.close()
        for peer in peers:
            peer.close()
        run_once(loop)  # the transports' connection_lost


@pytest.mark.benchmark(group="drain: N stream reads -> ready (uvcffi)")
def bench_drain_reads(benchmark, uvcffi_loop, readers):
    """One 16-byte message waits on each of READERS connections; one _run_once reads
    them all (one READ event each) and delivers them to the protocols."""
    loop = uvcffi_loop
    message = b"0123456789abcdef"

    def setup():
        assert not loop._ready
        _Counter.received = 0
        for peer in readers:
            peer.send(message)

    def target():
        loop._run_once()
        assert _Counter.received == READERS * len(message)

    per_op(benchmark, READERS, reference="")
    benchmark.pedantic(
        target,
        setup=setup,
        rounds=DRAIN_ROUNDS,
        warmup_rounds=2,
    )


# ----------------------------------------------------------------------------------------
# Future and Task in isolation
# ----------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="Future class: create + set_result + result (no loop run)")
@pytest.mark.parametrize("future_class", FUTURE_CLASSES)
def bench_future_isolated(benchmark, uvcffi_loop, future_class):
    """One op, no batch: the Future's own bookkeeping, without any callback."""
    loop = uvcffi_loop
    # Keeping the last Future alive stops PyPy's JIT from removing the allocation.
    sink = [None]

    def body():
        fut = future_class(loop=loop)
        fut.set_result(7)
        sink[0] = fut
        return fut.result()

    per_op(benchmark, 1, reference=CLASS_REFERENCE)
    assert benchmark(body) == 7


@pytest.mark.benchmark(group="Future class: add_done_callback + set_result + callback runs")
@pytest.mark.parametrize("future_class", FUTURE_CLASSES)
def bench_future_callback(benchmark, uvcffi_loop, future_class):
    """One op: a Future with one done callback is resolved and the loop runs the callback
    (BATCH per round, then one loop iteration)."""
    loop = uvcffi_loop
    results = []
    on_done = results.append

    def body():
        results.clear()
        for i in range(BATCH):
            fut = future_class(loop=loop)
            fut.add_done_callback(on_done)
            fut.set_result(i)
        run_once(loop)
        assert len(results) == BATCH and results[-1].result() == BATCH - 1

    per_op(benchmark, BATCH, reference=CLASS_REFERENCE)
    benchmark(body)


@pytest.mark.benchmark(group="Task class: step via sleep(0)")
@pytest.mark.parametrize("task_class", TASK_CLASSES)
def bench_task_step_isolated(benchmark, uvcffi_loop, task_class):
    """One op: one Task step (a bare yield, rescheduled with call_soon); BATCH per Task."""
    loop = uvcffi_loop
    sleep = asyncio.sleep

    async def steps():
        for _ in range(BATCH):
            await sleep(0)
        return BATCH

    def body():
        task = task_class(steps(), loop=loop)
        assert loop.run_until_complete(task) == BATCH

    per_op(benchmark, BATCH, reference=CLASS_REFERENCE)
    benchmark(body)


@pytest.mark.benchmark(group="Task class: create + first step + done")
@pytest.mark.parametrize("task_class", TASK_CLASSES)
def bench_task_create_isolated(benchmark, uvcffi_loop, task_class):
    """One op: a Task for a coroutine that returns at once, created, stepped and done.

    BATCH Tasks are created, then the loop runs until the last one is done; their steps
    run in creation order, so all are done by then (checked through the results' sum).
    """
    loop = uvcffi_loop

    async def trivial(i):
        return i

    def body():
        tasks = [task_class(trivial(i), loop=loop) for i in range(BATCH)]
        loop.run_until_complete(tasks[-1])
        assert sum(task.result() for task in tasks) == BATCH * (BATCH - 1) // 2

    per_op(benchmark, BATCH, reference=CLASS_REFERENCE)
    benchmark(body)
