"""No secret and no full phone number reaches a repr, a str, a traceback or a log line.

Every failing send here is a real one, over loopback HTTP: the sandbox
gateways (``wamsg.sandbox``) run with distinctive fake credentials, so that
the settings the clients get from ``sandbox.credentials(provider, base_url)``
are the secrets looked for, and the faults are the sandbox's own (401, 429
with retries, 503 and failover through a :class:`~wamsg.Router`, a drop after
the request was read, a slow answer), plus a closed port (connection
refused), a gateway that echoes the request (URL, headers, body) back in its
error pages, a transport and an adapter that break their contracts.

What is rendered, wherever it is built:

- every error class (each subclass of :class:`~wamsg.WamsgError`, as the
  adapters, transport and delivery layer build them: ``repr``, ``str``, its
  attributes, ``attempts``, the formatted traceback, a pickle round-trip);
- every :class:`~wamsg.SendResult`, :class:`~wamsg.Attempt` and
  :class:`~wamsg.DeliveryEvent` (from hooks on every send);
- every :class:`~wamsg.Client` (each provider), :class:`~wamsg.Router`,
  :class:`~wamsg.RetryPolicy`, :class:`~wamsg.Limits`,
  :class:`~wamsg.LocalRateLimiter`, :class:`~wamsg.MemoryDedupeStore`,
  :class:`~wamsg.Hooks`, and each adapter's :class:`~wamsg.HttpRequest`;
- every log record of every test (caplog at DEBUG on ``wamsg``): the
  formatted line with its ``exc_info`` traceback, and its raw ``args``.

What must not appear: the secrets (right and wrong ones), their URL,
form, JSON and base64 encodings, any 10 characters of one in a row, the
word ``SECRET`` they all carry, and the recipient's number in any spelling
(digits with or without ``+``, separators, ``@c.us``, national form).
Masked numbers (``+55*********00``) are fine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import pickle
import re
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, quote_plus

import anyio
import pytest
from aiohttp import web

import wamsg
from wamsg import errors
from wamsg.http import HttpRequest, HttpResponse
from wamsg.providers.wuts import WutsAdapter
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.sandbox.gowa import GowaSandbox
from wamsg.sandbox.waha import WahaSandbox
from wamsg.sandbox.wawp import WawpSandbox
from wamsg.sandbox.wuts import WutsSandbox
from wamsg.transports.aiohttp import AiohttpTransport
from wamsg.transports.base import Timeouts

pytestmark = pytest.mark.anyio

PROVIDERS = ("gowa", "waha", "wawp", "wuts")

#: The recipient, in the spellings callers write it. Not wamsg's own example
#: number (+5511999990000), which its hint texts show on purpose.
PHONE = "+5521987654321"
SPELLINGS = ("+5521987654321", "5521987654321", "+55 21 98765-4321", "0055 21 98765 4321")
#: Its national significant number: no rendering may hold these digits in a row.
NATIONAL = "21987654321"

#: The credentials the sandbox gateways accept. Each holds "SECRET", and
#: characters that URL, form and JSON encodings change ("/", "+", "=").
RIGHT: dict[str, dict[str, str]] = {
    "wawp": {"instance_id": "nl-instance", "access_token": "tok-SECRET-1234567890/+="},
    "waha": {"api_key": "key-SECRET-2345678901/+="},
    "gowa": {"username": "nl-user", "password": "pw-SECRET-3456789012/+="},
    "wuts": {"token": "wuts-SECRET-4567890123/+="},
}
#: Credentials the sandbox refuses, for the authentication failures.
WRONG: dict[str, dict[str, str]] = {
    "wawp": {"access_token": "tok-WRONG-SECRET-9876543210/+="},
    "waha": {"api_key": "key-WRONG-SECRET-8765432109/+="},
    "gowa": {"password": "pw-WRONG-SECRET-7654321098/+="},
    "wuts": {"token": "wuts-WRONG-SECRET-6543210987/+="},
}
_SECRET_SETTINGS = ("access_token", "api_key", "password", "token")

#: Fast retries: the waits are computed (Retry-After included) but not slept.
FAST = wamsg.RetryPolicy(attempts=3, wait=False)


# --------------------------------------------------------------------------
# What must never be shown
# --------------------------------------------------------------------------


def _secret_values() -> list[str]:
    values = [
        value
        for table in (RIGHT, WRONG)
        for settings in table.values()
        for name, value in settings.items()
        if name in _SECRET_SETTINGS
    ]
    # gowa sends the password only inside the Basic credentials (RFC 7617).
    user = RIGHT["gowa"]["username"]
    for password in (RIGHT["gowa"]["password"], WRONG["gowa"]["password"]):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        values += [token, f"Basic {token}"]
    return values


#: What yarl (aiohttp's URLs, in its messages and on the wire) leaves raw in a
#: query value; it writes a space as "+" (checked against yarl on random values).
_YARL_QUERY_SAFE = "?/:@!$'()*,"


def _forms(value: str) -> set[str]:
    """``value`` as text may carry it: as is, URL-, form-, JSON- and base64-encoded,
    and every run of 10 of its characters (a cut or partly masked secret)."""
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        quote_plus(value, safe=_YARL_QUERY_SAFE),
        value.replace("/", "\\/"),
        json.dumps(value)[1:-1],
        base64.b64encode(value.encode()).decode(),
    }
    forms |= {value[i : i + 10] for i in range(len(value) - 9)}
    return forms


NEEDLES: tuple[str, ...] = tuple(
    sorted({"SECRET"} | {form for value in _secret_values() for form in _forms(value)})
)
# Digits with the separators numbers are written with, "+" included.
_NUMBER_RUN = re.compile(r"\d(?:[\d \-.()+]*\d)?")


def assert_clean(where: str, text: str) -> None:
    """Fail when ``text`` shows a secret or the recipient's full number."""
    assert isinstance(text, str), f"{where}: {type(text).__name__} is not text"
    for needle in NEEDLES:
        at = text.find(needle)
        assert at < 0, f"{where} shows a secret ({needle!r}): ...{text[max(0, at - 80) : at + 80]}"
    for run in _NUMBER_RUN.finditer(text):
        digits = re.sub(r"\D", "", run.group())
        assert NATIONAL not in digits, f"{where} shows the phone number: {run.group()!r} in {text}"


