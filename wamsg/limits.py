"""How fast one gateway instance is sent to: a token bucket, pacing, and sends in flight.

Unofficial gateways drive a real WhatsApp account, and WhatsApp bans numbers
that send in bursts; the official-style ones (WUTS) answer 429 past their
plan's rate. So each client can hold its sends to:

- a **rate** with a **burst** (a token bucket, written as GCRA: one number,
  the "theoretical arrival time", instead of a token count and a timer);
- **pacing**: a random gap between two sends of the instance, and another
  between two sends to the same recipient, the jitter that makes traffic
  look less like a script;
- a **maximum of sends in flight** (:class:`InFlightLimiter`;
  :class:`LocalInFlightLimiter` wraps an :class:`anyio.CapacityLimiter`).

The limiters are protocols: the in-process ones here are the defaults, and
``wamsg.redis`` shares them between workers (docs/scaling.md).

Each wait is a *reservation*: the caller takes the next free slot at once
and sleeps until it, so concurrent callers are served first come, first
served with no polling. A wait that would end after the call's deadline is
not started: the send fails at once with outcome ``not_sent``.
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio
import msgspec

from .errors import ConfigError, Outcome, SendTimeout


def turn_too_late(wait: float) -> SendTimeout:
    """The error of a rate-limit turn that comes after the call's deadline."""
    return SendTimeout(
        f"the rate limit gives the next turn in {wait:.2f}s, after the "
        "call's deadline; nothing was sent",
        outcome=Outcome.NOT_SENT,
        retryable=False,
    )


__all__ = ["InFlightLimiter", "Limits", "LocalInFlightLimiter", "LocalRateLimiter", "RateLimiter"]


