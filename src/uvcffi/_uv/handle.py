"""The base of every handle wrapper, and its lifetime protocol.

libuv's rule: a handle's memory may only be reused from its close callback on.  In uvcffi
that memory belongs to C (allocated in ``uvc_*_new``, freed in the glue's close callback),
so Python cannot break the rule by dropping a reference; what Python must get right is
the *id*.  The protocol, for subclasses:

1. ``__init__`` calls :meth:`_register` first (the id must exist before C stores it), then
   the glue's ``uvc_*_new``, then :meth:`_finish_init` with what it returned.
2. Events for the handle arrive as :meth:`_on_event`; after :meth:`close`, none but the
   final ``CLOSED`` arrives, which calls :meth:`_on_closed` and frees the id.
3. After :meth:`close`, ``_ptr`` is None and every method that would touch C raises.
"""

from __future__ import annotations

from typing import Any

from .._errors import check
from .._ffi import ffi, lib
from .loop import UVLoop


class UVHandle:
    __slots__ = ("_uvloop", "_ptr", "_id", "__weakref__")

    def __init__(self, uvloop: UVLoop) -> None:
        self._uvloop = uvloop
        self._ptr: Any = None
        self._id = 0

    def _register(self) -> Any:
        if self._uvloop.closed:
            raise RuntimeError("the libuv loop is closed")
        self._id = self._uvloop.register(self)
        return self._uvloop.ptr

    def _finish_init(self, ptr: Any, err: int) -> None:
        if ptr == ffi.NULL:
            self._uvloop.release(self._id)
            self._id = 0
            check(err)
            raise MemoryError
        self._ptr = ptr

    def _ensure_alive(self) -> Any:
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Close the handle; its id is freed when libuv's close callback has run."""
        ptr = self._ptr
        if ptr is not None:
            self._ptr = None
            lib.uvc_close(ptr)

    def ref(self) -> None:
        lib.uv_ref(self._ensure_alive())

    def unref(self) -> None:
        """An unreferenced handle does not keep ``uv_run`` from returning."""
        lib.uv_unref(self._ensure_alive())

    def is_active(self) -> bool:
        return self._ptr is not None and bool(lib.uv_is_active(self._ptr))

    def _on_event(self, kind: int, a: int, b: int) -> None:
        raise NotImplementedError

    def _on_closed(self) -> None:
        """Called once, when the close callback has run and the memory is gone."""