def _pickled(value: Any) -> Any | None:
    """A pickle round-trip of ``value``, or None when it cannot be pickled."""
    try:
        data = pickle.dumps(value)
    except (TypeError, AttributeError, pickle.PicklingError):
        return None
    return pickle.loads(data)


class Leaks:
    """Renders what the tests produce and checks each text at once."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.errors: list[wamsg.WamsgError] = []
        self.events: list[wamsg.DeliveryEvent] = []
        self.rendered = 0

    def render(self, where: str, value: object, *, pickles: bool = False) -> None:
        """``repr``, ``str`` and format of ``value``, and of a pickle round-trip of it.

        ``pickles``: the round-trip must work (errors, results, attempts).
        """
        self.rendered += 1
        for shown in (repr(value), str(value), f"{value}", f"{value!r:>10}"):
            assert_clean(where, shown)
        clone = _pickled(value)
        assert clone is not None or not pickles, f"{where}: {type(value).__name__} does not pickle"
        if clone is not None:
            assert_clean(f"{where} (unpickled)", repr(clone))
            assert_clean(f"{where} (unpickled)", str(clone))

    def error(self, where: str, error: wamsg.WamsgError) -> None:
        """An error: rendered, every attribute, its attempts and its traceback."""
        self.errors.append(error)
        where = f"{where}: {type(error).__name__}"
        self.render(where, error, pickles=True)
        assert_clean(f"{where}.message", error.message)
        assert_clean(f"{where}.args", repr(error.args))
        assert_clean(f"{where} attributes", repr(vars(error)))
        for name, value in vars(error).items():
            assert_clean(f"{where}.{name}", str(value))
        for attempt in error.attempts:
            self.render(f"{where} attempt", attempt, pickles=True)
        assert_clean(f"{where} traceback", "".join(traceback.format_exception(error)))
        clone = _pickled(error)
        assert clone is not None
        assert_clean(f"{where} unpickled attributes", repr(vars(clone)))

    def result(self, where: str, result: wamsg.SendResult) -> None:
        """A result: rendered with its attempts (``raw`` is the gateway's own body)."""
        self.render(where, result, pickles=True)
        for attempt in result.attempts:
            self.render(f"{where} attempt", attempt, pickles=True)

    async def failure(
        self, where: str, send: Awaitable[object], expected: type[wamsg.WamsgError]
    ) -> Any:
        """Await a send that must fail with ``expected`` (exactly); check and return the error."""
        with pytest.raises(wamsg.WamsgError) as caught:
            await send
        error = caught.value
        assert type(error) is expected, f"{where}: {error!r} is not a {expected.__name__}"
        self.error(where, error)
        return error

    def hooks(self) -> wamsg.Hooks:
        """Hooks that render every event; ``on_retry`` also raises (its traceback is logged)."""

        def seen(event: wamsg.DeliveryEvent) -> None:
            self.events.append(event)
            self.render(f"DeliveryEvent {event.kind}", event, pickles=True)
            if event.error is not None:
                self.render("event.error", event.error)
            if event.result is not None:
                self.result("event.result", event.result)

        def retry_hook_that_breaks(event: wamsg.DeliveryEvent) -> None:
            seen(event)
            # A user's hook that puts the event in its error: it is logged
            # with its traceback, which must be as clean as the event.
            raise RuntimeError(f"metrics backend refused {event!r} ({event.error})")

        return wamsg.Hooks(
            before_send=seen, after_send=seen, on_retry=retry_hook_that_breaks, on_failover=seen
        )

    def logs(self, *, at_least: int = 1) -> list[logging.LogRecord]:
        """Check every log record captured so far; returns them."""
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        records = list(self.caplog.records)
        assert len(records) >= at_least, f"expected log lines, got {len(records)}"
        for record in records:
            where = f"log record {record.levelname} {record.msg!r}"
            assert_clean(where, formatter.format(record))
            assert_clean(f"{where} args", repr(record.args))
            if record.exc_info and record.exc_info[1] is not None:
                assert_clean(
                    f"{where} exc_info", "".join(traceback.format_exception(record.exc_info[1]))
                )
        return records


@pytest.fixture
def leaks(caplog: pytest.LogCaptureFixture) -> Leaks:
    """A :class:`Leaks` reading every log line at DEBUG, on ``wamsg`` and below."""
    caplog.set_level(logging.DEBUG, logger="wamsg")
    return Leaks(caplog)


def _sandbox() -> Sandbox:
    """A sandbox whose gateways accept exactly the fake secrets of :data:`RIGHT`."""
    box = Sandbox(seed=6)
    box.handlers["wawp"] = WawpSandbox(box.outbox, seed="6:wawp", **RIGHT["wawp"])
    box.handlers["waha"] = WahaSandbox(box.outbox, seed="6:waha", **RIGHT["waha"])
    box.handlers["gowa"] = GowaSandbox(
        box.outbox,
        seed="6:gowa",
        basic_auth=(RIGHT["gowa"]["username"], RIGHT["gowa"]["password"]),
    )
    box.handlers["wuts"] = WutsSandbox(box.outbox, seed="6:wuts", **RIGHT["wuts"])
    return box


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Sandbox, str]]:
    """The fake-secret sandbox served on 127.0.0.1: (sandbox, base URL)."""
    async with running_sandbox(sandbox=_sandbox()) as running:
        yield running


