"""WUTS (api.wuts.com.br): a hosted, multi-tenant gateway on a whatsmeow-style backend.

Wire format (providers.md §4, seed 002):

- ``Authorization: Bearer <token>`` on every call, and nothing else: the token
  names user, tenant and device, and is read only from that header (§4.1).
- ``POST {base}/send/text`` with ``{number, text, mentioned?, quoted?}`` and
  ``POST {base}/send/image`` with ``{number, image | image_url, caption?,
  viewOnce, mentioned?, quoted?}``, both JSON (§4.2, §4.3). The field names
  follow Evolution API v2.
- ``number`` is bare digits for a user, or a group JID (``@g.us``) as is
  (§4.2, §5).
- The answer is ``{success, message_id, timestamp, status, chat_jid,
  metadata}``; ``message_id`` is the bare WhatsApp id (``3EB0…``) (§4.4).
- Errors are ``{success: false, error, error_code, timestamp, validation?}``,
  to be told apart by ``error_code`` and the status, never by the text
  (§4.4). Some endpoints answer a bare ``{"error": "…"}`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from .._mediatype import guess_from_name
from .._redact import Secret
from ..errors import (
    AuthenticationError,
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)
from ..http import Body, HttpRequest, HttpResponse
from ..models import Image, InboundMessage, Message, Recipient, SendResult, Status
from ._inbound import media_get, media_location
from .base import (
    HTTP_STATUS_RULES,
    WHATSMEOW_USER_SERVER,
    Capabilities,
    ErrorRule,
    bare_message_id,
    check_message,
    decode_json,
    error_from_response,
    image_mimetype,
    nonempty_str,
    unreadable_answer,
)
from .bodies import json_with_base64
from .config import DsnFormat, base_url_setting, header_token_setting

__all__ = ["WutsAdapter"]

DEFAULT_BASE_URL = "https://api.wuts.com.br"


# "bare digits (10-15, `+`, spaces and dashes stripped)" (providers.md §5).
# The model takes 7 to 15 digits (every E.164 number in use); WUTS refuses
# the shortest ones, so they are refused here, before any I/O.
_MIN_NUMBER_DIGITS = 10


class _Key(msgspec.Struct):
    id: str


class _Quoted(msgspec.Struct):
    # The documented sample also sends ``key.fromMe`` and
    # ``message.conversation`` (the quoted text, §4.2). Neither is known from
    # a message id alone, so only the id is sent. [I] The gateway looks the
    # id up itself: its answer reports ``quoted_message_found`` (§4.4).
    key: _Key


class _TextBody(msgspec.Struct, omit_defaults=True):
    number: str
    text: str
    mentioned: list[str] | None = None
    quoted: _Quoted | None = None


class _ImageBody(msgspec.Struct, omit_defaults=True, kw_only=True):
    # Keys in the order of seed 002's sample (number, image_url, caption,
    # delay, viewOnce, mentioned); ``delay`` is not sent (no such setting).
    number: str
    image: str | None = None
    image_url: str | None = None
    caption: str | None = None
    # Always sent, false included, as the documented sample does (seed 002):
    # the answer's ``metadata.view_once_enabled`` echoes it, and an explicit
    # value leaves nothing to a default we cannot see.
    viewOnce: bool  # noqa: N815 - wire name
    mentioned: list[str] | None = None
    quoted: _Quoted | None = None


class _Answer(msgspec.Struct):
    """What we read of any WUTS answer, success or error.

    Every field is typed loosely: an unexpected type in an answer must never
    fail a send the gateway accepted (``metadata`` is skipped unread).
    """

    success: Any = None
    message_id: Any = None
    status: Any = None
    chat_jid: Any = None
    timestamp: Any = None
    error: Any = None
    error_code: Any = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Answer)

#: ``error_code`` values, which win over the status (U5: "branch on
#: error_code and the HTTP status"). Only VALIDATION_ERROR and
#: DEVICE_NOT_READY appear in the stored docs [F]; the catalog is truncated
#: (§4.4), so the others are the names its uppercase style suggests [G].
#: Each agrees with the status it would come with, so a wrong guess changes
#: nothing, and an unknown code falls back to the status.
_CODE_RULES: dict[str, ErrorRule] = {
    "VALIDATION_ERROR": (Rejected, Outcome.REJECTED, False),
    # "WhatsApp session is not connected": nothing was sent; it may work once
    # the device reconnects (§5 "DEVICE_NOT_READY after reconnect").
    "DEVICE_NOT_READY": (ProviderUnavailable, Outcome.NOT_SENT, True),
    "UNAUTHORIZED": (AuthenticationError, Outcome.REJECTED, False),
    "INVALID_TOKEN": (AuthenticationError, Outcome.REJECTED, False),
    "FORBIDDEN": (AuthenticationError, Outcome.REJECTED, False),
    "NOT_FOUND": (Rejected, Outcome.REJECTED, False),
    "RATE_LIMITED": (RateLimited, Outcome.NOT_SENT, True),
}

#: WUTS ``status`` strings (§4.4 "sent"; the status API's ``pending →
#: delivered → read → played``, webhooks.md §4).
_STATUS: dict[str, Status] = {
    "pending": Status.QUEUED,
    "queued": Status.QUEUED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.PLAYED,
    "failed": Status.FAILED,
}


class WutsAdapter:
    """Send through the WUTS API.

    Args:
        token: the user's API token (a UUID), sent as ``Authorization: Bearer
            <token>``. Kept as a :class:`~wamsg.Secret`; a value given with
            its ``Bearer`` prefix is taken without it.
        base_url: the API root; change it only for a proxy or the sandbox.
    """

    name: ClassVar[str] = "wuts"
    #: ``wuts://TOKEN@api.wuts.com.br`` (docs/configuration.md).
    dsn: ClassVar[DsnFormat] = DsnFormat(user="token")
    capabilities: ClassVar[Capabilities] = Capabilities(
        reply=True,
        mentions_text=True,
        mentions_image=True,
        view_once=True,
        media_url=True,
        media_base64=True,
        # [I] The image page names no types. WhatsApp image messages are
        # JPEG or PNG (a WebP is a sticker, a GIF a video), and the sample's
        # ``metadata.image_format`` is "image/png" (seed 002).
        image_types=frozenset({"image/jpeg", "image/png"}),
        # text of 1 to 4096 characters (validation example, §4.2).
        max_text_chars=4096,
        # "Caption ≤ 1024 chars" (working with media, §4.3).
        max_caption_chars=1024,
        # WUTS states no size limit; 16 MiB is WhatsApp's own limit for an
        # image sent from a linked device, which a whatsmeow backend is.
        max_media_bytes=16 * 1024 * 1024,
    )

    def __init__(self, *, token: str | Secret, base_url: str = DEFAULT_BASE_URL) -> None:
        value = Secret(token).reveal().strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer":
            value = rest.strip()
        if not value:
            raise ConfigError(f"{self.name}: token is empty")
        header_token_setting(self.name, "token", value)
        self._token = Secret(value)
        self.base_url = base_url_setting(self.name, base_url)
        self._headers: tuple[tuple[str, str | Secret], ...] = (
            # The whole header value is the secret, so that no log of the
            # headers can show it.
            ("Authorization", Secret(f"Bearer {value}")),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        )
        self._text_url = f"{self.base_url}/send/text"
        self._image_url = f"{self.base_url}/send/image"

    def __repr__(self) -> str:
        return f"WutsAdapter(base_url={self.base_url!r})"

    def encode(self, message: Message) -> HttpRequest:
        """Build the ``/send/text`` or ``/send/image`` request (no I/O)."""
        check_message(self.name, self.capabilities, message)
        number = _number(message.recipient)
        mentioned = [_mention(m) for m in message.mentioned] or None
        quoted = _quoted(message.reply_to)
        if isinstance(message, Image):
            return self._image_request(number, message, mentioned, quoted)
        return HttpRequest(
            method="POST",
            url=self._text_url,
            headers=self._headers,
            body=_ENCODER.encode(
                _TextBody(number=number, text=message.text, mentioned=mentioned, quoted=quoted)
            ),
        )

    def _image_request(
        self,
        number: str,
        message: Image,
        mentioned: list[str] | None,
        quoted: _Quoted | None,
    ) -> HttpRequest:
        media = message.image
        body = _ImageBody(
            number=number,
            caption=message.caption or None,
            viewOnce=message.view_once,
            mentioned=mentioned,
            quoted=quoted,
        )
        if media.url is not None:
            # WUTS downloads the URL itself (30 s timeout, §4.3) and no type
            # is sent, so one is required only when it can be told: a .gif
            # or a gif mimetype is refused here, an extension-less URL left
            # to the gateway.
            if media.mimetype or guess_from_name(media.url):
                image_mimetype(self.name, self.capabilities, message)
            body.image_url = media.url
            payload: Body = _ENCODER.encode(body)
        else:
            # Base64 "with or without a data:image/png;base64, prefix; the
            # prefix supplies the MIME" (§4.3). The prefix is sent, with the
            # type read from the bytes, so that WUTS need not guess it.
            mimetype = image_mimetype(self.name, self.capabilities, message)
            body.image = ""  # a placeholder, kept in its place in the key order
            payload = json_with_base64(
                msgspec.to_builtins(body), media, key_path=("image",), data_uri_mimetype=mimetype
            )
        return HttpRequest(
            method="POST", url=self._image_url, headers=self._headers, body=payload, kind="media"
        )

    def media_request(self, message: InboundMessage) -> HttpRequest:
        """``GET /messages/{message_id}/media`` with the Bearer token
        (docs/webhooks.md §4 (b); an expired CDN copy answers
        ``{"success": false, "status": "retry_requested"}``).
        """
        if message.media is None or message.media.fetch == "unavailable":
            media_location(self.name, self.base_url, message)  # raises: nothing to fetch
        url = f"{self.base_url}/messages/{quote(message.message_id, safe='')}/media"
        auth = tuple((name, value) for name, value in self._headers if name == "Authorization")
        return media_get(url, headers=auth)

    def decode(self, response: HttpResponse) -> SendResult:
        """Read WUTS's answer (no I/O)."""
        secrets = (self._token,)
        if not 200 <= response.status < 300:
            raise self._error(response, None)
        answer = decode_json(_DECODER, response.body)
        if answer is None:
            # Not a JSON object (empty, a proxy's page, invalid UTF-8, nested
            # past the recursion limit). The gateway said 2xx, so the message
            # may well have gone out: never not_sent.
            raise unreadable_answer(self.name, response, secrets)
        if answer.success is not True and (
            answer.success is False
            or answer.error not in (None, "", False)
            or answer.error_code not in (None, "")
        ):
            # A 2xx carrying the error envelope is still a failure: mapped
            # by its code, and as a 400 when the code is not known.
            raise self._error(response, 400)
        message_id = nonempty_str(answer.message_id)
        return SendResult(
            provider=self.name,
            message_id=message_id,
            status=_status(answer.status),
            chat_id=nonempty_str(answer.chat_jid),
            timestamp=_timestamp(answer.timestamp),
            short_id=message_id,  # WUTS ids are already the bare WhatsApp id
            raw=response.body,
        )

    def _error(self, response: HttpResponse, status: int | None) -> ProviderError:
        # The Errors page gives 400 (malformed or invalid input), 401 ("bad
        # bearer"), 403 ("valid token but not permitted") and 404, which mean
        # what the shared rules say; the rest of its catalog is cut off in
        # the stored excerpt (§4.4), so 429 and 5xx keep the shared meanings
        # too (a 500 may come after the message went out).
        return error_from_response(
            self.name,
            response,
            status_rules=HTTP_STATUS_RULES,
            code_rules=_CODE_RULES,
            status=status,
            secrets=(self._token,),
        )


