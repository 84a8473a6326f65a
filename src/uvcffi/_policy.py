"""An event loop policy, for the Pythons and frameworks that still select loops that way.

Policies are deprecated from Python 3.14 (and go away in 3.16); there, prefer
``uvcffi.run(main())`` or ``asyncio.run(main(), loop_factory=uvcffi.new_event_loop)``.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from asyncio import events as _events

from ._loop.loop import Loop
from ._runner import new_event_loop

# Renamed with a leading underscore in 3.14, when policies were deprecated.
if hasattr(_events, "BaseDefaultEventLoopPolicy"):
    _BasePolicy = _events.BaseDefaultEventLoopPolicy
else:
    _BasePolicy = _events._BaseDefaultEventLoopPolicy


class EventLoopPolicy(_BasePolicy):  # type: ignore[misc, valid-type]
    """The default policy, but every new event loop is a uvcffi :class:`Loop`."""

    def _loop_factory(self) -> Loop:
        return new_event_loop()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}>"


def install() -> None:
    """Make uvcffi the loop that ``asyncio.new_event_loop()`` and ``asyncio.run()`` use."""
    if sys.version_info >= (3, 14):
        warnings.warn(
            "uvcffi.install() relies on event loop policies, which are deprecated since "
            "Python 3.14; use uvcffi.run(main()) or "
            "asyncio.run(main(), loop_factory=uvcffi.new_event_loop)",
            DeprecationWarning,
            stacklevel=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(EventLoopPolicy())
