"""Client.fetch_media and the adapters' media_request: what is asked of whom, before any I/O.

The sandbox round trip (real HTTP, credentials checked) is in
tests/test_webhooks_e2e.py; these tests pin the requests and the refusals.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

import wamsg
from wamsg import HttpRequest, HttpResponse, InvalidMessage, MockTransport, ProviderError
from wamsg.models import InboundMessage, MediaRef

pytestmark = pytest.mark.anyio

TOKEN = "tok-SeCrEt-31"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

SETTINGS: dict[str, dict[str, Any]] = {
    "gowa": {"base_url": "https://gowa.example/app", "username": "u", "password": TOKEN},
    "waha": {"base_url": "https://waha.example", "api_key": TOKEN},
    "wawp": {"instance_id": "inst", "access_token": TOKEN},
    "wuts": {"token": TOKEN},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def inbound(provider: str, **media: Any) -> InboundMessage:
    return InboundMessage(
        message_id="false_5511977776666@c.us_3A11" if provider in ("waha", "wawp") else "3A11",
        chat_id="5511977776666@c.us",
        sender="5511977776666@c.us",
        kind="image",
        media=MediaRef(**media),
    )


REFS = {
    "gowa": {"fetch": "gateway_auth", "path": "statics/media/1752404751-a.jpeg"},
    "waha": {"fetch": "gateway_auth", "url": "https://waha.example/api/files/x.jpeg"},
    "wawp": {"fetch": "gateway_auth", "url": "https://api.wawp.net/api/files/x.jpeg"},
    "wuts": {"fetch": "gateway_api"},
}
EXPECTED_URL = {
    "gowa": "https://gowa.example/app/statics/media/1752404751-a.jpeg",
    "waha": "https://waha.example/api/files/x.jpeg",
    "wawp": "https://api.wawp.net/api/files/x.jpeg",
    "wuts": "https://api.wuts.com.br/messages/3A11/media",
}


@pytest.mark.parametrize("provider", sorted(SETTINGS))
async def test_each_gateway_is_asked_with_its_own_credentials(provider: str) -> None:
    seen: list[HttpRequest] = []

    def answer(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(status=200, headers={"content-type": "image/png"}, body=PNG)

    async with wamsg.Client(provider, transport=MockTransport(answer), **SETTINGS[provider]) as c:
        assert await c.fetch_media(inbound(provider, **REFS[provider])) == PNG
    (request,) = seen
    assert (request.method, request.url, request.kind) == ("GET", EXPECTED_URL[provider], "media")
    assert request.body in (None, b"")
    # The credential is on the request, where the gateway reads it, as a Secret.
    headers = {k.lower(): v for k, v in request.revealed_headers().items()}
    query = request.revealed_query()
    carried = {
        "gowa": headers.get("authorization", ""),
        "waha": headers.get("x-api-key", ""),
        "wawp": query.get("access_token", ""),
        "wuts": headers.get("authorization", ""),
    }[provider]
    if provider == "gowa":
        carried = base64.b64decode(carried.removeprefix("Basic ")).decode()
    assert carried.endswith(TOKEN)
    assert TOKEN not in repr(request)


@pytest.mark.parametrize(
    ("provider", "ref", "reason"),
    [
        # A webhook names another host: the API key must not go there.
        ("waha", {"fetch": "gateway_auth", "url": "https://evil.example/api/files/x"}, "host"),
        ("waha", {"fetch": "gateway_auth", "url": "http://waha.example/api/files/x"}, "host"),
        ("wawp", {"fetch": "gateway_auth", "url": "https://api.wawp.net:8443/f"}, "host"),
        ("gowa", {"fetch": "gateway_auth", "path": "../../etc/passwd"}, "relative path"),
        ("gowa", {"fetch": "gateway_auth", "path": "https://evil.example/x"}, "relative path"),
        ("gowa", {"fetch": "unavailable", "url": "https://mmg.whatsapp.net/x"}, "unavailable"),
        ("waha", {"fetch": "unavailable"}, "unavailable"),
        ("wuts", {"fetch": "unavailable"}, "unavailable"),
    ],
)
async def test_refused_before_any_io(provider: str, ref: dict[str, Any], reason: str) -> None:
    seen: list[HttpRequest] = []
    transport = MockTransport(lambda r: seen.append(r) or HttpResponse(status=200))
    async with wamsg.Client(provider, transport=transport, **SETTINGS[provider]) as client:
        with pytest.raises(InvalidMessage, match=reason) as caught:
            await client.fetch_media(inbound(provider, **ref))
    assert seen == []
    assert "evil" not in str(caught.value)


async def test_a_message_without_media_is_refused() -> None:
    async with wamsg.Client("gowa", transport=MockTransport(lambda r: HttpResponse(status=200)),
                            **SETTINGS["gowa"]) as client:  # fmt: skip
        message = InboundMessage(message_id="3A", chat_id="c", sender="s", kind="text")
        with pytest.raises(InvalidMessage, match="no media"):
            await client.fetch_media(message)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (HttpResponse(status=404, body=b'{"message":"not found"}'), wamsg.Rejected),
        (HttpResponse(status=401, body=b"{}"), wamsg.AuthenticationError),
        # WUTS's expired CDN copy: a JSON answer is never the image.
        (
            HttpResponse(
                status=200,
                headers={"content-type": "application/json"},
                body=b'{"success":false,"status":"retry_requested"}',
            ),
            ProviderError,
        ),
        (
            HttpResponse(
                status=200, headers={"content-type": "image/png"}, body=PNG, truncated=True
            ),
            ProviderError,
        ),
    ],
)
async def test_refusals_are_typed_errors(answer: HttpResponse, error: type[Exception]) -> None:
    async with wamsg.Client("wuts", transport=MockTransport(lambda r: answer), token=TOKEN) as c:
        with pytest.raises(error) as caught:
            await c.fetch_media(inbound("wuts", **REFS["wuts"]))
    assert TOKEN not in str(caught.value)
