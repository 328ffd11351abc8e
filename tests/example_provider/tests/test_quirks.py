"""Acme's own quirks, beyond the contract: a client sends through a mock transport."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

import wamsg
from wamsg import HttpRequest, HttpResponse
from wamsg.transports.mock import Handler

pytestmark = pytest.mark.anyio

#: The wamsg_mock_transport fixture (from wamsg's pytest plugin) makes these.
MakeTransport = Callable[[Handler], wamsg.MockTransport]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_send_text_through_the_client(wamsg_mock_transport: MakeTransport) -> None:
    def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=202, body=b'{"id": "msg_9", "status": "queued"}')

    transport = wamsg_mock_transport(answer)
    async with wamsg.Client("acme", token="t-1", transport=transport) as client:
        result = await client.send_text("+5511999990000", "hi")
    assert result.message_id == "msg_9"
    assert result.status is wamsg.Status.QUEUED
    body = transport.requests[-1].body
    assert isinstance(body, bytes)
    assert msgspec.json.decode(body) == {"to": "5511999990000", "type": "text", "text": "hi"}


async def test_configured_by_a_dsn(wamsg_mock_transport: MakeTransport) -> None:
    def answer(request: HttpRequest) -> HttpResponse:
        assert request.revealed_headers()["Authorization"] == "Bearer t-2"
        return HttpResponse(status=202, body=b'{"id": "msg_10", "status": "sent"}')

    dsn = "acme+http://t-2@127.0.0.1:9000/acme"
    client = wamsg.Client.from_dsn(dsn, transport=wamsg_mock_transport(answer))
    async with client:
        result = await client.send_text("+5511999990000", "hi")
    assert result.status is wamsg.Status.SENT
    assert transport_url(client) == "http://127.0.0.1:9000/acme/v1/messages"
    assert "t-2" not in str(wamsg.ProviderConfig.from_dsn(dsn))


def transport_url(client: wamsg.Client) -> str:
    transport = client.transport
    assert isinstance(transport, wamsg.MockTransport)
    return transport.requests[-1].url
