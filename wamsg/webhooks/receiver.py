"""Receiving webhooks, framework-free: check, parse, dedupe, answer, then run the callback.

:class:`WebhookReceiver` does the whole job of an endpoint except the HTTP
server, so that any framework can host it::

    accepted = await receiver.accept(headers, body)  # verify, parse, dedupe
    # ... answer accepted.status to the gateway now ...
    await receiver.deliver(accepted)  # then run on_event for each new event

:func:`wamsg.webhooks.aiohttp.aiohttp_handler` does exactly that for
aiohttp.web; docs/webhooks.md shows FastAPI/Starlette.

Answer fast: every gateway retries a slow answer (gowa after 10 s, WAHA's
axios has no timeout but Wawp "will assume the delivery failed",
docs/webhooks.md §1-§3), and a retry is a duplicate. The callback runs
after the answer, so its failure cannot be reported to the gateway; it is
never lost either: it is logged, counted, kept in :attr:`failed` (bounded)
with its error and passed to ``on_error``, its dedupe claim is released so
a redelivery is processed, and :meth:`retry_failed` runs it again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

import anyio
import msgspec

from .._redact import Secret, redact
from ..errors import (
    ConfigError,
    WebhookPayloadError,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
    WebhookVerificationUnsupported,
)
from ..providers.config import shown_name
from ._model import Event
from ._wire import PROVIDERS, RETRY_HORIZON, parse, verify
from .dedupe import Ticket, WebhookDeduper
from .status import StatusTracker

__all__ = ["DEFAULT_MAX_BODY", "Accepted", "Failure", "WebhookReceiver"]

_log = logging.getLogger("wamsg.webhooks")

#: Largest body read by default. Webhook bodies are JSON without media
#: bytes (images come as references), a few KB; 1 MiB leaves room for long
#: texts and WAHA's ``_data`` while refusing floods.
DEFAULT_MAX_BODY = 1024 * 1024

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
EventCallback = Callable[[Event], Awaitable[object]]


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`WebhookReceiver.accept` decided about one delivery.

    Attributes:
        status: the HTTP status to answer: 200, 400 (not a JSON object),
            401 (signature missing or wrong), 413 (body too large).
        reason: why it was refused (no secret, signature or body in it).
        events: the new events, to :meth:`~WebhookReceiver.deliver`.
        duplicates: events already received (not delivered again).
    """

    status: int
    reason: str = ""
    events: tuple[Event, ...] = ()
    duplicates: tuple[Event, ...] = ()
    tickets: tuple[Ticket | None, ...] = ()


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose callback raised: kept so it is not lost."""

    event: Event
    error: str
    """The exception's type and redacted message."""


