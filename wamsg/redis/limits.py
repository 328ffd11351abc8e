"""A rate limit and an in-flight limit shared by every worker of one gateway instance.

:class:`RedisRateLimiter` is :class:`~wamsg.LocalRateLimiter`'s GCRA with
reservation, run inside Redis by one Lua script: each call reserves the next
free turn of the instance (and of the recipient, for per-recipient pacing)
at once and sleeps until it, so the workers are served first come, first
served with no polling. :class:`RedisInFlightLimiter` holds a set of leases
(a sorted set scored by each lease's end), so a crashed worker's slots come
back when its leases end.

Every time is Redis's own (``TIME`` inside the scripts): the workers'
clocks need not agree, and the workers only sleep *relative* waits.

When Redis cannot be reached, ``on_error="local"`` (the default) falls back
to an in-process limiter with ``local_share`` of the limit (set it to
1/number-of-workers to keep the total), logs one warning per outage, and
tries Redis again at most once a second; ``on_error="closed"`` raises
:class:`~wamsg.StoreUnavailable` (outcome ``not_sent``) instead.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import time
from typing import Final, Literal

import anyio
import redis.asyncio as aioredis
import redis.exceptions as rex

from ..errors import ConfigError, Outcome, SendTimeout
from ..limits import Limits, LocalInFlightLimiter, LocalRateLimiter, turn_too_late
from ._base import Outage, check_name, ensure_asyncio, hashed, store_error

__all__ = ["RedisInFlightLimiter", "RedisRateLimiter"]

log = logging.getLogger("wamsg.redis")

OnError = Literal["local", "closed"]

_REDIS_ERRORS: Final = (rex.RedisError, OSError)

# GCRA with reservation, for one gateway instance (KEYS[1], a hash) and,
# when per-recipient pacing is on, one recipient (KEYS[2], a string).
#
# ARGV: [1] interval ms (1000/rate; 0 = no rate), [2] tolerance ms
# ((burst-1)*interval), [3] the caller's remaining time ms (-1 = no
# deadline), [4] the instance's pacing gap ms for this send (-1 = no
# pacing), [5] the recipient's gap ms (-1 = none). The gaps are drawn at
# random by the client and passed in, so the script is deterministic.
#
# Times are milliseconds of Redis's clock with microseconds kept as
# fractions (stored with %.3f: rounding a tat down each call would let the
# rate creep up). The turn starts at the latest of now, tat - tolerance (the
# bucket), the instance's next paced time and the recipient's. If the wait
# for it is longer than the caller can wait, nothing is reserved and the
# wait comes back negative; else the turn is reserved (tat moves one
# interval past it, the paced times one gap past it) and the wait (>= 0)
# comes back. The reply is {wait, start} (start: the turn's Redis time, for
# tests and debugging), as strings: Lua numbers would be truncated to
# integers. Each key's TTL ends when its state no longer matters (tat and
# the paced times are all in the past), plus 1 s.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local remaining = tonumber(ARGV[3])
local gap = tonumber(ARGV[4])
local rgap = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tat', 'next')
local tat = tonumber(state[1]) or 0
local nxt = tonumber(state[2]) or 0
local start = now
if interval > 0 then start = math.max(start, tat - tolerance) end
start = math.max(start, nxt)
if #KEYS > 1 then
  start = math.max(start, tonumber(redis.call('GET', KEYS[2])) or 0)
end
local wait = start - now
if remaining >= 0 and wait > remaining then
  return {string.format('%.3f', -wait), string.format('%.3f', start)}
end
if interval > 0 then tat = math.max(tat, start) + interval end
if gap >= 0 then nxt = start + gap end
redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat), 'next', string.format('%.3f', nxt))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(tat, nxt, now) - now) + 1000)
if #KEYS > 1 and rgap >= 0 then
  local until_ = start + rgap
  redis.call('SET', KEYS[2], string.format('%.3f', until_),
             'PX', math.max(1, math.ceil(until_ - now)))
end
return {string.format('%.3f', wait), string.format('%.3f', start)}
"""

