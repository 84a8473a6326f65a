"""uvcffi._errors: libuv error codes to the exceptions asyncio code expects.

libuv's codes are taken from the extension (``uvcffi._ffi.lib``) and checked against the
platform's ``errno`` values; the EAI_* codes, which have no errno, from the vendored
``uv/errno.h``.
"""

from __future__ import annotations

import errno
import os
import re
import socket

import pytest

import uvcffi._errors as errors
from uvcffi._ffi import ffi, lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def uv_header_code(name):
    """A libuv error code as written in the vendored uv/errno.h, e.g. UV__EAI_NONAME."""
    path = os.path.join(ROOT, "vendor", "libuv", "include", "uv", "errno.h")
    with open(path, encoding="utf-8") as f:
        m = re.search(rf"#\s*define UV__{name}\s+\((-\d+)\)", f.read())
    assert m is not None, name
    return int(m.group(1))


def libuv_message(code):
    return ffi.string(lib.uv_strerror(code)).decode()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("EOF", lib.UV_EOF), ("ECANCELED", lib.UV_ECANCELED), ("EBUSY", lib.UV_EBUSY),
        ("EAGAIN", lib.UV_EAGAIN), ("EINVAL", lib.UV_EINVAL), ("ENOMEM", lib.UV_ENOMEM),
    ],
)
def test_codes_exported_by_the_extension(name, code):
    assert code < 0
    assert errors.uv_error_name(code) == name
    if name == "EOF":
        assert code == uv_header_code("EOF") == -4095  # no errno: libuv's own number
    else:
        assert code == -getattr(errno, name)  # on Unix, a system error is -errno


@pytest.mark.parametrize(
    ("name", "exc_type"),
    [
        ("ECONNREFUSED", ConnectionRefusedError),
        ("ECONNRESET", ConnectionResetError),
        ("ECONNABORTED", ConnectionAbortedError),
        ("EPIPE", BrokenPipeError),
        ("ENOENT", FileNotFoundError),
        ("EEXIST", FileExistsError),
        ("EACCES", PermissionError),
        ("EPERM", PermissionError),
        ("ETIMEDOUT", TimeoutError),
        ("EAGAIN", BlockingIOError),
        ("EINTR", InterruptedError),
        ("EISDIR", IsADirectoryError),
        ("ENOTDIR", NotADirectoryError),
        ("EINVAL", OSError),
        ("EBADF", OSError),
        ("EADDRINUSE", OSError),
    ],
)
def test_system_errors_become_the_matching_oserror(name, exc_type):
    code = -getattr(errno, name)
    assert errors.uv_error_name(code) == name  # libuv agrees that this code is `name`
    exc = errors.exception_for(code)
    assert type(exc) is exc_type
    assert exc.errno == getattr(errno, name)
    assert exc.strerror == libuv_message(code)
    assert exc.strerror  # a real message, e.g. "connection refused"


def test_exception_message_is_libuvs():
    exc = errors.exception_for(-errno.ECONNREFUSED)
    assert str(exc) == f"[Errno {errno.ECONNREFUSED}] connection refused"


@pytest.mark.parametrize(
    "name", ["EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "EAI_FAMILY", "EAI_SERVICE",
             "EAI_SOCKTYPE", "EAI_MEMORY", "EAI_BADFLAGS"],
)
def test_getaddrinfo_errors_become_gaierror_with_the_system_code(name):
    code = uv_header_code(name)
    assert errors.uv_error_name(code) == name
    exc = errors.exception_for(code)
    assert type(exc) is socket.gaierror
    assert exc.errno == getattr(socket, name)  # the value socket.getaddrinfo would raise
    assert exc.strerror == libuv_message(code)


def test_eai_noname_is_what_socket_raises_for_an_unknown_name():
    exc = errors.exception_for(uv_header_code("EAI_NONAME"))
    assert exc.errno == socket.EAI_NONAME
    assert isinstance(exc, OSError)  # gaierror is an OSError, as in the stdlib


def test_eof_becomes_eoferror():
    exc = errors.exception_for(lib.UV_EOF)
    assert type(exc) is EOFError
    assert str(exc) == libuv_message(lib.UV_EOF) == "end of file"


def test_libuv_only_code_keeps_its_name():
    # UV_ECHARSET has no errno on Linux: a plain OSError naming it.
    code = uv_header_code("ECHARSET")
    assert -code not in errno.errorcode
    exc = errors.exception_for(code)
    assert type(exc) is OSError
    assert exc.errno == code
    assert exc.strerror.startswith("ECHARSET: ")


def test_check_passes_through_non_negative_codes():
    assert errors.check(0) == 0
    assert errors.check(7) == 7


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        (-errno.ECONNREFUSED, ConnectionRefusedError),
        (-errno.ENOENT, FileNotFoundError),
        (-errno.EAGAIN, BlockingIOError),
        (lib.UV_EOF, EOFError),
    ],
)
def test_check_raises_the_mapped_exception(code, exc_type):
    with pytest.raises(exc_type) as info:
        errors.check(code)
    assert type(info.value) is exc_type


def test_check_raises_gaierror_for_eai_codes():
    with pytest.raises(socket.gaierror) as info:
        errors.check(uv_header_code("EAI_NONAME"))
    assert info.value.errno == socket.EAI_NONAME


def test_a_real_libuv_failure_round_trips():
    # A failing libuv call, not a made-up code: opening a poll handle on a closed fd.
    from uvcffi._uv.loop import UVLoop
    from uvcffi._uv.poll import UVPoll

    uvloop = UVLoop()  # first: the loop's own fds must not take the closed fd's number
    s = socket.socket()
    fd = s.fileno()
    s.close()
    try:
        with pytest.raises(OSError) as info:
            UVPoll(uvloop, fd, lambda status, events: None)
        assert info.value.errno == errno.EBADF
        assert info.value.strerror == libuv_message(-errno.EBADF)
    finally:
        uvloop.close()
