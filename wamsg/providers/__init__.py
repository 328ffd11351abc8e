"""Gateway adapters, one module per gateway, and the registry that finds them by name.

Nothing in this package does I/O or imports an HTTP or async library.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .base import Adapter, Capabilities

__all__ = ["Adapter", "Capabilities", "available", "create_adapter", "get_adapter", "register"]

AdapterFactory = Callable[..., Adapter]

# Built-ins are imported on first use, so `import wamsg` stays cheap.
_BUILTINS: dict[str, str] = {
    "gowa": "wamsg.providers.gowa:GowaAdapter",
    "waha": "wamsg.providers.waha:WahaAdapter",
    "wawp": "wamsg.providers.wawp:WawpAdapter",
    "wuts": "wamsg.providers.wuts:WutsAdapter",
}
_registered: dict[str, AdapterFactory] = {}

#: What a provider name looks like (short, as registered names are); any
#: other value is not echoed in errors: it may be a token passed by mistake.
_NAME_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")


def register(name: str, factory: AdapterFactory) -> None:
    """Make an adapter available by name (``Client(name, ...)``)."""
    if not name or not name.isidentifier():
        raise ConfigError(f"provider name must be an identifier, got {name!r}")
    _registered[name.lower()] = factory


def available() -> list[str]:
    """The names of every provider that can be created, sorted."""
    return sorted({*_BUILTINS, *_registered})


def get_adapter(name: str) -> AdapterFactory:
    """The adapter class (or factory) registered under ``name``."""
    key = name.strip().lower()
    if key in _registered:
        return _registered[key]
    target = _BUILTINS.get(key)
    if target is None:
        shown = repr(name) if _NAME_SHAPE.fullmatch(name.strip()) else "(not shown)"
        raise ConfigError(
            f"unknown provider {shown}; installed providers: {', '.join(available())}"
        )
    module_name, _, attr = target.partition(":")
    factory: AdapterFactory = getattr(importlib.import_module(module_name), attr)
    _registered[key] = factory
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
            f"{name}: unknown setting(s) {', '.join(sorted(unknown))}; it takes {', '.join(names)}"
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
