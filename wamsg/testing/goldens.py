"""Golden wire files: load them, build what they describe, and turn wamsg values into dicts.

Golden files state one gateway's wire format exactly, as documented or
captured: the contract kit (:mod:`wamsg.testing.contract`) encodes and
decodes every one of them. A golden file is one JSON document in the
adapter's golden folder:

- ``<case>.request.json``: ``{"message": {...}, "settings": {...}, "expect": {...}}``:
  the message to build, the adapter settings, and the exact request
  (``method``, ``url``, ``query``, ``headers``, ``json`` body, ``kind``).
- ``<case>.response.json``: ``{"status", "headers", "body" | "body_text", "expect"}``:
  the gateway's answer (``body`` is a JSON value sent compact, ``body_text``
  the raw text, byte for byte) and either ``{"result": {...}}`` or
  ``{"error": {...}}``.

Any file may carry a ``"note"`` saying where its content comes from.
Secrets are revealed here, so that a golden states exactly what goes on the wire.

Message keys: ``type`` (``"text"`` or ``"image"``), ``to``, ``text``,
``caption``, ``image_url``, ``image_fixture`` (a file in the case's media
folder or in :data:`MEDIA`: ``tiny.jpg``, ``tiny.png``, ``tiny.gif``,
``tiny.webp``), ``mimetype``, ``filename``, ``reply_to``, ``mentions``,
``view_once``, ``idempotency_key``. Result keys, in order:
``message_id``, ``short_id``, ``status``, ``chat_id``, ``timestamp``; error
keys, in order: ``class``, ``outcome``, ``retryable``, ``error_code``,
``retry_after``, ``status_code`` (and optionally ``gateway_message``).
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

import msgspec

from .._redact import Secret
from .._streams import iter_body
from ..errors import ProviderError
from ..http import ComposedBody, HttpRequest, HttpResponse
from ..models import Image, Media, Message, SendResult, Text

__all__ = [
    "MEDIA",
    "body_of",
    "build_message",
    "build_response",
    "check_expect_keys",
    "error_to_dict",
    "golden_files",
    "load_golden",
    "parse_form",
    "render_body",
    "request_to_dict",
    "result_to_dict",
]

#: Tiny valid images (jpeg, png, gif, webp) that goldens and tests can upload.
MEDIA = Path(__file__).resolve().parent / "media"

Kind = Literal["request", "response"]

_MESSAGE_KEYS = frozenset(
    {
        "type",
        "to",
        "text",
        "caption",
        "image_url",
        "image_fixture",
        "mimetype",
        "filename",
        "reply_to",
        "mentions",
        "view_once",
        "idempotency_key",
    }
)
_RESULT_KEYS = ("message_id", "short_id", "status", "chat_id", "timestamp")
_ERROR_KEYS = ("class", "outcome", "retryable", "error_code", "retry_after", "status_code")


def golden_files(folder: str | os.PathLike[str], kind: Kind) -> list[Path]:
    """Every ``*.<kind>.json`` golden in ``folder``, sorted; never empty."""
    files = sorted(Path(folder).glob(f"*.{kind}.json"))
    if not files:
        raise FileNotFoundError(f"no {kind} goldens in {folder}")
    return files


def _media_folders(media: Iterable[Path]) -> list[Path]:
    return [*media, MEDIA]


def _media_file(name: str, media: Iterable[Path]) -> Path:
    for folder in _media_folders(media):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no media fixture {name!r} (looked in the case's folder and {MEDIA})")


def load_golden(path: Path) -> dict[str, Any]:
    """One golden file as a dict."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: a golden is a JSON object")
    return data


def build_message(spec: Mapping[str, Any], *, media: Sequence[Path] = ()) -> Message:
    """The wamsg message a golden's ``"message"`` describes.

    ``image_fixture`` names a file in one of the ``media`` folders or in
    :data:`MEDIA`.
    """
    unknown = set(spec) - _MESSAGE_KEYS
    if unknown:
        raise ValueError(f"unknown message keys in golden: {sorted(unknown)}")
    kind = spec["type"]
    mentions = tuple(spec.get("mentions", ()))
    key = spec.get("idempotency_key")
    if kind == "text":
        return Text(
            to=spec["to"],
            text=spec["text"],
            reply_to=spec.get("reply_to"),
            mentions=mentions,
            idempotency_key=key,
        )
    if kind == "image":
        if "image_fixture" in spec:
            # Bytes in memory: the adapter sniffs their type without any I/O.
            fixture = spec["image_fixture"]
            picture = Media(
                data=_media_file(fixture, media).read_bytes(),
                mimetype=spec.get("mimetype"),
                filename=spec.get("filename", fixture),
            )
        else:
            picture = Media(
                url=spec["image_url"], mimetype=spec.get("mimetype"), filename=spec.get("filename")
            )
        return Image(
            to=spec["to"],
            image=picture,
            caption=spec.get("caption"),
            reply_to=spec.get("reply_to"),
            mentions=mentions,
            view_once=spec.get("view_once", False),
            idempotency_key=key,
        )
    raise ValueError(f"unknown message type in golden: {kind!r}")


