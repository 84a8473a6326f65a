"""Fixtures running every Future/Task test against several implementations.

As CPython's own test_asyncio does, each test is written once and runs against

* futures: ``asyncio.Future`` (the C accelerator), ``asyncio.futures._PyFuture``
  and ``uvcffi._futures.Future``;
* tasks: ``asyncio.Task`` (C), ``asyncio.tasks._PyTask`` and
  ``uvcffi._tasks.Task``;

and on two event loops: asyncio's own and ``uvcffi.new_event_loop``.  Variants
that cannot exist here are skipped with the reason (``-ra`` prints it): the C
classes on PyPy, and the uvcffi loop while the package does not import.
"""

import asyncio
import faulthandler

import pytest

from ._support import IMPLS, NO_C_REASON, PY311


def _uv_loop_factory():
    """Return (factory, None) or (None, reason) for uvcffi.new_event_loop."""
    try:
        import uvcffi
    except Exception as exc:  # the cffi extension may not be built yet
        return None, f'uvcffi does not import yet ({type(exc).__name__}: {exc})'
    factory = getattr(uvcffi, 'new_event_loop', None)
    if factory is None:
        return None, 'uvcffi.new_event_loop does not exist yet'
    return factory, None


def pytest_report_header(config):
    missing = []
    if IMPLS['c'][0] is None:
        missing.append(f'C Future/Task ({NO_C_REASON})')
    factory, reason = _uv_loop_factory()
    if factory is None:
        missing.append(f'the uvcffi loop ({reason})')
    if missing:
        return 'tests/futures skips: ' + '; '.join(missing)
    return None


@pytest.fixture(params=['c', 'py', 'uv'], ids=['CFuture', 'PyFuture', 'UvFuture'])
def impl_name(request):
    return request.param


@pytest.fixture
def future_cls(request, impl_name):
    cls = IMPLS[impl_name][0]
    if cls is None:
        pytest.skip(NO_C_REASON)
    return cls


@pytest.fixture(params=['c', 'py', 'uv'], ids=['CTask', 'PyTask', 'UvTask'])
def task_impl(request):
    return request.param


@pytest.fixture
def task_cls(task_impl):
    cls = IMPLS[task_impl][1]
    if cls is None:
        pytest.skip(NO_C_REASON)
    return cls


@pytest.fixture
def task_future_cls(task_impl):
    """The Future class of the same family as ``task_cls``."""
    cls = IMPLS[task_impl][0]
    if cls is None:
        pytest.skip(NO_C_REASON)
    return cls


@pytest.fixture
def stdlib_before_311(request):
    """True when the implementation under test is asyncio's and asyncio is < 3.11."""
    names = request.fixturenames
    impl = None
    if 'task_impl' in names:
        impl = request.getfixturevalue('task_impl')
    elif 'impl_name' in names:
        impl = request.getfixturevalue('impl_name')
    return impl in ('c', 'py') and not PY311


# No test here needs more than a second; a hang (a loop that never wakes up, a
# task that is never stepped) dumps every thread's stack and exits instead of
# eating CI's time budget.
HANG_TIMEOUT = 120


@pytest.fixture(autouse=True)
def hang_watchdog():
    faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(params=['aio', 'uv'], ids=['aioloop', 'uvloop'])
def loop_kind(request):
    return request.param


@pytest.fixture
def loop(request, loop_kind):
    if loop_kind == 'aio':
        new_loop = asyncio.new_event_loop
    else:
        new_loop, reason = _uv_loop_factory()
        if new_loop is None:
            pytest.skip(reason)
    lp = new_loop()
    if 'task_cls' in request.fixturenames:
        cls = request.getfixturevalue('task_cls')

        def factory(loop, coro, **kwargs):
            return cls(coro, loop=loop, **kwargs)

        lp.set_task_factory(factory)
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        try:
            _cancel_leftovers(lp)
            lp.run_until_complete(lp.shutdown_asyncgens())
            lp.run_until_complete(lp.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            lp.close()


def _cancel_leftovers(lp):
    tasks = [t for t in asyncio.all_tasks(lp) if not t.done()]
    if not tasks:
        return
    for t in tasks:
        t.cancel()
    lp.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


@pytest.fixture
def reports(loop):
    """Contexts passed to the loop's exception handler during the test."""
    seen = []
    loop.set_exception_handler(lambda lp, context: seen.append(context))
    return seen


@pytest.fixture
def run(loop):
    """run(coro_or_future, timeout=5) -> result, on the test's loop."""

    def runner(aw, timeout=5.0):
        async def guarded():
            return await asyncio.wait_for(aw, timeout)

        return loop.run_until_complete(guarded())

    return runner
