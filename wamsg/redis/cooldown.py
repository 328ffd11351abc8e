"""Gateway cooldowns shared by every worker's Router: :class:`RedisCooldownStore`.

LiteLLM's cooldown cache (../shared/docs/scaleout.md §3.1) as a circuit
breaker: TTL'd keys per gateway name, so that expiry ends a cooldown with no
cleanup job, a short local read cache, and one ``SET NX PX`` probe key so
that only one worker probes a half-open gateway:

============================== ===================================== ==========================
key                            meaning                               TTL
============================== ===================================== ==========================
``{prefix}:{gw:<n>}:cooldown`` the gateway cools down                the cooldown
``{prefix}:{gw:<n>}:tripped``  cooling down or half-open             cooldown + 1 h (refreshed)
``{prefix}:{gw:<n>}:failures`` failures in a row                     max(60 s, cooldown *
                                                                     threshold), refreshed
``{prefix}:{gw:<n>}:probe``    a worker probes the half-open gateway the probe window
============================== ===================================== ==========================

A half-open gateway nobody probes for an hour is forgotten (healthy again;
new failures trip it again). Failures further apart than the failures TTL
do not count as "in a row". Remaining times are Redis ``PTTL`` values
(relative), never clock readings.

Cooldowns are advisory: when Redis cannot be reached the store logs once
per outage and every gateway reads as healthy (the sends go on; their own
errors still fail over).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis
import redis.exceptions as rex

from ..cooldown import Health
from ..errors import ConfigError
from ._base import Outage, check_name, ensure_asyncio, hashed

__all__ = ["RedisCooldownStore"]

log = logging.getLogger("wamsg.redis")

_REDIS_ERRORS: Final = (rex.RedisError, OSError)

#: Seconds a tripped gateway stays remembered after its cooldown (half-open).
TRIPPED_GRACE: Final = 3600.0
#: The shortest window in which failures count as "in a row".
MIN_FAILURE_WINDOW: Final = 60.0

# Count a failure of one gateway. KEYS: [1] failures, [2] tripped,
# [3] cooldown, [4] probe. ARGV: [1] threshold, [2] cooldown ms (0 = none:
# half-open at once), [3] failures TTL ms, [4] tripped TTL ms.
#
# The counter goes up (its TTL refreshed). At the threshold, or at any
# failure of a gateway already tripped (cooling or half-open: its probe
# failed), a cooldown starts: the cooldown key with the cooldown as TTL,
# the tripped flag refreshed, and any probe dropped. Returns 1 when a
# cooldown started, else 0.
_FAILED: Final = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if n < tonumber(ARGV[1]) and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[3])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.call('DEL', KEYS[4])
return 1
"""

# The gateway answered: forget everything about it. KEYS as above.
# Returns 1 when it was tripped (cooling down or half-open), else 0.
_SUCCEEDED: Final = """
local was = redis.call('EXISTS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return was
"""

