"""Layer 0: the compiled extension, checked once at import.

Only the ``_uv`` package and ``_errors`` import from here; everything above them reaches
libuv through ``_uv``'s handle and request wrappers.
"""

from __future__ import annotations

from typing import Any

try:
    from ._uvlib import ffi as _ffi
    from ._uvlib import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        "uvcffi's compiled extension (uvcffi._uvlib) is missing or cannot be loaded: "
        f"{exc}. Install uvcffi with pip (it compiles the vendored libuv), or run "
        "`python build_ffi.py` in a source checkout."
    ) from exc

# The cdef is the real type information; this keeps mypy from guessing at cffi objects.
ffi: Any = _ffi
lib: Any = _lib

#: The glue ABI this Python code was written against (glue/uvcffi.h, UVC_GLUE_VERSION).
GLUE_VERSION = 9


def _version_str(hexversion: int) -> str:
    return f"{hexversion >> 16}.{(hexversion >> 8) & 0xFF}.{hexversion & 0xFF}"


def check_versions(built: int, loaded: int, glue: int) -> None:
    """Refuse a libuv other than the one we were compiled against, or a stale extension."""
    if built != loaded:
        raise ImportError(
            f"uvcffi was compiled against libuv {_version_str(built)} but libuv "
            f"{_version_str(loaded)} is loaded; rebuild uvcffi (pip install --force-reinstall "
            "--no-binary uvcffi uvcffi) against the libuv you run with."
        )
    if glue != GLUE_VERSION:
        raise ImportError(
            f"uvcffi's extension has glue version {glue} but its Python code expects "
            f"{GLUE_VERSION}: the extension is stale; rebuild it (python build_ffi.py)."
        )


check_versions(lib.uvc_built_uv_version(), lib.uv_version(), lib.uvc_glue_version())

#: The version of libuv in use, e.g. "1.50.0".
LIBUV_VERSION: str = ffi.string(lib.uv_version_string()).decode()
