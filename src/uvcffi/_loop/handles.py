"""asyncio's ``Handle`` and ``TimerHandle``, specialised for this loop.

They subclass asyncio's classes, so ``isinstance(h, asyncio.TimerHandle)`` holds and
``cancel``, ``cancelled``, ``_run`` (with its exception reporting) and ``repr`` behave as
asyncio's; only construction is replaced, because asyncio's ``__init__`` asks the loop
for its debug flag through a method call on every ``call_soon``.

A pending TimerHandle is held by the loop under its deadline (``LoopCore._timers_at``, the
deadline itself in the heap ``LoopCore._scheduled``; see core.py, "Timers") with
``_scheduled`` true; cancelling it only marks it, as in asyncio.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio.format_helpers import _format_callback_source
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .core import LoopCore

_copy_context = contextvars.copy_context
# Python 3.13 gave _format_callback_source a debug parameter.
_FORMAT_TAKES_DEBUG = sys.version_info >= (3, 13)


def report_callback_error(handle: Any, exc: BaseException) -> None:
    """Report ``exc``, escaped from ``handle``'s callback, exactly as ``Handle._run`` does:
    for callbacks the loop runs inline or through a ready item with no ``_run`` of its own."""
    loop = handle._loop
    if _FORMAT_TAKES_DEBUG:
        source = _format_callback_source(handle._callback, handle._args, debug=loop._debug)
    else:
        source = _format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


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
    __slots__ = ()

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

    def cancel(self) -> None:
        if self._cancelled:
            return
        # asyncio.Handle.cancel, then the loop's count of cancelled heap entries (which it
        # may act on at once, so this entry must already read as cancelled).
        self._cancelled = True
        loop = self._loop
        if loop._debug:
            self._repr = repr(self)
        self._callback = None
        self._args = None
        if self._scheduled:
            # LoopCore._timer_handle_cancelled, inlined: count it for the next sweep.
            loop._timer_cancelled_count += 1
