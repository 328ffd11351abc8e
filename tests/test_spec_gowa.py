"""Every request the gowa adapter builds, validated against gowa's own OpenAPI document.

``tests/data/specs/gowa-openapi.yaml`` is ``docs/openapi.yaml`` of
go-whatsapp-web-multidevice v9.2.0, an OpenAPI 3.0 document (providers.md
§6). JSON bodies are checked against the ``/send/message`` schema; multipart
bodies are parsed back and decoded the way OpenAPI 3.0 describes form fields
(each part is a string; a ``boolean`` or ``integer`` property is that
string's value, a ``format: binary`` one the raw bytes) before being checked
against the ``/send/image`` schema. ``$ref`` resolves inside the whole
document.

The spec is known to be loose or wrong in places (providers.md §6): send
bodies have no ``required`` list and allow unknown keys, error schemas
describe ``code`` as an HTTP status, 401/404/429 are not listed, and
``/send/image`` is described as multipart only. Each is stated by a test
below, and what the spec cannot check is checked here by hand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import yaml
from golden import (
    DATA,
    MEDIA,
    body_of,
    build_message,
    golden_files,
    load_golden,
    parse_form,
    render_body,
)
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from wamsg import HttpRequest, Image, Media, Message, Text
from wamsg.providers.gowa import GowaAdapter

SPEC_PATH = Path(__file__).resolve().parent / "data" / "specs" / "gowa-openapi.yaml"
# The blob providers.md §6 names (tag v9.2.0 = 51f7b199 for this file).
SPEC_SHA256 = "c05b87c32220dccc240a9b7d5eb0b63d9cf8a72db01991fa0b4af0424e9be605"
SPEC_URI = "urn:wamsg:gowa-openapi"
TEXT_PATH = "/send/message"
IMAGE_PATH = "/send/image"

PHONE = "+62 812-3456-7890"
GROUP = "120363025246125486@g.us"
REPLY_TO = "true_6281234567890@c.us_3EB0C767D26A1D5B5E4A"
JPEG = (MEDIA / "tiny.jpg").read_bytes()
PNG = (MEDIA / "tiny.png").read_bytes()
SETTINGS: dict[str, Any] = {
    "base_url": "http://localhost:3000",
    "device_id": "my-device",
    "username": "admin",
    "password": "s3cr3t",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    raw = SPEC_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SPEC_SHA256, "not the spec providers.md §6 names"
    data: dict[str, Any] = yaml.safe_load(raw)
    assert data["openapi"] == "3.0.0"
    return data


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry[Any]:
    # OpenAPI 3.0 schemas are a JSON Schema draft-04 dialect; "#/components/..."
    # refs resolve against the whole document registered under SPEC_URI.
    resource = Resource.from_contents(spec, default_specification=DRAFT4)
    return Registry().with_resource(SPEC_URI, resource)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def body_pointer(path: str, media_type: str) -> str:
    """The JSON pointer of a send operation's request-body schema."""
    return f"#/paths/{_escape(path)}/post/requestBody/content/{_escape(media_type)}/schema"


def body_schema(spec: dict[str, Any], path: str, media_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"][media_type][
        "schema"
    ]
    return schema


def errors_of(registry: Registry[Any], pointer: str, document: Any) -> list[str]:
    validator = OAS30Validator({"$ref": f"{SPEC_URI}{pointer}"}, registry=registry)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    )


def form_instance(fields: list[list[Any]], schema: dict[str, Any]) -> dict[str, Any]:
    """A parsed multipart form as the value OpenAPI 3.0 says it serializes.

    Text parts are strings; a ``boolean`` property is ``true``/``false`` and an
    ``integer`` one decimal digits, anything else is left as the string so the
    validator reports it. A file part becomes its bytes as a (latin-1) binary
    string, for ``type: string, format: binary``.
    """
    properties = schema["properties"]
    instance: dict[str, Any] = {}
    for name, value in fields:
        assert name not in instance, f"form field {name!r} sent twice"
        if isinstance(value, dict):
            instance[name] = (MEDIA / value["fixture"]).read_bytes().decode("latin-1")
            continue
        declared = properties.get(name, {}).get("type")
        if declared == "boolean" and value in ("true", "false"):
            instance[name] = value == "true"
        elif declared == "integer" and re.fullmatch(r"-?\d+", value):
            instance[name] = int(value)
        else:
            instance[name] = value
    return instance


