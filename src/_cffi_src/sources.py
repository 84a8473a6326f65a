"""Which vendored libuv sources, defines and libraries each platform compiles.

Transcribed from the pinned release's ``vendor/libuv/CMakeLists.txt`` (libuv 1.50.0), the
one place libuv itself states them; ``tests/uv/test_build_sources.py`` re-derives the Linux
list from that file so that an upgrade which changes it fails loudly instead of linking
without a source.  Only Linux is built and tested; the other platforms are written down so
that porting starts from libuv's own lists rather than from a guess.
"""

from __future__ import annotations

COMMON = [
    "src/fs-poll.c",
    "src/idna.c",
    "src/inet.c",
    "src/random.c",
    "src/strscpy.c",
    "src/strtok.c",
    "src/thread-common.c",
    "src/threadpool.c",
    "src/timer.c",
    "src/uv-common.c",
    "src/uv-data-getter-setters.c",
    "src/version.c",
]

UNIX = [
    "src/unix/async.c",
    "src/unix/core.c",
    "src/unix/dl.c",
    "src/unix/fs.c",
    "src/unix/getaddrinfo.c",
    "src/unix/getnameinfo.c",
    "src/unix/loop-watcher.c",
    "src/unix/loop.c",
    "src/unix/pipe.c",
    "src/unix/poll.c",
    "src/unix/process.c",
    "src/unix/random-devurandom.c",
    "src/unix/signal.c",
    "src/unix/stream.c",
    "src/unix/tcp.c",
    "src/unix/thread.c",
    "src/unix/tty.c",
    "src/unix/udp.c",
]

WINDOWS = [
    "src/win/" + name
    for name in (
        "async.c core.c detect-wakeup.c dl.c error.c fs.c fs-event.c getaddrinfo.c "
        "getnameinfo.c handle.c loop-watcher.c pipe.c thread.c poll.c process.c "
        "process-stdio.c signal.c snprintf.c stream.c tcp.c tty.c udp.c util.c winapi.c "
        "winsock.c"
    ).split()
]

# platform -> (extra sources, defines, libraries), on top of COMMON + UNIX (or WINDOWS).
# _POSIX_C_SOURCE from libuv's Linux list is left out on purpose: Python.h already defines
# it (to a newer value) together with _GNU_SOURCE, and cffi compiles our glue after
# Python.h, so repeating it would only produce redefinition warnings.
PLATFORMS: dict[str, tuple[list[str], list[tuple[str, str | None]], list[str]]] = {
    "linux": (
        [
            "src/unix/linux.c",
            "src/unix/procfs-exepath.c",
            "src/unix/random-getrandom.c",
            "src/unix/random-sysctl-linux.c",
            "src/unix/proctitle.c",
        ],
        [("_GNU_SOURCE", None)],
        ["dl", "rt", "pthread"],
    ),
    "darwin": (
        [
            "src/unix/proctitle.c",
            "src/unix/bsd-ifaddrs.c",
            "src/unix/kqueue.c",
            "src/unix/random-getentropy.c",
            "src/unix/darwin-proctitle.c",
            "src/unix/darwin.c",
            "src/unix/fsevents.c",
        ],
        [("_DARWIN_UNLIMITED_SELECT", "1"), ("_DARWIN_USE_64_BIT_INODE", "1")],
        ["pthread"],
    ),
    "freebsd": (
        [
            "src/unix/freebsd.c",
            "src/unix/posix-hrtime.c",
            "src/unix/bsd-proctitle.c",
            "src/unix/bsd-ifaddrs.c",
            "src/unix/kqueue.c",
            "src/unix/random-getrandom.c",
        ],
        [],
        ["pthread"],
    ),
    "win32": (
        [],
        [
            ("WIN32_LEAN_AND_MEAN", None),
            ("_WIN32_WINNT", "0x0A00"),
            ("_CRT_DECLARE_NONSTDC_NAMES", "0"),
        ],
        [
            "psapi", "user32", "advapi32", "iphlpapi", "userenv", "ws2_32", "dbghelp",
            "ole32", "shell32",
        ],
    ),
}


def platform_key(sys_platform: str) -> str:
    for key in PLATFORMS:
        if sys_platform.startswith(key):
            return key
    raise RuntimeError(
        f"uvcffi has no libuv source list for {sys_platform!r}; add one to "
        "src/_cffi_src/sources.py from vendor/libuv/CMakeLists.txt"
    )


def libuv_build(sys_platform: str) -> tuple[list[str], list[tuple[str, str | None]], list[str]]:
    """Return (sources relative to vendor/libuv, defines, libraries) for a platform."""
    key = platform_key(sys_platform)
    extra, defines, libraries = PLATFORMS[key]
    if key == "win32":
        return COMMON + WINDOWS, list(defines), list(libraries)
    unix_defines = [("_FILE_OFFSET_BITS", "64"), ("_LARGEFILE_SOURCE", None)]
    return COMMON + UNIX + extra, unix_defines + list(defines), list(libraries)
