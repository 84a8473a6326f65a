"""Measure what the finaliser choices in uvcffi._futures / uvcffi._tasks cost.

Not a test (pytest does not collect it).  Run it from the repository root:

    PYTHONPATH=src python tests/futures/bench_finalizers.py

It prints nanoseconds per operation for

* a Future's life (create, set_result, result, drop) and its exception path
  (create, set_exception, exception, drop), for asyncio's C and Python Futures,
  ours, and ours plus an asyncio-style ``__del__`` (the design we did not take);
* a Task's life on asyncio's loop (create, one step, drop) for asyncio's Tasks,
  ours, and ours without ``__del__`` (what the "destroyed pending" report costs);
* the pieces a guard object would add per task instead of ``__del__``.
"""

import asyncio
import sys
import timeit
import types

from uvcffi._futures import Future
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


def _task_without_del():
    ns = {k: v for k, v in Task.__dict__.items()
          if k != '__del__' and not isinstance(v, types.MemberDescriptorType)}
    # Same MRO position, same slots (inherited): only __del__ is gone.
    return type('Task', (Future,), {**ns, '__slots__': Task.__slots__})


class Guard:
    __slots__ = ('task',)

    def __init__(self, task):
        self.task = task

    def __del__(self):
        if self.task is not None:
            pass


def per_op(stmt, number):
    best = min(timeit.repeat(stmt, number=number, repeat=7))
    return best / number * 1e9


def bench_futures(loop):
    classes = {'asyncio C Future': getattr(asyncio.futures, '_CFuture', None),
               'asyncio _PyFuture': asyncio.futures._PyFuture,
               'uvcffi Future (no __del__)': Future,
               'uvcffi Future subclass': FutureSubclass,
               'uvcffi Future subclass + __del__': FutureWithDel}
    exc = ValueError()
    print(f'{"future":32} {"result path":>12} {"exception path":>15}')
    for name, cls in classes.items():
        if cls is None:
            continue

        def ok(cls=cls):
            f = cls(loop=loop)
            f.set_result(1)
            f.result()

        def bad(cls=cls):
            f = cls(loop=loop)
            f.set_exception(exc)
            f.exception()

        print(f'{name:32} {per_op(ok, N):10.0f}ns {per_op(bad, N):13.0f}ns')


def bench_tasks(loop):
    classes = {'asyncio C Task': getattr(asyncio.tasks, '_CTask', None),
               'asyncio _PyTask': asyncio.tasks._PyTask,
               'uvcffi Task (__del__)': Task,
               'uvcffi Task without __del__': _task_without_del()}
    batch = 2000

    async def noop():
        return None

    print(f'{"task":32} {"create+run+drop":>16}')
    for name, cls in classes.items():
        if cls is None:
            continue

        def run_batch(cls=cls):
            tasks = [cls(noop(), loop=loop) for _ in range(batch)]
            loop.run_until_complete(tasks[-1])
            for t in tasks:
                t.result()

        rounds = max(1, N // batch // 4)
        print(f'{name:32} {per_op(run_batch, rounds) / batch:14.0f}ns')

    def guard_cycle():
        g = Guard(object())
        g.task = None

    print(f'{"a guard object instead (alloc+disarm+finaliser)":48} '
          f'{per_op(guard_cycle, N):6.0f}ns per task')


def main():
    loop = asyncio.new_event_loop()
    try:
        print(sys.version.split()[0], sys.implementation.name)
        bench_futures(loop)
        bench_tasks(loop)
    finally:
        loop.close()


if __name__ == '__main__':
    main()
