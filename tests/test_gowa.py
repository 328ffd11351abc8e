"""The gowa adapter: checks before any I/O, settings, gateway quirks, error mapping, redaction.

The wire format itself lives in the golden files under ``tests/data/gowa/``
(providers.md §3), run by the contract kit (tests/test_contract.py); this file covers
what goldens cannot state: refusals, settings, upload names, redaction and
decoding that must never crash.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from golden import DATA, MEDIA, parse_form, render_body
from hypothesis import given
from hypothesis import strategies as st

import wamsg
from wamsg import (
    AuthenticationError,
    Client,
    ConfigError,
    HttpRequest,
    HttpResponse,
    Image,
    InvalidMessage,
    Media,
    Message,
    MockTransport,
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    Secret,
    SendResult,
    Status,
    Text,
    UnsupportedFeature,
)
from wamsg._streams import iter_body
from wamsg.providers import gowa
from wamsg.providers.gowa import GowaAdapter, _parse_go_time

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


BASE_URL = "http://localhost:3000"
USERNAME = "admin"
PASSWORD = "Sup3r-Secret-Passw0rd"
# base64("admin:Sup3r-Secret-Passw0rd")
BASIC_TOKEN = "YWRtaW46U3VwM3ItU2VjcmV0LVBhc3N3MHJk"
PHONE = "+62 812-3456-7890"
PHONE_DIGITS = "6281234567890"
GROUP = "120363025246125486@g.us"
JPEG_URL = "https://example.com/cat.jpg"
JPEG = (MEDIA / "tiny.jpg").read_bytes()
PNG = (MEDIA / "tiny.png").read_bytes()
GIF = (MEDIA / "tiny.gif").read_bytes()
WEBP = (MEDIA / "tiny.webp").read_bytes()
MID = "3EB0B430B6F8F1D0E053AC120E0A9E5C"
MIB16 = 16 * 1024 * 1024


def make_adapter(**overrides: Any) -> GowaAdapter:
    settings: dict[str, Any] = {
        "base_url": BASE_URL,
        "device_id": "my-device",
        "username": USERNAME,
        "password": PASSWORD,
        **overrides,
    }
    return GowaAdapter(**settings)


def decode(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> SendResult | ProviderError:
    try:
        return make_adapter().decode(HttpResponse(status=status, headers=headers or {}, body=body))
    except ProviderError as error:
        return error


def decode_error(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> ProviderError:
    outcome = decode(status, body, headers)
    assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
    return outcome


def gowa_error(code: str, message: str, results: Any = None) -> bytes:
    return msgspec.json.encode({"code": code, "message": message, "results": results})


def success(status_text: str, message_id: str = MID) -> bytes:
    return msgspec.json.encode(
        {
            "code": "SUCCESS",
            "message": status_text,
            "results": {"message_id": message_id, "status": status_text},
        }
    )


def form_of(request: HttpRequest) -> list[list[Any]]:
    content_type = request.revealed_headers()["Content-Type"]
    return parse_form(content_type, render_body(request))


def json_of(request: HttpRequest) -> Any:
    assert isinstance(request.body, bytes)
    return msgspec.json.decode(request.body)


# --------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------


def test_capabilities_are_as_documented() -> None:
    caps = GowaAdapter.capabilities
    assert (caps.reply, caps.mentions_text, caps.mentions_image, caps.view_once) == (
        True,
        True,
        False,
        True,
    )
    assert (caps.media_url, caps.media_upload, caps.media_base64) == (True, True, False)
    assert caps.image_types == frozenset({"image/jpeg", "image/png"})
    assert caps.max_text_chars is None
    assert caps.max_caption_chars == 3000
    assert caps.max_media_bytes == MIB16
    assert isinstance(make_adapter(), wamsg.Adapter)


# --------------------------------------------------------------------------
# Refused before any I/O
# --------------------------------------------------------------------------

UNSUPPORTED: dict[str, tuple[str, Callable[[], Message]]] = {
    "mentions_on_image_url": (
        "mentions",
        lambda: Image(
            to=GROUP,
            image=Media(url=JPEG_URL),
            caption="hi @6281234567890",
            mentions=(PHONE,),
        ),
    ),
    "mentions_on_image_upload": (
        "mentions",
        lambda: Image(to=GROUP, image=Media(data=JPEG), mentions=(PHONE,)),
    ),
    "status_broadcast": ("broadcast", lambda: Text(to="status@broadcast", text="hi")),
}


@pytest.mark.parametrize(("feature", "build"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_feature(feature: str, build: Callable[[], Message]) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        make_adapter().encode(build())
    assert info.value.feature == feature
    assert info.value.provider == "gowa"
    assert info.value.outcome is Outcome.NOT_SENT


def _sparse_file(tmp_path: Path, size: int, name: str = "big.jpg") -> str:
    """A file of ``size`` bytes that takes no disk space (a JPEG header, then a hole)."""
    path = tmp_path / name
    with path.open("wb") as f:
        f.write(JPEG[:16])
        f.truncate(size)
    return str(path)


async def _chunks() -> AsyncIterator[bytes]:
    yield JPEG  # pragma: no cover - never read: refused before any I/O


INVALID: dict[str, Callable[[Path], Message]] = {
    "gif_upload": lambda _: Image(to=PHONE, image=Media(data=GIF)),
    "webp_upload": lambda _: Image(to=PHONE, image=Media(data=WEBP)),
    "gif_upload_named_jpg": lambda _: Image(to=PHONE, image=Media(data=GIF, filename="a.jpg")),
    "webp_upload_from_mimetype": lambda tmp: Image(
        to=PHONE, image=Media(path=_sparse_file(tmp, 100, "pic"), mimetype="image/webp")
    ),
    "url_gif": lambda _: Image(to=PHONE, image=Media(url="https://example.com/a.gif")),
    "url_no_extension": lambda _: Image(to=PHONE, image=Media(url="https://example.com/render")),
    "url_extension_only_in_query": lambda _: Image(
        to=PHONE, image=Media(url="https://example.com/render?file=a.jpg")
    ),
    "url_root": lambda _: Image(to=PHONE, image=Media(url="https://example.com/")),
    "url_with_fragment": lambda _: Image(
        to=PHONE, image=Media(url="https://example.com/a.jpg#preview")
    ),
    "url_jpg_declared_gif": lambda _: Image(
        to=PHONE, image=Media(url="https://example.com/a.jpg", mimetype="image/gif")
    ),
    "caption_3001_chars": lambda _: Image(to=PHONE, image=Media(url=JPEG_URL), caption="x" * 3001),
    "upload_over_16_mib_from_path": lambda tmp: Image(
        to=PHONE, image=Media(path=_sparse_file(tmp, MIB16 + 1))
    ),
    "upload_over_16_mib_from_stream": lambda _: Image(
        to=PHONE, image=Media(stream=_chunks(), size=MIB16 + 1, mimetype="image/jpeg")
    ),
    "mention_of_a_group": lambda _: Text(
        to=GROUP, text="hi", mentions=("120363025246125487@g.us",)
    ),
    "mention_of_a_lid": lambda _: Text(to=GROUP, text="hi", mentions=("123456789012345@lid",)),
    "image_type_unknown": lambda _: Image(to=PHONE, image=Media(data=b"not an image at all")),
}


@pytest.mark.parametrize("build", INVALID.values(), ids=INVALID.keys())
def test_invalid_message(build: Callable[[Path], Message], tmp_path: Path) -> None:
    with pytest.raises(InvalidMessage) as info:
        make_adapter().encode(build(tmp_path))
    assert info.value.outcome is Outcome.NOT_SENT


def test_caption_of_3000_chars_is_sent() -> None:
    request = make_adapter().encode(Image(to=PHONE, image=Media(url=JPEG_URL), caption="é" * 3000))
    assert dict((k, v) for k, v in form_of(request))["caption"] == "é" * 3000


def test_upload_of_exactly_16_mib_is_streamed_not_read(tmp_path: Path) -> None:
    path = _sparse_file(tmp_path, MIB16)
    request = make_adapter().encode(Image(to=PHONE, image=Media(path=path)))
    # Encoding reads nothing: the body describes the file, and its length is exact.
    assert isinstance(request.body, wamsg.ComposedBody)
    assert request.body.length is not None
    assert request.body.length > MIB16
    assert request.kind == "media"


def test_long_text_has_no_local_limit() -> None:
    request = make_adapter().encode(Text(to=PHONE, text="x" * 70_000))
    assert len(json_of(request)["message"]) == 70_000


URL_EXTENSIONS_ACCEPTED = [
    "https://example.com/a.jpg",
    "https://example.com/a.JPEG",
    "https://example.com/dir/a.png?size=large&x=y.gif",
    "https://example.com/a.webp",
    "http://example.com/path.with.dots/pic.Png",
]


@pytest.mark.parametrize("url", URL_EXTENSIONS_ACCEPTED)
def test_image_urls_gowa_downloads(url: str) -> None:
    # gowa compares the extension lower-cased, after cutting the query (§3.3, G7).
    request = make_adapter().encode(Image(to=PHONE, image=Media(url=url)))
    assert ["image_url", url] in form_of(request)


# --------------------------------------------------------------------------
# Requests: what goldens do not show
# --------------------------------------------------------------------------


def test_no_compress_hd_or_mentions_in_image_forms() -> None:
    adapter = make_adapter()
    for image in (Media(url=JPEG_URL), Media(data=PNG)):
        names = [name for name, _ in form_of(adapter.encode(Image(to=PHONE, image=image)))]
        assert not {"compress", "hd", "mentions", "duration", "is_forwarded"} & set(names)
        assert names.count("view_once") == 1
        assert sum(name in ("image", "image_url") for name in names) == 1


REPLY_IDS = {
    "bare": ("3EB089B9D6ADD58153C561", "3EB089B9D6ADD58153C561"),
    "waha_user": (f"true_{PHONE_DIGITS}@c.us_3EB0C767D26A1D5B5E4A", "3EB0C767D26A1D5B5E4A"),
    "waha_incoming": (f"false_{PHONE_DIGITS}@c.us_ABCDEF0123456789", "ABCDEF0123456789"),
    "waha_group_with_participant": (
        f"false_{GROUP}_3EB0C767D26A1D5B5E4A_{PHONE_DIGITS}@c.us",
        "3EB0C767D26A1D5B5E4A",
    ),
    "waha_lid": ("true_123456789012345@lid_3EB0AAAA", "3EB0AAAA"),
    "two_parts_left_alone": ("true_3EB0AAAA", "true_3EB0AAAA"),
    "not_waha_left_alone": ("yes_a_b", "yes_a_b"),
    "surrounding_spaces": ("  3EB0AAAA \n", "3EB0AAAA"),
}


@pytest.mark.parametrize(("given", "sent"), REPLY_IDS.values(), ids=REPLY_IDS.keys())
def test_reply_message_id_is_the_bare_whatsmeow_id(given: str, sent: str) -> None:
    adapter = make_adapter()
    text = adapter.encode(Text(to=PHONE, text="re", reply_to=given))
    assert json_of(text)["reply_message_id"] == sent
    image = adapter.encode(Image(to=PHONE, image=Media(url=JPEG_URL), reply_to=given))
    assert ["reply_message_id", sent] in form_of(image)


def test_headers_without_auth_or_device() -> None:
    request = GowaAdapter(base_url=BASE_URL).encode(Text(to=PHONE, text="hi"))
    assert [name for name, _ in request.headers] == ["Content-Type", "Accept"]
    assert request.secrets() == ()


@pytest.mark.parametrize(
    ("device_id", "header"),
    [
        ("my-device", "my-device"),
        ("628123456789:12@s.whatsapp.net", "628123456789:12@s.whatsapp.net"),
        ("sales team", "sales%20team"),
        ("a+b/c%d", "a%2Bb%2Fc%25d"),
        ("caixa-são-paulo", "caixa-s%C3%A3o-paulo"),
    ],
)
def test_device_id_header_is_percent_encoded(device_id: str, header: str) -> None:
    # gowa URL-decodes X-Device-Id (providers.md §3.1).
    request = GowaAdapter(base_url=BASE_URL, device_id=device_id).encode(Text(to=PHONE, text="hi"))
    assert request.revealed_headers()["X-Device-Id"] == header


def test_password_may_be_given_as_a_secret() -> None:
    request = make_adapter(password=Secret(PASSWORD)).encode(Text(to=PHONE, text="hi"))
    assert request.revealed_headers()["Authorization"] == f"Basic {BASIC_TOKEN}"
    assert isinstance(dict(request.headers)["Authorization"], Secret)


def test_basic_auth_is_utf8() -> None:
    request = make_adapter(username="josé", password="ñ").encode(Text(to=PHONE, text="hi"))
    # RFC 7617 §2.1: charset UTF-8.
    assert request.revealed_headers()["Authorization"] == "Basic am9zw6k6w7E="


# --------------------------------------------------------------------------
# Upload file names (gowa saves uploads under our name, shared by all requests)
# --------------------------------------------------------------------------


def _upload_part(request: HttpRequest) -> dict[str, Any]:
    parts = [value for name, value in form_of(request) if name == "image"]
    assert len(parts) == 1
    part: dict[str, Any] = parts[0]
    return part


def _upload_name(message: Image) -> str:
    """The file name in the part headers, read without streaming the media."""
    body = make_adapter().encode(message).body
    assert isinstance(body, wamsg.ComposedBody)
    heads = b"".join(part for part in body.parts if isinstance(part, bytes))
    found = re.search(rb'name="image"; filename="([^"]+)"', heads)
    assert found is not None
    return found.group(1).decode()


def test_upload_name_is_stable_for_the_same_message() -> None:
    message = Image(to=PHONE, image=Media(data=JPEG, filename="cat.jpg"), caption="c")
    assert _upload_name(message) == _upload_name(message)
    assert _upload_name(message).startswith("cat-")


@pytest.mark.parametrize(
    "other",
    [
        Image(to="+44 7441 429009", image=Media(data=JPEG, filename="cat.jpg"), caption="c"),
        Image(to=PHONE, image=Media(data=JPEG + b"\0", filename="cat.jpg"), caption="c"),
        Image(to=PHONE, image=Media(data=JPEG, filename="cat.jpg"), caption="d"),
        Image(to=PHONE, image=Media(data=JPEG, filename="cat.jpg"), caption="c", view_once=True),
        Image(to=PHONE, image=Media(data=JPEG, filename="cat.jpg"), caption="c", reply_to="3EB0"),
    ],
    ids=["recipient", "bytes", "caption", "view_once", "reply"],
)
def test_upload_name_differs_between_messages(other: Image) -> None:
    # Broadcasting one image to many recipients at once must not share a file.
    base = Image(to=PHONE, image=Media(data=JPEG, filename="cat.jpg"), caption="c")
    assert _upload_name(base) != _upload_name(other)


def test_upload_names_of_live_file_objects_differ() -> None:
    first, second = io.BytesIO(JPEG), io.BytesIO(JPEG)
    names = {
        _upload_name(Image(to=PHONE, image=Media(file=f, head=JPEG[:16], filename="x.jpg")))
        for f in (first, second)
    }
    assert len(names) == 2


@pytest.mark.parametrize(
    ("data", "filename", "stem", "extension"),
    [
        (JPEG, "photo.png", "photo", ".jpg"),  # the bytes decide the type, and the extension
        (PNG, "photo.jpg", "photo", ".png"),
        (JPEG, "photo.JPEG", "photo", ".jpg"),
        (JPEG, "noext", "noext", ".jpg"),
        (JPEG, "C:\\Users\\me\\My Photo (1).jpg", "My_Photo_1", ".jpg"),
        (JPEG, "../../etc/passwd", "passwd", ".jpg"),
        (JPEG, "ação.jpg", "a_o", ".jpg"),
        (JPEG, ".jpg", "image", ".jpg"),
        (JPEG, "x" * 300 + ".jpg", "x" * 48, ".jpg"),
        (PNG, None, "image", ".png"),
    ],
)
def test_upload_name_shape(data: bytes, filename: str | None, stem: str, extension: str) -> None:
    part = _upload_part(
        make_adapter().encode(Image(to=PHONE, image=Media(data=data, filename=filename)))
    )
    name: str = part["filename"]
    # gowa picks its thumbnail encoder from this extension (imaging.Save).
    assert name.endswith(extension)
    front = name.removesuffix(extension)
    assert front.rsplit("-", 1)[0] == stem
    assert len(front.rsplit("-", 1)[1]) == 16
    assert part["content_type"] == ("image/png" if extension == ".png" else "image/jpeg")


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

CONFIG_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "username_without_password": ({"base_url": BASE_URL, "username": USERNAME}, "password"),
    "password_without_username": ({"base_url": BASE_URL, "password": PASSWORD}, "username"),
    "empty_username": ({"base_url": BASE_URL, "username": "", "password": PASSWORD}, "username"),
    "username_with_colon": (
        {"base_url": BASE_URL, "username": "a:b", "password": PASSWORD},
        "username",
    ),
    "empty_password": ({"base_url": BASE_URL, "username": USERNAME, "password": ""}, "password"),
    "empty_device_id": ({"base_url": BASE_URL, "device_id": "  "}, "device_id"),
    "missing_base_url": ({}, "base_url"),
    "base_url_not_http": ({"base_url": "localhost:3000"}, "base_url"),
    "base_url_with_credentials": (
        {"base_url": f"http://{USERNAME}:{PASSWORD}@localhost:3000"},
        "base_url",
    ),
    "unknown_setting": ({"base_url": BASE_URL, "token": "x"}, "token"),
}


@pytest.mark.parametrize(("settings", "names"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_config_error(settings: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        wamsg.create_adapter("gowa", **settings)
    assert PASSWORD not in str(info.value)


def test_base_path_is_kept() -> None:
    adapter = GowaAdapter(base_url="https://host.example/wa/gowa/")
    assert (
        adapter.encode(Text(to=PHONE, text="hi")).url == "https://host.example/wa/gowa/send/message"
    )


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_every_documented_code_has_a_rule() -> None:
    documented = {
        "VALIDATION_ERROR",
        "INVALID_JID",
        "DEVICE_ID_REQUIRED",
        "INVALID_REQUEST",
        "AUTHENTICATION_ERROR",
        "DEVICE_NOT_FOUND",
        "NOT_FOUND",
        "CONTEXT_ERROR",
        "WA_REACHOUT_TIMELOCK",
        "INTERNAL_SERVER_ERROR",
        "UPLOAD_MEDIA_ERROR",
        "INVALID_WA_CLI",
        "DEVICE_MANAGER_UNAVAILABLE",
        "GATEWAY_TIMEOUT",
    }
    assert documented <= set(gowa._CODE_RULES)


def test_device_id_required_says_what_to_set() -> None:
    error = decode_error(
        400,
        gowa_error(
            "DEVICE_ID_REQUIRED", "device_id is required via X-Device-Id header or device_id query"
        ),
    )
    assert isinstance(error, ProviderConfigError)
    assert isinstance(error, ConfigError)
    assert isinstance(error, Rejected)
    assert "device_id=" in str(error)
    assert "X-Device-Id" in str(error)
    assert error.outcome is Outcome.REJECTED
    assert not error.retryable
    assert error.gateway_message == (
        "device_id is required via X-Device-Id header or device_id query"
    )


def test_device_not_found_says_what_to_check() -> None:
    body = gowa_error(
        "DEVICE_NOT_FOUND",
        "device not found; create a device first from /api/devices or provide a valid X-Device-Id",
        {"device_id": "my-device"},
    )
    error = decode_error(404, body)
    assert isinstance(error, ProviderConfigError)
    assert "device_id= (now 'my-device'" in str(error)
    assert error.status_code == 404


def test_authentication_error_is_the_device_not_the_credentials() -> None:
    error = decode_error(401, gowa_error("AUTHENTICATION_ERROR", "you are not logged in"))
    assert isinstance(error, ProviderUnavailable)
    assert not isinstance(error, AuthenticationError)
    assert error.outcome is Outcome.NOT_SENT
    assert not error.retryable


def test_basic_auth_failure_is_an_authentication_error() -> None:
    error = decode_error(401, b"Unauthorized", {"WWW-Authenticate": 'Basic realm="Restricted"'})
    assert isinstance(error, AuthenticationError)
    assert error.outcome is Outcome.REJECTED


def test_reachout_timelock_is_never_retryable() -> None:
    error = decode_error(429, gowa_error("WA_REACHOUT_TIMELOCK", "error 463"), {"Retry-After": "5"})
    assert isinstance(error, RateLimited)
    assert error.outcome is Outcome.NOT_SENT
    assert error.retryable is False


# --------------------------------------------------------------------------
# Success: chat and time from results.status
# --------------------------------------------------------------------------

STATUS_TEXTS: dict[str, tuple[str, str | None, datetime | None]] = {
    "wib": (
        f"Message sent to {PHONE_DIGITS}@s.whatsapp.net (server timestamp: "
        "2026-08-22 10:15:30 +0700 WIB)",
        f"{PHONE_DIGITS}@s.whatsapp.net",
        datetime(2026, 8, 22, 3, 15, 30, tzinfo=UTC),
    ),
    "negative_offset_and_monotonic_clock": (
        "Message sent to 1203630@g.us (server timestamp: "
        "2026-08-21 23:15:30.5 -0400 EDT m=+12.000000001)",
        "1203630@g.us",
        datetime(2026, 8, 22, 3, 15, 30, 500000, tzinfo=UTC),
    ),
    "nanoseconds_cut_to_microseconds": (
        "Message sent to 1@lid (server timestamp: 2026-08-22 03:15:30.999999999 +0000 UTC)",
        "1@lid",
        datetime(2026, 8, 22, 3, 15, 30, 999999, tzinfo=UTC),
    ),
    "zero_time": (
        "Message sent to 1@lid (server timestamp: 0001-01-01 00:00:00 +0000 UTC)",
        "1@lid",
        None,
    ),
    "zero_time_east_of_utc": (
        "Message sent to 1@lid (server timestamp: 0001-01-01 00:00:00 +0700 WIB)",
        "1@lid",
        None,
    ),
    "impossible_date": (
        "Message sent to 1@lid (server timestamp: 2026-13-45 99:99:99 +0000 UTC)",
        "1@lid",
        None,
    ),
    "no_time": ("Message sent to 1@lid (server timestamp: )", "1@lid", None),
    "other_wording": ("Image sent successfully", None, None),
    "no_jid": (
        "Message sent to 628123 (server timestamp: 2026-08-22 03:15:30 +0000 UTC)",
        None,
        None,
    ),
    "empty": ("", None, None),
}


@pytest.mark.parametrize(
    ("status_text", "chat_id", "timestamp"), STATUS_TEXTS.values(), ids=STATUS_TEXTS.keys()
)
def test_chat_and_time_from_status_text(
    status_text: str, chat_id: str | None, timestamp: datetime | None
) -> None:
    result = decode(200, success(status_text))
    assert isinstance(result, SendResult)
    assert (result.message_id, result.short_id, result.status) == (MID, MID, Status.SENT)
    assert result.chat_id == chat_id
    assert result.timestamp == timestamp


def _strptime_go_time(text: str) -> datetime | None:
    """The reading _parse_go_time replaced (strptime, ~20 µs): the reference."""
    found = re.match(
        r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-]\d{4})", text.strip()
    )
    if found is None:
        return None
    date, clock, frac, offset = found.groups()
    try:
        when = datetime.strptime(
            f"{date} {clock}.{(frac or '').ljust(6, '0')[:6]} {offset}", "%Y-%m-%d %H:%M:%S.%f %z"
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return when if when.year > 1 else None


_two = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")


@given(
    year=st.sampled_from(["0000", "0001", "9999"]) | st.from_regex(r"\d{4}", fullmatch=True),
    fields=st.tuples(_two, _two, _two, _two, _two),
    frac=st.sampled_from(["", "."]) | st.from_regex(r"\.\d{1,9}", fullmatch=True),
    sign=st.sampled_from("+-"),
    offset=st.tuples(_two, _two),
    tail=st.sampled_from(["", " UTC", " WIB m=+0.000000001"]),
)
def test_go_time_reads_as_strptime_did(
    year: str,
    fields: tuple[str, str, str, str, str],
    frac: str,
    sign: str,
    offset: tuple[str, str],
    tail: str,
) -> None:
    # The fast reading (fromisoformat) gives what strptime gave, refusals included.
    month, day, hour, minute, second = fields
    text = f"{year}-{month}-{day} {hour}:{minute}:{second}{frac} {sign}{''.join(offset)}{tail}"
    assert _parse_go_time(text) == _strptime_go_time(text)


# --------------------------------------------------------------------------
# Redaction: no password, no Basic token, no full phone number in anything printable
# --------------------------------------------------------------------------


def _shows_secret(text: str) -> bool:
    return any(
        secret[:n] in text for secret in (PASSWORD, BASIC_TOKEN) for n in range(8, len(secret) + 1)
    )


def _printable(error: ProviderError) -> list[str]:
    return [
        str(error),
        repr(error),
        error.gateway_message or "",
        error.error_code or "",
        error.body_excerpt,
    ]


SECRET_ECHOES: dict[str, tuple[int, bytes]] = {
    "500_json_password": (500, gowa_error("INTERNAL_SERVER_ERROR", f"bad auth {PASSWORD}")),
    "500_json_header": (
        500,
        gowa_error("INTERNAL_SERVER_ERROR", f"header Authorization: Basic {BASIC_TOKEN}"),
    ),
    "401_text_token": (401, f"Unauthorized: Basic {BASIC_TOKEN}".encode()),
    "502_html_password": (
        502,
        f"<html><title>{USERNAME}:{PASSWORD}</title><pre>{BASIC_TOKEN}</pre></html>".encode(),
    ),
    "400_password_as_code": (400, gowa_error(PASSWORD, "x")),
    "200_error_body": (200, gowa_error("INTERNAL_SERVER_ERROR", PASSWORD)),
    "404_device_not_found": (
        404,
        gowa_error("DEVICE_NOT_FOUND", f"no device {PASSWORD}", {"device_id": PASSWORD}),
    ),
}


@pytest.mark.parametrize(("status", "body"), SECRET_ECHOES.values(), ids=SECRET_ECHOES.keys())
def test_secrets_never_shown_in_errors(status: int, body: bytes) -> None:
    error = decode_error(status, body)
    assert not [text for text in _printable(error) if _shows_secret(text)]


def test_secrets_never_shown_wherever_the_text_is_cut() -> None:
    leaks: list[str] = []
    for pad in range(0, 400):
        body = f"{'e' * pad} Authorization: Basic {BASIC_TOKEN} ({USERNAME}:{PASSWORD})"
        error = decode_error(500, body.encode())
        leaks += [f"pad {pad}: {text!r}" for text in _printable(error) if _shows_secret(text)]
    assert not leaks, "\n".join(leaks[:3])


def test_secrets_never_shown_in_reprs() -> None:
    adapter = make_adapter()
    text = adapter.encode(Text(to=PHONE, text="hi"))
    image = adapter.encode(Image(to=PHONE, image=Media(data=JPEG)))
    printed = [
        repr(adapter),
        str(adapter),
        repr(text),
        repr(image),
        repr(text.headers),
        repr(image.headers),
        str(text.headers),
    ]
    assert not [p for p in printed if _shows_secret(p)]
    assert "basic_auth=True" in repr(adapter)
    # ...while the transport still gets it.
    assert text.revealed_headers()["Authorization"] == f"Basic {BASIC_TOKEN}"
    assert image.revealed_headers()["Authorization"] == f"Basic {BASIC_TOKEN}"


PHONE_ECHOES: dict[str, Callable[[], list[str]]] = {
    "invalid_jid_bare_number": lambda: _printable(
        decode_error(400, gowa_error("INVALID_JID", "Phone 628123456789 is not on whatsapp"))
    ),
    "invalid_jid_full_jid": lambda: _printable(
        decode_error(
            400,
            gowa_error("INVALID_JID", "Phone 628123456789@s.whatsapp.net is not on whatsapp"),
        )
    ),
    "plain_text": lambda: _printable(decode_error(500, b"send to +628123456789 failed")),
    "result": lambda: [
        repr(
            make_adapter().decode(
                HttpResponse(
                    status=200,
                    body=success(
                        "Message sent to 628123456789@s.whatsapp.net "
                        "(server timestamp: 2026-08-22 10:15:30 +0700 WIB)"
                    ),
                )
            )
        )
    ],
    "request": lambda: [repr(make_adapter().encode(Text(to="+628123456789", text="hi")))],
    "adapter_with_jid_device": lambda: [
        repr(GowaAdapter(base_url=BASE_URL, device_id="628123456789@s.whatsapp.net"))
    ],
    # An old-style group id holds its creator's phone number.
    "mention_of_old_style_group": lambda: [
        _message_of(lambda: Text(to=GROUP, text="x", mentions=("628123456789-1600000000@g.us",)))
    ],
}


def _message_of(build: Callable[[], Message]) -> str:
    try:
        make_adapter().encode(build())
    except (InvalidMessage, UnsupportedFeature) as error:
        return str(error)
    raise AssertionError("expected a refusal")


@pytest.mark.parametrize("printed", PHONE_ECHOES.values(), ids=PHONE_ECHOES.keys())
def test_full_phone_number_never_shown(printed: Callable[[], list[str]]) -> None:
    assert not [text for text in printed() if "628123456789" in text]


# --------------------------------------------------------------------------
# Decoding never fails with anything but a ProviderError
# --------------------------------------------------------------------------

# Hostile bodies on every status, secrets in reprs and cut error texts: the
# contract kit (tests/test_contract.py); what follows is this gateway's own.


# --------------------------------------------------------------------------
# Through the client: media prepared, streamed and answered
# --------------------------------------------------------------------------


async def test_send_image_from_a_path_through_the_client(tmp_path: Path) -> None:
    # A JPEG saved as .png: the bytes decide the part's type and the name's extension.
    path = tmp_path / "holiday.png"
    path.write_bytes(JPEG)
    seen: list[tuple[HttpRequest, bytes]] = []
    status = (
        f"Message sent to {PHONE_DIGITS}@s.whatsapp.net (server timestamp: "
        "2026-08-22 10:15:30 +0700 WIB)"
    )

    async def handler(request: HttpRequest) -> HttpResponse:
        assert not isinstance(request.body, bytes)
        body = b"".join([chunk async for chunk in iter_body(request.body)])
        seen.append((request, body))
        return HttpResponse(status=200, body=success(status))

    async with Client(
        "gowa",
        transport=MockTransport(handler),
        base_url=BASE_URL,
        device_id="my-device",
        username=USERNAME,
        password=PASSWORD,
    ) as client:
        result = await client.send_image(PHONE, str(path), caption="hi", view_once=True)

    assert (result.message_id, result.status) == (MID, Status.SENT)
    assert result.chat_id == f"{PHONE_DIGITS}@s.whatsapp.net"
    assert result.timestamp == datetime(2026, 8, 22, 3, 15, 30, tzinfo=UTC)
    ((request, body),) = seen
    assert request.url == f"{BASE_URL}/send/image"
    assert request.kind == "media"
    assert isinstance(request.body, wamsg.ComposedBody)
    assert request.body.length == len(body)
    fields = parse_form(request.revealed_headers()["Content-Type"], body)
    assert [name for name, _ in fields] == ["phone", "caption", "view_once", "image"]
    assert fields[0] == ["phone", f"{PHONE_DIGITS}@s.whatsapp.net"]
    assert fields[2] == ["view_once", "true"]
    part = fields[3][1]
    assert part["content_type"] == "image/jpeg"
    assert part["fixture"] == "tiny.jpg"
    assert part["filename"].startswith("holiday-")
    assert part["filename"].endswith(".jpg")


async def test_send_text_through_the_client_reports_device_config() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        assert "X-Device-Id" not in request.revealed_headers()
        return HttpResponse(
            status=400,
            headers={"Content-Type": "application/json"},
            body=gowa_error(
                "DEVICE_ID_REQUIRED",
                "device_id is required via X-Device-Id header or device_id query",
            ),
        )

    async with Client("gowa", transport=MockTransport(handler), base_url=BASE_URL) as client:
        with pytest.raises(ProviderConfigError, match="device_id="):
            await client.send_text(PHONE, "hi")


def test_golden_success_body_round_trips() -> None:
    golden = json.loads(
        (DATA / "gowa" / "ok_send_message.response.json").read_text(encoding="utf-8")
    )
    result = make_adapter().decode(
        HttpResponse(status=200, body=msgspec.json.encode(golden["body"]))
    )
    assert result.json()["results"]["message_id"] == result.message_id == MID
