"""Task behaviour, checked identically on asyncio's C and Python Tasks and ours.

The ``loop`` fixture installs a task factory for the Task class under test, so
everything asyncio creates through ``loop.create_task`` (run_until_complete,
gather, wait_for, TaskGroup, ...) is a task of that class too.
"""

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import io
import re
import threading
import types
import weakref

import pytest

from ._support import IMPLS, NO_C_REASON, PY311, PY312, PY313, full_gc, need_311_semantics

cvar = contextvars.ContextVar('cvar', default='unset')

needs_timeout_and_taskgroup = pytest.mark.skipif(
    not PY311, reason='asyncio.timeout and TaskGroup are 3.11+')


async def returns(value):
    return value


def spin(loop, n=3):
    """Run ``n`` loop iterations."""

    async def go():
        for _ in range(n):
            await asyncio.sleep(0)

    loop.run_until_complete(go())


@types.coroutine
def bare_yield():
    yield


@types.coroutine
def yield_value(value):
    yield value


# -- basics ---------------------------------------------------------------


def test_result(loop, task_cls, run):
    async def coro():
        await asyncio.sleep(0)
        return 'r'

    task = task_cls(coro(), loop=loop)
    assert not task.done()
    assert asyncio.isfuture(task)
    assert run(task) == 'r'
    assert task.done() and not task.cancelled()
    assert task.result() == 'r' and task.exception() is None


def test_task_factory_builds_the_class_under_test(loop, task_cls, run):
    async def main():
        child = asyncio.ensure_future(returns(1))
        await child
        return type(asyncio.current_task()), type(child), type(loop.create_task(returns(2)))

    assert run(main()) == (task_cls, task_cls, task_cls)


def test_exception(loop, task_cls, run):
    err = ValueError('bad')

    async def coro():
        await asyncio.sleep(0)
        raise err

    task = task_cls(coro(), loop=loop)
    with pytest.raises(ValueError) as info:
        run(task)
    assert info.value is err
    assert task.exception() is err
    assert not task.cancelled()


@pytest.mark.parametrize('bad', [42, 'text', None, returns], ids=['int', 'str', 'None', 'func'])
def test_rejects_non_coroutines(loop, task_cls, reports, bad):
    pattern = '^a coroutine was expected, got ' + re.escape(repr(bad)) + '$'
    with pytest.raises(TypeError, match=pattern):
        task_cls(bad, loop=loop)
    full_gc()
    assert reports == []  # no "destroyed but pending" for a task that never was


class HandMadeCoroutine(collections.abc.Coroutine):
    """A coroutine that is not a native one: asyncio.iscoroutine accepts it."""

    def __init__(self, value):
        self.value = value
        self.sends = 0

    def send(self, value):
        self.sends += 1
        if self.sends == 1:
            return None  # a bare yield first
        raise StopIteration(self.value)

    def throw(self, typ, val=None, tb=None):
        raise typ if val is None else val

    def __await__(self):
        raise NotImplementedError


def test_accepts_anything_asyncio_calls_a_coroutine(loop, task_cls, run):
    coro = HandMadeCoroutine('hand made')
    assert asyncio.iscoroutine(coro)
    task = task_cls(coro, loop=loop)
    assert run(task) == 'hand made'
    assert coro.sends == 2


def test_set_result_and_set_exception_are_refused(loop, task_cls, run):
    task = task_cls(returns(1), loop=loop)
    with pytest.raises(RuntimeError, match='^Task does not support set_result operation$'):
        task.set_result(2)
    with pytest.raises(RuntimeError, match='^Task does not support set_exception operation$'):
        task.set_exception(ValueError())
    assert run(task) == 1


def test_get_coro_and_generic_alias(loop, task_cls, run):
    coro = returns(3)
    task = task_cls(coro, loop=loop)
    assert task.get_coro() is coro
    assert run(task) == 3
    alias = task_cls[int]
    assert isinstance(alias, types.GenericAlias) and alias.__origin__ is task_cls


def test_done_callbacks_get_the_task(loop, task_cls, run):
    task = task_cls(returns('x'), loop=loop)
    seen = []
    task.add_done_callback(lambda t: seen.append((t, t.result())))
    run(task)
    spin(loop, 1)
    assert seen == [(task, 'x')]


# -- names ----------------------------------------------------------------


