"""Process handles (``uv_process_t``): a child started with ``uv_spawn``, reaped by libuv.

Spawning is one call into the glue (``uvc_spawn``), which builds libuv's options in C,
spawns, and frees them; the arguments and environment travel as NUL-separated bytes.
``glue/process.c`` says what the child gets and how ``close_fds``, ``pgid`` and ``umask``
are applied in it (a fork hook: libuv has no pre-exec callback).

Reaping.  libuv waits for its own children only (``waitpid(pid, WNOHANG)`` for each pid it
spawned, from its SIGCHLD watcher), so other code's ``os.waitpid`` on its own children is
unaffected; but code that waits for *any* child (``os.waitpid(-1, ...)``) steals libuv's
children and their EXIT events never come -- as with every per-pid child watcher.  The
EXIT event arrives once the child has been reaped; the owner then closes the handle (at
once: until then libuv still polls the pid).  libuv's SIGCHLD handler is a process-wide C
handler that ``signal.signal(SIGCHLD, ...)`` replaces, so the glue also watches each child
through a pidfd and reports the exit itself if libuv does not (``glue/process.c``).

Closing before the child exited.  libuv forgets the pid when its handle is closed, and
never reaps it.  Closing does not kill the child (a process is not a connection: it may be
meant to outlive its handle); instead :meth:`UVProcess.close` hands the pid to a reaper
thread, so the child never stays a zombie.  The reaper waits with ``waitid(WNOWAIT)``
(without reaping) and then reaps under a lock, so :meth:`UVProcess.kill` on an orphaned
child can never signal a pid that was reused.  ``UVLoop.close`` calls
:meth:`UVProcess.cancel_request` on every object it still knows, which orphans the
children whose handles are still open, so closing a loop early leaves no zombie either.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Callable, Union

from .._errors import exception_for
from .._ffi import ffi, lib
from .handle import UVHandle
from .loop import EV_EXIT, UVLoop
from .pipe import UVPipe

DETACHED: int = lib.UV_PROCESS_DETACHED
STDIO_IGNORE: int = lib.UVC_STDIO_IGNORE
STDIO_PIPE_IN: int = lib.UVC_STDIO_PIPE_IN
STDIO_PIPE_OUT: int = lib.UVC_STDIO_PIPE_OUT
STDIO_PIPE_DUPLEX: int = lib.UVC_STDIO_PIPE_DUPLEX

#: A stdio slot: None (ignore: /dev/null for 0-2), an fd to inherit at the slot's number,
#: or (UVPipe, kind) with kind one of STDIO_PIPE_IN/OUT/DUPLEX (libuv makes a socketpair).
StdioSlot = Union[None, int, "tuple[UVPipe, int]"]


def _joined(strings: Sequence[bytes], what: str) -> bytes:
    for s in strings:
        if b"\0" in s:
            raise ValueError(f"embedded null byte in {what}")
    return b"\0".join(strings) + b"\0"


class _Orphan:
    """A child whose handle was closed before it exited: the reaper thread owns it."""

    __slots__ = ("pid", "lock", "reaped", "status")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.lock = threading.Lock()
        self.reaped = False
        self.status: int | None = None

    def kill(self, signum: int) -> None:
        with self.lock:
            if self.reaped:
                raise ProcessLookupError(f"process {self.pid} has exited")
            os.kill(self.pid, signum)

    def reap(self) -> None:
        # Wait for the exit without reaping: until we do, the pid cannot be reused, so a
        # kill() holding the lock is always aimed at our child.
        lib.uvc_wait_exited(self.pid)
        with self.lock:
            self.reaped = True
            try:
                self.status = os.waitpid(self.pid, 0)[1]
            except ChildProcessError:
                pass  # someone else waited for it (os.waitpid(-1)): not a zombie either


def _start_reaper(orphan: _Orphan) -> None:
    thread = threading.Thread(
        target=orphan.reap, name=f"uvcffi-reaper-{orphan.pid}", daemon=True
    )
    try:
        thread.start()
    except RuntimeError:
        # Interpreter shutdown: no new threads.  Reap now if it is already done; else the
        # process is about to exit and init inherits (and reaps) the child.
        try:
            os.waitpid(orphan.pid, os.WNOHANG)
        except ChildProcessError:
            pass


class UVProcess(UVHandle):
    """A spawned child.  Spawning errors raise the matching OSError (FileNotFoundError for
    a missing program or cwd, PermissionError, ...).

    ``on_exit(exit_status, term_signal)`` is called (during event dispatch) once the child
    has been reaped; ``exited``, ``exit_status`` and ``term_signal`` are set before.
    """

    __slots__ = ("pid", "exited", "exit_status", "term_signal", "on_exit", "_orphan")

    def __init__(
        self,
        uvloop: UVLoop,
        file: bytes,
        args: Sequence[bytes],
        *,
        env: Sequence[bytes] | None = None,
        cwd: bytes | None = None,
        detached: bool = False,
        stdio: Sequence[StdioSlot] = (),
        close_fds: bool = False,
        new_session: bool = False,
        pgid: int = -1,
        umask: int = -1,
        on_exit: Callable[[int, int], object] | None = None,
    ) -> None:
        super().__init__(uvloop)
        self.pid = 0
        self.exited = False
        self.exit_status = 0
        self.term_signal = 0
        self.on_exit = on_exit
        self._orphan: _Orphan | None = None
        if not args:
            raise ValueError("args must not be empty (args[0] is the program's name)")
        if b"\0" in file:
            raise ValueError("embedded null byte in file")
        if cwd is not None and b"\0" in cwd:
            raise ValueError("embedded null byte in cwd")
        argbuf = _joined(args, "args")
        if env is None:
            envbuf, envc = ffi.NULL, -1
        else:
            envbuf, envc = _joined(env, "env"), len(env)
        n = len(stdio)
        kinds = ffi.new("int[]", n) if n else ffi.NULL
        pipes: Any = ffi.NULL
        for i, slot in enumerate(stdio):
            if slot is None:
                kinds[i] = STDIO_IGNORE
            elif isinstance(slot, int):
                if slot < 0:
                    raise ValueError(f"bad file descriptor {slot} for stdio slot {i}")
                kinds[i] = slot
            else:
                pipe, kind = slot
                if kind not in (STDIO_PIPE_IN, STDIO_PIPE_OUT, STDIO_PIPE_DUPLEX):
                    raise ValueError(f"bad pipe kind {kind!r} for stdio slot {i}")
                if pipes == ffi.NULL:
                    pipes = ffi.new("void*[]", n)
                pipes[i] = pipe._ensure_alive()
                kinds[i] = kind
        flags = DETACHED if detached else 0
        loop_ptr = self._register()
        err = ffi.new("int*")
        ptr = lib.uvc_spawn(
            loop_ptr, self._id, file, argbuf, len(args), envbuf, envc,
            ffi.NULL if cwd is None else cwd, flags, n, kinds, pipes,
            1 if close_fds else 0, 1 if new_session else 0, pgid, umask, err,
        )
        self._finish_init(ptr, err[0])
        self.pid = lib.uvc_process_pid(ptr)

    def _on_event(self, kind: int, a: int, b: int) -> None:
        if kind == EV_EXIT:
            self.exited = True
            self.exit_status = a
            self.term_signal = b
            callback = self.on_exit
            if callback is not None:
                callback(a, b)

    @property
    def returncode(self) -> int | None:
        """asyncio's convention: the exit status, or -signal; None until it exited."""
        if not self.exited:
            return None
        return -self.term_signal if self.term_signal else self.exit_status

    def kill(self, signum: int) -> None:
        """Send ``signum``; ProcessLookupError once the child has been reaped."""
        if self.exited:
            raise ProcessLookupError(f"process {self.pid} has exited")
        orphan = self._orphan
        if orphan is not None:
            orphan.kill(signum)
            return
        code = lib.uvc_process_kill(self._ensure_alive(), signum)
        if code < 0:
            raise exception_for(code)

    def close(self) -> None:
        """Close the handle; a child still running is handed to a reaper, not killed."""
        ptr = self._ptr
        if ptr is None:
            return
        self._ptr = None
        lib.uvc_process_close(ptr)  # the handle and its exit watch
        if not self.exited and self.pid:
            orphan = self._orphan = _Orphan(self.pid)
            _start_reaper(orphan)

    def cancel_request(self) -> None:
        """``UVLoop.close``'s hook: the loop is going away, orphan a running child."""
        self.close()


__all__ = [
    "DETACHED",
    "STDIO_IGNORE",
    "STDIO_PIPE_DUPLEX",
    "STDIO_PIPE_IN",
    "STDIO_PIPE_OUT",
    "UVProcess",
]
