"""Delivery statuses per message and recipient, moved only up the ladder.

Receipts arrive late, twice, out of order (read before delivered), from
several recipients (one per group participant), and sometimes before the
send call has even returned (gowa#726: the ack webhook beats the HTTP
answer, so the message id is not known yet). :class:`StatusTracker` keeps
what is known per message and recipient and reports each step forward once:

* :meth:`~StatusTracker.track` registers a :class:`~wamsg.SendResult` (its
  status is the first step) and applies receipts that came before it;
* :meth:`~StatusTracker.update` applies a status event; a receipt for a
  message not tracked yet is held for ``pending_ttl`` seconds in case its
  send is still returning, then dropped;
* every step forward is a :class:`StatusChange`, returned and passed to
  ``on_change``; :meth:`~StatusTracker.wait` awaits a status.

Messages are matched by the bare WhatsApp id
(:func:`~wamsg.webhooks.message_key`), so ``true_<chat>_<id>`` and ``<id>``
meet. Memory is bounded: at most ``max_messages`` tracked (least recently
updated forgotten first) and ``max_pending`` held receipts.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import msgspec

from .._redact import redact
from ..errors import ConfigError
from ..models import SendResult, Status
from ._model import Event, StatusUpdate, advances, message_key, rank

__all__ = ["StatusChange", "StatusTracker"]

_log = logging.getLogger("wamsg.webhooks")

_ANY = ""  # the recipient key of a status that names none (the chat as a whole)


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    """One message moved up the ladder for one recipient.

    Attributes:
        provider: the gateway.
        message_id: the id as the send returned it (``SendResult.message_id``).
        status: where it is now.
        previous: where it was (None when first seen).
        recipient: whose receipt moved it (None: the chat as a whole, or the
            send's own answer).
        early: the receipt arrived before the send was tracked (held, then
            applied).
    """

    provider: str
    message_id: str
    status: Status
    previous: Status | None = None
    recipient: str | None = None
    early: bool = False

    def __repr__(self) -> str:
        return (
            f"StatusChange(provider={self.provider!r}, message_id={redact(self.message_id)!r}, "
            f"{self.previous.value if self.previous else None} -> {self.status.value}, "
            f"recipient={redact(self.recipient or '')!r})"
        )


class _Message:
    __slots__ = ("expires", "message_id", "overall", "recipients", "waiters")

    def __init__(self, message_id: str, expires: float) -> None:
        self.message_id = message_id
        self.overall: Status | None = None
        self.recipients: dict[str, Status] = {}
        self.expires = expires
        self.waiters: list[anyio.Event] = []


class _Held(msgspec.Struct):
    status: Status
    recipient: str
    expires: float


def _reached(current: Status | None, target: Status) -> bool:
    """Whether a message at ``current`` is at ``target`` or past it on the ladder."""
    if current is None:
        return False
    if current is target:
        return True
    on_ladder = target is not Status.FAILED and rank(target) is not None
    return on_ladder and not advances(current, target)


def _who(jid: str | None) -> str:
    """A recipient key: user JIDs of either server form, and device suffixes, meet."""
    if not jid:
        return _ANY
    user, _, server = jid.partition("@")
    if server in ("c.us", "s.whatsapp.net"):
        return user.partition(":")[0]  # gowa may add a device: 5511...:12@s.whatsapp.net
    return jid


class StatusTracker:
    """Monotonic delivery status per (provider, message, recipient).

    Args:
        ttl: seconds a tracked message is remembered after its last change.
        max_messages: messages tracked at most.
        pending_ttl: seconds a receipt for an untracked message is held.
        max_pending: receipts held at most (oldest dropped).
        on_change: called with every :class:`StatusChange` (synchronously).
        clock: a monotonic clock, in seconds.
    """

    def __init__(
        self,
        *,
        ttl: float = 7 * 24 * 3600.0,
        max_messages: int = 100_000,
        pending_ttl: float = 300.0,
        max_pending: int = 10_000,
        on_change: Callable[[StatusChange], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("ttl", ttl), ("pending_ttl", pending_ttl)):
            if not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        for name, count in (("max_messages", max_messages), ("max_pending", max_pending)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(f"{name} must be a whole number >= 1")
        self.ttl = ttl
        self.max_messages = max_messages
        self.pending_ttl = pending_ttl
        self.max_pending = max_pending
        self.on_change = on_change
        self._clock = clock
        self._messages: OrderedDict[tuple[str, str], _Message] = OrderedDict()
        self._held: OrderedDict[tuple[str, str], list[_Held]] = OrderedDict()
        self._held_count = 0

    def __repr__(self) -> str:
        return f"StatusTracker({len(self._messages)} messages, {self._held_count} held receipts)"

    def __len__(self) -> int:
        return len(self._messages)

    # -- input ---------------------------------------------------------------

    def track(self, result: SendResult) -> list[StatusChange]:
        """Follow the message ``result`` sent; returns its first steps.

        The result's own status is the first step; receipts that arrived
        before (held) are applied right after, marked ``early``. A result
        with no message id (Wawp's empty answer) cannot be followed: [].
        """
        if not result.message_id:
            return []
        now = self._clock()
        key = (result.provider, message_key(result.provider, result.message_id))
        entry = self._messages.get(key)
        if entry is None:
            entry = _Message(result.message_id, now + self.ttl)
            self._messages[key] = entry
            self._evict()
        changes = self._apply(key, entry, result.status, _ANY, early=False)
        for held in self._take_held(key, now):
            changes += self._apply(key, entry, held.status, held.recipient, early=True)
        return changes

    def update(self, item: Event | StatusUpdate, provider: str | None = None) -> list[StatusChange]:
        """Apply a status event (other events are ignored); returns the steps forward.

        A :class:`StatusUpdate` on its own needs ``provider``.
        """
        if isinstance(item, Event):
            if item.status is None:
                return []
            provider, update = item.provider, item.status
        else:
            if provider is None:
                raise ConfigError("update(StatusUpdate) needs the provider it came from")
            update = item
        now = self._clock()
        recipient = _who(update.recipient or update.chat_id)
        changes: list[StatusChange] = []
        for message_id in update.message_ids:
            key = (provider, message_key(provider, message_id))
            entry = self._messages.get(key)
            if entry is None or entry.expires <= now:
                self._hold(key, _Held(update.status, recipient, now + self.pending_ttl), now)
                continue
            changes += self._apply(key, entry, update.status, recipient, early=False)
        return changes

    # -- queries -------------------------------------------------------------

    def status(self, provider: str, message_id: str, recipient: str | None = None) -> Status | None:
        """The furthest status of a tracked message (for ``recipient``, when given)."""
        entry = self._messages.get((provider, message_key(provider, message_id)))
        if entry is None:
            return None
        if recipient is None:
            return entry.overall
        return entry.recipients.get(_who(recipient))

    async def wait(
        self, result: SendResult, status: Status, *, timeout: float | None = None
    ) -> Status:
        """Wait until ``result``'s message reaches ``status`` (or beyond); returns where it is.

        ``result`` must have been :meth:`track`-ed. Raises TimeoutError.
        """
        if not result.message_id:
            raise ConfigError("this result has no message id to wait for")
        key = (result.provider, message_key(result.provider, result.message_id))
        with anyio.fail_after(timeout):
            while True:
                entry = self._messages.get(key)
                if entry is None:
                    raise ConfigError("track() the result before waiting for its status")
                current = entry.overall
                if current is Status.FAILED or _reached(current, status):
                    return current  # type: ignore[return-value]  # not None here
                event = anyio.Event()
                entry.waiters.append(event)
                try:
                    await event.wait()
                finally:
                    if event in entry.waiters:  # timed out or cancelled
                        entry.waiters.remove(event)

    # -- internals -----------------------------------------------------------

    def _apply(
        self, key: tuple[str, str], entry: _Message, status: Status, recipient: str, *, early: bool
    ) -> list[StatusChange]:
        previous = entry.recipients.get(recipient)
        if previous is None and recipient != _ANY:
            # A recipient's first receipt starts from the message's own status
            # (the send's answer): "sent" after "sent" is no step forward.
            inherited = entry.recipients.get(_ANY)
            if inherited is not None and not advances(inherited, status):
                entry.recipients[recipient] = inherited
                return []
            previous = inherited
        if not advances(previous, status):
            return []
        entry.recipients[recipient] = status
        if advances(entry.overall, status):
            entry.overall = status
        entry.expires = self._clock() + self.ttl
        self._messages.move_to_end(key)  # least recently changed are forgotten first
        change = StatusChange(
            provider=key[0],
            message_id=entry.message_id,
            status=status,
            previous=previous,
            recipient=recipient or None,
            early=early,
        )
        waiters, entry.waiters = entry.waiters, []
        for waiter in waiters:
            waiter.set()
        if self.on_change is not None:
            try:
                self.on_change(change)
            except Exception as exc:  # the user's hook: it must not undo the update
                _log.error("on_change raised %s for a %s status change",
                           type(exc).__name__, key[0])  # fmt: skip
        return [change]

    def _hold(self, key: tuple[str, str], held: _Held, now: float) -> None:
        self._held.setdefault(key, []).append(held)
        self._held.move_to_end(key)
        self._held_count += 1
        while self._held_count > self.max_pending and self._held:
            _, dropped = self._held.popitem(last=False)
            self._held_count -= len(dropped)
        # Drop what has expired, oldest first.
        while self._held:
            oldest_key, items = next(iter(self._held.items()))
            if items[-1].expires > now:
                break
            del self._held[oldest_key]
            self._held_count -= len(items)

    def _take_held(self, key: tuple[str, str], now: float) -> list[_Held]:
        items = self._held.pop(key, [])
        self._held_count -= len(items)
        return [h for h in items if h.expires > now]

    def _evict(self) -> None:
        now = self._clock()
        while self._messages:
            key, entry = next(iter(self._messages.items()))
            if len(self._messages) > self.max_messages or entry.expires <= now:
                del self._messages[key]
                for waiter in entry.waiters:  # wait() then says it is not tracked
                    waiter.set()
            else:
                break
