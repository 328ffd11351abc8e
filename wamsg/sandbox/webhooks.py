"""The sandbox's outgoing webhooks: each gateway's wire form, retries and faults.

Every gateway tells your server about delivery receipts and incoming
messages by POSTing JSON to a URL you configure. The sandbox does the same,
byte for byte as each gateway does it (docs/webhooks.md §1-§4):

* gowa: Go ``json.Marshal`` of a map: compact, keys sorted at every level,
  ``<``, ``>`` and ``&`` escaped, always signed ``X-Hub-Signature-256`` (the
  default secret is ``"secret"``); receipts only for delivered and read (§1).
* WAHA: JSON in insertion order with the ``evt_<ulid>`` envelope,
  ``X-Webhook-Request-Id``/``-Timestamp`` and, with a secret,
  ``X-Webhook-Hmac`` (§2). Wawp: the same envelope without ``environment``,
  never signed (§3).
* WUTS: its envelope with the ``signature`` *body field*, computed by
  wamsg's labelled guess (§4 [G]).

The module has three layers:

1. Pure builders: :func:`receipt_event` and :func:`message_event` make a
   :class:`WebhookEvent` (the document, unsigned) from a stored message or
   an :class:`InboundMessage`; :func:`render` turns it into the exact body
   bytes and headers for one :class:`WebhookTarget`; :func:`build_receipt`
   does both.
2. The retry schedules as data (:data:`SCHEDULES`), scaled by ``time_scale``.
3. :class:`WebhookDeliverer`, which POSTs with aiohttp, retries, applies the
   webhook faults (wamsg/sandbox/faults.py) and records every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import json
import logging
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from ..webhooks._signing import GOWA_DEFAULT_SECRET, sign_headers, wuts_body_signature
from .faults import FaultSet

if TYPE_CHECKING:
    from .outbox import StoredMessage

__all__ = [
    "DEFAULT_RECEIPT_DELAYS",
    "GATEWAYS",
    "RECEIPTS",
    "SCHEDULES",
    "DeliveryRecord",
    "GatewayIdentity",
    "InboundMessage",
    "ReceiptStatus",
    "RetrySchedule",
    "Subscription",
    "WebhookDeliverer",
    "WebhookEvent",
    "WebhookTarget",
    "build_receipt",
    "encode_document",
    "go_json",
    "message_event",
    "parse_webhook_option",
    "receipt_event",
    "render",
    "signs",
]

_log = logging.getLogger("wamsg.sandbox.webhooks")

#: The gateways that send webhooks.
GATEWAYS: tuple[str, ...] = ("gowa", "waha", "wawp", "wuts")
ReceiptStatus = Literal["sent", "delivered", "read"]
EventKind = Literal["receipt", "message"]

#: The receipts each gateway sends for a message it accepted, in order.
#: gowa forwards only delivered and read (``handleReceipt``, docs/webhooks.md
#: §1c): its "sent" is the send answer itself.
RECEIPTS: dict[str, tuple[ReceiptStatus, ...]] = {
    "gowa": ("delivered", "read"),
    "waha": ("sent", "delivered", "read"),
    "wawp": ("sent", "delivered", "read"),
    "wuts": ("sent", "delivered", "read"),
}

#: When sent, delivered and read fire, in seconds after the send answer
#: (times ``time_scale``). gowa, which sends no "sent", uses the last two.
DEFAULT_RECEIPT_DELAYS: tuple[float, float, float] = (0.05, 0.1, 0.15)

# WAHA's ack numbers and names (WAMessageAck, docs/webhooks.md §0 and §2c).
_ACKS: dict[str, tuple[int, str]] = {
    "sent": (1, "SERVER"),
    "delivered": (2, "DEVICE"),
    "read": (3, "READ"),
}
# gowa's receipt_type_description texts (gowa-webhook-payload.md "Receipt Events").
_GOWA_RECEIPT_TEXT = {
    "delivered": (
        "means the message was delivered to the device (but the user might not have noticed)."
    ),
    "read": "the user opened the chat and saw the message.",
}
# What each sender puts in User-Agent: Go's net/http default, axios's own
# (WAHA sends with axios, §2; the version is a guess), and a guess for WUTS.
_USER_AGENTS = {
    "gowa": "Go-http-client/1.1",
    "waha": "axios/1.7.9",
    "wawp": "axios/1.7.9",
    "wuts": "wuts-webhooks/1.0",
}
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_ANSWER_READ = 64 * 1024


# ----------------------------------------------------------------------
# Subscriptions
# ----------------------------------------------------------------------


class WebhookTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One URL the sandbox sends webhooks to.

    Attributes:
        url: where to POST (http or https).
        provider: the gateway whose webhooks go there, or ``"*"`` for every one.
        secret: the signing secret. gowa signs with ``"secret"`` when none is
            set (§1); WAHA and WUTS send no signature without one; Wawp never
            signs (§3).
        events: ``"receipt"`` (delivery receipts), ``"message"`` (incoming
            messages), or both.
        hmac_version: WAHA only: 1 signs the body, 2 signs
            ``f"{timestamp}.{body}"`` and adds ``X-Webhook-Hmac-Version`` (a
            fork's scheme, docs/webhooks.md §2 [G]).
    """

    url: str
    provider: str = "*"
    secret: str | None = None
    events: tuple[EventKind, ...] = ("receipt", "message")
    hmac_version: Literal[1, 2] = 1

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook url must be an http:// or https:// URL with a host")
        if self.provider != "*" and self.provider not in GATEWAYS:
            raise ValueError(f"webhook provider must be * or one of {', '.join(GATEWAYS)}")
        if not self.events:
            raise ValueError("events must name receipt, message or both")
        if self.hmac_version == 2 and self.provider not in ("*", "waha"):
            raise ValueError("hmac_version 2 exists only for waha")

    def __repr__(self) -> str:
        secret = "None" if self.secret is None else "'***'"
        return (
            f"WebhookTarget(url={self.shown_url!r}, provider={self.provider!r}, "
            f"secret={secret}, events={self.events!r}, hmac_version={self.hmac_version})"
        )

    @property
    def shown_url(self) -> str:
        """The URL without credentials, query or last path segment, safe to show and record.

        The last segment is where a receiver of an unsigned gateway (Wawp,
        WUTS) keeps its secret token (docs/webhooks.md), so it is shown as ``***``.
        """
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        head, _, last = (parts.path or "/").rpartition("/")
        path = f"{head}/***" if last else f"{head}/"
        return urlunsplit((parts.scheme, netloc, path, "…" if parts.query else "", ""))

    def accepts(self, provider: str, kind: str) -> bool:
        """Whether webhooks of ``kind`` from ``provider`` go to this target."""
        return self.provider in ("*", provider) and kind in self.events


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook target in force, with its id. Its JSON view never shows the secret."""

    id: int
    target: WebhookTarget

    def view(self) -> dict[str, Any]:
        """A JSON-ready view: the URL as :attr:`WebhookTarget.shown_url`, no secret."""
        target = self.target
        return {
            "id": self.id,
            "url": target.shown_url,
            "provider": target.provider,
            "events": list(target.events),
            "signed": signs(target.provider, target) if target.provider != "*" else None,
            "has_secret": target.secret is not None,
            "hmac_version": target.hmac_version,
        }


def signs(provider: str, target: WebhookTarget) -> bool:
    """Whether ``provider``'s webhooks to ``target`` carry a signature (§0 table)."""
    if provider == "gowa":
        return True  # always: the default secret is "secret" (§1)
    if provider in ("waha", "wuts"):
        return target.secret is not None
    return False  # Wawp documents no signature (§3)


