"""uvcffi: a fast, drop-in asyncio event loop built on libuv through cffi.

Use it like asyncio::

    import uvcffi
    uvcffi.run(main())                                         # like asyncio.run
    asyncio.run(main(), loop_factory=uvcffi.new_event_loop)    # Python 3.12+
    with asyncio.Runner(loop_factory=uvcffi.new_event_loop) as runner: ...  # 3.11+

This module only re-exports; the layers live in private modules (docs/design.md):
``_uv`` wraps libuv, ``_loop`` builds asyncio's loop on it, ``_futures``/``_tasks`` are
our Future and Task, ``_runner`` is ``run``/``Runner``.
"""

from __future__ import annotations

from ._futures import Future as Future
from ._loop.loop import Loop as Loop
from ._policy import EventLoopPolicy as EventLoopPolicy
from ._policy import install as install
from ._runner import Runner as Runner
from ._runner import new_event_loop as new_event_loop
from ._runner import run as run
from ._tasks import Task as Task
from ._uv import LIBUV_VERSION as LIBUV_VERSION

__version__ = "0.1.0"

__all__ = [
    "LIBUV_VERSION",
    "EventLoopPolicy",
    "Future",
    "Loop",
    "Runner",
    "Task",
    "install",
    "new_event_loop",
    "run",
]
