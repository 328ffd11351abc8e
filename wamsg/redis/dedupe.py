"""Idempotency keys shared by every worker: :class:`RedisDedupeStore`.

Stripe's model (wamsg/idempotency.py, ../shared/docs/scaleout.md §3.2,
§4.4) with the state in one Redis hash per key,
``{prefix}:idem:<namespace>:<sha256(key)>`` (the key itself never reaches
Redis: it may hold a phone number or an order id):

========= ===================================== =============================
state     fields                                TTL
========= ===================================== =============================
inflight  ``token``, ``deadline`` (ms), ``fp``  lease + ttl
sent      ``fp``, ``payload`` (the Record)      ttl
rejected  ``fp``, ``payload``                   ttl
unknown   ``fp``, ``payload`` (or none: lease   ttl
          expired)
========= ===================================== =============================

The claim and the finish are Lua scripts, so a claim is atomic (one winner
per key across workers) and a finish is a compare-and-set on the claim's
token: a worker whose lease ran out never overwrites. Deadlines are Redis
``TIME``. Records are msgpack of plain data (msgspec), never pickle: what is
read from Redis cannot run code, and errors are rebuilt only as classes of
:mod:`wamsg.errors`.

Redis errors fail closed by default (:class:`~wamsg.StoreUnavailable`,
outcome ``not_sent``): sending without the claim is the one way a message
could go out twice. ``on_store_error="open"`` sends anyway (and warns).
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any, Final, Literal

import anyio
import msgspec
import redis.asyncio as aioredis
import redis.exceptions as rex

from .. import errors as _errors
from ..errors import ConfigError, Outcome, WamsgError
from ..idempotency import Claim, Record
from ..models import Attempt, SendResult
from ._base import Outage, check_name, ensure_asyncio, hashed, store_error

__all__ = ["RedisDedupeStore"]

log = logging.getLogger("wamsg.redis")

_REDIS_ERRORS: Final = (rex.RedisError, OSError)

# Claim a key (KEYS[1], a hash) for a send.
#
# ARGV: [1] the new claim's token, [2] the lease ms, [3] the TTL ms of a
# finished record, [4] the message's fingerprint ('' = none), [5] the lease
# policy ('unknown' or 'resend').
#
# Replies: {'claimed'}; {'reused'}; {'in_flight', ms left of its lease};
# {'taken_over'} (an expired lease, policy resend: the caller sends);
# {'done', state, fp, payload} (payload '' for a lease that expired).
#
# Order, as MemoryDedupeStore: an in-flight claim whose lease has ended
# first turns 'unknown' (policy unknown: its owner may have sent, so the key
# is never read as free); then a different fingerprint is 'reused'; then a
# live claim is 'in_flight', an expired one under policy resend is taken
# over, and a finished one is 'done'. The deadline is Redis's clock.
_CLAIM: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local fp = ARGV[4]
local cur = redis.call('HMGET', KEYS[1], 'state', 'deadline', 'fp', 'payload')
local state = cur[1]
if not state then
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'token', ARGV[1],
             'deadline', now + lease, 'fp', fp)
  redis.call('PEXPIRE', KEYS[1], lease + ttl)
  return {'claimed'}
end
local held = cur[3] or ''
local expired = state == 'inflight' and (tonumber(cur[2]) or 0) <= now
if expired and ARGV[5] ~= 'resend' then
  redis.call('HSET', KEYS[1], 'state', 'unknown')
  redis.call('HDEL', KEYS[1], 'token', 'deadline', 'payload')
  redis.call('PEXPIRE', KEYS[1], ttl)
  state = 'unknown'
  cur[4] = false
end
if fp ~= '' and held ~= '' and fp ~= held then return {'reused'} end
if state == 'inflight' then
  if not expired then return {'in_flight', tostring(tonumber(cur[2]) - now)} end
  if held == '' then held = fp end
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'deadline', now + lease, 'fp', held)
  redis.call('PEXPIRE', KEYS[1], lease + ttl)
  return {'taken_over'}
end
return {'done', state, held, cur[4] or ''}
"""

