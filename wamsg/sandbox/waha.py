"""A WAHA server in miniature: the pure ``handle(HttpRequest) -> HttpResponse``.

It answers like WAHA 2026 (OpenAPI 2026.7.2, providers.md §6) running the
WEBJS engine, as Wawp does (§1.2):

- ``POST /api/sendText`` and ``POST /api/sendImage`` with JSON bodies,
  answered with **201** (§2.2, §2.3), and the deprecated
  ``GET /api/sendText?phone=&text=&session=`` the spec still lists (200).
- The key in the ``X-Api-Key`` header, or ``?x-api-key=`` (§2.1, W5); none
  checked when the server runs without a key.
- ``session`` in the body, ``"default"`` when left out (§2.1, W1
  ``base.dto.ts``); a session the server does not run is WAHA's 404 (§2.6).
- Bodies decoded with the adapter's own wire structs, after checks worded
  like class-validator's (Nest's 400, §2.6); ``file`` is ``{mimetype,
  filename?, url}`` or ``{mimetype, filename?, data}`` with plain base64
  (§2.3), and base64 bytes must really be the JPEG or PNG they claim.
- ``chatId`` as §2.4 lists it; a bare number gets ``@c.us`` (WEBJS
  ``ensureSuffix``, W2); anything else fails in the engine, which WAHA
  answers with its AllExceptionsFilter 500 echoing the request (§2.6).
- The answer is the whatsapp-web.js ``Message`` (§2.5), read back by the
  adapter's shared decoder (``wamsg.providers._waha``).
- sendText's ``id`` (the pre-generated message id, §2.2) becomes the
  message's own id, and a message is known by (session, chat, id): sending
  the same id to the same chat again stores nothing new and answers with the
  message sent the first time (see :meth:`WahaSandbox._accept`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import msgspec

from .._mediatype import sniff
from ..http import HttpRequest, HttpResponse
from ..providers import _waha
from ..providers.waha import DEFAULT_SESSION, WahaAdapter, _ImageBody, _TextBody
from ._webjs import webjs_message
from .base import GatewaySandbox, body_bytes, reason_phrase
from .outbox import Outbox, StoredMessage

__all__ = ["WahaSandbox"]

_JSON = {"content-type": "application/json; charset=utf-8"}

#: Chat ids WAHA takes (§2.4): users ``<digits>@c.us`` (WhatsApp numbers
#: have 7 to 15 digits), hidden ``@lid`` ids, groups (``<digits>`` or the
#: older ``<creator>-<time>``), channels and ``status@broadcast``. Never
#: ``@s.whatsapp.net``.
_CHAT_ID = re.compile(
    r"\d{7,15}@c\.us|\d{5,}@lid|\d{5,}(?:-\d{5,})?@g\.us|\d{5,}@newsletter|status@broadcast"
)
#: What ``mentions`` may hold: user ids, or ``"all"`` for a whole group (W6
#: send-messages, §2.2).
_MENTION = re.compile(r"\d{7,15}@c\.us|\d{5,}@lid|all")

#: The number this sandbox's session is logged in as.
_ME = "15550000001@c.us"
#: The profile name of that account (``MeInfo.pushName``, webhooks' ``me``).
_PUSH_NAME = "wamsg sandbox"

#: What WAHA reports about itself in a 500 (AllExceptionsFilter, §2.6). PLUS,
#: because this sandbox runs any session name and sends images (Core 2024
#: refused both, §2.1, §2.3); WEBJS, like Wawp (§1.2).
_VERSION = {
    "version": "2026.7.2",
    "engine": "WEBJS",
    "tier": "PLUS",
    "browser": "/usr/bin/google-chrome-stable",
}

#: (method, lower-cased path) -> endpoint. Express routes ignore case and a
#: trailing slash.
_ROUTES: dict[tuple[str, str], Literal["text", "image", "text_get"]] = {
    ("POST", "/api/sendtext"): "text",
    ("POST", "/api/sendimage"): "image",
    ("GET", "/api/sendtext"): "text_get",
}


def _nest(status: int, message: str | list[str]) -> HttpResponse:
    """Nest's HttpException body: ``{message, error, statusCode}`` (§2.6)."""
    body = {"message": message, "error": reason_phrase(status), "statusCode": status}
    return HttpResponse(status=status, headers=_JSON, body=msgspec.json.encode(body))


