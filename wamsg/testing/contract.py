"""The adapter contract: one suite every adapter passes, ours and third parties'.

An adapter proves it speaks wamsg's contract by describing itself in an
:class:`AdapterCase` (how to build it, its golden wire files, sample
credentials) and subclassing :class:`AdapterContract` in a test module::

    from pathlib import Path
    from wamsg.testing.contract import AdapterCase, AdapterContract

    class TestAcme(AdapterContract):
        case = AdapterCase(
            provider="acme",
            goldens=Path(__file__).parent / "data" / "acme",
            settings={"token": "sample-token-123"},
        )

pytest then runs, for that adapter:

* every request golden: the message encodes to exactly that request, twice
  the same (encoding is deterministic);
* every response golden: the answer decodes to exactly that result or error;
* every capability: a declared feature is encoded into the request, an
  undeclared one raises :class:`~wamsg.UnsupportedFeature` (limits raise
  :class:`~wamsg.InvalidMessage`) before any I/O, even through a client;
* every HTTP status class maps to the error, ``outcome`` and ``retryable``
  of :data:`STATUS_CONTRACT`, and nothing retryable may have been sent;
* hostile and garbled bodies give a result or a wamsg error, nothing else;
* no secret shows in a repr, an error, a plain header or a body;
* the settings round-trip through a DSN (:class:`~wamsg.ProviderConfig`);
* the adapter's code imports no HTTP, socket or async library.

The checks are also plain functions (``check_*``), raising
:class:`AssertionError` with the reason, for use outside pytest.
docs/adding-a-provider.md walks through writing an adapter against them.
"""

from __future__ import annotations

import base64
import inspect
import random
import unittest
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote, quote_plus

import anyio

from .._redact import Secret
from ..client import Client
from ..errors import (
    AuthenticationError,
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    UnsupportedFeature,
    WamsgError,
)
from ..http import HttpRequest, HttpResponse
from ..models import Image, Media, Message, SendResult, Text
from ..providers import Adapter, Capabilities, available, get_adapter
from ..providers.config import looks_secret
from ..retry import NO_RETRY
from ..transports.mock import MockTransport
from . import goldens
from ._imports import io_imports, io_loaded_on_import
from .hostile import HOSTILE_BODIES, HOSTILE_STATUSES

__all__ = [
    "FEATURES",
    "STATUS_CONTRACT",
    "AdapterCase",
    "AdapterContract",
    "Expect",
    "check_capability",
    "check_dsn",
    "check_garbage",
    "check_identity",
    "check_no_io_imports",
    "check_request_golden",
    "check_response_golden",
    "check_secrets",
    "check_status",
    "expected_for",
]


class Expect(NamedTuple):
    """What a failed send with a given HTTP status must raise."""

    error: type[ProviderError]
    """The error class (a subclass is fine)."""
    outcomes: frozenset[Outcome]
    """The outcomes allowed."""
    retryable: bool


_REJECTED = frozenset({Outcome.REJECTED})
_NOT_SENT = frozenset({Outcome.NOT_SENT})
_UNKNOWN = frozenset({Outcome.UNKNOWN})

#: What each HTTP status means when the body says nothing more (empty, ``{}``,
#: an HTML error page). The reasoning is in docs/reliability.md: a 4xx is a
#: refusal (never retried, the same request would be refused again), 408,
#: 429 and 503 say the request was not handled (retryable, ``not_sent``),
#: and any other 5xx, a 3xx or an odd status may come after the gateway
#: acted, so ``unknown``: not retried, never reported as not sent.
STATUS_CONTRACT: Mapping[int, Expect] = {
    302: Expect(ProviderError, _UNKNOWN, False),
    400: Expect(Rejected, _REJECTED, False),
    401: Expect(AuthenticationError, _REJECTED, False),
    403: Expect(AuthenticationError, _REJECTED, False),
    404: Expect(Rejected, _REJECTED, False),
    408: Expect(ProviderUnavailable, _NOT_SENT, True),
    409: Expect(Rejected, _REJECTED, False),
    413: Expect(Rejected, _REJECTED, False),
    418: Expect(Rejected, _REJECTED, False),
    422: Expect(Rejected, _REJECTED, False),
    429: Expect(RateLimited, _NOT_SENT, True),
    500: Expect(ProviderUnavailable, _UNKNOWN, False),
    501: Expect(ProviderUnavailable, _UNKNOWN, False),
    502: Expect(ProviderUnavailable, _UNKNOWN, False),
    503: Expect(ProviderUnavailable, _NOT_SENT, True),
    504: Expect(ProviderUnavailable, _UNKNOWN, False),
    599: Expect(ProviderUnavailable, _UNKNOWN, False),
}

