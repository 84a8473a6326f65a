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
        if not self._cancelled:
            if self._timer is not None:
                self._loop._timer_handle_cancelled(self)
            # asyncio.Handle.cancel: mark cancelled, drop the callback and its arguments.
            asyncio.Handle.cancel(self)
