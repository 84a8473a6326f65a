"""Where task steps land in the ready queue, on every loop and Task class.

On the uvcffi loop our Task queues itself on the ready deque instead of a
Handle (see ``Task._run`` and ``_futures._TaskWakeup``).  These tests pin the
observable behaviour of that shortcut to asyncio's: the order of steps and
wakeups among plain ``call_soon`` callbacks, cancellation while a step is
queued, wakeup callbacks removed or registered twice, errors of a queued step,
and debug mode.  Each runs on both loops with the C, Python and uvcffi Tasks,
so the expected values are checked against asyncio's own classes as well.
"""

import asyncio
import logging

import pytest

from ._support import need_311_semantics


def _wait_for_callbacks(loop, fut, count=1):
    """Run the loop until ``fut`` has ``count`` done callbacks."""

    async def go():
        for _ in range(100):
            if fut._callbacks and len(fut._callbacks) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError('the task never started waiting')

    loop.run_until_complete(go())


@pytest.fixture(params=['family', 'loop'])
def make_future(request, loop, task_future_cls):
    """A future of the Task's own family, or whatever ``loop.create_future`` makes."""
    if request.param == 'family':
        return lambda: task_future_cls(loop=loop)
    return loop.create_future


def test_steps_and_wakeups_keep_asyncio_order(loop, task_cls, make_future, run):
    log = []
    fut = make_future()

    async def waiter():
        log.append('waiter starts')
        value = await fut
        log.append(f'waiter woken with {value}')
        await asyncio.sleep(0)
        log.append('waiter after sleep(0)')

    async def yielder():
        for i in range(3):
            log.append(f'yielder {i}')
            await asyncio.sleep(0)

    def complete():
        log.append('complete')
        fut.set_result(1)
        loop.call_soon(log.append, 'callback after set_result')

    async def main():
        loop.call_soon(log.append, 'callback 0')
        first = loop.create_task(waiter())
        loop.call_soon(log.append, 'callback 1')
        second = loop.create_task(yielder())
        loop.call_soon(complete)
        await asyncio.gather(first, second)

    run(main())
    assert log == [
        'callback 0',
        'waiter starts',
        'callback 1',
        'yielder 0',
        'complete',
        'yielder 1',
        'waiter woken with 1',
        'callback after set_result',
        'yielder 2',
        'waiter after sleep(0)',
    ]


def test_every_waiter_of_one_future_wakes_in_registration_order(loop, task_cls, make_future, run):
    log = []
    fut = make_future()

    async def waiter(name):
        await fut
        log.append(name)

    def complete():
        loop.call_soon(log.append, 'callback before')
        fut.set_result(None)
        loop.call_soon(log.append, 'callback after')

    async def main():
        tasks = [loop.create_task(waiter(f'waiter {i}')) for i in range(3)]
        await asyncio.sleep(0)  # they are waiting for fut now
        fut.add_done_callback(lambda f: log.append('plain done callback'))
        tasks.append(loop.create_task(waiter('waiter 3')))
        await asyncio.sleep(0)
        complete()
        await asyncio.gather(*tasks)

    run(main())
    assert log == [
        'callback before',
        'waiter 0', 'waiter 1', 'waiter 2', 'plain done callback', 'waiter 3',
        'callback after',
    ]


def test_cancel_while_the_wakeup_is_queued(loop, task_cls, make_future, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'cancel messages')
    log = []
    fut = make_future()

    async def waiter():
        try:
            await fut
        except asyncio.CancelledError as exc:
            log.append(('cancelled', exc.args))
            raise
        log.append('not cancelled')

    task = loop.create_task(waiter())
    _wait_for_callbacks(loop, fut)

    def complete_then_cancel():
        fut.set_result(1)  # the wakeup is queued now
        assert task.cancel('too late')  # fut is done: the step throws it in
        log.append(('cancelling', task.cancelling()))

    loop.call_soon(complete_then_cancel)
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert task.cancelled()
    assert fut.result() == 1
    assert log == [('cancelling', 1), ('cancelled', ('too late',))]


