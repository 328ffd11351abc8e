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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any, ClassVar, Literal

from ..http import HttpRequest, HttpResponse
from .outbox import Outbox, StoredMessage

__all__ = ["GatewaySandbox", "body_bytes", "reason_phrase", "recording_stores"]

_HEX = "0123456789ABCDEF"

# The messages stored while one request is handled. A ContextVar, not an
# attribute: requests are handled on the event loop and on worker threads at
# once, and each needs its own list.
_stored_now: ContextVar[list[StoredMessage] | None] = ContextVar("_stored_now", default=None)


@contextmanager
def recording_stores() -> Iterator[list[StoredMessage]]:
    """Collect the messages :meth:`GatewaySandbox.store` keeps inside the block."""
    stored: list[StoredMessage] = []
    token = _stored_now.set(stored)
    try:
        yield stored
    finally:
        _stored_now.reset(token)


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (``"Error"`` for unregistered ones)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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

    def media_authorized(self, request: HttpRequest) -> bool:
        """Whether a GET of incoming media carries this gateway's credentials."""
        return True

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
        received_at = self.clock()
        message = self.outbox.add_new(
            lambda seq: StoredMessage(
                seq=seq,
                provider=self.provider,
                kind=kind,
                chat_id=chat_id,
                message_id=message_id,
                received_at=received_at,
                **fields,
            )
        )
        recorder = _stored_now.get()
        if recorder is not None:
            recorder.append(message)
        return message
