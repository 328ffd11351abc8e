"""The WUTS adapter: its quirks, redaction, streamed base64 uploads, and one real send.

The wire format itself is in the golden files under ``tests/data/wuts/``
(providers.md §4, seed 002), run by the contract kit (tests/test_contract.py). This file
holds what a golden cannot say: checks before any I/O, what is printable,
the shape of the upload body, and an end-to-end send through the real
client and aiohttp transport to a server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import builtins
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from conftest import Serve
from golden import MEDIA, render_body

import wamsg
from wamsg import (
    AuthenticationError,
    ComposedBody,
    ConfigError,
    HttpResponse,
    Image,
    InvalidMessage,
    Media,
    MediaChunks,
    Message,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Rejected,
    Secret,
    SendResult,
    Status,
    Text,
)
from wamsg.providers.wuts import WutsAdapter

pytestmark = pytest.mark.anyio

TOKEN = "7c0e5c3a-51f2-4d8e-9a47-2f6b1d0e9c11"
PHONE = "+55 11 99999-0000"
PHONE_DIGITS = "5511999990000"
GROUP = "120363025246125486@g.us"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
MIB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the default transport is aiohttp, asyncio only


def make_adapter(**overrides: Any) -> WutsAdapter:
    settings: dict[str, Any] = {"token": TOKEN, **overrides}
    return WutsAdapter(**settings)


def body_json(message: Message) -> Any:
    return json.loads(render_body(make_adapter().encode(message)))


def decode(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """A result, or the ProviderError decoding raised (anything else propagates)."""
    try:
        return make_adapter().decode(HttpResponse(status=status, headers=headers or {}, body=body))
    except ProviderError as error:
        return error


def decode_error(status: int, body: bytes) -> ProviderError:
    outcome = decode(status, body)
    assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
    return outcome


def envelope(error: str, code: str) -> bytes:
    """WUTS's documented error envelope (providers.md §4.4)."""
    return msgspec.json.encode(
        {"success": False, "error": error, "error_code": code, "timestamp": "2026-06-15T12:00:00Z"}
    )


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


def test_capabilities() -> None:
    caps = WutsAdapter.capabilities
    assert (caps.reply, caps.mentions_text, caps.mentions_image, caps.view_once) == (
        True,
        True,
        True,
        True,
    )
    assert (caps.media_url, caps.media_upload, caps.media_base64) == (True, False, True)
    assert caps.image_types == {"image/jpeg", "image/png"}
    assert (caps.max_text_chars, caps.max_caption_chars) == (4096, 1024)
    assert caps.max_media_bytes == 16 * MIB


@pytest.mark.parametrize(
    "token", [TOKEN, Secret(TOKEN), f"Bearer {TOKEN}", f"  bearer   {TOKEN} \n"]
)
def test_token_forms(token: str | Secret) -> None:
    request = make_adapter(token=token).encode(Text(to=PHONE, text="hi"))
    assert request.revealed_headers()["Authorization"] == f"Bearer {TOKEN}"
    # The whole header value is a Secret, not only the token inside it.
    assert isinstance(dict(request.headers)["Authorization"], Secret)
    assert request.query == ()


CONFIG_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "missing_token": ({}, "token"),
    "empty_token": ({"token": ""}, "token"),
    "blank_token": ({"token": " \t"}, "token"),
    "bearer_only": ({"token": "Bearer "}, "token"),
    "token_with_space": ({"token": f"{TOKEN} extra"}, "token"),
    "token_with_newline": ({"token": f"{TOKEN}\r\nX-Evil: 1"}, "token"),
    "base_url_not_http": ({"token": TOKEN, "base_url": "ftp://api.wuts.com.br"}, "base_url"),
    "base_url_with_query": ({"token": TOKEN, "base_url": "https://x.example/?a=1"}, "base_url"),
    "unknown_setting": ({"token": TOKEN, "access_token": "x"}, "access_token"),
}


