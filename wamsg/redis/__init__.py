"""wamsg.redis: one rate limit, dedupe store, cooldown state and outbox shared by many workers.

Several processes (or machines) sending through the same gateway instances
need to agree on what one process keeps in memory: how fast an instance is
sent to, how many sends are in flight, which idempotency keys were used, and
which gateways are cooling down. This package keeps that state in Redis (or
Valkey), with small Lua scripts that read the time from Redis itself::

    import wamsg
    from wamsg.redis import RedisDedupeStore, RedisRateLimiter, connect

    redis = connect("redis://127.0.0.1:6379/0")
    client = wamsg.Client(
        "wawp", instance_id="...", access_token="...", name="wawp-main",
        rate_limiter=RedisRateLimiter(redis, "wawp-main", wamsg.Limits(rate=5, burst=10)),
        dedupe=RedisDedupeStore(redis),
    )

Install with ``pip install 'wamsg[redis]'`` (redis-py's asyncio client).
It runs on asyncio only: redis-py has no trio support, and every class here
raises :class:`~wamsg.ConfigError` when used under trio. ``import wamsg``
never imports this package (nor redis-py).

- :class:`RedisRateLimiter`, :class:`RedisInFlightLimiter`: one
  :class:`~wamsg.Limits` for all workers (``wamsg.redis.limits``);
- :class:`RedisDedupeStore`: idempotency keys, Stripe's model, failing
  closed when Redis is down (``wamsg.redis.dedupe``);
- :class:`RedisCooldownStore`: a Router's cooldowns and probes, shared
  (``wamsg.redis.cooldown``);
- :class:`RedisOutbox`: a durable outbox on Redis Streams (``put`` from a
  web handler, ``consume`` in a worker; ``:dead`` and ``:unknown`` streams
  for what needs a human) (``wamsg.redis.outbox``);
- :func:`run_worker`: sends an outbox's entries with the outcome rules of
  docs/scaling.md; ``wamsg worker`` runs it (``wamsg.redis.worker``);
- :func:`connect`: a ``redis.asyncio.Redis`` with wamsg's timeouts.

See docs/scaling.md.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "wamsg.redis needs redis-py (the redis package), which is not installed: "
        "pip install 'wamsg[redis]'"
    ) from None

from ._base import connect
from .cooldown import RedisCooldownStore
from .dedupe import RedisDedupeStore
from .limits import RedisInFlightLimiter, RedisRateLimiter
from .outbox import MAX_INLINE_BYTES, DeadLetter, OutboxItem, OutboxStats, RedisOutbox
from .worker import ItemCallback, WorkerSummary, run_worker

__all__ = [
    "MAX_INLINE_BYTES",
    "DeadLetter",
    "ItemCallback",
    "OutboxItem",
    "OutboxStats",
    "RedisCooldownStore",
    "RedisDedupeStore",
    "RedisInFlightLimiter",
    "RedisOutbox",
    "RedisRateLimiter",
    "WorkerSummary",
    "connect",
    "run_worker",
]
