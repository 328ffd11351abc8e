"""The default transport, on aiohttp (asyncio only).

The one rule of this module: every aiohttp exception becomes a wamsg error
here, with the outcome it implies, and with none of aiohttp's own text:
aiohttp puts the full URL in some messages (``Connection timeout to host
<url>``, percent-encoded), and Wawp's URL carries the access token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import anyio

from .._streams import iter_body
from .._version import __version__
from ..errors import (
    ConfigError,
    ConnectError,
    Disconnected,
    Outcome,
    SendTimeout,
    TransportError,
    WamsgError,
)
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
                # Node-based gateways (WAHA) close idle connections after 5 s;
                # reusing one they are closing turns a POST into an
                # "unknown" outcome, so idle connections are dropped first.
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=4.0),
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
        body = request.body
        source: _BodySource | None = None
        if not isinstance(body, bytes):
            source = _BodySource(body.open() if isinstance(body, StreamBody) else iter_body(body))
            if body.length is not None:
                # Known up front: sent as Content-Length, not chunked, since
                # some gateways refuse chunked uploads.
                headers["Content-Length"] = str(body.length)
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.revealed_query() or None,
                headers=headers,
                data=body if source is None else source,
                timeout=self._client_timeout(timeouts),
                # A redirected POST would turn into a GET; a send API that
                # redirects is misconfigured, and the caller should see it.
                allow_redirects=False,
                # A shared session may have been created raising for status;
                # statuses are the adapter's to read.
                raise_for_status=False,
            ) as resp:
                data, truncated = await self._read(resp)
                return HttpResponse(
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=data,
                    truncated=truncated,
                )
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            if source is not None and source.error is not None:
                # The body itself failed (a file read error, a stream of the
                # wrong length): the gateway never had a whole request.
                raise _body_error(source.error) from None
            # Never chained: aiohttp's texts can hold the URL, query included.
            raise _map_error(exc) from None
        finally:
            if source is not None:
                # Shielded: a cancelled send must still close the file it read.
                with anyio.CancelScope(shield=True):
                    await source.aclose()

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        cap = self._max_body if resp.status < 400 else self._max_error_body
        length = resp.content_length
        # Content-Length counts compressed bytes: only an uncompressed body of
        # known size may be read in one go; anything else goes through the cap.
        if length is not None and length <= cap and "Content-Encoding" not in resp.headers:
            return await resp.read(), False
        chunks: list[bytes] = []
        size = 0
        while size < cap:
            chunk = await resp.content.read(cap - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        truncated = size >= cap and not resp.content.at_eof()
        if truncated and not await resp.content.read(1):
            truncated = False  # the body was exactly the cap
        return b"".join(chunks), truncated

    async def aclose(self) -> None:
        """Close the session if this transport created it."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned:
            await session.close()


class _BodySource:
    """The request body as aiohttp reads it, remembering why it failed, if it did.

    aiohttp reports a failing body as a write error on the connection; this
    keeps the real cause, and closes the body (files included) once the
    request is over, even when the send was cancelled halfway.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def __aiter__(self) -> _BodySource:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            raise
        except Exception as exc:
            self.error = exc
            raise

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()


def _body_error(error: BaseException) -> WamsgError:
    if isinstance(error, WamsgError):
        return error
    return TransportError(
        f"reading the image failed while sending ({type(error).__name__}: "
        f"{getattr(error, 'strerror', None) or 'read error'}); the request was not complete",
        outcome=Outcome.NOT_SENT,
    )


def _map_error(exc: BaseException) -> WamsgError:
    """The wamsg error for an aiohttp failure, with the outcome it implies.

    The text is built from the exception's type and OS error only, never
    from ``str(exc)``: aiohttp writes the full URL (query and token
    included, percent-encoded) and proxy credentials into some messages.
    """
    name = type(exc).__name__
    os_error = getattr(exc, "os_error", None)
    reason = getattr(os_error, "strerror", None) or getattr(exc, "strerror", None)
    detail = f"{name}: {reason}" if reason else name
    # Connect failures (refused, DNS, TLS handshake, certificate pinning,
    # proxy refusal, connect timeout) happen before a byte of the request is
    # written: nothing was sent.
    if isinstance(
        exc,
        aiohttp.ConnectionTimeoutError
        | aiohttp.ClientConnectorError
        | aiohttp.ServerFingerprintMismatch
        | aiohttp.ClientHttpProxyError,
    ):
        where = ""
        if isinstance(exc, aiohttp.ClientConnectorError):
            where = f" to {exc.host}:{exc.port}"
        return ConnectError(f"could not connect{where}: {detail}")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigError(f"invalid URL: {detail}")
    if isinstance(exc, RuntimeError):
        # aiohttp: "Session is closed" when a shared session was closed by its owner.
        return ConfigError(f"the aiohttp session cannot send: {detail} (was it closed?)")
    # From here on the request may have reached the gateway.
    if isinstance(exc, TimeoutError):
        return SendTimeout(f"no answer in time: {detail}")
    return Disconnected(f"connection lost: {detail}")
