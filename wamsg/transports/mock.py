"""A transport that calls a function instead of the network, for client-logic tests.

It tests what the client does (deadlines, error handling, bookkeeping), not
whether a gateway would accept the request: that is what golden files and the
real-server tests are for.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

from ..errors import ConfigError, SendTimeout
from ..http import HttpRequest, HttpResponse
from .base import Timeouts

__all__ = ["Handler", "MockTransport"]

Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class MockTransport:
    """Answer every request with ``handler(request)``.

    The handler may be sync or async, return an :class:`~wamsg.http.HttpResponse`,
    or raise a wamsg error (``ConnectError``, ``SendTimeout``...) to act out a
    network failure. The last ``keep`` requests are kept in :attr:`requests`.
    """

    #: An async handler runs under ``timeouts.total``; a sync one cannot overrun.
    enforces_timeouts = True

    def __init__(self, handler: Handler, *, keep: int = 1000) -> None:
        self.handler = handler
        self.requests: deque[HttpRequest] = deque(maxlen=keep)
        self.calls = 0
        self.closed = False

    async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
        """Record ``request`` and return the handler's answer."""
        if self.closed:
            raise ConfigError("transport is closed")
        self.calls += 1
        self.requests.append(request)
        answer = self.handler(request)
        if not inspect.isawaitable(answer):
            return answer
        try:
            with anyio.fail_after(timeouts.total):
                return await answer
        except TimeoutError:
            raise SendTimeout(
                f"no answer within {timeouts.total}s; the message may have been sent"
            ) from None

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True
