"""The libuv loop, its event queue and the id registry.

How events reach Python
-----------------------
libuv calls our C callbacks from inside ``uv_run``; each appends four integers
``(kind, id, a, b)`` to the loop's queue and returns.  :meth:`UVLoop.run` runs one libuv
iteration and hands back the whole batch as one flat list (one ``ffi.unpack``), which the
caller walks in steps of :data:`EVENT_WIDTH`.

``id`` is how C refers to Python objects: every handle or request gets an integer from
:meth:`UVLoop.register`, stored in the C handle's ``data`` field, and ``objects[id]`` is
the Python object that owns it.  Ids are plain list indexes with a free list, because a
list lookup is the cheapest way from an integer back to an object (cheaper than
``ffi.from_handle`` and with no per-object allocation).

When an id may be reused
------------------------
An id must never be given to a new owner while libuv can still report an event carrying
it.  For a handle that means: not before its close callback has run, i.e. not before the
``CLOSED`` event is seen (a timer keeps its id while it is re-armed, fired or stopped).
For a request that completed, the event just dispatched was the last one, so the id is
free at once.  Because the dispatcher consumes a whole batch before any
user code runs, there is never a stale event in flight when user code frees an id.
"""

from __future__ import annotations

from typing import Any

from .._errors import check
from .._ffi import ffi, lib

EVENT_WIDTH: int = lib.UVC_EV_WIDTH

EV_CLOSED: int = lib.UVC_EV_CLOSED
EV_TIMER: int = lib.UVC_EV_TIMER
EV_ASYNC: int = lib.UVC_EV_ASYNC
EV_POLL: int = lib.UVC_EV_POLL
EV_SIGNAL: int = lib.UVC_EV_SIGNAL
EV_IDLE: int = lib.UVC_EV_IDLE
EV_CHECK: int = lib.UVC_EV_CHECK
EV_PREPARE: int = lib.UVC_EV_PREPARE
EV_GETADDRINFO: int = lib.UVC_EV_GETADDRINFO
EV_GETNAMEINFO: int = lib.UVC_EV_GETNAMEINFO
EV_READ: int = lib.UVC_EV_READ
EV_WRITE: int = lib.UVC_EV_WRITE
EV_CONNECT: int = lib.UVC_EV_CONNECT
EV_SHUTDOWN: int = lib.UVC_EV_SHUTDOWN
EV_CONNECTION: int = lib.UVC_EV_CONNECTION
EV_UDP_RECV: int = lib.UVC_EV_UDP_RECV
EV_UDP_SEND: int = lib.UVC_EV_UDP_SEND
EV_EXIT: int = lib.UVC_EV_EXIT

RUN_DEFAULT: int = lib.UV_RUN_DEFAULT
RUN_ONCE: int = lib.UV_RUN_ONCE
RUN_NOWAIT: int = lib.UV_RUN_NOWAIT

_EMPTY: list[int] = []

#: ``run_raw(ptr, mode)``: :meth:`UVLoop.run` without the method call, for the asyncio
#: loop's iteration; returns the event count, and :meth:`UVLoop.events` reads them.
run_raw = lib.uvc_run


