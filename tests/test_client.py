"""The Client's own logic (deadline, error handling, bookkeeping, logging) over MockTransport.

Every async test runs on asyncio and on trio: MockTransport needs no event
loop of its own, and the client core is written on anyio.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

import wamsg
from wamsg import (
    NO_RETRY,
    Client,
    ConfigError,
    ConnectError,
    HttpRequest,
    HttpResponse,
    Image,
    InvalidMessage,
    Media,
    MockTransport,
    Outcome,
    ProviderUnavailable,
    RateLimited,
    RetryPolicy,
    Secret,
    SendResult,
    SendTimeout,
    Status,
    Text,
    Timeouts,
    TransportError,
    UnsupportedFeature,
)
from wamsg.providers.wawp import WawpAdapter

pytestmark = pytest.mark.anyio

TOKEN = "wawp-token-7f3e9a1b2c"
INSTANCE = "ABCDEF123456"
SETTINGS: dict[str, Any] = {"instance_id": INSTANCE, "access_token": TOKEN}
PHONE = "+55 11 99999-0000"
DIGITS = "5511999990000"
MESSAGE_ID = f"true_{DIGITS}@c.us_3EB0C767D097B7C5A1B2"
PNG_URL = "https://example.com/media/cat.png"

# What Wawp's WEBJS engine answers to a send (trimmed).
OK_BODY = msgspec.json.encode(
    {
        "id": {
            "fromMe": True,
            "remote": f"{DIGITS}@c.us",
            "id": "3EB0C767D097B7C5A1B2",
            "_serialized": MESSAGE_ID,
        },
        "ack": 1,
        "timestamp": 1_700_000_000,
        "to": f"{DIGITS}@c.us",
    }
)

Respond = Callable[[HttpRequest], HttpResponse]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
def handler_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Factory = Callable[[Respond], MockTransport]


@pytest.fixture
def mock(handler_kind: str) -> Factory:
    """Build a MockTransport whose handler is sync or async (both must work)."""

    def make(respond: Respond) -> MockTransport:
        if handler_kind == "sync":
            return MockTransport(respond)

        async def handler(request: HttpRequest) -> HttpResponse:
            await anyio.lowlevel.checkpoint()
            return respond(request)

        return MockTransport(handler)

    return make


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=201, headers={"Content-Type": "application/json"}, body=OK_BODY)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Respond:
    def respond(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=status, headers=headers or {}, body=body)

    return respond


def raising(exc: BaseException) -> Respond:
    def respond(request: HttpRequest) -> HttpResponse:
        raise exc

    return respond


def json_body(request: HttpRequest) -> Any:
    assert isinstance(request.body, bytes)
    return msgspec.json.decode(request.body)


def make_client(transport: MockTransport, **kwargs: Any) -> Client:
    return Client("wawp", transport=transport, **SETTINGS, **kwargs)


# --------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------


def _assert_ok(result: SendResult) -> None:
    assert isinstance(result, SendResult)
    assert result.provider == "wawp"
    assert result.message_id == MESSAGE_ID
    assert result.status is Status.SENT
    assert result.chat_id == f"{DIGITS}@c.us"
    assert result.raw == OK_BODY
    assert len(result.attempts) == 1
    attempt = result.attempts[0]
    assert attempt.provider == "wawp"
    assert attempt.status_code == 201
    assert isinstance(attempt.duration, float)
    assert attempt.duration >= 0
    assert attempt.error is None
    assert attempt.outcome is None


async def test_send_text(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        result = await client.send_text(PHONE, "Hello")
    _assert_ok(result)
    assert transport.calls == 1
    request = transport.requests[-1]
    assert request.method == "POST"
    assert request.url == "https://api.wawp.net/v2/send/text"
    assert request.kind == "text"
    assert request.query == (("instance_id", INSTANCE), ("access_token", Secret(TOKEN)))
    assert request.revealed_query() == {"instance_id": INSTANCE, "access_token": TOKEN}
    assert json_body(request) == {"chatId": f"{DIGITS}@c.us", "message": "Hello"}


async def test_send_text_reply(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        await client.send_text(PHONE, "Hi", reply_to=MESSAGE_ID)
    assert json_body(transport.requests[-1]) == {
        "chatId": f"{DIGITS}@c.us",
        "message": "Hi",
        "reply_to": MESSAGE_ID,
    }


async def test_send_text_to_a_group(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        await client.send_text("120363025246125486@g.us", "Hi all")
    body = json_body(transport.requests[-1])
    assert body["chatId"] == "120363025246125486@g.us"


async def test_send_image(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        result = await client.send_image(PHONE, PNG_URL, caption="Look")
    _assert_ok(result)
    assert transport.calls == 1
    request = transport.requests[-1]
    assert request.method == "POST"
    assert request.url == "https://api.wawp.net/v2/send/image"
    assert request.kind == "media"
    assert request.revealed_query() == {"instance_id": INSTANCE, "access_token": TOKEN}
    assert json_body(request) == {
        "chatId": f"{DIGITS}@c.us",
        "file[url]": PNG_URL,
        "file[filename]": "cat.png",
        "file[mimetype]": "image/png",
        "caption": "Look",
    }


@pytest.mark.parametrize(
    "message",
    [
        Text(to=PHONE, text="Hello"),
        Image(to=PHONE, image=Media(url=PNG_URL), caption="Look"),
    ],
    ids=["text", "image"],
)
async def test_send_message(mock: Factory, message: Text | Image) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        result = await client.send(message)
    _assert_ok(result)
    assert transport.calls == 1


async def test_empty_2xx_is_accepted_without_an_id(mock: Factory) -> None:
    transport = mock(answer(200))
    async with make_client(transport) as client:
        result = await client.send_text(PHONE, "Hello")
    assert result.message_id is None
    assert result.status is Status.UNKNOWN
    assert result.attempts[0].status_code == 200


async def test_client_reuses_one_transport(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        for _ in range(3):
            await client.send_text(PHONE, "Hello")
    assert transport.calls == 3
    assert transport.closed


# --------------------------------------------------------------------------
# Checked before any I/O
# --------------------------------------------------------------------------

SendCall = Callable[[Client], Awaitable[SendResult]]

BEFORE_IO: list[Any] = [
    pytest.param(lambda c: c.send_text("123", "hi"), InvalidMessage, id="bad-phone"),
    pytest.param(lambda c: c.send_text("abc@g.us", "hi"), InvalidMessage, id="bad-group"),
    pytest.param(lambda c: c.send_text(PHONE, ""), InvalidMessage, id="empty-text"),
    pytest.param(lambda c: c.send_text(PHONE, "x" * 4097), InvalidMessage, id="text-too-long"),
    pytest.param(lambda c: c.send_text(PHONE, "hi", reply_to=""), InvalidMessage, id="empty-reply"),
    pytest.param(
        lambda c: c.send_text(PHONE, "hi", mentions=["+44 20 7946 0958"]),
        UnsupportedFeature,
        id="mentions",
    ),
    pytest.param(
        lambda c: c.send_image(PHONE, b"\x89PNG\r\n\x1a\n" + b"\x00" * 8),
        UnsupportedFeature,
        id="upload",
    ),
    pytest.param(
        lambda c: c.send_image(PHONE, PNG_URL, view_once=True),
        UnsupportedFeature,
        id="view-once",
    ),
    pytest.param(
        lambda c: c.send_image(PHONE, "https://example.com/a.gif"), InvalidMessage, id="gif"
    ),
    pytest.param(
        lambda c: c.send_image(PHONE, "https://example.com/image"),
        InvalidMessage,
        id="unknown-type",
    ),
    pytest.param(
        lambda c: c.send_image(PHONE, "ftp://example.com/a.png"), InvalidMessage, id="ftp"
    ),
    pytest.param(lambda c: c.send_image(PHONE, 42), InvalidMessage, id="not-an-image"),
    pytest.param(lambda c: c.send(Text(to=PHONE, text="hi"), timeout=0), ConfigError, id="t=0"),
    pytest.param(lambda c: c.send(Text(to=PHONE, text="hi"), timeout=-1), ConfigError, id="t<0"),
    pytest.param(lambda c: c.send("hello"), ConfigError, id="not-a-message"),
]


@pytest.mark.parametrize(("call", "error"), BEFORE_IO)
async def test_refused_before_the_handler_is_called(
    mock: Factory, call: SendCall, error: type[wamsg.WamsgError]
) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        with pytest.raises(error) as info:
            await call(client)
    assert transport.calls == 0
    assert info.value.outcome is Outcome.NOT_SENT
    if isinstance(info.value, UnsupportedFeature):
        assert info.value.provider == "wawp"


# --------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------


async def test_send_after_aclose(mock: Factory) -> None:
    transport = mock(ok)
    client = make_client(transport)
    await client.aclose()
    assert client.closed
    assert transport.closed
    await client.aclose()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        await client.send_text(PHONE, "Hello")
    with pytest.raises(ConfigError, match="closed"):
        async with client:
            pass
    assert transport.calls == 0


async def test_send_after_async_with_exit(mock: Factory) -> None:
    transport = mock(ok)
    async with make_client(transport) as client:
        pass
    assert client.closed
    with pytest.raises(ConfigError):
        await client.send_text(PHONE, "Hello")
    assert transport.calls == 0


async def test_async_with_closes_on_error(mock: Factory) -> None:
    transport = mock(ok)
    with pytest.raises(RuntimeError, match="inside"):
        async with make_client(transport) as client:
            raise RuntimeError("inside")
    assert client.closed
    assert transport.closed


def test_sync_with_is_refused() -> None:
    client = make_client(MockTransport(ok))
    with pytest.raises(ConfigError, match="async with"), client:
        pass


def test_repr_shows_no_token() -> None:
    client = make_client(MockTransport(ok))
    assert TOKEN not in repr(client)
    assert "wawp" in repr(client).lower()


# --------------------------------------------------------------------------
# Deadlines: one try, never a retry
# --------------------------------------------------------------------------


def _slow(transport_calls: list[HttpRequest]) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    async def handler(request: HttpRequest) -> HttpResponse:
        transport_calls.append(request)
        await anyio.sleep(5)
        return ok(request)  # pragma: no cover - cancelled before

    return handler


async def test_per_call_timeout() -> None:
    seen: list[HttpRequest] = []
    transport = MockTransport(_slow(seen))
    async with make_client(transport) as client:
        with pytest.raises(SendTimeout) as info:
            await client.send_text(PHONE, "Hello", timeout=0.05)
    assert info.value.outcome is Outcome.UNKNOWN
    assert info.value.retryable is False
    assert info.value.provider == "wawp"
    assert transport.calls == 1
    assert len(seen) == 1


async def test_client_timeout() -> None:
    transport = MockTransport(_slow([]))
    async with make_client(transport, timeout=0.05) as client:
        with pytest.raises(SendTimeout) as info:
            await client.send_image(PHONE, PNG_URL)
    assert info.value.outcome is Outcome.UNKNOWN
    assert transport.calls == 1


async def test_per_call_timeout_overrides_no_client_timeout() -> None:
    transport = MockTransport(_slow([]))
    async with make_client(transport, timeout=None) as client:
        with pytest.raises(SendTimeout):
            await client.send(Text(to=PHONE, text="Hello"), timeout=0.05)
    assert transport.calls == 1


class PlainTransport:
    """A third-party transport that leaves the deadline to the client.

    It has no ``enforces_timeouts`` attribute, so the client's own deadline
    is what stops a slow answer.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.timeouts: list[Timeouts] = []

    async def send(self, request: HttpRequest, *, timeouts: Timeouts) -> HttpResponse:
        self.calls += 1
        self.timeouts.append(timeouts)
        await anyio.sleep(self.delay)
        return ok(request)

    async def aclose(self) -> None:
        pass


