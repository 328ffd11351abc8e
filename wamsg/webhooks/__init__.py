"""Inbound webhooks: verify, parse and deduplicate every gateway's events (docs/webhooks.md).

Sans-I/O, like the adapters: :func:`verify` checks a delivery's signature
over its raw bytes, :func:`parse` turns it into normalized :class:`Event`
objects, :class:`WebhookDeduper` claims each event once in a
:class:`~wamsg.DedupeStore`, and :class:`StatusTracker` moves sent
messages up one status ladder. :class:`WebhookReceiver` puts them together
for an endpoint in any framework; :mod:`wamsg.webhooks.aiohttp` hosts it on
aiohttp.web (imported only when used)::

    receiver = WebhookReceiver("gowa", secret=SECRET, on_event=handle)
    accepted = await receiver.accept(headers, body)  # answer accepted.status
    await receiver.deliver(accepted)  # then run the callback
"""

from __future__ import annotations

from ..errors import (
    WebhookError,
    WebhookPayloadError,
    WebhookReplay,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
    WebhookVerificationUnsupported,
)
from ._model import (
    LADDER,
    Event,
    InboundMessage,
    MediaRef,
    StatusUpdate,
    advances,
    message_key,
    rank,
)
from ._signing import DefaultSecretWarning, sign_headers
from ._wire import PROVIDERS, RETRY_HORIZON, parse, verify
from .dedupe import DEFAULT_TTL, Ticket, WebhookDeduper
from .receiver import DEFAULT_MAX_BODY, Accepted, Failure, WebhookReceiver
from .status import StatusChange, StatusTracker

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_TTL",
    "LADDER",
    "PROVIDERS",
    "RETRY_HORIZON",
    "Accepted",
    "DefaultSecretWarning",
    "Event",
    "Failure",
    "InboundMessage",
    "MediaRef",
    "StatusChange",
    "StatusTracker",
    "StatusUpdate",
    "Ticket",
    "WebhookDeduper",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookReceiver",
    "WebhookReplay",
    "WebhookSignatureInvalid",
    "WebhookSignatureMissing",
    "WebhookVerificationUnsupported",
    "advances",
    "message_key",
    "parse",
    "rank",
    "sign_headers",
    "verify",
]
