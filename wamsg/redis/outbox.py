"""A durable outbox on Redis Streams: enqueue now, let workers send, lose nothing.

A web handler calls :meth:`RedisOutbox.put` and answers at once; workers
(:func:`wamsg.redis.worker.run_worker`, ``wamsg worker``) read the entries
through one consumer group and send them with a :class:`~wamsg.Client` or
:class:`~wamsg.Router` whose dedupe store they share. Three streams per queue,
all under one Cluster hash tag (``{q:<queue>}``)::

    {prefix}:{q:<queue>}:outbox    the entries to send (consumer group ``group``)
    {prefix}:{q:<queue>}:dead      dead letters: rejected, key reused, too many tries, corrupt
    {prefix}:{q:<queue>}:unknown   sends that may or may not have gone out, for a human

An entry read by a worker stays *pending* (in the group's pending list) until
the worker settles it: :meth:`OutboxItem.ack` (sent), :meth:`~OutboxItem.dead`
or :meth:`~OutboxItem.unknown` (copied to their stream, then acked), or
:meth:`~OutboxItem.retry_later` (left pending). A pending entry idle for
``reclaim_after`` seconds (its worker crashed, or asked to retry later) is
handed to the next consumer by ``XAUTOCLAIM``: that is both the crash recovery
and the retry backoff. Acked entries are deleted (``XDEL``): ``XACK`` alone
leaves them in the stream (../shared/docs/scaleout.md §4.5).

The outbox delivers at least once; the dedupe store makes the *send* at most
once per idempotency key, so every entry needs a key (``put(..., key=...)``).
Every idle time and enqueue time is Redis's clock (stream ids and the group's
pending list), never a worker's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Final, Literal, NamedTuple, TypeVar

import msgspec
import redis.asyncio as aioredis
import redis.exceptions as rex

from .._delivery import valid_seconds
from .._redact import redact
from ..errors import ConfigError, InvalidMessage, StoreUnavailable, WamsgError
from ..models import Image, Media, Message, Recipient, Text, check_idempotency_key
from ._base import check_name, ensure_asyncio, store_error

__all__ = [
    "MAX_INLINE_BYTES",
    "DeadLetter",
    "OutboxItem",
    "OutboxStats",
    "RedisOutbox",
]

logger = logging.getLogger("wamsg.redis")

T = TypeVar("T")

#: Largest image held in an entry as bytes (1 MiB). Every pending entry lives
#: in Redis's memory (and in every replica's): a backlog of 10,000 images of
#: 5 MB would be 50 GB. Give larger images as a URL, or as a path on storage
#: every worker mounts.
MAX_INLINE_BYTES: Final = 1024 * 1024
#: Largest encoded entry (the image bytes plus the text and the rest).
MAX_ENTRY_BYTES: Final = MAX_INLINE_BYTES + 64 * 1024
#: Longest reason kept with a dead letter or an unknown entry.
MAX_REASON_CHARS: Final = 500
_FORMAT: Final = 1

# One round trip per put: make sure the group exists (created at id 0, so no
# entry is missed; BUSYGROUP is expected and swallowed by pcall), refuse when
# the backlog is full rather than letting MAXLEN trim unsent entries, add.
_PUT_LUA: Final = """
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[3])
"""

# Reset a pending entry's idle time, only while this consumer still owns it
# (another consumer may have reclaimed it meanwhile: never steal it back).
# ARGV: group, consumer, id, idle ms to set, change to the delivery count.
_TOUCH_LUA: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local count = tonumber(p[1][4]) + tonumber(ARGV[5])
if count < 0 then count = 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3],
           'IDLE', ARGV[4], 'RETRYCOUNT', count, 'JUSTID')
return 1
"""


# -- the entry format ----------------------------------------------------------