def test_plain_transport_is_a_transport() -> None:
    assert isinstance(PlainTransport(), wamsg.Transport)
    assert not getattr(PlainTransport, "enforces_timeouts", False)


@pytest.mark.parametrize(
    ("client_timeout", "call_timeout"), [(60.0, 0.05), (0.05, None), (None, 0.05)]
)
async def test_client_enforces_the_deadline_for_other_transports(
    client_timeout: float | None, call_timeout: float | None
) -> None:
    transport = PlainTransport(delay=5)
    async with Client("wawp", transport=transport, timeout=client_timeout, **SETTINGS) as client:
        with pytest.raises(SendTimeout) as info:
            await client.send_text(PHONE, "Hello", timeout=call_timeout)
    assert info.value.outcome is Outcome.UNKNOWN
    assert info.value.provider == "wawp"
    assert transport.calls == 1


async def test_timeouts_passed_to_the_transport() -> None:
    transport = PlainTransport()
    async with Client(
        "wawp",
        transport=transport,
        timeout=20,
        connect_timeout=3,
        read_timeout=4,
        media_read_timeout=50,
        **SETTINGS,
    ) as client:
        await client.send_text(PHONE, "Hello")
        await client.send_image(PHONE, PNG_URL, timeout=9)
    # `total` is what is left of the call's deadline when the request goes
    # out: the deadline covers the limits and retries before it too.
    text, image = transport.timeouts
    assert (text.connect, text.read) == (3, 4)
    assert (image.connect, image.read) == (3, 50)
    assert text.total is not None
    assert image.total is not None
    assert 19 < text.total <= 20
    assert 8 < image.total <= 9


