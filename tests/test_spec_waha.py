"""Every request the WAHA adapter builds, validated against WAHA's own OpenAPI document.

``tests/data/specs/waha-openapi.json`` is WAHA 2026.7.2's OpenAPI 3.1
(providers.md §6, W7). Each request is checked against the schema the spec
declares for its path and method, with ``$ref`` resolved inside the whole
document. Where the spec is known to be incomplete or wrong, a test says so
explicitly instead of skipping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from golden import DATA, MEDIA, body_of, load_golden, render_body
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from wamsg import HttpRequest, Image, Media, Message, Text
from wamsg.providers.base import client_message_id
from wamsg.providers.waha import WahaAdapter

SPEC_PATH = Path(__file__).resolve().parent / "data" / "specs" / "waha-openapi.json"
SPEC_URI = "urn:wamsg:waha-openapi"

PHONE = "+55 11 99999-0000"
GROUP = "120363025246125486@g.us"
REPLY_TO = "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert data["openapi"].startswith("3.1")
    return data


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry[Any]:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; "#/components/..." refs
    # resolve against the whole document registered under SPEC_URI.
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def validator(registry: Registry[Any], pointer: str) -> OAS31Validator:
    """A validator for the schema at ``pointer`` (``#/...``) inside the spec."""
    return OAS31Validator({"$ref": f"{SPEC_URI}{pointer}"}, registry=registry)


def request_schema_pointer(spec: dict[str, Any], request: HttpRequest) -> str:
    """Where the spec declares the JSON body of ``request``'s path and method."""
    path = urlsplit(request.url).path
    operation = spec["paths"][path][request.method.lower()]
    assert operation["requestBody"]["required"] is True
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    ref: str = schema["$ref"]
    assert ref.startswith("#/components/schemas/")
    return ref


def errors_of(registry: Registry[Any], pointer: str, document: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(registry, pointer).iter_errors(document)
    )


def adapter(**settings: Any) -> WahaAdapter:
    return WahaAdapter(base_url="http://localhost:3000", api_key="k", **settings)


# Every kind of request the adapter builds.
REQUESTS: dict[str, Callable[[], Message]] = {
    "text": lambda: Text(to=PHONE, text="Hi there!"),
    "text_reply": lambda: Text(to=PHONE, text="Reply", reply_to=REPLY_TO),
    "text_group": lambda: Text(to=GROUP, text="Hello group"),
    # `id`: the pre-generated message id, from the idempotency key (§2.2).
    "text_idempotency_key": lambda: Text(to=PHONE, text="Hi there!", idempotency_key="order-42"),
    "text_reply_key": lambda: Text(
        to=GROUP, text="Reply", reply_to=REPLY_TO, idempotency_key="order-43"
    ),
    "image_url": lambda: Image(
        to=PHONE,
        image=Media(url="https://example.com/a.jpg", filename="a.jpg"),
        caption="hi",
    ),
    "image_url_unnamed": lambda: Image(to=GROUP, image=Media(url="https://example.com/b.png")),
    "image_url_reply": lambda: Image(
        to=PHONE, image=Media(url="https://example.com/a.jpg"), reply_to=REPLY_TO
    ),
    "image_url_key": lambda: Image(
        to=PHONE, image=Media(url="https://example.com/a.jpg"), idempotency_key="order-44"
    ),
    "image_base64_jpeg": lambda: Image(
        to=PHONE, image=Media(data=(MEDIA / "tiny.jpg").read_bytes()), caption="tiny"
    ),
    "image_base64_png_named": lambda: Image(
        to=GROUP,
        image=Media(data=(MEDIA / "tiny.png").read_bytes(), filename="chart.png"),
        reply_to=REPLY_TO,
    ),
}
# The same with mentions, which the spec hides (see below).
MENTIONS: dict[str, Callable[[], Message]] = {
    "text_mentions": lambda: Text(to=GROUP, text="Hi @5511988887777", mentions=("+5511988887777",)),
    "image_url_mentions": lambda: Image(
        to=GROUP,
        image=Media(url="https://example.com/a.jpg"),
        caption="@5511988887777",
        mentions=("+5511988887777",),
    ),
    "image_base64_mentions": lambda: Image(
        to=GROUP,
        image=Media(data=(MEDIA / "tiny.jpg").read_bytes()),
        caption="@5511988887777",
        mentions=("+5511988887777",),
    ),
}


def built(build: Callable[[], Message], **settings: Any) -> tuple[HttpRequest, Any]:
    """The request and its JSON body, a streamed body rendered first."""
    request = adapter(**settings).encode(build())
    return request, json.loads(render_body(request))


@pytest.mark.parametrize("build", REQUESTS.values(), ids=REQUESTS.keys())
def test_request_matches_the_spec(
    build: Callable[[], Message], spec: dict[str, Any], registry: Registry[Any]
) -> None:
    request, document = built(build)
    pointer = request_schema_pointer(spec, request)
    assert errors_of(registry, pointer, document) == []


def test_custom_session_matches_the_spec(spec: dict[str, Any], registry: Registry[Any]) -> None:
    request, document = built(REQUESTS["image_base64_jpeg"], session="sales")
    assert document["session"] == "sales"
    assert errors_of(registry, request_schema_pointer(spec, request), document) == []


def test_paths_and_bodies_are_the_ones_named_in_providers_md(spec: dict[str, Any]) -> None:
    text, _ = built(REQUESTS["text"])
    image, _ = built(REQUESTS["image_url"])
    assert request_schema_pointer(spec, text) == "#/components/schemas/MessageTextRequest"
    assert request_schema_pointer(spec, image) == "#/components/schemas/MessageImageRequest"


def test_image_file_matches_exactly_one_file_shape(registry: Registry[Any]) -> None:
    # `file` is oneOf RemoteFile | BinaryFile: a URL request must be the first
    # only, a base64 request the second only.
    _, by_url = built(REQUESTS["image_url"])
    _, by_data = built(REQUESTS["image_base64_jpeg"])
    remote = "#/components/schemas/RemoteFile"
    binary = "#/components/schemas/BinaryFile"
    assert errors_of(registry, remote, by_url["file"]) == []
    assert errors_of(registry, binary, by_url["file"]) == [": 'data' is a required property"]
    assert errors_of(registry, binary, by_data["file"]) == []
    assert errors_of(registry, remote, by_data["file"]) == [": 'url' is a required property"]


def test_client_message_id_is_the_spec_pre_generated_id(
    spec: dict[str, Any], registry: Registry[Any]
) -> None:
    # MessageTextRequest.id: "Pre-generated message id", a string (W7, §2.2);
    # MessageImageRequest has no id (§2.3), and the adapter sends none there.
    schemas = spec["components"]["schemas"]
    declared = schemas["MessageTextRequest"]["properties"]["id"]
    assert declared["type"] == "string"
    assert declared["description"] == "Pre-generated message id"
    assert "id" not in schemas["MessageImageRequest"]["properties"]
    request, document = built(REQUESTS["text_idempotency_key"])
    assert document["id"] == client_message_id("order-42")
    assert errors_of(registry, request_schema_pointer(spec, request), document) == []
    _, image = built(REQUESTS["image_url_key"])
    assert "id" not in image


def test_api_key_header_is_the_spec_security_scheme(spec: dict[str, Any]) -> None:
    request, _ = built(REQUESTS["text"])
    scheme = spec["components"]["securitySchemes"]["api_key"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Api-Key")
    assert scheme["name"] in dict(request.headers)
    for path in ("/api/sendText", "/api/sendImage"):
        assert spec["paths"][path]["post"]["security"] == [{"api_key": []}]


# --------------------------------------------------------------------------
# Where the spec is incomplete: hidden `mentions`
# --------------------------------------------------------------------------


@pytest.mark.parametrize("build", MENTIONS.values(), ids=MENTIONS.keys())
def test_hidden_mentions_pass_only_because_extra_keys_are_allowed(
    build: Callable[[], Message], spec: dict[str, Any], registry: Registry[Any]
) -> None:
    # providers.md §2.2/§2.3 and W4: `mentions` exists on MessageTextRequest and
    # MessageImageRequest but is @ApiHideProperty, so the spec does not list it.
    # The bodies still validate because neither schema forbids extra keys;
    # the spec says nothing about the field's type.
    request, document = built(build)
    pointer = request_schema_pointer(spec, request)
    schema = spec["components"]["schemas"][pointer.rsplit("/", 1)[1]]
    assert "mentions" not in schema["properties"]
    assert schema.get("additionalProperties", True) is not False
    assert document["mentions"] == ["5511988887777@c.us"]
    assert errors_of(registry, pointer, document) == []


# --------------------------------------------------------------------------
# Where the spec is wrong: the send answer (providers.md §2.5, §6)
# --------------------------------------------------------------------------


def test_webjs_answer_does_not_match_the_spec_wamessage(
    spec: dict[str, Any], registry: Registry[Any]
) -> None:
    # The spec declares 201 -> WAMessage with a string id; WEBJS returns the
    # whatsapp-web.js Message, whose id is an object (§2.5, W2). This is why
    # the adapter reads the answer loosely (wamsg.providers._waha) and
    # nothing here validates answers strictly.
    declared = spec["paths"]["/api/sendText"]["post"]["responses"]["201"]
    assert declared["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WAMessage"
    }
    golden = load_golden(DATA / "waha" / "ok_201_webjs_seed_004.response.json")
    answer = json.loads(body_of(golden))
    errors = errors_of(registry, "#/components/schemas/WAMessage", answer)
    assert any(e.startswith("id: ") and "is not of type 'string'" in e for e in errors)


# --------------------------------------------------------------------------
# The validator can fail
# --------------------------------------------------------------------------


NEGATIVE: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "file_without_mimetype": (
        "image_url",
        lambda d: d["file"].pop("mimetype"),
        "file: {",  # oneOf fails: neither shape matches
    ),
    "file_with_url_and_data": (
        "image_url",
        lambda d: d["file"].update(data="AAAA"),
        "is valid under each of",
    ),
    "chat_id_as_number": ("text", lambda d: d.update(chatId=5511999990000), "chatId: "),
    "text_missing": ("text", lambda d: d.pop("text"), "'text' is a required property"),
    "id_as_number": ("text_idempotency_key", lambda d: d.update(id=42), "id: 42 is not of type"),
    "session_missing": ("image_url", lambda d: d.pop("session"), "'session' is a required"),
    "reply_to_as_bool": ("text_reply", lambda d: d.update(reply_to=True), "reply_to: "),
}


@pytest.mark.parametrize(("case", "spoil", "expected"), NEGATIVE.values(), ids=NEGATIVE.keys())
def test_the_validator_catches_a_broken_body(
    case: str,
    spoil: Callable[[dict[str, Any]], None],
    expected: str,
    spec: dict[str, Any],
    registry: Registry[Any],
) -> None:
    request, document = built(REQUESTS[case])
    spoil(document)
    errors = errors_of(registry, request_schema_pointer(spec, request), document)
    assert errors, "the spoiled body validated"
    assert any(expected in e for e in errors), errors
