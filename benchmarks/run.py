"""Side-by-side event loop benchmarks: stdlib asyncio, uvloop, uvcffi, or any loop factory.

    python benchmarks/run.py --quick
    python benchmarks/run.py --loop asyncio=asyncio:new_event_loop \
                             --loop uvloop=uvloop:new_event_loop
    python benchmarks/run.py --list
    python benchmarks/run.py --only call_soon,tasks_gather --rounds 9 --json out.json

Each sample is one fresh worker process (benchmarks/_worker.py) that makes the loop, warms
up, times one run of the workload with time.perf_counter() and checks the result.  Loops are
run alternately, round after round, so that a slow moment of the machine hits all of them.
See benchmarks/README.md for how to read the table.
"""

import argparse
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "_worker.py")
MARK = "@@result "

DEFAULT_LOOPS = [
    ("asyncio", "asyncio:new_event_loop"),
    ("uvloop", "uvloop:new_event_loop"),  # only when importable
    ("uvcffi", "uvcffi:new_event_loop"),
    ("uvcffi-cfuture", "benchmarks.loops:uvcffi_stdlib_futures"),
]
OPTIONAL_LOOPS = {"uvloop"}
BASELINES = ("asyncio", "uvloop")  # the "x NAME" columns, when such a loop ran

HUNG_FACTOR = 10.0

# Variables that would slow one loop down (debug mode) and make the comparison meaningless.
STRIPPED_ENV = ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")


def registry():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import workloads

    return workloads.load()


# ---------------------------------------------------------------------------------------------
# worker processes


def worker_env():
    env = dict(os.environ)
    for name in STRIPPED_ENV:
        env.pop(name, None)
    return env


def call_worker(args, timeout, why=""):
    """Run the worker; return its JSON result, or a failed one saying what went wrong."""
    cmd = [sys.executable, WORKER] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env=worker_env())
    except subprocess.TimeoutExpired:
        return {"ok": False, "timeout": True,
                "error": f"timeout: no result after {timeout:.1f} s{why} (hung?)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK):])
            except ValueError:
                break
    if proc.returncode < 0:
        try:
            how = f"killed by {signal.Signals(-proc.returncode).name}"
        except ValueError:
            how = f"killed by signal {-proc.returncode}"
    else:
        how = f"exit status {proc.returncode}"
    tail = [s for s in proc.stderr.strip().splitlines() if s.strip()][-1:]
    return {"ok": False, "error": f"worker crashed ({how})" + (f": {tail[0]}" if tail else "")}


# ---------------------------------------------------------------------------------------------
# machine description


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info():
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        load = "?"
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "load_average_at_start": load,
    }


# ---------------------------------------------------------------------------------------------
# statistics and the table


