"""uvcffi.run / uvcffi.Runner, and the "Coroutines and Tasks" documentation's examples.

The examples keep the documentation's proportions with shorter delays.  Elapsed-time
checks use generous bounds: they tell "one after the other" (sum of delays) from
"concurrently" (the longest delay), not how fast the machine is.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import uvcffi

UNIT = 0.1  # the documentation's "1 second"


async def say_after(delay, what, out):
    await asyncio.sleep(delay)
    out.append(what)


def test_hello_world():
    out = []

    async def main():
        out.append("hello")
        await asyncio.sleep(UNIT)
        out.append("world")

    uvcffi.run(main())
    assert out == ["hello", "world"]


def test_awaiting_coroutines_runs_them_one_after_the_other():
    out = []

    async def main():
        await say_after(UNIT, "hello", out)
        await say_after(2 * UNIT, "world", out)

    t0 = time.monotonic()
    uvcffi.run(main())
    elapsed = time.monotonic() - t0
    assert out == ["hello", "world"]
    assert 3 * UNIT <= elapsed < 3 * UNIT + 1.0


def test_tasks_run_concurrently():
    out = []

    async def main():
        task1 = asyncio.create_task(say_after(UNIT, "hello", out))
        task2 = asyncio.create_task(say_after(2 * UNIT, "world", out))
        await task1
        await task2

    t0 = time.monotonic()
    uvcffi.run(main())
    elapsed = time.monotonic() - t0
    assert out == ["hello", "world"]
    assert 2 * UNIT <= elapsed < 3 * UNIT


def test_taskgroup_runs_concurrently():
    if not hasattr(asyncio, "TaskGroup"):
        pytest.skip("asyncio.TaskGroup is new in Python 3.11")
    out = []

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(say_after(UNIT, "hello", out))
            tg.create_task(say_after(2 * UNIT, "world", out))

    t0 = time.monotonic()
    uvcffi.run(main())
    assert out == ["hello", "world"]
    assert time.monotonic() - t0 < 3 * UNIT


def test_calling_a_coroutine_function_runs_nothing():
    ran = []

    async def nested():
        ran.append(True)
        return 42

    async def main():
        coro = nested()  # not awaited
        assert asyncio.iscoroutine(coro)
        coro.close()
        return await nested()

    assert uvcffi.run(main()) == 42
    assert ran == [True]


def test_nested_awaited_returns_42_and_task_wrapping_it():
    async def nested():
        return 42

    async def main():
        first = await nested()
        task = asyncio.create_task(nested())
        assert isinstance(task, uvcffi.Task)
        return first, await task

    assert uvcffi.run(main()) == (42, 42)


def test_awaiting_a_future_resolved_elsewhere():
    async def set_after(fut, delay, value):
        await asyncio.sleep(delay)
        fut.set_result(value)

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        assert isinstance(fut, uvcffi.Future)
        loop.create_task(set_after(fut, UNIT / 10, "... world"))
        return await fut

    assert uvcffi.run(main()) == "... world"


def test_awaiting_a_future_resolved_from_another_thread():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        threading.Timer(0.02, loop.call_soon_threadsafe, (fut.set_result, "thread")).start()
        return await fut

    assert uvcffi.run(main()) == "thread"


def test_run_inside_running_loop_raises():
    async def inner():
        return 1

    async def main():
        coro = inner()
        with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
            uvcffi.run(coro)
        coro.close()

    uvcffi.run(main())
    asyncio.run(main())  # also refused inside the stdlib's loop


def test_run_rejects_non_coroutine():
    with pytest.raises(ValueError, match="a coroutine was expected"):
        uvcffi.run(lambda: None)


@pytest.mark.parametrize("debug", [True, False])
def test_debug_is_seen_by_the_loop(debug):
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert uvcffi.run(main(), debug=debug) is debug


def test_run_uses_a_new_uvcffi_loop_each_time_and_closes_it():
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())

    uvcffi.run(main())
    uvcffi.run(main())
    assert all(isinstance(lp, uvcffi.Loop) for lp in loops)
    assert loops[0] is not loops[1]
    assert all(lp.is_closed() for lp in loops)


def test_open_async_generator_is_finalized():
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append("finalized")

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        main.keep = g  # still referenced when run() finishes

    uvcffi.run(main())
    assert finalized == ["finalized"]
    del main.keep


def test_default_executor_threads_are_gone_after_run():
    threads = []

    def work():
        threads.append(threading.current_thread())

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, work) for _ in range(8)))

    uvcffi.run(main())
    assert threads
    assert not any(t.is_alive() for t in threads)


def test_leftover_tasks_are_cancelled():
    cancelled = []

    async def leftover():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.create_task(leftover())
        await asyncio.sleep(0)

    uvcffi.run(main())
    assert cancelled == [True]


def test_leftover_task_exception_is_reported(caplog):
    async def failing():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ValueError("during shutdown")

    async def main():
        asyncio.create_task(failing())
        await asyncio.sleep(0)

    uvcffi.run(main())
    assert "unhandled exception during asyncio.run() shutdown" in caplog.text


def test_exception_propagates():
    async def main():
        raise KeyError("from main")

    with pytest.raises(KeyError, match="from main"):
        uvcffi.run(main())


def test_runner_context_manager_reuses_loop():
    async def get_loop():
        return asyncio.get_running_loop()

    with uvcffi.Runner() as runner:
        loop = runner.get_loop()
        assert runner.run(get_loop()) is loop
        assert runner.run(get_loop()) is loop
    assert loop.is_closed()
    coro = get_loop()
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.run(coro)
    coro.close()


def test_runner_context_argument():
    var = contextvars.ContextVar("var", default="unset")

    async def set_it():
        var.set("set")

    async def read():
        return var.get()

    with uvcffi.Runner() as runner:
        runner.run(set_it())
        # Without an explicit context, runs share the runner's context (asyncio.Runner).
        assert runner.run(read()) == "set"
        assert runner.run(read(), context=contextvars.Context()) == "unset"


def test_runner_with_loop_factory():
    made = []

    def factory():
        loop = uvcffi.new_event_loop()
        made.append(loop)
        return loop

    async def main():
        return asyncio.get_running_loop()

    with uvcffi.Runner(loop_factory=factory, debug=True) as runner:
        loop = runner.run(main())
        assert loop.get_debug()
    assert made == [loop]


def test_runner_close_is_idempotent():
    runner = uvcffi.Runner()
    runner.close()  # never initialised: nothing to do
    runner = uvcffi.Runner()
    runner.get_loop()
    runner.close()
    runner.close()


def test_asyncio_runner_with_uvcffi_loop_factory():
    if not hasattr(asyncio, "Runner"):
        pytest.skip("asyncio.Runner is new in Python 3.11")

    async def main():
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=uvcffi.new_event_loop) as runner:
        assert runner.run(main()) is uvcffi.Loop


def test_asyncio_run_with_loop_factory():
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.run(loop_factory=) is new in Python 3.12")

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=uvcffi.new_event_loop) is uvcffi.Loop


def test_event_loop_policy_and_install():
    old = asyncio.get_event_loop_policy()
    try:
        uvcffi.install()
        assert isinstance(asyncio.get_event_loop_policy(), uvcffi.EventLoopPolicy)
        loop = asyncio.new_event_loop()
        assert isinstance(loop, uvcffi.Loop)
        loop.close()

        async def main():
            return type(asyncio.get_running_loop())

        assert asyncio.run(main()) is uvcffi.Loop
    finally:
        asyncio.set_event_loop_policy(old)


def test_stdlib_futures_option():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        task = asyncio.current_task()
        return type(fut), type(task)

    with uvcffi.Runner(loop_factory=lambda: uvcffi.new_event_loop(stdlib_futures=True)) as r:
        fut_type, task_type = r.run(main())
    assert fut_type is asyncio.Future
    assert task_type is asyncio.Task


def _run_script(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run Python code (or arguments) in a child with this interpreter and environment."""
    return subprocess.run(
        [sys.executable, *args] if args else [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=timeout,
    )


def test_python_dash_m_uvcffi_runs_script_on_uvcffi(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import asyncio, sys
        async def main():
            return type(asyncio.get_running_loop()).__module__, sys.argv[1:]
        print(asyncio.run(main()))
        print(__name__)
    """))
    proc = _run_script("", "-m", "uvcffi", str(script), "a", "b")
    assert proc.returncode == 0, proc.stderr
    assert "('uvcffi._loop.loop', ['a', 'b'])" in proc.stdout
    assert "__main__" in proc.stdout


def test_ctrl_c_cancels_main_task_and_raises_keyboard_interrupt():
    code = textwrap.dedent("""
        import asyncio, os, signal, sys, time, uvcffi
        cancelled = []
        async def main():
            loop = asyncio.get_running_loop()
            loop.call_later(0.1, os.kill, os.getpid(), signal.SIGINT)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
        t0 = time.monotonic()
        try:
            uvcffi.run(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt", cancelled, time.monotonic() - t0 < 5)
    """)
    proc = _run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "KeyboardInterrupt [True] True"


def test_ctrl_c_with_sleeping_loop_is_handled_at_once():
    # A signal arriving while uv_run sleeps must not wait for the next unrelated event.
    code = textwrap.dedent("""
        import asyncio, os, signal, threading, time, uvcffi
        async def main():
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            await asyncio.get_running_loop().create_future()   # never completes
        t0 = time.monotonic()
        try:
            uvcffi.run(main())
        except KeyboardInterrupt:
            print("interrupted after", round(time.monotonic() - t0, 1) < 3)
    """)
    proc = _run_script(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted after True"


def test_pending_task_destroyed_is_reported():
    # The report comes from our Task when it is garbage collected while pending.
    contexts = []

    async def never():
        await asyncio.get_running_loop().create_future()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        task = loop.create_task(never())
        await asyncio.sleep(0)
        # Drop every reference to the task and the future it waits on.
        task._fut_waiter = None
        del task
        gc.collect()

    with uvcffi.Runner() as runner:
        runner.run(main())
        gc.collect()
    assert any("Task was destroyed but it is pending" in c.get("message", "") for c in contexts)


def test_signal_handler_and_wakeup_fd_restored_after_run():
    before_int = signal.getsignal(signal.SIGINT)

    async def main():
        assert signal.getsignal(signal.SIGINT) is not before_int

    uvcffi.run(main())
    assert signal.getsignal(signal.SIGINT) is before_int
    fd = signal.set_wakeup_fd(-1)
    assert fd == -1
