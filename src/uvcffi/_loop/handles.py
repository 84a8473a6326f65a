"""asyncio's ``Handle`` and ``TimerHandle``, specialised for this loop.

They subclass asyncio's classes, so ``isinstance(h, asyncio.TimerHandle)`` holds and
``cancel``, ``cancelled``, ``_run`` (with its exception reporting) and ``repr`` behave as
asyncio's; only construction is replaced, because asyncio's ``__init__`` asks the loop
for its debug flag through a method call on every ``call_soon``.

A TimerHandle is armed on a pooled libuv timer (``uvcffi._uv.timer.TimerPool``) under its
own id; ``_timer`` holds that timer while it is armed, and is None once it fired or was
cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import TYPE_CHECKING, Any, Callable

from .._uv.timer import timer_stop as _timer_stop

if TYPE_CHECKING:
    from .core import LoopCore

_copy_context = contextvars.copy_context


class Handle(asyncio.Handle):
    __slots__ = ()

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: LoopCore,
        context: contextvars.Context | None = None,
    ) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop._debug:
            self._source_traceback = asyncio.format_helpers.extract_stack(sys._getframe(1))
        else:
            self._source_traceback = None


class TimerHandle(asyncio.TimerHandle):
    __slots__ = ("_timer", "_tid")

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: LoopCore,
        context: contextvars.Context | None = None,
    ) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop._debug:
            self._source_traceback = asyncio.format_helpers.extract_stack(sys._getframe(1))
        else:
            self._source_traceback = None
        self._when = when
        self._scheduled = False
        self._timer: Any = None
        self._tid = 0

    def cancel(self) -> None:
        if self._cancelled:
            return
        ptr = self._timer
        if ptr is not None:
            # LoopCore._timer_handle_cancelled, inlined: stop the libuv timer, give it
            # back to the pool and free the id (no event for it can be pending, see
            # _uv/loop.py).
            loop = self._loop
            self._timer = None
            self._scheduled = False
            _timer_stop(ptr)
            pool = loop._timers
            if len(pool.free) < pool.max_free:
                pool.free.append(ptr)
            else:
                pool.put(ptr)
            uv = loop._uv
            uv.objects[self._tid] = None
            uv.free_ids.append(self._tid)
        # asyncio.Handle.cancel: mark cancelled, drop the callback and its arguments.
        self._cancelled = True
        if self._loop._debug:
            self._repr = repr(self)
        self._callback = None
        self._args = None
