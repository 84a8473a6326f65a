"""Unix signals: ``add_signal_handler`` and prompt Ctrl-C, through a wakeup fd.

Why not libuv's signal handles
------------------------------
asyncio's signal API sits on Python's ``signal`` module: handlers set with
``signal.signal`` are what the rest of the process sees, ``remove_signal_handler``
restores Python's defaults, and Python's own SIGINT handler raises KeyboardInterrupt.
libuv's ``uv_signal_t`` installs C handlers of its own, behind Python's back.  So uvcffi
does what asyncio does: the Python-level handler is a no-op, and the C-level handler that
CPython (and PyPy) install writes the signal number to the fd given to
``signal.set_wakeup_fd``.  We watch the other end of that pipe with a libuv poll
handle (both belong to the loop's kit, see kit.py).

Why a wakeup fd is set whenever the loop runs in the main thread
---------------------------------------------------------------
libuv restarts ``epoll_wait`` after EINTR, so a signal alone does not make ``uv_run``
return: without the wakeup fd, Ctrl-C or a SIGTERM handler would wait for the next
unrelated event, possibly forever.  With it, the byte written by the C handler is an
event, ``uv_run`` returns, and the Python handler runs at the next bytecode -- at once.
``run_forever`` therefore installs our wakeup fd for its duration when it runs in the main
thread, and puts the previous one back when it returns (unless signal handlers are
registered, which keep ours installed as in asyncio).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
import threading
from typing import Any, Callable

from .core import LoopCore
from .handles import Handle


def _sighandler_noop(signum: int, frame: Any) -> None:
    """The Python-level handler: the wakeup fd does the work."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class SignalMixin(LoopCore):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._signal_handlers: dict[int, Handle] = {}
        # The wakeup pipe and its poll handle come with the loop's kit (kit.py): they are
        # made once and reused by later loops, so a loop made for one short run pays
        # nothing for them.
        kit = self._kit
        assert kit is not None
        kit.on_signal_readable = self._on_wakeup_readable

    # -- the wakeup pipe -------------------------------------------------------------------

    def _wakeup_fd(self) -> int:
        kit = self._kit
        if kit is None:
            raise RuntimeError("Event loop is closed")
        return kit.signal_wfd

    def _on_wakeup_readable(self) -> None:
        kit = self._kit
        if kit is None:
            return
        while True:
            try:
                data = os.read(kit.signal_rfd, 4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                self._handle_signal(signum)

    def _handle_signal(self, signum: int) -> None:
        handle = self._signal_handlers.get(signum)
        if handle is None:
            return  # e.g. SIGINT with Python's default handler: it raises by itself
        if handle._cancelled:
            self.remove_signal_handler(signum)
        else:
            self._ready.append(handle)

    # -- run_forever's hooks --------------------------------------------------------------

    def _signals_enter_run(self) -> Any:
        if not _in_main_thread():
            return None
        try:
            return signal.set_wakeup_fd(self._wakeup_fd())
        except (ValueError, OSError):
            return None  # not the main interpreter, or the fd was refused

    def _signals_leave_run(self, state: Any) -> None:
        if state is None or self._signal_handlers:
            return
        try:
            signal.set_wakeup_fd(state)
        except (ValueError, OSError):
            pass

    def _signals_close(self) -> None:
        if sys.is_finalizing():
            self._signal_handlers = {}
        for signum in list(self._signal_handlers):
            self.remove_signal_handler(signum)

    # -- public API ------------------------------------------------------------------------

    def _check_signal(self, sig: Any) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if not _in_main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        try:
            signal.set_wakeup_fd(self._wakeup_fd())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        handle = Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _sighandler_noop)
            # Let system calls in other threads be restarted rather than fail with EINTR.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError):
                    pass
            if exc.errno == errno.EINVAL:  # a signal that cannot be caught
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        self._poll_for_signals()

    def _poll_for_signals(self) -> None:
        # Our handlers run only once the pipe is read, so while there are any every
        # iteration polls, even one libuv would otherwise skip as quiet (kit.py).
        kit = self._kit
        if kit is not None:
            kit.uv.poll_always = bool(self._signal_handlers)

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)
        handlers = self._signal_handlers
        if sig not in handlers:
            return False
        del handlers[sig]
        self._poll_for_signals()
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        if not handlers and not self.is_running():
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError):
                pass
        return True

