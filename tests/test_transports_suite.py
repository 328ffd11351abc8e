"""The client over every transport and backend, against the real sandbox gateway.

One suite, three runs: AiohttpTransport on asyncio, HttpxTransport on
asyncio, HttpxTransport on trio (aiohttp is asyncio-only; that it says so
clearly under trio is tested at the end). Every scenario runs for each of
the four providers, over real HTTP on 127.0.0.1: the sandbox is served by
aiohttp.web in a thread of its own with its own asyncio loop, so the test's
event loop can be trio. The sandbox's outbox and request log are the proof
of what the gateway got, not what the client says about it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

import wamsg
from wamsg import Outcome, RetryPolicy
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.transports import AiohttpTransport, HttpxTransport, Transport

pytestmark = pytest.mark.anyio

PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TO = "+5511999990000"
#: Image-like bytes: a PNG signature, then enough to span several 48 KiB chunks.
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(150_000)
IMAGE_URL = "https://cdn.example.com/pics/cat.png"
#: Small backoffs: the retry paths run for real, quickly.
FAST = RetryPolicy(base=0.001, cap=0.01)

COMBOS = [("aiohttp", "asyncio"), ("httpx", "asyncio"), ("httpx", "trio")]
TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "httpx": HttpxTransport,
}


class ThreadedSandbox:
    """The sandbox served by aiohttp.web on 127.0.0.1, in its own thread and asyncio loop."""

    def __init__(self) -> None:
        self.box = Sandbox(seed=3)
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._failed is not None:
            raise RuntimeError(f"the sandbox did not start: {self._failed!r}")

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with running_sandbox(sandbox=self.box) as (_, url):
                self.url = url
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # pragma: no cover - reported by __init__
            self._failed = exc
            self._ready.set()

    def reset(self) -> None:
        self.box.faults.clear()
        self.box.outbox.clear()
        self.box.requests.clear()

    def close(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedSandbox]:
    server = ThreadedSandbox()
    yield server
    server.close()


@pytest.fixture
def sandbox(served: ThreadedSandbox) -> ThreadedSandbox:
    served.reset()
    return served


@pytest.fixture(params=COMBOS, ids=[f"{t}-{b}" for t, b in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(combo: tuple[str, str]) -> str:
    return combo[1]


@pytest.fixture
def connect(combo: tuple[str, str], sandbox: ThreadedSandbox) -> Callable[..., wamsg.Client]:
    """``connect(provider, **options)``: a client on this run's transport, at the sandbox."""

    def make(provider: str, *, base_url: str | None = None, **options: Any) -> wamsg.Client:
        options.setdefault("retry", FAST)
        credentials = sandbox.box.credentials(provider, base_url or sandbox.url)
        return wamsg.Client(provider, transport=TRANSPORTS[combo[0]](), **credentials, **options)

    return make


def _requests(sandbox: ThreadedSandbox, provider: str) -> list[tuple[int | None, bool]]:
    """(status, stored) of each request the provider's gateway saw."""
    return [(r.status, r.stored) for r in sandbox.box.requests if r.provider == provider]


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: bound, read, closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _assert_no_secret(sandbox: ThreadedSandbox, provider: str, error: BaseException) -> None:
    """No credential of ``provider`` is in the error's text or repr."""
    credentials = sandbox.box.credentials(provider, sandbox.url)
    secret_keys = {"password", "api_key", "access_token", "token"}
    secrets = [str(v) for k, v in credentials.items() if k in secret_keys]
    assert secrets, "the sandbox gives every provider a credential"
    shown = f"{error} {error!r}"
    assert [s for s in secrets if s in shown] == []


