"""The gowa adapter against the sandbox gateway over real HTTP on 127.0.0.1.

The sandbox answers like go-whatsapp-web-multidevice v9.2.0 (providers.md
§3): Fiber's Basic auth, the ``X-Device-Id`` device middleware, JSON
``/send/message``, multipart ``/send/image`` parsed for real, gowa's
validation and its ``{code, message, results}`` envelope. These tests prove
that what the client sends arrives unchanged, and that the sandbox refuses
what gowa refuses, with gowa's status and code.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
import pytest

import wamsg
from wamsg.http import HttpRequest, HttpResponse
from wamsg.providers.gowa import GowaAdapter
from wamsg.sandbox import Sandbox, running_sandbox
from wamsg.sandbox.gowa import GowaSandbox
from wamsg.sandbox.outbox import Outbox
from wamsg.testing import MEDIA as KIT_MEDIA

pytestmark = pytest.mark.anyio

MEDIA = KIT_MEDIA
JPEG = (MEDIA / "tiny.jpg").read_bytes()
PNG = (MEDIA / "tiny.png").read_bytes()
GIF = (MEDIA / "tiny.gif").read_bytes()
GROUP = "120363025246125486@g.us"
PHONE_JID = "5511999990000@s.whatsapp.net"
MESSAGE_ID = re.compile(r"3EB0[0-9A-F]{18}")


def _gateway(box: Sandbox) -> GowaSandbox:
    handler = box.handlers["gowa"]
    assert isinstance(handler, GowaSandbox)
    return handler


def _basic(gateway: GowaSandbox) -> dict[str, str]:
    assert gateway.basic_auth is not None
    token = base64.b64encode(":".join(gateway.basic_auth).encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --------------------------------------------------------------------------
# (a) every send the adapter can make arrives in the outbox
# --------------------------------------------------------------------------


async def test_credentials_are_the_adapter_settings(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    creds = box.credentials("gowa", base_url)
    assert creds == {
        "base_url": f"{base_url}/gowa",
        "device_id": "sandbox-device",
        "username": "sandbox",
        "password": "sandbox-pass",
    }
    GowaAdapter(**creds)  # every key is a GowaAdapter setting


async def test_texts_arrive_with_reply_and_mentions(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("gowa", **box.credentials("gowa", base_url)) as client:
        first = await client.send_text("+55 (11) 99999-0000", "Olá, mundo ✓\nline two")
        # A serialized WAHA-style id is cut to the bare id gowa quotes with.
        reply = await client.send_text(
            GROUP,
            "@5511988888888 see above",
            reply_to=f"true_{GROUP}_{first.message_id}",
            mentions=["+55 11 98888-8888"],
        )
    stored = box.outbox.find(provider="gowa")
    assert [m.kind for m in stored] == ["text", "text"]
    assert stored[0].chat_id == PHONE_JID
    assert stored[0].text == "Olá, mundo ✓\nline two"
    assert stored[0].reply_to is None
    assert stored[0].extra == {"device_id": "sandbox-device"}
    assert stored[1].chat_id == GROUP
    assert stored[1].reply_to == first.message_id
    assert stored[1].extra["mentions"] == ["5511988888888"]
    for result, message in zip((first, reply), stored, strict=True):
        assert MESSAGE_ID.fullmatch(result.message_id or "")
        assert message.message_id == result.message_id == result.short_id
        assert result.status == wamsg.Status.SENT
        assert result.timestamp is not None
    # The chat id is read back from gowa's status text (§3.5).
    assert (first.chat_id, reply.chat_id) == (PHONE_JID, GROUP)


async def test_images_by_url_and_upload_arrive_unchanged(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with wamsg.Client("gowa", **box.credentials("gowa", base_url)) as client:
        by_url = await client.send_image(
            GROUP, "https://example.com/p/cat.JPEG?size=large", caption="Look", view_once=True
        )
        by_path = await client.send_image(
            "+5511999990000", MEDIA / "tiny.jpg", caption="from a path", reply_to="3EB0AB12"
        )
        by_bytes = await client.send_image("+5511999990000", PNG, filename="shot")
        by_file = await client.send_image(GROUP, io.BytesIO(JPEG), filename="photo.jpeg")
    stored = box.outbox.find(provider="gowa")
    assert [m.message_id for m in stored] == [
        r.message_id for r in (by_url, by_path, by_bytes, by_file)
    ]
    url, path, data, file = stored
    assert (url.chat_id, url.image_url, url.image_bytes) == (
        GROUP,
        "https://example.com/p/cat.JPEG?size=large",
        None,
    )
    assert (url.mimetype, url.caption, url.extra["view_once"]) == ("image/jpeg", "Look", True)
    assert (path.image_bytes, path.mimetype, path.caption) == (JPEG, "image/jpeg", "from a path")
    assert path.reply_to == "3EB0AB12"
    assert (path.filename or "").endswith(".jpg")
    assert path.extra["view_once"] is False
    assert (data.image_bytes, data.mimetype, data.caption) == (PNG, "image/png", None)
    assert (data.filename or "").startswith("shot-")
    assert (file.chat_id, file.image_bytes, file.mimetype) == (GROUP, JPEG, "image/jpeg")
    # gowa resizes uploads unless told otherwise; the adapter does not tell it (§3.3).
    assert all(m.extra["compress"] is True for m in stored)


async def test_open_gateway_needs_no_credentials() -> None:
    custom = Sandbox(seed=2)
    custom.handlers["gowa"] = GowaSandbox(custom.outbox, basic_auth=None, seed=2)
    async with running_sandbox(sandbox=custom) as (box, base_url):
        creds = box.credentials("gowa", base_url)
        assert creds == {"base_url": f"{base_url}/gowa", "device_id": "sandbox-device"}
        async with wamsg.Client("gowa", **creds) as client:
            result = await client.send_text("+5511999990000", "no auth here")
    assert [m.message_id for m in box.outbox.find(provider="gowa")] == [result.message_id]


# --------------------------------------------------------------------------
# (b) what gowa refuses, sent raw
# --------------------------------------------------------------------------


def _json(document: Any) -> tuple[bytes, str]:
    return msgspec.json.encode(document), "application/json"


def _form(
    fields: list[tuple[str, str]], file: tuple[bytes, str, str] | None = None
) -> Callable[[], aiohttp.FormData]:
    def build() -> aiohttp.FormData:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in fields:
            form.add_field(name, value)
        if file is not None:
            data, filename, content_type = file
            # A file object: aiohttp refuses to send megabytes given as bytes.
            form.add_field("image", io.BytesIO(data), filename=filename, content_type=content_type)
        return form

    return build


TEXT = "/send/message"
IMAGE = "/send/image"
BIG_JPEG = JPEG[:3] + bytes(16 * 1024 * 1024)

BAD_REQUESTS: list[tuple[str, str, Any, int, str, str]] = [
    # /send/message: ValidateSendMessage (§3.2, G4)
    (TEXT, "no phone", _json({"message": "hi"}), 400, "VALIDATION_ERROR",
     "phone: cannot be blank."),
    (TEXT, "empty object", _json({}), 400, "VALIDATION_ERROR",
     "message: cannot be blank; phone: cannot be blank."),
    (TEXT, "null message", _json({"phone": PHONE_JID, "message": None}), 400,
     "VALIDATION_ERROR", "message: cannot be blank."),
    (TEXT, "local number", _json({"phone": "08123456789", "message": "hi"}), 400,
     "VALIDATION_ERROR", "international format"),
    (TEXT, "bad duration", _json({"phone": PHONE_JID, "message": "hi", "duration": 60}), 400,
     "VALIDATION_ERROR", "duration must be one of"),
    (TEXT, "local mention", _json({"phone": PHONE_JID, "message": "hi", "mentions": ["0812"]}),
     400, "VALIDATION_ERROR", "mention 0812: phone number must be in international format"),
    # Recipients (§3.4, G6)
    (TEXT, "not on WhatsApp", _json({"phone": "12ab@s.whatsapp.net", "message": "hi"}), 400,
     "INVALID_JID", "Phone 12ab@s.whatsapp.net is not on whatsapp"),
    (TEXT, "c.us server", _json({"phone": "5511999990000@c.us", "message": "hi"}), 500,
     "INTERNAL_SERVER_ERROR", "unknown server c.us"),
    (TEXT, "broadcast", _json({"phone": "status@broadcast", "message": "hi"}), 500,
     "INTERNAL_SERVER_ERROR", "unknown server broadcast"),
    # Fiber's BodyParser errors are panics: 500 (G3, G9)
    (TEXT, "not JSON", (b"not json", "application/json"), 500, "INTERNAL_SERVER_ERROR", ""),
    (TEXT, "empty JSON", (b"", "application/json"), 500, "INTERNAL_SERVER_ERROR",
     "unexpected end of JSON input"),
    (TEXT, "JSON array", _json([PHONE_JID]), 500, "INTERNAL_SERVER_ERROR",
     "cannot unmarshal array"),
    (TEXT, "number phone", _json({"phone": 5511999990000, "message": "hi"}), 500,
     "INTERNAL_SERVER_ERROR", "MessageRequest.phone of type string"),
    (TEXT, "plain text body", (b"hi", "text/plain"), 500, "INTERNAL_SERVER_ERROR",
     "Unprocessable Entity"),
    # /send/image: ValidateSendImage (§3.3, G4)
    (IMAGE, "no image", _form([("phone", PHONE_JID), ("caption", "x")]), 400,
     "VALIDATION_ERROR", "either Image or ImageURL must be provided"),
    (IMAGE, "image without phone", _form([], (JPEG, "a.jpg", "image/jpeg")), 400,
     "VALIDATION_ERROR", "phone: cannot be blank."),
    (IMAGE, "GIF upload", _form([("phone", PHONE_JID)], (GIF, "a.gif", "image/gif")), 400,
     "VALIDATION_ERROR", "your image is not allowed. please use jpg/jpeg/png"),
    (IMAGE, "part without type", _form([("phone", PHONE_JID)], (PNG, "a.png", "")), 400,
     "VALIDATION_ERROR", "please use jpg/jpeg/png"),
    (IMAGE, "GIF labelled PNG", _form([("phone", PHONE_JID)], (GIF, "a.png", "image/png")), 500,
     "INTERNAL_SERVER_ERROR", "failed to open image"),
    (IMAGE, "JPEG labelled PNG", _form([("phone", PHONE_JID)], (JPEG, "a.png", "image/png")),
     400, "VALIDATION_ERROR", "your image is image/jpeg, not the image/png"),
    (IMAGE, "over 16 MiB", _form([("phone", PHONE_JID)], (BIG_JPEG, "a.jpg", "image/jpeg")),
     400, "VALIDATION_ERROR", "max image upload is 17 MB"),
    (IMAGE, "relative URL", _form([("phone", PHONE_JID), ("image_url", "/a.jpg")]), 400,
     "VALIDATION_ERROR", "ImageURL must be a valid URL"),
    (IMAGE, "GIF URL", _form([("phone", PHONE_JID), ("image_url", "https://x.io/a.gif")]), 500,
     "INTERNAL_SERVER_ERROR", "failed to download image from URL"),
    (IMAGE, "bad bool", _form([("phone", PHONE_JID), ("image_url", "https://x.io/a.png"),
                               ("view_once", "yes")]), 500, "INTERNAL_SERVER_ERROR",
     'error converting value for "view_once"'),
    (IMAGE, "JSON bool as text", _json({"phone": PHONE_JID, "image_url": "https://x.io/a.png",
                                        "view_once": "true"}), 500, "INTERNAL_SERVER_ERROR",
     "ImageRequest.view_once of type bool"),
    (IMAGE, "bad group", _form([("phone", "abc@g.us"), ("image_url", "https://x.io/a.png")]),
     500, "INTERNAL_SERVER_ERROR", "that group does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "case", "body", "status", "code", "message"),
    BAD_REQUESTS,
    ids=[row[1] for row in BAD_REQUESTS],
)
async def test_sandbox_refuses_what_gowa_refuses(
    sandbox: tuple[Sandbox, str],
    path: str,
    case: str,
    body: Any,
    status: int,
    code: str,
    message: str,
) -> None:
    box, base_url = sandbox
    gateway = _gateway(box)
    headers = {"X-Device-Id": gateway.device_id, **_basic(gateway)}
    async with aiohttp.ClientSession() as http:
        if callable(body):
            data: Any = body()
        else:
            data, headers["Content-Type"] = body
        async with http.post(f"{base_url}/gowa{path}", data=data, headers=headers) as response:
            answer = await response.json()
            assert (response.status, answer["code"]) == (status, code)
            assert message in answer["message"]
            assert set(answer) == {"code", "message", "results"}
    assert len(box.outbox) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("POST", "/send/video", 404, "Cannot POST /send/video"),
        ("POST", "/api/sendText", 404, "Cannot POST /api/sendText"),
        ("GET", "/send/message", 405, "Method Not Allowed"),
    ],
)
async def test_unknown_routes_get_fibers_plain_answers(
    sandbox: tuple[Sandbox, str], method: str, path: str, status: int, text: str
) -> None:
    box, base_url = sandbox
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{base_url}/gowa{path}", headers=_basic(_gateway(box))) as response,
    ):
        assert (response.status, await response.text()) == (status, text)
        assert response.content_type == "text/plain"


async def test_unknown_device_is_gowas_device_not_found(sandbox: tuple[Sandbox, str]) -> None:
    box, base_url = sandbox
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/gowa/send/message",
            json={"phone": PHONE_JID, "message": "hi"},
            headers={"X-Device-Id": "phone-2", **_basic(_gateway(box))},
        ) as response,
    ):
        assert response.status == 404
        assert await response.json() == {
            "code": "DEVICE_NOT_FOUND",
            "message": "device not found; create a device first from /api/devices or provide "
            "a valid X-Device-Id",
            "results": {"device_id": "phone-2"},
        }
    settings = {**box.credentials("gowa", base_url), "device_id": "phone-2"}
    async with wamsg.Client("gowa", **settings) as client:
        with pytest.raises(wamsg.ProviderConfigError) as caught:
            await client.send_text("+5511999990000", "hi")
    assert caught.value.error_code == "DEVICE_NOT_FOUND"
    assert len(box.outbox) == 0


# --------------------------------------------------------------------------
# (c) credentials
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"password": "wrong"},
        {"username": "admin"},
        {"username": None, "password": None},
    ],
    ids=["wrong password", "wrong user", "no basic auth"],
)
async def test_bad_credentials_are_authentication_errors(
    sandbox: tuple[Sandbox, str], change: dict[str, Any]
) -> None:
    box, base_url = sandbox
    settings = {**box.credentials("gowa", base_url), **change}
    async with wamsg.Client("gowa", **settings) as client:
        with pytest.raises(wamsg.AuthenticationError) as caught:
            await client.send_text("+5511999990000", "hi")
    assert (caught.value.status_code, caught.value.error_code) == (401, None)
    assert caught.value.gateway_message == "Unauthorized"
    assert len(box.outbox) == 0


async def test_auth_comes_before_routing(sandbox: tuple[Sandbox, str]) -> None:
    _, base_url = sandbox
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/gowa/no/such/path") as response,
    ):
        assert (response.status, await response.text()) == (401, "Unauthorized")
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Restricted"'


# --------------------------------------------------------------------------
# The pure handler: gowa's rules with no sockets
# --------------------------------------------------------------------------


def _request(
    path: str,
    body: Any,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    query: tuple[tuple[str, str], ...] = (),
    content_type: str = "application/json",
) -> HttpRequest:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return HttpRequest(
        method="POST",
        url=path,
        query=query,
        headers=(("Content-Type", content_type), *headers),
        body=raw,
    )


def _answer(response: HttpResponse) -> dict[str, Any]:
    answer: dict[str, Any] = msgspec.json.decode(response.body)
    return answer


def test_several_devices_need_a_device_id() -> None:
    gateway = GowaSandbox(Outbox(), basic_auth=None, other_devices=("phone-2",), seed=3)
    text = {"phone": PHONE_JID, "message": "hi"}
    missing = gateway.handle(_request(TEXT, text))
    assert missing.status == 400
    assert _answer(missing)["code"] == "DEVICE_ID_REQUIRED"
    # By id in the header, by the device's JID (percent-encoded, as the adapter
    # sends it), or by ?device_id= (§3.1).
    for headers, query in [
        ((("x-device-id", "phone-2"),), ()),
        ((("X-Device-Id", "15550000000%40s.whatsapp.net"),), ()),
        ((), (("device_id", "sandbox-device"),)),
    ]:
        assert gateway.handle(_request(TEXT, text, headers=headers, query=query)).status == 200
    devices = [m.extra["device_id"] for m in gateway.outbox]
    assert devices == ["phone-2", "sandbox-device", "sandbox-device"]


def test_one_device_is_used_without_a_device_id() -> None:
    gateway = GowaSandbox(Outbox(), basic_auth=None, seed=3)
    response = gateway.handle(_request(TEXT, {"phone": "+5511999990000", "message": "hi"}))
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    answer = _answer(response)
    # The status text repeats the phone as given; the chat id drops the "+" (§3.4, §3.5).
    assert answer["message"] == answer["results"]["status"]
    assert answer["message"].startswith("Message sent to +5511999990000@s.whatsapp.net (")
    (stored,) = gateway.outbox
    assert (stored.chat_id, stored.message_id) == (PHONE_JID, answer["results"]["message_id"])


@pytest.mark.parametrize(
    ("phone", "chat_id"),
    [
        ("5511999990000", PHONE_JID),
        ("120363025246125486", GROUP),  # more than 15 characters: a group (§3.4)
        ("120363025246125486@newsletter", "120363025246125486@newsletter"),
        ("123456789012345@lid", "123456789012345@lid"),
    ],
)
def test_recipient_forms(phone: str, chat_id: str) -> None:
    gateway = GowaSandbox(Outbox(), basic_auth=None)
    assert gateway.handle(_request(TEXT, {"phone": phone, "message": "hi"})).status == 200
    assert [m.chat_id for m in gateway.outbox] == [chat_id]


def test_other_body_encodings_gowa_binds() -> None:
    gateway = GowaSandbox(Outbox(), basic_auth=None)
    # /send/image also binds JSON with image_url (§3.3), and forms bind anywhere.
    as_json = {"phone": GROUP, "image_url": "https://x.io/a.webp", "view_once": True}
    assert gateway.handle(_request(IMAGE, as_json)).status == 200
    form = b"phone=5511999990000&message=caf%C3%A9&is_forwarded=true&duration=86400"
    assert (
        gateway.handle(
            _request(TEXT, form, content_type="application/x-www-form-urlencoded")
        ).status
        == 200
    )
    image, text = gateway.outbox
    assert (image.image_url, image.mimetype, image.extra["view_once"]) == (
        "https://x.io/a.webp",
        "image/webp",
        True,
    )
    assert (text.text, text.extra["is_forwarded"], text.extra["duration"]) == ("café", True, 86400)


def test_url_wins_over_an_upload() -> None:
    gateway = GowaSandbox(Outbox(), basic_auth=None)
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="phone"\r\n\r\n'
            f"{PHONE_JID}\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image_url"\r\n\r\n'
            "https://x.io/a.png\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + JPEG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f"multipart/form-data; boundary={boundary}"
    response = gateway.handle(_request(IMAGE, body, content_type=content_type))
    assert response.status == 200
    (stored,) = gateway.outbox
    assert (stored.image_url, stored.image_bytes) == ("https://x.io/a.png", None)
    # A body that is not the multipart it claims is a BodyParser failure.
    broken = gateway.handle(_request(IMAGE, b"garbage", content_type=content_type))
    assert (broken.status, _answer(broken)["code"]) == (500, "INTERNAL_SERVER_ERROR")


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, wamsg.RateLimited, True),
        (500, wamsg.ProviderUnavailable, False),
        (503, wamsg.ProviderUnavailable, True),
        (504, wamsg.ProviderUnavailable, False),
    ],
)
def test_injected_errors_read_as_gowa_errors(
    status: int, error: type[wamsg.ProviderError], retryable: bool
) -> None:
    gateway = GowaSandbox(Outbox())
    adapter = GowaAdapter(**gateway.credentials("http://127.0.0.1:1/gowa"))
    answer = gateway.error(status, "sandbox fault")
    assert set(_answer(answer)) == {"code", "message", "results"}
    with pytest.raises(error) as caught:
        adapter.decode(answer)
    assert caught.value.retryable is retryable
    with pytest.raises(wamsg.AuthenticationError):
        adapter.decode(gateway.auth_error())