#: Bodies that say nothing about the failure.
NEUTRAL_BODIES: tuple[bytes, ...] = (
    b"",
    b"{}",
    b"<html><head><title>Error</title></head><body>Error</body></html>",
    b"Something went wrong",
)

#: The capabilities the contract probes, one test each.
FEATURES: tuple[str, ...] = (
    "reply",
    "mentions_text",
    "mentions_image",
    "view_once",
    "media_url",
    "media_bytes",
    "image_types",
    "max_text_chars",
    "max_caption_chars",
    "max_media_bytes",
    "client_message_id",
)

_IMAGE_FILES = {
    "image/jpeg": "tiny.jpg",
    "image/png": "tiny.png",
    "image/gif": "tiny.gif",
    "image/webp": "tiny.webp",
}


@dataclass(frozen=True, kw_only=True)
class AdapterCase:
    """How the contract builds and exercises one adapter.

    Attributes:
        provider: the name the adapter registers under; ``adapter.name``
            must be the same.
        goldens: the folder of ``*.request.json`` and ``*.response.json``
            files (format: :mod:`wamsg.testing.goldens`). At least one of
            each is required.
        settings: sample settings (credentials) the adapter is built with
            for response goldens and the other checks; request goldens carry
            their own.
        factory: builds the adapter from settings; by default the class
            registered as ``provider`` (through the ``wamsg.providers`` entry
            point), which also proves the registration works.
        media: extra folders for the goldens' ``image_fixture`` files (the
            kit's :data:`~wamsg.testing.goldens.MEDIA` is always searched).
        secrets: values that must never show; by default the settings whose
            parameter is typed ``Secret`` or whose name says token, key,
            password, secret or auth.
        status: expectations that replace :data:`STATUS_CONTRACT` entries
            for a documented gateway quirk (say why next to it).
        recipient: the phone number the capability probes send to.
        image_url: the URL the image probes use.
        reply_to: the message id the reply probe quotes.
        secret_in_body: the gateway takes a credential in the request body
            (a form field or JSON key, as some hosted gateways do): the body
            is then allowed to hold it. Reprs, headers, errors stay checked.
        exact_json: JSON bodies must equal the golden's compact encoding
            byte for byte (key order included). Set False to compare JSON
            bodies by value only.
        trusted_imports: top-level packages the I/O-import check does not
            walk into (a dependency you vouch for).
    """

    provider: str
    goldens: Path
    settings: Mapping[str, Any]
    factory: Callable[..., Adapter] | None = None
    media: Sequence[Path] = ()
    secrets: Sequence[str] | None = None
    status: Mapping[int, Expect] = field(default_factory=dict)
    recipient: str = "+5511999990000"
    image_url: str = "https://example.com/images/cat.jpg"
    reply_to: str = "3EB0C0FFEE0000000001"
    secret_in_body: bool = False
    exact_json: bool = True
    trusted_imports: frozenset[str] = frozenset()

    def make(self, **settings: Any) -> Adapter:
        """The adapter, built from ``settings`` (default: the case's)."""
        factory = self.factory or get_adapter(self.provider)
        return factory(**(settings or dict(self.settings)))

    def request_goldens(self) -> list[Path]:
        """The request golden files, sorted."""
        return goldens.golden_files(self.goldens, "request")

    def response_goldens(self) -> list[Path]:
        """The response golden files, sorted."""
        return goldens.golden_files(self.goldens, "response")

    def secret_settings(self) -> list[str]:
        """The names of the settings that hold secrets.

        Those whose parameter is typed ``Secret`` or whose name says so
        (:func:`wamsg.providers.config.looks_secret`), or, when ``secrets``
        is given, those whose value is one of them.
        """
        if self.secrets is not None:
            wanted = set(self.secrets)
            return [n for n, v in self.settings.items() if _plain(v) in wanted]
        factory = self.factory or get_adapter(self.provider)
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):  # pragma: no cover - no signature
            params = {}  # type: ignore[assignment]
        found = []
        for name in self.settings:
            annotation = str(params[name].annotation) if name in params else ""
            if "Secret" in annotation or looks_secret(name):
                found.append(name)
        return found

    def secret_values(self) -> list[str]:
        """The values that must never appear in a repr, an error or a plain field."""
        if self.secrets is not None:
            return [s for s in self.secrets if s]
        values = [_plain(self.settings[name]) for name in self.secret_settings()]
        return [v for v in values if v]


def _plain(value: object) -> str:
    return value.reveal() if isinstance(value, Secret) else str(value)


# --------------------------------------------------------------------------
# Encoding and decoding the goldens
# --------------------------------------------------------------------------