def settings(box: Sandbox, url: str, provider: str, **changes: str) -> dict[str, Any]:
    """The sandbox's client settings for ``provider``, with ``changes`` applied."""
    found = box.credentials(provider, url)
    for name, value in RIGHT[provider].items():
        assert found[name] == value  # the sandbox really runs with the fake secrets
    return {**found, **changes}


def client(leaks: Leaks, provider: str, config: dict[str, Any], **options: Any) -> wamsg.Client:
    """A client with fast retries and rendering hooks, itself rendered."""
    options.setdefault("retry", FAST)
    options.setdefault("hooks", leaks.hooks())
    made = wamsg.Client(provider, **config, **options)
    leaks.render(f"Client({provider})", made)
    leaks.render(f"Client({provider}).adapter", made.adapter)
    return made


def _closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------
# Failing sends through the sandbox
# --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_401_with_wrong_secrets(
    leaks: Leaks, gateway: tuple[Sandbox, str], provider: str
) -> None:
    box, url = gateway
    async with client(leaks, provider, settings(box, url, provider, **WRONG[provider])) as c:
        for to in SPELLINGS:
            error = await leaks.failure("401", c.send_text(to, "hi"), wamsg.AuthenticationError)
            assert error.outcome is wamsg.Outcome.REJECTED
        # The sandbox's own "bad credentials" answer to the right secrets, too.
        box.add_fault(Fault(kind="auth", provider=provider))
    async with client(leaks, provider, settings(box, url, provider)) as c:
        await leaks.failure("auth fault", c.send_text(PHONE, "hi"), wamsg.AuthenticationError)
    assert box.outbox.find(provider=provider) == []
    leaks.logs()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_with_retries(leaks: Leaks, gateway: tuple[Sandbox, str], provider: str) -> None:
    box, url = gateway
    async with client(leaks, provider, settings(box, url, provider)) as c:
        box.add_fault(Fault(kind="rate_limit", provider=provider, retry_after=1, times=2))
        result = await c.send_text(PHONE, "after two 429s", idempotency_key="nl-order-1")
        leaks.result("429 then sent", result)
        assert [a.status_code for a in result.attempts][:2] == [429, 429]
        box.add_fault(Fault(kind="rate_limit", provider=provider, retry_after=1, times=None))
        error = await leaks.failure(
            "429 always", c.send_text(PHONE, "never out"), wamsg.RateLimited
        )
        assert len(error.attempts) == FAST.attempts
    assert len(box.outbox.find(provider=provider)) == 1
    records = leaks.logs()
    # The retries were logged, and the hook that raised on them with its traceback.
    assert any("retry" in r.getMessage() for r in records)
    assert any(r.exc_info for r in records)


