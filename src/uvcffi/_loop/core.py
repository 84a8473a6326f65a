"""The scheduling core: one loop iteration, the ready queue, timers and thread wake-ups.

How asyncio's loop maps onto libuv
----------------------------------
asyncio's loop is a ready queue (callbacks to run now), a set of timers, and a way to
wait for I/O.  Here the ready queue is a Python ``deque`` of Handles (and other ready items),
the timers are a Python heap with one libuv timer armed for the earliest, and waiting for
I/O is ``uv_run``.  One iteration (:meth:`LoopCore._run_once`) is:

1. ``uv_run(NOWAIT)`` if anything is ready (or the loop is stopping), else
   ``uv_run(ONCE)``, which sleeps in epoll -- without the GIL -- until the first timer is
   due or some handle has an event.  libuv runs its phases inside that call (pending, idle,
   prepare, poll for I/O, check, close callbacks, timers); our C callbacks only queue
   events, so no Python code runs on libuv's stack and no phase can be re-entered.
2. The batch of events is dispatched: I/O and wake-up events first, in libuv's order,
   then due timers in deadline order, each appended to the ready queue -- the same order
   in which asyncio's selector loop appends "I/O callbacks, then expired timers".
3. The callbacks that were ready when the iteration began, plus those just appended, run
   in FIFO order; callbacks they schedule wait for the next iteration.

Nothing ever blocks in ``uv_run`` while work is ready, and nothing spins when there is
none: an iteration with an empty ready queue always sleeps until libuv has something.

Timers: a heap in Python, one libuv timer for the earliest
---------------------------------------------------------
Pending TimerHandles are kept in two pieces: a binary heap of their deadlines alone
(``_scheduled``, plain floats) and a dict from deadline to TimerHandle (``_timers_at``;
a list of TimerHandles, in the order they were scheduled, when several share one
deadline exactly).  asyncio keeps the TimerHandles themselves in its heap and compares
them through a Python ``__lt__``.  Our first design, a heap of ``(when, seq, handle)``
tuples, compared in C but cost every timer a tuple -- one more object for the cyclic GC
to track and traverse, and a tuple comparison at every step of the heap.  Floats are not
tracked by the GC and compare in a few instructions; the dict costs one insertion and
one removal per timer.

libuv is only asked to wake ``uv_run`` when the earliest deadline is due: the kit's one
*deadline timer* is armed, before an iteration that may sleep, for the absolute due time
``ceil(when * 1000)`` ms measured on libuv's own cached clock (``uvc_timer_start_at``),
and re-armed only when the earliest deadline changed.  So scheduling a timer costs a
dict entry and a ``heappush`` and no C call, and cancelling one only marks it, as in
asyncio; cancelled timers are dropped when their deadline reaches the top of the heap,
or all at once, at the start of an iteration, when they are more than half of at least
:data:`_MIN_CANCELLED_SWEEP` (so that many long timeouts cancelled early, the fate of
most ``wait_for`` timeouts, cannot pile up).

A timer is due when ``loop.time()`` -- ``time.monotonic()``, as in asyncio -- has reached
its ``when``: after ``uv_run`` returns, every due entry leaves the heap in deadline order
and joins the ready queue behind the I/O callbacks of the same iteration, as asyncio's
selector loop appends "I/O callbacks, then expired timers".  libuv keeps time in whole
milliseconds of the same clock (CLOCK_MONOTONIC), truncated, so a deadline timer armed for
the rounded-up millisecond cannot fire before ``when``: no timer ever runs early, and no
iteration spins waiting for one.

Wake-ups from other threads
---------------------------
``call_soon_threadsafe`` appends to the ready deque (an atomic operation) and calls
``uv_async_send``, which makes a sleeping ``uv_run`` return.  The send is thread-safe and
cheap when a wake-up is already pending.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import heapq
import logging
import math
import os
import sys
import threading
import time
import traceback
import warnings
import weakref
from asyncio import events as _events
from collections.abc import Awaitable, Generator
from typing import Any, Callable, TypeVar

from .._futures import _PENDING, Future
from .._tasks import Task
from .._uv.async_ import UVAsync
from .._uv.loop import (
    EV_CLOSED,
    RUN_NOWAIT,
    RUN_ONCE,
    UVLoop,
)
from .._uv.loop import run_raw as _uv_run
from .handles import Handle, TimerHandle
from .handles import report_callback_error as _report_callback_error
from .kit import Kit, take_kit

logger = logging.getLogger("asyncio")

_T = TypeVar("_T")

_monotonic = time.monotonic
_ceil = math.ceil
# libuv keeps due times in uint64 milliseconds; far-future deadlines (float("inf") too)
# are clamped to a due time that will never come.
_MAX_DUE_MS = 1 << 60
#: A sweep of cancelled timers is worth it from this many heap entries, when more than
#: half of them are cancelled (asyncio's thresholds).
_MIN_CANCELLED_SWEEP = 100
_heappush = heapq.heappush
_heappop = heapq.heappop
_new_handle = object.__new__  # also makes Futures (create_future)
_copy_context = contextvars.copy_context


_INLINE_RUN = frozenset((Handle, TimerHandle))

def _debug_from_environment() -> bool:
    """asyncio's rule: -X dev, or PYTHONASYNCIODEBUG set (unless -E)."""
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _noop() -> None:
    pass


