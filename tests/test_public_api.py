"""uvcffi's public surface and its internal layering (trio's test_exports idea).

The public API is what ``uvcffi.__all__`` names, and ``uvcffi/__init__.py`` only
re-exports it.  The layers (docs/design.md), checked on the import statements of every
module with ``ast``:

* layer 0, ``_ffi`` (the compiled ``_uvlib``): imported only by ``_errors`` and ``_uv/*``;
* layer 1, ``_uv/*``: libuv's vocabulary, never asyncio's (no ``_loop``, ``_futures``,
  ``_tasks``, ``_runner``, ``_policy``);
* ``_futures``/``_tasks``: pure Python on asyncio, independent of libuv (no ``_uv``,
  ``_loop``, ``_ffi``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re

import pytest

import uvcffi

PACKAGE_DIR = os.path.dirname(os.path.abspath(uvcffi.__file__))

DOCUMENTED = {
    "Loop", "new_event_loop", "run", "Runner", "Future", "Task", "EventLoopPolicy",
    "install", "LIBUV_VERSION",
}


# ---------------------------------------------------------------------------------------
# Module graph
# ---------------------------------------------------------------------------------------


def _module_files() -> dict[str, str]:
    """Every module of the package: dotted name -> path."""
    modules = {}
    for dirpath, dirnames, filenames in os.walk(PACKAGE_DIR):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            if not filename.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, filename), PACKAGE_DIR)
            parts = ["uvcffi"] + rel[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = os.path.join(dirpath, filename)
    return modules


MODULES = _module_files()
# The compiled extension is a module too, though not a .py file.
KNOWN = set(MODULES) | {"uvcffi._uvlib"}


def _known_prefix(name: str) -> str | None:
    """The uvcffi module that `name` (a module, or a name inside one) belongs to."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in KNOWN:
            return candidate
    return None


def _imports(module: str) -> set[str]:
    """The uvcffi modules `module` imports (including under TYPE_CHECKING)."""
    path = MODULES[module]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_known_prefix(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                # `from pkg import mod` imports pkg.mod; `from mod import name`, mod.
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in KNOWN else _known_prefix(base))
    found.discard(None)
    found.discard(module)
    return found


def _is_in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def _modules_where(predicate) -> list[str]:
    return sorted(m for m in MODULES if predicate(m))


def test_the_import_parser_sees_known_imports():
    # Guards the layering tests below against a parser that finds nothing.
    assert "uvcffi._ffi" in _imports("uvcffi._uv.loop")
    assert "uvcffi._errors" in _imports("uvcffi._uv.timer")
    assert "uvcffi._uvlib" in _imports("uvcffi._ffi")
    assert {"uvcffi._uv.async_", "uvcffi._uv.loop"} <= _imports("uvcffi._loop.core")
    assert "uvcffi._loop.core" in _imports("uvcffi._loop.handles")  # TYPE_CHECKING too
    assert "uvcffi._futures" in _imports("uvcffi._tasks")


# ---------------------------------------------------------------------------------------
# Layering
# ---------------------------------------------------------------------------------------

FFI_ALLOWED = ("uvcffi._ffi", "uvcffi._errors", "uvcffi._uv")


def _ffi_params():
    return [
        pytest.param(module, id=module)
        for module in _modules_where(lambda m: not any(_is_in(m, a) for a in FFI_ALLOWED))
    ]


@pytest.mark.parametrize("module", _ffi_params())
def test_only_ffi_errors_and_uv_import_the_extension(module):
    bad = {m for m in _imports(module) if m in ("uvcffi._ffi", "uvcffi._uvlib")}
    assert bad == set(), f"{module} imports {sorted(bad)}"


def test_the_extension_is_loaded_only_by_ffi():
    importers = _modules_where(lambda m: "uvcffi._uvlib" in _imports(m))
    assert importers == ["uvcffi._ffi"]


@pytest.mark.parametrize("module", _modules_where(lambda m: _is_in(m, "uvcffi._uv")))
def test_uv_layer_knows_nothing_of_asyncio_layers(module):
    forbidden = ("uvcffi._loop", "uvcffi._futures", "uvcffi._tasks", "uvcffi._runner",
                 "uvcffi._policy")
    imports = _imports(module)
    bad = {m for m in imports if any(_is_in(m, f) for f in forbidden)}
    assert bad == set(), f"{module} imports {sorted(bad)}"
    # Nor the top package, which imports all of them.
    assert "uvcffi" not in imports


