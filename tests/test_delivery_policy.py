"""Delivery-loop policy over MockTransport: where a failed send goes next.

Pure client logic (which provider, how many attempts, what the store
remembers), so the gateways are MockTransport handlers here; what the
gateways do on the wire is proven over loopback HTTP in test_reliability.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest

import wamsg
from wamsg import HttpRequest, HttpResponse, MockTransport, Outcome, RetryPolicy, Text, _delivery
from wamsg.testing import Sandbox, sandbox_client

pytestmark = pytest.mark.anyio

PHONE = "+5511999990000"

TIMELOCK = json.dumps(
    {
        "code": "WA_REACHOUT_TIMELOCK",
        "message": "WhatsApp rejected this send with error 463 (reach-out timelock).",
        "results": None,
    }
).encode()


def gowa_timelock(calls: list[str]) -> wamsg.Client:
    """A gowa client whose number is under WhatsApp's reach-out timelock (hours long)."""

    def handler(request: HttpRequest) -> HttpResponse:
        calls.append("gowa")
        return HttpResponse(status=429, headers={"Content-Type": "application/json"}, body=TIMELOCK)

    return wamsg.Client(
        "gowa", transport=MockTransport(handler), base_url="http://gowa.invalid", device_id="d"
    )


async def test_a_not_retryable_not_sent_fails_over_and_sits_out_later_rounds() -> None:
    # WA_REACHOUT_TIMELOCK: not sent, and asking gowa again is pointless for
    # hours; the next provider (another number) may take it at once.
    box = Sandbox(seed=1)
    box.add_fault(wamsg.sandbox.Fault(kind="server_error", provider="wuts", times=1))
    calls: list[str] = []
    router = wamsg.Router(
        [gowa_timelock(calls), sandbox_client("wuts", box)], retry=RetryPolicy(wait=False)
    )
    async with router:
        result = await router.send_text(PHONE, "hello")
    # gowa (timelock) -> wuts (503) -> backoff -> wuts again; gowa not asked twice.
    assert calls == ["gowa"]
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("gowa", Outcome.NOT_SENT),
        ("wuts", Outcome.NOT_SENT),
        ("wuts", None),
    ]
    assert result.attempts[1].waited == 0.0  # the failover did not wait
    assert len(box.outbox.find(provider="wuts")) == 1


async def test_a_not_retryable_not_sent_alone_is_raised_after_one_attempt() -> None:
    calls: list[str] = []
    async with gowa_timelock(calls) as client:
        with pytest.raises(wamsg.RateLimited) as caught:
            await client.send_text(PHONE, "hello", retry=RetryPolicy(wait=False))
    assert calls == ["gowa"]
    assert caught.value.error_code == "WA_REACHOUT_TIMELOCK"
    assert caught.value.outcome is Outcome.NOT_SENT


async def test_a_local_limit_timeout_fails_over_without_cooling_the_provider_down() -> None:
    # gowa's own rate limit gives its next turn after the deadline: gowa was
    # never asked, so WUTS sends it and gowa is not counted as failing.
    box = Sandbox(seed=1)
    slow = sandbox_client("gowa", box, limits=wamsg.Limits(rate=0.01, burst=1))
    router = wamsg.Router(
        [slow, sandbox_client("wuts", box)], failures=1, retry=RetryPolicy(wait=False)
    )
    async with router:
        first = await router.send_text(PHONE, "one", timeout=5)
        second = await router.send_text(PHONE, "two", timeout=5)
        assert router.cooling_down() == {}
    assert [a.provider for a in first.attempts] == ["gowa"]
    assert [(a.provider, a.outcome) for a in second.attempts] == [
        ("gowa", Outcome.NOT_SENT),
        ("wuts", None),
    ]
    assert second.attempts[0].error is not None
    assert "rate limit" in second.attempts[0].error
    assert [m.provider for m in box.outbox] == ["gowa", "wuts"]


async def test_sends_wait_for_a_probe_instead_of_spending_their_attempts() -> None:
    # One provider, cooled down and now being probed by a slow send: another
    # send at that moment backs off for a while rather than failing at once.
    box = Sandbox(seed=1)
    box.add_fault(wamsg.sandbox.Fault(kind="server_error", provider="wuts", times=1))
    now = [0.0]
    router = wamsg.Router(
        [sandbox_client("wuts", box)],
        failures=1,
        cooldown=10,
        retry=RetryPolicy(attempts=2, wait=False),
        clock=lambda: now[0],
    )
    async with router:
        with pytest.raises(wamsg.ProviderUnavailable):
            await router.send_text(PHONE, "cools it down", retry=wamsg.NO_RETRY)
        assert set(router.cooling_down()) == {"0:wuts"}
        now[0] = 11.0  # the cooldown is over; the next send probes
        box.add_fault(wamsg.sandbox.Fault(kind="slow", provider="wuts", delay=0.3))
        async with anyio.create_task_group() as group:
            group.start_soon(router.send_text, PHONE, "the probe")
            await anyio.sleep(0.05)
            with pytest.raises(wamsg.NoProviderAvailable) as caught:
                await router.send_text(PHONE, "meanwhile")
    # It was told to look again within a second (the probe's answer usually
    # comes sooner), not "now" (which spent every attempt at once).
    assert caught.value.retry_after == pytest.approx(1.0)
    assert caught.value.attempts == ()  # no gateway was asked
    assert [m.text for m in box.outbox] == ["the probe"]


