"""The common message model: what every adapter encodes and decodes.

Structs are frozen and keyword-only, and every optional field has a default,
so adding a field never breaks a caller. Input is checked when a message is
built, so a bad phone number or an empty text fails with
:class:`~wamsg.errors.InvalidMessage` before anything touches the network.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
import stat
from collections.abc import AsyncIterable
from datetime import datetime
from typing import IO, Any, Literal, TypeAlias, cast

import msgspec
from msgspec.structs import force_setattr

from ._redact import mask_phone, redact
from .errors import InvalidMessage, Outcome

__all__ = [
    "Attempt",
    "Image",
    "InboundMessage",
    "Media",
    "MediaRef",
    "Message",
    "Recipient",
    "SendResult",
    "Status",
    "Text",
]


class Status(enum.StrEnum):
    """Where a message is on its way to the recipient (a closed vocabulary).

    Gateways report their own codes (WAHA ``ack`` numbers, gowa receipt types,
    WUTS strings); adapters map them here, and anything they do not know maps
    to ``UNKNOWN`` rather than failing.
    """

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    UNKNOWN = "unknown"


# --------------------------------------------------------------------------
# Recipients
# --------------------------------------------------------------------------

# Separators people write inside phone numbers: spaces (incl. no-break and
# thin spaces), dashes, dots, slashes and parentheses.
_PHONE_SEPARATORS = re.compile(r"[\s\u00a0\u2009\u202f().\-/]")
# E.164 allows at most 15 digits; the shortest numbers in use have 7.
_MIN_DIGITS, _MAX_DIGITS = 7, 15

# Chat ids that are not a single user pass through untouched, but must look
# like what WhatsApp issues: groups are "<digits>" or the older
# "<creator digits>-<unix time>", channels and hidden ids are digits.
_CHAT_ID_PATTERNS = {
    "g.us": re.compile(r"\d{5,}(?:-\d{5,})?"),
    "newsletter": re.compile(r"\d{5,}"),
    "lid": re.compile(r"\d{5,}"),
    "broadcast": re.compile(r"status"),
}
# A user id is a phone number; WAHA/Wawp write it "@c.us", whatsmeow-based
# gateways (gowa, WUTS) "@s.whatsapp.net" (providers.md §5). Both parse to
# the same phone recipient so each adapter writes its own form.
_USER_SERVERS = frozenset({"c.us", "s.whatsapp.net"})


def _shown(raw: str) -> str:
    """``raw`` for an error message: every digit but the first and last two masked.

    Unlike :func:`redact`, this masks digits even where letters touch them
    (a typo such as ``5511999990000o`` must not print the number).
    """
    total = sum(c.isdigit() for c in raw)
    seen = 0
    out = []
    for c in raw:
        if c.isdigit():
            seen += 1
            if 2 < seen <= total - 2:
                c = "*"
        out.append(c)
    return repr("".join(out)[:80])


def _phone_digits(raw: str) -> str:
    text = _PHONE_SEPARATORS.sub("", raw)
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):  # international call prefix used in Europe and elsewhere
        text = text[2:]
    if not text.isdigit() or not text.isascii():
        raise InvalidMessage(
            f"invalid phone number {_shown(raw)}: use E.164 such as +5511999990000, "
            "or a chat id such as 1203630…@g.us"
        )
    if text.startswith("0"):
        raise InvalidMessage(
            f"invalid phone number {_shown(raw)}: country codes never start with 0; "
            "give the number with its country code, e.g. +55 11 99999-0000"
        )
    if not _MIN_DIGITS <= len(text) <= _MAX_DIGITS:
        raise InvalidMessage(
            f"invalid phone number {_shown(raw)}: {len(text)} digits, "
            f"E.164 numbers have {_MIN_DIGITS} to {_MAX_DIGITS} with the country code"
        )
    return text


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """Who a message goes to: a phone number or an explicit chat id.

    Build one with :meth:`parse`; messages accept plain strings and parse them.

    Attributes:
        kind: ``"phone"`` for a single user, ``"chat"`` for a group, channel,
            hidden (``@lid``) id or broadcast list.
        value: the digits of the number (no ``+``) or the full chat id.
    """

    kind: Literal["phone", "chat"]
    value: str

    def __post_init__(self) -> None:
        # parse() builds valid values; this catches Recipient(...) built by hand.
        if self.kind == "phone":
            if not (
                self.value.isascii()
                and self.value.isdigit()
                and _MIN_DIGITS <= len(self.value) <= _MAX_DIGITS
            ):
                raise InvalidMessage("a phone recipient's value is its digits, e.g. 5511999990000")
        elif self.kind != "chat" or "@" not in self.value:
            raise InvalidMessage("a chat recipient's value is a chat id such as 1203…@g.us")

    @classmethod
    def parse(cls, to: str | Recipient) -> Recipient:
        """Parse E.164 in any common spelling, or a WhatsApp chat id.

        ``"+55 11 99999-0000"``, ``"5511999990000"``, ``"0055 11 99999 0000"``
        and ``"5511999990000@c.us"`` all give the same phone recipient;
        ``"120363025246125486@g.us"`` passes through as a group chat.
        """
        if isinstance(to, Recipient):
            return to
        if not isinstance(to, str):
            raise InvalidMessage(f"recipient must be a string, not {type(to).__name__}")
        to = to.strip()
        if not to:
            raise InvalidMessage("recipient is empty")
        if "@" in to:
            local, _, server = to.partition("@")
            if server in _USER_SERVERS:
                return cls(kind="phone", value=_phone_digits(local))
            pattern = _CHAT_ID_PATTERNS.get(server)
            if pattern is None:
                raise InvalidMessage(
                    f"unknown chat id server in {_shown(to)}: expected a phone number or an id "
                    "ending in @c.us, @s.whatsapp.net, @g.us, @newsletter, @lid or @broadcast"
                )
            if not pattern.fullmatch(local):
                raise InvalidMessage(f"malformed chat id {_shown(to)}")
            return cls(kind="chat", value=to)
        return cls(kind="phone", value=_phone_digits(to))

    def jid(self, user_server: str) -> str:
        """The chat id for a gateway whose user ids end in ``@user_server``."""
        if self.kind == "phone":
            return f"{self.value}@{user_server}"
        return self.value

    @property
    def is_group(self) -> bool:
        """True for a group chat (``@g.us``)."""
        return self.kind == "chat" and self.value.endswith("@g.us")

    @property
    def masked(self) -> str:
        """A form safe for logs: ``+55*********00`` or the chat id."""
        if self.kind == "phone":
            return mask_phone("+" + self.value)
        return redact(self.value)

    def __repr__(self) -> str:
        return f"Recipient({self.masked})"


# --------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------

MediaSource: TypeAlias = Literal["url", "path", "bytes", "file", "stream"]

ImageInput: TypeAlias = (
    "Media | str | os.PathLike[str] | bytes | bytearray | memoryview"
    " | IO[bytes] | AsyncIterable[bytes]"
)
"""What ``send_image`` and :meth:`Media.coerce` accept as an image."""

_DATA_URI = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,", re.I)


class Media(msgspec.Struct, frozen=True, kw_only=True):
    """An image (or later, any file) from exactly one source.

    Give exactly one of ``url``, ``path``, ``data``, ``file`` (a binary file
    object) or ``stream`` (an async iterable of bytes). ``filename`` and
    ``mimetype`` are optional hints; adapters that must state a type take it
    from ``mimetype``, the file's first bytes, or the name's extension.

    Most callers never build this directly: :meth:`coerce` turns what they
    pass to ``send_image`` into a Media.
    """

    url: str | None = None
    path: str | None = None
    data: bytes | None = None
    file: IO[bytes] | None = None
    stream: AsyncIterable[bytes] | None = None
    filename: str | None = None
    mimetype: str | None = None
    size: int | None = None
    """Byte size when known up front (always for bytes and paths; give it for
    streams so that limits are checked and Content-Length is sent)."""
    head: bytes | None = None
    """The first bytes, read by the client before encoding to tell the type."""
    head_consumed: bool = False
    """True when ``head`` was taken from a stream that cannot rewind, so the
    body must send ``head`` before the rest of the stream."""

    def __post_init__(self) -> None:
        given = [
            name
            for name in ("url", "path", "data", "file", "stream")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            which = ", ".join(given) if given else "none"
            raise InvalidMessage(
                f"an image needs exactly one source (url, path, data, file or stream); got {which}"
            )
        if self.url is not None and not re.match(r"https?://[^/\s]+", self.url, re.I):
            raise InvalidMessage(
                f"image url must be an absolute http(s) URL, got {redact(self.url)[:80]!r}"
            )
        if self.data is not None:
            if not isinstance(self.data, bytes | bytearray | memoryview):
                raise InvalidMessage("image data must be bytes")
            if not self.data:
                raise InvalidMessage("image data is empty")
            force_setattr(self, "size", len(self.data))
        if self.path is not None:
            try:
                info = os.stat(self.path)
            except OSError as exc:
                raise InvalidMessage(
                    f"cannot read image file {redact(self.path)!r}: {exc.strerror}"
                ) from None
            if not stat.S_ISREG(info.st_mode):
                raise InvalidMessage(f"image path {redact(self.path)!r} is not a regular file")
            force_setattr(self, "size", info.st_size)
            if self.filename is None:
                force_setattr(self, "filename", os.path.basename(self.path))
        if self.mimetype is not None:
            mimetype = self.mimetype.strip().lower()
            if "/" not in mimetype:
                raise InvalidMessage(f"mimetype {self.mimetype!r} is not a MIME type")
            force_setattr(self, "mimetype", mimetype)

    @property
    def source(self) -> MediaSource:
        """Which of the sources this media comes from."""
        if self.url is not None:
            return "url"
        if self.path is not None:
            return "path"
        if self.data is not None:
            return "bytes"
        if self.file is not None:
            return "file"
        return "stream"

    @classmethod
    def coerce(
        cls,
        image: ImageInput,
        *,
        filename: str | None = None,
        mimetype: str | None = None,
    ) -> Media:
        """Turn what a caller passes as an image into a Media.

        A string is a URL when it starts with ``http://`` or ``https://``, a
        ``data:`` URI when it starts with ``data:``, and a file path otherwise.
        """
        if isinstance(image, Media):
            if filename is None and mimetype is None:
                return image
            return msgspec.structs.replace(
                image,
                filename=filename or image.filename,
                mimetype=mimetype or image.mimetype,
            )
        if isinstance(image, str):
            lowered = image[:8].lower()
            if lowered.startswith(("http://", "https://")):
                return cls(url=image, filename=filename, mimetype=mimetype)
            if lowered.startswith("data:"):
                return cls.from_data_uri(image, filename=filename, mimetype=mimetype)
            return cls(path=image, filename=filename, mimetype=mimetype)
        if isinstance(image, os.PathLike):
            return cls(path=os.fspath(image), filename=filename, mimetype=mimetype)
        if isinstance(image, bytes | bytearray | memoryview):
            return cls(data=bytes(image), filename=filename, mimetype=mimetype)
        # Async sources first: aiohttp's resp.content and anyio/aiofiles files
        # have a read() too, but it is a coroutine.
        if hasattr(image, "__aiter__"):
            return cls(
                stream=cast("AsyncIterable[bytes]", image), filename=filename, mimetype=mimetype
            )
        if hasattr(image, "read"):
            return cls(file=image, filename=filename, mimetype=mimetype)
        raise InvalidMessage(
            "image must be a URL, a path, bytes, a binary file object or an async "
            f"iterable of bytes, not {type(image).__name__}"
        )

    @classmethod
    def from_data_uri(
        cls, uri: str, *, filename: str | None = None, mimetype: str | None = None
    ) -> Media:
        """Decode a ``data:image/png;base64,...`` URI (``mimetype`` fills in a missing type)."""
        match = _DATA_URI.match(uri)
        if match is None:
            raise InvalidMessage("only base64 data URIs are supported (data:<type>;base64,...)")
        return cls.from_base64(
            uri[match.end() :], mimetype=match.group("mime") or mimetype, filename=filename
        )

    @classmethod
    def from_base64(
        cls, encoded: str | bytes, *, mimetype: str | None = None, filename: str | None = None
    ) -> Media:
        """Decode base64 text (standard alphabet, padding optional)."""
        if isinstance(encoded, str):
            encoded = encoded.encode("ascii", "replace")
        encoded = re.sub(rb"\s+", b"", encoded)
        encoded += b"=" * (-len(encoded) % 4)
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InvalidMessage("image is not valid base64") from None
        return cls(data=data, mimetype=mimetype, filename=filename)

    def __repr__(self) -> str:
        if self.url is not None:
            where = f"url={redact(self.url)[:80]!r}"
        elif self.path is not None:
            where = f"path={redact(self.path)!r}"
        else:
            where = self.source
        size = f", size={self.size}" if self.size is not None else ""
        mime = f", mimetype={self.mimetype!r}" if self.mimetype else ""
        return f"Media({where}{mime}{size})"


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def _parse_mentions(
    mentions: tuple[str | Recipient, ...] | list[str | Recipient],
) -> tuple[Recipient, ...]:
    if isinstance(mentions, str):
        raise InvalidMessage("mentions must be a list of numbers, not a single string")
    return tuple(Recipient.parse(m) for m in mentions)


#: Longest idempotency key accepted (Stripe's limit is 255 characters too).
MAX_IDEMPOTENCY_KEY = 255


def check_idempotency_key(key: object) -> None:
    """Refuse an idempotency key that is not 1-255 printable characters."""
    if not isinstance(key, str):
        raise InvalidMessage(f"idempotency_key must be a string, not {type(key).__name__}")
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or key != key.strip():
        raise InvalidMessage(
            f"idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters "
            "with no surrounding spaces"
        )


def _check_encodable(field: str, value: str) -> None:
    # A lone surrogate (from a bad decode upstream) cannot go out as UTF-8.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidMessage(f"{field} holds characters that are not valid Unicode") from None


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    to: Recipient | str
    """The recipient; a string is parsed with :meth:`Recipient.parse`."""
    reply_to: str | None = None
    """The gateway's id of the message to quote (as returned in ``SendResult.message_id``)."""
    mentions: tuple[Recipient | str, ...] = ()
    """Users to mention (phone numbers or chat ids)."""
    idempotency_key: str | None = None
    """Names this send: another send with the same key returns the first
    one's result instead of sending again. The client generates one when
    it is None. Keep phone numbers and secrets out of it; it is logged masked."""

    def __post_init__(self) -> None:
        force_setattr(self, "to", Recipient.parse(self.to))
        if self.mentions:
            force_setattr(self, "mentions", _parse_mentions(self.mentions))
        if self.reply_to is not None and not self.reply_to.strip():
            raise InvalidMessage("reply_to is empty; leave it out when not replying")
        if self.idempotency_key is not None:
            check_idempotency_key(self.idempotency_key)

    @property
    def recipient(self) -> Recipient:
        """The parsed recipient."""
        to = self.to
        assert isinstance(to, Recipient)  # guaranteed by __post_init__
        return to

    @property
    def mentioned(self) -> tuple[Recipient, ...]:
        """The parsed mentions."""
        return tuple(m for m in self.mentions if isinstance(m, Recipient))


