"""Future behaviour, checked identically on asyncio's C and Python Futures and ours."""

import asyncio
import concurrent.futures
import contextvars
import re
import sys
import traceback
import types
import weakref

import pytest

from ._support import PY313, full_gc, need_311_semantics

cvar = contextvars.ContextVar('cvar', default='unset')


def _drain(loop, n=3):
    """Let the loop run a few iterations (callbacks go through call_soon)."""

    async def spin():
        for _ in range(n):
            await asyncio.sleep(0)

    loop.run_until_complete(spin())


# -- state, result, exception ---------------------------------------------


def test_initial_state(loop, future_cls):
    fut = future_cls(loop=loop)
    assert not fut.done()
    assert not fut.cancelled()
    assert fut.get_loop() is loop
    assert fut._loop is loop
    assert fut._state == 'PENDING'
    assert not fut._callbacks  # [] (None for the C Future)
    assert fut._result is None and fut._exception is None
    assert fut._log_traceback is False
    assert fut._source_traceback is None
    # The C Future words it 'Result is not set.', the Python one '... ready.'
    with pytest.raises(asyncio.InvalidStateError, match=r'^Result is not (ready|set)\.$'):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError, match=r'^Exception is not set\.$'):
        fut.exception()


def test_default_loop_is_the_running_loop(loop, future_cls):
    async def make():
        return future_cls()

    fut = loop.run_until_complete(make())
    assert fut.get_loop() is loop


def test_default_loop_outside_a_running_loop(loop, future_cls):
    # The loop fixture made ``loop`` the current loop of this thread.
    fut = future_cls()
    assert fut.get_loop() is loop


def test_uninitialised_future_has_no_loop(future_cls):
    fut = future_cls.__new__(future_cls)
    with pytest.raises(RuntimeError, match='not initialized'):
        fut.get_loop()


