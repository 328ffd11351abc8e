"""The httpx transport, for trio and for services already built on httpx.

Installed with the extra ``wamsg[httpx]``; nothing else in wamsg imports
httpx. It keeps the rules of :mod:`wamsg.transports.aiohttp` (the shared
parts live in :mod:`wamsg.transports._common`): every httpx exception becomes
a wamsg error here, with the outcome it implies and none of httpx's text
(its exceptions carry the request, URL and query included, and Wawp's query
holds the access token); bodies are streamed, never whole in memory; answers
are read under a size cap; redirects are not followed.

Where httpx differs from aiohttp, this module makes up for it:

* httpx has no timeout for the whole exchange: ``timeouts.total`` is an
  anyio deadline around the request and the reading of its answer.
* httpx decompresses each network chunk whole, so a 64 KiB chunk of a gzip
  bomb becomes ~64 MiB before any cap can act: gzip and deflate answers are
  inflated here, at most 64 KiB at a time, and reading stops at the cap.
* httpx reads proxy settings, certificates and ``.netrc`` credentials from
  the environment by default; aiohttp does not. The client this transport
  creates does not either (pass your own client for that).
* httpx verifies certificates with certifi's bundle by default; aiohttp
  with the system trust store. The client this transport creates uses the
  system store too (``_common.trust``).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel

from ..errors import ConfigError, Disconnected, Outcome, TransportError, WamsgError
from ..http import HttpRequest, HttpResponse
from . import _common
from ._common import DEFAULT_MAX_BODY, DEFAULT_MAX_ERROR_BODY, INSTALL_HTTPX, KEEPALIVE_SECONDS
from .base import Timeouts

try:
    import h11
    import httpx
except ImportError as exc:
    raise ImportError(
        f"HttpxTransport needs httpx, which is not installed: {INSTALL_HTTPX}",
        name=exc.name,
    ) from exc

__all__ = ["HttpxTransport"]

USER_AGENT = _common.user_agent("httpx", httpx.__version__)
#: Largest piece of an answer inflated at once.
_INFLATE_CHUNK = 64 * 1024
#: Pulls that end an abandoned answer's stream (see _abandon): one is enough
#: on a closed connection; more only drain what h11 had already buffered.
_MAX_PULLS = 16
#: One object per event loop run: a pooled connection belongs to the loop
#: that opened it. (A RunVar: anyio has had it since 3.0, unlike current_token.)
_RUN: anyio.lowlevel.RunVar[object] = anyio.lowlevel.RunVar("wamsg.transports.httpx.run")
#: The codings inflated here, under the cap (httpx would add br and zstd
#: when their packages are installed, decoded without a bound).
_ACCEPT_ENCODING = "gzip, deflate"


class HttpxTransport(_common.PooledTransport):
    """Send requests with an :class:`httpx.AsyncClient`, on asyncio or trio.

    Args:
        client: a client to use. It stays yours: :meth:`aclose` leaves it
            open, and its own settings (proxy, TLS, base headers, event
            hooks) apply, except that redirects are never followed and
            timeouts are wamsg's. Without one, the transport creates its own
            on first use and closes it in :meth:`aclose`.
        limit: connection pool size of the client it creates.
        max_body: largest success body read, in bytes.
        max_error_body: largest error body read, in bytes; the rest is dropped
            and the response is marked ``truncated``.

    Raises:
        ImportError: httpx is not installed (``pip install 'wamsg[httpx]'``);
            raised when this module is imported.
    """

    #: ``timeouts.total`` is applied here, as an anyio deadline (httpx has none).
    enforces_timeouts = True
    pool_name = "client"

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        limit: int = 100,
        max_body: int = DEFAULT_MAX_BODY,
        max_error_body: int = DEFAULT_MAX_ERROR_BODY,
    ) -> None:
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ConfigError(f"client must be an httpx.AsyncClient, not {type(client).__name__}")
        super().__init__(
            owned=client is None, limit=limit, max_body=max_body, max_error_body=max_error_body
        )
        self._client = client
        self._run: object | None = None

    def _get_client(self) -> httpx.AsyncClient:
        self._check_open()
        run = _current_run()
        if self._run is None:
            self._run = run
        elif self._run is not run:
            raise _common.other_loop("HttpxTransport")
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=self._limit,
                    max_keepalive_connections=self._limit,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                ),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                trust_env=False,
                # The system trust store, as aiohttp's (httpx's own default
                # would be certifi's bundle).
                verify=_common.trust(),
            )
        elif self._client.is_closed:
            raise ConfigError("the httpx client was closed by its owner; it cannot send")
        return self._client

    async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
        """Send ``request`` once; httpx never retries a request by itself."""
        client = self._get_client()
        headers, source = _common.open_body(request)
        if not any(name.lower() == "accept-encoding" for name in headers):
            headers["Accept-Encoding"] = _ACCEPT_ENCODING
        built = False
        try:
            with anyio.fail_after(timeouts.total):
                outgoing = client.build_request(
                    request.method,
                    request.url,
                    params=request.revealed_query() or None,
                    headers=headers,
                    content=request.body if isinstance(request.body, bytes) else source,
                    timeout=httpx.Timeout(
                        connect=timeouts.connect,
                        read=timeouts.read,
                        # aiohttp has no write timeout; here a gateway that
                        # stops reading the upload counts as a silent one.
                        write=timeouts.read,
                        # Taking a connection from the pool is part of connecting.
                        pool=timeouts.connect,
                    ),
                )
                built = True
                # A redirected POST would turn into a GET; a send API that
                # redirects is misconfigured, and the caller should see it.
                response = await client.send(outgoing, stream=True, follow_redirects=False)
                try:
                    cap = self._cap(response.status_code)
                    async with contextlib.aclosing(_answer(response)) as chunks:
                        data, truncated = await _common.read_capped(chunks, cap)
                    return HttpResponse(
                        status=response.status_code,
                        headers=_common.response_headers(response.headers.multi_items()),
                        body=data,
                        truncated=truncated,
                    )
                finally:
                    await response.aclose()
        except Exception as exc:
            # Never chained: httpx exceptions hold the request, query included.
            raise _common.failure(source, _map_error(exc, request.url, built=built)) from None
        finally:
            if source is not None:
                await _common.close_body(source)

    async def aclose(self) -> None:
        """Close the client if this transport created it."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owned:
            await client.aclose()


