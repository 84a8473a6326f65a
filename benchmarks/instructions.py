"""CPU cost per operation in instructions, counted by callgrind: the repeatable measure.

    python benchmarks/instructions.py [--loop NAME=module:callable ...] [--fraction F | --n N]
                                      WORKLOAD [WORKLOAD ...]

Wall-clock ratios on a shared machine move by tens of percent from run to run; the number of
instructions a process executes does not.  For each workload and loop this runs the worker
(benchmarks/_worker.py, the same code run.py times) twice under ``valgrind --tool=callgrind``,
with n and with 2n operations, and prints (I(2n) - I(n)) / n: what one more operation costs,
with interpreter start-up, imports, set-up and teardown cancelled out.  PYTHONHASHSEED is
fixed, so dict layouts, and with them the counts, repeat to within a fraction of a percent.

Only the worker process is counted.  The network workloads' load generators run in processes
of their own, which valgrind does not follow, so for them the figure is the server's cost
per message.  A workload that fails validation prints FAIL, not a number, as in run.py.

Callgrind runs the interpreter about fifty times slower, so sizes default to a tenth of the
workload's --quick size.  Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if __name__ == "__main__":
    # As in _worker.py: import benchmarks as a package from the repository root.
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path[0] = ROOT

from benchmarks.run import (  # noqa: E402
    BASELINES,
    MARK,
    OPTIONAL_LOOPS,
    WORKER,
    call_worker,
    parse_loops,
    registry,
    worker_env,
)

_COLLECTED = re.compile(r"Collected : (\d+)")


def count(spec: str, workload: str, n: int, timeout: float) -> tuple[int | None, str | None]:
    """Instructions of one worker run of ``n`` operations, or (None, why it failed)."""
    env = worker_env()
    env["PYTHONHASHSEED"] = "0"
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, WORKER, "measure", spec, workload, str(n), "0"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"no result after {timeout:.0f} s"
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            break
    if result is None:
        return None, f"the worker gave no result (exit status {proc.returncode})"
    if not result.get("ok"):
        return None, result.get("error") or "failed"
    found = _COLLECTED.findall(proc.stderr)
    if not found:
        return None, "callgrind printed no instruction count"
    return int(found[-1]), None


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Instructions per operation under callgrind (see benchmarks/README.md).")
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                   help="workloads to count (run.py --list shows them)")
    p.add_argument("--loop", action="append", metavar="NAME=module:callable", default=[],
                   help="a loop to count, repeatable; default: run.py's loops")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--fraction", type=float, default=0.1,
                      help="n as a fraction of the workload's --quick size (default 0.1)")
    size.add_argument("--n", type=int, default=None, help="n for every workload")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one valgrind run may take (default 600)")
    args = p.parse_args(argv)
    if not args.workloads:
        p.error("name at least one workload")
    return p, args


def main(argv=None) -> int:
    p, args = parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind not found: install it (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    reg = registry()
    unknown = [w for w in args.workloads if w not in reg]
    if unknown:
        p.error(f"unknown workload(s): {', '.join(unknown)} (run.py --list shows them)")
    if any(reg[w].metric is not None for w in args.workloads):
        p.error("metric workloads (memory) have no per-operation instruction count")
    loops, defaults = parse_loops(p, args.loop)
    usable = []
    for name, spec in loops:
        info = call_worker(["probe", spec], timeout=60)
        if info.get("ok"):
            usable.append((name, spec))
        elif defaults and name in OPTIONAL_LOOPS:
            print(f"({name} left out: {info.get('error')})")
        else:
            print(f"{name}: {info.get('error')}", file=sys.stderr)
            return 1

    base = next((b for b in BASELINES if b in [n for n, _ in usable]), None)
    print(f"{'workload':18} {'n':>7}  {'loop':16} {'instr/op':>10}"
          + (f"  x {base}" if base else ""))
    for workload in args.workloads:
        cls = reg[workload]
        n = args.n or max(1, int(cls.quick * args.fraction))
        why_not = cls.unavailable()
        if why_not:
            print(f"{workload:18} {n:>7}  unavailable here: {why_not}")
            continue
        per_op = {}
        for name, spec in usable:
            once, why = count(spec, workload, n, args.timeout)
            twice, why2 = (None, None) if why else count(spec, workload, 2 * n, args.timeout)
            if why or why2:
                per_op[name] = None
                print(f"{workload:18} {n:>7}  {name:16} {'FAIL':>10}  {why or why2}")
                continue
            per_op[name] = (twice - once) / n
        for name, _ in usable:
            value = per_op.get(name)
            if value is None:
                continue
            ratio = ""
            if base and per_op.get(base):
                ratio = f"  {per_op[base] / value:8.2f}"
            print(f"{workload:18} {n:>7}  {name:16} {value:10.0f}{ratio}")
    print("instr/op: (I(2n) - I(n)) / n, instructions of the worker process (PYTHONHASHSEED=0);")
    print("x NAME: NAME's instructions per op divided by this loop's (> 1: fewer than NAME).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
