"""Webhook signatures: header lookup, constant-time checks and the gateways' own signing.

Shared by every gateway's ``verify`` (sans-I/O). :func:`sign_headers`
produces exactly the signature headers each gateway sends, so that the
sandbox and tests can fire deliveries a real receiver accepts.

Nothing here ever puts a secret, a signature or a body in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .._redact import Secret
from ..errors import (
    ConfigError,
    WebhookReplay,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
)
from ..providers.config import shown_name

__all__ = [
    "GOWA_DEFAULT_SECRET",
    "GOWA_SIGNATURE",
    "WAHA_ALGORITHM",
    "WAHA_HMAC",
    "WAHA_TIMESTAMP",
    "WAHA_VERSION",
    "DefaultSecretWarning",
    "Headers",
    "check_window",
    "hex_matches",
    "hmac_hex",
    "normalize_headers",
    "one_header",
    "reveal",
    "sign_headers",
    "token_matches",
    "verify_url_token",
    "waha_v2_message",
    "wuts_body_signature",
]

#: Headers as a mapping (a multidict too) or as ``(name, value)`` pairs.
Headers = Mapping[str, str] | Iterable[tuple[str, str]]

#: gowa's built-in webhook secret (``src/config/settings.go:49``, docs/webhooks.md §1).
GOWA_DEFAULT_SECRET = "secret"  # noqa: S105 - the published default, to warn about

# gowa's header (docs/webhooks.md §1; gowa-webhook-payload.md "Security").
GOWA_SIGNATURE = "X-Hub-Signature-256"
# WAHA's headers (waha-docs "Headers", "HMAC authentication"; docs/webhooks.md §2).
WAHA_HMAC = "X-Webhook-Hmac"
WAHA_ALGORITHM = "X-Webhook-Hmac-Algorithm"
WAHA_VERSION = "X-Webhook-Hmac-Version"
WAHA_TIMESTAMP = "X-Webhook-Timestamp"

_HEX = re.compile(r"[0-9a-f]+")


class DefaultSecretWarning(UserWarning):
    """The webhook secret is the gateway's published default (gowa's ``"secret"``).

    Anyone can sign with it: set ``WHATSAPP_WEBHOOK_SECRET`` (or
    ``--webhook-secret``, or the device's ``webhook_secret``) on the gateway
    and the same value in wamsg.
    """


def reveal(secret: str | Secret) -> str:
    """The secret's value, whether it came wrapped or not."""
    return secret.reveal() if isinstance(secret, Secret) else secret


# -- headers --------------------------------------------------------------------


def normalize_headers(headers: Headers | Any) -> dict[str, list[str]]:
    """Headers by lower-cased name, every value kept (repeated headers too).

    Accepts a mapping (``dict``, aiohttp's ``CIMultiDictProxy``, Starlette's
    ``Headers``) or an iterable of pairs, read once. Entries that are not
    ``(str, str)`` pairs are dropped; a value that is not a string is kept
    as ``""`` so that it can only fail a check, never raise.
    """
    found: dict[str, list[str]] = {}
    items: Iterable[Any]
    try:
        items = headers.items() if isinstance(headers, Mapping) else iter(headers)
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
                continue
            name, value = item
            found.setdefault(name.lower(), []).append(value if isinstance(value, str) else "")
    except TypeError:  # not iterable: no headers at all
        return {}
    return found


def one_header(found: dict[str, list[str]], name: str, provider: str) -> str | None:
    """The value of header ``name`` in ``found`` (see :func:`normalize_headers`), or None.

    Raises:
        WebhookSignatureInvalid: the header came several times with different
            values (which one the sender meant cannot be known).
    """
    values = found.get(name.lower())
    if not values:
        return None
    if any(value != values[0] for value in values[1:]):
        raise WebhookSignatureInvalid(
            f"{provider}: the {name} header was sent more than once, with different values",
            provider=provider,
        )
    return values[0]


# -- comparisons ----------------------------------------------------------------


def hex_matches(expected_hex: str, received: str, *, prefix: str = "") -> bool:
    """Whether ``received`` is the hex digest ``expected_hex``, in constant time.

    Surrounding spaces and an optional ``prefix`` (``"sha256="``, any case)
    are removed and the hex is lower-cased first, so upper-case hex is
    accepted. Anything else (non-ASCII, non-hex, a wrong length) is simply
    False: only the format, which is public, is checked before the
    constant-time comparison of the digests themselves.
    """
    value = received.strip()
    if prefix and value[: len(prefix)].lower() == prefix.lower():
        value = value[len(prefix) :]
    if not value.isascii():
        return False
    value = value.lower()
    if len(value) != len(expected_hex) or not _HEX.fullmatch(value):
        return False
    return hmac.compare_digest(expected_hex.encode("ascii"), value.encode("ascii"))


def token_matches(token: str, secret: str) -> bool:
    """Whether a URL token equals the secret, in constant time, lengths included.

    Both sides are hashed first, so the comparison does not stop early on a
    length difference. ``surrogatepass`` keeps the encoding one-to-one (a
    percent-decoded path may hold lone surrogates).
    """
    left = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    right = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(left, right)


def verify_url_token(provider: str, url_token: object, secret: str, *, missing: str) -> None:
    """Check the secret token of the webhook URL's path against ``secret``.

    For gateways that do not sign (Wawp, docs/webhooks.md §3) or whose
    scheme wamsg cannot check yet (WUTS, §4): the token in the URL the
    gateway was given is then the only proof of the sender.

    Raises:
        WebhookSignatureMissing: no token (``missing`` says what to do).
        WebhookSignatureInvalid: the token is not the secret.
    """
    if url_token is None:
        raise WebhookSignatureMissing(f"{provider}: no URL token: {missing}", provider=provider)
    if not isinstance(url_token, str) or not token_matches(url_token, secret):
        raise WebhookSignatureInvalid(
            f"{provider}: the URL token does not match the secret", provider=provider
        )


def check_window(
    provider: str, signed_at: float, *, now: float, tolerance: float, what: str
) -> None:
    """Refuse a signed time (Unix seconds) more than ``tolerance`` seconds from ``now``.

    Raises:
        WebhookReplay: the time is outside the window, either way (a clock
            ahead of ours is refused too, or a captured delivery could be
            replayed for longer).
    """
    skew = abs(now - signed_at)
    if not skew <= tolerance:  # NaN is outside too
        direction = "old" if signed_at < now else "ahead"
        raise WebhookReplay(
            f"{provider}: {what} is {skew:.0f} s {direction}, over the {tolerance:g} s "
            "tolerance (a replayed or very late delivery)",
            provider=provider,
        )


def hmac_hex(secret: str, message: bytes, algorithm: str) -> str:
    """Hex HMAC of ``message`` under ``secret`` (UTF-8), ``algorithm`` ``sha256``/``sha512``."""
    return hmac.new(secret.encode("utf-8", "surrogatepass"), message, algorithm).hexdigest()


def waha_v2_message(timestamp: str, body: bytes) -> bytes:
    """What WAHA's HMAC version 2 signs: ``f"{timestamp}.{body}"`` (docs/webhooks.md §2)."""
    return timestamp.encode("ascii") + b"." + body


# -- signing, as the gateways do it ---------------------------------------------


def sign_headers(
    provider: str,
    body: bytes,
    secret: str | Secret,
    *,
    timestamp_ms: int | None = None,
    version: int = 1,
) -> dict[str, str]:
    """The signature headers ``provider`` sends with ``body``, exactly as it sends them.

    * gowa: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`` (docs/webhooks.md §1).
    * WAHA, version 1: ``X-Webhook-Hmac: <hex HMAC-SHA512(body)>`` and
      ``X-Webhook-Hmac-Algorithm: sha512``, plus ``X-Webhook-Timestamp``
      (not signed) when ``timestamp_ms`` is given (docs/webhooks.md §2).
    * WAHA, version 2 (a fork's scheme, docs/webhooks.md §2 [G]): the MAC is
      over ``f"{timestamp}.{body}"``, with ``X-Webhook-Hmac-Version: 2`` and
      ``X-Webhook-Timestamp: <timestamp>`` (``timestamp_ms``, default now).
    * Wawp: ``{}``: Wawp does not sign (docs/webhooks.md §3).
    * WUTS: ``{}``: WUTS puts its signature in the body, see
      :func:`wuts_body_signature` (docs/webhooks.md §4).

    Raises:
        ConfigError: an unknown provider, or a version the gateway does not have.
    """
    key = reveal(secret)
    if version not in (1, 2) or (version == 2 and provider != "waha"):
        shown = repr(version) if type(version) is int else "(not shown)"
        raise ConfigError(f"{shown_name(provider)} webhooks have no HMAC version {shown}")
    if provider == "gowa":
        return {GOWA_SIGNATURE: "sha256=" + hmac_hex(key, body, "sha256")}
    if provider == "waha":
        if version == 2:
            stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
            return {
                WAHA_HMAC: hmac_hex(key, waha_v2_message(stamp, body), "sha512"),
                WAHA_ALGORITHM: "sha512",
                WAHA_VERSION: "2",
                WAHA_TIMESTAMP: stamp,
            }
        headers = {WAHA_HMAC: hmac_hex(key, body, "sha512"), WAHA_ALGORITHM: "sha512"}
        if timestamp_ms is not None:
            headers[WAHA_TIMESTAMP] = str(timestamp_ms)
        return headers
    if provider in ("wawp", "wuts"):
        return {}
    raise ConfigError("unknown webhook provider; wamsg signs gowa, waha, wawp and wuts")


def wuts_body_signature(body_without_signature: bytes, secret: str | Secret) -> str:
    """**wamsg's guess** at WUTS's ``signature`` body field, for the sandbox only.

    WUTS documents that a delivery carries ``"signature": "sha256=<hex>"``
    inside the JSON body, but not what is signed (docs/webhooks.md §4 [G]).
    This guess is ``"sha256=" + hex HMAC-SHA256(secret, body)`` where
    ``body_without_signature`` is the compact JSON envelope *without* the
    ``signature`` field; the sandbox then adds the field to the envelope.

    :func:`wamsg.webhooks.verify` does **not** use it: ``verify("wuts")``
    refuses to guess (``WebhookVerificationUnsupported``) until the scheme is
    confirmed against a real WUTS delivery.
    """
    return "sha256=" + hmac_hex(reveal(secret), body_without_signature, "sha256")
