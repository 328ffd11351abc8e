"""Parse helpers shared by every gateway's webhook reader (sans-I/O).

Everything here is total on decoded JSON: a getter given a field of the wrong
type answers None instead of raising, and a time that does not parse is None.
Only :func:`decode_body` raises, and only :class:`~wamsg.errors.WebhookPayloadError`
for a body that is not a JSON object (or a batch list of them).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from ..errors import WebhookPayloadError
from ._model import Event, InboundMessage, StatusUpdate

__all__ = [
    "MessageKind",
    "Obj",
    "body_digest",
    "build_event",
    "decode_body",
    "fallback_key",
    "flag",
    "from_epoch_ms",
    "from_epoch_s",
    "from_rfc3339",
    "integer",
    "number",
    "obj",
    "serialized_parts",
    "strip_participant",
    "text",
]

#: A decoded JSON object.
Obj = dict[str, Any]
#: :attr:`InboundMessage.kind`.
MessageKind = Literal["text", "image", "other"]

# The latest instant a datetime can hold, in seconds: larger epochs are bad data.
_MAX_EPOCH_S = 253402300799.0  # 9999-12-31T23:59:59Z


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6); Python's json accepts them.
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes) -> Any:
    """Decode strict JSON: msgspec first, the stdlib for what msgspec refuses.

    msgspec refuses two kinds of valid JSON that the stdlib reads: numbers
    beyond a double (``1e999``) and lone surrogate escapes (``"\\ud800"``).
    A webhook must never be refused for those, so they get a second decoder.
    """
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    # A UTF-8 byte order mark is not JSON (RFC 8259 §8.1) but some senders
    # write one; it carries nothing, so it is dropped rather than refused.
    text_body = body.removeprefix(b"\xef\xbb\xbf").decode("utf-8")  # UnicodeDecodeError: ValueError
    # Integers longer than Python's int-parsing limit (4300 digits) become
    # floats instead of refusing the whole body.
    return json.loads(text_body, parse_constant=_reject_constant, parse_int=_big_int)


def _big_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= 4000 else float(digits)


def decode_body(body: bytes, provider: str) -> tuple[list[Obj], bool]:
    """``body`` as JSON objects, and whether it was a batch (a list of them).

    No gateway is known to batch, but WAHA's docs leave room for it
    (docs/webhooks.md §5.3: "a batch body would be a list"), so a list whose
    items are all objects is read item by item.

    Raises:
        WebhookPayloadError: the body is not JSON, or not an object (nor a
            list of objects). The message never quotes the body.
    """
    try:
        decoded = _loads(body)
    except (ValueError, RecursionError):
        raise WebhookPayloadError(
            f"{provider}: the webhook body is not JSON ({len(body)} bytes)", provider=provider
        ) from None
    if isinstance(decoded, dict):
        return [decoded], False
    if isinstance(decoded, list) and all(isinstance(item, dict) for item in decoded):
        return decoded, True
    raise WebhookPayloadError(
        f"{provider}: the webhook body is JSON but not an object ({type(decoded).__name__})",
        provider=provider,
    )


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of the raw body (a key for bodies that carry no id)."""
    return hashlib.sha256(body).hexdigest()


def fallback_key(body: bytes, index: int | None, *, prefix: str = "sha256:") -> str:
    """A dedupe key from the body digest; ``index`` tells the items of a batch apart."""
    key = prefix + body_digest(body)
    return key if index is None else f"{key}:{index}"


def build_event(
    raw: Obj,
    *,
    provider: str,
    dedupe_key: str,
    instance: str,
    event_id: str | None,
    occurred_at: datetime | None,
    message: InboundMessage | None = None,
    status: StatusUpdate | None = None,
) -> Event:
    """The :class:`Event` for envelope ``raw``: its kind follows from what was read.

    ``message`` set: ``"message"``; ``status`` set: ``"status"``; neither:
    ``"other"``, keeping the event's name (``""`` when it has none).
    """
    kind: Literal["message", "status", "other"] = (
        "message" if message is not None else "status" if status is not None else "other"
    )
    return Event(
        provider=provider,
        kind=kind,
        name=text(raw, "event") or "",
        dedupe_key=dedupe_key,
        instance=instance,
        event_id=event_id,
        occurred_at=occurred_at,
        message=message,
        status=status,
        raw=raw,
    )


# -- field getters: never raise -------------------------------------------------


def obj(value: Any, key: str) -> Obj | None:
    """``value[key]`` when ``value`` is an object and that field is an object."""
    if isinstance(value, dict):
        field = value.get(key)
        if isinstance(field, dict):
            return field
    return None


def text(value: Any, key: str) -> str | None:
    """``value[key]`` when it is a non-empty string, else None."""
    if isinstance(value, dict):
        field = value.get(key)
        if isinstance(field, str) and field:
            return field
    return None


def flag(value: Any, key: str) -> bool | None:
    """``value[key]`` when it is a JSON boolean, else None."""
    if isinstance(value, dict):
        field = value.get(key)
        if isinstance(field, bool):
            return field
    return None


def integer(value: Any) -> int | None:
    """``value`` as an int when it is a whole JSON number (``3`` or ``3.0``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


# -- times ----------------------------------------------------------------------


def number(value: Any) -> float | None:
    """``value`` as a finite float when it is a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a double
        return None
    return number if math.isfinite(number) else None


def from_epoch_s(value: Any) -> datetime | None:
    """Unix seconds (int or float) as an aware UTC datetime; anything else None."""
    seconds = number(value)
    if seconds is None or not 0 <= seconds <= _MAX_EPOCH_S:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def from_epoch_ms(value: Any) -> datetime | None:
    """Unix milliseconds as an aware UTC datetime; anything else None."""
    millis = number(value)
    return None if millis is None else from_epoch_s(millis / 1000)


def from_rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 string (``2023-10-15T10:30:00Z``, Go's nanoseconds too) as UTC.

    A time without an offset is taken as UTC. Anything that does not parse is None.
    """
    if not isinstance(value, str) or not 8 <= len(value) <= 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00
        return None


# -- WhatsApp ids ---------------------------------------------------------------


def serialized_parts(message_id: str) -> tuple[bool, str, str, str | None] | None:
    """Split WAHA's serialized id ``<fromMe>_<chat>_<id>[_<participant>]``.

    Returns ``(from_me, chat, bare_id, participant)``, or None when
    ``message_id`` is not in that form (a bare id such as ``3EB0…``). WAHA
    and Wawp build ids this way; group acks add the participant
    (waha-docs "message.ack.group", docs/webhooks.md §2 (c)).
    """
    parts = message_id.split("_", 3)
    if len(parts) < 3 or parts[0] not in ("true", "false"):
        return None
    chat, bare = parts[1], parts[2]
    if "@" not in chat or not bare:
        return None
    participant = parts[3] if len(parts) == 4 and parts[3] else None
    return parts[0] == "true", chat, bare, participant


def strip_participant(message_id: str) -> str:
    """``message_id`` without a trailing ``_<participant>`` JID (group acks).

    ``true_123@g.us_4CC5…_9999@lid`` gives ``true_123@g.us_4CC5…``, the form
    WAHA's send answer has (``SendResult.message_id``); other ids are returned as is.
    """
    parts = serialized_parts(message_id)
    if parts is None or parts[3] is None or "@" not in parts[3]:
        return message_id
    from_me, chat, bare, _participant = parts
    return f"{'true' if from_me else 'false'}_{chat}_{bare}"
