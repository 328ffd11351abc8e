"""Acme's own quirks, beyond the contract: a client sends through a mock transport."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

import wamsg
from wamsg import HttpRequest, HttpResponse
from wamsg.transports.mock import Handler

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_send_text_through_the_client(
    wamsg_mock_transport: Callable[[Handler], wamsg.MockTransport],
) -> None:
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
