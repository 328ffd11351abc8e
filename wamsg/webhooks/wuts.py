"""WUTS webhooks: statuses, parsing, dedupe keys, and (not yet) verification.

The envelope is ``{id, event, timestamp(s), device_id, user_id, data,
signature}`` (docs/webhooks.md §4, "Receiving Messages" guide). Only the
text message is documented; the image and receipt shapes below are
**guesses** ([G] in §4), kept narrow so that a different real shape parses
as ``kind="other"`` rather than as something wrong. Sans-I/O.
"""

from __future__ import annotations

from ..errors import WebhookVerificationUnsupported
from ..models import Status
from ._common import (
    MessageKind,
    Obj,
    build_event,
    fallback_key,
    flag,
    from_epoch_s,
    from_rfc3339,
    obj,
    text,
)
from ._model import Event, InboundMessage, MediaRef, StatusUpdate
from ._signing import verify_url_token

__all__ = ["DATA_STATUS", "EVENT_STATUS", "dedupe_key", "parse_event", "verify"]

PROVIDER = "wuts"

#: WUTS receipt events -> Status (docs/webhooks.md §4 (c), §5.1). There is no
#: ``message.played`` event: "played" exists only in the status API.
EVENT_STATUS: dict[str, Status] = {
    "message.sent": Status.SENT,
    "message.delivered": Status.DELIVERED,
    "message.read": Status.READ,
}

#: WUTS status strings (``GET /messages/{id}/status``, §4 (c)); read from a
#: receipt's ``data.status`` when it has one [G], before the event name.
DATA_STATUS: dict[str, Status] = {
    "pending": Status.QUEUED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.PLAYED,
}

_MESSAGE_EVENTS = frozenset({"message.received"})
# message_type values that are plain text (the guide shows "text").
_TEXT_TYPES = frozenset({"text", "conversation", "extended_text"})


def dedupe_key(raw: Obj, body: bytes, index: int | None = None) -> str:
    """``f"wuts:{device_id}:{id}"`` from the envelope, else ``"wuts:sha256:<body digest>"``."""
    event_id = text(raw, "id")
    if event_id is None:
        return fallback_key(body, index, prefix="wuts:sha256:")
    return f"wuts:{text(raw, 'device_id') or ''}:{event_id}"


def parse_event(raw: Obj, *, body: bytes, index: int | None = None) -> Event:
    """One WUTS envelope as an :class:`Event`; never raises."""
    name = text(raw, "event")
    data = obj(raw, "data")
    message = _message(data) if name in _MESSAGE_EVENTS and data is not None else None
    status = _receipt(name, data) if name in EVENT_STATUS and data is not None else None
    return build_event(
        raw,
        provider=PROVIDER,
        dedupe_key=dedupe_key(raw, body, index),
        instance=text(raw, "device_id") or "",
        event_id=text(raw, "id"),
        occurred_at=from_epoch_s(raw.get("timestamp")),  # envelope time, seconds (§4)
        message=message,
        status=status,
    )


def _message(data: Obj) -> InboundMessage | None:
    ident = text(data, "message_id")
    sender_jid, to = text(data, "from"), text(data, "to")
    from_me = flag(data, "is_from_me") is True
    chat = text(data, "chat_jid") or (to if from_me else sender_jid) or sender_jid or to
    if ident is None or chat is None:
        return None
    content = text(data, "content")
    message_type = text(data, "message_type")
    media: MediaRef | None = None
    kind: MessageKind
    if message_type == "image":
        # [G] §4 (b): the caption in "content"; the bytes only through
        # GET /messages/{message_id}/media (§4 (b), [K13]).
        kind = "image"
        media = MediaRef(fetch="gateway_api", mimetype=text(data, "mimetype"), caption=content)
    elif content is not None and (message_type is None or message_type in _TEXT_TYPES):
        kind = "text"
    else:
        kind = "other"
    return InboundMessage(
        message_id=ident,  # the bare WhatsApp id, as WUTS's send answer gives it
        chat_id=chat,
        sender=sender_jid or chat,
        kind=kind,
        from_me=from_me,
        text=content,
        media=media,
        reply_to=None,  # not documented for WUTS webhooks
        sender_name=text(data, "push_name"),
        sent_at=from_rfc3339(data.get("timestamp")) or from_epoch_s(data.get("timestamp")),
    )


def _receipt(name: str, data: Obj) -> StatusUpdate | None:
    # [G] §4 (c): the receipt payload was not found; "data.message_id" as in
    # the message event is assumed, with the chat in "to" or "chat_jid".
    ident = text(data, "message_id")
    if ident is None:
        return None
    raw_status = text(data, "status")
    status = DATA_STATUS.get(raw_status.lower()) if raw_status is not None else None
    if status is None:
        status, raw_status = EVENT_STATUS[name], name
    chat = text(data, "chat_jid") or text(data, "to")
    return StatusUpdate(
        message_ids=(ident,),
        status=status,
        raw_status=raw_status or name,
        recipient=chat,
        chat_id=chat,
    )


def verify(url_token: str | None, secret: str) -> None:
    """WUTS's body ``signature`` cannot be checked yet; a secret URL token can.

    WUTS signs into a ``signature`` field of the body, but what it signs is
    unconfirmed (docs/webhooks.md §4 [G]), and a guessed scheme would either
    refuse every real delivery or give false safety. So without a
    ``url_token`` this raises :class:`WebhookVerificationUnsupported`.
    """
    if url_token is None:
        raise WebhookVerificationUnsupported(
            "wuts: verifying WUTS webhook signatures is not supported yet: WUTS signs a "
            "'signature' field inside the body, but which bytes it signs is unconfirmed "
            "(docs/webhooks.md §4), and wamsg will not guess. Protect the endpoint with a "
            "secret token in the webhook URL path (pass it as url_token), or check a custom "
            "header set through the headers{} of WUTS's webhook config yourself",
            provider=PROVIDER,
        )
    verify_url_token(
        PROVIDER,
        url_token,
        secret,
        missing="put a secret token in the webhook URL path and pass it as url_token",
    )
