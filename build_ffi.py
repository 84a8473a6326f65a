"""Build uvcffi's one cffi extension, ``uvcffi._uvlib``: the vendored libuv plus our C glue.

Run directly (``python build_ffi.py``) to compile in place into ``src/uvcffi/`` for
development; ``pip install .`` reaches the same ``ffibuilder`` through setup.py's
``cffi_modules``.

The pieces, cryptography-style:

* ``src/_cffi_src/cdef/*.h``: one cdef fragment per libuv area (timer.h, poll.h, ...),
  declaring only what Python calls, with libuv's structs left opaque or partial.
* ``src/_cffi_src/glue/*.c``: the C glue (uvcffi.c: event queue, loop and handles; one
  more file per further libuv area), compiled as the module's preamble.
* ``src/_cffi_src/sources.py``: the libuv sources per platform, from libuv's CMakeLists.txt.

``UVCFFI_SYSTEM_LIBUV=1`` links the system libuv (Debian: libuv1-dev) instead of compiling
the vendored one.

GIL policy.  cffi wraps every API-mode call in Py_BEGIN/END_ALLOW_THREADS and saves and
restores errno, which costs about 60 ns per call on CPython (docs/design.md has the
figures).  Every function this module exposes is non-blocking except ``uvc_run`` and
``uvc_loop_close``, which release the GIL themselves, so the preamble turns those macros
into plain blocks.  Errors are read from return codes, never from ``ffi.errno``.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CFFI_SRC = os.path.join(HERE, "src", "_cffi_src")
LIBUV = os.path.join(HERE, "vendor", "libuv")

sys.path.insert(0, os.path.join(HERE, "src"))
from _cffi_src.sources import libuv_build  # noqa: E402

# The order matters only in that types are declared before use: these come first, then
# any other fragment in cdef/, by name.
CDEF_FIRST = [
    "errors.h", "misc.h", "loop.h", "handle.h", "request.h", "timer.h", "idle.h",
    "check.h", "prepare.h", "async.h", "poll.h", "signal.h", "dns.h", "stream.h", "tcp.h",
    "pipe.h",
]


def _in_order(folder: str, first: list[str], suffix: str) -> list[str]:
    rest = sorted(n for n in os.listdir(folder) if n.endswith(suffix) and n not in first)
    return first + rest

KEEP_GIL = """
/* uvcffi: every wrapper below keeps the GIL and leaves errno alone (see build_ffi.py). */
#undef Py_BEGIN_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#undef Py_END_ALLOW_THREADS
#define Py_END_ALLOW_THREADS }
#undef _cffi_restore_errno
#define _cffi_restore_errno() do {} while (0)
#undef _cffi_save_errno
#define _cffi_save_errno() do {} while (0)
"""


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def make_ffibuilder(absolute_paths: bool = False) -> FFI:
    """setuptools wants source paths relative to the project; ffi.compile() runs elsewhere."""
    ffibuilder = FFI()
    cdef_dir = os.path.join(CFFI_SRC, "cdef")
    glue_dir = os.path.join(CFFI_SRC, "glue")
    ffibuilder.cdef(
        "\n".join(_read(os.path.join(cdef_dir, n)) for n in _in_order(cdef_dir, CDEF_FIRST, ".h"))
    )
    # uvcffi.c (event queue, loop, handles) first; each other glue file adds one area.
    glue = "\n".join(
        _read(os.path.join(glue_dir, n)) for n in _in_order(glue_dir, ["uvcffi.c"], ".c")
    )

    sources, defines, libraries = libuv_build(sys.platform)
    include_dirs = [glue_dir]
    if os.environ.get("UVCFFI_SYSTEM_LIBUV") == "1":
        sources, defines = [], []
        libraries = ["uv"]
    else:
        sources = [os.path.join(LIBUV, s) for s in sources]
        if not absolute_paths:
            sources = [os.path.relpath(s, HERE) for s in sources]
        include_dirs += [os.path.join(LIBUV, "include"), os.path.join(LIBUV, "src")]

    extra_compile_args: list[str] = []
    extra_link_args: list[str] = []
    if sys.platform != "win32":
        extra_compile_args = ["-O2", "-fno-strict-aliasing", "-fvisibility=hidden",
                              "-Wno-unused-parameter", "-Wno-sign-compare"]
    if sys.platform.startswith("linux"):
        # libuv's UV_EXTERN forces default visibility, so -fvisibility=hidden alone leaves
        # its API exported; -Bsymbolic binds our own calls to our copy even if another
        # libuv is loaded into the process first.
        # A version script then hides everything but the module's init symbol.
        extra_link_args = ["-Wl,-Bsymbolic",
                           "-Wl,--version-script=" + os.path.join(CFFI_SRC, "glue", "exports.map")]

    if platform.python_implementation() == "PyPy":
        preamble_gil = ""  # PyPy releases the GIL around each call itself, cheaply.
    else:
        preamble_gil = KEEP_GIL
    ffibuilder.set_source(
        "uvcffi._uvlib",
        '#include "uvcffi.h"\n' + glue + preamble_gil,
        sources=sources,
        include_dirs=include_dirs,
        define_macros=defines,
        libraries=libraries,
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        depends=[os.path.join(glue_dir, "uvcffi.h")],
    )
    return ffibuilder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    # In-place build for development: the module lands in src/uvcffi/.
    ffibuilder = make_ffibuilder(absolute_paths=True)
    ffibuilder.compile(tmpdir=os.path.join(HERE, "build", "cffi"), target=None, verbose=False)
    # Only this interpreter's module; replaced atomically, because overwriting a shared
    # object in place crashes (SIGBUS) every process that has it mapped.
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    name = "_uvlib" + suffix
    built = os.path.join(HERE, "build", "cffi", "uvcffi", name)
    target = os.path.join(HERE, "src", "uvcffi", name)
    tmp = target + ".tmp"
    shutil.copy2(built, tmp)
    os.replace(tmp, target)
    print("built src/uvcffi/" + name)
