"""Neutral HTTP values passed between adapters and transports.

Adapters build an :class:`HttpRequest` and read an :class:`HttpResponse`; they
never see a socket. Credentials stay wrapped in :class:`~wamsg.Secret` inside
a request and are revealed only by the transport writing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Literal, TypeAlias

import msgspec

from ._redact import Secret, redact
from .models import Media

__all__ = ["Body", "ComposedBody", "HttpRequest", "HttpResponse", "MediaChunks", "StreamBody"]


class StreamBody(msgspec.Struct, frozen=True, kw_only=True):
    """A request body produced in chunks, for uploads that must not sit in memory.

    ``open`` is a factory: each call starts the body again from the first
    byte, so a transport (or a later retry) can send it more than once.
    """

    open: Callable[[], AsyncIterator[bytes]]
    length: int | None = None
    """Exact byte length when known up front (sent as Content-Length)."""


class MediaChunks(msgspec.Struct, frozen=True, kw_only=True):
    """The bytes of a media source inside a :class:`ComposedBody`, raw or base64."""

    media: Media
    base64: bool = False

    def __repr__(self) -> str:
        return f"MediaChunks({self.media!r}, base64={self.base64})"

    @property
    def length(self) -> int | None:
        """Bytes this part adds to the body, when the media size is known."""
        size = self.media.size
        if size is None:
            return None
        return 4 * ((size + 2) // 3) if self.base64 else size


class ComposedBody(msgspec.Struct, frozen=True, kw_only=True):
    """A body made of fixed bytes and media sources, streamed in order.

    Adapters describe uploads this way (multipart, base64 inside JSON) with no
    I/O; the transport streams it, reading the media in chunks, so the file
    (or its base64) is never whole in memory. It can be sent again as long as
    its media can be read again (bytes, paths, seekable files).
    """

    parts: tuple[bytes | MediaChunks, ...]

    def __repr__(self) -> str:
        # The fixed parts hold form fields and JSON (recipients): sizes only.
        return f"ComposedBody({len(self.parts)} parts, {self.length} bytes)"

    @property
    def length(self) -> int | None:
        """Exact byte length, when every media size is known."""
        total = 0
        for part in self.parts:
            if isinstance(part, bytes):
                total += len(part)
            else:
                size = part.length
                if size is None:
                    return None
                total += size
        return total


Body: TypeAlias = bytes | StreamBody | ComposedBody
QueryValue: TypeAlias = str | Secret


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request, as an adapter wants it sent.

    Attributes:
        method: ``"POST"``, ...
        url: scheme, host and path, never with credentials in it.
        query: query parameters in order; secret values are :class:`Secret`.
        headers: request headers in order; secret values are :class:`Secret`.
        body: the bytes to send, a :class:`ComposedBody` (uploads) or a
            :class:`StreamBody` (any async byte source).
        kind: ``"text"`` or ``"media"``: which timeouts apply.
    """

    method: str
    url: str
    query: tuple[tuple[str, QueryValue], ...] = ()
    headers: tuple[tuple[str, QueryValue], ...] = ()
    body: Body = b""
    kind: Literal["text", "media"] = "text"

    def secrets(self) -> tuple[Secret, ...]:
        """Every secret value this request carries (to scrub from error text)."""
        return tuple(
            value for _, value in (*self.query, *self.headers) if isinstance(value, Secret)
        )

    def revealed_query(self) -> dict[str, str]:
        """The query with secrets revealed, for a transport to send."""
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.query}

    def revealed_headers(self) -> dict[str, str]:
        """The headers with secrets revealed, for a transport to send."""
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.headers}

    def __repr__(self) -> str:
        # The path can hold the recipient (".../chats/5511999990000/messages"):
        # masked like the query; any secret in it too, though none belongs there.
        url = redact(self.url, self.secrets())
        query = "&".join(f"{k}={v if isinstance(v, Secret) else redact(v)}" for k, v in self.query)
        where = f"{url}?{query}" if query else url
        if isinstance(self.body, StreamBody | ComposedBody):
            body = f"stream({self.body.length} bytes)"
        else:
            body = f"{len(self.body)} bytes"
        return f"HttpRequest({self.method} {where}, body={body})"


class HttpResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway's answer: status, headers (names lower-cased) and body bytes."""

    status: int
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    """True when the transport stopped reading the body at its size cap."""

    def __post_init__(self) -> None:
        headers = self.headers
        if any(not k.islower() for k in headers):
            msgspec.structs.force_setattr(
                self, "headers", {k.lower(): v for k, v in headers.items()}
            )

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower())

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, body={len(self.body)} bytes)"