# Take one send slot of a gateway instance (KEYS[1], a sorted set of lease
# tokens scored by the lease's end, ms of Redis's clock).
#
# ARGV: [1] the limit, [2] the lease ms, [3] the new lease's token.
#
# Leases that have ended (their holder crashed or never released) are
# dropped first; then the token is added only if fewer than `limit` leases
# remain. The key's TTL is refreshed to the longest lease (+1 s), so an
# abandoned set disappears. Returns 1 when the slot was taken, else 0.
_TAKE_SLOT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(last[2]) - now) + 1000)
return 1
"""

#: Seconds a slot's lease outlives the call's deadline.
LEASE_GRACE: Final = 10.0
#: Seconds a slot's lease lasts for a call without a deadline.
LEASE_NO_DEADLINE: Final = 3600.0
#: The longest pause between two tries for a free slot.
MAX_POLL: Final = 0.1


def _check_common(on_error: str, local_share: float) -> None:
    if on_error not in ("local", "closed"):
        raise ConfigError('on_error must be "local" or "closed"')
    if not (isinstance(local_share, int | float) and 0 < local_share <= 1):
        raise ConfigError("local_share must be a number in (0, 1]")


def _scaled_gap(gap: tuple[float, float] | None, share: float) -> tuple[float, float] | None:
    if gap is None:
        return None
    return (gap[0] / share, gap[1] / share)


class RedisRateLimiter:
    """A :class:`~wamsg.RateLimiter` shared through Redis by every worker of one gateway instance.

    Args:
        redis: the ``redis.asyncio.Redis`` (:func:`wamsg.redis.connect`).
        name: the gateway instance, shared by the workers that send through
            it (part of the key names: printable, no spaces or braces).
        limits: the rate, burst and pacing to keep, in total across workers
            (``max_in_flight`` is not kept here: use a :class:`RedisInFlightLimiter`).
        on_error: what to do when Redis cannot be reached: ``"local"`` keeps
            an in-process limit of ``local_share`` of ``limits``; ``"closed"``
            raises :class:`~wamsg.StoreUnavailable` (outcome ``not_sent``).
        local_share: the fraction of the limit each worker keeps on its own
            while Redis is down (1/number-of-workers keeps the total). The
            rate and burst are scaled by it (burst at least 1), the pacing
            gaps divided by it.
        prefix: put before every key name.
        rng: the random source of pacing gaps.

    Raises:
        ConfigError: a bad name, ``on_error`` or ``local_share``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        limits: Limits,
        *,
        on_error: OnError = "local",
        local_share: float = 1.0,
        prefix: str = "wamsg",
        rng: random.Random | None = None,
    ) -> None:
        check_name("name", name)
        check_name("prefix", prefix)
        if not isinstance(limits, Limits):
            raise ConfigError(f"limits must be a wamsg.Limits, not {type(limits).__name__}")
        _check_common(on_error, local_share)
        self.name = name
        self.limits = limits
        self.on_error = on_error
        self.local_share = float(local_share)
        self._key = f"{prefix}:{{gw:{name}}}:rl"
        self._pace_prefix = f"{prefix}:{{gw:{name}}}:pace:"
        interval = 1000.0 / limits.rate if limits.rate else 0.0
        self._interval = f"{interval:.6f}"
        self._tolerance = f"{(limits.burst - 1) * interval:.6f}"
        self._script = redis.register_script(_ACQUIRE)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._outage = Outage("rate_limit", "keeping a local share of the limit")
        self._local: LocalRateLimiter | None = None

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.name!r}, {self.limits!r}, on_error={self.on_error!r})"

    @property
    def degraded(self) -> bool:
        """True while Redis is down and the local fallback limits the sends."""
        return self._outage.down

    def _fallback(self) -> LocalRateLimiter:
        if self._local is None:
            share = self.local_share
            limits = self.limits
            self._local = LocalRateLimiter(
                Limits(
                    rate=limits.rate * share if limits.rate else None,
                    burst=max(1, math.floor(limits.burst * share)),
                    pace=_scaled_gap(limits.pace, share),
                    recipient_pace=_scaled_gap(limits.recipient_pace, share),
                ),
                rng=self._rng,
            )
        return self._local

    async def acquire(self, recipient: str, *, deadline: float | None) -> None:
        """Wait for the next send's turn; see :meth:`wamsg.RateLimiter.acquire`.

        Raises:
            SendTimeout: outcome ``not_sent``, when the turn comes after ``deadline``.
            StoreUnavailable: Redis cannot be reached and ``on_error="closed"``.
            ConfigError: not running on asyncio.
        """
        ensure_asyncio("wamsg.redis.RedisRateLimiter")
        if not self.limits.paces:
            return  # no rate and no pacing: nothing to wait for
        if self.on_error == "closed" or self._outage.should_try():
            try:
                wait, _ = await self._reserve(recipient, deadline)
            except _REDIS_ERRORS as exc:
                if self.on_error == "closed":
                    raise store_error("rate_limit", exc) from None
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                if wait < 0:
                    raise turn_too_late(-wait)
                if wait > 0:
                    await anyio.sleep(wait)
                return
        await self._fallback().acquire(recipient, deadline=deadline)

    async def _reserve(self, recipient: str, deadline: float | None) -> tuple[float, float]:
        """Reserve a turn: (seconds to wait, negative when refused; its start, Redis time)."""
        limits = self.limits
        remaining = -1.0
        if deadline is not None:
            remaining = max(0.0, (deadline - time.monotonic()) * 1000.0)
        gap = self._rng.uniform(*limits.pace) * 1000.0 if limits.pace is not None else -1.0
        keys = [self._key]
        rgap = -1.0
        if limits.recipient_pace is not None:
            # Hashed: no phone number in key names (nor in MONITOR's output).
            keys.append(self._pace_prefix + hashed(recipient)[:32])
            rgap = self._rng.uniform(*limits.recipient_pace) * 1000.0
        reply = await self._script(
            keys=keys,
            args=[self._interval, self._tolerance, f"{remaining:.3f}", f"{gap:.3f}", f"{rgap:.3f}"],
        )
        return float(reply[0]) / 1000.0, float(reply[1]) / 1000.0


