"""Idempotency: one key names one message, and a key is never sent twice.

None of the gateways takes an idempotency key (providers.md §5, note 1), so
the key lives on the client side, in a :class:`DedupeStore`. A send first
*claims* its key, atomically: the claim either wins (the send goes ahead),
finds a finished send (its result is returned, or its error raised again,
with no I/O) or finds a send still in flight (the caller waits for it). The
send then *finishes* the claim with what happened:

=============== ================================== =========================
send ended      the key becomes                    a later send with the key
=============== ================================== =========================
sent            ``sent`` + the result              gets that result back
rejected        ``rejected`` + the error           gets the same error
unknown         ``unknown`` + the error            gets the same error: the
                                                   message may be out, so it
                                                   is never resent on its own
not sent        released                           may send
=============== ================================== =========================

This is Stripe's model (docs/reliability.md). A key reused for a different
message is refused with :class:`~wamsg.IdempotencyKeyReused`, told apart by
a :func:`fingerprint` of the message.

:class:`MemoryDedupeStore` is the default: bounded (LRU) and with a TTL, for
one process. The protocol is small so that a shared store can stand in for
it across workers: ``wamsg.redis.RedisDedupeStore`` (docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import anyio
import msgspec

from .errors import ConfigError, WamsgError
from .models import Message, SendResult, Text

__all__ = ["Claim", "DedupeStore", "MemoryDedupeStore", "Record", "fingerprint"]


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """How a send with some key ended.

    Attributes:
        state: ``"sent"``, ``"rejected"`` or ``"unknown"``.
        fingerprint: the message's :func:`fingerprint` (empty for keys the
            client generated, which cannot be reused by mistake).
        result: the result of a send that went out (without its raw body).
        error: the error of a send that was rejected or may have gone out.
    """

    state: Literal["sent", "rejected", "unknown"]
    fingerprint: str = ""
    result: SendResult | None = None
    error: WamsgError | None = None


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to :meth:`DedupeStore.claim`.

    Attributes:
        status: ``"claimed"`` (this caller sends and must :meth:`finish
            <DedupeStore.finish>`), ``"done"`` (see ``record``),
            ``"in_flight"`` (another send holds the key) or ``"reused"`` (the
            key is held or was used for a different message).
        token: proves ownership of a claim when finishing it.
        record: the finished send, for ``"done"``.
    """

    status: Literal["claimed", "done", "in_flight", "reused"]
    token: str = ""
    record: Record | None = None


@runtime_checkable
class DedupeStore(Protocol):
    """Where idempotency keys are claimed and finished.

    Implementations must make :meth:`claim` atomic (one winner per key, as
    with Redis ``SET NX``): a check followed by a write lets two
    near-simultaneous sends both through.
    """

    async def claim(self, key: str, fingerprint: str, *, lease: float) -> Claim:
        """Claim ``key`` for a send of the message with ``fingerprint``.

        ``lease`` bounds how long the claim holds if its owner never
        finishes it (a crash): after that, the key reads as ``unknown``.
        """
        ...

    async def finish(self, key: str, token: str, record: Record | None) -> bool:
        """End a claim: store ``record``, or release the key when it is None (not sent).

        Returns False, and changes nothing, when the claim was lost (its
        lease ran out and the key now reads ``unknown`` or was taken over):
        a claim that is not the caller's is never overwritten.
        """
        ...

    async def put(self, key: str, record: Record) -> None:
        """Store ``record`` for a key that was never claimed (one the client generated)."""
        ...

    async def wait(self, key: str, timeout: float | None) -> None:
        """Return when the send holding ``key`` has finished, or after ``timeout`` seconds."""
        ...


class _Entry:
    __slots__ = ("event", "expires", "fingerprint", "record", "token")

    def __init__(self, fingerprint: str, token: str, expires: float) -> None:
        self.fingerprint = fingerprint
        self.token = token
        self.record: Record | None = None
        self.expires = expires
        self.event: anyio.Event | None = None


