"""The sandbox's outgoing webhooks, received by a real aiohttp server on 127.0.0.1.

The receiver keeps every raw request (bytes and headers as sent). Signatures
are checked with Python's ``hmac`` here, independently of wamsg's signing
code. Retry schedules run time-scaled (``time_scale``); tests wait on
conditions, never on sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

import wamsg
from wamsg.sandbox import Fault, Sandbox, WebhookTarget, parse_fault, running_sandbox
from wamsg.sandbox.faults import FaultSet
from wamsg.sandbox.webhooks import (
    SCHEDULES,
    RetrySchedule,
    Subscription,
    go_json,
    parse_webhook_option,
)
from wamsg.testing import MEDIA

pytestmark = pytest.mark.anyio


def media_auth(box: Sandbox, provider: str) -> dict[str, str]:
    """The credentials the sandbox (like the gateway) asks for on its media URLs."""
    settings = box.credentials(provider, "http://127.0.0.1")
    if provider == "gowa":
        pair = f"{settings['username']}:{settings['password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {"X-Api-Key": settings["api_key"]}


PHONE = "+5511999990000"
SENDER = "+5511988887777"
TINY_PNG = (MEDIA / "tiny.png").read_bytes()
ULID = re.compile(r"evt_[0-9a-hjkmnp-tv-z]{26}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass
class Received:
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    at: float
    peer: Any

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(found) <= 1, f"{name} sent {len(found)} times"
        return found[0] if found else None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[["Receiver", Received], Awaitable[web.StreamResponse]]


async def ok(receiver: Receiver, got: Received) -> web.StreamResponse:
    return web.Response(text="ok")


@dataclass
class Receiver:
    """An aiohttp server collecting raw webhook requests; ``answer`` decides replies."""

    base_url: str = ""
    got: list[Received] = field(default_factory=list)
    answer: Answer = ok
    in_flight: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(
            path=request.path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            body=await request.read(),
            at=asyncio.get_running_loop().time(),
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        async with self.changed:
            self.got.append(got)
            self.in_flight += 1
            self.changed.notify_all()
        try:
            return await self.answer(self, got)
        finally:
            async with self.changed:
                self.in_flight -= 1
                self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate(self)), timeout)

    async def wait_count(self, count: int, timeout: float = 5.0) -> list[Received]:
        await self.wait_for(lambda r: len(r.got) >= count, timeout)
        return self.got


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hook.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.base_url = f"http://127.0.0.1:{port}"
    try:
        yield hook
    finally:
        hook.release.set()
        await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Sandbox, str]]:
    box = Sandbox(seed=1, time_scale=0.01)
    async with running_sandbox(sandbox=box) as running:
        yield running


async def send_text(box: Sandbox, provider: str, text: str = "hi") -> wamsg.SendResult:
    async with wamsg.Client(provider, **box.credentials(provider)) as client:
        return await client.send_text(PHONE, text)


def sha256_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def sha512_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha512).hexdigest()


def go_marshal(value: Any) -> bytes:
    """Go's json.Marshal of a map, written out here independently."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode()


# ----------------------------------------------------------------------
# gowa
# ----------------------------------------------------------------------


async def test_gowa_receipts_are_sorted_compact_signed_with_the_default_secret(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="gowa")
    sent = await send_text(box, "gowa")
    got = await receiver.wait_count(2)
    await box.wait_for_webhooks()
    assert len(receiver.got) == 2  # no "sent" receipt: gowa never forwards one (§1c)
    delivered, read = got
    for request, kind in ((delivered, "delivered"), (read, "read")):
        body = request.body
        assert body == go_marshal(request.json)  # sorted at every level, compact
        assert request.header("Content-Type") == "application/json"
        assert request.header("X-Hub-Signature-256") == "sha256=" + sha256_hex("secret", body)
        assert request.header("X-Webhook-Request-Id") is None  # gowa sends no id (§1)
        doc = request.json
        assert list(doc) == ["device_id", "event", "payload", "timestamp"]
        assert doc["event"] == "message.ack"
        assert doc["device_id"] == "15550000000@s.whatsapp.net"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["timestamp"])
        payload = doc["payload"]
        assert list(payload) == sorted(payload)
        assert payload["ids"] == [sent.message_id]
        assert payload["chat_id"] == payload["from"] == "5511999990000@s.whatsapp.net"
        assert payload["receipt_type"] == kind
    assert delivered.json["payload"]["receipt_type_description"] == (
        "means the message was delivered to the device (but the user might not have noticed)."
    )
    assert read.json["payload"]["receipt_type_description"] == (
        "the user opened the chat and saw the message."
    )


