"""Reliability under faults, proved over real loopback HTTP against the sandbox.

Each test drives a real :class:`wamsg.Client` (aiohttp transport) or
:class:`wamsg.Router` at the sandbox served on 127.0.0.1 with fault
injection, then checks the sandbox's outbox: what the gateway actually
stored is the proof, not what the client says about it. The rules proved
are issue 6's: a 429 is waited for and sent once; a refused connection
fails over; a send that may have gone out is never sent again (unless the
caller opts in and the gateway de-duplicates by id); one idempotency key is
one message; bulk sends account for every message; a rate limit grants
turns in order; one deadline covers every wait.

No test asserts how long something took, except as a lower bound that a
wait cannot undercut (a wait never ends early); speed is measured in
benchmarks/.
"""

from __future__ import annotations

import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import wamsg
from wamsg import (
    Disconnected,
    Hooks,
    Limits,
    LocalRateLimiter,
    Outcome,
    RateLimited,
    RetryPolicy,
    Router,
    SendResult,
    SendTimeout,
    Text,
    WamsgError,
)
from wamsg.hooks import DeliveryEvent
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.testing import sandbox_client

pytestmark = pytest.mark.anyio

PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TO = "+5511999990000"
#: Small backoffs: the retry paths run for real, quickly.
FAST = RetryPolicy(base=0.001, cap=0.01)


@pytest.fixture
async def box() -> AsyncIterator[tuple[Sandbox, str]]:
    """A seeded sandbox served on 127.0.0.1, big enough to keep 5,000 messages."""
    sandbox = Sandbox(seed=6, max_messages=20_000)
    async with running_sandbox(sandbox=sandbox) as running:
        yield running


def _client(box: tuple[Sandbox, str], provider: str, **options: Any) -> wamsg.Client:
    sandbox, url = box
    return wamsg.Client(provider, **sandbox.credentials(provider, url), **options)


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: bound, read, closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _gateway_requests(sandbox: Sandbox, provider: str) -> int:
    return sum(1 for r in sandbox.requests if r.provider == provider)