def check_identity(case: AdapterCase) -> None:
    """The adapter is an :class:`~wamsg.Adapter` named ``case.provider``, found by name."""
    adapter = case.make()
    assert isinstance(adapter, Adapter), f"{adapter!r} lacks name, capabilities, encode or decode"
    assert adapter.name == case.provider, f"adapter.name is {adapter.name!r}"
    assert isinstance(adapter.capabilities, Capabilities), "capabilities is not a Capabilities"
    if case.factory is None:
        assert case.provider in available(), f"{case.provider} is not registered"


def check_request_golden(case: AdapterCase, path: Path) -> None:
    """``path``'s message encodes to exactly its request, and again the same."""
    golden = goldens.load_golden(path)
    media = list(case.media)
    message = goldens.build_message(golden["message"], media=media)
    adapter = case.make(**golden["settings"])
    request = adapter.encode(message)
    expect = golden["expect"]
    got = goldens.request_to_dict(request, media=media)
    assert got == expect, f"{path.name}: encoded\n{got}\nexpected\n{expect}"
    if "json" in expect and case.exact_json:
        # Byte for byte, so that a documented sample's key order holds too.
        import msgspec

        assert goldens.render_body(request) == msgspec.json.encode(expect["json"]), (
            f"{path.name}: same JSON, different bytes (key order or spacing)"
        )
    again = goldens.request_to_dict(adapter.encode(message), media=media)
    fresh = goldens.request_to_dict(case.make(**golden["settings"]).encode(message), media=media)
    assert again == expect == fresh, f"{path.name}: encoding is not deterministic"


def check_response_golden(case: AdapterCase, path: Path) -> None:
    """``path``'s answer decodes to exactly its result or error."""
    golden = goldens.load_golden(path)
    expect = golden["expect"]
    goldens.check_expect_keys(expect)
    response = goldens.build_response(golden)
    adapter = case.make(**golden.get("settings", case.settings))
    outcome = _decode(adapter, response)
    if "result" in expect:
        assert isinstance(outcome, SendResult), f"{path.name}: expected a result, got {outcome!r}"
        got = goldens.result_to_dict(outcome)
        assert got == expect["result"], f"{path.name}: decoded {got}"
        assert outcome.raw == response.body, f"{path.name}: result.raw is not the body"
    else:
        assert isinstance(outcome, ProviderError), (
            f"{path.name}: expected an error, got {outcome!r}"
        )
        with_message = "gateway_message" in expect["error"]
        got = goldens.error_to_dict(outcome, with_message=with_message)
        assert got == expect["error"], f"{path.name}: decoded {got}"
        assert outcome.status_code == response.status, f"{path.name}: status_code"
    assert outcome.provider == case.provider, f"{path.name}: provider is {outcome.provider!r}"


def _decode(adapter: Adapter, response: HttpResponse) -> SendResult | ProviderError:
    try:
        return adapter.decode(response)
    except ProviderError as exc:
        return exc


# --------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------


def _image_bytes(mimetype: str = "image/jpeg") -> bytes:
    return (goldens.MEDIA / _IMAGE_FILES[mimetype]).read_bytes()


def _image(case: AdapterCase, caps: Capabilities, **fields: Any) -> Image:
    """An image message in the form the adapter takes (URL first)."""
    if caps.media_url:
        media = Media(url=case.image_url)
    else:
        media = Media(data=_image_bytes(), filename="probe.jpg")
    return Image(to=case.recipient, image=media, **fields)


def _wire(request: HttpRequest) -> bytes:
    """Everything the request puts on the wire, as bytes (secrets revealed)."""
    head = [request.method, request.url]
    head += [f"{k}={v.reveal() if isinstance(v, Secret) else v}" for k, v in request.query]
    head += [f"{k}: {v.reveal() if isinstance(v, Secret) else v}" for k, v in request.headers]
    return "\n".join(head).encode() + b"\n" + goldens.render_body(request)


def _refused(adapter: Adapter, message: Message, error: type[WamsgError], what: str) -> None:
    """``message`` raises ``error`` from encode, and through a client before any I/O."""
    try:
        adapter.encode(message)
    except error:
        pass
    else:
        raise AssertionError(f"{what}: encode did not raise {error.__name__}")
    transport = MockTransport(lambda request: HttpResponse(status=500))

    async def send() -> None:
        async with Client(adapter, transport=transport, retry=NO_RETRY, dedupe=False) as client:
            await client.send(message)

    try:
        anyio.run(send)
    except error:
        pass
    else:
        raise AssertionError(f"{what}: the client did not raise {error.__name__}")
    assert transport.calls == 0, f"{what}: the client made a request before refusing"


def _accepted(adapter: Adapter, message: Message, what: str) -> bytes:
    try:
        return _wire(adapter.encode(message))
    except WamsgError as exc:
        raise AssertionError(f"{what} is declared but encoding raised {exc!r}") from exc


def _unsupported(adapter: Adapter, message: Message, feature: str) -> None:
    _refused(adapter, message, UnsupportedFeature, f"undeclared {feature}")


