"""Upload bodies every adapter shares: multipart/form-data and base64 inside JSON.

Both are described as a :class:`~wamsg.http.ComposedBody` (fixed bytes around
the media) with no I/O; the transport streams them. Their length is known up
front whenever the media size is, so Content-Length is sent and gateways that
refuse chunked uploads still work.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ..http import ComposedBody, MediaChunks
from ..models import Media

__all__ = ["FilePart", "json_with_base64", "multipart"]

_ENCODER = msgspec.json.Encoder()


class FilePart(msgspec.Struct, frozen=True, kw_only=True):
    """A file field of a multipart form."""

    media: Media
    filename: str
    content_type: str


def _quote(value: str) -> str:
    # RFC 7578 §4.2: field names and filenames are quoted strings; escape the
    # characters that would end them (as browsers and aiohttp do).
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def new_boundary() -> str:
    """A random multipart boundary (RFC 2046 §5.1.1: up to 70 characters)."""
    return f"wamsg-{secrets.token_hex(16)}"


def multipart(
    fields: Iterable[tuple[str, str | FilePart]],
    *,
    boundary: Callable[[], str] = new_boundary,
) -> tuple[ComposedBody, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type header value.

    ``fields`` are (name, value) pairs in order; a :class:`FilePart` value is
    streamed from its media with its own Content-Type.
    """
    mark = boundary()
    parts: list[bytes | MediaChunks] = []
    head = b""
    for name, value in fields:
        if isinstance(value, FilePart):
            head += (
                f"--{mark}\r\n"
                f'Content-Disposition: form-data; name="{_quote(name)}"; '
                f'filename="{_quote(value.filename)}"\r\n'
                f"Content-Type: {value.content_type}\r\n\r\n"
            ).encode()
            parts.append(head)
            parts.append(MediaChunks(media=value.media))
            head = b"\r\n"
        else:
            head += (
                (
                    f'--{mark}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
                ).encode()
                + value.encode()
                + b"\r\n"
            )
    parts.append(head + f"--{mark}--\r\n".encode())
    return ComposedBody(parts=tuple(parts)), f"multipart/form-data; boundary={mark}"


def json_with_base64(
    document: Any,
    media: Media,
    *,
    key_path: tuple[str, ...],
    data_uri_mimetype: str | None = None,
) -> ComposedBody:
    """A JSON body whose value at ``key_path`` is the media's base64, streamed.

    ``document`` is encoded with that value left as a placeholder, then split
    around it, so the base64 text is produced chunk by chunk while sending.
    With ``data_uri_mimetype`` the value is a ``data:<type>;base64,`` URI.
    """
    token = f"wamsg-media-{secrets.token_hex(12)}"
    target = document
    for key in key_path[:-1]:
        target = target[key]
    target[key_path[-1]] = token
    encoded = _ENCODER.encode(document)
    before, found, after = encoded.partition(f'"{token}"'.encode())
    if not found:  # pragma: no cover - the token is always encoded verbatim
        raise AssertionError("media placeholder lost while encoding")
    prefix = before + b'"'
    if data_uri_mimetype:
        prefix += f"data:{data_uri_mimetype};base64,".encode()
    return ComposedBody(parts=(prefix, MediaChunks(media=media, base64=True), b'"' + after))