def test_set_result(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result(42)
    assert fut.done() and not fut.cancelled()
    assert fut.result() == 42
    assert fut.exception() is None
    assert fut._state == 'FINISHED'
    # C says 'invalid state'; _PyFuture and ours say 'FINISHED: <repr>'.
    with pytest.raises(asyncio.InvalidStateError,
                       match=r'^(invalid state|FINISHED: <Future finished result=42>)$'):
        fut.set_result(43)
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_exception(ValueError())
    assert fut.result() == 42


def test_set_exception_instance(loop, future_cls):
    fut = future_cls(loop=loop)
    exc = ValueError('boom')
    fut.set_exception(exc)
    assert fut.done() and not fut.cancelled()
    assert fut.exception() is exc
    with pytest.raises(ValueError) as info:
        fut.result()
    assert info.value is exc


def test_set_exception_class_is_instantiated(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_exception(KeyError)
    exc = fut.exception()
    assert type(exc) is KeyError
    assert exc.args == ()


def test_set_exception_rejects_non_exceptions(loop, future_cls, impl_name):
    if impl_name == 'py':
        pytest.skip('_PyFuture fails with AttributeError here; C and uvcffi raise TypeError')
    fut = future_cls(loop=loop)
    with pytest.raises(TypeError, match='invalid exception object'):
        fut.set_exception(42)
    assert not fut.done()


@pytest.mark.skipif(PY313, reason='3.13+ wraps StopIteration in RuntimeError instead')
def test_stop_iteration_rejected_before_313(loop, future_cls):
    fut = future_cls(loop=loop)
    with pytest.raises(TypeError, match='StopIteration interacts badly'):
        fut.set_exception(StopIteration())
    with pytest.raises(TypeError, match='StopIteration interacts badly'):
        fut.set_exception(StopIteration)
    assert not fut.done()


@pytest.mark.skipif(not PY313, reason='StopIteration wrapping is 3.13+ behaviour')
def test_stop_iteration_wrapped_from_313(loop, future_cls):
    fut = future_cls(loop=loop)
    stop = StopIteration('x')
    fut.set_exception(stop)
    exc = fut.exception()
    assert type(exc) is RuntimeError
    assert exc.__cause__ is stop


def test_result_reraises_with_the_original_traceback(
        loop, future_cls, impl_name, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'keeping the exception traceback')

    def thrower():
        raise ValueError('deep')

    fut = future_cls(loop=loop)
    try:
        thrower()
    except ValueError as exc:
        fut.set_exception(exc)
    depths = []
    for _ in range(3):
        try:
            fut.result()
        except ValueError as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            depths.append(len(tb))
            assert tb[-1].name == 'thrower'
            if impl_name == 'c':
                break  # the C Future drops the saved traceback after one raise
    # Raising again does not keep growing the traceback.
    assert len(set(depths)) == 1


# -- cancellation ---------------------------------------------------------


def test_cancel(loop, future_cls):
    fut = future_cls(loop=loop)
    assert fut.cancel() is True
    assert fut.cancelled() and fut.done()
    assert fut._state == 'CANCELLED'
    assert fut.cancel() is False
    with pytest.raises(asyncio.CancelledError):
        fut.result()
    with pytest.raises(asyncio.CancelledError):
        fut.exception()
    with pytest.raises(asyncio.InvalidStateError,
                       match=r'^(invalid state|CANCELLED: <Future cancelled>)$'):
        fut.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_exception(ValueError)


def test_cancel_after_result_is_refused(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result(1)
    assert fut.cancel() is False
    assert not fut.cancelled()
    assert fut.result() == 1


def test_cancel_message(loop, future_cls):
    fut = future_cls(loop=loop)
    assert fut.cancel(msg='stop it')
    assert fut._cancel_message == 'stop it'
    for getter in (fut.result, fut.exception):
        with pytest.raises(asyncio.CancelledError) as info:
            getter()
        assert info.value.args == ('stop it',)


def test_cancel_message_positional(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.cancel('positional')
    with pytest.raises(asyncio.CancelledError, match='positional'):
        fut.result()


def test_cancel_without_message_has_no_args(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.cancel()
    with pytest.raises(asyncio.CancelledError) as info:
        fut.result()
    assert info.value.args == ()


def test_saved_cancelled_error_is_handed_out_once(
        loop, future_cls, impl_name, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'returning the saved CancelledError')
    if impl_name == 'c':
        pytest.skip('the C Future keeps _cancelled_exc internal (Task tests cover it)')
    # Tasks store the CancelledError raised by their coroutine here, so that
    # result() re-raises that very object (with its chain) the first time.
    fut = future_cls(loop=loop)
    original = asyncio.CancelledError('from the coroutine')
    fut._cancelled_exc = original
    fut.cancel()
    with pytest.raises(asyncio.CancelledError) as first:
        fut.result()
    assert first.value is original
    with pytest.raises(asyncio.CancelledError) as second:
        fut.result()
    assert second.value is not original
    assert second.value.args == ()


def test_cancel_schedules_callbacks(loop, future_cls):
    fut = future_cls(loop=loop)
    seen = []
    fut.add_done_callback(seen.append)
    fut.cancel()
    assert seen == []
    _drain(loop)
    assert seen == [fut]


# -- done callbacks -------------------------------------------------------


def test_callbacks_run_soon_in_order(loop, future_cls):
    fut = future_cls(loop=loop)
    order = []
    for i in range(5):
        fut.add_done_callback(lambda f, i=i: order.append((i, f)))
    fut.set_result('x')
    assert order == []  # not called synchronously
    _drain(loop)
    assert order == [(i, fut) for i in range(5)]
    assert not fut._callbacks  # [] (None for the C Future)


def test_callbacks_are_scheduled_with_call_soon_and_context(future_cls):
    class RecordingLoop:
        def __init__(self):
            self.calls = []

        def get_debug(self):
            return False

        def call_soon(self, callback, *args, context=None):
            self.calls.append((callback, args, context))

    lp = RecordingLoop()
    fut = future_cls(loop=lp)
    ctx = contextvars.copy_context()

    def cb(f):
        pass

    fut.add_done_callback(cb, context=ctx)
    fut.set_result(None)
    assert lp.calls == [(cb, (fut,), ctx)]
    # Already done: scheduled at once with the given context.
    fut.add_done_callback(cb, context=ctx)
    assert lp.calls[-1] == (cb, (fut,), ctx)


def test_callback_runs_in_the_given_context(loop, future_cls):
    ctx = contextvars.Context()
    ctx.run(cvar.set, 'inside')
    fut = future_cls(loop=loop)
    seen = []
    fut.add_done_callback(lambda f: seen.append(cvar.get()), context=ctx)
    fut.add_done_callback(lambda f: seen.append(cvar.get()))
    fut.set_result(None)
    _drain(loop)
    assert seen == ['inside', 'unset']


def test_callback_default_context_is_a_copy_taken_when_added(loop, future_cls):
    seen = []

    def add():
        cvar.set('at add time')
        fut.add_done_callback(lambda f: seen.append(cvar.get()))

    fut = future_cls(loop=loop)
    contextvars.copy_context().run(add)
    cvar.set('later')
    try:
        fut.set_result(None)
        _drain(loop)
    finally:
        cvar.set('unset')
    assert seen == ['at add time']


def test_add_done_callback_on_done_future(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result(1)
    seen = []
    fut.add_done_callback(seen.append)
    assert seen == []
    _drain(loop)
    assert seen == [fut]


def test_remove_done_callback_returns_count(loop, future_cls):
    fut = future_cls(loop=loop)
    seen = []

    def a(f):
        seen.append('a')

    def b(f):
        seen.append('b')

    def c(f):
        seen.append('c')

    fut.add_done_callback(a)
    fut.add_done_callback(b)
    fut.add_done_callback(a)
    fut.add_done_callback(c)
    fut.add_done_callback(a)
    assert fut.remove_done_callback(a) == 3
    assert fut.remove_done_callback(a) == 0
    assert len(fut._callbacks) == 2
    fut.set_result(None)
    _drain(loop)
    assert seen == ['b', 'c']


def test_callbacks_keep_their_order_across_removals(loop, future_cls):
    # Our Future keeps the first callback apart from the others (as the C one
    # does): removing it, or all of them, must not reorder what comes next.
    fut = future_cls(loop=loop)
    seen = []

    def cb(name):
        return lambda f: seen.append(name)

    a, b, c, d, e = (cb(n) for n in 'abcde')
    fut.add_done_callback(a)
    fut.add_done_callback(b)
    fut.add_done_callback(c)
    assert fut.remove_done_callback(a) == 1
    fut.add_done_callback(d)
    assert [f for f, _ in fut._callbacks] == [b, c, d]
    assert fut.remove_done_callback(b) == 1
    assert fut.remove_done_callback(c) == 1
    assert fut.remove_done_callback(d) == 1
    assert not fut._callbacks
    assert fut.remove_done_callback(d) == 0
    fut.add_done_callback(e)
    fut.add_done_callback(a)
    fut.set_result(None)
    assert not fut._callbacks
    _drain(loop)
    assert seen == ['e', 'a']


def test_none_is_kept_as_a_callback(loop, future_cls, reports):
    # asyncio stores whatever it is given; calling None fails only when the
    # future is done, through the loop's exception handler.
    fut = future_cls(loop=loop)
    fut.add_done_callback(None)
    [(fn, ctx)] = fut._callbacks
    assert fn is None and isinstance(ctx, contextvars.Context)
    assert fut.remove_done_callback(None) == 1
    assert not fut._callbacks
    fut.add_done_callback(None)
    fut.set_result(1)
    _drain(loop)
    assert len(reports) == 1
    assert isinstance(reports[0]['exception'], TypeError)


def test_remove_done_callback_after_scheduling_is_too_late(loop, future_cls):
    fut = future_cls(loop=loop)
    seen = []
    fut.add_done_callback(seen.append)
    fut.set_result(None)
    assert fut.remove_done_callback(seen.append) == 0
    _drain(loop)
    assert seen == [fut]


def test_callback_that_raises_goes_to_the_exception_handler(loop, future_cls, reports):
    fut = future_cls(loop=loop)

    def bad(f):
        raise ZeroDivisionError('cb')

    fut.add_done_callback(bad)
    fut.set_result(None)
    _drain(loop)
    assert len(reports) == 1
    assert isinstance(reports[0]['exception'], ZeroDivisionError)


# -- await / iteration ----------------------------------------------------


def test_await_result(loop, future_cls, run):
    fut = future_cls(loop=loop)
    loop.call_soon(fut.set_result, 'done')

    async def waiter():
        return await fut

    assert run(waiter()) == 'done'


def test_await_exception(loop, future_cls, run):
    fut = future_cls(loop=loop)
    loop.call_soon(fut.set_exception, OSError('nope'))

    async def waiter():
        await fut

    with pytest.raises(OSError, match='nope'):
        run(waiter())


def test_await_cancelled_future_carries_message(loop, future_cls, run):
    fut = future_cls(loop=loop)
    loop.call_soon(fut.cancel, 'bye')

    async def waiter():
        try:
            await fut
        except asyncio.CancelledError as exc:
            return exc.args

    assert run(waiter()) == ('bye',)


def test_await_protocol_by_hand(loop, future_cls):
    fut = future_cls(loop=loop)
    it = fut.__await__()
    assert next(it) is fut
    assert fut._asyncio_future_blocking is True
    # Resuming while still pending means nobody waited for it.
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        it.send(None)


def test_await_done_future_returns_without_yielding(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result(7)
    with pytest.raises(StopIteration) as info:
        next(fut.__await__())
    assert info.value.value == 7


def test_yield_from_uses_iter(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result('yf')

    @types.coroutine
    def legacy():
        return (yield from fut)

    assert loop.run_until_complete(legacy()) == 'yf'


def test_isfuture(loop, future_cls):
    fut = future_cls(loop=loop)
    assert asyncio.isfuture(fut)
    assert fut._asyncio_future_blocking is False
    assert not asyncio.isfuture(future_cls)
    assert hasattr(future_cls, '_asyncio_future_blocking')


def test_generic_alias(future_cls):
    alias = future_cls[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is future_cls
    assert alias.__args__ == (int,)


def test_weakref(loop, future_cls):
    fut = future_cls(loop=loop)
    ref = weakref.ref(fut)
    assert ref() is fut


def test_subclass_with_extra_attributes(loop, future_cls):
    class MyFuture(future_cls):
        pass

    fut = MyFuture(loop=loop)
    fut.extra = 1
    fut.set_result(2)
    assert fut.result() == 2 and fut.extra == 1
    assert repr(fut).startswith('<MyFuture finished')


# -- repr -----------------------------------------------------------------


def test_repr_states(loop, future_cls):
    fut = future_cls(loop=loop)
    assert repr(fut) == '<Future pending>'
    fut.set_result([1, 2])
    assert repr(fut) == '<Future finished result=[1, 2]>'

    fut = future_cls(loop=loop)
    fut.set_exception(ValueError('v'))
    assert repr(fut) == "<Future finished exception=ValueError('v')>"
    fut.exception()

    fut = future_cls(loop=loop)
    fut.cancel()
    assert repr(fut) == '<Future cancelled>'


def test_repr_truncates_long_results(loop, future_cls):
    fut = future_cls(loop=loop)
    fut.set_result('x' * 1000)
    text = repr(fut)
    assert len(text) < 100
    assert '...' in text


def test_repr_callbacks(loop, future_cls):
    def first(f):
        pass

    def last(f):
        pass

    fut = future_cls(loop=loop)
    fut.add_done_callback(first)
    assert re.fullmatch(r'<Future pending cb=\[.*first\(\) at .*:\d+\]>', repr(fut))
    fut.add_done_callback(last)
    assert re.fullmatch(r'<Future pending cb=\[.*first\(\) at .*, .*last\(\) at .*\]>', repr(fut))
    fut.add_done_callback(first)
    fut.add_done_callback(first)
    assert re.fullmatch(
        r'<Future pending cb=\[.*first\(\) at .*, <2 more>, .*first\(\) at .*\]>', repr(fut))


def test_repr_is_recursion_safe(loop, future_cls, stdlib_before_311):
    need_311_semantics(stdlib_before_311, 'recursion-safe Future repr')
    fut = future_cls(loop=loop)
    fut.set_result(fut)
    assert repr(fut) == '<Future finished result=...>'


def test_debug_mode_source_traceback(loop, future_cls):
    loop.set_debug(True)
    fut = future_cls(loop=loop)
    line = sys._getframe().f_lineno - 1
    assert fut._source_traceback
    frame = fut._source_traceback[-1]
    assert frame[0] == __file__ and frame[1] == line
    assert repr(fut) == f'<Future pending created at {__file__}:{line}>'


# -- "exception was never retrieved" -------------------------------------


def _lose_future_with_exception(loop, cls):
    fut = cls(loop=loop)
    fut.set_exception(RuntimeError('lost'))
    return weakref.ref(fut)


def test_never_retrieved_exception_is_reported(loop, future_cls, reports):
    ref = _lose_future_with_exception(loop, future_cls)
    full_gc()
    assert ref() is None or len(reports) == 1
    assert len(reports) == 1
    context = reports[0]
    assert context['message'] == 'Future exception was never retrieved'
    assert isinstance(context['exception'], RuntimeError)
    assert str(context['exception']) == 'lost'
    assert isinstance(context['future'], future_cls)
    assert context['future'].exception() is context['exception']
    assert 'source_traceback' not in context


def test_never_retrieved_report_has_source_traceback_in_debug(loop, future_cls, reports):
    loop.set_debug(True)
    _lose_future_with_exception(loop, future_cls)
    full_gc()
    assert len(reports) == 1
    assert reports[0]['source_traceback']
    assert reports[0]['source_traceback'][-1].name == '_lose_future_with_exception'


def test_never_retrieved_uses_the_subclass_name(loop, future_cls, reports):
    class Special(future_cls):
        pass

    _lose_future_with_exception(loop, Special)
    full_gc()
    assert [c['message'] for c in reports] == ['Special exception was never retrieved']


@pytest.mark.parametrize('retrieve', ['result', 'exception', 'log_traceback', 'cancel'])
def test_retrieved_exception_is_not_reported(loop, future_cls, reports, retrieve):
    fut = future_cls(loop=loop)
    fut.set_exception(RuntimeError('seen'))
    assert fut._log_traceback is True
    if retrieve == 'result':
        with pytest.raises(RuntimeError):
            fut.result()
    elif retrieve == 'exception':
        fut.exception()
    elif retrieve == 'log_traceback':
        fut._log_traceback = False
    else:
        assert fut.cancel() is False
    assert fut._log_traceback is False
    del fut
    full_gc()
    assert reports == []


def test_log_traceback_cannot_be_set_true(loop, future_cls):
    fut = future_cls(loop=loop)
    with pytest.raises(ValueError, match='_log_traceback can only be set to False'):
        fut._log_traceback = True
    fut._log_traceback = False
    assert fut._log_traceback is False


def test_results_and_cancellations_are_never_reported(loop, future_cls, reports):
    a = future_cls(loop=loop)
    a.set_result(1)
    b = future_cls(loop=loop)
    b.cancel()
    c = future_cls(loop=loop)
    del a, b, c
    full_gc()
    assert reports == []


# -- interoperation ------------------------------------------------------


def test_stdlib_task_awaits_our_future(loop, future_cls, run):
    fut = future_cls(loop=loop)

    async def waiter():
        return await fut

    task = asyncio.Task(waiter(), loop=loop)  # whatever asyncio's default is
    loop.call_later(0.001, fut.set_result, 'ok')
    assert run(task) == 'ok'


def test_stdlib_task_cancel_reaches_our_future(loop, future_cls, run):
    fut = future_cls(loop=loop)

    async def waiter():
        await fut

    task = asyncio.Task(waiter(), loop=loop)
    loop.call_soon(task.cancel, 'halt')
    with pytest.raises(asyncio.CancelledError):
        run(task)
    assert fut.cancelled()
    with pytest.raises(asyncio.CancelledError, match='halt'):
        fut.result()


def test_gather_of_our_futures(loop, future_cls, run):
    futs = [future_cls(loop=loop) for _ in range(3)]
    for i, f in enumerate(reversed(futs)):
        loop.call_later(0.001 * i, f.set_result, i)
    assert run(asyncio.gather(*futs)) == [2, 1, 0]


def test_gather_return_exceptions(loop, future_cls, run):
    ok, bad = future_cls(loop=loop), future_cls(loop=loop)
    loop.call_soon(ok.set_result, 1)
    loop.call_soon(bad.set_exception, KeyError('k'))
    res = run(asyncio.gather(ok, bad, return_exceptions=True))
    assert res[0] == 1 and isinstance(res[1], KeyError)


def test_wait_and_as_completed_on_our_futures(loop, future_cls, run):
    slow, fast = future_cls(loop=loop), future_cls(loop=loop)
    loop.call_later(0.001, fast.set_result, 'fast')

    async def main():
        done, pending = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        slow.set_result('slow')
        return [await f for f in asyncio.as_completed([slow, fast])]

    assert sorted(run(main())) == ['fast', 'slow']


def test_wait_for_times_out_and_cancels_our_future(loop, future_cls, run):
    fut = future_cls(loop=loop)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(fut, 0.001)

    run(main())
    assert fut.cancelled()


def test_shield_our_future(loop, future_cls, run):
    inner = future_cls(loop=loop)

    async def main():
        outer = asyncio.shield(inner)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert not inner.cancelled()
        inner.set_result(5)
        return await inner

    assert run(main()) == 5


def test_wrap_future_returns_our_future_unchanged(loop, future_cls):
    fut = future_cls(loop=loop)
    assert asyncio.wrap_future(fut) is fut
    assert asyncio.ensure_future(fut) is fut


def test_chain_concurrent_future_into_ours(loop, future_cls, run):
    # The plumbing behind wrap_future/run_in_executor, pointed at our future.
    cf = concurrent.futures.Future()
    fut = future_cls(loop=loop)
    asyncio.futures._chain_future(cf, fut)
    loop.call_soon(lambda: cf.set_running_or_notify_cancel() and cf.set_result('threads'))
    assert run(fut) == 'threads'


def test_future_for_a_thread_result(loop, future_cls, run):
    fut = future_cls(loop=loop)

    def work():
        loop.call_soon_threadsafe(fut.set_result, 'from thread')

    async def main():
        await asyncio.to_thread(work) if hasattr(asyncio, 'to_thread') else None
        return await fut

    assert run(main()) == 'from thread'


def test_loop_create_future_builds_what_the_constructor_builds():
    # uvcffi's create_future inlines Future.__init__: every slot must match.
    import uvcffi
    from uvcffi._futures import Future

    loop = uvcffi.new_event_loop()
    try:
        made, constructed = loop.create_future(), Future(loop=loop)
        assert type(made) is Future
        slots = [name for name in Future.__slots__ if name != '__weakref__']
        assert {name: getattr(made, name) for name in slots} == {
            name: getattr(constructed, name) for name in slots}
        loop.set_debug(True)
        assert loop.create_future()._source_traceback  # debug mode takes the full path
    finally:
        loop.close()
