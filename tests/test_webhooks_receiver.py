"""WebhookReceiver and the aiohttp handler, over real HTTP on 127.0.0.1.

Bodies are signed here with Python's hmac directly (not wamsg's signing
code), as the gateways document it (docs/webhooks.md §1, §2).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import wamsg
from wamsg import ConfigError, MemoryDedupeStore
from wamsg.webhooks import Event, StatusTracker, WebhookDeduper, WebhookReceiver
from wamsg.webhooks.aiohttp import add_webhook_route

pytestmark = pytest.mark.anyio

SECRET = "whsec-SeCrEt-42"
PHONE = "628123456789"

# gowa's text message webhook (docs/webhooks.md §1a), as gowa marshals it.
GOWA_TEXT = json.dumps(
    {
        "device_id": "628987654321@s.whatsapp.net",
        "event": "message",
        "payload": {
            "body": "Hello, how are you?",
            "chat_id": f"{PHONE}@s.whatsapp.net",
            "from": f"{PHONE}@s.whatsapp.net",
            "from_name": "John Doe",
            "id": "3EB0C127D7BACC83D6A1",
            "is_from_me": False,
            "timestamp": "2023-10-15T10:30:00Z",
        },
    },
    separators=(",", ":"),
    sort_keys=True,
).encode()


def gowa_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def waha_body(
    event_id: str = "evt_01jabcdefghjkmnpqrstvwxyz0",
    event: str = "message",
    message_id: str = "AAAAAAAAAAAAAAAAAAAA",
) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "timestamp": 1634567890123,
            "session": "default",
            "metadata": {},
            "engine": "WEBJS",
            "event": event,
            "payload": {
                "id": f"false_{PHONE}@c.us_{message_id}",
                "timestamp": 1666943582,
                "from": f"{PHONE}@c.us",
                "fromMe": False,
                "to": "15550000001@c.us",
                "body": "Hello, world!",
                "hasMedia": False,
            },
        }
    ).encode()


class Served:
    def __init__(self, url: str, receiver: WebhookReceiver, session: aiohttp.ClientSession):
        self.url = url
        self.receiver = receiver
        self.session = session

    async def post(
        self, body: bytes, headers: dict[str, str], path: str = "/hook"
    ) -> tuple[int, Any]:
        async with self.session.post(self.url + path, data=body, headers=headers) as response:
            return response.status, await response.json()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def start(receiver: WebhookReceiver, path: str = "/hook", **route: Any) -> Served:
        app = web.Application()
        served_deliveries = add_webhook_route(app, path, receiver, **route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        served = Served(f"http://127.0.0.1:{port}", receiver, session)
        served.deliveries = served_deliveries  # type: ignore[attr-defined]
        return served

    yield start
    await session.close()
    for runner in runners:
        await runner.cleanup()


async def test_answers_before_the_callback_runs(serve: Callable[..., Any]) -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    got: list[Event] = []

    async def slow(event: Event) -> None:
        started.set()
        await release.wait()  # the callback is still busy...
        got.append(event)

    served = await serve(WebhookReceiver("gowa", secret=SECRET, on_event=slow))
    # ...yet the gateway has its 200.
    status, answer = await asyncio.wait_for(served.post(GOWA_TEXT, gowa_headers(GOWA_TEXT)), 5)
    assert (status, answer) == (200, {"ok": True})
    await asyncio.wait_for(started.wait(), 5)
    assert got == []
    release.set()
    await served.deliveries.drain()
    assert [e.message.text for e in got if e.message] == ["Hello, how are you?"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b, h: (b[:10] + bytes([b[10] ^ 1]) + b[11:], h),  # one byte flipped
        lambda b, h: (b, gowa_headers(b, "another-secret")),  # wrong secret
        lambda b, h: (b, {"Content-Type": "application/json"}),  # no signature
        lambda b, h: (b + b" ", h),  # a byte added
    ],
    ids=["flipped-byte", "wrong-secret", "missing-header", "appended"],
)
async def test_bad_signatures_are_401_and_never_reach_the_callback(
    serve: Callable[..., Any], tamper: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Event] = []

    async def keep(event: Event) -> None:
        got.append(event)

    served = await serve(WebhookReceiver("gowa", secret=SECRET, on_event=keep))
    body, headers = tamper(GOWA_TEXT, gowa_headers(GOWA_TEXT))
    with caplog.at_level(logging.WARNING, logger="wamsg.webhooks"):
        status, answer = await served.post(body, headers)
    assert status == 401
    assert answer["ok"] is False
    await served.deliveries.drain()
    assert got == []
    assert served.receiver.counts["refused"] == 1
    assert "refused with 401" in caplog.text
    assert SECRET not in caplog.text + json.dumps(answer)


async def test_oversized_bodies_are_413(serve: Callable[..., Any]) -> None:
    served = await serve(WebhookReceiver("gowa", secret=SECRET, max_body=1000))
    big = b"{" + b" " * 5000 + b"}"
    status, _ = await served.post(big, gowa_headers(big))
    assert status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(10):
            yield b" " * 500

    async with served.session.post(
        served.url + "/hook", data=chunks(), headers=gowa_headers(b"")
    ) as response:
        assert response.status == 413
    assert served.receiver.counts["refused"] == 2


async def test_a_body_that_is_not_json_is_400(serve: Callable[..., Any]) -> None:
    served = await serve(WebhookReceiver("gowa", secret=SECRET))
    body = b"<html>not json</html>"
    status, answer = await served.post(body, gowa_headers(body))
    assert status == 400
    assert "<html>" not in answer["error"]


async def test_concurrent_duplicates_give_exactly_one_callback(serve: Callable[..., Any]) -> None:
    calls: list[Event] = []

    async def keep(event: Event) -> None:
        calls.append(event)
        await asyncio.sleep(0.01)

    served = await serve(WebhookReceiver("gowa", secret=SECRET, on_event=keep))
    headers = gowa_headers(GOWA_TEXT)
    answers = await asyncio.gather(*(served.post(GOWA_TEXT, headers) for _ in range(25)))
    assert {status for status, _ in answers} == {200}  # duplicates are answered 200 too
    await served.deliveries.drain()
    assert len(calls) == 1
    assert served.receiver.counts["duplicates"] == 24
    # A retry later is a duplicate as well.
    await served.post(GOWA_TEXT, headers)
    await served.deliveries.drain()
    assert len(calls) == 1


async def test_waha_retries_of_one_event_id_are_duplicates(serve: Callable[..., Any]) -> None:
    calls: list[Event] = []

    async def keep(event: Event) -> None:
        calls.append(event)

    served = await serve(WebhookReceiver("waha", secret=SECRET, on_event=keep))
    bodies = (
        waha_body(),  # the event
        waha_body(),  # its retry
        # the same message on the message.any subscription (waha#1384)
        waha_body("evt_01jyyyyyyyyyyyyyyyyyyyyyyy", event="message.any"),
        waha_body("evt_01jzzzzzzzzzzzzzzzzzzzzzzz", message_id="BBBB"),  # another message
    )
    for body in bodies:
        mac = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
        headers = {"X-Webhook-Hmac": mac, "X-Webhook-Hmac-Algorithm": "sha512"}
        assert (await served.post(body, headers))[0] == 200
    await served.deliveries.drain()
    assert [e.event_id for e in calls] == [
        "evt_01jabcdefghjkmnpqrstvwxyz0",
        "evt_01jzzzzzzzzzzzzzzzzzzzzzzz",
    ]


async def test_a_failing_callback_loses_nothing(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[Event] = []
    errors: list[BaseException] = []

    async def flaky(event: Event) -> None:
        attempts.append(event)
        if len(attempts) < 3:
            raise RuntimeError(f"database down while saving +{PHONE}")

    receiver = WebhookReceiver(
        "gowa", secret=SECRET, on_event=flaky, on_error=lambda f, e: errors.append(e)
    )
    served = await serve(receiver)
    with caplog.at_level(logging.ERROR, logger="wamsg.webhooks"):
        assert (await served.post(GOWA_TEXT, gowa_headers(GOWA_TEXT)))[0] == 200
        await served.deliveries.drain()
    assert len(receiver.failed) == 1
    assert receiver.failed[0].event.message is not None
    assert "RuntimeError" in receiver.failed[0].error
    assert "callback failed" in caplog.text
    assert PHONE not in caplog.text + receiver.failed[0].error
    assert len(errors) == 1
    # The claim was released: the gateway's redelivery is processed again...
    assert (await served.post(GOWA_TEXT, gowa_headers(GOWA_TEXT)))[0] == 200
    await served.deliveries.drain()
    assert len(attempts) == 2
    # ...and what failed can be run again by hand.
    assert await receiver.retry_failed() == 1
    assert len(attempts) == 3
    assert not receiver.failed
    assert await receiver.retry_failed() == 0
    assert receiver.counts["delivered"] == 1


async def test_wawp_takes_a_secret_token_in_the_url(serve: Callable[..., Any]) -> None:
    calls: list[Event] = []

    async def keep(event: Event) -> None:
        calls.append(event)

    served = await serve(
        WebhookReceiver("wawp", secret=SECRET, on_event=keep),
        path="/hook/{token}",
        token_param="token",
    )
    body = waha_body()
    assert (await served.post(body, {}, path=f"/hook/{SECRET}"))[0] == 200
    assert (await served.post(body, {}, path="/hook/guess"))[0] == 401
    await served.deliveries.drain()
    assert len(calls) == 1


async def test_wuts_without_a_url_token_is_refused_not_guessed(serve: Callable[..., Any]) -> None:
    served = await serve(WebhookReceiver("wuts", secret=SECRET))
    body = json.dumps({"id": "e1", "event": "message.received", "data": {}}).encode()
    status, answer = await served.post(body, {})
    assert status == 401
    assert "not supported" in answer["error"]


async def test_framework_free_use() -> None:
    got: list[Event] = []

    async def keep(event: Event) -> None:
        got.append(event)

    receiver = WebhookReceiver("gowa", secret=SECRET, on_event=keep)
    accepted = await receiver.accept(gowa_headers(GOWA_TEXT), GOWA_TEXT)
    assert accepted.status == 200
    assert got == []  # nothing runs before deliver()
    await receiver.deliver(accepted)
    assert len(got) == 1
    again = await receiver.handle(list(gowa_headers(GOWA_TEXT).items()), GOWA_TEXT)
    assert (again.status, again.events, len(again.duplicates)) == (200, (), 1)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="secret is required"):
        WebhookReceiver("gowa")
    with pytest.raises(ConfigError, match="no webhook format"):
        WebhookReceiver("nosuch", secret=SECRET)
    with pytest.raises(ConfigError, match="no webhook format for provider \\(not shown\\)"):
        WebhookReceiver("tok-" + SECRET, secret=SECRET)
    receiver = WebhookReceiver("gowa", secret=SECRET)
    assert SECRET not in repr(receiver)


# -- from the review: nothing claimed is ever stranded -----------------------------


class SlowStore(MemoryDedupeStore):
    """Atomic, but slow to answer (a remote store); optionally fails on the Nth claim."""

    def __init__(self, delay: float = 0.0, fail_on: int = 0) -> None:
        super().__init__()
        self.delay = delay
        self.fail_on = fail_on
        self.claims = 0

    async def claim(self, key: str, fingerprint: str, *, lease: float) -> Any:
        self.claims += 1
        if self.claims == self.fail_on:
            raise ConnectionError("store unreachable")
        claim = await super().claim(key, fingerprint, lease=lease)
        await asyncio.sleep(self.delay)
        return claim


class CheckThenWriteStore(MemoryDedupeStore):
    """The OpenWA#464 mistake: look, await, then write. Not atomic."""

    async def claim(self, key: str, fingerprint: str, *, lease: float) -> Any:
        seen = key in self._entries
        await asyncio.sleep(0.001)
        if seen:
            return await super().claim(key, fingerprint, lease=lease)
        self._entries.pop(key, None)
        return await super().claim(key, fingerprint, lease=lease)