def _gap(name: str, value: tuple[float, float] | None) -> None:
    if value is None:
        return
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ConfigError(f"Limits.{name} must be (min, max) seconds with 0 <= min <= max")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The pace one gateway instance is sent at. Every field is off by default.

    Attributes:
        rate: sends per second, on average.
        burst: sends allowed at once above the rate (the bucket's size).
        max_in_flight: sends waiting for an answer at the same time.
        pace: (min, max) seconds between two sends of this instance, drawn
            at random for each send.
        recipient_pace: (min, max) seconds between two sends to the same
            recipient.
    """

    rate: float | None = None
    burst: int = 1
    max_in_flight: int | None = None
    pace: tuple[float, float] | None = None
    recipient_pace: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError("Limits.rate must be a positive number of sends per second")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigError("Limits.burst must be a whole number >= 1")
        if self.max_in_flight is not None and (
            isinstance(self.max_in_flight, bool)
            or not isinstance(self.max_in_flight, int)
            or self.max_in_flight < 1
        ):
            raise ConfigError("Limits.max_in_flight must be a whole number >= 1")
        _gap("pace", self.pace)
        _gap("recipient_pace", self.recipient_pace)

    @property
    def paces(self) -> bool:
        """True when a rate or a pacing gap is set (a :class:`RateLimiter` is needed)."""
        return self.rate is not None or self.pace is not None or self.recipient_pace is not None


@runtime_checkable
class RateLimiter(Protocol):
    """Grants one gateway instance's sends their turn."""

    async def acquire(self, recipient: str, *, deadline: float | None) -> None:
        """Wait for the next send's turn.

        Args:
            recipient: who the send goes to, for per-recipient pacing.
            deadline: the :func:`time.monotonic` time the call must end by.

        Raises:
            SendTimeout: with outcome ``not_sent``, when the turn comes after
                ``deadline`` (nothing waits for a turn it cannot use).
        """
        ...


class LocalRateLimiter:
    """The in-process :class:`RateLimiter`, from a :class:`Limits`.

    Args:
        limits: the rate, burst and pacing to keep.
        clock: a monotonic clock in seconds (``time.monotonic``, as the
            deadlines use).
        rng: the random source of pacing gaps.
    """

    #: Recipients whose pacing is remembered at most (the oldest go first).
    MAX_RECIPIENTS = 100_000

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits
        self._interval = 1.0 / limits.rate if limits.rate else 0.0
        # GCRA: a send conforms when it comes no earlier than `tat - tolerance`;
        # burst sends fit in the tolerance.
        self._tolerance = (limits.burst - 1) * self._interval
        self._tat = -math.inf
        self._next_any = -math.inf
        self._next_to: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    def __repr__(self) -> str:
        return f"LocalRateLimiter({self.limits!r})"

    async def acquire(self, recipient: str, *, deadline: float | None) -> None:
        """See :meth:`RateLimiter.acquire`."""
        now = self._clock()
        loop_now = anyio.current_time()  # the same moment, on the clock sleeps use
        start = now
        if self._interval:
            start = max(start, self._tat - self._tolerance)
        start = max(start, self._next_any)
        pace_to = self.limits.recipient_pace
        if pace_to is not None:
            start = max(start, self._next_to.get(recipient, -math.inf))
        if deadline is not None and start > deadline:
            raise turn_too_late(start - now)
        # Reserve the turn now, before sleeping, so that callers queue in order.
        if self._interval:
            self._tat = max(self._tat, start) + self._interval
        pace = self.limits.pace
        if pace is not None:
            self._next_any = start + self._rng.uniform(*pace)
        if pace_to is not None:
            self._pace_recipient(recipient, start + self._rng.uniform(*pace_to), now)
        if start > now:
            # Sleep until a point on the event loop's clock, read next to
            # ``now``: a relative sleep would start counting whenever the
            # task got here, so a stall before it (a busy loop, a GC pause)
            # could wake a later turn first.
            await anyio.sleep_until(loop_now + (start - now))

    def _pace_recipient(self, recipient: str, when: float, now: float) -> None:
        table = self._next_to
        table[recipient] = when
        table.move_to_end(recipient)
        # Oldest first: a recipient whose gap has passed needs no entry.
        while table:
            key, until = next(iter(table.items()))
            if until > now and len(table) <= self.MAX_RECIPIENTS:
                break
            del table[key]


@runtime_checkable
class InFlightLimiter(Protocol):
    """Holds one gateway instance to a number of sends waiting for an answer at once."""

    async def acquire(self, *, deadline: float | None) -> object:
        """Wait for a free slot; return a token to :meth:`release` it with.

        Raises:
            SendTimeout: with outcome ``not_sent``, when no slot is free
                before ``deadline`` (a :func:`time.monotonic` time).
        """
        ...

    async def release(self, token: object) -> None:
        """Give the slot back (called even when the send was cancelled)."""
        ...


class LocalInFlightLimiter:
    """The in-process :class:`InFlightLimiter`: an :class:`anyio.CapacityLimiter`.

    Args:
        limit: sends in flight at most.
    """

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError("the in-flight limit must be a whole number >= 1")
        self.limit = limit
        self._slots = anyio.CapacityLimiter(limit)

    def __repr__(self) -> str:
        return f"LocalInFlightLimiter({self.limit})"

    @property
    def in_flight(self) -> int:
        """Slots taken now."""
        return int(self._slots.borrowed_tokens)

    async def acquire(self, *, deadline: float | None) -> object:
        """See :meth:`InFlightLimiter.acquire`."""
        slots = self._slots
        # Borrowed on behalf of a token of its own, not of the task: one
        # task may hold several slots, and another task may give one back.
        token = object()
        if deadline is None:
            await slots.acquire_on_behalf_of(token)
            return token
        with anyio.move_on_after(deadline - time.monotonic()):
            await slots.acquire_on_behalf_of(token)
            return token
        raise SendTimeout(
            "no free send slot (max_in_flight) before the deadline; nothing was sent",
            outcome=Outcome.NOT_SENT,
        )

    async def release(self, token: object) -> None:
        """See :meth:`InFlightLimiter.release`."""
        self._slots.release_on_behalf_of(token)
