"""Each webhook event once: an atomic claim of its dedupe key in a DedupeStore.

Gateways deliver events more than once: retries after a slow answer, the
same event on two subscriptions (WAHA ``message`` + ``message.any``, a
session URL and a global one: waha#1384), near-simultaneous duplicates
(waha#1627, OpenWA#464). :class:`WebhookDeduper` claims
:attr:`Event.dedupe_key <wamsg.webhooks.Event.dedupe_key>` in the same
pluggable :class:`~wamsg.DedupeStore` the send path uses for idempotency
keys. The claim is atomic (``SET NX``-like, never check-then-write: that is
what let OpenWA's duplicates through), so of two concurrent deliveries
exactly one wins, in one process or, with a shared store, across workers.

A key is remembered for the store's TTL, which must cover the gateway's
retry horizon (:data:`~wamsg.webhooks.RETRY_HORIZON`: 30 s for gowa, up to
~36 h for WAHA with exponential retries, docs/webhooks.md §2); the default
store keeps keys 48 h.
"""

from __future__ import annotations

import logging
import warnings

import msgspec

from ..errors import ConfigError
from ..idempotency import DedupeStore, MemoryDedupeStore, Record
from ._model import Event

__all__ = ["DEFAULT_MAX_EVENTS", "DEFAULT_TTL", "Ticket", "WebhookDeduper"]

_log = logging.getLogger("wamsg.webhooks")

#: Events the default in-memory store remembers at most (about 60 MB). At
#: three receipts per message that is some 80,000 messages in 48 h; past it
#: the oldest keys are forgotten before their TTL (logged once). Pass a larger
#: or shared store for more.
DEFAULT_MAX_EVENTS = 250_000

#: Seconds the default store remembers an event: above every gateway's
#: retry horizon (WAHA's exponential retries run ~18-36 h, docs/webhooks.md §7).
DEFAULT_TTL = 48 * 3600.0

# A finished event is stored as a "sent" record with no result: the store's
# vocabulary is the send path's, and "done" is all a webhook key needs.
_DONE = Record(state="sent")


class Ticket(msgspec.Struct, frozen=True):
    """A won claim: the event is this receiver's to process."""

    key: str
    token: str


class WebhookDeduper:
    """Claims every event's dedupe key once, atomically.

    Args:
        store: where keys are claimed; the send path's store can be shared
            (keys are prefixed). Default: a :class:`~wamsg.MemoryDedupeStore`
            keeping keys :data:`DEFAULT_TTL` seconds.
        lease: seconds a claim holds while its callback runs; if the process
            dies before finishing, the key then reads as done (at most once:
            an event is never processed twice because of a crash).
        prefix: put before every key, to share a store with sends.
    """

    def __init__(
        self,
        store: DedupeStore | None = None,
        *,
        lease: float = 300.0,
        prefix: str = "webhook:",
    ) -> None:
        if not lease > 0:
            raise ConfigError("lease must be a positive number of seconds")
        self.store: DedupeStore = (
            store
            if store is not None
            else MemoryDedupeStore(ttl=DEFAULT_TTL, max_entries=DEFAULT_MAX_EVENTS)
        )
        self._warned_full = False
        self.lease = float(lease)
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"WebhookDeduper({self.store!r}, lease={self.lease:g}s)"

    def check_horizon(self, provider: str, horizon: float) -> None:
        """Warn when the store forgets keys sooner than ``provider`` retries.

        Only stores that say their TTL (a ``ttl`` attribute) are checked.
        """
        ttl = getattr(self.store, "ttl", None)
        if isinstance(ttl, (int, float)) and ttl < horizon:
            warnings.warn(
                f"the dedupe store keeps keys {ttl:g} s, but {provider} may deliver an event "
                f"again up to {horizon:g} s later: duplicates can get through after that",
                stacklevel=3,
            )

    async def claim(self, event: Event) -> Ticket | None:
        """Claim ``event``; a :class:`Ticket` when it is new, None for a duplicate.

        A duplicate is a delivery of an event already processed, being
        processed (a concurrent delivery) or whose processing was cut off.
        """
        key = self.prefix + event.dedupe_key
        claim = await self.store.claim(key, "", lease=self.lease)
        if claim.status == "claimed":
            self._check_full()
            return Ticket(key, claim.token)
        return None

    def _check_full(self) -> None:
        """Say once when a bounded store starts forgetting keys before their TTL."""
        bound = getattr(self.store, "max_entries", None)
        if self._warned_full or not isinstance(bound, int):
            return
        try:
            size = len(self.store)  # type: ignore[arg-type]
        except TypeError:
            return
        if size >= bound:
            self._warned_full = True
            _log.warning(
                "the webhook dedupe store holds its maximum of %d keys: older keys are "
                "now forgotten before their TTL, so late retries may be processed twice; "
                "use a larger or shared store",
                bound,
            )

    async def done(self, ticket: Ticket) -> None:
        """The event was processed: its key stays claimed for the store's TTL."""
        await self.store.finish(ticket.key, ticket.token, _DONE)

    async def release(self, ticket: Ticket) -> None:
        """The event was not processed: a later delivery of it may claim it again."""
        await self.store.finish(ticket.key, ticket.token, None)