async def test_the_concurrency_check_would_catch_a_check_then_write_store(
    serve: Callable[..., Any],
) -> None:
    calls: list[Event] = []

    async def keep(event: Event) -> None:
        calls.append(event)

    receiver = WebhookReceiver(
        "gowa", secret=SECRET, on_event=keep, deduper=WebhookDeduper(CheckThenWriteStore())
    )
    served = await serve(receiver)
    headers = gowa_headers(GOWA_TEXT)
    await asyncio.gather(*(served.post(GOWA_TEXT, headers) for _ in range(10)))
    await served.deliveries.drain()
    assert len(calls) > 1  # so the exactly-once tests above can fail


async def test_an_event_is_delivered_even_when_the_gateway_hung_up(
    serve: Callable[..., Any],
) -> None:
    calls: list[Event] = []

    async def keep(event: Event) -> None:
        calls.append(event)

    receiver = WebhookReceiver(
        "gowa", secret=SECRET, on_event=keep, deduper=WebhookDeduper(SlowStore(delay=0.3))
    )
    served = await serve(receiver)
    host, port = served.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{k}: {v}\r\n" for k, v in gowa_headers(GOWA_TEXT).items())
    writer.write(
        f"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {len(GOWA_TEXT)}\r\n{head}\r\n".encode()
        + GOWA_TEXT
    )
    await writer.drain()
    writer.close()  # gone before the (slow) claim is answered
    await writer.wait_closed()
    for _ in range(100):
        await asyncio.sleep(0.02)
        await served.deliveries.drain()
        if calls:
            break
    assert len(calls) == 1


