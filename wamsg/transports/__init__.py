"""Transports: how requests reach the gateway.

``AiohttpTransport`` is the default (asyncio only); ``HttpxTransport`` runs on
asyncio and trio and comes with the extra ``pip install 'wamsg[httpx]'``.
Both are imported lazily, on first access, so that the rest of wamsg can be
used (and tested) without touching aiohttp, and ``import wamsg`` never
imports httpx. See docs/transports.md for which one to choose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Timeouts, Transport
from .mock import MockTransport

if TYPE_CHECKING:
    from .aiohttp import AiohttpTransport
    from .httpx import HttpxTransport

__all__ = ["AiohttpTransport", "HttpxTransport", "MockTransport", "Timeouts", "Transport"]


def __getattr__(name: str) -> Any:
    if name == "AiohttpTransport":
        from .aiohttp import AiohttpTransport

        return AiohttpTransport
    if name == "HttpxTransport":
        # Raises ImportError, with the install line, when httpx is missing.
        from .httpx import HttpxTransport

        return HttpxTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
