"""UDP: ``create_datagram_endpoint`` and its DatagramTransport, on ``uv_udp_t``.

(Being written: until then the method raises NotImplementedError naming itself.)
"""

from __future__ import annotations

from .core import LoopCore


class DatagramMixin(LoopCore):
    pass
