"""The sandbox's memory: what it accepted, newest last, bounded in size."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
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

    @property
    def size(self) -> int:
        """Bytes this message holds (image bytes and text), for the outbox's budget."""
        return len(self.image_bytes or b"") + len(self.text or "") + len(self.caption or "")

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for the sandbox's HTTP API: image bytes become a link.

        It shows full chat ids: the sandbox is a local test tool whose whole
        point is to show what was sent, and its numbers are test numbers.
        """
        view = {
            f: getattr(self, f)
            for f in self.__struct_fields__
            if f != "image_bytes" and getattr(self, f) is not None
        }
        if self.image_bytes is not None:
            view["image_size"] = len(self.image_bytes)
            view["image_sha256"] = hashlib.sha256(self.image_bytes).hexdigest()
            view["image_href"] = f"/_sandbox/messages/{self.seq}/image"
        return view


class Outbox:
    """A bounded, thread-safe store of accepted messages.

    The oldest messages are dropped when ``max_messages`` or ``max_bytes``
    (image bytes and text) is exceeded, so a long-running sandbox never grows
    without bound. ``epoch`` changes on every :meth:`clear`, so a viewer
    polling with ``after=seq`` knows to start over.
    """

    def __init__(self, max_messages: int = 1000, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be positive")
        self._items: deque[StoredMessage] = deque()
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._bytes = 0
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.epoch = 0
        self.dropped = 0
        #: The last sequence number handed out (0 before the first).
        self.last_seq = 0

    def add_new(self, build: Callable[[int], StoredMessage]) -> StoredMessage:
        """Store ``build(seq)`` under the next sequence number, atomically.

        Numbering and appending under one lock keeps the outbox in ``seq``
        order when gateways run on several threads, so a reader polling with
        ``after=last_seq`` never skips a message.
        """
        with self._lock:
            message = build(next(self._seq))
            self.last_seq = message.seq
            self._append(message)
        return message

    def add(self, message: StoredMessage) -> None:
        """Store ``message`` as numbered, dropping the oldest ones beyond the bounds."""
        with self._lock:
            self._append(message)

    def _append(self, message: StoredMessage) -> None:
        # Called with the lock held.
        self._items.append(message)
        self._bytes += message.size
        # The newest message always stays, even if it alone is over budget.
        while len(self._items) > 1 and (
            len(self._items) > self._max_messages or self._bytes > self._max_bytes
        ):
            self._bytes -= self._items.popleft().size
            self.dropped += 1

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.epoch += 1

    def holds(self, seq: int) -> bool:
        """Whether the message with sequence number ``seq`` is still kept.

        Messages leave only from the oldest end (or all at once on clear),
        so a sequence number between the oldest and the newest kept is kept.
        """
        with self._lock:
            return bool(self._items) and self._items[0].seq <= seq <= self._items[-1].seq

    def get(self, seq: int) -> StoredMessage | None:
        """The message with sequence number ``seq``, if still kept."""
        with self._lock:
            for message in reversed(self._items):
                if message.seq == seq:
                    return message
        return None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[StoredMessage]:
        with self._lock:
            return iter(list(self._items))

    def find(
        self, *, provider: str | None = None, chat_id: str | None = None, after: int = 0
    ) -> list[StoredMessage]:
        """Messages matching every filter given, oldest first.

        ``after`` keeps only messages with a larger sequence number.
        """
        return [
            m
            for m in self
            if m.seq > after
            and (provider is None or m.provider == provider)
            and (chat_id is None or m.chat_id == chat_id)
        ]