def _current_run() -> object:
    try:
        return _RUN.get()
    except LookupError:
        run = object()
        _RUN.set(run)
        return run


async def _answer(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The answer's body, decoded, in pieces of bounded size."""
    coding = response.headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity", "gzip", "x-gzip", "deflate"):
        raw = response.aiter_raw()
        chunks = raw
        if coding not in ("", "identity"):
            chunks = _inflate(raw, raw_deflate_allowed=coding == "deflate")
    else:
        # br, zstd or stacked codings, which were not asked for: only httpx
        # knows them, and it decodes each chunk whole.
        raw = chunks = response.aiter_bytes()
    finished = False
    try:
        async for chunk in chunks:
            yield chunk
        finished = True
    finally:
        if chunks is not raw:
            await _close(chunks)
        if not finished:
            await _abandon(response, raw)


async def _abandon(response: httpx.Response, raw: AsyncIterator[bytes]) -> None:
    """Stop reading an answer before its end (the cap, an error, a cancel).

    httpx and httpcore stream an answer through five nested async
    generators; closing the outer one leaves the inner ones suspended, and
    trio warns (ResourceWarning) when they are collected (encode/httpx#3686).
    Closing the response first drops the connection, so that the next pull
    runs the whole chain to its end, with a ReadError or the few bytes
    already buffered.
    """
    with anyio.CancelScope(shield=True):
        await response.aclose()
        with contextlib.suppress(Exception):  # StopAsyncIteration included
            for _ in range(_MAX_PULLS):
                await anext(raw)
        await _close(raw)


async def _inflate(
    raw: AsyncIterator[bytes], *, raw_deflate_allowed: bool
) -> AsyncGenerator[bytes, None]:
    # MAX_WBITS | 32: a zlib or a gzip header, detected. RFC 9110 §8.4.1.2
    # says "deflate" is zlib-wrapped; some servers send the raw stream.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    started = False
    try:
        async for chunk in raw:
            data = chunk
            while data and not inflater.eof:
                try:
                    piece = inflater.decompress(data, _INFLATE_CHUNK)
                except zlib.error:
                    if started or not raw_deflate_allowed:
                        raise
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    started = True
                    continue
                started = True
                data = inflater.unconsumed_tail
                if piece:
                    yield piece
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error:
        raise httpx.DecodingError("the answer's compressed body is corrupt") from None


async def _close(iterator: AsyncIterator[bytes]) -> None:
    closer: Any = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def _map_error(exc: BaseException, url: str, *, built: bool = True) -> WamsgError:
    """The wamsg error for an httpx failure, with the outcome it implies.

    ``built`` is False when httpx failed while building the request, before
    any I/O. The text holds the exception's type and OS error only, never
    ``str(exc)``.
    """
    if isinstance(exc, WamsgError):  # already one (the body's own, say)
        return exc
    # Before a byte of the request was written: refused, DNS, TLS, proxy,
    # connect timeout, or no pooled connection free within the connect timeout.
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
    ):
        return _common.connect_failed(exc, url)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return _common.invalid_url(exc)
    if isinstance(exc, httpx.LocalProtocolError | h11.LocalProtocolError):
        # h11 checks each piece before writing it (an illegal header, a body
        # longer or shorter than its Content-Length): the gateway never had
        # a whole request.
        return TransportError(
            f"the request could not be written as HTTP ({type(exc).__name__}); "
            "it was not sent whole",
            outcome=Outcome.NOT_SENT,
        )
    if isinstance(exc, httpx.HTTPStatusError):
        # A response event hook of the caller's client raised for the status.
        return TransportError(
            f"the httpx client's event hook raised {type(exc).__name__} for HTTP "
            f"{exc.response.status_code}; wamsg reads statuses itself (remove the hook)",
            outcome=Outcome.UNKNOWN,
        )
    if isinstance(exc, httpx.StreamError):
        # StreamConsumed: the caller's client re-sends requests (digest auth,
        # a custom auth flow) and a streamed body cannot be read twice. The
        # first request went out.
        return TransportError(
            f"the httpx client tried to send the request again ({type(exc).__name__}); "
            "use a client whose auth does not re-send requests",
            outcome=Outcome.UNKNOWN,
        )
    if isinstance(exc, RuntimeError):
        # httpx: "Cannot send a request, as the client has been closed."
        return _common.closed_client(exc, "httpx client")
    # From here on the request may have reached the gateway.
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        # ReadTimeout, WriteTimeout, or the whole exchange's deadline (which
        # may have cut the connect phase: as with aiohttp, not told apart).
        return _common.timed_out(exc)
    if isinstance(exc, httpx.DecodingError):
        return Disconnected(f"the answer could not be read: {_common.detail(exc)}")
    if isinstance(exc, httpx.TransportError):
        return _common.lost(exc)
    if not built:
        return _common.unbuildable(exc, "httpx client")
    return _common.unexpected(exc, "httpx client")