async def test_a_store_failing_mid_way_gives_back_what_was_claimed() -> None:
    store = SlowStore(fail_on=2)
    receiver = WebhookReceiver("gowa", secret=SECRET, deduper=WebhookDeduper(store))
    batch = b"[" + GOWA_TEXT + b"," + GOWA_TEXT.replace(b"D6A1", b"D6A2") + b"]"
    with pytest.raises(ConnectionError):
        await receiver.accept(gowa_headers(batch), batch)
    # The gateway's retry is processed, not taken for a duplicate.
    retried = await receiver.accept(gowa_headers(batch), batch)
    assert len(retried.events) == 2


async def test_an_on_change_hook_that_raises_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(change: Any) -> None:
        raise RuntimeError("dashboard down")

    tracker = StatusTracker(on_change=broken)
    result = wamsg.SendResult(provider="gowa", message_id="3EB00106E8BE0F407E88EC")
    with caplog.at_level(logging.ERROR, logger="wamsg.webhooks"):
        tracker.track(result)  # does not raise
    receiver = WebhookReceiver("gowa", secret=SECRET, tracker=tracker)
    receipt = json.dumps(
        {
            "device_id": "628987654321@s.whatsapp.net",
            "event": "message.ack",
            "payload": {"ids": ["3EB00106E8BE0F407E88EC"], "receipt_type": "read"},
        }
    ).encode()
    accepted = await receiver.accept(gowa_headers(receipt), receipt)
    assert (accepted.status, len(accepted.events)) == (200, 1)
    assert tracker.status("gowa", "3EB00106E8BE0F407E88EC") is wamsg.Status.READ
    assert "on_change raised RuntimeError" in caplog.text


