"""Spawning and reaping short processes, side by side: uvcffi, asyncio, uvloop (if installed).

    python benchmarks/spawn.py [N=1000] [ROUNDS=5]     (PYTHONPATH=src for an in-place build)

Each round runs N sequential ``create_subprocess_exec`` + ``wait()`` of /bin/true, then N
of ``/bin/echo x`` with ``communicate()`` (checking the output), on every loop in turn;
medians per process and ratios are printed.  A stopgap until subprocesses join the
workload registry of run.py.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any, Callable


async def spawn_wait(n: int) -> None:
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("/bin/true")
        if await proc.wait() != 0:
            raise AssertionError("/bin/true failed")


async def spawn_pipe(n: int) -> None:
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(
            "/bin/echo", "x", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        if out != b"x\n":
            raise AssertionError(f"wrong output {out!r}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    import uvcffi

    factories: dict[str, Callable[[], Any]] = {
        "asyncio": asyncio.new_event_loop,
        "uvcffi": uvcffi.new_event_loop,
    }
    try:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    print(f"{n} processes per sample, median of {rounds} alternating rounds, ms per process")
    for work in (spawn_wait, spawn_pipe):
        times: dict[str, list[float]] = {name: [] for name in factories}
        for _ in range(rounds):
            for name, factory in factories.items():
                loop = factory()
                try:
                    start = time.perf_counter()
                    loop.run_until_complete(work(n))
                    times[name].append((time.perf_counter() - start) / n * 1e3)
                finally:
                    loop.close()
        base = statistics.median(times["asyncio"])
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"{work.__name__:11s} {name:8s} {median:6.3f} ms  "
                  f"(asyncio/{name}: {base / median:4.2f}x)")


if __name__ == "__main__":
    main()
