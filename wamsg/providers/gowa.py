"""gowa (aldinokemal/go-whatsapp-web-multidevice v9.2.0): a self-hosted whatsmeow gateway.

Wire format (providers.md §3, §5, seed 001, ``docs/openapi.yaml`` of v9.2.0):

- Self-hosted, so there is no default URL: ``base_url`` is where the server
  listens, with its ``APP_BASE_PATH`` when one is set (§3.1).
- Optional HTTP Basic auth (``APP_BASIC_AUTH``), and an ``X-Device-Id``
  header naming the WhatsApp device to send from (§3.1).
- Text: ``POST {base}/send/message``, JSON ``{phone, message,
  reply_message_id?, mentions?}`` (§3.2).
- Image: ``POST {base}/send/image``, multipart/form-data with ``phone``,
  ``caption``, ``view_once``, ``reply_message_id`` and exactly one of an
  ``image`` file part (JPEG or PNG) or ``image_url`` (§3.3).
- ``phone`` is ``<digits>@s.whatsapp.net`` for a user; group, channel and
  ``@lid`` ids pass through (§3.4).
- Success is HTTP 200 ``{code: "SUCCESS", message, results: {message_id,
  status}}``; ``message_id`` is the bare whatsmeow id (§3.5).
- Errors are ``{code: "<UPPER_SNAKE>", message, results?}`` with the status
  taken from the error type (§3.6); a Basic-auth failure is Fiber's plain 401.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from .._redact import Secret, redact
from ..errors import (
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    UnsupportedFeature,
)
from ..http import HttpRequest, HttpResponse
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
)
from .bodies import FilePart, multipart
from .config import DsnFormat, base_url_setting, required_setting

__all__ = ["GowaAdapter"]


class _TextBody(msgspec.Struct, omit_defaults=True):
    # Field order as in the spec's /send/message schema. ``is_forwarded`` and
    # ``duration`` exist too (§3.2) but wamsg has no setting for them, so they
    # are left to the gateway's defaults.
    phone: str
    message: str
    reply_message_id: str | None = None
    mentions: tuple[str, ...] = ()


class _Envelope(msgspec.Struct):
    """gowa's ``ResponseData`` (§3.5, §3.6): only the fields we read.

    Typed loosely: an unexpected type in a 2xx must never fail a send that the
    gateway may have carried out.
    """

    code: Any = None
    message: Any = None
    results: Any = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Envelope)

#: The one table of gowa's error codes (providers.md §3.6, §5 "Retry" rows).
#: The code decides, whatever the status; statuses without a code fall back
#: to :data:`~wamsg.providers.base.HTTP_STATUS_RULES`.
_CODE_RULES: dict[str, ErrorRule] = {
    # 400s from field validation and JID checks (G4, G6, G8): the same
    # request gets the same answer.
    "VALIDATION_ERROR": (Rejected, Outcome.REJECTED, False),
    "INVALID_JID": (Rejected, Outcome.REJECTED, False),
    "INVALID_REQUEST": (Rejected, Outcome.REJECTED, False),
    "NOT_FOUND": (Rejected, Outcome.REJECTED, False),
    # The device middleware answers these before any handler runs (G9): our
    # settings are wrong, not the message. The message says what to set.
    "DEVICE_ID_REQUIRED": (ProviderConfigError, Outcome.REJECTED, False),
    "DEVICE_NOT_FOUND": (ProviderConfigError, Outcome.REJECTED, False),
    # 401 AUTHENTICATION_ERROR is not about our credentials: the WhatsApp
    # device is not connected or not logged in (G6 MustLogin, checked before
    # anything is sent), so nothing went out. Sending again does not help
    # until the device reconnects or someone links it again (§5: "only after
    # reconnect"), so it is not retryable; another gateway may take it.
    "AUTHENTICATION_ERROR": (ProviderUnavailable, Outcome.NOT_SENT, False),
    # 408 CONTEXT_ERROR: the request's context ended, possibly while whatsmeow
    # waited for WhatsApp's ack, so the message may be out (G8).
    "CONTEXT_ERROR": (ProviderUnavailable, Outcome.UNKNOWN, False),
    # WhatsApp's error 463, a reach-out timelock on new contacts that lasts
    # hours: nothing was sent, and retrying soon only prolongs it (§3.6, §5).
    "WA_REACHOUT_TIMELOCK": (RateLimited, Outcome.NOT_SENT, False),
    # Any other error or panic, including whatsmeow send errors (G9, G5).
    "INTERNAL_SERVER_ERROR": (ProviderUnavailable, Outcome.UNKNOWN, False),
    # The media upload to WhatsApp's servers runs before SendMessage (G5), so
    # nothing was sent; upload failures are network trouble worth a retry.
    "UPLOAD_MEDIA_ERROR": (ProviderUnavailable, Outcome.NOT_SENT, True),
    # The device has no WhatsApp client (ErrWaCLI, before sending; G8).
    "INVALID_WA_CLI": (ProviderUnavailable, Outcome.NOT_SENT, False),
    # The device manager is not initialized: the request was not handled (G9).
    "DEVICE_MANAGER_UNAVAILABLE": (ProviderUnavailable, Outcome.NOT_SENT, True),
    # The 45 s request deadline passed, maybe after the send (G9).
    "GATEWAY_TIMEOUT": (ProviderUnavailable, Outcome.UNKNOWN, False),
}

#: The same table for an error code inside a 2xx body, which gowa itself never
#: sends (its status comes from the error type, §3.6): whatever a proxy meant,
#: after a 2xx nobody can say the message was not sent.
_ACCEPTED_CODE_RULES: dict[str, ErrorRule] = {
    code: (cls, Outcome.UNKNOWN, False) if outcome is Outcome.NOT_SENT else (cls, outcome, retry)
    for code, (cls, outcome, retry) in _CODE_RULES.items()
}

#: What to tell the caller for the codes that mean "fix the settings"; ``{device}``
#: is the device_id setting as configured.
_CONFIG_HINTS = {
    "DEVICE_ID_REQUIRED": (
        "gowa has no device or several: pass device_id=<device id or its JID> to the gowa "
        "adapter (sent as the X-Device-Id header)"
    ),
    "DEVICE_NOT_FOUND": (
        "check device_id= (now {device}, sent as the X-Device-Id header): it must be a device "
        "id or JID registered on this gowa server"
    ),
}

#: What the upload validator lets through: "please use jpg/jpeg/png" (§3.3).
_UPLOAD_TYPES = frozenset({"image/jpeg", "image/png"})
# gowa names its working copy after our filename, and picks the encoder of
# its thumbnail (and of the 600 px copy it makes by default, see below) from
# that name's extension (G5: imaging.Save), so the extension must match.
_UPLOAD_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}
#: Extensions DownloadImageFromURL accepts, compared lower-cased (§3.3, G7).
_URL_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_URL_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_STEM = 48
# Tells apart the upload names of file objects and streams (which cannot be
# hashed without reading them) across processes sending to one server.
_PROCESS_SALT = secrets.token_hex(16)

# results.status: "Message sent to 628…@s.whatsapp.net (server timestamp:
# 2026-08-22 10:15:30 +0700 WIB)", the timestamp in Go's time.Time.String()
# layout (G5 SendText/SendImage).
_STATUS_TEXT = re.compile(r"sent to (?P<chat>\S+@\S+) \(server timestamp: (?P<ts>[^)]*)\)")
_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-]\d{2})(\d{2})")


class GowaAdapter:
    """Send through a gowa (go-whatsapp-web-multidevice) server.

    Args:
        base_url: where the server listens, with its ``APP_BASE_PATH`` if it
            has one, e.g. ``http://localhost:3000`` or ``https://host/gowa``.
        device_id: the device (a gowa device id, or its WhatsApp JID) to send
            from, sent as ``X-Device-Id``. Optional, but set it: without it
            gowa picks the only device, and answers ``DEVICE_ID_REQUIRED`` as
            soon as a second one is added, so always sending it keeps a
            multi-device server safe (providers.md §3.1).
        username: the HTTP Basic user, when the server runs with
            ``APP_BASIC_AUTH``. Give both ``username`` and ``password`` or
            neither.
        password: the HTTP Basic password. Kept as a :class:`~wamsg.Secret`.
    """

    name: ClassVar[str] = "gowa"
    #: ``gowa+http://USERNAME:PASSWORD@localhost:3000?device_id=...`` (docs/configuration.md).
    dsn: ClassVar[DsnFormat] = DsnFormat(user="username", password="password")  # noqa: S106
    capabilities: ClassVar[Capabilities] = Capabilities(
        reply=True,
        mentions_text=True,
        # /send/image has no mentions field (§3.3).
        mentions_image=False,
        view_once=True,
        media_url=True,
        media_upload=True,
        media_base64=False,
        # Uploads: JPEG and PNG only (§3.3). URLs may also end in .webp, which
        # gowa converts to PNG; that is checked separately.
        image_types=_UPLOAD_TYPES,
        # No length check in code (§3.2).
        max_text_chars=None,
        # "Supports up to 3000 characters" (seed 001); not enforced by gowa.
        max_caption_chars=3000,
        # "Maximum file size: 16MB" (seed 001).
        max_media_bytes=16 * 1024 * 1024,
    )

    def __init__(
        self,
        *,
        base_url: str,
        device_id: str | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
    ) -> None:
        self.base_url = base_url_setting(self.name, base_url)
        self.device_id = (
            None if device_id is None else required_setting(self.name, "device_id", device_id)
        )
        headers: list[tuple[str, str | Secret]] = []
        #: Scrubbed from error text: the Basic header, its token and the password.
        self._secrets: tuple[Secret, ...] = ()
        if username is not None or password is not None:
            self._secrets = self._basic_auth(username, password)
            headers.append(("Authorization", self._secrets[0]))
        if self.device_id is not None:
            # gowa URL-decodes the header (§3.1), so the id is percent-encoded:
            # a header value cannot carry spaces at its ends or non-ASCII text.
            headers.append(("X-Device-Id", quote(self.device_id, safe="@:")))
        self._headers = tuple(headers)
        self._text_url = f"{self.base_url}/send/message"
        self._image_url = f"{self.base_url}/send/image"

    def _basic_auth(
        self, username: str | None, password: str | Secret | None
    ) -> tuple[Secret, Secret, Secret]:
        """(``Basic <token>`` header, token, password), all secret (RFC 7617)."""
        if username is None or password is None:
            raise ConfigError(
                f"{self.name}: give both username and password for HTTP Basic auth, or neither"
            )
        if not isinstance(username, str) or not username:
            raise ConfigError(f"{self.name}: username is empty")
        if ":" in username:  # RFC 7617 §2: the user-id cannot contain a colon
            raise ConfigError(f"{self.name}: username must not contain ':'")
        secret = Secret(password)
        if not secret.reveal():
            raise ConfigError(f"{self.name}: password is empty")
        # RFC 7617 §2.1: user-pass is encoded as UTF-8.
        token = base64.b64encode(f"{username}:{secret.reveal()}".encode()).decode("ascii")
        return Secret(f"Basic {token}"), Secret(token), secret

    def __repr__(self) -> str:
        device = redact(self.device_id) if self.device_id is not None else None
        return (
            f"GowaAdapter(base_url={self.base_url!r}, device_id={device!r}, "
            f"basic_auth={bool(self._secrets)})"
        )

    # ------------------------------------------------------------------
    # Requests
    # ------------------------------------------------------------------

    def encode(self, message: Message) -> HttpRequest:
        """Build the send request (no I/O)."""
        check_message(self.name, self.capabilities, message)
        phone = self._phone(message.recipient)
        reply = bare_message_id(message.reply_to) if message.reply_to is not None else None
        if isinstance(message, Image):
            return self._encode_image(phone, reply, message)
        return HttpRequest(
            method="POST",
            url=self._text_url,
            headers=(
                *self._headers,
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ),
            body=_ENCODER.encode(
                _TextBody(
                    phone=phone,
                    message=message.text,
                    reply_message_id=reply,
                    mentions=tuple(self._mention(m) for m in message.mentioned),
                )
            ),
        )

    def _phone(self, recipient: Recipient) -> str:
        if recipient.value.endswith("@broadcast"):
            # gowa sends to users, groups, channels and @lid ids only (§3.4).
            raise UnsupportedFeature(
                f"{self.name} cannot send to status@broadcast",
                provider=self.name,
                feature="broadcast",
            )
        return recipient.jid(WHATSMEOW_USER_SERVER)

    def _mention(self, mention: Recipient) -> str:
        # "phones (international, no leading 0)" (§3.2); gowa silently drops
        # a mention it cannot resolve, so anything else is refused here.
        if mention.kind != "phone":
            raise InvalidMessage(
                f"{self.name} mentions are phone numbers; {mention.masked} is a chat id"
            )
        return mention.value

    def _encode_image(self, phone: str, reply: str | None, message: Image) -> HttpRequest:
        media = message.image
        fields: list[tuple[str, str | FilePart]] = [("phone", phone)]
        if message.caption:
            fields.append(("caption", message.caption))
        # Fiber's form binder parses bools with strconv.ParseBool: "true"/"false".
        fields.append(("view_once", "true" if message.view_once else "false"))
        if reply is not None:
            fields.append(("reply_message_id", reply))
        # No "compress" field: the handler presets Compress = true before
        # binding, and the struct field has a json tag but no form tag, so a
        # multipart compress=false may be ignored (§3.3, G2/G3) and gowa sends
        # a copy resized to 600 px wide. Sending a value the binder may drop
        # would only pretend to control it.
        if media.url is not None:
            self._check_image_url(media.url, media.mimetype)
            # Exactly one source: with both, gowa silently prefers the URL (§3.3).
            fields.append(("image_url", media.url))
        else:
            mimetype = image_mimetype(self.name, self.capabilities, message)
            # The part's Content-Type is what gowa checks, not the bytes, so it
            # is always set, to the type read from the bytes (§3.3, G4).
            fields.append(
                (
                    "image",
                    FilePart(
                        media=media,
                        filename=_upload_name(message, mimetype),
                        content_type=mimetype,
                    ),
                )
            )
        body, content_type = multipart(fields)
        return HttpRequest(
            method="POST",
            url=self._image_url,
            headers=(
                *self._headers,
                ("Content-Type", content_type),
                ("Accept", "application/json"),
            ),
            body=body,
            kind="media",
        )

    def _check_image_url(self, url: str, mimetype: str | None) -> None:
        # gowa downloads the URL itself and refuses, with a 500 that says
        # nothing about whether it sent, any name whose extension is not
        # .jpg/.jpeg/.png/.webp. It takes the name as the text after the last
        # "/" up to the first "?" of the raw URL (G7 DownloadImageFromURL), and
        # Go's filepath.Ext; the same rule here refuses those URLs before I/O.
        name = url.rsplit("/", 1)[-1].split("?", 1)[0]
        dot = name.rfind(".")
        extension = name[dot:].lower() if dot >= 0 else ""
        if extension not in _URL_EXTENSIONS:
            raise InvalidMessage(
                f"{self.name} only fetches image URLs whose path ends in .jpg, .jpeg, .png or "
                f".webp (got {redact(extension or 'no extension')!r}); upload the bytes instead"
            )
        if mimetype is not None and mimetype not in _URL_TYPES:
            raise InvalidMessage(
                f"{self.name} does not accept {mimetype} images; use JPEG, PNG or WebP"
            )

    # ------------------------------------------------------------------
    # Answers
    # ------------------------------------------------------------------

    def media_request(self, message: InboundMessage) -> HttpRequest:
        """The GET of an incoming message's image: ``payload.image.path`` below
        base_url, behind gowa's Basic auth (``{AppBasePath}/statics``,
        docs/webhooks.md §1 (b)). An ``mmg.whatsapp.net`` URL (auto-download
        off) is WhatsApp's encrypted copy: refused as unavailable.
        """
        return media_get(media_location(self.name, self.base_url, message), headers=self._headers)

    def decode(self, response: HttpResponse) -> SendResult:
        """Read gowa's answer (no I/O)."""
        accepted = 200 <= response.status < 300
        # Unreadable (not JSON, invalid UTF-8, nested past the recursion
        # limit) is None, and is no "SUCCESS" either.
        envelope = decode_json(_DECODER, response.body) if accepted else None
        if envelope is None or envelope.code != "SUCCESS":
            # An error status, or a 2xx without "SUCCESS": the latter is a
            # failure the gateway may have acted on, and with no rule for its
            # status error_from_response makes it a ProviderError, outcome
            # unknown (a code in it maps through _ACCEPTED_CODE_RULES, which
            # never says not_sent after a 2xx).
            raise self._error(response, _ACCEPTED_CODE_RULES if accepted else _CODE_RULES)
        results = envelope.results if isinstance(envelope.results, dict) else {}
        message_id = nonempty_str(results.get("message_id"))
        chat_id, timestamp = _parse_status_text(results.get("status"))
        return SendResult(
            provider=self.name,
            # Bare whatsmeow ids are both the gateway's id and the short id (§3.5, §5).
            message_id=message_id,
            short_id=message_id,
            # gowa answers after whatsmeow's SendMessage got the server's ack.
            status=Status.SENT,
            chat_id=chat_id,
            timestamp=timestamp,
            raw=response.body,
        )

    def _error(self, response: HttpResponse, code_rules: dict[str, ErrorRule]) -> ProviderError:
        error = error_from_response(
            self.name,
            response,
            # A 401 without a gowa code is Fiber's Basic-auth middleware
            # (WWW-Authenticate, plain text): a credentials error (§3.1).
            status_rules=HTTP_STATUS_RULES,
            code_rules=code_rules,
            secrets=self._secrets,
        )
        hint = _CONFIG_HINTS.get(error.error_code or "")
        if hint is None or not isinstance(error, ProviderConfigError):
            return error
        device = repr(redact(self.device_id)) if self.device_id is not None else "unset"
        return ProviderConfigError(
            f"{error.message}; {hint.format(device=device)}",
            provider=error.provider,
            status_code=error.status_code,
            error_code=error.error_code,
            gateway_message=error.gateway_message,
            retryable=error.retryable,
            retry_after=error.retry_after,
            outcome=error.outcome,
            body_excerpt=error.body_excerpt,
        )


