"""AiohttpTransport against real aiohttp.web servers on 127.0.0.1.

Each server here plays one network situation (a Wawp-like endpoint that
checks what it is sent, a gateway that hangs, one that drops the connection
after reading the request, a closed port) so that the outcome mapping is
proven on real sockets, not on mocks.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import wamsg
from wamsg.transports.aiohttp import AiohttpTransport, _map_error

pytestmark = pytest.mark.anyio

TOKEN = "SUPERSECRET-TOKEN-123"
INSTANCE = "123456789"
PHONE = "+55 11 99999-0000"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp is asyncio-only; trio is covered below


def wawp_client(base_url: str, **kwargs: Any) -> wamsg.Client:
    return wamsg.Client(
        "wawp", instance_id=INSTANCE, access_token=TOKEN, base_url=base_url, **kwargs
    )


WEBJS_ANSWER = {
    "id": {
        "fromMe": True,
        "remote": "5511999990000@c.us",
        "id": "3EB0AAAA",
        "_serialized": "true_5511999990000@c.us_3EB0AAAA",
    },
    "ack": 0,
    "timestamp": 1759108866,
}


async def test_text_send_checks_method_path_query_and_body(serve: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def wawp(request: web.Request) -> web.Response:
        # What Wawp v2 expects (providers.md §1.3-1.4): POST, query credentials, JSON.
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "content_type": request.content_type,
                "body": json.loads(body),
            }
        )
        return web.json_response(WEBJS_ANSWER)

    base = await serve(wawp)
    async with wawp_client(base) as client:
        result = await client.send_text(PHONE, "Hello", reply_to="false_1@c.us_X")
    assert seen == [
        {
            "method": "POST",
            "path": "/v2/send/text",
            "query": [("instance_id", INSTANCE), ("access_token", TOKEN)],
            "content_type": "application/json",
            "body": {
                "chatId": "5511999990000@c.us",
                "message": "Hello",
                "reply_to": "false_1@c.us_X",
            },
        }
    ]
    assert result.message_id == "true_5511999990000@c.us_3EB0AAAA"
    assert result.status is wamsg.Status.QUEUED
    assert result.attempts[0].status_code == 200


async def test_image_send_body(serve: Any) -> None:
    bodies: list[Any] = []

    async def wawp(request: web.Request) -> web.Response:
        assert request.path == "/v2/send/image"
        bodies.append(await request.json())
        return web.json_response(WEBJS_ANSWER)

    base = await serve(wawp)
    async with wawp_client(base) as client:
        await client.send_image(PHONE, "https://cdn.example.com/a/cat.PNG?sig=1", caption="Look")
    assert bodies == [
        {
            "chatId": "5511999990000@c.us",
            "file[url]": "https://cdn.example.com/a/cat.PNG?sig=1",
            "file[filename]": "cat.PNG",
            "file[mimetype]": "image/png",
            "caption": "Look",
        }
    ]


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "outcome"),
    [
        (400, {}, b"Bad Request", wamsg.Rejected, wamsg.Outcome.REJECTED),
        (401, {}, b'{"code":"invalid_access_token","message":"no"}', wamsg.AuthenticationError,
         wamsg.Outcome.REJECTED),
        (404, {}, b'{"code":"invalid_instance","message":"no"}', wamsg.Rejected,
         wamsg.Outcome.REJECTED),
        (429, {"Retry-After": "7"}, b"slow down", wamsg.RateLimited, wamsg.Outcome.NOT_SENT),
        (500, {}, b"<html><title>Oops</title></html>", wamsg.ProviderUnavailable,
         wamsg.Outcome.UNKNOWN),
        (502, {}, b'{"code":"wawp_upstream_error"}', wamsg.ProviderUnavailable,
         wamsg.Outcome.NOT_SENT),
    ],
)  # fmt: skip
async def test_error_statuses_over_real_http(
    serve: Any,
    status: int,
    headers: dict[str, str],
    body: bytes,
    error: type[wamsg.ProviderError],
    outcome: wamsg.Outcome,
) -> None:
    calls = 0

    async def failing(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await request.read()
        return web.Response(status=status, headers=headers, body=body)

    base = await serve(failing)
    async with wawp_client(base, retry=wamsg.RetryPolicy(wait=False)) as client:
        with pytest.raises(error) as caught:
            await client.send_text(PHONE, "Hello")
    assert caught.value.status_code == status
    assert caught.value.outcome is outcome
    if outcome is wamsg.Outcome.NOT_SENT:
        # Certainly not sent: tried again, up to the policy's attempts.
        assert calls == wamsg.RetryPolicy().attempts
        assert len(caught.value.attempts) == calls
    else:
        assert calls == 1, "a POST that may have gone out must never be sent again"
    if status == 429:
        assert caught.value.retry_after == 7.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_not_sent() -> None:
    async with wawp_client(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(wamsg.ConnectError) as caught:
            await client.send_text(PHONE, "Hello")
    err = caught.value
    assert err.outcome is wamsg.Outcome.NOT_SENT
    assert err.retryable
    assert err.provider == "wawp"
    assert TOKEN not in f"{err} {err!r}"


async def test_disconnect_after_request_is_unknown_and_not_retried(serve: Any) -> None:
    calls = 0

    async def drop(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        await request.read()  # the gateway has the whole message...
        assert request.transport is not None
        request.transport.close()  # ...and the answer never comes
        await asyncio.sleep(0.1)
        return web.Response()

    base = await serve(drop)
    async with wawp_client(base) as client:
        with pytest.raises(wamsg.Disconnected) as caught:
            await client.send_text(PHONE, "Hello")
    assert caught.value.outcome is wamsg.Outcome.UNKNOWN
    assert not caught.value.retryable
    assert calls == 1
    assert TOKEN not in f"{caught.value} {caught.value!r}"


@pytest.mark.parametrize("where", ["client deadline", "read timeout"])
async def test_slow_gateway_times_out_as_unknown(serve: Any, where: str) -> None:
    calls = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(2)
        return web.json_response(WEBJS_ANSWER)

    base = await serve(slow)
    kwargs = {"timeout": 0.2} if where == "client deadline" else {"read_timeout": 0.2}
    async with wawp_client(base, **kwargs) as client:
        with pytest.raises(wamsg.SendTimeout) as caught:
            await client.send_text(PHONE, "Hello")
    assert caught.value.outcome is wamsg.Outcome.UNKNOWN
    assert calls == 1
    assert TOKEN not in f"{caught.value} {caught.value!r}"


async def test_error_body_is_capped(serve: Any) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)  # chunked, no Content-Length
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 16384)
        return response

    base = await serve(huge)
    transport = AiohttpTransport(max_error_body=1000)
    async with wawp_client(base, transport=transport) as client:
        with pytest.raises(wamsg.ProviderUnavailable) as caught:
            await client.send_text(PHONE, "Hello")
    assert "(body truncated)" in str(caught.value)
    assert len(caught.value.body_excerpt) <= 300


async def test_redirect_is_not_followed(serve: Any) -> None:
    paths: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        paths.append(request.path)
        raise web.HTTPFound("/elsewhere")

    base = await serve(redirect)
    async with wawp_client(base) as client:
        with pytest.raises(wamsg.ProviderError) as caught:
            await client.send_text(PHONE, "Hello")
    assert caught.value.status_code == 302
    assert paths == ["/v2/send/text"]


async def test_injected_session_stays_open_owned_one_closes(serve: Any) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response(WEBJS_ANSWER)

    base = await serve(ok)
    async with aiohttp.ClientSession() as session:
        async with wawp_client(base, transport=AiohttpTransport(session)) as client:
            await client.send_text(PHONE, "Hello")
        assert not session.closed
    owned = AiohttpTransport()
    async with wawp_client(base, transport=owned) as client:
        await client.send_text(PHONE, "Hello")
        inner = owned._session
        assert inner is not None
    assert inner.closed
    with pytest.raises(wamsg.ConfigError):
        await client.send_text(PHONE, "Hello")


async def test_concurrent_sends_share_one_session(serve: Any) -> None:
    async def ok(request: web.Request) -> web.Response:
        await asyncio.sleep(0.01)
        return web.json_response(WEBJS_ANSWER)

    base = await serve(ok)
    transport = AiohttpTransport()
    async with wawp_client(base, transport=transport) as client:
        results = await asyncio.gather(*(client.send_text(PHONE, f"n{i}") for i in range(20)))
    assert len(results) == 20


def test_connect_timeout_text_never_leaks_the_token() -> None:
    # aiohttp puts the full URL, query included, in this message (client.py,
    # "Connection timeout to host {req.url}"); Wawp's query holds the token.
    exc = aiohttp.ConnectionTimeoutError(
        f"Connection timeout to host http://h/v2/send/text?instance_id=1&access_token={TOKEN}"
    )
    mapped = _map_error(exc)
    assert isinstance(mapped, wamsg.ConnectError)
    assert TOKEN not in f"{mapped} {mapped!r}"
    assert mapped.outcome is wamsg.Outcome.NOT_SENT


def test_aiohttp_transport_under_trio_says_what_to_use() -> None:
    import trio

    built_outside = AiohttpTransport()

    async def main() -> None:
        # Built inside trio: refused at once. Built before: refused at the first send.
        with pytest.raises(wamsg.ConfigError, match=r"asyncio only.*this is trio.*HttpxTransport"):
            AiohttpTransport()
        request = wamsg.HttpRequest(method="POST", url="http://127.0.0.1:9/")
        with pytest.raises(wamsg.ConfigError, match=r"asyncio only.*this is trio.*HttpxTransport"):
            await built_outside.send(request, timeouts=wamsg.Timeouts())

    trio.run(main)
