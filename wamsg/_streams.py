"""Media I/O: read the first bytes before encoding, stream the rest while sending.

The one rule of this module: no media source is ever read whole into
memory. Files are read in chunks on a worker thread (anyio), so neither the
event loop nor memory feels a 16 MiB image; base64 is produced chunk by
chunk (a multiple of 3 bytes at a time, so the pieces join into one valid
base64 text).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import IO

import anyio
import anyio.to_thread
from msgspec.structs import replace

from ._mediatype import SNIFF_BYTES
from .errors import InvalidMessage
from .http import ComposedBody, MediaChunks
from .models import Media

__all__ = ["CHUNK_SIZE", "iter_body", "prepare_media"]

#: Bytes read per chunk: 48 KiB (a multiple of 3, so base64 chunks concatenate).
CHUNK_SIZE = 48 * 1024

# Async iterables already streamed once: they cannot be replayed, and a
# second send must fail clearly instead of sending an empty image.
_consumed: weakref.WeakSet[object] = weakref.WeakSet()


def _seen(stream: object) -> bool:
    """True when ``stream`` was streamed before; marks it streamed otherwise."""
    try:
        if stream in _consumed:
            return True
        _consumed.add(stream)
    except TypeError:  # not weak-referenceable: cannot track, trust the caller
        pass
    return False


def _binary(data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidMessage("image file objects must be opened in binary mode ('rb')")
    return bytes(data)


def _read_head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


def _file_head(f: IO[bytes]) -> tuple[bytes, int | None, bool]:
    """(first bytes, remaining size or None, whether the file can rewind)."""
    seekable = False
    with contextlib.suppress(AttributeError, OSError, ValueError):
        seekable = f.seekable()
    if not seekable:
        return _binary(f.read(SNIFF_BYTES)), None, False
    start = f.tell()
    head = _binary(f.read(SNIFF_BYTES))
    end = f.seek(0, io.SEEK_END)
    f.seek(start)
    return head, end - start, True


async def prepare_media(media: Media) -> Media:
    """Fill in ``head`` (and ``size`` where it can be known) before encoding."""
    if media.head is not None or media.url is not None:
        return media
    if media.data is not None:
        return replace(media, head=bytes(media.data[:SNIFF_BYTES]))
    if media.path is not None:
        try:
            head = await anyio.to_thread.run_sync(_read_head, media.path)
        except OSError as exc:
            raise InvalidMessage(f"cannot read image file {media.path!r}: {exc.strerror}") from None
        return replace(media, head=head)
    if media.file is not None:
        try:
            head, size, rewinds = await anyio.to_thread.run_sync(_file_head, media.file)
        except (OSError, ValueError) as exc:  # closed file, unreadable pipe
            raise InvalidMessage(f"cannot read the image file object: {exc}") from None
        return replace(
            media,
            head=head,
            size=media.size if media.size is not None else size,
            head_consumed=not rewinds,
        )
    assert media.stream is not None
    if _seen(media.stream):
        raise InvalidMessage(_STREAM_ONCE)
    iterator = aiter(media.stream)
    head = b""
    while len(head) < SNIFF_BYTES:
        try:
            head += await anext(iterator)
        except StopAsyncIteration:
            break
    return replace(media, stream=_Resumed(iterator), head=head, head_consumed=True)


_STREAM_ONCE = (
    "this image's async stream was already sent once and cannot be replayed; "
    "pass bytes, a path or a seekable file to send it again"
)


class _Resumed:
    """The rest of an async iterator whose first chunks were already taken."""

    def __init__(self, iterator: AsyncIterator[bytes]) -> None:
        self._iterator = iterator

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterator


async def _raw_chunks(media: Media) -> AsyncGenerator[bytes, None]:
    if media.head_consumed and media.head:
        yield media.head
    if media.data is not None:
        view = memoryview(media.data)
        for offset in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[offset : offset + CHUNK_SIZE])
    elif media.path is not None:
        async with await anyio.open_file(media.path, "rb") as afile:
            while chunk := await afile.read(CHUNK_SIZE):
                yield chunk
    elif media.file is not None:
        file = media.file
        rewind_to: int | None = None
        if not media.head_consumed:
            rewind_to = await anyio.to_thread.run_sync(file.tell)
        try:
            while chunk := await anyio.to_thread.run_sync(file.read, CHUNK_SIZE):
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise InvalidMessage("image file objects must be opened in binary mode")
                yield bytes(chunk)
        finally:
            if rewind_to is not None:
                # Rewind, so a later send can read it again. A plain call,
                # not awaited: an await here would itself be cancelled when
                # the send is, and leave the file half read.
                file.seek(rewind_to, os.SEEK_SET)
    else:
        stream = media.stream
        assert stream is not None
        if _seen(stream):
            raise InvalidMessage(_STREAM_ONCE)
        iterator = aiter(stream)
        try:
            async for chunk in iterator:
                if chunk:
                    yield bytes(chunk)
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()


async def _chunks(part: MediaChunks) -> AsyncGenerator[bytes, None]:
    sent = 0
    expected = part.media.size
    # aclosing: an error (or a cancelled send) must close the file now, not
    # whenever the garbage collector finalizes the generator.
    async with contextlib.aclosing(_raw_chunks(part.media)) as raw:
        if not part.base64:
            async for chunk in raw:
                sent += len(chunk)
                _check_not_longer(sent, expected)
                yield chunk
        else:
            carry = b""
            async for chunk in raw:
                sent += len(chunk)
                _check_not_longer(sent, expected)
                data = carry + chunk
                cut = len(data) - len(data) % 3
                carry = data[cut:]
                if cut:
                    yield base64.b64encode(data[:cut])
            if carry:
                yield base64.b64encode(carry)
    if expected is not None and sent != expected:
        # Content-Length was promised from the size: a file that changed
        # while sending must not produce a body of another length.
        raise InvalidMessage(f"image changed while sending: expected {expected} bytes, read {sent}")


def _check_not_longer(sent: int, expected: int | None) -> None:
    # Before the extra bytes go out: past Content-Length, aiohttp would cut
    # the body silently and the gateway would get a well-sized, broken one.
    if expected is not None and sent > expected:
        raise InvalidMessage(f"image is longer than its size: more than {expected} bytes")


async def iter_body(body: ComposedBody) -> AsyncGenerator[bytes, None]:
    """Stream a composed body, part by part, in chunks of at most ~64 KiB."""
    for part in body.parts:
        if isinstance(part, bytes):
            yield part
        else:
            async with contextlib.aclosing(_chunks(part)) as chunks:
                async for chunk in chunks:
                    yield chunk