class _Timeline:
    """Hooks that note when each attempt starts and ends (time.monotonic)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, DeliveryEvent]] = []

    def _note(self, event: DeliveryEvent) -> None:
        self.events.append((event.kind, time.monotonic(), event))

    @property
    def hooks(self) -> Hooks:
        return Hooks(
            before_send=self._note,
            after_send=self._note,
            on_retry=self._note,
            on_failover=self._note,
        )

    def times(self, kind: str) -> list[float]:
        return [at for k, at, _ in self.events if k == kind]

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.events]


# -- 1. a 429 with Retry-After is waited for, then sent once ------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_waits_retry_after_then_sends_once(
    box: tuple[Sandbox, str], provider: str
) -> None:
    sandbox, _ = box
    retry_after = 1
    sandbox.add_fault(Fault(kind="rate_limit", provider=provider, retry_after=retry_after))
    timeline = _Timeline()
    async with _client(box, provider, hooks=timeline.hooks) as client:
        result = await client.send_text(TO, f"after a 429 via {provider}")

    first, second = result.attempts
    assert (first.provider, first.status_code, first.outcome) == (provider, 429, Outcome.NOT_SENT)
    assert first.error is not None
    assert first.error.startswith("RateLimited")
    assert first.waited == 0.0
    assert second.error is None
    assert second.outcome is None
    # The backoff honoured the gateway's number as a floor ...
    assert second.waited >= retry_after
    # ... and was really slept: the second request started no earlier than
    # that after the 429 came back (a lower bound; a sleep never ends early).
    assert timeline.kinds() == ["before_send", "after_send", "retry", "before_send", "after_send"]
    answered_429 = timeline.times("after_send")[0]
    resent = timeline.times("before_send")[1]
    assert resent - answered_429 >= second.waited - 0.005
    # The gateway saw the refused request and one more, which it stored.
    seen = [(r.status, r.stored) for r in sandbox.requests if r.provider == provider]
    assert len(seen) == 2
    assert seen[0] == (429, False)
    assert seen[1][1] is True
    assert 200 <= (seen[1][0] or 0) < 300
    (stored,) = sandbox.outbox.find(provider=provider)
    assert stored.text == f"after a 429 via {provider}"
    assert len(sandbox.outbox) == 1


# -- 2. a refused connection fails over to the next provider ------------------------


@pytest.mark.parametrize(("dead_provider", "live_provider"), [("gowa", "wuts"), ("wuts", "waha")])
async def test_connection_refused_fails_over_to_the_next_provider(
    box: tuple[Sandbox, str], dead_provider: str, live_provider: str
) -> None:
    sandbox, _ = box
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    dead = wamsg.Client(dead_provider, **sandbox.credentials(dead_provider, nowhere))
    live = _client(box, live_provider)
    timeline = _Timeline()
    async with Router([dead, live], hooks=timeline.hooks) as router:
        result = await router.send_text(TO, "through the second provider")

    assert result.provider == live_provider
    refused, delivered = result.attempts
    assert refused.provider == dead_provider
    assert refused.error is not None
    assert refused.error.startswith("ConnectError")
    assert refused.outcome is Outcome.NOT_SENT
    assert refused.status_code is None
    assert refused.duration > 0
    assert delivered.provider == live_provider
    assert (delivered.error, delivered.outcome) == (None, None)
    assert delivered.duration > 0
    # Failover is immediate: no backoff before the other provider.
    assert delivered.waited == 0.0
    failover = [e for k, _, e in timeline.events if k == "failover"]
    assert [(e.provider, e.next_provider) for e in failover] == [(dead_provider, live_provider)]
    (stored,) = sandbox.outbox.find(provider=live_provider)
    assert stored.text == "through the second provider"
    assert stored.message_id == result.message_id or result.message_id is None
    assert len(sandbox.outbox) == 1
    assert _gateway_requests(sandbox, dead_provider) == 0
    assert _gateway_requests(sandbox, live_provider) == 1


async def test_a_refusing_provider_cools_down_and_is_skipped(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    dead = wamsg.Client("gowa", **sandbox.credentials("gowa", nowhere))
    async with Router([dead, _client(box, "wawp")], failures=1, cooldown=60.0) as router:
        first = await router.send_text(TO, "first: fails over")
        assert list(router.cooling_down()) == ["0:gowa"]
        second = await router.send_text(TO, "second: straight to wawp")

    assert [a.provider for a in first.attempts] == ["gowa", "wawp"]
    assert [a.provider for a in second.attempts] == ["wawp"]
    assert [m.text for m in sandbox.outbox] == ["first: fails over", "second: straight to wawp"]


# -- 3. stored, then the connection dropped: outcome unknown, never resent ----------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_drop_after_store_is_unknown_and_not_retried(
    box: tuple[Sandbox, str], provider: str
) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="drop", provider=provider))
    async with _client(box, provider, retry=FAST) as client:
        with pytest.raises(Disconnected) as caught:
            await client.send_text(TO, "maybe sent", idempotency_key="drop-1")
        error = caught.value
        assert error.outcome is Outcome.UNKNOWN
        assert error.retryable is False
        assert error.idempotency_key == "drop-1"
        (attempt,) = error.attempts
        assert (attempt.provider, attempt.outcome) == (provider, Outcome.UNKNOWN)
        assert attempt.error is not None
        assert attempt.error.startswith("Disconnected")
        # The key now reads "may have been sent": sending it again gives the
        # same answer without a request.
        with pytest.raises(Disconnected) as again:
            await client.send_text(TO, "maybe sent", idempotency_key="drop-1")
        assert again.value.outcome is Outcome.UNKNOWN

    assert _gateway_requests(sandbox, provider) == 1
    (stored,) = sandbox.outbox.find(provider=provider)
    assert stored.text == "maybe sent"
    assert len(sandbox.outbox) == 1


async def test_router_never_fails_over_an_unknown(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="drop", provider="gowa"))
    timeline = _Timeline()
    async with Router(
        [_client(box, "gowa"), _client(box, "wuts")], retry=FAST, hooks=timeline.hooks
    ) as router:
        with pytest.raises(Disconnected) as caught:
            await router.send_text(TO, "dropped once")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert [a.provider for a in caught.value.attempts] == ["gowa"]
    assert "failover" not in timeline.kinds()
    assert [m.text for m in sandbox.outbox.find(provider="gowa")] == ["dropped once"]
    assert sandbox.outbox.find(provider="wuts") == []
    assert _gateway_requests(sandbox, "wuts") == 0


@pytest.mark.parametrize("key", [None, "waha-opt-in"])
async def test_opt_in_retry_of_unknown_on_waha_stores_one_message(
    box: tuple[Sandbox, str], key: str | None
) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="drop", provider="waha"))
    async with _client(box, "waha", retry=FAST) as client:
        result = await client.send_text(
            TO, "sent once, answered twice", idempotency_key=key, retry_unknown=True
        )

    dropped, answered = result.attempts
    assert (dropped.provider, dropped.outcome) == ("waha", Outcome.UNKNOWN)
    assert (answered.provider, answered.outcome, answered.error) == ("waha", None, None)
    assert not result.replayed
    # Both requests carried the same client `id`; the gateway stored the
    # first and answered the second with it.
    assert _gateway_requests(sandbox, "waha") == 2
    (stored,) = sandbox.outbox.find(provider="waha")
    assert stored.text == "sent once, answered twice"
    assert result.message_id == stored.message_id
    assert len(sandbox.outbox) == 1


async def test_router_retries_an_opted_in_unknown_on_the_same_provider_only(
    box: tuple[Sandbox, str],
) -> None:
    """After an unknown, even a later not-sent answer must not move to another provider.

    WAHA drops the first request (stored), refuses the second with a 503
    (not sent), then answers the third with the stored message (same id).
    Failing over to gowa after the 503 would deliver the message twice.
    """
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="drop", provider="waha"))
    sandbox.add_fault(Fault(kind="server_error", provider="waha"))
    timeline = _Timeline()
    async with Router(
        [_client(box, "waha"), _client(box, "gowa")], retry=FAST, hooks=timeline.hooks
    ) as router:
        result = await router.send_text(TO, "one copy only", retry_unknown=True)

    assert result.provider == "waha"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("waha", Outcome.UNKNOWN),
        ("waha", Outcome.NOT_SENT),
        ("waha", None),
    ]
    assert "failover" not in timeline.kinds()
    assert sandbox.outbox.find(provider="gowa") == []
    assert _gateway_requests(sandbox, "gowa") == 0
    (stored,) = sandbox.outbox.find(provider="waha")
    assert result.message_id == stored.message_id


# -- 4. one idempotency key, two concurrent sends: one message ----------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_same_key_sent_twice_concurrently_sends_one_message(
    box: tuple[Sandbox, str], provider: str
) -> None:
    sandbox, _ = box
    # A slow answer keeps the first send in flight while the second arrives.
    sandbox.add_fault(Fault(kind="slow", provider=provider, delay=0.2))
    results: list[SendResult] = []
    async with _client(box, provider) as client:

        async def send() -> None:
            results.append(
                await client.send_text(TO, "exactly once", idempotency_key="order-42-confirmation")
            )

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            group.start_soon(send)

    assert len(results) == 2
    assert sorted(r.replayed for r in results) == [False, True]
    first, second = results
    assert first.message_id == second.message_id
    assert first.idempotency_key == second.idempotency_key == "order-42-confirmation"
    assert _gateway_requests(sandbox, provider) == 1
    (stored,) = sandbox.outbox.find(provider=provider)
    assert stored.text == "exactly once"
    if first.message_id is not None:
        assert stored.message_id == first.message_id


async def test_same_key_concurrently_after_a_drop_both_get_unknown(
    box: tuple[Sandbox, str],
) -> None:
    """The waiting caller gets the first one's "may have been sent", not a second try."""
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="drop", provider="gowa"))
    errors: list[WamsgError] = []
    async with _client(box, "gowa", retry=FAST) as client:

        async def send() -> None:
            try:
                await client.send_text(TO, "dropped", idempotency_key="drop-twice")
            except WamsgError as error:
                errors.append(error)

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            group.start_soon(send)

    assert [type(e) for e in errors] == [Disconnected, Disconnected]
    assert all(e.outcome is Outcome.UNKNOWN for e in errors)
    assert all(e.idempotency_key == "drop-twice" for e in errors)
    assert _gateway_requests(sandbox, "gowa") == 1
    assert [m.text for m in sandbox.outbox] == ["dropped"]