def _number(recipient: Recipient) -> str:
    """``number``: bare digits for a user, a group JID as is (§4.2, §5)."""
    if recipient.kind == "phone":
        if len(recipient.value) < _MIN_NUMBER_DIGITS:
            raise InvalidMessage(
                f"wuts takes phone numbers of {_MIN_NUMBER_DIGITS} to 15 digits with the "
                f"country code; {recipient.masked} has {len(recipient.value)}"
            )
        return recipient.value
    if recipient.is_group:
        return recipient.value
    # Channels, @lid ids and broadcast lists are not documented targets, and
    # a gateway that strips non-digits from ``number`` could turn one into a
    # phone number: refuse rather than guess.
    raise InvalidMessage(
        f"wuts sends to phone numbers and groups (@g.us) only, not to {recipient.masked}"
    )


def _mention(recipient: Recipient) -> str:
    """A ``mentioned`` entry: the user's JID ``<digits>@s.whatsapp.net`` (§4.3)."""
    if recipient.kind != "phone":
        raise InvalidMessage(f"wuts mentions users by phone number, not {recipient.masked}")
    return recipient.jid(WHATSMEOW_USER_SERVER)


def _quoted(reply_to: str | None) -> _Quoted | None:
    """``quoted.key.id``: the bare message id WUTS returns as ``message_id``.

    An id in the serialized form of WAHA-style gateways (``true_<chat>_<id>``,
    ``false_<group>_<id>_<participant>``) is cut down to its ``<id>``, so that
    ids from another gateway's results still work.
    """
    if reply_to is None:
        return None
    return _Quoted(key=_Key(id=bare_message_id(reply_to)))


def _status(value: Any) -> Status:
    """The ``status`` string mapped; anything else is ``UNKNOWN``."""
    return _STATUS.get(value.lower(), Status.UNKNOWN) if isinstance(value, str) else Status.UNKNOWN


def _timestamp(value: Any) -> datetime | None:
    """An RFC 3339 ``timestamp`` (§4.4) as UTC; a zone-less one is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            return when.replace(tzinfo=UTC)
        # An offset can carry a time at the ends of the calendar past them
        # ("0001-01-01T00:00:00+01:00" is in year 0 in UTC): OverflowError.
        # WUTS documents only "Z" times (§4.4), so such a value is noise from
        # whatever answered, not a time worth reporting.
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
