"""The common message model: recipients, media sources, messages and results."""

from __future__ import annotations

import base64
import enum
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from wamsg import (
    Attempt,
    Image,
    InvalidMessage,
    Media,
    Outcome,
    Recipient,
    SendResult,
    Status,
    Text,
)

PHONE = Recipient(kind="phone", value="5511999990000")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
NBSP, NNBSP, THIN = "\u00a0", "\u202f", "\u2009"

# --------------------------------------------------------------------------
# Recipient.parse
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "+55 11 99999-0000",
        "+55 (11) 99999-0000",
        "+55(11)99999-0000",
        "5511999990000",
        "+5511999990000",
        "0055 11 99999 0000",
        "005511999990000",
        "+55.11.99999.0000",
        "+55/11/99999/0000",
        "+55-11-99999-0000",
        f"+55{NBSP}11{NBSP}99999-0000",
        f"+55{NNBSP}11{NNBSP}99999{NNBSP}0000",
        f"+55{THIN}11{THIN}99999{THIN}0000",
        "  +55 11 99999-0000\n",
        "\t5511999990000 ",
        "5511999990000@c.us",
        "5511999990000@s.whatsapp.net",
        "+55 11 99999-0000@c.us",
    ],
)
def test_parse_phone_spellings(spelling: str) -> None:
    assert Recipient.parse(spelling) == PHONE


@pytest.mark.parametrize(
    "chat_id",
    [
        "120363025246125486@g.us",
        "1234567890-1600000000@g.us",
        "120363025246125486@newsletter",
        "123456789012345@lid",
        "status@broadcast",
    ],
)
def test_parse_chat_ids_pass_through(chat_id: str) -> None:
    assert Recipient.parse(chat_id) == Recipient(kind="chat", value=chat_id)
    assert Recipient.parse(f"  {chat_id} ") == Recipient(kind="chat", value=chat_id)


def test_parse_returns_a_recipient_unchanged() -> None:
    assert Recipient.parse(PHONE) is PHONE


@pytest.mark.parametrize(
    ("recipient", "is_group"),
    [
        (PHONE, False),
        (Recipient.parse("120363025246125486@g.us"), True),
        (Recipient.parse("120363025246125486@newsletter"), False),
    ],
)
def test_is_group(recipient: Recipient, is_group: bool) -> None:
    assert recipient.is_group is is_group


@pytest.mark.parametrize(
    ("recipient", "server", "jid"),
    [
        (PHONE, "c.us", "5511999990000@c.us"),
        (PHONE, "s.whatsapp.net", "5511999990000@s.whatsapp.net"),
        (Recipient.parse("120363025246125486@g.us"), "c.us", "120363025246125486@g.us"),
    ],
)
def test_jid(recipient: Recipient, server: str, jid: str) -> None:
    assert recipient.jid(server) == jid


def test_recipient_repr_and_masked_hide_the_number() -> None:
    assert PHONE.masked == "+55*********00"
    assert "5511999990000" not in repr(PHONE)
    assert "999990000" not in repr(Recipient.parse("1234567890-1600000000@g.us"))