async def test_a_key_cancelled_mid_request_is_never_sent_again(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="slow", provider="wuts", delay=1.0))
    async with _client(box, "wuts") as client:
        with anyio.move_on_after(0.3) as scope:
            await client.send_text(TO, "cancelled in flight", idempotency_key="cancel-1")
        assert scope.cancelled_caught
        # The request was out when the caller gave up: the key reads unknown.
        with pytest.raises(SendTimeout) as caught:
            await client.send_text(TO, "cancelled in flight", idempotency_key="cancel-1")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert _gateway_requests(sandbox, "wuts") == 1
    assert [m.text for m in sandbox.outbox] == ["cancelled in flight"]


# -- 5. 5,000 sends under random faults: every message accounted for ----------------

BULK = 5_000


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bulk_send_under_random_faults_accounts_for_every_message(
    box: tuple[Sandbox, str], provider: str
) -> None:
    sandbox, _ = box
    sandbox.requests = deque(maxlen=10 * BULK)  # keep every request's fate
    sandbox.add_faults(
        [
            Fault(kind="server_error", provider=provider, probability=0.05, times=None),
            Fault(kind="drop", provider=provider, probability=0.01, times=None),
        ]
    )
    messages = [Text(to=TO, text=f"bulk #{i:04d}") for i in range(BULK)]
    finished: list[int] = []
    # Two attempts in all, so that some sends meet two 503s and fail: every
    # category (sent, failed, unknown) shows up. Tiny real backoffs.
    policy = RetryPolicy(attempts=2, base=0.001, cap=0.005)
    started = time.monotonic()
    async with _client(box, provider, retry=policy) as client:
        results = await client.send_many(
            messages, concurrency=100, on_result=lambda index, _: finished.append(index)
        )
    elapsed = time.monotonic() - started

    assert len(results) == BULK
    assert sorted(finished) == list(range(BULK))
    stored = sandbox.outbox.find(provider=provider)
    copies = Counter(m.text for m in stored)
    by_text = {m.text: m for m in stored}
    counts: Counter[str] = Counter()
    for index, entry in enumerate(results):
        text = f"bulk #{index:04d}"
        if isinstance(entry, SendResult):
            counts["sent"] += 1
            assert copies[text] == 1, text
            assert entry.message_id == by_text[text].message_id
            assert entry.attempts[-1].outcome is None
        else:
            assert isinstance(entry, WamsgError), entry
            assert entry.attempts, "every failure lists its attempts"
            if entry.outcome is Outcome.NOT_SENT:
                counts["failed"] += 1
                assert copies[text] == 0, text
                assert [a.status_code for a in entry.attempts] == [503, 503]
            else:
                assert entry.outcome is Outcome.UNKNOWN, entry
                counts["unknown"] += 1
                assert isinstance(entry, Disconnected), entry
                # Dropped after the gateway stored it: there, once.
                assert copies[text] == 1, text
    # Shown with the captured output when the test fails, and with -s.
    print(f"{provider}: {BULK} sends in {elapsed:.2f}s: {dict(counts)}")
    assert counts["sent"] + counts["failed"] + counts["unknown"] == BULK
    # No duplicate at all: an unknown is never retried by default, and the
    # only duplicates allowed would be among the unknowns.
    assert max(copies.values()) == 1
    assert len(stored) == counts["sent"] + counts["unknown"]
    # The gateway's side of the story agrees, request by request.
    seen = [r for r in sandbox.requests if r.provider == provider]
    attempts = [a for entry in results for a in entry.attempts]
    assert len(seen) == len(attempts)
    assert sum(r.fault == "drop" for r in seen) == counts["unknown"]
    assert sum(r.fault == "server_error" for r in seen) == sum(
        a.status_code == 503 for a in attempts
    )
    assert sum(r.stored for r in seen) == len(stored)
    # Faults at these rates hit every category in 5,000 sends.
    assert counts["failed"] > 0
    assert counts["unknown"] > 0