# -- what lands -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_text_lands_in_the_outbox(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        result = await client.send_text(TO, f"hello via {provider}")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.kind == "text"
    assert stored.text == f"hello via {provider}"
    assert stored.message_id == result.message_id
    assert _requests(sandbox, provider) == [(result.attempts[0].status_code, True)]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_image_bytes_arrive_byte_exact(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        if not client.adapter.capabilities.media_bytes:
            # Wawp takes image URLs only: refused before any request.
            with pytest.raises(wamsg.UnsupportedFeature):
                await client.send_image(TO, PNG, caption="look")
            assert _requests(sandbox, provider) == []
            return
        result = await client.send_image(TO, PNG, caption="look")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    # gowa gets multipart, WAHA and WUTS base64 in JSON: the gateway decoded
    # exactly the bytes given, streamed in chunks with Content-Length.
    assert stored.image_bytes == PNG
    assert stored.mimetype == "image/png"
    assert stored.caption == "look"
    assert stored.message_id == result.message_id


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_image_by_url_lands(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        result = await client.send_image(TO, IMAGE_URL, caption="by url")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.kind == "image"
    assert stored.image_url == IMAGE_URL
    assert stored.image_bytes is None
    assert stored.message_id == result.message_id


# -- what fails, and how ------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_429_is_retried_after_retry_after_and_lands_once(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="rate_limit", provider=provider, retry_after=2))
    # wait=False: the wait is computed (and recorded) but not slept.
    async with connect(provider, retry=RetryPolicy(wait=False)) as client:
        result = await client.send_text(TO, "after a 429")
    first, second = result.attempts
    assert (first.status_code, first.outcome) == (429, Outcome.NOT_SENT)
    assert first.error is not None
    assert first.error.startswith("RateLimited")
    assert second.error is None
    assert second.waited >= 2  # the Retry-After header came through the transport
    seen = _requests(sandbox, provider)
    assert seen[0] == (429, False)
    assert seen[1][1] is True
    assert len(seen) == 2
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.message_id == result.message_id


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refused_connection_is_not_sent_and_retried(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider, base_url=f"http://127.0.0.1:{_closed_port()}") as client:
        with pytest.raises(wamsg.ConnectError) as caught:
            await client.send_text(TO, "nobody home")
    err = caught.value
    assert err.outcome is Outcome.NOT_SENT
    assert err.retryable
    assert err.provider == provider
    assert len(err.attempts) == FAST.attempts  # certainly not sent: tried again
    assert "127.0.0.1" in str(err)
    _assert_no_secret(sandbox, provider, err)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_dropped_answer_is_unknown_and_never_resent(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="drop", provider=provider))
    async with connect(provider) as client:
        with pytest.raises(wamsg.Disconnected) as caught:
            await client.send_text(TO, "into the void")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert not caught.value.retryable
    assert len(caught.value.attempts) == 1
    assert _requests(sandbox, provider) == [(None, True)]  # the gateway has it
    assert len(sandbox.box.outbox.find(provider=provider)) == 1
    _assert_no_secret(sandbox, provider, caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_silent_gateway_is_a_read_timeout_unknown(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="slow", provider=provider, delay=1.0))
    async with connect(provider, read_timeout=0.05) as client:
        with pytest.raises(wamsg.SendTimeout) as caught:
            await client.send_text(TO, "slowly")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert len(caught.value.attempts) == 1, "a send that may be out is not repeated"
    # One request, which the gateway stored: the message is out, as "unknown" says.
    assert [stored for _, stored in _requests(sandbox, provider)] == [True]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_per_call_deadline_is_honoured(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="slow", provider=provider, delay=2.0))
    async with connect(provider, timeout=60) as client:
        started = time.monotonic()
        with pytest.raises(wamsg.SendTimeout) as caught:
            await client.send_text(TO, "in a hurry", timeout=0.05)
        elapsed = time.monotonic() - started
        # Generous: far below the gateway's 2 s and the client's own 60 s.
        assert elapsed < 1.5
        # The same client still sends once the gateway answers in time.
        result = await client.send_text(TO, "next one")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert len(caught.value.attempts) == 1
    assert sandbox.box.outbox.find(provider=provider)[-1].message_id == result.message_id


# -- aiohttp under trio: refused, clearly, before any I/O ---------------------------


def _expect_asyncio_only(error: wamsg.ConfigError) -> None:
    text = str(error)
    assert "asyncio only" in text
    assert "this is trio" in text
    assert "HttpxTransport" in text
    assert "pip install 'wamsg[httpx]'" in text


def test_aiohttp_transport_under_trio_says_what_to_use() -> None:
    async def main() -> None:
        with pytest.raises(wamsg.ConfigError) as caught:
            AiohttpTransport()
        _expect_asyncio_only(caught.value)

    trio.run(main)


def test_a_client_without_transport_under_trio_fails_before_any_io(
    sandbox: ThreadedSandbox,
) -> None:
    credentials = sandbox.box.credentials("gowa", sandbox.url)
    built_before = wamsg.Client("gowa", **credentials)  # outside any event loop: fine

    async def main() -> None:
        # Built inside trio: the default transport refuses at once.
        with pytest.raises(wamsg.ConfigError) as caught:
            wamsg.Client("gowa", **credentials)
        _expect_asyncio_only(caught.value)
        # Built before, used under trio: the first send refuses, sending nothing.
        async with built_before as client:
            with pytest.raises(wamsg.ConfigError) as caught:
                await client.send_text(TO, "never sent")
        _expect_asyncio_only(caught.value)
        assert caught.value.outcome is Outcome.NOT_SENT
        assert len(caught.value.attempts) == 1  # not retried: it cannot succeed

    trio.run(main)
    assert list(sandbox.box.requests) == []
    assert len(sandbox.box.outbox) == 0
