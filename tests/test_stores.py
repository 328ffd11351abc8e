"""The delivery layer's stores as protocols: the in-memory defaults, and a Router over any store.

The Redis implementations have their own tests (test_redis_stores.py); these
pin the in-memory semantics they copy and show that Client and Router use
the stores only through the protocols.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import anyio
import pytest

import wamsg
from wamsg import Health, MemoryCooldownStore, Outcome, RetryPolicy
from wamsg.sandbox import Fault, Sandbox
from wamsg.testing import sandbox_client

pytestmark = pytest.mark.anyio

PHONE = "+5511999990000"


# -- LocalInFlightLimiter ----------------------------------------------------


async def test_in_flight_slots_are_given_back_and_refused_past_the_deadline() -> None:
    slots = wamsg.LocalInFlightLimiter(2)
    first = await slots.acquire(deadline=None)
    await slots.acquire(deadline=time.monotonic() + 1)
    assert slots.in_flight == 2
    with pytest.raises(wamsg.SendTimeout) as caught:
        await slots.acquire(deadline=time.monotonic() + 0.05)
    assert caught.value.outcome is Outcome.NOT_SENT
    await slots.release(first)
    assert slots.in_flight == 1
    await slots.acquire(deadline=time.monotonic() + 0.05)  # free again


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2"])
def test_in_flight_limit_must_be_a_whole_number(limit: object) -> None:
    with pytest.raises(wamsg.ConfigError):
        wamsg.LocalInFlightLimiter(limit)  # type: ignore[arg-type]


class CountingSlots:
    """An InFlightLimiter of the test's own: the client must use it, and release every slot."""

    def __init__(self) -> None:
        self.acquired = 0
        self.released: list[object] = []

    async def acquire(self, *, deadline: float | None) -> object:
        self.acquired += 1
        return f"token-{self.acquired}"

    async def release(self, token: object) -> None:
        self.released.append(token)


async def test_a_client_takes_and_releases_a_shared_limiters_slots() -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider="wuts", times=1))
    slots = CountingSlots()
    client = sandbox_client("wuts", box, in_flight_limiter=slots, retry=RetryPolicy(wait=False))
    async with client:
        await client.send_text(PHONE, "one")  # a 503, then a success
    assert slots.released == ["token-1", "token-2"]


def test_a_client_refuses_an_in_flight_limiter_without_the_protocol() -> None:
    with pytest.raises(wamsg.ConfigError, match="in_flight_limiter"):
        wamsg.Client("wuts", token="t", in_flight_limiter=object())  # type: ignore[arg-type]


# -- MemoryCooldownStore -----------------------------------------------------


async def test_cooldown_then_one_probe_then_back() -> None:
    now = [0.0]
    store = MemoryCooldownStore(clock=lambda: now[0])
    assert await store.health(["a"]) == {}
    assert not await store.failed("a", threshold=2, cooldown=10)
    assert await store.failed("a", threshold=2, cooldown=10)  # the second in a row
    assert await store.health(["a", "b"]) == {"a": Health(cooling=10.0)}
    assert not await store.try_probe("a", 5)  # still cooling
    now[0] = 10.0
    seen = (await store.health(["a"]))["a"]
    assert seen.half_open
    assert seen.probing == 0
    assert await store.try_probe("a", 5)
    assert not await store.try_probe("a", 5)  # one probe at a time
    assert (await store.health(["a"]))["a"].probing == 5.0
    await store.release_probe("a")
    assert await store.try_probe("a", 5)
    assert await store.succeeded("a")
    assert await store.health(["a"]) == {}
    assert not await store.succeeded("a")  # nothing to forget now


async def test_a_failed_probe_starts_a_cooldown_at_once() -> None:
    now = [0.0]
    store = MemoryCooldownStore(clock=lambda: now[0])
    assert await store.failed("a", threshold=1, cooldown=10)
    now[0] = 10.0
    assert await store.try_probe("a", 5)
    assert await store.failed("a", threshold=3, cooldown=10)  # one failure is enough now
    assert (await store.health(["a"]))["a"].cooling == 10.0


async def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    store = MemoryCooldownStore()
    assert not await store.failed("a", threshold=2, cooldown=10)
    assert not await store.succeeded("a")  # it was not cooling down
    assert not await store.failed("a", threshold=2, cooldown=10)  # the count started again


# -- a Router over a store of the test's own --------------------------------