async def test_503_then_failover_through_a_router(
    leaks: Leaks, gateway: tuple[Sandbox, str]
) -> None:
    box, url = gateway
    clients = [client(leaks, p, settings(box, url, p)) for p in ("wawp", "waha", "gowa", "wuts")]
    router = wamsg.Router(
        clients,
        retry=wamsg.RetryPolicy(attempts=4, wait=False),
        failures=1,
        cooldown=600,
        hooks=leaks.hooks(),
    )
    leaks.render("Router", router)
    async with router:
        box.add_fault(Fault(kind="server_error", provider="wawp", status=503, times=None))
        result = await router.send_text(PHONE, "failed over")
        leaks.result("failover", result)
        assert [a.provider for a in result.attempts] == ["wawp", "waha"]
        leaks.render("Router cooling down", router)
        leaks.render("cooling_down()", router.cooling_down())
        # Every provider down: the send fails over to each in turn, then gives up.
        box.add_fault(Fault(kind="server_error", status=503, times=None))
        await leaks.failure(
            "all 503", router.send_text(PHONE, "nowhere"), wamsg.ProviderUnavailable
        )
        # Now all cool down: nothing is even tried.
        await leaks.failure(
            "all cooling down", router.send_text(PHONE, "later"), wamsg.NoProviderAvailable
        )
    assert [m.provider for m in box.outbox] == ["waha"]
    records = leaks.logs()
    assert any("failing over" in r.getMessage() for r in records)
    assert any("cools down" in r.getMessage() for r in records)
    assert any(e.kind == "failover" for e in leaks.events)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_drop_after_the_request_is_unknown(
    leaks: Leaks, gateway: tuple[Sandbox, str], provider: str
) -> None:
    box, url = gateway
    async with client(leaks, provider, settings(box, url, provider)) as c:
        box.add_fault(Fault(kind="drop", provider=provider))
        error = await leaks.failure(
            "drop", c.send_text(PHONE, "maybe out", idempotency_key="nl-drop-1"), wamsg.Disconnected
        )
        assert error.outcome is wamsg.Outcome.UNKNOWN
        # Sent again with the key: the remembered error comes back, nothing is sent.
        await leaks.failure(
            "drop replayed",
            c.send_text(PHONE, "maybe out", idempotency_key="nl-drop-1"),
            wamsg.Disconnected,
        )
        assert c.dedupe is not None
        leaks.render("MemoryDedupeStore", c.dedupe)
    assert len(box.outbox.find(provider=provider)) == 1
    records = leaks.logs()
    assert any("may or may not have been sent" in r.getMessage() for r in records)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_connection_refused_then_failover(
    leaks: Leaks, gateway: tuple[Sandbox, str], provider: str
) -> None:
    box, url = gateway
    refused = settings(box, url, provider, base_url=f"http://127.0.0.1:{_closed_port()}/{provider}")
    async with client(leaks, provider, refused) as c:
        error = await leaks.failure("refused", c.send_text(PHONE, "hi"), wamsg.ConnectError)
        assert error.outcome is wamsg.Outcome.NOT_SENT
        assert len(error.attempts) == FAST.attempts
    other = "wuts" if provider != "wuts" else "gowa"
    router = wamsg.Router(
        [client(leaks, provider, refused), client(leaks, other, settings(box, url, other))],
        hooks=leaks.hooks(),
    )
    leaks.render("Router", router)
    async with router:
        leaks.result("refused then failover", await router.send_text(PHONE, "hi"))
    assert [m.provider for m in box.outbox] == [other]
    leaks.logs()


async def test_timeouts_and_idempotency(leaks: Leaks, gateway: tuple[Sandbox, str]) -> None:
    box, url = gateway
    async with client(leaks, "wuts", settings(box, url, "wuts")) as c:
        box.add_fault(Fault(kind="slow", provider="wuts", delay=1.0))
        error = await leaks.failure(
            "slow", c.send_text(PHONE, "late", timeout=0.3), wamsg.SendTimeout
        )
        assert error.outcome is wamsg.Outcome.UNKNOWN
    async with client(leaks, "waha", settings(box, url, "waha")) as c:
        box.add_fault(Fault(kind="slow", provider="waha", delay=0.6))
        results: list[wamsg.SendResult] = []

        async def first() -> None:
            results.append(await c.send_text(PHONE, "once", idempotency_key="nl-key-1"))

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.sleep(0.1)
            await leaks.failure(
                "in flight",
                c.send_text(PHONE, "once", idempotency_key="nl-key-1", timeout=0.2),
                wamsg.IdempotencyInFlight,
            )
        leaks.result("the first send", results[0])
        replayed = await c.send_text(PHONE, "once", idempotency_key="nl-key-1")
        assert replayed.replayed
        leaks.result("replayed", replayed)
        await leaks.failure(
            "reused",
            c.send_text(PHONE, "another", idempotency_key="nl-key-1"),
            wamsg.IdempotencyKeyReused,
        )
    assert len(box.outbox) == 2  # the late wuts one, and the waha one once
    leaks.logs()