def _upload_name(message: Image, mimetype: str) -> str:
    """The file name of an uploaded image: the caller's stem, a digest, our extension.

    gowa saves each upload as ``<send dir>/<our file name>`` and reads it back
    to send, shared by every request and device (G5 SendImage), so two sends
    with the same name at once could send one recipient the other's image.
    The name therefore carries a digest of what is being sent: the same
    message gets the same name, different messages different ones.
    """
    media = message.image
    raw_name = re.split(r"[\\/]", media.filename or "")[-1]
    stem = raw_name.rsplit(".", 1)[0] if "." in raw_name else raw_name
    stem = _UNSAFE_NAME.sub("_", stem).strip("_")[:_MAX_STEM] or "image"
    digest = hashlib.sha256()
    for part in (
        message.recipient.value,
        message.caption or "",
        message.reply_to or "",
        str(message.view_once),
        str(media.size),
        media.filename or "",
    ):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    if media.data is not None:
        digest.update(media.data)  # in memory already: hashing reads no file
    elif media.path is not None:
        digest.update(media.path.encode("utf-8", "surrogateescape"))
    else:
        # A file object or a stream can only be told apart by identity.
        source = media.file if media.file is not None else media.stream
        digest.update(f"{_PROCESS_SALT}:{id(source)}".encode())
    return f"{stem}-{digest.hexdigest()[:16]}{_UPLOAD_EXTENSIONS[mimetype]}"