async def test_a_generated_key_sent_again_with_another_message_is_refused() -> None:
    box = Sandbox(seed=1)
    async with sandbox_client("wuts", box) as client:
        first = await client.send_text(PHONE, "order 1 shipped")
        assert first.idempotency_key is not None
        again = await client.send(
            Text(to=PHONE, text="order 1 shipped", idempotency_key=first.idempotency_key)
        )
        with pytest.raises(wamsg.IdempotencyKeyReused):
            await client.send(
                Text(to=PHONE, text="order 2 shipped", idempotency_key=first.idempotency_key)
            )
    assert again.replayed
    assert again.message_id == first.message_id
    assert len(box.outbox) == 1


async def test_a_retry_after_of_days_gives_up_at_once() -> None:
    calls = 0

    def handler(request: HttpRequest) -> HttpResponse:
        nonlocal calls
        calls += 1
        return HttpResponse(status=429, headers={"Retry-After": "172800"}, body=b"")

    client = wamsg.Client(
        "wuts", transport=MockTransport(handler), token="t", base_url="http://wuts.invalid"
    )
    async with client:
        with anyio.fail_after(2), pytest.raises(wamsg.RateLimited) as caught:
            await client.send_text(PHONE, "hello", timeout=None)
    assert calls == 1
    assert caught.value.retry_after == 86400.0  # read as a day: too long to wait


def test_generated_keys_are_unique_and_differ_in_a_forked_child() -> None:
    keys = {_delivery._new_key() for _ in range(10_000)}
    assert len(keys) == 10_000
    # Forked in a fresh, single-threaded interpreter (forking this test
    # process, which runs threads, is unsafe): a pre-forking server's
    # workers must not generate each other's keys.
    script = (
        "import os, sys\n"
        "from wamsg import _delivery\n"
        "parent = _delivery._new_key()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', _delivery._new_key(), flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent', parent, _delivery._new_key(), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    child = lines["child"]
    first, second = lines["parent"].split()
    assert first.split("-")[0] == second.split("-")[0]
    assert child.split("-")[0] != first.split("-")[0]


async def test_a_round_ending_in_a_not_retryable_failure_still_retries_the_others() -> None:
    # [wuts 503 (retryable), gowa timelock (not)]: the round ends on gowa's
    # error, but wuts may be asked again after a backoff.
    box = Sandbox(seed=1)
    box.add_fault(wamsg.sandbox.Fault(kind="server_error", provider="wuts", times=1))
    calls: list[str] = []
    router = wamsg.Router(
        [sandbox_client("wuts", box), gowa_timelock(calls)], retry=RetryPolicy(wait=False)
    )
    async with router:
        result = await router.send_text(PHONE, "hello")
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("wuts", Outcome.NOT_SENT),
        ("gowa", Outcome.NOT_SENT),
        ("wuts", None),
    ]
    assert calls == ["gowa"]
    assert len(box.outbox) == 1


async def test_a_local_limit_timeout_during_a_probe_does_not_end_the_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Sandbox(seed=1)
    now = [0.0]
    # gowa: one send's burst, then its next turn is 100 s away.
    gowa = sandbox_client("gowa", box, limits=wamsg.Limits(rate=0.01, burst=1))
    router = wamsg.Router(
        [gowa, sandbox_client("wuts", box)],
        failures=1,
        cooldown=10,
        retry=RetryPolicy(wait=False),
        clock=lambda: now[0],
    )
    box.add_fault(wamsg.sandbox.Fault(kind="server_error", provider="gowa", times=1))
    async with router:
        first = await router.send_text(PHONE, "gowa 503, then wuts", timeout=5)
        assert set(router.cooling_down()) == {"0:gowa"}
        now[0] = 11.0  # cooldown over: this send probes gowa, whose turn is far off
        caplog.set_level("INFO", logger="wamsg")
        second = await router.send_text(PHONE, "probe times out locally", timeout=5)
    assert [a.provider for a in first.attempts] == ["gowa", "wuts"]
    assert [(a.provider, a.outcome) for a in second.attempts] == [
        ("gowa", Outcome.NOT_SENT),
        ("wuts", None),
    ]
    # gowa was never asked: it is not "back in rotation".
    assert "back in rotation" not in caplog.text
    assert [m.provider for m in box.outbox] == ["wuts", "wuts"]
