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
    "PROVIDER_NAME",
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

#: The rule for a provider name, as a DSN's scheme can hold it: a lower-case
#: ASCII letter first, then lower-case ASCII letters, digits or underscores,
#: at most 32 characters in all. Names are case-insensitive: an entry point's
#: or register()'s name is lower-cased (ASCII only) before it is checked.
#: Entry points with other names are ignored (and listed in the unknown-provider
#: error); register() refuses them. A name asked for that does not fit is not
#: echoed in errors: it may be a token passed by mistake.
PROVIDER_NAME: re.Pattern[str] = re.compile(r"[a-z][a-z0-9_]{0,31}")

#: How many characters of a package-declared name an error shows.
_SHOWN_CHARS = 40


def _canonical(name: object) -> str | None:
    """``name`` lower-cased if it fits :data:`PROVIDER_NAME`, else None."""
    if not isinstance(name, str) or not name.isascii():
        return None  # str.lower() maps some non-ASCII letters to ASCII ones ("\u212a")
    key = name.lower()
    return key if PROVIDER_NAME.fullmatch(key) else None


def _cut(text: str) -> str:
    """``text`` cut to a length an error message can carry."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _short(text: str) -> str:
    """``text`` cut, then quoted."""
    return repr(_cut(text))


class _Source(NamedTuple):
    """Where a provider comes from: ``module:attr`` and the distribution declaring it."""

    target: str
    package: str


_sources: dict[str, list[_Source]] | None = None
#: Entry points skipped because their names do not fit PROVIDER_NAME:
#: (name as declared, package), shown in the unknown-provider error.
_ignored: list[tuple[str, str]] = []


def _discover() -> dict[str, list[_Source]]:
    """Every ``wamsg.providers`` entry point, by lower-cased name (cached)."""
    global _sources
    if _sources is None:
        found: dict[str, list[_Source]] = {}
        ignored: list[tuple[str, str]] = []
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry.dist
            package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
            name = _canonical(entry.name.strip())
            if name is None:  # not a name Client(...) or a DSN could ask for
                if (entry.name, package) not in ignored:
                    ignored.append((entry.name, package))
                continue
            source = _Source(entry.value, package)
            # One distribution can be seen twice on sys.path (an editable
            # install beside a build): the same target is one provider.
            if source.target not in [s.target for s in found.get(name, [])]:
                found.setdefault(name, []).append(source)
        for name, target in _BUILTINS.items():
            found.setdefault(name, [_Source(target, "wamsg (source tree)")])
        _ignored[:] = ignored
        _sources = found
    return _sources


def reload_providers() -> None:
    """Forget discovered entry points, so that packages installed since are found."""
    global _sources
    _sources = None
    _ignored.clear()
    _loaded.clear()


def register(name: str, factory: AdapterFactory) -> None:
    """Make an adapter available by name (``Client(name, ...)``) in this process.

    ``name`` follows :data:`PROVIDER_NAME` (``acme``, ``acme_v2``; case does
    not matter), as an entry point's does. It wins over an installed
    provider of the same name. Packages should declare an entry point
    instead, so that every process finds them.

    Raises:
        ConfigError: a name that does not fit the rule.
    """
    key = _canonical(name)
    if key is None:
        shown = _short(name) if isinstance(name, str) else type(name).__name__
        raise ConfigError(
            "provider name must be a lower-case ASCII letter, then letters, digits or "
            f"underscores, at most 32 characters (as in a DSN's scheme), got {shown}"
        )
    _registered[key] = factory


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
        ConfigError: ``name`` is not a str; no such provider (the message
            lists the installed ones, and entry points ignored for their
            names), two packages declare the name, or its module fails to
            import.
    """
    if not isinstance(name, str):
        raise ConfigError(
            f"provider must be a name (str) such as 'wawp', not {type(name).__name__}"
        )
    key = name.strip().lower()
    if key in _registered:
        return _registered[key]
    if key in _loaded:
        return _loaded[key]
    found = _discover()
    canonical = _canonical(name.strip())
    sources = found.get(key) if canonical is not None else None
    if not sources:
        shown = repr(canonical) if canonical is not None else "(not shown)"
        raise ConfigError(
            f"unknown provider {shown}; installed providers: {', '.join(available())}"
            + _ignored_note()
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


def _ignored_note() -> str:
    """The entry points skipped for their names, for the unknown-provider error."""
    if not _ignored:
        return ""
    listed = [f"{_short(name)} (from {_cut(package)})" for name, package in _ignored[:5]]
    more = f" and {len(_ignored) - 5} more" if len(_ignored) > 5 else ""
    return (
        f"; ignored entry points with invalid names: {', '.join(listed)}{more} "
        "(a name is a lower-case letter, then letters, digits or underscores)"
    )


def create_adapter(name: str, **settings: Any) -> Adapter:
    """Create the adapter registered under ``name`` from its settings.

    Raises:
        ConfigError: ``name`` is not a str or no installed provider (see
            :func:`get_adapter`); unknown or missing settings, naming the
            settings the provider takes (an unknown name is shown only when
            it looks like a setting name).
    """
    factory = get_adapter(name)
    name = name.strip().lower()
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
