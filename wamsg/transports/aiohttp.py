"""The default transport, on aiohttp (asyncio only).

The one rule of this module: every aiohttp exception becomes a wamsg error
here, with the outcome it implies, and with none of aiohttp's own text:
aiohttp puts the full URL in some messages (``Connection timeout to host
<url>``, percent-encoded), and Wawp's URL carries the access token.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from ..errors import ConfigError, WamsgError
from ..http import HttpRequest, HttpResponse
from . import _common
from ._common import DEFAULT_MAX_BODY, DEFAULT_MAX_ERROR_BODY, INSTALL_HTTPX, KEEPALIVE_SECONDS
from .base import Timeouts

__all__ = ["AiohttpTransport"]

USER_AGENT = _common.user_agent("aiohttp", aiohttp.__version__)
#: aiohttp reads (and decompresses) answers in chunks of this size at most.
_READ_CHUNK = 64 * 1024


def _running_library() -> str | None:
    """The async library running in this thread: "asyncio", "trio"... or None.

    No asyncio loop and no sniffio module means no sniffio-aware library
    (trio, curio) is running either: trio depends on sniffio and imports it
    before it runs anything.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    sniffio = sys.modules.get("sniffio")
    if sniffio is None:
        return None
    try:
        return str(sniffio.current_async_library())
    except sniffio.AsyncLibraryNotFoundError:
        return None


def _asyncio_only(library: str | None) -> ConfigError:
    running = f"this is {library}" if library else "no asyncio event loop is running"
    return ConfigError(
        f"AiohttpTransport runs on asyncio only (aiohttp is asyncio-only) and {running}; "
        f"use wamsg.transports.HttpxTransport, which runs on trio too ({INSTALL_HTTPX}): "
        "Client(..., transport=HttpxTransport())"
    )


class AiohttpTransport(_common.PooledTransport):
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
    pool_name = "session"

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        limit: int = 100,
        max_body: int = DEFAULT_MAX_BODY,
        max_error_body: int = DEFAULT_MAX_ERROR_BODY,
    ) -> None:
        super().__init__(
            owned=session is None, limit=limit, max_body=max_body, max_error_body=max_error_body
        )
        self._session = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        library = _running_library()
        if library not in (None, "asyncio"):
            # Built inside trio: say so now, not at the first message.
            raise _asyncio_only(library)

    def _get_session(self) -> aiohttp.ClientSession:
        self._check_open()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise _asyncio_only(_running_library()) from None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS, ssl=_common.trust()
                ),
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
            )
            self._loop = loop
        elif self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise _common.other_loop("AiohttpTransport")
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
        headers, source = _common.open_body(request)
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.revealed_query() or None,
                headers=headers,
                data=request.body if source is None else source,
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
                    headers=_common.response_headers(resp.headers.items()),
                    body=data,
                    truncated=truncated,
                )
        except Exception as exc:
            # Never chained: aiohttp's texts can hold the URL, query included.
            raise _common.failure(source, _map_error(exc, request.url)) from None
        finally:
            if source is not None:
                await _common.close_body(source)

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        cap = self._cap(resp.status)
        length = resp.content_length
        # Content-Length counts compressed bytes: only an uncompressed body of
        # known size may be read in one go; anything else goes through the cap.
        if length is not None and length <= cap and "Content-Encoding" not in resp.headers:
            return await resp.read(), False
        return await _common.read_capped(resp.content.iter_chunked(_READ_CHUNK), cap)

    async def aclose(self) -> None:
        """Close the session if this transport created it."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned:
            await session.close()


def _map_error(exc: BaseException, url: str = "") -> WamsgError:
    """The wamsg error for an aiohttp failure, with the outcome it implies.

    The text is built from the exception's type and OS error only
    (:func:`wamsg.transports._common.detail`), never from ``str(exc)``.
    """
    if isinstance(exc, WamsgError):  # already one (the body's own, say)
        return exc
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
        if isinstance(exc, aiohttp.ClientConnectorError):
            url = f"//{exc.host}:{exc.port}"  # where it connected: the proxy, if any
        return _common.connect_failed(exc, url)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return _common.invalid_url(exc)
    if isinstance(exc, RuntimeError):
        # aiohttp: "Session is closed" when a shared session was closed by its owner.
        return _common.closed_client(exc, "aiohttp session")
    # From here on the request may have reached the gateway. A timeout of
    # the whole exchange (`total`) is one of these, even while connecting:
    # aiohttp raises a bare TimeoutError that does not say which phase it cut.
    if isinstance(exc, TimeoutError):
        return _common.timed_out(exc)
    if isinstance(exc, aiohttp.ClientError):
        return _common.lost(exc)
    if isinstance(exc, ValueError | TypeError | LookupError):
        # aiohttp raises these (not ClientError) while it builds the request
        # and serializes its head, before writing a byte: "Forbidden control
        # character", a method or a body it cannot send. (_common.open_body
        # refuses what is known; this is what it does not know.)
        return _common.unbuildable(exc, "aiohttp session")
    return _common.unexpected(exc, "aiohttp session")
