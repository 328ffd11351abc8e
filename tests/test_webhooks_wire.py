"""wamsg.webhooks' sans-I/O core: verify() and parse() for gowa, WAHA, Wawp and WUTS.

- goldens (tests/data/webhooks, see its README): every documented body
  parses to exactly its ``.expected.json``;
- signatures: WAHA's published HMAC test vector, tampering of every kind
  refused for gowa, WAHA v1 and WAHA v2, the v2 replay window, Wawp's URL
  token, WUTS refusing to guess, gowa's default secret warned about;
- robustness: hypothesis feeds parse() random JSON objects and mutated
  goldens (it never raises), and non-JSON bodies (WebhookPayloadError only);
- privacy: no golden's phone number in a repr, no secret, signature or body
  in an error;
- receipts match sends: a receipt's ids equal the adapters' SendResult.message_id.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from wamsg import ConfigError, HttpResponse, Secret, Status
from wamsg.errors import (
    WebhookError,
    WebhookPayloadError,
    WebhookReplay,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
    WebhookVerificationUnsupported,
)
from wamsg.providers.gowa import GowaAdapter
from wamsg.providers.waha import WahaAdapter
from wamsg.providers.wawp import WawpAdapter
from wamsg.providers.wuts import WutsAdapter
from wamsg.webhooks._model import Event, message_key
from wamsg.webhooks._signing import (
    DefaultSecretWarning,
    hex_matches,
    normalize_headers,
    sign_headers,
    wuts_body_signature,
)
from wamsg.webhooks._wire import PROVIDERS, RETRY_HORIZON, parse, verify

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "wamsg-hypothesis")

DATA = Path(__file__).parent / "data" / "webhooks"
WEBHOOKS_SRC = Path(__file__).parent.parent / "wamsg" / "webhooks"
SECRET = "whsec-SeCrEt-42"
NOW = 1_700_000_000.0


def goldens() -> list[Path]:
    return sorted(p for p in DATA.glob("*/*.json") if not p.name.endswith(".expected.json"))


def golden_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def normalized(events: list[Event]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        # to_builtins, through JSON so that tuples compare as the lists stored
        data = json.loads(msgspec.json.encode(msgspec.to_builtins(event)))
        data.pop("raw")
        out.append(data)
    return out


def load(provider: str, name: str) -> bytes:
    return (DATA / provider / f"{name}.json").read_bytes()


def flip(body: bytes, position: int) -> bytes:
    changed = bytearray(body)
    changed[position] ^= 0x01
    return bytes(changed)


# --------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", goldens(), ids=golden_id)
def test_golden_parses_to_its_expected_events(path: Path) -> None:
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text("utf-8"))
    events = parse(path.parent.name, {}, path.read_bytes())
    assert normalized(events) == expected
    assert [event.raw for event in events] == [json.loads(path.read_bytes())]


def test_goldens_cover_every_provider_and_case() -> None:
    names = {golden_id(p) for p in goldens()}
    for provider in PROVIDERS:
        for case in ("text", "image", "receipt"):
            assert f"{provider}/{case}" in names
    assert {
        "gowa/image_caption",
        "gowa/image_url",
        "gowa/receipt_read",
        "gowa/chat_presence",
        "waha/receipt_group",
        "waha/image_media_null",
        "waha/session_status",
        "wawp/session_status",
        "wuts/undecryptable",
    } <= names
    for path in goldens():
        assert path.with_name(path.stem + ".expected.json").is_file(), path


@pytest.mark.parametrize(
    ("name", "kind", "fetch", "path", "url"),
    [
        ("image", "image", "gateway_auth", "statics/media/", None),
        ("image_caption", "image", "gateway_auth", "statics/media/", None),
        ("image_url", "image", "unavailable", None, "https://mmg.whatsapp.net/"),
    ],
)
def test_gowa_three_image_shapes(
    name: str, kind: str, fetch: str, path: str | None, url: str | None
) -> None:
    (event,) = parse("gowa", {}, load("gowa", name))
    assert event.message is not None
    assert event.message.kind == kind
    media = event.message.media
    assert media is not None
    assert media.fetch == fetch
    assert (media.path or "").startswith(path or "")
    assert bool(media.path) == bool(path)
    assert (media.url or "").startswith(url or "")
    assert bool(media.url) == bool(url)
    if name != "image":
        assert media.caption == event.message.text == "Check this out!"


def test_receipt_goldens_name_the_status_and_the_event_kind() -> None:
    cases = {
        ("gowa", "receipt"): Status.DELIVERED,
        ("gowa", "receipt_read"): Status.READ,
        ("waha", "receipt"): Status.READ,
        ("waha", "receipt_group"): Status.READ,
        ("wawp", "receipt"): Status.READ,
        ("wuts", "receipt"): Status.DELIVERED,
        ("wuts", "receipt_read"): Status.READ,
    }
    for (provider, name), status in cases.items():
        (event,) = parse(provider, {}, load(provider, name))
        assert event.kind == "status"
        assert event.status is not None
        assert event.status.status is status, (provider, name)
    (self_read,) = parse("gowa", {}, load("gowa", "receipt_read_self"))
    assert self_read.kind == "other"
    assert self_read.name == "message.ack"


# --------------------------------------------------------------------------
# Receipts carry the ids the adapters' SendResult has
# --------------------------------------------------------------------------


def _receipt_id(provider: str, name: str = "receipt") -> str:
    (event,) = parse(provider, {}, load(provider, name))
    assert event.status is not None
    (only,) = event.status.message_ids
    return only


@pytest.mark.parametrize(("name", "jid"), [("receipt", "c.us"), ("receipt_group", "g.us")])
def test_waha_receipt_ids_equal_send_result_message_id(name: str, jid: str) -> None:
    ident = _receipt_id("waha", name)
    # WAHA NOWEB answers a send with the Baileys key; the adapter builds
    # true_<chat>_<id> from it (providers/_waha.py), WEBJS gives _serialized.
    chat = "11111111111@" + ("s.whatsapp.net" if jid == "c.us" else "g.us")
    bare = message_key("waha", ident)
    answer = {"key": {"remoteJid": chat, "fromMe": True, "id": bare}, "status": "PENDING"}
    adapter = WahaAdapter(base_url="http://localhost:3000", api_key="k-123")
    result = adapter.decode(HttpResponse(status=201, body=msgspec.json.encode(answer)))
    assert result.message_id == ident == f"true_11111111111@{jid}_{bare}"
    assert result.short_id == bare


def test_wawp_receipt_id_equals_send_result_message_id() -> None:
    ident = _receipt_id("wawp")
    bare = message_key("wawp", ident)
    answer = {
        "id": {"fromMe": True, "remote": "11111111111@c.us", "id": bare, "_serialized": ident},
        "ack": 0,
        "timestamp": 1759108866,
        "fromMe": True,
    }
    adapter = WawpAdapter(instance_id="ABC123", access_token="t-123")
    result = adapter.decode(HttpResponse(status=200, body=msgspec.json.encode(answer)))
    assert result.message_id == ident
    assert re.fullmatch(r"true_\d+@c\.us_[0-9A-Z]+", ident)


def test_gowa_and_wuts_receipt_ids_are_the_bare_send_ids() -> None:
    gowa_id = _receipt_id("gowa")
    answer = {"code": "SUCCESS", "message": "ok", "results": {"message_id": gowa_id}}
    adapter = GowaAdapter(base_url="http://localhost:3000")
    result = adapter.decode(HttpResponse(status=200, body=msgspec.json.encode(answer)))
    assert result.message_id == gowa_id == message_key("gowa", gowa_id)

    wuts_id = _receipt_id("wuts")
    answer2 = {"success": True, "message_id": wuts_id, "status": "sent"}
    result2 = WutsAdapter(token="t-123").decode(
        HttpResponse(status=200, body=msgspec.json.encode(answer2))
    )
    assert result2.message_id == wuts_id


# --------------------------------------------------------------------------
# WAHA's published HMAC test vector
# --------------------------------------------------------------------------

VECTOR_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
VECTOR_KEY = "my-secret-key"


def test_waha_published_hmac_vector() -> None:
    mac = hmac.new(VECTOR_KEY.encode(), VECTOR_BODY, hashlib.sha512).hexdigest()
    assert mac.startswith("208f8a55dde9e055")
    assert mac.endswith("6153fa89")
    assert len(mac) == 128
    headers = {"X-Webhook-Hmac": mac, "X-Webhook-Hmac-Algorithm": "sha512"}
    verify("waha", headers, VECTOR_BODY, secret=VECTOR_KEY)
    verify("waha", headers, VECTOR_BODY, secret=Secret(VECTOR_KEY))
    assert sign_headers("waha", VECTOR_BODY, VECTOR_KEY) == headers


# --------------------------------------------------------------------------
# Tampering: gowa, WAHA v1, WAHA v2
# --------------------------------------------------------------------------

SCHEMES = ["gowa", "waha-v1", "waha-v2"]


def signed(scheme: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    if scheme == "gowa":
        return sign_headers("gowa", body, secret)
    if scheme == "waha-v1":
        return sign_headers("waha", body, secret)
    return sign_headers("waha", body, secret, timestamp_ms=int(NOW * 1000), version=2)


def check(scheme: str, headers: Any, body: bytes, secret: str = SECRET) -> None:
    provider = "gowa" if scheme == "gowa" else "waha"
    verify(provider, headers, body, secret=secret, now=NOW)


def sig_header(scheme: str) -> str:
    return "X-Hub-Signature-256" if scheme == "gowa" else "X-Webhook-Hmac"


def body_for(scheme: str) -> bytes:
    return load("gowa", "text") if scheme == "gowa" else load("wawp", "text")


def test_signature_from_python_hmac_is_accepted() -> None:
    body = load("gowa", "text")
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    verify("gowa", {"x-hub-signature-256": f"sha256={digest}"}, body, secret=SECRET)
    verify("gowa", [("X-HUB-SIGNATURE-256", f"sha256={digest}")], body, secret=SECRET)
    verify("gowa", {"X-Hub-Signature-256": digest}, body, secret=SECRET)  # bare hex (doc sample)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signed_body_accepted_case_insensitively(scheme: str) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    check(scheme, headers, body)
    check(scheme, {k.lower(): v for k, v in headers.items()}, body)
    check(scheme, list(headers.items()), body)
    check(scheme, iter(list(headers.items())), body)  # read once


@pytest.mark.parametrize("scheme", SCHEMES)
def test_upper_case_hex_accepted(scheme: str) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    name = sig_header(scheme)
    value = headers[name]
    headers[name] = value.upper()  # gowa's "sha256=" prefix too: "SHA256=<HEX>"
    check(scheme, headers, body)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("where", [0, 1, 17, -2, -1, "middle"])
def test_one_flipped_byte_is_refused(scheme: str, where: int | str) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    position = len(body) // 2 if where == "middle" else int(where) % len(body)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        check(scheme, headers, flip(body, position))
    assert not isinstance(caught.value, WebhookReplay)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_wrong_secret_refused(scheme: str) -> None:
    body = body_for(scheme)
    with pytest.raises(WebhookSignatureInvalid):
        check(scheme, signed(scheme, body, secret="another-secret"), body)
    with pytest.raises(WebhookSignatureInvalid):
        check(scheme, signed(scheme, body), body, secret=SECRET + "x")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_signature_header(scheme: str) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    del headers[sig_header(scheme)]
    with pytest.raises(WebhookSignatureMissing) as caught:
        check(scheme, headers, body)
    assert sig_header(scheme) in str(caught.value)
    with pytest.raises(WebhookSignatureMissing):
        check(scheme, {}, body)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signature_of_another_body_refused(scheme: str) -> None:
    body = body_for(scheme)
    other = load("gowa", "reply") if scheme == "gowa" else load("wawp", "image")
    with pytest.raises(WebhookSignatureInvalid):
        check(scheme, signed(scheme, other), body)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-1],
        lambda v: v[:-2],
        lambda v: v[: len(v) // 2],
        lambda v: v + "0",
        lambda v: v[:-1] + "g",
        lambda v: v[:-4] + "zzzz",
        lambda v: "",
        lambda v: "sha256=",
        lambda v: "not hex at all",
        lambda v: v[:-1] + "é",
        lambda v: v[:-1] + "\u0660",  # an Arabic-Indic zero: isdigit, not hex
        lambda v: "\x00" * len(v),
        lambda v: "sha512=" + v.removeprefix("sha256="),
    ],
    ids=[
        "drop1",
        "drop2",
        "half",
        "extra",
        "g",
        "zzzz",
        "empty",
        "prefix-only",
        "garbage",
        "non-ascii",
        "unicode-digit",
        "nul",
        "wrong-prefix",
    ],
)
def test_malformed_signature_refused(scheme: str, mangle: Any) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    name = sig_header(scheme)
    headers[name] = mangle(headers[name])
    with pytest.raises(WebhookSignatureInvalid) as caught:
        check(scheme, headers, body)
    assert headers[name] not in str(caught.value) or not headers[name]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_repeated_signature_header_with_different_values_refused(scheme: str) -> None:
    body = body_for(scheme)
    headers = signed(scheme, body)
    name = sig_header(scheme)
    pairs = [*headers.items(), (name.lower(), "0" * len(headers[name]))]
    with pytest.raises(WebhookSignatureInvalid):
        check(scheme, pairs, body)
    check(scheme, [*headers.items(), (name.lower(), headers[name])], body)  # same value twice


@pytest.mark.parametrize("scheme", SCHEMES)
def test_hostile_header_containers_never_raise_anything_else(scheme: str) -> None:
    body = body_for(scheme)
    for headers in (None, 42, [("a",)], [1, 2], {1: "x"}, {sig_header(scheme): 5}, ["ab"]):
        with pytest.raises((WebhookSignatureMissing, WebhookSignatureInvalid)):
            check(scheme, headers, body)


def test_waha_algorithm_other_than_sha512_refused_and_named_only_when_short() -> None:
    body = VECTOR_BODY
    headers = sign_headers("waha", body, VECTOR_KEY)
    verify("waha", {**headers, "X-Webhook-Hmac-Algorithm": " SHA512 "}, body, secret=VECTOR_KEY)
    verify("waha", {"X-Webhook-Hmac": headers["X-Webhook-Hmac"]}, body, secret=VECTOR_KEY)
    with pytest.raises(WebhookSignatureInvalid, match="'sha256'"):
        verify("waha", {**headers, "X-Webhook-Hmac-Algorithm": "sha256"}, body, secret=VECTOR_KEY)
    odd = "sha512; secret=" + VECTOR_KEY
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify("waha", {**headers, "X-Webhook-Hmac-Algorithm": odd}, body, secret=VECTOR_KEY)
    assert VECTOR_KEY not in str(caught.value)
    assert "unrecognised" in str(caught.value)


def test_waha_unknown_hmac_version_refused() -> None:
    headers = sign_headers("waha", VECTOR_BODY, VECTOR_KEY)
    with pytest.raises(WebhookSignatureInvalid, match="'3'"):
        verify("waha", {**headers, "X-Webhook-Hmac-Version": "3"}, VECTOR_BODY, secret=VECTOR_KEY)
    verify("waha", {**headers, "X-Webhook-Hmac-Version": "1"}, VECTOR_BODY, secret=VECTOR_KEY)


# --------------------------------------------------------------------------
# WAHA v2 replay window, v1 body timestamps
# --------------------------------------------------------------------------


def v2(body: bytes, at: float, secret: str = SECRET) -> dict[str, str]:
    return sign_headers("waha", body, secret, timestamp_ms=int(at * 1000), version=2)


def test_waha_v2_headers_and_mac() -> None:
    body = load("waha", "text")
    headers = v2(body, NOW)
    assert headers["X-Webhook-Hmac-Version"] == "2"
    assert headers["X-Webhook-Timestamp"] == str(int(NOW * 1000))
    expected = hmac.new(
        SECRET.encode(), f"{int(NOW * 1000)}.".encode() + body, hashlib.sha512
    ).hexdigest()
    assert headers["X-Webhook-Hmac"] == expected


@pytest.mark.parametrize("offset", [0, 1, -299, 299, 300, -300])
def test_waha_v2_inside_window_accepted(offset: float) -> None:
    body = load("waha", "text")
    verify("waha", v2(body, NOW + offset), body, secret=SECRET, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400 * 365])
def test_waha_v2_outside_window_is_a_replay(offset: float) -> None:
    body = load("waha", "text")
    with pytest.raises(WebhookReplay) as caught:
        verify("waha", v2(body, NOW + offset), body, secret=SECRET, now=NOW)
    assert "tolerance" in str(caught.value)


def test_waha_v2_custom_tolerance() -> None:
    body = load("waha", "text")
    verify("waha", v2(body, NOW - 3000), body, secret=SECRET, now=NOW, tolerance=3600)
    with pytest.raises(WebhookReplay):
        verify("waha", v2(body, NOW - 20), body, secret=SECRET, now=NOW, tolerance=10)


def test_waha_v2_timestamp_is_signed() -> None:
    body = load("waha", "text")
    headers = v2(body, NOW)
    headers["X-Webhook-Timestamp"] = str(int(NOW * 1000) + 1)
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify("waha", headers, body, secret=SECRET, now=NOW)
    assert not isinstance(caught.value, WebhookReplay)


@pytest.mark.parametrize("stamp", [None, "", "abc", "1.5", "-1", "١٢٣", "9" * 40])
def test_waha_v2_bad_timestamp_header_refused(stamp: str | None) -> None:
    body = load("waha", "text")
    headers = v2(body, NOW)
    if stamp is None:
        del headers["X-Webhook-Timestamp"]
    else:
        headers["X-Webhook-Timestamp"] = stamp
    with pytest.raises(WebhookSignatureInvalid):
        verify("waha", headers, body, secret=SECRET, now=NOW)


def test_waha_v1_checks_the_body_timestamp_only_when_asked() -> None:
    # Wawp's documented body has timestamp 1634567890123 (ms, inside the signed body).
    body = load("wawp", "text")
    headers = sign_headers("waha", body, SECRET)
    verify("waha", headers, body, secret=SECRET, now=NOW)  # no tolerance: no check
    at = 1634567890.123
    verify("waha", headers, body, secret=SECRET, now=at + 60, tolerance=120)
    with pytest.raises(WebhookReplay):
        verify("waha", headers, body, secret=SECRET, now=at + 7200, tolerance=3600)
    # WAHA's docs examples carry no timestamp: nothing to check is a refusal.
    untimed = load("waha", "text")
    with pytest.raises(WebhookReplay, match="no signed timestamp"):
        verify("waha", sign_headers("waha", untimed, SECRET), untimed, secret=SECRET, tolerance=60)
    garbage = b"\x00not json"
    with pytest.raises(WebhookReplay):
        verify("waha", sign_headers("waha", garbage, SECRET), garbage, secret=SECRET, tolerance=60)


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf"), True, "300"])
def test_bad_tolerance_is_a_config_error(tolerance: Any) -> None:
    body = load("waha", "text")
    with pytest.raises(ConfigError):
        verify("waha", v2(body, NOW), body, secret=SECRET, now=NOW, tolerance=tolerance)


# --------------------------------------------------------------------------
# Wawp and WUTS: URL tokens; WUTS refuses to guess
# --------------------------------------------------------------------------


def test_wawp_url_token() -> None:
    body = load("wawp", "text")
    verify("wawp", {}, body, secret=SECRET, url_token=SECRET)
    verify("wawp", {}, body, secret=Secret(SECRET), url_token=SECRET)
    for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper(), "\udcff" + SECRET[1:]):
        with pytest.raises(WebhookSignatureInvalid) as caught:
            verify("wawp", {}, body, secret=SECRET, url_token=wrong)
        assert SECRET not in str(caught.value)
    with pytest.raises(WebhookSignatureMissing) as missing:
        verify("wawp", {}, body, secret=SECRET)
    assert "does not sign" in str(missing.value)
    assert "URL path" in str(missing.value)
    assert sign_headers("wawp", body, SECRET) == {}


def test_wuts_verification_is_unsupported_without_a_url_token() -> None:
    body = load("wuts", "text")
    with pytest.raises(WebhookVerificationUnsupported) as caught:
        verify("wuts", {"X-Anything": "1"}, body, secret=SECRET)
    message = str(caught.value)
    assert "not supported yet" in message
    assert "url_token" in message
    assert "headers{}" in message
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, WebhookError)
    # Even a body signed with wamsg's own guess is not accepted by verify.
    envelope = json.loads(body)
    envelope.pop("signature")
    unsigned = json.dumps(envelope, separators=(",", ":")).encode()
    envelope["signature"] = wuts_body_signature(unsigned, SECRET)
    with pytest.raises(WebhookVerificationUnsupported):
        verify("wuts", {}, json.dumps(envelope).encode(), secret=SECRET)


def test_wuts_url_token_like_wawp() -> None:
    body = load("wuts", "text")
    verify("wuts", {}, body, secret=SECRET, url_token=SECRET)
    with pytest.raises(WebhookSignatureInvalid):
        verify("wuts", {}, body, secret=SECRET, url_token="nope")


def test_wuts_body_signature_is_hmac_sha256_of_the_given_bytes() -> None:
    raw = b'{"id":"event-uuid"}'
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert wuts_body_signature(raw, SECRET) == f"sha256={expected}"
    assert wuts_body_signature(raw, Secret(SECRET)) == f"sha256={expected}"
    assert sign_headers("wuts", raw, SECRET) == {}


# --------------------------------------------------------------------------
# gowa's default secret
# --------------------------------------------------------------------------


def test_gowa_default_secret_warns() -> None:
    body = load("gowa", "text")
    headers = sign_headers("gowa", body, "secret")
    with pytest.warns(DefaultSecretWarning, match="default"):
        verify("gowa", headers, body, secret="secret")
    with pytest.warns(DefaultSecretWarning), pytest.raises(WebhookSignatureInvalid):
        verify("gowa", sign_headers("gowa", body, "other"), body, secret=Secret("secret"))
    assert issubclass(DefaultSecretWarning, UserWarning)


def test_other_secrets_do_not_warn() -> None:
    # pytest turns warnings into errors here (pyproject filterwarnings).
    body = load("gowa", "text")
    verify("gowa", sign_headers("gowa", body, "secret2"), body, secret="secret2")
    verify("waha", sign_headers("waha", body, "secret"), body, secret="secret")


# --------------------------------------------------------------------------
# Misuse
# --------------------------------------------------------------------------


def test_unknown_provider_is_a_config_error_listing_the_four() -> None:
    for call in (
        lambda: verify("twilio", {}, b"{}", secret=SECRET),
        lambda: parse("twilio", {}, b"{}"),
        lambda: sign_headers("twilio", b"{}", SECRET),
    ):
        with pytest.raises(ConfigError) as caught:
            call()
        assert all(p in str(caught.value) for p in PROVIDERS)
    with pytest.raises(ConfigError) as secret_named:
        parse("tok-" + SECRET, {}, b"{}")
    assert SECRET not in str(secret_named.value)


def test_empty_secret_and_text_bodies_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        verify("gowa", {}, b"{}", secret="")
    with pytest.raises(ConfigError):
        verify("gowa", {}, b"{}", secret=Secret(""))
    with pytest.raises(ConfigError):
        verify("gowa", {}, "{}", secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        parse("gowa", {}, "{}")  # type: ignore[arg-type]
    assert parse("gowa", {}, bytearray(b"{}"))[0].kind == "other"


def test_sign_headers_versions() -> None:
    with pytest.raises(ConfigError):
        sign_headers("gowa", b"{}", SECRET, version=2)
    with pytest.raises(ConfigError):
        sign_headers("waha", b"{}", SECRET, version=3)
    v1 = sign_headers("waha", b"{}", SECRET, timestamp_ms=123)
    assert v1["X-Webhook-Timestamp"] == "123"
    assert "X-Webhook-Hmac-Version" not in v1
    assert set(sign_headers("waha", b"{}", SECRET, version=2)) == {
        "X-Webhook-Hmac",
        "X-Webhook-Hmac-Algorithm",
        "X-Webhook-Hmac-Version",
        "X-Webhook-Timestamp",
    }


def test_retry_horizons() -> None:
    assert set(RETRY_HORIZON) == set(PROVIDERS) == {"gowa", "waha", "wawp", "wuts"}
    assert RETRY_HORIZON["gowa"] == 30
    assert RETRY_HORIZON["waha"] == RETRY_HORIZON["wawp"] == 36 * 3600
    assert RETRY_HORIZON["wuts"] == 24 * 3600


# --------------------------------------------------------------------------
# Privacy: no number in a repr, nothing secret in an error
# --------------------------------------------------------------------------

# Full numbers before a JID's "@" ("6289685XXXXXX@" is masked by the docs already).
_JID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{7,})@")


@pytest.mark.parametrize("path", goldens(), ids=golden_id)
def test_no_phone_number_of_a_golden_in_reprs_or_errors(path: Path) -> None:
    body = path.read_bytes()
    numbers = set(_JID_NUMBER.findall(body.decode("utf-8")))
    events = parse(path.parent.name, {}, body)
    shown = " ".join([repr(events), *map(repr, events), *map(str, events)])
    errors = []
    for provider in PROVIDERS:
        for headers in ({}, {"X-Hub-Signature-256": "sha256=00", "X-Webhook-Hmac": "00"}):
            try:
                verify(provider, headers, body, secret=SECRET, url_token=None)
            except WebhookError as error:
                errors.append(f"{error} {error!r}")
    shown += " ".join(errors)
    for number in numbers:
        assert number not in shown, number


@pytest.mark.parametrize("scheme", SCHEMES)
def test_errors_never_hold_secret_signature_or_body(scheme: str) -> None:
    body = body_for(scheme)
    good = signed(scheme, body)
    name = sig_header(scheme)
    attempts: list[tuple[dict[str, str], bytes]] = [
        (good, flip(body, 5)),
        (signed(scheme, body, "x" + SECRET), body),
        ({**good, name: good[name][:-3]}, body),
        ({}, body),
    ]
    fragments = [SECRET, good[name], good[name][-16:], body[20:40].decode()]
    for headers, sent in attempts:
        with pytest.raises(WebhookError) as caught:
            check(scheme, headers, sent)
        text = f"{caught.value} {caught.value!r}"
        for fragment in fragments:
            assert fragment not in text


def test_payload_errors_never_quote_the_body() -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse("waha", {}, b"hello " + SECRET.encode())
    assert SECRET not in str(caught.value)
    assert "hello" not in str(caught.value)


# --------------------------------------------------------------------------
# Parsing details beyond the goldens
# --------------------------------------------------------------------------


def waha_envelope(event: str, payload: Any, **extra: Any) -> bytes:
    envelope = {
        "id": "evt_01jabcdefghjkmnpqrstvwxyz0",
        "timestamp": 1741249702485,
        "session": "default",
        "engine": "WEBJS",
        "event": event,
        "payload": payload,
        **extra,
    }
    return json.dumps(envelope).encode()


def test_waha_envelope_id_is_the_dedupe_key_and_message_any_is_a_message() -> None:
    payload = {
        "id": "false_5511999990000@c.us_3EB0ABC",
        "timestamp": 1741249700,
        "from": "5511999990000@c.us",
        "fromMe": False,
        "to": "5511888880000@c.us",
        "body": "hi",
        "hasMedia": False,
        "replyTo": {"id": "3EB0QUOTED", "body": "earlier"},
        "_data": {"notifyName": "Ana"},
    }
    keys = set()
    for name in ("message", "message.any"):
        (event,) = parse("waha", {}, waha_envelope(name, payload))
        assert event.kind == "message"
        assert event.name == name
        # One WhatsApp message on two subscriptions is one key (waha#1384),
        # with no phone number in it.
        keys.add(event.dedupe_key)
        assert event.dedupe_key.startswith("waha:default:message:")
        assert "5511999990000" not in event.dedupe_key
        assert event.event_id == "evt_01jabcdefghjkmnpqrstvwxyz0"
        assert event.instance == "default"
        assert event.occurred_at is not None
        assert event.occurred_at.year == 2025
        message = event.message
        assert message is not None
        assert (message.chat_id, message.sender) == ("5511999990000@c.us", "5511999990000@c.us")
        assert (message.reply_to, message.sender_name, message.text) == ("3EB0QUOTED", "Ana", "hi")
    assert len(keys) == 1
    (wawp,) = parse("wawp", {}, waha_envelope("message", payload))
    assert wawp.dedupe_key == keys.pop().replace("waha:", "wawp:", 1)


def test_waha_media_null_with_a_webjs_image_hint_is_an_image() -> None:
    payload = {
        "id": "false_5511999990000@c.us_3EB0ABC",
        "from": "5511999990000@c.us",
        "hasMedia": True,
        "media": None,
        "body": "",
        "_data": {"type": "image"},
    }
    (event,) = parse("waha", {}, waha_envelope("message", payload))
    assert event.message is not None
    assert event.message.kind == "image"
    assert event.message.media is not None
    assert event.message.media.fetch == "unavailable"
    payload["media"] = {"url": "http://h/api/files/x.mp4", "mimetype": "video/mp4"}
    (video,) = parse("waha", {}, waha_envelope("message", payload))
    assert video.message is not None
    assert video.message.kind == "other"


def test_waha_group_message_sender_is_the_participant() -> None:
    payload = {
        "id": "false_120363025246125486@g.us_3EB0ABC_5511999990000@c.us",
        "from": "120363025246125486@g.us",
        "participant": "5511999990000@c.us",
        "fromMe": False,
        "body": "hello group",
    }
    (event,) = parse("waha", {}, waha_envelope("message", payload))
    assert event.message is not None
    assert event.message.chat_id == "120363025246125486@g.us"
    assert event.message.sender == "5511999990000@c.us"


@pytest.mark.parametrize(
    ("ack", "name", "status", "raw"),
    [
        (-1, "ERROR", Status.FAILED, "ERROR"),
        (0, "PENDING", Status.QUEUED, "PENDING"),
        (1, "SERVER", Status.SENT, "SERVER"),
        (2, "DEVICE", Status.DELIVERED, "DEVICE"),
        (3, "READ", Status.READ, "READ"),
        (4, "PLAYED", Status.PLAYED, "PLAYED"),
        (2, None, Status.DELIVERED, "2"),
        (2.0, None, Status.DELIVERED, "2"),
        (None, "played", Status.PLAYED, "played"),
        (9, None, Status.UNKNOWN, "9"),
        (9, "WEIRD", Status.UNKNOWN, "WEIRD"),
        (3, "WEIRD", Status.READ, "WEIRD"),
    ],
)
def test_waha_ack_table(ack: Any, name: Any, status: Status, raw: str) -> None:
    payload: dict[str, Any] = {"id": "true_5511999990000@c.us_3EB0ABC", "from": "x@c.us"}
    if ack is not None:
        payload["ack"] = ack
    if name is not None:
        payload["ackName"] = name
    (event,) = parse("waha", {}, waha_envelope("message.ack", payload))
    assert event.status is not None
    assert (event.status.status, event.status.raw_status) == (status, raw)
    assert event.status.message_ids == ("true_5511999990000@c.us_3EB0ABC",)


def test_waha_ack_without_ack_or_id_is_other() -> None:
    for payload in ({"id": "true_1@c.us_A"}, {"ack": 3}, {"id": 5, "ack": 3}, {"ack": True}):
        (event,) = parse("waha", {}, waha_envelope("message.ack", payload))
        assert event.kind == "other"
        assert event.name == "message.ack"


def test_gowa_receipt_variants() -> None:
    def receipt(**payload: Any) -> Event:
        body = json.dumps({"event": "message.ack", "device_id": "d", "payload": payload})
        (event,) = parse("gowa", {}, body.encode())
        return event

    several = receipt(ids=["A1", "", 5, "B2"], receipt_type="read", chat_id="c@g.us")
    assert several.status is not None
    assert several.status.message_ids == ("A1", "B2")
    unknown = receipt(ids=["A1"], receipt_type="server-error")
    assert unknown.status is not None
    assert unknown.status.status is Status.UNKNOWN
    assert unknown.status.raw_status == "server-error"
    for payload in ({"ids": [], "receipt_type": "read"}, {"ids": ["A"]}, {"ids": "A"}):
        assert receipt(**payload).kind == "other"


def test_gowa_other_media_and_fromme() -> None:
    body = json.dumps(
        {
            "event": "message",
            "device_id": "628987654321@s.whatsapp.net",
            "payload": {
                "id": "3EB0C127D7BACC83D6A4",
                "chat_id": "628987654321@s.whatsapp.net",
                "from": "628987654321@s.whatsapp.net",
                "is_from_me": True,
                "body": "Watch this!",
                "video": {"path": "statics/media/x.mp4", "caption": "Watch this!"},
            },
        }
    ).encode()
    (event,) = parse("gowa", {}, body)
    assert event.message is not None
    assert event.message.kind == "other"
    assert event.message.from_me is True
    assert event.message.media is not None
    assert event.message.media.path == "statics/media/x.mp4"


def test_wuts_data_status_wins_over_the_event_name() -> None:
    body = json.dumps(
        {
            "id": "e1",
            "event": "message.read",
            "device_id": "d1",
            "data": {"message_id": "3EB0", "status": "played"},
        }
    ).encode()
    (event,) = parse("wuts", {}, body)
    assert event.status is not None
    assert event.status.status is Status.PLAYED
    assert event.status.raw_status == "played"
    assert event.dedupe_key == "wuts:d1:e1"


def test_batch_bodies_give_one_event_each_with_distinct_keys() -> None:
    text = json.loads(load("waha", "text"))
    other = {**text, "payload": {**text["payload"], "id": "true_11111111111@c.us_BBBB"}}
    body = json.dumps([text, other, {"event": "session.status"}, {"event": "x"}]).encode()
    events = parse("waha", {}, body)
    assert [e.kind for e in events] == ["message", "message", "other", "other"]
    assert len({e.dedupe_key for e in events}) == 4
    # The same message twice in a batch is one message.
    twice = parse("waha", {}, json.dumps([text, text]).encode())
    assert twice[0].dedupe_key == twice[1].dedupe_key
    assert parse("gowa", {}, b"[]") == []
    gowa_batch = parse("gowa", {}, b'[{"event":"x"},{"event":"x"}]')
    assert gowa_batch[0].dedupe_key != gowa_batch[1].dedupe_key


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not json",
        b"\xff\xfe",
        b"null",
        b"42",
        b'"text"',
        b"[1, 2]",
        b'[{"event":"message"}, 3]',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"{} trailing",
        b'{"a": 1',
        b"[" * 100_000,
        b'{"a":' * 100_000,
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_non_objects_are_payload_errors(provider: str, body: bytes) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse(provider, {}, body)
    assert caught.value.provider == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_json_msgspec_refuses_still_parses(provider: str) -> None:
    # Valid JSON that msgspec alone refuses: a lone surrogate, a huge number.
    for body in (b'{"event": "\\ud800"}', b'{"event": "message", "timestamp": 1e999}'):
        (event,) = parse(provider, {}, body)
        assert event.kind == "other"


# --------------------------------------------------------------------------
# Hypothesis: parse never raises on a JSON object
# --------------------------------------------------------------------------

_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_KEYS = sorted(
    {
        key
        for path in goldens()
        for key in re.findall(r'"([A-Za-z_][A-Za-z0-9_.]*)"\s*:', path.read_text("utf-8"))
    }
)
_WORDS = [
    "message",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.received",
    "message.delivered",
    "message.read",
    "message.sent",
    "delivered",
    "read",
    "read-self",
    "image",
    "image/jpeg",
    "READ",
    "true_1@c.us_A",
    "true_1@g.us_A_2@lid",
    "false__",
    "2023-10-15T10:30:00Z",
    "9999-12-31T23:59:59-01:00",
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(_WORDS)
)
_keys = st.sampled_from(_KEYS) | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=25,
)
_objects = st.dictionaries(_keys, _json, max_size=8)


def _check_events(provider: str, events: list[Event]) -> None:
    for event in events:
        assert event.provider == provider
        assert event.kind in ("message", "status", "other")
        assert isinstance(event.name, str)
        assert isinstance(event.dedupe_key, str)
        assert event.dedupe_key
        assert (event.kind == "message") == (event.message is not None)
        assert (event.kind == "status") == (event.status is not None)
        if event.status is not None:
            assert event.status.message_ids
            assert all(event.status.message_ids)
        if event.occurred_at is not None:
            assert event.occurred_at.utcoffset() is not None
        repr(event)
        msgspec.to_builtins(event)


@_SETTINGS
@given(provider=st.sampled_from(PROVIDERS), value=_objects)
def test_parse_never_raises_on_json_objects(provider: str, value: dict[str, Any]) -> None:
    body = json.dumps(value).encode()
    _check_events(provider, parse(provider, {}, body))


@_SETTINGS
@given(
    provider=st.sampled_from(PROVIDERS),
    event=st.sampled_from(_WORDS),
    payload=_objects,
    where=st.sampled_from(["payload", "data"]),
)
def test_parse_never_raises_on_known_events_with_random_payloads(
    provider: str, event: str, payload: dict[str, Any], where: str
) -> None:
    body = json.dumps({"event": event, where: payload, "timestamp": payload.get("timestamp")})
    _check_events(provider, parse(provider, {}, body.encode()))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


_GOLDEN_BODIES = [(p.parent.name, json.loads(p.read_bytes())) for p in goldens()]


@_SETTINGS
@given(data=st.data())
def test_parse_never_raises_on_mutated_goldens(data: st.DataObject) -> None:
    provider, value = data.draw(st.sampled_from(_GOLDEN_BODIES))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(value) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        value = _replace(value, path, data.draw(_json))
    target = data.draw(st.sampled_from([*PROVIDERS, provider]))
    _check_events(target, parse(target, {}, json.dumps(value).encode()))


@_SETTINGS
@given(provider=st.sampled_from(PROVIDERS), body=st.binary(max_size=64))
def test_parse_of_random_bytes_is_events_or_payload_error(provider: str, body: bytes) -> None:
    try:
        events = parse(provider, {}, body)
    except WebhookPayloadError:
        return
    _check_events(provider, events)


@_SETTINGS
@given(
    provider=st.sampled_from(["gowa", "waha"]),
    headers=st.lists(st.tuples(st.sampled_from(["X-Hub-Signature-256", "X-Webhook-Hmac",
        "X-Webhook-Hmac-Algorithm", "X-Webhook-Hmac-Version", "X-Webhook-Timestamp"]),
        st.text(max_size=140)), max_size=5),
    body=st.binary(max_size=64),
)  # fmt: skip
def test_verify_of_random_headers_raises_only_webhook_errors(
    provider: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    with contextlib.suppress(WebhookSignatureMissing, WebhookSignatureInvalid):
        verify(provider, headers, body, secret=SECRET, now=NOW)


def test_hex_matches_unit() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert hex_matches(digest, digest)
    assert hex_matches(digest, f"  sha256={digest.upper()} ", prefix="sha256=")
    assert not hex_matches(digest, digest[:-1])
    assert not hex_matches(digest, "\uff46" * len(digest))  # full-width f, not ASCII
    assert normalize_headers({"A": "1"}) == {"a": ["1"]}
    assert normalize_headers([("A", "1"), ("a", "2"), ("b",), 3]) == {"a": ["1", "2"]}


# --------------------------------------------------------------------------
# Sans-I/O
# --------------------------------------------------------------------------

_MINE = ["_signing.py", "_common.py", "_wire.py", "gowa.py", "waha.py", "wuts.py"]


@pytest.mark.parametrize("name", _MINE)
def test_no_io_library_imported(name: str) -> None:
    tree = ast.parse((WEBHOOKS_SRC / name).read_text("utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aiohttp", "httpx", "anyio", "asyncio", "trio"}


def test_waha_acks_of_received_messages_are_not_receipts() -> None:
    # The account's own read receipt for a message it received (id "false_...").
    payload = {
        "id": "false_5511999990000@c.us_3EB0IN",
        "fromMe": False,
        "ack": 3,
        "ackName": "READ",
    }
    (event,) = parse("waha", {}, waha_envelope("message.ack", payload))
    assert (event.kind, event.status) == ("other", None)
    (by_id,) = parse("waha", {}, waha_envelope("message.ack", {**payload, "fromMe": None}))
    assert by_id.kind == "other"
    (sent,) = parse(
        "waha",
        {},
        waha_envelope(
            "message.ack", {**payload, "fromMe": True, "id": "true_5511999990000@c.us_3EB0"}
        ),
    )
    assert sent.kind == "status"


def test_valid_json_that_strict_decoders_refuse_still_parses() -> None:
    # A byte order mark, and an integer past Python's int-parsing limit: a 400
    # would only make the gateway send the same body again.
    (bom,) = parse("gowa", {}, b'\xef\xbb\xbf{"event":"chat_presence"}')
    assert (bom.kind, bom.name) == ("other", "chat_presence")
    (huge,) = parse("gowa", {}, b'{"event":"x","n":' + b"9" * 5000 + b"}")
    assert huge.kind == "other"
