"""The Wawp adapter: golden wire files, checks before any I/O, error mapping, redaction.

Everything here is synchronous: an adapter only builds requests and reads
answers. The golden files under ``tests/data/wawp/`` hold the wire format
(providers.md §1, seeds 000, 003 and 004); adding a file adds a case.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from golden import (
    DATA,
    build_response,
    golden_files,
    load_golden,
)

import wamsg
from wamsg import (
    ConfigError,
    HttpResponse,
    Image,
    InvalidMessage,
    Media,
    Message,
    Outcome,
    ProviderError,
    RateLimited,
    Secret,
    SendResult,
    Text,
    UnsupportedFeature,
)
from wamsg.providers.wawp import WawpAdapter

TOKEN = "SUPERSECRET-TOKEN-123"
INSTANCE = "123456789"
PHONE = "+55 11 99999-0000"
PHONE_DIGITS = "5511999990000"
JPEG_URL = "https://example.com/cat.jpg"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"

REQUEST_GOLDENS = golden_files("wawp", "request")
RESPONSE_GOLDENS = golden_files("wawp", "response")


def _case_id(path: Path) -> str:
    return path.name.split(".", 1)[0]


def make_adapter(**overrides: Any) -> WawpAdapter:
    settings: dict[str, Any] = {"instance_id": INSTANCE, "access_token": TOKEN, **overrides}
    return WawpAdapter(**settings)


def decode_response(response: HttpResponse) -> SendResult | ProviderError:
    """Decode one answer; a ProviderError is returned, anything else propagates."""
    try:
        return make_adapter().decode(response)
    except ProviderError as error:
        return error


def decode(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> SendResult | ProviderError:
    return decode_response(HttpResponse(status=status, headers=headers or {}, body=body))


def decode_error(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> ProviderError:
    outcome = decode(status, body, headers)
    assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
    return outcome


# --------------------------------------------------------------------------
# Golden files
# --------------------------------------------------------------------------


def test_seed_004_success_body() -> None:
    golden = load_golden(DATA / "wawp" / "ok_seed_004_text_page.response.json")
    result = make_adapter().decode(build_response(golden))
    assert result.message_id == "true_000000000000@c.us_MSG_ID_123456"
    assert result.short_id == "MSG_ID_123456"
    assert result.chat_id == "000000000000@c.us"
    assert result.status is wamsg.Status.QUEUED
    assert result.timestamp == datetime(2025, 9, 29, 1, 21, 6, tzinfo=UTC)
    assert result.json()["id"]["_serialized"] == result.message_id


# --------------------------------------------------------------------------
# Refused before any I/O
# --------------------------------------------------------------------------


def _jpeg_file(tmp_path: Path) -> str:
    path = tmp_path / "cat.jpg"
    path.write_bytes(JPEG_BYTES)
    return str(path)


UNSUPPORTED: dict[str, tuple[str, Callable[[Path], Message]]] = {
    "view_once": (
        "view_once",
        lambda _: Image(to=PHONE, image=Media(url=JPEG_URL), view_once=True),
    ),
    "mentions_in_text": (
        "mentions",
        lambda _: Text(to=PHONE, text="hi @5511988887777", mentions=("+5511988887777",)),
    ),
    "mentions_in_image": (
        "mentions",
        lambda _: Image(
            to="120363025246125486@g.us",
            image=Media(url=JPEG_URL),
            caption="hi @5511988887777",
            mentions=("+5511988887777",),
        ),
    ),
    "image_from_bytes": (
        "media_upload",
        lambda _: Image(to=PHONE, image=Media(data=JPEG_BYTES)),
    ),
    "image_from_path": (
        "media_upload",
        lambda tmp: Image(to=PHONE, image=Media(path=_jpeg_file(tmp))),
    ),
}


@pytest.mark.parametrize(("feature", "build"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_feature(
    feature: str, build: Callable[[Path], Message], tmp_path: Path
) -> None:
    message = build(tmp_path)
    with pytest.raises(UnsupportedFeature) as info:
        make_adapter().encode(message)
    assert info.value.feature == feature
    assert info.value.provider == "wawp"
    assert info.value.outcome is Outcome.NOT_SENT


INVALID: dict[str, Callable[[], Message]] = {
    "text_4097_chars": lambda: Text(to=PHONE, text="x" * 4097),
    "empty_text": lambda: Text(to=PHONE, text=""),
    "whitespace_text": lambda: Text(to=PHONE, text=" \n\t\u00a0 "),
    "phone_too_short": lambda: Text(to="+1 234", text="hi"),
    "phone_with_letters": lambda: Text(to="+55 11 9999O-0000", text="hi"),
    "phone_leading_zero": lambda: Text(to="0 11 99999", text="hi"),
    "empty_reply_to": lambda: Text(to=PHONE, text="hi", reply_to="  "),
    "two_image_sources": lambda: Image(to=PHONE, image=Media(url=JPEG_URL, data=JPEG_BYTES)),
    "gif_from_url": lambda: Image(to=PHONE, image=Media(url="https://example.com/a.gif")),
    "gif_from_mimetype": lambda: Image(
        to=PHONE, image=Media(url="https://example.com/render?id=1", mimetype="image/gif")
    ),
    "webp_from_url": lambda: Image(to=PHONE, image=Media(url="https://example.com/a.webp")),
    "image_type_unknown": lambda: Image(
        to=PHONE, image=Media(url="https://example.com/render?id=1")
    ),
    "group_id_malformed": lambda: Text(to="abc@g.us", text="hi"),
    "server_unknown": lambda: Text(to="x@foo", text="hi"),
}


@pytest.mark.parametrize("build", INVALID.values(), ids=INVALID.keys())
def test_invalid_message(build: Callable[[], Message]) -> None:
    # Some are refused when the message is built, some when it is encoded:
    # either way, before anything is sent.
    with pytest.raises(InvalidMessage) as info:
        make_adapter().encode(build())
    assert info.value.outcome is Outcome.NOT_SENT


def test_text_of_4096_chars_is_sent() -> None:
    request = make_adapter().encode(Text(to=PHONE, text="x" * 4096))
    assert isinstance(request.body, bytes)
    assert len(msgspec.json.decode(request.body)["message"]) == 4096


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

CONFIG_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "empty_instance_id": ({"instance_id": "", "access_token": TOKEN}, "instance_id"),
    "blank_instance_id": ({"instance_id": "  ", "access_token": TOKEN}, "instance_id"),
    "empty_access_token": ({"instance_id": INSTANCE, "access_token": ""}, "access_token"),
    "blank_access_token": ({"instance_id": INSTANCE, "access_token": " \t"}, "access_token"),
    "missing_access_token": ({"instance_id": INSTANCE}, "access_token"),
    "base_url_with_query": (
        {"instance_id": INSTANCE, "access_token": TOKEN, "base_url": "https://api.wawp.net/?a=1"},
        "base_url",
    ),
    "base_url_not_http": (
        {"instance_id": INSTANCE, "access_token": TOKEN, "base_url": "ftp://api.wawp.net"},
        "base_url",
    ),
    "base_url_without_scheme": (
        {"instance_id": INSTANCE, "access_token": TOKEN, "base_url": "api.wawp.net"},
        "base_url",
    ),
    "unknown_setting": (
        {"instance_id": INSTANCE, "access_token": TOKEN, "api_key": "x"},
        "api_key",
    ),
}


@pytest.mark.parametrize(("settings", "names"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_config_error(settings: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        wamsg.create_adapter("wawp", **settings)
    assert TOKEN not in str(info.value)


def test_access_token_may_be_given_as_a_secret() -> None:
    request = make_adapter(access_token=Secret(TOKEN)).encode(Text(to=PHONE, text="hi"))
    assert request.revealed_query() == {"instance_id": INSTANCE, "access_token": TOKEN}


# --------------------------------------------------------------------------
# Redaction: no token, no full phone number in anything printable
# --------------------------------------------------------------------------


def _shows_token(text: str) -> bool:
    """True when ``text`` holds the token, or what is left of it when a cut went through it
    (its first six characters or more)."""
    return any(TOKEN[:n] in text for n in range(6, len(TOKEN) + 1))


def _printable(error: ProviderError) -> list[str]:
    return [
        str(error),
        repr(error),
        error.gateway_message or "",
        error.error_code or "",
        error.body_excerpt,
    ]


_ECHO_URL = f"https://api.wawp.net/v2/send/text?instance_id={INSTANCE}&access_token={TOKEN}"

TOKEN_ECHOES: dict[str, tuple[int, bytes]] = {
    "500_html_page_with_url": (
        500,
        (
            f"<html><head><title>Error at {_ECHO_URL}</title></head>"
            f"<body><h1>500 Internal Server Error</h1><p>POST {_ECHO_URL}</p></body></html>"
        ).encode(),
    ),
    "500_html_without_title": (
        500,
        f"<html><body><h1>Internal Server Error</h1><pre>{_ECHO_URL}</pre></body></html>".encode(),
    ),
    "401_json_message": (
        401,
        msgspec.json.encode(
            {"code": "invalid_access_token", "message": f"Invalid access token {TOKEN}"}
        ),
    ),
    "401_xml_message": (
        401,
        f"<error><code>invalid_access_token</code><message>{TOKEN}</message></error>".encode(),
    ),
    "400_token_as_code": (400, msgspec.json.encode({"code": TOKEN, "message": "x"})),
    "200_error_body": (
        200,
        msgspec.json.encode(
            {"code": "invalid_access_token", "message": TOKEN, "data": {"status": 401}}
        ),
    ),
}


@pytest.mark.parametrize(("status", "body"), TOKEN_ECHOES.values(), ids=TOKEN_ECHOES.keys())
def test_token_never_shown_in_errors(status: int, body: bytes) -> None:
    error = decode_error(status, body)
    shown = [text for text in _printable(error) if _shows_token(text)]
    assert not shown


ECHO_SHAPES: dict[str, Callable[[str], bytes]] = {
    "text": lambda pad: f"{pad} {_ECHO_URL}".encode(),
    "html": lambda pad: f"<html><body><p>{pad}</p><pre>{_ECHO_URL}</pre></body></html>".encode(),
    "json": lambda pad: msgspec.json.encode({"code": "x", "message": f"{pad} {_ECHO_URL}"}),
    "xml": lambda pad: f"<error><message>{pad} {_ECHO_URL}</message></error>".encode(),
}


def _error_texts(body: bytes) -> Callable[[], list[str]]:
    return lambda: _printable(decode_error(400, body))


def _result_text(body: bytes) -> Callable[[], list[str]]:
    return lambda: [repr(make_adapter().decode(HttpResponse(status=200, body=body)))]


_SENT_TO_PHONE = msgspec.json.encode(
    {
        "id": {
            "fromMe": True,
            "remote": f"{PHONE_DIGITS}@c.us",
            "id": "3EB0C767D26A1D5B5E4A",
            "_serialized": f"true_{PHONE_DIGITS}@c.us_3EB0C767D26A1D5B5E4A",
        },
        "ack": 0,
        "to": f"{PHONE_DIGITS}@c.us",
    }
)

PHONE_ECHOES: dict[str, Callable[[], list[str]]] = {
    "text_message": lambda: [repr(Text(to=PHONE, text="hi")), str(Text(to=PHONE, text="hi"))],
    "image_message": lambda: [repr(Image(to=PHONE, image=Media(url=JPEG_URL), caption="c"))],
    "request": lambda: [repr(make_adapter().encode(Text(to=PHONE, text="hi")))],
    "result_webjs": _result_text(_SENT_TO_PHONE),
    "result_waha_string_id": _result_text(
        msgspec.json.encode({"id": f"true_{PHONE_DIGITS}@c.us_3EB0C767D26A1D5B5E4A", "ack": 1})
    ),
    "error_json": _error_texts(
        msgspec.json.encode({"code": "invalid_number", "message": f"Invalid Number {PHONE_DIGITS}"})
    ),
    "error_json_chat_id": _error_texts(
        msgspec.json.encode({"code": "invalid_number", "message": f"No chat {PHONE_DIGITS}@c.us"})
    ),
    "error_xml": _error_texts(
        f"<error><message>Invalid Number {PHONE_DIGITS}</message></error>".encode()
    ),
    "error_text": _error_texts(f"Invalid Number: +{PHONE_DIGITS}".encode()),
}


@pytest.mark.parametrize("printed", PHONE_ECHOES.values(), ids=PHONE_ECHOES.keys())
def test_full_phone_number_never_shown(printed: Callable[[], list[str]]) -> None:
    shown = [text for text in printed() if PHONE_DIGITS in text]
    assert not shown


# --------------------------------------------------------------------------
# Decoding never fails with anything but a ProviderError
# --------------------------------------------------------------------------

# Hostile bodies on every status, secrets in reprs and cut error texts: the
# contract kit (tests/test_contract.py); what follows is this gateway's own.


RETRY_AFTER_VALUES = [
    "0",
    "-1",
    "1.5",
    "abc",
    "",
    " ",
    "inf",
    "1e999",
    "nan",
    "\u00b2",  # "²": str.isdigit() is true, float() refuses it (latin-1 byte 0xB2)
    "\uff13\uff10",  # fullwidth "30"
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Wed, 21 Oct 99999 07:28:00 GMT",
    "Mon, 32 Foo 2020 99:99:99 GMT",
    "\x00",
]


@pytest.mark.parametrize("value", RETRY_AFTER_VALUES)
def test_retry_after_garbage_is_ignored_or_finite(value: str) -> None:
    error = decode_error(429, b"", {"Retry-After": value})
    assert isinstance(error, RateLimited)
    assert error.retry_after is None or (
        math.isfinite(error.retry_after) and error.retry_after >= 0
    )


@pytest.mark.parametrize(
    ("offset", "low", "high"),
    [(120, 110.0, 120.5), (-3600, 0.0, 0.0)],
    ids=["future", "past"],
)
def test_retry_after_http_date(offset: int, low: float, high: float) -> None:
    header = email.utils.formatdate(time.time() + offset, usegmt=True)
    error = decode_error(429, b"", {"Retry-After": header})
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None
    assert low <= error.retry_after <= high