class WebhookReceiver:
    """One webhook endpoint for one gateway.

    Args:
        provider: ``"gowa"``, ``"waha"``, ``"wawp"`` or ``"wuts"``.
        secret: gowa's webhook secret, WAHA's HMAC key, or the token in the
            URL path for Wawp (which does not sign) and WUTS (whose scheme
            is unconfirmed). Required unless ``allow_unsigned``.
        on_event: awaited for each new event, after the answer.
        on_error: called with each :class:`Failure` (and the exception).
        deduper: where event keys are claimed (default: in memory, 48 h);
            pass one on a shared store for several receivers or workers.
        tracker: status events are applied to it before answering, so
            receipts keep their order; see :class:`StatusTracker`.
        max_body: bytes read at most; a larger body is answered 413.
        tolerance: seconds of clock skew accepted for signed timestamps
            (WAHA; see :func:`~wamsg.webhooks.verify`).
        allow_unsigned: accept deliveries without checking who sent them
            (a local test, or a network path you trust). Logged once.
        max_failed: failures kept in :attr:`failed`.
    """

    def __init__(
        self,
        provider: str,
        *,
        secret: str | Secret | None = None,
        on_event: EventCallback | None = None,
        on_error: Callable[[Failure, BaseException], object] | None = None,
        deduper: WebhookDeduper | None = None,
        tracker: StatusTracker | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        tolerance: float | None = None,
        allow_unsigned: bool = False,
        max_failed: int = 1000,
    ) -> None:
        if provider not in PROVIDERS:
            raise ConfigError(
                f"no webhook format for provider {shown_name(provider)}; "
                f"wamsg reads {', '.join(PROVIDERS)}"
            )
        if secret is None and not allow_unsigned:
            raise ConfigError(
                f"{provider}: a webhook secret is required (or allow_unsigned=True for a "
                "trusted network): anyone who finds the URL could post fake events"
            )
        if secret is not None and not (
            secret.reveal() if isinstance(secret, Secret) else str(secret)
        ):
            raise ConfigError(f"{provider}: the webhook secret is empty")
        if tolerance is not None and not (
            isinstance(tolerance, (int, float)) and 0 < tolerance < float("inf")
        ):
            raise ConfigError("tolerance must be a positive number of seconds")
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise ConfigError("max_body must be a whole number of bytes >= 1")
        self.provider = provider
        self._secret = None if secret is None else Secret(secret)
        self.on_event = on_event
        self.on_error = on_error
        self.deduper = deduper if deduper is not None else WebhookDeduper()
        self.deduper.check_horizon(provider, RETRY_HORIZON[provider])
        self.tracker = tracker
        self.max_body = max_body
        self.tolerance = tolerance
        self.failed: deque[Failure] = deque(maxlen=max_failed)
        self.counts: dict[str, int] = dict.fromkeys(
            ("received", "events", "duplicates", "refused", "delivered", "failed"), 0
        )
        if secret is None:
            _log.warning("%s webhooks are accepted unsigned (allow_unsigned=True)", provider)

    def __repr__(self) -> str:
        signed = "unsigned" if self._secret is None else "signed"
        return f"WebhookReceiver({self.provider!r}, {signed}, counts={self.counts})"

    # -- the two halves ------------------------------------------------------

    async def accept(
        self, headers: Headers, body: bytes, *, url_token: str | None = None
    ) -> Accepted:
        """Check, parse and dedupe one delivery; no callback runs yet.

        ``url_token`` is the secret path segment of the URL the delivery
        came to (Wawp, WUTS). Status events are applied to the tracker here.
        """
        if len(body) > self.max_body:
            return self.too_large()
        self.counts["received"] += 1
        if self._secret is not None:
            try:
                verify(
                    self.provider,
                    headers,
                    body,
                    secret=self._secret,
                    url_token=url_token,
                    tolerance=self.tolerance,
                )
            except (
                WebhookSignatureMissing,
                WebhookSignatureInvalid,
                # WUTS without a URL token: nothing wamsg can check.
                WebhookVerificationUnsupported,
            ) as exc:
                # Gateways retry a 401 too (gowa, WAHA): a wrong secret shows
                # up as a stream of these, so say it loudly.
                return self._refuse(401, exc.message)
        try:
            events = parse(self.provider, headers, body)
        except WebhookPayloadError as exc:
            return self._refuse(400, exc.message)
        new: list[Event] = []
        duplicates: list[Event] = []
        tickets: list[Ticket | None] = []
        try:
            for event in events:
                ticket = await self.deduper.claim(event)
                if ticket is None:
                    duplicates.append(event)
                    _log.info("duplicate %s webhook %s (%s)", self.provider, event.name,
                              redact(event.dedupe_key))  # fmt: skip
                    continue
                new.append(event)
                tickets.append(ticket)
                if self.tracker is not None:
                    self.tracker.update(event)  # on_change errors are caught there
        except BaseException:
            # A store that failed (or a cancelled request) mid-way: give back
            # what was claimed, so the gateway's retry is not taken for a
            # duplicate of an event nobody processed.
            with anyio.CancelScope(shield=True):
                for ticket in tickets:
                    if ticket is not None:
                        await self.deduper.release(ticket)
            raise
        self.counts["events"] += len(new)
        self.counts["duplicates"] += len(duplicates)
        return Accepted(
            status=200, events=tuple(new), duplicates=tuple(duplicates), tickets=tuple(tickets)
        )

    async def deliver(self, accepted: Accepted) -> None:
        """Run ``on_event`` for each new event of ``accepted``, in order; never raises.

        A failing callback is logged and kept (see the module doc); the
        other events still run.
        """
        tickets = accepted.tickets or (None,) * len(accepted.events)
        for event, ticket in zip(accepted.events, tickets, strict=True):
            await self._run(event, ticket)

    async def handle(
        self, headers: Headers, body: bytes, *, url_token: str | None = None
    ) -> Accepted:
        """:meth:`accept` then :meth:`deliver`, for a caller that answers afterwards."""
        accepted = await self.accept(headers, body, url_token=url_token)
        await self.deliver(accepted)
        return accepted

    async def retry_failed(self) -> int:
        """Run the callback again for every kept failure; returns how many succeeded.

        Each is claimed again first, so an event a redelivery has processed
        meanwhile is not run twice.
        """
        succeeded = 0
        for _ in range(len(self.failed)):
            # One at a time: a cancelled retry leaves the rest kept.
            failure = self.failed.popleft()
            ticket = await self.deduper.claim(failure.event)
            if ticket is None:
                continue  # processed by a redelivery since
            if await self._run(failure.event, ticket):
                succeeded += 1
        return succeeded

    def too_large(self) -> Accepted:
        """The answer to a body over ``max_body`` (413), for a host that stopped reading it."""
        self.counts["received"] += 1
        return self._refuse(413, f"body over {self.max_body} bytes")

    # -- internals -----------------------------------------------------------

    def _refuse(self, status: Literal[400, 401, 413], reason: str) -> Accepted:
        self.counts["refused"] += 1
        level = logging.WARNING if status == 401 else logging.INFO
        _log.log(level, "%s webhook refused with %d: %s", self.provider, status, reason)
        return Accepted(status=status, reason=reason)

    async def _run(self, event: Event, ticket: Ticket | None) -> bool:
        try:
            if self.on_event is not None:
                await self.on_event(event)
        except anyio.get_cancelled_exc_class():
            if ticket is not None:
                with anyio.CancelScope(shield=True):
                    await self.deduper.release(ticket)
            raise
        except Exception as exc:  # the user's code: any failure is kept, never lost
            # The user's text may quote the event (numbers) or even the secret.
            secrets = () if self._secret is None else (self._secret,)
            error = f"{type(exc).__name__}: {redact(str(exc), secrets)}"[:500]
            failure = Failure(event=event, error=error)
            if self.failed.maxlen is not None and len(self.failed) == self.failed.maxlen:
                dropped = self.failed[0]
                _log.error(
                    "%s webhook %s (%s): dropped from receiver.failed, which is full; "
                    "retry_failed() or raise max_failed",
                    self.provider, dropped.event.name, redact(dropped.event.dedupe_key),
                )  # fmt: skip
            self.failed.append(failure)
            self.counts["failed"] += 1
            _log.error(
                # No traceback: its text is the user's and may hold a number;
                # on_error gets the exception itself.
                "%s webhook %s: the callback failed (%s); kept in receiver.failed",
                self.provider, event.name, error,
            )  # fmt: skip
            if ticket is not None:
                await self.deduper.release(ticket)
            if self.on_error is not None:
                try:
                    self.on_error(failure, exc)
                except Exception as hook_error:  # a broken hook must not lose the event
                    _log.error(
                        "%s webhook: on_error raised %s", self.provider, type(hook_error).__name__
                    )
            return False
        if ticket is not None:
            await self.deduper.done(ticket)
        self.counts["delivered"] += 1
        return True