def adapter(**settings: Any) -> GowaAdapter:
    return GowaAdapter(**{**SETTINGS, **settings})


# Every kind of request the adapter builds, besides the request goldens.
TEXTS: dict[str, Callable[[], Message]] = {
    "text": lambda: Text(to=PHONE, text="selamat malam"),
    "text_reply": lambda: Text(to=PHONE, text="re", reply_to=REPLY_TO),
    "text_mentions": lambda: Text(
        to=GROUP, text="hi @6281234567890", mentions=(PHONE, "+44 7441 429009")
    ),
    "text_all": lambda: Text(to=GROUP, text="all", reply_to="3EB0AAAA", mentions=(PHONE,)),
}
IMAGES: dict[str, Callable[[], Message]] = {
    "upload_jpeg": lambda: Image(to=PHONE, image=Media(data=JPEG)),
    "upload_png_all_fields": lambda: Image(
        to=GROUP,
        image=Media(data=PNG, filename="chart.png"),
        caption="chart",
        view_once=True,
        reply_to=REPLY_TO,
    ),
    "url_jpg": lambda: Image(to=PHONE, image=Media(url="https://example.com/a.jpg")),
    "url_webp_all_fields": lambda: Image(
        to=PHONE,
        image=Media(url="https://example.com/a.webp?x=1"),
        caption="c",
        view_once=True,
        reply_to="3EB0AAAA",
    ),
}
GOLDEN_REQUESTS = golden_files("gowa", "request")


def golden_request(path: Path) -> HttpRequest:
    golden = load_golden(path)
    return GowaAdapter(**golden["settings"]).encode(build_message(golden["message"]))


def all_requests() -> list[tuple[str, Callable[[], HttpRequest]]]:
    built: list[tuple[str, Callable[[], HttpRequest]]] = [
        (path.name.split(".")[0], lambda path=path: golden_request(path))
        for path in GOLDEN_REQUESTS
    ]
    built += [
        (name, lambda build=build: adapter().encode(build()))
        for name, build in {**TEXTS, **IMAGES}.items()
    ]
    return built


REQUESTS = all_requests()


def document_of(spec: dict[str, Any], request: HttpRequest) -> tuple[str, str, Any]:
    """(spec path, media type, body as the spec's schema sees it) for ``request``."""
    path = urlsplit(request.url).path
    path = next(p for p in (TEXT_PATH, IMAGE_PATH) if path.endswith(p))
    content_type = request.revealed_headers()["Content-Type"]
    body = render_body(request)
    if content_type.startswith("multipart/form-data"):
        media_type = "multipart/form-data"
        document = form_instance(
            parse_form(content_type, body), body_schema(spec, path, media_type)
        )
    else:
        assert content_type == "application/json"
        media_type = "application/json"
        document = msgspec.json.decode(body)
    return path, media_type, document


# --------------------------------------------------------------------------
# Every request against its schema
# --------------------------------------------------------------------------


@pytest.mark.parametrize("build", [b for _, b in REQUESTS], ids=[n for n, _ in REQUESTS])
def test_request_matches_the_spec(
    build: Callable[[], HttpRequest], spec: dict[str, Any], registry: Registry[Any]
) -> None:
    request = build()
    path, media_type, document = document_of(spec, request)
    assert media_type == ("application/json" if path == TEXT_PATH else "multipart/form-data")
    assert errors_of(registry, body_pointer(path, media_type), document) == []
    # The spec allows any extra key (no additionalProperties: false), so
    # "every field we send is one the spec declares" is checked by hand.
    declared = set(body_schema(spec, path, media_type)["properties"])
    assert set(document) <= declared, set(document) - declared


@pytest.mark.parametrize("build", [b for _, b in REQUESTS], ids=[n for n, _ in REQUESTS])
def test_fields_gowa_requires_are_always_sent(
    build: Callable[[], HttpRequest], spec: dict[str, Any]
) -> None:
    # The spec has no `required` lists (see below); gowa's validation requires
    # phone and message for text, and exactly one of image / image_url
    # (providers.md §3.2, §3.3, G4).
    path, _, document = document_of(spec, build())
    assert document["phone"]
    if path == TEXT_PATH:
        assert document["message"]
    else:
        assert ("image" in document) != ("image_url" in document)
        assert isinstance(document["view_once"], bool)