# Finish a claim (KEYS[1]): compare-and-set on the exact token while the key
# is still in flight, so a claim that was lost (turned unknown, taken over,
# expired) is never overwritten.
#
# ARGV: [1] the claim's token, [2] the final state ('' = release: not sent),
# [3] the payload, [4] the TTL ms. Returns 1 when done, 0 when the claim was
# lost (nothing changed). A release deletes the key: the message may be sent
# again.
_FINISH: Final = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'token')
if cur[1] ~= 'inflight' or cur[2] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'payload', ARGV[3])
redis.call('HDEL', KEYS[1], 'token', 'deadline')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# Store a finished record (KEYS[1]) that was never claimed (a generated key),
# replacing whatever is there; with ARGV[5] = 'nx', only when the key is
# absent (the open-mode finish of a claim Redis never saw).
#
# ARGV: [1] state, [2] fingerprint, [3] payload, [4] TTL ms, [5] 'nx' or ''.
_PUT: Final = """
if ARGV[5] == 'nx' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'fp', ARGV[2], 'payload', ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# How long the claim holding a key (KEYS[1]) may still run: ms left of its
# lease (Redis's clock), or -1 when the key is not in flight (finished,
# released or gone), for wait().
_LEASE_LEFT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', KEYS[1], 'state', 'deadline')
if cur[1] ~= 'inflight' then return -1 end
return math.max(0, (tonumber(cur[2]) or 0) - now)
"""

# -- records as plain data -----------------------------------------------------

Scalar = str | int | float | bool | None

#: Attributes of an error that are stored apart (or not at all: the
#: idempotency key stays out of Redis, the replay sets it again).
_SKIPPED: Final = frozenset({"message", "outcome", "retryable", "attempts", "idempotency_key"})


class _StoredError(msgspec.Struct, frozen=True, kw_only=True):
    classes: tuple[str, ...]
    """The error's class and its bases, nearest first (names only)."""
    message: str
    outcome: Outcome
    retryable: bool
    attempts: tuple[Attempt, ...] = ()
    attrs: dict[str, Scalar] = {}
    own: tuple[str, ...] = ()
    """Which of outcome and retryable the error set itself (not its class)."""


class _Stored(msgspec.Struct, frozen=True, kw_only=True):
    v: int = 1
    state: Literal["sent", "rejected", "unknown"]
    fingerprint: str = ""
    result: SendResult | None = None
    keyed: bool = False
    """The result's idempotency key was the record's key (left out, put back on reading)."""
    error: _StoredError | None = None


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Stored)


def _known_classes() -> dict[str, type[WamsgError]]:
    found: dict[str, type[WamsgError]] = {}
    for name in dir(_errors):
        value = getattr(_errors, name)
        if isinstance(value, type) and issubclass(value, WamsgError):
            found[value.__name__] = value
    return found


#: The only classes an error read from Redis may be rebuilt as.
_CLASSES: Final = _known_classes()


def _freeze_error(error: WamsgError) -> _StoredError:
    attrs: dict[str, Scalar] = {}
    for name, value in vars(error).items():
        if name in _SKIPPED or name.startswith("_"):
            continue
        if value is None or isinstance(value, str | int | float | bool):
            attrs[name] = value
    attempts = tuple(a for a in error.attempts if isinstance(a, Attempt))
    return _StoredError(
        classes=tuple(c.__name__ for c in type(error).__mro__ if issubclass(c, WamsgError)),
        message=error.message,
        outcome=Outcome(error.outcome),
        retryable=bool(error.retryable),
        attempts=attempts,
        attrs=attrs,
        own=tuple(name for name in ("outcome", "retryable") if name in vars(error)),
    )


def _thaw_error(stored: _StoredError) -> WamsgError:
    # The nearest class that is one of wamsg.errors' (never one imported by
    # name from elsewhere), else WamsgError itself; a class that is not
    # rebuilt exactly keeps its name in ``stored_class``.
    cls: type[WamsgError] = WamsgError
    for name in stored.classes:
        known = _CLASSES.get(name)
        if known is not None:
            cls = known
            break
    exact = bool(stored.classes) and cls.__name__ == stored.classes[0]
    error = cls.__new__(cls)
    Exception.__init__(error, stored.message)
    state: dict[str, Any] = dict(stored.attrs)
    state["message"] = stored.message
    if not exact:
        state["stored_class"] = stored.classes[0] if stored.classes else ""
    error.__dict__.update(
        # Plain data attributes only: nothing read may shadow a method.
        {
            name: value
            for name, value in state.items()
            if name.isidentifier()
            and not name.startswith("_")
            and not callable(getattr(cls, name, None))
        }
    )
    # Set on the instance when the original set them, or its class differs.
    if "outcome" in stored.own or error.outcome != stored.outcome:
        error.outcome = stored.outcome
    if "retryable" in stored.own or error.retryable != stored.retryable:
        error.retryable = stored.retryable
    if stored.attempts:
        error.attempts = stored.attempts
    return error