def test_default_names_count_up(loop, task_cls, run):
    t1 = task_cls(returns(1), loop=loop)
    t2 = task_cls(returns(2), loop=loop)
    m1 = re.fullmatch(r'Task-(\d+)', t1.get_name())
    m2 = re.fullmatch(r'Task-(\d+)', t2.get_name())
    assert m1 and m2
    assert int(m2.group(1)) > int(m1.group(1))
    run(asyncio.gather(t1, t2))


def test_default_names_are_numbered_at_creation(loop, task_cls, run):
    # Our Task formats its default name only when asked: the number must still
    # be the one of its creation, whatever order the names are read in.
    t1 = task_cls(returns(1), loop=loop)
    t2 = task_cls(returns(2), loop=loop)
    n2 = int(t2.get_name().split('-')[1])
    assert repr(t1).startswith(f"<Task pending name='Task-{n2 - 1}' ")
    assert t1.get_name() == f'Task-{n2 - 1}'
    assert t2.get_name() == f'Task-{n2}'
    run(asyncio.gather(t1, t2))


def test_explicit_names(loop, task_cls, run):
    task = task_cls(returns(1), loop=loop, name='worker')
    assert task.get_name() == 'worker'
    task.set_name(17)
    assert task.get_name() == '17'
    other = task_cls(returns(2), loop=loop, name=3.5)
    assert other.get_name() == '3.5'

    async def main():
        t = asyncio.create_task(returns(4), name='via create_task')
        await t
        return t.get_name()

    assert run(main()) == 'via create_task'
    run(asyncio.gather(task, other))


def test_name_counter_is_shared_with_asyncio_pytask(loop, run):
    ours = IMPLS['uv'][1]
    theirs = asyncio.tasks._PyTask
    tasks = [ours(returns(1), loop=loop), theirs(returns(2), loop=loop),
             ours(returns(3), loop=loop)]
    numbers = [int(t.get_name().split('-')[1]) for t in tasks]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    run(asyncio.gather(*tasks))


# -- cancellation ---------------------------------------------------------


def test_cancel_with_message(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'keeping the cancel message on the task')

    async def sleeper():
        await asyncio.sleep(10)

    task = task_cls(sleeper(), loop=loop)

    async def main():
        await asyncio.sleep(0)
        assert task.cancel('enough') is True
        assert not task.cancelled()  # only a request so far
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc

    exc = run(main())
    assert exc.args == ('enough',)
    assert task.cancelled()
    # The saved error went out once; later calls build a fresh, bare one.
    with pytest.raises(asyncio.CancelledError) as again:
        task.result()
    assert again.value.args == ()
    assert task.cancel() is False


def test_cancelled_error_chain_is_kept(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 're-raising the coroutine CancelledError')
    caught = []

    async def replaces_the_error():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            caught.append(exc)
            raise asyncio.CancelledError('replaced')

    task = task_cls(replaces_the_error(), loop=loop)

    async def main():
        await asyncio.sleep(0)
        task.cancel('first')
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc

    exc = run(main())
    assert exc.args == ('replaced',)
    assert caught[0].args == ('first',)
    assert exc.__context__ is caught[0]


def test_cancel_message_travels_through_awaited_tasks(
        loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'cancel messages through awaits')
    inner = []

    async def leaf():
        await asyncio.sleep(10)

    async def middle():
        t = asyncio.ensure_future(leaf())
        inner.append(t)
        await t

    outer = task_cls(middle(), loop=loop)

    async def main():
        for _ in range(3):
            await asyncio.sleep(0)
        outer.cancel('deep stop')
        try:
            await outer
        except asyncio.CancelledError as exc:
            return exc

    exc = run(main())
    assert exc.args == ('deep stop',)
    assert outer.cancelled() and inner[0].cancelled()
    assert isinstance(inner[0], task_cls)


def test_cancel_before_the_first_step(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'keeping the cancel message on the task')
    ran = []

    async def coro():
        ran.append(True)

    task = task_cls(coro(), loop=loop)
    assert task.cancel('early') is True
    assert task._must_cancel is True
    with pytest.raises(asyncio.CancelledError) as info:
        run(task)
    assert info.value.args == ('early',)
    assert ran == [] and task.cancelled()


def test_swallowed_cancellation_and_uncancel(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'cancelling()/uncancel()')

    async def stubborn():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass
        return 'survived'

    task = task_cls(stubborn(), loop=loop)

    async def main():
        await asyncio.sleep(0)
        task.cancel()
        return await task

    assert run(main()) == 'survived'
    assert not task.cancelled()
    assert task.cancelling() == 1
    assert task.uncancel() == 0
    assert task.uncancel() == 0  # never below zero


