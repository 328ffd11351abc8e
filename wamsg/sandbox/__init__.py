"""A local sandbox gateway that speaks the providers' wire protocols.

Use it to try wamsg, and to test against, with no account and no network::

    async with running_sandbox() as (sandbox, base_url):
        settings = sandbox.credentials("wawp", base_url)
        async with wamsg.Client("wawp", **settings) as client:
            await client.send_text("+5511999990000", "hi")
        print(sandbox.outbox.find(provider="wawp"))
"""

from __future__ import annotations

from .outbox import Outbox, StoredMessage
from .server import Sandbox, build_app, running_sandbox

__all__ = ["Outbox", "Sandbox", "StoredMessage", "build_app", "running_sandbox"]