class RecordingStore(MemoryCooldownStore):
    """The memory store, recording which gateway names the router asks about."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object]] = []

    async def health(self, names: Sequence[str]) -> dict[str, Health]:
        self.calls.append(("health", tuple(names)))
        return await super().health(names)

    async def failed(self, name: str, *, threshold: int, cooldown: float) -> bool:
        self.calls.append(("failed", name))
        return await super().failed(name, threshold=threshold, cooldown=cooldown)

    async def succeeded(self, name: str) -> bool:
        self.calls.append(("succeeded", name))
        return await super().succeeded(name)


async def test_a_router_keeps_cooldowns_in_its_store_by_client_name() -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider="gowa", times=None))
    store = RecordingStore()
    clients = [
        sandbox_client("gowa", box, name="primary"),
        sandbox_client("wuts", box),
    ]
    router = wamsg.Router(clients, failures=1, cooldown=30, cooldowns=store)
    async with router:
        first = await router.send_text(PHONE, "fails over")
        assert [a.provider for a in first.attempts] == ["gowa", "wuts"]
        assert set(router.cooling_down()) == {"primary"}
        store.calls.clear()
        second = await router.send_text(PHONE, "skips the cooling one")
    assert [a.provider for a in second.attempts] == ["wuts"]
    # A healthy send looks at the store once and records nothing: no
    # success call for a provider it never saw failing.
    assert store.calls == [("health", ("primary", "1:wuts"))]


async def test_another_routers_cooldown_is_seen_through_a_shared_store() -> None:
    box = Sandbox(seed=1)
    store = MemoryCooldownStore()
    first = wamsg.Router(
        [sandbox_client("gowa", box, name="gw"), sandbox_client("wuts", box, name="backup")],
        cooldowns=store,
    )
    second = wamsg.Router(
        [sandbox_client("gowa", box, name="gw"), sandbox_client("wuts", box, name="backup")],
        cooldowns=store,
    )
    async with first, second:
        assert await store.failed("gw", threshold=1, cooldown=30)  # as if the first saw it fail
        sent = await second.send_text(PHONE, "goes to the backup")
    assert [a.provider for a in sent.attempts] == ["wuts"]
    assert set(second.cooling_down()) == {"gw"}
    assert math.isclose(second.cooling_down()["gw"], 30, abs_tol=1)


def test_router_refuses_two_clients_of_one_name_and_a_bad_store() -> None:
    box = Sandbox(seed=1)
    with pytest.raises(wamsg.ConfigError, match="same name"):
        wamsg.Router([sandbox_client("gowa", box, name="x"), sandbox_client("wuts", box, name="x")])
    with pytest.raises(wamsg.ConfigError, match="CooldownStore"):
        wamsg.Router([sandbox_client("gowa", box)], cooldowns=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "  ", 3])
def test_client_name_must_be_a_non_empty_string(name: object) -> None:
    with pytest.raises(wamsg.ConfigError, match="name"):
        wamsg.Client("wuts", token="t", name=name)  # type: ignore[arg-type]


def test_from_config_names_each_client_after_its_provider_entry() -> None:
    config = (
        '[providers.main]\ndsn = "gowa+http://127.0.0.1:9"\n'
        '[providers.spare]\ndsn = "wuts+http://t@127.0.0.1:9"\n'
    )
    router = wamsg.Router.from_config(config)
    assert [c.name for c in router.clients] == ["main", "spare"]


async def test_a_store_outage_is_neutral_for_cooldowns() -> None:
    # StoreUnavailable comes from our own shared store, not from the gateway:
    # it neither counts against the provider nor ends a cooldown.
    class DownLimiter:
        async def acquire(self, recipient: str, *, deadline: float | None) -> None:
            raise wamsg.StoreUnavailable("the rate limit store is down", store="rate_limit")

    box = Sandbox(seed=1)
    store = RecordingStore()
    router = wamsg.Router(
        [sandbox_client("gowa", box, rate_limiter=DownLimiter()), sandbox_client("wuts", box)],
        failures=1,
        cooldowns=store,
    )
    async with router:
        sent = await router.send_text(PHONE, "fails over, counts nothing")
    assert [(a.provider, a.outcome) for a in sent.attempts] == [
        ("gowa", Outcome.NOT_SENT),
        ("wuts", None),
    ]
    assert not [c for c in store.calls if c[0] == "failed"]
    assert router.cooling_down() == {}
    assert len(box.outbox) == 1


# -- what comes after a send that went out can never make it "not sent" -----


class SlowStore(MemoryCooldownStore):
    """A shared store's success call: a network round trip (a checkpoint)."""

    async def succeeded(self, name: str) -> bool:
        await anyio.sleep(0.05)
        return await super().succeeded(name)


class FailingStore(MemoryCooldownStore):
    """A shared store that is down when the send's end is recorded."""

    async def succeeded(self, name: str) -> bool:
        raise wamsg.StoreUnavailable("the cooldown store is down", store="cooldown")


async def test_a_cancellation_while_a_store_records_the_success_keeps_the_key() -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider="wuts", times=1))  # so it saw a failure
    router = wamsg.Router(
        [sandbox_client("wuts", box)], cooldowns=SlowStore(), retry=RetryPolicy(wait=False)
    )
    async with router:
        with anyio.move_on_after(0.03):
            await router.send_text(PHONE, "hello", idempotency_key="order-1")
        again = await router.send_text(PHONE, "hello", idempotency_key="order-1")
    assert again.replayed
    assert len(box.outbox) == 1


async def test_a_store_that_fails_after_the_send_does_not_fail_the_send() -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider="wuts", times=1))
    router = wamsg.Router(
        [sandbox_client("wuts", box)], cooldowns=FailingStore(), retry=RetryPolicy(wait=False)
    )
    async with router:
        sent = await router.send_text(PHONE, "hello", idempotency_key="order-2")
        again = await router.send_text(PHONE, "hello", idempotency_key="order-2")
    assert not sent.replayed
    assert again.replayed
    assert len(box.outbox) == 1


async def test_a_cancellation_in_an_after_send_hook_records_the_send() -> None:
    async def slow_hook(event: wamsg.DeliveryEvent) -> None:
        await anyio.sleep(1)

    box = Sandbox(seed=1)
    client = sandbox_client("wuts", box, hooks=wamsg.Hooks(after_send=slow_hook))
    async with client:
        with anyio.move_on_after(0.1):
            await client.send_text(PHONE, "hello", idempotency_key="order-3")
        assert len(box.outbox) == 1
        again = await client.send_text(PHONE, "hello", idempotency_key="order-3")
    assert again.replayed  # recorded as sent, not released (nor unknown)
    assert len(box.outbox) == 1
