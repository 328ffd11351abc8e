"""A local sandbox gateway that speaks the providers' wire protocols.

Use it to try wamsg, and to test against, with no account and no network::

    async with running_sandbox() as (sandbox, base_url):
        async with wamsg.Client("wawp", **sandbox.credentials("wawp")) as client:
            await client.send_text("+5511999990000", "hi")
        print(sandbox.outbox.find(provider="wawp"))

Run it as a server with ``wamsg sandbox`` or ``python -m wamsg.sandbox``; its
web inbox is at ``/``.
"""

from __future__ import annotations

from .faults import Fault, parse_fault
from .outbox import Outbox, StoredMessage
from .server import Reply, RequestRecord, Sandbox, build_app, running_sandbox
from .webhooks import DeliveryRecord, WebhookTarget, parse_webhook_option

__all__ = [
    "DeliveryRecord",
    "Fault",
    "Outbox",
    "Reply",
    "RequestRecord",
    "Sandbox",
    "StoredMessage",
    "WebhookTarget",
    "build_app",
    "parse_fault",
    "parse_webhook_option",
    "running_sandbox",
]
