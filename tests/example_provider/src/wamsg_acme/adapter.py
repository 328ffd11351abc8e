"""The Acme Messaging gateway (a made-up REST API) as a wamsg adapter.

Wire format:

- ``POST {base_url}/v1/messages`` with ``Authorization: Bearer <token>`` and a
  JSON body: ``{"to": "<digits>", "type": "text", "text": ..., "reply_to": ...}``
  or ``{"to": ..., "type": "image", "image": {"url": ..., "caption": ...}}``.
  Images are fetched by Acme from a URL; there is no upload.
- ``202 {"id": "msg_...", "status": "queued"}`` when accepted.
- Errors: ``{"error": {"code": "...", "message": "..."}}`` with a 4xx/5xx.

Like every adapter it does no I/O: encode builds an HttpRequest, decode reads
an HttpResponse, and the client does the rest.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from wamsg import (
    Capabilities,
    ConfigError,
    DsnFormat,
    HttpRequest,
    HttpResponse,
    Image,
    Message,
    Outcome,
    RateLimited,
    Rejected,
    Secret,
    SendResult,
    Status,
)
from wamsg.providers.base import (
    ErrorRule,
    check_message,
    decode_json,
    error_from_response,
    image_mimetype,
    unreadable_answer,
)
from wamsg.providers.config import base_url_setting, header_token_setting

__all__ = ["AcmeAdapter"]

DEFAULT_BASE_URL = "https://api.acme-messaging.example"

#: Acme's error codes that say more than the HTTP status.
_CODE_RULES: dict[str, ErrorRule] = {
    "invalid_recipient": (Rejected, Outcome.REJECTED, False),
    "throttled": (RateLimited, Outcome.NOT_SENT, True),
}
_STATUSES = {"queued": Status.QUEUED, "sent": Status.SENT, "delivered": Status.DELIVERED}


class _ImagePart(msgspec.Struct, omit_defaults=True):
    url: str
    caption: str | None = None


class _Body(msgspec.Struct, omit_defaults=True):
    to: str
    type: str
    text: str | None = None
    image: _ImagePart | None = None
    reply_to: str | None = None


class _Accepted(msgspec.Struct):
    id: str | None = None
    status: str | None = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Accepted)


class AcmeAdapter:
    """Acme Messaging: bearer token, JSON, images by URL."""

    name: ClassVar[str] = "acme"
    #: ``acme://TOKEN@api.acme-messaging.example``: the token is the DSN's user
    #: part. Without this line the generic form works too:
    #: ``acme://api.acme-messaging.example?token=TOKEN``.
    dsn: ClassVar[DsnFormat] = DsnFormat(user="token")
    capabilities: ClassVar[Capabilities] = Capabilities(
        reply=True,
        media_url=True,
        max_text_chars=4096,
        max_caption_chars=1024,
    )

    def __init__(self, *, token: str | Secret, base_url: str = DEFAULT_BASE_URL) -> None:
        value = Secret(token).reveal().strip()
        if not value:
            raise ConfigError("acme: token is required")
        header_token_setting(self.name, "token", value)
        self._token = Secret(f"Bearer {value}")
        self._secrets = (Secret(value), self._token)
        self.base_url = base_url_setting(self.name, base_url)

    def __repr__(self) -> str:
        return f"AcmeAdapter(base_url={self.base_url!r})"

    def encode(self, message: Message) -> HttpRequest:
        """Build ``POST /v1/messages`` (no I/O)."""
        check_message(self.name, self.capabilities, message)
        to = message.recipient.value
        if isinstance(message, Image):
            image_mimetype(self.name, self.capabilities, message)
            assert message.image.url is not None  # media_url only: check_message saw to it
            body = _Body(
                to=to,
                type="image",
                image=_ImagePart(url=message.image.url, caption=message.caption),
                reply_to=message.reply_to,
            )
        else:
            body = _Body(to=to, type="text", text=message.text, reply_to=message.reply_to)
        return HttpRequest(
            method="POST",
            url=f"{self.base_url}/v1/messages",
            headers=(("Authorization", self._token), ("Content-Type", "application/json")),
            body=_ENCODER.encode(body),
            kind="media" if isinstance(message, Image) else "text",
        )

    def decode(self, response: HttpResponse) -> SendResult:
        """Read Acme's answer (no I/O)."""
        if not 200 <= response.status < 300:
            raise error_from_response(
                self.name, response, code_rules=_CODE_RULES, secrets=self._secrets
            )
        accepted = decode_json(_DECODER, response.body)
        if accepted is None or not accepted.id:
            # A 2xx said the message was taken: never report it as not sent.
            raise unreadable_answer(self.name, response, self._secrets)
        return SendResult(
            provider=self.name,
            message_id=accepted.id,
            status=_STATUSES.get(accepted.status or "", Status.UNKNOWN),
            raw=response.body,
        )
