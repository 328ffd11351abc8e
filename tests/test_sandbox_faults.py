"""Sandbox fault injection: exact counts, seeded randomness, and what clients see.

Each fault kind is proved twice for every provider: over real HTTP through
the aiohttp transport, and through the socket-free sandbox transport, which
must behave the same way (same error class, same outcome, same storage).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import msgspec
import pytest

import wamsg
from wamsg.errors import Outcome
from wamsg.http import HttpRequest
from wamsg.sandbox import Fault, Sandbox, parse_fault, running_sandbox
from wamsg.sandbox.faults import FaultSet
from wamsg.testing import sandbox_client

PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TO = "+5511999990000"


def _request(path: str = "/send") -> HttpRequest:
    return HttpRequest(method="POST", url=path)


# -- the pure rule engine ---------------------------------------------------------


def test_a_fault_fires_once_by_default_and_then_is_spent() -> None:
    faults = FaultSet(seed=1)
    faults.add(Fault(kind="auth"))
    fired = [faults.pick("wawp", _request()) for _ in range(3)]
    assert [f is not None for f in fired] == [True, False, False]
    (state,) = faults.states()
    assert (state.fired, state.remaining) == (1, 0)


def test_times_counts_exactly_and_none_never_runs_out() -> None:
    faults = FaultSet(seed=1)
    faults.add(Fault(kind="server_error", times=3))
    assert sum(faults.pick("gowa", _request()) is not None for _ in range(10)) == 3
    faults.clear()
    faults.add(Fault(kind="server_error", times=None))
    assert all(faults.pick("gowa", _request()) is not None for _ in range(50))


def _pattern(seed: int, *, extra: Fault | None = None, provider: str = "wuts") -> list[bool]:
    faults = FaultSet(seed=seed)
    if extra is not None:
        faults.add(extra)
    faults.add(Fault(kind="drop", provider="wuts", probability=0.3, times=None))
    return [faults.pick(provider, _request()) is not None for _ in range(400)]


def test_probability_is_repeatable_by_seed_and_close_to_the_rate() -> None:
    first = _pattern(7)
    assert first == _pattern(7)
    assert first != _pattern(8)
    assert 0.22 < sum(first) / len(first) < 0.38


def test_other_rules_and_clears_do_not_shift_the_random_sequence() -> None:
    alone = _pattern(7)
    # Another provider's rule, even one that draws randomness on its own requests.
    other = Fault(kind="auth", provider="gowa", probability=0.5, times=None)
    assert _pattern(7, extra=other) == alone
    faults = FaultSet(seed=7)
    faults.add(other)
    faults.add(Fault(kind="drop", provider="wuts", probability=0.3, times=None))
    mixed = []
    for i in range(800):
        provider = "gowa" if i % 2 else "wuts"
        fired = faults.pick(provider, _request())
        if provider == "wuts":
            mixed.append(fired is not None)
    assert mixed == alone
    # Cleared and added again (ids keep counting), the rule draws the same.
    faults.clear()
    faults.add(Fault(kind="drop", provider="wuts", probability=0.3, times=None))
    assert [faults.pick("wuts", _request()) is not None for _ in range(400)] == alone


def test_identical_rules_draw_independently_but_repeatably() -> None:
    def run() -> list[int | None]:
        faults = FaultSet(seed=3)
        rule = Fault(kind="server_error", probability=0.5, times=None)
        first, second = faults.add(rule), faults.add(rule)
        picks = []
        for _ in range(200):
            fired = faults.pick("waha", _request())
            picks.append(None if fired is None else 1)
        return [first.id, second.id, *picks]

    assert run() == run()


def test_faults_apply_in_order_and_filter_by_provider_and_path() -> None:
    faults = FaultSet()
    faults.add(Fault(kind="rate_limit", provider="gowa", path="/send/image", retry_after=1))
    faults.add(Fault(kind="auth", times=None))
    assert faults.pick("gowa", _request("/send/message")).kind == "auth"  # type: ignore[union-attr]
    assert faults.pick("gowa", _request("/send/image")).kind == "rate_limit"  # type: ignore[union-attr]
    assert faults.pick("waha", _request("/send/image")).kind == "auth"  # type: ignore[union-attr]


def test_remove_and_clear() -> None:
    faults = FaultSet()
    one = faults.add(Fault(kind="auth", times=None))
    faults.add(Fault(kind="drop", times=None))
    assert faults.remove(one.id)
    assert not faults.remove(one.id)
    assert faults.pick("wawp", _request()).kind == "drop"  # type: ignore[union-attr]
    faults.clear()
    assert faults.pick("wawp", _request()) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "auth", "times": 0},
        {"kind": "auth", "probability": 1.5},
        {"kind": "auth", "probability": float("nan")},
        {"kind": "server_error", "status": 429},
        {"kind": "auth", "status": 503},
        {"kind": "rate_limit"},
        {"kind": "rate_limit", "retry_after": -1},
        {"kind": "slow"},
        {"kind": "drop", "delay": 1.0},
        {"kind": "drop", "retry_after": 5},
        {"kind": "auth", "path": ""},
        {"kind": "melt"},
    ],
)
def test_invalid_faults_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises((ValueError, msgspec.ValidationError)):
        msgspec.convert(fields, Fault)


def test_describe_round_trips_through_parse_fault() -> None:
    for text in (
        "gowa:rate_limit:times=3,retry_after=2",
        "*:server_error:times=always,probability=0.05,status=502",
        "wawp:slow:times=1,delay=1.5,path=/v2/send/image",
    ):
        fault = parse_fault(text)
        assert fault.describe() == text
        assert parse_fault(fault.describe()) == fault


def test_parse_fault_compact_form() -> None:
    assert parse_fault("gowa:rate_limit:retry_after=2,times=3") == Fault(
        kind="rate_limit", provider="gowa", retry_after=2, times=3
    )
    assert parse_fault("*:server_error:status=502,probability=0.05,times=always") == Fault(
        kind="server_error", status=502, probability=0.05, times=None
    )
    assert parse_fault("wawp:slow:delay=1.5,path=/v2/send/image") == Fault(
        kind="slow", provider="wawp", delay=1.5, path="/v2/send/image"
    )
    assert parse_fault("waha:drop") == Fault(kind="drop", provider="waha")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("gowa", "PROVIDER:KIND"),
        ("gowa:melt", "KIND one of"),
        ("gowa:auth:times", "key=value"),
        ("gowa:auth:color=red", "unknown option 'color'"),
        ("gowa:rate_limit:retry_after=soon", "retry_after must be a number"),
        ("gowa:auth:times=0", "times must be at least 1"),
    ],
)
def test_parse_fault_errors_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_fault(text)


# -- what clients see, over HTTP and without sockets --------------------------------

Connect = Callable[[Sandbox, str], AbstractAsyncContextManager[wamsg.Client]]


# Each request here is one attempt (retry=NO_RETRY): these tests are about
# what the sandbox answers, not what the client does with it
# (tests/test_reliability.py covers that).
@asynccontextmanager
async def _over_http(box: Sandbox, provider: str, timeout: float) -> AsyncIterator[wamsg.Client]:
    async with (
        running_sandbox(sandbox=box),
        wamsg.Client(
            provider, timeout=timeout, retry=wamsg.NO_RETRY, **box.credentials(provider)
        ) as client,
    ):
        yield client


@asynccontextmanager
async def _in_memory(box: Sandbox, provider: str, timeout: float) -> AsyncIterator[wamsg.Client]:
    async with sandbox_client(provider, box, timeout=timeout, retry=wamsg.NO_RETRY) as client:
        yield client


@pytest.fixture(params=["http", "memory"])
def connect(
    request: pytest.FixtureRequest,
) -> Callable[..., AbstractAsyncContextManager[wamsg.Client]]:
    return _over_http if request.param == "http" else _in_memory  # type: ignore[return-value]


async def _send(client: wamsg.Client, kind: str) -> wamsg.SendResult:
    if kind == "text":
        return await client.send_text(TO, "fault test")
    return await client.send_image(TO, "https://example.com/a.jpg", caption="c")


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("fault", "error", "outcome", "stored"),
    [
        (Fault(kind="rate_limit", retry_after=7), wamsg.RateLimited, Outcome.NOT_SENT, False),
        (Fault(kind="server_error"), wamsg.ProviderUnavailable, Outcome.NOT_SENT, False),
        (
            Fault(kind="server_error", status=502),
            wamsg.ProviderUnavailable,
            Outcome.UNKNOWN,
            False,
        ),
        (Fault(kind="auth"), wamsg.AuthenticationError, Outcome.REJECTED, False),
        (Fault(kind="drop"), wamsg.Disconnected, Outcome.UNKNOWN, True),
    ],
    ids=["429", "503", "502", "auth", "drop"],
)
async def test_each_fault_fires_once_as_the_gateway_would(
    connect: Connect,
    provider: str,
    fault: Fault,
    error: type[wamsg.WamsgError],
    outcome: Outcome,
    stored: bool,
) -> None:
    box = Sandbox(seed=1)
    box.add_fault(msgspec.structs.replace(fault, provider=provider))
    async with connect(box, provider, 5.0) as client:  # type: ignore[call-arg]
        with pytest.raises(error) as caught:
            await _send(client, "text")
        after = await _send(client, "text")  # the fault was for one request only
    assert caught.value.outcome is outcome
    if fault.kind == "rate_limit":
        assert caught.value.retry_after == 7  # type: ignore[attr-defined]
    kept = box.outbox.find(provider=provider)
    assert len(kept) == (2 if stored else 1)
    assert kept[-1].message_id == after.message_id
    records = list(box.requests)
    assert [r.fault for r in records] == [fault.kind, None]
    assert [r.stored for r in records] == [stored, True]
    expected_status = {"rate_limit": 429, "server_error": fault.status or 503, "auth": 401}
    assert records[0].status == expected_status.get(fault.kind)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_slow_answers_late_and_stores_even_when_the_client_gives_up(
    connect: Connect, provider: str
) -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="slow", provider=provider, delay=0.6, times=2))
    async with connect(box, provider, 0.2) as client:  # type: ignore[call-arg]
        with pytest.raises(wamsg.SendTimeout) as caught:
            await _send(client, "image")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert len(box.outbox.find(provider=provider)) == 1  # the gateway has it
    async with connect(box, provider, 5.0) as client:  # type: ignore[call-arg]
        result = await _send(client, "text")
    assert result.attempts[0].duration >= 0.6
    assert box.outbox.find(provider=provider)[-1].message_id == result.message_id


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_probability_faults_hit_the_same_requests_in_both_shells(provider: str) -> None:
    outcomes: list[list[str]] = []
    for connect in (_over_http, _in_memory, _over_http):
        box = Sandbox(seed=42)
        box.add_fault(Fault(kind="server_error", probability=0.25, times=None))
        seen = []
        async with connect(box, provider, 5.0) as client:
            for _ in range(40):
                try:
                    await _send(client, "text")
                    seen.append("ok")
                except wamsg.ProviderUnavailable:
                    seen.append("503")
        outcomes.append(seen)
        assert len(box.outbox) == seen.count("ok")
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert 4 <= outcomes[0].count("503") <= 18


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [500, 501, 520, 599])
async def test_any_5xx_status_is_answered_in_the_gateways_format(
    connect: Connect, provider: str, status: int
) -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider=provider, status=status))
    async with connect(box, provider, 5.0) as client:  # type: ignore[call-arg]
        with pytest.raises(wamsg.ProviderUnavailable) as caught:
            await _send(client, "text")
    assert caught.value.status_code == status
    assert box.requests[0].status == status