def check_capability(case: AdapterCase, feature: str) -> None:
    """Declared ``feature`` is encoded; undeclared, it is refused before I/O."""
    adapter = case.make()
    caps = adapter.capabilities
    to = case.recipient
    plain_text = Text(to=to, text="contract probe")
    mention = "+5511988887777"
    if feature == "reply":
        message: Message = Text(to=to, text="contract probe", reply_to=case.reply_to)
        if not caps.reply:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)
        assert wire != _wire(adapter.encode(plain_text)), "reply_to changed nothing on the wire"
    elif feature == "mentions_text":
        message = Text(to=to, text="hi @5511988887777", mentions=(mention,))
        if not caps.mentions_text:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)
        assert b"5511988887777" in wire.replace(message.text.encode(), b""), (
            "the mentioned number is not on the wire (outside the text)"
        )
    elif feature == "mentions_image":
        message = _image(case, caps, caption="hi @5511988887777", mentions=(mention,))
        if not caps.mentions_image:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)
        assert b"5511988887777" in wire.replace(b"hi @5511988887777", b""), (
            "the mentioned number is not on the wire (outside the caption)"
        )
    elif feature == "view_once":
        message = _image(case, caps, view_once=True)
        if not caps.view_once:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)
        assert wire != _wire(adapter.encode(_image(case, caps))), "view_once changed nothing"
    elif feature == "media_url":
        message = Image(to=to, image=Media(url=case.image_url))
        if not caps.media_url:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)
        assert case.image_url.encode() in wire, "the image URL is not on the wire"
    elif feature == "media_bytes":
        data = _image_bytes()
        message = Image(to=to, image=Media(data=data, filename="probe.jpg"))
        if not caps.media_bytes:
            return _unsupported(adapter, message, feature)
        wire = _accepted(adapter, message, feature)

        assert data in wire or base64.b64encode(data) in wire, "the image bytes are not on the wire"
    elif feature == "image_types":
        _check_image_types(case, adapter)
    elif feature == "max_text_chars":
        limit = caps.max_text_chars
        if limit is None:
            _accepted(adapter, Text(to=to, text="x" * 70_000), "unlimited text")
            return None
        _accepted(adapter, Text(to=to, text="x" * limit), f"text of {limit} characters")
        _refused(adapter, Text(to=to, text="x" * (limit + 1)), InvalidMessage, "over-long text")
    elif feature == "max_caption_chars":
        limit = caps.max_caption_chars
        if limit is None:
            _accepted(adapter, _image(case, caps, caption="x" * 70_000), "unlimited caption")
            return None
        _accepted(adapter, _image(case, caps, caption="x" * limit), f"caption of {limit}")
        _refused(
            adapter, _image(case, caps, caption="x" * (limit + 1)), InvalidMessage, "long caption"
        )
    elif feature == "max_media_bytes":
        _check_media_size(case, adapter)
    elif feature == "client_message_id":
        _check_client_id(case, adapter)
    else:
        raise ValueError(f"unknown feature {feature!r}; one of {', '.join(FEATURES)}")
    return None


def _check_image_types(case: AdapterCase, adapter: Adapter) -> None:
    caps = adapter.capabilities
    if not caps.media_bytes and not caps.media_url:
        return
    for mimetype, name in _IMAGE_FILES.items():
        if caps.media_bytes:
            media = Media(data=_image_bytes(mimetype), filename=name)
        else:
            media = Media(url=f"{case.image_url.rsplit('.', 1)[0]}.{name.rsplit('.', 1)[1]}")
        message = Image(to=case.recipient, image=media)
        if mimetype in caps.image_types:
            _accepted(adapter, message, f"{mimetype} (in image_types)")
        else:
            _refused(adapter, message, InvalidMessage, f"{mimetype} (not in image_types)")


async def _never_read() -> AsyncIterator[bytes]:
    raise AssertionError("the adapter read an image it should have refused by its size")
    yield b""  # pragma: no cover - makes this an async generator


def _check_media_size(case: AdapterCase, adapter: Adapter) -> None:
    caps = adapter.capabilities
    limit = caps.max_media_bytes
    if limit is None or not caps.media_bytes:
        return
    big = Media(stream=_never_read(), size=limit + 1, mimetype="image/jpeg", filename="big.jpg")
    message = Image(to=case.recipient, image=big)
    try:
        adapter.encode(message)
    except InvalidMessage:
        return
    raise AssertionError(f"an image of {limit + 1} bytes (max_media_bytes={limit}) was encoded")