# -- 6. a rate limit grants turns in order, and never early -------------------------

RATE = 100.0
BURST = 10
PACED = 50


class _RecordingLimiter:
    """A :class:`wamsg.RateLimiter` around the local one that notes every turn."""

    def __init__(self, limits: Limits) -> None:
        self.inner = LocalRateLimiter(limits)
        self.asked: list[str] = []
        self.granted: list[tuple[str, float]] = []

    async def acquire(self, recipient: str, *, deadline: float | None) -> None:
        self.asked.append(recipient)
        await self.inner.acquire(recipient, deadline=deadline)
        self.granted.append((recipient, time.monotonic()))

    def check_conformance(self, first_asked: float) -> None:
        """No turn came before the bucket allows it: turn k >= (k - burst + 1) / rate.

        A lower bound, which a slow machine cannot break (a sleep never
        ends early); how close the turns come to it is a benchmark's job.
        """
        for k, (_, at) in enumerate(self.granted):
            assert at - first_asked >= (k - BURST + 1) / RATE - 0.001, k


def _paced_recipients() -> list[str]:
    # One recipient per message: the limiter sees who each turn is for.
    return [f"55119999{index:05d}" for index in range(PACED)]


def _digits(chat_id: str) -> str:
    return chat_id.partition("@")[0]