@pytest.mark.parametrize("module", ["uvcffi._futures", "uvcffi._tasks"])
def test_futures_and_tasks_are_independent_of_libuv(module):
    forbidden = ("uvcffi._uv", "uvcffi._loop", "uvcffi._ffi", "uvcffi._uvlib")
    imports = _imports(module)
    bad = {m for m in imports if any(_is_in(m, f) for f in forbidden)}
    assert bad == set(), f"{module} imports {sorted(bad)}"
    assert "uvcffi" not in imports


def test_no_import_cycles_between_layers():
    # _uv never reaches _loop even indirectly: walk the graph from every _uv module.
    for start in _modules_where(lambda m: _is_in(m, "uvcffi._uv")):
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module in seen or module not in MODULES:
                continue
            seen.add(module)
            todo.extend(_imports(module))
        assert not any(_is_in(m, "uvcffi._loop") for m in seen), (start, sorted(seen))


# ---------------------------------------------------------------------------------------
# The public surface
# ---------------------------------------------------------------------------------------


def test_all_is_the_documented_surface():
    assert set(uvcffi.__all__) == DOCUMENTED
    assert len(uvcffi.__all__) == len(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_exported_name_exists(name):
    assert hasattr(uvcffi, name)
    obj = getattr(uvcffi, name)
    if name != "LIBUV_VERSION":
        # Defined in a private module and re-exported, never in __init__ itself.
        assert obj.__module__.startswith("uvcffi._"), obj.__module__


def test_init_only_re_exports():
    path = MODULES["uvcffi"]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    imported = set()
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            assert node.level == 1, ast.dump(node)
            for alias in node.names:
                # `from .x import y as y`: the explicit re-export form.
                assert alias.asname == alias.name, ast.dump(node)
                imported.add(alias.name)
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("__all__", "__version__"):
                continue
        raise AssertionError(f"uvcffi/__init__.py line {node.lineno} is not a re-export: "
                             f"{ast.dump(node)[:120]}")
    assert imported == set(uvcffi.__all__)


def test_version_strings():
    assert re.fullmatch(r"\d+\.\d+\.\d+", uvcffi.LIBUV_VERSION)
    assert re.fullmatch(r"\d+\.\d+\.\d+", uvcffi.__version__)


def test_py_typed_marker_exists():
    assert os.path.isfile(os.path.join(PACKAGE_DIR, "py.typed"))


def test_loop_is_an_abstract_event_loop():
    assert issubclass(uvcffi.Loop, asyncio.AbstractEventLoop)
    loop = uvcffi.new_event_loop()
    try:
        assert isinstance(loop, uvcffi.Loop)
        assert loop.run_until_complete(asyncio.sleep(0, "done")) == "done"
    finally:
        loop.close()


def test_run_runs_a_coroutine_on_a_uvcffi_loop():
    async def main():
        return type(asyncio.get_running_loop())

    assert uvcffi.run(main()) is uvcffi.Loop


_PUBLIC_METHODS = sorted(
    name for name in dir(asyncio.AbstractEventLoop)
    if not name.startswith("_") and callable(getattr(asyncio.AbstractEventLoop, name))
)


@pytest.mark.parametrize("name", _PUBLIC_METHODS)
def test_every_abstract_event_loop_method_is_implemented(name):
    abstract = getattr(asyncio.AbstractEventLoop, name)
    ours = getattr(uvcffi.Loop, name, None)
    assert ours is not None
    # AbstractEventLoop's own methods only raise NotImplementedError: ours must replace
    # every one (with the real thing, or a stub naming the method).
    assert ours is not abstract
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(abstract)
    # Callable with asyncio's parameter names.
    ours_params = inspect.signature(ours).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in ours_params.values())
    takes_args = any(p.kind is p.VAR_POSITIONAL for p in ours_params.values())
    for param in inspect.signature(abstract).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            assert takes_args, f"{name} does not take *{param.name}"
        elif param.kind is param.VAR_KEYWORD:
            assert takes_kwargs, f"{name} does not take **{param.name}"
        elif param.name not in ours_params:
            assert takes_kwargs or (param.kind is param.POSITIONAL_ONLY and takes_args), (
                f"{name} has no parameter {param.name!r}"
            )
