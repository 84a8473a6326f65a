"""add_signal_handler/remove_signal_handler, and that signals are handled at once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest


@pytest.fixture(autouse=True)
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(wakeup)


def test_signal_handler_runs_promptly_while_loop_sleeps(loop):
    got = []
    loop.add_signal_handler(signal.SIGUSR1, lambda *a: (got.append(a), loop.stop()), "arg")
    t0 = time.monotonic()
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    # Nothing else will ever wake the loop; a 5 s guard timer turns a hang into a failure.
    guard = loop.call_later(5, loop.stop)
    loop.run_forever()
    elapsed = time.monotonic() - t0
    guard.cancel()
    assert got == [("arg",)]
    assert elapsed < 2.5
    assert loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_remove_signal_handler(loop):
    assert not loop.remove_signal_handler(signal.SIGUSR2)
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR2)
    assert not loop.remove_signal_handler(signal.SIGUSR2)


def test_sigint_handler_restored_to_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_add_signal_handler_errors(loop):
    async def coro_fn():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, lambda: None)
    with pytest.raises(TypeError):
        loop.add_signal_handler("SIGUSR1", lambda: None)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, lambda: None)


def test_add_signal_handler_from_thread_refused(loop):
    errors = []

    def in_thread():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert len(errors) == 1


def test_close_removes_signal_handlers(loop_factory):
    loop = loop_factory()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_keyboard_interrupt_from_real_sigint_is_prompt(loop):
    async def sleeper():
        await asyncio.sleep(30)

    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    task = loop.create_task(sleeper())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(task)
    assert time.monotonic() - t0 < 5
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