def _check_client_id(case: AdapterCase, adapter: Adapter) -> None:
    to = case.recipient
    key_a, key_b = "contract-key-A-0001", "contract-key-B-0002"
    plain = _wire(adapter.encode(Text(to=to, text="probe")))
    with_a = _wire(adapter.encode(Text(to=to, text="probe", idempotency_key=key_a)))
    with_b = _wire(adapter.encode(Text(to=to, text="probe", idempotency_key=key_b)))
    if adapter.capabilities.client_message_id:
        assert with_a != with_b, "client_message_id is declared but the key changes nothing"
        assert with_a == _wire(adapter.encode(Text(to=to, text="probe", idempotency_key=key_a))), (
            "the same key must ask for the same id (a retry must be recognisable)"
        )
        # The key may hold user data: only an id derived from it goes out.
        assert key_a.encode() not in with_a, "the idempotency key itself is on the wire"
    else:
        assert with_a == plain == with_b, (
            "the key changed the request, but client_message_id is not declared"
        )


# --------------------------------------------------------------------------
# Status classes and hostile bodies
# --------------------------------------------------------------------------


def expected_for(case: AdapterCase, status: int) -> Expect:
    """The expectation for ``status``: the case's override or :data:`STATUS_CONTRACT`."""
    return case.status.get(status) or STATUS_CONTRACT[status]


def check_status(case: AdapterCase, status: int) -> None:
    """Every neutral body with ``status`` gives the contract's error."""
    adapter = case.make()
    expect = expected_for(case, status)
    headers = {"Retry-After": "7"} if status in (429, 503) else {}
    for body in NEUTRAL_BODIES:
        shown = f"HTTP {status} {body[:30]!r}"
        outcome = _decode(adapter, HttpResponse(status=status, headers=headers, body=body))
        assert isinstance(outcome, ProviderError), f"{shown}: gave {outcome!r}, not an error"
        assert isinstance(outcome, expect.error), (
            f"{shown}: {type(outcome).__name__}, expected {expect.error.__name__}"
        )
        assert outcome.outcome in expect.outcomes, f"{shown}: outcome {outcome.outcome}"
        assert outcome.retryable is expect.retryable, f"{shown}: retryable {outcome.retryable}"
        assert outcome.status_code == status, f"{shown}: status_code {outcome.status_code}"
        assert outcome.provider == case.provider, f"{shown}: provider {outcome.provider!r}"
        if status == 429:
            assert outcome.retry_after == 7.0, (
                f"{shown}: Retry-After 7 read as {outcome.retry_after}"
            )


def _garbled(seed: int, bodies: Sequence[bytes], count: int) -> list[bytes]:
    """Deterministic damage to real bodies: cuts, flipped bytes, spliced junk."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data, not security
    out: list[bytes] = []
    for _ in range(count):
        body = bytearray(rng.choice(bodies) or b"{}")
        how = rng.randrange(4)
        if how == 0:
            body = body[: rng.randrange(len(body) + 1)]
        elif how == 1:
            for _ in range(rng.randint(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif how == 2:
            at = rng.randrange(len(body) + 1)
            body[at:at] = rng.choice([b"null", b"[]", b"{", b'"', b"\xff", b"1e999", b"-"])
        else:
            body = bytearray(rng.randbytes(rng.randrange(64)))
        out.append(bytes(body))
    return out


def _result_problem(result: SendResult) -> str | None:
    """What is wrong with a result's field types (a bad decoder's result), if anything."""
    from datetime import datetime

    from ..models import Status

    for name in ("message_id", "chat_id", "short_id"):
        value = getattr(result, name)
        if value is not None and not isinstance(value, str):
            return f"result.{name} is a {type(value).__name__}, not a str"
    if not isinstance(result.status, Status):
        return f"result.status is a {type(result.status).__name__}, not a Status"
    if result.timestamp is not None and not isinstance(result.timestamp, datetime):
        return f"result.timestamp is a {type(result.timestamp).__name__}"
    return None


def check_garbage(case: AdapterCase) -> None:
    """Hostile and garbled bodies with any status give a result or a wamsg error only.

    After a 2xx the message may be out, so a body that does not clearly
    say otherwise never gives ``not_sent`` (checked on the hostile bodies:
    a damaged copy of a real failure answer may still say it failed); a
    non-2xx is never a success; retryable errors are ``not_sent``.
    """
    adapter = case.make()
    real = [goldens.body_of(goldens.load_golden(p)) for p in case.response_goldens()]
    hostile = set(HOSTILE_BODIES)
    bodies = [*HOSTILE_BODIES, *_garbled(len(real), real, 300)]
    failures: list[str] = []
    for status in HOSTILE_STATUSES:
        for body in bodies:
            shown = f"HTTP {status} {body[:40]!r}"
            try:
                outcome = _decode(adapter, HttpResponse(status=status, body=body))
            except Exception as exc:  # anything but a ProviderError is a bug
                failures.append(f"{shown}: {type(exc).__name__}: {exc}")
                continue
            accepted = 200 <= status < 300
            if isinstance(outcome, SendResult) and (problem := _result_problem(outcome)):
                failures.append(f"{shown}: {problem}")
                continue
            if not accepted and not isinstance(outcome, ProviderError):
                failures.append(f"{shown}: a non-2xx gave {outcome!r}")
            if isinstance(outcome, ProviderError):
                if accepted and outcome.outcome is Outcome.NOT_SENT and body in hostile:
                    failures.append(f"{shown}: not_sent after a 2xx")
                if outcome.retryable and outcome.outcome is not Outcome.NOT_SENT:
                    failures.append(f"{shown}: retryable but {outcome.outcome}")
                ra = outcome.retry_after
                if ra is not None and not 0 <= ra <= 86_400:
                    failures.append(f"{shown}: retry_after {ra}")
    assert not failures, "\n".join(failures[:20])


# --------------------------------------------------------------------------
# Secrets and imports
# --------------------------------------------------------------------------


#: A cut through a secret must not leave this much of its start behind.
_SECRET_STUB = 6


def _forms(secret: str) -> list[str]:
    """The ways ``secret`` can be written in a text: as is, URL-encoded, base64."""
    encoded = base64.b64encode(secret.encode()).decode()
    return list(dict.fromkeys([secret, quote(secret, safe=""), quote_plus(secret), encoded]))


def _shows(value: object, secrets: Sequence[str]) -> list[str]:
    """The secrets ``value``'s str or repr shows, whole or by their first characters."""
    text = f"{value!s}\n{value!r}"
    found = []
    for secret in secrets:
        for form in _forms(secret):
            if form[:_SECRET_STUB] in text:
                found.append(secret)
                break
    return found


