"""wamsg: send WhatsApp messages through several gateways behind one async interface.

::

    import wamsg

    async with wamsg.Client("wawp", instance_id="...", access_token="...") as client:
        result = await client.send_text("+55 11 99999-0000", "Hello")
        print(result.message_id, result.status)
"""

from __future__ import annotations

from ._redact import Secret
from ._version import __version__
from .client import Client
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    Disconnected,
    InvalidMessage,
    Outcome,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    SendTimeout,
    TransportError,
    UnsupportedFeature,
    WamsgError,
)
from .http import ComposedBody, HttpRequest, HttpResponse, MediaChunks, StreamBody
from .models import Attempt, Image, Media, Message, Recipient, SendResult, Status, Text
from .providers import Adapter, Capabilities, available, create_adapter, register
from .transports import MockTransport, Timeouts, Transport

__all__ = [
    "Adapter",
    "Attempt",
    "AuthenticationError",
    "Capabilities",
    "Client",
    "ComposedBody",
    "ConfigError",
    "ConnectError",
    "Disconnected",
    "HttpRequest",
    "HttpResponse",
    "Image",
    "InvalidMessage",
    "Media",
    "MediaChunks",
    "Message",
    "MockTransport",
    "Outcome",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "Recipient",
    "Rejected",
    "Secret",
    "SendResult",
    "SendTimeout",
    "Status",
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
    "register",
]
