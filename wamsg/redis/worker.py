"""Send what a :class:`~wamsg.redis.outbox.RedisOutbox` holds: the worker loop.

:func:`run_worker` reads entries with one consumer name and sends each with
``sender.send(message, idempotency_key=key)``, ``concurrency`` at a time. How
each send ends decides what happens to its entry (../shared/docs/scaleout.md
§4.4):

- a result: the entry is acked (``sent``, or ``replayed`` when the dedupe
  store answered with an earlier send's result);
- :class:`~wamsg.IdempotencyInFlight` (another worker is sending it): left
  pending, looked at again after ``reclaim_after`` (``in_flight_conflicts``);
  still in flight at ``max_deliveries``: ``:unknown``;
- outcome ``not_sent`` (Redis down, 429 or 503 after the sender's retries,
  no provider available...): left pending, handed out again after
  ``reclaim_after`` (``retried``); at ``max_deliveries``: ``:dead``. A send
  that only waited for a turn of the rate or in-flight limit and ran out of
  time before any request, or that could not ask a shared store
  (:class:`~wamsg.StoreUnavailable`), is retried without using up a
  delivery: a backlog behind a low rate, or an outage of the dedupe store's
  Redis, dead-letters nothing;
- outcome ``rejected``, :class:`~wamsg.IdempotencyKeyReused`, or a message
  the sender refuses before any I/O (:class:`~wamsg.InvalidMessage`,
  :class:`~wamsg.UnsupportedFeature`): ``:dead`` (``dead``);
- outcome ``unknown``: ``:unknown``, never sent again (``unknown``);
- :class:`~wamsg.ConfigError` (the sender is closed or misconfigured): the
  entry is given back untried, and the worker stops and raises it.

An earlier rejected or unknown send with the same key is raised again by the
dedupe store and lands in the same place. When settling fails (Redis went
down right after the send), the entry stays pending: when it is handed out
again, the dedupe store answers with the recorded result, so nothing is sent
twice. That is why the sender must have a dedupe store shared by every worker
(``wamsg.redis.RedisDedupeStore``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import msgspec

from .._delivery import BulkResult, Sender
from ..errors import (
    ConfigError,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidMessage,
    Outcome,
    SendTimeout,
    StoreUnavailable,
    UnsupportedFeature,
    WamsgError,
)
from ..models import Attempt
from ._base import check_name, ensure_asyncio
from .outbox import OutboxItem, RedisOutbox, error_reason

__all__ = ["ItemCallback", "WorkerSummary", "run_worker"]

logger = logging.getLogger("wamsg.redis")

ItemCallback = Callable[[OutboxItem, str, BulkResult], Awaitable[None] | None]
"""``on_item(item, label, result_or_error)``; ``label`` is a :class:`WorkerSummary` field."""

#: Seconds between two tries of Redis while it is down, at first and at most.
_BACKOFF: Final = (0.1, 2.0)
#: Seconds a stopping worker spends giving back the entries it read ahead.
_SWEEP_SECONDS: Final = 5.0


class WorkerSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_worker` did; every entry it took counts in exactly one field but ``seen``.

    ``seen == sent + replayed + unknown + dead + retried + in_flight_conflicts``.

    Attributes:
        sent: sent now (acked).
        replayed: answered from the dedupe store by an earlier send (acked).
        unknown: moved to ``:unknown`` (may have been sent; never resent).
        dead: moved to ``:dead`` (rejected, key reused, too many deliveries,
            corrupt or invalid entries).
        retried: not sent, left pending to be retried after ``reclaim_after``.
        in_flight_conflicts: another send with the key was running (left pending).
        seen: entries this worker took.
    """

    sent: int = 0
    replayed: int = 0
    unknown: int = 0
    dead: int = 0
    retried: int = 0
    in_flight_conflicts: int = 0
    seen: int = 0


_LABELS: Final = frozenset(
    {"sent", "replayed", "unknown", "dead", "retried", "in_flight_conflicts"}
)


