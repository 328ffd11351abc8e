"""The sandbox's own HTTP API (messages, images, faults, requests, providers) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

import wamsg
from wamsg.http import HttpRequest
from wamsg.sandbox import Sandbox, StoredMessage, running_sandbox
from wamsg.sandbox.outbox import Outbox
from wamsg.sandbox.server import MAX_REQUEST_BYTES
from wamsg.testing import MEDIA as KIT_MEDIA

pytestmark = pytest.mark.anyio

TINY_PNG = KIT_MEDIA / "tiny.png"


@pytest.fixture
async def served() -> AsyncIterator[tuple[Sandbox, str, aiohttp.ClientSession]]:
    async with running_sandbox(seed=1) as (box, base_url), aiohttp.ClientSession() as http:
        yield box, base_url, http


Served = tuple[Sandbox, str, aiohttp.ClientSession]


async def test_every_provider_is_served_and_listed_with_working_credentials(
    served: Served,
) -> None:
    box, base_url, http = served
    async with http.get(f"{base_url}/_sandbox/providers") as r:
        listed = (await r.json())["providers"]
    assert [p["name"] for p in listed] == ["gowa", "waha", "wawp", "wuts"]
    for entry in listed:
        assert entry["credentials"]["base_url"] == f"{base_url}/{entry['name']}"
        async with wamsg.Client(entry["name"], **entry["credentials"]) as client:
            result = await client.send_text("+5511999990000", f"via {entry['name']}")
        assert box.outbox.find(provider=entry["name"])[0].message_id == result.message_id


async def test_messages_api_pages_with_after_and_filters(served: Served) -> None:
    box, base_url, http = served
    async with wamsg.Client("wawp", **box.credentials("wawp")) as client:
        await client.send_text("+5511999990000", "one")
        await client.send_text("120363025246125486@g.us", "two")
    async with wamsg.Client("wuts", **box.credentials("wuts")) as client:
        await client.send_image("+5511999990000", TINY_PNG, caption="pic")
    async with http.get(f"{base_url}/_sandbox/messages") as r:
        page = await r.json()
    assert page["last_seq"] == 3
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3]
    async with http.get(f"{base_url}/_sandbox/messages", params={"after": "1"}) as r:
        assert [m["seq"] for m in (await r.json())["messages"]] == [2, 3]
    params = {"provider": "wawp", "chat": "120363025246125486@g.us"}
    async with http.get(f"{base_url}/_sandbox/messages", params=params) as r:
        assert [m["text"] for m in (await r.json())["messages"]] == ["two"]
    image = page["messages"][2]
    assert "image_bytes" not in image
    assert image["image_size"] == TINY_PNG.stat().st_size
    async with http.get(base_url + image["image_href"]) as r:
        assert r.content_type == "image/png"
        data = await r.read()
    assert data == TINY_PNG.read_bytes()
    assert hashlib.sha256(data).hexdigest() == image["image_sha256"]
    async with http.get(f"{base_url}/_sandbox/messages", params={"after": "x"}) as r:
        assert r.status == 400


async def test_clear_changes_the_epoch_and_keeps_numbering(served: Served) -> None:
    box, base_url, http = served
    async with wamsg.Client("wawp", **box.credentials("wawp")) as client:
        await client.send_text("+5511999990000", "one")
        async with http.delete(f"{base_url}/_sandbox/messages") as r:
            assert r.status == 204
        await client.send_text("+5511999990000", "two")
    async with http.get(f"{base_url}/_sandbox/messages") as r:
        page = await r.json()
    assert page["epoch"] == 1
    assert [(m["seq"], m["text"]) for m in page["messages"]] == [(2, "two")]


async def test_image_endpoint_404s(served: Served) -> None:
    box, base_url, http = served
    async with wamsg.Client("wawp", **box.credentials("wawp")) as client:
        await client.send_image("+5511999990000", "https://example.com/a.png")
    for seq in ("1", "99", "x"):  # a URL image has no bytes; no such message; not a number
        async with http.get(f"{base_url}/_sandbox/messages/{seq}/image") as r:
            assert r.status == 404


async def test_faults_api_adds_lists_counts_and_removes(served: Served) -> None:
    box, base_url, http = served
    rules = [
        {"kind": "rate_limit", "provider": "wawp", "retry_after": 3},
        {"kind": "drop", "provider": "gowa", "times": None, "probability": 0.5},
    ]
    async with http.post(f"{base_url}/_sandbox/faults", json=rules) as r:
        assert r.status == 201
        ids = (await r.json())["ids"]
    async with http.post(f"{base_url}/_sandbox/faults", json={"kind": "auth"}) as r:
        ids += (await r.json())["ids"]
    assert ids == [1, 2, 3]
    async with wamsg.Client("wawp", retry=wamsg.NO_RETRY, **box.credentials("wawp")) as client:
        with pytest.raises(wamsg.RateLimited):
            await client.send_text("+5511999990000", "hi")
    async with http.get(f"{base_url}/_sandbox/faults") as r:
        states = (await r.json())["faults"]
    assert [(s["id"], s["fired"], s["fault"]["kind"]) for s in states] == [
        (1, 1, "rate_limit"),
        (2, 0, "drop"),
        (3, 0, "auth"),
    ]
    async with http.delete(f"{base_url}/_sandbox/faults/3") as r:
        assert r.status == 204
    async with http.delete(f"{base_url}/_sandbox/faults/3") as r:
        assert r.status == 404
    async with http.delete(f"{base_url}/_sandbox/faults") as r:
        assert r.status == 204
    assert box.faults.states() == []
    async with http.get(f"{base_url}/_sandbox/requests") as r:
        (record,) = (await r.json())["requests"]
    assert (record["provider"], record["status"], record["fault"], record["stored"]) == (
        "wawp",
        429,
        "rate_limit",
        False,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"kind": "melt"}',
        b'{"kind": "auth", "provider": "nosuch"}',
        b'{"kind": "auth", "colour": "red"}',
        b'{"kind": "rate_limit"}',
        b'[{"kind": "auth"}, {"kind": "slow"}]',
        b'[{"kind": "drop"}, {"kind": "auth", "provider": "bogus"}]',
    ],
)
async def test_faults_api_refuses_bad_rules_whole(served: Served, body: bytes) -> None:
    box, base_url, http = served
    async with http.post(f"{base_url}/_sandbox/faults", data=body) as r:
        assert r.status == 400
        assert (await r.json())["error"]
    # All or nothing: no rule of a refused list is in force.
    assert box.faults.states() == []


async def test_unknown_provider_and_inbox_page(served: Served) -> None:
    _, base_url, http = served
    async with http.post(f"{base_url}/nosuch/send") as r:
        assert r.status == 404
    async with http.get(f"{base_url}/") as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        assert "wamsg" in await r.text()


def _message(seq: int, image: bytes | None = None, text: str | None = None) -> StoredMessage:
    return StoredMessage(
        seq=seq,
        provider="gowa",
        kind="image" if image is not None else "text",
        chat_id="5511999990000@s.whatsapp.net",
        message_id=f"id{seq}",
        received_at=0.0,
        image_bytes=image,
        text=text,
    )


def test_outbox_is_bounded_by_count_and_by_bytes() -> None:
    by_count = Outbox(3)
    for seq in range(1, 6):
        by_count.add(_message(seq, text="x"))
    assert [m.seq for m in by_count] == [3, 4, 5]
    assert by_count.dropped == 2
    by_bytes = Outbox(100, max_bytes=2500)
    for seq in range(1, 5):
        by_bytes.add(_message(seq, image=b"\0" * 1000))
    assert [m.seq for m in by_bytes] == [3, 4]
    huge = Outbox(100, max_bytes=10)
    huge.add(_message(1, image=b"\0" * 1000))
    assert [m.seq for m in huge] == [1]  # the newest message always stays
    assert huge.get(1) is not None
    assert huge.get(2) is None
    with pytest.raises(ValueError, match="positive"):
        Outbox(0)


def test_stored_message_repr_masks_the_number_and_hides_bytes() -> None:
    text = repr(_message(1, image=b"\xff" * 5000))
    assert "5511999990000" not in text
    assert "5000 bytes" in text


@pytest.mark.parametrize("provider", ["gowa", "waha", "wawp", "wuts"])
async def test_bodies_over_the_cap_get_the_gateways_413_unread(
    served: Served, provider: str
) -> None:
    box, base_url, http = served
    big = b"x" * (MAX_REQUEST_BYTES + 1)
    async with http.post(f"{base_url}/{provider}/send", data=io.BytesIO(big)) as r:
        assert r.status == 413
        assert await r.read() == box.handlers[provider].error(413, "Request Entity Too Large").body

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length up front
        for _ in range(MAX_REQUEST_BYTES // (1 << 20) + 1):
            yield b"x" * (1 << 20)

    async with http.post(f"{base_url}/{provider}/send", data=chunks()) as r:
        assert r.status == 413
    assert len(box.outbox) == 0


def test_concurrent_gateways_number_messages_in_order_and_log_stores_exactly() -> None:
    """Gateways run on the event loop and on threads at once (big uploads)."""
    box = Sandbox(seed=1)
    creds = box.credentials("wuts", "http://x")
    good = HttpRequest(
        method="POST",
        url="/send/text",
        headers=(("Authorization", f"Bearer {creds['token']}"),),
        body=b'{"number": "5511999990000", "text": "hi"}',
    )
    bad = msgspec.structs.replace(good, headers=(("Authorization", "Bearer wrong"),))

    def work(request: HttpRequest) -> None:
        for _ in range(100):
            box.dispatch("wuts", request)

    threads = [threading.Thread(target=work, args=(r,)) for r in [good, bad] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = [m.seq for m in box.outbox]
    assert seqs == sorted(seqs) == list(range(1, 401))
    records = list(box.requests)
    assert len(records) == 800
    assert sum(r.stored for r in records) == 400
    assert all(r.stored == (r.status == 200) for r in records)
