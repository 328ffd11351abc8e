"""A WUTS gateway in miniature: the pure ``handle(HttpRequest) -> HttpResponse``.

It enforces what WUTS documents (providers.md §4): ``Authorization: Bearer
<token>`` and nothing else (§4.1), the JSON bodies of ``POST /send/text`` and
``POST /send/image`` (§4.2, §4.3; decoded with the adapter's own wire
structs, in the opposite direction), a ``number`` of bare digits or a group
JID (§5), text of 1 to 4,096 characters, captions of at most 1,024, and
exactly one image source: base64 (a ``data:`` URI prefix allowed) or a URL
(§4.3). It answers like WUTS: ``{success, message_id, timestamp, status,
chat_jid, metadata}`` on success and ``{success: false, error, error_code,
timestamp, validation?}`` on errors (§4.4).

Where the stored docs are silent, the sandbox makes the choices the adapter
(wamsg/providers/wuts.py) already made, so the two agree; each is marked
[G] (guessed) below.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from .._mediatype import SNIFF_BYTES, guess_from_name, sniff
from ..http import HttpRequest, HttpResponse
from ..providers.wuts import WutsAdapter, _ImageBody, _TextBody
from .base import GatewaySandbox, body_bytes
from .outbox import Outbox

__all__ = ["WutsSandbox"]

_JSON = {"content-type": "application/json; charset=utf-8"}
_CAPS = WutsAdapter.capabilities
_ROUTES = ("/send/text", "/send/image")

# "bare digits (10-15, `+`, spaces and dashes stripped) or `@g.us` JID" (§5).
_NUMBER_NOISE = re.compile(r"[+\s-]")
_PHONE = re.compile(r"\d{10,15}")
# Group JIDs: the current <id>@g.us and the old <creator>-<timestamp>@g.us.
_GROUP = re.compile(r"\d{5,}(-\d{5,})?@g\.us")
# `mentioned` is "a JID array" of users, <digits>@s.whatsapp.net (§4.2, §4.3).
_USER_JID = re.compile(r"\d{7,15}@s\.whatsapp\.net")
# "with or without a data:image/png;base64, prefix; the prefix supplies the
# MIME" (§4.3).
_DATA_URI = re.compile(r"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(;[^,;]*)*?;base64,", re.ASCII)
_MSGSPEC_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MSGSPEC_MISSING = re.compile(r"missing required field `([^`]+)`")

#: Error codes by status, for statuses whose code the docs do not give [G]:
#: the names the adapter's table already knows (wamsg/providers/wuts.py
#: ``_CODE_RULES``), so that the adapter maps them as intended.
_CODE_FOR_STATUS = {
    400: "VALIDATION_ERROR",  # the one 400 code documented (§4.4) [F]
    401: "UNAUTHORIZED",  # [G], as the adapter
    403: "FORBIDDEN",  # [G], as the adapter
    404: "NOT_FOUND",  # [G], as the adapter
    405: "METHOD_NOT_ALLOWED",  # [G], not in the adapter: mapped by its status
    429: "RATE_LIMITED",  # [G], as the adapter
    500: "INTERNAL_ERROR",  # [G]: unknown to the adapter, mapped by its status
    502: "BAD_GATEWAY",  # [G]
    503: "SERVICE_UNAVAILABLE",  # [G]
}


class _ImageIn(_ImageBody, kw_only=True):
    """The adapter's ``_ImageBody``, read the other way.

    The adapter always sends ``viewOnce``; a gateway with Evolution API's field
    names takes it as optional, false by default (seed 002 sends ``false``).
    """

    viewOnce: bool = False  # noqa: N815 - wire name


class _Invalid(Exception):
    """A request WUTS refuses with 400 VALIDATION_ERROR."""

    def __init__(self, field: str, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.value = value


def _rfc3339(seconds: float) -> str:
    """``2026-06-15T14:03:21Z``, the form of every WUTS timestamp (§4.4)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field_of(exc: msgspec.ValidationError) -> str:
    """The JSON field a msgspec error is about (``quoted.key.id``), or ``body``."""
    text = str(exc)
    found = _MSGSPEC_PATH.search(text)
    path = found.group(1) if found else ""
    missing = _MSGSPEC_MISSING.search(text)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path or "body"


