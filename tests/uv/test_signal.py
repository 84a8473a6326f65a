"""UVSignal: libuv's own signal handling (test-signal.c).

libuv installs C-level handlers with sigaction and, when the last watcher of a signal
stops, resets it to SIG_DFL; Python's ``signal.getsignal`` does not see either change.
Every test therefore restores the dispositions it touched through ``signal.signal``, and
never sends a signal that no handler is watching (SIGUSR1's default action kills).
"""

from __future__ import annotations

import errno
import os
import signal

import pytest

from uvcffi._uv.loop import EV_SIGNAL, EVENT_WIDTH, RUN_NOWAIT, RUN_ONCE
from uvcffi._uv.signal import UVSignal
from uvcffi._uv.timer import UVTimer

from .uvutil import close_all, dispatch, run_until


@pytest.fixture(autouse=True)
def _restore_dispositions():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_catches_a_signal_sent_to_the_process(uvloop):
    calls = []
    sig = UVSignal(uvloop, calls.append)
    sig.start(signal.SIGUSR1)
    assert sig.signum == signal.SIGUSR1 and sig.is_active()
    os.kill(os.getpid(), signal.SIGUSR1)
    run_until(uvloop, lambda: calls)
    assert calls == [signal.SIGUSR1]
    # A second signal, after the first was handled, is a second event.
    os.kill(os.getpid(), signal.SIGUSR1)
    run_until(uvloop, lambda: len(calls) == 2)
    assert calls == [signal.SIGUSR1] * 2
    close_all(uvloop, sig)


def test_signal_event_carries_id_and_signum(uvloop):
    sig = UVSignal(uvloop, lambda signum: None)
    sig.start(signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGUSR1)
    watchdog = UVTimer(uvloop, lambda: None)
    watchdog.start(5000)
    seen = []
    while not seen:
        events = uvloop.run(RUN_ONCE)
        seen += [tuple(events[i : i + EVENT_WIDTH]) for i in range(0, len(events), EVENT_WIDTH)]
        assert all(e[1] != watchdog._id for e in seen), "timed out"
    assert seen == [(EV_SIGNAL, sig._id, signal.SIGUSR1, 0)]
    close_all(uvloop, sig, watchdog)


def test_every_watcher_of_a_signal_is_told_and_only_those(uvloop):
    calls = []
    first = UVSignal(uvloop, lambda signum: calls.append(("first", signum)))
    second = UVSignal(uvloop, lambda signum: calls.append(("second", signum)))
    other = UVSignal(uvloop, lambda signum: calls.append(("other", signum)))
    first.start(signal.SIGUSR1)
    second.start(signal.SIGUSR1)
    other.start(signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGUSR1)
    run_until(uvloop, lambda: len(calls) == 2)
    assert sorted(calls) == [("first", signal.SIGUSR1), ("second", signal.SIGUSR1)]

    # Stopping one watcher: SIGUSR1 is still handled (by `first`), and only it is told.
    second.stop()
    assert not second.is_active()
    os.kill(os.getpid(), signal.SIGUSR1)
    run_until(uvloop, lambda: len(calls) == 3)
    assert calls[2] == ("first", signal.SIGUSR1)
    for _ in range(3):
        dispatch(uvloop, uvloop.run(RUN_NOWAIT))
    assert len(calls) == 3
    close_all(uvloop, first, second, other)


def test_invalid_signal_number_raises_einval(uvloop):
    sig = UVSignal(uvloop, lambda signum: None)
    for bad in (0, -1, 1000):
        with pytest.raises(OSError) as info:
            sig.start(bad)
        assert info.value.errno == errno.EINVAL
    assert not sig.is_active()
    close_all(uvloop, sig)


def test_closed_signal_handle_rejects_calls(uvloop):
    sig = UVSignal(uvloop, lambda signum: None)
    sig.start(signal.SIGUSR1)
    sig.close()
    with pytest.raises(RuntimeError, match="UVSignal is closed"):
        sig.start(signal.SIGUSR1)
    with pytest.raises(RuntimeError, match="UVSignal is closed"):
        sig.stop()
    dispatch(uvloop, uvloop.run(RUN_NOWAIT))
