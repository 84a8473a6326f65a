"""A pure-Python ``Task`` with asyncio's semantics, built on our ``Future``.

Behaviour follows CPython 3.11's ``asyncio.Task`` (on 3.9/3.10 too, so PyPy
gets cancel messages, ``cancelling()`` and ``uncancel()``); ``eager_start`` and
``get_context()`` follow 3.12, and ``uncancel()`` rescinding a pending
cancellation when the count drops to zero follows 3.13.0, whose C and Python
Tasks both already do it; each is guarded by ``sys.version_info``.  The eager
helpers are looked up with getattr: an asyncio without them gets tasks that
are scheduled normally even when ``eager_start=True``.

Our tasks register with asyncio's own bookkeeping (``_register_task``,
``_enter_task``/``_leave_task`` and, on 3.12+, the eager helpers), so
``asyncio.current_task()`` and ``asyncio.all_tasks()`` see them next to stdlib
tasks.  Those helpers are looked up once, at import time.

"Task was destroyed but it is pending!" is reported from ``Task.__del__``, as
asyncio does.  tests/futures/bench_finalizers.py compares it with a guard
object armed per task and disarmed when the task finishes: on CPython 3.11 the
``__del__`` is within noise of no finaliser at all (~3.1 us per task life)
while the guard adds ~0.3-0.6 us (an allocation, a disarm and a finaliser call
of its own); on PyPy both cost about the same (~+25% over no finaliser), so
the simpler one wins everywhere.  Having ``__del__`` anyway, tasks also report
"exception was never retrieved" from it instead of arming a logger object.
"""

import asyncio
import contextvars
import inspect
import itertools
import sys
import types
from asyncio import base_tasks, coroutines, events, format_helpers, futures
from asyncio import tasks as _aio_tasks

from ._futures import (
    _ARMED,
    _FINISHED,
    _PENDING,
    CancelledError,
    Future,
    InvalidStateError,
    _future_repr_info,
    _get_event_loop,
    _report_never_retrieved,
    _TaskWakeup,
)

__all__ = ('Task',)

_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)

_iscoroutine = asyncio.iscoroutine
# The type of ``async def`` coroutines: accepted without asyncio's (Python)
# iscoroutine call, which handles every other kind of coroutine.
_CoroutineType = types.CoroutineType
_isgenerator = inspect.isgenerator
_get_loop = futures._get_loop
_copy_context = contextvars.copy_context
_extract_stack = asyncio.format_helpers.extract_stack

# Share asyncio's name counter so "Task-N" stays unique next to _PyTask.
_task_name_counter = getattr(_aio_tasks, '_task_name_counter', None)
if _task_name_counter is None:  # pragma: no cover - every supported asyncio has it
    _task_name_counter = itertools.count(1).__next__

_register_task = _aio_tasks._register_task
_enter_task = _aio_tasks._enter_task
_leave_task = _aio_tasks._leave_task
_register_eager_task = getattr(_aio_tasks, '_register_eager_task', None)
_unregister_eager_task = getattr(_aio_tasks, '_unregister_eager_task', None)
_swap_current_task = getattr(_aio_tasks, '_swap_current_task', None)
_EAGER = _PY312 and None not in (
    _register_eager_task, _unregister_eager_task, _swap_current_task)

_future_set_result = Future.set_result
_future_set_exception = Future.set_exception
_future_cancel = Future.cancel


def _format_coroutine(coro):
    try:
        return coroutines._format_coroutine(coro)
    except Exception:  # pragma: no cover - private helper changed shape
        return repr(coro)


def _return_armed(fut):
    return _ARMED