class Text(_Base, frozen=True, kw_only=True, tag="text"):
    """A text message."""

    text: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.text, str):
            raise InvalidMessage(f"text must be a string, not {type(self.text).__name__}")
        if not self.text.strip():
            raise InvalidMessage("text is empty")
        _check_encodable("text", self.text)

    def __repr__(self) -> str:
        return f"Text(to={self.recipient.masked}, chars={len(self.text)})"


class Image(_Base, frozen=True, kw_only=True, tag="image"):
    """An image message, with an optional caption."""

    image: Media
    caption: str | None = None
    view_once: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.image, Media):
            force_setattr(self, "image", Media.coerce(self.image))
        if self.caption is not None:
            if not isinstance(self.caption, str):
                raise InvalidMessage("caption must be a string")
            _check_encodable("caption", self.caption)

    def __repr__(self) -> str:
        caption = f", caption_chars={len(self.caption)}" if self.caption else ""
        return f"Image(to={self.recipient.masked}, image={self.image!r}{caption})"


Message: TypeAlias = Text | Image
"""Any message the client can send."""


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


# gc=False: results and attempts hold only immutable values (no cycles), and
# the dedupe store keeps up to 100,000 of them; left tracked, every GC pass
# walks them all (benchmarks/README.md, P1).
class Attempt(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One try at sending, kept in :attr:`SendResult.attempts`."""

    provider: str
    duration: float
    """Seconds from the request to the answer (or the error)."""
    status_code: int | None = None
    error: str | None = None
    """The error's class and redacted message, when the attempt failed."""
    outcome: Outcome | None = None
    """The failed attempt's outcome; None when it succeeded."""
    waited: float = 0.0
    """Seconds of backoff waited before this attempt (0 for the first and for failover)."""


class SendResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the gateway said about an accepted message.

    Attributes:
        provider: the adapter's name.
        message_id: the gateway's id for the message, in the form its replies
            and webhooks use (WAHA/Wawp: ``true_<chat>_<id>``); None when the
            gateway accepted it without saying (Wawp's empty 2xx).
        status: the message's status when the gateway answered.
        chat_id: the chat the gateway says it went to.
        timestamp: the gateway's time for the message, UTC.
        short_id: the bare WhatsApp message id (``3EB0…``), to match receipts
            across id formats.
        attempts: every try, in order.
        raw: the response body, unparsed; :meth:`json` parses it.
        idempotency_key: the send's key (given or generated): sending again
            with it returns this result instead of a second message.
        replayed: True when this result is an earlier send's, returned for
            its idempotency key with no new request (``raw`` is then empty).
    """

    provider: str
    message_id: str | None = None
    status: Status = Status.UNKNOWN
    chat_id: str | None = None
    timestamp: datetime | None = None
    short_id: str | None = None
    attempts: tuple[Attempt, ...] = ()
    raw: bytes = b""
    idempotency_key: str | None = None
    replayed: bool = False

    def json(self) -> Any:
        """The response body parsed as JSON (None when it was empty)."""
        return msgspec.json.decode(self.raw) if self.raw else None

    def __repr__(self) -> str:
        chat = redact(self.chat_id) if self.chat_id else None
        message_id = redact(self.message_id) if self.message_id else None
        return (
            f"SendResult(provider={self.provider!r}, message_id={message_id!r}, "
            f"status={self.status.value!r}, chat_id={chat!r}, attempts={len(self.attempts)})"
        )


# --------------------------------------------------------------------------
# Inbound: what webhooks bring (wamsg.webhooks parses them; adapters fetch media)
# --------------------------------------------------------------------------


class MediaRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where an incoming image is and how to fetch it.

    Attributes:
        fetch: how to get the bytes:

            * ``"gateway_auth"``: GET ``url`` (or the gateway's base URL +
              ``/`` + ``path``) with the gateway's own credentials (WAHA and
              Wawp ``media.url`` need the API key; gowa serves ``path``
              under its base URL, behind its Basic auth);
            * ``"gateway_api"``: ask the gateway's API (WUTS
              ``GET /messages/{message_id}/media``);
            * ``"direct"``: a plain URL;
            * ``"unavailable"``: the gateway did not download it (WAHA
              ``media: null``, gowa's encrypted ``mmg.whatsapp.net`` URL).
        url: an absolute URL when the gateway gives one.
        path: a path relative to the gateway's base URL (gowa ``statics/...``).
        mimetype, filename, caption: as the gateway reports them.
    """

    fetch: Literal["gateway_auth", "gateway_api", "direct", "unavailable"]
    url: str | None = None
    path: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    caption: str | None = None

    def __repr__(self) -> str:
        where = redact(self.url or self.path or "")
        return f"MediaRef(fetch={self.fetch!r}, at={where!r}, mimetype={self.mimetype!r})"


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message someone sent (or this account sent from its phone: ``from_me``).

    Attributes:
        message_id: the gateway's id, in its own form.
        chat_id: the chat (a user or a group JID).
        sender: who wrote it (the participant in a group).
        kind: ``"text"``, ``"image"`` or ``"other"`` (video, audio, location...).
        text: the text, or an image's caption.
        media: where the image is, for ``kind="image"``.
        reply_to: the id of the message it quotes.
        sender_name: the push or contact name the gateway gives.
        sent_at: WhatsApp's time for the message, UTC.
    """

    message_id: str
    chat_id: str
    sender: str
    kind: Literal["text", "image", "other"]
    from_me: bool = False
    text: str | None = None
    media: MediaRef | None = None
    reply_to: str | None = None
    sender_name: str | None = None
    sent_at: datetime | None = None

    def __repr__(self) -> str:
        # No full number or message text in a log line (README, "privacy").
        text = f"chars={len(self.text)}" if self.text is not None else "no text"
        return (
            f"InboundMessage(kind={self.kind!r}, message_id={redact(self.message_id)!r}, "
            f"chat_id={redact(self.chat_id)!r}, sender={redact(self.sender)!r}, {text})"
        )