async def test_gowa_escapes_html_characters_and_keeps_utf8(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="gowa", secret="s3cret")
    box.inbound("gowa", from_=SENDER, text="a<b>&c ✓ Olá", push_name="Zé & Co")
    (request,) = await receiver.wait_count(1)
    assert b"a\\u003cb\\u003e\\u0026c \xe2\x9c\x93 Ol\xc3\xa1" in request.body
    assert b"Z\xc3\xa9 \\u0026 Co" in request.body
    assert b"<" not in request.body
    assert b"&" not in request.body
    assert request.header("X-Hub-Signature-256") == "sha256=" + sha256_hex("s3cret", request.body)
    assert request.json == {
        "device_id": "15550000000@s.whatsapp.net",
        "event": "message",
        "payload": {
            "body": "a<b>&c ✓ Olá",
            "chat_id": "5511988887777@s.whatsapp.net",
            "from": "5511988887777@s.whatsapp.net",
            "from_name": "Zé & Co",
            "id": request.json["payload"]["id"],
            "is_from_me": False,
            "timestamp": request.json["payload"]["timestamp"],
        },
    }


def test_go_json_matches_go_encoding_rules() -> None:
    value = {"b": {"z": 1, "a": [True, None]}, "a": "<&>\u2028é", "c": "\ud800"}
    assert go_json(value) == (
        b'{"a":"\\u003c\\u0026\\u003e\\u2028\xc3\xa9","b":{"a":[true,null],"z":1},'
        b'"c":"\xef\xbf\xbd"}'
    )


