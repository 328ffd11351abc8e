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

Failures, cooldowns and probes live in a :class:`~wamsg.CooldownStore`
(``wamsg/cooldown.py``): in memory by default, or shared by every worker
(``wamsg.redis.RedisCooldownStore``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from ._delivery import Sender, Target
from .client import Client, prepare_image
from .config import Config, load_config
from .cooldown import CooldownStore, Health, MemoryCooldownStore
from .errors import (
    AuthenticationError,
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderConfigError,
    SendTimeout,
    StoreUnavailable,
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

#: Seconds a shared cooldown store may take to record an attempt's end.
_STORE_BOUND = 5.0


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
        cooldowns: where failures and cooldowns are kept, by each client's
            ``name`` (or ``"<position>:<provider>"``); a
            :class:`~wamsg.MemoryCooldownStore` by default, a shared one
            (``wamsg.redis``) for many workers.
        clock: a monotonic clock in seconds, for the default store's cooldowns.
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
        cooldowns: CooldownStore | None = None,
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
        if cooldowns is None:
            cooldowns = MemoryCooldownStore(clock=clock)
        elif not isinstance(cooldowns, CooldownStore):
            raise ConfigError(
                f"cooldowns must be a wamsg.CooldownStore, not {type(cooldowns).__name__}"
            )
        names = [c.name or f"{i}:{c.provider}" for i, c in enumerate(clients)]
        if len(set(names)) != len(names):
            raise ConfigError("two clients have the same name; give each its own")
        self._configure(timeout=timeout, retry=retry, dedupe=dedupe, hooks=hooks)
        self.clients = clients
        self.failures = failures
        self.cooldown = cooldown
        self.cooldowns = cooldowns
        self._shared_store = type(cooldowns) is not MemoryCooldownStore
        self._clock = clock
        self._names = {id(c): name for c, name in zip(clients, names, strict=True)}
        # This router's last look at the store: what is unhealthy, and when
        # it was seen (for cooling_down()); the probes this router holds; the
        # gateways it counted failures against since their last success.
        self._view: dict[str, tuple[Health, float]] = {}
        self._probes: set[str] = set()
        self._failing: set[str] = set()
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
        """Providers in cooldown, with the seconds left for each, by name.

        A client's name is its ``name`` or ``"<position>:<provider>"``. This
        is the router's last look at its :class:`~wamsg.CooldownStore` (each
        send looks), so a shared store's news from other workers shows here
        after this router's next send.
        """
        now = self._clock()
        left = {name: health.cooling - (now - seen) for name, (health, seen) in self._view.items()}
        return {name: seconds for name, seconds in left.items() if seconds > 0}

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

    def _name(self, target: Target) -> str:
        return self._names[id(target)]

    async def _look(self, targets: Sequence[Target]) -> tuple[list[str], dict[str, Health]]:
        names = [self._name(t) for t in targets]
        health = await self.cooldowns.health(names)
        now = self._clock()
        for name in names:
            seen = health.get(name)
            if seen is None:
                self._view.pop(name, None)
            else:
                self._view[name] = (seen, now)
        return names, health

    async def _pick(self, targets: Sequence[Target], tried: Sequence[Target]) -> Target | None:
        candidates = [t for t in targets if t not in tried]
        if not candidates:
            return None
        names, health = await self._look(candidates)
        for target, name in zip(candidates, names, strict=True):
            seen = health.get(name)
            if seen is None:
                return target
            if seen.cooling > 0 or seen.probing > 0:
                continue
            # Cooldown over: one send probes it; the others keep skipping it
            # until that probe ends (or is itself older than a cooldown).
            if await self.cooldowns.try_probe(name, self._probe_window):
                self._probes.add(name)
                return target
        return None

    async def _wait_for_target(
        self, targets: Sequence[Target], excluded: Sequence[Target]
    ) -> float:
        # Who sits out this call is no reason to wait for its cooldown.
        waiting = [t for t in targets if t not in excluded]
        if not waiting:
            return 0.0
        names, health = await self._look(waiting)
        waits = []
        for name in names:
            seen = health.get(name)
            if seen is None:
                return 0.0  # free now
            if seen.cooling > 0:
                waits.append(seen.cooling)
            elif seen.probing > 0:
                # Cooldown over, and one send is probing it: the others look
                # again within a second (a probe's answer usually comes
                # sooner) instead of spending their attempts at once on "no
                # provider"; never later than when another probe may start.
                waits.append(min(_PROBE_POLL, seen.probing))
            else:
                return 0.0  # half-open with no probe: the next pick takes it
        return max(0.0, min(waits))

    @property
    def _probe_window(self) -> float:
        """Seconds a probe owns a provider after its cooldown, before another may start."""
        return max(self.cooldown, 1.0)

    async def _attempt_ended(self, target: Target, error: WamsgError | None) -> None:
        if not self._shared_store:
            # The default store never awaits: nothing can cut it short.
            await self._record_health(target, error)
            return
        # A shared store's calls are I/O. The send's fate is decided by now:
        # a cancellation must not cut the bookkeeping short, and a store
        # that fails must not become the send's error (a sent message
        # reported "not sent" could be sent again by the caller).
        with anyio.move_on_after(_STORE_BOUND, shield=True):
            try:
                await self._record_health(target, error)
            except Exception as exc:
                logger.warning(
                    "wamsg: could not record %s's health in the cooldown store (%s)",
                    target.provider,
                    type(exc).__name__,
                )

    async def _record_health(self, target: Target, error: WamsgError | None) -> None:
        name = self._name(target)
        probe = name in self._probes
        self._probes.discard(name)
        store = self.cooldowns
        if error is not None and _neutral(error):
            # The gateway was not asked: no news of its health. A probe that
            # ended so leaves the probe to the next send.
            if probe:
                await store.release_probe(name)
            return
        if error is None or not _counts_against(error):
            # Only news of a gateway this router saw failing costs a store
            # call: a healthy send path stays free of it.
            if probe or name in self._failing or name in self._view:
                self._failing.discard(name)
                self._view.pop(name, None)
                if await store.succeeded(name):
                    logger.info("wamsg: %s answered again; it is back in rotation", target.provider)
            return
        self._failing.add(name)
        if await store.failed(name, threshold=self.failures, cooldown=self.cooldown):
            self._view[name] = (Health(cooling=self.cooldown), self._clock())
            logger.warning(
                "wamsg: %s cools down for %.0fs after %s (last: %s)",
                target.provider,
                self.cooldown,
                "its probe failed" if probe else f"{self.failures} failures in a row",
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
    if isinstance(error, InvalidMessage | UnsupportedFeature | ConfigError | StoreUnavailable):
        return True  # refused here, or our shared store (Redis) is down
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
