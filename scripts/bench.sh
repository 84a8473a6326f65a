#!/usr/bin/env bash
# Set up and run uvcffi's main job: a short side-by-side benchmark of uvcffi against the
# stdlib asyncio loop (and uvloop, installed here as a benchmark-only dependency), printing
# a table of medians and ratios.  Extra arguments go to benchmarks/run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bench
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q ".[bench]"
exec "$venv/bin/python" benchmarks/run.py --quick "$@"