_OPTION_KEYS = ("provider", "secret", "events", "hmac_version")


def parse_webhook_option(text: str) -> WebhookTarget:
    """A target from the command line's ``--webhook URL[,provider=P][,secret=S][,...]``.

    Options (after the URL, comma-separated, any order): ``provider`` (a
    gateway or ``*``), ``secret``, ``events`` (``receipt``, ``message`` or
    ``receipt+message``) and ``hmac_version`` (1 or 2, WAHA). Only trailing
    pieces that start with a known ``key=`` are options, so a URL may
    itself contain commas; a secret may not.

    Raises:
        ValueError: with a message naming what is wrong (never the secret).
    """
    pieces = text.split(",")
    options: dict[str, str] = {}
    while len(pieces) > 1:
        key, sep, value = pieces[-1].partition("=")
        if not sep or key.strip() not in _OPTION_KEYS:
            break
        if key.strip() in options:
            raise ValueError(f"--webhook: {key.strip()} given twice")
        options[key.strip()] = value.strip()
        pieces.pop()
    url = ",".join(pieces).strip()
    fields: dict[str, Any] = {"url": url}
    if "provider" in options:
        fields["provider"] = options["provider"]
    if "secret" in options:
        if not options["secret"]:
            raise ValueError("--webhook: secret must not be empty")
        fields["secret"] = options["secret"]
    if "events" in options:
        fields["events"] = tuple(e for e in re.split(r"[+ ]", options["events"]) if e)
    if "hmac_version" in options:
        if options["hmac_version"] not in ("1", "2"):
            raise ValueError("--webhook: hmac_version must be 1 or 2")
        fields["hmac_version"] = int(options["hmac_version"])
    try:
        return msgspec.convert(fields, WebhookTarget)
    except (msgspec.ValidationError, ValueError) as exc:
        shown = urlsplit(url)._replace(query="", netloc=urlsplit(url).hostname or "").geturl()
        raise ValueError(f"--webhook {shown!r}: {exc}") from None


# ----------------------------------------------------------------------
# Who sends: the gateway's own account
# ----------------------------------------------------------------------


class GatewayIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What a gateway says about itself in its webhooks.

    Attributes:
        provider: the gateway.
        me: its WhatsApp account (``…@c.us`` for WAHA/Wawp, a JID for gowa/WUTS).
        push_name: the account's profile name (WAHA/Wawp ``me.pushName``).
        session: the WAHA session (WAHA/Wawp envelopes).
        device_id: gowa: the device JID (its ``device_id``); WUTS: the device id.
        user_id: WUTS: the user id.
        environment: WAHA's ``environment`` object; ``None`` leaves it out (Wawp).
    """

    provider: str
    me: str
    push_name: str = ""
    session: str = "default"
    device_id: str = ""
    user_id: str = ""
    environment: dict[str, Any] | None = None


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message "from a phone" the sandbox announces with a ``message`` webhook.

    Attributes:
        provider: the gateway that receives it.
        message_id: the gateway's id for it (WAHA/Wawp ``false_<chat>_<id>``,
            gowa and WUTS bare).
        chat_id: the sender's chat id in the gateway's form.
        sent_at: when it was sent (seconds since the epoch).
        text: the text, or the image's caption.
        push_name: the sender's profile name.
        media_url: where the gateway serves the image (WAHA/Wawp ``media.url``;
            WUTS ``GET /messages/{id}/media``).
        media_path: gowa's ``statics/media/<file>`` path.
        mimetype: the image's media type.
        filename: the image's file name, if the sender gave one.
        size: image bytes.
    """

    provider: str
    message_id: str
    chat_id: str
    sent_at: float
    text: str | None = None
    push_name: str = "Sandbox Contact"
    media_url: str | None = None
    media_path: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    size: int | None = None

    @property
    def kind(self) -> Literal["text", "image"]:
        """``"image"`` when it carries an image."""
        return "image" if self.mimetype is not None else "text"


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event, built but not yet encoded or signed.

    Attributes:
        provider: the gateway sending it.
        kind: ``"receipt"`` or ``"message"``.
        name: the wire event name (``message.ack``, ``message.delivered``, ``message``).
        label: ``sent``, ``delivered``, ``read`` or ``message`` (what faults' ``event`` names).
        message_id: the id of the message it is about.
        document: the JSON document, in the gateway's key order, without a
            WUTS ``signature``.
        created_ms: when the event was made (ms since the epoch).
        event_id: the envelope id (WAHA/Wawp ``evt_…``, WUTS uuid); gowa has none.
    """

    provider: str
    kind: EventKind
    name: str
    label: str
    message_id: str
    document: dict[str, Any]
    created_ms: int
    event_id: str | None = None


def _ulid(ms: int, rng: random.Random) -> str:
    """A lower-case ULID (48-bit ms time + 80 random bits, Crockford base32)."""
    value = (ms & (2**48 - 1)) << 80 | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _rfc3339(seconds: float) -> str:
    """Go's ``time.RFC3339`` in UTC, whole seconds: ``2025-07-18T22:44:20Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def _waha_envelope(
    identity: GatewayIdentity, *, event_id: str, ms: int, event: str, payload: dict[str, Any]
) -> dict[str, Any]:
    # Key order of WAHA's populateSessionInfo and the WAHAWebhookMessage
    # example (docs/webhooks.md §2, §3a): id, timestamp, session, metadata,
    # engine, event, payload, me, environment. Wawp shows no environment (§3a).
    document: dict[str, Any] = {
        "id": event_id,
        "timestamp": ms,
        "session": identity.session,
        "metadata": {},
        "engine": "WEBJS",
        "event": event,
        "payload": payload,
        "me": {"id": identity.me, "pushName": identity.push_name},
    }
    if identity.environment is not None:
        document["environment"] = identity.environment
    return document


