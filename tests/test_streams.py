"""Media I/O: first bytes read before encoding, bodies streamed in chunks."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import wamsg
from wamsg import ComposedBody, InvalidMessage, Media, MediaChunks
from wamsg._streams import CHUNK_SIZE, iter_body, prepare_media
from wamsg.providers.bodies import FilePart, json_with_base64, multipart
from wamsg.testing import MEDIA as KIT_MEDIA

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def payload(size: int) -> bytes:
    return PNG + os.urandom(size - len(PNG))


async def render(body: ComposedBody) -> tuple[bytes, list[int]]:
    chunks = [chunk async for chunk in iter_body(body)]
    return b"".join(chunks), [len(c) for c in chunks]


async def gen(data: bytes, step: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


SIZES = [1, 2, 3, 4, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 2]


@pytest.mark.parametrize("size", [s for s in SIZES if s >= len(PNG)] + [len(PNG)])
@pytest.mark.parametrize("source", ["bytes", "path", "file", "stream"])
async def test_raw_and_base64_streams_equal_the_whole(
    tmp_path: Path, source: str, size: int
) -> None:
    data = payload(size)
    path = tmp_path / "img.png"
    path.write_bytes(data)
    media = {
        "bytes": lambda: Media(data=data),
        "path": lambda: Media(path=str(path)),
        "file": lambda: Media(file=io.BytesIO(data)),
        "stream": lambda: Media(stream=gen(data, 7000), size=size),
    }[source]()
    prepared = await prepare_media(media)
    assert prepared.head is not None
    assert len(prepared.head) >= min(16, size)
    assert data.startswith(prepared.head)
    assert prepared.size == size
    for b64 in (False, True):
        if b64 and source == "stream":
            prepared = await prepare_media(Media(stream=gen(data, 7000), size=size))
        body = ComposedBody(parts=(b"<", MediaChunks(media=prepared, base64=b64), b">"))
        rendered, lengths = await render(body)
        inner = base64.b64encode(data) if b64 else data
        assert rendered == b"<" + inner + b">"
        assert body.length == len(rendered)
        # Chunked, never the whole file at once (beyond one chunk's worth).
        assert max(lengths) <= max(4 * CHUNK_SIZE // 3 + 4, 7000 + 16)


async def test_seekable_file_is_rewound_for_a_second_send() -> None:
    data = payload(100_000)
    f = io.BytesIO(b"skip" + data)
    f.seek(4)
    media = await prepare_media(Media(file=f))
    assert media.size == len(data)
    body = ComposedBody(parts=(MediaChunks(media=media),))
    assert (await render(body))[0] == data
    assert (await render(body))[0] == data  # rebuilt: a retry can send it again
    assert f.tell() == 4


class OneWay(io.RawIOBase):
    """A pipe-like file object: readable, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


async def test_unseekable_file_keeps_its_head() -> None:
    data = payload(70_000)
    media = await prepare_media(Media(file=io.BufferedReader(OneWay(data))))
    assert media.head_consumed
    assert media.size is None
    rendered, _ = await render(ComposedBody(parts=(MediaChunks(media=media),)))
    assert rendered == data


async def test_async_stream_is_sent_once_then_refused() -> None:
    stream = gen(payload(1000), 100)
    media = await prepare_media(Media(stream=stream))
    body = ComposedBody(parts=(MediaChunks(media=media),))
    assert len((await render(body))[0]) == 1000
    with pytest.raises(InvalidMessage, match="cannot be replayed"):
        await render(body)
    with pytest.raises(InvalidMessage, match="cannot be replayed"):
        await prepare_media(Media(stream=stream))


async def test_a_file_that_changes_size_while_sending_fails(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(payload(1000))
    media = await prepare_media(Media(path=str(path)))
    path.write_bytes(payload(2000))  # grew after its size was announced
    with pytest.raises(InvalidMessage, match="longer than its size"):
        await render(ComposedBody(parts=(MediaChunks(media=media),)))


async def test_a_file_that_shrinks_while_sending_fails(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(payload(2000))
    media = await prepare_media(Media(path=str(path)))
    path.write_bytes(payload(1000))
    with pytest.raises(InvalidMessage, match="changed while sending"):
        await render(ComposedBody(parts=(MediaChunks(media=media),)))


async def test_missing_file_is_invalid_before_sending(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    path.write_bytes(PNG)
    media = Media(path=str(path))
    path.unlink()
    with pytest.raises(InvalidMessage, match="cannot read"):
        await prepare_media(media)


async def test_multipart_roundtrip_through_the_stdlib_parser() -> None:
    from golden import parse_form

    fixture = KIT_MEDIA / "tiny.png"
    media = await prepare_media(Media(path=str(fixture)))
    body, content_type = multipart(
        [
            ("phone", "5511999990000@s.whatsapp.net"),
            ("caption", 'quote " and\r\nnew line, ünïcode'),
            ("image", FilePart(media=media, filename='a "b".png', content_type="image/png")),
        ]
    )
    rendered, _ = await render(body)
    assert body.length == len(rendered)
    assert parse_form(content_type, rendered) == [
        ["phone", "5511999990000@s.whatsapp.net"],
        ["caption", 'quote " and\r\nnew line, ünïcode'],
        [
            "image",
            {"filename": "a %22b%22.png", "content_type": "image/png", "fixture": "tiny.png"},
        ],
    ]


async def test_json_with_base64_is_valid_json() -> None:
    import json

    data = payload(5000)
    body = json_with_base64(
        {"number": "1", "image": None, "caption": 'say "hi"'},
        Media(data=data),
        key_path=("image",),
        data_uri_mimetype="image/png",
    )
    rendered, _ = await render(body)
    document = json.loads(rendered)
    assert document["caption"] == 'say "hi"'
    prefix = "data:image/png;base64,"
    assert document["image"].startswith(prefix)
    assert base64.b64decode(document["image"][len(prefix) :]) == data
    assert body.length == len(rendered)


async def test_client_reads_head_before_encoding(tmp_path: Path) -> None:
    # Wawp takes URLs only: a path is refused by the adapter, but only after
    # the client sniffed it, and without any request going out.
    path = tmp_path / "img.png"
    path.write_bytes(payload(100))
    transport = wamsg.MockTransport(lambda r: wamsg.HttpResponse(status=200))
    client = wamsg.Client("wawp", instance_id="i", access_token="t", transport=transport)
    with pytest.raises(wamsg.UnsupportedFeature):
        await client.send_image("+5511999990000", str(path))
    assert transport.calls == 0
