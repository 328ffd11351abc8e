"""When a failed send may be tried again, and how long to wait first.

The one rule: a WhatsApp send is a non-idempotent POST, and none of the
gateways takes an idempotency key, so only a failure whose
:attr:`~wamsg.WamsgError.outcome` is ``not_sent`` is ever retried on its own
(connection refused, 429, 503, a gateway's "not ready yet"). An ``unknown``
outcome (a timeout or a disconnect after the request went out) is retried
only when the caller opts in for that call; ``rejected`` never is.

Waits are exponential with *full jitter* (a uniform draw between 0 and the
exponential step, as in the AWS Architecture Blog's "Exponential Backoff And
Jitter"), so many clients failing together do not retry together. A
``Retry-After`` from the gateway (seconds or an HTTP date, RFC 9110 §10.2.3)
is a floor: the wait is never shorter than what the gateway asked for.
"""

from __future__ import annotations

import math
import random

import msgspec

from .errors import ConfigError, Outcome, WamsgError

__all__ = ["NO_RETRY", "RetryPolicy"]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How many times to try a send and how long to wait between tries.

    Attributes:
        attempts: tries in all, the first one included (1 = never retry).
        base: the first backoff step, in seconds; step *n* is ``base * 2**(n-1)``.
        cap: the largest backoff step, in seconds.
        max_elapsed: give up retrying once this many seconds have passed since
            the call started (the call's own ``timeout`` also bounds it).
        max_retry_after: a gateway asking to wait longer than this is not
            waited for: the error is raised at once.
        retry_unknown: also retry failures whose outcome is ``unknown``. The
            message may then arrive twice, unless the gateway takes a client
            message id (WAHA). Opt in per call, knowing that.
        wait: False skips the sleeps (for tests); delays are still computed
            and recorded in :attr:`~wamsg.Attempt.waited`.
    """

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    max_elapsed: float | None = None
    max_retry_after: float = 300.0
    retry_unknown: bool = False
    wait: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigError("RetryPolicy.attempts must be a whole number")
        if self.attempts < 1:
            raise ConfigError("RetryPolicy.attempts must be at least 1 (1 means no retry)")
        for name in ("base", "cap", "max_retry_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"RetryPolicy.{name} must be a finite number of seconds >= 0")
        if self.max_elapsed is not None and not (
            math.isfinite(self.max_elapsed) and self.max_elapsed > 0
        ):
            raise ConfigError("RetryPolicy.max_elapsed must be a positive number of seconds")

    def should_retry(self, error: WamsgError) -> bool:
        """Whether ``error`` may be tried again under this policy (attempts aside)."""
        if error.outcome is Outcome.NOT_SENT:
            return error.retryable
        if error.outcome is Outcome.UNKNOWN:
            # Opt-in only: the first request may have been delivered.
            return self.retry_unknown
        return False

    def delay(self, retry: int, error: WamsgError, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        Full jitter over the exponential step, never less than the
        gateway's ``retry_after``. Returns ``math.inf`` when the gateway
        asked for a wait above :attr:`max_retry_after`.
        """
        step = min(self.cap, self.base * 2.0 ** (retry - 1)) if self.base else 0.0
        jittered = (rng or _random).uniform(0.0, step) if step else 0.0
        hint = getattr(error, "retry_after", None)
        if hint is None:
            return jittered
        if hint > self.max_retry_after:
            return math.inf
        # The gateway's own number, plus a little jitter on top so that the
        # clients it told to come back "in 1 s" do not all come back together.
        return float(hint) + min(jittered, 0.1 * float(hint) + 0.05)


NO_RETRY = RetryPolicy(attempts=1)
"""Send once, never retry."""

_random = random.Random()  # noqa: S311 - jitter, not secrets