def receipt_event(
    identity: GatewayIdentity,
    stored: StoredMessage,
    status: ReceiptStatus,
    *,
    now: float,
    rng: random.Random,
) -> WebhookEvent:
    """The receipt webhook ``identity``'s gateway sends when ``stored`` reaches ``status``.

    Raises:
        ValueError: the gateway never sends that receipt (gowa has no "sent", §1c).
    """
    provider = identity.provider
    if status not in RECEIPTS.get(provider, ()):
        raise ValueError(f"{provider} sends no {status!r} receipt")
    ms = int(now * 1000)
    chat = stored.chat_id
    if provider in ("waha", "wawp"):
        ack, ack_name = _ACKS[status]
        # WAMessageAckBody (required id, from, to, participant, fromMe, ack,
        # ackName; docs/webhooks.md §2c): from is the sender, us.
        payload: dict[str, Any] = {
            "id": stored.message_id,
            "from": identity.me,
            "to": chat,
            "participant": None,
            "fromMe": True,
            "ack": ack,
            "ackName": ack_name,
            "_data": {},
        }
        event_id = "evt_" + _ulid(ms, rng)
        document = _waha_envelope(
            identity, event_id=event_id, ms=ms, event="message.ack", payload=payload
        )
        return WebhookEvent(
            provider=provider,
            kind="receipt",
            name="message.ack",
            label=status,
            message_id=stored.message_id,
            document=document,
            created_ms=ms,
            event_id=event_id,
        )
    if provider == "gowa":
        # event_receipt.go (docs/webhooks.md §1c): the receipt comes from the
        # recipient, so "from" is the chat; "delivered" is whatsmeow's empty type.
        document = {
            "event": "message.ack",
            "device_id": identity.device_id,
            "timestamp": _rfc3339(now),
            "payload": {
                "chat_id": chat,
                "from": chat,
                "ids": [stored.message_id],
                "receipt_type": status,
                "receipt_type_description": _GOWA_RECEIPT_TEXT[status],
            },
        }
        return WebhookEvent(
            provider=provider,
            kind="receipt",
            name="message.ack",
            label=status,
            message_id=stored.message_id,
            document=document,
            created_ms=ms,
        )
    # WUTS: one event per status (message.sent/.delivered/.read, §4c). The
    # data shape is a guess [G]: WUTS's example was not found.
    event_id = _uuid4(rng)
    name = f"message.{status}"
    document = {
        "id": event_id,
        "event": name,
        "timestamp": int(now),
        "device_id": identity.device_id,
        "user_id": identity.user_id,
        "data": {
            "message_id": stored.message_id,
            "to": chat,
            "status": status,
            "timestamp": _rfc3339(now),
        },
    }
    return WebhookEvent(
        provider=provider,
        kind="receipt",
        name=name,
        label=status,
        message_id=stored.message_id,
        document=document,
        created_ms=ms,
        event_id=event_id,
    )


def message_event(
    identity: GatewayIdentity, inbound: InboundMessage, *, now: float, rng: random.Random
) -> WebhookEvent:
    """The ``message`` webhook announcing ``inbound`` (docs/webhooks.md §1a-b, §2a-b, §3, §4)."""
    provider = identity.provider
    ms = int(now * 1000)
    image = inbound.kind == "image"
    event_id: str | None = None
    if provider in ("waha", "wawp"):
        # WAMessage as in the docs' examples (§2a, §2b): an incoming message
        # is fromMe false, from the sender, to us.
        payload: dict[str, Any] = {
            "id": inbound.message_id,
            "timestamp": int(inbound.sent_at),
            "from": inbound.chat_id,
            "fromMe": False,
            "source": "app",
            "to": identity.me,
            "body": inbound.text or "",
            "hasMedia": image,
        }
        if image:
            payload["media"] = {
                "url": inbound.media_url,
                "mimetype": inbound.mimetype,
                "filename": inbound.filename,
                "error": None,
            }
        payload.update(ack=1, vCards=[], _data={"notifyName": inbound.push_name})
        event_id = "evt_" + _ulid(ms, rng)
        document = _waha_envelope(
            identity, event_id=event_id, ms=ms, event="message", payload=payload
        )
        name = "message"
    elif provider == "gowa":
        # event_message.go / webhook-payload.md "Text Message" and "Image
        # Message" (auto-download on, gowa's default, §1b): a caption makes
        # ``image`` an object and is copied to ``body``; without one ``image``
        # is the plain path.
        gowa_payload: dict[str, Any] = {
            "id": inbound.message_id,
            "chat_id": inbound.chat_id,
            "from": inbound.chat_id,
            "from_name": inbound.push_name,
            "timestamp": _rfc3339(inbound.sent_at),
            "is_from_me": False,
        }
        if inbound.text:
            gowa_payload["body"] = inbound.text
        if image:
            gowa_payload["image"] = (
                {"path": inbound.media_path, "caption": inbound.text}
                if inbound.text
                else inbound.media_path
            )
        document = {"event": "message", "device_id": identity.device_id, "payload": gowa_payload}
        name = "message"
    else:
        # WUTS "Receiving Messages" (§4a); an image is message_type "image"
        # with the caption in content [G] (§4b), its bytes at
        # GET /messages/{message_id}/media.
        event_id = _uuid4(rng)
        document = {
            "id": event_id,
            "event": "message.received",
            "timestamp": int(now),
            "device_id": identity.device_id,
            "user_id": identity.user_id,
            "data": {
                "message_id": inbound.message_id,
                "from": inbound.chat_id,
                "to": identity.me,
                "content": inbound.text or "",
                "message_type": "image" if image else "text",
                "timestamp": _rfc3339(inbound.sent_at),
                "is_from_me": False,
                "push_name": inbound.push_name,
            },
        }
        name = "message.received"
    return WebhookEvent(
        provider=provider,
        kind="message",
        name=name,
        label="message",
        message_id=inbound.message_id,
        document=document,
        created_ms=ms,
        event_id=event_id,
    )


