"""The default transport, on aiohttp (asyncio only).

The one rule of this module: every aiohttp exception becomes a wamsg error
here, with the outcome it implies, and with the request's secrets scrubbed
from its text. aiohttp puts the full URL in some messages (``Connection
timeout to host <url>``), and Wawp's URL carries the access token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from .._redact import Secret, redact
from .._version import __version__
from ..errors import ConfigError, ConnectError, Disconnected, SendTimeout, WamsgError
from ..http import HttpRequest, HttpResponse, StreamBody
from .base import Timeouts

__all__ = ["AiohttpTransport"]

#: Largest success body read (the WEBJS answer embeds a base64 thumbnail).
DEFAULT_MAX_BODY = 8 * 1024 * 1024
#: Largest error body read: enough for any error text, not for a runaway page.
DEFAULT_MAX_ERROR_BODY = 64 * 1024
USER_AGENT = f"wamsg/{__version__} aiohttp/{aiohttp.__version__}"


class AiohttpTransport:
    """Send requests with an :class:`aiohttp.ClientSession`.

    Args:
        session: a session to use. It stays yours: :meth:`aclose` leaves it
            open. Without one, the transport creates its own on first use,
            inside the running event loop, and closes it in :meth:`aclose`.
        limit: connection pool size of the session it creates.
        max_body: largest success body read, in bytes.
        max_error_body: largest error body read, in bytes; the rest is dropped
            and the response is marked ``truncated``.
    """

    #: aiohttp applies ``timeouts.total`` to the whole exchange, body included.
    enforces_timeouts = True

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        limit: int = 100,
        max_body: int = DEFAULT_MAX_BODY,
        max_error_body: int = DEFAULT_MAX_ERROR_BODY,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limit = limit
        self._max_body = max_body
        self._max_error_body = max_error_body
        self._closed = False
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("owned session" if self._owned else "shared session")
        return f"AiohttpTransport({state})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConfigError("transport is closed")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError(
                "AiohttpTransport runs on asyncio only; under trio use the httpx "
                "transport (pip install 'wamsg[httpx]')"
            ) from None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
            )
            self._loop = loop
        elif self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ConfigError(
                "AiohttpTransport was first used in another event loop; create one "
                "client (and transport) per event loop"
            )
        return self._session

    def _client_timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(timeouts)
        if cached is None:
            if len(self._timeouts) > 64:  # per-call deadlines vary; keep the cache bounded
                self._timeouts.clear()
            cached = aiohttp.ClientTimeout(
                total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
            )
            self._timeouts[timeouts] = cached
        return cached

    async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
        """Send ``request`` once; aiohttp never retries a POST."""
        session = self._get_session()
        headers = request.revealed_headers()
        data: bytes | AsyncIterator[bytes]
        if isinstance(request.body, StreamBody):
            data = request.body.open()
            if request.body.length is not None:
                headers["Content-Length"] = str(request.body.length)
        else:
            data = request.body
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.revealed_query() or None,
                headers=headers,
                data=data,
                timeout=self._client_timeout(timeouts),
                # A redirected POST would turn into a GET; a send API that
                # redirects is misconfigured, and the caller should see it.
                allow_redirects=False,
            ) as resp:
                body, truncated = await self._read(resp)
                return HttpResponse(
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                    truncated=truncated,
                )
        except aiohttp.ClientError as exc:
            raise _map_error(exc, request.secrets()) from _safe_cause(exc, request.secrets())
        except TimeoutError as exc:  # aiohttp's total timeout
            raise _map_error(exc, request.secrets()) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        cap = self._max_body if resp.status < 400 else self._max_error_body
        length = resp.content_length
        if length is not None and length <= cap:
            return await resp.read(), False
        chunks: list[bytes] = []
        size = 0
        while size < cap:
            chunk = await resp.content.read(cap - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        truncated = not resp.content.at_eof()
        return b"".join(chunks), truncated

    async def aclose(self) -> None:
        """Close the session if this transport created it."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned:
            await session.close()


def _map_error(exc: BaseException, secrets: tuple[Secret, ...]) -> WamsgError:
    """The wamsg error for an aiohttp failure, with the outcome it implies."""
    text = redact(f"{type(exc).__name__}: {exc}", secrets)
    # Connect failures (refused, DNS, TLS handshake, connect timeout) happen
    # before a byte of the request is written: nothing was sent.
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return ConnectError(f"could not connect: {text}")
    # From here on the request may have reached the gateway.
    if isinstance(exc, asyncio.TimeoutError):
        return SendTimeout(f"no answer in time: {text}")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigError(f"invalid URL: {text}")
    return Disconnected(f"connection lost: {text}")


def _safe_cause(exc: BaseException, secrets: tuple[Secret, ...]) -> BaseException | None:
    """Chain the original exception only when its text holds no secret."""
    text = f"{exc!s} {exc!r} {exc.args!r}"
    if any(s.reveal() and s.reveal() in text for s in secrets):
        return None
    return exc