# Numbers here are not the +55 example the error messages quote, so that a
# leak cannot hide behind the example.
INVALID_RECIPIENTS: list[Any] = [
    pytest.param("+44 123", id="too-short"),
    pytest.param("123456", id="six-digits"),
    pytest.param("+4420794609581234", id="sixteen-digits"),
    pytest.param("+44 20 7946 0958 12345", id="too-long-spaced"),
    pytest.param("4420794609581234567890", id="way-too-long"),
    pytest.param("020 7946 0958", id="leading-zero"),
    pytest.param("0000000000", id="zeros"),
    pytest.param("+0442079460958", id="plus-zero"),
    pytest.param("abc", id="letters"),
    pytest.param("+44 20 7946 O958", id="letter-o"),
    pytest.param("+442079460958x", id="trailing-letter"),
    pytest.param("x442079460958", id="leading-letter"),
    pytest.param("++442079460958", id="double-plus"),
    pytest.param("+44 20 7946 0958 ext 12", id="extension"),
    pytest.param("٤٤٢٠٧٩٤٦٠٩٥٨", id="arabic-indic-digits"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("+", id="plus"),
    pytest.param("00", id="bare-prefix"),
    pytest.param(442079460958, id="int"),
    pytest.param(None, id="none"),
    pytest.param(b"442079460958", id="bytes"),
    pytest.param(["442079460958"], id="list"),
    pytest.param("442079460958@example.com", id="unknown-server"),
    pytest.param("442079460958@C.US", id="server-case"),
    pytest.param("442079460958@", id="empty-server"),
    pytest.param("abc@g.us", id="group-letters"),
    pytest.param("@g.us", id="group-empty"),
    pytest.param("1234@g.us", id="group-short"),
    pytest.param("442079460958x@g.us", id="group-trailing-letter"),
    pytest.param("1234567890-@g.us", id="group-dangling-dash"),
    pytest.param("abc@newsletter", id="newsletter-letters"),
    pytest.param("12@lid", id="lid-short"),
    pytest.param("442079460958@broadcast", id="broadcast-not-status"),
    pytest.param("abc@c.us", id="user-letters"),
    pytest.param("0207946095@c.us", id="user-leading-zero"),
]


@pytest.mark.parametrize("raw", INVALID_RECIPIENTS)
def test_parse_invalid(raw: Any) -> None:
    with pytest.raises(InvalidMessage):
        Recipient.parse(raw)


@pytest.mark.parametrize("raw", INVALID_RECIPIENTS)
def test_parse_error_never_holds_the_full_number(raw: Any) -> None:
    with pytest.raises(InvalidMessage) as info:
        Recipient.parse(raw)
    digits = re.sub(r"\D", "", raw).lstrip("0") if isinstance(raw, str) and raw.isascii() else ""
    if len(digits) >= 7:
        # Compare with separators removed: "+44 20 7946 0958" leaks as much
        # as "+442079460958".
        squeezed = re.sub(r"[\s().\-/]", "", str(info.value))
        assert digits[:12] not in squeezed, str(info.value)


def test_invalid_message_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="recipient"):
        Recipient.parse("")


# --------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------


async def _chunks() -> AsyncIterator[bytes]:
    yield PNG


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="none"),
        pytest.param({"url": "https://example.com/a.png", "data": PNG}, id="url+data"),
        pytest.param({"data": PNG, "file": io.BytesIO(PNG)}, id="data+file"),
        pytest.param({"url": "https://example.com/a.png", "stream": object()}, id="url+stream"),
        pytest.param({"filename": "a.png", "mimetype": "image/png"}, id="hints-only"),
    ],
)
def test_media_needs_exactly_one_source(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage, match="exactly one source"):
        Media(**kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "http://example.com/a.png",
        "HTTPS://EXAMPLE.COM/A.PNG",
        "https://127.0.0.1:8080/x?y=1",
    ],
)
def test_media_url_accepts_http_and_https(url: str) -> None:
    media = Media(url=url)
    assert media.source == "url"
    assert media.url == url
    assert media.size is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.com/a.png",
        "//example.com/a.png",
        "https://",
        "https:///a.png",
        " https://example.com/a.png",
        "",
    ],
)
def test_media_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(InvalidMessage):
        Media(url=url)


def test_media_path_reads_size_and_filename(tmp_path: Path) -> None:
    file = tmp_path / "photo.png"
    file.write_bytes(PNG)
    media = Media(path=str(file))
    assert media.source == "path"
    assert media.size == len(PNG)
    assert media.filename == "photo.png"


def test_media_path_keeps_an_explicit_filename(tmp_path: Path) -> None:
    file = tmp_path / "photo.png"
    file.write_bytes(PNG)
    assert Media(path=str(file), filename="cat.png").filename == "cat.png"


def test_media_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidMessage, match="cannot read image file"):
        Media(path=str(tmp_path / "nope.png"))


def test_media_path_to_a_directory_is_rejected(tmp_path: Path) -> None:
    # A directory is not an image file; it must fail when the message is
    # built, not later when a transport tries to read it.
    with pytest.raises(InvalidMessage):
        Media(path=str(tmp_path))


@pytest.mark.parametrize("data", [PNG, bytearray(PNG)])
def test_media_bytes_set_size(data: bytes) -> None:
    media = Media(data=data)
    assert media.source == "bytes"
    assert media.size == len(PNG)


@pytest.mark.parametrize("data", [b"", bytearray()])
def test_media_empty_bytes_rejected(data: bytes) -> None:
    with pytest.raises(InvalidMessage, match="empty"):
        Media(data=data)


