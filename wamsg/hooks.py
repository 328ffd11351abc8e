"""Hooks: callbacks at each step of a delivery, for metrics and tracing.

A hook is a plain or async function taking one :class:`DeliveryEvent`. It
runs inline, so keep it quick. A hook that raises is logged (on the
``wamsg`` logger) and otherwise ignored: observing a send never changes it.
Events hold no secret and the recipient only masked; the idempotency key is
there as given (log lines mask phone-like digits in it), so that a hook can
correlate attempts by it: keep numbers out of your keys.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias

import msgspec

from .errors import ConfigError, WamsgError
from .models import SendResult

__all__ = ["DeliveryEvent", "Hook", "Hooks"]

logger = logging.getLogger("wamsg")


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a send.

    Attributes:
        kind: ``"before_send"`` (an attempt starts), ``"after_send"`` (it
            ended: see ``result`` or ``error``), ``"retry"`` (another attempt
            follows after ``delay`` seconds) or ``"failover"`` (the next
            attempt goes to ``next_provider``).
        provider: the provider of the attempt.
        attempt: the attempt's number, from 1.
        recipient: the recipient, masked.
        idempotency_key: the send's key.
        result: the attempt's result (``after_send`` of a success).
        error: the attempt's error (``after_send`` of a failure, ``retry``, ``failover``).
        delay: seconds until the next attempt (``retry``).
        next_provider: where the next attempt goes (``failover``).
    """

    kind: Literal["before_send", "after_send", "retry", "failover"]
    provider: str
    attempt: int
    recipient: str
    idempotency_key: str
    result: SendResult | None = None
    error: WamsgError | None = None
    delay: float | None = None
    next_provider: str | None = None


Hook: TypeAlias = Callable[[DeliveryEvent], Awaitable[None] | None]


class Hooks(msgspec.Struct, frozen=True, kw_only=True):
    """The callbacks of a :class:`~wamsg.Client` or :class:`~wamsg.Router`; each optional."""

    before_send: Hook | None = None
    after_send: Hook | None = None
    on_retry: Hook | None = None
    on_failover: Hook | None = None

    def __post_init__(self) -> None:
        for name in ("before_send", "after_send", "on_retry", "on_failover"):
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise ConfigError(f"Hooks.{name} must be callable")

    async def fire(self, hook: Hook | None, event: DeliveryEvent) -> None:
        """Run ``hook`` with ``event``; log and swallow what it raises."""
        if hook is None:
            return
        try:
            outcome = hook(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("wamsg: the %s hook %r raised; the send goes on", event.kind, hook)
