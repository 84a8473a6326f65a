"""Stream handles (``uv_stream_t``): the common half of TCP and pipe handles.

Reading: after :meth:`UVStream.read_start`, every chunk libuv reads lands in the loop's
arena (or in the buffer given to :meth:`UVStream.set_read_buffer`) and arrives as a READ
event; :meth:`UVStream._on_event` hands ``on_read(data_or_None, error)`` the bytes, copied
once.  An error of ``None`` with data ``None`` never happens; end of stream is
``on_read(None, EOFError)``, as libuv's UV_EOF.

Writing: :meth:`try_write` takes what the kernel accepts now without blocking;
:meth:`write` queues a copy of the rest, completed in order by WRITE events.

Requests on a stream (write, shutdown, connect) carry the stream's own id: libuv completes
every request of a handle (with UV_ECANCELED if need be) before its close callback, and the
id is only released on CLOSED, so no request event can outlive its stream's id.
"""

from __future__ import annotations

from typing import Any, Callable

from .._errors import check, exception_for
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import EV_CONNECT, EV_CONNECTION, EV_READ, EV_SHUTDOWN, EV_WRITE, UVLoop

_UV_EOF: int = lib.UV_EOF

#: ``try_write(ptr, data, size)``: :meth:`UVStream.try_write` without the method call, also
#: for the transports' write path (the way ``run_raw`` serves the loop's iteration): the
#: caller passes the stream's ``_ptr``, read just before and only if not None (the memory
#: lives until the close callback, which cannot run in between), and completes a short
#: write with :meth:`UVStream.send_rest`.  Returns the count written or a libuv error.
try_write = lib.uvc_try_write
_write = lib.uvc_write


class UVStream(UVHandle):
    """Callbacks (set by the owner, all optional until used):

    * ``on_read(data, exc)``: ``data`` is bytes, or None with ``exc`` the error
      (``EOFError`` at end of stream);
    * ``on_read_into(nbytes)``: data went into the buffer given to set_read_buffer;
    * ``on_write(status)``: one queued write finished (0 or a negative libuv error);
    * ``on_shutdown(status)``, ``on_connect(status)``, ``on_connection(status)``.
    """

    __slots__ = (
        "on_read",
        "on_read_into",
        "on_write",
        "on_shutdown",
        "on_connect",
        "on_connection",
        "_rbuf",
    )

    def __init__(self, uvloop: UVLoop) -> None:
        super().__init__(uvloop)
        self.on_read: Callable[[bytes | None, BaseException | None], object] | None = None
        self.on_read_into: Callable[[int], object] | None = None
        self.on_write: Callable[[int], object] | None = None
        self.on_shutdown: Callable[[int], object] | None = None
        self.on_connect: Callable[[int], object] | None = None
        self.on_connection: Callable[[int], object] | None = None
        self._rbuf: Any = None

    def _on_event(self, kind: int, a: int, b: int) -> None:
        if kind == EV_READ:
            if a > 0:
                if b >= 0:
                    # UVLoop.arena_bytes, inlined: this runs once per chunk read, and the
                    # arena view exists from the loop's first read on.
                    arena = self._uvloop._arena
                    if arena is None:
                        data = self._uvloop.arena_bytes(b, a)
                    else:
                        data = arena[b : b + a]
                    self.on_read(data, None)  # type: ignore[misc]
                else:
                    self.on_read_into(a)  # type: ignore[misc]
            else:
                exc = EOFError() if a == _UV_EOF else exception_for(a)
                self.on_read(None, exc)  # type: ignore[misc]
        elif kind == EV_WRITE:
            self.on_write(a)  # type: ignore[misc]
        elif kind == EV_CONNECTION:
            self.on_connection(a)  # type: ignore[misc]
        elif kind == EV_SHUTDOWN:
            self.on_shutdown(a)  # type: ignore[misc]
        elif kind == EV_CONNECT:
            self.on_connect(a)  # type: ignore[misc]

    def read_start(self) -> None:
        check(lib.uvc_read_start(self._ensure_alive()))

    def read_stop(self) -> None:
        if self._ptr is not None:
            check(lib.uvc_read_stop(self._ptr))

    def set_read_buffer(self, buf: Any) -> None:
        """Read straight into ``buf`` (a writable buffer) until called with None."""
        ptr = self._ensure_alive()
        if buf is None:
            self._rbuf = None
            lib.uvc_stream_set_buffer(ptr, ffi.NULL, 0)
        else:
            cbuf = ffi.from_buffer(buf, require_writable=True)
            self._rbuf = cbuf  # keeps the buffer alive while libuv may write into it
            lib.uvc_stream_set_buffer(ptr, cbuf, len(cbuf))

    def try_write(self, data: bytes) -> int:
        """Write what can be written now; return the count (0 if it would block)."""
        return check(try_write(self._ensure_alive(), data, len(data)))

    def send(self, data: bytes) -> bool:
        """Write ``data`` now as far as the kernel takes it and queue a copy of the rest
        (``on_write`` reports it); return whether anything was queued.

        :meth:`try_write` and :meth:`write` in one call, for the transports' write path."""
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError(f"{type(self).__name__} is closed")
        size = len(data)
        n = try_write(ptr, data, size)
        if n == size:
            return False
        return self.send_rest(data, n)

    def send_rest(self, data: bytes, n: int) -> bool:
        """:meth:`send` after its ``try_write`` returned ``n`` (maybe an error, maybe done
        via :data:`try_write`): raise the error, or queue ``data[n:]``; return whether
        anything was queued."""
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if n < 0:
            raise exception_for(n)
        size = len(data)
        if n == size:
            return False
        rc = _write(ptr, self._id, data[n:] if n else data, size - n)
        if rc < 0:
            raise exception_for(rc)
        return True

    def write(self, data: bytes) -> None:
        """Queue a copy of ``data``; ``on_write`` is called when it has been written."""
        check(lib.uvc_write(self._ensure_alive(), self._id, data, len(data)))

    def write_queue_size(self) -> int:
        ptr = self._ptr
        return 0 if ptr is None else lib.uvc_write_queue_size(ptr)  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        check(lib.uvc_shutdown(self._ensure_alive(), self._id))

    def listen(self, backlog: int) -> None:
        check(lib.uvc_listen(self._ensure_alive(), backlog))

    def accept(self, client: UVStream) -> None:
        check(lib.uvc_accept(self._ensure_alive(), client._ensure_alive()))

    def fileno(self) -> int:
        return check(lib.uvc_fileno(self._ensure_alive()))

    def is_readable(self) -> bool:
        return self._ptr is not None and bool(lib.uvc_is_readable(self._ptr))

    def is_writable(self) -> bool:
        return self._ptr is not None and bool(lib.uvc_is_writable(self._ptr))
