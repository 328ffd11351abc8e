"""The WAHA adapter against the sandbox gateway over real HTTP on 127.0.0.1.

The sandbox answers like WAHA on the WEBJS engine (providers.md §2): 201 with
the whatsapp-web.js message, Nest error bodies, the AllExceptionsFilter 500.
These tests prove a message sent through the real transport arrives with the
same content and id, and that the sandbox refuses what WAHA refuses.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

import wamsg
from wamsg import HttpRequest, Image, Media, Text
from wamsg.providers.base import client_message_id
from wamsg.providers.waha import WahaAdapter
from wamsg.sandbox import Fault, Outbox, Sandbox, running_sandbox
from wamsg.sandbox.waha import WahaSandbox
from wamsg.testing import MEDIA as KIT_MEDIA

pytestmark = pytest.mark.anyio

MEDIA = KIT_MEDIA
JPEG = (MEDIA / "tiny.jpg").read_bytes()
PNG = (MEDIA / "tiny.png").read_bytes()
GIF = (MEDIA / "tiny.gif").read_bytes()
PHONE = "+55 11 99999-0000"
USER = "5511999990000@c.us"
GROUP = "120363025246125486@g.us"
REPLY_TO = "false_5511999990000@c.us_3EB0C767D26A1D5B5E4A"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- (a) every send the adapter makes, through wamsg.Client -----------------


async def test_text_with_reply_and_mentions_arrives(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("waha", **box.credentials("waha", base_url)) as client:
        result = await client.send_text(
            PHONE, "Olá @5511988887777 ✓", reply_to=REPLY_TO, mentions=["+55 11 98888-7777"]
        )
    [stored] = box.outbox.find(provider="waha")
    assert stored.kind == "text"
    assert stored.chat_id == USER
    assert stored.text == "Olá @5511988887777 ✓"
    assert stored.reply_to == REPLY_TO
    assert stored.extra == {"session": "default", "mentions": ["5511988887777@c.us"]}
    assert stored.message_id == result.message_id
    assert result.message_id is not None
    assert result.message_id.startswith(f"true_{USER}_3EB0")
    assert result.short_id is not None
    # 22 characters when the sandbox makes the id; 20 when the client sends
    # one derived from an idempotency key (client_message_id).
    assert re.fullmatch(r"3EB0[0-9A-F]{16}(?:[0-9A-F]{2})?", result.short_id)
    assert result.chat_id == USER
    assert result.status is wamsg.Status.QUEUED


async def test_text_to_a_group_arrives(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("waha", **box.credentials("waha", base_url)) as client:
        result = await client.send_text(GROUP, "Hello group")
    [stored] = box.outbox.find(provider="waha", chat_id=GROUP)
    assert (stored.text, stored.message_id) == ("Hello group", result.message_id)
    # WEBJS: a group send's id has no participant part (WAHA issue 1464).
    assert result.message_id == f"true_{GROUP}_{result.short_id}"


@pytest.mark.parametrize(
    ("to", "chat_id"),
    [(PHONE, USER), (GROUP, GROUP)],
)
async def test_image_by_url_arrives(sandbox: tuple[Sandbox, str], to: str, chat_id: str) -> None:
    box, base_url = sandbox
    async with wamsg.Client("waha", **box.credentials("waha", base_url)) as client:
        result = await client.send_image(
            to, "https://example.com/p/cat.png?v=2", caption="Look", reply_to=REPLY_TO
        )
    [stored] = box.outbox.find(provider="waha")
    assert stored.kind == "image"
    assert stored.chat_id == chat_id
    assert stored.image_url == "https://example.com/p/cat.png?v=2"
    assert stored.image_bytes is None
    assert stored.mimetype == "image/png"
    assert stored.caption == "Look"
    assert stored.reply_to == REPLY_TO
    assert stored.message_id == result.message_id
    assert result.chat_id == chat_id


@pytest.mark.parametrize(
    ("source", "to", "mimetype", "filename"),
    [
        ("path", PHONE, "image/jpeg", "tiny.jpg"),
        ("bytes", GROUP, "image/png", "chart.png"),
        ("path-png", GROUP, "image/png", "tiny.png"),
    ],
)
async def test_image_bytes_arrive_as_sent(
    sandbox: tuple[Sandbox, str], source: str, to: str, mimetype: str, filename: str
) -> None:
    box, base_url = sandbox
    data = JPEG if mimetype == "image/jpeg" else PNG
    image: Any = data if source == "bytes" else MEDIA / filename
    async with wamsg.Client("waha", **box.credentials("waha", base_url)) as client:
        result = await client.send_image(
            to,
            image,
            caption="@5511988887777 tiny",
            filename=filename if source == "bytes" else None,
            mentions=["+5511988887777"],
        )
    [stored] = box.outbox.find(provider="waha")
    assert stored.kind == "image"
    assert stored.image_bytes == data
    assert stored.image_url is None
    assert stored.mimetype == mimetype
    assert stored.filename == filename
    assert stored.caption == "@5511988887777 tiny"
    assert stored.extra["mentions"] == ["5511988887777@c.us"]
    assert stored.message_id == result.message_id


async def test_ids_are_repeatable_with_a_seed() -> None:
    # Images carry no client id (§2.3), so the sandbox makes theirs from the
    # seed; a text's id comes from its idempotency key.
    ids = []
    for _ in range(2):
        async with (
            running_sandbox(seed=7) as (box, base_url),
            wamsg.Client("waha", **box.credentials("waha", base_url)) as client,
        ):
            image = await client.send_image(PHONE, "https://example.com/a.jpg")
            text = await client.send(Text(to=PHONE, text="hi", idempotency_key="k"))
            ids.append((image.message_id, text.message_id))
    assert ids[0] == ids[1]
    assert ids[0][1] == f"true_{USER}_{client_message_id('k')}"


# --- (b) what WAHA refuses, sent raw ---------------------------------------


def _text(**fields: Any) -> dict[str, Any]:
    return {"session": "default", "chatId": USER, "text": "hi", **fields}


def _image(file: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body = {"session": "default", "chatId": USER, "file": file, **fields}
    return {k: v for k, v in body.items() if v is not None}


def _jpeg_file(**fields: Any) -> dict[str, Any]:
    return {"mimetype": "image/jpeg", "filename": "a.jpg", "data": _b64(JPEG), **fields}


#: Stands for a JPEG one byte over 16 MiB, built only when its test runs.
BIG_JPEG = "big-jpeg"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        # class-validator (Nest's 400, §2.6)
        ("/api/sendText", {"session": "default", "text": "hi"}, 400, "chatId must be a string"),
        ("/api/sendText", _text(chatId=""), 400, "chatId should not be empty"),
        ("/api/sendText", _text(chatId=5511999990000), 400, "chatId must be a string"),
        ("/api/sendText", {"chatId": USER}, 400, "text must be a string"),
        ("/api/sendText", _text(text="   "), 400, "text should not be empty"),
        ("/api/sendText", _text(reply_to=7), 400, "reply_to must be a string"),
        ("/api/sendText", _text(mentions="5511988887777@c.us"), 400, "mentions must be an array"),
        ("/api/sendText", _text(mentions=[1]), 400, "each value in mentions must be a string"),
        ("/api/sendText", _text(linkPreview="yes"), 400, "linkPreview must be a boolean value"),
        ("/api/sendImage", _image(), 400, "file must be an object"),
        ("/api/sendImage", _image({"mimetype": "image/jpeg"}), 400,
         'file must contain either "data" or "url"'),
        ("/api/sendImage", _image(_jpeg_file(url="https://x.example/a.jpg")), 400,
         'file must contain either "data" or "url"'),
        ("/api/sendImage", _image({"url": "https://x.example/a.jpg"}), 400,
         "file.mimetype must be a string"),
        ("/api/sendImage", _image({"mimetype": "image/jpeg", "url": "ftp://x.example/a.jpg"}),
         400, "file.url must be a URL address"),
        # plain base64 only, no data: URI (§2.3)
        ("/api/sendImage", _image(_jpeg_file(data=f"data:image/jpeg;base64,{_b64(JPEG)}")), 400,
         "file.data must be base64 encoded"),
        ("/api/sendImage", _image(_jpeg_file(), caption=["x"]), 400, "caption must be a string"),
        # JPEG and PNG only (Capabilities.image_types, §2.3)
        ("/api/sendImage", _image({"mimetype": "image/gif", "url": "https://x.example/a.gif"}),
         400, "file.mimetype must be one of the following values: image/jpeg, image/png"),
        ("/api/sendImage", _image(_jpeg_file(mimetype="image/gif", data=_b64(GIF))), 400,
         "file.mimetype must be one of the following values"),
        # the bytes must be the image they claim to be
        ("/api/sendImage", _image(_jpeg_file(data=_b64(PNG))), 400,
         "file.data is not image/jpeg (its bytes look like image/png)"),
        ("/api/sendImage", _image(_jpeg_file(data=_b64(b"hello world"))), 400,
         "its bytes look like no image"),
        # WhatsApp's 16 MiB image limit (Capabilities.max_media_bytes)
        ("/api/sendImage", BIG_JPEG, 413,
         "request entity too large"),
        # the session must exist (§2.6)
        ("/api/sendText", _text(session="sales"), 404,
         "We didn't find a session with name 'sales'."),
        # the engine refuses what is no chat id (§2.4): AllExceptionsFilter 500
        ("/api/sendText", _text(chatId="5511999990000@s.whatsapp.net"), 500,
         "wid error: invalid wid 5511999990000@s.whatsapp.net"),
        ("/api/sendText", _text(chatId="+5511999990000"), 500, "invalid wid +5511999990000@c.us"),
        ("/api/sendText", _text(chatId="12345@c.us"), 500, "invalid wid 12345@c.us"),
        ("/api/sendText", _text(mentions=["+5511988887777"]), 500, "invalid wid +5511988887777"),
        ("/api/sendImage", _image(_jpeg_file(), chatId="abc@g.us"), 500, "invalid wid abc@g.us"),
        # Nest's own 404 for unknown routes, and no 405 (§2.6)
        ("/api/sendVideo", _text(), 404, "Cannot POST /api/sendVideo"),
        ("/api/api/sendText", _text(), 404, "Cannot POST /api/api/sendText"),
    ],
)  # fmt: skip
async def test_sandbox_refuses_what_waha_refuses(
    sandbox: tuple[Sandbox, str], path: str, body: Any, status: int, message: str
) -> None:
    box, base_url = sandbox
    if body == BIG_JPEG:
        body = _image(_jpeg_file(data=_b64(JPEG[:4] + bytes(16 * 1024 * 1024 + 1))))
    creds = box.credentials("waha", base_url)
    headers = {"X-Api-Key": creds["api_key"], "Content-Type": "application/json"}
    data = io.BytesIO(json.dumps(body).encode())
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{creds['base_url']}{path}", data=data, headers=headers) as r,
    ):
        answer = await r.json()
    assert r.status == status
    if status == 500:
        assert message in answer["exception"]["message"]
        # AllExceptionsFilter echoes the request (§2.6).
        assert answer["request"]["body"] == body
        assert answer["version"]["engine"] == "WEBJS"
    else:
        assert answer["statusCode"] == status
        assert answer["error"]
        shown = answer["message"]
        assert any(message in m for m in (shown if isinstance(shown, list) else [shown]))
    assert len(box.outbox) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"not json", "application/json", "Unexpected token 'n', \"not json\" is not valid JSON"),
        (b'{"chatId": ', "application/json", "Unexpected end of JSON input"),
        # body-parser reads only JSON: the DTO then sees no fields
        (json.dumps(_text()).encode(), "text/plain", "chatId must be a string"),
    ],
)
async def test_sandbox_refuses_bodies_nest_cannot_read(
    sandbox: tuple[Sandbox, str], body: bytes, content_type: str, message: str
) -> None:
    box, base_url = sandbox
    creds = box.credentials("waha", base_url)
    headers = {"X-Api-Key": creds["api_key"], "Content-Type": content_type}
    url = f"{creds['base_url']}/api/sendText"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        answer = await r.json()
    assert (r.status, answer["statusCode"], answer["error"]) == (400, 400, "Bad Request")
    shown = answer["message"]
    assert message in (shown if isinstance(shown, str) else shown[0])
    assert len(box.outbox) == 0


async def test_wrong_method_is_nests_404(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    creds = box.credentials("waha", base_url)
    url = f"{creds['base_url']}/api/sendImage"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        answer = await r.json()
    assert (r.status, answer) == (
        404,
        {"message": "Cannot GET /api/sendImage", "error": "Not Found", "statusCode": 404},
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "wrong"}, {"Authorization": "Bearer sandbox-key"}],
)
async def test_raw_auth_errors_are_wahas_401(
    sandbox: tuple[Sandbox, str], headers: dict[str, str]
) -> None:
    box, base_url = sandbox
    url = f"{box.credentials('waha', base_url)['base_url']}/api/sendText"
    async with aiohttp.ClientSession() as http, http.post(url, json=_text(), headers=headers) as r:
        assert r.status == 401
        assert await r.json() == {"message": "Unauthorized", "statusCode": 401}
    assert len(box.outbox) == 0


async def test_key_in_the_query_and_201(sandbox: tuple[Sandbox, str]) -> None:
    # Recent WAHA also takes ?x-api-key= (§2.1, W5); sends answer 201 (§2.2).
    box, base_url = sandbox
    creds = box.credentials("waha", base_url)
    url = f"{creds['base_url']}/api/sendText"
    params = {"x-api-key": creds["api_key"]}
    async with aiohttp.ClientSession() as http, http.post(url, json=_text(), params=params) as r:
        answer = await r.json()
    assert r.status == 201
    [stored] = box.outbox.find(provider="waha")
    assert answer["id"]["_serialized"] == stored.message_id
    assert (answer["type"], answer["body"], answer["to"]) == ("chat", "hi", USER)


# --- (c) credentials through the client ------------------------------------


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"api_key": "wrong"}, wamsg.AuthenticationError, None),
        ({"api_key": None}, wamsg.AuthenticationError, None),
        ({"session": "sales"}, wamsg.ProviderConfigError, "session_not_found"),
    ],
)
async def test_sandbox_refuses_bad_credentials(
    sandbox: tuple[Sandbox, str],
    change: dict[str, Any],
    error: type[wamsg.ProviderError],
    code: str | None,
) -> None:
    box, base_url = sandbox
    settings = {**box.credentials("waha", base_url), **change}
    async with wamsg.Client("waha", **settings) as client:
        with pytest.raises(error) as caught:
            await client.send_text(PHONE, "hi")
    assert caught.value.error_code == code
    assert caught.value.outcome is wamsg.Outcome.REJECTED
    assert len(box.outbox) == 0


async def test_base_url_ending_in_api_is_a_config_error(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    settings = box.credentials("waha", base_url)
    settings["base_url"] += "/api"
    async with wamsg.Client("waha", **settings) as client:
        with pytest.raises(wamsg.ProviderConfigError) as caught:
            await client.send_text(PHONE, "hi")
    assert caught.value.error_code == "route_not_found"


# --- the pure handler, no sockets ------------------------------------------


def _below_prefix(request: HttpRequest) -> HttpRequest:
    """What the server shell hands the handler: the path only, body as bytes."""
    assert isinstance(request.body, bytes)
    return HttpRequest(
        method=request.method,
        url=urlsplit(request.url).path,
        query=request.query,
        headers=request.headers,
        body=request.body,
    )


def test_credentials_are_exactly_the_adapters_settings() -> None:
    gateway = WahaSandbox(Outbox())
    assert gateway.credentials("http://127.0.0.1:1/waha") == {
        "base_url": "http://127.0.0.1:1/waha",
        "api_key": "sandbox-key",
        "session": "default",
    }
    # A server without WAHA_API_KEY: the client sends no key at all (§2.1).
    keyless = WahaSandbox(Outbox(), api_key=None, session="sales")
    creds = keyless.credentials("http://h")
    assert creds == {"base_url": "http://h", "session": "sales"}
    adapter = WahaAdapter(**creds)
    request = adapter.encode(Text(to=PHONE, text="hi"))
    response = keyless.handle(_below_prefix(request))
    assert response.status == 201
    [stored] = keyless.outbox
    assert adapter.decode(response).message_id == stored.message_id
    assert stored.extra == {"session": "sales"}


def test_session_defaults_to_default_and_client_ids_are_kept() -> None:
    # base.dto.ts: session = "default" when left out (§2.1); `id` is the
    # pre-generated message id (§2.2).
    gateway = WahaSandbox(Outbox(), seed=3, clock=lambda: 1759108866.5)
    body = json.dumps({"chatId": "5511999990000", "text": "hi", "id": "BBBBBBBBBBBBBBBBB"})
    response = gateway.handle(
        HttpRequest(
            method="POST",
            url="/api/sendtext/",
            headers=(("x-api-key", "sandbox-key"), ("content-type", "application/json")),
            body=body.encode(),
        )
    )
    assert response.status == 201
    answer = json.loads(response.body)
    assert answer["id"] == {
        "fromMe": True,
        "remote": USER,
        "id": "BBBBBBBBBBBBBBBBB",
        "_serialized": f"true_{USER}_BBBBBBBBBBBBBBBBB",
    }
    assert answer["timestamp"] == 1759108866
    result = WahaAdapter(base_url="http://h", api_key="k").decode(response)
    assert result.message_id == gateway.outbox.find()[0].message_id


def test_deprecated_get_send_text() -> None:
    gateway = WahaSandbox(Outbox())
    query = (("phone", "5511999990000"), ("text", "hi"), ("session", "default"))
    response = gateway.handle(
        HttpRequest(
            method="GET",
            url="/api/sendText",
            query=(*query, ("x-api-key", "sandbox-key")),
        )
    )
    assert response.status == 200
    [stored] = gateway.outbox
    assert (stored.chat_id, stored.text) == (USER, "hi")
    missing = gateway.handle(
        HttpRequest(method="GET", url="/api/sendText", query=(("x-api-key", "sandbox-key"),))
    )
    assert json.loads(missing.body)["message"] == [
        "phone must be a string",
        "text must be a string",
    ]


def test_url_image_request_decodes_to_the_stored_id() -> None:
    gateway = WahaSandbox(Outbox(), seed=1)
    adapter = WahaAdapter(**gateway.credentials("http://h"))
    message = Image(to=GROUP, image=Media.coerce("https://example.com/a.jpg"), caption="hi")
    response = gateway.handle(_below_prefix(adapter.encode(message)))
    assert response.status == 201
    answer = json.loads(response.body)
    assert (answer["type"], answer["hasMedia"], answer["body"]) == ("image", True, "hi")
    assert answer["author"] == answer["from"]
    assert adapter.decode(response).message_id == gateway.outbox.find()[0].message_id


def test_error_envelopes() -> None:
    gateway = WahaSandbox(Outbox(), clock=lambda: 0.0)
    assert json.loads(gateway.error(503, "down").body) == {
        "message": "down",
        "error": "Service Unavailable",
        "statusCode": 503,
    }
    crash = json.loads(gateway.error(500, "boom").body)
    assert crash["statusCode"] == 500
    assert crash["exception"]["message"] == "boom"
    assert crash["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert gateway.auth_error().status == 401


# --- a message is known by (session, chat, id) ------------------------------


def _post_text(gateway: WahaSandbox, **fields: Any) -> Any:
    """One raw sendText to the pure handler; the 201 answer's JSON."""
    body = {"session": gateway.session, "chatId": USER, "text": "hi", **fields}
    response = gateway.handle(
        HttpRequest(
            method="POST",
            url="/api/sendText",
            headers=(("X-Api-Key", "sandbox-key"), ("Content-Type", "application/json")),
            body=json.dumps(body).encode(),
        )
    )
    assert response.status == 201, response.body
    return json.loads(response.body)


