"""What every HTTP transport does the same way, whatever its library.

The one rule of this module: it imports no HTTP library. Each transport
classifies its own library's exceptions (only it knows their classes) and
builds the wamsg error with the functions here, so that the wording, the
outcome of each kind of failure and what may appear in the text (exception
type names, OS error strings, host and port: never a URL query, a header or a
library's own message) are the same for aiohttp and httpx. The request body
is streamed through :class:`BodySource`, and answers are read under the same
size caps by :func:`read_capped`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import ClassVar
from urllib.parse import urlsplit

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
from ..http import HttpRequest, StreamBody

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_ERROR_BODY",
    "INSTALL_HTTPX",
    "KEEPALIVE_SECONDS",
    "BodySource",
    "PooledTransport",
    "close_body",
    "closed_client",
    "connect_failed",
    "detail",
    "failure",
    "invalid_url",
    "lost",
    "open_body",
    "other_loop",
    "read_capped",
    "response_headers",
    "timed_out",
    "trust",
    "unbuildable",
    "unexpected",
    "user_agent",
    "where",
]

#: Largest success body read (the WEBJS answer embeds a base64 thumbnail).
DEFAULT_MAX_BODY = 8 * 1024 * 1024
#: Largest error body read: enough for any error text, not for a runaway page.
DEFAULT_MAX_ERROR_BODY = 64 * 1024
#: How long an idle pooled connection is kept. Node-based gateways (WAHA)
#: close idle connections after 5 s; reusing one they are closing turns a
#: POST into an "unknown" outcome, so idle connections are dropped first.
KEEPALIVE_SECONDS = 4.0
#: The install line for the httpx transport, quoted as users type it.
INSTALL_HTTPX = "pip install 'wamsg[httpx]'"


#: An HTTP method or header name (RFC 9110 §5.6.2 ``token``).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: What a header value may hold: visible ASCII, spaces and tabs. No line
#: breaks or other control characters (aiohttp refuses some at write time,
#: h11 all), and no non-ASCII (aiohttp sends UTF-8, httpx refuses it).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
#: Response headers that hold one value (RFC 9110): repeated, the first one
#: counts. Every other repeated header is joined with ", " (RFC 9110 §5.3).
_SINGLETON_HEADERS = frozenset(
    {
        "age",
        "content-length",
        "content-location",
        "content-type",
        "date",
        "etag",
        "expires",
        "last-modified",
        "location",
        "retry-after",
        "server",
    }
)


def trust() -> ssl.SSLContext:
    """The TLS context of a session or client a transport creates: the system trust store.

    The same for both libraries (aiohttp's default is this too; httpx's own
    default would be certifi's bundle), so that switching transports changes
    no certificate verdict. Pass your own session or client for another CA.
    """
    return ssl.create_default_context()


def user_agent(library: str, version: str) -> str:
    """The User-Agent a transport sends: wamsg's version, then its library's."""
    return f"wamsg/{__version__} {library}/{version}"


class PooledTransport:
    """What the library transports share: who owns the pool, the body caps, closing.

    Args:
        owned: the transport created its session or client (and closes it).
        limit: connection pool size of the session or client it creates.
        max_body: largest success body read, in bytes.
        max_error_body: largest error body read, in bytes.
    """

    #: What the library calls its connection pool ("session", "client").
    pool_name: ClassVar[str] = "pool"

    def __init__(self, *, owned: bool, limit: int, max_body: int, max_error_body: int) -> None:
        self._owned = owned
        self._limit = limit
        self._max_body = max_body
        self._max_error_body = max_error_body
        self._closed = False

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        else:
            state = f"{'owned' if self._owned else 'shared'} {self.pool_name}"
        return f"{type(self).__name__}({state})"

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("transport is closed")

    def _cap(self, status: int) -> int:
        """How many body bytes to read for an answer with this status."""
        return self._max_body if status < 400 else self._max_error_body


async def read_capped(chunks: AsyncIterator[bytes], cap: int) -> tuple[bytes, bool]:
    """Join ``chunks`` up to ``cap`` bytes; True when more bytes followed.

    A body of exactly ``cap`` bytes is whole (not truncated): only a byte
    past the cap marks it. Reading stops at the first chunk past the cap,
    so a runaway answer costs at most one chunk more than ``cap``.
    """
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if size + len(chunk) > cap:
            parts.append(chunk[: cap - size])
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), False


class BodySource:
    """A streamed request body as an HTTP library reads it, remembering why it failed.

    Libraries report a failing body as a write error on the connection (or
    pass the body's own exception through); this keeps the real cause, and
    closes the body (files included) once the request is over, even when the
    send was cancelled halfway.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def __aiter__(self) -> BodySource:
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
        """Close the underlying chunk iterator (and the file it reads)."""
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()


def _check_url(url: str) -> None:
    """ConfigError unless ``url`` is an http(s) URL with a host (and a valid port).

    The text never repeats the URL or any part of it: a mistyped URL can
    hold a credential (``user:token@host`` reads as scheme ``user``).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigError("invalid URL: it cannot be parsed (check its host and port)") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError("invalid URL: only http:// and https:// URLs can be sent")
    if not parts.hostname:
        raise ConfigError("invalid URL: it has no host")


def _check_headers(headers: dict[str, str]) -> None:
    """ConfigError for a header that cannot be sent as HTTP/1.1, naming it, never its value."""
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ConfigError("a request header name is not a valid HTTP token")
        if not _FIELD_VALUE.fullmatch(value):
            control = any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value)
            what = (
                "a line break or another control character" if control else "a non-ASCII character"
            )
            raise ConfigError(
                f"the {name} header cannot be sent: its value holds {what} "
                "(check the setting or credential it comes from)"
            )


def open_body(request: HttpRequest) -> tuple[dict[str, str], BodySource | None]:
    """Check the request, then give its revealed headers and a :class:`BodySource`.

    Everything either library would refuse while building the request (a
    method that is not a token, a URL that is not http(s), a header that
    cannot be written) is refused here, before any I/O and the same way for
    both, with a :class:`~wamsg.ConfigError` (outcome ``not_sent``).

    Secrets are revealed here, for the library writing the request and
    nothing else. A streamed body of known length gets a Content-Length
    header: it is sent as is, not chunked, since some gateways refuse
    chunked uploads.
    """
    if not _TOKEN.fullmatch(request.method):
        raise ConfigError("the request method is not a valid HTTP token")
    _check_url(request.url)
    headers = request.revealed_headers()
    _check_headers(headers)
    body = request.body
    if isinstance(body, bytes):
        return headers, None
    source = BodySource(body.open() if isinstance(body, StreamBody) else iter_body(body))
    if body.length is not None:
        headers["Content-Length"] = str(body.length)
    return headers, source


async def close_body(source: BodySource) -> None:
    """Close a streamed body; shielded, so a cancelled send still closes its file."""
    with anyio.CancelScope(shield=True):
        await source.aclose()


def response_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """An answer's headers, names lower-cased, each name once, the same for both libraries.

    A repeated single-valued header (``Retry-After``, ``Content-Type``...)
    keeps its first value; aiohttp would keep the last, httpx would join
    them ("5, 5", which no longer reads as seconds). Any other repeated
    header is joined with ", " (RFC 9110 §5.3).
    """
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name not in headers:
            headers[name] = value
        elif name not in _SINGLETON_HEADERS:
            headers[name] = f"{headers[name]}, {value}"
    return headers


def _body_error(error: BaseException) -> WamsgError:
    if isinstance(error, WamsgError):
        return error
    return TransportError(
        f"reading the image failed while sending ({type(error).__name__}: "
        f"{getattr(error, 'strerror', None) or 'read error'}); the request was not complete",
        outcome=Outcome.NOT_SENT,
    )


def failure(source: BodySource | None, mapped: WamsgError) -> WamsgError:
    """The error to raise for a failed send: the body's own failure comes first.

    When the body itself failed (a file read error, a stream of the wrong
    length), the gateway never had a whole request: that, not the library's
    view of the broken write (``mapped``), is what happened.
    """
    if source is not None and source.error is not None:
        return _body_error(source.error)
    return mapped


def _os_reason(exc: BaseException, depth: int = 0) -> str | None:
    """The first OS error text in ``exc``'s chain (causes, wrapped OS errors, groups)."""
    if depth > 6:
        return None
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    nested: list[BaseException] = []
    os_error = getattr(exc, "os_error", None)  # aiohttp's ClientConnectorError
    if isinstance(os_error, BaseException):
        nested.append(os_error)
    if isinstance(exc, BaseExceptionGroup):  # trio's "all attempts to connect failed"
        nested.extend(exc.exceptions)
    for inner in (*nested, exc.__cause__, exc.__context__):
        if inner is not None:
            reason = _os_reason(inner, depth + 1)
            if reason:
                return reason
    return None


def detail(exc: BaseException) -> str:
    """What an error text may say about a library exception: its type and OS error.

    Never ``str(exc)``: aiohttp writes the full URL (query and token
    included, percent-encoded) and proxy credentials into some messages, and
    httpx exceptions carry the request, URL included.
    """
    name = type(exc).__name__
    reason = _os_reason(exc)
    return f"{name}: {reason}" if reason else name


def where(url: str) -> str:
    """`` to host:port`` of a request URL, for connect errors (never its query)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname
    if not host:
        return ""
    return f" to {host}:{port}" if port is not None else f" to {host}"


def connect_failed(exc: BaseException, url: str) -> ConnectError:
    """A failure before a byte of the request was written: nothing was sent.

    Refused, DNS, TLS handshake, certificate pinning, proxy refusal, connect
    timeout, no pooled connection free in time.
    """
    return ConnectError(f"could not connect{where(url)}: {detail(exc)}")


def invalid_url(exc: BaseException) -> ConfigError:
    """The request URL cannot be sent (bad syntax, unsupported scheme)."""
    return ConfigError(f"invalid URL: {detail(exc)}")


def unbuildable(exc: BaseException, library: str) -> TransportError:
    """The library failed to build or serialize the request: nothing was written."""
    return TransportError(
        f"the {library} could not build the request ({detail(exc)}); it was not sent",
        outcome=Outcome.NOT_SENT,
    )


def unexpected(exc: BaseException, library: str) -> TransportError:
    """Any other failure of the library, once the request may have gone out."""
    return TransportError(
        f"the {library} failed: {detail(exc)}; the message may have been sent",
        outcome=Outcome.UNKNOWN,
    )


def closed_client(exc: BaseException, library: str) -> ConfigError:
    """The library's session or client refuses to send (its owner closed it)."""
    return ConfigError(f"the {library} cannot send: {detail(exc)} (was it closed?)")


def timed_out(exc: BaseException) -> SendTimeout:
    """No answer in time after the request may have been written: outcome unknown."""
    return SendTimeout(f"no answer in time: {detail(exc)}")


def lost(exc: BaseException) -> Disconnected:
    """The connection broke after the request may have been written: outcome unknown."""
    return Disconnected(f"connection lost: {detail(exc)}")


def other_loop(transport: str) -> ConfigError:
    """The error for a transport used from an event loop other than its first."""
    return ConfigError(
        f"{transport} was first used in another event loop; create one "
        "client (and transport) per event loop"
    )
