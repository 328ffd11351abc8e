"""The public webhook entry points: :func:`verify`, :func:`parse`, and the per-gateway facts.

Sans-I/O: give them the raw headers and the raw body bytes, exactly as
received (a parsed body cannot be verified: the MAC is over the bytes).
Each gateway's rules live in its own module (:mod:`.gowa`, :mod:`.waha`
for WAHA and Wawp, :mod:`.wuts`); what they share is in :mod:`._signing`
and :mod:`._common`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .._redact import Secret
from ..errors import ConfigError
from ..providers.config import shown_name
from . import gowa, waha, wuts
from ._common import Obj, decode_body
from ._model import Event
from ._signing import DefaultSecretWarning, Headers, normalize_headers, reveal, sign_headers

__all__ = [
    "PROVIDERS",
    "RETRY_HORIZON",
    "DefaultSecretWarning",
    "parse",
    "sign_headers",
    "verify",
]

#: The gateways whose webhooks wamsg reads.
PROVIDERS: tuple[str, ...] = ("gowa", "waha", "wawp", "wuts")

#: How long (seconds) after the first attempt a gateway may deliver the same
#: event again: the least TTL a dedupe store needs for that gateway.
RETRY_HORIZON: dict[str, float] = {
    # 5 attempts inside one 30 s context (docs/webhooks.md §1).
    "gowa": 30.0,
    # 15 attempts by default; the worst documented policy, exponential from
    # 2^1 * 2 s with +20% jitter, runs about 36 h (§2, "Retry horizons").
    "waha": 36 * 3600.0,
    # Wawp "retries" but publishes no schedule (§3); WAHA's worst case [G].
    "wawp": 36 * 3600.0,
    # retry_attempts (default 3) with an undocumented backoff (§4) [G].
    "wuts": 24 * 3600.0,
}

_Parser = Callable[[Obj, bytes, int | None], Event]
_PARSERS: dict[str, _Parser] = {
    "gowa": lambda raw, body, index: gowa.parse_event(raw, body=body, index=index),
    "waha": lambda raw, body, index: waha.parse_event(raw, provider="waha", body=body, index=index),
    "wawp": lambda raw, body, index: waha.parse_event(raw, provider="wawp", body=body, index=index),
    "wuts": lambda raw, body, index: wuts.parse_event(raw, body=body, index=index),
}


def _check_provider(provider: object) -> str:
    if not isinstance(provider, str) or provider not in PROVIDERS:
        raise ConfigError(
            f"no webhook format for provider {shown_name(provider)}; "
            f"wamsg reads {', '.join(PROVIDERS)}"
        )
    return provider


def _raw_body(body: object) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise ConfigError("the webhook body must be the raw bytes received, not decoded text")


def verify(
    provider: str,
    headers: Headers,
    body: bytes,
    *,
    secret: str | Secret,
    url_token: str | None = None,
    now: float | None = None,
    tolerance: float | None = None,
) -> None:
    """Check that a webhook delivery comes from ``provider``; return None or raise.

    Args:
        provider: ``"gowa"``, ``"waha"``, ``"wawp"`` or ``"wuts"``.
        headers: the request headers (a mapping or ``(name, value)`` pairs;
            names in any case).
        body: the raw request body, byte for byte.
        secret: gowa's webhook secret, WAHA's HMAC key, or the URL token
            expected for Wawp and WUTS.
        url_token: the secret path segment of the URL the delivery came to
            (Wawp, which does not sign; WUTS, whose scheme is unconfirmed).
        now: the current Unix time (default ``time.time()``), for tests.
        tolerance: seconds a signed time may be away from ``now``. WAHA
            HMAC version 2: ``X-Webhook-Timestamp``, default 300 s. WAHA
            version 1 signs no header time: the body's ``timestamp`` (ms)
            is checked only when ``tolerance`` is given (WAHA retries for
            up to :data:`RETRY_HORIZON` ``["waha"]``, so pick one above that).

    Per gateway (docs/webhooks.md §1-§4):

    * gowa: ``X-Hub-Signature-256`` = ``sha256=`` HMAC-SHA256 of the body;
      warns :class:`DefaultSecretWarning` for gowa's default ``"secret"``.
    * WAHA: ``X-Webhook-Hmac`` = HMAC-SHA512 of the body (version 1), or of
      ``f"{X-Webhook-Timestamp}.{body}"`` with ``X-Webhook-Hmac-Version: 2``.
    * Wawp: unsigned; ``url_token`` must equal ``secret`` (constant time).
    * WUTS: with ``url_token``, as Wawp; without, not supported yet.

    Raises:
        WebhookSignatureMissing: no signature (or URL token) to check.
        WebhookSignatureInvalid: it does not match (a malformed header too).
        WebhookReplay: correctly signed, but the signed time is too far off.
        WebhookVerificationUnsupported: WUTS without a ``url_token``.
        ConfigError: an unknown provider, an empty secret, a bad tolerance,
            or a body that is not bytes.

    No error message holds the secret, the signature or any of the body.
    """
    name = _check_provider(provider)
    key = reveal(secret) if isinstance(secret, (str, Secret)) else None
    if not key:
        raise ConfigError(f"{name}: the webhook secret must be a non-empty string")
    raw = _raw_body(body)
    if tolerance is not None and (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ConfigError("tolerance must be a number of seconds >= 0")
    clock = time.time() if now is None else now
    if name == "gowa":
        gowa.verify(normalize_headers(headers), raw, key)
    elif name == "waha":
        waha.verify(normalize_headers(headers), raw, key, now=clock, tolerance=tolerance)
    elif name == "wawp":
        waha.verify_wawp(url_token, key)
    else:
        wuts.verify(url_token, key)


def parse(provider: str, headers: Headers, body: bytes) -> list[Event]:
    """Read a webhook body as normalized :class:`Event` objects, one per envelope.

    Any JSON object parses: an unknown event, or one whose fields are
    missing or of the wrong type, becomes ``Event(kind="other")`` with its
    name and the decoded body in ``raw``. A JSON list of objects (a batch)
    gives one event per object. ``headers`` are accepted for symmetry with
    :func:`verify`; no gateway needs them to parse today.

    Call :func:`verify` first: ``parse`` trusts the body.

    Raises:
        WebhookPayloadError: the body is not JSON, or not an object (nor a
            list of objects).
        ConfigError: an unknown provider, or a body that is not bytes.
    """
    name = _check_provider(provider)
    raw = _raw_body(body)
    envelopes, batch = decode_body(raw, name)
    parser = _PARSERS[name]
    return [
        parser(envelope, raw, index if batch else None) for index, envelope in enumerate(envelopes)
    ]