@pytest.mark.parametrize(("settings", "name"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_config_error(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        wamsg.create_adapter("wuts", **settings)
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------
# Refused before any I/O
# --------------------------------------------------------------------------

INVALID: dict[str, Callable[[], Message]] = {
    "caption_1025_chars": lambda: Image(
        to=PHONE, image=Media(url="https://x.example/a.jpg"), caption="x" * 1025
    ),
    "text_4097_chars": lambda: Text(to=PHONE, text="x" * 4097),
    "gif_upload": lambda: Image(to=PHONE, image=Media(data=(MEDIA / "tiny.gif").read_bytes())),
    "webp_upload": lambda: Image(to=PHONE, image=Media(data=(MEDIA / "tiny.webp").read_bytes())),
    "gif_named_png_upload": lambda: Image(
        to=PHONE, image=Media(data=(MEDIA / "tiny.gif").read_bytes(), filename="a.png")
    ),
    "gif_url": lambda: Image(to=PHONE, image=Media(url="https://x.example/a.gif")),
    "gif_mimetype_url": lambda: Image(
        to=PHONE, image=Media(url="https://x.example/render?id=1", mimetype="image/gif")
    ),
    "untyped_bytes": lambda: Image(to=PHONE, image=Media(data=b"not an image at all")),
    "phone_of_9_digits": lambda: Text(to="+376 312 345", text="hi"),
    "to_newsletter": lambda: Text(to="120363025246125486@newsletter", text="hi"),
    "to_lid": lambda: Text(to="123456789012345@lid", text="hi"),
    "to_broadcast": lambda: Text(to="status@broadcast", text="hi"),
    "mention_a_group": lambda: Text(to=PHONE, text="hi", mentions=(GROUP,)),
}


@pytest.mark.parametrize("build", INVALID.values(), ids=INVALID.keys())
def test_invalid_message(build: Callable[[], Message]) -> None:
    with pytest.raises(InvalidMessage) as info:
        make_adapter().encode(build())
    assert info.value.outcome is Outcome.NOT_SENT
    assert PHONE_DIGITS not in str(info.value)


def test_limits_are_inclusive() -> None:
    text = body_json(Text(to=PHONE, text="x" * 4096))
    assert len(text["text"]) == 4096
    image = body_json(
        Image(to=PHONE, image=Media(url="https://x.example/a.jpg"), caption="y" * 1024)
    )
    assert len(image["caption"]) == 1024


def test_phone_of_10_digits_is_sent() -> None:
    assert body_json(Text(to="+1 212 555 0100", text="hi"))["number"] == "12125550100"
    assert body_json(Text(to="+49 30 1234567", text="hi"))["number"] == "49301234567"


@pytest.mark.parametrize(
    ("reply_to", "quoted_id"),
    [
        ("3EB0C767D26A1D5B5E4A", "3EB0C767D26A1D5B5E4A"),
        (" 3EB0C767D26A1D5B5E4A ", "3EB0C767D26A1D5B5E4A"),
        ("true_5511999990000@c.us_3EB0C767D26A1D5B5E4A", "3EB0C767D26A1D5B5E4A"),
        (f"false_{GROUP}_3EB0C767D26A1D5B5E4A_5511988887777@c.us", "3EB0C767D26A1D5B5E4A"),
        # Not the serialized form: sent as given.
        ("true_3EB0", "true_3EB0"),
        ("maybe_5511@c.us_3EB0", "maybe_5511@c.us_3EB0"),
    ],
)
def test_reply_to_becomes_the_bare_quoted_id(reply_to: str, quoted_id: str) -> None:
    body = body_json(Text(to=PHONE, text="hi", reply_to=reply_to))
    assert body["quoted"] == {"key": {"id": quoted_id}}


def test_no_optional_keys_unless_asked() -> None:
    assert body_json(Text(to=PHONE, text="hi")) == {"number": PHONE_DIGITS, "text": "hi"}
    image = body_json(Image(to=PHONE, image=Media(url="https://x.example/a.png"), caption=""))
    assert image == {
        "number": PHONE_DIGITS,
        "image_url": "https://x.example/a.png",
        "viewOnce": False,
    }


# --------------------------------------------------------------------------
# Uploads: base64 streamed inside the JSON, never built in memory
# --------------------------------------------------------------------------


def test_base64_body_is_a_stream_of_known_length() -> None:
    data = (MEDIA / "tiny.jpg").read_bytes()
    request = make_adapter().encode(Image(to=PHONE, image=Media(data=data), caption="c"))
    body = request.body
    assert isinstance(body, ComposedBody)
    media_parts = [p for p in body.parts if isinstance(p, MediaChunks)]
    assert len(media_parts) == 1
    assert media_parts[0].base64
    # The image is in no fixed part, raw or encoded.
    fixed = b"".join(p for p in body.parts if isinstance(p, bytes))
    assert data not in fixed
    assert base64.b64encode(data) not in fixed
    rendered = render_body(request)
    assert body.length == len(rendered)
    image = json.loads(rendered)["image"]
    assert image == "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert request.kind == "media"
    assert "stream(" in repr(request)


def test_sparse_16_mib_path_is_encoded_without_reading_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.jpg"
    with path.open("wb") as f:
        f.write(JPEG_HEADER)
        f.truncate(16 * MIB)  # sparse: no 16 MiB written to disk
    media = Media(path=str(path))
    assert media.size == 16 * MIB

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"encode opened a file: {args[:1]!r}")

    with monkeypatch.context() as patch:
        for owner, name in ((builtins, "open"), (io, "open"), (os, "open")):
            patch.setattr(owner, name, refuse)
        request = make_adapter().encode(Image(to=PHONE, image=media, caption="big"))
    body = request.body
    assert isinstance(body, ComposedBody)
    fixed = sum(len(p) for p in body.parts if isinstance(p, bytes))
    assert fixed < 200
    assert body.length == fixed + 4 * ((16 * MIB + 2) // 3)
    prefix = body.parts[0]
    assert isinstance(prefix, bytes)
    assert prefix.endswith(b'"image":"data:image/jpeg;base64,')


def test_image_over_16_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as f:
        f.write(JPEG_HEADER)
        f.truncate(16 * MIB + 1)
    with pytest.raises(InvalidMessage, match="16777216"):
        make_adapter().encode(Image(to=PHONE, image=Media(path=str(path))))


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("sent", Status.SENT),
        ("SENT", Status.SENT),
        ("pending", Status.QUEUED),
        ("queued", Status.QUEUED),
        ("delivered", Status.DELIVERED),
        ("read", Status.READ),
        ("played", Status.PLAYED),
        ("failed", Status.FAILED),
        ("server_ack", Status.UNKNOWN),
        ("", Status.UNKNOWN),
        (2, Status.UNKNOWN),
        (None, Status.UNKNOWN),
    ],
)
def test_status_strings(wire: Any, status: Status) -> None:
    body = msgspec.json.encode({"success": True, "message_id": "3EB0AA", "status": wire})
    result = decode(200, body)
    assert isinstance(result, SendResult)
    assert result.status is status
    assert (result.message_id, result.short_id) == ("3EB0AA", "3EB0AA")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2026-06-15T14:03:21Z", datetime(2026, 6, 15, 14, 3, 21, tzinfo=UTC)),
        ("2026-06-15T11:03:21-03:00", datetime(2026, 6, 15, 14, 3, 21, tzinfo=UTC)),
        ("2026-06-15T14:03:21", datetime(2026, 6, 15, 14, 3, 21, tzinfo=UTC)),
        ("not a time", None),
        (1750000000, None),
        (None, None),
    ],
)
def test_timestamps(wire: Any, expected: datetime | None) -> None:
    body = msgspec.json.encode({"success": True, "message_id": "3EB0AA", "timestamp": wire})
    result = decode(201, body)
    assert isinstance(result, SendResult)
    assert result.timestamp == expected