async def run_worker(
    outbox: RedisOutbox,
    sender: Sender,
    *,
    consumer: str,
    concurrency: int = 8,
    stop: anyio.Event | None = None,
    idle_exit: float | None = None,
    on_item: ItemCallback | None = None,
) -> WorkerSummary:
    """Send the outbox's entries until ``stop`` is set (or the queue stays idle).

    Args:
        outbox: the queue to work on.
        sender: a :class:`~wamsg.Client` or :class:`~wamsg.Router` with a
            dedupe store (share ``RedisDedupeStore`` across workers).
        consumer: this worker's name in the group: unique per running worker
            (e.g. ``f"{hostname}-{pid}"``); a restarted worker may reuse it.
        concurrency: sends running at once.
        stop: set it to stop: no new entry is taken, sends in flight finish
            and are settled, then the summary is returned.
        idle_exit: return once nothing came for this many seconds and no
            entry of the group is pending (batch jobs, tests).
        on_item: called as each entry is settled, with the item, its
            :class:`WorkerSummary` label and the result or error; what it
            raises is logged and ignored. (Corrupt entries, which the
            outbox moves to ``:dead`` itself, count in the summary only.)

    Returns:
        What was done (see :class:`WorkerSummary`).

    Raises:
        ConfigError: bad arguments, a sender without a dedupe store, not
            running on asyncio, or a send that failed with ConfigError (the
            sender is closed or misconfigured): the entry is given back
            untried and the worker stops. Redis outages are waited out, not
            raised.
    """
    ensure_asyncio("wamsg.redis.run_worker")
    if not isinstance(outbox, RedisOutbox):
        raise ConfigError("outbox must be a wamsg.redis.RedisOutbox")
    if not isinstance(sender, Sender):
        raise ConfigError("sender must be a wamsg.Client or wamsg.Router")
    if sender.dedupe is None:
        raise ConfigError(
            "run_worker needs a sender with a dedupe store (dedupe=True, or a "
            "wamsg.redis.RedisDedupeStore shared by the workers): without one, an entry "
            "handed out again after a crash would be sent twice"
        )
    check_name("consumer", consumer)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError("concurrency must be a whole number >= 1")
    if idle_exit is not None and (
        isinstance(idle_exit, bool)
        or not isinstance(idle_exit, int | float)
        or not math.isfinite(idle_exit)
        or idle_exit < 0
    ):
        raise ConfigError("idle_exit must be a number of seconds >= 0, or None")
    # Our own event: idle_exit sets it, never the caller's.
    given_stop, stop = stop, anyio.Event()
    # Counted by WorkerSummary's field names; turned into one at the end.
    counts: Counter[str] = Counter()
    # A heartbeat keeps a long send's entry from being taken over meanwhile.
    beat = max(0.05, outbox.reclaim_after / 3)
    block = min(1.0, beat, idle_exit if idle_exit else 1.0)
    block = max(block, 0.01)
    send_items, receive_items = anyio.create_memory_object_stream[OutboxItem](0)

    async def settle(
        item: OutboxItem, label: str, outcome: BulkResult, reason: str, *, waited: bool = False
    ) -> None:
        counts["seen"] += 1
        counts[label] += 1
        try:
            if label in ("sent", "replayed"):
                await item.ack()
            elif label == "dead":
                await item.dead(reason)
            elif label == "unknown":
                await item.unknown(reason)
            elif waited:
                await item._postpone()
            else:
                await item.retry_later()
        except StoreUnavailable as exc:
            # The send itself is over; the entry stays pending and comes
            # back after reclaim_after, when the dedupe store replays it.
            logger.warning(
                "wamsg worker %s: could not settle entry %s as %s (%s); it stays pending",
                consumer,
                item.id,
                label,
                exc.message,
            )
        if on_item is not None:
            try:
                done = on_item(item, label, outcome)
                if inspect.isawaitable(done):
                    await done
            except Exception:
                logger.exception("wamsg worker %s: the on_item callback raised", consumer)

    async def heartbeat(item: OutboxItem) -> None:
        while True:
            await anyio.sleep(beat)
            try:
                if not await item.touch():
                    return  # taken over already: the dedupe store keeps it single
            except StoreUnavailable:
                pass

    async def attempt(item: OutboxItem) -> BulkResult | Exception:
        """Send ``item``, refreshing its idle time meanwhile; the result or the error."""
        outcome: BulkResult | Exception
        async with anyio.create_task_group() as beats:
            beats.start_soon(heartbeat, item)
            try:
                outcome = await sender.send(item.message, idempotency_key=item.key)
            except Exception as exc:
                outcome = exc
            beats.cancel_scope.cancel()
        return outcome

    fatal: list[ConfigError] = []

    async def handle(item: OutboxItem) -> None:
        outcome = await attempt(item)
        if _unusable(outcome):
            # The sender cannot send at all (closed, misconfigured): that is
            # this worker's problem, not the entry's. Give it back untried
            # and stop; run_worker raises the error.
            assert isinstance(outcome, ConfigError)
            fatal.append(outcome)
            stop.set()
            return  # given back when the worker stops
        if isinstance(outcome, WamsgError):
            if _waited_for_capacity(outcome):
                # No request was made: the shared limits gave no turn before
                # the deadline, or a shared store was down. Neither is a
                # reason to dead-letter a message: retry it without using up
                # a delivery.
                await settle(item, "retried", outcome, error_reason(outcome), waited=True)
                return
            label, reason = _classify(outcome, item, outbox.max_deliveries)
            await settle(item, label, outcome, reason)
        elif isinstance(outcome, Exception):
            # A bug in a hook or an adapter: keep the entry (the dedupe store
            # recorded whether a request may be out).
            logger.error(
                "wamsg worker %s: sending entry %s raised %s; it stays pending",
                consumer,
                item.id,
                type(outcome).__name__,
                exc_info=outcome,
            )
            bug = WamsgError(f"the send raised {type(outcome).__name__}")
            if item.deliveries >= outbox.max_deliveries:
                await settle(item, "dead", bug, error_reason(outcome))
            else:
                await settle(item, "retried", bug, "")
        else:
            await settle(item, "replayed" if outcome.replayed else "sent", outcome, "")

    # Entries the senders hold right now (the worker is not idle while any is).
    taken: set[str] = set()
    # Entries the feeder read and holds until a sender is free.
    held: dict[str, OutboxItem] = {}

    async def keep_held() -> None:
        # A read-ahead entry waits for a free sender, as long as a send takes
        # (a rate limit's turn, a slow gateway): refresh its idle time too,
        # or another worker takes it over meanwhile, both hand it out, and
        # the inflated delivery count dead-letters it in the end.
        while True:
            await anyio.sleep(beat)
            for item in list(held.values()):
                with contextlib.suppress(StoreUnavailable):
                    await item.touch()

    async def send_loop() -> None:
        async for item in receive_items:
            taken.add(item.id)
            try:
                with anyio.CancelScope(shield=True):
                    # A taken entry is always settled, even when the worker stops.
                    await handle(item)
            finally:
                taken.discard(item.id)

    async def feed() -> None:
        delay = _BACKOFF[0]
        idle_since: float | None = None
        while True:
            batches = outbox._batches(consumer, concurrency, block)
            try:
                async with contextlib.aclosing(batches):
                    async for found in batches:
                        delay = _BACKOFF[0]
                        counts["seen"] += found.settled
                        counts["dead"] += found.settled
                        held.update((item.id, item) for item in found.items)
                        try:
                            for item in found.items:
                                await send_items.send(item)
                                held.pop(item.id, None)
                        finally:
                            held.clear()
                        if found.items or found.settled:
                            idle_since = None
                        elif idle_exit is not None and not taken:
                            now = time.monotonic()
                            if idle_since is None:
                                idle_since = now
                            if (
                                now - idle_since >= idle_exit
                                and (await outbox.stats()).pending == 0
                            ):
                                return
            except StoreUnavailable as exc:
                logger.warning(
                    "wamsg worker %s: outbox unavailable (%s); retrying in %.1fs",
                    consumer,
                    exc.message,
                    delay,
                )
                await anyio.sleep(delay)
                delay = min(delay * 2, _BACKOFF[1])

    async def watch(scope: anyio.CancelScope) -> None:
        await stop.wait()
        scope.cancel()

    async def forward() -> None:
        if given_stop is not None:
            await given_stop.wait()
            stop.set()

    try:
        with receive_items:
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(send_loop)
                async with send_items, anyio.create_task_group() as feeders:
                    # Stopping cancels the feeder wherever it is, even in the
                    # middle of a read: what it had read but not handed over
                    # is given back below.
                    feeders.start_soon(watch, feeders.cancel_scope)
                    feeders.start_soon(forward)
                    feeders.start_soon(keep_held)
                    await feed()
                    feeders.cancel_scope.cancel()
                # The feeder closed its end: the senders finish what they hold, then end.
    finally:
        # Every entry still pending for this consumer is untried (read ahead,
        # or read by a cancelled XREADGROUP) or could not be settled: hand
        # them back at once rather than after reclaim_after.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_SWEEP_SECONDS):
            try:
                released = await outbox._release_all(consumer)
            except StoreUnavailable as exc:
                logger.info(
                    "wamsg worker %s: could not give back unsettled entries (%s); "
                    "they are taken over after reclaim_after",
                    consumer,
                    exc.message,
                )
            else:
                if released:
                    logger.debug("wamsg worker %s: gave back %d entries", consumer, released)
    if fatal:
        raise fatal[0]
    return WorkerSummary(**counts)