# ----------------------------------------------------------------------
# Encoding and signing
# ----------------------------------------------------------------------


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes a ``map[string]any``.

    Compact, keys sorted at every level (byte order, which is code point
    order), ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c`` and
    so on, other non-ASCII kept as UTF-8, and invalid UTF-8 (a lone
    surrogate here) replaced by U+FFFD (Go ``encoding/json``, docs/webhooks.md §1).
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # These characters occur only inside strings: JSON's syntax has none.
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _node_json(value: Any) -> bytes:
    """``JSON.stringify(value)``: compact, insertion order, UTF-8, lone surrogates escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def encode_document(provider: str, document: Mapping[str, Any]) -> bytes:
    """The body bytes ``provider`` sends for ``document`` (signature field not included).

    gowa is Go (:func:`go_json`); WAHA and Wawp are Node (``JSON.stringify``:
    compact, insertion order). WUTS's server language is unknown: compact in
    insertion order, like its documented example [G].
    """
    if provider == "gowa":
        return go_json(document)
    return _node_json(document)


def _other_bytes(body: bytes) -> bytes:
    # What a bad_signature fault signs instead of the body: same length class,
    # different bytes, so the MAC is well-formed but wrong.
    return b"sandbox-bad-signature:" + body


def render(
    event: WebhookEvent,
    target: WebhookTarget,
    *,
    now_ms: int,
    rng: random.Random,
    bad_signature: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one delivery of ``event`` to ``target``.

    Pure. The body is the same on every call (retries are byte-identical, §1,
    §2); WAHA's ``X-Webhook-Request-Id`` is new on every call ("unique per
    request", §2) and its HMAC version 2 signs ``now_ms``, the attempt's time.
    ``bad_signature`` signs other bytes (the ``bad_signature`` fault).
    """
    provider = event.provider
    headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENTS[provider]}
    if provider == "gowa":
        body = encode_document(provider, event.document)
        secret = target.secret if target.secret is not None else GOWA_DEFAULT_SECRET
        signed = _other_bytes(body) if bad_signature else body
        headers.update(sign_headers("gowa", signed, secret))
        return body, headers
    if provider in ("waha", "wawp"):
        body = encode_document(provider, event.document)
        # X-Webhook-Request-Id and X-Webhook-Timestamp are always sent (waha
        # docs "Headers", §2); version 1's timestamp is the event's own.
        headers["X-Webhook-Request-Id"] = _uuid4(rng)
        version = target.hmac_version if provider == "waha" else 1
        stamp = now_ms if version == 2 else event.created_ms
        headers["X-Webhook-Timestamp"] = str(stamp)
        if provider == "waha" and target.secret is not None:
            signed = _other_bytes(body) if bad_signature else body
            headers.update(
                sign_headers("waha", signed, target.secret, timestamp_ms=stamp, version=version)
            )
        return body, headers
    # WUTS: "signature": "sha256=…" inside the body, only with a secret (§4).
    # What is signed is unknown; wuts_body_signature is wamsg's labelled
    # guess: the compact body without the field, which is then appended.
    document = dict(event.document)
    if target.secret is not None:
        unsigned = encode_document(provider, document)
        signed = _other_bytes(unsigned) if bad_signature else unsigned
        document["signature"] = wuts_body_signature(signed, target.secret)
    return encode_document(provider, document), headers


