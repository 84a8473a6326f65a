"""Constants and helpers shared by the Future/Task tests."""

import asyncio
import gc
import sys

import pytest

from uvcffi import _futures as uv_futures
from uvcffi import _tasks as uv_tasks

PY311 = sys.version_info >= (3, 11)
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
IS_PYPY = sys.implementation.name == 'pypy'

_C_FUTURE = getattr(asyncio.futures, '_CFuture', None)
_C_TASK = getattr(asyncio.tasks, '_CTask', None)
NO_C_REASON = (
    'no C accelerator on PyPy' if IS_PYPY else 'asyncio C accelerator (_asyncio) is missing'
)

# name -> (Future class, Task class); None when unavailable here.
IMPLS = {
    'c': (_C_FUTURE, _C_TASK),
    'py': (asyncio.futures._PyFuture, asyncio.tasks._PyTask),
    'uv': (uv_futures.Future, uv_tasks.Task),
}



def need_311_semantics(stdlib_before_311, what='3.11 semantics'):
    """Skip when the implementation under test is an asyncio older than 3.11."""
    __tracebackhide__ = True  # report the skip at the test, not here
    if stdlib_before_311:
        pytest.skip(f'asyncio {sys.version_info[0]}.{sys.version_info[1]} predates {what}')


def full_gc():
    """Collect until finalisers ran: PyPy runs chained finalisers one collection apart."""
    for _ in range(4 if IS_PYPY else 1):
        gc.collect()
