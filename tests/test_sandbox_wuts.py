"""The WUTS adapter against the sandbox gateway over real HTTP on 127.0.0.1.

The sandbox decodes with the adapter's wire structs and enforces what WUTS
documents (providers.md §4); these tests prove a message sent through the
real transport arrives with the same content, and that the sandbox refuses
what WUTS refuses, in WUTS's own error envelope.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

import wamsg
from wamsg.http import HttpRequest
from wamsg.providers.wuts import WutsAdapter
from wamsg.sandbox import Sandbox
from wamsg.sandbox.outbox import Outbox
from wamsg.sandbox.wuts import WutsSandbox
from wamsg.testing import MEDIA as KIT_MEDIA

pytestmark = pytest.mark.anyio

MEDIA = KIT_MEDIA
JPEG = (MEDIA / "tiny.jpg").read_bytes()
PNG = (MEDIA / "tiny.png").read_bytes()
GIF = (MEDIA / "tiny.gif").read_bytes()
GROUP = "120363025246125486@g.us"
PHONE_JID = "5511999990000@s.whatsapp.net"


def _gateway(box: Sandbox) -> WutsSandbox:
    handler = box.handlers["wuts"]
    assert isinstance(handler, WutsSandbox)
    return handler


def _metadata(result: wamsg.SendResult) -> dict[str, Any]:
    assert result.raw is not None
    answer: dict[str, Any] = msgspec.json.decode(result.raw)
    assert answer["success"] is True
    assert answer["message_id"] == result.message_id
    metadata: dict[str, Any] = answer["metadata"]
    return metadata


# --------------------------------------------------------------------------
# (a) every send the adapter can make arrives in the outbox
# --------------------------------------------------------------------------


async def test_texts_arrive_with_reply_and_mentions(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("wuts", **box.credentials("wuts", base_url)) as client:
        first = await client.send_text("+55 (11) 99999-0000", "Olá, *mundo* ✓")
        reply = await client.send_text(
            GROUP,
            "@5511988888888 is my order ready?",
            reply_to=first.message_id,
            mentions=["+55 11 98888-8888", "5511977777777@c.us"],
        )
        # A serialized id from a WAHA-style gateway is cut to the bare id.
        serialized = await client.send_text(
            "5511999990000", "yes", reply_to="true_5511999990000@c.us_3EB0UNKNOWN0000"
        )
    stored = box.outbox.find(provider="wuts")
    assert [m.kind for m in stored] == ["text", "text", "text"]
    assert stored[0].chat_id == PHONE_JID == first.chat_id
    assert stored[0].text == "Olá, *mundo* ✓"
    assert stored[0].reply_to is None
    assert stored[0].message_id == first.message_id
    assert first.message_id is not None
    assert first.message_id.startswith("3EB0")
    assert len(first.message_id) == 20
    assert first.status == wamsg.Status.SENT
    assert stored[1].chat_id == GROUP == reply.chat_id
    assert stored[1].text == "@5511988888888 is my order ready?"
    assert stored[1].reply_to == first.message_id
    assert stored[1].extra["mentions"] == [
        "5511988888888@s.whatsapp.net",
        "5511977777777@s.whatsapp.net",
    ]
    assert stored[1].message_id == reply.message_id
    assert _metadata(reply)["quoted_message_found"] is True
    assert _metadata(reply)["mentions_processed"] == 2
    assert stored[2].reply_to == "3EB0UNKNOWN0000"
    assert stored[2].message_id == serialized.message_id
    # An unknown quoted id is not an error; WUTS reports it not found (§4.4).
    assert _metadata(serialized)["quoted_message_found"] is False


@pytest.mark.parametrize(
    ("image", "data", "mimetype"),
    [
        (MEDIA / "tiny.jpg", JPEG, "image/jpeg"),  # a path
        (PNG, PNG, "image/png"),  # bytes
    ],
)
async def test_uploaded_images_arrive_with_the_same_bytes(
    sandbox: tuple[Sandbox, str], image: Path | bytes, data: bytes, mimetype: str
) -> None:
    box, base_url = sandbox
    async with wamsg.Client("wuts", **box.credentials("wuts", base_url)) as client:
        result = await client.send_image(
            "+5511999990000",
            image,
            caption="a tiny *image*",
            mentions=["+5511988888888"],
            reply_to="3EB0XXXX1234ABCD",
        )
    [stored] = box.outbox.find(provider="wuts")
    assert stored.kind == "image"
    assert stored.image_bytes == data
    assert stored.image_url is None
    assert stored.mimetype == mimetype
    assert stored.caption == "a tiny *image*"
    assert stored.reply_to == "3EB0XXXX1234ABCD"
    assert stored.extra == {"mentions": ["5511988888888@s.whatsapp.net"], "view_once": False}
    assert stored.chat_id == PHONE_JID == result.chat_id
    assert stored.message_id == result.message_id
    metadata = _metadata(result)
    assert (metadata["image_size_bytes"], metadata["image_format"]) == (len(data), mimetype)


@pytest.mark.parametrize(
    ("url", "mimetype"),
    [
        ("https://cdn.example.com/promo/banner.png", "image/png"),
        # No type in the URL: WUTS downloads it and finds out (§4.3).
        ("https://cdn.example.com/render?id=42", None),
    ],
)
async def test_image_by_url_to_a_group(
    sandbox: tuple[Sandbox, str], url: str, mimetype: str | None
) -> None:
    box, base_url = sandbox
    async with wamsg.Client("wuts", **box.credentials("wuts", base_url)) as client:
        result = await client.send_image(GROUP, url, caption="*Black Friday*", view_once=True)
    [stored] = box.outbox.find(provider="wuts")
    assert stored.kind == "image"
    assert stored.image_url == url
    assert stored.image_bytes is None
    assert stored.mimetype == mimetype
    assert stored.caption == "*Black Friday*"
    assert stored.extra == {"view_once": True}
    assert stored.chat_id == GROUP == result.chat_id
    assert stored.message_id == result.message_id
    assert _metadata(result)["view_once_enabled"] is True


# --------------------------------------------------------------------------
# (b) what WUTS refuses, sent raw
# --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json(**fields: Any) -> bytes:
    return msgspec.json.encode(fields)


_NUMBER = "5511999990000"
_PNG_URI = "data:image/png;base64," + _b64(PNG)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/send/text", _json(text="hi"), "number"),
        ("/send/text", _json(number=_NUMBER), "text"),
        ("/send/text", _json(number=5511999990000, text="hi"), "number"),
        ("/send/text", _json(number="123456789", text="hi"), "number"),
        ("/send/text", _json(number="5511999990000@s.whatsapp.net", text="hi"), "number"),
        ("/send/text", _json(number="5511999990000@c.us", text="hi"), "number"),
        ("/send/text", _json(number="120363025246125486@newsletter", text="hi"), "number"),
        ("/send/text", _json(number=_NUMBER, text=""), "text"),
        ("/send/text", _json(number=_NUMBER, text="a" * 4097), "text"),
        ("/send/text", _json(number=_NUMBER, text="hi", mentioned=["5511988888888"]),
         "mentioned[0]"),
        ("/send/text", _json(number=_NUMBER, text="hi", quoted={"key": {}}), "quoted.key.id"),
        ("/send/text", _json(number=_NUMBER, text="hi", quoted={"key": {"id": " "}}),
         "quoted.key.id"),
        ("/send/image", _json(number=_NUMBER), "image"),
        ("/send/image", _json(number=_NUMBER, image=_PNG_URI, image_url="https://x.com/a.png"),
         "image"),
        ("/send/image", _json(number=_NUMBER, image="not base64!"), "image"),
        ("/send/image", _json(number=_NUMBER, image=""), "image"),
        ("/send/image", _json(number=_NUMBER, image=_b64(GIF)), "image"),
        ("/send/image", _json(number=_NUMBER, image=_b64(b"just some text")), "image"),
        ("/send/image", _json(number=_NUMBER, image="data:image/gif;base64," + _b64(GIF)),
         "image"),
        # The prefix says PNG, the bytes are a JPEG.
        ("/send/image", _json(number=_NUMBER, image="data:image/png;base64," + _b64(JPEG)),
         "image"),
        ("/send/image", _json(number=_NUMBER, image="data:image/png," + _b64(PNG)), "image"),
        ("/send/image", _json(number=_NUMBER, image=_PNG_URI, caption="c" * 1025), "caption"),
        ("/send/image", _json(number=_NUMBER, image_url="ftp://x.com/a.png"), "image_url"),
        ("/send/image", _json(number=_NUMBER, image_url="https://x.com/a.gif"), "image_url"),
        ("/send/image", _json(number=_NUMBER, image=_PNG_URI, viewOnce="yes"), "viewOnce"),
        ("/send/image", _json(image=_PNG_URI), "number"),
    ],
)  # fmt: skip
async def test_sandbox_refuses_invalid_sends(
    sandbox: tuple[Sandbox, str], path: str, body: bytes, field: str
) -> None:
    box, base_url = sandbox
    headers = {"Authorization": "Bearer sandbox-wuts-token", "Content-Type": "application/json"}
    url = f"{base_url}/wuts{path}"
    async with aiohttp.ClientSession() as http, http.post(url, headers=headers, data=body) as r:
        answer = await r.json()
    assert r.status == 400
    assert answer["success"] is False
    assert answer["error_code"] == "VALIDATION_ERROR"
    assert answer["error"] == "validation failed"
    assert answer["timestamp"].endswith("Z")
    assert [item["field"] for item in answer["validation"]] == [field]
    assert len(box.outbox) == 0


_TOKEN = "sandbox-wuts-token"


@pytest.mark.parametrize(
    ("method", "path", "headers", "query", "body", "status", "code"),
    [
        ("POST", "/send/text", {"Content-Type": "application/json"}, {},
         _json(number=_NUMBER, text="hi"), 401, "UNAUTHORIZED"),
        ("POST", "/send/text", {"Authorization": "Bearer wrong"}, {},
         _json(number=_NUMBER, text="hi"), 401, "UNAUTHORIZED"),
        ("POST", "/send/text", {"Authorization": f"Basic {_TOKEN}"}, {},
         _json(number=_NUMBER, text="hi"), 401, "UNAUTHORIZED"),
        ("POST", "/send/text", {"Authorization": "Bearer "}, {},
         _json(number=_NUMBER, text="hi"), 401, "UNAUTHORIZED"),
        # The token is read only from the header (§4.1).
        ("POST", "/send/text", {}, {"token": _TOKEN},
         _json(number=_NUMBER, text="hi"), 401, "UNAUTHORIZED"),
        ("POST", "/send/text", {"Authorization": f"Bearer {_TOKEN}"}, {},
         b"{not json", 400, "VALIDATION_ERROR"),
        ("POST", "/send/text", {"Authorization": f"Bearer {_TOKEN}"}, {},
         b"", 400, "VALIDATION_ERROR"),
        ("POST", "/send/video", {"Authorization": f"Bearer {_TOKEN}"}, {},
         b"{}", 404, "NOT_FOUND"),
        ("POST", "/v2/send/text", {"Authorization": f"Bearer {_TOKEN}"}, {},
         b"{}", 404, "NOT_FOUND"),
        ("GET", "/send/text", {"Authorization": f"Bearer {_TOKEN}"}, {},
         b"", 405, "METHOD_NOT_ALLOWED"),
    ],
)  # fmt: skip
async def test_sandbox_refuses_bad_requests(
    sandbox: tuple[Sandbox, str],
    method: str,
    path: str,
    headers: dict[str, str],
    query: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    box, base_url = sandbox
    url = f"{base_url}/wuts{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, params=query, data=body) as r,
    ):
        answer = await r.json()
    assert (r.status, answer["success"], answer["error_code"]) == (status, False, code)
    assert isinstance(answer["error"], str)
    assert answer["error"]
    if status == 405:
        assert r.headers["Allow"] == "POST"
    assert len(box.outbox) == 0


async def test_sandbox_refuses_an_image_over_16_mib(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    big = PNG + b"\0" * (16 * 1024 * 1024 + 1 - len(PNG))
    body = _json(number=_NUMBER, image="data:image/png;base64," + _b64(big))
    headers = {"Authorization": f"Bearer {_TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}/wuts/send/image", headers=headers, data=io.BytesIO(body)) as r,
    ):
        answer = await r.json()
    assert (r.status, answer["error_code"]) == (400, "VALIDATION_ERROR")
    assert answer["validation"][0]["field"] == "image"
    assert len(box.outbox) == 0


@pytest.mark.parametrize(
    "authorization", [f"Bearer {_TOKEN}", f"bearer {_TOKEN}", f"BEARER  {_TOKEN} ", _TOKEN]
)
async def test_bearer_scheme_any_case_and_bare_token_are_accepted(
    sandbox: tuple[Sandbox, str], authorization: str
) -> None:
    # "The scheme is matched case-insensitively, and a bare token is
    # accepted" (§4.1).
    box, base_url = sandbox
    body = _json(number="+55 11 99999-0000", text="hi", delay=2, typingDuration=3)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/wuts/send/text", headers={"Authorization": authorization}, data=body
        ) as r,
    ):
        answer = await r.json()
    assert (r.status, answer["success"], answer["status"]) == (200, True, "sent")
    [stored] = box.outbox.find(provider="wuts")
    assert (stored.chat_id, stored.message_id) == (PHONE_JID, answer["message_id"])


# --------------------------------------------------------------------------
# (c) credentials and device state through the client
# --------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", "Bearer sandbox-wuts-token-2"])
async def test_bad_token_is_an_authentication_error(
    sandbox: tuple[Sandbox, str], token: str
) -> None:
    box, base_url = sandbox
    settings = {**box.credentials("wuts", base_url), "token": token}
    async with wamsg.Client("wuts", **settings) as client:
        with pytest.raises(wamsg.AuthenticationError) as caught:
            await client.send_text("+5511999990000", "hi")
    assert caught.value.error_code == "UNAUTHORIZED"
    assert caught.value.status_code == 401
    assert len(box.outbox) == 0


async def test_device_not_ready_is_retryable_and_sends_nothing(
    sandbox: tuple[Sandbox, str],
) -> None:
    box, base_url = sandbox
    _gateway(box).device_ready = False
    async with wamsg.Client("wuts", **box.credentials("wuts", base_url)) as client:
        with pytest.raises(wamsg.ProviderUnavailable) as caught:
            await client.send_text("+5511999990000", "hi")
    assert caught.value.error_code == "DEVICE_NOT_READY"
    assert caught.value.outcome == wamsg.Outcome.NOT_SENT
    assert caught.value.retryable
    assert len(box.outbox) == 0


# --------------------------------------------------------------------------
# The pure core, no sockets
# --------------------------------------------------------------------------


def test_credentials_are_the_adapters_settings() -> None:
    gateway = WutsSandbox(Outbox(), token="t-1")
    assert gateway.credentials("http://h/wuts") == {"base_url": "http://h/wuts", "token": "t-1"}
    adapter = WutsAdapter(**gateway.credentials("http://h/wuts"))
    assert adapter.base_url == "http://h/wuts"


def test_ids_follow_the_seed_and_times_the_clock() -> None:
    def send(seed: int) -> dict[str, Any]:
        gateway = WutsSandbox(Outbox(), seed=seed, clock=lambda: 1781532201.0)
        request = HttpRequest(
            method="POST",
            url="/send/text",
            headers=(("Authorization", "Bearer sandbox-wuts-token"),),
            body=_json(number=_NUMBER, text="hi"),
        )
        answer = gateway.handle(request)
        assert answer.status == 200
        assert answer.header("content-type") == "application/json; charset=utf-8"
        decoded: dict[str, Any] = msgspec.json.decode(answer.body)
        return decoded

    first = send(7)
    assert first == send(7)
    assert first["message_id"] != send(8)["message_id"]
    assert first["timestamp"] == first["metadata"]["sent_at"] == "2026-06-15T14:03:21Z"


@pytest.mark.parametrize(
    ("status", "code"), [(429, "RATE_LIMITED"), (503, "SERVICE_UNAVAILABLE"), (418, "ERROR")]
)
def test_error_envelope_for_injected_faults(status: int, code: str) -> None:
    answer = WutsSandbox(Outbox(), clock=lambda: 0.0).error(status, "boom")
    assert answer.status == status
    assert msgspec.json.decode(answer.body) == {
        "success": False,
        "error": "boom",
        "error_code": code,
        "timestamp": "1970-01-01T00:00:00Z",
    }