async def test_gateway_refusals(leaks: Leaks, gateway: tuple[Sandbox, str]) -> None:
    box, url = gateway
    # A base_url with a path the gateway does not serve: 404.
    wrong_path = settings(box, url, "wawp", base_url=f"{url}/wawp/nl-wrong")
    async with client(leaks, "wawp", wrong_path) as c:
        await leaks.failure("404", c.send_text(PHONE, "hi"), wamsg.Rejected)
    # A device the gowa server does not know: a settings error.
    unknown_device = settings(box, url, "gowa", device_id="nl-no-such-device")
    async with client(leaks, "gowa", unknown_device) as c:
        error = await leaks.failure("device", c.send_text(PHONE, "hi"), wamsg.ProviderConfigError)
        assert error.error_code == "DEVICE_NOT_FOUND"
    assert len(box.outbox) == 0
    leaks.logs()


async def test_errors_before_any_io(leaks: Leaks, gateway: tuple[Sandbox, str]) -> None:
    box, url = gateway
    async with client(leaks, "wawp", settings(box, url, "wawp")) as c:
        for to in (
            f"{PHONE}x",
            "5521987654321@nl.invalid",
            "0521987654321",
            "+55 21 98765-4321 0000 0",
        ):
            await leaks.failure("bad number", c.send_text(to, "hi"), wamsg.InvalidMessage)
        await leaks.failure(
            "bad mention", c.send_text(PHONE, "hi", mentions=[f"{PHONE}x"]), wamsg.InvalidMessage
        )
        await leaks.failure(
            "bytes on wawp",
            c.send_image(PHONE, b"\x89PNG\r\n\x1a\n" + b"0" * 32),
            wamsg.UnsupportedFeature,
        )
    await leaks.failure("closed", c.send_text(PHONE, "hi"), wamsg.ConfigError)
    async with client(leaks, "gowa", settings(box, url, "gowa")) as c:
        await leaks.failure(
            "image mentions",
            c.send_image(PHONE, "https://example.com/a.png", mentions=[PHONE]),
            wamsg.UnsupportedFeature,
        )
    token = RIGHT["wuts"]["token"]
    for build in (
        lambda: wamsg.Client("wuts", token=f"{token} {token}"),
        lambda: wamsg.Client("wuts", token=token, base_url=f"https://h/?token={token}"),
        lambda: wamsg.Client("wawp", instance_id="i", access_tokn=token),
        lambda: wamsg.Client("waha", base_url=url, api_key=f"{RIGHT['waha']['api_key']}\n"),
        lambda: wamsg.Client(
            "gowa", base_url=url, username=f"u:{token}", password=RIGHT["gowa"]["password"]
        ),
        lambda: wamsg.Client(wamsg.create_adapter("wuts", token=token), token=token),
    ):
        with pytest.raises(wamsg.ConfigError) as caught:
            build()
        leaks.error("bad settings", caught.value)
    assert len(box.outbox) == 0


async def test_a_broken_transport_and_adapter(leaks: Leaks, gateway: tuple[Sandbox, str]) -> None:
    box, url = gateway

    class Chatty(AiohttpTransport):
        """Sends for real, then raises what a careless third-party transport would."""

        async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
            await super().send(request, timeouts=timeouts)
            raise RuntimeError(
                f"POST {request.url}?{request.revealed_query()} {request.revealed_headers()}"
            )

    for provider in PROVIDERS:
        async with client(leaks, provider, settings(box, url, provider), transport=Chatty()) as c:
            error = await leaks.failure("chatty", c.send_text(PHONE, "hi"), wamsg.TransportError)
            assert error.outcome is wamsg.Outcome.UNKNOWN

    class Crashing(WutsAdapter):
        def decode(self, response: HttpResponse) -> wamsg.SendResult:
            raise KeyError(f"{self._token.reveal()} {response.body!r}")

    adapter = Crashing(**settings(box, url, "wuts"))
    async with wamsg.Client(adapter, retry=FAST, hooks=leaks.hooks()) as c:
        leaks.render("Client(Crashing)", c)
        error = await leaks.failure("crash", c.send_text(PHONE, "hi"), wamsg.ProviderError)
        assert error.outcome is wamsg.Outcome.UNKNOWN
    assert len(box.outbox) == len(PROVIDERS) + 1
    leaks.logs()


