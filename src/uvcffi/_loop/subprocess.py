"""Subprocesses on ``uv_spawn``: ``subprocess_exec``/``subprocess_shell``.

(Being written: until then the methods raise NotImplementedError naming themselves.)
"""

from __future__ import annotations

from .core import LoopCore


class SubprocessMixin(LoopCore):
    pass
