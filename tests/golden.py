"""Golden wire files: load them, build what they describe, and turn wamsg values into dicts.

A golden file is one JSON document under ``tests/data/<provider>/``:

- ``<case>.request.json``: ``{"message": {...}, "settings": {...}, "expect": {...}}``:
  the message to build, the adapter settings, and the exact request
  (``method``, ``url``, ``query``, ``headers``, ``json`` body, ``kind``).
- ``<case>.response.json``: ``{"status", "headers", "body" | "body_text", "expect"}``:
  the gateway's answer (``body`` is a JSON value sent compact, ``body_text``
  the raw text, byte for byte) and either ``{"result": {...}}`` or
  ``{"error": {...}}``.

Any file may carry a ``"note"`` saying where its content comes from.
Secrets are revealed here, so that a golden states exactly what goes on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from wamsg import (
    HttpRequest,
    HttpResponse,
    Image,
    Media,
    Message,
    ProviderError,
    Secret,
    SendResult,
    Text,
)

__all__ = [
    "DATA",
    "body_of",
    "build_message",
    "build_response",
    "check_expect_keys",
    "error_to_dict",
    "golden_files",
    "load_golden",
    "request_to_dict",
    "result_to_dict",
]

DATA = Path(__file__).resolve().parent / "data"

Kind = Literal["request", "response"]

_MESSAGE_KEYS = frozenset(
    {"type", "to", "text", "caption", "image_url", "mimetype", "filename", "reply_to"}
)
_RESULT_KEYS = ("message_id", "short_id", "status", "chat_id", "timestamp")
_ERROR_KEYS = ("class", "outcome", "retryable", "error_code", "retry_after", "status_code")


def golden_files(provider: str, kind: Kind) -> list[Path]:
    """Every ``*.<kind>.json`` golden of ``provider``, sorted; never empty."""
    folder = DATA / provider
    files = sorted(folder.glob(f"*.{kind}.json"))
    if not files:
        raise FileNotFoundError(f"no {kind} goldens in {folder}")
    return files


def load_golden(path: Path) -> dict[str, Any]:
    """One golden file as a dict."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: a golden is a JSON object")
    return data


def build_message(spec: Mapping[str, Any]) -> Message:
    """The wamsg message a golden's ``"message"`` describes."""
    unknown = set(spec) - _MESSAGE_KEYS
    if unknown:
        raise ValueError(f"unknown message keys in golden: {sorted(unknown)}")
    kind = spec["type"]
    if kind == "text":
        return Text(to=spec["to"], text=spec["text"], reply_to=spec.get("reply_to"))
    if kind == "image":
        media = Media(
            url=spec["image_url"], mimetype=spec.get("mimetype"), filename=spec.get("filename")
        )
        return Image(
            to=spec["to"], image=media, caption=spec.get("caption"), reply_to=spec.get("reply_to")
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


def request_to_dict(request: HttpRequest) -> dict[str, Any]:
    """A request as a golden's ``"expect"`` writes it, secrets revealed, body parsed."""
    assert isinstance(request.body, bytes), "goldens describe in-memory bodies only"
    return {
        "method": request.method,
        "url": request.url,
        "query": _reveal_pairs(request.query),
        "headers": _reveal_pairs(request.headers),
        "json": json.loads(request.body),
        "kind": request.kind,
    }


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