class _WireMedia(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    url: str | None = None
    path: str | None = None
    data: bytes | None = None
    filename: str | None = None
    mimetype: str | None = None


class _Wire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """One entry: the message's serializable fields and its idempotency key."""

    v: int
    key: str
    kind: Literal["text", "image"]
    to: tuple[str, str]
    reply_to: str | None = None
    mentions: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    image: _WireMedia | None = None
    caption: str | None = None
    view_once: bool = False


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Wire)


def _recipient(value: Recipient | str) -> tuple[str, str]:
    recipient = Recipient.parse(value)
    return (recipient.kind, recipient.value)


def _encode(message: Message, key: str) -> bytes:
    """The entry for ``message`` (checked first: nothing is written on error)."""
    common: dict[str, Any] = {
        "v": _FORMAT,
        "key": key,
        "to": _recipient(message.to),
        "reply_to": message.reply_to,
        "mentions": tuple(_recipient(m) for m in message.mentions),
    }
    if isinstance(message, Text):
        wire = _Wire(kind="text", text=message.text, **common)
    else:
        media = message.image
        if media.file is not None or media.stream is not None:
            raise InvalidMessage(
                "an outbox entry cannot hold an image from a file object or an async stream: "
                "the worker that sends it runs in another process and cannot read it; "
                "give a URL, a path every worker can read, or bytes"
            )
        if media.data is not None and len(media.data) > MAX_INLINE_BYTES:
            raise InvalidMessage(
                f"an outbox entry holds at most {MAX_INLINE_BYTES // 1024} KiB of image bytes "
                f"(this one has {len(media.data)} bytes): every pending entry sits in Redis's "
                "memory; give a URL or a path on storage every worker can read"
            )
        wire = _Wire(
            kind="image",
            image=_WireMedia(
                url=media.url,
                path=media.path,
                data=bytes(media.data) if media.data is not None else None,
                filename=media.filename,
                mimetype=media.mimetype,
            ),
            caption=message.caption,
            view_once=message.view_once,
            **common,
        )
    payload = _ENCODER.encode(wire)
    if len(payload) > MAX_ENTRY_BYTES:
        raise InvalidMessage(
            f"the message is too large for an outbox entry ({len(payload)} bytes encoded, "
            f"at most {MAX_ENTRY_BYTES})"
        )
    return payload


def _decode(payload: bytes) -> tuple[str, Message]:
    """The key and message of an entry.

    Raises:
        msgspec.DecodeError: the entry is not one (corrupt).
        InvalidMessage: it decodes, but the message no longer validates
            (an image path this worker cannot read, say).
    """
    wire = _DECODER.decode(payload)
    check_idempotency_key(wire.key)
    to = Recipient(kind=wire.to[0], value=wire.to[1])  # type: ignore[arg-type]
    mentions = tuple(Recipient(kind=k, value=v) for k, v in wire.mentions)  # type: ignore[arg-type]
    message: Message
    if wire.kind == "text":
        if wire.text is None:
            raise msgspec.DecodeError("a text entry without text")
        message = Text(
            to=to,
            text=wire.text,
            reply_to=wire.reply_to,
            mentions=mentions,
            idempotency_key=wire.key,
        )
    else:
        media = wire.image
        if media is None:
            raise msgspec.DecodeError("an image entry without an image")
        message = Image(
            to=to,
            image=Media(
                url=media.url,
                path=media.path,
                data=media.data,
                filename=media.filename,
                mimetype=media.mimetype,
            ),
            caption=wire.caption,
            view_once=wire.view_once,
            reply_to=wire.reply_to,
            mentions=mentions,
            idempotency_key=wire.key,
        )
    return wire.key, message


def _peek_key(payload: bytes | None) -> str:
    """The key of a possibly corrupt entry, or ``""``."""
    if payload is None:
        return ""
    try:
        return _DECODER.decode(payload).key
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_seconds(entry_id: str) -> float:
    """A stream id's time: milliseconds of Redis's clock when the entry was added."""
    try:
        return int(entry_id.partition("-")[0]) / 1000.0
    except ValueError:
        return 0.0


