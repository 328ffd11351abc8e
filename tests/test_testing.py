"""wamsg.testing: the sandbox in-process, with sockets and without, and its pytest fixtures."""

from __future__ import annotations

import pytest

import wamsg
import wamsg.testing
from wamsg.sandbox import Sandbox
from wamsg.testing import MEDIA as KIT_MEDIA
from wamsg.testing import SANDBOX_URL, sandbox_client, sandbox_transport

# The fixtures come from the pytest11 entry point of the installed wamsg.
pytestmark = pytest.mark.anyio

PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TINY_JPG = KIT_MEDIA / "tiny.jpg"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_socket_free_client_stores_the_same_bytes_on_any_backend(
    wamsg_sandbox: Sandbox, provider: str
) -> None:
    async with sandbox_client(provider, wamsg_sandbox) as client:
        text = await client.send_text("+5511999990000", "no sockets")
        image = await client.send_image(
            "+5511999990000", TINY_JPG if provider != "wawp" else "https://e.com/a.jpg"
        )
    text_msg, image_msg = wamsg_sandbox.outbox.find(provider=provider)
    assert (text_msg.text, text_msg.message_id) == ("no sockets", text.message_id)
    assert image_msg.message_id == image.message_id
    if provider == "wawp":
        assert image_msg.image_url == "https://e.com/a.jpg"
    else:
        assert image_msg.image_bytes == TINY_JPG.read_bytes()


async def test_wrong_credentials_are_refused_without_sockets(wamsg_sandbox: Sandbox) -> None:
    async with sandbox_client("wuts", wamsg_sandbox, token="wrong") as client:
        with pytest.raises(wamsg.AuthenticationError):
            await client.send_text("+5511999990000", "hi")
    assert len(wamsg_sandbox.outbox) == 0


async def test_transport_refuses_other_hosts_and_unknown_providers(
    wamsg_sandbox: Sandbox,
) -> None:
    async with wamsg.Client(
        "wawp",
        transport=sandbox_transport(wamsg_sandbox),
        instance_id="sandbox",
        access_token="sandbox-token",
        base_url="https://api.wawp.net",
    ) as client:
        with pytest.raises(wamsg.ConfigError, match=r"serves http://sandbox\.invalid"):
            await client.send_text("+5511999990000", "hi")
    async with wamsg.Client(
        "wuts",
        transport=sandbox_transport(wamsg_sandbox),
        token="t",
        base_url=f"{SANDBOX_URL}/nosuch",
    ) as client:
        with pytest.raises(wamsg.Rejected):
            await client.send_text("+5511999990000", "hi")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_served_fixture_and_context_manager(wamsg_sandbox_server: Sandbox) -> None:
    assert wamsg_sandbox_server.base_url is not None
    assert wamsg_sandbox_server.base_url.startswith("http://127.0.0.1:")
    async with wamsg.Client("waha", **wamsg_sandbox_server.credentials("waha")) as client:
        await client.send_text("+5511999990000", "served")
    async with wamsg.testing.sandbox(seed=3) as box:
        async with wamsg.Client("gowa", **box.credentials("gowa")) as client:
            await client.send_text("+5511999990000", "served too")
        assert box.outbox.find()[0].text == "served too"
    assert box.base_url is None


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_served_sandbox_under_trio_says_what_to_use_instead() -> None:
    with pytest.raises(wamsg.ConfigError, match="sandbox_client"):
        async with wamsg.testing.sandbox():
            pass  # pragma: no cover


async def test_transport_with_a_base_path_routes_only_below_it(wamsg_sandbox: Sandbox) -> None:
    transport = sandbox_transport(wamsg_sandbox, base_url="http://sandbox.invalid/gw")
    creds = wamsg_sandbox.credentials("wuts", "http://sandbox.invalid/gw")
    async with wamsg.Client("wuts", transport=transport, **creds) as client:
        await client.send_text("+5511999990000", "below the prefix")
    wrong = {**creds, "base_url": "http://sandbox.invalid/gwx/wuts"}
    async with wamsg.Client(
        "wuts", transport=sandbox_transport(wamsg_sandbox, base_url="http://sandbox.invalid/gw"),
        **wrong,
    ) as client:  # fmt: skip
        with pytest.raises(wamsg.Rejected):
            await client.send_text("+5511999990000", "outside the prefix")
    assert [m.text for m in wamsg_sandbox.outbox] == ["below the prefix"]