class WutsSandbox(GatewaySandbox):
    """WUTS's send API, answered from memory.

    Args:
        outbox: where accepted messages go.
        token: the bearer token it accepts.
        seed: seeds the message ids, for repeatable runs.
        clock: the time source (seconds since the epoch).

    Set :attr:`device_ready` to False to get WUTS's answer when the WhatsApp
    session of the token's device is not connected (``DEVICE_NOT_READY``).
    """

    provider = "wuts"

    def __init__(
        self,
        outbox: Outbox,
        *,
        token: str = "sandbox-wuts-token",  # noqa: S107 - the sandbox's published example
        seed: int | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(outbox, seed=seed, clock=clock)
        self._token = token.encode()
        #: False makes every send answer DEVICE_NOT_READY (§4.4).
        self.device_ready = True
        # The token names user and device (§4.1); the answer's metadata
        # carries both (seed 002: "device-7f3a", "usr_01H9").
        self.device_id = "device-sandbox"
        self.user_id = "usr_sandbox"
        #: The device's WhatsApp account (``to`` of incoming webhooks, docs/webhooks.md §4).
        self.me = "15550000002@s.whatsapp.net"

    def credentials(self, base_url: str) -> dict[str, Any]:
        """Client settings (``WutsAdapter(token=, base_url=)``) for ``base_url``."""
        return {"base_url": base_url, "token": self._token.decode()}

    def error(self, status: int, message: str, code: str | None = None) -> HttpResponse:
        """WUTS's error envelope: ``{success: false, error, error_code, timestamp}``."""
        return self._error(status, code or _CODE_FOR_STATUS.get(status, "ERROR"), message)

    def auth_error(self) -> HttpResponse:
        """WUTS's answer to a missing or wrong bearer token (401, §4.4)."""
        # The code is the adapter's [G] "UNAUTHORIZED"; the status is documented.
        return self._error(401, "UNAUTHORIZED", "invalid or missing bearer token")

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        validation: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        answer: dict[str, Any] = {
            "success": False,
            "error": message,
            "error_code": code,
            "timestamp": _rfc3339(self.clock()),
        }
        if validation is not None:
            answer["validation"] = validation
        return HttpResponse(
            status=status, headers={**_JSON, **(headers or {})}, body=msgspec.json.encode(answer)
        )

    def _invalid(self, exc: _Invalid) -> HttpResponse:
        # "validation failed" with a validation[] entry, as the Errors page's
        # example (§4.4, U5).
        item = {"field": exc.field, "message": exc.message, "value": exc.value}
        return self._error(400, "VALIDATION_ERROR", "validation failed", [item])

    def media_authorized(self, request: HttpRequest) -> bool:
        """``GET /messages/{id}/media`` takes the Bearer token like the API (§4 (b))."""
        return self._authorized(request)

    def _authorized(self, request: HttpRequest) -> bool:
        # Only the Authorization header counts, never the query, a cookie or
        # the body (§4.1). The scheme is matched case-insensitively, and a
        # bare token is accepted too (§4.1).
        header = next(
            (v for k, v in request.revealed_headers().items() if k.lower() == "authorization"), ""
        ).strip()
        scheme, _, rest = header.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else header
        return bool(token) and hmac.compare_digest(token.encode(), self._token)

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request to ``/send/text`` or ``/send/image``."""
        path = request.url
        if path not in _ROUTES:
            # [G] The 404 is documented (§4.4), its code is the adapter's guess.
            # Other documented endpoints (/send/document, /send/video, ...,
            # §4.5) are not part of the sandbox and answer the same.
            return self._error(404, "NOT_FOUND", f"route {request.method} {path} not found")
        if request.method != "POST":
            # [G] The docs name no 405; a Go router answers one with Allow.
            return self._error(
                405, "METHOD_NOT_ALLOWED", "method not allowed", headers={"allow": "POST"}
            )
        if not self._authorized(request):
            return self.auth_error()
        if not self.device_ready:
            # "WhatsApp session is not connected" (§4.4). [G] The status is
            # not documented; 400, as in the adapter's test data.
            return self._error(400, "DEVICE_NOT_READY", "WhatsApp session is not connected")
        # The body is read as JSON whatever its Content-Type says: the docs
        # state none is checked, and a Go JSON binder does not look.
        body = body_bytes(request)
        try:
            if path == "/send/image":
                return self._image(msgspec.json.decode(body, type=_ImageIn))
            return self._text(msgspec.json.decode(body, type=_TextBody))
        except msgspec.ValidationError as exc:
            # "missing fields ... validation" are 400 (§4.4).
            return self._invalid(_Invalid(_field_of(exc), str(exc)))
        except msgspec.DecodeError:
            # "malformed JSON" is a 400 (§4.4); [G] its code is the one 400
            # code documented.
            return self._error(400, "VALIDATION_ERROR", "invalid JSON body")
        except _Invalid as exc:
            return self._invalid(exc)

    def _text(self, wire: _TextBody) -> HttpResponse:
        chat_jid = _chat_jid(wire.number)
        limit = _CAPS.max_text_chars or 0
        # "text must be between 1 and 4096 characters" (U5's example, §4.2).
        if not 1 <= len(wire.text) <= limit:
            raise _Invalid("text", f"text must be between 1 and {limit} characters", wire.text)
        mentioned = _mentions(wire.mentioned)
        return self._accept(
            chat_jid,
            "text",
            {"presence_sent": False, "presence_duration_seconds": 0},
            text=wire.text,
            reply_to=_quoted_id(wire),
            extra=_extra(mentioned, None),
        )

    def _image(self, wire: _ImageIn) -> HttpResponse:
        chat_jid = _chat_jid(wire.number)
        caption = wire.caption or None
        limit = _CAPS.max_caption_chars or 0
        if caption is not None and len(caption) > limit:
            # "Caption <= 1024 chars" (§4.3).
            raise _Invalid("caption", f"caption must be at most {limit} characters", caption)
        mentioned = _mentions(wire.mentioned)
        reply_to = _quoted_id(wire)
        extra = _extra(mentioned, wire.viewOnce)
        # "image (base64) or image_url, exactly one" (§4.3).
        if (wire.image is None) == (wire.image_url is None):
            raise _Invalid("image", "exactly one of image or image_url is required")
        if wire.image_url is not None:
            url = wire.image_url
            mimetype = _url_mimetype(url)
            metadata: dict[str, Any] = {"image_size_bytes": None, "image_format": mimetype}
            return self._accept(
                chat_jid,
                "image",
                metadata,
                caption=caption,
                image_url=url,
                mimetype=mimetype,
                reply_to=reply_to,
                extra=extra,
            )
        data, mimetype = _decode_image(wire.image or "")
        metadata = {"image_size_bytes": len(data), "image_format": mimetype}
        return self._accept(
            chat_jid,
            "image",
            metadata,
            caption=caption,
            image_bytes=data,
            mimetype=mimetype,
            reply_to=reply_to,
            extra=extra,
        )

    def _accept(
        self, chat_jid: str, kind: str, metadata: dict[str, Any], **fields: Any
    ) -> HttpResponse:
        reply_to = fields.get("reply_to")
        # WUTS looks the quoted id up itself and reports whether it found it
        # (``quoted_message_found``, §4.4); an unknown id is not an error.
        found = reply_to is not None and any(
            m.message_id == reply_to for m in self.outbox.find(provider=self.provider)
        )
        # whatsmeow ids sent from a linked device: 3EB0 and upper-case hex,
        # 20 characters like seed 002's "3EB0XXXX1A2B3C4D5E6F".
        message_id = self.hex_id()
        stored = self.store(
            kind="image" if kind == "image" else "text",
            chat_id=chat_jid,
            message_id=message_id,
            **fields,
        )
        when = _rfc3339(stored.received_at)
        extra = fields.get("extra", {})
        # The success shape of seed 002 (§4.4); the sandbox does no work, so
        # every duration is 0.
        answer = {
            "success": True,
            "message_id": message_id,
            "timestamp": when,
            "status": "sent",
            "chat_jid": chat_jid,
            "metadata": {
                "device_id": self.device_id,
                "user_id": self.user_id,
                "processing_time_ms": 0,
                **metadata,
                **({"download_time_ms": 0, "upload_time_ms": 0} if kind == "image" else {}),
                "mentions_processed": len(extra.get("mentions", ())),
                "quoted_message_found": found,
                **({"view_once_enabled": bool(extra.get("view_once"))} if kind == "image" else {}),
                "sent_at": when,
            },
        }
        return HttpResponse(status=200, headers=_JSON, body=msgspec.json.encode(answer))


def _chat_jid(number: str) -> str:
    """The chat a ``number`` names, as WUTS writes it in ``chat_jid`` (§4.4, §5)."""
    value = number.strip()
    if _GROUP.fullmatch(value):
        return value
    digits = _NUMBER_NOISE.sub("", value)
    if _PHONE.fullmatch(digits):
        return f"{digits}@s.whatsapp.net"
    # "invalid JID" is a 400 (§4.4). The recipient "may be a phone number or a
    # group JID" (§4.2): user JIDs, @lid ids and channels are refused.
    raise _Invalid("number", "number must be 10-15 digits or a group JID (@g.us)", number)


def _mentions(mentioned: list[str] | None) -> list[str]:
    """``mentioned``, checked: user JIDs only (§4.3)."""
    for index, jid in enumerate(mentioned or ()):
        if not _USER_JID.fullmatch(jid):
            raise _Invalid(
                f"mentioned[{index}]", "mentioned must hold user JIDs (@s.whatsapp.net)", jid
            )
    return list(mentioned or ())


def _quoted_id(wire: _TextBody | _ImageIn) -> str | None:
    """``quoted.key.id``, the bare id of the message replied to (§4.2)."""
    if wire.quoted is None:
        return None
    ident = wire.quoted.key.id.strip()
    if not ident:
        raise _Invalid("quoted.key.id", "quoted.key.id must not be empty", wire.quoted.key.id)
    return ident


def _extra(mentioned: list[str], view_once: bool | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if mentioned:
        extra["mentions"] = mentioned
    if view_once is not None:
        extra["view_once"] = view_once
    return extra


def _url_mimetype(url: str) -> str | None:
    """Check an ``image_url``; its type from its name, when it shows one.

    WUTS downloads the URL itself (30 s timeout, §4.3); the sandbox cannot,
    so it refuses what a download would show is not an image it takes (a
    ``.gif``, a ``.webp``) and leaves a URL that names no type alone, as the
    adapter does.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Invalid("image_url", "image_url must be an http(s) URL", url)
    mimetype = guess_from_name(url)
    if mimetype is not None and not mimetype.startswith("image/"):
        mimetype = None
    if mimetype is not None and mimetype not in _CAPS.image_types:
        raise _Invalid("image_url", f"unsupported image type {mimetype}", url)
    return mimetype


def _decode_image(value: str) -> tuple[bytes, str]:
    """The bytes of a base64 ``image`` and their type, checked (§4.3).

    The ``data:`` prefix, when present, must state a type WUTS takes and the
    one the bytes really are; without it the type is read from the bytes.
    """
    text = value.strip()
    claimed: str | None = None
    if text.startswith("data:"):
        prefix = _DATA_URI.match(text)
        if prefix is None:
            raise _Invalid("image", "image must be base64 or a data:<type>;base64, URI")
        claimed = prefix.group(1).lower()
        if claimed == "image/jpg":  # the common misspelling, as the adapter takes it
            claimed = "image/jpeg"
        if claimed not in _CAPS.image_types:
            raise _Invalid("image", f"unsupported image type {claimed}", claimed)
        text = text[prefix.end() :]
    limit = _CAPS.max_media_bytes or 0
    # Refuse an oversized image before decoding it: 4 base64 characters hold 3 bytes.
    if len(text) > 4 * ((limit + 2) // 3):
        raise _Invalid("image", f"image exceeds {limit} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("image", "image is not valid base64") from None
    if not data:
        raise _Invalid("image", "image is empty")
    if len(data) > limit:
        raise _Invalid("image", f"image exceeds {limit} bytes", len(data))
    found = sniff(data[:SNIFF_BYTES])
    if found is None or found not in _CAPS.image_types:
        raise _Invalid("image", "image is not a JPEG or PNG image", found)
    if claimed is not None and claimed != found:
        raise _Invalid("image", f"image is {found}, not {claimed}", claimed)
    return data, found