async def _echo_gateway(serve: Callable[..., Awaitable[str]]) -> tuple[str, dict[str, int]]:
    """A gateway that answers with the request it got: (base URL, {"status": ...})."""
    answer = {"status": 200}

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        text = f"{request.method} {request.raw_path}\n{headers}\n\n{body.decode(errors='replace')}"
        if answer["status"] == 400:
            document = {"statusCode": 400, "error": "Bad Request", "message": text}
            return web.json_response(document, status=400)
        page = f"<html><head><title>{request.raw_path}</title></head><pre>{text}</pre></html>"
        return web.Response(status=answer["status"], text=page, content_type="text/html")

    return await serve(echo), answer


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_gateway_that_echoes_the_request(
    leaks: Leaks,
    gateway: tuple[Sandbox, str],
    serve: Callable[..., Awaitable[str]],
    provider: str,
) -> None:
    """Proxies and debug pages echo the URL (query token), the headers and the body."""
    box, sandbox_url = gateway
    url, answer = await _echo_gateway(serve)
    config = settings(box, sandbox_url, provider, base_url=f"{url}/{provider}")
    expected = {200: wamsg.ProviderError, 400: wamsg.Rejected, 502: wamsg.ProviderUnavailable}
    async with client(leaks, provider, config) as c:
        for status, kind in expected.items():
            answer["status"] = status
            error = await leaks.failure(f"echo {status}", c.send_text(PHONE, "hi"), kind)
            assert error.body_excerpt  # something was shown, and it is clean
            if status == 200:
                assert error.outcome is wamsg.Outcome.UNKNOWN  # a 2xx is never not_sent
    leaks.logs()


async def test_send_many_with_a_broken_progress_callback(
    leaks: Leaks, gateway: tuple[Sandbox, str]
) -> None:
    box, url = gateway
    box.add_fault(Fault(kind="auth", provider="gowa"))

    def progress(index: int, outcome: object) -> None:
        raise RuntimeError(f"progress bar failed on row {index}: {outcome!r}")

    async with client(leaks, "gowa", settings(box, url, "gowa")) as c:
        outcomes = await c.send_many(
            [wamsg.Text(to=to, text="bulk") for to in SPELLINGS], on_result=progress
        )
    for outcome in outcomes:
        if isinstance(outcome, wamsg.WamsgError):
            leaks.error("send_many", outcome)
        else:
            leaks.result("send_many", outcome)
    assert len(box.outbox) == len(SPELLINGS) - 1
    records = leaks.logs()
    assert sum(bool(r.exc_info) for r in records) == len(SPELLINGS)


# --------------------------------------------------------------------------
# Configuration objects and requests
# --------------------------------------------------------------------------


async def test_configuration_objects_and_requests(
    leaks: Leaks, gateway: tuple[Sandbox, str]
) -> None:
    box, url = gateway
    limits = wamsg.Limits(
        rate=50, burst=5, max_in_flight=4, pace=(0.0, 0.01), recipient_pace=(0.0, 0.01)
    )
    limiter = wamsg.LocalRateLimiter(limits)
    await limiter.acquire(PHONE.lstrip("+"), deadline=None)
    policy = wamsg.RetryPolicy(attempts=5, base=0.1, cap=2, max_elapsed=30, retry_unknown=True)
    for where, value in (
        ("Limits", limits),
        ("LocalRateLimiter", limiter),
        ("RetryPolicy", policy),
        ("NO_RETRY", wamsg.NO_RETRY),
        ("MemoryDedupeStore", wamsg.MemoryDedupeStore(ttl=60, max_entries=10)),
        ("Hooks", leaks.hooks()),
        ("Recipient", wamsg.Recipient.parse(PHONE)),
    ):
        leaks.render(where, value)
    clients = []
    for provider in PROVIDERS:
        made = client(
            leaks,
            provider,
            settings(box, url, provider),
            limits=limits,
            retry=policy,
            rate_limiter=None,
        )
        clients.append(made)
        messages: list[wamsg.Message] = [
            wamsg.Text(to=PHONE, text=f"call {PHONE}", reply_to=f"true_{PHONE[1:]}@c.us_3EB0AB"),
            wamsg.Image(
                to=PHONE, image=wamsg.Media.coerce("https://example.com/a.png"), caption=PHONE
            ),
        ]
        if made.adapter.capabilities.media_bytes:
            png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
            messages.append(wamsg.Image(to=PHONE, image=wamsg.Media.coerce(png), caption=PHONE))
        for message in messages:
            leaks.render(f"{provider} message", message)
            request = made.adapter.encode(message)
            leaks.render(f"{provider} HttpRequest", request)
            leaks.render(f"{provider} request secrets", request.secrets())
        async with made:
            leaks.result(f"{provider} sent", await made.send_text(PHONE, "ok"))
        leaks.render(f"Client({provider}) closed", made)
    router = wamsg.Router(
        [client(leaks, p, settings(box, url, p)) for p in PROVIDERS], dedupe=True, hooks=None
    )
    leaks.render("Router", router)
    await router.aclose()
    leaks.render("Router closed", router)
    assert leaks.events  # the hooks saw every send above
    leaks.logs()