def encode_record(record: Record, key: str | None = None) -> bytes:
    """A :class:`~wamsg.idempotency.Record` as msgpack bytes (plain data, no pickle).

    Args:
        record: what to store.
        key: the idempotency key it is stored under: a result naming it
            leaves it out (the key text stays out of Redis), and
            :func:`decode_record` puts it back.
    """
    result = record.result
    keyed = result is not None and key is not None and result.idempotency_key == key
    if keyed and result is not None:
        result = msgspec.structs.replace(result, idempotency_key=None)
    return _ENCODER.encode(
        _Stored(
            state=record.state,
            fingerprint=record.fingerprint,
            result=result,
            keyed=keyed,
            error=_freeze_error(record.error) if record.error is not None else None,
        )
    )


def decode_record(data: bytes, key: str | None = None) -> Record:
    """The :class:`~wamsg.idempotency.Record` of :func:`encode_record`'s bytes.

    Args:
        data: the bytes.
        key: the idempotency key they were read under.

    Raises:
        msgspec.DecodeError: the bytes are not such a record.
    """
    stored = _DECODER.decode(data)
    result = stored.result
    if result is not None and stored.keyed and key is not None:
        result = msgspec.structs.replace(result, idempotency_key=key)
    return Record(
        state=stored.state,
        fingerprint=stored.fingerprint,
        result=result,
        error=_thaw_error(stored.error) if stored.error is not None else None,
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisDedupeStore:
    """A :class:`~wamsg.DedupeStore` in Redis, shared by every worker (and every gateway).

    Args:
        redis: the ``redis.asyncio.Redis`` (:func:`wamsg.redis.connect`).
        namespace: keeps the keys of different applications apart (part of
            the key names: printable, no spaces or braces).
        ttl: seconds a finished send is remembered (24 h, like Stripe's keys).
        on_store_error: ``"closed"`` (default): when Redis cannot be reached
            a send raises :class:`~wamsg.StoreUnavailable` (outcome
            ``not_sent``) before any I/O. ``"open"``: the send goes ahead
            unchecked (a warning per outage), and failures to record it are
            logged.
        lease_policy: what a claim whose lease ran out (its owner died
            mid-send) becomes: ``"unknown"`` (default: at most once, the key
            replays as unknown, never resent) or ``"resend"`` (the next claim
            takes it over and sends: at least once, a duplicate is possible).
        prefix: put before every key name.

    Raises:
        ConfigError: a bad namespace, ttl or policy.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "default",
        ttl: float = 86400.0,
        on_store_error: Literal["closed", "open"] = "closed",
        lease_policy: Literal["unknown", "resend"] = "unknown",
        prefix: str = "wamsg",
    ) -> None:
        check_name("namespace", namespace)
        check_name("prefix", prefix)
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
            raise ConfigError("ttl must be a positive number of seconds")
        if on_store_error not in ("closed", "open"):
            raise ConfigError('on_store_error must be "closed" or "open"')
        if lease_policy not in ("unknown", "resend"):
            raise ConfigError('lease_policy must be "unknown" or "resend"')
        self.namespace = namespace
        self.ttl = float(ttl)
        self.on_store_error = on_store_error
        self.lease_policy = lease_policy
        self._prefix = f"{prefix}:idem:{namespace}:"
        self._ttl_ms = max(1, math.ceil(self.ttl * 1000))
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._put = redis.register_script(_PUT)
        self._lease_left = redis.register_script(_LEASE_LEFT)
        self._outage = Outage("dedupe", "sending without the idempotency check", retry=0.0)

    def __repr__(self) -> str:
        return (
            f"RedisDedupeStore(namespace={self.namespace!r}, ttl={self.ttl:g}s, "
            f"on_store_error={self.on_store_error!r}, lease_policy={self.lease_policy!r})"
        )

    def key_name(self, key: str) -> str:
        """The Redis key that holds ``key``'s state (its SHA-256, never the key itself)."""
        return self._prefix + hashed(key)

    def _failed(self, what: str, exc: BaseException) -> None:
        """Raise (closed) or log (open) a Redis error."""
        if self.on_store_error == "closed":
            raise store_error("dedupe", exc) from None
        known = self._outage.down  # already said: once per outage, not per call
        self._outage.failed(exc)
        if what != "claim" and not known:
            log.warning(
                "Redis dedupe store: could not %s (%s); the key's state may be stale",
                what,
                type(exc).__name__,
            )

    async def claim(self, key: str, fingerprint: str, *, lease: float) -> Claim:
        """See :meth:`wamsg.DedupeStore.claim`.

        Raises:
            StoreUnavailable: Redis cannot be reached (``on_store_error="closed"``).
            ConfigError: not running on asyncio.
        """
        ensure_asyncio("wamsg.redis.RedisDedupeStore")
        token = secrets.token_hex(16)
        lease_ms = max(1, math.ceil(lease * 1000))
        try:
            reply = await self._claim(
                keys=[self.key_name(key)],
                args=[token, lease_ms, self._ttl_ms, fingerprint, self.lease_policy],
            )
        except _REDIS_ERRORS as exc:
            self._failed("claim", exc)
            # Open: send without the check. Token "": finish() then only
            # records the end if no one else holds the key.
            return Claim(status="claimed", token="")
        self._outage.recovered()
        status = _text(reply[0])
        if status == "claimed":
            return Claim(status="claimed", token=token)
        if status == "taken_over":
            log.warning(
                "an idempotency claim's lease ran out before its send ended; "
                'lease_policy="resend" sends it again (at least once: it may be a duplicate)'
            )
            return Claim(status="claimed", token=token)
        if status == "reused":
            return Claim(status="reused")
        if status == "in_flight":
            return Claim(status="in_flight")
        held, payload = _text(reply[2]), reply[3]
        if payload:
            try:
                return Claim(status="done", record=decode_record(bytes(payload), key))
            except (msgspec.DecodeError, ValueError, TypeError):
                log.warning("Redis dedupe store: a stored record could not be read; unknown")
        # A lease that ran out (or an unreadable record): the message may be
        # out, so it replays as unknown, never as free.
        return Claim(status="done", record=Record(state="unknown", fingerprint=held))

    async def finish(self, key: str, token: str, record: Record | None) -> bool:
        """See :meth:`wamsg.DedupeStore.finish`.

        Raises:
            StoreUnavailable: Redis cannot be reached (``on_store_error="closed"``).
        """
        ensure_asyncio("wamsg.redis.RedisDedupeStore")
        try:
            if not token:
                # An open-mode claim Redis never saw: record the end unless
                # another send holds the key by now.
                if record is not None:
                    await self._put(
                        keys=[self.key_name(key)],
                        args=[
                            record.state,
                            record.fingerprint,
                            encode_record(record, key),
                            self._ttl_ms,
                            "nx",
                        ],
                    )
                return True
            done = await self._finish(
                keys=[self.key_name(key)],
                args=[
                    token,
                    "" if record is None else record.state,
                    b"" if record is None else encode_record(record, key),
                    self._ttl_ms,
                ],
            )
        except _REDIS_ERRORS as exc:
            self._failed("record how the send ended", exc)
            return True
        self._outage.recovered()
        return int(done) == 1

    async def put(self, key: str, record: Record) -> None:
        """See :meth:`wamsg.DedupeStore.put`.

        Raises:
            StoreUnavailable: Redis cannot be reached (``on_store_error="closed"``).
        """
        ensure_asyncio("wamsg.redis.RedisDedupeStore")
        try:
            await self._put(
                keys=[self.key_name(key)],
                args=[
                    record.state,
                    record.fingerprint,
                    encode_record(record, key),
                    self._ttl_ms,
                    "",
                ],
            )
        except _REDIS_ERRORS as exc:
            self._failed("store a record", exc)
            return
        self._outage.recovered()

    async def wait(self, key: str, timeout: float | None) -> None:
        """See :meth:`wamsg.DedupeStore.wait`: polls (10 ms, growing to 250 ms).

        Returns when the key is no longer in flight, when its lease has
        ended (it then reads as unknown, or may be taken over), or after
        ``timeout`` seconds.

        Raises:
            StoreUnavailable: Redis cannot be reached (``on_store_error="closed"``).
        """
        ensure_asyncio("wamsg.redis.RedisDedupeStore")
        if timeout is not None and timeout <= 0:
            return
        name = self.key_name(key)
        delay = 0.01
        with anyio.move_on_after(timeout if timeout is not None else math.inf):
            while True:
                try:
                    left = int(await self._lease_left(keys=[name]))
                except _REDIS_ERRORS as exc:
                    self._failed("wait for a send in flight", exc)
                    return
                if left <= 0:
                    return
                await anyio.sleep(min(delay, left / 1000.0))
                delay = min(delay * 1.5, 0.25)