def build_receipt(
    identity: GatewayIdentity,
    stored: StoredMessage,
    status: ReceiptStatus,
    target: WebhookTarget,
    *,
    now: float,
    rng: random.Random,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of the ``status`` receipt for ``stored``, as sent to ``target``."""
    event = receipt_event(identity, stored, status, now=now, rng=rng)
    return render(event, target, now_ms=int(now * 1000), rng=rng)


# ----------------------------------------------------------------------
# Retry schedules
# ----------------------------------------------------------------------


class RetrySchedule(msgspec.Struct, frozen=True, kw_only=True):
    """How a gateway retries one webhook (seconds; all scaled by ``time_scale``).

    Attributes:
        attempts: requests in all, the first included.
        timeout: per attempt; ``None`` waits for ever.
        delays: the sleep after attempt 1, 2, …; the last repeats.
        honours_retry_after: sleep at least the answer's ``Retry-After``.
        job_timeout: a deadline for the whole event, every URL included; an
            attempt after it fails at once, as a Go request on an expired
            context does.
        sequential: several URLs one after another (else in parallel).
        source: where the numbers come from; ``[G]`` marks a guess.
    """

    attempts: int
    timeout: float | None
    delays: tuple[float, ...]
    honours_retry_after: bool = False
    job_timeout: float | None = None
    sequential: bool = False
    source: str = ""

    def delay_after(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep after attempt ``attempt`` (1-based) failed, unscaled."""
        delay = self.delays[min(attempt, len(self.delays)) - 1] if self.delays else 0.0
        if self.honours_retry_after and retry_after is not None:
            delay = max(delay, retry_after)
        return delay


#: Each gateway's retries (docs/webhooks.md §0, §1-§4).
SCHEDULES: dict[str, RetrySchedule] = {
    # webhook.go: http.Client{Timeout: 10s}, 5 attempts, sleeps 1, 2, 4, 8 s,
    # any non-2xx retried; the event's goroutine has a 30 s context, shared
    # by the URLs, which are tried one after another (§1).
    "gowa": RetrySchedule(
        attempts=5,
        timeout=10.0,
        delays=(1.0, 2.0, 4.0, 8.0),
        job_timeout=30.0,
        sequential=True,
        source="docs/webhooks.md §1 [F]",
    ),
    # axios-retry: retries.attempts ?? 15, constant 2 s, Retry-After honoured,
    # retryCondition () => true; no request timeout (§2). Taken as 15
    # requests in all, as the doc's table says; axios-retry's ``retries``
    # would make it 1 + 15 [I].
    "waha": RetrySchedule(
        attempts=15,
        timeout=None,
        delays=(2.0,),
        honours_retry_after=True,
        source="docs/webhooks.md §2 [F]",
    ),
    # retry_attempts (default 3) and a per-request timeout (examples: 10 s)
    # are documented; the backoff is not (§4). Guessed: the first request plus
    # 3 retries, sleeping 1, 2, 4 s, URLs one after another [G].
    "wuts": RetrySchedule(
        attempts=4,
        timeout=10.0,
        delays=(1.0, 2.0, 4.0),
        sequential=True,
        source="docs/webhooks.md §4: retry_attempts=3, timeout=10 s; backoff [G]",
    ),
}
# "Wawp retries", no schedule published: WAHA's, since Wawp runs WAHA [G] (§3).
SCHEDULES["wawp"] = msgspec.structs.replace(
    SCHEDULES["waha"], source="docs/webhooks.md §3: WAHA's schedule [G]"
)


# ----------------------------------------------------------------------
# Delivery
# ----------------------------------------------------------------------


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request the sandbox made (or could not make) to deliver a webhook.

    Attributes:
        seq: its number, counting up from 1.
        webhook_id: the subscription it went to.
        provider: the gateway imitated.
        event: the wire event name.
        label: ``sent``, ``delivered``, ``read`` or ``message``.
        message_id: the message it is about.
        url: the target URL, without credentials or query.
        attempt: 1 for the first request, 2 for the first retry, …
        status: the HTTP status answered, if any.
        error: the error type when there was no answer (``TimeoutError``,
            ``ClientConnectorError``, ``DeadlineExceeded`` after gowa's 30 s).
        duration: seconds the attempt took (real, not scaled).
        fault: the webhook fault that shaped it, if any.
        at: when it started (seconds since the epoch).
    """

    seq: int
    webhook_id: int
    provider: str
    event: str
    label: str
    message_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    duration: float
    fault: str | None
    at: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class _Job:
    """One event on its way to its targets."""

    def __init__(self, event: WebhookEvent, targets: list[tuple[int, WebhookTarget]]) -> None:
        self.event = event
        self.targets = targets
        self.fault: str | None = None
        #: Set once every first attempt that starts at once has finished (the
        #: first URL's for sequential gateways, every URL's otherwise).
        self.first_done = asyncio.Event()
        self.pending_first = 0

    def first_attempt_finished(self) -> None:
        self.pending_first -= 1
        if self.pending_first <= 0:
            self.first_done.set()


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WebhookDeliverer:
    """Sends webhook events to the subscribed targets, with retries and faults.

    Runs on one event loop. Its aiohttp ``ClientSession`` is made on first
    use inside that loop; :meth:`aclose` cancels and awaits every task and
    closes the session (the sandbox server calls it on cleanup), after which
    the deliverer can be used again.

    Args:
        faults: where the webhook faults are picked (the sandbox's own set).
        seed: makes event ids, request ids and duplicate delays repeatable.
        time_scale: multiplies every delay, timeout and deadline, so tests
            run gowa's 30 s schedule in 0.3 s with ``0.01``.
        max_records: how many :class:`DeliveryRecord` are kept.
        clock: the time source for envelopes and records (seconds since the epoch).
        schedules: replaces the schedules of some gateways.
    """

    def __init__(
        self,
        faults: FaultSet,
        *,
        seed: int | str | None = None,
        time_scale: float = 1.0,
        max_records: int = 1000,
        clock: Callable[[], float] = time.time,
        schedules: Mapping[str, RetrySchedule] | None = None,
    ) -> None:
        if not time_scale > 0 or math.isinf(time_scale):
            raise ValueError("time_scale must be a positive number")
        self.faults = faults
        self.time_scale = time_scale
        self.clock = clock
        self.schedules = {**SCHEDULES, **(schedules or {})}
        self.records: deque[DeliveryRecord] = deque(maxlen=max_records)
        #: The last record number handed out (0 before the first).
        self.last_seq = 0
        self.rng = random.Random(None if seed is None else f"{seed}:webhooks")  # noqa: S311
        self._record_seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._targets: dict[int, WebhookTarget] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- subscriptions --------------------------------------------------------

    def add(self, target: WebhookTarget) -> int:
        """Start sending to ``target``; returns its id."""
        webhook_id = next(self._ids)
        self._targets[webhook_id] = target
        return webhook_id

    def remove(self, webhook_id: int) -> bool:
        """Stop sending to a target; False if there was none with that id."""
        return self._targets.pop(webhook_id, None) is not None

    def clear(self) -> None:
        """Remove every target (deliveries under way go on)."""
        self._targets.clear()

    def subscriptions(self) -> list[Subscription]:
        """The targets in force, oldest first."""
        return [Subscription(id=i, target=t) for i, t in self._targets.items()]

    def targets_for(self, provider: str, kind: str) -> list[tuple[int, WebhookTarget]]:
        """The targets that want ``kind`` webhooks from ``provider``, oldest first."""
        return [(i, t) for i, t in self._targets.items() if t.accepts(provider, kind)]

    def wants(self, provider: str, kind: str) -> bool:
        """Whether any target wants ``kind`` webhooks from ``provider``."""
        return any(t.accepts(provider, kind) for t in self._targets.values())

    # -- tasks ----------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Tasks still running (deliveries, retries and scheduled receipts)."""
        return sum(not task.done() for task in self._tasks)

    def spawn(
        self, work: Awaitable[Any], *, name: str = "wamsg-sandbox-webhook"
    ) -> asyncio.Task[Any]:
        """Run ``work`` as a tracked task (cancelled and awaited by :meth:`aclose`)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("sandbox webhook task failed", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until every delivery, retry and scheduled receipt has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel and await every task, then close the HTTP session."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No session-wide timeout: each attempt has its own (or none, WAHA).
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False
            )
        return self._session

    # -- sending --------------------------------------------------------------

    def start(self, event: WebhookEvent) -> _Job | None:
        """Send ``event`` to every target that wants it, in a task; ``None`` if none does.

        The event-level faults (``duplicate``, ``concurrent_duplicate``,
        ``bad_signature``) are picked here, once for all its targets, and
        only when there is a target (so an unobserved fault is not spent).
        """
        targets = self.targets_for(event.provider, event.kind)
        if not targets:
            return None
        job = _Job(event, targets)
        kinds = ["duplicate", "concurrent_duplicate"]
        if any(signs(event.provider, target) for _, target in targets):
            kinds.append("bad_signature")
        fault = self.faults.pick_webhook(event.provider, kinds, event.label)
        job.fault = None if fault is None else fault.kind
        schedule = self.schedules[event.provider]
        job.pending_first = 1 if schedule.sequential else len(targets)
        self.spawn(self._run(job, schedule), name=f"wamsg-sandbox-webhook-{event.label}")
        return job

    async def send(self, event: WebhookEvent) -> None:
        """Start ``event`` and wait for its first attempt(s) to finish (retries go on)."""
        job = self.start(event)
        if job is not None:
            await job.first_done.wait()

    def start_receipts(
        self,
        steps: Sequence[tuple[float, ReceiptStatus]],
        build: Callable[[ReceiptStatus], WebhookEvent],
        *,
        provider: str,
    ) -> None:
        """Fire receipts in order, each ``delay`` seconds (scaled) after now.

        ``steps`` is ``(delay, status)`` in firing order. Each receipt waits
        for the previous one's first attempt, so a receiver answering at once
        sees them in that order. A ``missing_receipt`` fault drops one.
        """
        if not steps or not self.wants(provider, "receipt"):
            return
        self.spawn(self._receipts(steps, build, provider), name="wamsg-sandbox-receipts")

    async def _receipts(
        self,
        steps: Sequence[tuple[float, ReceiptStatus]],
        build: Callable[[ReceiptStatus], WebhookEvent],
        provider: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for delay, status in steps:
            wait = start + delay * self.time_scale - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.wants(provider, "receipt"):
                return
            if self.faults.pick_webhook(provider, ("missing_receipt",), status) is not None:
                _log.info("sandbox fault missing_receipt: %s %s not sent", provider, status)
                continue
            job = self.start(build(status))
            if job is not None:
                await job.first_done.wait()

    async def _run(self, job: _Job, schedule: RetrySchedule) -> None:
        loop = asyncio.get_running_loop()
        deadline = (
            None
            if schedule.job_timeout is None
            else loop.time() + schedule.job_timeout * self.time_scale
        )
        try:
            if schedule.sequential:
                # gowa's forwardToWebhooks, WUTS [G]: one URL after another,
                # each with its own retries (docs/webhooks.md §1).
                for index, (webhook_id, target) in enumerate(job.targets):
                    await self._to_target(
                        job, schedule, webhook_id, target, deadline, counts=index == 0
                    )
            else:
                await asyncio.gather(
                    *(
                        self._to_target(job, schedule, webhook_id, target, deadline, counts=True)
                        for webhook_id, target in job.targets
                    )
                )
        finally:
            job.first_done.set()

    async def _to_target(
        self,
        job: _Job,
        schedule: RetrySchedule,
        webhook_id: int,
        target: WebhookTarget,
        deadline: float | None,
        *,
        counts: bool,
    ) -> None:
        """Deliver one event to one target: its retries, then a ``duplicate`` copy."""
        bad = job.fault == "bad_signature" and signs(job.event.provider, target)
        fault = "bad_signature" if bad else None
        try:
            for attempt in range(1, schedule.attempts + 1):
                if attempt == 1 and job.fault == "concurrent_duplicate":
                    # Two identical requests at once: they cannot share an
                    # HTTP/1.1 connection, so they go on separate ones.
                    results = await asyncio.gather(
                        *(
                            self._attempt(
                                job,
                                schedule,
                                webhook_id,
                                target,
                                1,
                                deadline,
                                fault="concurrent_duplicate",
                            )
                            for _ in range(2)
                        )
                    )
                    ok, retry_after = results[0]
                    ok = ok or results[1][0]
                else:
                    ok, retry_after = await self._attempt(
                        job, schedule, webhook_id, target, attempt, deadline, fault=fault, bad=bad
                    )
                if attempt == 1 and counts:
                    counts = False
                    job.first_attempt_finished()
                if ok or attempt == schedule.attempts:
                    break
                # Go's time.Sleep ignores the context: the sleeps go on after
                # gowa's 30 s deadline, and the attempts then fail at once.
                await asyncio.sleep(schedule.delay_after(attempt, retry_after) * self.time_scale)
            if job.fault == "duplicate":
                await asyncio.sleep(self.rng.uniform(0.0, 0.05) * self.time_scale)
                await self._attempt(
                    job, schedule, webhook_id, target, 1, deadline, fault="duplicate", bad=bad
                )
        finally:
            if counts:
                job.first_attempt_finished()

    async def _attempt(
        self,
        job: _Job,
        schedule: RetrySchedule,
        webhook_id: int,
        target: WebhookTarget,
        attempt: int,
        deadline: float | None,
        *,
        fault: str | None,
        bad: bool = False,
    ) -> tuple[bool, float | None]:
        """One POST; records it. Returns (2xx?, Retry-After seconds)."""
        event = job.event
        loop = asyncio.get_running_loop()
        started_at = self.clock()
        started = time.perf_counter()
        timeout = None if schedule.timeout is None else schedule.timeout * self.time_scale
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        if deadline is not None and loop.time() >= deadline:
            error = "DeadlineExceeded"
        else:
            expires = None if timeout is None else loop.time() + timeout
            if deadline is not None and (expires is None or deadline < expires):
                expires = deadline
            body, headers = render(
                event, target, now_ms=int(started_at * 1000), rng=self.rng, bad_signature=bad
            )
            try:
                async with asyncio.timeout_at(expires):
                    async with self._client().post(
                        target.url, data=body, headers=headers, allow_redirects=False
                    ) as answer:
                        status = answer.status
                        retry_after = _retry_after(answer.headers.get("Retry-After"))
                        with contextlib.suppress(Exception):
                            await answer.content.read(_MAX_ANSWER_READ)
            except TimeoutError:
                expired_deadline = deadline is not None and loop.time() >= deadline
                error = "DeadlineExceeded" if expired_deadline else "TimeoutError"
                status = None
            except Exception as exc:  # every failure is recorded, and retried
                error = type(exc).__name__
                status = None
        self._record(
            webhook_id=webhook_id,
            event=event,
            url=target.shown_url,
            attempt=attempt,
            status=status,
            error=error,
            duration=time.perf_counter() - started,
            fault=fault,
            at=started_at,
        )
        # Retry-After is returned unscaled: the caller scales it with the schedule.
        return status is not None and 200 <= status < 300, retry_after

    def _record(
        self,
        *,
        webhook_id: int,
        event: WebhookEvent,
        url: str,
        attempt: int,
        status: int | None,
        error: str | None,
        duration: float,
        fault: str | None,
        at: float,
    ) -> None:
        seq = next(self._record_seq)
        self.last_seq = seq
        self.records.append(
            DeliveryRecord(
                seq=seq,
                webhook_id=webhook_id,
                provider=event.provider,
                event=event.name,
                label=event.label,
                message_id=event.message_id,
                url=url,
                attempt=attempt,
                status=status,
                error=error,
                duration=round(duration, 6),
                fault=fault,
                at=at,
            )
        )

    def find(self, *, after: int = 0) -> list[DeliveryRecord]:
        """The records with a larger number than ``after``, oldest first."""
        return [r for r in self.records if r.seq > after]
