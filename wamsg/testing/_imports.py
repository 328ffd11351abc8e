"""Which I/O libraries a module reaches through its imports, read from its source.

The contract kit uses it to prove an adapter is sans-I/O: the adapter's
module, the modules of its own package that it imports (and their parent
packages, which run on import), and the wamsg modules it uses are parsed
with :mod:`ast`, transitively; any import of an HTTP, socket or async
library on the way is reported. Nothing is executed but ``find_spec`` and
the imports needed to tell a submodule from a re-exported name.

wamsg's root package is a façade that also exports the client (which does
I/O): ``from wamsg import Text`` is followed to ``wamsg.models``, where
``Text`` is defined, not through ``wamsg/__init__.py``. ``from wamsg import
Client`` is followed to ``wamsg.client`` and reported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["IO_LIBRARIES", "io_imports", "io_loaded_on_import"]

#: Modules an adapter must not import: HTTP clients, sockets, event loops.
IO_LIBRARIES = frozenset(
    {
        "aiohttp",
        "anyio",
        "asyncio",
        "curio",
        "http.client",
        "httpcore",
        "httpx",
        "pycurl",
        "requests",
        "selectors",
        "sniffio",
        "socket",
        "ssl",
        "trio",
        "urllib.request",
        "urllib3",
    }
)

_FACADES = frozenset({"wamsg"})


def _forbidden(module: str) -> str | None:
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in IO_LIBRARIES:
            return prefix
    return None


def _source(module: str) -> tuple[Path, bool] | None:
    """The source file of ``module`` and whether it is a package, or None."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent is a plain module, or no such module
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin), spec.submodule_search_locations is not None


def _defining_module(package: str, name: str) -> str | None:
    """Where ``name``, re-exported by ``package``, is defined."""
    if _source(f"{package}.{name}") is not None:
        return f"{package}.{name}"
    try:
        value = getattr(importlib.import_module(package), name)
    except (ImportError, AttributeError):
        return None
    defined = getattr(value, "__module__", None)
    return defined if isinstance(defined, str) else None


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:`` (never true at run time)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _statements(tree: ast.AST, *, import_time: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import in ``tree`` that can run: ``if TYPE_CHECKING:`` bodies are skipped.

    With ``import_time``, only those that run when the module is imported
    (not inside a function): how a library is judged, since the adapter
    does not call every function of a library it uses.
    """
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        elif import_time and isinstance(node, _FUNCTIONS):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(
    module: str, path: Path, is_package: bool, *, import_time: bool = False
) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every import statement in the file, absolute."""
    here = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _statements(tree, import_time=import_time):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        else:
            if node.level:
                base = here.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names if alias.name != "*"]))
    return found


def _followed(top: str, trusted: frozenset[str]) -> bool:
    """Whether the walk goes into top-level package ``top``.

    The standard library is not walked (its I/O modules are named in
    :data:`IO_LIBRARIES`), nor are packages the caller trusts; every other
    package, the adapter's own helpers on PyPI included, is (by the imports
    that run when it is imported).
    """
    return top not in sys.stdlib_module_names and top not in trusted and not _forbidden(top)


def io_imports(module: str, *, trusted: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """The I/O libraries each module reached from ``module`` imports.

    Returns ``{module: [library, ...]}`` for the offending modules only
    (empty when ``module`` is sans-I/O). Imports are followed into every
    package but the standard library and ``trusted`` ones (compiled
    modules, which have no source, are not followed); imports under ``if
    TYPE_CHECKING:`` never run and are ignored.
    """
    own = module.split(".")[0]
    follow = {own, "wamsg"}
    bad: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo = [module]
    # The adapter's own parent packages run when it is imported.
    parts = module.split(".")
    todo.extend(".".join(parts[:i]) for i in range(1, len(parts)) if parts[0] not in _FACADES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        located = _source(name)
        if located is None:
            continue
        path, is_package = located
        # The adapter's own code and wamsg's are judged whole; a library by
        # what runs when it is imported.
        is_library = name.split(".")[0] not in {own, "wamsg"}
        for target, names in _imports(name, path, is_package, import_time=is_library):
            top = target.split(".")[0]
            if top not in follow and _followed(top, trusted):
                follow.add(top)
            if top not in follow:
                library = _forbidden(target) or next(
                    (lib for n in names if (lib := _forbidden(f"{target}.{n}"))), None
                )
                if library:
                    bad.setdefault(name, []).append(library)
                continue
            if target not in _FACADES:
                todo.append(target)
            for imported in names:
                defined = _defining_module(target, imported)
                if defined is not None and defined.split(".")[0] in follow:
                    todo.append(defined)
    return {name: sorted(set(libs)) for name, libs in bad.items()}


_PROBE = """
import json, sys
import wamsg, wamsg.providers
before = set(sys.modules)
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def io_loaded_on_import(module: str) -> list[str]:
    """I/O libraries that importing ``module`` loads, beyond what wamsg loads itself.

    Run in a fresh interpreter with this one's ``sys.path``, so that imports made at run time
    (``importlib.import_module("httpx")``) are seen too. wamsg's client
    already loads aiohttp, anyio and asyncio: those cannot be told apart
    here and are left to the static walk, :func:`io_imports`.
    """
    # The same path as this process: the module may have been put on it here.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", _PROBE, module],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {run.stderr.strip()[-500:]}")
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    return sorted({lib for name in loaded if (lib := _forbidden(name))})
