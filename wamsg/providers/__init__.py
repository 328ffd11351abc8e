"""Gateway adapters, one module per gateway, and the registry that finds them by name.

Providers are found through the entry-point group ``wamsg.providers``: each
entry maps a name to an adapter class (or factory), ``"module:attr"``. The
four built-ins are registered that way in wamsg's own ``pyproject.toml``,
and a third-party package adds a provider by declaring one entry in its
own (docs/adding-a-provider.md). :func:`register` adds one at run time.

Nothing in this package does I/O or imports an HTTP or async library.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import ConfigError
from .base import Adapter, Capabilities
from .config import shown_name

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Capabilities",
    "available",
    "create_adapter",
    "get_adapter",
    "register",
    "reload_providers",
]

AdapterFactory = Callable[..., Adapter]

#: The entry-point group providers register in.
ENTRY_POINT_GROUP = "wamsg.providers"

#: The built-ins as wamsg's pyproject.toml declares them. Used only when
#: wamsg runs from a source tree that was never installed (no distribution
#: metadata, so no entry points); a test keeps the two lists equal.
_BUILTINS: dict[str, str] = {
    "gowa": "wamsg.providers.gowa:GowaAdapter",
    "waha": "wamsg.providers.waha:WahaAdapter",
    "wawp": "wamsg.providers.wawp:WawpAdapter",
    "wuts": "wamsg.providers.wuts:WutsAdapter",
}

#: Providers added with register(): these win over entry points.
_registered: dict[str, AdapterFactory] = {}
#: Entry points loaded so far, by name.
_loaded: dict[str, AdapterFactory] = {}

#: What a provider name looks like (short, as registered names are); any
#: other value is not echoed in errors: it may be a token passed by mistake.
_NAME_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class _Source(NamedTuple):
    """Where a provider comes from: ``module:attr`` and the distribution declaring it."""

    target: str
    package: str


_sources: dict[str, list[_Source]] | None = None


def _discover() -> dict[str, list[_Source]]:
    """Every ``wamsg.providers`` entry point, by lower-cased name (cached)."""
    global _sources
    if _sources is None:
        found: dict[str, list[_Source]] = {}
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            name = entry.name.strip().lower()
            if not _NAME_SHAPE.fullmatch(name):
                continue  # not a name Client(...) could ask for
            dist = entry.dist
            package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
            source = _Source(entry.value, package)
            # One distribution can be seen twice on sys.path (an editable
            # install beside a build): the same target is one provider.
            if source.target not in [s.target for s in found.get(name, [])]:
                found.setdefault(name, []).append(source)
        for name, target in _BUILTINS.items():
            found.setdefault(name, [_Source(target, "wamsg (source tree)")])
        _sources = found
    return _sources


def reload_providers() -> None:
    """Forget discovered entry points, so that packages installed since are found."""
    global _sources
    _sources = None
    _loaded.clear()


def register(name: str, factory: AdapterFactory) -> None:
    """Make an adapter available by name (``Client(name, ...)``) in this process.

    It wins over an installed provider of the same name. Packages should
    declare an entry point instead, so that every process finds them.
    """
    if not name or not name.isidentifier():
        raise ConfigError(f"provider name must be an identifier, got {name!r}")
    _registered[name.lower()] = factory


def available() -> list[str]:
    """The names of every provider that can be created, sorted (nothing is imported)."""
    return sorted({*_discover(), *_registered})


def _load(name: str, source: _Source) -> AdapterFactory:
    module_name, _, attr = source.target.partition(":")
    try:
        factory: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            factory = getattr(factory, part)
    except Exception as exc:  # a broken plug-in must not hide the cause
        raise ConfigError(
            f"provider {name!r} ({source.target}, from {source.package}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise ConfigError(
            f"provider {name!r} ({source.target}, from {source.package}) is not a class or factory"
        )
    return factory  # type: ignore[no-any-return]


def get_adapter(name: str) -> AdapterFactory:
    """The adapter class (or factory) registered under ``name``.

    Raises:
        ConfigError: no such provider (the message lists the installed ones),
            two packages declare the name, or its module fails to import.
    """
    key = name.strip().lower()
    if key in _registered:
        return _registered[key]
    if key in _loaded:
        return _loaded[key]
    sources = _discover().get(key)
    if not sources:
        shown = repr(name) if _NAME_SHAPE.fullmatch(name.strip()) else "(not shown)"
        raise ConfigError(
            f"unknown provider {shown}; installed providers: {', '.join(available())}"
        )
    if len(sources) > 1:
        raise ConfigError(
            f"provider {key!r} is declared by more than one package: "
            + "; ".join(f"{s.target} from {s.package}" for s in sorted(sources, key=str))
            + "; uninstall one, or call wamsg.register() to choose"
        )
    factory = _load(key, sources[0])
    _loaded[key] = factory
    return factory


def create_adapter(name: str, **settings: Any) -> Adapter:
    """Create the adapter registered under ``name`` from its settings.

    Unknown or missing settings raise :class:`~wamsg.ConfigError` naming the
    settings the provider takes.
    """
    factory = get_adapter(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return factory(**settings)
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = [key for key in settings if key not in params]
    if unknown and not takes_any:
        raise ConfigError(
            f"{name}: unknown setting(s) {', '.join(sorted(map(shown_name, unknown)))}; "
            f"it takes {', '.join(names)}"
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and n not in settings
    ]
    if missing:
        raise ConfigError(f"{name}: missing setting(s) {', '.join(missing)}")
    return factory(**settings)