def si(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def ns(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def median_of(samples, key):
    """Median of key(sample) over the samples where it is not None (None if none has it)."""
    vals = [v for v in (key(s) for s in samples) if v is not None]
    return statistics.median(vals) if vals else None


def cpu_summary(samples):
    """Medians of the CPU figures: the server's (the worker process: getrusage around the
    timed run) and, for network workloads, the load generator's utilisation."""
    def per_op(field):
        return lambda s: 1e6 * s[field] / s["ops"] if s.get(field) is not None else None

    def extra(field):
        return lambda s: (s.get("extra") or {}).get(field)

    out = {"server_user_us_per_op": median_of(samples, per_op("cpu_user")),
           "server_sys_us_per_op": median_of(samples, per_op("cpu_sys")),
           "server_util": median_of(samples, lambda s: (s["cpu_user"] + s["cpu_sys"])
                                    / s["seconds"] if s.get("cpu_user") is not None
                                    and s["seconds"] > 0 else None),
           "client_util": median_of(samples, extra("client_util"))}
    return out


def summarize(samples, metric=None):
    """Samples of one (workload, loop) -> dict with status and statistics."""
    bad = [s for s in samples if not s["ok"]]
    if bad:
        return {"status": "FAIL", "failed": len(bad), "runs": len(samples),
                "error": bad[0]["error"]}
    if not samples:
        return {"status": "skipped"}
    out = {"status": "ok", "runs": len(samples)}
    out.update(cpu_summary(samples))
    if metric is not None:
        vals = [s["value"] for s in samples]
        med = statistics.median(vals)
        out.update({"value": med, "min_value": min(vals), "max_value": max(vals),
                    "spread_pct": 100.0 * (max(vals) - min(vals)) / med if med else 0.0})
        return out
    per_op = [1e9 * s["seconds"] / s["ops"] for s in samples]
    med = statistics.median(per_op)
    out.update({"ns_per_op": med, "min_ns_per_op": min(per_op), "max_ns_per_op": max(per_op),
                "ops_per_s": 1e9 / med,
                "spread_pct": 100.0 * (max(per_op) - min(per_op)) / med})
    return out


def ratio(metric, base, s):
    """How much better s is than base (> 1: better), for a time or a metric."""
    if metric is None:
        return base["ns_per_op"] / s["ns_per_op"]
    if not base["value"] or not s["value"]:
        return None
    return base["value"] / s["value"] if metric.lower_is_better else s["value"] / base["value"]


def format_table(rows, headers, right):
    widths = [max(len(str(r[i])) for r in rows + [headers] if i < len(r) and None not in r[:i + 1])
              for i in range(len(headers))]
    out = []
    for r in [headers] + rows:
        cells = []
        for i, cell in enumerate(r):
            if cell is None:  # a message that spans the remaining columns
                break
            cell = str(cell)
            cells.append(cell.rjust(widths[i]) if right[i] else cell.ljust(widths[i]))
        line = "  ".join(cells)
        if None in r:
            line += "  " + r[-1]
        out.append(line.rstrip())
    out.insert(1, "-" * len(out[0]))
    return out


def report(meta, loops, results, wl_info, baselines):
    lines = []
    m = meta["machine"]
    lines.append(f"uvcffi loop benchmarks: {meta['mode']} run, {meta['rounds']} round(s), "
                 "loops alternated, one fresh process per sample")
    lines.append(f"date     {m['date']}")
    lines.append(f"machine  {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
                 f"{m['platform']}, load average {m['load_average_at_start']} at start")
    lines.append(f"python   {m['python']} ({m['python_executable']})")
    load = m["load_average_at_start"].split()[0]
    if load != "?" and float(load) > 0.5 * (m["usable_cores"] or 1):
        lines.append(f"warning  the machine was busy before the run (load average {load} on "
                     f"{m['usable_cores']} cores): expect noise, trust only large differences")
    lines.append("loops")
    width = max(len(n) for n in loops)
    for name, info in loops.items():
        if info["ok"]:
            desc = (f"{info['version']}: {info['loop_class']}, futures {info['future_class']},"
                    f" tasks {info['task_class']}")
            if info["version"] != "stdlib" and info.get("loop_package"):
                desc += f", from {info['loop_package']}"
        else:
            desc = f"unavailable: {info['error']}"
        lines.append(f"  {name.ljust(width)}  {desc}  [{info['spec']}]")
    lines.append("")

    time_wls = [w for w in results if wl_info[w]["metric"] is None]
    metric_wls = [w for w in results if wl_info[w]["metric"] is not None]

    def value_cells(s, metric):
        if metric is None:
            return [ns(s["ns_per_op"]), f"{ns(s['min_ns_per_op'])}-{ns(s['max_ns_per_op'])}",
                    f"{s['spread_pct']:.0f}%", si(s["ops_per_s"])]
        return [ns(s["value"]), f"{ns(s['min_value'])}-{ns(s['max_value'])}",
                f"{s['spread_pct']:.0f}%", metric.unit]

    def table(wnames, headers, right, cells):
        """One row per (workload, loop); cells(s, info) gives a good sample's columns."""
        rows = []
        for wname in wnames:
            info = wl_info[wname]
            per_loop = results[wname]
            if info.get("unavailable"):
                rows.append([wname, "", "", None, f"skipped: {info['unavailable']}"])
                continue
            first = True
            for lname in loops:
                lead = [wname if first else "", str(info["n"]) if first else "", lname]
                first = False
                if not loops[lname]["ok"]:
                    rows.append(lead + [None, "unavailable"])
                    continue
                s = per_loop[lname]
                if s["status"] == "FAIL":
                    error = s["error"] if len(s["error"]) <= 160 else s["error"][:157] + "..."
                    rows.append(lead + [None, f"FAIL ({s['failed']}/{s['runs']} runs): {error}"])
                    continue
                if s["status"] != "ok":
                    rows.append(lead + [None, s["status"]])
                    continue
                rows.append(lead + cells(s, info))
        return format_table(rows, headers, right) if rows else []

    def ratio_cells(s):
        return [f"{s[f'x_{b}']:.2f}" if s.get(f"x_{b}") else "-" for b in baselines]

    xs = [f"x {b}" for b in baselines]
    lines.extend(table(time_wls, ["workload", "n", "loop", "ns/op", "min-max", "spread",
                                  "ops/s"] + xs,
                       [False, True, False, True, True, True, True] + [True] * len(xs),
                       lambda s, info: value_cells(s, None) + ratio_cells(s)))

    # Geometric mean of the ratios, over the time workloads where both loops gave a number.
    for b in baselines:
        parts = []
        for lname in loops:
            ratios = [results[w][lname][f"x_{b}"] for w in time_wls
                      if results[w].get(lname, {}).get(f"x_{b}")]
            if ratios and lname != b:
                gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
                parts.append(f"{lname} {gm:.2f} ({len(ratios)} workloads)")
        if parts:
            lines.append(f"geometric mean x {b}: " + ", ".join(parts))

    if metric_wls:
        if time_wls:
            lines.append("")
        lines.extend(table(
            metric_wls, ["workload", "n", "loop", "value", "min-max", "spread", "unit"] + xs,
            [False, True, False, True, True, True, False] + [True] * len(xs),
            lambda s, info: value_cells(s, info["metric"]) + ratio_cells(s)))

    # Where the time went, for the workloads whose load comes from another process.
    cpu_wls = [w for w in time_wls if any(
        s.get("client_util") is not None for s in results[w].values())]
    if cpu_wls:
        def pct(x):
            return f"{100 * x:.0f}%" if x is not None else "-"

        def us(x):
            return f"{x:.2f}" if x is not None else "-"

        lines.append("")
        lines.append("CPU of the network workloads (medians): load generator and server "
                     "utilisation, server CPU per op")
        lines.extend(table(
            cpu_wls, ["workload", "n", "loop", "client", "server", "user us/op",
                      "sys us/op", "user+sys"],
            [False, True, False, True, True, True, True, True],
            lambda s, info: [pct(s["client_util"]), pct(s["server_util"]),
                             us(s["server_user_us_per_op"]), us(s["server_sys_us_per_op"]),
                             us(s["server_user_us_per_op"] + s["server_sys_us_per_op"])
                             if s["server_user_us_per_op"] is not None else "-"]))
    lines.append("")
    if time_wls:
        lines.append("ns/op: median over the rounds (lower is better); min-max and spread "
                     "((max-min)/median) show the noise.")
        if baselines:
            lines.append("x NAME: NAME's median ns/op divided by this loop's, from this run "
                         "(> 1 means faster than NAME).")
    lines.append("FAIL: the loop gave a wrong result (dropped callback, bad order, crash, hang) "
                 "in at least one run.")
    if metric_wls:
        lines.append("value: a workload's own metric (see its unit), median over the rounds; "
                     "x NAME > 1 means better than NAME.")
    if cpu_wls:
        lines.append("client, server: CPU time / wall time of the loaded phase (100% = a whole "
                     "core); us/op: the server's")
        lines.append("user and system CPU per op (getrusage); see benchmarks/README.md, "
                     "'Reading the CPU table'.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark asyncio event loops side by side (see benchmarks/README.md).")
    p.add_argument("--loop", action="append", metavar="NAME=module:callable", default=[],
                   help="a loop to compare, repeatable; default: asyncio, uvloop (when "
                        "importable), uvcffi, uvcffi-cfuture")
    p.add_argument("--rounds", type=int, default=None,
                   help="samples per workload and loop (default 5, 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="3 rounds, smaller sizes, no full-run-only workloads: a sanity run of "
                        "about 3 minutes")
    p.add_argument("--only", action="append", default=[], metavar="NAMES",
                   help="comma-separated workloads to run, repeatable")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--json", metavar="FILE", help="write all samples and medians to FILE")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every workload size by this factor")
    p.add_argument("--warmup", type=float, default=None, metavar="FRACTION",
                   help="in-process warm-up run of FRACTION*n before the timed run (default "
                        "0.1; 1 on PyPy, whose JIT needs longer)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds before a worker counts as hung (15 with --quick, else 60)")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.warmup is None:
        args.warmup = 1.0 if platform.python_implementation() == "PyPy" else 0.1
    if args.timeout is None:
        args.timeout = 15.0 if args.quick else 60.0
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return p, args


def parse_loops(p, specs):
    if not specs:
        return list(DEFAULT_LOOPS), True
    loops = []
    for item in specs:
        name, sep, spec = item.partition("=")
        if not sep or not name or ":" not in spec:
            p.error(f"--loop wants NAME=module:callable, not {item!r}")
        if name in [n for n, _ in loops]:
            p.error(f"loop name {name!r} given twice")
        loops.append((name, spec))
    return loops, False


def main(argv=None):
    p, args = parse_args(argv)
    reg = registry()
    if args.list:
        width = max(len(n) for n in reg)
        for name, cls in reg.items():
            why = cls.unavailable()
            extra = f"  [unavailable here: {why}]" if why else ""
            quick = f"({cls.quick})" if cls.full_only else cls.quick
            what = f"{cls.metric.name} ({cls.metric.unit})" if cls.metric else f"{cls.unit}s"
            print(f"{name.ljust(width)}  quick {quick:>7}  full {cls.full:>7}  "
                  f"{what}: {cls.doc}{extra}")
        return 0

    selected = list(reg)
    named = set()
    if args.only:
        selected = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
        unknown = [n for n in selected if n not in reg]
        if unknown:
            p.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(reg)}")
        named = set(selected)

    loop_specs, default_set = parse_loops(p, args.loop)
    loops = {}
    for name, spec in loop_specs:
        info = call_worker(["probe", spec], timeout=args.timeout)
        info["spec"] = spec
        if not info["ok"] and default_set and name in OPTIONAL_LOOPS:
            print(f"note: {name} left out: {info['error']}", file=sys.stderr)
            continue
        loops[name] = info
    available = [n for n in loops if loops[n]["ok"]]
    baselines = [b for b in BASELINES if b in available]

    wl_info = {}
    for wname in selected:
        cls = reg[wname]
        n = max(1, int(round((cls.quick if args.quick else cls.full) * args.scale)))
        if args.quick and cls.full_only and wname not in named:
            why = "full run only (name it with --only to run it with --quick)"
        else:
            why = cls.unavailable_at(n)
        warmup = args.warmup if cls.warmup_fraction is None else min(args.warmup,
                                                                      cls.warmup_fraction)
        wl_info[wname] = {"n": n, "warmup_n": int(n * warmup), "unit": cls.unit,
                          "doc": cls.doc, "unavailable": why, "full_only": cls.full_only,
                          "metric": cls.metric}

    machine = machine_info()  # before the run: its date and load average
    samples = {w: {n: [] for n in loops} for w in selected}
    hung = set()
    slowest = {}  # workload -> wall time of its slowest good worker so far
    started = time.perf_counter()
    for rnd in range(args.rounds):
        # Alternate the loops (A B C, then B C A, ...) so that none always goes first.
        order = available[rnd % len(available):] + available[:rnd % len(available)] \
            if available else []
        for wname in selected:
            info = wl_info[wname]
            if info["unavailable"]:
                continue
            progress = []
            for lname in order:
                if (wname, lname) in hung:
                    continue
                # A worker that takes 10 times as long as the slowest good one of this workload
                # (and at least 5 s) is taken as hung, so a hanging loop costs seconds, not
                # minutes; --timeout caps it.
                timeout, why = args.timeout, ""
                if wname in slowest and HUNG_FACTOR * slowest[wname] < timeout:
                    timeout = max(5.0, HUNG_FACTOR * slowest[wname])
                    why = f", {HUNG_FACTOR:g}x the slowest good run"
                t0 = time.perf_counter()
                res = call_worker(["measure", loops[lname]["spec"], wname, info["n"],
                                   info["warmup_n"]], timeout=timeout, why=why)
                wall = time.perf_counter() - t0
                res["round"] = rnd + 1
                if res["ok"]:
                    slowest[wname] = max(slowest.get(wname, 0.0), wall)
                    res["ns_per_op"] = 1e9 * res["seconds"] / res["ops"]
                    shown = res["value"] if info["metric"] else res["ns_per_op"]
                    progress.append(f"{lname} {ns(shown)}")
                else:
                    progress.append(f"{lname} FAIL")
                    if res.get("timeout"):
                        hung.add((wname, lname))  # do not wait for it again
                samples[wname][lname].append(res)
            unit = info["metric"].unit if info["metric"] else "ns/op"
            print(f"[round {rnd + 1}/{args.rounds}, {time.perf_counter() - started:5.1f} s] "
                  f"{wname}: " + ", ".join(progress) + f" {unit}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    load_at_end = machine_info()["load_average_at_start"]

    results = {}
    for wname in selected:
        per_loop = {}
        for lname in loops:
            per_loop[lname] = summarize(samples[wname][lname], wl_info[wname]["metric"]) \
                if loops[lname]["ok"] else {"status": "unavailable"}
        for b in baselines:
            base = per_loop[b]
            for s in per_loop.values():
                if s["status"] == "ok" and base["status"] == "ok":
                    s[f"x_{b}"] = ratio(wl_info[wname]["metric"], base, s)
        results[wname] = per_loop

    meta = {"mode": "quick" if args.quick else "full", "rounds": args.rounds,
            "warmup_fraction": args.warmup, "scale": args.scale, "timeout": args.timeout,
            "machine": machine, "elapsed_s": elapsed, "load_average_at_end": load_at_end,
            "stripped_env": [v for v in STRIPPED_ENV if v in os.environ]}
    print(report(meta, loops, results, wl_info, baselines))
    print(f"(ran {elapsed:.1f} s)")
    if args.json:
        doc = {"meta": meta, "loops": loops, "workloads": {
            w: dict(wl_info[w], results=results[w], samples=samples[w],
                    metric=wl_info[w]["metric"]._asdict() if wl_info[w]["metric"] else None)
            for w in selected}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
    failed = any(s["status"] == "FAIL" for per in results.values() for s in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
