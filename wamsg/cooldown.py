"""Cooldowns: which of a :class:`~wamsg.Router`'s gateways are skipped after failures.

A gateway that fails ``threshold`` times in a row *cools down*: it is skipped
for a while. When the cooldown ends it is *half-open*: one send, the probe,
may try it (the others keep skipping it); the probe's success brings it
back, its failure starts another cooldown. This is a circuit breaker, kept
in a :class:`CooldownStore` so that several workers can share one
(``wamsg.redis.RedisCooldownStore``): a gateway that is down for one worker
is down for all of them, and only one probe runs cluster-wide.

Times are *relative* (seconds left), never clock readings: a shared store
measures them on its own clock, so the workers' clocks need not agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import msgspec

__all__ = ["CooldownStore", "Health", "MemoryCooldownStore"]


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """A gateway that is not healthy: cooling down, or half-open.

    Attributes:
        cooling: seconds of cooldown left (0 once it has ended).
        probing: seconds left of the probe another send holds, while
            half-open (0: no probe runs, the next send may take it).
    """

    cooling: float = 0.0
    probing: float = 0.0

    @property
    def half_open(self) -> bool:
        """The cooldown has ended: one probe may try the gateway."""
        return self.cooling <= 0


@runtime_checkable
class CooldownStore(Protocol):
    """Where gateways' failures and cooldowns are kept, by gateway name."""

    async def health(self, names: Sequence[str]) -> dict[str, Health]:
        """The gateways among ``names`` cooling down or half-open (the healthy are left out)."""
        ...

    async def try_probe(self, name: str, window: float) -> bool:
        """Take a half-open gateway's one probe for ``window`` seconds; False if another has it."""
        ...

    async def release_probe(self, name: str) -> None:
        """Give the probe back unused (the send ended before asking the gateway)."""
        ...

    async def failed(self, name: str, *, threshold: int, cooldown: float) -> bool:
        """Count a failure; return True when it starts a cooldown of ``cooldown`` seconds.

        A cooldown starts at the ``threshold``-th failure in a row, or at any
        failure of a half-open gateway (its probe failed).
        """
        ...

    async def succeeded(self, name: str) -> bool:
        """The gateway answered: forget its failures; True when it was cooling down or half-open."""
        ...


class _State:
    __slots__ = ("failures", "probe_until", "until")

    def __init__(self) -> None:
        self.failures = 0
        self.until = 0.0
        """When the cooldown ends; 0 while healthy (it stays set while half-open)."""
        self.probe_until = -math.inf
        """When the probe that holds the half-open gateway lapses."""


class MemoryCooldownStore:
    """The default :class:`CooldownStore`: one process's view (each router has its own).

    Args:
        clock: a monotonic clock in seconds.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}

    def __repr__(self) -> str:
        return f"MemoryCooldownStore({len(self._states)} gateways)"

    def _state(self, name: str) -> _State:
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = _State()
        return state

    async def health(self, names: Sequence[str]) -> dict[str, Health]:
        """See :meth:`CooldownStore.health`."""
        now = self._clock()
        found: dict[str, Health] = {}
        for name in names:
            state = self._states.get(name)
            if state is None or not state.until:
                continue
            found[name] = Health(
                cooling=max(0.0, state.until - now),
                probing=max(0.0, state.probe_until - now) if now >= state.until else 0.0,
            )
        return found

    async def try_probe(self, name: str, window: float) -> bool:
        """See :meth:`CooldownStore.try_probe`."""
        now = self._clock()
        state = self._state(name)
        if not state.until or now < state.until or now < state.probe_until:
            return False
        state.probe_until = now + window
        return True

    async def release_probe(self, name: str) -> None:
        """See :meth:`CooldownStore.release_probe`."""
        state = self._states.get(name)
        if state is not None:
            state.probe_until = -math.inf

    async def failed(self, name: str, *, threshold: int, cooldown: float) -> bool:
        """See :meth:`CooldownStore.failed`."""
        state = self._state(name)
        state.failures += 1
        if state.until or state.failures >= threshold:
            state.until = self._clock() + cooldown
            state.probe_until = -math.inf
            return True
        return False

    async def succeeded(self, name: str) -> bool:
        """See :meth:`CooldownStore.succeeded`."""
        state = self._states.pop(name, None)
        return state is not None and bool(state.until)