class UVLoop:
    """A ``uv_loop_t`` (inside the glue's ``uvc_loop_t``) and its registry of ids.

    ``objects`` and ``free_ids`` are public because the asyncio loop's dispatcher
    manipulates them inline on its hot path; everyone else uses :meth:`register` and
    :meth:`release`.
    """

    __slots__ = ("_ptr", "objects", "free_ids", "_arena", "_recycle_cache", "__weakref__")

    def __init__(self) -> None:
        err = ffi.new("int*")
        ptr = lib.uvc_loop_new(err)
        check(err[0])
        self._ptr: Any = ptr
        # Id 0 is never handed out, so a zeroed `data` field can never look valid.
        self.objects: list[Any] = [None]
        self.free_ids: list[int] = []
        # One buffer object over the read arena, sliced for every read (one copy); made
        # on the first read, as the arena itself is.
        self._arena: Any = None
        self._recycle_cache: Any = None  # see recycle()

    @classmethod
    def closed_stand_in(cls) -> UVLoop:
        """A closed UVLoop that never had a libuv loop: for owners that gave theirs away."""
        self = cls.__new__(cls)
        self._ptr = None
        self.objects = [None]
        self.free_ids = []
        self._arena = None
        self._recycle_cache = None
        return self

    # -- ids ---------------------------------------------------------------------------

    def register(self, obj: Any) -> int:
        """Give ``obj`` an id; events carrying it will be dispatched to ``obj``."""
        if self.free_ids:
            oid = self.free_ids.pop()
            self.objects[oid] = obj
            return oid
        self.objects.append(obj)
        return len(self.objects) - 1

    def release(self, oid: int) -> None:
        """Free an id.  Only call this once no event for it can be pending (see above)."""
        self.objects[oid] = None
        self.free_ids.append(oid)

    # -- running -------------------------------------------------------------------------

    @property
    def ptr(self) -> Any:
        """The ``uvc_loop_t*`` for the handle modules of this package; None once closed."""
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def run(self, mode: int) -> list[int]:
        """Run one libuv iteration; return its events as a flat list of ints.

        ``RUN_ONCE`` blocks until something happens (releasing the GIL while it waits);
        ``RUN_NOWAIT`` polls once without blocking.
        """
        ptr = self._ptr
        n = lib.uvc_run(ptr, mode)
        if n:
            return ffi.unpack(ptr.events, n * EVENT_WIDTH)  # type: ignore[no-any-return]
        return _EMPTY

    def events(self, n: int) -> list[int]:
        """The ``n`` events of the last :data:`run_raw` call, as a flat list of ints."""
        return ffi.unpack(self._ptr.events, n * EVENT_WIDTH)  # type: ignore[no-any-return]

    def arena_bytes(self, offset: int, n: int) -> bytes:
        """The ``n`` bytes a READ event left at ``offset`` of the arena, as bytes."""
        arena = self._arena
        if arena is None:
            arena = self._arena = ffi.buffer(lib.uvc_arena(self._ptr), lib.uvc_arena_size())
        return arena[offset : offset + n]  # type: ignore[no-any-return]

    def now(self) -> int:
        """libuv's cached loop time in milliseconds (updated once per iteration)."""
        return lib.uvc_now(self._ptr)  # type: ignore[no-any-return]

    def update_time(self) -> None:
        lib.uvc_update_time(self._ptr)

    def mark_quiet(self, deadline: Any) -> None:
        """Record the loop's present state -- the fds it watches now, and ``deadline``, a
        :class:`UVTimer` that may be pending -- as quiet: from then on a ``RUN_NOWAIT``
        iteration in that state, which could report nothing, costs no system call (see
        ``uvc_run`` in the glue)."""
        lib.uvc_loop_mark_quiet(self._ptr, deadline._ensure_alive())

    @property
    def poll_always(self) -> bool:
        """True while every iteration must poll, quiet or not (see :meth:`mark_quiet`)."""
        return bool(self._ptr.poll_always)

    @poll_always.setter
    def poll_always(self, value: bool) -> None:
        self._ptr.poll_always = 1 if value else 0

    @property
    def polls_skipped(self) -> int:
        """``RUN_NOWAIT`` iterations skipped as quiet over the loop's life."""
        return self._ptr.polls_skipped  # type: ignore[no-any-return]

    def fork(self) -> None:
        """Re-initialise kernel state in a forked child (``uv_loop_fork``)."""
        check(lib.uvc_loop_fork(self._ptr))

    def counters(self) -> dict[str, int]:
        """Handles opened/closed and requests started/finished over the loop's life."""
        ptr = self._ptr
        return {
            "handles_opened": ptr.handles_opened,
            "handles_closed": ptr.handles_closed,
            "requests_started": ptr.requests_started,
            "requests_finished": ptr.requests_finished,
        }

    def recycle(self, keep: list[Any]) -> tuple[bool, dict[str, int]]:
        """Close every handle but the wrappers in ``keep``, wait for every request, and
        leave the loop ready for a new owner (``uvc_loop_recycle``).

        Returns ``(ok, stats)``, stats counted over the loop's whole life as for
        :meth:`close`.  When ``ok`` is false the loop is unfit for reuse (it has watched
        for child processes, or something would not close) and the caller must
        :meth:`close` it.  Either way every other wrapper is detached and every id but
        the kept ones is free, as after a close.
        """
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError("UVLoop is already closed")
        # The same few handles are kept at every recycling of a loop: their C array and
        # the id registry they leave behind are made once (a short-lived loop's close
        # is dominated by such small costs).
        cache = self._recycle_cache
        if cache is None or cache[0] != keep:
            objects_after: list[Any] = [None] * (max(obj._id for obj in keep) + 1)
            for obj in keep:
                objects_after[obj._id] = obj
            free_after = [i for i in range(len(objects_after) - 1, 0, -1)
                          if objects_after[i] is None]
            cache = self._recycle_cache = (
                list(keep), ffi.new("void*[]", [obj._ptr for obj in keep]),
                ffi.new("int64_t[5]"), objects_after, free_after,
            )
        _, handles, stats, objects_after, free_after = cache
        self._let_go(set(map(id, keep)))
        status = lib.uvc_loop_recycle(ptr, handles, len(keep), stats)
        # Only the kept wrappers still own ids; everything else may be handed out again.
        self.objects = list(objects_after)
        self.free_ids = list(free_after)
        return status == 0, dict(zip(_CLOSE_STATS, stats))

    def _let_go(self, kept: set[int]) -> None:
        """Before closing or recycling: cancel the requests still queued for the thread
        pool (or closing would wait for them) and detach every wrapper whose id is not in
        ``kept``, since the glue is about to close the handles and free their memory."""
        for obj in self.objects:
            if obj is None or id(obj) in kept:
                continue
            cancel = getattr(obj, "cancel_request", None)
            if cancel is not None:
                cancel()
            if hasattr(obj, "_ptr"):
                obj._ptr = None

    def close(self) -> dict[str, int]:
        """Close every handle, wait for every request, free the loop.

        Returns the final counters: ``handles_opened``, ``handles_closed``,
        ``handles_forgotten`` (still open when the loop closed, so closed here rather than by
        their owner), ``requests_started`` and ``requests_finished``.  Tests use them to
        check that nothing leaks.  The events produced while closing are discarded.
        """
        ptr = self._ptr
        if ptr is None:
            raise RuntimeError("UVLoop is already closed")
        self._let_go(set())
        self._ptr = None
        self._arena = None
        stats = ffi.new("int64_t[5]")
        check(lib.uvc_loop_close(ptr, stats))
        self.objects = [None]
        self.free_ids = []
        return dict(zip(_CLOSE_STATS, stats))


_CLOSE_STATS = (
    "handles_opened",
    "handles_closed",
    "handles_forgotten",
    "requests_started",
    "requests_finished",
)
