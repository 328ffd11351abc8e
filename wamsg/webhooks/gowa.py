"""gowa (go-whatsapp-web-multidevice) webhooks: statuses, parsing, dedupe keys, verification.

The envelope is ``{event, device_id, session_id?, timestamp?, payload}``
(docs/webhooks.md §1; gowa-webhook-payload.md "Payload Structure"). gowa
sends no event id: retries are byte-identical (the body is marshalled once,
§1), so the dedupe key is a digest of the body. Sans-I/O.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import WebhookSignatureInvalid, WebhookSignatureMissing
from ..models import Status
from ._common import MessageKind, Obj, build_event, fallback_key, flag, from_rfc3339, obj, text
from ._model import Event, InboundMessage, MediaRef, StatusUpdate
from ._signing import (
    GOWA_DEFAULT_SECRET,
    GOWA_SIGNATURE,
    DefaultSecretWarning,
    hex_matches,
    hmac_hex,
    one_header,
)

__all__ = ["RECEIPT_STATUS", "SELF_RECEIPTS", "dedupe_key", "parse_event", "verify"]

PROVIDER = "gowa"

#: gowa's ``payload.receipt_type`` -> Status (docs/webhooks.md §5.1). gowa
#: forwards only delivered, read and read-self (§1 (c)); ``played`` is
#: whatsmeow's name, kept in case a later gowa forwards it. Any other type
#: becomes ``Status.UNKNOWN`` with ``raw_status`` kept.
RECEIPT_STATUS: dict[str, Status] = {
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.PLAYED,
}

#: Receipts about *this* account reading (on another of its devices):
#: not a status of a sent message, so they parse as ``kind="other"`` (§5.1 "ignored").
SELF_RECEIPTS = frozenset({"read-self", "played-self"})

# Media fields other than ``image`` (gowa-webhook-payload.md "Media Messages"):
# the message is kind "other", with its media reference.
_OTHER_MEDIA = ("video", "audio", "document", "sticker", "video_note")


def dedupe_key(body: bytes, index: int | None = None) -> str:
    """``"gowa:" + sha256(body)``: gowa re-sends the same bytes on every retry (§1)."""
    return fallback_key(body, index, prefix="gowa:")


def parse_event(raw: Obj, *, body: bytes, index: int | None = None) -> Event:
    """One gowa envelope as an :class:`Event`; never raises (unknown shapes are ``other``)."""
    name = text(raw, "event")
    payload = obj(raw, "payload")
    # Receipts carry a top-level RFC 3339 time; messages only payload.timestamp
    # (gowa-webhook-payload.md "Receipt Events", "Common Payload Fields").
    occurred = from_rfc3339(raw.get("timestamp")) or from_rfc3339(
        payload.get("timestamp") if payload is not None else None
    )
    message = _message(payload) if name == "message" and payload is not None else None
    status = _receipt(payload) if name == "message.ack" and payload is not None else None
    return build_event(
        raw,
        provider=PROVIDER,
        dedupe_key=dedupe_key(body, index),
        instance=text(raw, "device_id") or "",
        event_id=None,  # gowa sends none (docs/webhooks.md §0)
        occurred_at=occurred,
        message=message,
        status=status,
    )


def _media(value: Any) -> MediaRef:
    """gowa's media field, in its three shapes (docs/webhooks.md §1 (b)).

    * ``"statics/media/….jpeg"``: auto-download on, no caption; the file is
      served under the gowa base URL, behind its Basic auth;
    * ``{"path": …, "caption": …}``: auto-download on, with a caption;
    * ``{"url": "https://mmg.whatsapp.net/…", "caption": …}``: auto-download
      off; that URL is WhatsApp's *encrypted* CDN object, useless without the
      media key, hence ``unavailable`` (the url is kept for the record).
    """
    if isinstance(value, str):
        return (
            MediaRef(fetch="gateway_auth", path=value) if value else MediaRef(fetch="unavailable")
        )
    if not isinstance(value, dict):
        return MediaRef(fetch="unavailable")
    path = text(value, "path")
    return MediaRef(
        fetch="gateway_auth" if path else "unavailable",
        url=text(value, "url"),
        path=path,
        mimetype=text(value, "mime_type") or text(value, "mimetype"),
        filename=text(value, "filename"),
        caption=text(value, "caption"),
    )


def _message(payload: Obj) -> InboundMessage | None:
    ident = text(payload, "id")
    chat = text(payload, "chat_id")
    sender = text(payload, "from")
    if ident is None or (chat is None and sender is None):
        return None
    body = text(payload, "body")  # the caption is copied here too (§1 (b))
    media: MediaRef | None = None
    kind: MessageKind = "text" if body is not None else "other"
    if payload.get("image") is not None:
        kind, media = "image", _media(payload["image"])
    else:
        for field in _OTHER_MEDIA:
            if payload.get(field) is not None:
                kind, media = "other", _media(payload[field])
                break
    return InboundMessage(
        message_id=ident,
        chat_id=chat or sender or "",
        sender=sender or chat or "",
        kind=kind,
        from_me=flag(payload, "is_from_me") is True,
        text=body if body is not None else media.caption if media is not None else None,
        media=media,
        reply_to=text(payload, "replied_to_id"),
        # from_name is the sender's push name; sender_display_name is gowa's
        # resolved label, which falls back to the number itself (payload doc
        # "Sender Display Name Resolution"), so it comes second.
        sender_name=text(payload, "from_name") or text(payload, "sender_display_name"),
        sent_at=from_rfc3339(payload.get("timestamp")),
    )


def _receipt(payload: Obj) -> StatusUpdate | None:
    ids = payload.get("ids")
    message_ids = tuple(i for i in ids if isinstance(i, str) and i) if isinstance(ids, list) else ()
    receipt_type = payload.get("receipt_type")
    if not message_ids or not isinstance(receipt_type, str) or receipt_type in SELF_RECEIPTS:
        return None
    return StatusUpdate(
        message_ids=message_ids,  # bare ids, as gowa's send answer gives them
        status=RECEIPT_STATUS.get(receipt_type, Status.UNKNOWN),
        raw_status=receipt_type,
        recipient=text(payload, "from"),  # one receipt per group participant (§1 (c))
        chat_id=text(payload, "chat_id"),
    )


def verify(found: dict[str, list[str]], body: bytes, secret: str) -> None:
    """Check ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`` (docs/webhooks.md §1).

    Warns with :class:`DefaultSecretWarning` when ``secret`` is gowa's
    default ``"secret"``, which anyone can sign with (§1).
    """
    if secret == GOWA_DEFAULT_SECRET:
        warnings.warn(
            DefaultSecretWarning(
                "gowa: the webhook secret is gowa's default 'secret', which anyone can sign "
                "with; set WHATSAPP_WEBHOOK_SECRET (or --webhook-secret) on gowa and here"
            ),
            stacklevel=3,  # the caller of wamsg.webhooks.verify
        )
    signature = one_header(found, GOWA_SIGNATURE, PROVIDER)
    if signature is None:
        raise WebhookSignatureMissing(
            f"gowa: no {GOWA_SIGNATURE} header; gowa signs every webhook, "
            "so this request did not come from gowa",
            provider=PROVIDER,
        )
    if not hex_matches(hmac_hex(secret, body, "sha256"), signature, prefix="sha256="):
        raise WebhookSignatureInvalid(
            f"gowa: {GOWA_SIGNATURE} does not match the body "
            "(wrong secret, or the body was changed)",
            provider=PROVIDER,
        )
