#!/usr/bin/env bash
# Set up and run uvcffi's test suite on a fresh clone: CPython (python3), then PyPy (pypy3).
#
# Each interpreter gets its own virtualenv under .venv/, where uvcffi is installed with pip
# (which compiles the vendored libuv into the extension), and the suite runs against that
# installed copy.  On Debian, PyPy is installed with apt-get when it is missing and we are
# root; otherwise the PyPy run is skipped with a message saying why.
#
#   scripts/test.sh                 # both interpreters
#   UVCFFI_PYTHONS=python3 scripts/test.sh
#   scripts/test.sh -k timers       # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pythons=${UVCFFI_PYTHONS:-"python3 pypy3"}

have_pypy() {
    command -v pypy3 >/dev/null && pypy3 -c 'import venv' 2>/dev/null &&
        ls /usr/include/pypy3*/Python.h >/dev/null 2>&1
}

ensure_pypy() {
    have_pypy && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing PyPy (apt-get install pypy3 pypy3-venv pypy3-dev)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq pypy3 pypy3-venv pypy3-dev >/dev/null
        have_pypy && return 0
    fi
    return 1
}

status=0
for py in $pythons; do
    if [ "$py" = pypy3 ] && ! ensure_pypy; then
        echo "== SKIPPED PyPy: pypy3 is not installed and cannot be (not root, or no apt-get)"
        continue
    fi
    venv="$root/.venv/$py"
    echo "== $py: setting up $venv"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install -q "$root[test]"
    "$venv/bin/python" -c 'import sys, uvcffi; print("==", sys.implementation.name, sys.version.split()[0], "uvcffi", uvcffi.__version__, "libuv", uvcffi.LIBUV_VERSION)'
    # Run from the tests' parent with src/ off sys.path, so the installed build is tested.
    if ! (cd "$root" && "$venv/bin/python" -m pytest -p no:cacheprovider tests "$@"); then
        status=1
    fi
done
exit $status