# Take a half-open gateway's one probe. KEYS: [1] tripped, [2] cooldown,
# [3] probe. ARGV: [1] the probe window ms. Only when the gateway is tripped,
# its cooldown has ended and no other probe holds it (SET NX): returns 1 when
# this caller probes, else 0.
_TRY_PROBE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisCooldownStore:
    """A :class:`~wamsg.CooldownStore` in Redis: one circuit breaker per gateway, for all workers.

    Args:
        redis: the ``redis.asyncio.Redis`` (:func:`wamsg.redis.connect`).
        prefix: put before every key name.
        cache: seconds :meth:`health` answers from a local copy before
            asking Redis again (0: every call asks). This store's own
            failures and successes update the copy at once.

    Raises:
        ConfigError: a bad prefix or cache.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "wamsg", cache: float = 1.0) -> None:
        check_name("prefix", prefix)
        if not (isinstance(cache, int | float) and math.isfinite(cache) and cache >= 0):
            raise ConfigError("cache must be a number of seconds >= 0")
        self.prefix = prefix
        self.cache = float(cache)
        self._redis = redis
        self._failed_script = redis.register_script(_FAILED)
        self._succeeded_script = redis.register_script(_SUCCEEDED)
        self._probe_script = redis.register_script(_TRY_PROBE)
        self._outage = Outage("cooldown", "every gateway reads as healthy")
        # name -> (its health, None when healthy; when it was read, monotonic)
        self._seen: dict[str, tuple[Health | None, float]] = {}

    def __repr__(self) -> str:
        return f"RedisCooldownStore(prefix={self.prefix!r}, cache={self.cache:g}s)"

    def _keys(self, name: str) -> tuple[str, str, str, str]:
        """failures, tripped, cooldown, probe: one hash tag, so one Cluster slot."""
        try:
            part = check_name("gateway name", name)
        except ConfigError:
            part = "#" + hashed(name)[:32]  # a Router name with spaces or braces
        base = f"{self.prefix}:{{gw:{part}}}:"
        return base + "failures", base + "tripped", base + "cooldown", base + "probe"

    def _remember(self, name: str, health: Health | None) -> None:
        self._seen[name] = (health, time.monotonic())

    async def health(self, names: Sequence[str]) -> dict[str, Health]:
        """See :meth:`wamsg.CooldownStore.health`: one round trip for the names not cached."""
        ensure_asyncio("wamsg.redis.RedisCooldownStore")
        now = time.monotonic()
        found: dict[str, Health] = {}
        stale: list[str] = []
        for name in dict.fromkeys(names):
            seen = self._seen.get(name)
            if seen is None or now - seen[1] >= self.cache:
                stale.append(name)
                continue
            health, at = seen
            if health is not None:
                # Count down locally (a relative time) between two reads.
                elapsed = now - at
                cooling = max(0.0, health.cooling - elapsed)
                probing = max(0.0, health.probing - elapsed) if health.cooling <= 0 else 0.0
                found[name] = Health(cooling=cooling, probing=probing)
        if not stale:
            return found
        if not self._outage.should_try():
            return {}
        try:
            # A pipeline, not one script: different names live in different
            # Cluster slots. Not a transaction: each name is read on its own.
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in stale:
                    _, tripped, cooldown, probe = self._keys(name)
                    pipe.exists(tripped)
                    pipe.pttl(cooldown)
                    pipe.pttl(probe)
                replies = await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return {}
        self._outage.recovered()
        read_at = time.monotonic()
        for i, name in enumerate(stale):
            tripped, cooling_ms, probe_ms = replies[3 * i : 3 * i + 3]
            read: Health | None = None
            if int(tripped):
                cooling = max(0, int(cooling_ms)) / 1000.0
                probing = max(0, int(probe_ms)) / 1000.0 if cooling <= 0 else 0.0
                read = found[name] = Health(cooling=cooling, probing=probing)
            self._seen[name] = (read, read_at)
        return found

    async def try_probe(self, name: str, window: float) -> bool:
        """See :meth:`wamsg.CooldownStore.try_probe` (one probe cluster-wide).

        True while Redis cannot be reached (cooldowns are advisory).
        """
        ensure_asyncio("wamsg.redis.RedisCooldownStore")
        _, tripped, cooldown, probe = self._keys(name)
        if not self._outage.should_try():
            return True
        try:
            taken = int(
                await self._probe_script(keys=[tripped, cooldown, probe], args=[_ms(window)])
            )
        except _REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return True
        self._outage.recovered()
        if taken:
            self._remember(name, Health(cooling=0.0, probing=window))
        else:
            self._seen.pop(name, None)  # someone else's news: read it next time
        return bool(taken)

    async def release_probe(self, name: str) -> None:
        """See :meth:`wamsg.CooldownStore.release_probe`."""
        ensure_asyncio("wamsg.redis.RedisCooldownStore")
        self._seen.pop(name, None)
        if not self._outage.should_try():
            return
        try:
            await self._redis.delete(self._keys(name)[3])
        except _REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return
        self._outage.recovered()

    async def failed(self, name: str, *, threshold: int, cooldown: float) -> bool:
        """See :meth:`wamsg.CooldownStore.failed` (atomic: one script).

        False while Redis cannot be reached (cooldowns are advisory).
        """
        ensure_asyncio("wamsg.redis.RedisCooldownStore")
        if not self._outage.should_try():
            return False
        cooldown_ms = max(0, math.ceil(cooldown * 1000))
        window = max(MIN_FAILURE_WINDOW, cooldown * max(1, threshold))
        try:
            started = int(
                await self._failed_script(
                    keys=list(self._keys(name)),
                    args=[threshold, cooldown_ms, _ms(window), cooldown_ms + _ms(TRIPPED_GRACE)],
                )
            )
        except _REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return False
        self._outage.recovered()
        if started:
            self._remember(name, Health(cooling=cooldown_ms / 1000.0))
        return bool(started)

    async def succeeded(self, name: str) -> bool:
        """See :meth:`wamsg.CooldownStore.succeeded`.

        False while Redis cannot be reached (cooldowns are advisory).
        """
        ensure_asyncio("wamsg.redis.RedisCooldownStore")
        self._remember(name, None)
        if not self._outage.should_try():
            return False
        try:
            was = int(await self._succeeded_script(keys=list(self._keys(name))))
        except _REDIS_ERRORS as exc:
            self._outage.failed(exc)
            return False
        self._outage.recovered()
        return bool(was)