class Task(Future):
    """A coroutine wrapped in a Future."""

    __slots__ = (
        '_name', '_num_cancels_requested', '_must_cancel', '_fut_waiter',
        '_coro', '_context', '_log_destroy_pending',
        # The ready-item state (see _run): _idle is true while the task may
        # queue itself (its loop's type accepts ready items and it is not
        # queued already); then the argument of the queued step (an exception
        # to throw in, or the future that woke the task).
        '_idle', '_step_exc', '_step_fut',
        # The _TaskWakeup registered on awaited futures, made on first await.
        '_wakeup_cb',
    )

    # The ready-queue contract of LoopCore: a task queued on the ready deque is
    # never skipped as cancelled (Task.cancel works through the coroutine).
    _cancelled = False

    # Task.__del__ reports unretrieved exceptions itself: no logger object.
    _new_tb_logger = staticmethod(_return_armed)

    def __setup(self, coro, loop, name, context):
        # Future.__init__, inlined; then the Task fields.
        if loop is None:
            loop = _get_event_loop()
        self._loop = loop
        self._state = _PENDING
        self._log_destroy_pending = True
        self._result = None
        self._exception = None
        self._exception_tb = None
        self._callback0 = None
        self._context0 = None
        self._more_callbacks = None
        self._cancel_message = None
        self._cancelled_exc = None
        self._asyncio_future_blocking = False
        self._tb_logger = None
        idle = self._idle = getattr(type(loop), '_accepts_ready_items', False)
        # LoopCore (the loops whose tasks may idle) has _debug: no method call.
        if loop._debug if idle else loop.get_debug():
            # frame 0 is this method, 1 is __init__: start at its caller.
            self._source_traceback = _extract_stack(sys._getframe(2))
        else:
            self._source_traceback = None
        if type(coro) is not _CoroutineType and not _iscoroutine(coro):
            # No "destroyed but pending" report for a task that never was.
            self._log_destroy_pending = False
            raise TypeError(f'a coroutine was expected, got {coro!r}')
        if name is None:
            # The number now (names follow creation order), the string when
            # asked for (get_name): most tasks are never named.
            self._name = _task_name_counter()
        else:
            self._name = str(name)
        self._num_cancels_requested = 0
        self._must_cancel = False
        self._fut_waiter = None
        self._coro = coro
        if context is None:
            self._context = _copy_context()
        else:
            self._context = context
        self._step_exc = None
        self._step_fut = None
        self._wakeup_cb = None

    def __schedule_step(self, exc=None):
        """Schedule ``__step(exc)`` the way asyncio's ``loop.call_soon`` would.

        On a loop that accepts ready items the task itself is queued (see
        ``_run``), unless it already is: then, as in debug mode, on a closed
        loop or on any other loop, a Handle is made by ``call_soon``.  Either
        way the step lands at the end of the ready queue, so the order of steps
        and other callbacks is asyncio's.
        """
        loop = self._loop
        if self._idle and not loop._closed and not loop._debug:
            self._idle = False
            self._step_exc = exc
            loop._ready.append(self)
        elif exc is None:
            loop.call_soon(self.__step, context=self._context)
        else:
            loop.call_soon(self.__step, exc, context=self._context)

    def _run(self):
        """Run the queued step, as the loop runs a Handle's ``_run``.

        The step runs in the task's context, and unexpected errors are
        reported to the loop's exception handler like Handle._run reports
        them (SystemExit and KeyboardInterrupt propagate).
        """
        self._idle = True
        fut = self._step_fut
        exc = self._step_exc
        try:
            if fut is not None:
                self._step_fut = None
                cls = fut.__class__
                if ((cls is Future or cls is Task) and fut._state == _FINISHED
                        and fut._exception is None):
                    # __wakeup's first case, inlined: step without a result.
                    self._context.run(_task_step, self)
                else:
                    self._context.run(_task_wakeup, self, fut)
            elif exc is None:
                self._context.run(_task_step, self)
            else:
                self._step_exc = None
                self._context.run(_task_step, self, exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as error:
            self.__report_step_error(error, fut, exc)
            self = None  # break cycles through the error's traceback

    def __report_step_error(self, error, fut, exc):
        # Describe the step as the Handle that asyncio would have run for it.
        if fut is not None:
            callback, args = self._wakeup_cb or _TaskWakeup(self), (fut,)
        else:
            callback, args = self.__step, (() if exc is None else (exc,))
        handle = events.Handle(callback, args, self._loop, self._context)
        source = format_helpers._format_callback_source(callback, args)
        context = {
            'message': f'Exception in callback {source}',
            'exception': error,
            'handle': handle,
        }
        self._loop.call_exception_handler(context)

    if _PY312:
        def __init__(self, coro, *, loop=None, name=None, context=None,
                     eager_start=False):
            self.__setup(coro, loop, name, context)
            loop = self._loop
            if eager_start and _EAGER and loop.is_running():
                self.__eager_start()
            else:
                # __schedule_step(), inlined: every task starts this way.
                if self._idle and not loop._closed and not loop._debug:
                    self._idle = False
                    loop._ready.append(self)
                else:
                    loop.call_soon(self.__step, context=self._context)
                _register_task(self)
    else:
        def __init__(self, coro, *, loop=None, name=None, context=None):
            self.__setup(coro, loop, name, context)
            loop = self._loop
            # __schedule_step(), inlined: every task starts this way.
            if self._idle and not loop._closed and not loop._debug:
                self._idle = False
                loop._ready.append(self)
            else:
                loop.call_soon(self.__step, context=self._context)
            _register_task(self)

    def __del__(self):
        try:
            state = self._state
            log_pending = self._log_destroy_pending
        except AttributeError:  # __init__ failed before the fields existed
            return
        if state == _PENDING and log_pending:
            context = {
                'task': self,
                'message': 'Task was destroyed but it is pending!',
            }
            if self._source_traceback:
                context['source_traceback'] = self._source_traceback
            self._loop.call_exception_handler(context)
        if self._tb_logger is not None:
            self._tb_logger = None
            _report_never_retrieved(self)

    def _repr_info(self):
        info = _future_repr_info(self)
        if self._num_cancels_requested and self._state == _PENDING:
            info[0] = 'cancelling'
        info.insert(1, f'name={self.get_name()!r}')
        if self._fut_waiter is not None:
            info.insert(2, f'wait_for={self._fut_waiter!r}')
        if self._coro is not None:
            info.insert(2, f'coro=<{_format_coroutine(self._coro)}>')
        return info

    def get_coro(self):
        return self._coro

    def get_context(self):
        return self._context

    def get_name(self):
        name = self._name
        if name.__class__ is int:  # the counter value stored by __setup
            name = self._name = f'Task-{name}'
        return name

    def set_name(self, value):
        self._name = str(value)

    def set_result(self, result):
        raise RuntimeError('Task does not support set_result operation')

    def set_exception(self, exception):
        raise RuntimeError('Task does not support set_exception operation')

    def get_stack(self, *, limit=None):
        """Return the stack frames of the coroutine (see asyncio.Task.get_stack)."""
        return base_tasks._task_get_stack(self, limit)

    def print_stack(self, *, limit=None, file=None):
        """Print the stack or traceback of the coroutine (see asyncio.Task.print_stack)."""
        return base_tasks._task_print_stack(self, limit, file)

    def cancel(self, msg=None):
        """Request that the task cancel itself.

        A CancelledError is thrown into the coroutine on its next step (or the
        future it awaits is cancelled).  Return False if the task is already
        done.  Increments the count returned by ``cancelling()``.
        """
        logger = self._tb_logger
        if logger is not None:
            logger.fut = None
            self._tb_logger = None
        if self._state != _PENDING:
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        if waiter is not None:
            if waiter.cancel(msg=msg):
                # Keep _fut_waiter: it may swallow the cancellation, and then
                # we may have to cancel it again.
                return True
        # The step is already scheduled: it will throw CancelledError in.
        self._must_cancel = True
        self._cancel_message = msg
        return True

    def cancelling(self):
        """Return the number of pending cancellation requests."""
        return self._num_cancels_requested

    def uncancel(self):
        """Decrement the count of cancellation requests and return it."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if _PY313 and self._num_cancels_requested == 0:
                self._must_cancel = False
        return self._num_cancels_requested

    if _EAGER:
        def __eager_start(self):
            loop = self._loop
            prev_task = _swap_current_task(loop, self)
            try:
                _register_eager_task(self)
                try:
                    self._context.run(self.__step, None, True)
                finally:
                    _unregister_eager_task(self)
            finally:
                try:
                    curtask = _swap_current_task(loop, prev_task)
                    if curtask is not self:  # pragma: no cover - asyncio asserts this
                        raise RuntimeError(
                            f'eager task {self!r} left {curtask!r} as the current task')
                finally:
                    if self._state != _PENDING:
                        self._coro = None
                    else:
                        _register_task(self)
                    self = None  # break cycles when an exception occurs

    def __step(self, exc=None, _eager=False):
        # _eager: the first step of an eager task, which __eager_start has
        # already made the current task (with _swap_current_task).
        if self._state != _PENDING:
            raise InvalidStateError(
                f'_step(): already done: {self!r}, {exc!r}')
        if self._must_cancel:
            if not isinstance(exc, CancelledError):
                exc = self._make_cancelled_error()
            self._must_cancel = False
        self._fut_waiter = None
        loop = self._loop
        if not _eager:
            _enter_task(loop, self)
        try:
            try:
                if exc is None:
                    # send() rather than next(): coroutines have no __next__.
                    result = self._coro.send(None)
                else:
                    result = self._coro.throw(exc)
            except StopIteration as stop:
                self._wakeup_cb = None  # the task <-> wakeup cycle ends here
                if self._must_cancel:
                    # cancel() arrived while the coroutine was finishing.
                    self._must_cancel = False
                    _future_cancel(self, msg=self._cancel_message)
                else:
                    _future_set_result(self, stop.value)
            except CancelledError as cancelled:
                self._wakeup_cb = None
                # Keep the original so result() can re-raise it, chain intact.
                self._cancelled_exc = cancelled
                _future_cancel(self)
            except (KeyboardInterrupt, SystemExit) as fatal:
                self._wakeup_cb = None
                _future_set_exception(self, fatal)
                raise
            except BaseException as error:
                self._wakeup_cb = None
                _future_set_exception(self, error)
            else:
                if result is None:
                    # A bare yield (asyncio.sleep(0)) gives up one loop iteration.
                    # __schedule_step(), inlined on this hot path.
                    if self._idle and not loop._closed and not loop._debug:
                        self._idle = False
                        loop._ready.append(self)
                    else:
                        loop.call_soon(self.__step, context=self._context)
                    return
                rcls = result.__class__
                if ((rcls is Future or rcls is Task) and result._loop is loop
                        and result._asyncio_future_blocking and result is not self
                        and result._state == _PENDING):
                    # The common case, our own pending future of this loop,
                    # awaited: the general branch below would do the same.
                    result._asyncio_future_blocking = False
                    wakeup = self._wakeup_cb
                    if wakeup is None:
                        wakeup = self._wakeup_cb = _TaskWakeup(self)
                    # add_done_callback(wakeup, context=...), inlined.
                    if result._context0 is None:
                        result._callback0 = wakeup
                        result._context0 = self._context
                    else:
                        result.add_done_callback(wakeup, context=self._context)
                    self._fut_waiter = result
                    if self._must_cancel:
                        if result.cancel(msg=self._cancel_message):
                            self._must_cancel = False
                else:
                    self.__handle_yield(result, rcls)
        finally:
            if not _eager:
                _leave_task(loop, self)
            self = None  # break cycles when an exception occurs

    def __handle_yield(self, result, rcls):
        """What ``__step`` does with anything but None or our own awaited future."""
        blocking = getattr(result, '_asyncio_future_blocking', None)
        if blocking is not None:
            # A future yielded by its own __await__/__iter__.
            own = rcls is Future or rcls is Task
            # Our own exact classes: read the fields instead of calling methods.
            if (result._loop if own else _get_loop(result)) is not self._loop:
                self.__schedule_step(RuntimeError(
                    f'Task {self!r} got Future '
                    f'{result!r} attached to a different loop'))
            elif blocking:
                if result is self:
                    self.__schedule_step(
                        RuntimeError(f'Task cannot await on itself: {self!r}'))
                else:
                    result._asyncio_future_blocking = False
                    wakeup = self._wakeup_cb
                    if wakeup is None:
                        wakeup = self._wakeup_cb = _TaskWakeup(self)
                    result.add_done_callback(wakeup, context=self._context)
                    self._fut_waiter = result
                    if self._must_cancel:
                        if result.cancel(msg=self._cancel_message):
                            self._must_cancel = False
            else:
                self.__schedule_step(RuntimeError(
                    f'yield was used instead of yield from '
                    f'in task {self!r} with {result!r}'))
        elif _isgenerator(result):
            self.__schedule_step(RuntimeError(
                f'yield was used instead of yield from for '
                f'generator in task {self!r} with {result!r}'))
        else:
            self.__schedule_step(RuntimeError(f'Task got bad yield: {result!r}'))

    def __wakeup(self, future):
        cls = future.__class__
        if ((cls is Future or cls is Task) and future._state == _FINISHED
                and future._exception is None):
            # Our own future with a plain result: nothing for result() to do.
            self.__step()
        else:
            try:
                future.result()
            except BaseException as exc:
                # Possibly a cancellation: the step re-raises it into the coroutine.
                self.__step(exc)
            else:
                # No value passed: Future.__await__ does not need it.
                self.__step()
        self = None  # break cycles when an exception occurs


# The step functions, unbound: Task._run passes them to Context.run without
# making a bound method per step.
_task_step = Task._Task__step
_task_wakeup = Task._Task__wakeup