def test_headers_match_the_spec_parameters(spec: dict[str, Any], registry: Registry[Any]) -> None:
    # X-Device-Id is the DeviceIdHeader parameter of both paths; Authorization
    # is the global `security: basicAuth` (type http, scheme basic).
    for path in (TEXT_PATH, IMAGE_PATH):
        parameters = spec["paths"][path]["post"]["parameters"]
        assert {"$ref": "#/components/parameters/DeviceIdHeader"} in parameters
    parameter = spec["components"]["parameters"]["DeviceIdHeader"]
    assert (parameter["name"], parameter["in"]) == ("X-Device-Id", "header")
    scheme = spec["components"]["securitySchemes"]["basicAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    assert spec["security"] == [{"basicAuth": []}]
    for _, build in REQUESTS:
        headers = build().revealed_headers()
        if "X-Device-Id" in headers:
            pointer = "#/components/parameters/DeviceIdHeader/schema"
            assert errors_of(registry, pointer, headers["X-Device-Id"]) == []
        if "Authorization" in headers:
            assert headers["Authorization"].startswith("Basic ")


# The success goldens taken from gowa's code and docs; the others are
# deliberately odd (wrong types, "results": null) to test lenient decoding.
REAL_SUCCESSES = [
    "ok_send_message",
    "ok_send_image_group_utc_nanoseconds",
    "ok_seed_001_sample",
    "ok_zero_server_time",
]


@pytest.mark.parametrize("name", REAL_SUCCESSES)
def test_success_answers_match_the_spec(name: str, registry: Registry[Any]) -> None:
    golden = load_golden(DATA / "gowa" / f"{name}.response.json")
    assert "result" in golden["expect"]
    answer = msgspec.json.decode(body_of(golden))
    assert errors_of(registry, "#/components/schemas/SendResponse", answer) == []


# --------------------------------------------------------------------------
# Where the spec is loose or wrong (providers.md §6), stated explicitly
# --------------------------------------------------------------------------


def test_spec_send_bodies_have_no_required_list_and_allow_any_key(spec: dict[str, Any]) -> None:
    # So a body without phone, or with a misspelt key, would validate: the
    # two checks in test_request_matches_the_spec and
    # test_fields_gowa_requires_are_always_sent make up for it.
    for path, media_type in ((TEXT_PATH, "application/json"), (IMAGE_PATH, "multipart/form-data")):
        schema = body_schema(spec, path, media_type)
        assert "required" not in schema
        assert "additionalProperties" not in schema
        assert "required" not in spec["paths"][path]["post"]["requestBody"]


def test_spec_describes_image_as_multipart_only(spec: dict[str, Any]) -> None:
    # gowa also binds a JSON body with image_url (c.Bind().Body, §3.3), but
    # only multipart is in the spec, so the adapter sends multipart always.
    assert set(spec["paths"][IMAGE_PATH]["post"]["requestBody"]["content"]) == {
        "multipart/form-data"
    }
    assert set(spec["paths"][TEXT_PATH]["post"]["requestBody"]["content"]) == {"application/json"}


def test_spec_lists_only_200_400_500_for_sends(spec: dict[str, Any]) -> None:
    # gowa also answers 401 (AUTHENTICATION_ERROR, or Fiber's Basic-auth
    # page), 404 (DEVICE_NOT_FOUND), 408, 429 (WA_REACHOUT_TIMELOCK), 503 and
    # 504 (§3.6); the goldens cover what the spec leaves out.
    for path in (TEXT_PATH, IMAGE_PATH):
        assert set(spec["paths"][path]["post"]["responses"]) == {"200", "400", "500"}
    statuses = {load_golden(p)["status"] for p in golden_files("gowa", "response")}
    assert {401, 404, 408, 429, 503, 504} <= statuses


def test_spec_error_schemas_describe_code_as_an_http_status(
    spec: dict[str, Any], registry: Registry[Any]
) -> None:
    # ErrorBadRequest says code is the "HTTP Status Code" with example 400;
    # gowa sends UPPER_SNAKE codes (§3.6). The declared type is string, so
    # real codes still validate; the adapter reads them as the codes they are.
    schemas = spec["components"]["schemas"]
    for name, status in (("ErrorBadRequest", 400), ("ErrorUnauthorized", 401)):
        code = schemas[name]["properties"]["code"]
        assert (code["type"], code["example"], code["description"]) == (
            "string",
            status,
            "HTTP Status Code",
        )
    assert schemas["ErrorNotFound"]["properties"]["code"]["example"] == 404
    real = {"code": "VALIDATION_ERROR", "message": "phone: cannot be blank."}
    assert errors_of(registry, "#/components/schemas/ErrorBadRequest", real) == []


def test_spec_error_results_are_not_nullable_but_gowa_sends_null(
    registry: Registry[Any],
) -> None:
    # gowa's ResponseData has `Results any` without omitempty, so most errors
    # carry "results": null (G7 response.go); the spec's `type: object`
    # without `nullable: true` refuses that. Error answers are therefore not
    # validated against the spec anywhere; the adapter reads them loosely.
    golden = load_golden(DATA / "gowa" / "err_400_validation_error.response.json")
    answer = msgspec.json.decode(body_of(golden))
    assert answer["results"] is None
    assert errors_of(registry, "#/components/schemas/ErrorBadRequest", answer) == [
        "results: None for not nullable",
        "results: None is not of type 'object'",
    ]
    del answer["results"]
    assert errors_of(registry, "#/components/schemas/ErrorBadRequest", answer) == []


# --------------------------------------------------------------------------
# The validator can fail
# --------------------------------------------------------------------------

TEXT_SPOILS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "mentions_as_string": (lambda d: d.update(mentions="6281234567890"), "mentions: "),
    "mention_as_number": (lambda d: d.update(mentions=[6281234567890]), "mentions/0: "),
    "reply_id_as_number": (lambda d: d.update(reply_message_id=3), "reply_message_id: "),
    "phone_as_number": (lambda d: d.update(phone=6281234567890), "phone: "),
    "duration_as_text": (lambda d: d.update(duration="1d"), "duration: "),
    "is_forwarded_as_text": (lambda d: d.update(is_forwarded="yes"), "is_forwarded: "),
}