async def test_media_connect_timeout_applies_to_media_only() -> None:
    transport = PlainTransport()
    async with Client(
        "wawp",
        transport=transport,
        connect_timeout=3,
        media_connect_timeout=7,
        **SETTINGS,
    ) as client:
        await client.send_text(PHONE, "Hello")
        await client.send_image(PHONE, PNG_URL)
    assert [t.connect for t in transport.timeouts] == [3, 7]


async def test_no_deadline_at_all() -> None:
    transport = PlainTransport()
    async with Client("wawp", transport=transport, timeout=None, **SETTINGS) as client:
        _assert_ok(await client.send_text(PHONE, "Hello"))
    assert transport.timeouts[0].total is None


async def test_timeout_message_shows_no_secret() -> None:
    transport = MockTransport(_slow([]))
    async with make_client(transport) as client:
        with pytest.raises(SendTimeout) as info:
            await client.send_text(PHONE, "Hello", timeout=0.05)
    for text in (str(info.value), repr(info.value)):
        assert TOKEN not in text
        assert DIGITS not in text


# --------------------------------------------------------------------------
# Failures from the transport and the gateway
# --------------------------------------------------------------------------


async def test_connect_error_propagates(mock: Factory) -> None:
    transport = mock(raising(ConnectError("connection refused")))
    async with make_client(transport, retry=NO_RETRY) as client:
        with pytest.raises(ConnectError) as info:
            await client.send_text(PHONE, "Hello")
    assert info.value.outcome is Outcome.NOT_SENT
    assert info.value.retryable is True
    assert info.value.provider == "wawp"
    assert transport.calls == 1