def _other(value: str) -> str:
    """A different value of the same shape: each letter and digit moved one on."""

    def move(c: str) -> str:
        for low, size in (("0", 10), ("a", 26), ("A", 26)):
            if low <= c < chr(ord(low) + size):
                return chr(ord(low) + (ord(c) - ord(low) + 1) % size)
        return c

    return "".join(move(c) for c in value)


def _shown_parts(adapter: Adapter, request: HttpRequest, with_body: bool) -> dict[str, object]:
    """What a log or a debugger shows of an adapter and its request."""
    parts: dict[str, object] = {"repr(adapter)": repr(adapter), "repr(request)": repr(request)}
    for where, pairs in (("header", request.headers), ("query", request.query)):
        for name, value in pairs:
            if not isinstance(value, Secret):
                # A multipart boundary is random: it is not the secret's doing.
                if value.startswith("multipart/form-data"):
                    value = "multipart/form-data"
                parts[f"{where} {name}"] = value
    if with_body:
        # Parsed (JSON, or multipart fields and files): boundaries aside.
        wire = goldens.request_to_dict(request)
        parts["body"] = wire.get("json", wire.get("form"))
    return parts


def _derived(case: AdapterCase, probes: Sequence[Message]) -> list[str]:
    """Nothing shown changes when only the secrets change (so nothing shown derives from one).

    Catches what no search for the secret's text can: a base64 ``user:pass``
    in a plain header, a hash, a slice of the token in a repr.
    """
    names = case.secret_settings()
    if not names:
        return []
    twin_settings = {**case.settings}
    for name in names:
        twin_settings[name] = _other(_plain(case.settings[name]))
    adapter, twin = case.make(), case.make(**twin_settings)
    leaks = []
    for message in probes:
        one = _shown_parts(adapter, adapter.encode(message), not case.secret_in_body)
        other = _shown_parts(twin, twin.encode(message), not case.secret_in_body)
        for where in sorted(one.keys() | other.keys()):
            if one.get(where) != other.get(where):
                leaks.append(f"{where} changes with the secret settings ({', '.join(names)})")
    return leaks


def _echoes(secret: str) -> list[tuple[str, bytes]]:
    """Answers that repeat ``secret`` the ways gateways and proxies do."""
    url = f"https://gw.example/v1/send?instance=1&token={secret}&to=1"
    quoted = f'"bad token {secret}"'
    return [
        ("text", secret.encode()),
        ("json", f'{{"message": {quoted}, "error": "{secret}", "code": "{secret}"}}'.encode()),
        (
            "html",
            f"<html><title>{secret}</title><body><pre>POST {url}</pre></body></html>".encode(),
        ),
        ("xml", f"<error><code>E1</code><message>for {url}</message></error>".encode()),
    ]


def _error_parts(error: ProviderError) -> list[object]:
    return [error, error.gateway_message, error.body_excerpt, error.error_code, error.args]


