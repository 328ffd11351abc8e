"""The WAHA adapter: its quirks, its error cases, redaction, and a real send end to end.

The wire format itself is in the golden files under ``tests/data/waha/``
(run by the contract kit, tests/test_contract.py); this file holds what goldens cannot
say: checks before any I/O, settings, what error messages tell the
operator, the streamed base64 body, and a send through the real client and
aiohttp transport to a WAHA-like server on 127.0.0.1 (providers.md §2).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from golden import MEDIA, render_body, request_to_dict

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
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    Rejected,
    Secret,
    SendResult,
    Status,
    Text,
    UnsupportedFeature,
)
from wamsg.providers.base import client_message_id
from wamsg.providers.waha import WahaAdapter
from wamsg.providers.wawp import WawpAdapter

pytestmark = pytest.mark.anyio

API_KEY = "waha-SECRET-key-0123456789"
BASE_URL = "http://localhost:3000"
PHONE = "+55 11 99999-0000"
PHONE_DIGITS = "5511999990000"
GROUP = "120363025246125486@g.us"
JPEG_URL = "https://example.com/cat.jpg"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp is asyncio-only


def make_adapter(**overrides: Any) -> WahaAdapter:
    settings: dict[str, Any] = {"base_url": BASE_URL, "api_key": API_KEY, **overrides}
    return WahaAdapter(**settings)


def decode(
    status: int, body: bytes | Any = b"", *, adapter: WahaAdapter | None = None
) -> SendResult | ProviderError:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    try:
        return (adapter or make_adapter()).decode(HttpResponse(status=status, body=raw))
    except ProviderError as error:
        return error


def decode_error(
    status: int, body: bytes | Any = b"", *, adapter: WahaAdapter | None = None
) -> ProviderError:
    outcome = decode(status, body, adapter=adapter)
    assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
    return outcome


def _printable(error: ProviderError) -> list[str]:
    return [
        str(error),
        repr(error),
        error.message,
        error.gateway_message or "",
        error.error_code or "",
        error.body_excerpt,
    ]


def _shows_key(text: str) -> bool:
    """True when ``text`` holds the key, or a start of it left by a cut (6+ characters)."""
    return any(API_KEY[:n] in text for n in range(6, len(API_KEY) + 1))


# --------------------------------------------------------------------------
# Capabilities: declared, and true
# --------------------------------------------------------------------------


def test_capabilities() -> None:
    caps = WahaAdapter.capabilities
    assert (caps.reply, caps.mentions_text, caps.mentions_image) == (True, True, True)
    assert (caps.media_url, caps.media_upload, caps.media_base64) == (True, False, True)
    assert caps.view_once is False
    assert caps.image_types == {"image/jpeg", "image/png"}
    assert caps.max_media_bytes == 16 * 1024 * 1024
    assert caps.client_message_id is True
    assert WahaAdapter.name == "waha"
    assert isinstance(make_adapter(), wamsg.Adapter)


# --------------------------------------------------------------------------
# Refused before any I/O
# --------------------------------------------------------------------------


def test_view_once_is_unsupported() -> None:
    # MessageImageRequest has no view-once field (providers.md §2.3).
    message = Image(to=PHONE, image=Media(url=JPEG_URL), view_once=True)
    with pytest.raises(UnsupportedFeature) as info:
        make_adapter().encode(message)
    assert info.value.feature == "view_once"
    assert info.value.provider == "waha"
    assert info.value.outcome is Outcome.NOT_SENT


INVALID: dict[str, Callable[[], Message]] = {
    "gif_by_url": lambda: Image(to=PHONE, image=Media(url="https://example.com/a.gif")),
    "gif_bytes": lambda: Image(to=PHONE, image=Media(data=(MEDIA / "tiny.gif").read_bytes())),
    "gif_bytes_named_jpg": lambda: Image(
        to=PHONE, image=Media(data=(MEDIA / "tiny.gif").read_bytes(), filename="a.jpg")
    ),
    "webp_bytes": lambda: Image(to=PHONE, image=Media(data=(MEDIA / "tiny.webp").read_bytes())),
    "type_unknown": lambda: Image(to=PHONE, image=Media(url="https://example.com/render?id=1")),
    "over_16_mib": lambda: Image(to=PHONE, image=Media(data=JPEG_HEAD + bytes(16 * 1024 * 1024))),
}


@pytest.mark.parametrize("build", INVALID.values(), ids=INVALID.keys())
def test_invalid_image(build: Callable[[], Message]) -> None:
    with pytest.raises(InvalidMessage) as info:
        make_adapter().encode(build())
    assert info.value.outcome is Outcome.NOT_SENT


def test_exactly_16_mib_is_accepted() -> None:
    data = JPEG_HEAD + bytes(16 * 1024 * 1024 - len(JPEG_HEAD))
    request = make_adapter().encode(Image(to=PHONE, image=Media(data=data)))
    assert request.kind == "media"


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

CONFIG_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "empty_session": ({"base_url": BASE_URL, "session": ""}, "session"),
    "blank_session": ({"base_url": BASE_URL, "session": " \t"}, "session"),
    "session_not_a_string": ({"base_url": BASE_URL, "session": None}, "session"),
    "empty_api_key": ({"base_url": BASE_URL, "api_key": ""}, "api_key"),
    "blank_api_key": ({"base_url": BASE_URL, "api_key": Secret("  ")}, "api_key"),
    "missing_base_url": ({"api_key": API_KEY}, "base_url"),
    "base_url_not_http": ({"base_url": "ftp://localhost:3000"}, "base_url"),
    "base_url_with_query": (
        {"base_url": f"http://localhost:3000/?x-api-key={API_KEY}"},
        "base_url",
    ),
    "unknown_setting": ({"base_url": BASE_URL, "access_token": "x"}, "access_token"),
}


@pytest.mark.parametrize(("settings", "names"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_config_error(settings: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        wamsg.create_adapter("waha", **settings)
    assert not _shows_key(str(info.value))


def test_session_is_stripped_and_sent() -> None:
    request = make_adapter(session="  sales ").encode(Text(to=PHONE, text="hi"))
    assert isinstance(request.body, bytes)
    assert json.loads(request.body)["session"] == "sales"


def test_api_key_is_a_secret_header_never_a_query() -> None:
    for key in (API_KEY, Secret(API_KEY)):
        request = make_adapter(api_key=key).encode(Text(to=PHONE, text="hi"))
        assert request.query == ()
        assert dict(request.headers)["X-Api-Key"] == Secret(API_KEY)
        assert isinstance(dict(request.headers)["X-Api-Key"], Secret)
        assert request.revealed_headers()["X-Api-Key"] == API_KEY
        assert request.secrets() == (Secret(API_KEY),)


def test_no_api_key_sends_no_header() -> None:
    request = make_adapter(api_key=None).encode(Text(to=PHONE, text="hi"))
    assert "X-Api-Key" not in request.revealed_headers()
    assert request.secrets() == ()


# --------------------------------------------------------------------------
# Encoding details the goldens do not show
# --------------------------------------------------------------------------


def test_mentions_leave_the_text_alone() -> None:
    # providers.md §2.2: the caller writes "@<number>"; the adapter adds nothing.
    message = Text(to=GROUP, text="no at-sign here", mentions=("+55 11 98888-7777",))
    request = make_adapter().encode(message)
    assert isinstance(request.body, bytes)
    body = json.loads(request.body)
    assert body["text"] == "no at-sign here"
    assert body["mentions"] == ["5511988887777@c.us"]


def test_empty_caption_is_left_out() -> None:
    request = make_adapter().encode(Image(to=PHONE, image=Media(url=JPEG_URL), caption=""))
    assert isinstance(request.body, bytes)
    assert "caption" not in json.loads(request.body)


# --------------------------------------------------------------------------
# Idempotency keys: a pre-generated message id on sendText only
# --------------------------------------------------------------------------

#: client_message_id("order-42"), worked out by hand from SHA-256.
ORDER_42_ID = "3EB03BF8B157C4238EEF"


def _json_body(request: wamsg.HttpRequest) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_body(request))
    return document


def test_client_message_id_is_deterministic_and_whatsapp_shaped() -> None:
    assert client_message_id("order-42") == ORDER_42_ID
    assert client_message_id("order-42") == client_message_id("order-42")
    digest = hashlib.sha256(b"order-42").hexdigest()
    assert "3EB0" + digest[:16].upper() == ORDER_42_ID
    for key in ("k", "order-42", "é" * 255, "a b\tc", "3EB0AAAA"):
        ident = client_message_id(key)
        # whatsapp-web.js's shape: 3EB0 and upper-case hex, 20 characters.
        assert re.fullmatch(r"3EB0[0-9A-F]{16}", ident), ident
        assert key not in ident


def test_client_message_id_differs_per_key() -> None:
    keys = [f"key-{n}" for n in range(2000)] + ["K", "k", "k ", " k"]
    assert len({client_message_id(k) for k in keys}) == len(keys)


def test_text_with_an_idempotency_key_sends_its_message_id() -> None:
    # The golden this would be (tests/golden.py does not yet pass
    # idempotency_key through): MessageTextRequest.id, "Pre-generated
    # message id" (providers.md §2.2, W7), last in the body.
    message = Text(to="+1 111 111 1111", text="Hi there!", idempotency_key="order-42")
    adapter = WahaAdapter(base_url=BASE_URL, api_key="YOUR_API_KEY")
    request = adapter.encode(message)
    assert request_to_dict(request) == {
        "method": "POST",
        "url": "http://localhost:3000/api/sendText",
        "query": [],
        "headers": [
            ["Content-Type", "application/json"],
            ["Accept", "application/json"],
            ["X-Api-Key", "YOUR_API_KEY"],
        ],
        "json": {
            "session": "default",
            "chatId": "11111111111@c.us",
            "text": "Hi there!",
            "id": ORDER_42_ID,
        },
        "kind": "text",
    }
    assert render_body(request) == (
        b'{"session":"default","chatId":"11111111111@c.us","text":"Hi there!",'
        b'"id":"3EB03BF8B157C4238EEF"}'
    )
    # The key itself never goes out, only its hash.
    assert b"order-42" not in render_body(request)
    # A retry (here: another adapter, as another process would build it)
    # asks for the very same id.
    again = WahaAdapter(base_url="http://other:3000", session="default").encode(message)
    assert _json_body(again)["id"] == ORDER_42_ID


def test_text_with_reply_mentions_and_key_keeps_every_field() -> None:
    message = Text(
        to=GROUP,
        text="Hi @5511988887777",
        reply_to="false_11111111111@c.us_AAAA",
        mentions=("+5511988887777",),
        idempotency_key="k",
    )
    body = _json_body(make_adapter().encode(message))
    assert list(body) == ["session", "chatId", "text", "reply_to", "mentions", "id"]
    assert body["id"] == client_message_id("k")


def test_text_without_a_key_sends_no_id() -> None:
    body = _json_body(make_adapter().encode(Text(to=PHONE, text="hi")))
    assert "id" not in body


@pytest.mark.parametrize(
    "media",
    [
        Media(url=JPEG_URL),
        Media(data=(MEDIA / "tiny.jpg").read_bytes()),
    ],
    ids=["url", "base64"],
)
def test_image_never_sends_an_id(media: Media) -> None:
    # MessageImageRequest has no pre-generated id (providers.md §2.3, W7).
    request = make_adapter().encode(Image(to=PHONE, image=media, idempotency_key="order-42"))
    body = _json_body(request)
    assert "id" not in body
    assert "id" not in body["file"]
    assert b"3EB0" not in render_body(request)
    assert b"order-42" not in render_body(request)


def test_wawp_sends_no_id_for_a_key() -> None:
    # Wawp's v2 send-text documents chatId, message and reply_to only
    # (providers.md §1.4): no pre-generated id, though it runs WAHA (§1.2).
    assert WawpAdapter.capabilities.client_message_id is False
    adapter = WawpAdapter(instance_id="INSTANCE1", access_token="TOKEN")
    for message in (
        Text(to=PHONE, text="hi", idempotency_key="order-42"),
        Image(to=PHONE, image=Media(url=JPEG_URL), idempotency_key="order-42"),
    ):
        rendered = render_body(adapter.encode(message))
        assert b'"id"' not in rendered
        assert b"3EB0" not in rendered
        assert b"order-42" not in rendered


@pytest.mark.parametrize("body", [b'{"id":"\x80"}', b'{"message":"\x80"', b'"\x80"'])
def test_2xx_with_invalid_utf8_is_an_unknown_outcome(body: bytes) -> None:
    # msgspec raises UnicodeDecodeError for invalid UTF-8 inside a JSON string.
    error = decode_error(201, body)
    assert type(error) is ProviderError
    assert error.outcome is Outcome.UNKNOWN


def test_decoded_ids_are_the_client_message_id() -> None:
    # WEBJS answers with the whatsapp-web.js Message whose id.id is the
    # pre-generated id (as the sandbox echoes it): the result is built on it.
    chat = f"{PHONE_DIGITS}@c.us"
    result = decode(201, _webjs_answer(chat, client_message_id("order-42")))
    assert isinstance(result, SendResult)
    assert result.short_id == ORDER_42_ID
    assert result.message_id == f"true_{chat}_{ORDER_42_ID}"


def _jpeg_path(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(JPEG_HEAD + os.urandom(size - len(JPEG_HEAD)))
    return path


def test_base64_body_is_streamed_with_an_exact_length(tmp_path: Path) -> None:
    path = _jpeg_path(tmp_path, 100_003)
    message = Image(to=PHONE, image=Media(path=str(path), head=path.read_bytes()[:16]))
    request = make_adapter().encode(message)
    body = request.body
    assert isinstance(body, ComposedBody)
    # The file is a streamed part, base64-encoded on the way, not bytes in memory.
    media_parts = [part for part in body.parts if isinstance(part, MediaChunks)]
    assert len(media_parts) == 1
    assert media_parts[0].base64 is True
    assert media_parts[0].media.path == str(path)
    assert sum(len(p) for p in body.parts if isinstance(p, bytes)) < 300
    rendered = render_body(request)
    assert body.length == len(rendered)
    document = json.loads(rendered)
    assert list(document) == ["session", "chatId", "file"]
    assert document["file"]["mimetype"] == "image/jpeg"
    # No filename was given: the file's own name is used.
    assert document["file"]["filename"] == "photo.jpg"
    # Plain base64, no data: URI (BinaryFile.data, providers.md §2.3).
    assert base64.b64decode(document["file"]["data"], validate=True) == path.read_bytes()


def test_base64_body_can_be_sent_twice() -> None:
    data = (MEDIA / "tiny.png").read_bytes()
    request = make_adapter().encode(Image(to=PHONE, image=Media(data=data)))
    assert render_body(request) == render_body(request)


# --------------------------------------------------------------------------
# Errors: what the operator is told
# --------------------------------------------------------------------------


def test_session_not_found_names_the_setting() -> None:
    adapter = make_adapter(session="sales")
    error = decode_error(
        404,
        {
            "message": "We didn't find a session with name 'sales'.\n"
            "Please start it first by using POST /api/sessions/sales/start request",
            "error": "Not Found",
            "statusCode": 404,
        },
        adapter=adapter,
    )
    assert isinstance(error, ProviderConfigError)
    assert isinstance(error, Rejected)
    assert isinstance(error, ConfigError)
    assert error.outcome is Outcome.REJECTED
    assert error.retryable is False
    assert "session=" in str(error)
    assert "'sales'" in str(error)
    assert error.args == (error.message,)


def test_core_default_session_only_says_to_use_default() -> None:
    error = decode_error(
        422,
        {
            "message": "WAHA Core support only 'default' session. You tried to access 'sales' "
            "session (base64: c2FsZXM=). If you want to run more then one WhatsApp account - "
            "please get WAHA PLUS version. Check this out: https://waha.devlike.pro/",
            "error": "Unprocessable Entity",
            "statusCode": 422,
        },
        adapter=make_adapter(session="sales"),
    )
    assert isinstance(error, ProviderConfigError)
    assert error.error_code == "core_default_session_only"
    assert "session='default'" in str(error)


def test_unknown_route_points_at_base_url() -> None:
    error = decode_error(
        404, {"message": "Cannot POST /api/api/sendText", "error": "Not Found", "statusCode": 404}
    )
    assert isinstance(error, ProviderConfigError)
    assert "base_url" in str(error)


def test_other_404_is_a_plain_rejection() -> None:
    error = decode_error(404, {"message": "Chat not found", "statusCode": 404})
    assert type(error) is Rejected
    assert error.error_code is None


@pytest.mark.parametrize(
    ("status", "shown"),
    [("STARTING", "STARTING"), ("SCAN_QR_CODE", "SCAN_QR_CODE"), ("<b>x</b>", "not WORKING")],
)
def test_session_not_working_is_retryable_and_says_its_status(status: str, shown: str) -> None:
    error = decode_error(
        422,
        {
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": "default",
            "status": status,
            "expected": ["WORKING"],
        },
    )
    assert isinstance(error, ProviderUnavailable)
    assert error.outcome is Outcome.NOT_SENT
    assert error.retryable is True
    assert error.error_code == "session_not_working"
    assert f"is {shown};" in str(error)


def test_plus_only_is_permanent() -> None:
    error = decode_error(
        422,
        {
            "message": "The feature is available only in Plus version for 'WEBJS' engine. "
            "Check this out: https://waha.devlike.pro/",
            "error": "Unprocessable Entity",
            "statusCode": 422,
        },
    )
    assert type(error) is Rejected
    assert (error.error_code, error.outcome, error.retryable) == (
        "plus_only",
        Outcome.REJECTED,
        False,
    )


def test_cases_match_only_under_their_status() -> None:
    # A 500 echoes the request, so the user's own text may hold a case's
    # phrase: it must not turn an unknown outcome into a config error.
    echo = {
        "statusCode": 500,
        "exception": {"message": "Session status is not as expected", "name": "Error"},
        "request": {"body": {"text": "We didn't find a session with name 'x'"}},
    }
    error = decode_error(500, echo)
    assert type(error) is ProviderUnavailable
    assert error.outcome is Outcome.UNKNOWN
    assert error.error_code is None
    # And the phrases are read from the error text, not from other fields.
    error = decode_error(422, {"message": "Invalid", "session": "available only in Plus version"})
    assert type(error) is Rejected
    assert error.error_code is None


def test_400_validation_lists_every_message() -> None:
    error = decode_error(
        400,
        {
            "statusCode": 400,
            "message": ["file.mimetype must be a string", "chatId should not be empty"],
            "error": "Bad Request",
        },
    )
    assert type(error) is Rejected
    assert error.gateway_message == "file.mimetype must be a string; chatId should not be empty"


def test_401_is_an_authentication_error() -> None:
    error = decode_error(401, {"message": "Unauthorized", "statusCode": 401})
    assert isinstance(error, AuthenticationError)
    assert error.outcome is Outcome.REJECTED


# --------------------------------------------------------------------------
# Redaction: no key and no full phone number in anything printable
# --------------------------------------------------------------------------


def _echo_500(pad: str = "") -> dict[str, Any]:
    """A 500 as AllExceptionsFilter writes it (providers.md §2.6): it echoes the request."""
    data = base64.b64encode((MEDIA / "tiny.jpg").read_bytes()).decode()
    return {
        "statusCode": 500,
        "timestamp": "2025-09-29T01:21:06.123Z",
        "exception": {
            "stack": f"Error: {pad}invalid wid {PHONE_DIGITS}@c.us key={API_KEY}\n    at x.js:1:1",
            "message": f"{pad}invalid wid {PHONE_DIGITS}@c.us (x-api-key={API_KEY})",
            "name": "Error",
        },
        "request": {
            "path": f"/api/sendImage?x-api-key={API_KEY}",
            "method": "POST",
            "body": {
                "session": "default",
                "chatId": f"{PHONE_DIGITS}@c.us",
                "file": {"mimetype": "image/jpeg", "data": data},
                "caption": f"call +{PHONE_DIGITS}",
                "mentions": [f"{PHONE_DIGITS}@c.us"],
            },
            "query": {"x-api-key": API_KEY},
        },
        "version": {"version": "2024.10.8", "engine": "WEBJS", "tier": "CORE"},
    }


def test_500_echo_shows_neither_key_nor_phone() -> None:
    error = decode_error(500, _echo_500())
    assert type(error) is ProviderUnavailable
    assert error.outcome is Outcome.UNKNOWN
    assert error.retryable is False
    assert error.gateway_message is not None
    assert error.gateway_message.startswith("invalid wid 55*********00@c.us")
    printed = _printable(error)
    assert not [text for text in printed if _shows_key(text)]
    assert not [text for text in printed if PHONE_DIGITS in text]


def test_500_echo_never_shows_the_key_wherever_the_text_is_cut() -> None:
    leaks: list[str] = []
    for pad in range(0, 700, 7):
        error = decode_error(500, _echo_500("e" * pad))
        leaks += [f"pad {pad}: {t!r}" for t in _printable(error) if _shows_key(t)]
        leaks += [f"pad {pad}: {t!r}" for t in _printable(error) if PHONE_DIGITS in t]
    assert not leaks, "\n".join(leaks[:3])


def test_500_echo_cut_by_the_transport_shows_no_key() -> None:
    # The transport caps the body: the JSON no longer parses, the raw text is
    # used, and the cut may go through the key itself.
    raw = msgspec.json.encode(_echo_500())
    leaks: list[str] = []
    for cut in range(100, len(raw)):
        response = HttpResponse(status=500, body=raw[:cut], truncated=True)
        with pytest.raises(ProviderUnavailable) as info:
            make_adapter().decode(response)
        printed = _printable(info.value)
        leaks += [f"cut {cut}: {t!r}" for t in printed if _shows_key(t) or PHONE_DIGITS in t]
    assert not leaks, "\n".join(leaks[:3])


def test_key_is_redacted_in_hints_too() -> None:
    # A session named like the key (a misplaced setting) is not printed either.
    adapter = make_adapter(session=API_KEY)
    error = decode_error(
        404,
        {"message": "We didn't find a session with name 'x'", "statusCode": 404},
        adapter=adapter,
    )
    assert isinstance(error, ProviderConfigError)
    assert not [t for t in _printable(error) if _shows_key(t)]


def test_key_never_in_reprs() -> None:
    adapter = make_adapter()
    text = adapter.encode(Text(to=PHONE, text="hi"))
    image = adapter.encode(Image(to=PHONE, image=Media(data=(MEDIA / "tiny.jpg").read_bytes())))
    printed = [repr(adapter), str(adapter), repr(text), repr(image), repr(text.headers)]
    assert not [p for p in printed if _shows_key(p) or PHONE_DIGITS in p]
    assert "api_key=set" in repr(adapter)
    assert "api_key=none" in repr(make_adapter(api_key=None))


# --------------------------------------------------------------------------
# Decoding never fails with anything but a ProviderError
# --------------------------------------------------------------------------

# Hostile bodies on every status, secrets in reprs and cut error texts: the
# contract kit (tests/test_contract.py); what follows is this gateway's own.


# --------------------------------------------------------------------------
# End to end: the real client and aiohttp transport, a WAHA-like server
# --------------------------------------------------------------------------


def _webjs_answer(chat_id: str, short_id: str) -> dict[str, Any]:
    """What WEBJS returns for a send (providers.md §2.5): the whatsapp-web.js Message."""
    return {
        "_data": {"id": {"fromMe": True, "remote": chat_id, "id": short_id}, "type": "image"},
        "id": {
            "fromMe": True,
            "remote": chat_id,
            "id": short_id,
            "_serialized": f"true_{chat_id}_{short_id}",
        },
        "ack": 1,
        "hasMedia": True,
        "timestamp": 1759108866,
        "from": "11111111111@c.us",
        "to": chat_id,
        "fromMe": True,
    }


async def test_image_from_a_path_end_to_end(serve: Any, tmp_path: Path) -> None:
    path = _jpeg_path(tmp_path, 1024 * 1024 + 1)  # ~1 MiB, not a multiple of 3
    expected = path.read_bytes()
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        body = await request.read()
        seen.update(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            content_length=request.headers.get("Content-Length"),
            transfer_encoding=request.headers.get("Transfer-Encoding"),
            content_type=request.headers.get("Content-Type"),
            received=len(body),
        )
        document = json.loads(body)
        file = document.pop("file")
        seen.update(document=document, file_keys=list(file))
        seen["same_bytes"] = base64.b64decode(file["data"], validate=True) == expected
        seen.update(mimetype=file["mimetype"], filename=file["filename"])
        answer = _webjs_answer(document["chatId"], "3EB0C767D097B7C5")
        return web.json_response(answer, status=201)

    base_url = await serve(handler)
    async with wamsg.Client("waha", base_url=base_url, api_key=API_KEY) as client:
        result = await client.send_image(PHONE, path, caption="hello")

    assert seen["method"] == "POST"
    assert seen["path"] == "/api/sendImage"
    assert seen["query"] == {}  # the key goes in the header only
    assert seen["content_type"] == "application/json"
    # Sent with Content-Length, not chunked, and the length was exact.
    assert seen["transfer_encoding"] is None
    assert seen["content_length"] == str(seen["received"])
    assert seen["received"] > 4 * len(expected) // 3
    assert seen["document"] == {
        "session": "default",
        "chatId": f"{PHONE_DIGITS}@c.us",
        "caption": "hello",
    }
    assert seen["file_keys"] == ["mimetype", "filename", "data"]
    assert (seen["mimetype"], seen["filename"]) == ("image/jpeg", "photo.jpg")
    assert seen["same_bytes"] is True

    assert result.provider == "waha"
    assert result.message_id == f"true_{PHONE_DIGITS}@c.us_3EB0C767D097B7C5"
    assert result.short_id == "3EB0C767D097B7C5"
    assert result.chat_id == f"{PHONE_DIGITS}@c.us"
    assert result.status is Status.SENT
    assert result.timestamp is not None
    assert result.timestamp.timestamp() == 1759108866
    assert len(result.attempts) == 1
    assert result.attempts[0].status_code == 201


async def test_text_and_a_wrong_key_end_to_end(serve: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        document = await request.json()
        assert request.path == "/api/sendText"
        assert document == {
            "session": "sales",
            "chatId": f"{PHONE_DIGITS}@c.us",
            "text": "Hi @5511988887777",
            "mentions": ["5511988887777@c.us"],
            "id": ORDER_42_ID,
        }
        # WEBJS keeps the pre-generated id (§2.2), as the sandbox does.
        return web.json_response(_webjs_answer(document["chatId"], document["id"]), status=201)

    base_url = await serve(handler)
    message = Text(
        to=PHONE,
        text="Hi @5511988887777",
        mentions=("+55 11 98888-7777",),
        idempotency_key="order-42",
    )
    async with wamsg.Client("waha", base_url=base_url, api_key=API_KEY, session="sales") as client:
        result = await client.send(message)
    assert result.message_id == f"true_{PHONE_DIGITS}@c.us_{ORDER_42_ID}"
    assert result.short_id == ORDER_42_ID

    async with wamsg.Client("waha", base_url=base_url, api_key="wrong-key") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.send_text(PHONE, "hi")
    assert info.value.status_code == 401
    assert info.value.outcome is Outcome.REJECTED