def test_cancelling_counts_every_request(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'cancelling()/uncancel()')
    task = task_cls(asyncio.sleep(10), loop=loop)
    assert task.cancelling() == 0
    task.cancel()
    task.cancel('again')
    assert task.cancelling() == 2
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert task.cancel() is False  # done: refused, not counted
    assert task.cancelling() == 2
    assert task.uncancel() == 1


def test_uncancel_to_zero_before_the_step(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'cancelling()/uncancel()')
    task = task_cls(returns('ran'), loop=loop)
    task.cancel()
    assert task.uncancel() == 0
    if PY313:
        # 3.13+: reaching zero rescinds the pending cancellation.
        assert task._must_cancel is False
        assert run(task) == 'ran'
    else:
        assert task._must_cancel is True
        with pytest.raises(asyncio.CancelledError):
            run(task)


def test_cancel_after_the_awaited_future_completed(loop, task_cls, task_future_cls, run):
    fut = task_future_cls(loop=loop)

    async def coro():
        try:
            await fut
        except asyncio.CancelledError as exc:
            return ('cancelled inside', exc.args)
        return 'not cancelled'

    task = task_cls(coro(), loop=loop)

    async def main():
        await asyncio.sleep(0)
        assert task._fut_waiter is fut
        fut.set_result(1)
        # fut is done but the task has not woken up yet: the request must stick.
        assert task.cancel('late') is True
        assert task._must_cancel is True
        return await task

    result = run(main())
    assert result[0] == 'cancelled inside'
    assert fut.result() == 1


def test_cancel_requested_during_a_step_hits_the_next_await(
        loop, task_cls, task_future_cls, run):
    fut = task_future_cls(loop=loop)

    async def coro():
        asyncio.current_task().cancel('now')
        await fut

    task = task_cls(coro(), loop=loop)
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert fut.cancelled()
    with pytest.raises(asyncio.CancelledError, match='now'):
        fut.result()
    assert task.cancelled()


def test_cancel_just_before_the_coroutine_returns(loop, task_cls, run):
    async def coro():
        asyncio.current_task().cancel('at the end')
        return 'ignored'

    task = task_cls(coro(), loop=loop)
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert task.cancelled()
    with pytest.raises(asyncio.CancelledError, match='at the end'):
        task.result()


def test_cancel_reaches_the_awaited_future_with_message(loop, task_cls, task_future_cls, run):
    fut = task_future_cls(loop=loop)

    async def coro():
        await fut

    task = task_cls(coro(), loop=loop)
    spin(loop, 1)
    assert task._fut_waiter is fut
    task.cancel('pass it on')
    assert fut.cancelled()
    with pytest.raises(asyncio.CancelledError, match='pass it on'):
        fut.result()
    with pytest.raises(asyncio.CancelledError):
        run(task)


# -- asyncio.timeout and TaskGroup (3.11+) --------------------------------


@needs_timeout_and_taskgroup
def test_timeout_converts_and_uncancels(loop, task_cls, run):
    async def main():
        me = asyncio.current_task()
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.001):
                await asyncio.sleep(10)
        return type(me), me.cancelling()

    assert run(main()) == (task_cls, 0)


@needs_timeout_and_taskgroup
def test_timeout_lets_an_outer_cancel_through(loop, task_cls, run):
    async def worker():
        async with asyncio.timeout(5):
            await asyncio.sleep(10)

    task = task_cls(worker(), loop=loop)

    async def main():
        await asyncio.sleep(0)
        task.cancel('outer')
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert task.cancelled()
    assert task.cancelling() == 1


@needs_timeout_and_taskgroup
def test_timeout_expiring_while_cancelled_stays_a_cancellation(loop, task_cls, run):
    async def worker():
        async with asyncio.timeout(0):
            asyncio.current_task().cancel('external')
            await asyncio.sleep(10)

    task = task_cls(worker(), loop=loop)
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert task.cancelled()
    assert task.cancelling() == 1


@needs_timeout_and_taskgroup
def test_taskgroup_children_are_our_tasks(loop, task_cls, run):
    async def child(i):
        await asyncio.sleep(0)
        return i * i

    async def main():
        async with asyncio.TaskGroup() as tg:
            children = [tg.create_task(child(i)) for i in range(5)]
        return [type(t) for t in children], [t.result() for t in children]

    types_, results = run(main())
    assert types_ == [task_cls] * 5
    assert results == [0, 1, 4, 9, 16]