def test_media_data_must_be_bytes() -> None:
    with pytest.raises(InvalidMessage, match="bytes"):
        Media(data="not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "stored"), [("IMAGE/PNG", "image/png"), (" image/jpeg ", "image/jpeg")]
)
def test_media_mimetype_is_normalized(given: str, stored: str) -> None:
    assert Media(data=PNG, mimetype=given).mimetype == stored


def test_media_mimetype_must_be_a_mime_type() -> None:
    with pytest.raises(InvalidMessage, match="MIME"):
        Media(data=PNG, mimetype="png")


def test_media_repr_hides_bytes_and_url_secrets() -> None:
    assert repr(Media(data=PNG)) == f"Media(bytes, size={len(PNG)})"
    text = repr(Media(url="https://example.com/u/5511999990000.png"))
    assert "5511999990000" not in text


def test_media_is_frozen() -> None:
    media = Media(url="https://example.com/a.png")
    with pytest.raises(AttributeError):
        media.url = "https://example.com/b.png"  # type: ignore[misc]


# -- coerce ------------------------------------------------------------------


def test_coerce_url() -> None:
    media = Media.coerce("https://example.com/a.png", filename="b.png", mimetype="image/png")
    assert (media.source, media.url, media.filename, media.mimetype) == (
        "url",
        "https://example.com/a.png",
        "b.png",
        "image/png",
    )


@pytest.mark.parametrize("prefix", ["data:", "DATA:"])
def test_coerce_data_uri(prefix: str) -> None:
    uri = f"{prefix}image/png;base64,{base64.b64encode(PNG).decode()}"
    media = Media.coerce(uri)
    assert media.source == "bytes"
    assert media.data == PNG
    assert media.mimetype == "image/png"


def test_coerce_path_str(tmp_path: Path) -> None:
    file = tmp_path / "a.png"
    file.write_bytes(PNG)
    media = Media.coerce(str(file))
    assert (media.source, media.path, media.size, media.filename) == (
        "path",
        str(file),
        len(PNG),
        "a.png",
    )


def test_coerce_pathlike(tmp_path: Path) -> None:
    file = tmp_path / "a.png"
    file.write_bytes(PNG)
    media = Media.coerce(file)
    assert media.source == "path"
    assert media.path == os.fspath(file)
    assert media.size == len(PNG)


@pytest.mark.parametrize("data", [PNG, bytearray(PNG), memoryview(PNG)])
def test_coerce_bytes_like(data: bytes) -> None:
    media = Media.coerce(data)
    assert media.source == "bytes"
    assert media.data == PNG
    assert type(media.data) is bytes  # copied: a later change to a bytearray cannot leak in
    assert media.size == len(PNG)


def test_coerce_file_object() -> None:
    file = io.BytesIO(PNG)
    media = Media.coerce(file, filename="a.png")
    assert media.source == "file"
    assert media.file is file
    assert media.filename == "a.png"


def test_coerce_async_generator() -> None:
    stream = _chunks()
    media = Media.coerce(stream, mimetype="image/png")
    assert media.source == "stream"
    assert media.stream is stream
    assert media.mimetype == "image/png"


def test_coerce_media_returns_it_or_a_copy_with_hints() -> None:
    media = Media(url="https://example.com/a.png")
    assert Media.coerce(media) is media
    renamed = Media.coerce(media, filename="b.png", mimetype="image/png")
    assert (renamed.url, renamed.filename, renamed.mimetype) == (
        "https://example.com/a.png",
        "b.png",
        "image/png",
    )
    assert media.filename is None


@pytest.mark.parametrize("value", [123, 1.5, None, object(), ["https://example.com/a.png"]])
def test_coerce_rejects_other_types(value: Any) -> None:
    with pytest.raises(InvalidMessage, match="image must be"):
        Media.coerce(value)


def test_coerce_missing_path_is_invalid() -> None:
    with pytest.raises(InvalidMessage):
        Media.coerce("www.example.com/no-scheme.png")


# -- base64 and data URIs ----------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(base64.b64encode(PNG).decode(), id="padded-str"),
        pytest.param(base64.b64encode(PNG), id="padded-bytes"),
        pytest.param(base64.b64encode(PNG).decode().rstrip("="), id="unpadded"),
        pytest.param("\n".join(re.findall(".{1,8}", base64.b64encode(PNG).decode())), id="wrapped"),
    ],
)
def test_from_base64(encoded: str | bytes) -> None:
    media = Media.from_base64(encoded, mimetype="image/png", filename="a.png")
    assert media.data == PNG
    assert media.size == len(PNG)
    assert (media.mimetype, media.filename) == ("image/png", "a.png")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [("aGVsbG8=", b"hello"), ("aGVsbG8", b"hello"), ("aGVsbA", b"hell"), ("aGk", b"hi")],
)
def test_from_base64_padding_optional(encoded: str, decoded: bytes) -> None:
    assert Media.from_base64(encoded).data == decoded


