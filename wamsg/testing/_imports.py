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
from pathlib import Path

__all__ = ["IO_LIBRARIES", "io_imports"]

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


def _imports(module: str, path: Path, is_package: bool) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every import statement in the file, absolute."""
    here = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names if alias.name != "*"]))
    return found


def io_imports(module: str) -> dict[str, list[str]]:
    """The I/O libraries each module reached from ``module`` imports.

    Returns ``{module: [library, ...]}`` for the offending modules only
    (empty when ``module`` is sans-I/O). Modules of ``module``'s own
    top-level package and of wamsg are followed; any other import is
    checked against :data:`IO_LIBRARIES` and not followed.
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
        for target, names in _imports(name, path, is_package):
            if target.split(".")[0] not in follow:
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
