"""The libuv build inputs: src/_cffi_src/sources.py against libuv's own CMakeLists.txt.

sources.py transcribes, per platform, which vendored libuv files are compiled.  Here the
Linux list is re-derived from ``vendor/libuv/CMakeLists.txt`` by a small interpreter of
the CMake subset libuv uses for it (``set``/``list(APPEND)`` inside ``if``/``else``
blocks, with ``STREQUAL``, ``MATCHES``, ``NOT``, ``AND``, ``OR``), so a libuv upgrade that
adds, drops or moves a source fails here instead of linking without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBUV = os.path.join(ROOT, "vendor", "libuv")
TARBALL = os.path.join(ROOT, "..", "shared", "vendor", "libuv1_1.50.0.orig.tar.gz")


def _load_sources():
    # By path: src/_cffi_src is a build-time package, not installed with uvcffi.
    path = os.path.join(ROOT, "src", "_cffi_src", "sources.py")
    spec = importlib.util.spec_from_file_location("_uvcffi_build_sources", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sources = _load_sources()

# ---------------------------------------------------------------------------------------
# A CMake interpreter for exactly what the source lists need
# ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s()"]+)|(\()|(\))')


def _commands(text: str) -> list[tuple[str, list[str]]]:
    """Split a CMake file into (command, arguments); comments dropped, quotes kept."""
    out = []
    text = re.sub(r"#[^\n]*", "", text)  # no '#' inside the strings libuv's list code uses
    pos = 0
    head = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
    while True:
        m = head.search(text, pos)
        if m is None:
            return out
        name = m.group(1).lower()
        depth, i, args = 1, m.end(), []
        while depth:
            t = _TOKEN.search(text, i)
            assert t is not None, f"unbalanced parentheses after {name}()"
            i = t.end()
            if t.group(3):
                depth += 1
                args.append("(")
            elif t.group(4):
                depth -= 1
                if depth:
                    args.append(")")
            elif t.group(1) is not None:
                args.append('"' + t.group(1))  # a leading quote marks a quoted argument
            else:
                args.append(t.group(2))
        out.append((name, args))
        pos = i


def _value(arg: str, env: dict[str, object]) -> str | None:
    if arg.startswith('"'):
        return arg[1:]
    v = env.get(arg, arg if arg not in _VARIABLES else None)
    return v if isinstance(v, str) else None


_VARIABLES = {"CMAKE_SYSTEM_NAME", "CMAKE_C_COMPILER_ID"}


def _condition(args: list[str], env: dict[str, object]) -> bool | None:
    """Evaluate an if() condition; None when it depends on something we do not model."""

    def parse_or(i):
        v, i = parse_and(i)
        while i < len(args) and args[i] == "OR":
            w, i = parse_and(i + 1)
            v = True if (v is True or w is True) else (None if None in (v, w) else False)
        return v, i

    def parse_and(i):
        v, i = parse_not(i)
        while i < len(args) and args[i] == "AND":
            w, i = parse_not(i + 1)
            v = False if (v is False or w is False) else (None if None in (v, w) else True)
        return v, i

    def parse_not(i):
        if args[i] == "NOT":
            v, i = parse_not(i + 1)
            return (None if v is None else not v), i
        return parse_atom(i)

    def parse_atom(i):
        if args[i] == "(":
            v, i = parse_or(i + 1)
            assert args[i] == ")"
            return v, i + 1
        if i + 2 < len(args) and args[i + 1] in ("STREQUAL", "MATCHES"):
            left, right = _value(args[i], env), _value(args[i + 2], env)
            if left is None or right is None:
                return None, i + 3
            if args[i + 1] == "STREQUAL":
                return left == right, i + 3
            return re.search(right, left) is not None, i + 3
        if args[i] in ("POLICY", "DEFINED", "TARGET", "EXISTS", "COMMAND"):
            return None, i + 2
        v = env.get(args[i])
        return (v if isinstance(v, bool) else None), i + 1

    try:
        value, end = parse_or(0)
    except (IndexError, AssertionError):
        return None
    return value if end == len(args) else None


def cmake_linux_build() -> dict[str, list[str]]:
    """uv_sources, uv_defines and uv_libraries as libuv's CMake sets them on Linux."""
    with open(os.path.join(LIBUV, "CMakeLists.txt"), encoding="utf-8") as f:
        commands = _commands(f.read())
    env: dict[str, object] = {
        "CMAKE_SYSTEM_NAME": "Linux", "CMAKE_C_COMPILER_ID": "GNU",
        "WIN32": False, "APPLE": False, "CYGWIN": False, "MSYS": False, "MSVC": False,
        "UNIX": True,
    }
    lists: dict[str, list[str]] = {"uv_sources": [], "uv_defines": [], "uv_libraries": []}
    # Each frame: [this branch active?, some earlier branch taken?] with None = unknown.
    stack: list[list[bool | None]] = []
    taken_conditions = []

    def active() -> bool | None:
        state: bool | None = True
        for frame in stack:
            if frame[0] is False:
                return False
            if frame[0] is None:
                state = None
        return state

    for name, args in commands:
        if name == "if":
            cond = _condition(args, env)
            stack.append([cond, cond])
            if cond and active():
                taken_conditions.append(" ".join(args))
        elif name == "elseif":
            frame = stack[-1]
            cond = _condition(args, env)
            if frame[1] is True:
                frame[0] = False
            elif frame[1] is None or cond is None:
                frame[0] = frame[1] = None
            else:
                frame[0] = frame[1] = cond
        elif name == "else":
            frame = stack[-1]
            frame[0] = None if frame[1] is None else not frame[1]
        elif name == "endif":
            stack.pop()
        elif name == "option" and len(args) >= 2 and active():
            # option(NAME "doc" [ON|OFF]): the default build, as `cmake` with no -D flags.
            env.setdefault(args[0], len(args) > 2 and args[2] == "ON")
        elif name in ("set", "list") and args:
            target = args[0] if name == "set" else (args[1] if len(args) > 1 else "")
            if name == "list" and args[0] != "APPEND":
                target = ""
            if target not in lists:
                continue
            state = active()
            assert state is not None, (
                f"cannot decide whether {name}({' '.join(args[:2])} ...) applies on Linux: "
                "extend the interpreter in this test"
            )
            if state:
                values = [a.lstrip('"') for a in args[1 if name == "set" else 2:]]
                if name == "set":
                    lists[target] = values
                else:
                    lists[target].extend(values)
    assert not stack, "unbalanced if()/endif() in CMakeLists.txt"
    lists["taken"] = taken_conditions
    return lists