@pytest.mark.parametrize(
    "encoded",
    ["not base64!", "aGVs*G8=", "aGVsbG8=extra", "é", "a", "", "===="],
)
def test_from_base64_invalid(encoded: str) -> None:
    with pytest.raises(InvalidMessage):
        Media.from_base64(encoded)


@pytest.mark.parametrize(
    ("uri", "mimetype"),
    [
        ("data:image/png;base64,", "image/png"),
        ("data:image/jpeg;name=a.jpg;base64,", "image/jpeg"),
        ("data:;base64,", None),
        ("data:IMAGE/PNG;BASE64,", "image/png"),
    ],
)
def test_from_data_uri(uri: str, mimetype: str | None) -> None:
    media = Media.from_data_uri(uri + base64.b64encode(PNG).decode(), filename="x.png")
    assert media.data == PNG
    assert media.mimetype == mimetype
    assert media.filename == "x.png"


@pytest.mark.parametrize(
    "uri",
    ["data:image/png,rawbytes", "data:image/png;base64", "https://example.com/a.png", ""],
)
def test_from_data_uri_invalid(uri: str) -> None:
    with pytest.raises(InvalidMessage):
        Media.from_data_uri(uri)


# --------------------------------------------------------------------------
# Text and Image
# --------------------------------------------------------------------------


def test_text_parses_the_recipient_and_mentions() -> None:
    text = Text(
        to="+55 11 99999-0000",
        text="hi",
        mentions=("+44 20 7946 0958", "5511988887777@c.us"),
        reply_to="true_5511999990000@c.us_3EB0",
    )
    assert text.to == PHONE
    assert text.recipient == PHONE
    assert text.mentions == (
        Recipient(kind="phone", value="442079460958"),
        Recipient(kind="phone", value="5511988887777"),
    )
    assert text.mentioned == text.mentions
    assert text.reply_to == "true_5511999990000@c.us_3EB0"


def test_image_parses_the_recipient_and_coerces_the_image() -> None:
    image = Image(to="5511999990000@c.us", image=Media(url="https://example.com/a.png"))
    assert image.recipient == PHONE
    assert image.image.source == "url"
    coerced = Image(to=PHONE, image="https://example.com/a.png")  # type: ignore[arg-type]
    assert coerced.image == Media(url="https://example.com/a.png")


_TEXT = Text(to="5511999990000", text="hi")
_IMAGE = Image(to="5511999990000", image=Media(url="https://example.com/a.png"))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        *((_TEXT, name) for name in ("to", "text", "reply_to", "mentions")),
        *((_IMAGE, name) for name in ("to", "image", "caption", "view_once", "reply_to")),
    ],
)
def test_messages_are_frozen(message: Text | Image, field: str) -> None:
    with pytest.raises(AttributeError):
        setattr(message, field, None)


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (Text, ("5511999990000", "hi")),
        (Image, ("5511999990000", Media(url="https://example.com/a.png"))),
        (Media, ("https://example.com/a.png",)),
        (SendResult, ("wawp",)),
        (Attempt, ("wawp", 0.1)),
        (Recipient, ("phone", "5511999990000")),
    ],
)
def test_structs_are_keyword_only(cls: type[Any], args: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError):
        cls(*args)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_rejected(text: str) -> None:
    with pytest.raises(InvalidMessage, match="empty"):
        Text(to=PHONE, text=text)


def test_text_must_be_str() -> None:
    with pytest.raises(InvalidMessage):
        Text(to=PHONE, text=42)  # type: ignore[arg-type]


@pytest.mark.parametrize("reply_to", ["", "   "])
@pytest.mark.parametrize("cls", [Text, Image])
def test_empty_reply_to_rejected(cls: type[Text | Image], reply_to: str) -> None:
    fields: dict[str, Any] = (
        {"text": "hi"} if cls is Text else {"image": Media(url="https://example.com/a.png")}
    )
    with pytest.raises(InvalidMessage, match="reply_to"):
        cls(to=PHONE, reply_to=reply_to, **fields)


