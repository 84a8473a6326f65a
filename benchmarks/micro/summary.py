"""Per-op medians and ratios from a pytest-benchmark JSON file, as a Markdown table.

    python3 -m pytest benchmarks/micro --benchmark-json=/tmp/micro.json
    python3 benchmarks/micro/summary.py /tmp/micro.json

pytest-benchmark reports the time of one round; the batched benchmarks do ``ops``
operations per round (recorded in ``extra_info``), so the table divides by it.  The ratio
is to the group's reference variant (asyncio for the loops, the stdlib's C class for the
Future/Task classes): below 1 is faster than the reference.
"""

from __future__ import annotations

import json
import sys


def _format_ns(seconds: float) -> str:
    ns = seconds * 1e9
    return f"{ns:,.0f} ns" if ns >= 100 else f"{ns:.1f} ns"


def summarize(data: dict) -> str:
    groups: dict[str, list[dict]] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"] or bench["name"], []).append(bench)
    machine = data.get("machine_info", {})
    lines = [
        f"{machine.get('python_implementation', '?')} {machine.get('python_version', '?')}, "
        f"{machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"{data.get('datetime', '?')[:10]}",
        "",
        "| benchmark | variant | per op (median) | ratio to reference |",
        "|---|---|---:|---:|",
    ]
    for group in sorted(groups):
        benches = groups[group]
        medians = {}
        for bench in benches:
            ops = bench.get("extra_info", {}).get("ops", 1)
            medians[bench.get("param") or bench["name"]] = bench["stats"]["median"] / ops
        # Benchmarks whose parameter combines the loop with something else (transport:
        # "asyncio-tcp") name their reference in full; one group has one reference.
        reference = benches[0].get("extra_info", {}).get("reference", "asyncio")
        base = medians.get(reference)
        for variant in sorted(medians, key=lambda v: (v != reference, v)):
            ratio = f"{medians[variant] / base:.2f}" if base else "-"
            lines.append(f"| {group} | {variant} | {_format_ns(medians[variant])} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        print(summarize(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
