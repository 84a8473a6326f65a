"""Write-side flow control, shared by every uvcffi transport (stream, pipe, datagram).

asyncio's contract: once the transport's write buffer grows above the high-water mark the
protocol's ``pause_writing()`` is called, and ``resume_writing()`` once it drains to the
low-water mark; both at most once per crossing, and an exception from either goes to the
loop's exception handler, not to the caller.  A transport mixing this in keeps
``_loop``, ``_protocol``, ``_protocol_paused``, ``_high_water`` and ``_low_water``, and
implements ``get_write_buffer_size()``.
"""

from __future__ import annotations

from typing import Any


class FlowControl:
    __slots__ = ()

    _loop: Any
    _protocol: Any
    _protocol_paused: bool
    _high_water: int
    _low_water: int

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError

    def _may_pause_protocol(self) -> bool:
        """Whether pause_writing() may be called now (the stream transport says no during
        sendfile, whose writes are its own)."""
        return True

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def _set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._set_write_buffer_limits(high=high, low=low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if (
            self._protocol_paused
            or self.get_write_buffer_size() <= self._high_water
            or not self._may_pause_protocol()
        ):
            return
        self._protocol_paused = True
        self._call_flow_callback("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False
            self._call_flow_callback("resume_writing")

    def _call_flow_callback(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
