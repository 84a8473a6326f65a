"""``connect_read_pipe``/``connect_write_pipe`` on ``uv_pipe_t``.

(Being written: until then the methods raise NotImplementedError naming themselves.)
"""

from __future__ import annotations

from .core import LoopCore


class PipesMixin(LoopCore):
    pass