def test_code_wins_over_status() -> None:
    error = decode_error(503, envelope("bad input", "VALIDATION_ERROR"))
    assert isinstance(error, Rejected)
    error = decode_error(401, envelope("x", "DEVICE_NOT_READY"))
    assert isinstance(error, ProviderUnavailable)
    assert (error.outcome, error.retryable) == (Outcome.NOT_SENT, True)


# Hostile bodies on every status, secrets in reprs and cut error texts: the
# contract kit (tests/test_contract.py); what follows is this gateway's own.


# --------------------------------------------------------------------------
# Redaction: no token, no full phone number in anything printable
# --------------------------------------------------------------------------


def _printable(error: ProviderError) -> list[str]:
    return [
        str(error),
        repr(error),
        error.gateway_message or "",
        error.error_code or "",
        error.body_excerpt,
    ]


def _shows_token(text: str) -> bool:
    """The token, or any cut-off start of it (eight characters or more)."""
    return any(TOKEN[:n] in text for n in range(8, len(TOKEN) + 1))


TOKEN_ECHOES: dict[str, tuple[int, bytes]] = {
    "401_envelope": (401, envelope(f"invalid token {TOKEN}", "UNAUTHORIZED")),
    "401_bearer_echo": (401, envelope(f"bad header 'Bearer {TOKEN}'", "UNAUTHORIZED")),
    "200_success_false": (200, envelope(f"token {TOKEN} has no device", "DEVICE_NOT_READY")),
    "400_token_as_code": (400, envelope("x", TOKEN)),
    "bare_error": (401, msgspec.json.encode({"error": f"unauthorized: {TOKEN}"})),
    "500_html": (500, f"<html><title>{TOKEN}</title><p>{TOKEN}</p></html>".encode()),
    "502_text_long": (502, ("e" * 290 + f" Authorization: Bearer {TOKEN}").encode()),
    "200_not_json": (200, ("x" * 280 + TOKEN).encode()),
}


