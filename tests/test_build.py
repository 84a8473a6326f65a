"""The import-time checks of the compiled extension."""

from __future__ import annotations

import pytest

import uvcffi
from uvcffi import _ffi


def test_loaded_libuv_is_the_pinned_release_or_the_system_one():
    major, minor, patch = (int(x) for x in uvcffi.LIBUV_VERSION.split("."))
    assert (major, minor) >= (1, 44)


def test_mismatched_libuv_version_refuses_import():
    with pytest.raises(ImportError, match=r"compiled against libuv 1\.50\.0 but libuv 1\.44\.2"):
        _ffi.check_versions(0x013200, 0x012C02, _ffi.GLUE_VERSION)


def test_stale_extension_refuses_import():
    with pytest.raises(ImportError, match="glue version 0"):
        _ffi.check_versions(0x013200, 0x013200, 0)


def test_matching_versions_pass():
    _ffi.check_versions(0x013200, 0x013200, _ffi.GLUE_VERSION)