def _unusable(outcome: object) -> bool:
    """Whether the send failed because of the sender itself, before any I/O."""
    # ProviderConfigError is a ConfigError too, but the gateway's answer
    # (outcome rejected): that one is the entry's, and goes to :dead.
    return isinstance(outcome, ConfigError) and outcome.outcome is Outcome.NOT_SENT


def _waited_for_capacity(error: WamsgError) -> bool:
    """Whether the send stopped before any request, for want of capacity or of Redis.

    ``SendTimeout`` with outcome ``not_sent`` is raised only before a
    request: the rate limit's turn or an in-flight slot comes after the
    deadline, or the deadline passed meanwhile. ``StoreUnavailable`` means
    a shared store (the dedupe store, a closed limiter) could not be asked.
    Neither says anything about the message or the gateway, so neither may
    count as a failed delivery (an outage of the dedupe store's Redis would
    otherwise dead-letter the whole queue after ``max_deliveries``).
    """
    if error.outcome is not Outcome.NOT_SENT:
        return False
    attempts = [a for a in error.attempts if isinstance(a, Attempt)]
    if not all(
        a.status_code is None
        and a.outcome is Outcome.NOT_SENT
        and (a.error or "").startswith(("SendTimeout: ", "StoreUnavailable: "))
        for a in attempts
    ):
        return False
    if isinstance(error, StoreUnavailable):
        return True  # before the claim (no attempt), or in a closed limiter
    return isinstance(error, SendTimeout) and bool(attempts)


def _classify(error: WamsgError, item: OutboxItem, max_deliveries: int) -> tuple[str, str]:
    """The label and reason for an entry whose send raised ``error`` (§4.4)."""
    reason = error_reason(error)
    if isinstance(error, IdempotencyInFlight):
        if item.deliveries >= max_deliveries:
            # Someone held the key through every delivery: it may be out.
            return "unknown", f"still in flight after {item.deliveries} deliveries: {reason}"
        return "in_flight_conflicts", reason
    if isinstance(error, IdempotencyKeyReused | InvalidMessage | UnsupportedFeature):
        # Raised before any I/O, and the same every time.
        return "dead", reason
    if error.outcome is Outcome.REJECTED:
        return "dead", reason
    if error.outcome is Outcome.UNKNOWN:
        return "unknown", reason
    if item.deliveries >= max_deliveries:
        return "dead", f"not sent after {item.deliveries} deliveries: {reason}"
    return "retried", reason
