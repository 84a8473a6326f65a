"""Closing, closed-loop errors, exception handling, debug mode, async generators."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time

import pytest


def test_closed_loop_refuses_everything(loop_factory):
    loop = loop_factory()
    loop.close()
    assert loop.is_closed()
    loop.close()  # closing twice is allowed
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_at(1, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_in_executor(None, print)


def test_close_running_loop_refused(loop):
    async def main():
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()

    loop.run_until_complete(main())


def test_timer_handle_cancel_after_close_is_harmless(loop_factory):
    loop = loop_factory()
    h = loop.call_later(10, lambda: None)
    loop.close()
    h.cancel()
    assert h.cancelled()


def test_call_soon_threadsafe_racing_close_never_crashes(loop_factory):
    for _ in range(20):
        loop = loop_factory()
        stop = threading.Event()

        def hammer(loop=loop, stop=stop):
            while not stop.is_set():
                try:
                    loop.call_soon_threadsafe(lambda: None)
                except RuntimeError:
                    return

        t = threading.Thread(target=hammer)
        t.start()
        time.sleep(0.002)
        loop.close()
        stop.set()
        t.join()


def test_exception_in_callback_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))

    def bad():
        raise ZeroDivisionError("in callback")

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["message"].startswith("Exception in callback")
    assert isinstance(ctx["handle"], asyncio.Handle)


def test_exception_handler_get_set_and_type_check(loop):
    assert loop.get_exception_handler() is None

    def handler(lp, ctx):
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError, match="A callable object or None is expected"):
        loop.set_exception_handler("not callable")


def test_default_exception_handler_logs(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler(
            {"message": "something broke", "exception": KeyError("k"), "extra": 42}
        )
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert "something broke" in records[0].getMessage()
    assert "extra: 42" in records[0].getMessage()
    assert records[0].exc_info[0] is KeyError


def test_failing_custom_handler_is_reported_not_raised(loop, caplog):
    def broken(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(broken)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "original"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Unhandled error in exception handler" in text


def test_keyboard_interrupt_in_callback_propagates(loop):
    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()


def test_debug_mode_flag(loop):
    assert loop.get_debug() in (True, False)
    loop.set_debug(True)
    assert loop.get_debug()
    loop.set_debug(False)
    assert not loop.get_debug()


def test_debug_from_environment(loop_factory, monkeypatch):
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    loop = loop_factory()
    try:
        assert loop.get_debug()
    finally:
        loop.close()
    monkeypatch.delenv("PYTHONASYNCIODEBUG")
    loop = loop_factory()
    try:
        assert loop.get_debug() == bool(sys.flags.dev_mode)
    finally:
        loop.close()


def test_debug_mode_refuses_calls_from_other_threads(loop):
    loop.set_debug(True)
    errors = []

    def from_thread():
        for call in (
            lambda: loop.call_soon(lambda: None),
            lambda: loop.call_later(1, lambda: None),
            lambda: loop.call_at(1, lambda: None),
        ):
            try:
                call()
            except RuntimeError as exc:
                errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)  # the thread-safe one still works

    loop.call_soon(lambda: threading.Thread(target=from_thread).start())
    loop.run_forever()
    assert len(errors) == 3
    assert all("Non-thread-safe operation" in e for e in errors)


def test_debug_mode_checks_callbacks(loop):
    loop.set_debug(True)

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        loop.call_soon(coro_fn)
    with pytest.raises(TypeError, match="a callable object was expected by call_at"):
        loop.call_later(0, 42)


def test_debug_mode_warns_about_slow_callbacks(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.05)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    messages = [r.getMessage() for r in caplog.records]
    assert any("Executing" in m and "took" in m for m in messages), messages


def test_debug_mode_records_source_traceback(loop):
    loop.set_debug(True)
    handle = loop.call_soon(lambda: None)
    assert handle._source_traceback
    assert handle._source_traceback[-1].name == "test_debug_mode_records_source_traceback"
    handle.cancel()


def test_never_awaited_coroutine_origin_in_debug(loop):
    loop.set_debug(True)

    async def main():
        async def child():
            pass

        coro = child()
        assert coro.cr_origin is not None or sys.implementation.name == "pypy"
        coro.close()

    loop.run_until_complete(main())


def test_shutdown_asyncgens_finalizes_open_generators(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append("closed")

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        return g

    g = loop.run_until_complete(main())
    assert finalized == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == ["closed"]
    del g


def test_asyncgen_finalizer_hook_closes_collected_generator(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append("closed")

    async def main():
        g = agen()
        await g.__anext__()
        del g
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert finalized == ["closed"]


def test_asyncgen_first_iterated_after_shutdown_warns(loop):
    async def agen():
        yield 1

    loop.run_until_complete(loop.shutdown_asyncgens())

    async def main():
        g = agen()
        with pytest.warns(ResourceWarning):
            await g.__anext__()
        await g.aclose()

    loop.run_until_complete(main())


def test_asyncgen_hooks_restored_after_run(loop):
    before = sys.get_asyncgen_hooks()
    seen = []
    loop.call_soon(lambda: seen.append(sys.get_asyncgen_hooks()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen[0] != before
    assert sys.get_asyncgen_hooks() == before


def test_debug_mode_task_source_traceback_ends_at_caller(loop):
    loop.set_debug(True)

    async def coro():
        pass

    task = loop.create_task(coro())
    here = "test_debug_mode_task_source_traceback_ends_at_caller"
    assert task._source_traceback[-1].name == here
    loop.run_until_complete(task)