def test_the_same_id_to_the_same_chat_is_one_message() -> None:
    gateway = WahaSandbox(Outbox(), seed=1)
    first = _post_text(gateway, id="3EB0AAAABBBBCCCCDDDD", text="first")
    again = _post_text(gateway, id="3EB0AAAABBBBCCCCDDDD", text="second")
    [stored] = gateway.outbox
    assert stored.text == "first"
    assert stored.message_id == f"true_{USER}_3EB0AAAABBBBCCCCDDDD"
    # The re-send is answered with the first message, as it was.
    assert again == first
    assert again["id"]["_serialized"] == stored.message_id
    assert again["body"] == "first"


def test_the_same_id_to_other_chats_or_sessions_is_another_message() -> None:
    outbox = Outbox()
    gateway = WahaSandbox(outbox, seed=1)
    to_user = _post_text(gateway, id="3EB0SAME")
    to_group = _post_text(gateway, id="3EB0SAME", chatId=GROUP)
    # Another session (another WhatsApp account) on the same outbox.
    other = WahaSandbox(outbox, seed=1, session="sales")
    from_sales = _post_text(other, id="3EB0SAME")
    assert [m.chat_id for m in outbox] == [USER, GROUP, USER]
    assert [m.extra["session"] for m in outbox] == ["default", "default", "sales"]
    assert to_user["id"]["_serialized"] == f"true_{USER}_3EB0SAME"
    assert to_group["id"]["_serialized"] == f"true_{GROUP}_3EB0SAME"
    assert from_sales["id"]["_serialized"] == to_user["id"]["_serialized"]