@needs_timeout_and_taskgroup
def test_taskgroup_failure_cancels_siblings_and_restores_the_parent(loop, task_cls, run):
    cancelled = []

    async def sibling():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def failing():
        await asyncio.sleep(0)
        raise ValueError('tg')

    async def main():
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sibling())
                tg.create_task(failing())
                await asyncio.sleep(10)  # the parent is cancelled out of here
        except Exception as exc:  # ExceptionGroup
            group = exc
        return group, asyncio.current_task().cancelling()

    group, cancelling = run(main())
    assert type(group).__name__ == 'ExceptionGroup'
    assert [type(e) for e in group.exceptions] == [ValueError]
    assert cancelled == [True]
    assert cancelling == 0


@needs_timeout_and_taskgroup
def test_taskgroup_inside_a_cancelled_task(loop, task_cls, run):
    started = asyncio.Event()

    async def child():
        started.set()
        await asyncio.sleep(10)

    async def parent():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(child())
            await asyncio.sleep(10)

    task = task_cls(parent(), loop=loop)

    async def main():
        await started.wait()
        task.cancel('from outside')
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert task.cancelled() and task.cancelling() == 1


# -- contexts -------------------------------------------------------------


def test_default_context_is_a_copy_taken_at_creation(loop, task_cls, run):
    token = cvar.set('outer')
    try:
        async def coro():
            before = cvar.get()
            cvar.set('inner')
            await asyncio.sleep(0)
            return before, cvar.get()

        task = task_cls(coro(), loop=loop)
        cvar.set('changed after creation')
        assert run(task) == ('outer', 'inner')
        assert cvar.get() == 'changed after creation'
    finally:
        cvar.reset(token)


def test_context_argument_is_used_for_every_step(loop, task_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'Task(context=...)')
    ctx = contextvars.copy_context()
    ctx.run(cvar.set, 'given')

    async def coro():
        first = cvar.get()
        await asyncio.sleep(0)
        cvar.set('changed in step 2')
        await asyncio.sleep(0)
        return first, cvar.get()

    task = task_cls(coro(), loop=loop, context=ctx)
    assert run(task) == ('given', 'changed in step 2')
    assert ctx[cvar] == 'changed in step 2'  # the steps ran in ctx itself
    assert cvar.get() == 'unset'
    if hasattr(task, 'get_context'):
        assert task.get_context() is ctx


def test_every_step_runs_in_the_task_context(
        loop, task_cls, task_future_cls, run, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'Task(context=...)')
    ctx = contextvars.copy_context()
    fut = task_future_cls(loop=loop)

    async def coro():
        cvar.set('step 1')
        await fut  # woken up by fut's done callback
        cvar.set('step 2')
        await asyncio.sleep(0)  # woken up by a plain call_soon
        return cvar.get()

    task = task_cls(coro(), loop=loop, context=ctx)
    loop.call_soon(fut.set_result, None)
    assert run(task) == 'step 2'
    assert ctx[cvar] == 'step 2'


@pytest.mark.skipif(not PY311, reason='loop.create_task(context=...) is 3.11+')
def test_create_task_context_argument(loop, task_cls, run):
    ctx = contextvars.Context()
    ctx.run(cvar.set, 'via create_task')

    async def main():
        return await asyncio.get_running_loop().create_task(_read_cvar(), context=ctx)

    assert run(main()) == 'via create_task'


async def _read_cvar():
    await asyncio.sleep(0)
    return cvar.get()


def test_wakeup_is_registered_with_the_task_context(loop, task_cls, task_future_cls, run):
    recorded = []

    class Recording(task_future_cls):
        def add_done_callback(self, fn, *, context=None):
            recorded.append(context)
            super().add_done_callback(fn, context=context)

    fut = Recording(loop=loop)

    async def coro():
        return await fut

    ctx = contextvars.copy_context()
    ctx.run(cvar.set, 'task context')
    task = ctx.run(task_cls, coro(), loop=loop)
    loop.call_soon(fut.set_result, 3)
    assert run(task) == 3
    assert len(recorded) == 1
    assert recorded[0] is not None
    assert recorded[0].run(cvar.get) == 'task context'


# -- introspection --------------------------------------------------------