@pytest.mark.parametrize(("spoil", "expected"), TEXT_SPOILS.values(), ids=TEXT_SPOILS.keys())
def test_the_validator_catches_a_broken_text_body(
    spoil: Callable[[dict[str, Any]], None],
    expected: str,
    spec: dict[str, Any],
    registry: Registry[Any],
) -> None:
    request = adapter().encode(TEXTS["text_all"]())
    path, media_type, document = document_of(spec, request)
    assert errors_of(registry, body_pointer(path, media_type), document) == []
    spoil(document)
    errors = errors_of(registry, body_pointer(path, media_type), document)
    assert any(e.startswith(expected) for e in errors), errors


FORM_SPOILS: dict[str, tuple[list[list[Any]], str]] = {
    # "yes" is not a boolean's form serialization: it stays a string.
    "view_once_yes": ([["view_once", "yes"]], "view_once: 'yes' is not of type 'boolean'"),
    "view_once_capitalized": ([["view_once", "True"]], "view_once: 'True' is not of type"),
    "duration_words": ([["duration", "one day"]], "duration: 'one day' is not of type 'integer'"),
    "compress_empty": ([["compress", ""]], "compress: '' is not of type 'boolean'"),
}


@pytest.mark.parametrize(("extra", "expected"), FORM_SPOILS.values(), ids=FORM_SPOILS.keys())
def test_the_validator_catches_a_broken_form(
    extra: list[list[Any]], expected: str, spec: dict[str, Any], registry: Registry[Any]
) -> None:
    request = adapter().encode(IMAGES["upload_png_all_fields"]())
    content_type = request.revealed_headers()["Content-Type"]
    fields = [f for f in parse_form(content_type, render_body(request)) if f[0] != extra[0][0]]
    schema = body_schema(spec, IMAGE_PATH, "multipart/form-data")
    pointer = body_pointer(IMAGE_PATH, "multipart/form-data")
    assert errors_of(registry, pointer, form_instance(fields, schema)) == []
    errors = errors_of(registry, pointer, form_instance(fields + extra, schema))
    assert any(e.startswith(expected) for e in errors), errors
