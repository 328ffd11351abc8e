"""WAHA's answer format, shared by the WAHA adapter and Wawp (a WAHA front end).

Wawp runs WAHA with the WEBJS engine (providers.md §1.2), so both answer a
send with the engine's own message object rather than WAHA's documented
``WAMessage``: WEBJS returns the whatsapp-web.js ``Message`` (``id`` is an
object with ``_serialized``), NOWEB the Baileys proto (``key.id``,
``key.remoteJid``), and the spec's ``WAMessage`` has ``id`` as a string
(providers.md §2.5). Everything here reads all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._redact import Secret, redact
from ..errors import Outcome, ProviderError
from ..http import HttpResponse
from ..models import SendResult, Status
from .base import (
    HTTP_STATUS_RULES,
    ErrorRule,
    decode_json,
    error_from_response,
    excerpt,
    loads,
    nonempty_str,
    unreadable_answer,
)

__all__ = ["ACK_STATUS", "USER_SERVER", "decode_send"]

#: WAHA and Wawp write user chat ids ``<digits>@c.us``; never
#: ``@s.whatsapp.net`` (providers.md §1.6, §2.4).
USER_SERVER = "c.us"

#: WAHA ``ack`` levels (W1 ``enums.dto.ts``; providers.md §2.7):
#: -1 ERROR, 0 PENDING, 1 SERVER, 2 DEVICE, 3 READ, 4 PLAYED.
ACK_STATUS: Mapping[int, Status] = {
    -1: Status.FAILED,
    0: Status.QUEUED,
    1: Status.SENT,
    2: Status.DELIVERED,
    3: Status.READ,
    4: Status.PLAYED,
}

#: Baileys ``WebMessageInfo.status`` (NOWEB): 0 ERROR, 1 PENDING, 2 SERVER_ACK,
#: 3 DELIVERY_ACK, 4 READ, 5 PLAYED; newer Baileys sends the names.
_PROTO_STATUS: Mapping[int | str, Status] = {
    0: Status.FAILED,
    1: Status.QUEUED,
    2: Status.SENT,
    3: Status.DELIVERED,
    4: Status.READ,
    5: Status.PLAYED,
    "ERROR": Status.FAILED,
    "PENDING": Status.QUEUED,
    "SERVER_ACK": Status.SENT,
    "DELIVERY_ACK": Status.DELIVERED,
    "READ": Status.READ,
    "PLAYED": Status.PLAYED,
}


class _EngineMessage(msgspec.Struct):
    """The fields of any engine's answer that we read; the rest (``_data``,
    media keys, thumbnails) is skipped by the decoder without being built.

    Fields are typed loosely on purpose: the same key holds an object in one
    engine and a string in another (Wawp even renders empty arrays as ``{}``,
    providers.md §1.7), and an unexpected type must never fail a send that
    the gateway accepted.
    """

    id: Any = None
    key: Any = None
    ack: Any = None
    status: Any = None
    timestamp: Any = None
    messageTimestamp: Any = None  # noqa: N815 - the engine's own key
    to: Any = None
    # What an error in a 2xx body carries (Nest, WP_Error and ad-hoc shapes).
    error: Any = None
    code: Any = None
    message: Any = None
    statusCode: Any = None  # noqa: N815
    success: Any = None
    data: Any = None


_DECODER = msgspec.json.Decoder(_EngineMessage)


def _ids(m: _EngineMessage) -> tuple[str | None, str | None, str | None]:
    """(serialized id, short id, chat id), in the order providers.md §2.5 gives."""
    ident = m.id
    if isinstance(ident, dict):
        remote = ident.get("remote")
        if isinstance(remote, dict):  # older whatsapp-web.js: remote is a Wid object
            remote = remote.get("_serialized")
        return (
            nonempty_str(ident.get("_serialized")),
            nonempty_str(ident.get("id")),
            nonempty_str(remote),
        )
    if isinstance(ident, str) and ident:
        # "<fromMe>_<chat>_<short>", e.g. "true_111@c.us_3EB0…"
        parts = ident.split("_", 2)
        if len(parts) == 3 and parts[0] in ("true", "false"):
            return ident, parts[2] or None, parts[1] or None
        return ident, ident, None
    key = m.key
    if isinstance(key, dict):
        short, chat = nonempty_str(key.get("id")), nonempty_str(key.get("remoteJid"))
        if chat and chat.endswith("@s.whatsapp.net"):
            # WAHA's NOWEB engine builds its ids (and webhook ids) from the
            # "@c.us" form of the chat (session.noweb.core.ts buildMessageId
            # -> toCusFormat), so the id matches what receipts carry.
            chat = chat.removesuffix("@s.whatsapp.net") + "@c.us"
        if short and chat:
            from_me = "true" if key.get("fromMe", True) else "false"
            return f"{from_me}_{chat}_{short}", short, chat
        return short, short, chat
    return None, None, None


def _status(m: _EngineMessage) -> Status:
    if isinstance(m.ack, int) and not isinstance(m.ack, bool):
        return ACK_STATUS.get(m.ack, Status.UNKNOWN)
    if isinstance(m.status, int | str) and not isinstance(m.status, bool):
        return _PROTO_STATUS.get(m.status, Status.UNKNOWN)
    return Status.UNKNOWN


def _timestamp(m: _EngineMessage) -> datetime | None:
    value = m.timestamp if m.timestamp is not None else m.messageTimestamp
    if isinstance(value, dict):  # protobuf Long {low, high}
        low, high = value.get("low"), value.get("high")
        value = (
            (high << 32) + (low & 0xFFFFFFFF)
            if isinstance(low, int) and isinstance(high, int)
            else None
        )
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            if value > 10**11:  # milliseconds
                value = value / 1000
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _declared_error_status(m: _EngineMessage) -> int | None:
    """The status an error body states for itself (Nest ``statusCode``,
    WP_Error ``data.status``), or None when the body does not look like an error."""
    for candidate in (m.statusCode, m.data.get("status") if isinstance(m.data, dict) else None):
        if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate >= 400:
            return candidate
    return None


def decode_send(
    provider: str,
    response: HttpResponse,
    *,
    status_rules: Mapping[int, ErrorRule] = HTTP_STATUS_RULES,
    code_rules: Mapping[str, ErrorRule] | None = None,
    secrets: Iterable[Secret] = (),
) -> SendResult:
    """Turn a WAHA-family answer to ``sendText``/``sendImage`` into a result or error."""
    if not 200 <= response.status < 300:
        raise error_from_response(
            provider, response, status_rules=status_rules, code_rules=code_rules, secrets=secrets
        )
    if not response.body.strip():
        # Wawp: "If upstream returns an empty 2xx body, treat as success"
        # (providers.md §1.7): accepted, id unknown.
        return SendResult(provider=provider, status=Status.UNKNOWN, raw=response.body)
    m = decode_json(_DECODER, response.body)
    if m is None:
        # Not a JSON object (a proxy's page, invalid UTF-8, nested past the
        # recursion limit). The gateway said 2xx, so the message may well
        # have gone out: report it, but never as not_sent.
        raise unreadable_answer(provider, response, secrets)
    serialized, short, chat = _ids(m)
    if serialized is None:
        declared = _declared_error_status(m)
        says_failed = declared is not None or m.success is False or m.error not in (None, "", False)
        known_code = isinstance(m.code, str) and m.code in (code_rules or {})
        if says_failed or known_code:
            # A 200 whose body describes a failure is a failure.
            raise error_from_response(
                provider,
                response,
                parsed=loads(response.body),
                status_rules=status_rules,
                code_rules=code_rules,
                status=declared or 400,
                secrets=secrets,
            )
        if isinstance(m.code, str) and isinstance(m.message, str):
            # {code, message} with a code we do not know, and no id: not
            # clearly a failure, not a success either. Never claim not_sent.
            raise ProviderError(
                f"{provider}: HTTP {response.status} without a message id "
                f"(code {redact(m.code, secrets)[:80]!r})",
                provider=provider,
                status_code=response.status,
                error_code=redact(m.code, secrets)[:80],
                outcome=Outcome.UNKNOWN,
                body_excerpt=excerpt(response, secrets),
            )
    return SendResult(
        provider=provider,
        message_id=serialized,
        status=_status(m),
        chat_id=chat or nonempty_str(m.to),
        timestamp=_timestamp(m),
        short_id=short,
        raw=response.body,
    )
