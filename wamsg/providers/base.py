"""What every adapter is, and the checks and error mapping they share.

An adapter translates one common message into one gateway's HTTP request and
that gateway's answer back into a :class:`~wamsg.SendResult` or a typed
error. It does no I/O and needs no event loop: this package imports neither
aiohttp, httpx nor anyio (a test enforces it).
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import msgspec

from .._mediatype import SNIFF_BYTES, guess_from_name, sniff
from .._redact import Secret, redact
from ..errors import (
    AuthenticationError,
    InvalidMessage,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    UnsupportedFeature,
)
from ..http import HttpRequest, HttpResponse
from ..models import Image, Media, Message, SendResult, Text

__all__ = [
    "WHATSMEOW_USER_SERVER",
    "Adapter",
    "Capabilities",
    "ErrorRule",
    "bare_message_id",
    "check_message",
    "client_message_id",
    "decode_json",
    "error_from_response",
    "excerpt",
    "find_code_and_message",
    "image_mimetype",
    "loads",
    "nonempty_str",
    "parse_retry_after",
    "unreadable_answer",
]

_T = TypeVar("_T")


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a gateway can express. Declared per adapter, and true.

    A message asking for a feature set to False here raises
    :class:`~wamsg.UnsupportedFeature` before any I/O.
    """

    reply: bool = False
    """Quote an earlier message (``reply_to``)."""
    mentions_text: bool = False
    """Mention users in a text message."""
    mentions_image: bool = False
    """Mention users in an image caption."""
    view_once: bool = False
    """Send an image that can be opened once."""
    media_url: bool = False
    """The gateway fetches the image from a URL."""
    media_upload: bool = False
    """The image bytes can be uploaded (multipart)."""
    media_base64: bool = False
    """The image bytes can be sent as base64 inside JSON."""
    image_types: frozenset[str] = frozenset({"image/jpeg", "image/png"})
    """MIME types the gateway accepts for images."""
    max_text_chars: int | None = None
    max_caption_chars: int | None = None
    max_media_bytes: int | None = None
    client_message_id: bool = False
    """The gateway accepts an id chosen by the client (safe retries)."""

    @property
    def media_bytes(self) -> bool:
        """Image bytes (not only URLs) can be sent in some form."""
        return self.media_upload or self.media_base64


@runtime_checkable
class Adapter(Protocol):
    """One gateway's translation, with no I/O.

    ``encode`` raises :class:`~wamsg.InvalidMessage` or
    :class:`~wamsg.UnsupportedFeature` for what the gateway cannot take;
    ``decode`` returns a result or raises a :class:`~wamsg.ProviderError`,
    and never lets a parsing error escape.
    """

    @property
    def name(self) -> str:
        """The provider's registered name (``"wawp"``); a class attribute will do."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the gateway can express; a class attribute will do."""
        ...

    def encode(self, message: Message) -> HttpRequest:
        """Build the HTTP request that sends ``message``."""
        ...

    def decode(self, response: HttpResponse) -> SendResult:
        """Read the gateway's answer to a send."""
        ...


# --------------------------------------------------------------------------
# Checks every adapter makes before encoding
# --------------------------------------------------------------------------


def _unsupported(provider: str, feature: str, detail: str) -> UnsupportedFeature:
    return UnsupportedFeature(
        f"{provider} cannot send {detail}", provider=provider, feature=feature
    )


def check_message(provider: str, caps: Capabilities, message: Message) -> None:
    """Refuse what ``caps`` says the gateway cannot express, before any I/O."""
    if message.reply_to is not None and not caps.reply:
        raise _unsupported(provider, "reply", "replies (reply_to)")
    if isinstance(message, Text):
        if message.mentions and not caps.mentions_text:
            raise _unsupported(provider, "mentions", "mentions in a text message")
        if caps.max_text_chars is not None and len(message.text) > caps.max_text_chars:
            raise InvalidMessage(
                f"text is {len(message.text)} characters; {provider} takes at most "
                f"{caps.max_text_chars}"
            )
        return
    if message.mentions and not caps.mentions_image:
        raise _unsupported(provider, "mentions", "mentions in an image caption")
    if message.view_once and not caps.view_once:
        raise _unsupported(provider, "view_once", "view-once images")
    caption = message.caption or ""
    if caps.max_caption_chars is not None and len(caption) > caps.max_caption_chars:
        raise InvalidMessage(
            f"caption is {len(caption)} characters; {provider} takes at most "
            f"{caps.max_caption_chars}"
        )
    media = message.image
    if media.source == "url":
        if not caps.media_url:
            raise _unsupported(provider, "media_url", "images by URL; pass the bytes or a path")
    elif not caps.media_bytes:
        raise _unsupported(
            provider, "media_upload", f"uploaded images ({media.source}); pass an https URL"
        )
    if (
        caps.max_media_bytes is not None
        and media.size is not None
        and media.size > caps.max_media_bytes
    ):
        raise InvalidMessage(
            f"image is {media.size} bytes; {provider} takes at most {caps.max_media_bytes}"
        )