def _json_error(body: bytes) -> str:
    """Roughly what Node's JSON.parse says about ``body`` (body-parser's 400)."""
    text = body.decode("utf-8", "replace")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "Unexpected end of JSON input"
        shown = text if len(text) <= 10 else text[:10] + "..."
        return f"Unexpected token '{text[exc.pos]}', \"{shown}\" is not valid JSON"
    return "Unexpected token in JSON"


def _string(body: dict[str, Any], name: str, *, optional: bool = False) -> list[str]:
    """class-validator's ``@IsString()`` (with ``@IsOptional()`` when optional)."""
    value = body.get(name)
    if value is None and optional:
        return []
    return [] if isinstance(value, str) else [f"{name} must be a string"]


def _boolean(body: dict[str, Any], name: str) -> list[str]:
    """``@IsOptional() @IsBoolean()``."""
    value = body.get(name)
    return [] if value is None or isinstance(value, bool) else [f"{name} must be a boolean value"]


def _common(body: dict[str, Any]) -> list[str]:
    """Checks every send body shares: session, chatId, reply_to and mentions."""
    errors = _string(body, "session", optional=True)
    chat_id = body.get("chatId")
    if chat_id == "":
        errors.append("chatId should not be empty")
    else:
        # ChatRequest: @IsString() chatId (W4).
        errors += _string(body, "chatId")
    errors += _string(body, "reply_to", optional=True)
    mentions = body.get("mentions")
    if mentions is not None:
        if not isinstance(mentions, list):
            errors.append("mentions must be an array")
        elif not all(isinstance(m, str) for m in mentions):
            errors.append("each value in mentions must be a string")
    return errors


def _text_errors(body: dict[str, Any]) -> list[str]:
    """MessageTextRequest (§2.2; required chatId, text, session per W7)."""
    errors = _common(body)
    text = body.get("text")
    if isinstance(text, str) and not text.strip():
        errors.append("text should not be empty")
    else:
        errors += _string(body, "text")
    # The optional pre-generated message id (§2.2, W4, W7) and link previews.
    errors += _string(body, "id", optional=True)
    errors += _boolean(body, "linkPreview")
    errors += _boolean(body, "linkPreviewHighQuality")
    return errors


def _image_errors(body: dict[str, Any]) -> list[str]:
    """MessageImageRequest (§2.3): ``file`` is RemoteFile or BinaryFile (W7)."""
    errors = _common(body)
    errors += _string(body, "caption", optional=True)
    file = body.get("file")
    if not isinstance(file, dict):
        return [*errors, "file must be an object"]
    if not isinstance(file.get("mimetype"), str) or not file["mimetype"]:
        errors.append("file.mimetype must be a string")
    if file.get("filename") is not None and not isinstance(file["filename"], str):
        errors.append("file.filename must be a string")
    url, data = file.get("url"), file.get("data")
    if (url is None) == (data is None):
        # oneOf RemoteFile | BinaryFile: exactly one of them (W7).
        errors.append('file must contain either "data" or "url"')
    elif url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append("file.url must be a URL address")
    elif not isinstance(data, str) or not _is_base64(data):
        # Plain base64, no data: URI (§2.3, W7 BinaryFile.data).
        errors.append("file.data must be base64 encoded")
    return errors


def _is_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(data)