@pytest.mark.parametrize(("status", "body"), TOKEN_ECHOES.values(), ids=TOKEN_ECHOES.keys())
def test_token_never_shown_in_errors(status: int, body: bytes) -> None:
    error = decode_error(status, body)
    assert not [text for text in _printable(error) if _shows_token(text)]


PHONE_ECHOES: dict[str, tuple[int, bytes]] = {
    "validation": (
        400,
        msgspec.json.encode(
            {
                "success": False,
                "error": f"invalid number {PHONE_DIGITS}",
                "error_code": "VALIDATION_ERROR",
                "validation": [{"field": "number", "message": "bad", "value": PHONE_DIGITS}],
            }
        ),
    ),
    "jid": (404, envelope(f"chat {PHONE_DIGITS}@s.whatsapp.net not found", "NOT_FOUND")),
    "plain_text": (500, f"cannot send to +{PHONE_DIGITS}".encode()),
}


@pytest.mark.parametrize(("status", "body"), PHONE_ECHOES.values(), ids=PHONE_ECHOES.keys())
def test_phone_masked_in_errors(status: int, body: bytes) -> None:
    error = decode_error(status, body)
    assert not [text for text in _printable(error) if PHONE_DIGITS in text]
    assert "55*********00" in error.body_excerpt


def test_phone_masked_in_result_repr() -> None:
    body = msgspec.json.encode(
        {"success": True, "message_id": "3EB0AA", "chat_jid": f"{PHONE_DIGITS}@s.whatsapp.net"}
    )
    result = decode(200, body)
    assert isinstance(result, SendResult)
    assert result.chat_id == f"{PHONE_DIGITS}@s.whatsapp.net"
    assert PHONE_DIGITS not in repr(result)


# --------------------------------------------------------------------------
# End to end: wamsg.Client, the aiohttp transport, a WUTS-like server
# --------------------------------------------------------------------------

