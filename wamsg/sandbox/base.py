"""What every sandbox gateway shares: the outbox, seeded ids, a clock, errors.

A sandbox gateway is a pure ``handle(HttpRequest) -> HttpResponse``; the
aiohttp server (server.py) and the socket-free MockTransport binding
(wamsg.testing) are thin shells around it. Each provider module subclasses
:class:`GatewaySandbox` and answers in that gateway's own formats.
"""

from __future__ import annotations

import abc
import random
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from ..http import HttpRequest, HttpResponse
from .outbox import Outbox, StoredMessage

__all__ = ["GatewaySandbox", "body_bytes"]

_HEX = "0123456789ABCDEF"


def body_bytes(request: HttpRequest) -> bytes:
    """The request body as bytes (the shells always hand the handlers bytes)."""
    return request.body if isinstance(request.body, bytes) else b""


class GatewaySandbox(abc.ABC):
    """One gateway's send API, answered from memory.

    Args:
        outbox: where accepted messages go.
        seed: seeds the message ids, for repeatable runs.
        clock: the time source (seconds since the epoch).
    """

    #: The provider name, as in ``Client(provider, ...)``.
    provider: ClassVar[str]

    def __init__(
        self,
        outbox: Outbox,
        *,
        seed: int | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        # Ids, not secrets: a seeded PRNG makes runs repeatable.
        self.random = random.Random(seed)  # noqa: S311
        self.clock = clock

    @abc.abstractmethod
    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request; ``request.url`` is the path below the provider prefix."""

    @abc.abstractmethod
    def error(self, status: int, message: str, code: str | None = None) -> HttpResponse:
        """An error answer in this gateway's own format."""

    @abc.abstractmethod
    def auth_error(self) -> HttpResponse:
        """What this gateway answers to missing or wrong credentials."""

    @abc.abstractmethod
    def credentials(self, base_url: str) -> dict[str, Any]:
        """Client settings that reach this gateway served at ``base_url``.

        ``base_url`` already includes the provider prefix (``.../wawp``).
        """

    def hex_id(self, length: int = 16, prefix: str = "3EB0") -> str:
        """A message id like WhatsApp Web's own: ``3EB0`` and upper-case hex."""
        return prefix + "".join(self.random.choices(_HEX, k=length))

    def store(
        self,
        *,
        kind: Literal["text", "image"],
        chat_id: str,
        message_id: str,
        **fields: Any,
    ) -> StoredMessage:
        """Put an accepted message in the outbox and return it."""
        message = StoredMessage(
            seq=self.outbox.next_seq(),
            provider=self.provider,
            kind=kind,
            chat_id=chat_id,
            message_id=message_id,
            received_at=self.clock(),
            **fields,
        )
        self.outbox.add(message)
        return message