# --------------------------------------------------------------------------
# Webhooks: refusals, events and the receiver's logs
# --------------------------------------------------------------------------

HOOK_KEY = "wh-SECRET-5678901234/+="


async def test_webhook_refusals_and_events(leaks: Leaks) -> None:
    from wamsg import webhooks

    jid = f"{PHONE.lstrip('+')}@s.whatsapp.net"
    body = json.dumps(
        {
            "event": "message",
            "device_id": jid,
            "payload": {"id": "3EB0AA", "chat_id": jid, "from": jid, "body": f"call {PHONE}"},
        }
    ).encode()
    mac = hmac.new(HOOK_KEY.encode(), body, hashlib.sha256).hexdigest()
    wrong = {"X-Hub-Signature-256": f"sha256={mac[:-1]}0"}
    for headers, expected in (
        ({}, errors.WebhookSignatureMissing),
        (wrong, errors.WebhookSignatureInvalid),
    ):
        with pytest.raises(expected) as caught:
            webhooks.verify("gowa", headers, body, secret=HOOK_KEY)
        leaks.error("gowa webhook", caught.value)
    stale = "1000000000000"
    v2 = hmac.new(HOOK_KEY.encode(), f"{stale}.".encode() + body, hashlib.sha512)
    headers = {
        "X-Webhook-Hmac": v2.hexdigest(),
        "X-Webhook-Hmac-Algorithm": "sha512",
        "X-Webhook-Hmac-Version": "2",
        "X-Webhook-Timestamp": stale,
    }
    with pytest.raises(errors.WebhookReplay) as replay:
        webhooks.verify("waha", headers, body, secret=HOOK_KEY)
    leaks.error("waha v2 webhook", replay.value)
    with pytest.raises(errors.WebhookVerificationUnsupported) as unsupported:
        webhooks.verify("wuts", {}, body, secret=HOOK_KEY)
    leaks.error("wuts webhook", unsupported.value)
    with pytest.raises(errors.WebhookPayloadError) as payload:
        webhooks.parse("gowa", {}, f"<p>{HOOK_KEY} {PHONE}</p>".encode())
    leaks.error("gowa webhook body", payload.value)
    for event in webhooks.parse("gowa", {}, body):
        leaks.render("webhook event", event, pickles=False)

    async def fails(event: webhooks.Event) -> None:
        raise RuntimeError(f"could not save {PHONE} with {HOOK_KEY}")

    receiver = webhooks.WebhookReceiver("gowa", secret=HOOK_KEY, on_event=fails)
    leaks.render("receiver", receiver)
    refused = await receiver.accept(wrong, body)
    leaks.render("refused", refused)
    accepted = await receiver.accept({"X-Hub-Signature-256": f"sha256={mac}"}, body)
    await receiver.deliver(accepted)
    leaks.render("failure", receiver.failed[0].error)
    leaks.logs()


async def test_a_shared_store_that_is_down(leaks: Leaks, gateway: tuple[Sandbox, str]) -> None:
    # wamsg.redis with its password in the URL and no server: the dedupe
    # store fails closed, the rate limiter falls back to a local share, and
    # neither the password nor the key's text reaches an error or a log.
    from urllib.parse import quote

    from wamsg.redis import RedisDedupeStore, RedisRateLimiter, connect

    box, url = gateway
    password = RIGHT["waha"]["api_key"]
    redis = connect(f"redis://:{quote(password, safe='')}@127.0.0.1:{_closed_port()}/0")
    try:
        store = RedisDedupeStore(redis, namespace="nl")
        limiter = RedisRateLimiter(redis, "nl-gateway", wamsg.Limits(rate=100, burst=5))
        leaks.render("RedisDedupeStore", store)
        leaks.render("RedisRateLimiter", limiter)
        async with client(
            leaks, "wuts", settings(box, url, "wuts"), dedupe=store, rate_limiter=limiter
        ) as c:
            error = await leaks.failure(
                "redis down",
                c.send_text(PHONE, "not without the claim", idempotency_key=f"order {PHONE}"),
                wamsg.StoreUnavailable,
            )
            assert error.outcome is wamsg.Outcome.NOT_SENT
        assert len(box.outbox) == 0
        open_store = RedisDedupeStore(redis, namespace="nl", on_store_error="open")
        async with client(
            leaks, "wuts", settings(box, url, "wuts"), dedupe=open_store, rate_limiter=limiter
        ) as c:
            leaks.result("fail-open", await c.send_text(PHONE, "sent unchecked"))
        assert len(box.outbox) == 1
        leaks.logs()
    finally:
        await redis.aclose()