def body_of(spec: Mapping[str, Any]) -> bytes:
    """The response body bytes: ``body_text`` as is, or ``body`` encoded as compact JSON."""
    if ("body" in spec) == ("body_text" in spec):
        raise ValueError("a response golden has exactly one of body and body_text")
    if "body_text" in spec:
        text: str = spec["body_text"]
        return text.encode("utf-8")
    return msgspec.json.encode(spec["body"])


def build_response(spec: Mapping[str, Any]) -> HttpResponse:
    """The :class:`~wamsg.HttpResponse` a response golden describes."""
    return HttpResponse(
        status=spec["status"], headers=dict(spec.get("headers", {})), body=body_of(spec)
    )


def _reveal_pairs(pairs: tuple[tuple[str, str | Secret], ...]) -> list[list[str]]:
    return [[name, value.reveal() if isinstance(value, Secret) else value] for name, value in pairs]


def render_body(request: HttpRequest) -> bytes:
    """The bytes a transport would send for ``request`` (streams rendered)."""
    body = request.body
    if isinstance(body, bytes):
        return body
    assert isinstance(body, ComposedBody), "goldens describe composed or in-memory bodies"

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in iter_body(body)])

    rendered = asyncio.run(collect())
    assert body.length == len(rendered), "the announced Content-Length must be exact"
    return rendered


def _fixture_name(data: bytes, media: Sequence[Path]) -> str:
    for folder in _media_folders(media):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.read_bytes() == data:
                return path.name
    raise AssertionError(f"uploaded bytes ({len(data)}) match no media fixture")


def parse_form(content_type: str, body: bytes, *, media: Sequence[Path] = ()) -> list[list[Any]]:
    """A multipart/form-data body parsed back with the standard library's MIME parser.

    Text fields become ``[name, value]``; file fields ``[name, {"filename",
    "content_type", "fixture"}]`` where ``fixture`` names the media file whose
    bytes were uploaded.
    """
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart(), "not a multipart body"
    fields: list[list[Any]] = []
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        assert part.get_content_disposition() == "form-data"
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        if filename is None:
            fields.append([name, payload.decode()])
        else:
            fields.append(
                [
                    name,
                    {
                        "filename": filename,
                        "content_type": part.get_content_type(),
                        "fixture": _fixture_name(payload, media),
                    },
                ]
            )
    return fields


def request_to_dict(request: HttpRequest, *, media: Sequence[Path] = ()) -> dict[str, Any]:
    """A request as a golden's ``"expect"`` writes it, secrets revealed, body parsed.

    A JSON body is given as ``"json"``; a multipart body as ``"form"`` (see
    :func:`parse_form`), its Content-Type header as ``"multipart/form-data"``
    since the boundary is random.
    """
    body = render_body(request)
    headers = _reveal_pairs(request.headers)
    data: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "query": _reveal_pairs(request.query),
        "headers": headers,
        "kind": request.kind,
    }
    content_type = dict(request.revealed_headers()).get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        for pair in headers:
            if pair[0] == "Content-Type":
                pair[1] = "multipart/form-data"
        data["form"] = parse_form(content_type, body, media=media)
    elif body:
        data["json"] = json.loads(body)
    return data


def result_to_dict(result: SendResult) -> dict[str, Any]:
    """A result as a golden's ``"expect": {"result": ...}`` writes it."""
    return {
        "message_id": result.message_id,
        "short_id": result.short_id,
        "status": result.status.value,
        "chat_id": result.chat_id,
        "timestamp": result.timestamp.isoformat() if result.timestamp else None,
    }


def error_to_dict(error: ProviderError, *, with_message: bool = False) -> dict[str, Any]:
    """An error as a golden's ``"expect": {"error": ...}`` writes it.

    ``gateway_message`` is included only when asked, since goldens state it
    only where the gateway's text is well defined.
    """
    data: dict[str, Any] = {
        "class": type(error).__name__,
        "outcome": error.outcome.value,
        "retryable": error.retryable,
        "error_code": error.error_code,
        "retry_after": error.retry_after,
        "status_code": error.status_code,
    }
    if with_message:
        data["gateway_message"] = error.gateway_message
    return data


def check_expect_keys(expect: Mapping[str, Any]) -> None:
    """Fail early on a response golden whose expectation is misspelt."""
    if ("result" in expect) == ("error" in expect):
        raise ValueError("a response golden expects exactly one of result and error")
    if "result" in expect and tuple(expect["result"]) != _RESULT_KEYS:
        raise ValueError(f"result expectation must have the keys {_RESULT_KEYS} in order")
    if "error" in expect:
        keys = tuple(k for k in expect["error"] if k != "gateway_message")
        if keys != _ERROR_KEYS:
            raise ValueError(f"error expectation must have the keys {_ERROR_KEYS} in order")
