"""The Wawp adapter against the sandbox gateway over real HTTP on 127.0.0.1.

The sandbox decodes with the adapter's wire structs and enforces what Wawp
documents; these tests prove a message sent through the real transport
arrives with the same content, and that the sandbox refuses what Wawp refuses.
"""

from __future__ import annotations

import aiohttp
import pytest

import wamsg
from wamsg.sandbox import Sandbox

pytestmark = pytest.mark.anyio


async def test_text_and_image_arrive_in_the_outbox(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("wawp", **box.credentials("wawp", base_url)) as client:
        text = await client.send_text("+55 (11) 99999-0000", "Olá, mundo ✓", reply_to="false_x")
        image = await client.send_image(
            "120363025246125486@g.us", "https://example.com/p/cat.jpeg", caption="Look"
        )
    stored = box.outbox.find(provider="wawp")
    assert [m.kind for m in stored] == ["text", "image"]
    assert stored[0].chat_id == "5511999990000@c.us"
    assert stored[0].text == "Olá, mundo ✓"
    assert stored[0].reply_to == "false_x"
    assert stored[0].message_id == text.message_id
    assert stored[1].chat_id == "120363025246125486@g.us"
    assert stored[1].image_url == "https://example.com/p/cat.jpeg"
    assert stored[1].mimetype == "image/jpeg"
    assert stored[1].caption == "Look"
    assert stored[1].message_id == image.message_id
    assert image.chat_id == "120363025246125486@g.us"


async def test_json_api_lists_and_clears(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("wawp", **box.credentials("wawp", base_url)) as client:
        await client.send_text("+5511999990000", "one")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/_sandbox/messages", params={"provider": "wawp"}) as r:
            listed = (await r.json())["messages"]
        assert [m["text"] for m in listed] == ["one"]
        async with http.delete(f"{base_url}/_sandbox/messages") as r:
            assert r.status == 204
    assert len(box.outbox) == 0


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"access_token": "wrong"}, wamsg.AuthenticationError, "invalid_access_token"),
        ({"instance_id": "other"}, wamsg.Rejected, "invalid_instance"),
    ],
)
async def test_sandbox_refuses_bad_credentials(
    sandbox: tuple[Sandbox, str],
    change: dict[str, str],
    error: type[wamsg.ProviderError],
    code: str,
) -> None:
    box, base_url = sandbox
    settings = {**box.credentials("wawp", base_url), **change}
    async with wamsg.Client("wawp", **settings) as client:
        with pytest.raises(error) as caught:
            await client.send_text("+5511999990000", "hi")
    assert caught.value.error_code == code
    assert len(box.outbox) == 0


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v2/send/text", b'{"message":"hi"}', 400, "rest_missing_callback_param"),
        ("/v2/send/text", b'{"chatId":"5511999990000@s.whatsapp.net","message":"hi"}', 400,
         "invalid_number"),
        ("/v2/send/text", b'{"chatId":"5511999990000@c.us","message":"' + b"a" * 4097 + b'"}',
         400, "message_too_long"),
        ("/v2/send/text", b"not json", 400, "rest_invalid_json"),
        ("/v2/send/image", b'{"chatId":"5511999990000@c.us","file[url]":"https://x/a.gif",'
         b'"file[filename]":"a.gif","file[mimetype]":"image/gif","caption":""}', 400,
         "invalid_mimetype"),
        ("/v2/send/video", b"{}", 404, "rest_no_route"),
        ("/wp-json/x/v2/send/text", b"{}", 404, "rest_no_route"),
    ],
)  # fmt: skip
async def test_sandbox_refuses_what_wawp_refuses(
    sandbox: tuple[Sandbox, str], path: str, body: bytes, status: int, code: str
) -> None:
    box, base_url = sandbox
    creds = box.credentials("wawp", base_url)
    query = {"instance_id": creds["instance_id"], "access_token": creds["access_token"]}
    url = f"{base_url}/wawp{path}"
    async with aiohttp.ClientSession() as http, http.post(url, params=query, data=body) as r:
        answer = await r.json()
        assert (r.status, answer["code"]) == (status, code)
    assert len(box.outbox) == 0
