"""Measure what the finaliser choices in uvcffi._futures / uvcffi._tasks cost.

Not a test (pytest does not collect it).  Run it from the repository root:

    PYTHONPATH=src python tests/futures/bench_finalizers.py
    PYTHONPATH=src python tests/futures/bench_finalizers.py "uvcffi Task with a guard object"

(the second form times one Task variant alone in its process; on PyPy that is
the only trustworthy way, as the JIT and the GC carry work from one variant
over into the next).

It prints nanoseconds per operation for

* a Future's life (create, set_result, result, drop) and its exception path
  (create, set_exception, exception, drop), for asyncio's C and Python Futures,
  ours, and ours plus an asyncio-style ``__del__`` (the design we did not take);
* a Task's life on asyncio's loop (create, one step, drop) for asyncio's Tasks
  and ours: as shipped (``__del__``), with no finaliser at all (the floor), and
  with a guard object armed per task and disarmed when it finishes (the
  alternative we did not take).
"""

import asyncio
import sys
import timeit
import types

from uvcffi._futures import Future, _TracebackLogger
from uvcffi._tasks import Task

N = 200_000 if sys.implementation.name != 'pypy' else 2_000_000


class FutureSubclass(Future):
    """Ours, subclassed: the baseline for FutureWithDel."""

    __slots__ = ()


class FutureWithDel(Future):
    """Ours, plus the per-instance finaliser asyncio.Future has."""

    __slots__ = ()

    def __del__(self):
        if self._tb_logger is None:
            return


class Guard:
    """What a guard object would be: armed per task, disarmed when it is done."""

    __slots__ = ('task',)

    def __init__(self, task):
        self.task = task

    def __del__(self):
        task = self.task
        if task is not None and task._state == 'PENDING' and task._log_destroy_pending:
            pass  # the real one would report "destroyed but pending" here


def _task_variants():
    """Our Task as shipped (with __del__), and copies differing only in the finaliser."""
    ns = {k: v for k, v in Task.__dict__.items()
          if k != '__del__' and not isinstance(v, types.MemberDescriptorType)}
    ns['__slots__'] = Task.__slots__
    ns['_new_tb_logger'] = _TracebackLogger
    neither = type('Task', (Future,), ns)

    class WithGuard(neither):
        __slots__ = ('_guard',)

        def __init__(self, coro, *, loop=None):
            self._guard = Guard(self)
            super().__init__(coro, loop=loop)

        def _Task__step(self, exc=None, _eager=False):
            neither._Task__step(self, exc, _eager)
            if self._state != 'PENDING':
                self._guard.task = None
                self._guard = None

    return {'uvcffi Task (__del__, as shipped)': Task,
            'uvcffi Task, no finaliser at all': neither,
            'uvcffi Task with a guard object': WithGuard}


def interleaved(cases, number, rounds=9):
    """Best ns per call of each case, the cases taking turns (fair to a JIT, and
    to a machine whose load changes while we measure)."""
    best = {name: float('inf') for name in cases}
    for fn in cases.values():  # warm-up
        timeit.timeit(fn, number=max(1, number // 10))
    for _ in range(rounds):
        for name, fn in cases.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e9)
    return best


def bench_futures(loop):
    classes = {'asyncio C Future': getattr(asyncio.futures, '_CFuture', None),
               'asyncio _PyFuture': asyncio.futures._PyFuture,
               'uvcffi Future (no __del__)': Future,
               'uvcffi Future subclass': FutureSubclass,
               'uvcffi Future subclass + __del__': FutureWithDel}
    classes = {k: v for k, v in classes.items() if v is not None}
    exc = ValueError()

    def ok(cls):
        def run():
            f = cls(loop=loop)
            f.set_result(1)
            f.result()
        return run

    def bad(cls):
        def run():
            f = cls(loop=loop)
            f.set_exception(exc)
            f.exception()
        return run

    ok_ns = interleaved({k: ok(v) for k, v in classes.items()}, N // 5)
    bad_ns = interleaved({k: bad(v) for k, v in classes.items()}, N // 5)
    print(f'{"future":34} {"result path":>12} {"exception path":>15}')
    for name in classes:
        print(f'{name:34} {ok_ns[name]:10.0f}ns {bad_ns[name]:13.0f}ns')


def bench_tasks(loop):
    classes = {'asyncio C Task': getattr(asyncio.tasks, '_CTask', None),
               'asyncio _PyTask': asyncio.tasks._PyTask,
               **_task_variants()}
    classes = {k: v for k, v in classes.items() if v is not None}
    batch = 1000

    async def noop():
        return None

    def life(cls):
        def run():
            tasks = [cls(noop(), loop=loop) for _ in range(batch)]
            loop.run_until_complete(tasks[-1])
            for t in tasks:
                t.result()
        return run

    ns = interleaved({k: life(v) for k, v in classes.items()}, max(1, N // batch // 20))
    print(f'{"task":34} {"create+run+drop":>16}')
    for name in classes:
        print(f'{name:34} {ns[name] / batch:14.0f}ns')


def bench_one_task_class(loop, name):
    """Only one Task variant in this process: no JIT or GC spill-over from others."""
    cls = {**_task_variants(), 'asyncio _PyTask': asyncio.tasks._PyTask}[name]
    batch = 1000

    async def noop():
        return None

    def run():
        tasks = [cls(noop(), loop=loop) for _ in range(batch)]
        loop.run_until_complete(tasks[-1])
        for t in tasks:
            t.result()

    ns = interleaved({name: run}, max(1, N // batch // 10), rounds=15)[name]
    print(f'{name:34} {ns / batch:14.0f}ns')


def main():
    loop = asyncio.new_event_loop()
    try:
        if len(sys.argv) > 1:  # e.g. "uvcffi Task with a guard object"
            bench_one_task_class(loop, sys.argv[1])
            return
        print(sys.version.split()[0], sys.implementation.name)
        bench_futures(loop)
        bench_tasks(loop)
    finally:
        loop.close()


if __name__ == '__main__':
    main()