class _LocalSlot:
    """A slot taken from the local fallback, told apart from Redis leases on release."""

    __slots__ = ("token",)

    def __init__(self, token: object) -> None:
        self.token = token


class RedisInFlightLimiter:
    """A :class:`~wamsg.InFlightLimiter` shared through Redis: ``limit`` sends at once in total.

    Each slot is a lease in a sorted set, ending ``LEASE_GRACE`` (10 s)
    after the call's deadline (an hour without one): a worker that dies
    holding slots gives them back when their leases end.

    Args:
        redis: the ``redis.asyncio.Redis`` (:func:`wamsg.redis.connect`).
        name: the gateway instance (part of the key names).
        limit: sends in flight at most, across all workers.
        on_error: what to do when Redis cannot be reached: ``"local"`` keeps
            an in-process limit of ``max(1, int(limit * local_share))``;
            ``"closed"`` raises :class:`~wamsg.StoreUnavailable`.
        local_share: the fraction of ``limit`` each worker keeps while Redis is down.
        prefix: put before every key name.
        poll: seconds between the first tries for a free slot (the pause
            grows to 0.1 s, with jitter).

    Raises:
        ConfigError: a bad name, limit, ``on_error``, ``local_share`` or ``poll``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        limit: int,
        *,
        on_error: OnError = "local",
        local_share: float = 1.0,
        prefix: str = "wamsg",
        poll: float = 0.01,
    ) -> None:
        check_name("name", name)
        check_name("prefix", prefix)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError("the in-flight limit must be a whole number >= 1")
        _check_common(on_error, local_share)
        if not (isinstance(poll, int | float) and math.isfinite(poll) and poll > 0):
            raise ConfigError("poll must be a positive number of seconds")
        self.name = name
        self.limit = limit
        self.on_error = on_error
        self.local_share = float(local_share)
        self.poll = float(poll)
        self._redis = redis
        self._key = f"{prefix}:{{gw:{name}}}:inflight"
        self._script = redis.register_script(_TAKE_SLOT)
        self._outage = Outage("in_flight", "keeping a local share of the in-flight limit")
        self._local: LocalInFlightLimiter | None = None
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets

    def __repr__(self) -> str:
        return f"RedisInFlightLimiter({self.name!r}, {self.limit}, on_error={self.on_error!r})"

    @property
    def degraded(self) -> bool:
        """True while Redis is down and the local fallback limits the sends."""
        return self._outage.down

    def _fallback(self) -> LocalInFlightLimiter:
        if self._local is None:
            self._local = LocalInFlightLimiter(max(1, int(self.limit * self.local_share)))
        return self._local

    async def acquire(self, *, deadline: float | None) -> object:
        """Wait for a free slot; see :meth:`wamsg.InFlightLimiter.acquire`.

        Raises:
            SendTimeout: outcome ``not_sent``, when no slot is free before ``deadline``.
            StoreUnavailable: Redis cannot be reached and ``on_error="closed"``.
            ConfigError: not running on asyncio.
        """
        ensure_asyncio("wamsg.redis.RedisInFlightLimiter")
        if self.on_error == "closed" or self._outage.should_try():
            try:
                token = await self._take(deadline)
            except _REDIS_ERRORS as exc:
                if self.on_error == "closed":
                    raise store_error("in_flight", exc) from None
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                return token
        return _LocalSlot(await self._fallback().acquire(deadline=deadline))

    async def _take(self, deadline: float | None) -> str:
        token = secrets.token_hex(16)
        delay = self.poll
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            lease = (LEASE_NO_DEADLINE if remaining is None else max(0.0, remaining)) + LEASE_GRACE
            taken = await self._script(
                keys=[self._key], args=[self.limit, math.ceil(lease * 1000), token]
            )
            if int(taken) == 1:
                return token
            pause = delay * self._rng.uniform(0.5, 1.0)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SendTimeout(
                        "no free send slot (max_in_flight) before the deadline; nothing was sent",
                        outcome=Outcome.NOT_SENT,
                    )
                pause = min(pause, remaining)
            await anyio.sleep(pause)
            delay = min(delay * 1.5, MAX_POLL)

    async def release(self, token: object) -> None:
        """Give the slot back; see :meth:`wamsg.InFlightLimiter.release`.

        Shielded from cancellation. A Redis error is logged, not raised: the
        lease ends on its own.
        """
        if isinstance(token, _LocalSlot):
            await self._fallback().release(token.token)
            return
        if not isinstance(token, str):
            raise ConfigError("not a token of this RedisInFlightLimiter")
        # Shielded, but bounded: a hung Redis must not hold the caller long.
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + 2.0) as scope:
            try:
                await self._redis.zrem(self._key, token)
            except _REDIS_ERRORS as exc:
                log.warning(
                    "could not give back a Redis in-flight slot (%s); its lease ends on its own",
                    type(exc).__name__,
                )
        if scope.cancelled_caught:
            log.warning("giving back a Redis in-flight slot timed out; its lease ends on its own")
