"""WAHA ("WhatsApp HTTP API", devlikeapro/waha): the self-hosted engine Wawp runs on.

Wire format (providers.md §2, OpenAPI 2026.7.2 in ``specs/waha-openapi.json``):

- ``POST {base}/api/sendText`` and ``/api/sendImage``, JSON bodies, answered
  with **201** (§2.2, §2.3).
- Auth is the ``X-Api-Key`` header, and only when the server sets
  ``WAHA_API_KEY``; the WAHA session goes in **every body** as ``session``
  (§2.1).
- Text body ``{session, chatId, text, reply_to?, mentions?, id?}`` (§2.2),
  ``id`` being the message id derived from the idempotency key
  (:func:`~wamsg.providers.base.client_message_id`), so that a retried send
  asks WhatsApp for the same message again.
- Image body ``{session, chatId, file, caption?, reply_to?, mentions?}`` where
  ``file`` is ``{mimetype, filename?, url}`` or ``{mimetype, filename?, data}``
  with ``data`` plain base64 (§2.3): no multipart, no view-once field.
- ``chatId`` is ``<digits>@c.us``, never ``@s.whatsapp.net`` (§2.4).
- The answer is the engine's own message object (WEBJS, NOWEB or the spec's
  ``WAMessage``, §2.5), read by the module shared with Wawp.
- Errors are NestJS bodies with no error codes (§2.6): the cases that matter
  are told apart by status and text, in :data:`_CASES`.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, ClassVar

import msgspec

from .._redact import Secret, redact
from ..errors import (
    ConfigError,
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    Rejected,
)
from ..http import Body, HttpRequest, HttpResponse, QueryValue
from ..models import Image, InboundMessage, Message, SendResult
from . import _waha
from ._inbound import media_get, media_location
from .base import (
    HTTP_STATUS_RULES,
    Capabilities,
    ErrorRule,
    check_message,
    client_message_id,
    error_from_response,
    find_code_and_message,
    image_mimetype,
    loads,
)
from .bodies import json_with_base64
from .config import DsnFormat, base_url_setting, header_token_setting, required_setting

__all__ = ["WahaAdapter"]

#: WAHA's default session, and the only one WAHA Core runs (§2.1).
DEFAULT_SESSION = "default"


class _TextBody(msgspec.Struct, omit_defaults=True):
    # Key order as in §5's table and the §2.3 sample: session first.
    session: str
    chatId: str  # noqa: N815 - wire name
    text: str
    reply_to: str | None = None
    # Hidden from the spec (@ApiHideProperty, W4) but accepted; WhatsApp
    # mentions only users whose "@<number>" is also in the text (§2.2).
    mentions: tuple[str, ...] = ()
    # MessageTextRequest.id, "Pre-generated message id" (§2.2, W4, W7):
    # client_message_id(idempotency_key), never the key itself.
    id: str | None = None


class _File(msgspec.Struct, omit_defaults=True):
    # RemoteFile {mimetype*, filename?, url*} or BinaryFile {mimetype*,
    # filename?, data*}; for BinaryFile ``data`` is added last by
    # json_with_base64, streamed (§2.3).
    mimetype: str
    filename: str | None = None
    url: str | None = None


class _ImageBody(msgspec.Struct, omit_defaults=True):
    # The §2.3 sample's order: session, chatId, file, caption.
    session: str
    chatId: str  # noqa: N815 - wire name
    file: _File
    caption: str | None = None
    reply_to: str | None = None
    mentions: tuple[str, ...] = ()


_ENCODER = msgspec.json.Encoder()
_JSON_HEADERS: tuple[tuple[str, QueryValue], ...] = (
    ("Content-Type", "application/json"),
    ("Accept", "application/json"),
)

#: WAHA's errors carry no code (§2.6): each case is a status plus a phrase of
#: its text, named here so that the rule table maps it. Matching is on the
#: error text only (never the raw body: a 500 echoes the request, §2.6) and
#: only under its own status.
#: (status, phrase in the lower-cased error text, code, rule)
_CASES: tuple[tuple[int, str, str, ErrorRule], ...] = (
    # manager.*.ts getSession: NotFoundException("We didn't find a session
    # with name '…'. Please start it first …") (W3): our `session` setting
    # names no running session. Fix the settings, not the message.
    (404, "find a session", "session_not_found", (ProviderConfigError, Outcome.REJECTED, False)),
    # manager.core.ts onlyDefault: 422 "WAHA Core support only 'default'
    # session. You tried to access '…' session …" (W3, §2.1): `session`
    # names another session on a Core server.
    (
        422,
        "support only 'default' session",
        "core_default_session_only",
        (ProviderConfigError, Outcome.REJECTED, False),
    ),
    # Nest's own 404 for an unknown route, {"message": "Cannot POST /api/…"}:
    # base_url points below the server root (e.g. ends in /api).
    (404, "cannot post", "route_not_found", (ProviderConfigError, Outcome.REJECTED, False)),
    # manager.abc.ts waitUntilStatus: 422 {error: "Session status is not as
    # expected. Try again later or restart the session", session, status,
    # expected} after waiting 5 s for WORKING (W3). Thrown before the engine
    # is called, so nothing went out; the session may still start.
    (
        422,
        "session status is not as expected",
        "session_not_working",
        (ProviderUnavailable, Outcome.NOT_SENT, True),
    ),
    # exceptions.ts AvailableInPlusVersion: 422 "… is available only in Plus
    # version …" (W3; sendImage on WEBJS Core 2024.10.8, §2.3). Permanent on
    # this server.
    (422, "available only in plus", "plus_only", (Rejected, Outcome.REJECTED, False)),
    # exceptions.ts NotImplementedByEngineError: 501 "The method is not
    # implemented by '<engine>' engine" (W3): thrown before sending, permanent.
    (
        501,
        "not implemented by",
        "engine_not_implemented",
        (Rejected, Outcome.REJECTED, False),
    ),
)

#: Everything else maps by status (HTTP_STATUS_RULES): 400 class-validator
#: errors and other 422s are Rejected, 401 (bad or missing X-Api-Key) is an
#: AuthenticationError, and 500 (AllExceptionsFilter) may come after the
#: engine sent, so its outcome is unknown (§2.6, §5 note 1).
_CODE_RULES: dict[str, ErrorRule] = {code: rule for _, _, code, rule in _CASES}


class WahaAdapter:
    """Send through a WAHA server.

    Args:
        base_url: the server root, e.g. ``http://localhost:3000`` (without ``/api``).
        api_key: the server's ``WAHA_API_KEY``, sent as the ``X-Api-Key``
            header (never in the URL); None when the server runs without one.
            Kept as a :class:`~wamsg.Secret`.
        session: the WAHA session to send from (WAHA Core runs only ``"default"``).

    Mentions: WhatsApp highlights a mentioned user only when the text (or
    caption) also contains ``@<their number>``; the text is sent as given, so
    write it there yourself, e.g. ``Text(to=..., text="hi @5511988887777",
    mentions=["+5511988887777"])`` (providers.md §2.2).
    """

    name: ClassVar[str] = "waha"
    #: ``waha+http://API_KEY@localhost:3000?session=default`` (docs/configuration.md).
    dsn: ClassVar[DsnFormat] = DsnFormat(user="api_key")
    capabilities: ClassVar[Capabilities] = Capabilities(
        reply=True,
        mentions_text=True,
        # `mentions` is hidden from the spec but accepted on sendImage (W4).
        mentions_image=True,
        # No view-once field on sendImage (W7, W4, §2.3).
        view_once=False,
        media_url=True,
        # JSON only: no multipart upload (§2.3); bytes go as base64 inside it.
        media_upload=False,
        media_base64=True,
        # WAHA advises JPEG and has no convert flag for images (§2.3); PNG is
        # what Wawp, running WAHA, documents besides JPEG (§1.5).
        image_types=frozenset({"image/jpeg", "image/png"}),
        # Not documented by WAHA: WhatsApp's own limit for images.
        max_media_bytes=16 * 1024 * 1024,
        # WAHA 2026 takes an optional pre-generated `id` on sendText (§2.2,
        # W4, W7), filled from the idempotency key. MessageImageRequest has
        # none (§2.3, W7): images go without it.
        client_message_id=True,
    )

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | Secret | None = None,
        session: str = DEFAULT_SESSION,
    ) -> None:
        self.base_url = base_url_setting(self.name, base_url)
        self.session = required_setting(self.name, "session", session)
        headers = _JSON_HEADERS
        self._secrets: tuple[Secret, ...] = ()
        if api_key is not None:
            key = Secret(api_key)
            if not key.reveal().strip():
                raise ConfigError(
                    f"{self.name}: api_key is empty; pass None when the server runs without one"
                )
            header_token_setting(self.name, "api_key", key.reveal())
            headers = (*headers, ("X-Api-Key", key))
            self._secrets = (key,)
        self._headers = headers
        self._text_url = f"{self.base_url}/api/sendText"
        self._image_url = f"{self.base_url}/api/sendImage"

    def __repr__(self) -> str:
        key = "set" if self._secrets else "none"
        return (
            f"WahaAdapter(base_url={self.base_url!r}, session={redact(self.session)!r}, "
            f"api_key={key})"
        )

    def encode(self, message: Message) -> HttpRequest:
        """Build the sendText or sendImage request (no I/O)."""
        check_message(self.name, self.capabilities, message)
        chat_id = message.recipient.jid(_waha.USER_SERVER)
        mentions = tuple(m.jid(_waha.USER_SERVER) for m in message.mentioned)
        if isinstance(message, Image):
            return self._encode_image(chat_id, mentions, message)
        body = _TextBody(
            session=self.session,
            chatId=chat_id,
            text=message.text,
            reply_to=message.reply_to,
            mentions=mentions,
            id=_message_id(message),
        )
        return HttpRequest(
            method="POST",
            url=self._text_url,
            headers=self._headers,
            body=_ENCODER.encode(body),
        )

    def _encode_image(self, chat_id: str, mentions: tuple[str, ...], message: Image) -> HttpRequest:
        media = message.image
        file = _File(
            mimetype=image_mimetype(self.name, self.capabilities, message),
            # Optional in both file shapes (W7): the caller's name, or the
            # file's; left out for unnamed bytes and streams.
            filename=media.filename or (PurePath(media.path).name if media.path else None),
            url=media.url,
        )
        # No `id` here: MessageImageRequest has no pre-generated id (§2.3, W7),
        # so an image's idempotency key never reaches the wire.
        body = _ImageBody(
            session=self.session,
            chatId=chat_id,
            file=file,
            caption=message.caption or None,
            reply_to=message.reply_to,
            mentions=mentions,
        )
        if media.url is not None:
            encoded: Body = _ENCODER.encode(body)
        else:
            # BinaryFile.data is plain base64, no data: URI (W7, §2.3),
            # streamed from the source, never whole in memory.
            encoded = json_with_base64(msgspec.to_builtins(body), media, key_path=("file", "data"))
        return HttpRequest(
            method="POST", url=self._image_url, headers=self._headers, body=encoded, kind="media"
        )

    def media_request(self, message: InboundMessage) -> HttpRequest:
        """The GET of an incoming message's ``media.url`` (``/api/files/...``)
        with the X-Api-Key (docs/webhooks.md §2 (b)); only on base_url's host.
        """
        key = tuple((name, value) for name, value in self._headers if name == "X-Api-Key")
        return media_get(media_location(self.name, self.base_url, message), headers=key)

    def decode(self, response: HttpResponse) -> SendResult:
        """Read WAHA's answer (no I/O)."""
        if not 200 <= response.status < 300:
            raise self._error(response)
        return _waha.decode_send(
            self.name,
            response,
            status_rules=HTTP_STATUS_RULES,
            code_rules=_CODE_RULES,
            secrets=self._secrets,
        )

    def _error(self, response: HttpResponse) -> ProviderError:
        parsed = loads(response.body)
        text = response.body.decode("utf-8", "replace")
        _, found = find_code_and_message(parsed, text)
        code = _case(response.status, found)
        if response.status == 500 and isinstance(parsed, dict):
            # AllExceptionsFilter: {statusCode, timestamp, exception{message,
            # name, stack}, request{path, method, body, query}, version} (W3):
            # the useful text is the exception's message, not the echoed
            # request (which holds the base64 and the recipients, §2.6).
            exception = parsed.get("exception")
            if isinstance(exception, dict) and isinstance(exception.get("message"), str):
                parsed = {"message": exception["message"]}
        error = error_from_response(
            self.name,
            response,
            parsed=parsed,
            status_rules=HTTP_STATUS_RULES,
            code_rules=_CODE_RULES,
            code=code,
            secrets=self._secrets,
        )
        hint = self._hint(code, parsed)
        if hint:
            error.message = f"{error.message} ({redact(hint, self._secrets)})"
            error.args = (error.message,)
        return error

    def _hint(self, code: str | None, parsed: Any) -> str | None:
        """What to do about a case, for the error's message."""
        if code == "session_not_found":
            return (
                f"the server has no running session {self.session!r}: set session= to one "
                "that exists and is started (WAHA Core runs only 'default')"
            )
        if code == "core_default_session_only":
            return "this server runs WAHA Core, which has only one session: set session='default'"
        if code == "route_not_found":
            return (
                "check base_url: it is the server root such as http://localhost:3000, without /api"
            )
        if code == "session_not_working":
            status = parsed.get("status") if isinstance(parsed, dict) else None
            shown = status if isinstance(status, str) and status.isidentifier() else "not WORKING"
            return (
                f"session {self.session!r} is {shown}; retry once it is WORKING "
                "(a session in SCAN_QR_CODE waits for its QR code to be scanned)"
            )
        return None


def _message_id(message: Message) -> str | None:
    """The sendText ``id`` for ``message``: derived from its idempotency key, if any."""
    key = message.idempotency_key
    return client_message_id(key) if key is not None else None


def _case(status: int, message: str | None) -> str | None:
    """The :data:`_CASES` code for an error's status and text, if any."""
    lowered = (message or "").lower()
    for case_status, phrase, code, _ in _CASES:
        if case_status == status and phrase in lowered:
            return code
    return None
