"""A Wawp v2 gateway in miniature: the pure ``handle(HttpRequest) -> HttpResponse``.

It enforces what Wawp documents (providers.md §1): credentials in the query,
the v2 JSON bodies (decoded with the adapter's own wire structs, in the
opposite direction), ``chatId`` forms, the 4,096-character text limit and
JPEG/PNG images, and it answers like Wawp: the whatsapp-web.js message on
success, WP_Error-style ``{code, message, data.status}`` on errors.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..http import HttpRequest, HttpResponse
from ..providers.wawp import WawpAdapter, _ImageBody, _TextBody
from ._webjs import webjs_message
from .base import GatewaySandbox, body_bytes
from .outbox import Outbox

__all__ = ["WawpSandbox"]

_CHAT_ID = re.compile(r"(\d{7,15}@c\.us|\d{5,}(-\d{5,})?@g\.us|\d{5,}@newsletter)")
_JSON = {"content-type": "application/json; charset=utf-8"}
_SANDBOX_NUMBER = "15550000000@c.us"


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = msgspec.json.encode({"code": code, "message": message, "data": {"status": status}})
    return HttpResponse(status=status, headers=_JSON, body=body)


# Codes Wawp's WordPress front answers with, by status, for injected faults.
_CODE_FOR_STATUS = {
    401: "invalid_access_token",
    404: "invalid_instance",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


class WawpSandbox(GatewaySandbox):
    """Wawp's send API, answered from memory.

    Args:
        outbox: where accepted messages go.
        instance_id, access_token: the credentials it accepts.
        seed: seeds the message ids, for repeatable runs.
        clock: the time source (seconds since the epoch).
    """

    provider = "wawp"

    def __init__(
        self,
        outbox: Outbox,
        *,
        instance_id: str = "sandbox",
        access_token: str = "sandbox-token",  # noqa: S107 - the sandbox's published example
        seed: int | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(outbox, seed=seed, clock=clock)
        self.instance_id = instance_id
        #: The instance's WhatsApp account and profile name (``me`` in its
        #: WAHA-shaped webhooks, docs/webhooks.md §3).
        self.me = _SANDBOX_NUMBER
        self.push_name = "Wawp Instance"
        #: The WAHA session behind the instance: Wawp's webhook examples say
        #: ``"default"`` (docs/webhooks.md §3a).
        self.session = "default"
        self._token = access_token.encode()

    def media_authorized(self, request: HttpRequest) -> bool:
        """The files URL with the instance and token in the query, as every
        Wawp call has them (docs/webhooks.md §3 (b): a guess, labelled)."""
        query = request.revealed_query()
        token = query.get("access_token", "").encode()
        return (
            bool(token)
            and hmac.compare_digest(token, self._token)
            and query.get("instance_id") == self.instance_id
        )

    def credentials(self, base_url: str) -> dict[str, Any]:
        """Client settings for this sandbox served at ``base_url``."""
        return {
            "base_url": base_url,
            "instance_id": self.instance_id,
            "access_token": self._token.decode(),
        }

    def error(self, status: int, message: str, code: str | None = None) -> HttpResponse:
        """A WP_Error-style answer: ``{code, message, data: {status}}``."""
        return _error(status, code or _CODE_FOR_STATUS.get(status, "error"), message)

    def auth_error(self) -> HttpResponse:
        """Wawp's answer to a missing or wrong access token."""
        return _error(401, "invalid_access_token", "Invalid or missing access token.")

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request to ``/v2/send/text`` or ``/v2/send/image``."""
        path = request.url.rstrip("/")
        # Exactly these paths, as on api.wawp.net: a wrong base_url must fail
        # here as it would there.
        if path not in ("/v2/send/text", "/v2/send/image"):
            return _error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        if request.method != "POST":
            return _error(405, "rest_no_route", "Use POST.")
        query = request.revealed_query()
        token = query.get("access_token", "").encode()
        if not token or not hmac.compare_digest(token, self._token):
            return self.auth_error()
        if query.get("instance_id") != self.instance_id:
            return _error(404, "invalid_instance", "Session does not exist.")
        body = body_bytes(request)
        is_image = path == "/v2/send/image"
        try:
            wire: Any = msgspec.json.decode(body, type=_ImageBody if is_image else _TextBody)
        except msgspec.ValidationError as exc:
            return _error(400, "rest_missing_callback_param", f"Bad Request: {exc}")
        except msgspec.DecodeError:
            return _error(400, "rest_invalid_json", "Body is not valid JSON.")
        if not _CHAT_ID.fullmatch(wire.chatId):
            return _error(400, "invalid_number", "Invalid Number (Unknown)")
        if is_image:
            return self._image(wire)
        return self._text(wire)

    def _text(self, wire: _TextBody) -> HttpResponse:
        limit = WawpAdapter.capabilities.max_text_chars or 0
        if not wire.message.strip():
            return _error(400, "rest_missing_callback_param", "Missing parameter(s): message")
        if len(wire.message) > limit:
            return _error(400, "message_too_long", f"Message exceeds {limit} characters.")
        return self._accept(wire.chatId, "text", text=wire.message, reply_to=wire.reply_to)

    def _image(self, wire: _ImageBody) -> HttpResponse:
        if wire.file_mimetype not in WawpAdapter.capabilities.image_types:
            return _error(400, "invalid_mimetype", "MIME type must be image/jpeg or image/png.")
        if not wire.file_url.startswith(("https://", "http://")):
            return _error(400, "invalid_url", "file[url] must be a public HTTPS URL.")
        return self._accept(
            wire.chatId,
            "image",
            caption=wire.caption,
            image_url=wire.file_url,
            mimetype=wire.file_mimetype,
            filename=wire.file_filename,
            reply_to=wire.reply_to,
        )

    def _accept(self, chat_id: str, kind: str, **fields: Any) -> HttpResponse:
        # whatsapp-web.js ids sent from the web client look like 3EB0 + hex.
        short = self.hex_id()
        serialized = f"true_{chat_id}_{short}"
        stored = self.store(
            kind="image" if kind == "image" else "text",
            chat_id=chat_id,
            message_id=serialized,
            **fields,
        )
        answer = webjs_message(stored, short, _SANDBOX_NUMBER)
        return HttpResponse(status=200, headers=_JSON, body=msgspec.json.encode(answer))
