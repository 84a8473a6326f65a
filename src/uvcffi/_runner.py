"""``uvcffi.run`` and ``uvcffi.Runner``: asyncio's documented runner, on our own loop.

The runner is ours rather than a call into ``asyncio.Runner`` so that it behaves the same
on every Python uvcffi supports, PyPy 3.9 (which has no ``asyncio.Runner``) included.
Its life maps onto libuv's like this:

* first ``run()``: a new :class:`~uvcffi.Loop`, i.e. ``uv_loop_init`` and the loop's one
  always-on ``uv_async_t`` (for wake-ups from other threads);
* each ``run(coro)``: a Task for ``coro``, then ``run_until_complete``, i.e. ``uv_run``
  iterations (``ONCE`` when idle, ``NOWAIT`` when callbacks are ready) until the task is
  done;
* ``close()``: cancel the tasks left over and let them finish, finalize async generators
  (``shutdown_asyncgens``), join the default executor's threads
  (``shutdown_default_executor``) -- all still running ``uv_run`` -- and finally
  ``loop.close()``: every handle is ``uv_close``d, ``uv_run`` drains their close
  callbacks, and ``uv_loop_close`` frees the loop.

Ctrl-C follows asyncio: the first SIGINT cancels the main task, and ``run()`` then raises
KeyboardInterrupt instead of CancelledError; a second SIGINT raises KeyboardInterrupt at
once.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import signal
import sys
import threading
from asyncio import events as _events
from collections.abc import Coroutine
from typing import Any, Callable, TypeVar

from ._loop.loop import Loop

_T = TypeVar("_T")

#: How long close() waits for the default executor's threads (asyncio uses the same).
THREAD_JOIN_TIMEOUT = 300


def new_event_loop(*, stdlib_futures: bool = False) -> Loop:
    """Return a new uvcffi event loop: the loop factory for asyncio's runners and tools."""
    return Loop(stdlib_futures=stdlib_futures)


class _State(enum.Enum):
    CREATED = "created"
    INITIALIZED = "initialized"
    CLOSED = "closed"


class Runner:
    """Run coroutines in one event loop, then clean everything up (``asyncio.Runner``).

    ``debug`` sets the loop's debug mode (None keeps the default, which honours
    PYTHONASYNCIODEBUG and -X dev); ``loop_factory`` makes the loop (default:
    :func:`new_event_loop`, which also becomes the thread's current event loop).
    """

    def __init__(
        self,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self._state = _State.CREATED
        self._debug = debug
        self._loop_factory = loop_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None
        self._interrupt_count = 0
        self._set_event_loop = False

    def __enter__(self) -> Runner:
        self._lazy_init()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down and close the loop; a closed runner cannot be used again."""
        if self._state is not _State.INITIALIZED:
            return
        loop = self._loop
        assert loop is not None
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(_shutdown_default_executor(loop))
        finally:
            if self._set_event_loop:
                _events.set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = _State.CLOSED

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """Return the runner's loop, creating it if needed."""
        self._lazy_init()
        assert self._loop is not None
        return self._loop

    def run(
        self,
        coro: Coroutine[Any, Any, _T],
        *,
        context: contextvars.Context | None = None,
    ) -> _T:
        """Run ``coro`` to completion in the runner's loop and return its result."""
        if not asyncio.iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if _events._get_running_loop() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._lazy_init()
        loop = self._loop
        assert loop is not None
        if context is None:
            context = self._context
        assert context is not None
        task = _create_task_in_context(loop, coro, context)

        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            sigint_handler: Any = functools.partial(self._on_sigint, main_task=task)
            try:
                signal.signal(signal.SIGINT, sigint_handler)
            except ValueError:
                sigint_handler = None  # not the main interpreter
        else:
            sigint_handler = None

        self._interrupt_count = 0
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if self._interrupt_count > 0:
                uncancel = getattr(task, "uncancel", None)
                if uncancel is None or uncancel() == 0:
                    raise KeyboardInterrupt()
            raise
        finally:
            if sigint_handler is not None and signal.getsignal(signal.SIGINT) is sigint_handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _lazy_init(self) -> None:
        if self._state is _State.CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state is _State.INITIALIZED:
            return
        if self._loop_factory is None:
            self._loop = new_event_loop()
            _events.set_event_loop(self._loop)
            self._set_event_loop = True
        else:
            self._loop = self._loop_factory()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        self._context = contextvars.copy_context()
        self._state = _State.INITIALIZED

    def _on_sigint(self, signum: int, frame: Any, main_task: asyncio.Future[Any]) -> None:
        self._interrupt_count += 1
        if self._interrupt_count == 1 and not main_task.done():
            main_task.cancel()
            # The loop may be asleep in uv_run: make sure it looks at the cancellation.
            assert self._loop is not None
            self._loop.call_soon_threadsafe(lambda: None)
            return
        raise KeyboardInterrupt()


def run(
    main: Coroutine[Any, Any, _T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> _T:
    """Run coroutine ``main`` in a new uvcffi loop and return its result, like asyncio.run.

    It cannot be called while another event loop runs in the same thread.  It always
    creates a new loop and closes it at the end, after cancelling the tasks left over,
    finalizing async generators and joining the default executor's threads.
    """
    if _events._get_running_loop() is not None:
        raise RuntimeError("uvcffi.run() cannot be called from a running event loop")
    with Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)


def _create_task_in_context(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T], context: contextvars.Context
) -> asyncio.Future[_T]:
    try:
        return loop.create_task(coro, context=context)  # type: ignore[call-arg]
    except TypeError:
        if sys.version_info >= (3, 11):
            raise
        # Before 3.11 the stdlib's Task has no context= (a loop created with
        # stdlib_futures=True, or another loop's factory): create the task inside the
        # context instead, so it starts from a copy of it.
        return context.run(loop.create_task, coro)


async def _shutdown_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    if sys.version_info >= (3, 12) or isinstance(loop, Loop):
        await loop.shutdown_default_executor(THREAD_JOIN_TIMEOUT)  # type: ignore[call-arg]
    else:
        await loop.shutdown_default_executor()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
