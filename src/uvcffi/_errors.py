"""libuv error codes become Python exceptions here, and only here.

libuv reports a failure as a negative code.  On Unix a system error's code is the negated
errno, and ``OSError(errno, message)`` already picks the matching subclass
(ConnectionRefusedError for ECONNREFUSED, FileNotFoundError for ENOENT, ...), so that is
what we build.  getaddrinfo's failures (UV_EAI_*) become ``socket.gaierror`` with the
system's EAI value, as ``socket.getaddrinfo`` would raise; UV_EOF has no errno and
becomes EOFError.
"""

from __future__ import annotations

import errno as _errno
import socket

from ._ffi import ffi, lib


def uv_error_name(code: int) -> str:
    """Return libuv's name for an error code, e.g. "ECONNREFUSED"."""
    buf = ffi.new("char[]", 64)
    return ffi.string(lib.uv_err_name_r(code, buf, 64)).decode()


def uv_strerror(code: int) -> str:
    buf = ffi.new("char[]", 256)
    return ffi.string(lib.uv_strerror_r(code, buf, 256)).decode()


def exception_for(code: int) -> BaseException:
    """The exception asyncio would raise for libuv error ``code`` (a negative int)."""
    name = uv_error_name(code)
    message = uv_strerror(code)
    if name.startswith("EAI_"):
        return socket.gaierror(getattr(socket, name, code), message)
    if code == lib.UV_EOF:
        return EOFError(message)
    if -code in _errno.errorcode:
        return OSError(-code, message)
    return OSError(code, f"{name}: {message}")


def check(code: int) -> int:
    """Raise the matching exception if ``code`` is a libuv error, else return it."""
    if code < 0:
        raise exception_for(code)
    return code
