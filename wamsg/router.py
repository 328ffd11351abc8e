"""Failover between providers: one send interface over several clients.

A :class:`Router` tries its clients in order. It moves on to the next one
only when a send certainly did not go out (outcome ``not_sent``: connection
refused, 429, 503, a cooldown); a send that may have gone out (``unknown``)
or was refused for what it says (``rejected``) is never sent through another
provider, since that could deliver the message twice or send what one
gateway already judged bad.

A provider that fails ``failures`` times in a row (any failure except a
rejection of the message itself) *cools down* for ``cooldown`` seconds: it is
skipped meanwhile. Then one send probes it (a "half-open" circuit breaker);
success brings it back, failure starts another cooldown. The idempotency
key belongs to the router, not to a provider, so failover cannot resend a
message under the same key.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._delivery import Sender, Target
from .client import Client, prepare_image
from .config import Config, load_config
from .errors import (
    AuthenticationError,
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderConfigError,
    SendTimeout,
    UnsupportedFeature,
    WamsgError,
)
from .hooks import Hooks
from .idempotency import DedupeStore
from .models import Image, Message
from .providers.base import check_message
from .retry import RetryPolicy

__all__ = ["Router"]

logger = logging.getLogger("wamsg")


#: Seconds between looks at a provider that another send is probing.
_PROBE_POLL = 1.0


class _Health:
    __slots__ = ("failures", "probe_started", "until")

    def __init__(self) -> None:
        self.failures = 0
        self.until = 0.0
        """When the cooldown ends; 0 while healthy."""
        self.probe_started = -math.inf
        """When the send probing it after a cooldown began."""


class Router(Sender):
    """Send through the first available of several clients, failing over safely.

    ::

        async with wamsg.Router([wamsg.Client("gowa", ...), wamsg.Client("wuts", ...)]) as r:
            result = await r.send_text("+55 11 99999-0000", "Hello")
            result.attempts  # each try: provider, error, outcome, duration

    The clients' own rate limits and timeouts apply to each attempt; the
    router's ``retry``, ``timeout``, ``dedupe`` and ``hooks`` replace theirs.
    The router owns the clients: closing it closes them.

    Args:
        clients: the clients, in order of preference (at least one; each
            provider instance once).
        timeout: the deadline of one send call, failover included.
        retry: how many attempts in all, and the backoff between rounds (a
            round tries every available provider once, with no wait).
        failures: consecutive failures that put a provider in cooldown.
        cooldown: seconds a provider is skipped after that.
        dedupe: the idempotency store (see :class:`~wamsg.Client`).
        hooks: callbacks at each step, ``on_failover`` included.
        clock: a monotonic clock in seconds, for cooldowns.
    """

    def __init__(
        self,
        clients: Sequence[Client],
        *,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
        failures: int = 3,
        cooldown: float = 30.0,
        dedupe: DedupeStore | bool = True,
        hooks: Hooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        clients = tuple(clients)
        if not clients:
            raise ConfigError("a Router needs at least one client")
        for client in clients:
            if not isinstance(client, Client):
                raise ConfigError(f"Router takes wamsg.Client objects, not {type(client).__name__}")
        if len({id(c) for c in clients}) != len(clients):
            raise ConfigError("the same client is given twice")
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigError("failures must be a whole number >= 1")
        if not (math.isfinite(cooldown) and cooldown >= 0):
            raise ConfigError("cooldown must be a finite number of seconds >= 0")
        self._configure(timeout=timeout, retry=retry, dedupe=dedupe, hooks=hooks)
        self.clients = clients
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._health = {id(c): _Health() for c in clients}
        self._forwards_keys = any(c.adapter.capabilities.client_message_id for c in clients)
        self._closed = False

    @classmethod
    def from_config(
        cls,
        config: Config | str | os.PathLike[str],
        *,
        client_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Router:
        """A router over a configuration file's providers, in its failover order.

        ::

            async with wamsg.Router.from_config("wamsg.toml") as router: ...

        Args:
            config: a :class:`~wamsg.Config`, or a TOML file's path or text
                (:func:`wamsg.load_config`).
            client_options: keyword arguments for every client, over the
                file's ``[providers.NAME.client]`` options (``transport``...).
            **options: keyword arguments that override the file's ``[router]``.
        """
        if not isinstance(config, Config):
            config = load_config(config)
        extra = dict(client_options or {})
        clients = [Client.from_config(config, name, **extra) for name in config.failover]
        return cls(clients, **{**config.router_options, **options})

    @property
    def provider(self) -> str:
        """The providers' names, in order: ``"gowa|wuts"``."""
        return "|".join(c.provider for c in self.clients)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<wamsg.Router [{', '.join(repr(c) for c in self.clients)}]{state}>"

    def cooling_down(self) -> dict[str, float]:
        """Providers in cooldown now, with the seconds left for each (by position and name)."""
        now = self._clock()
        return {
            f"{i}:{c.provider}": self._health[id(c)].until - now
            for i, c in enumerate(self.clients)
            if self._health[id(c)].until > now
        }

    async def _close(self) -> None:
        """Close every client (see :meth:`aclose`)."""
        for client in self.clients:
            await client.aclose()

    # -- the delivery loop's questions ---------------------------------------

    async def _prepare(
        self, message: Message, deadline: float | None
    ) -> tuple[Message, Sequence[Target]]:
        # The providers that can express this message; the others are
        # skipped for it. When none can, the first one's reason is raised
        # before any I/O.
        able: list[Target] = []
        first: WamsgError | None = None
        for client in self.clients:
            try:
                check_message(client.provider, client.adapter.capabilities, message)
            except (InvalidMessage, UnsupportedFeature) as error:
                first = first or error
            else:
                able.append(client)
        if not able:
            assert first is not None
            raise first
        if isinstance(message, Image):
            lead = able[0]
            assert isinstance(lead, Client)
            message = await prepare_image(lead.provider, lead.adapter, message, deadline)
        return message, able

    def _pick(self, targets: Sequence[Target], tried: Sequence[Target]) -> Target | None:
        now = self._clock()
        for target in targets:
            if target in tried:
                continue
            health = self._health[id(target)]
            if health.until == 0.0:
                return target
            if now < health.until:
                continue
            # Cooldown over: one send probes it; the others keep skipping it
            # until that probe ends (or is itself older than a cooldown).
            if now - health.probe_started >= self._probe_window:
                health.probe_started = now
                return target
        return None

    def _wait_for_target(self, targets: Sequence[Target], excluded: Sequence[Target]) -> float:
        now = self._clock()
        waits = []
        for target in targets:
            if target in excluded:
                continue  # sits out this call: its cooldown is no reason to wait
            health = self._health[id(target)]
            if health.until > now:
                waits.append(health.until - now)
            elif health.until and now - health.probe_started < self._probe_window:
                # Cooldown over, and one send is probing it: the others look
                # again within a second (a probe's answer usually comes
                # sooner) instead of spending their attempts at once on "no
                # provider"; never later than when another probe may start.
                waits.append(min(_PROBE_POLL, health.probe_started + self._probe_window - now))
            else:
                return 0.0  # free now
        return max(0.0, min(waits)) if waits else 0.0

    @property
    def _probe_window(self) -> float:
        """Seconds a probe owns a provider after its cooldown, before another may start."""
        return max(self.cooldown, 1.0)

    def _attempt_ended(self, target: Target, error: WamsgError | None) -> None:
        health = self._health[id(target)]
        if error is not None and _neutral(error):
            # The gateway was not asked: no news of its health. A probe that
            # ended so leaves the probe to the next send.
            if health.until:
                health.probe_started = -math.inf
            return
        if error is None or not _counts_against(error):
            if health.until:
                logger.info("wamsg: %s answered again; it is back in rotation", target.provider)
            health.failures = 0
            health.until = 0.0
            health.probe_started = -math.inf
            return
        health.failures += 1
        if health.until or health.failures >= self.failures:
            health.until = self._clock() + self.cooldown
            health.probe_started = -math.inf
            logger.warning(
                "wamsg: %s cools down for %.0fs after %d failures in a row (last: %s)",
                target.provider,
                self.cooldown,
                health.failures,
                type(error).__name__,
            )


def _neutral(error: WamsgError) -> bool:
    """Whether a failure happened before the gateway was asked (says nothing of it).

    A message refused before any I/O, or a wait for our own limits (a
    rate-limit turn or an in-flight slot past the deadline, a deadline gone
    before the request).
    """
    if isinstance(error, ProviderConfigError):
        return False  # the gateway's own answer about our settings
    if isinstance(error, InvalidMessage | UnsupportedFeature | ConfigError):
        return True
    return isinstance(error, SendTimeout) and error.outcome is Outcome.NOT_SENT


def _counts_against(error: WamsgError) -> bool:
    """Whether a failure says the provider is unwell (not that the message is bad).

    Credentials or settings the gateway refuses count: that provider cannot
    send anything. A message it refuses does not (it answered). Failures
    before the gateway was asked are :func:`_neutral`, never seen here.
    """
    if isinstance(error, AuthenticationError | ProviderConfigError):
        return True
    return error.outcome is not Outcome.REJECTED