def test_cancel_while_a_sleep0_step_is_queued(loop, task_cls, run):
    log = []

    async def sleeper():
        log.append('before')
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            log.append('cancelled at sleep(0)')
            raise
        log.append('not cancelled')

    async def main():
        task = loop.create_task(sleeper())
        await asyncio.sleep(0)  # the task ran up to its sleep(0); its step is queued
        assert log == ['before']
        assert task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    task = run(main())
    assert task.cancelled()
    assert log == ['before', 'cancelled at sleep(0)']


def test_removed_wakeup_never_runs(loop, task_cls, make_future, run):
    fut = make_future()

    async def waiter():
        return await fut

    task = loop.create_task(waiter())
    _wait_for_callbacks(loop, fut)
    [(wakeup, ctx)] = fut._callbacks
    assert fut.remove_done_callback(wakeup) == 1
    assert not fut._callbacks
    fut.set_result(5)
    for _ in range(3):
        loop.run_until_complete(asyncio.sleep(0))
    assert not task.done()
    # Registered again on the done future, it runs through call_soon.
    fut.add_done_callback(wakeup, context=ctx)
    assert run(task) == 5


def test_wakeup_registered_twice(loop, task_cls, make_future, reports, run):
    # asyncio runs the second wakeup as well: the task is done by then, so its
    # step fails, and the loop reports that as an error in a callback.
    fut = make_future()

    async def waiter():
        return await fut

    task = loop.create_task(waiter())
    _wait_for_callbacks(loop, fut)
    [(wakeup, ctx)] = fut._callbacks
    fut.add_done_callback(wakeup, context=ctx)
    loop.call_soon(fut.set_result, 'once')
    assert run(task) == 'once'
    loop.run_until_complete(asyncio.sleep(0))
    assert len(reports) == 1
    assert isinstance(reports[0]['exception'], asyncio.InvalidStateError)
    assert reports[0]['message'].startswith('Exception in callback ')
    assert reports[0]['handle'] is not None


def test_wakeup_of_a_finished_task_is_reported(loop, task_cls, make_future, reports, run):
    # The task's wakeup also sits on a second future that completes after the
    # task finished: the wakeup's step fails and is reported, not raised.
    first, second = make_future(), make_future()

    async def waiter():
        return await first

    task = loop.create_task(waiter())
    _wait_for_callbacks(loop, first)
    [(wakeup, ctx)] = first._callbacks
    second.add_done_callback(wakeup, context=ctx)
    loop.call_soon(first.set_result, 1)
    assert run(task) == 1
    assert not reports
    second.set_result(2)
    loop.run_until_complete(asyncio.sleep(0))
    assert len(reports) == 1
    context = reports[0]
    assert isinstance(context['exception'], asyncio.InvalidStateError)
    assert 'already done' in str(context['exception'])
    assert context['message'].startswith('Exception in callback ')
    assert isinstance(context['handle'], asyncio.Handle)


def test_wakeup_from_a_future_of_another_loop_is_refused(loop, task_cls, run):
    other = asyncio.new_event_loop()
    try:
        foreign = other.create_future()

        async def waiter():
            with pytest.raises(RuntimeError, match='attached to a different loop'):
                await foreign
            await asyncio.sleep(0)
            return 'still running'

        assert run(loop.create_task(waiter())) == 'still running'
        assert not foreign._callbacks
    finally:
        other.close()


def test_debug_mode_reports_slow_steps_as_the_task(loop, loop_kind, task_impl, task_cls,
                                                   make_future, caplog):
    # Each loop names the task for instances of asyncio.Task (on CPython the C
    # class, which _PyTask is not); the uvcffi loop also for its own Task.
    if not (issubclass(task_cls, asyncio.Task) or (loop_kind == 'uv' and task_impl == 'uv')):
        pytest.skip('this loop reports steps of this Task class as plain Handles')
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0  # report every callback: no timing involved
    fut = make_future()

    async def slowpoke():
        await fut
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger='asyncio'):
        task = loop.create_task(slowpoke(), name='slowpoke')
        loop.call_soon(fut.set_result, None)
        loop.run_until_complete(task)
    steps = [r.getMessage() for r in caplog.records if 'slowpoke' in r.getMessage()]
    # The first step, the wakeup by fut and the step after sleep(0).
    assert len(steps) == 3, steps
    assert all(m.startswith('Executing <Task ') for m in steps), steps
