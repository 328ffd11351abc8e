"""The normalized inbound model: events, messages, media references, statuses.

Every gateway's webhook becomes a list of :class:`Event`. An event is a
``message`` (an incoming text or image: :class:`InboundMessage`), a
``status`` (a delivery or read receipt: :class:`StatusUpdate`) or ``other``
(anything else, kept raw: unknown events never raise). Ids stay the
gateway's own, in the form its send answers use, so a receipt's
``message_ids`` equal the ``SendResult.message_id`` of the same gateway
(WAHA and Wawp: ``true_<chat>_<id>``; gowa and WUTS: the bare ``3EB0…``).

Sans-I/O: no HTTP library, no event loop.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import msgspec

from .._redact import redact
from ..models import InboundMessage, MediaRef, Status

__all__ = [
    "LADDER",
    "Event",
    "InboundMessage",
    "MediaRef",
    "StatusUpdate",
    "advances",
    "message_key",
    "rank",
]

#: The status ladder, lowest first (docs/webhooks.md): a message only moves
#: up it. ``FAILED`` and ``UNKNOWN`` are off the ladder.
LADDER: tuple[Status, ...] = (
    Status.QUEUED,
    Status.SENT,
    Status.DELIVERED,
    Status.READ,
    Status.PLAYED,
)
_RANK = {status: index for index, status in enumerate(LADDER)}


def rank(status: Status) -> int | None:
    """``status``'s place on :data:`LADDER` (queued 0 ... played 4); None off it."""
    return _RANK.get(status)


def advances(current: Status | None, new: Status) -> bool:
    """Whether ``new`` moves a message on from ``current`` (monotonic, never down).

    A later rung implies the earlier ones (read before delivered leaves the
    message read). ``FAILED`` moves on from anything below delivered (a
    message the recipient has is not failed); ``UNKNOWN`` never moves on.
    """
    if new is Status.UNKNOWN:
        return False
    if current is None or current is Status.UNKNOWN:
        return True
    if new is Status.FAILED:
        return current in (Status.QUEUED, Status.SENT)
    if current is Status.FAILED:
        return False  # a late receipt after a failure report: keep the failure
    return _RANK[new] > _RANK[current]


# WAHA/Wawp serialize ids as <fromMe>_<chat>_<id>, and group acks add
# _<participant> (waha-docs "message.ack.group"; docs/webhooks.md §2).
_SERIALIZED = re.compile(r"(?:true|false)_[^_\s]+@[a-z.]+_([0-9A-Za-z]+)(?:_[^_\s]+)?")


def message_key(provider: str, message_id: str) -> str:
    """The bare WhatsApp id inside ``message_id`` (equal to ``SendResult.short_id``).

    ``true_5511999990000@c.us_3EB0ABC`` and ``3EB0ABC`` both give ``3EB0ABC``;
    use it to match receipts and sends across id forms.
    """
    match = _SERIALIZED.fullmatch(message_id)
    return match.group(1) if match else message_id


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt: messages this account sent moved to ``status``.

    Attributes:
        message_ids: the messages, in the form ``SendResult.message_id``
            has for this gateway (gowa acks several at once).
        status: the normalized status.
        raw_status: the gateway's own value (``"3"``/``"READ"``,
            ``"delivered"``, ``"message.read"``).
        recipient: whose receipt it is (the participant in a group).
        chat_id: the chat the messages are in.
    """

    message_ids: tuple[str, ...]
    status: Status
    raw_status: str
    recipient: str | None = None
    chat_id: str | None = None

    def __repr__(self) -> str:
        ids = ", ".join(redact(i) for i in self.message_ids)
        return (
            f"StatusUpdate(status={self.status.value!r}, message_ids=({ids}), "
            f"recipient={redact(self.recipient or '')!r}, raw_status={self.raw_status!r})"
        )


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One normalized webhook event.

    Attributes:
        provider: the gateway (``"gowa"``, ``"waha"``, ``"wawp"``, ``"wuts"``).
        kind: ``"message"``, ``"status"`` or ``"other"``.
        name: the gateway's event name (``"message"``, ``"message.ack"``,
            ``"message.received"``...).
        dedupe_key: the same for every delivery of this event (retries,
            several URLs): the envelope id where the gateway sends one, a
            digest of the body for gowa (whose retries are byte-identical).
        instance: the gateway instance (WAHA session, gowa device, WUTS device).
        event_id: the envelope's id, where the gateway sends one.
        occurred_at: when the gateway says the event happened, UTC.
        message: for ``kind="message"``.
        status: for ``kind="status"``.
        raw: the decoded JSON envelope, as the gateway sent it.
    """

    provider: str
    kind: Literal["message", "status", "other"]
    name: str
    dedupe_key: str
    instance: str = ""
    event_id: str | None = None
    occurred_at: datetime | None = None
    message: InboundMessage | None = None
    status: StatusUpdate | None = None
    raw: Any = None

    def __repr__(self) -> str:
        detail = self.message if self.message is not None else self.status
        shown = f", {detail!r}" if detail is not None else ""
        return (
            f"Event(provider={self.provider!r}, kind={self.kind!r}, name={self.name!r}, "
            f"dedupe_key={redact(self.dedupe_key)!r}{shown})"
        )