def test_bad_receiver_settings_fail_at_once() -> None:
    with pytest.raises(ConfigError, match="empty"):
        WebhookReceiver("gowa", secret="")
    with pytest.raises(ConfigError, match="tolerance"):
        WebhookReceiver("waha", secret=SECRET, tolerance=-5)


async def test_a_full_failure_list_says_what_it_drops(caplog: pytest.LogCaptureFixture) -> None:
    async def fails(event: Event) -> None:
        raise RuntimeError("no")

    receiver = WebhookReceiver("gowa", secret=SECRET, on_event=fails, max_failed=1)
    for n in range(2):
        body = GOWA_TEXT.replace(b"D6A1", f"D6B{n}".encode())
        await receiver.handle(gowa_headers(body), body)
    assert len(receiver.failed) == 1
    assert "dropped from receiver.failed" in caplog.text


async def test_slow_callbacks_push_back_instead_of_piling_up() -> None:
    from wamsg.webhooks.aiohttp import BackgroundDeliveries

    release = asyncio.Event()

    async def slow(event: Event) -> None:
        await release.wait()

    receiver = WebhookReceiver("gowa", secret=SECRET, on_event=slow)
    background = BackgroundDeliveries(max_tasks=2)
    for n in range(2):
        body = GOWA_TEXT.replace(b"D6A1", f"D6C{n}".encode())
        background.start(receiver, await receiver.accept(gowa_headers(body), body))
    waiting = asyncio.ensure_future(background.wait_for_room())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # full: the next handler waits
    release.set()
    await asyncio.wait_for(waiting, 5)
    await background.drain()
    assert len(background) == 0


DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


async def test_the_docs_starlette_endpoint() -> None:
    import re

    import httpx

    doc = DOC.read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "Starlette(" in b]
    got: list[Event] = []

    async def keep(event: Event) -> None:
        got.append(event)

    namespace: dict[str, Any] = {"receiver": WebhookReceiver("gowa", secret=SECRET, on_event=keep)}
    exec(compile(block, "docs/webhooks.md", "exec"), namespace)
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        ok = await http.post("/webhooks/gowa", content=GOWA_TEXT, headers=gowa_headers(GOWA_TEXT))
        again = await http.post(
            "/webhooks/gowa", content=GOWA_TEXT, headers=gowa_headers(GOWA_TEXT)
        )
        forged = await http.post("/webhooks/gowa", content=GOWA_TEXT, headers={})
    assert (ok.status_code, again.status_code, forged.status_code) == (200, 200, 401)
    assert len(got) == 1
