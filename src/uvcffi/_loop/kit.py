"""What a loop needs from libuv before it can run, and reusing it from one loop to the next.

Why closed loops leave their libuv state behind
-----------------------------------------------
A libuv loop is expensive to make and to free compared with what a short-lived asyncio
loop does with it: ``uv_loop_init`` creates an epoll instance, an io_uring instance (with
two shared mappings) and the signal pipe; our loop adds an eventfd (the ``uv_async_t``
that wakes it from other threads), the pipe that Python's signal machinery writes to
(see signals.py), watched by a poll handle, and the timer that wakes it for the earliest
pending ``call_later`` (see core.py, "Timers").  That is about ten system calls to create and
as many to free, and it was most of the cost of ``asyncio.run(...)`` or of a test that
makes a loop: a fresh uvcffi loop cost about twice a stdlib one, mostly in the kernel.

So a closed loop hands this *kit* -- the ``UVLoop`` and the three handles it always has --
to a small process-wide pool, and the next ``new_event_loop()`` takes it instead of making
one.  Everything else is gone as after a real close: the deadline timer is stopped, and
``UVLoop.recycle`` closes every other handle (transports, servers, pollers), waits for
every request, and frees every id but the kit's own.  The new owner sees an empty loop
with a fresh clock.

The rules that keep this invisible
----------------------------------
* The pool is small (:data:`POOL_SIZE`): it exists for loops made one after another, not
  to keep file descriptors around; a kit that finds the pool full is closed for real.
* A kit is only reused in the process that made it.  A forked child forgets the pool
  (``os.register_at_fork``; the pid stored in each kit covers forks that skip the hooks):
  its epoll and io_uring instances are shared with the parent, so the child must neither
  use nor close them through libuv.  The child keeps those few descriptors open, unused
  (they are close-on-exec).
* A loop that spawned processes is not recycled (``uvc_loop_recycle`` refuses): libuv's
  SIGCHLD watcher would stay active in a loop nobody runs.
* The pool is shared by threads: ``list.append`` and ``list.pop`` are atomic, so a kit is
  taken by exactly one loop; at worst the pool briefly holds one kit more than its size.
* A thread that still holds a closed loop cannot reach its successor: the closed loop
  drops its kit references (``call_soon_threadsafe`` raises on a closed loop first).
* Leak checks keep working: :attr:`Kit.base` is the handle counters when the kit was
  taken, so a loop's close statistics count only the handles of its own life, never the
  kit's own.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .._uv.async_ import UVAsync
from .._uv.loop import UVLoop
from .._uv.poll import READABLE, UVPoll
from .._uv.timer import UVTimer

#: Kits kept for the next loops; a process making loops one at a time needs one.
POOL_SIZE = 2

_pool: list[Kit] = []


def _forget_pool_in_child() -> None:
    # Not closed: closing would go through libuv, on kernel objects the parent still uses.
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _noop() -> None:
    pass


class Kit:
    """A libuv loop with the handles every asyncio loop of ours keeps open.

    ``wakeup`` is the async handle behind ``call_soon_threadsafe``; ``signal_rfd`` and
    ``signal_wfd`` are a non-blocking pipe for ``signal.set_wakeup_fd`` and ``signal_poll``
    watches its read end (unreferenced: waiting for a signal alone keeps no loop alive).
    ``on_signal_readable`` is the current owner's callback for that poll.  ``deadline`` is
    the one-shot timer armed for the owner's earliest timer; ``on_deadline`` is called when
    it fired.
    """

    __slots__ = (
        "uv", "wakeup", "signal_rfd", "signal_wfd", "signal_poll", "deadline", "pid", "base",
        "on_signal_readable", "on_deadline",
    )

    def __init__(self) -> None:
        self.uv = uv = UVLoop()
        self.pid = os.getpid()
        self.on_signal_readable: Callable[[], object] = _noop
        self.on_deadline: Callable[[], object] = _noop
        try:
            self.wakeup = UVAsync(uv, _noop)
            self.deadline = UVTimer(uv, self._deadline_fired)
            rfd, wfd = os.pipe()
            self.signal_rfd, self.signal_wfd = rfd, wfd
            try:
                os.set_blocking(rfd, False)
                os.set_blocking(wfd, False)
                self.signal_poll = poll = UVPoll(uv, rfd, self._signal_readable)
                poll.start(READABLE)
                poll.unref()
            except BaseException:
                os.close(rfd)
                os.close(wfd)
                raise
            # What the loop watches now is its own: an iteration that would find only this
            # has nothing to report, and libuv is not even asked (the glue's uvc_run).
            uv.mark_quiet(self.deadline)
        except BaseException:
            uv.close()
            raise
        self.base = self._counters()

    def _counters(self) -> tuple[int, int]:
        ptr = self.uv.ptr
        return (ptr.handles_opened, ptr.handles_closed)

    def _signal_readable(self, status: int, events: int) -> None:
        self.on_signal_readable()

    def _deadline_fired(self) -> None:
        self.on_deadline()

    def arm_deadline(self, due_ms: int) -> None:
        """(Re-)arm the deadline timer for ``due_ms`` on libuv's clock."""
        self.deadline.start_at(due_ms)

    def handles(self) -> list[Any]:
        return [self.wakeup, self.signal_poll, self.deadline]

    def life_stats(self, stats: dict[str, int]) -> dict[str, int]:
        """Close statistics counted from when this kit was taken, without its own handles."""
        opened0, closed0 = self.base
        stats = dict(stats)
        stats["handles_opened"] -= opened0
        stats["handles_closed"] -= closed0
        return stats

    def release(self) -> dict[str, int]:
        """The owning loop closed: recycle into the pool, or close; return its close stats."""
        self.on_signal_readable = _noop
        self.on_deadline = _noop
        if self.pid != os.getpid() or len(_pool) >= POOL_SIZE:
            return self._close()
        self.deadline.stop()
        ok, stats = self.uv.recycle(self.handles())
        if ok:
            self._drain_signal_pipe()
            _pool.append(self)
            return self.life_stats(stats)
        # Unfit for reuse: the handles the recycling closed count as forgotten still.
        final = self._close()
        final["handles_forgotten"] += stats["handles_forgotten"]
        return final

    def _close(self) -> dict[str, int]:
        # The kit's own handles are closed first, by their owner, so that the loop's
        # statistics do not count them as forgotten; then they are left out of the
        # counts, which are about the handles of the last owner's life.
        for handle in self.handles():
            handle.close()
        stats = self.life_stats(self.uv.close())
        stats["handles_closed"] -= len(self.handles())
        for fd in (self.signal_rfd, self.signal_wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        return stats

    def _drain_signal_pipe(self) -> None:
        """Bytes for signals that arrived after the last run belong to no loop now."""
        while True:
            try:
                if not os.read(self.signal_rfd, 4096):
                    return
            except OSError:  # EAGAIN: empty
                return


def take_kit() -> Kit:
    """A kit for a new loop: a recycled one if this process has one, else a new one."""
    while True:
        try:
            kit = _pool.pop()
        except IndexError:
            return Kit()
        if kit.pid != os.getpid():
            continue  # made before a fork that skipped the at-fork hooks: not ours to use
        kit.uv.update_time()  # libuv's cached clock is as old as the previous loop's end
        kit.uv.poll_always = False
        kit.base = kit._counters()
        return kit