def _reason(reason: str) -> str:
    if not isinstance(reason, str):
        raise ConfigError("reason must be a string")
    text = redact(reason)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def error_reason(error: BaseException) -> str:
    """A dead letter's reason for ``error``: its class and redacted message.

    wamsg's error messages are redacted when built; this masks phone numbers
    once more, for errors from elsewhere.
    """
    message = error.message if isinstance(error, WamsgError) else str(error)
    return _reason(f"{type(error).__name__}: {message}")


# -- public values -------------------------------------------------------------


class OutboxStats(msgspec.Struct, frozen=True, kw_only=True):
    """How full a queue is (:meth:`RedisOutbox.stats`).

    Attributes:
        length: entries in the outbox stream: waiting or pending (read by a
            worker, not yet settled). Settled entries are deleted.
        pending: entries read by some worker and not yet settled (being sent,
            waiting to be retried, or held by a worker that died).
        dead: entries in the ``:dead`` stream.
        unknown: entries in the ``:unknown`` stream.
        consumers: consumers the group knows (every worker name ever used,
            until removed with ``XGROUP DELCONSUMER``).
    """

    length: int
    pending: int
    dead: int
    unknown: int
    consumers: int

    @property
    def waiting(self) -> int:
        """Entries no worker has read yet."""
        return max(0, self.length - self.pending)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of the ``:dead`` or ``:unknown`` stream.

    Attributes:
        id: its id in that stream.
        original_id: the outbox entry's id.
        key: the idempotency key (``""`` when the entry was corrupt).
        reason: why it ended there: the error's class and redacted message,
            ``"corrupt"``, or the delivery count that was reached.
        message: the message, or None when it cannot be rebuilt (corrupt,
            or an image path this process cannot read).
        deliveries: how many times the outbox handed it to a worker.
        at: when it was moved there, seconds since the epoch (Redis's clock).
    """

    id: str
    original_id: str
    key: str
    reason: str
    message: Message | None
    deliveries: int
    at: float

    def __repr__(self) -> str:
        to = self.message.recipient.masked if self.message is not None else None
        return (
            f"DeadLetter(id={self.id!r}, key={redact(self.key)!r}, to={to}, "
            f"reason={self.reason!r}, deliveries={self.deliveries})"
        )


class OutboxItem:
    """One outbox entry handed to a worker; settle it with exactly one of the methods.

    Attributes:
        id: the stream entry id.
        message: the message to send (its ``idempotency_key`` is :attr:`key`).
        key: the idempotency key given to :meth:`RedisOutbox.put`.
        deliveries: how many times the outbox has handed this entry out,
            this time included (1 the first time).
        enqueued_at: when it was put, seconds since the epoch (Redis's clock).
        consumer: the consumer it was handed to.
    """

    __slots__ = (
        "_outbox",
        "_payload",
        "consumer",
        "deliveries",
        "enqueued_at",
        "id",
        "key",
        "message",
    )

    def __init__(
        self,
        outbox: RedisOutbox,
        entry_id: str,
        key: str,
        message: Message,
        payload: bytes,
        deliveries: int,
        consumer: str,
    ) -> None:
        self._outbox = outbox
        self._payload = payload
        self.id = entry_id
        self.key = key
        self.message = message
        self.deliveries = deliveries
        self.enqueued_at = _id_seconds(entry_id)
        self.consumer = consumer

    def __repr__(self) -> str:
        return (
            f"OutboxItem(id={self.id!r}, key={redact(self.key)!r}, "
            f"to={self.message.recipient.masked}, deliveries={self.deliveries})"
        )

    async def ack(self) -> None:
        """It was sent (or replayed): remove it (``XACK`` + ``XDEL`` in one ``MULTI``).

        Raises:
            StoreUnavailable: Redis failed; the entry stays pending and is
                handed out again after ``reclaim_after`` (the dedupe store
                then replays the result: nothing is sent twice).
        """
        await self._outbox._settle(self.id, None)

    async def retry_later(self) -> None:
        """Leave it pending: it is handed out again ``reclaim_after`` seconds from now.

        That is the outbox's backoff. The idle time restarts now (not at
        the delivery), and only if this consumer still owns the entry.

        Raises:
            StoreUnavailable: Redis failed; it stays pending anyway.
        """
        await self._outbox._touch(self.id, self.consumer, idle=0, delta=0)

    async def _postpone(self) -> None:
        """As :meth:`retry_later`, but this delivery does not count towards ``max_deliveries``.

        For a send that never started (the shared limits gave no turn
        before its deadline): the entry waited for capacity, it did not fail.
        """
        await self._outbox._touch(self.id, self.consumer, idle=0, delta=-1)

    async def dead(self, reason: str) -> None:
        """Move it to the ``:dead`` stream with ``reason``, and ack it, atomically.

        Raises:
            StoreUnavailable: Redis failed; it stays pending.
        """
        await self._outbox._settle(
            self.id, ("dead", self.key, _reason(reason), self._payload, self.deliveries)
        )

    async def unknown(self, reason: str) -> None:
        """Move it to the ``:unknown`` stream with ``reason``, and ack it, atomically.

        For sends that may have gone out: they are never sent again on
        their own; a human or a reconciler looks at :meth:`RedisOutbox.unknowns`.

        Raises:
            StoreUnavailable: Redis failed; it stays pending.
        """
        await self._outbox._settle(
            self.id, ("unknown", self.key, _reason(reason), self._payload, self.deliveries)
        )

    async def touch(self) -> bool:
        """Restart its idle time while it is being worked on (a heartbeat).

        A send that runs longer than ``reclaim_after`` would otherwise be
        handed to another consumer meanwhile (which the dedupe store would
        answer with :class:`~wamsg.IdempotencyInFlight`). Returns False when
        another consumer owns it already.

        Raises:
            StoreUnavailable: Redis failed.
        """
        return await self._outbox._touch(self.id, self.consumer, idle=0, delta=0)

    async def release(self) -> bool:
        """Give it back unworked: any consumer may take it at once.

        Its delivery count is decreased again (this delivery did not try
        it). Returns False when another consumer owns it already.

        Raises:
            StoreUnavailable: Redis failed; it is handed out after ``reclaim_after``.
        """
        outbox = self._outbox
        return await outbox._touch(self.id, self.consumer, idle=outbox._reclaim_ms, delta=-1)


class _Batch(NamedTuple):
    items: list[OutboxItem]
    settled: int
    """Entries moved to ``:dead`` on the way (corrupt, invalid, too many deliveries)."""


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    if valid_seconds(value) or (zero and value == 0 and not isinstance(value, bool)):
        return float(value)  # type: ignore[arg-type]  # a number, checked above
    raise ConfigError(f"{name} must be a positive, finite number of seconds")


def _whole(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}")
    return value


class RedisOutbox:
    """A durable queue of messages on Redis Streams, sent by workers.

    Args:
        redis: a ``redis.asyncio.Redis`` returning bytes (``decode_responses=False``),
            e.g. from :func:`wamsg.redis.connect`.
        queue: the queue's name (printable, no spaces or braces).
        group: the consumer group every worker of the queue joins.
        prefix: the first part of every key name.
        max_deliveries: times an entry may be handed out before it goes to
            ``:dead`` (a send that is ``not_sent`` every time, or a worker
            that dies on it every time).
        reclaim_after: seconds a pending entry stays idle before another
            consumer takes it over (the retry backoff, and how long a dead
            worker's entries wait). Keep it above a send's usual duration;
            workers refresh it while they send.
        maxlen: the most entries the outbox stream holds: :meth:`put`
            refuses more (``StoreUnavailable``) instead of dropping unsent
            entries. The ``:dead`` and ``:unknown`` streams are trimmed to
            it (oldest first).

    Raises:
        ConfigError: a bad option, or a client that decodes responses.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        queue: str = "default",
        *,
        group: str = "wamsg",
        prefix: str = "wamsg",
        max_deliveries: int = 8,
        reclaim_after: float = 30.0,
        maxlen: int = 1_000_000,
    ) -> None:
        if not isinstance(redis, aioredis.Redis):
            raise ConfigError(
                f"redis must be a redis.asyncio.Redis (wamsg.redis.connect(url)), "
                f"not {type(redis).__name__}"
            )
        kwargs = getattr(redis, "connection_pool", None)
        kwargs = getattr(kwargs, "connection_kwargs", {})
        if kwargs.get("decode_responses"):
            raise ConfigError(
                "the outbox's Redis client must return bytes (decode_responses=False): "
                "entries are binary; use wamsg.redis.connect(url)"
            )
        self.queue = check_name("queue", queue)
        self.group = check_name("group", group)
        self.prefix = check_name("prefix", prefix)
        self.max_deliveries = _whole("max_deliveries", max_deliveries)
        self.reclaim_after = _seconds("reclaim_after", reclaim_after)
        self.maxlen = _whole("maxlen", maxlen)
        self._redis = redis
        self._reclaim_ms = max(1, math.ceil(self.reclaim_after * 1000))
        self._socket_timeout: float | None = kwargs.get("socket_timeout")
        base = f"{prefix}:{{q:{queue}}}"
        self.stream = f"{base}:outbox"
        """The outbox stream's key."""
        self.dead_stream = f"{base}:dead"
        """The dead letters' stream key."""
        self.unknown_stream = f"{base}:unknown"
        """The unknown sends' stream key."""
        self._put_script = redis.register_script(_PUT_LUA)
        self._touch_script = redis.register_script(_TOUCH_LUA)

    def __repr__(self) -> str:
        return f"RedisOutbox(queue={self.queue!r}, group={self.group!r})"

    # -- Redis calls -------------------------------------------------------------

    async def _create_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except rex.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise store_error("outbox", exc) from None
        except (rex.RedisError, OSError) as exc:
            raise store_error("outbox", exc) from None

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``; a missing group (the stream was deleted) is made, once."""
        ensure_asyncio("wamsg.redis.RedisOutbox")
        for attempt in (1, 2):
            try:
                return await call()
            except rex.ResponseError as exc:
                if attempt == 1 and "NOGROUP" in str(exc):
                    await self._create_group()
                    continue
                raise store_error("outbox", exc) from None
            except (rex.RedisError, OSError) as exc:
                raise store_error("outbox", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- producing ---------------------------------------------------------------

    async def put(self, message: Message, *, key: str) -> str:
        """Enqueue ``message`` to be sent once under the idempotency ``key``; returns its id.

        Everything is checked before any I/O. The entry holds the message's
        fields, not its objects: an image given as bytes (at most
        :data:`MAX_INLINE_BYTES`) or as a URL travels with it; an image given
        as a **path is read by whichever worker sends it**, so the path must
        exist, unchanged, on every worker (shared storage). File objects and
        async streams are refused.

        Putting the same key twice is safe: the second entry is answered
        from the dedupe store (``replayed``), never sent again.

        Args:
            message: a :class:`~wamsg.Text` or :class:`~wamsg.Image`. Its own
                ``idempotency_key``, when set, must equal ``key``.
            key: the idempotency key (1-255 printable characters; keep phone
                numbers out of it).

        Returns:
            The entry's stream id.

        Raises:
            InvalidMessage: the key or the message cannot be enqueued.
            StoreUnavailable: Redis failed, or the outbox holds ``maxlen``
                entries already (``store="outbox"``). Nothing was enqueued,
                unless Redis's answer was lost after it added the entry:
                putting it again with the same key is safe either way.
        """
        check_idempotency_key(key)
        if not isinstance(message, Text | Image):
            raise InvalidMessage(
                f"the outbox takes a wamsg Text or Image, not {type(message).__name__}"
            )
        if message.idempotency_key is not None and message.idempotency_key != key:
            raise InvalidMessage(
                "the message's idempotency_key differs from the key given to put(); "
                "give one key (or the same one)"
            )
        payload = _encode(message, key)
        ensure_asyncio("wamsg.redis.RedisOutbox")

        async def add() -> Any:
            return await self._put_script(
                keys=[self.stream], args=[self.group, self.maxlen, payload]
            )

        entry_id = await self._run(add)
        if entry_id is None:
            raise StoreUnavailable(
                f"the outbox queue {self.queue!r} is full ({self.maxlen} entries): "
                "start more workers or raise maxlen; nothing was enqueued",
                store="outbox",
            )
        return _text(entry_id)

    # -- consuming ---------------------------------------------------------------

    def consume(
        self, consumer: str, *, batch: int = 16, block: float = 1.0
    ) -> AsyncIterator[OutboxItem]:
        """Hand out entries to ``consumer``, forever: settle each item it yields.

        Each round first takes over entries left idle for ``reclaim_after``
        (``XAUTOCLAIM``: a dead worker's, or ones to retry), then reads new
        ones (``XREADGROUP >``), waiting up to ``block`` seconds when there
        is nothing. Entries that cannot be decoded go to ``:dead`` as
        ``"corrupt"``, and entries handed out more than ``max_deliveries``
        times go to ``:dead`` too, without being yielded.

        The later items of a batch wait while the earlier ones are worked
        on: each is made this consumer's again (its idle time restarted)
        before it is yielded, and skipped if another consumer took it over
        meanwhile.

        Iterate it in one task; cancel that task (or break) to stop. Entries
        read but not yet settled stay pending and are taken over after
        ``reclaim_after``: nothing is lost.

        Args:
            consumer: this worker's name in the group (unique per worker).
            batch: entries read per round trip.
            block: seconds to wait for new entries per round (below the
                client's socket timeout).

        Raises:
            ConfigError: bad arguments, or not running on asyncio.
            StoreUnavailable: Redis failed (the iterator ends; start a new one).
        """
        check_name("consumer", consumer)
        _whole("batch", batch)
        wait = _seconds("block", block, zero=True)
        if self._socket_timeout is not None and wait >= self._socket_timeout:
            raise ConfigError(
                f"block ({wait:g}s) must be shorter than the Redis client's socket timeout "
                f"({self._socket_timeout:g}s)"
            )
        return self._items(consumer, batch, wait)

    async def _items(self, consumer: str, batch: int, block: float) -> AsyncIterator[OutboxItem]:
        async for found in self._batches(consumer, batch, block):
            read_at = time.monotonic()
            for item in found.items:
                # The later items of a batch wait while the earlier ones are
                # worked on: one that waited long may have been taken over by
                # another consumer meanwhile. Make it ours again before
                # handing it out, or skip it when it is someone else's now.
                if time.monotonic() - read_at >= self.reclaim_after / 3 and not await item.touch():
                    continue
                yield item

    async def _batches(
        self, consumer: str, batch: int, block: float
    ) -> AsyncGenerator[_Batch, None]:
        """Rounds of entries; an empty one when ``block`` passed with nothing new."""
        ensure_asyncio("wamsg.redis.RedisOutbox")
        await self._create_group()
        block_ms = max(1, round(block * 1000)) if block > 0 else None
        cursor: bytes | str = b"0-0"
        while True:
            reclaimed, cursor = await self._reclaim(consumer, batch, cursor)
            fresh: list[tuple[str, dict[bytes, bytes] | None, int]] = []
            if len(reclaimed) < batch:
                fresh = await self._read(
                    consumer, batch - len(reclaimed), None if reclaimed else block_ms
                )
            items: list[OutboxItem] = []
            settled = 0
            for entry_id, fields, deliveries in (*reclaimed, *fresh):
                item = await self._item(entry_id, fields, deliveries, consumer)
                if item is None:
                    settled += 1
                else:
                    items.append(item)
            yield _Batch(items, settled)

    async def _reclaim(
        self, consumer: str, batch: int, cursor: bytes | str
    ) -> tuple[list[tuple[str, dict[bytes, bytes] | None, int]], bytes | str]:
        """Take over entries idle for ``reclaim_after``, with their delivery counts."""
        redis = self._redis

        async def claim() -> Any:
            return await redis.xautoclaim(
                self.stream, self.group, consumer, self._reclaim_ms, cursor, count=batch
            )

        answer = await self._run(claim)
        following: bytes | str = answer[0]
        entries = answer[1] or []
        # Redis 7 lists entries deleted meanwhile (XDEL, MAXLEN) in a third
        # element and drops them from the pending list itself; Redis 6.2
        # returns them as nil entries, which are acked below.
        gone = [entry_id for entry_id, fields in entries if fields is None and entry_id]
        claimed = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if gone:
            await self._run(lambda: redis.xack(self.stream, self.group, *gone))
        if not claimed:
            return [], following

        async def counts() -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for entry_id, _ in claimed:
                pipe.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            return await pipe.execute()

        answers = await self._run(counts)
        found: list[tuple[str, dict[bytes, bytes] | None, int]] = []
        for (entry_id, fields), rows in zip(claimed, answers, strict=True):
            if not rows:
                # No longer pending: its previous owner settled it between
                # XAUTOCLAIM and XPENDING (a slow send that ended). It is
                # done; taking it as "too many deliveries" would dead-letter
                # a message that was sent.
                continue
            found.append((_text(entry_id), fields, int(rows[0]["times_delivered"])))
        return found, following

    async def _read(
        self, consumer: str, count: int, block_ms: int | None
    ) -> list[tuple[str, dict[bytes, bytes] | None, int]]:
        """New entries for ``consumer`` (delivered for the first time)."""

        async def read() -> Any:
            return await self._redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
            )

        answer = await self._run(read)
        if not answer:
            return []
        streams = answer.items() if isinstance(answer, dict) else answer  # RESP3 / RESP2
        found: list[tuple[str, dict[bytes, bytes] | None, int]] = []
        for _, entries in streams:
            if entries and isinstance(entries[0], list) and isinstance(answer, dict):
                entries = entries[0]  # pragma: no cover - RESP3 wraps the list once more
            for entry_id, fields in entries:
                found.append((_text(entry_id), fields, 1))
        return found

    async def _item(
        self,
        entry_id: str,
        fields: dict[bytes, bytes] | None,
        deliveries: int,
        consumer: str,
    ) -> OutboxItem | None:
        """The item for an entry, or None once a bad entry was moved to ``:dead``."""
        payload = fields.get(b"m") if fields else None
        if payload is None:
            await self._settle(entry_id, ("dead", "", "corrupt", b"", deliveries))
            logger.error(
                "wamsg outbox %s: entry %s has no message; moved to dead", self.queue, entry_id
            )
            return None
        try:
            key, message = _decode(payload)
        except InvalidMessage as exc:
            await self._settle(
                entry_id, ("dead", _peek_key(payload), error_reason(exc), payload, deliveries)
            )
            logger.error(
                "wamsg outbox %s: entry %s no longer validates (%s); moved to dead",
                self.queue,
                entry_id,
                exc.message,
            )
            return None
        except (msgspec.DecodeError, ValueError, TypeError):
            await self._settle(
                entry_id, ("dead", _peek_key(payload), "corrupt", payload, deliveries)
            )
            logger.error(
                "wamsg outbox %s: entry %s is corrupt; moved to dead", self.queue, entry_id
            )
            return None
        if deliveries > self.max_deliveries:
            reason = (
                f"handed out {deliveries} times without being settled "
                f"(max_deliveries {self.max_deliveries})"
            )
            await self._settle(entry_id, ("dead", key, reason, payload, deliveries))
            logger.warning(
                "wamsg outbox %s: entry %s (key %s) %s; moved to dead",
                self.queue,
                entry_id,
                redact(key),
                reason,
            )
            return None
        return OutboxItem(self, entry_id, key, message, payload, deliveries, consumer)

    # -- settling ------------------------------------------------------------------

    async def _settle(
        self, entry_id: str, moved: tuple[Literal["dead", "unknown"], str, str, bytes, int] | None
    ) -> None:
        """Ack and delete an entry, first copying it to ``:dead``/``:unknown``, in one MULTI."""
        redis = self._redis

        async def run() -> Any:
            pipe = redis.pipeline(transaction=True)
            if moved is not None:
                where, key, reason, payload, deliveries = moved
                pipe.xadd(
                    self.dead_stream if where == "dead" else self.unknown_stream,
                    {
                        "id": entry_id,
                        "key": key,
                        "reason": reason,
                        "deliveries": deliveries,
                        "m": payload,
                    },
                    maxlen=self.maxlen,
                    approximate=True,
                )
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            return await pipe.execute()

        await self._run(run)

    async def _touch(self, entry_id: str, consumer: str, *, idle: int, delta: int) -> bool:
        async def run() -> Any:
            return await self._touch_script(
                keys=[self.stream], args=[self.group, consumer, entry_id, idle, delta]
            )

        return bool(await self._run(run))

    async def _release_all(self, consumer: str, limit: int = 10_000) -> int:
        """Give back every entry pending for ``consumer``; how many were."""
        redis = self._redis

        async def pending() -> Any:
            return await redis.xpending_range(
                self.stream, self.group, "-", "+", limit, consumername=consumer
            )

        released = 0
        for row in await self._run(pending):
            if await self._touch(
                _text(row["message_id"]), consumer, idle=self._reclaim_ms, delta=-1
            ):
                released += 1
        return released

    # -- looking -------------------------------------------------------------------

    async def stats(self) -> OutboxStats:
        """The queue's counts, in one round trip.

        Raises:
            StoreUnavailable: Redis failed.
        """
        redis = self._redis

        async def run() -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xlen(self.dead_stream)
            pipe.xlen(self.unknown_stream)
            pipe.xinfo_groups(self.stream)
            return await pipe.execute(raise_on_error=False)

        length, dead, unknown, groups = await self._run(run)
        for value in (length, dead, unknown):
            if isinstance(value, BaseException):
                raise store_error("outbox", value)
        pending = consumers = 0
        if isinstance(groups, rex.ResponseError):
            groups = []  # no stream yet
        elif isinstance(groups, BaseException):
            raise store_error("outbox", groups)
        for info in groups:
            if _text(info.get("name", b"")) == self.group:
                pending = int(info.get("pending", 0))
                consumers = int(info.get("consumers", 0))
        return OutboxStats(
            length=int(length),
            pending=pending,
            dead=int(dead),
            unknown=int(unknown),
            consumers=consumers,
        )

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters (rejected, key reused, too many tries, corrupt).

        Raises:
            StoreUnavailable: Redis failed.
        """
        return await self._letters(self.dead_stream, count)

    async def unknowns(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` sends that may or may not have gone out.

        Raises:
            StoreUnavailable: Redis failed.
        """
        return await self._letters(self.unknown_stream, count)

    async def _letters(self, stream: str, count: int) -> list[DeadLetter]:
        _whole("count", count)

        async def run() -> Any:
            return await self._redis.xrange(stream, count=count)

        letters = []
        for entry_id, fields in await self._run(run):
            payload = fields.get(b"m") or b""
            message: Message | None
            try:
                _, message = _decode(payload)
            except (InvalidMessage, msgspec.DecodeError, msgspec.ValidationError, ValueError):
                message = None
            letter_id = _text(entry_id)
            letters.append(
                DeadLetter(
                    id=letter_id,
                    original_id=_text(fields.get(b"id", b"")),
                    key=_text(fields.get(b"key", b"")),
                    reason=_text(fields.get(b"reason", b"")),
                    message=message,
                    deliveries=int(fields.get(b"deliveries", 0) or 0),
                    at=_id_seconds(letter_id),
                )
            )
        return letters
