"""``python -m uvcffi script.py [args]`` / ``python -m uvcffi -m module [args]``.

Runs the script or module as ``__main__`` with uvcffi installed as the event loop policy,
so that its ``asyncio.run()`` (and anything else that asks asyncio for a new loop) runs on
uvcffi without a code change.
"""

from __future__ import annotations

import runpy
import sys
import warnings

from ._policy import install

USAGE = "usage: python -m uvcffi script.py [args...] | python -m uvcffi -m module [args...]"


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        raise SystemExit(0 if argv else 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        install()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            raise SystemExit(2)
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
