"""Fault injection for the sandbox: exact, countable and seedable.

A :class:`Fault` says what goes wrong (``kind``), for which provider and
path, and how often: ``times`` fires (``None`` for no limit), each one with
``probability``. Faults are checked in the order they were added and the
first one that fires decides the request; a request no fault takes is
answered normally.

Kinds, and whether the message is stored (what reliability tests rely on):

============== ============================================== ==========
kind           what the client sees                           stored?
============== ============================================== ==========
``rate_limit`` 429 in the gateway's own error format, with    no
               ``Retry-After: <retry_after>``
``server_error`` ``status`` (default 503) in the gateway's    no
               format, ``Retry-After`` if ``retry_after`` set
``auth``       the gateway's own answer to bad credentials    no
``slow``       the normal answer, after ``delay`` seconds     yes
``drop``       the connection closes after the request was    yes
               read, with no answer: the client cannot know
============== ============================================== ==========

Webhook kinds act on the webhooks the sandbox sends (wamsg/sandbox/webhooks.py,
docs/webhooks.md §5.4) and never on a gateway request; ``event`` narrows them
to one receipt (``sent``, ``delivered``, ``read``) or to ``message``:

======================== ==========================================================
kind                     what the webhook receiver sees
======================== ==========================================================
``duplicate``            the same bytes again, 0-50 ms (scaled) after the first copy
``concurrent_duplicate`` two identical deliveries at once, on separate connections
``early_receipt``        the delivered receipt (gowa: delivered and read) arrives,
                         and is awaited, before the send is answered (gowa#726)
``reorder``              read before delivered
``bad_signature``        a signature computed over other bytes (signed targets only)
``missing_receipt``      one receipt is never sent
======================== ==========================================================

Randomness is per fault, seeded from the sandbox seed, the rule itself and
how many identical rules were added before it (since the last clear). So
with a seed, the same sequence of requests meets the same faults whatever
other rules exist, in whatever order they were added, and after any number
of clears.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable, Collection
from typing import Literal, get_args

import msgspec

from ..http import HttpRequest

__all__ = [
    "WEBHOOK_EVENTS",
    "WEBHOOK_KINDS",
    "Fault",
    "FaultKind",
    "FaultSet",
    "parse_fault",
]

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "auth",
    "slow",
    "drop",
    "duplicate",
    "concurrent_duplicate",
    "early_receipt",
    "reorder",
    "bad_signature",
    "missing_receipt",
]
#: The kinds that act on outgoing webhooks, never on gateway requests.
WEBHOOK_KINDS: frozenset[str] = frozenset(
    {
        "duplicate",
        "concurrent_duplicate",
        "early_receipt",
        "reorder",
        "bad_signature",
        "missing_receipt",
    }
)
#: What a webhook fault's ``event`` may name: a receipt status, or an incoming message.
WEBHOOK_EVENTS: tuple[str, ...] = ("sent", "delivered", "read", "message")
# Kinds decided per message (not per webhook), where ``event`` means nothing.
_PER_MESSAGE_KINDS = frozenset({"early_receipt", "reorder"})
_KINDS: tuple[str, ...] = get_args(FaultKind)
_DEFAULTS: dict[str, object] = {"probability": 1.0, "delay": 0.0}


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fault rule. See the module docstring for the kinds.

    Attributes:
        kind: what goes wrong.
        provider: the provider it applies to, or ``"*"`` for all.
        path: apply only to requests whose path contains this text.
        times: how many times it fires; ``None`` means without limit.
        probability: the chance it fires on each matching request.
        status: the status of a ``server_error`` (500-599).
        retry_after: seconds for the ``Retry-After`` header.
        delay: seconds a ``slow`` answer waits.
        event: for webhook kinds, apply only to this receipt (``sent``,
            ``delivered``, ``read``) or to ``message`` webhooks.
    """

    kind: FaultKind
    provider: str = "*"
    path: str | None = None
    times: int | None = 1
    probability: float = 1.0
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    event: str | None = None

    def __post_init__(self) -> None:
        # A typo must not make a fault that never fires (a test that passes
        # for the wrong reason); msgspec checks the Literal only when decoding.
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of: {', '.join(_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or null for no limit)")
        if not 0.0 <= self.probability <= 1.0 or math.isnan(self.probability):
            raise ValueError("probability must be between 0 and 1")
        if self.kind == "server_error" and not 500 <= (self.status or 503) <= 599:
            raise ValueError("a server_error status must be 500-599")
        if self.kind != "server_error" and self.status is not None:
            raise ValueError("status applies only to server_error")
        if self.retry_after is not None and not 0 <= self.retry_after <= 86400:
            raise ValueError("retry_after must be 0-86400 seconds")
        if self.retry_after is not None and self.kind not in ("rate_limit", "server_error"):
            raise ValueError("retry_after applies only to rate_limit and server_error")
        if self.path is not None and not self.path:
            raise ValueError("path must not be empty (leave it out to match every path)")
        if self.kind == "rate_limit" and self.retry_after is None:
            raise ValueError("a rate_limit fault needs retry_after")
        if not 0.0 <= self.delay <= 3600 or math.isnan(self.delay):
            raise ValueError("delay must be 0-3600 seconds")
        if (self.kind == "slow") != (self.delay > 0):
            raise ValueError("delay is required by, and only by, a slow fault")
        if self.kind in WEBHOOK_KINDS and self.path is not None:
            raise ValueError("path applies only to gateway faults, not to webhook ones")
        if self.event is not None:
            if self.kind not in WEBHOOK_KINDS or self.kind in _PER_MESSAGE_KINDS:
                raise ValueError(
                    "event applies only to duplicate, concurrent_duplicate, "
                    "bad_signature and missing_receipt"
                )
            if self.event not in WEBHOOK_EVENTS:
                raise ValueError(f"event must be one of {', '.join(WEBHOOK_EVENTS)}")
            if self.kind == "missing_receipt" and self.event == "message":
                raise ValueError(
                    "missing_receipt drops receipts: event must be sent/delivered/read"
                )

    @property
    def is_webhook(self) -> bool:
        """Whether this fault acts on outgoing webhooks rather than gateway requests."""
        return self.kind in WEBHOOK_KINDS

    def describe(self) -> str:
        """The rule in the command line's compact form."""
        options = [f"times={'always' if self.times is None else self.times}"]
        for name in ("probability", "status", "retry_after", "delay", "path", "event"):
            value = getattr(self, name)
            if value is not None and value != _DEFAULTS.get(name):
                options.append(
                    f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                )
        return f"{self.provider}:{self.kind}:{','.join(options)}"

    @property
    def answer_status(self) -> int | None:
        """The HTTP status this fault answers with, if it replaces the answer."""
        if self.kind == "rate_limit":
            return 429
        if self.kind == "server_error":
            return self.status or 503
        return None


class FaultState(msgspec.Struct, kw_only=True):
    """A fault as the sandbox holds it: its rule, id and counts."""

    id: int
    fault: Fault
    fired: int = 0
    seen: int = 0

    @property
    def remaining(self) -> int | None:
        """Fires left, or ``None`` without limit."""
        return None if self.fault.times is None else self.fault.times - self.fired


class FaultSet:
    """The faults in force, checked in order; thread-safe.

    Args:
        seed: makes probabilistic faults repeatable.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._seed = seed
        self._states: list[FaultState] = []
        self._rngs: dict[int, random.Random] = {}
        self._twins: dict[bytes, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> FaultState:
        """Put ``fault`` in force, after the existing ones."""
        return self.add_all([fault])[0]

    def add_all(self, faults: list[Fault]) -> list[FaultState]:
        """Put several faults in force at once, in order."""
        with self._lock:
            added = []
            for fault in faults:
                state = FaultState(id=next(self._ids), fault=fault)
                # Seeded by the rule and its rank among identical rules, never
                # by its id: ids keep counting across clears.
                rule = _rule_key(fault)
                rank = self._twins.get(rule, 0)
                self._twins[rule] = rank + 1
                seed = None if self._seed is None else f"{self._seed}:{rank}:{rule.decode()}"
                self._rngs[state.id] = random.Random(seed)  # noqa: S311 - test faults, not secrets
                self._states.append(state)
                added.append(state)
            return added

    def remove(self, fault_id: int) -> bool:
        """Take a fault out of force; False if there was none with that id."""
        with self._lock:
            before = len(self._states)
            self._states = [s for s in self._states if s.id != fault_id]
            self._rngs.pop(fault_id, None)
            return len(self._states) < before

    def clear(self) -> None:
        """Take every fault out of force."""
        with self._lock:
            self._states.clear()
            self._rngs.clear()
            self._twins.clear()

    def states(self) -> list[FaultState]:
        """Every fault with its counts, spent ones included, in order."""
        with self._lock:
            return [msgspec.structs.replace(s) for s in self._states]

    def pick(self, provider: str, request: HttpRequest) -> Fault | None:
        """The gateway fault that fires for this request, if any, counting it.

        Webhook faults are never picked here (see :meth:`pick_webhook`).
        """
        return self._pick(
            lambda fault: (
                not fault.is_webhook and (fault.path is None or fault.path in request.url)
            ),
            provider,
        )

    def pick_webhook(
        self, provider: str, kinds: Collection[str], event: str | None = None
    ) -> Fault | None:
        """The webhook fault of one of ``kinds`` that fires now, if any, counting it.

        ``event`` is what is about to be sent (``sent``, ``delivered``,
        ``read`` or ``message``); a fault naming another event is skipped.
        """
        return self._pick(
            lambda fault: fault.kind in kinds and (fault.event is None or fault.event == event),
            provider,
        )

    def _pick(self, applies: Callable[[Fault], bool], provider: str) -> Fault | None:
        with self._lock:
            for state in self._states:
                fault = state.fault
                if fault.provider not in ("*", provider):
                    continue
                if not applies(fault):
                    continue
                if state.remaining == 0:
                    continue
                state.seen += 1
                # Draw only when needed, so probability 1 faults use no
                # randomness and never shift another fault's sequence.
                if fault.probability < 1.0 and not (
                    self._rngs[state.id].random() < fault.probability
                ):
                    continue
                state.fired += 1
                return fault
        return None


def parse_fault(text: str) -> Fault:
    """A fault from the command line's compact form.

    ``PROVIDER:KIND[:key=value,...]``, for example ``gowa:rate_limit:retry_after=2,times=3``,
    ``*:server_error:status=502,probability=0.05,times=always`` or ``wawp:slow:delay=1.5``.

    Raises:
        ValueError: with a message naming what is wrong.
    """
    provider, _, rest = text.partition(":")
    kind, _, options = rest.partition(":")
    if not provider or kind not in _KINDS:
        raise ValueError(
            f"fault {text!r}: expected PROVIDER:KIND[:key=value,...] "
            f"with KIND one of {', '.join(_KINDS)}"
        )
    fields: dict[str, object] = {"provider": provider, "kind": kind}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"fault {text!r}: option {item!r} needs key=value")
        key = key.strip()
        value = value.strip()
        if key == "times" and value in ("always", "none", "null", "inf"):
            fields[key] = None
        elif key in ("times", "status", "retry_after"):
            fields[key] = _number(text, key, value, int)
        elif key in ("probability", "delay"):
            fields[key] = _number(text, key, value, float)
        elif key in ("path", "event"):
            fields[key] = value
        else:
            raise ValueError(f"fault {text!r}: unknown option {key!r}")
    try:
        return msgspec.convert(fields, Fault)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"fault {text!r}: {exc}") from None


def _rule_key(fault: Fault) -> bytes:
    """The rule as JSON, for seeding; ``event`` left out when unset.

    Leaving it out keeps the encoding (so the seeded draws) of every rule that
    predates webhook faults exactly as it was.
    """
    rule = msgspec.to_builtins(fault)
    if rule.get("event") is None:
        rule.pop("event", None)
    return msgspec.json.encode(rule)


def _number(text: str, key: str, value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"fault {text!r}: {key} must be a number, got {value!r}") from None