@pytest.mark.parametrize("provider", ["gowa", "waha"])
async def test_rate_limit_serial_sends_are_stored_in_order(
    box: tuple[Sandbox, str], provider: str
) -> None:
    sandbox, _ = box
    limiter = _RecordingLimiter(Limits(rate=RATE, burst=BURST))
    recipients = _paced_recipients()
    started = time.monotonic()
    async with _client(box, provider, rate_limiter=limiter) as client:
        for index, recipient in enumerate(recipients):
            await client.send_text(recipient, f"paced #{index:02d}")

    assert limiter.asked == recipients
    assert [r for r, _ in limiter.granted] == recipients
    limiter.check_conformance(started)
    stored = sandbox.outbox.find(provider=provider)
    assert [m.text for m in stored] == [f"paced #{i:02d}" for i in range(PACED)]
    assert [_digits(m.chat_id) for m in stored] == recipients


async def test_rate_limit_concurrent_sends_take_turns_in_order(box: tuple[Sandbox, str]) -> None:
    """All 50 at once: turns are reserved first come, first served, and all arrive."""
    sandbox, _ = box
    limiter = _RecordingLimiter(Limits(rate=RATE, burst=BURST))
    recipients = _paced_recipients()
    messages = [Text(to=r, text=f"paced #{i:02d}") for i, r in enumerate(recipients)]
    started = time.monotonic()
    async with _client(box, "wuts", rate_limiter=limiter) as client:
        results = await client.send_many(messages, concurrency=PACED)

    assert all(isinstance(r, SendResult) for r in results), results
    # send_many starts the sends in order and each reserves its turn before
    # it first waits, so turns go in message order and are granted so.
    assert limiter.asked == recipients
    assert [r for r, _ in limiter.granted] == recipients
    limiter.check_conformance(started)
    stored = sandbox.outbox.find(provider="wuts")
    assert len(stored) == PACED
    assert sorted(m.text or "" for m in stored) == [m.text for m in messages]
    assert Counter(_digits(m.chat_id) for m in stored) == Counter(recipients)


async def test_rate_limit_with_one_send_in_flight_stores_in_turn_order(
    box: tuple[Sandbox, str],
) -> None:
    """With ``max_in_flight=1`` the order of turns is the order on the wire."""
    sandbox, _ = box
    limiter = _RecordingLimiter(Limits(rate=RATE, burst=BURST))
    recipients = _paced_recipients()
    messages = [Text(to=r, text=f"paced #{i:02d}") for i, r in enumerate(recipients)]
    async with _client(box, "gowa", limits=Limits(max_in_flight=1), rate_limiter=limiter) as client:
        results = await client.send_many(messages, concurrency=PACED)

    assert all(isinstance(r, SendResult) for r in results), results
    assert [r for r, _ in limiter.granted] == recipients
    stored = sandbox.outbox.find(provider="gowa")
    assert [m.text for m in stored] == [m.text for m in messages]
    assert [_digits(m.chat_id) for m in stored] == recipients


# -- 7. one deadline covers the waits, the retries and the request ------------------


async def test_retry_after_beyond_the_deadline_fails_at_once(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="rate_limit", provider="wuts", retry_after=5))
    timeline = _Timeline()
    timeout = 2.0
    started = time.monotonic()
    async with _client(box, "wuts", hooks=timeline.hooks) as client:
        with pytest.raises(RateLimited) as caught:
            await client.send_text(TO, "too late", timeout=timeout)
    elapsed = time.monotonic() - started

    error = caught.value
    assert error.outcome is Outcome.NOT_SENT
    assert error.retry_after == 5
    (attempt,) = error.attempts
    assert (attempt.status_code, attempt.waited) == (429, 0.0)
    # Not slept at all: no retry was announced, and the call did not wait
    # out its deadline either (it cannot be sent in time, so it says so now).
    assert "retry" not in timeline.kinds()
    assert elapsed < timeout
    assert _gateway_requests(sandbox, "wuts") == 1
    assert len(sandbox.outbox) == 0