def check_secrets(case: AdapterCase) -> None:
    """No secret in a repr, an error, a plain header or query value, or a body.

    Nor a full phone number in a request's repr, a result or an error.

    Errors are tried with answers that echo each secret (as gateways echo
    requests), slid past every point where wamsg cuts error text, so that a
    cut through a secret cannot leave its start behind either.
    """
    secrets = case.secret_values()
    assert secrets, "the case has no secret to look for: set AdapterCase.secrets"
    adapter = case.make()
    leaks: list[str] = []
    if found := _shows(adapter, secrets):
        leaks.append(f"repr(adapter) shows {found}")
    caps = adapter.capabilities
    probes: list[Message] = [Text(to=case.recipient, text="probe")]
    if caps.media_url or caps.media_bytes:
        probes.append(_image(case, caps, caption="probe"))
    for message in probes:
        request = adapter.encode(message)
        if found := _shows(request, secrets):
            leaks.append(f"repr(request) shows {found}")
        for where, pairs in (("header", request.headers), ("query", request.query)):
            for name, value in pairs:
                if not isinstance(value, Secret) and (found := [s for s in secrets if s in value]):
                    leaks.append(f"{where} {name} holds {found} without Secret (logs show it)")
        body = goldens.render_body(request)
        if not case.secret_in_body and (found := [s for s in secrets if s.encode() in body]):
            leaks.append(f"the {type(message).__name__} body holds {found}")
    leaks.extend(_derived(case, probes))
    for status in (200, 400, 401, 403, 404, 429, 500, 503):
        for secret in secrets:
            for shape, body in _echoes(secret):
                outcome = _decode(adapter, HttpResponse(status=status, body=body))
                if isinstance(outcome, ProviderError):
                    for part in _error_parts(outcome):
                        if found := _shows(part, [secret]):
                            leaks.append(f"HTTP {status} {shape} echo: the error shows {found}")
    leaks.extend(_cut_secrets(adapter, secrets))
    leaks.extend(_settings_errors(case, secrets))
    leaks.extend(_phone_numbers(case, adapter))
    assert not leaks, "\n".join(sorted(set(leaks))[:20])


def _cut_secrets(adapter: Adapter, secrets: Sequence[str]) -> list[str]:
    """Slide each echoed secret past the cuts of error texts (excerpts, capped bodies)."""
    leaks = []
    for secret in secrets:
        for shape, echo in _echoes(secret):
            # Texts are cut at a few hundred characters (excerpts, messages);
            # a transport caps bodies, marking them truncated, near 8 KiB.
            cases = [(pad, False) for pad in range(700)]
            cases += [(pad, True) for pad in range(8_192 - 2 * len(echo), 8_200)]
            for pad, truncated in cases:
                body = b"e" * pad + b" " + echo
                if truncated:
                    body = body[:8_192]
                response = HttpResponse(status=500, body=body, truncated=truncated)
                outcome = _decode(adapter, response)
                if not isinstance(outcome, ProviderError):
                    continue
                for part in _error_parts(outcome):
                    if found := _shows(part, [secret]):
                        leaks.append(f"HTTP 500 {shape} echo after {pad} bytes shows {found}")
                        break
    return leaks


def _phone_numbers(case: AdapterCase, adapter: Adapter) -> list[str]:
    """A full phone number never shows in a request's repr, a result or an error."""
    digits = "".join(c for c in case.recipient if c.isdigit())
    written = [digits, f"+{digits}", case.recipient]
    leaks = []
    request = adapter.encode(Text(to=case.recipient, text="probe"))
    if digits in repr(request):
        leaks.append("repr(request) shows the full phone number")
    echoes = [
        f"{digits} is not on WhatsApp".encode(),
        f'{{"message": "{written[1]} is not on WhatsApp", "error": "{digits}@c.us"}}'.encode(),
        f"<html><title>Error for {digits}@s.whatsapp.net</title></html>".encode(),
    ]
    for status in (200, 201, 400, 404, 500):
        for body in echoes:
            outcome = _decode(adapter, HttpResponse(status=status, body=body))
            parts = _error_parts(outcome) if isinstance(outcome, ProviderError) else [outcome]
            if any(digits in f"{part!s}{part!r}" for part in parts):
                leaks.append(f"HTTP {status}: the {type(outcome).__name__} shows the phone number")
    return leaks


def _settings_errors(case: AdapterCase, secrets: Sequence[str]) -> list[str]:
    """Bad settings are refused without echoing a secret."""
    leaks = []
    for name, value in case.settings.items():
        if not isinstance(value, str | Secret):
            continue
        secret = value.reveal() if isinstance(value, Secret) else value
        bad_values = [f"{secret}\n{secret}", f" {secret} \x00"]
        if "url" in name:
            bad_values.append(f"ftp://user:{secrets[0]}@example.com/")
            # urlsplit's own errors quote these: they must not pass through.
            bad_values.append(f"http://[{secrets[0]}]")
            bad_values.append(f"http://{secrets[0]}\uff20example.com")
        for bad in bad_values:
            try:
                case.make(**{**case.settings, name: bad})
            except ConfigError as exc:
                if found := _shows(exc, secrets):
                    leaks.append(f"the error for a bad {name} shows {found}")
            except Exception as exc:
                leaks.append(f"a bad {name} raised {type(exc).__name__}, not ConfigError")
    return leaks