def test_mentions_as_a_single_string_rejected() -> None:
    with pytest.raises(InvalidMessage, match="mentions"):
        Text(to=PHONE, text="hi", mentions="5511999990000")  # type: ignore[arg-type]


def test_invalid_mention_rejected() -> None:
    with pytest.raises(InvalidMessage):
        Text(to=PHONE, text="hi", mentions=("123",))


def test_invalid_recipient_rejected_when_building_a_message() -> None:
    with pytest.raises(InvalidMessage):
        Text(to="123", text="hi")


def test_caption_must_be_str() -> None:
    with pytest.raises(InvalidMessage, match="caption"):
        Image(to=PHONE, image=Media(data=PNG), caption=5)  # type: ignore[arg-type]


def test_message_reprs_hide_the_number_and_the_text() -> None:
    text = Text(to="+55 11 99999-0000", text="my secret plans")
    assert "5511999990000" not in repr(text)
    assert "secret plans" not in repr(text)
    image = Image(to=PHONE, image=Media(data=PNG), caption="private caption")
    assert "5511999990000" not in repr(image)
    assert "private caption" not in repr(image)


def test_messages_are_tagged() -> None:
    assert msgspec.json.decode(msgspec.json.encode(Text(to=PHONE, text="hi")))["type"] == "text"


# Every field except these has a default (design rule 7: adding a field
# never breaks a caller).
REQUIRED_FIELDS: list[tuple[type[msgspec.Struct], set[str]]] = [
    (Text, {"to", "text"}),
    (Image, {"to", "image"}),
    (Media, set()),
    (SendResult, {"provider"}),
    (Attempt, {"provider", "duration"}),
    (Recipient, {"kind", "value"}),
]


@pytest.mark.parametrize(("cls", "required"), REQUIRED_FIELDS)
def test_every_optional_field_has_a_default(cls: type[msgspec.Struct], required: set[str]) -> None:
    fields = msgspec.structs.fields(cls)
    assert {f.name for f in fields if f.required} == required


@pytest.mark.parametrize(("cls", "_required"), REQUIRED_FIELDS)
def test_public_structs_are_frozen(cls: type[msgspec.Struct], _required: set[str]) -> None:
    assert cls.__struct_config__.frozen


# --------------------------------------------------------------------------
# SendResult
# --------------------------------------------------------------------------

RAW = b'{"id":{"_serialized":"true_5511999990000@c.us_3EB0C767D097B7C5"},"ack":1,"body":"secret"}'


def _result() -> SendResult:
    return SendResult(
        provider="wawp",
        message_id="true_5511999990000@c.us_3EB0C767D097B7C5",
        status=Status.SENT,
        chat_id="5511999990000@c.us",
        short_id="3EB0C767D097B7C5",
        attempts=(Attempt(provider="wawp", duration=0.01, status_code=201),),
        raw=RAW,
    )


def test_send_result_repr_hides_raw_and_masks_ids() -> None:
    text = repr(_result())
    assert "5511999990000" not in text
    assert "secret" not in text
    assert "ack" not in text
    assert "55*********00@c.us" in text
    assert "3EB0C767D097B7C5" in text  # the short id is not a phone number
    assert "'wawp'" in text
    assert "'sent'" in text


def test_send_result_json() -> None:
    assert _result().json() == {
        "id": {"_serialized": "true_5511999990000@c.us_3EB0C767D097B7C5"},
        "ack": 1,
        "body": "secret",
    }
    assert SendResult(provider="wawp").json() is None


def test_send_result_defaults() -> None:
    result = SendResult(provider="wawp")
    assert result.message_id is None
    assert result.status is Status.UNKNOWN
    assert result.attempts == ()
    assert result.raw == b""


def test_attempt_defaults() -> None:
    attempt = Attempt(provider="wawp", duration=0.5)
    assert (attempt.status_code, attempt.error, attempt.outcome) == (None, None, None)


# --------------------------------------------------------------------------
# Closed vocabularies
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enum_cls", "values"),
    [
        (Status, {"queued", "sent", "delivered", "read", "played", "failed", "unknown"}),
        (Outcome, {"not_sent", "unknown", "rejected"}),
    ],
)
def test_closed_str_enums(enum_cls: type[enum.StrEnum], values: set[str]) -> None:
    assert issubclass(enum_cls, enum.StrEnum)
    assert {member.value for member in enum_cls} == values
    for value in values:
        assert enum_cls(value) == value
    with pytest.raises(ValueError, match="bogus"):
        enum_cls("bogus")
