"""The sandbox's memory: what it accepted, newest last, bounded in size."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from .._redact import redact

__all__ = ["Outbox", "StoredMessage"]


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message a sandbox gateway accepted."""

    seq: int
    provider: str
    kind: Literal["text", "image"]
    chat_id: str
    message_id: str
    received_at: float
    text: str | None = None
    caption: str | None = None
    image_url: str | None = None
    image_bytes: bytes | None = None
    mimetype: str | None = None
    filename: str | None = None
    reply_to: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        # Like everything wamsg prints: no full number, no megabytes of image.
        content = f"chars={len(self.text)}" if self.text is not None else ""
        if self.kind == "image":
            source = (
                f"{len(self.image_bytes)} bytes"
                if self.image_bytes is not None
                else redact(self.image_url or "")
            )
            content = f"image={source!r}, mimetype={self.mimetype!r}"
        return (
            f"StoredMessage(seq={self.seq}, provider={self.provider!r}, kind={self.kind!r}, "
            f"chat_id={redact(self.chat_id)!r}, {content})"
        )


class Outbox:
    """A bounded, thread-safe store of accepted messages.

    The oldest message is dropped when ``max_messages`` is reached, so a
    long-running sandbox never grows without bound.
    """

    def __init__(self, max_messages: int = 1000) -> None:
        self._items: deque[StoredMessage] = deque(maxlen=max_messages)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def next_seq(self) -> int:
        """A new sequence number (1, 2, ...)."""
        with self._lock:
            return next(self._seq)

    def add(self, message: StoredMessage) -> None:
        """Store ``message``."""
        with self._lock:
            self._items.append(message)

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[StoredMessage]:
        with self._lock:
            return iter(list(self._items))

    def find(
        self, *, provider: str | None = None, chat_id: str | None = None
    ) -> list[StoredMessage]:
        """Messages matching every filter given, oldest first."""
        return [
            m
            for m in self
            if (provider is None or m.provider == provider)
            and (chat_id is None or m.chat_id == chat_id)
        ]
