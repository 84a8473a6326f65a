"""The workload registry.

A workload is a small class registered with ``@register``.  The runner knows nothing about
individual workloads: it asks the registry for names and sizes, and the worker process calls,
on a fresh loop, for a warm-up run and then for the timed run::

    w = cls()
    w.setup(loop, n)          # not timed: build inputs, start servers, ...
    ops = w.run(loop, n)      # timed with time.perf_counter(); returns the op count
    w.verify(loop)            # not timed: raise WrongResult if the loop got it wrong
    w.teardown(loop)          # not timed: stop servers, close sockets, ...

``run`` may already raise ``WrongResult`` (cheap checks); expensive checks, or checks that need
the loop to run on for a while (e.g. "no cancelled timer fires later"), belong in ``verify``.
The worker also records the process's user and system CPU time (getrusage) around ``run``.

Two class attributes change how the runner treats a workload: ``full_only`` keeps it out of
``run.py --quick`` unless it is named with ``--only``, and ``metric`` (a ``Metric``) makes
its result a value the workload measures itself (``self.value``, e.g. bytes of memory per
connection) instead of the time per op.

To add workloads (TCP echo, streams, UDP, HTTP with wrk, ...), add a module to this package
that defines ``@register``-ed classes; every module here is imported by ``load()``.  A
workload that needs something the machine may lack (a ``wrk`` binary, IPv6, ...) says so in
``unavailable()`` and is then reported as skipped instead of failing.
"""

import collections
import importlib
import pkgutil

REGISTRY = {}


class WrongResult(Exception):
    """The loop ran the workload but the result is wrong (a dropped callback, bad order...)."""


#: What a workload reports when it is not a time: ``name`` for the table ("RSS per
#: connection"), ``unit`` ("bytes"), and whether lower values are better.
Metric = collections.namedtuple("Metric", "name unit lower_is_better")


class Workload:
    #: Name used by --only and in the table.
    name = ""
    #: One line for --list and the README.
    doc = ""
    #: What one op is, for the table ("callback", "timer", "task", "round trip", ...).
    unit = "op"
    #: Sizes (the ``n`` passed to run) for --quick and for the full run.
    quick = 0
    full = 0
    #: Full run only: ``--quick`` leaves it out (shown as skipped) unless named with --only.
    full_only = False
    #: None: the result is the time per op (ns/op), from perf_counter around ``run``.  A
    #: ``Metric``: ``run`` (or ``verify``) sets ``self.value`` and the runner reports that
    #: instead (the time is still recorded in the JSON).
    metric = None
    #: Cap on the in-process warm-up (a fraction of n; None: the runner's --warmup).
    warmup_fraction = None
    #: Set by the worker: the callable that made ``loop``, for workloads that need new loops.
    loop_factory = None
    #: A workload may put its own figures here (a JSON-able dict), e.g. the network
    #: workloads' client CPU; the runner keeps it with the sample and summarises
    #: ``client_util``.
    extra = None

    @classmethod
    def unavailable(cls):
        """Return None when the workload can run here, else a short reason."""
        return None

    @classmethod
    def unavailable_at(cls, n):
        """Like ``unavailable``, knowing the size ``n`` of this run (e.g. a descriptor
        limit); the runner calls this one."""
        return cls.unavailable()

    def setup(self, loop, n):
        pass

    def run(self, loop, n):
        raise NotImplementedError

    def verify(self, loop):
        pass

    def teardown(self, loop):
        pass


def register(cls):
    """Class decorator: add a Workload subclass to the registry under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"workload name missing or duplicated: {cls.name!r}")
    if cls.quick <= 0 or cls.full <= 0:
        raise ValueError(f"workload {cls.name}: quick and full sizes must be > 0")
    REGISTRY[cls.name] = cls
    return cls


_loaded = False


def load():
    """Import every module of this package (which registers its workloads); return REGISTRY."""
    global _loaded
    if not _loaded:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return REGISTRY


def check(condition, message):
    """Raise WrongResult(message) unless condition holds."""
    if not condition:
        raise WrongResult(message)
