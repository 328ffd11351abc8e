"""The transport interface: send one :class:`~wamsg.http.HttpRequest`, return its answer.

A transport owns connections and nothing else: no retries, no decoding. It
maps its HTTP library's exceptions to wamsg errors at one boundary, with the
outcome the failure implies (connect failures are ``not_sent``; a timeout or
a broken connection after the request went out is ``unknown``), and it never
lets a secret from the request reach an error message. The two library
transports build those errors, stream bodies and cap answers with the same
code (``_common.py``); docs/transports.md has the table.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from ..http import HttpRequest, HttpResponse

__all__ = ["Timeouts", "Transport"]


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Timeouts in seconds for one request; None means no limit.

    Attributes:
        connect: to open a connection (or take one from the pool).
        read: between two reads of the answer.
        total: for the whole request, answer included.
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    total: float | None = None


@runtime_checkable
class Transport(Protocol):
    """Sends requests over HTTP. Implementations: AiohttpTransport, HttpxTransport, MockTransport.

    A transport that applies ``timeouts.total`` itself, raising
    :class:`~wamsg.SendTimeout` (or ``ConnectError`` while connecting) when it
    runs out, sets a class attribute ``enforces_timeouts = True``; the client
    then skips its own cancel scope. Without it the client enforces the
    deadline around :meth:`send`.
    """

    async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
        """Send ``request`` once (never retry) and return the answer."""
        ...

    async def aclose(self) -> None:
        """Release connections. Sending after this raises ConfigError."""
        ...