# --------------------------------------------------------------------------
# Did the tests above meet every error class?
# --------------------------------------------------------------------------

#: Error classes no code raises as such, only as their subclasses.
_ONLY_AS_SUBCLASSES = {errors.IdempotencyError, errors.WebhookError}

#: Which test above raises (and renders) each error class, exactly.
COVERED: dict[type[wamsg.WamsgError], str] = {
    errors.AuthenticationError: "test_401_with_wrong_secrets",
    errors.RateLimited: "test_429_with_retries",
    errors.ProviderUnavailable: "test_503_then_failover_through_a_router",
    errors.NoProviderAvailable: "test_503_then_failover_through_a_router",
    errors.Disconnected: "test_drop_after_the_request_is_unknown",
    errors.ConnectError: "test_connection_refused_then_failover",
    errors.SendTimeout: "test_timeouts_and_idempotency",
    errors.IdempotencyInFlight: "test_timeouts_and_idempotency",
    errors.IdempotencyKeyReused: "test_timeouts_and_idempotency",
    errors.Rejected: "test_gateway_refusals",
    errors.ProviderConfigError: "test_gateway_refusals",
    errors.InvalidMessage: "test_errors_before_any_io",
    errors.UnsupportedFeature: "test_errors_before_any_io",
    errors.ConfigError: "test_errors_before_any_io",
    errors.TransportError: "test_a_broken_transport_and_adapter",
    errors.ProviderError: "test_a_broken_transport_and_adapter",
    errors.WebhookSignatureMissing: "test_webhook_refusals_and_events",
    errors.WebhookSignatureInvalid: "test_webhook_refusals_and_events",
    errors.WebhookReplay: "test_webhook_refusals_and_events",
    errors.WebhookVerificationUnsupported: "test_webhook_refusals_and_events",
    errors.WebhookPayloadError: "test_webhook_refusals_and_events",
    errors.StoreUnavailable: "test_a_shared_store_that_is_down",
}


def _subclasses(cls: type[wamsg.WamsgError]) -> set[type[wamsg.WamsgError]]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("wamsg"):
            found |= {sub, *_subclasses(sub)}
    return found


def test_every_error_class_is_covered() -> None:
    """A new error class fails here until a failing send above renders it."""
    every = _subclasses(wamsg.WamsgError) - _ONLY_AS_SUBCLASSES
    assert every == set(COVERED), sorted(c.__name__ for c in every ^ set(COVERED))
    for name in set(COVERED.values()):
        assert callable(globals()[name])


# --------------------------------------------------------------------------
# Leaks this test found, each fixed where it was
# --------------------------------------------------------------------------


def test_a_token_given_as_the_provider_is_not_echoed(leaks: Leaks) -> None:
    with pytest.raises(wamsg.ConfigError) as caught:
        wamsg.Client(RIGHT["wawp"]["access_token"], instance_id="i")
    leaks.error("token as provider", caught.value)


async def test_a_token_echoed_as_aiohttp_sent_it_is_redacted(
    leaks: Leaks, serve: Callable[..., Awaitable[str]]
) -> None:
    url, answer = await _echo_gateway(serve)
    answer["status"] = 400
    token = "tok:SECRET-1234567890+="  # yarl sends it as "tok:SECRET-1234567890%2B%3D"
    config = {"instance_id": "nl-instance", "access_token": token, "base_url": f"{url}/wawp"}
    async with client(leaks, "wawp", config) as c:
        await leaks.failure("echoed query", c.send_text(PHONE, "hi"), wamsg.Rejected)


def test_a_password_pasted_into_base_url_is_refused(leaks: Leaks) -> None:
    password = RIGHT["gowa"]["password"]  # holds a "/", as base64 passwords do
    try:
        made = wamsg.Client("gowa", base_url=f"http://nl-user:{password}@127.0.0.1:9")
    except wamsg.ConfigError as error:
        leaks.error("credentials in base_url", error)  # refused, without the value
    else:
        leaks.render("Client with credentials in base_url", made)