class MemoryDedupeStore:
    """The default :class:`DedupeStore`: in memory, for one process and one event loop.

    Args:
        ttl: seconds a finished send is remembered (24 h, like Stripe's keys).
        max_entries: keys kept at most; the least recently used finished
            ones are forgotten first. Each holds a result without its raw
            body, about 0.5 KB.
        clock: a monotonic clock, in seconds.
    """

    def __init__(
        self,
        *,
        ttl: float = 24 * 3600.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(ttl) and ttl > 0):
            raise ConfigError("ttl must be a positive number of seconds")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError("max_entries must be a whole number >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tokens = itertools.count(1)

    def __repr__(self) -> str:
        return f"MemoryDedupeStore({len(self._entries)} keys, ttl={self.ttl:g}s)"

    def __len__(self) -> int:
        return len(self._entries)

    # No await happens between reading and writing an entry below, so each
    # method is atomic on its event loop: that is the "SET NX" of this store.

    async def claim(self, key: str, fingerprint: str, *, lease: float) -> Claim:
        """See :meth:`DedupeStore.claim`."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= now:
            if entry.record is None:
                # The owner never finished within its lease: it may have
                # sent. Read as unknown, never as free (scaleout.md §4.4).
                entry.record = Record(state="unknown", fingerprint=entry.fingerprint)
                entry.expires = now + self.ttl
                self._wake(entry)
            else:
                del self._entries[key]
                entry = None
        if entry is None:
            # Tokens only tell this process's claims apart: a counter will do.
            token = str(next(self._tokens))
            self._entries[key] = _Entry(fingerprint, token, now + lease)
            self._evict(now)
            return Claim(status="claimed", token=token)
        self._entries.move_to_end(key)
        if fingerprint and entry.fingerprint and fingerprint != entry.fingerprint:
            return Claim(status="reused")
        if entry.record is None:
            return Claim(status="in_flight")
        return Claim(status="done", record=entry.record)

    async def finish(self, key: str, token: str, record: Record | None) -> bool:
        """See :meth:`DedupeStore.finish`."""
        entry = self._entries.get(key)
        if entry is None or entry.token != token or entry.record is not None:
            return False  # lost the claim (lease expired): never overwrite
        if record is None:
            del self._entries[key]
        else:
            entry.record = record
            entry.expires = self._clock() + self.ttl
        self._wake(entry)
        return True

    async def put(self, key: str, record: Record) -> None:
        """See :meth:`DedupeStore.put`."""
        now = self._clock()
        entry = _Entry(record.fingerprint, "", now + self.ttl)
        entry.record = record
        self._entries[key] = entry
        self._evict(now)

    async def wait(self, key: str, timeout: float | None) -> None:
        """See :meth:`DedupeStore.wait`."""
        entry = self._entries.get(key)
        if entry is None or entry.record is not None:
            return
        if entry.event is None:
            entry.event = anyio.Event()
        event = entry.event
        # Wake up at the lease's end too, when the claim turns "unknown".
        limit = max(0.0, entry.expires - self._clock())
        with anyio.move_on_after(limit if timeout is None else min(timeout, limit)):
            await event.wait()

    @staticmethod
    def _wake(entry: _Entry) -> None:
        if entry.event is not None:
            entry.event.set()
            entry.event = None

    def _evict(self, now: float) -> None:
        entries = self._entries
        # Oldest first: drop what has expired, then what is over the bound.
        # A send in flight is never dropped (its key must stay claimed): it
        # moves to the back, so the loop is O(1) per insert amortized.
        spins = 0
        while entries and spins < len(entries):
            key, entry = next(iter(entries.items()))
            over = len(entries) > self.max_entries
            if entry.record is None:
                if not over:
                    break
                entries.move_to_end(key)
                spins += 1
            elif over or entry.expires <= now:
                del entries[key]
            else:
                break


_ENCODER = msgspec.msgpack.Encoder()


def fingerprint(message: Message) -> str:
    """A digest of what a message says and to whom, to tell two messages apart.

    Everything but the idempotency key counts. An image is identified by its
    source (URL, path, the bytes' digest, a file's name and size), not by
    reading files. About 0.6 µs for a text: it runs on every send.
    """
    recipient = message.recipient
    # Mentions are parsed Recipient Structs, which msgspec encodes as they are.
    common = (recipient.kind, recipient.value, message.reply_to, message.mentions)
    if isinstance(message, Text):
        parts: tuple[object, ...] = ("text", *common, message.text)
    else:
        media = message.image
        data = hashlib.blake2b(media.data, digest_size=16).hexdigest() if media.data else None
        parts = (
            "image",
            *common,
            message.caption,
            message.view_once,
            media.url,
            media.path,
            data,
            media.filename,
            media.mimetype,
            media.size,
            str(getattr(media.file, "name", None)) if media.file is not None else None,
            id(media.stream) if media.stream is not None else None,
        )
    return hashlib.blake2b(_ENCODER.encode(parts), digest_size=16).hexdigest()
