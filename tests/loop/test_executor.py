"""run_in_executor, the default executor and its shutdown."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time

import pytest

from conftest import skip_oracle_if


def test_run_in_executor_returns_result_from_worker_thread(loop):
    async def main():
        return await loop.run_in_executor(None, lambda a, b: (a + b, threading.get_ident()), 2, 3)

    value, ident = loop.run_until_complete(main())
    assert value == 5
    assert ident != threading.get_ident()


def test_run_in_executor_propagates_exception(loop):
    def fail():
        raise LookupError("from thread")

    with pytest.raises(LookupError, match="from thread"):
        loop.run_until_complete(loop.run_in_executor(None, fail))


def test_run_in_executor_with_explicit_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert loop.run_until_complete(loop.run_in_executor(pool, sum, [1, 2])) == 3


def test_many_concurrent_executor_calls(loop):
    async def main():
        return await asyncio.gather(*(loop.run_in_executor(None, pow, i, 2) for i in range(200)))

    assert loop.run_until_complete(main()) == [i * i for i in range(200)]


def test_set_default_executor_type_checked(loop):
    skip_oracle_if(loop, sys.version_info < (3, 11), "only a DeprecationWarning before 3.11")
    with pytest.raises(TypeError):
        loop.set_default_executor(object())
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom")
    loop.set_default_executor(pool)

    name = loop.run_until_complete(
        loop.run_in_executor(None, lambda: threading.current_thread().name)
    )
    assert name.startswith("custom")
    loop.run_until_complete(loop.shutdown_default_executor())


def test_shutdown_default_executor_joins_threads(loop):
    started = []

    def work():
        started.append(threading.current_thread())
        time.sleep(0.05)

    loop.run_until_complete(loop.run_in_executor(None, work))
    loop.run_until_complete(loop.shutdown_default_executor())
    assert not started[0].is_alive()
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, work)


def test_to_thread(loop):
    async def main():
        return await asyncio.to_thread(lambda: threading.get_ident())

    assert loop.run_until_complete(main()) != threading.get_ident()


def test_run_coroutine_threadsafe(loop):
    async def add(a, b):
        await asyncio.sleep(0.01)
        return a + b

    result = []

    def from_thread():
        result.append(asyncio.run_coroutine_threadsafe(add(1, 2), loop).result(timeout=5))
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=from_thread)
    t.start()
    loop.run_forever()
    t.join()
    assert result == [3]
