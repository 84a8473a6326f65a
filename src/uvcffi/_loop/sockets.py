"""File-descriptor readiness and the ``sock_*`` coroutines, on libuv poll handles.

(Being written: until then the methods raise NotImplementedError naming themselves.)
"""

from __future__ import annotations

from .core import LoopCore


class SocketMixin(LoopCore):
    pass
