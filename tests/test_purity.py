"""Adapters do no I/O: wamsg/providers/ imports no HTTP or async library.

The check follows imports inside wamsg transitively, so a provider cannot
reach aiohttp through a helper module either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wamsg"
FORBIDDEN = {"aiohttp", "httpx", "anyio", "asyncio", "trio", "sniffio", "socket", "requests"}


def _module_path(name: str) -> Path | None:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (at any depth in the file)."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            found.add(module)
            # `from . import _waha` imports a submodule
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _reachable(start: Path) -> dict[str, set[str]]:
    """Every wamsg module reachable from ``start``, with its outside imports."""
    seen: dict[str, set[str]] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        name = _module_name(path)
        if name in seen:
            continue
        outside: set[str] = set()
        for module in _imports(path):
            if module.split(".")[0] == "wamsg":
                target = _module_path(module)
                if target is not None:
                    todo.append(target)
                # importing wamsg.x runs wamsg/__init__ too: but the providers
                # package is imported as wamsg.providers.*, whose parents are
                # checked separately below.
            else:
                outside.add(module.split(".")[0])
        seen[name] = outside
    return seen


PROVIDER_MODULES = sorted(p for p in (PACKAGE / "providers").glob("*.py"))


@pytest.mark.parametrize("path", PROVIDER_MODULES, ids=lambda p: p.name)
def test_provider_module_imports_no_io_library(path: Path) -> None:
    bad = {
        module: sorted(outside & FORBIDDEN)
        for module, outside in _reachable(path).items()
        if outside & FORBIDDEN and module != "wamsg"
    }
    assert bad == {}, f"{path.name} reaches I/O libraries: {bad}"


def test_the_check_sees_a_forbidden_import() -> None:
    # The check itself must be able to fail: the aiohttp transport and the
    # client (through the transports package) are flagged by the same walk.
    transport = _reachable(PACKAGE / "transports" / "aiohttp.py")
    assert "aiohttp" in transport["wamsg.transports.aiohttp"]
    client = _reachable(PACKAGE / "client.py")
    assert "anyio" in client["wamsg.client"]


def test_there_are_provider_modules() -> None:
    assert len(PROVIDER_MODULES) >= 4
