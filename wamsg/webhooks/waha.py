"""WAHA and Wawp webhooks: statuses, parsing, dedupe keys, verification.

Wawp is hosted WAHA and sends WAHA's envelope
``{id, timestamp(ms), session, metadata, engine, event, payload, me, environment?}``
(docs/webhooks.md §2, §3), so one parser serves both, named by ``provider``.
They differ in signing: WAHA signs with an HMAC key when one is set (§2),
Wawp does not sign at all (§3). Sans-I/O.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import (
    WebhookPayloadError,
    WebhookReplay,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
)
from ..models import Status
from ._common import (
    MessageKind,
    Obj,
    body_digest,
    build_event,
    decode_body,
    fallback_key,
    flag,
    from_epoch_ms,
    from_epoch_s,
    integer,
    number,
    obj,
    serialized_parts,
    strip_participant,
    text,
)
from ._model import Event, InboundMessage, MediaRef, StatusUpdate
from ._signing import (
    WAHA_ALGORITHM,
    WAHA_HMAC,
    WAHA_TIMESTAMP,
    WAHA_VERSION,
    check_window,
    hex_matches,
    hmac_hex,
    one_header,
    verify_url_token,
    waha_v2_message,
)

__all__ = [
    "ACK_NAME_STATUS",
    "ACK_STATUS",
    "V2_TOLERANCE",
    "dedupe_key",
    "parse_event",
    "verify",
    "verify_wawp",
]

#: WAHA/Wawp ``ack`` -> Status (waha-docs "message.ack"; docs/webhooks.md §5.1).
ACK_STATUS: dict[int, Status] = {
    -1: Status.FAILED,  # ERROR
    0: Status.QUEUED,  # PENDING
    1: Status.SENT,  # SERVER
    2: Status.DELIVERED,  # DEVICE
    3: Status.READ,
    4: Status.PLAYED,
}

#: The same by ``ackName``, which WAHA's docs call the status field (``ack``
#: is kept "for backward compatibility"), so it is read first.
ACK_NAME_STATUS: dict[str, Status] = {
    "ERROR": Status.FAILED,
    "PENDING": Status.QUEUED,
    "SERVER": Status.SENT,
    "DEVICE": Status.DELIVERED,
    "READ": Status.READ,
    "PLAYED": Status.PLAYED,
}

# "message" is an incoming message; "message.any" every message, own ones too
# (docs/webhooks.md §2 (a)). Both are messages.
_MESSAGE_EVENTS = frozenset({"message", "message.any"})
# "message.ack.group" carries one participant's ack (§2 (c)); WAHA's own doc
# example of it is even named "message.ack".
_ACK_EVENTS = frozenset({"message.ack", "message.ack.group"})

#: Seconds a version-2 ``X-Webhook-Timestamp`` may be away from now (§5.3).
V2_TOLERANCE = 300.0

_SHORT_TOKEN = re.compile(r"[A-Za-z0-9]{1,16}")


def dedupe_key(provider: str, raw: Obj, body: bytes, index: int | None = None) -> str:
    """``"<provider>:<session>:<id>"`` from the envelope, else ``"<provider>:sha256:<digest>"``.

    WAHA sets the envelope ``id`` once per event, so every retry and every
    webhook URL carries the same one (docs/webhooks.md §2). The docs' own
    examples omit it; such a body is keyed by its digest.
    """
    event_id = text(raw, "id")
    if event_id is None:
        return fallback_key(body, index, prefix=f"{provider}:sha256:")
    return f"{provider}:{text(raw, 'session') or ''}:{event_id}"


def parse_event(raw: Obj, *, provider: str, body: bytes, index: int | None = None) -> Event:
    """One WAHA/Wawp envelope as an :class:`Event`; never raises."""
    name = text(raw, "event")
    payload = obj(raw, "payload")
    message = _message(payload) if name in _MESSAGE_EVENTS and payload is not None else None
    status = _ack(payload) if name in _ACK_EVENTS and payload is not None else None
    key = dedupe_key(provider, raw, body, index)
    if message is not None:
        # `message` and `message.any` (or a session URL and a global one) bring
        # one WhatsApp message as two events with two envelope ids (waha#1384,
        # docs/webhooks.md §6): a message is keyed by its own id, which every
        # retry and every subscription carries.
        # Hashed: the id holds the chat's phone number, and keys are stored.
        digest = body_digest(message.message_id.encode())[:32]
        key = f"{provider}:{text(raw, 'session') or ''}:message:{digest}"
    return build_event(
        raw,
        provider=provider,
        dedupe_key=key,
        instance=text(raw, "session") or "",
        event_id=text(raw, "id"),
        occurred_at=from_epoch_ms(raw.get("timestamp")),  # envelope time, ms (§2)
        message=message,
        status=status,
    )


# -- messages -------------------------------------------------------------------


def _media(payload: Obj, media: Any) -> MediaRef:
    """``payload.media`` (WAMedia) as a reference.

    ``media.url`` is on the WAHA (or Wawp) host and needs its API key
    (docs/webhooks.md §2 (b); Wawp's ``access_token`` is [G], §3 (b)).
    ``hasMedia: true`` with ``media: null`` or ``media.url: null`` means WAHA
    did not download the file (its configuration): ``unavailable``.
    """
    url = text(media, "url")
    if url is None and not isinstance(media, dict):
        url = text(payload, "mediaUrl")  # WAMessage's deprecated alias of media.url
    return MediaRef(
        fetch="gateway_auth" if url else "unavailable",
        url=url,
        mimetype=text(media, "mimetype"),
        filename=text(media, "filename"),
        caption=text(payload, "body"),  # WAHA's caption is the message body
    )


def _is_image(media: MediaRef, data: Obj | None) -> bool:
    if media.mimetype is not None:
        return media.mimetype.lower().startswith("image/")
    # No WAMedia to tell (media: null): WEBJS's raw message still says
    # (``_data.type``, ``_data.mimetype``); other engines do not, so "other".
    hint = text(data, "mimetype") or ""
    return text(data, "type") == "image" or hint.lower().startswith("image/")


def _message(payload: Obj) -> InboundMessage | None:
    ident = text(payload, "id")
    if ident is None:
        return None
    parts = serialized_parts(ident)
    from_me = flag(payload, "fromMe")
    if from_me is None:
        from_me = parts[0] if parts is not None else False
    sender_jid, to = text(payload, "from"), text(payload, "to")
    # The chat is inside the serialized id; else WAMessage's "from" is the
    # chat, except for our own messages, whose chat is "to" (WAMessage doc).
    chat = (parts[1] if parts is not None else None) or (to if from_me else sender_jid)
    chat = chat or sender_jid or to
    # In a group the author is "participant" (older engines: "author").
    sender = text(payload, "participant") or text(payload, "author") or sender_jid or chat
    if chat is None or sender is None:
        return None
    data = obj(payload, "_data")
    body = text(payload, "body")
    media: MediaRef | None = None
    kind: MessageKind = "text" if body is not None else "other"
    raw_media = payload.get("media")
    if flag(payload, "hasMedia") is True or isinstance(raw_media, dict):
        media = _media(payload, raw_media)
        kind = "image" if _is_image(media, data) else "other"
    return InboundMessage(
        message_id=ident,
        chat_id=chat,
        sender=sender,
        kind=kind,
        from_me=from_me,
        text=body,
        media=media,
        reply_to=_reply_to(payload.get("replyTo")),
        # The push name is only in the engine's raw message (WEBJS notifyName,
        # NOWEB pushName); "_data" "may be changed anytime" (WAMessage doc).
        sender_name=text(data, "notifyName") or text(data, "pushName"),
        sent_at=from_epoch_s(payload.get("timestamp")),  # WhatsApp's time, seconds
    )


def _reply_to(value: Any) -> str | None:
    """WAMessage ``replyTo`` (ReplyToMessage ``{id, …}``); a bare string is taken too."""
    if isinstance(value, str):
        return value or None
    return text(value, "id")


# -- acks -----------------------------------------------------------------------


def ack_status(payload: Obj) -> tuple[Status, str] | None:
    """``(status, raw_status)`` from ``ackName`` then ``ack``; None when neither is there."""
    name = text(payload, "ackName")
    number = integer(payload.get("ack"))
    if name is None and number is None:
        return None
    status = ACK_NAME_STATUS.get(name.upper()) if name is not None else None
    if status is None and number is not None:
        status = ACK_STATUS.get(number)
    return status or Status.UNKNOWN, name if name is not None else str(number)


def _ack(payload: Obj) -> StatusUpdate | None:
    ident = text(payload, "id")
    found = ack_status(payload)
    if ident is None or found is None:
        return None
    parts = serialized_parts(ident)
    from_me = flag(payload, "fromMe")
    if from_me is None and parts is not None:
        from_me = parts[0]
    if from_me is False:
        # The ack of a message this account received (its own read receipt,
        # id "false_..."): not a receipt for anything sent, so kind "other",
        # like gowa's read-self.
        return None
    # A group ack's id ends in "_<participant>" (§2 (c)); without it the id
    # is the sent message's, as in SendResult.message_id (true_<chat>_<id>).
    participant = text(payload, "participant")
    if participant is None and parts is not None and parts[3] is not None and "@" in parts[3]:
        participant = parts[3]
    # Wawp's documented ack has "chatId" instead of from/to (§3 (c)).
    chat = (parts[1] if parts is not None else None) or text(payload, "chatId")
    chat = chat or text(payload, "from")
    return StatusUpdate(
        message_ids=(strip_participant(ident),),
        status=found[0],
        raw_status=found[1],
        recipient=participant or chat,
        chat_id=chat,
    )


# -- verification ---------------------------------------------------------------


def _named(value: str) -> str:
    """``value`` quoted when it is a short alphanumeric token, else a neutral word."""
    value = value.strip()
    return repr(value) if _SHORT_TOKEN.fullmatch(value) else "(an unrecognised value)"


def verify(
    found: dict[str, list[str]],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float | None,
) -> None:
    """Check WAHA's ``X-Webhook-Hmac`` (docs/webhooks.md §2).

    Version 1 (upstream): hex HMAC-SHA512 of the raw body. The only signed
    time is the body's ``timestamp`` (ms), checked only when ``tolerance``
    is given: WAHA's retries can run for hours (§2), so no default fits.
    Version 2 (``X-Webhook-Hmac-Version: 2``, a fork's scheme [G]): the MAC
    is over ``f"{X-Webhook-Timestamp}.{body}"`` and that header time must be
    within ``tolerance`` (default :data:`V2_TOLERANCE`) of ``now``.
    """
    mac = one_header(found, WAHA_HMAC, "waha")
    if mac is None:
        raise WebhookSignatureMissing(
            f"waha: no {WAHA_HMAC} header; set hmac.key on the session's webhook "
            "(or WHATSAPP_HOOK_HMAC_KEY) to the same secret so that WAHA signs",
            provider="waha",
        )
    algorithm = one_header(found, WAHA_ALGORITHM, "waha")
    if algorithm is not None and algorithm.strip().lower() != "sha512":
        raise WebhookSignatureInvalid(
            f"waha: {WAHA_ALGORITHM} {_named(algorithm)} is not sha512, the only one WAHA uses",
            provider="waha",
        )
    version = one_header(found, WAHA_VERSION, "waha")
    version = "1" if version is None else version.strip()
    if version == "2":
        _verify_v2(found, body, secret, mac, now=now, tolerance=tolerance)
        return
    if version != "1":
        raise WebhookSignatureInvalid(
            f"waha: unknown {WAHA_VERSION} {_named(version)}", provider="waha"
        )
    if not hex_matches(hmac_hex(secret, body, "sha512"), mac):
        raise WebhookSignatureInvalid(
            f"waha: {WAHA_HMAC} does not match the body (wrong key, or the body was changed)",
            provider="waha",
        )
    if tolerance is not None:
        _check_body_times(body, now=now, tolerance=tolerance)


def _verify_v2(
    found: dict[str, list[str]],
    body: bytes,
    secret: str,
    mac: str,
    *,
    now: float,
    tolerance: float | None,
) -> None:
    stamp = one_header(found, WAHA_TIMESTAMP, "waha")
    if stamp is None:
        raise WebhookSignatureInvalid(
            f"waha: HMAC version 2 signs {WAHA_TIMESTAMP}, which is missing", provider="waha"
        )
    stamp = stamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
        raise WebhookSignatureInvalid(
            f"waha: {WAHA_TIMESTAMP} is not a Unix time in milliseconds", provider="waha"
        )
    if not hex_matches(hmac_hex(secret, waha_v2_message(stamp, body), "sha512"), mac):
        raise WebhookSignatureInvalid(
            f"waha: {WAHA_HMAC} (version 2) does not match the timestamp and body "
            "(wrong key, or either was changed)",
            provider="waha",
        )
    check_window(
        "waha",
        int(stamp) / 1000,
        now=now,
        tolerance=V2_TOLERANCE if tolerance is None else tolerance,
        what=WAHA_TIMESTAMP,
    )


def _check_body_times(body: bytes, *, now: float, tolerance: float) -> None:
    """Version 1's replay check: the signed body's ``timestamp`` (ms) of each envelope."""
    try:
        envelopes, _batch = decode_body(body, "waha")
    except WebhookPayloadError:  # signed but not JSON: there is no time to check
        envelopes = []
    stamps = [number(envelope.get("timestamp")) for envelope in envelopes]
    signed = [stamp for stamp in stamps if stamp is not None]
    if not stamps or len(signed) != len(stamps):
        raise WebhookReplay(
            "waha: the body has no signed timestamp to check against the tolerance",
            provider="waha",
        )
    for stamp in signed:
        check_window("waha", stamp / 1000, now=now, tolerance=tolerance, what="the body timestamp")


def verify_wawp(url_token: str | None, secret: str) -> None:
    """Wawp does not sign (docs/webhooks.md §3): check the secret token of the URL path."""
    verify_url_token(
        "wawp",
        url_token,
        secret,
        missing=(
            "Wawp does not sign its webhooks (docs/webhooks.md §3), so put a secret token "
            "in the webhook URL path (https://example.com/hooks/<token>) and pass that "
            "path segment as url_token"
        ),
    )