def check_dsn(case: AdapterCase) -> None:
    """Each golden's settings round-trip through a DSN, masked when shown.

    ``ProviderConfig(provider, **settings)`` written with
    ``to_dsn(reveal=True)`` parses back to an equal config whose adapter
    encodes the same request; ``str``, ``repr`` and the masked ``to_dsn()``
    hold no secret. Skipped (``unittest.SkipTest``) for a ``factory`` that
    is not registered: a DSN names a registered provider.
    """
    from ..config import ProviderConfig

    if case.provider not in available():
        # unittest's skip: pytest reports it as skipped, not passed.
        raise unittest.SkipTest(f"{case.provider} is not registered: a DSN names a provider")
    samples = [dict(case.settings)]
    samples += [goldens.load_golden(p)["settings"] for p in case.request_goldens()]
    probe = Text(to=case.recipient, text="probe")
    secrets = case.secret_values()
    for settings in samples:
        config = ProviderConfig(case.provider, **settings)
        dsn = config.to_dsn(reveal=True)
        again = ProviderConfig.from_dsn(dsn)
        assert again == config, f"{config} did not round-trip through its DSN"
        expected = goldens.request_to_dict(case.make(**settings).encode(probe))
        got = goldens.request_to_dict(again.create_adapter().encode(probe))
        assert got == expected, f"the adapter from {config} sends a different request"
        shown = [str(config), repr(config), config.to_dsn(), repr(again)]
        if found := [s for text in shown for s in _shows(text, secrets)]:
            raise AssertionError(f"a masked config shows {sorted(set(found))}")


def check_no_io_imports(case: AdapterCase) -> None:
    """The adapter's module (and what it imports) imports no I/O library."""
    factory = case.factory or get_adapter(case.provider)
    module = getattr(factory, "__module__", None)
    assert isinstance(module, str), f"cannot tell the module of {factory!r}"
    bad = io_imports(module, trusted=case.trusted_imports)
    assert not bad, f"{module} reaches I/O libraries: {bad}"
    loaded = io_loaded_on_import(module)
    assert not loaded, f"importing {module} loads I/O libraries: {loaded}"


# --------------------------------------------------------------------------
# The pytest suite
# --------------------------------------------------------------------------


def _golden_id(path: Path) -> str:
    return path.name.split(".")[0]


class AdapterContract:
    """Subclass with ``case = AdapterCase(...)`` to run the contract on an adapter.

    It needs nothing but pytest: the parametrization is done by
    :meth:`pytest_generate_tests`, which pytest calls on test classes.
    """

    case: ClassVar[AdapterCase]

    def pytest_generate_tests(self, metafunc: Any) -> None:
        """Make one test per golden file, capability and status."""
        case = type(self).case
        if "request_golden" in metafunc.fixturenames:
            paths = case.request_goldens()
            metafunc.parametrize("request_golden", paths, ids=[_golden_id(p) for p in paths])
        if "response_golden" in metafunc.fixturenames:
            paths = case.response_goldens()
            metafunc.parametrize("response_golden", paths, ids=[_golden_id(p) for p in paths])
        if "feature" in metafunc.fixturenames:
            metafunc.parametrize("feature", FEATURES)
        if "status" in metafunc.fixturenames:
            statuses = sorted({*STATUS_CONTRACT, *case.status})
            metafunc.parametrize("status", statuses)

    def test_identity(self) -> None:
        """Named, typed and registered as described."""
        check_identity(self.case)

    def test_request_golden(self, request_golden: Path) -> None:
        """Encodes exactly to the golden, deterministically."""
        check_request_golden(self.case, request_golden)

    def test_response_golden(self, response_golden: Path) -> None:
        """Decodes the golden exactly."""
        check_response_golden(self.case, response_golden)

    def test_capability(self, feature: str) -> None:
        """Declared capabilities are true; undeclared ones refused before I/O."""
        check_capability(self.case, feature)

    def test_status(self, status: int) -> None:
        """The status maps to the contract's error, outcome and retryable."""
        check_status(self.case, status)

    def test_garbage(self) -> None:
        """Hostile bodies give wamsg results or errors only."""
        check_garbage(self.case)

    def test_secrets(self) -> None:
        """No secret in any repr, error or plain field."""
        check_secrets(self.case)

    def test_dsn(self) -> None:
        """Settings round-trip through a DSN; configs are masked."""
        check_dsn(self.case)

    def test_no_io_imports(self) -> None:
        """The adapter imports no I/O library."""
        check_no_io_imports(self.case)