def test_get_stack_and_print_stack(loop, task_cls, task_future_cls, run):
    fut = task_future_cls(loop=loop)

    async def suspended_here():
        await fut

    task = task_cls(suspended_here(), loop=loop)
    spin(loop, 1)
    stack = task.get_stack()
    assert [f.f_code.co_name for f in stack] == ['suspended_here']
    out = io.StringIO()
    task.print_stack(file=out)
    assert out.getvalue().startswith('Stack for <Task pending')
    assert 'suspended_here' in out.getvalue()
    fut.set_result(None)
    run(task)
    assert task.get_stack() == []

    async def fails_here():
        raise ValueError('for the traceback')

    failed = task_cls(fails_here(), loop=loop)
    with pytest.raises(ValueError):
        run(failed)
    frames = failed.get_stack()
    assert frames[-1].f_code.co_name == 'fails_here'
    assert len(failed.get_stack(limit=1)) == 1
    out = io.StringIO()
    failed.print_stack(file=out)
    assert out.getvalue().startswith('Traceback for <Task finished')
    assert 'ValueError: for the traceback' in out.getvalue()


def test_current_task_and_all_tasks(loop, task_cls, run):
    seen = {}
    release = asyncio.Event()

    async def child():
        seen['child'] = asyncio.current_task()
        await release.wait()

    child_task = task_cls(child(), loop=loop)

    async def main():
        me = asyncio.current_task()
        everything = asyncio.all_tasks()
        assert me in everything and child_task in everything
        release.set()
        await child_task
        assert child_task not in asyncio.all_tasks()
        return me

    me = run(main())
    assert isinstance(me, task_cls)
    assert seen['child'] is child_task
    assert asyncio.current_task(loop) is None


def test_no_current_task_in_plain_callbacks(loop, task_cls, run):
    seen = []

    async def main():
        loop.call_soon(lambda: seen.append(asyncio.current_task(loop)))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return asyncio.current_task()

    me = run(main())
    assert seen == [None] and me is not None


def test_repr(loop, task_cls, task_future_cls, run, stdlib_before_311):
    fut = task_future_cls(loop=loop)

    async def notable():
        return await fut

    task = task_cls(notable(), loop=loop, name='T')
    coro_name = r'test_repr\.<locals>\.notable\(\)'
    assert re.fullmatch(
        rf"<Task pending name='T' coro=<{coro_name} running at .+:\d+>>", repr(task))
    spin(loop, 1)
    assert re.fullmatch(
        rf"<Task pending name='T' coro=<{coro_name} running at .+:\d+> "
        r"wait_for=<Future pending cb=\[.+\]>>", repr(task))
    fut.set_result([1, 2])
    run(task)
    assert re.fullmatch(
        rf"<Task finished name='T' coro=<{coro_name} done, defined at .+:\d+> "
        r"result=\[1, 2\]>", repr(task))

    blocked = task_cls(asyncio.sleep(10), loop=loop, name='C')
    blocked.cancel()
    if not stdlib_before_311:
        assert repr(blocked).startswith("<Task cancelling name='C' coro=<sleep()")
    with pytest.raises(asyncio.CancelledError):
        run(blocked)
    assert repr(blocked).startswith("<Task cancelled name='C' coro=<sleep() done")


def test_repr_of_failed_task(loop, task_cls, run):
    async def broken():
        raise KeyError('k')

    task = task_cls(broken(), loop=loop, name='F')
    with pytest.raises(KeyError):
        run(task)
    assert re.fullmatch(
        r"<Task finished name='F' coro=<.*broken\(\) done, defined at .+:\d+> "
        r"exception=KeyError\('k'\)>", repr(task))


def test_debug_mode_source_traceback(loop, task_cls, run):
    loop.set_debug(True)
    task = task_cls(returns(1), loop=loop)
    line = test_debug_mode_source_traceback.__code__.co_firstlineno + 2
    assert task._source_traceback[-1][:2] == (__file__, line)
    assert f'created at {__file__}:{line}' in repr(task)
    run(task)


# -- what the step function does with odd coroutines ---------------------


def test_awaiting_itself(loop, task_cls, task_impl, run):
    async def selfish():
        await asyncio.current_task()

    pattern = '^Task cannot await on itself: <Task'
    if task_impl == 'c' and PY312:
        # The 3.12+ C Task no longer special-cases this; it still refuses.
        pattern = "^(Task cannot await on itself: <Task|await wasn't used with future)"
    with pytest.raises(RuntimeError, match=pattern):
        run(task_cls(selfish(), loop=loop))


def test_future_from_another_loop(loop, task_cls, task_future_cls, run):
    other = asyncio.new_event_loop()
    try:
        fut = task_future_cls(loop=other)

        async def coro():
            await fut

        pattern = r'^Task .* got Future .* attached to a different loop$'
        with pytest.raises(RuntimeError, match=pattern):
            run(task_cls(coro(), loop=loop))
    finally:
        other.close()