def _run_until_complete_cb(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # The loop is about to stop anyway, with the exception propagating out.
            return
    fut.get_loop().stop()


class LoopCore(asyncio.AbstractEventLoop):
    """Scheduling, running and the loop-wide policies (exceptions, debug, async gens)."""

    #: The ready-queue contract, for our own Future/Task and transports: while the loop is
    #: neither closed nor in debug mode, any object with a false ``_cancelled`` attribute and
    #: a ``_run()`` method may be appended to ``_ready`` directly.  It then runs exactly as
    #: a Handle would, in FIFO order with everything else, minus the Handle object (its
    #: ``_run`` must report its own errors, as ``Handle._run`` does).  Debug mode keeps real
    #: Handles, so that slow-callback reports and ``_current_handle`` still work.
    _accepts_ready_items = True

    def __init__(self, *, stdlib_futures: bool = False) -> None:
        # The libuv loop and the handles every loop keeps open, often recycled from a loop
        # closed earlier (kit.py says why and when).
        self._kit: Kit | None = take_kit()
        self._uv = self._kit.uv
        # Pending TimerHandles: a heap of deadlines and, per deadline, the TimerHandle (or
        # a list of those sharing it); see "Timers" above.
        self._scheduled: list[float] = []
        self._timers_at: dict[float, Any] = {}
        self._timer_cancelled_count = 0
        # The due time (libuv ms) the kit's deadline timer is armed for, or None.
        self._deadline_ms: int | None = None
        self._kit.on_deadline = self._deadline_fired
        self._ready: collections.deque[Handle | TimerHandle] = collections.deque()
        self._closed = False
        self._stopping = False
        self._thread_id: int | None = None
        self._debug = _debug_from_environment()
        self.slow_callback_duration = 0.1
        self._current_handle: Any = None
        self._exception_handler: Callable[..., object] | None = None
        self._task_factory: Callable[..., Any] | None = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        # Futures and tasks are ours unless the user asks for the stdlib's (C) classes.
        self._future_class: Any = asyncio.Future if stdlib_futures else Future
        self._task_class: Any = asyncio.Task if stdlib_futures else Task
        # The one handle that always keeps uv_run(ONCE) able to sleep and be woken.
        self._wakeup: UVAsync | None = self._kit.wakeup
        # Set by the thread that woke the loop, cleared by the loop before it sleeps.
        self._wakeup_sent = False
        if type(self).time is LoopCore.time:
            # loop.time() is called per timeout by asyncio.timeout, wait_for, sleep and
            # by users: the clock itself, not a method frame around it.  A subclass that
            # overrides time() keeps its own.
            self.time = _monotonic  # type: ignore[method-assign]
        # Python socket objects over fds that libuv handles own (transports, servers):
        # detached before the loop frees the handles, so that a socket object collected
        # later cannot close an fd number that has been reused since.
        self._fd_sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        # Called once just before the next uv_run, then cleared: for services that must
        # settle libuv state first (sockets.py checks fds it started polling).
        self._before_poll: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # ------------------------------------------------------------------------------------
    # Running and stopping
    # ------------------------------------------------------------------------------------

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if _events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        """In debug mode, non-thread-safe methods refuse to run from another thread."""
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def _check_callback(self, callback: Any, method: str) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def run_forever(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        wakeup_state = self._signals_enter_run()
        try:
            _events._set_running_loop(self)
            self._iterate(forever=True)
        finally:
            self._stopping = False
            self._thread_id = None
            _events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)
            self._signals_leave_run(wakeup_state)

    def run_until_complete(self, future: Awaitable[_T]) -> _T:
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        fut: Any = asyncio.ensure_future(future, loop=self)
        if new_task:
            # An exception raised by a task we created is the caller's to see; don't also
            # log it as never retrieved.
            fut._log_destroy_pending = False
        fut.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                # The exception (e.g. KeyboardInterrupt) propagates; mark it retrieved.
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(_run_until_complete_cb)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._ready.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._signals_close()
        self._close_uv()

    def _close_uv(self) -> None:
        """Free every libuv resource; see docs/design.md, "Shutdown"."""
        # Pending TimerHandles stay with their holders, who may still cancel() them.
        for timer in self._pending_timers():
            timer._scheduled = False
        self._scheduled.clear()
        self._timers_at.clear()
        self._timer_cancelled_count = 0
        if self._fd_sockets:
            for sock in list(self._fd_sockets):
                sock.detach()
            self._fd_sockets.clear()
        kit = self._kit
        if kit is None:
            return
        # From here on this loop must not reach the kit, which may soon serve another
        # loop: it keeps a closed stand-in whose every use raises "closed".
        self._kit = None
        self._wakeup = None
        self._uv = UVLoop.closed_stand_in()
        self._uv_close_stats = kit.release()

    def _uv_handle_stats(self) -> dict[str, int]:
        """Handle counters for leak checks.

        ``open`` is every libuv handle not yet closed; ``live`` leaves out the loop's own
        (the kit's handles: wake-up, signal poll and deadline timer), so after a test's
        work is done it must be 0: anything else is a handle whose owner forgot to close it.
        """
        counters = self._uv.counters()
        open_handles = counters["handles_opened"] - counters["handles_closed"]
        internal = self._internal_handle_count()
        return {**counters, "open": open_handles, "live": open_handles - internal}

    def _internal_handle_count(self) -> int:
        kit = self._kit
        return 0 if kit is None else len(kit.handles())

    # ------------------------------------------------------------------------------------
    # One iteration
    # ------------------------------------------------------------------------------------

    def _run_once(self) -> None:
        self._iterate(forever=False)

    def _iterate(self, forever: bool) -> None:
        """One iteration, or iterations until stop() when ``forever`` (run_forever's loop,
        kept in this one frame: per iteration it is most of the cost of a callback)."""
        ready = self._ready
        scheduled = self._scheduled
        timers_at = self._timers_at
        popleft = ready.popleft
        uv = self._uv
        uv_run = _uv_run
        uv_ptr = uv.ptr  # the loop cannot be closed, nor its kit change, while this runs
        while True:
            before_poll = self._before_poll
            if before_poll is not None:
                self._before_poll = None
                before_poll()
            if scheduled:
                cancelled = self._timer_cancelled_count
                if cancelled > _MIN_CANCELLED_SWEEP and cancelled * 2 > len(timers_at):
                    self._sweep_cancelled_timers()
            if ready or self._stopping:
                nevents = uv_run(uv_ptr, RUN_NOWAIT)
            else:
                # Threads wake us from here on (call_soon_threadsafe); one that appended
                # before this line, finding the flag still set, did not: look again.
                self._wakeup_sent = False
                if ready:
                    nevents = uv_run(uv_ptr, RUN_NOWAIT)
                else:
                    if scheduled:
                        self._arm_deadline()
                    nevents = uv_run(uv_ptr, RUN_ONCE)
            if nevents:
                self._dispatch(uv.events(nevents))
            if scheduled:
                # Due timers join the ready queue behind this iteration's I/O callbacks.
                now = self.time()  # time.monotonic itself unless overridden (__init__)
                while scheduled and scheduled[0] <= now:
                    timer = timers_at.pop(_heappop(scheduled))
                    if timer.__class__ is list:
                        self._timers_due_together(timer)
                    elif timer._cancelled:
                        self._timer_cancelled_count -= 1
                    else:
                        timer._scheduled = False
                        ready.append(timer)
            ntodo = len(ready)
            if self._debug:
                self._run_ready_debug(ntodo)
            else:
                # Handle._run, inlined for our own Handles and TimerHandles (most of what
                # runs): a Python frame less per callback.  Other ready items run themselves.
                while ntodo:
                    ntodo -= 1
                    handle = popleft()
                    if handle._cancelled:
                        continue
                    if type(handle) in _INLINE_RUN:
                        try:
                            handle._context.run(handle._callback, *handle._args)
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as exc:
                            _report_callback_error(handle, exc)
                    else:
                        handle._run()
                handle = None  # don't keep the last callback's arguments alive
            if not forever or self._stopping:
                return

    def _run_ready_debug(self, ntodo: int) -> None:
        popleft = self._ready.popleft
        for _ in range(ntodo):
            handle = popleft()
            if handle._cancelled:
                continue
            try:
                self._current_handle = handle
                t0 = _monotonic()
                handle._run()
                dt = _monotonic() - t0
                if dt >= self.slow_callback_duration:
                    logger.warning("Executing %s took %.3f seconds", _format_handle(handle), dt)
            finally:
                self._current_handle = None

    def _dispatch(self, events: list[int]) -> None:
        """Turn one batch of libuv events into ready callbacks (no user code runs here)."""
        uv = self._uv
        objects = uv.objects
        free_ids = uv.free_ids
        for i in range(0, len(events), 4):
            kind = events[i]
            oid = events[i + 1]
            obj = objects[oid]
            if obj is None:
                continue  # cannot happen by the id rules in _uv/loop.py; never crash on it
            if kind == EV_CLOSED:
                objects[oid] = None
                free_ids.append(oid)
                obj._on_closed()
            else:
                obj._on_event(kind, events[i + 2], events[i + 3])

    def _arm_deadline(self) -> None:
        """Have libuv wake uv_run when the earliest pending timer is due."""
        scheduled = self._scheduled
        timers_at = self._timers_at
        # Cancelled timers at the top would only cause early wake-ups: drop them first.
        while scheduled:
            entry = timers_at[scheduled[0]]
            if entry.__class__ is list:
                if not all(timer._cancelled for timer in entry):
                    break
                self._timer_cancelled_count -= len(entry)
            elif not entry._cancelled:
                break
            else:
                self._timer_cancelled_count -= 1
            del timers_at[_heappop(scheduled)]
        if not scheduled:
            return
        if self.time is _monotonic:
            due = scheduled[0] * 1000.0  # libuv's clock is CLOCK_MONOTONIC in ms too
        else:
            # A clock of the loop's own (a subclass's or a patched time()): libuv is
            # armed for what remains by that clock, from libuv's present time.
            kit = self._kit
            if kit is None:
                return
            kit.uv.update_time()
            due = kit.uv.now() + (scheduled[0] - self.time()) * 1000.0
        if due <= 0.0:
            due_ms = 0
        elif due < _MAX_DUE_MS:
            due_ms = _ceil(due)
        else:
            due_ms = _MAX_DUE_MS
        if due_ms != self._deadline_ms:
            kit = self._kit
            if kit is None:
                return
            self._deadline_ms = due_ms
            kit.arm_deadline(due_ms)

    def _deadline_fired(self) -> None:
        # libuv stopped the one-shot timer before reporting it.
        self._deadline_ms = None

    # ------------------------------------------------------------------------------------
    # Scheduling
    # ------------------------------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle = Handle(callback, args, self, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]  # the traceback ends at the caller's line
        else:
            # Handle.__init__, inlined: this is the hottest path of the loop.
            handle = _new_handle(Handle)
            handle._context = _copy_context() if context is None else context
            handle._loop = self
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._ready.append(handle)
        # One wake-up per sleep is enough (see _iterate, which clears the flag before it
        # looks at the ready queue a last time and sleeps): a thread that finds it set
        # knows the loop will see its callback without being woken again.
        if not self._wakeup_sent:
            self._wakeup_sent = True
            self._write_to_self()
        return handle

    def _write_to_self(self) -> None:
        """Wake the loop if it sleeps in uv_run; safe from any thread."""
        wakeup = self._wakeup
        if wakeup is None:
            return  # closed: there is nothing left to wake
        try:
            wakeup.send()
        except RuntimeError:
            pass  # closed concurrently: there is nothing left to wake

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        if self._closed or self._debug:
            timer = self._new_timer(self.time() + delay, callback, args, context)
            if timer._source_traceback:
                del timer._source_traceback[-2:]  # _new_timer's and call_later's frames
            return timer
        # _new_timer, inlined for the common case: a frame is a tenth of a timer's cost.
        when = self.time() + delay  # loop.time()'s reference, as asyncio's call_later
        timer = _new_handle(TimerHandle)
        timer._context = _copy_context() if context is None else context
        timer._loop = self
        timer._callback = callback
        timer._args = args
        timer._cancelled = False
        timer._repr = None
        timer._source_traceback = None
        timer._when = when
        timer._scheduled = True
        try:
            first = self._timers_at.setdefault(when, timer)
        except TypeError:  # an unhashable deadline: _file_timer deals with it
            first = None
        if first is timer:
            _heappush(self._scheduled, when)
        else:
            self._file_timer(when, timer)
        return timer

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        timer = self._new_timer(when, callback, args, context)
        if timer._source_traceback:
            del timer._source_traceback[-2:]
        return timer

    def _new_timer(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> TimerHandle:
        """Make a TimerHandle and put it in the timer heap (see "Timers" above)."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
            timer = TimerHandle(when, callback, args, self, context)
        else:
            # TimerHandle.__init__, inlined.
            timer = _new_handle(TimerHandle)
            timer._context = _copy_context() if context is None else context
            timer._loop = self
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._repr = None
            timer._source_traceback = None
            timer._when = when
        timer._scheduled = True
        try:
            first = self._timers_at.setdefault(when, timer)
        except TypeError:  # an unhashable deadline: _file_timer deals with it
            first = None
        if first is timer:
            _heappush(self._scheduled, when)
        else:
            self._file_timer(when, timer)
        return timer

    def _timer_handle_cancelled(self, timer: Any) -> None:
        """A pending TimerHandle was cancelled: its entry stays until the next iteration
        sweeps (or pops) it, so a burst of cancellations costs one sweep at most."""
        self._timer_cancelled_count += 1

    def _file_timer(self, when: Any, timer: TimerHandle) -> None:
        """File ``timer`` the uncommon ways: behind the timers already due at exactly
        ``when`` (rare with ``call_later``, common with ``call_at``; they run in the order
        scheduled), or, for a deadline that cannot be hashed (a 0-d numpy array, say, which
        asyncio accepts as it only compares deadlines), under its float value."""
        try:
            hash(when)
        except TypeError:
            when = float(when)
        timers_at = self._timers_at
        entry = timers_at.setdefault(when, timer)
        if entry is timer:
            _heappush(self._scheduled, when)
        elif entry.__class__ is list:
            entry.append(timer)
        else:
            timers_at[when] = [entry, timer]

    def _timers_due_together(self, timers: list[TimerHandle]) -> None:
        """The timers of one deadline, just due, join the ready queue in their order."""
        ready = self._ready
        for timer in timers:
            if timer._cancelled:
                self._timer_cancelled_count -= 1
            else:
                timer._scheduled = False
                ready.append(timer)

    def _pending_timers(self) -> list[TimerHandle]:
        """Every TimerHandle still held for its deadline, cancelled ones included."""
        timers: list[TimerHandle] = []
        for entry in self._timers_at.values():
            if entry.__class__ is list:
                timers.extend(entry)
            else:
                timers.append(entry)
        return timers

    def _sweep_cancelled_timers(self) -> None:
        # Runs when most timers are cancelled: copying the few live ones out is cheaper
        # than deleting the many.  Both containers are updated in place (_iterate holds
        # them in locals).
        timers_at = self._timers_at
        kept = {}
        for when, entry in timers_at.items():
            if entry.__class__ is list:
                live = [timer for timer in entry if not timer._cancelled]
                if live:
                    kept[when] = live
            elif not entry._cancelled:
                kept[when] = entry
        timers_at.clear()
        timers_at.update(kept)
        scheduled = self._scheduled
        scheduled[:] = kept  # the deadlines left, heapified in place
        heapq.heapify(scheduled)
        self._timer_cancelled_count = 0

    def time(self) -> float:
        return _monotonic()

    # ------------------------------------------------------------------------------------
    # Futures and tasks
    # ------------------------------------------------------------------------------------

    def create_future(self) -> Any:
        if self._future_class is not Future or self._debug:
            return self._future_class(loop=self)
        # Future.__init__, inlined: it costs two frames (itself and loop.get_debug()), and
        # every stream read or lock wait that has to wait makes a future here.
        # tests/futures/test_futures.py checks that both ways give equal futures.
        fut = _new_handle(Future)
        fut._loop = self
        fut._state = _PENDING
        fut._result = None
        fut._exception = None
        fut._exception_tb = None
        fut._callback0 = None
        fut._context0 = None
        fut._more_callbacks = None
        fut._cancel_message = None
        fut._cancelled_exc = None
        fut._asyncio_future_blocking = False
        fut._tb_logger = None
        fut._source_traceback = None
        return fut

    def create_task(
        self,
        coro: Generator[Any, None, _T] | Awaitable[_T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
        **kwargs: Any,
    ) -> Any:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._task_factory is None:
            if self._task_class is Task:
                if kwargs:  # eager_start (3.12+), or a wrong keyword for Task to reject
                    task = Task(coro, loop=self, name=name, context=context, **kwargs)
                else:
                    task = Task(coro, loop=self, name=name, context=context)
            else:
                # The stdlib's Task: pass only what was given; 3.9's lacks context=.
                if name is not None:
                    kwargs["name"] = name
                if context is not None:
                    kwargs["context"] = context
                task = self._task_class(coro, loop=self, **kwargs)
            if self._debug and task._source_traceback:
                del task._source_traceback[-1]  # end at the caller's line, as asyncio
            return task
        if context is not None:
            kwargs["context"] = context
        task = self._task_factory(self, coro, **kwargs)
        if name is not None:
            try:
                task.set_name(name)
            except AttributeError:
                pass
        return task

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        return self._task_factory

    # ------------------------------------------------------------------------------------
    # Error handling
    # ------------------------------------------------------------------------------------

    def get_exception_handler(self) -> Callable[..., object] | None:
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., object] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log ``context`` to the "asyncio" logger the way asyncio's loop does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = False
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        current = self._current_handle
        if (
            "source_traceback" not in context
            and current is not None
            and current._source_traceback
        ):
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                text = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n" + text.rstrip()
            elif key == "handle_traceback":
                text = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n" + text.rstrip()
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # The handler itself failed; don't let that escape into the loop.
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            handler_context = _context_of(context) if sys.version_info >= (3, 12) else None
            if handler_context is not None:
                handler_context.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler",
                    exc_info=True,
                )

    # ------------------------------------------------------------------------------------
    # Debug mode
    # ------------------------------------------------------------------------------------

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = (
                sys.get_coroutine_origin_tracking_depth()
            )
            sys.set_coroutine_origin_tracking_depth(10)
        else:
            sys.set_coroutine_origin_tracking_depth(
                self._coroutine_origin_tracking_saved_depth or 0
            )
        self._coroutine_origin_tracking_enabled = enabled

    # ------------------------------------------------------------------------------------
    # Asynchronous generators
    # ------------------------------------------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                "loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator that is still open (``aclose()``), concurrently."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[ag.aclose() for ag in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of asynchronous "
                        f"generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # ------------------------------------------------------------------------------------
    # Hooks for the service mixins (signals.py overrides them)
    # ------------------------------------------------------------------------------------

    def _signals_enter_run(self) -> Any:
        return None

    def _signals_leave_run(self, state: Any) -> None:
        pass

    def _signals_close(self) -> None:
        pass


def _context_of(context: dict[str, Any]) -> contextvars.Context | None:
    """3.12+: the exception handler runs in the context of the object it is about."""
    for key in ("task", "future", "handle"):
        obj = context.get(key)
        if obj is None:
            continue
        get_context = getattr(obj, "get_context", None)
        if get_context is not None:
            return get_context()  # type: ignore[no-any-return]
        ctx = getattr(obj, "_context", None)
        if isinstance(ctx, contextvars.Context):
            return ctx
    return None


def _format_handle(handle: Any) -> str:
    """A slow callback that is a task step is reported as the task.  A ready item that is
    not a Handle (a Task queued itself before debug mode was switched on) is its own repr."""
    if isinstance(handle, (asyncio.Task, Task)):
        return repr(handle)
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, (asyncio.Task, Task)):
        return repr(task)
    return str(handle)
