"""Wawp (api.wawp.net, v2): a hosted, multi-tenant front end to WAHA.

Wire format (providers.md §1, seeds 000 and 004):

- ``POST {base}/v2/send/text`` and ``/v2/send/image``, with ``instance_id``
  and ``access_token`` as **query parameters** (the documented samples build
  them with ``URLSearchParams`` and send the rest as JSON, §1.3).
- Text body ``{chatId, message, reply_to?}``: the field is ``message``, not
  WAHA's ``text`` (§1.4).
- Image body with **flat bracket keys** ``file[url]``, ``file[filename]``,
  ``file[mimetype]``, plus ``caption`` and ``reply_to`` (§1.5). Only an HTTPS
  URL is documented, no upload or base64, and only JPEG and PNG.
- ``chatId`` is ``<digits>@c.us``, ``@g.us`` or ``@newsletter`` (§1.6).
- The answer is the whatsapp-web.js message WAHA returns; the id is
  ``id._serialized`` (§1.7), read by the shared WAHA module.
- Errors (§1.8) carry an undocumented body, JSON (WP_Error-like
  ``{code, message, data.status}``), XML, HTML or text: mapped by status
  first, then by the v1 codes.
"""

from __future__ import annotations

import posixpath
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import msgspec

from .._mediatype import extension_for
from .._redact import Secret
from ..errors import (
    AuthenticationError,
    ConfigError,
    Outcome,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)
from ..http import HttpRequest, HttpResponse
from ..models import Image, InboundMessage, Message, SendResult
from . import _waha
from ._inbound import media_get, media_location
from .base import HTTP_STATUS_RULES, Capabilities, ErrorRule, check_message, image_mimetype
from .config import DsnFormat, base_url_setting, required_setting

__all__ = ["WawpAdapter"]

DEFAULT_BASE_URL = "https://api.wawp.net"


class _TextBody(msgspec.Struct, omit_defaults=True):
    chatId: str  # noqa: N815 - wire name
    message: str
    reply_to: str | None = None


class _ImageBody(msgspec.Struct, omit_defaults=True):
    chatId: str  # noqa: N815
    file_url: str = msgspec.field(name="file[url]")
    file_filename: str = msgspec.field(name="file[filename]")
    file_mimetype: str = msgspec.field(name="file[mimetype]")
    # The page's summary calls caption "required" (seed 000), so it has no
    # default and is always sent, empty when there is none; reply_to is left
    # out unless replying (providers.md §1.5).
    caption: str
    reply_to: str | None = None


_ENCODER = msgspec.json.Encoder()
_JSON_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))

#: Status meanings from the v2 pages (seed 000's error list, providers.md §1.8).
_STATUS_RULES: dict[int, ErrorRule] = {
    **HTTP_STATUS_RULES,
    # 404 is "Session Does Not Exist": the instance_id is wrong.
    404: (Rejected, Outcome.REJECTED, False),
    # A bare 502 keeps the shared "unknown": it may come from a CDN or load
    # balancer in front of Wawp after the origin acted. Only Wawp's own
    # `wawp_upstream_error` code (below) says the upstream was never reached.
}

#: The v1 codes (providers.md §1.8): also seen in 200 bodies from the proxy.
_CODE_RULES: dict[str, ErrorRule] = {
    "invalid_access_token": (AuthenticationError, Outcome.REJECTED, False),
    "invalid_instance": (Rejected, Outcome.REJECTED, False),
    "subscription_required": (AuthenticationError, Outcome.REJECTED, False),
    # 502 "Bad Gateway - Connection Failed to Upstream"; the v2 text page
    # says to "retry with exponential backoff for 'wawp_upstream_error'": the
    # proxy never reached WAHA, so nothing went out.
    "wawp_upstream_error": (ProviderUnavailable, Outcome.NOT_SENT, True),
    "rate_limit_exceeded": (RateLimited, Outcome.NOT_SENT, True),
}


class WawpAdapter:
    """Send through Wawp's v2 API.

    Args:
        instance_id: the Wawp instance (a WAHA session), about 12 characters.
        access_token: the account's API token. Kept as a :class:`~wamsg.Secret`.
        base_url: the API root; change it only for a proxy or the sandbox.
    """

    name: ClassVar[str] = "wawp"
    #: ``wawp://INSTANCE_ID:ACCESS_TOKEN@api.wawp.net`` (docs/configuration.md).
    dsn: ClassVar[DsnFormat] = DsnFormat(user="instance_id", password="access_token")  # noqa: S106
    capabilities: ClassVar[Capabilities] = Capabilities(
        reply=True,
        media_url=True,
        image_types=frozenset({"image/jpeg", "image/png"}),
        # "WhatsApp supports up to 4,096 characters, and our proxy enforces
        # this limit" (v2 send text page, providers.md §1.9).
        max_text_chars=4096,
    )

    def __init__(
        self,
        *,
        instance_id: str,
        access_token: str | Secret,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.instance_id = required_setting(self.name, "instance_id", instance_id)
        token = Secret(access_token)
        if not token.reveal().strip():
            raise ConfigError(f"{self.name}: access_token is empty")
        self._token = token
        self.base_url = base_url_setting(self.name, base_url)
        self._query = (("instance_id", self.instance_id), ("access_token", token))
        self._text_url = f"{self.base_url}/v2/send/text"
        self._image_url = f"{self.base_url}/v2/send/image"

    def __repr__(self) -> str:
        return f"WawpAdapter(instance_id={self.instance_id!r}, base_url={self.base_url!r})"

    def encode(self, message: Message) -> HttpRequest:
        """Build the v2 send request (no I/O)."""
        check_message(self.name, self.capabilities, message)
        chat_id = message.recipient.jid(_waha.USER_SERVER)
        if isinstance(message, Image):
            return HttpRequest(
                method="POST",
                url=self._image_url,
                query=self._query,
                headers=_JSON_HEADERS,
                body=_ENCODER.encode(self._image_body(chat_id, message)),
                kind="media",
            )
        return HttpRequest(
            method="POST",
            url=self._text_url,
            query=self._query,
            headers=_JSON_HEADERS,
            body=_ENCODER.encode(
                _TextBody(chatId=chat_id, message=message.text, reply_to=message.reply_to)
            ),
        )

    def _image_body(self, chat_id: str, message: Image) -> _ImageBody:
        mimetype = image_mimetype(self.name, self.capabilities, message)
        media = message.image
        assert media.url is not None  # check_message allows URLs only
        filename = (
            media.filename or _filename_from_url(media.url) or f"image{extension_for(mimetype)}"
        )
        return _ImageBody(
            chatId=chat_id,
            file_url=media.url,
            file_filename=filename,
            file_mimetype=mimetype,
            caption=message.caption or "",
            reply_to=message.reply_to,
        )

    def media_request(self, message: InboundMessage) -> HttpRequest:
        """The GET of an incoming message's ``media.url`` on api.wawp.net, with
        the instance and token in the query as every Wawp call has them
        (docs/webhooks.md §3 (b): that the files URL needs them is a guess).
        """
        url = media_location(self.name, self.base_url, message)
        return media_get(url, query=self._query)

    def decode(self, response: HttpResponse) -> SendResult:
        """Read Wawp's answer (no I/O)."""
        return _waha.decode_send(
            self.name,
            response,
            status_rules=_STATUS_RULES,
            code_rules=_CODE_RULES,
            secrets=(self._token,),
        )


def _filename_from_url(url: str) -> str | None:
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name if "." in name else None