def test_bare_yield_gives_up_one_iteration(loop, task_cls, run):
    ticks = []

    async def ticker(name):
        for i in range(3):
            ticks.append((name, i))
            await bare_yield()

    a = task_cls(ticker('a'), loop=loop)
    b = task_cls(ticker('b'), loop=loop)
    run(asyncio.gather(a, b))
    assert ticks == [('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2), ('b', 2)]


def test_yielding_a_future_instead_of_awaiting_it(loop, task_cls, task_future_cls, run):
    fut = task_future_cls(loop=loop)

    async def coro():
        await yield_value(fut)

    with pytest.raises(RuntimeError, match='^yield was used instead of yield from in task <Task'):
        run(task_cls(coro(), loop=loop))


def test_yielding_a_generator(loop, task_cls, run):
    def gen():
        yield

    async def coro():
        await yield_value(gen())

    with pytest.raises(RuntimeError,
                       match='^yield was used instead of yield from for generator in task <Task'):
        run(task_cls(coro(), loop=loop))


def test_bad_yield(loop, task_cls, run):
    async def coro():
        await yield_value(42)

    with pytest.raises(RuntimeError, match='^Task got bad yield: 42$'):
        run(task_cls(coro(), loop=loop))


def test_bad_yield_can_be_caught_by_the_coroutine(loop, task_cls, run):
    async def coro():
        try:
            await yield_value('nonsense')
        except RuntimeError as exc:
            return str(exc)

    assert run(task_cls(coro(), loop=loop)) == "Task got bad yield: 'nonsense'"


@pytest.mark.parametrize('exc_type', [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_escape_the_loop(loop, task_cls, exc_type):
    async def coro():
        await asyncio.sleep(0)
        raise exc_type()

    task = task_cls(coro(), loop=loop)
    with pytest.raises(exc_type):
        loop.run_until_complete(task)
    assert task.done()
    assert isinstance(task.exception(), exc_type)


# -- garbage collection reports ------------------------------------------


def _abandon_pending_task(loop, task_cls, fut_cls, **attrs):
    fut = fut_cls(loop=loop)

    async def waits_forever():
        await fut

    task = task_cls(waits_forever(), loop=loop)
    for name, value in attrs.items():
        setattr(task, name, value)
    spin(loop, 1)
    assert task._fut_waiter is fut and not task.done()
    return weakref.ref(task)


def test_destroyed_pending_task_is_reported(loop, task_cls, task_future_cls, reports):
    _abandon_pending_task(loop, task_cls, task_future_cls)
    full_gc()
    destroyed = [c for c in reports if c['message'] == 'Task was destroyed but it is pending!']
    assert len(destroyed) == 1
    assert isinstance(destroyed[0]['task'], task_cls)
    assert 'source_traceback' not in destroyed[0]


def test_destroyed_pending_report_in_debug_mode(loop, task_cls, task_future_cls, reports):
    loop.set_debug(True)
    _abandon_pending_task(loop, task_cls, task_future_cls)
    full_gc()
    destroyed = [c for c in reports if c['message'] == 'Task was destroyed but it is pending!']
    assert len(destroyed) == 1
    assert destroyed[0]['source_traceback'][-1].name == '_abandon_pending_task'


def test_destroyed_pending_report_can_be_switched_off(loop, task_cls, task_future_cls, reports):
    ref = _abandon_pending_task(loop, task_cls, task_future_cls, _log_destroy_pending=False)
    full_gc()
    assert ref() is None
    assert reports == []


def test_finished_tasks_are_not_reported(loop, task_cls, run, reports):
    task = task_cls(returns(1), loop=loop)
    run(task)
    ref = weakref.ref(task)
    del task
    full_gc()
    assert ref() is None
    assert reports == []


def test_task_exception_never_retrieved(loop, task_cls, reports):
    async def boom():
        raise ZeroDivisionError('never looked at')

    task = task_cls(boom(), loop=loop)
    loop.run_until_complete(asyncio.wait([task]))
    assert task.done() and task._log_traceback
    del task
    full_gc()
    assert [c['message'] for c in reports] == ['Task exception was never retrieved']
    assert isinstance(reports[0]['future'], task_cls)
    assert isinstance(reports[0]['exception'], ZeroDivisionError)


def test_task_exception_retrieved_is_not_reported(loop, task_cls, reports):
    async def boom():
        raise ZeroDivisionError

    task = task_cls(boom(), loop=loop)
    loop.run_until_complete(asyncio.wait([task]))
    assert isinstance(task.exception(), ZeroDivisionError)
    del task
    full_gc()
    assert reports == []


# -- interoperation with the other implementations -----------------------

AWAITED = ['c-future', 'py-future', 'uv-future', 'c-task', 'py-task', 'uv-task']


def _awaitable(kind, loop, outcome):
    impl, what = kind.split('-')
    fut_cls, task_cls = IMPLS[impl]
    if fut_cls is None:
        pytest.skip(NO_C_REASON)
    if what == 'future':
        aw = fut_cls(loop=loop)
        if outcome == 'result':
            loop.call_soon(aw.set_result, 'value')
        elif outcome == 'exception':
            loop.call_soon(aw.set_exception, LookupError('failed'))
        return aw

    async def produce():
        await asyncio.sleep(0)
        if outcome == 'exception':
            raise LookupError('failed')
        if outcome == 'cancel':
            await asyncio.sleep(10)
        return 'value'

    return task_cls(produce(), loop=loop)


@pytest.mark.parametrize('outcome', ['result', 'exception', 'cancel'])
@pytest.mark.parametrize('kind', AWAITED)
def test_awaiting_any_implementation(loop, task_cls, run, kind, outcome):
    holder = []

    async def consumer():
        aw = _awaitable(kind, loop, outcome)
        holder.append(aw)
        return await aw

    task = task_cls(consumer(), loop=loop)
    if outcome == 'result':
        assert run(task) == 'value'
    elif outcome == 'exception':
        with pytest.raises(LookupError, match='failed'):
            run(task)
    else:
        async def cancel_soon():
            for _ in range(3):
                await asyncio.sleep(0)
            task.cancel('stop')
            with pytest.raises(asyncio.CancelledError):
                await task

        run(cancel_soon())
        assert task.cancelled()
        assert holder[0].cancelled()  # the cancellation reached what it awaited


@pytest.mark.parametrize('outcome', ['result', 'exception', 'cancel'])
def test_stdlib_task_awaits_the_task_under_test(loop, task_cls, run, outcome):
    stdlib_task = asyncio.Task  # the C one where it exists
    inner = _awaitable_task(task_cls, loop, outcome)

    async def consumer():
        return await inner

    outer = stdlib_task(consumer(), loop=loop)
    if outcome == 'result':
        assert run(outer) == 'value'
    elif outcome == 'exception':
        with pytest.raises(LookupError):
            run(outer)
    else:
        spin(loop, 2)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            run(outer)
        assert inner.cancelled()


def _awaitable_task(task_cls, loop, outcome):
    async def produce():
        await asyncio.sleep(0)
        if outcome == 'exception':
            raise LookupError('failed')
        if outcome == 'cancel':
            await asyncio.sleep(10)
        return 'value'

    return task_cls(produce(), loop=loop)


# -- asyncio's helpers on the tasks under test ---------------------------


def test_gather(loop, task_cls, run):
    async def child(i):
        await asyncio.sleep(0.001 * (3 - i))
        return type(asyncio.current_task()), i

    results = run(asyncio.gather(*(child(i) for i in range(3))))
    assert results == [(task_cls, 0), (task_cls, 1), (task_cls, 2)]


def test_gather_cancel_reaches_children(loop, task_cls, run):
    children = []

    async def child():
        children.append(asyncio.current_task())
        await asyncio.sleep(10)

    async def main():
        g = asyncio.gather(child(), child())
        await asyncio.sleep(0)
        g.cancel()
        with pytest.raises(asyncio.CancelledError):
            await g

    run(main())
    assert len(children) == 2 and all(c.cancelled() for c in children)


def test_wait_for(loop, task_cls, run):
    async def slow():
        await asyncio.sleep(10)

    async def main():
        assert await asyncio.wait_for(returns('fast'), 1) == 'fast'
        t = task_cls(slow(), loop=loop)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(t, 0.001)
        return t

    assert run(main()).cancelled()


def test_wait_and_as_completed(loop, task_cls, run):
    async def after(delay, value):
        await asyncio.sleep(delay)
        return value

    async def main():
        fast = task_cls(after(0.001, 'fast'), loop=loop)
        slow = task_cls(after(0.05, 'slow'), loop=loop)
        done, pending = await asyncio.wait({fast, slow}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        order = [await f for f in asyncio.as_completed(
            [task_cls(after(0.02, 'b'), loop=loop), task_cls(after(0.001, 'a'), loop=loop)])]
        return order, await slow

    assert run(main()) == (['a', 'b'], 'slow')


def test_shield(loop, task_cls, run):
    async def precious():
        await asyncio.sleep(0.005)
        return 'kept'

    async def main():
        inner = task_cls(precious(), loop=loop)
        outer = asyncio.shield(inner)
        await asyncio.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        return await inner

    assert run(main()) == 'kept'


def test_sleep_result(loop, task_cls, run):
    assert run(task_cls(asyncio.sleep(0.001, result='slept'), loop=loop)) == 'slept'


def test_lock_event_semaphore_queue(loop, task_cls, run):
    async def main():
        lock = asyncio.Lock()
        sem = asyncio.Semaphore(2)
        event = asyncio.Event()
        queue = asyncio.Queue()
        inside = []
        peak = []

        async def worker(i):
            await event.wait()
            async with sem:
                inside.append(i)
                peak.append(len(inside))
                await asyncio.sleep(0)
                inside.remove(i)
            async with lock:
                await queue.put(i)

        workers = [task_cls(worker(i), loop=loop) for i in range(5)]
        await asyncio.sleep(0)
        assert queue.empty()
        event.set()
        got = sorted([await queue.get() for _ in range(5)])
        await asyncio.gather(*workers)
        return got, max(peak)

    assert run(main()) == ([0, 1, 2, 3, 4], 2)


def test_to_thread_and_executor(loop, task_cls, run):
    async def main():
        me = asyncio.current_task()
        if hasattr(asyncio, 'to_thread'):
            name = await asyncio.to_thread(lambda: threading.current_thread().name)
        else:  # pragma: no cover - 3.9+ always has it
            name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        assert asyncio.current_task() is me
        return name

    assert run(main()) != threading.current_thread().name


def test_run_coroutine_threadsafe(loop, task_cls, run):
    async def child():
        return type(asyncio.current_task()), threading.get_ident()

    def from_a_thread():
        return asyncio.run_coroutine_threadsafe(child(), loop).result(5)

    async def main():
        return await loop.run_in_executor(None, from_a_thread)

    cls, ident = run(main())
    assert cls is task_cls
    assert ident == threading.get_ident()


def test_wrap_future(loop, task_cls, run):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        async def main():
            cf = pool.submit(sum, [1, 2, 3])
            return await asyncio.wrap_future(cf)

        assert run(task_cls(main(), loop=loop)) == 6


# -- eager start (3.12+) --------------------------------------------------


@pytest.mark.skipif(not PY312, reason='eager_start is 3.12+')
def test_eager_start(loop, task_cls, task_impl, run):
    seen = []

    async def quick():
        seen.append(asyncio.current_task())
        return 'q'

    async def slow():
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        return 's'

    async def main():
        me = asyncio.current_task()
        t1 = task_cls(quick(), loop=loop, eager_start=True)
        assert t1.done() and t1.result() == 'q'
        assert seen[0] is t1
        assert asyncio.current_task() is me
        assert t1._coro is None  # dropped once finished eagerly
        if task_impl != 'c':  # C Task.get_coro() crashes here on 3.12.1
            assert t1.get_coro() is None
        assert t1 not in asyncio.all_tasks()
        t2 = task_cls(slow(), loop=loop, eager_start=True)
        assert not t2.done() and seen[1] is t2
        assert asyncio.current_task() is me
        assert t2 in asyncio.all_tasks()
        return await t2

    assert run(main()) == 's'


@pytest.mark.skipif(not PY312, reason='eager_start is 3.12+')
def test_eager_start_without_a_running_loop_schedules(loop, task_cls, run):
    task = task_cls(returns('later'), loop=loop, eager_start=True)
    assert not task.done()
    assert run(task) == 'later'


@pytest.mark.skipif(not PY312, reason='eager task factories are 3.12+')
def test_eager_task_factory(loop, task_cls, run):
    loop.set_task_factory(asyncio.create_eager_task_factory(task_cls))

    async def main():
        t = asyncio.create_task(returns('eager'))
        return type(t), t.done(), t.result()

    # run() itself goes through the factory: the outer task is eager too.
    assert run(main()) == (task_cls, True, 'eager')


@pytest.mark.skipif(PY312, reason='before 3.12 Task has no eager_start')
# _PyTask's __del__ trips over its own half-built instance here: noise, not our bug.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_no_eager_start_before_312(loop, task_cls):
    coro = returns(1)
    with pytest.raises(TypeError):
        task_cls(coro, loop=loop, eager_start=True)
    coro.close()
    full_gc()  # run _PyTask's failing __del__ while the filter above applies
