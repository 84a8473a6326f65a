"""A pure-Python ``Future`` with asyncio's semantics, tuned for speed.

The behaviour follows CPython 3.11's ``asyncio.futures._PyFuture``, error
messages included, with the documented changes of later versions (3.12's loop
lookup, 3.13's StopIteration wrapping) guarded by ``sys.version_info``.  Where
the C accelerator is stricter we follow it: ``set_exception`` of something that
is not an exception raises TypeError instead of failing half-way.  On 3.9/3.10
(PyPy) the 3.11 behaviour is kept: cancel messages survive, ``result()``
re-raises with the original traceback.  The exception classes are asyncio's
own, so ``except asyncio.CancelledError`` and friends work unchanged.

Two deliberate differences in *how* (not *what*):

* Every attribute lives in ``__slots__``.  ``_asyncio_future_blocking`` is a
  slot too, so on the class it is a member descriptor (exactly like the C
  ``asyncio.Future``, where it is a getset descriptor) and on every instance it
  starts as ``False``; ``asyncio.isfuture()`` only needs ``hasattr`` on the
  class and a non-``None`` value on the instance.

* There is no ``__del__``.  A finaliser on the class would make CPython call
  back into Python for every future that dies, although only futures holding
  an exception nobody looked at have anything to report.  Instead
  ``set_exception()`` arms a tiny ``_TracebackLogger`` object (a reference
  cycle future <-> logger); retrieving the exception (``result()``,
  ``exception()``, ``_log_traceback = False``, ``cancel()``) disarms it and
  breaks the cycle.  A logger that is still armed when the cycle is collected
  reports "exception was never retrieved" through the loop's exception handler.
  Consequence: that report comes from the cyclic garbage collector rather than
  from the moment the last reference disappears (on PyPy every finaliser
  already works that way).  ``Task`` has a ``__del__`` of its own anyway (for
  "Task was destroyed but it is pending!"), so it arms a shared marker instead
  of a logger and reports synchronously, exactly like asyncio.

  Measured with tests/futures/bench_finalizers.py (create, set_result,
  result, drop): an asyncio-style ``__del__`` would add ~95 ns (+16%) to every
  future on CPython 3.11 and turn ~8 ns into ~50 ns on PyPy, where the JIT can
  no longer remove the allocation; on the exception path the logger object
  costs about what the ``__del__`` would.

* The first done callback is kept in two slots (``_callback0``/``_context0``),
  as the C ``asyncio.Future`` does; a list of ``(fn, context)`` tuples
  (``_more_callbacks``) is only made for a second one.  Most futures and tasks
  get at most one callback (the awaiting task's wakeup, gather's or wait's
  callback), so this saves a list and a tuple per future -- two objects the
  cyclic GC would otherwise allocate, traverse and free.  Invariant:
  ``_context0 is None`` means no callbacks at all (a stored context is never
  None, so the callback itself may be anything, None included).
  ``_callbacks`` is a read-only property that builds asyncio's list view,
  for asyncio's own repr helpers and for introspection.
"""

import asyncio
import contextvars
import reprlib
import sys
from asyncio import base_futures, events, format_helpers
from types import GenericAlias

__all__ = ('Future',)

_PENDING = base_futures._PENDING
_CANCELLED = base_futures._CANCELLED
_FINISHED = base_futures._FINISHED

CancelledError = asyncio.CancelledError
InvalidStateError = asyncio.InvalidStateError

_PY313 = sys.version_info >= (3, 13)

# How ``Future()`` without a loop finds one.  3.10/3.11 have a private helper
# that skips the deprecation warning for the "running loop" case; 3.12+ and
# 3.9 use the public function, as their asyncio.Future does.
if sys.version_info >= (3, 12) or not hasattr(events, '_get_event_loop'):
    _get_event_loop = events.get_event_loop
else:
    _get_event_loop = events._get_event_loop

_extract_stack = format_helpers.extract_stack
_copy_context = contextvars.copy_context