class WahaSandbox(GatewaySandbox):
    """WAHA's send API (WEBJS engine), answered from memory.

    Args:
        outbox: where accepted messages go.
        api_key: the key the server runs with (``WAHA_API_KEY``); None for a
            server that takes none.
        session: the one session this server runs (WORKING).
        seed: seeds the message ids, for repeatable runs.
        clock: the time source (seconds since the epoch).
    """

    provider = "waha"

    def __init__(
        self,
        outbox: Outbox,
        *,
        api_key: str | None = "sandbox-key",
        session: str = DEFAULT_SESSION,
        seed: int | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(outbox, seed=seed, clock=clock)
        self.session = session
        #: The account the session is logged in as, and its profile name
        #: (``me`` in WAHA's webhooks, docs/webhooks.md §2).
        self.me = _ME
        self.push_name = _PUSH_NAME
        #: What WAHA reports about itself (500 answers, webhooks' ``environment``).
        self.environment: dict[str, Any] = {
            **_VERSION,
            "platform": "linux/x64",
            "worker": {"id": None},
        }
        self._key = api_key.encode() if api_key is not None else None
        # Makes "is this id already sent? if not, store it" one step, for
        # requests handled on several threads at once.
        self._identity_lock = threading.Lock()
        # (session, chat, serialized id) -> the message stored under it; an
        # entry counts only while the outbox still holds its message.
        self._sent: dict[tuple[str, str, str], StoredMessage] = {}

    def credentials(self, base_url: str) -> dict[str, Any]:
        """Client settings (as WahaAdapter takes them) for this sandbox at ``base_url``."""
        settings: dict[str, Any] = {"base_url": base_url, "session": self.session}
        if self._key is not None:
            settings["api_key"] = self._key.decode()
        return settings

    def error(self, status: int, message: str, code: str | None = None) -> HttpResponse:
        """A Nest error body; WAHA has no error codes (§2.6), so ``code`` is unused.

        A 500 comes in the AllExceptionsFilter shape, as WAHA sends it.
        """
        if status == 500:
            return self._server_error(message, None, None)
        return _nest(status, message)

    def auth_error(self) -> HttpResponse:
        """WAHA's answer to a missing or wrong key (§2.1, W6): no ``error`` field."""
        body = {"message": "Unauthorized", "statusCode": 401}
        return HttpResponse(status=401, headers=_JSON, body=msgspec.json.encode(body))

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request to ``/api/sendText`` or ``/api/sendImage``."""
        path = request.url.split("?", 1)[0]
        endpoint = _ROUTES.get((request.method.upper(), path.rstrip("/").lower()))
        if endpoint is None:
            # Nest's own 404; Express has no 405 (§2.6 and the adapter's
            # route_not_found case).
            return _nest(404, f"Cannot {request.method.upper()} {path}")
        query = request.revealed_query()
        if not self._authorized(request, query):
            return self.auth_error()
        if endpoint == "text_get":
            body: Any = {k: v for k, v in query.items() if k != "x-api-key"}
        else:
            parsed = self._parse_body(request)
            if isinstance(parsed, HttpResponse):
                return parsed
            body = parsed
        if endpoint == "text_get":
            # MessageTextQuery: phone, text, session (W7 GET /api/sendText).
            errors = _string(body, "phone") + _string(body, "text")
            if not body.get("session", DEFAULT_SESSION):
                errors.append("session should not be empty")
        elif endpoint == "text":
            errors = _text_errors(body)
        else:
            errors = _image_errors(body)
        if errors:
            return _nest(400, errors)
        session = body.get("session", DEFAULT_SESSION)
        if session != self.session:
            # manager getSession NotFoundException (§2.6, W3).
            return _nest(
                404,
                f"We didn't find a session with name '{session}'.\n"
                f"Please start it first by using POST /api/sessions/{session}/start request",
            )
        echo = (request, body)
        if endpoint == "text_get":
            wire = _TextBody(session=session, chatId=body["phone"], text=body["text"])
            return self._text(wire, None, echo, status=200)
        clean = {k: v for k, v in body.items() if v is not None}
        clean["session"] = session
        try:
            if endpoint == "text":
                return self._text(msgspec.convert(clean, _TextBody), body.get("id"), echo)
            return self._image(msgspec.convert(clean, _ImageBody), body["file"], echo)
        except msgspec.ValidationError as exc:  # pragma: no cover - the checks above cover it
            return _nest(400, [str(exc)])

    def media_authorized(self, request: HttpRequest) -> bool:
        """``/api/files`` needs the X-Api-Key like the API (docs/webhooks.md §2 (b))."""
        return self._authorized(request, request.revealed_query())

    def _authorized(self, request: HttpRequest, query: dict[str, str]) -> bool:
        """The X-Api-Key header, else ``?x-api-key=`` (W5 HeaderOrQueryApiKeyStrategy)."""
        if self._key is None:
            return True
        headers = {k.lower(): v for k, v in request.revealed_headers().items()}
        given = headers.get("x-api-key", query.get("x-api-key", ""))
        return bool(given) and hmac.compare_digest(given.encode(), self._key)

    def _parse_body(self, request: HttpRequest) -> dict[str, Any] | HttpResponse:
        """What Nest's JSON body parser makes of the body."""
        headers = {k.lower(): v for k, v in request.revealed_headers().items()}
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        raw = body_bytes(request)
        if media_type != "application/json" or not raw.strip():
            # body-parser leaves other types alone: the DTO sees no fields.
            return {}
        try:
            parsed = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return _nest(400, _json_error(raw))
        return parsed if isinstance(parsed, dict) else {}

    def _text(
        self,
        wire: _TextBody,
        client_id: Any,
        echo: tuple[HttpRequest, Any],
        *,
        status: int = 201,
    ) -> HttpResponse:
        chat_id = _ensure_suffix(wire.chatId)
        failed = self._engine_check(chat_id, wire.mentions, echo)
        if failed is not None:
            return failed
        return self._accept(
            chat_id,
            "text",
            status=status,
            client_id=client_id if isinstance(client_id, str) and client_id else None,
            mentions=wire.mentions,
            session=wire.session,
            text=wire.text,
            reply_to=wire.reply_to,
        )

    def _image(
        self, wire: _ImageBody, file: dict[str, Any], echo: tuple[HttpRequest, Any]
    ) -> HttpResponse:
        mimetype = wire.file.mimetype
        allowed = WahaAdapter.capabilities.image_types
        if mimetype not in allowed:
            # WAHA advises JPEG and converts no images (§2.3); PNG besides it
            # is what Wawp, running WAHA, documents (§1.5).
            values = ", ".join(sorted(allowed))
            return _nest(400, [f"file.mimetype must be one of the following values: {values}"])
        image_bytes: bytes | None = None
        if wire.file.url is None:
            image_bytes = base64.b64decode(file["data"], validate=True)
            limit = WahaAdapter.capabilities.max_media_bytes or 0
            if len(image_bytes) > limit:
                # WhatsApp's image limit (the adapter's Capabilities), in the
                # body parser's words.
                return _nest(413, "request entity too large")
            found = sniff(image_bytes[:16])
            if found != mimetype:
                looks = found or "no image"
                return _nest(400, [f"file.data is not {mimetype} (its bytes look like {looks})"])
        chat_id = _ensure_suffix(wire.chatId)
        failed = self._engine_check(chat_id, wire.mentions, echo)
        if failed is not None:
            return failed
        return self._accept(
            chat_id,
            "image",
            status=201,
            client_id=None,
            mentions=wire.mentions,
            session=wire.session,
            caption=wire.caption,
            image_url=wire.file.url,
            image_bytes=image_bytes,
            mimetype=mimetype,
            filename=wire.file.filename,
            reply_to=wire.reply_to,
        )

    def _engine_check(
        self, chat_id: str, mentions: tuple[str, ...], echo: tuple[HttpRequest, Any]
    ) -> HttpResponse | None:
        """What whatsapp-web.js refuses once WAHA hands it the message: a 500 (§2.6)."""
        checks = [(chat_id, _CHAT_ID), *((m, _MENTION) for m in mentions)]
        for wid, pattern in checks:
            if not pattern.fullmatch(wid):
                return self._server_error(
                    f"Evaluation failed: Error: wid error: invalid wid {wid}", *echo
                )
        return None

    def _server_error(self, message: str, request: HttpRequest | None, body: Any) -> HttpResponse:
        """WAHA's AllExceptionsFilter 500 (§2.6, W3): it echoes the request,
        body and query included (base64 and all)."""
        stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
        answer: dict[str, Any] = {
            "statusCode": 500,
            "timestamp": stamp.replace("+00:00", "Z"),
            "exception": {
                "message": message,
                "name": "Error",
                "stack": f"Error: {message}\n    at ExecutionContext._evaluateInternal "
                "(/app/node_modules/puppeteer-core/lib/cjs/puppeteer/common/ExecutionContext.js)",
            },
        }
        if request is not None:
            query = request.revealed_query()
            path = request.url + (f"?{urlencode(query)}" if query else "")
            answer["request"] = {
                "path": path,
                "method": request.method.upper(),
                "body": body,
                "query": query,
            }
        answer["version"] = _VERSION
        return HttpResponse(status=500, headers=_JSON, body=msgspec.json.encode(answer))

    def _accept(
        self,
        chat_id: str,
        kind: Literal["text", "image"],
        *,
        status: int,
        client_id: str | None,
        mentions: tuple[str, ...],
        session: str,
        **fields: Any,
    ) -> HttpResponse:
        """Store the message (unless it was sent already) and answer with it."""
        extra: dict[str, Any] = {"session": session}
        if mentions:
            extra["mentions"] = list(mentions)
        if client_id is None:
            # whatsapp-web.js ids sent from the web client: 3EB0 and 18 hex
            # digits (22 in all). A group send's id has no participant part
            # (WAHA issue 1464, WEBJS).
            short = self.hex_id(18)
            stored = self.store(
                kind=kind,
                chat_id=chat_id,
                message_id=f"true_{chat_id}_{short}",
                extra=extra,
                **fields,
            )
            return self._answer(stored, short, status)
        # Modelled on an inference [I]: WhatsApp identifies a message by its
        # key (remoteJid, fromMe, id), and a re-send with an existing key does
        # not create a second message on the recipient's phone. So a message
        # here is known by (session, chat, id): the same client id sent again
        # to the same chat from the same session stores nothing and answers
        # with the first message (its content, timestamp and serialized id),
        # whatever the new body says. The lookup and the store happen under
        # one lock, so two concurrent retries cannot both store.
        short = client_id
        serialized = f"true_{chat_id}_{short}"
        with self._identity_lock:
            sent = self._already_sent(session, chat_id, serialized)
            if sent is None:
                sent = self.store(
                    kind=kind, chat_id=chat_id, message_id=serialized, extra=extra, **fields
                )
                self._remember(session, chat_id, serialized, sent)
        return self._answer(sent, short, status)

    def _already_sent(self, session: str, chat_id: str, serialized: str) -> StoredMessage | None:
        """The message ``session`` sent to ``chat_id`` as ``serialized``, if still stored.

        Bounded by the outbox: a message the outbox has dropped, or a cleared
        outbox, is forgotten here too. One dict lookup a send (a scan of the
        outbox made the 5,000-send proof quadratic).
        """
        sent = self._sent.get((session, chat_id, serialized))
        if sent is not None and self.outbox.holds(sent.seq):
            return sent
        return None

    def _remember(self, session: str, chat_id: str, serialized: str, sent: StoredMessage) -> None:
        """Index a message stored under a client id (called under the identity lock)."""
        index = self._sent
        index[(session, chat_id, serialized)] = sent
        if len(index) > 2 * max(len(self.outbox), 1000):
            # Drop what the outbox no longer holds, so the index stays bounded.
            for key in [k for k, m in index.items() if not self.outbox.holds(m.seq)]:
                del index[key]

    def _answer(self, stored: StoredMessage, short: str, status: int) -> HttpResponse:
        """The whatsapp-web.js Message WEBJS returns as is (§2.5, W2), with the
        fields WAHA's answers carry beyond the core Wawp shows."""
        chat_id = stored.chat_id
        answer = webjs_message(stored, short, _ME)
        answer.update(
            forwardingScore=0,
            isStatus=chat_id == "status@broadcast",
            isStarred=False,
            hasReaction=False,
            mentionedIds=list(stored.extra.get("mentions", ())),
            groupMentions=[],
            links=[],
            vCards=[],
            isGif=False,
            isEphemeral=False,
        )
        if chat_id.endswith("@g.us"):
            answer["author"] = _ME
        return HttpResponse(status=status, headers=_JSON, body=msgspec.json.encode(answer))


def _ensure_suffix(chat_id: str) -> str:
    """WEBJS ``ensureSuffix`` (§2.4, W2): a bare number becomes ``<number>@c.us``."""
    return chat_id if "@" in chat_id else f"{chat_id}@{_waha.USER_SERVER}"