SUCCESS = {
    "success": True,
    "message_id": "3EB0E2E0E2E0E2E0",
    "timestamp": "2026-06-15T14:03:21Z",
    "status": "sent",
    "chat_jid": f"{PHONE_DIGITS}@s.whatsapp.net",
    "metadata": {"device_id": "device-7f3a", "image_format": "image/png"},
}


class FakeWuts:
    """A WUTS-like ``/send/image`` that checks what it is sent, on 127.0.0.1."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, SUCCESS)

    async def send_image(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(
                {"success": False, "error": "unauthorized", "error_code": "UNAUTHORIZED"},
                status=401,
            )
        raw = await request.read()
        document = json.loads(raw)
        image: str = document.pop("image")
        prefix, _, encoded = image.partition(",")
        self.seen.append(
            {
                "headers": dict(request.headers),
                "length": len(raw),
                "document": document,
                "prefix": prefix,
                "bytes": base64.b64decode(encoded, validate=True),
            }
        )
        status, body = self.answer
        return web.json_response(body, status=status)


@pytest.fixture
async def wuts_server(serve: Serve) -> tuple[FakeWuts, str]:
    fake = FakeWuts()
    return fake, await serve(fake.send_image, method="POST", path="/send/image")


async def test_end_to_end_image_upload(wuts_server: tuple[FakeWuts, str], tmp_path: Path) -> None:
    fake, base_url = wuts_server
    data = PNG_SIGNATURE + os.urandom(MIB - len(PNG_SIGNATURE) + 1)  # not a multiple of 3
    path = tmp_path / "photo"  # no extension: the type comes from the bytes
    path.write_bytes(data)
    async with wamsg.Client("wuts", token=TOKEN, base_url=base_url) as client:
        result = await client.send_image(
            PHONE, str(path), caption="*hello*", mentions=["+55 11 98888-7777"], view_once=True
        )
    assert result.provider == "wuts"
    assert (result.message_id, result.short_id) == ("3EB0E2E0E2E0E2E0", "3EB0E2E0E2E0E2E0")
    assert result.status is Status.SENT
    assert result.chat_id == f"{PHONE_DIGITS}@s.whatsapp.net"
    assert result.timestamp == datetime(2026, 6, 15, 14, 3, 21, tzinfo=UTC)
    assert result.attempts[0].status_code == 200

    (seen,) = fake.seen
    assert seen["bytes"] == data
    assert seen["prefix"] == "data:image/png;base64"
    assert seen["document"] == {
        "number": PHONE_DIGITS,
        "caption": "*hello*",
        "viewOnce": True,
        "mentioned": ["5511988887777@s.whatsapp.net"],
    }
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["content-length"] == str(seen["length"])
    assert "chunked" not in headers.get("transfer-encoding", "").lower()
    assert headers["content-type"] == "application/json"


async def test_end_to_end_error_in_a_200(wuts_server: tuple[FakeWuts, str]) -> None:
    fake, base_url = wuts_server
    fake.answer = (
        200,
        {
            "success": False,
            "error": "WhatsApp session is not connected",
            "error_code": "DEVICE_NOT_READY",
            "timestamp": "2026-06-15T12:00:00Z",
        },
    )
    async with wamsg.Client("wuts", token=TOKEN, base_url=base_url) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await client.send_image(PHONE, (MEDIA / "tiny.jpg").read_bytes())
    assert info.value.outcome is Outcome.NOT_SENT
    assert info.value.retryable
    assert info.value.error_code == "DEVICE_NOT_READY"
    assert fake.seen[0]["prefix"] == "data:image/jpeg;base64"


async def test_end_to_end_wrong_token(wuts_server: tuple[FakeWuts, str]) -> None:
    _, base_url = wuts_server
    async with wamsg.Client("wuts", token="wrong-token", base_url=base_url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.send_image(PHONE, (MEDIA / "tiny.png").read_bytes())
    assert info.value.status_code == 401
    assert info.value.outcome is Outcome.REJECTED