def image_mimetype(provider: str, caps: Capabilities, image: Image) -> str:
    """The image's MIME type, checked against what the gateway accepts.

    In order: the bytes (when they are in memory), the caller's ``mimetype``,
    then the file name's or URL's extension. Raises
    :class:`~wamsg.InvalidMessage` for a type the gateway refuses, or when the
    type cannot be told.
    """
    media: Media = image.image
    head = media.head if media.head is not None else media.data
    mimetype = sniff(head[:SNIFF_BYTES]) if head else None
    mimetype = mimetype or media.mimetype
    if mimetype is None:
        for name in (media.filename, media.url, media.path):
            if name and (mimetype := guess_from_name(name)):
                break
    if mimetype is None:
        raise InvalidMessage(
            f"cannot tell the image type; pass mimetype= (one of {_allowed(caps)})"
        )
    if mimetype == "image/jpg":  # a common misspelling gateways also accept
        mimetype = "image/jpeg"
    if mimetype not in caps.image_types:
        raise InvalidMessage(f"{provider} does not accept {mimetype} images; use {_allowed(caps)}")
    return mimetype


#: whatsmeow-based gateways (gowa, WUTS) write user JIDs ``<digits>@s.whatsapp.net``
#: (providers.md §3.4, §4.4, §5); WAHA and Wawp write ``@c.us``.
WHATSMEOW_USER_SERVER = "s.whatsapp.net"


def bare_message_id(reply_to: str) -> str:
    """The bare WhatsApp id (``3EB0…``) of a message id in any gateway's form.

    WAHA and Wawp serialize ids as ``true_<chat>_<id>`` (groups:
    ``false_<group>_<id>_<participant>``, providers.md §1.7, §2.5); gowa and
    WUTS take the bare ``<id>`` to quote a message (§3.5, §4.2). Reducing the
    serialized form here lets an id from one gateway's results quote a message
    on another. A bare id comes back unchanged.
    """
    ident = reply_to.strip()
    parts = ident.split("_")
    if len(parts) >= 3 and parts[0] in ("true", "false") and "@" in parts[1] and parts[2]:
        return parts[2]
    return ident


