"""The whatsapp-web.js ``Message`` that WAHA's WEBJS engine answers a send with.

Shared by the WAHA sandbox and the Wawp one (Wawp runs WAHA on WEBJS,
providers.md §1.2): the same answer, built from the message as stored.
"""

from __future__ import annotations

from typing import Any

from .outbox import StoredMessage

__all__ = ["webjs_message"]


def webjs_message(stored: StoredMessage, short_id: str, me: str) -> dict[str, Any]:
    """The core fields of the Message for ``stored`` (§2.5, seed 004), without ``_data``.

    ``short_id`` is the bare id (``3EB0…``) inside ``stored.message_id``; ``me``
    is the sending account's chat id. ``ack`` 0 is PENDING (§2.7).
    """
    image = stored.kind == "image"
    return {
        "id": {
            "fromMe": True,
            "remote": stored.chat_id,
            "id": short_id,
            "_serialized": stored.message_id,
        },
        "ack": 0,
        "hasMedia": image,
        "body": stored.text or stored.caption or "",
        "type": "image" if image else "chat",
        "timestamp": int(stored.received_at),
        "from": me,
        "to": stored.chat_id,
        "deviceType": "web",
        "fromMe": True,
        "isForwarded": False,
        "hasQuotedMsg": stored.reply_to is not None,
    }