class _TracebackLogger:
    """Armed by ``Future.set_exception``; reports if it dies still armed."""

    __slots__ = ('fut',)

    def __init__(self, fut):
        self.fut = fut

    def __del__(self):
        fut = self.fut
        if fut is None:
            return
        self.fut = None
        if fut._tb_logger is self:
            fut._tb_logger = None
        _report_never_retrieved(fut)


# Marker used by subclasses that report from their own ``__del__`` (Task):
# its ``fut`` is always None, so disarming it is a harmless store.
_ARMED = _TracebackLogger(None)


def _report_never_retrieved(fut):
    context = {
        'message': f'{fut.__class__.__name__} exception was never retrieved',
        'exception': fut._exception,
        'future': fut,
    }
    if fut._source_traceback:
        context['source_traceback'] = fut._source_traceback
    fut._loop.call_exception_handler(context)


def _format_callback(cb):
    try:
        return format_helpers._format_callback_source(cb, ())
    except Exception:  # pragma: no cover - private helper changed shape
        return repr(cb)


def _format_callbacks(callbacks):
    size = len(callbacks)
    if size == 1:
        text = _format_callback(callbacks[0][0])
    elif size == 2:
        text = f'{_format_callback(callbacks[0][0])}, {_format_callback(callbacks[1][0])}'
    else:
        text = (f'{_format_callback(callbacks[0][0])}, <{size - 2} more>, '
                f'{_format_callback(callbacks[-1][0])}')
    return f'cb=[{text}]'


def _callbacks_of(fut):
    """The pending done callbacks of ``fut`` as asyncio's list of (fn, context)."""
    ctx0 = fut._context0
    if ctx0 is None:
        return []
    first = [(fut._callback0, ctx0)]
    more = fut._more_callbacks
    return first + more if more else first


def _schedule_callback(fut, loop, fn, ctx):
    """Schedule one done callback of ``fut`` (done) on ``loop``."""
    if type(fn) is _TaskWakeup:
        task = fn.__self__
        # The conditions of _TaskWakeup's docstring: queue the task itself.
        if (task._idle and task._loop is loop and ctx is task._context
                and not loop._closed and not loop._debug):
            task._idle = False
            task._step_fut = fut
            loop._ready.append(task)
            return
    loop.call_soon(fn, fut, context=ctx)


def _future_repr_info(fut):
    """The words of ``repr(fut)`` after the class name, as asyncio prints them."""
    state = fut._state
    info = [state.lower()]
    if state == _FINISHED:
        if fut._exception is not None:
            info.append(f'exception={fut._exception!r}')
        else:
            info.append(f'result={reprlib.repr(fut._result)}')
    if fut._context0 is not None:
        info.append(_format_callbacks(_callbacks_of(fut)))
    if fut._source_traceback:
        frame = fut._source_traceback[-1]
        info.append(f'created at {frame[0]}:{frame[1]}')
    return info


class _TaskWakeup:
    """The done callback a ``Task`` registers on the future it awaits.

    asyncio registers a bound method (``task.__wakeup``); this is the same
    callable as an object of its own type, so that scheduling callbacks can
    recognise it with one ``type(fn) is _TaskWakeup`` test.  When the future is
    done and the callback is of this type, the task is on the same loop as the
    future, is registered with the task's own context, the loop accepts ready
    items (``LoopCore._accepts_ready_items``), is neither closed nor in debug
    mode, and the task has no step queued yet, the future queues the task
    itself on the ready deque (``Task._run`` performs the wakeup), instead of a
    Handle that would call this object.  In every other case (asyncio's loop,
    debug mode, a second wakeup while a step is queued, a callback registered
    by hand with another context) it goes through ``loop.call_soon`` exactly as
    asyncio's bound method would, and ``__call__`` does the wakeup there.

    Each task keeps one while it runs (``Task._wakeup_cb``) and drops it when
    done, so the task <-> wakeup reference cycle never outlives the task.
    """

    # ``__self__`` is the task, as on the bound method this replaces: the
    # loops' debug mode reports a slow wakeup as ``repr(callback.__self__)``.
    __slots__ = ('__self__',)

    # What asyncio's formatting of callbacks (Future repr, "Exception in
    # callback ...") prints for it: the name of the bound method it replaces.
    __name__ = 'Task.__wakeup'

    def __init__(self, task):
        self.__self__ = task

    def __call__(self, future):
        self.__self__._Task__wakeup(future)  # name-mangled private method of Task