@pytest.fixture(scope="module")
def cmake_linux():
    return cmake_linux_build()


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------


def test_interpreter_reads_the_blocks_the_linux_list_comes_from(cmake_linux):
    # Guards the guard: the blocks named in sources.py's docstring must have been taken,
    # so an interpreter bug cannot make both sides trivially agree.
    taken = cmake_linux["taken"]
    assert 'CMAKE_SYSTEM_NAME STREQUAL "Linux' in taken
    assert any("MATCHES" in c and "Linux" in c for c in taken), taken
    assert not any("WIN32" == c or "APPLE" == c for c in taken)
    srcs = cmake_linux["uv_sources"]
    assert "src/uv-common.c" in srcs  # set(uv_sources ...)
    assert "src/unix/core.c" in srcs  # the non-WIN32 else() block
    assert "src/unix/linux.c" in srcs  # STREQUAL "Linux"
    assert "src/unix/proctitle.c" in srcs  # APPLE OR ... MATCHES "Android|Linux"
    assert not any(s.startswith("src/win/") for s in srcs)
    assert "src/unix/kqueue.c" not in srcs and "src/unix/aix.c" not in srcs


def test_linux_sources_match_cmakelists(cmake_linux):
    ours, _, _ = sources.libuv_build("linux")
    theirs = cmake_linux["uv_sources"]
    assert len(ours) == len(set(ours)), "sources.py lists a file twice"
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    assert (missing, extra) == ([], []), f"missing from sources.py: {missing}; extra: {extra}"


def test_linux_libraries_match_cmakelists(cmake_linux):
    _, _, libraries = sources.libuv_build("linux")
    assert set(libraries) == set(cmake_linux["uv_libraries"])


def test_linux_defines_match_cmakelists_but_posix_c_source(cmake_linux):
    # sources.py leaves _POSIX_C_SOURCE out on purpose (Python.h defines a newer one).
    _, defines, _ = sources.libuv_build("linux")
    ours = {name if value is None else f"{name}={value}" for name, value in defines}
    theirs = {d for d in cmake_linux["uv_defines"] if not d.startswith("_POSIX_C_SOURCE")}
    assert ours == theirs


def test_sys_platform_linux_selects_the_linux_list():
    assert sources.libuv_build("linux") == sources.libuv_build("linux2")
    with pytest.raises(RuntimeError, match="no libuv source list"):
        sources.libuv_build("plan9")


@pytest.mark.parametrize("platform", sorted(sources.PLATFORMS))
def test_every_listed_source_exists(platform):
    srcs, _, _ = sources.libuv_build(platform)
    assert srcs, platform
    missing = [s for s in srcs if not os.path.isfile(os.path.join(LIBUV, s))]
    assert missing == []


def _vendored_field(name: str) -> str:
    with open(os.path.join(LIBUV, "VENDORED.md"), encoding="utf-8") as f:
        m = re.search(rf"^- {name}: (\S+)", f.read(), re.M)
    assert m is not None, f"VENDORED.md has no '{name}:' line"
    return m.group(1)


def test_vendored_md_records_the_version_in_use():
    import uvcffi

    assert _vendored_field("version") == uvcffi.LIBUV_VERSION
    with open(os.path.join(LIBUV, "include", "uv", "version.h"), encoding="utf-8") as f:
        header = f.read()
    parts = [re.search(rf"#define UV_VERSION_{p}\s+(\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(parts) == uvcffi.LIBUV_VERSION


def test_vendored_md_records_the_tarball_checksum():
    if not os.path.exists(TARBALL):
        pytest.skip(f"release tarball not available at {os.path.normpath(TARBALL)}")
    digest = hashlib.sha256()
    with open(TARBALL, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    assert _vendored_field("sha256") == digest.hexdigest()