async def test_connect_error_is_retried_by_default(mock: Factory) -> None:
    # Nothing reached the gateway: the default policy tries again, up to
    # its attempts, and the error lists every try.
    transport = mock(raising(ConnectError("connection refused")))
    async with make_client(transport, retry=RetryPolicy(wait=False)) as client:
        with pytest.raises(ConnectError) as info:
            await client.send_text(PHONE, "Hello")
    assert transport.calls == RetryPolicy().attempts == 4
    assert [a.outcome for a in info.value.attempts] == [Outcome.NOT_SENT] * 4
    assert info.value.outcome is Outcome.NOT_SENT


async def test_transport_error_keeps_its_own_provider(mock: Factory) -> None:
    transport = mock(raising(wamsg.Disconnected("reset", provider="proxy")))
    async with make_client(transport) as client:
        with pytest.raises(wamsg.Disconnected) as info:
            await client.send_text(PHONE, "Hello")
    assert info.value.provider == "proxy"
    assert info.value.outcome is Outcome.UNKNOWN
    assert transport.calls == 1


async def test_plain_exception_becomes_transport_error(mock: Factory) -> None:
    transport = mock(raising(RuntimeError(f"socket died sending access_token={TOKEN} to {DIGITS}")))
    async with make_client(transport) as client:
        with pytest.raises(TransportError) as info:
            await client.send_text(PHONE, "Hello")
    error = info.value
    assert type(error) is TransportError
    assert error.outcome is Outcome.UNKNOWN
    assert error.retryable is False
    assert error.provider == "wawp"
    assert "RuntimeError" in str(error)
    for text in (str(error), repr(error)):
        assert TOKEN not in text
        assert DIGITS not in text
    assert error.__cause__ is None  # the original text held the token
    assert transport.calls == 1