async def test_gowa_image_uses_the_download_path_served_under_statics(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, base_url = served
    box.add_webhook(receiver.url(), provider="gowa")
    box.inbound("gowa", from_=SENDER, text="look", image=TINY_PNG)
    box.inbound("gowa", from_=SENDER, image=TINY_PNG)
    with_caption, plain = await receiver.wait_count(2)
    image = with_caption.json["payload"]["image"]
    assert with_caption.json["payload"]["body"] == "look"
    assert image["caption"] == "look"
    assert re.fullmatch(r"statics/media/\d+-[0-9a-f-]{36}\.png", image["path"])
    # Without a caption the image is the plain path string (§1b).
    assert isinstance(plain.json["payload"]["image"], str)
    assert "body" not in plain.json["payload"]
    url = f"{base_url}/gowa/{image['path']}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            assert r.status == 401  # behind gowa's Basic auth, like its API
        async with http.get(url, headers=media_auth(box, "gowa")) as r:
            assert r.status == 200
            assert r.content_type == "image/png"
            assert await r.read() == TINY_PNG


# ----------------------------------------------------------------------
# WAHA and Wawp
# ----------------------------------------------------------------------

WAHA_KEYS = [
    "id",
    "timestamp",
    "session",
    "metadata",
    "engine",
    "event",
    "payload",
    "me",
    "environment",
]


async def test_waha_receipts_keep_key_order_and_verify_with_hmac_sha512(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="waha", secret="my-secret-key")
    sent = await send_text(box, "waha")
    got = await receiver.wait_count(3)
    assert [r.json["payload"]["ack"] for r in got] == [1, 2, 3]
    assert [r.json["payload"]["ackName"] for r in got] == ["SERVER", "DEVICE", "READ"]
    request_ids = set()
    for request in got:
        body = request.body
        doc = request.json
        assert list(doc) == WAHA_KEYS
        assert body == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        assert ULID.fullmatch(doc["id"])
        assert isinstance(doc["timestamp"], int)
        assert doc["timestamp"] > 10**12
        assert doc["session"] == "default"
        assert doc["metadata"] == {}
        assert doc["engine"] == "WEBJS"
        assert doc["event"] == "message.ack"
        assert doc["me"] == {"id": "15550000001@c.us", "pushName": "wamsg sandbox"}
        assert doc["environment"]["engine"] == "WEBJS"
        assert {"version", "tier", "browser"} <= set(doc["environment"])
        assert list(doc["payload"]) == [
            "id",
            "from",
            "to",
            "participant",
            "fromMe",
            "ack",
            "ackName",
            "_data",
        ]
        assert doc["payload"]["id"] == sent.message_id
        assert doc["payload"]["from"] == "15550000001@c.us"
        assert doc["payload"]["to"] == "5511999990000@c.us"
        assert doc["payload"]["participant"] is None
        assert doc["payload"]["fromMe"] is True
        assert request.header("X-Webhook-Timestamp") == str(doc["timestamp"])
        assert request.header("X-Webhook-Hmac") == sha512_hex("my-secret-key", body)
        assert request.header("X-Webhook-Hmac-Algorithm") == "sha512"
        assert request.header("X-Webhook-Hmac-Version") is None
        request_ids.add(request.header("X-Webhook-Request-Id"))
    assert len(request_ids) == 3
    assert len({r.json["id"] for r in got}) == 3


async def test_waha_without_a_secret_is_unsigned_and_v2_signs_timestamp_dot_body(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url("/plain"), provider="waha", events=("message",))
    box.add_webhook(receiver.url("/v2"), provider="waha", secret="k2", hmac_version=2)
    box.inbound("waha", from_=SENDER, text="hello")
    got = await receiver.wait_count(2)
    by_path = {r.path: r for r in got}
    plain, v2 = by_path["/plain"], by_path["/v2"]
    assert plain.header("X-Webhook-Hmac") is None
    assert plain.header("X-Webhook-Request-Id")
    assert plain.body == v2.body  # one event, the same bytes to every URL
    assert plain.header("X-Webhook-Request-Id") != v2.header("X-Webhook-Request-Id")
    stamp = v2.header("X-Webhook-Timestamp")
    assert stamp is not None
    assert v2.header("X-Webhook-Hmac-Version") == "2"
    assert v2.header("X-Webhook-Hmac") == sha512_hex("k2", stamp.encode() + b"." + v2.body)


async def test_waha_incoming_message_and_image_served_at_media_url(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="waha")
    message = box.inbound("waha", from_=SENDER, text="caption!", image=TINY_PNG)
    (request,) = await receiver.wait_count(1)
    payload = request.json["payload"]
    assert list(payload) == [
        "id",
        "timestamp",
        "from",
        "fromMe",
        "source",
        "to",
        "body",
        "hasMedia",
        "media",
        "ack",
        "vCards",
        "_data",
    ]
    assert payload["id"] == message.message_id
    assert re.fullmatch(r"false_5511988887777@c\.us_3A[0-9A-F]{18}", payload["id"])
    assert payload["from"] == "5511988887777@c.us"
    assert payload["to"] == "15550000001@c.us"
    assert payload["fromMe"] is False
    assert payload["source"] == "app"
    assert payload["body"] == "caption!"
    assert payload["hasMedia"] is True
    assert payload["media"]["mimetype"] == "image/png"
    assert payload["media"]["error"] is None
    assert isinstance(payload["timestamp"], int)
    assert payload["timestamp"] < 10**11
    async with aiohttp.ClientSession() as http:
        async with http.get(payload["media"]["url"]) as r:
            assert r.status == 401  # /api/files needs the X-Api-Key
        async with http.get(payload["media"]["url"], headers=media_auth(box, "waha")) as r:
            assert r.status == 200
            assert await r.read() == TINY_PNG


async def test_wawp_is_the_waha_envelope_without_environment_and_unsigned(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="wawp", secret="ignored")
    sent = await send_text(box, "wawp")
    got = await receiver.wait_count(3)
    for request in got:
        assert list(request.json) == WAHA_KEYS[:-1]
        assert request.header("X-Webhook-Hmac") is None  # Wawp documents no signature (§3)
        assert request.header("X-Webhook-Request-Id")
        assert request.json["payload"]["id"] == sent.message_id
    assert [r.json["payload"]["ack"] for r in got] == [1, 2, 3]


# ----------------------------------------------------------------------
# WUTS
# ----------------------------------------------------------------------


async def test_wuts_signature_is_a_body_field_over_the_body_without_it(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="wuts", secret="wk")
    sent = await send_text(box, "wuts")
    got = await receiver.wait_count(3)
    assert [r.json["event"] for r in got] == ["message.sent", "message.delivered", "message.read"]
    for request, status in zip(got, ("sent", "delivered", "read"), strict=True):
        doc = request.json
        assert list(doc) == [
            "id",
            "event",
            "timestamp",
            "device_id",
            "user_id",
            "data",
            "signature",
        ]
        assert UUID4.fullmatch(doc["id"])
        assert isinstance(doc["timestamp"], int)
        assert doc["timestamp"] < 10**11
        assert doc["data"]["message_id"] == sent.message_id
        assert doc["data"]["status"] == status
        assert doc["data"]["to"] == "5511999990000@s.whatsapp.net"
        unsigned = {k: v for k, v in doc.items() if k != "signature"}
        compact = json.dumps(unsigned, separators=(",", ":"), ensure_ascii=False).encode()
        assert doc["signature"] == "sha256=" + sha256_hex("wk", compact)
        assert request.body == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


async def test_wuts_without_a_secret_has_no_signature_and_images_are_fetchable(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="wuts")
    message = box.inbound("wuts", from_=SENDER, text="pic", image=TINY_PNG)
    (request,) = await receiver.wait_count(1)
    doc = request.json
    assert "signature" not in doc
    assert doc["event"] == "message.received"
    assert doc["data"] == {
        "message_id": message.message_id,
        "from": "5511988887777@s.whatsapp.net",
        "to": "15550000002@s.whatsapp.net",
        "content": "pic",
        "message_type": "image",
        "timestamp": doc["data"]["timestamp"],
        "is_from_me": False,
        "push_name": "Sandbox Contact",
    }
    assert message.media_url is not None
    token = box.credentials("wuts", "http://127.0.0.1")["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(message.media_url, headers=bearer) as r:
        assert r.content_type == "application/octet-stream"
        assert await r.read() == TINY_PNG


# ----------------------------------------------------------------------
# Retries
# ----------------------------------------------------------------------


def fail_first(count: int, status: int = 500, headers: dict[str, str] | None = None) -> Answer:
    async def answer(receiver: Receiver, got: Received) -> web.StreamResponse:
        if len(receiver.got) <= count:
            return web.Response(status=status, headers=headers)
        return web.Response(text="ok")

    return answer


def test_schedules_are_the_documented_ones() -> None:
    gowa, waha, wuts = SCHEDULES["gowa"], SCHEDULES["waha"], SCHEDULES["wuts"]
    assert (gowa.attempts, gowa.timeout, gowa.job_timeout, gowa.sequential) == (5, 10, 30, True)
    assert [gowa.delay_after(n) for n in range(1, 5)] == [1, 2, 4, 8]
    assert (waha.attempts, waha.timeout, waha.honours_retry_after) == (15, None, True)
    assert {waha.delay_after(n) for n in range(1, 15)} == {2.0}
    assert waha.delay_after(1, retry_after=7) == 7
    assert SCHEDULES["wawp"].attempts == 15
    assert (wuts.attempts, wuts.timeout) == (4, 10)
    assert "[G]" in wuts.source


@pytest.mark.parametrize(
    ("provider", "delays"), [("gowa", (1.0, 2.0)), ("waha", (2.0, 2.0)), ("wuts", (1.0, 2.0))]
)
async def test_a_failing_receiver_is_retried_on_schedule(
    receiver: Receiver, provider: str, delays: tuple[float, float]
) -> None:
    scale = 0.02
    receiver.answer = fail_first(2, status=500 if provider != "gowa" else 404)
    box = Sandbox(seed=1, time_scale=scale)
    async with running_sandbox(sandbox=box):
        box.add_webhook(receiver.url(), provider=provider, events=("message",))
        box.inbound(provider, from_=SENDER, text="retry me")
        got = await receiver.wait_count(3)
        await box.wait_for_webhooks()
        assert len(receiver.got) == 3
        assert got[0].body == got[1].body == got[2].body  # retries are byte-identical
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        for gap, delay in zip(gaps, delays, strict=True):
            assert gap >= delay * scale * 0.95
        records = box.deliveries
        assert [r.attempt for r in records] == [1, 2, 3]
        assert [r.status for r in records] == [got_status := records[0].status, got_status, 200]
        assert records[0].status in (404, 500)


async def test_gowa_times_out_each_attempt_and_stops_at_the_30s_cap(receiver: Receiver) -> None:
    async def hang(receiver: Receiver, got: Received) -> web.StreamResponse:
        # Sleeps past the sender's timeout; released at teardown.
        await asyncio.wait_for(receiver.release.wait(), 10)
        return web.Response()

    receiver.answer = hang
    box = Sandbox(seed=1, time_scale=0.01)  # 10 s -> 0.1 s; the 30 s cap -> 0.3 s
    async with running_sandbox(sandbox=box):
        box.add_webhook(receiver.url(), provider="gowa", events=("message",))
        box.inbound("gowa", from_=SENDER, text="anyone?")
        await box.wait_for_webhooks()
        records = box.deliveries
    # 0-0.1 timeout, sleep 0.01, 0.11-0.21 timeout, sleep 0.02, 0.23-0.30 cut by
    # the cap; then attempts 4 and 5 fail at once on the expired context (§1).
    assert [r.attempt for r in records] == [1, 2, 3, 4, 5]
    assert [r.error for r in records] == [
        "TimeoutError",
        "TimeoutError",
        "DeadlineExceeded",
        "DeadlineExceeded",
        "DeadlineExceeded",
    ]
    assert len(receiver.got) == 3
    assert all(r.duration < 0.2 for r in records)


async def test_gowa_tries_urls_one_after_another_and_waha_in_parallel(
    receiver: Receiver,
) -> None:
    async def first_url_fails_once(receiver: Receiver, got: Received) -> web.StreamResponse:
        tries = [r for r in receiver.got if r.path == got.path]
        if got.path.endswith("/a") and len(tries) == 1:
            return web.Response(status=502)
        return web.Response()

    receiver.answer = first_url_fails_once
    box = Sandbox(seed=1, time_scale=0.02)
    async with running_sandbox(sandbox=box):
        for provider in ("gowa", "waha"):
            box.add_webhook(receiver.url(f"/{provider}/a"), provider=provider, events=("message",))
            box.add_webhook(receiver.url(f"/{provider}/b"), provider=provider, events=("message",))
            box.inbound(provider, from_=SENDER, text="two urls")
            await box.wait_for_webhooks()
    gowa = [r.path for r in receiver.got if r.path.startswith("/gowa")]
    assert gowa == ["/gowa/a", "/gowa/a", "/gowa/b"]  # b waits for a's retry
    waha = [r.path for r in receiver.got if r.path.startswith("/waha")]
    assert sorted(waha[:2]) == ["/waha/a", "/waha/b"]  # both first, then a's retry
    assert waha[2] == "/waha/a"


async def test_waha_honours_retry_after_over_its_constant_delay(receiver: Receiver) -> None:
    scale = 0.05
    receiver.answer = fail_first(1, status=503, headers={"Retry-After": "6"})
    box = Sandbox(seed=1, time_scale=scale)
    async with running_sandbox(sandbox=box):
        box.add_webhook(receiver.url(), provider="waha", events=("message",))
        box.inbound("waha", from_=SENDER, text="later")
        first, second = await receiver.wait_count(2)
    assert second.at - first.at >= 6 * scale * 0.95  # not the 2 s constant
    assert first.body == second.body
    assert first.header("X-Webhook-Request-Id") != second.header("X-Webhook-Request-Id")


async def test_network_errors_are_recorded_and_retried() -> None:
    box = Sandbox(seed=1, time_scale=0.01)
    async with running_sandbox(sandbox=box):
        # A port nothing listens on: connection refused, every attempt.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        box.add_webhook(f"http://127.0.0.1:{port}/x", provider="wuts", events=("message",))
        box.inbound("wuts", from_=SENDER, text="nobody home")
        await box.wait_for_webhooks()
    assert [r.attempt for r in box.deliveries] == [1, 2, 3, 4]
    assert {r.error for r in box.deliveries} == {"ClientConnectorError"}


# ----------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------


async def test_duplicate_sends_the_same_bytes_again(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="gowa", events=("message",))
    box.add_fault(Fault(kind="duplicate", provider="gowa", event="message"))
    box.inbound("gowa", from_=SENDER, text="twice")
    first, second = await receiver.wait_count(2)
    assert first.body == second.body
    assert first.header("X-Hub-Signature-256") == second.header("X-Hub-Signature-256")
    await box.wait_for_webhooks()
    assert [r.fault for r in box.deliveries] == [None, "duplicate"]
    # times=1: the next event is sent once.
    box.inbound("gowa", from_=SENDER, text="once")
    await receiver.wait_count(3)
    await box.wait_for_webhooks()
    assert len(receiver.got) == 3


async def test_concurrent_duplicate_arrives_at_once_on_two_connections(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    async def both_in_flight(receiver: Receiver, got: Received) -> web.StreamResponse:
        # Answer only once the twin is in flight too: proof they overlap.
        await receiver.wait_for(lambda r: r.in_flight >= 2 or len(r.got) > 2, timeout=3)
        return web.Response()

    receiver.answer = both_in_flight
    box, _ = served
    box.add_webhook(receiver.url(), provider="waha", secret="k", events=("message",))
    box.add_fault(Fault(kind="concurrent_duplicate", provider="waha"))
    box.inbound("waha", from_=SENDER, text="race")
    one, two = await receiver.wait_count(2)
    await box.wait_for_webhooks()
    assert one.body == two.body
    assert one.json["id"] == two.json["id"]
    assert one.peer != two.peer  # separate connections
    assert [(r.attempt, r.status, r.fault) for r in box.deliveries] == [
        (1, 200, "concurrent_duplicate"),
        (1, 200, "concurrent_duplicate"),
    ]


@pytest.mark.parametrize("provider", ["gowa", "waha"])
async def test_early_receipt_is_delivered_before_the_send_is_answered(
    served: tuple[Sandbox, str], receiver: Receiver, provider: str
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider=provider)
    box.add_fault(Fault(kind="early_receipt", provider=provider))
    sent = await send_text(box, provider)
    early = list(receiver.got)  # what had arrived when the send returned
    if provider == "gowa":
        assert [r.json["payload"]["receipt_type"] for r in early] == ["delivered", "read"]
        assert all(r.json["payload"]["ids"] == [sent.message_id] for r in early)
    else:
        assert [r.json["payload"]["ackName"] for r in early] == ["DEVICE"]
        assert early[0].json["payload"]["id"] == sent.message_id
        got = await receiver.wait_count(3)
        assert [r.json["payload"]["ackName"] for r in got] == ["DEVICE", "SERVER", "READ"]
    await box.wait_for_webhooks()
    assert len(receiver.got) == (2 if provider == "gowa" else 3)


async def test_reorder_sends_read_before_delivered(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="wuts")
    box.add_fault(Fault(kind="reorder", provider="wuts"))
    await send_text(box, "wuts")
    got = await receiver.wait_count(3)
    assert [r.json["event"] for r in got] == ["message.sent", "message.read", "message.delivered"]


async def test_missing_receipt_drops_the_one_named(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="waha")
    box.add_fault(Fault(kind="missing_receipt", provider="waha", event="delivered"))
    await send_text(box, "waha")
    await box.wait_for_webhooks()
    assert [r.json["payload"]["ackName"] for r in receiver.got] == ["SERVER", "READ"]


async def test_bad_signature_signs_other_bytes_once(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url(), provider="gowa", secret="k")
    box.add_fault(Fault(kind="bad_signature", provider="gowa", event="read"))
    await send_text(box, "gowa")
    delivered, read = await receiver.wait_count(2)
    good = "sha256=" + sha256_hex("k", delivered.body)
    assert delivered.header("X-Hub-Signature-256") == good
    signature = read.header("X-Hub-Signature-256")
    assert signature is not None
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert signature != "sha256=" + sha256_hex("k", read.body)
    await box.wait_for_webhooks()
    assert [r.fault for r in box.deliveries] == [None, "bad_signature"]


async def test_webhook_faults_are_scoped_by_provider(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, _ = served
    box.add_webhook(receiver.url("/gowa"), provider="gowa")
    box.add_webhook(receiver.url("/waha"), provider="waha")
    fault_id = box.add_fault(Fault(kind="missing_receipt", provider="waha", times=None))
    await send_text(box, "gowa")
    await send_text(box, "waha")
    await box.wait_for_webhooks()
    assert [r.path for r in receiver.got] == ["/gowa", "/gowa"]
    (state,) = [s for s in box.faults.states() if s.id == fault_id]
    assert state.fired == 3


def test_webhook_faults_never_touch_gateway_requests_and_keep_old_seeds() -> None:
    from wamsg.http import HttpRequest
    from wamsg.sandbox.faults import _rule_key

    faults = FaultSet(seed=1)
    faults.add(Fault(kind="duplicate", times=None))
    assert faults.pick("gowa", HttpRequest(method="POST", url="/send/message")) is None
    assert faults.pick_webhook("gowa", ("duplicate",), "read") is not None
    assert b"event" not in _rule_key(Fault(kind="drop", probability=0.5))
    assert parse_fault("waha:missing_receipt:event=read,times=2") == Fault(
        kind="missing_receipt", provider="waha", event="read", times=2
    )
    with pytest.raises(ValueError, match="event applies only"):
        Fault(kind="drop", event="read")
    with pytest.raises(ValueError, match="event applies only"):
        Fault(kind="early_receipt", event="read")
    with pytest.raises(ValueError, match="path applies only"):
        Fault(kind="duplicate", path="/send")


# ----------------------------------------------------------------------
# The HTTP API, options, shutdown
# ----------------------------------------------------------------------


async def test_http_api_manages_webhooks_inbound_and_lists_deliveries(
    served: tuple[Sandbox, str], receiver: Receiver
) -> None:
    box, base_url = served
    async with aiohttp.ClientSession() as http:
        target = {"url": receiver.url("/api?token=abc"), "provider": "waha", "secret": "shh"}
        async with http.post(f"{base_url}/_sandbox/webhooks", json=target) as r:
            assert r.status == 201
            (webhook_id,) = (await r.json())["ids"]
        async with http.post(f"{base_url}/_sandbox/webhooks", json={"url": "ftp://x"}) as r:
            assert r.status == 400
        async with http.get(f"{base_url}/_sandbox/webhooks") as r:
            listed = await r.text()
        assert "shh" not in listed
        assert "abc" not in listed
        assert json.loads(listed)["webhooks"][0]["has_secret"] is True
        inbound = {
            "provider": "waha",
            "from": SENDER,
            "text": "via http",
            "image": base64.b64encode(TINY_PNG).decode(),
        }
        async with http.post(f"{base_url}/_sandbox/inbound", json=inbound) as r:
            assert r.status == 201
            message = await r.json()
        (request,) = await receiver.wait_count(1)
        assert request.json["payload"]["id"] == message["message_id"]
        media_url = request.json["payload"]["media"]["url"]
        async with http.get(media_url, headers=media_auth(box, "waha")) as r:
            assert await r.read() == TINY_PNG
        await box.wait_for_webhooks()
        async with http.get(f"{base_url}/_sandbox/webhooks/deliveries") as r:
            page = await r.text()
        assert "shh" not in page
        assert "abc" not in page
        deliveries = json.loads(page)["deliveries"]
        assert [(d["provider"], d["event"], d["attempt"], d["status"]) for d in deliveries] == [
            ("waha", "message", 1, 200)
        ]
        assert deliveries[0]["url"].endswith("/***?…")
        async with http.get(f"{base_url}/_sandbox/webhooks/deliveries?after=1") as r:
            assert (await r.json())["deliveries"] == []
        bad = {"provider": "waha", "from": "nobody"}
        async with http.post(f"{base_url}/_sandbox/inbound", json=bad) as r:
            assert r.status == 400
        async with http.delete(f"{base_url}/_sandbox/webhooks/{webhook_id}") as r:
            assert r.status == 204
        async with http.delete(f"{base_url}/_sandbox/webhooks/{webhook_id}") as r:
            assert r.status == 404
    assert box.webhooks == []


def test_parse_webhook_option() -> None:
    assert parse_webhook_option("http://127.0.0.1:9000/hook") == WebhookTarget(
        url="http://127.0.0.1:9000/hook"
    )
    target = parse_webhook_option(
        "http://127.0.0.1/h?a=1,b=2,provider=gowa,secret=s,events=receipt"
    )
    assert target == WebhookTarget(
        url="http://127.0.0.1/h?a=1,b=2", provider="gowa", secret="s", events=("receipt",)
    )
    assert "'s'" not in repr(target)
    assert parse_webhook_option("http://h/x,hmac_version=2,provider=waha").hmac_version == 2
    with pytest.raises(ValueError, match="provider"):
        parse_webhook_option("http://h/x,provider=nope")
    with pytest.raises(ValueError, match="http"):
        parse_webhook_option("h/x")
    with pytest.raises(ValueError, match="secret must not be empty"):
        parse_webhook_option("http://h/x,secret=")


async def test_no_webhooks_without_a_target_and_no_fault_spent(
    served: tuple[Sandbox, str],
) -> None:
    box, _ = served
    box.add_fault(Fault(kind="early_receipt", provider="gowa"))
    await send_text(box, "gowa")
    await box.wait_for_webhooks()
    assert box.deliveries == []
    assert box.faults.states()[0].fired == 0


async def test_shutdown_cancels_pending_deliveries_and_closes_the_session(
    receiver: Receiver,
) -> None:
    receiver.answer = fail_first(1000, status=500)
    box = Sandbox(seed=1)  # real time: WAHA would retry for 28 s
    async with running_sandbox(sandbox=box):
        box.add_webhook(receiver.url(), provider="waha")
        await send_text(box, "waha")
        await receiver.wait_count(1)
        assert box.webhook.pending > 0
        session = box.webhook._session
        assert session is not None
    assert box.webhook.pending == 0
    assert session.closed
    assert box.webhook._session is None
    assert not [
        t for t in asyncio.all_tasks() if t.get_name().startswith("wamsg-sandbox") and not t.done()
    ]


def test_targets_are_validated_and_shown_without_secrets() -> None:
    target = WebhookTarget(url="http://user:pw@127.0.0.1:8080/p?token=t", secret="x")
    assert target.shown_url == "http://127.0.0.1:8080/***?…"
    # A Wawp/WUTS receiver's secret is the URL's last segment: never shown.
    wawp = WebhookTarget(url="http://127.0.0.1:8080/webhooks/tok-S3cr3t", provider="wawp")
    assert wawp.shown_url == "http://127.0.0.1:8080/webhooks/***"
    assert "S3cr3t" not in repr(wawp)
    assert "S3cr3t" not in repr(Subscription(id=1, target=wawp).view())
    assert "pw" not in repr(target)
    assert "'x'" not in repr(target)
    with pytest.raises(ValueError, match="events"):
        WebhookTarget(url="http://h/", events=())
    with pytest.raises(ValueError, match="only for waha"):
        WebhookTarget(url="http://h/", provider="gowa", hmac_version=2)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"url": "http://h/", "nope": 1}, WebhookTarget)
    assert RetrySchedule(attempts=1, timeout=None, delays=()).delay_after(1) == 0.0
