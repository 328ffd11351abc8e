"""wamsg.redis's stores: the rate and in-flight limits, the dedupe store and cooldowns.

Against a real ``redis-server`` on 127.0.0.1 (tests/redis_server.py) where
sharing, outages or the server's clock matter, and in-process fakeredis
(with lupa for the Lua scripts) for the state machines; one parity test runs
the same scenario on both and compares every answer. Several limiter or
store objects, each with its own connection, stand in for several workers.

No assertion is about how long something took: limits are checked on the
reservation times the rate script hands out (Redis's clock) and on counts.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import fakeredis
import msgspec
import pytest
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis_server import RedisServer

import wamsg
import wamsg.errors as errors_module
from wamsg import Attempt, Limits, Outcome, SendResult, Status
from wamsg.idempotency import Record
from wamsg.redis import (
    RedisCooldownStore,
    RedisDedupeStore,
    RedisInFlightLimiter,
    RedisRateLimiter,
    connect,
)
from wamsg.redis import limits as redis_limits
from wamsg.redis._base import check_name, ensure_asyncio, hashed, is_store_error, store_errors
from wamsg.redis.dedupe import decode_record, encode_record
from wamsg.testing import SANDBOX_URL, Sandbox, sandbox_transport
from wamsg.webhooks import Event
from wamsg.webhooks.dedupe import WebhookDeduper

pytestmark = pytest.mark.anyio

TO = "+5511999990000"
DIGITS = "5511999990000"


# -- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[aioredis.Redis]:
    client = fakeredis.FakeAsyncRedis(version=(7, 0))
    yield client
    await client.aclose()


@pytest.fixture
async def real(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Three connections (three "workers") to one real server."""
    clients = [connect(redis_url) for _ in range(3)]
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
async def own(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A connection to the test's own server (which the test may stop and start)."""
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture(params=["fake", "real"])
async def any_redis(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """The same test on fakeredis and on the real server."""
    if request.param == "fake":
        client = fakeredis.FakeAsyncRedis(version=(7, 0))
    else:
        client = connect(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()


async def acquire(limiter: RedisRateLimiter, recipient: str = TO) -> None:
    await limiter.acquire(recipient, deadline=None)


async def keys_of(r: aioredis.Redis) -> list[str]:
    return sorted(k.decode() for k in await r.keys("*"))


async def assert_all_expire(r: aioredis.Redis) -> None:
    """Every key has a TTL (no key lives forever)."""
    for key in await keys_of(r):
        assert await r.pttl(key) > 0, key


def record_starts(limiter: RedisRateLimiter, starts: list[float]) -> None:
    """Keep the Redis time of every turn the limiter is granted."""
    reserve = limiter._reserve

    async def recording(recipient: str, deadline: float | None) -> tuple[float, float]:
        wait, start = await reserve(recipient, deadline)
        if wait >= 0:
            starts.append(start)
        return wait, start

    limiter._reserve = recording  # type: ignore[method-assign]


def max_in_window(starts: list[float], window: float) -> int:
    ordered = sorted(starts)
    best = 0
    for i, first in enumerate(ordered):
        inside = sum(1 for s in ordered[i:] if s < first + window - 1e-6)
        best = max(best, inside)
    return best


def sandbox_client(
    box: Sandbox, provider: str = "wawp", **options: Any
) -> tuple[wamsg.Client, wamsg.MockTransport]:
    transport = sandbox_transport(box)
    client = wamsg.Client(
        provider, transport=transport, **box.credentials(provider, SANDBOX_URL), **options
    )
    return client, transport


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- _base: names, errors, connect --------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a b", "x{y", "}", "tab\there", "nul\x00", "new\nline"])
def test_names_that_would_break_keys_are_refused(bad: str) -> None:
    with pytest.raises(wamsg.ConfigError):
        check_name("name", bad)


def test_good_names_pass_and_hashes_are_sha256() -> None:
    assert check_name("name", "wawp-main:1") == "wawp-main:1"
    assert hashed("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (rex.ConnectionError("Error 111 connecting to redis://:hunter2@db:6379"), True),
        (rex.TimeoutError("Timeout reading from db:6379"), True),
        (rex.BusyLoadingError("LOADING Redis is loading the dataset in memory"), True),
        (rex.ReadOnlyError("READONLY You can't write against a read only replica."), True),
        (rex.ClusterDownError("CLUSTERDOWN The cluster is down"), True),
        (rex.ResponseError("Error running script: @user_script:3: READONLY x"), True),
        (rex.ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (rex.ResponseError("WRONGTYPE Operation against a key holding hunter2"), False),
    ],
)
def test_store_errors_names_the_store_and_class_only(error: Exception, unavailable: bool) -> None:
    assert is_store_error(error) is unavailable
    with pytest.raises(wamsg.StoreUnavailable) as caught, store_errors("dedupe"):
        raise error
    text = str(caught.value)
    assert caught.value.store == "dedupe"
    assert caught.value.outcome is Outcome.NOT_SENT
    assert caught.value.retryable is True
    assert type(error).__name__ in text
    assert "hunter2" not in text
    assert "6379" not in text
    assert "db" not in text.split()
    assert caught.value.__suppress_context__


async def test_store_errors_decorates_async_functions_and_passes_other_errors() -> None:
    @store_errors("outbox")
    async def down() -> None:
        raise rex.ConnectionError("nope")

    @store_errors("outbox")
    async def bug() -> None:
        raise KeyError("not a store error")

    with pytest.raises(wamsg.StoreUnavailable, match="outbox"):
        await down()
    with pytest.raises(KeyError):
        await bug()
    with pytest.raises(wamsg.StoreUnavailable):
        async with store_errors("cooldown"):
            raise OSError("socket")


def test_connect_sets_timeouts_and_hides_bad_urls() -> None:
    client = connect("redis://127.0.0.1:6390/0")
    options = client.connection_pool.connection_kwargs
    assert options["socket_connect_timeout"] == 2.0
    assert options["socket_timeout"] == 5.0
    assert options["decode_responses"] is False
    assert (
        connect("redis://127.0.0.1/0", socket_timeout=1.0).connection_pool.connection_kwargs[
            "socket_timeout"
        ]
        == 1.0
    )
    with pytest.raises(wamsg.ConfigError) as caught:
        connect("http://user:hunter2@example.com")
    assert "hunter2" not in str(caught.value)


def test_import_wamsg_does_not_import_redis() -> None:
    code = (
        "import sys, wamsg, wamsg.cli\n"
        "loaded = [m for m in sys.modules if m == 'redis' or m.startswith('redis.')]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_every_class_refuses_trio_with_a_clear_error() -> None:
    r = fakeredis.FakeAsyncRedis()

    async def main() -> list[str]:
        seen: list[str] = []
        calls: list[Callable[[], Any]] = [
            lambda: RedisRateLimiter(r, "gw", Limits(rate=1)).acquire(TO, deadline=None),
            lambda: RedisInFlightLimiter(r, "gw", 1).acquire(deadline=None),
            lambda: RedisDedupeStore(r).claim("k", "", lease=1.0),
            lambda: RedisCooldownStore(r).health(["gw"]),
        ]
        for call in calls:
            with pytest.raises(wamsg.ConfigError) as caught:
                await call()
            seen.append(str(caught.value))
        return seen

    messages = anyio.run(main, backend="trio")
    assert len(messages) == 4
    for message in messages:
        assert "asyncio" in message
        assert "trio" in message
    with pytest.raises(wamsg.ConfigError):
        ensure_asyncio("something")  # plain sync code: no loop either


async def test_outage_errors_and_logs_never_show_the_url_or_password(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    import traceback

    caplog.set_level(logging.DEBUG, "wamsg")
    redis_server.stop()
    r = connect(f"redis://:hunter2@127.0.0.1:{redis_server.port}/0")
    raised: list[BaseException] = []
    for call in (
        lambda: RedisDedupeStore(r).claim("k", "", lease=1.0),
        lambda: RedisRateLimiter(r, "gw", Limits(rate=1), on_error="closed").acquire(
            TO, deadline=None
        ),
        lambda: RedisInFlightLimiter(r, "gw", 1, on_error="closed").acquire(deadline=None),
    ):
        with pytest.raises(wamsg.StoreUnavailable) as caught:
            await call()
        raised.append(caught.value)
    await RedisRateLimiter(r, "gw", Limits(rate=1)).acquire(TO, deadline=None)  # logs
    await RedisCooldownStore(r).health(["gw"])  # logs
    texts = [m for e in raised for m in (str(e), repr(e), *traceback.format_exception(e))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [
        line
        for record in caplog.records
        if record.exc_info
        for line in traceback.format_exception(*record.exc_info)
    ]
    assert len(caplog.records) >= 2
    for text in texts:
        assert "hunter2" not in text
        assert str(redis_server.port) not in text
    await r.aclose()


# -- RedisRateLimiter ---------------------------------------------------------------


async def test_three_workers_share_one_bucket(workers: list[aioredis.Redis]) -> None:
    limits = Limits(rate=100.0, burst=5)
    limiters = [RedisRateLimiter(r, "shared", limits) for r in workers]
    starts: list[float] = []
    for limiter in limiters:
        record_starts(limiter, starts)

    async def worker(limiter: RedisRateLimiter) -> None:
        for _ in range(12):
            await limiter.acquire(TO, deadline=None)

    async with anyio.create_task_group() as group:
        for limiter in limiters:
            for _ in range(2):
                group.start_soon(worker, limiter)

    assert len(starts) == 72
    # GCRA: at most rate*window + burst turns in any window, across workers.
    for window in (0.05, 0.1, 0.3):
        assert max_in_window(starts, window) <= limits.rate * window + limits.burst  # type: ignore[operator]
    # ... and the whole run needs (72 - burst) intervals of Redis time.
    assert max(starts) - min(starts) >= (72 - 5) / 100.0 - 1e-3
    await assert_all_expire(workers[0])


async def test_the_limit_holds_whatever_the_workers_clocks_say(
    workers: list[aioredis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    class WildClock:
        """The limiter module's view of time: wrong, and different on every read."""

        def __init__(self) -> None:
            self.reads = 0

        def monotonic(self) -> float:
            self.reads += 1
            return (-1) ** self.reads * 1e9 * self.reads

        def time(self) -> float:
            return 0.0

    clock = WildClock()
    monkeypatch.setattr(redis_limits, "time", clock)
    limits = Limits(rate=200.0, burst=2)
    limiters = [RedisRateLimiter(r, "clocks", limits) for r in workers]
    starts: list[float] = []
    for limiter in limiters:
        record_starts(limiter, starts)

    async def worker(limiter: RedisRateLimiter) -> None:
        for _ in range(10):
            await limiter.acquire(TO, deadline=None)

    async with anyio.create_task_group() as group:
        for limiter in limiters:
            group.start_soon(worker, limiter)
    assert len(starts) == 30
    assert max_in_window(starts, 0.05) <= 200 * 0.05 + 2
    assert max(starts) - min(starts) >= (30 - 2) / 200.0 - 1e-3
    # The starts are Redis TIME: near the real epoch, not the wild clock.
    assert abs(min(starts) - time.time()) < 60


async def test_a_turn_after_the_deadline_is_refused_and_not_reserved(fake: aioredis.Redis) -> None:
    limiter = RedisRateLimiter(fake, "gw", Limits(rate=5.0, burst=1))
    await limiter.acquire(TO, deadline=None)
    before = await fake.hget("wamsg:{gw:gw}:rl", "tat")
    with pytest.raises(wamsg.SendTimeout) as caught:
        await limiter.acquire(TO, deadline=time.monotonic() + 0.05)
    assert caught.value.outcome is Outcome.NOT_SENT
    assert caught.value.retryable is False
    assert "after the call's deadline" in str(caught.value)
    assert await fake.hget("wamsg:{gw:gw}:rl", "tat") == before
    # The next caller gets the very turn the refused one did not take.
    starts: list[float] = []
    record_starts(limiter, starts)
    await limiter.acquire(TO, deadline=time.monotonic() + 5)
    assert starts == [pytest.approx(float(before or 0) / 1000.0, abs=1e-6)]
    after = float(await fake.hget("wamsg:{gw:gw}:rl", "tat") or 0)
    assert after == pytest.approx(float(before or 0) + 200.0, abs=1e-3)


async def test_pacing_gaps_hold_across_workers(workers: list[aioredis.Redis]) -> None:
    limits = Limits(pace=(0.01, 0.02))
    limiters = [RedisRateLimiter(r, "paced", limits) for r in workers]
    starts: list[float] = []
    for limiter in limiters:
        record_starts(limiter, starts)
    async with anyio.create_task_group() as group:
        for limiter in limiters:
            for _ in range(4):
                group.start_soon(acquire, limiter)
    ordered = sorted(starts)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert len(gaps) == 11
    assert min(gaps) >= 0.01 - 1e-6
    assert max(gaps) <= 0.02 + 1e-6
    await assert_all_expire(workers[0])


async def test_recipient_pacing_is_per_recipient_and_keys_hide_numbers(
    workers: list[aioredis.Redis],
) -> None:
    limits = Limits(recipient_pace=(0.03, 0.03))
    a, b = (RedisRateLimiter(r, "gw", limits) for r in workers[:2])
    starts_a: list[float] = []
    starts_b: list[float] = []
    record_starts(a, starts_a)
    record_starts(b, starts_b)
    other = "+5521988887777"
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(acquire, a)
            group.start_soon(acquire, b)
            group.start_soon(acquire, b, other)
    # Per recipient: 30 ms apart; the other recipient is not held back by TO.
    keys = await keys_of(workers[0])
    assert [k for k in keys if ":pace:" in k]
    for key in keys:
        assert DIGITS not in key
        assert "21988887777" not in key
        assert "99990000" not in key
    assert f"wamsg:{{gw:gw}}:pace:{hashed(TO)[:32]}" in keys
    all_starts = sorted(starts_a + starts_b)
    assert len(all_starts) == 6
    await assert_all_expire(workers[0])


async def test_recipient_gaps_are_kept(fake: aioredis.Redis) -> None:
    limiter = RedisRateLimiter(fake, "gw", Limits(recipient_pace=(0.02, 0.02)))
    starts: list[float] = []
    record_starts(limiter, starts)
    for _ in range(3):
        await limiter.acquire(TO, deadline=None)
    await limiter.acquire("+5521988887777", deadline=None)
    first, second, third, other = starts
    assert second - first >= 0.02 - 1e-6
    assert third - second >= 0.02 - 1e-6
    # Another recipient's turn is not pushed behind TO's gap.
    assert other < third + 0.02 - 1e-6


async def test_rate_limiter_degrades_to_a_local_share_and_comes_back(
    redis_server: RedisServer, own: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    r = own
    caplog.set_level(logging.INFO, "wamsg")
    limiter = RedisRateLimiter(
        r, "gw", Limits(rate=1000.0, burst=8, pace=(0.0, 0.001)), local_share=0.25
    )
    await limiter.acquire(TO, deadline=None)
    assert not limiter.degraded
    redis_server.stop()
    for _ in range(5):
        await limiter.acquire(TO, deadline=None)  # keeps sending, locally
    assert limiter.degraded
    local = limiter._local
    assert local is not None
    assert local.limits.rate == pytest.approx(250.0)
    assert local.limits.burst == 2
    assert local.limits.pace == (0.0, 0.004)
    down = [m for m in warnings_of(caplog) if "rate_limit" in m]
    assert len(down) == 1  # one warning per outage, not per call
    assert "ConnectionError" in down[0]
    redis_server.start()
    limiter._outage.retry = 0.0  # retry Redis on the next call (else: once a second)
    limiter._outage._retry_at = 0.0
    await limiter.acquire(TO, deadline=None)
    assert not limiter.degraded
    assert await r.exists("wamsg:{gw:gw}:rl")


async def test_rate_limiter_closed_raises_store_unavailable(
    redis_server: RedisServer, own: aioredis.Redis
) -> None:
    r = own
    limiter = RedisRateLimiter(r, "gw", Limits(rate=10.0), on_error="closed")
    redis_server.stop()
    for _ in range(2):
        with pytest.raises(wamsg.StoreUnavailable) as caught:
            await limiter.acquire(TO, deadline=None)
        assert caught.value.store == "rate_limit"
        assert caught.value.outcome is Outcome.NOT_SENT
        assert str(redis_server.port) not in str(caught.value)


# -- RedisInFlightLimiter -----------------------------------------------------------


async def test_in_flight_limit_holds_across_workers(workers: list[aioredis.Redis]) -> None:
    limiters = [RedisInFlightLimiter(r, "gw", 3, poll=0.002) for r in workers]
    holding = 0
    peak = 0
    sizes: list[int] = []

    async def send(limiter: RedisInFlightLimiter) -> None:
        nonlocal holding, peak
        token = await limiter.acquire(deadline=time.monotonic() + 10)
        holding += 1
        peak = max(peak, holding)
        sizes.append(await workers[0].zcard("wamsg:{gw:gw}:inflight"))
        await anyio.sleep(0.005)
        holding -= 1
        await limiter.release(token)

    async with anyio.create_task_group() as group:
        for i in range(15):
            group.start_soon(send, limiters[i % 3])
    assert peak == 3
    assert max(sizes) <= 3
    assert await workers[0].zcard("wamsg:{gw:gw}:inflight") == 0


async def test_a_crashed_holders_slot_comes_back_when_its_lease_ends(
    fake: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_limits, "LEASE_GRACE", 0.05)
    crashed = RedisInFlightLimiter(fake, "gw", 1)
    other = RedisInFlightLimiter(fake, "gw", 1, poll=0.005)
    await crashed.acquire(deadline=time.monotonic() + 0.05)  # never released
    with pytest.raises(wamsg.SendTimeout) as caught:
        await other.acquire(deadline=time.monotonic() + 0.02)
    assert caught.value.outcome is Outcome.NOT_SENT
    assert "max_in_flight" in str(caught.value)
    token = await other.acquire(deadline=time.monotonic() + 5)
    assert isinstance(token, str)
    assert len(token) == 32
    assert await fake.zcard("wamsg:{gw:gw}:inflight") == 1
    await assert_all_expire(fake)
    await other.release(token)
    assert await fake.exists("wamsg:{gw:gw}:inflight") == 0


async def test_release_is_shielded_from_cancellation(fake: aioredis.Redis) -> None:
    limiter = RedisInFlightLimiter(fake, "gw", 2)
    token = await limiter.acquire(deadline=None)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limiter.release(token)
    assert await fake.zcard("wamsg:{gw:gw}:inflight") == 0


async def test_in_flight_degrades_locally_and_tells_tokens_apart(
    redis_server: RedisServer, own: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    r = own
    limiter = RedisInFlightLimiter(r, "gw", 4, local_share=0.5)
    tokens: list[object] = []
    back = anyio.Event()

    async def hold(got: anyio.Event) -> None:
        # One slot per task: the local fallback (a CapacityLimiter) is per task.
        token = await limiter.acquire(deadline=None)
        tokens.append(token)
        got.set()
        await back.wait()
        await limiter.release(token)

    async with anyio.create_task_group() as group:
        first = anyio.Event()
        group.start_soon(hold, first)
        await first.wait()  # a Redis slot
        redis_server.stop()
        for _ in range(2):
            got = anyio.Event()
            group.start_soon(hold, got)
            await got.wait()  # local slots
        assert limiter.degraded
        assert limiter._local is not None
        assert limiter._local.limit == 2
        assert limiter._local.in_flight == 2
        with pytest.raises(wamsg.SendTimeout):
            await limiter.acquire(deadline=time.monotonic() + 0.01)  # the local share is full
        redis_server.start()
        limiter._outage.retry = 0.0
        limiter._outage._retry_at = 0.0
        back.set()  # each slot goes back where it came from
    assert isinstance(tokens[0], str)
    assert len(tokens[0]) == 32
    assert not isinstance(tokens[1], str)
    assert not isinstance(tokens[2], str)
    assert limiter._local.in_flight == 0
    assert len([m for m in warnings_of(caplog) if "in_flight" in m]) == 1
    again = await limiter.acquire(deadline=None)
    assert isinstance(again, str)
    assert not limiter.degraded
    await limiter.release(again)
    assert await r.zcard("wamsg:{gw:gw}:inflight") == 0


async def test_in_flight_closed_raises_store_unavailable(
    redis_server: RedisServer, own: aioredis.Redis
) -> None:
    r = own
    limiter = RedisInFlightLimiter(r, "gw", 1, on_error="closed")
    redis_server.stop()
    with pytest.raises(wamsg.StoreUnavailable) as caught:
        await limiter.acquire(deadline=None)
    assert caught.value.store == "in_flight"


# -- RedisDedupeStore: the state machine ----------------------------------------------


def _result(provider: str = "wawp") -> SendResult:
    return SendResult(
        provider=provider,
        message_id="ABC123",
        status=Status.SENT,
        attempts=(Attempt(provider=provider, duration=0.01, status_code=200),),
    )


async def dedupe_scenario(r: aioredis.Redis) -> list[object]:
    """Every answer of the claim/finish protocol, as plain data (for the parity test)."""
    store = RedisDedupeStore(r, ttl=60.0)
    seen: list[object] = []

    def note(claim: wamsg.idempotency.Claim) -> None:
        record = claim.record
        seen.append(
            (
                claim.status,
                bool(claim.token),
                None if record is None else (record.state, record.fingerprint),
                None if record is None or record.result is None else record.result.message_id,
                None if record is None or record.error is None else type(record.error).__name__,
            )
        )

    first = await store.claim("order-1", "fp1", lease=30)
    note(first)
    note(await store.claim("order-1", "fp1", lease=30))  # in flight
    note(await store.claim("order-1", "fp2", lease=30))  # reused, even in flight
    seen.append(await store.finish("order-1", "not-the-token", Record(state="sent")))
    seen.append(
        await store.finish(
            "order-1", first.token, Record(state="sent", fingerprint="fp1", result=_result())
        )
    )
    note(await store.claim("order-1", "fp1", lease=30))  # done: replayed
    note(await store.claim("order-1", "", lease=30))  # no fingerprint: still done
    seen.append(await store.finish("order-1", first.token, None))  # finished: lost
    rejected = await store.claim("order-2", "fp", lease=30)
    error = wamsg.Rejected("bad number", provider="wawp", status_code=400)
    seen.append(
        await store.finish(
            "order-2", rejected.token, Record(state="rejected", fingerprint="fp", error=error)
        )
    )
    note(await store.claim("order-2", "fp", lease=30))
    maybe = await store.claim("order-4", "fp", lease=30)
    dropped = wamsg.Disconnected("the connection closed unanswered", provider="gowa")
    seen.append(
        await store.finish(
            "order-4", maybe.token, Record(state="unknown", fingerprint="fp", error=dropped)
        )
    )
    note(await store.claim("order-4", "fp", lease=30))
    released = await store.claim("order-3", "fp", lease=30)
    seen.append(await store.finish("order-3", released.token, None))  # not sent: free
    note(await store.claim("order-3", "fp", lease=30))
    await store.put("generated-1", Record(state="sent", result=_result("gowa")))
    note(await store.claim("generated-1", "anything", lease=30))
    seen.append(sorted(await r.keys("*")) == sorted(await r.keys("wamsg:idem:default:*")))
    return seen


async def test_dedupe_parity_between_fakeredis_and_real_redis(
    fake: aioredis.Redis, real: aioredis.Redis
) -> None:
    on_fake = await dedupe_scenario(fake)
    on_real = await dedupe_scenario(real)
    assert on_fake == on_real
    assert on_real == [
        ("claimed", True, None, None, None),
        ("in_flight", False, None, None, None),
        ("reused", False, None, None, None),
        False,
        True,
        ("done", False, ("sent", "fp1"), "ABC123", None),
        ("done", False, ("sent", "fp1"), "ABC123", None),
        False,
        True,
        ("done", False, ("rejected", "fp"), None, "Rejected"),
        True,
        ("done", False, ("unknown", "fp"), None, "Disconnected"),
        True,
        ("claimed", True, None, None, None),
        ("done", False, ("sent", ""), "ABC123", None),
        True,
    ]
    for r in (fake, real):
        await assert_all_expire(r)


async def test_keys_are_hashes_with_ttls(any_redis: aioredis.Redis) -> None:
    store = RedisDedupeStore(any_redis, namespace="shop", ttl=120.0)
    key = f"order:{DIGITS}:welcome"
    claim = await store.claim(key, "fp", lease=5.0)
    (name,) = await keys_of(any_redis)
    assert name == f"wamsg:idem:shop:{hashed(key)}" == store.key_name(key)
    assert DIGITS not in name
    assert "welcome" not in name
    # In flight: lease + ttl; finished: ttl.
    assert 120_000 < await any_redis.pttl(name) <= 125_000
    assert await any_redis.hget(name, "state") == b"inflight"
    await store.finish(key, claim.token, Record(state="sent", fingerprint="fp", result=_result()))
    assert 110_000 < await any_redis.pttl(name) <= 120_000
    assert set(await any_redis.hkeys(name)) == {b"state", b"fp", b"payload"}
    payload = await any_redis.hget(name, "payload") or b""
    assert key.encode() not in payload  # the key itself never reaches Redis


async def test_an_expired_lease_reads_unknown_by_default(any_redis: aioredis.Redis) -> None:
    store = RedisDedupeStore(any_redis)
    dead = await store.claim("k", "fp", lease=0.02)  # its owner "crashes"
    await anyio.sleep(0.05)
    claim = await store.claim("k", "fp", lease=30)
    assert claim.status == "done"
    assert claim.record == Record(state="unknown", fingerprint="fp")  # as MemoryDedupeStore
    assert await store.finish("k", dead.token, Record(state="sent")) is False
    again = await store.claim("k", "fp", lease=30)
    assert again.record == Record(state="unknown", fingerprint="fp")
    assert await store.claim("k", "other", lease=30) == wamsg.idempotency.Claim(status="reused")
    await assert_all_expire(any_redis)


async def test_an_expired_lease_is_taken_over_with_resend(
    any_redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisDedupeStore(any_redis, lease_policy="resend")
    dead = await store.claim("k", "fp", lease=0.02)
    await anyio.sleep(0.05)
    assert (await store.claim("k", "other", lease=30)).status == "reused"
    taken = await store.claim("k", "fp", lease=30)
    assert taken.status == "claimed"
    assert taken.token != dead.token
    assert any("at least once" in m for m in warnings_of(caplog))
    # The crashed owner's late finish loses; the new owner's wins.
    assert await store.finish("k", dead.token, Record(state="sent")) is False
    assert await store.finish("k", taken.token, Record(state="sent", fingerprint="fp")) is True
    assert (await store.claim("k", "fp", lease=30)).record == Record(state="sent", fingerprint="fp")


async def test_a_late_finish_before_anyone_looks_still_counts(fake: aioredis.Redis) -> None:
    # As MemoryDedupeStore: the lease bounds how long others wait, but the
    # owner's own record is better news than "unknown" while no one read it.
    store = RedisDedupeStore(fake)
    claim = await store.claim("k", "fp", lease=0.01)
    await anyio.sleep(0.03)
    assert await store.finish("k", claim.token, Record(state="sent", fingerprint="fp")) is True
    assert (await store.claim("k", "fp", lease=1)).record == Record(state="sent", fingerprint="fp")


async def test_wait_returns_when_the_send_finishes_the_lease_ends_or_the_timeout(
    fake: aioredis.Redis,
) -> None:
    store = RedisDedupeStore(fake)
    claim = await store.claim("k", "", lease=30)
    finished = anyio.Event()

    async def finish_soon() -> None:
        await anyio.sleep(0.03)
        await store.finish("k", claim.token, Record(state="sent"))
        finished.set()

    async with anyio.create_task_group() as group:
        group.start_soon(finish_soon)
        await store.wait("k", 10.0)
        assert finished.is_set()
    assert (await store.claim("k", "", lease=1)).status == "done"
    # A lease that ends: wait returns (the key then reads unknown).
    await store.claim("short", "", lease=0.03)
    await store.wait("short", 10.0)
    assert (await store.claim("short", "", lease=1)).record == Record(state="unknown")
    # Timeout: still in flight afterwards.
    await store.claim("long", "", lease=30)
    await store.wait("long", 0.02)
    assert (await store.claim("long", "", lease=1)).status == "in_flight"
    await store.wait("absent", None)  # nothing in flight: at once


# -- records: plain data, every error class ---------------------------------------------


def _every_error() -> list[wamsg.WamsgError]:
    built: list[wamsg.WamsgError] = []
    provider = {"provider": "wawp", "status_code": 503}
    for name in errors_module.__all__:
        cls = getattr(errors_module, name)
        if not (isinstance(cls, type) and issubclass(cls, wamsg.WamsgError)):
            continue
        if issubclass(cls, wamsg.ProviderError):
            error: wamsg.WamsgError = cls(
                f"{name} from the gateway",
                **provider,
                error_code="E1",
                gateway_message="busy",
                retry_after=2.5,
                body_excerpt="{...}",
            )
        elif issubclass(cls, wamsg.TransportError):
            error = cls(f"{name} happened", provider="gowa", retryable=True)
        elif cls is wamsg.UnsupportedFeature:
            error = cls("no view once", provider="waha", feature="view_once")
        elif cls is wamsg.NoProviderAvailable:
            error = cls("all cooling", retry_after=3.0)
        elif cls is wamsg.StoreUnavailable:
            error = cls("redis down", store="dedupe")
        elif issubclass(cls, errors_module.WebhookError):
            error = cls("bad hook", provider="gowa")
        else:
            error = cls(f"{name}!")
        error.attempts = (
            Attempt(provider="wawp", duration=0.5, status_code=503, outcome=Outcome.UNKNOWN),
        )
        error.idempotency_key = "secret-order-key"
        built.append(error)
    return built


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_class_round_trips_without_pickle(error: wamsg.WamsgError) -> None:
    record = Record(state="unknown", fingerprint="fp", error=error)
    data = encode_record(record)
    assert b"secret-order-key" not in data
    assert b"pickle" not in data
    assert not data.startswith(b"\x80")
    back = decode_record(data)
    assert back.state == "unknown"
    assert back.fingerprint == "fp"
    assert back.result is None
    again = back.error
    assert again is not None
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.message == error.message
    assert again.outcome is error.outcome or again.outcome == error.outcome
    assert again.retryable == error.retryable
    assert again.attempts == error.attempts
    expected = {k: v for k, v in vars(error).items() if k not in ("idempotency_key", "attempts")}
    got = {k: v for k, v in vars(again).items() if k != "attempts"}
    assert got == expected


def test_errors_of_unknown_classes_become_their_nearest_wamsg_class() -> None:
    class GatewayQuirk(wamsg.SendTimeout):
        pass

    class Custom(wamsg.WamsgError):
        outcome = Outcome.UNKNOWN

    quirk = decode_record(
        encode_record(Record(state="unknown", error=GatewayQuirk("slow", provider="x")))
    ).error
    assert type(quirk) is wamsg.SendTimeout
    assert quirk.outcome is Outcome.UNKNOWN
    assert quirk.stored_class == "GatewayQuirk"
    custom = decode_record(encode_record(Record(state="rejected", error=Custom("mine")))).error
    assert type(custom) is wamsg.WamsgError
    assert custom.outcome == Outcome.UNKNOWN
    assert custom.message == "mine"
    # A class name that is not wamsg's is never imported from anywhere.
    forged = msgspec.msgpack.encode(
        {
            "state": "unknown",
            "error": {
                "classes": ["os.system", "Popen"],
                "message": "x",
                "outcome": "unknown",
                "retryable": False,
            },
        }
    )
    error = decode_record(forged).error
    assert type(error) is wamsg.WamsgError
    assert error.outcome == Outcome.UNKNOWN
    assert error.stored_class == "os.system"  # type: ignore[attr-defined]
    # Attributes read back are data only: none shadows a method.
    forged = msgspec.msgpack.encode(
        {
            "state": "unknown",
            "error": {
                "classes": ["SendTimeout"],
                "message": "x",
                "outcome": "unknown",
                "retryable": False,
                "attrs": {"with_traceback": "boom", "_private": 1, "provider": "gowa"},
            },
        }
    )
    error = decode_record(forged).error
    assert type(error) is wamsg.SendTimeout
    assert callable(error.with_traceback)
    assert "_private" not in vars(error)
    assert error.provider == "gowa"  # type: ignore[attr-defined]


async def test_a_pickled_payload_is_never_unpickled(fake: aioredis.Redis) -> None:
    import pickle

    store = RedisDedupeStore(fake)
    name = store.key_name("k")
    await fake.hset(name, mapping={"state": "sent", "fp": "", "payload": pickle.dumps(print)})
    await fake.pexpire(name, 10_000)
    claim = await store.claim("k", "", lease=1)
    assert claim.record == Record(state="unknown")  # unreadable: read as unknown, never run


async def test_send_results_round_trip_through_redis(fake: aioredis.Redis) -> None:
    import datetime

    result = msgspec.structs.replace(
        _result(), timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    )
    store = RedisDedupeStore(fake)
    await store.put("k", Record(state="sent", fingerprint="f", result=result))
    claim = await store.claim("k", "f", lease=1)
    assert claim.record is not None
    assert claim.record.result == result


# -- RedisDedupeStore under a real Client ---------------------------------------------


def _redis_client(
    box: Sandbox, r: aioredis.Redis, *, provider: str = "wawp", **dedupe: Any
) -> tuple[wamsg.Client, wamsg.MockTransport]:
    return sandbox_client(
        box,
        provider,
        dedupe=RedisDedupeStore(r, **dedupe),
        rate_limiter=RedisRateLimiter(r, "sandbox-wawp", Limits(rate=100.0, burst=5)),
        in_flight_limiter=RedisInFlightLimiter(r, "sandbox-wawp", 2),
        retry=wamsg.RetryPolicy(base=0.001, cap=0.01),
    )


async def test_a_client_replays_the_same_key_from_redis(real: aioredis.Redis) -> None:
    box = Sandbox(seed=1)
    client, transport = _redis_client(box, real)
    async with client:
        first = await client.send_text(TO, "hello", idempotency_key="welcome-1")
        second = await client.send_text(TO, "hello", idempotency_key="welcome-1")
        with pytest.raises(wamsg.IdempotencyKeyReused):
            await client.send_text(TO, "another text", idempotency_key="welcome-1")
    assert transport.calls == 1
    assert len(box.outbox) == 1
    assert not first.replayed
    assert second.replayed
    assert second.message_id == first.message_id
    assert first.idempotency_key == second.idempotency_key == "welcome-1"
    # The key's text reaches Redis neither as a key name nor in the stored record.
    (name,) = [k for k in await keys_of(real) if ":idem:" in k]
    assert all("welcome" not in k for k in await keys_of(real))
    payload = await real.hget(name, "payload")
    assert payload
    assert b"welcome" not in payload
    await assert_all_expire(real)


async def test_two_workers_with_the_same_key_send_once(workers: list[aioredis.Redis]) -> None:
    box = Sandbox(seed=1)
    box.add_fault(wamsg.testing.Fault(kind="slow", provider="wawp", delay=0.1, times=1))
    a, ta = _redis_client(box, workers[0])
    b, tb = _redis_client(box, workers[1])
    results: list[SendResult] = []

    async def send(client: wamsg.Client) -> None:
        results.append(await client.send_text(TO, "once", idempotency_key="race-1", timeout=10))

    async with a, b, anyio.create_task_group() as group:
        group.start_soon(send, a)
        group.start_soon(send, b)
    assert ta.calls + tb.calls == 1
    assert len(box.outbox) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].message_id == results[1].message_id


async def test_a_rejection_is_replayed_by_another_worker(workers: list[aioredis.Redis]) -> None:
    box = Sandbox(seed=1)
    box.add_fault(wamsg.testing.Fault(kind="auth", provider="wawp", times=1))
    a, ta = _redis_client(box, workers[0])
    b, tb = _redis_client(box, workers[1])
    async with a, b:
        with pytest.raises(wamsg.AuthenticationError) as first:
            await a.send_text(TO, "hi", idempotency_key="auth-1")
        with pytest.raises(wamsg.AuthenticationError) as second:
            await b.send_text(TO, "hi", idempotency_key="auth-1")
    assert (ta.calls, tb.calls) == (1, 0)
    assert second.value.outcome is first.value.outcome is Outcome.REJECTED
    assert second.value.status_code == first.value.status_code
    assert second.value.idempotency_key == "auth-1"


async def test_an_unknown_send_is_never_resent_by_another_worker(
    workers: list[aioredis.Redis],
) -> None:
    box = Sandbox(seed=1)
    box.add_fault(wamsg.testing.Fault(kind="drop", provider="wawp", times=1))
    a, ta = _redis_client(box, workers[0])
    b, tb = _redis_client(box, workers[1])
    async with a, b:
        with pytest.raises(wamsg.Disconnected) as first:
            await a.send_text(TO, "maybe out", idempotency_key="drop-1")
        with pytest.raises(wamsg.Disconnected) as second:
            await b.send_text(TO, "maybe out", idempotency_key="drop-1")
    assert (ta.calls, tb.calls) == (1, 0)
    assert first.value.outcome is second.value.outcome is Outcome.UNKNOWN
    assert second.value.attempts == first.value.attempts
    assert len(box.outbox) == 1  # the gateway stored it once


async def test_redis_down_fails_closed_before_any_request(
    redis_server: RedisServer, own: aioredis.Redis
) -> None:
    r = own
    box = Sandbox(seed=1)
    client, transport = _redis_client(box, r)
    redis_server.stop()
    async with client:
        with pytest.raises(wamsg.StoreUnavailable) as caught:
            await client.send_text(TO, "must not go out", idempotency_key="down-1")
    assert caught.value.outcome is Outcome.NOT_SENT
    assert caught.value.store == "dedupe"
    assert caught.value.idempotency_key is None or caught.value.idempotency_key == "down-1"
    assert transport.calls == 0
    assert len(box.outbox) == 0


async def test_redis_down_with_open_dedupe_sends(
    redis_server: RedisServer, own: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    r = own
    box = Sandbox(seed=1)
    transport = sandbox_transport(box)
    client = wamsg.Client(
        "wawp",
        transport=transport,
        **box.credentials("wawp", SANDBOX_URL),
        dedupe=RedisDedupeStore(r, on_store_error="open"),
    )
    redis_server.stop()
    async with client:
        for i in range(3):
            result = await client.send_text(TO, f"open {i}", idempotency_key=f"open-{i}")
            assert result.message_id
    assert transport.calls == 3
    down = [m for m in warnings_of(caplog) if "dedupe" in m and "unavailable" in m]
    assert len(down) == 1  # one per outage
    # Back up: the open store checks keys again.
    redis_server.start()
    again, second = sandbox_client(box, dedupe=RedisDedupeStore(r, on_store_error="open"))
    async with again:
        await again.send_text(TO, "after", idempotency_key="after-1")
        replay = await again.send_text(TO, "after", idempotency_key="after-1")
    assert replay.replayed
    assert second.calls == 1


async def test_webhook_deduper_over_redis(workers: list[aioredis.Redis]) -> None:
    event = Event(provider="gowa", kind="other", name="message.ack", dedupe_key="evt-1")
    a = WebhookDeduper(RedisDedupeStore(workers[0], ttl=3600.0))
    b = WebhookDeduper(RedisDedupeStore(workers[1], ttl=3600.0))
    tickets = []

    async def claim(deduper: WebhookDeduper) -> None:
        tickets.append(await deduper.claim(event))

    async with anyio.create_task_group() as group:
        for deduper in (a, b, a, b):
            group.start_soon(claim, deduper)
    won = [t for t in tickets if t is not None]
    assert len(won) == 1
    await a.release(won[0])  # not processed: may be claimed again
    ticket = await b.claim(event)
    assert ticket is not None
    await b.done(ticket)
    assert await a.claim(event) is None
    assert await b.claim(event) is None
    keys = await keys_of(workers[0])
    assert all("evt-1" not in k for k in keys)
    await assert_all_expire(workers[0])


# -- RedisCooldownStore -----------------------------------------------------------------


async def test_cooldown_state_machine(any_redis: aioredis.Redis) -> None:
    store = RedisCooldownStore(any_redis, cache=0)
    assert await store.health(["gw"]) == {}
    assert await store.failed("gw", threshold=2, cooldown=30) is False
    assert await store.health(["gw"]) == {}
    assert await store.try_probe("gw", 5) is False  # healthy: nothing to probe
    assert await store.failed("gw", threshold=2, cooldown=30) is True
    health = (await store.health(["gw", "other"]))["gw"]
    assert 29 < health.cooling <= 30
    assert health.probing == 0
    assert await store.try_probe("gw", 5) is False  # still cooling
    assert await store.succeeded("gw") is True
    assert await store.health(["gw"]) == {}
    assert await store.succeeded("gw") is False
    # A cooldown of 0 is half-open at once; a failed probe trips it again.
    assert await store.failed("gw", threshold=1, cooldown=0) is True
    assert (await store.health(["gw"]))["gw"] == wamsg.Health(cooling=0.0, probing=0.0)
    assert await store.try_probe("gw", 5) is True
    probing = (await store.health(["gw"]))["gw"]
    assert probing.cooling == 0
    assert 4 < probing.probing <= 5
    await store.release_probe("gw")
    assert (await store.health(["gw"]))["gw"].probing == 0
    assert await store.failed("gw", threshold=99, cooldown=10) is True  # tripped: any failure
    await assert_all_expire(any_redis)


async def test_cooldowns_are_shared_by_two_routers(workers: list[aioredis.Redis]) -> None:
    box = Sandbox(seed=1)
    fast = wamsg.RetryPolicy(base=0.001, cap=0.01)

    def refuse(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
        raise wamsg.ConnectError("connection refused (test)")

    def router(r: aioredis.Redis) -> tuple[wamsg.Router, wamsg.MockTransport]:
        gowa_transport = wamsg.MockTransport(refuse)
        gowa = wamsg.Client(
            "gowa", transport=gowa_transport, **box.credentials("gowa", SANDBOX_URL)
        )
        wawp, _ = sandbox_client(box, "wawp")
        store = RedisCooldownStore(r, cache=0)
        made = wamsg.Router([gowa, wawp], failures=1, cooldown=60.0, cooldowns=store, retry=fast)
        return made, gowa_transport

    a, gowa_a = router(workers[0])
    b, gowa_b = router(workers[1])
    async with a, b:
        first = await a.send_text(TO, "A fails over")
        assert [x.provider for x in first.attempts] == ["gowa", "wawp"]
        second = await b.send_text(TO, "B skips gowa")
        assert [x.provider for x in second.attempts] == ["wawp"]
        assert "0:gowa" in b.cooling_down()
    assert (gowa_a.calls, gowa_b.calls) == (1, 0)


async def test_one_probe_cluster_wide(workers: list[aioredis.Redis]) -> None:
    stores = [RedisCooldownStore(r, cache=0) for r in workers]
    assert await stores[0].failed("gw", threshold=1, cooldown=0.02) is True
    await anyio.sleep(0.04)
    won: list[bool] = []

    async def probe(store: RedisCooldownStore) -> None:
        won.append(await store.try_probe("gw", 10.0))

    async with anyio.create_task_group() as group:
        for store in stores * 3:
            group.start_soon(probe, store)
    assert sorted(won) == [False] * 8 + [True]
    health = (await stores[1].health(["gw"]))["gw"]
    assert health.cooling == 0
    assert health.probing > 9


async def test_health_is_cached_and_own_news_updates_it(workers: list[aioredis.Redis]) -> None:
    mine = RedisCooldownStore(workers[0], cache=60.0)
    theirs = RedisCooldownStore(workers[1], cache=0)
    assert await mine.health(["gw", "gw2"]) == {}  # cached as healthy
    assert await theirs.failed("gw", threshold=1, cooldown=30) is True
    assert await mine.health(["gw"]) == {}  # another worker's news: after the cache
    assert await mine.failed("gw2", threshold=1, cooldown=30) is True
    assert "gw2" in await mine.health(["gw2"])  # its own news: at once
    await mine.succeeded("gw2")
    assert await mine.health(["gw2"]) == {}


async def test_names_with_spaces_are_hashed_into_keys(fake: aioredis.Redis) -> None:
    store = RedisCooldownStore(fake, cache=0)
    assert await store.failed("my gateway {1}", threshold=1, cooldown=5) is True
    assert "my gateway {1}" in await store.health(["my gateway {1}"])
    for key in await keys_of(fake):
        assert " " not in key
        assert key.count("{") == 1


async def test_cooldown_errors_read_as_healthy(
    redis_server: RedisServer, own: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    r = own
    store = RedisCooldownStore(r, cache=0)
    assert await store.failed("gw", threshold=1, cooldown=30) is True
    redis_server.stop()
    store._outage.retry = 0.0  # ask Redis on every call, to see each answer
    store._outage._retry_at = 0.0
    assert await store.health(["gw"]) == {}
    assert await store.try_probe("gw", 5) is True
    assert await store.failed("gw", threshold=1, cooldown=30) is False
    assert await store.succeeded("gw") is False
    await store.release_probe("gw")
    assert len([m for m in warnings_of(caplog) if "cooldown" in m]) == 1
