"""Transports: how requests reach the gateway.

``AiohttpTransport`` is the default. It is imported lazily so that the rest of
wamsg can be used (and tested) without touching aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Timeouts, Transport
from .mock import MockTransport

if TYPE_CHECKING:
    from .aiohttp import AiohttpTransport

__all__ = ["AiohttpTransport", "MockTransport", "Timeouts", "Transport"]


def __getattr__(name: str) -> Any:
    if name == "AiohttpTransport":
        from .aiohttp import AiohttpTransport

        return AiohttpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
