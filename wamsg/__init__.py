"""wamsg: send WhatsApp messages through several gateways behind one async interface.

::

    import wamsg

    async with wamsg.Client("wawp", instance_id="...", access_token="...") as client:
        result = await client.send_text("+55 11 99999-0000", "Hello")
        print(result.message_id, result.status)

    # or from one string: wamsg.Client.from_dsn("wawp://INSTANCE:TOKEN@api.wawp.net"),
    # the environment (WAMSG_DSN): wamsg.Client.from_env(), or a TOML file with a
    # failover order: wamsg.Router.from_config("wamsg.toml") (docs/configuration.md)
"""

from __future__ import annotations

import logging as _logging

from ._redact import Secret
from ._version import __version__
from .client import Client
from .config import Config, ProviderConfig, load_config
from .cooldown import CooldownStore, Health, MemoryCooldownStore
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    Disconnected,
    IdempotencyError,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidMessage,
    NoProviderAvailable,
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    SendTimeout,
    StoreUnavailable,
    TransportError,
    UnsupportedFeature,
    WamsgError,
)
from .hooks import DeliveryEvent, Hooks
from .http import ComposedBody, HttpRequest, HttpResponse, MediaChunks, StreamBody
from .idempotency import DedupeStore, MemoryDedupeStore
from .limits import InFlightLimiter, Limits, LocalInFlightLimiter, LocalRateLimiter, RateLimiter
from .models import Attempt, Image, Media, Message, Recipient, SendResult, Status, Text
from .providers import Adapter, Capabilities, available, create_adapter, register
from .providers.config import DsnFormat
from .retry import NO_RETRY, RetryPolicy
from .router import Router
from .transports import MockTransport, Timeouts, Transport

# A library logs, the application decides where to: without this, Python's
# last-resort handler would print wamsg's warnings to stderr.
_logging.getLogger("wamsg").addHandler(_logging.NullHandler())

__all__ = [
    "NO_RETRY",
    "Adapter",
    "Attempt",
    "AuthenticationError",
    "Capabilities",
    "Client",
    "ComposedBody",
    "Config",
    "ConfigError",
    "ConnectError",
    "CooldownStore",
    "DedupeStore",
    "DeliveryEvent",
    "Disconnected",
    "DsnFormat",
    "Health",
    "Hooks",
    "HttpRequest",
    "HttpResponse",
    "IdempotencyError",
    "IdempotencyInFlight",
    "IdempotencyKeyReused",
    "Image",
    "InFlightLimiter",
    "InvalidMessage",
    "Limits",
    "LocalInFlightLimiter",
    "LocalRateLimiter",
    "Media",
    "MediaChunks",
    "MemoryCooldownStore",
    "MemoryDedupeStore",
    "Message",
    "MockTransport",
    "NoProviderAvailable",
    "Outcome",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "RateLimiter",
    "Recipient",
    "Rejected",
    "RetryPolicy",
    "Router",
    "Secret",
    "SendResult",
    "SendTimeout",
    "Status",
    "StoreUnavailable",
    "StreamBody",
    "Text",
    "Timeouts",
    "Transport",
    "TransportError",
    "UnsupportedFeature",
    "WamsgError",
    "__version__",
    "available",
    "create_adapter",
    "load_config",
    "register",
]