async def test_wamsg_errors_from_the_handler_pass_through(mock: Factory) -> None:
    transport = mock(raising(ConfigError("transport is closed")))
    async with make_client(transport) as client:
        with pytest.raises(ConfigError, match="transport is closed"):
            await client.send_text(PHONE, "Hello")
    assert transport.calls == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, Outcome.UNKNOWN),
        # A bare 502 may come from a proxy in front of Wawp after the origin
        # acted; only Wawp's own wawp_upstream_error code means "never sent".
        (502, Outcome.UNKNOWN),
        (503, Outcome.NOT_SENT),
        (504, Outcome.UNKNOWN),
    ],
)
async def test_5xx_is_provider_unavailable_and_retried_only_when_not_sent(
    mock: Factory, status: int, outcome: Outcome
) -> None:
    transport = mock(answer(status, b'{"message": "upstream down"}'))
    async with make_client(transport, retry=RetryPolicy(wait=False)) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await client.send_text(PHONE, "Hello")
    assert info.value.status_code == status
    assert info.value.provider == "wawp"
    assert info.value.outcome is outcome
    # A 503 certainly did not send: tried again up to the policy's attempts.
    # The others may have sent: exactly one request, ever.
    assert transport.calls == (4 if outcome is Outcome.NOT_SENT else 1)


async def test_429_is_rate_limited(mock: Factory) -> None:
    body = b'{"code": "rate_limit_exceeded", "message": "Too many requests"}'
    transport = mock(answer(429, body, {"Retry-After": "7"}))
    async with make_client(transport, retry=NO_RETRY) as client:
        with pytest.raises(RateLimited) as info:
            await client.send_text(PHONE, "Hello")
    error = info.value
    assert error.retry_after == 7.0
    assert error.outcome is Outcome.NOT_SENT
    assert error.retryable is True
    assert error.error_code == "rate_limit_exceeded"
    assert error.status_code == 429
    assert transport.calls == 1


async def test_429_is_retried_after_the_gateway_s_retry_after() -> None:
    body = b'{"code": "rate_limit_exceeded", "message": "Too many requests"}'
    calls: list[int] = []

    def handler(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        if len(calls) == 1:
            return HttpResponse(status=429, headers={"Retry-After": "7"}, body=body)
        return ok(request)

    # wait=False: the delay is computed and recorded, not slept.
    async with make_client(MockTransport(handler), retry=RetryPolicy(wait=False)) as client:
        result = await client.send_text(PHONE, "Hello")
    assert result.message_id == MESSAGE_ID
    assert len(calls) == 2
    first, second = result.attempts
    assert first.status_code == 429
    assert first.outcome is Outcome.NOT_SENT
    assert second.outcome is None
    # Retry-After is a floor; the jitter on top is at most 10% + 50 ms.
    assert 7.0 <= second.waited <= 7.0 * 1.1 + 0.05


async def test_429_longer_than_the_deadline_is_not_waited_for(mock: Factory) -> None:
    body = b'{"code": "rate_limit_exceeded", "message": "Too many requests"}'
    transport = mock(answer(429, body, {"Retry-After": "7"}))
    async with make_client(transport, timeout=2) as client:
        with anyio.fail_after(1):  # it must not sleep 7 s first
            with pytest.raises(RateLimited) as info:
                await client.send_text(PHONE, "Hello")
    assert transport.calls == 1
    assert info.value.outcome is Outcome.NOT_SENT
    assert info.value.retry_after == 7.0


async def test_401_is_authentication_error_without_the_token(mock: Factory) -> None:
    body = msgspec.json.encode({"code": "invalid_access_token", "message": f"bad token {TOKEN}"})
    transport = mock(answer(401, body))
    async with make_client(transport) as client:
        with pytest.raises(wamsg.AuthenticationError) as info:
            await client.send_text(PHONE, "Hello")
    error = info.value
    assert error.outcome is Outcome.REJECTED
    for text in (str(error), repr(error), error.body_excerpt, error.gateway_message or ""):
        assert TOKEN not in text
    assert transport.calls == 1


async def test_200_with_an_error_body_is_an_error(mock: Factory) -> None:
    body = b'{"success": false, "code": "invalid_instance", "message": "Instance not found"}'
    transport = mock(answer(200, body))
    async with make_client(transport) as client:
        with pytest.raises(wamsg.Rejected) as info:
            await client.send_text(PHONE, "Hello")
    assert info.value.error_code == "invalid_instance"
    assert transport.calls == 1


# --------------------------------------------------------------------------
# Client settings
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting", ["timeout", "connect_timeout", "read_timeout", "media_read_timeout"]
)
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, float("nan")])
def test_invalid_timeouts(setting: str, value: float) -> None:
    with pytest.raises(ConfigError, match=setting):
        make_client(MockTransport(ok), **{setting: value})