def test_sends_without_an_id_are_never_merged() -> None:
    gateway = WahaSandbox(Outbox(), seed=1)
    first, second = _post_text(gateway), _post_text(gateway)
    assert first["id"]["id"] != second["id"]["id"]
    assert len(gateway.outbox) == 2


def test_the_lookup_is_bounded_by_the_outbox() -> None:
    # Only stored messages are looked up: once the outbox has dropped the
    # message (or been cleared), the sandbox has forgotten it.
    gateway = WahaSandbox(Outbox(max_messages=2), seed=1)
    _post_text(gateway, id="3EB0OLD")
    _post_text(gateway, id="3EB0OLD")
    assert len(gateway.outbox) == 1
    _post_text(gateway, id="3EB0B")
    _post_text(gateway, id="3EB0C")  # drops 3EB0OLD
    _post_text(gateway, id="3EB0OLD")
    assert [m.message_id.rsplit("_", 1)[1] for m in gateway.outbox] == ["3EB0C", "3EB0OLD"]
    gateway.outbox.clear()
    _post_text(gateway, id="3EB0C")
    assert len(gateway.outbox) == 1


def _slow_clock() -> float:
    # store() reads the clock between the lookup and the append: a slow
    # clock widens the window two unlocked retries would both pass through.
    time.sleep(0.002)
    return 1759108866.0