def client_message_id(key: str) -> str:
    """The WhatsApp message id a gateway is asked to use for idempotency key ``key``.

    ``"3EB0"`` and the first 16 hex digits of SHA-256 of the key, upper-cased:
    20 characters, the shape of the ids whatsapp-web.js gives messages sent
    from the web client. It is deterministic on purpose: a retry of the same
    send, even from another process that holds the same key, asks for the same
    id, so a gateway that takes client-chosen ids (WAHA's ``id`` on sendText,
    providers.md §2.2, §5 note 1) can recognise the repeat. Only the hash goes
    out: the key itself, which may hold user data, never reaches the wire.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16].upper()
    return f"3EB0{digest}"


def nonempty_str(value: Any) -> str | None:
    """``value`` when it is a non-empty string (loosely typed answers), else None."""
    return value if isinstance(value, str) and value else None


def _allowed(caps: Capabilities) -> str:
    return ", ".join(sorted(caps.image_types))


# --------------------------------------------------------------------------
# Error mapping shared by every adapter
# --------------------------------------------------------------------------

ErrorRule: TypeAlias = tuple[type[ProviderError], Outcome, bool]
"""How an HTTP status or a gateway error code maps: (class, outcome, retryable)."""

#: The meaning of plain HTTP statuses, for gateways that say no more.
#: Adapters extend it with their gateway's documented statuses and codes.
HTTP_STATUS_RULES: Mapping[int, ErrorRule] = {
    400: (Rejected, Outcome.REJECTED, False),
    401: (AuthenticationError, Outcome.REJECTED, False),
    403: (AuthenticationError, Outcome.REJECTED, False),
    404: (Rejected, Outcome.REJECTED, False),
    # RFC 9110 §15.5.9: the server gave up waiting for the request itself.
    408: (ProviderUnavailable, Outcome.NOT_SENT, True),
    409: (Rejected, Outcome.REJECTED, False),
    413: (Rejected, Outcome.REJECTED, False),
    415: (Rejected, Outcome.REJECTED, False),
    422: (Rejected, Outcome.REJECTED, False),
    429: (RateLimited, Outcome.NOT_SENT, True),
    # A 500 or 504 may come after the gateway handed the message to WhatsApp
    # (providers.md §5, note 1): nobody can say it was not sent.
    500: (ProviderUnavailable, Outcome.UNKNOWN, False),
    502: (ProviderUnavailable, Outcome.UNKNOWN, False),
    # RFC 9110 §15.6.4: 503 means the server is not handling requests now.
    503: (ProviderUnavailable, Outcome.NOT_SENT, True),
    504: (ProviderUnavailable, Outcome.UNKNOWN, False),
}

_FALLBACK_4XX: ErrorRule = (Rejected, Outcome.REJECTED, False)
_FALLBACK_5XX: ErrorRule = (ProviderUnavailable, Outcome.UNKNOWN, False)
_FALLBACK_OTHER: ErrorRule = (ProviderError, Outcome.UNKNOWN, False)

_EXCERPT_CHARS = 300
# A Retry-After beyond a day is read as a day: still "far too long to
# wait" for any retry policy (which then gives up at once), never as no
# hint at all (which would retry within a second a gateway that said not to).
_MAX_RETRY_AFTER = 86400.0
# Bounded, so that a body of unclosed "<" cannot make the regex quadratic.
_TAG = re.compile(r"<[^<>]{0,200}>")
# How much of a body error texts are taken from: enough for any error
# message, small enough that redaction and regexes stay cheap on a runaway body.
_TEXT_BYTES = 8192
_XML_FIELD = re.compile(r"<(code|message|error)>\s*([^<]{1,300}?)\s*</\1>", re.I)
_TITLE = re.compile(r"<title>\s*([^<]{1,300}?)\s*</title>", re.I)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3).

    Accepts delay-seconds or an HTTP date; returns None when absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    if not value.isascii():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not (math.isfinite(seconds) and seconds >= 0):
            return None
        return min(seconds, _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    delay = max(0.0, when.timestamp() - current)
    return min(delay, _MAX_RETRY_AFTER)


def _text_of(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def find_code_and_message(parsed: Any, text: str) -> tuple[str | None, str | None]:
    """Pull the gateway's error code and text out of whatever it sent.

    Gateways answer errors as JSON in several shapes (``{code, message}``,
    ``{error: {code, message}}``, ``{error_code, error}``, Nest's
    ``{statusCode, message[], error}``), and proxies in front of them as XML,
    HTML or plain text (Wawp documents all four, providers.md §1.8).
    """
    if isinstance(parsed, dict):
        code: Any = parsed.get("error_code") or parsed.get("code")
        message: Any = parsed.get("message")
        error = parsed.get("error")
        if isinstance(error, dict):
            code = code or error.get("code")
            message = message or error.get("message")
        elif isinstance(error, str):
            message = message or error
        if isinstance(message, list):  # Nest validation errors: a list of strings
            message = "; ".join(str(m) for m in message)
        if isinstance(message, dict):
            message = None
        code_text = (
            str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
        )
        return code_text, str(message) if message is not None else None
    if isinstance(parsed, str):
        return None, parsed
    fields = {name.lower(): value for name, value in _XML_FIELD.findall(text)}
    if fields:
        return fields.get("code"), fields.get("message") or fields.get("error")
    title = _TITLE.search(text)
    if title:
        return None, title.group(1)
    stripped = " ".join(_TAG.sub(" ", text).split())
    return None, stripped or None


#: What msgspec raises for a body it cannot read. ``DecodeError`` covers
#: malformed JSON and (as its subclass ``ValidationError``) a document of
#: the wrong shape; invalid UTF-8 inside a string can surface as a bare
#: ``UnicodeDecodeError``; and a document nested deeper than the
#: interpreter's recursion limit raises ``RecursionError`` ("maximum recursion
#: depth exceeded while deserializing an object"), even when the deep member
#: is one a Struct decoder skips unread: msgspec still walks it. Gateways
#: answer whatever their proxies and engines produce (providers.md §1.8,
#: §4.4), so none of these may escape a decoder.
_UNREADABLE: tuple[type[Exception], ...] = (
    msgspec.DecodeError,
    UnicodeDecodeError,
    RecursionError,
)

_ANY_JSON: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def decode_json(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T | None:
    """``body`` decoded by ``decoder``, or None when it cannot be read.

    The one place adapters turn a body into JSON: malformed, mistyped,
    invalid UTF-8 and too deeply nested bodies all come back as None, for
    the caller to report as the typed error its gateway's answer calls for.
    """
    try:
        return decoder.decode(body)
    except _UNREADABLE:
        return None


def loads(body: bytes) -> Any:
    """Parse JSON leniently: None for an empty or unreadable body."""
    if not body:
        return None
    return decode_json(_ANY_JSON, body)


def _bounded_text(response: HttpResponse, secrets: list[Secret]) -> str:
    """The start of the body as redacted text (a cut secret is masked too)."""
    longest = max((len(s.reveal()) for s in secrets), default=0)
    body = response.body
    cut = response.truncated or len(body) > _TEXT_BYTES + longest
    return redact(_text_of(body[: _TEXT_BYTES + longest]), secrets, cut=cut)[:_TEXT_BYTES]


def excerpt(response: HttpResponse, secrets: Iterable[Secret] = ()) -> str:
    """A short, redacted excerpt of a response body, for error reports."""
    return _bounded_text(response, list(secrets))[:_EXCERPT_CHARS]


def unreadable_answer(
    provider: str, response: HttpResponse, secrets: Iterable[Secret] = ()
) -> ProviderError:
    """The error for a 2xx whose body is not the JSON object the gateway documents.

    The gateway said it took the request, so the message may well have gone
    out (providers.md §5, note 1): the outcome is ``unknown``, never
    ``not_sent``, and the send is not retried blindly.
    """
    return ProviderError(
        f"{provider}: HTTP {response.status} with a body that is not a JSON object",
        provider=provider,
        status_code=response.status,
        outcome=Outcome.UNKNOWN,
        body_excerpt=excerpt(response, secrets),
    )


def error_from_response(
    provider: str,
    response: HttpResponse,
    *,
    parsed: Any = None,
    status_rules: Mapping[int, ErrorRule] = HTTP_STATUS_RULES,
    code_rules: Mapping[str, ErrorRule] | None = None,
    status: int | None = None,
    code: str | None = None,
    secrets: Iterable[Secret] = (),
) -> ProviderError:
    """Build the typed error for a failed send.

    ``status`` overrides the HTTP status for the rule lookup, for gateways
    that put the real status in the body of a 200. The gateway's error code,
    when it has a rule in ``code_rules``, wins over the status; ``code``
    overrides the code found in the body, for gateways whose errors are told
    apart by their text (the adapter names the case, the table maps it).
    """
    secret_list = list(secrets)
    # Redact the whole text before anything is cut from it, so that a secret
    # straddling a cut cannot leave its first half behind.
    text = _bounded_text(response, secret_list)
    if parsed is None:
        parsed = loads(response.body)
    found_code, gateway_message = find_code_and_message(parsed, text)
    code = code or found_code
    effective = status if status is not None else response.status
    rule = (code_rules or {}).get(code or "") or status_rules.get(effective)
    if rule is None:
        if 400 <= effective < 500:
            rule = _FALLBACK_4XX
        elif effective >= 500:
            rule = _FALLBACK_5XX
        else:
            rule = _FALLBACK_OTHER
    cls, outcome, retryable = rule
    clean_message = (
        redact(gateway_message, secret_list)[:_EXCERPT_CHARS] if gateway_message else None
    )
    excerpt = text[:_EXCERPT_CHARS]
    retry_after = parse_retry_after(response.header("retry-after"))
    clean_code = redact(code, secret_list) if code else None
    summary = f"{provider}: HTTP {response.status}"
    if clean_code:
        summary += f" {clean_code}"
    if clean_message:
        summary += f": {clean_message}"
    if response.truncated:
        summary += " (body truncated)"
    return cls(
        summary,
        provider=provider,
        status_code=response.status,
        error_code=clean_code,
        gateway_message=clean_message,
        retryable=retryable,
        retry_after=retry_after,
        outcome=outcome,
        body_excerpt=excerpt,
    )