@pytest.mark.parametrize(
    "setting", ["timeout", "connect_timeout", "read_timeout", "media_read_timeout"]
)
def test_timeouts_may_be_none(setting: str) -> None:
    make_client(MockTransport(ok), **{setting: None})


def test_adapter_instance_plus_settings() -> None:
    adapter = WawpAdapter(**SETTINGS)
    with pytest.raises(ConfigError, match="instance_id"):
        Client(adapter, transport=MockTransport(ok), instance_id="other")


async def test_adapter_instance(mock: Factory) -> None:
    transport = mock(ok)
    async with Client(WawpAdapter(**SETTINGS), transport=transport) as client:
        _assert_ok(await client.send_text(PHONE, "Hello"))


@pytest.mark.parametrize("provider", [42, None, object(), WawpAdapter])
def test_provider_must_be_a_name_or_an_adapter(provider: Any) -> None:
    with pytest.raises(ConfigError):
        Client(provider, transport=MockTransport(ok))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"instance_id": INSTANCE},
        {"access_token": TOKEN},
        {"instance_id": INSTANCE, "access_token": ""},
        {"instance_id": "", "access_token": TOKEN},
        {**SETTINGS, "base_url": "ftp://api.wawp.net"},
        {**SETTINGS, "colour": "blue"},
    ],
)
def test_invalid_provider_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        Client("wawp", transport=MockTransport(ok), **settings)
    assert TOKEN not in str(info.value)


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="wawp"):
        Client("nope", transport=MockTransport(ok))


# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------


def _assert_logs_are_clean(caplog: pytest.LogCaptureFixture) -> None:
    records = [r for r in caplog.records if r.name.startswith("wamsg")]
    assert records
    for record in records:
        line = record.getMessage()
        squeezed = re.sub(r"[\s().\-/+]", "", line)
        assert TOKEN not in line
        assert DIGITS not in squeezed, line
    assert TOKEN not in caplog.text
    assert DIGITS not in caplog.text


@pytest.mark.parametrize(
    "respond",
    [
        pytest.param(ok, id="success"),
        pytest.param(
            answer(
                401,
                msgspec.json.encode(
                    {"code": "invalid_access_token", "message": f"{TOKEN} cannot send to {DIGITS}"}
                ),
            ),
            id="http-401",
        ),
        pytest.param(answer(500, f"<title>crash for {DIGITS}</title>".encode()), id="http-500"),
        pytest.param(
            raising(RuntimeError(f"GET ...?access_token={TOKEN}&to={DIGITS} failed")),
            id="transport-bug",
        ),
        pytest.param(raising(ConnectError("connection refused")), id="connect-error"),
    ],
)
async def test_logs_hold_no_token_and_no_full_number(
    mock: Factory, caplog: pytest.LogCaptureFixture, respond: Respond
) -> None:
    caplog.set_level(logging.DEBUG, logger="wamsg")
    transport = mock(respond)
    # Short real backoffs: the retry log lines are checked too.
    async with make_client(transport, retry=RetryPolicy(base=0.01)) as client:
        with contextlib.suppress(wamsg.WamsgError):
            await client.send_text(PHONE, "Hello")
    _assert_logs_are_clean(caplog)


async def test_timeout_logs_are_clean(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wamsg")
    async with make_client(MockTransport(_slow([]))) as client:
        with pytest.raises(SendTimeout):
            await client.send_image(PHONE, PNG_URL, timeout=0.05)
    _assert_logs_are_clean(caplog)