def test_concurrent_resends_store_one_message() -> None:
    gateway = WahaSandbox(Outbox(), seed=1, clock=_slow_clock)
    start = threading.Barrier(16)

    def send(n: int) -> Any:
        start.wait()
        return _post_text(gateway, id="3EB0RACE", text=f"try {n}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, range(16)))
    [stored] = gateway.outbox
    assert {a["id"]["_serialized"] for a in answers} == {stored.message_id}
    assert {a["body"] for a in answers} == {stored.text}


async def test_a_resent_key_over_http_is_one_message() -> None:
    async with running_sandbox(seed=1) as (sandbox, base_url):
        creds = sandbox.credentials("waha", base_url)
        message = Text(to=PHONE, text="order 42 shipped", idempotency_key="k")
        async with wamsg.Client("waha", **creds) as client:
            first = await client.send(message)
            # The client may answer this one from its own idempotency store.
            second = await client.send(message)
        # Retries from other processes: other clients (their own stores),
        # the same key; these reach the gateway.
        results = [first, second]
        for _ in range(2):
            async with wamsg.Client("waha", **creds) as other:
                results.append(await other.send(message))
        [stored] = sandbox.outbox.find(provider="waha")
        assert stored.text == "order 42 shipped"
        expected = f"true_{USER}_{client_message_id('k')}"
        assert stored.message_id == expected
        assert {r.message_id for r in results} == {expected}
        assert {r.short_id for r in results} == {client_message_id("k")}
        # The sandbox's request log: every send answered 201, one stored.
        waha = [r for r in sandbox.requests if r.provider == "waha"]
        assert len(waha) >= 3
        assert {r.status for r in waha} == {201}
        assert [r.stored for r in waha].count(True) == 1


async def test_a_send_whose_answer_was_lost_can_be_retried_safely() -> None:
    # The gateway stores the message but the connection drops before the
    # answer (providers.md §5 note 1): the client cannot know. Sending again
    # with the same key finds the message instead of sending a second one.
    async with running_sandbox(seed=1) as (sandbox, base_url):
        sandbox.add_fault(Fault(kind="drop", provider="waha", times=1))
        creds = sandbox.credentials("waha", base_url)
        message = Text(to=PHONE, text="pay 10", idempotency_key="payment-7")
        async with wamsg.Client("waha", **creds) as client:
            with pytest.raises(wamsg.TransportError) as lost:
                await client.send(message)
        assert lost.value.outcome is wamsg.Outcome.UNKNOWN
        # The retry from a fresh client (a restarted process): the client's
        # own store would refuse to resend an unknown outcome.
        async with wamsg.Client("waha", **creds) as client:
            result = await client.send(message)
        [stored] = sandbox.outbox.find(provider="waha")
        assert result.message_id == stored.message_id
        assert result.short_id == client_message_id("payment-7")