class Future:
    """An asyncio-compatible Future (not thread-safe, like asyncio's)."""

    __slots__ = (
        '_loop', '_state', '_result', '_exception', '_exception_tb',
        '_callback0', '_context0', '_more_callbacks', '_source_traceback',
        '_cancel_message', '_cancelled_exc',
        '_asyncio_future_blocking', '_tb_logger', '__weakref__',
    )

    # How a retrieved-or-not exception is tracked; Task overrides it.
    _new_tb_logger = _TracebackLogger

    def __init__(self, *, loop=None):
        if loop is None:
            loop = _get_event_loop()
        self._loop = loop
        self._state = _PENDING
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
        if loop.get_debug():
            self._source_traceback = _extract_stack(sys._getframe(1))
        else:
            self._source_traceback = None

    __class_getitem__ = classmethod(GenericAlias)

    @reprlib.recursive_repr()
    def __repr__(self):
        return f'<{self.__class__.__name__} {" ".join(self._repr_info())}>'

    def _repr_info(self):
        return _future_repr_info(self)

    @property
    def _callbacks(self):
        # Read by asyncio.base_futures._future_repr_info; a fresh list, read-only
        # like the C Future's (which gives None rather than an empty list).
        return _callbacks_of(self)

    # -- "exception was never retrieved" bookkeeping ---------------------

    @property
    def _log_traceback(self):
        return self._tb_logger is not None

    @_log_traceback.setter
    def _log_traceback(self, val):
        if val:
            raise ValueError('_log_traceback can only be set to False')
        logger = self._tb_logger
        if logger is not None:
            logger.fut = None
            self._tb_logger = None

    # -- public API ------------------------------------------------------

    def get_loop(self):
        """Return the event loop the Future is bound to."""
        try:
            loop = self._loop
        except AttributeError:
            loop = None
        if loop is None:
            raise RuntimeError('Future object is not initialized.')
        return loop

    def _make_cancelled_error(self):
        """Create the CancelledError to raise for a cancelled future.

        The first call hands out the CancelledError saved by a Task (so the
        original traceback and message chain survive); later calls build a
        fresh one from the cancel message.
        """
        exc = self._cancelled_exc
        if exc is not None:
            self._cancelled_exc = None
            return exc
        msg = self._cancel_message
        if msg is None:
            return CancelledError()
        return CancelledError(msg)

    def cancel(self, msg=None):
        """Cancel the future and schedule its callbacks.

        Return False if the future is already done, else True.
        """
        logger = self._tb_logger
        if logger is not None:
            logger.fut = None
            self._tb_logger = None
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        self.__schedule_callbacks()
        return True

    def __schedule_callbacks(self):
        ctx = self._context0
        if ctx is None:
            return
        fn = self._callback0
        more = self._more_callbacks
        # Cleared first, as asyncio does: a failing call_soon loses the rest.
        self._callback0 = self._context0 = self._more_callbacks = None
        loop = self._loop
        _schedule_callback(self, loop, fn, ctx)
        if more is not None:
            for fn, ctx in more:
                _schedule_callback(self, loop, fn, ctx)

    def cancelled(self):
        """Return True if the future was cancelled."""
        return self._state == _CANCELLED

    def done(self):
        """Return True if the future has a result, an exception, or was cancelled."""
        return self._state != _PENDING

    def result(self):
        """Return the result, or raise the exception / CancelledError.

        Raises InvalidStateError while the future is pending.
        """
        state = self._state
        if state == _CANCELLED:
            raise self._make_cancelled_error()
        if state != _FINISHED:
            raise InvalidStateError('Result is not ready.')
        logger = self._tb_logger
        if logger is not None:
            logger.fut = None
            self._tb_logger = None
        exc = self._exception
        if exc is not None:
            raise exc.with_traceback(self._exception_tb)
        return self._result

    def exception(self):
        """Return the exception set on the future, or None.

        Raises CancelledError if cancelled, InvalidStateError while pending.
        """
        state = self._state
        if state == _CANCELLED:
            raise self._make_cancelled_error()
        if state != _FINISHED:
            raise InvalidStateError('Exception is not set.')
        logger = self._tb_logger
        if logger is not None:
            logger.fut = None
            self._tb_logger = None
        return self._exception

    def add_done_callback(self, fn, *, context=None):
        """Call ``fn(future)`` through ``loop.call_soon`` once the future is done."""
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=context)
        else:
            if context is None:
                context = _copy_context()
            if self._context0 is None:
                self._callback0 = fn
                self._context0 = context
            else:
                more = self._more_callbacks
                if more is None:
                    self._more_callbacks = [(fn, context)]
                else:
                    more.append((fn, context))

    def remove_done_callback(self, fn):
        """Remove every registration of ``fn``; return how many were removed."""
        if self._context0 is None:
            return 0
        callbacks = _callbacks_of(self)
        # != as asyncio compares (no identity shortcut), on a snapshot.
        kept = [(f, ctx) for (f, ctx) in callbacks if f != fn]
        removed = len(callbacks) - len(kept)
        if removed:
            if kept:
                self._callback0, self._context0 = kept[0]
                self._more_callbacks = kept[1:] or None
            else:
                self._callback0 = self._context0 = self._more_callbacks = None
        return removed

    def set_result(self, result):
        """Mark the future done with ``result``; InvalidStateError if already done."""
        if self._state != _PENDING:
            raise InvalidStateError(f'{self._state}: {self!r}')
        self._result = result
        self._state = _FINISHED
        ctx = self._context0
        if ctx is not None:  # __schedule_callbacks(), inlined on this hot path
            fn = self._callback0
            more = self._more_callbacks
            self._callback0 = self._context0 = self._more_callbacks = None
            loop = self._loop
            if type(fn) is _TaskWakeup:
                task = fn.__self__
                if (task._idle and task._loop is loop and ctx is task._context
                        and not loop._closed and not loop._debug):
                    task._idle = False
                    task._step_fut = self
                    loop._ready.append(task)
                else:
                    loop.call_soon(fn, self, context=ctx)
            else:
                loop.call_soon(fn, self, context=ctx)
            if more is not None:
                for fn, ctx in more:
                    _schedule_callback(self, loop, fn, ctx)

    def set_exception(self, exception):
        """Mark the future done with ``exception``; InvalidStateError if already done."""
        if self._state != _PENDING:
            raise InvalidStateError(f'{self._state}: {self!r}')
        if isinstance(exception, type):
            exception = exception()
        if not isinstance(exception, BaseException):
            raise TypeError('invalid exception object')
        if _PY313:
            if isinstance(exception, StopIteration):
                new_exc = RuntimeError('StopIteration interacts badly with '
                                       'generators and cannot be raised into a '
                                       'Future')
                new_exc.__cause__ = exception
                new_exc.__context__ = exception
                exception = new_exc
        elif type(exception) is StopIteration:
            raise TypeError('StopIteration interacts badly with generators '
                            'and cannot be raised into a Future')
        self._exception = exception
        self._exception_tb = exception.__traceback__
        self._state = _FINISHED
        self.__schedule_callbacks()
        self._tb_logger = self._new_tb_logger(self)

    def __await__(self):
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self  # tells the Task to wait for completion
        state = self._state
        if state == _FINISHED and self._exception is None:
            return self._result  # what result() returns, without the call
        if state == _PENDING:
            raise RuntimeError("await wasn't used with future")
        return self.result()

    __iter__ = __await__  # for 'yield from'
