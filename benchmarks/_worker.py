"""One measurement in a fresh process; run by benchmarks/run.py, not by hand.

    python benchmarks/_worker.py probe LOOPSPEC
    python benchmarks/_worker.py measure LOOPSPEC WORKLOAD N WARMUP_N

LOOPSPEC is ``module:callable``.  The last line of stdout is ``@@result`` and one JSON object:
probe:   ok, error, loop_class, future_class, task_class, version, python
measure: ok, seconds, ops, n, error, cpu_user, cpu_sys (this process's CPU seconds over the
         timed run), extra (the workload's own figures, or null), value (a metric workload's
         result, or null)
"""

import gc
import json
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MARK = "@@result "

if __name__ == "__main__":
    # Run as a script, Python put benchmarks/ first on sys.path: import it as a package from the
    # repository root instead, and let the user's loop modules come from the current directory,
    # as `python -m` would.
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path[0] = ROOT
    sys.path.insert(0, os.getcwd())


def resolve(spec):
    """'package.module:attr.attr' -> the object."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"loop spec must be module:callable, not {spec!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj


def describe(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


def version_of(obj):
    """Version of the distribution that defines obj's class ('stdlib' for asyncio)."""
    top = type(obj).__module__.split(".")[0]
    if top in ("asyncio", "_asyncio"):
        return "stdlib"
    mod = sys.modules.get(top)
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            from importlib import metadata

            version = metadata.version(top)
        except Exception:
            version = "?"
    return f"{top} {version}"


def package_dir(obj):
    """Directory of the top-level package that defines obj's class (which copy was measured)."""
    top = sys.modules.get(type(obj).__module__.split(".")[0])
    path = getattr(top, "__file__", None)
    return os.path.dirname(path) if path else None


def qualname(obj):
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def close_loop(loop):
    try:
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_asyncgens())
            shutdown = getattr(loop, "shutdown_default_executor", None)
            if shutdown is not None:
                loop.run_until_complete(shutdown())
    finally:
        loop.close()


def probe(spec):
    import asyncio

    factory = resolve(spec)
    loop = factory()
    try:
        fut = loop.create_future()

        async def coro():
            return 1

        task = loop.create_task(coro())
        loop.run_until_complete(task)
        info = {
            "loop_class": qualname(loop),
            "loop_package": package_dir(loop),
            "future_class": qualname(fut),
            "task_class": qualname(task),
            "version": version_of(loop),
            "asyncio_debug": bool(loop.get_debug()),
        }
        fut.cancel()
    finally:
        close_loop(loop)
    asyncio.set_event_loop(None)
    return info


def cpu_times():
    """(user, system) CPU seconds of this process, all threads, finer than os.times()' ticks."""
    try:
        import resource
    except ImportError:
        t = os.times()
        return t.user, t.system
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime


def once(cls, factory, loop, n):
    """Set up, run (timed), verify and tear down one instance; return its figures."""
    w = cls()
    w.loop_factory = factory
    w.setup(loop, n)
    try:
        gc.collect()
        cpu0 = cpu_times()
        t0 = time.perf_counter()
        ops = w.run(loop, n)
        seconds = time.perf_counter() - t0
        cpu1 = cpu_times()
        w.verify(loop)
    finally:
        w.teardown(loop)
    if not isinstance(ops, int) or ops <= 0:
        raise RuntimeError(f"workload returned {ops!r} ops")
    value = None
    if cls.metric is not None:
        value = getattr(w, "value", None)
        if not isinstance(value, (int, float)):
            raise RuntimeError(f"metric workload left value={value!r}")
    # getrusage around the timed run only: the server's user and system CPU per op of the
    # network workloads, where much of the cost is the kernel's and the wall time is shared
    # with the load generator.
    return {"seconds": seconds, "ops": ops, "cpu_user": cpu1[0] - cpu0[0],
            "cpu_sys": cpu1[1] - cpu0[1], "extra": w.extra, "value": value}


def measure(spec, name, n, warmup_n):
    import asyncio

    from benchmarks import workloads

    cls = workloads.load()[name]
    factory = resolve(spec)
    loop = factory()
    asyncio.set_event_loop(loop)
    errors = []

    def handler(_loop, context):
        # Any error reported to the loop fails the measurement; stop now rather than wait for
        # a future that will never complete.
        errors.append(context)
        loop.stop()

    def handler_error():
        ctx = errors[0]
        exc = ctx.get("exception")
        return workloads.WrongResult(
            f"{len(errors)} error(s) went to the loop's exception handler, first: "
            f"{ctx.get('message')}" + (f" ({describe(exc)})" if exc else ""))

    loop.set_exception_handler(handler)
    try:
        try:
            if warmup_n > 0:
                once(cls, factory, loop, warmup_n)
            figures = once(cls, factory, loop, n)
        except Exception:
            if errors:
                raise handler_error()
            raise
        if errors:
            raise handler_error()
    except BaseException:
        try:
            close_loop(loop)
        except Exception:
            pass  # report the first error, not this one
        raise
    close_loop(loop)  # a loop that cannot close cleanly fails the measurement
    asyncio.set_event_loop(None)
    figures["n"] = n
    return figures


def main(argv):
    result = {"ok": False, "error": None}
    try:
        if argv[:1] == ["probe"] and len(argv) == 2:
            result.update(probe(argv[1]))
        elif argv[:1] == ["measure"] and len(argv) == 5:
            result.update(measure(argv[1], argv[2], int(argv[3]), int(argv[4])))
        else:
            raise SystemExit(__doc__)
        result["ok"] = True
    except Exception as exc:
        result["error"] = describe(exc)
        result["traceback"] = traceback.format_exc(limit=-6)
    result["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    sys.stdout.flush()
    sys.stdout.write("\n" + MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