def _parse_status_text(status: Any) -> tuple[str | None, datetime | None]:
    """(chat id, server time) from ``results.status``; (None, None) when absent or odd."""
    if not isinstance(status, str):
        return None, None
    found = _STATUS_TEXT.search(status)
    if found is None:
        return None, None
    return found.group("chat"), _parse_go_time(found.group("ts"))


def _parse_go_time(text: str) -> datetime | None:
    """A Go ``time.Time.String()`` value in UTC, or None (also for Go's zero time)."""
    found = _GO_TIME.match(text.strip())
    if found is None:
        return None
    # Rewritten as ISO 8601 for the C parser rather than read with strptime,
    # which cost ~20 µs a call (most of a send answer's decode). The same
    # values are refused (ValueError: a field out of range, an offset of
    # 24 h or more, offset minutes past 59), and the shift to UTC overflows
    # at the ends of the calendar just as before.
    date, clock, frac, off_hours, off_minutes = found.groups()
    if off_minutes > "59":  # two digits: fromisoformat would take "+0490"
        return None
    micros = frac[:6].ljust(6, "0") if frac else "000000"
    try:
        when = datetime.fromisoformat(
            f"{date}T{clock}.{micros}{off_hours}:{off_minutes}"
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # whatsmeow leaves the timestamp at Go's zero time when the server gave none.
    return when if when.year > 1 else None