async def test_backoffs_and_retries_share_one_deadline(box: tuple[Sandbox, str]) -> None:
    """429 every time, Retry-After 1, timeout 1.5: one wait fits, the second does not."""
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="rate_limit", provider="gowa", retry_after=1, times=None))
    async with _client(box, "gowa", retry=RetryPolicy(attempts=10)) as client:
        with pytest.raises(RateLimited) as caught:
            await client.send_text(TO, "never", timeout=1.5)

    error = caught.value
    assert error.outcome is Outcome.NOT_SENT
    assert [a.status_code for a in error.attempts] == [429, 429]
    assert error.attempts[1].waited >= 1
    assert sum(a.waited for a in error.attempts) < 1.5
    assert _gateway_requests(sandbox, "gowa") == 2
    assert len(sandbox.outbox) == 0


async def test_rate_limit_turn_after_the_deadline_is_not_sent(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    # One send every 2 s: the second send's turn comes after its 1 s deadline.
    async with _client(box, "waha", limits=Limits(rate=0.5, burst=1)) as client:
        await client.send_text(TO, "first, at once")
        with pytest.raises(SendTimeout) as caught:
            await client.send_text(TO, "second, too late", timeout=1.0)

    error = caught.value
    assert (error.provider, error.outcome) == ("waha", Outcome.NOT_SENT)
    (attempt,) = error.attempts
    assert (attempt.provider, attempt.outcome, attempt.status_code) == (
        "waha",
        Outcome.NOT_SENT,
        None,
    )
    assert _gateway_requests(sandbox, "waha") == 1
    assert [m.text for m in sandbox.outbox] == ["first, at once"]


async def test_no_send_slot_before_the_deadline_is_not_sent(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    sandbox.add_fault(Fault(kind="slow", provider="wawp", delay=1.0))
    outcomes: dict[str, object] = {}
    async with _client(box, "wawp", limits=Limits(max_in_flight=1)) as client:

        async def send(text: str, timeout: float) -> None:
            try:
                outcomes[text] = await client.send_text(TO, text, timeout=timeout)
            except WamsgError as error:
                outcomes[text] = error

        async with anyio.create_task_group() as group:
            group.start_soon(send, "holds the slot", 10.0)
            await anyio.sleep(0.05)
            group.start_soon(send, "waits for it", 0.3)

    assert isinstance(outcomes["holds the slot"], SendResult)
    late = outcomes["waits for it"]
    assert isinstance(late, SendTimeout)
    assert late.outcome is Outcome.NOT_SENT
    assert [m.text for m in sandbox.outbox] == ["holds the slot"]
    assert _gateway_requests(sandbox, "wawp") == 1


async def test_deadline_during_the_request_is_unknown_and_not_resent(
    box: tuple[Sandbox, str],
) -> None:
    sandbox, _ = box
    # The gateway stores the message, then takes longer than the deadline.
    sandbox.add_fault(Fault(kind="slow", provider="gowa", delay=1.0))
    async with _client(box, "gowa") as client:
        with pytest.raises(SendTimeout) as caught:
            await client.send_text(TO, "slow answer", timeout=0.3)

    error = caught.value
    assert error.outcome is Outcome.UNKNOWN
    assert [a.outcome for a in error.attempts] == [Outcome.UNKNOWN]
    assert [m.text for m in sandbox.outbox] == ["slow answer"]
    assert _gateway_requests(sandbox, "gowa") == 1


# -- trio: the same delivery loop on another backend (socket-free sandbox) ----------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_router_fails_over_on_trio() -> None:
    sandbox = Sandbox(seed=6)
    sandbox.add_fault(Fault(kind="server_error", provider="gowa"))
    limits = Limits(rate=RATE, burst=2, max_in_flight=2)
    clients = [
        sandbox_client("gowa", sandbox, limits=limits),
        sandbox_client("wuts", sandbox, limits=limits),
    ]
    async with Router(clients, retry=FAST) as router:
        first = await router.send_text(TO, "failed over on trio")
        results = await router.send_many(
            [Text(to=TO, text=f"trio #{i}") for i in range(5)], concurrency=5
        )

    assert first.provider == "wuts"
    assert [(a.provider, a.status_code) for a in first.attempts] == [("gowa", 503), ("wuts", 200)]
    assert all(isinstance(r, SendResult) and r.provider == "gowa" for r in results), results
    assert [m.text for m in sandbox.outbox.find(provider="wuts")] == ["failed over on trio"]
    assert sorted(m.text or "" for m in sandbox.outbox.find(provider="gowa")) == [
        f"trio #{i}" for i in range(5)
    ]
