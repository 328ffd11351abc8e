"""The wamsg exception tree: whose fault it was, and whether the message went out.

::

    WamsgError
    ├── InvalidMessage (ValueError)      local: bad phone, empty text, two image sources …
    ├── UnsupportedFeature (ValueError)  local: view_once on a gateway without it …
    ├── ConfigError                      local: missing token, unknown provider, closed client …
    │   └── ProviderConfigError          the gateway says our settings are wrong (also a Rejected)
    ├── TransportError                   remote, no HTTP answer
    │   ├── ConnectError                 outcome=not_sent (safe to retry)
    │   ├── SendTimeout                  outcome=unknown  (may have been delivered)
    │   └── Disconnected                 outcome=unknown  (may have been delivered)
    ├── ProviderError                    remote, the gateway answered with an error
    │   ├── AuthenticationError          401/403
    │   ├── RateLimited                  429 (+ retry_after)
    │   ├── Rejected                     400/404/422 …, outcome=rejected
    │   └── ProviderUnavailable          5xx
    ├── NoProviderAvailable              a Router's providers are all cooling down
    ├── IdempotencyError                 the send's idempotency key forbids it
    │   ├── IdempotencyKeyReused         the key already named another message
    │   └── IdempotencyInFlight          a send with this key is still running
    └── StoreUnavailable                 a shared store (Redis) cannot be reached; not_sent

Every error has an :class:`Outcome`. Local errors are raised before any I/O, so
their outcome is always ``not_sent``. ``outcome`` is what makes retries and
failover safe: a WhatsApp send is a non-idempotent POST, so only ``not_sent``
may ever be sent again automatically.

Messages are redacted when the error is built (no secret, no full phone
number), so ``str(err)``, ``repr(err)`` and log lines are safe to print.

An error raised by a send also carries ``attempts`` (every try, as in
:attr:`~wamsg.SendResult.attempts`) and the send's ``idempotency_key``: send
again with that key and a message that may already be out is not sent twice.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConnectError",
    "Disconnected",
    "IdempotencyError",
    "IdempotencyInFlight",
    "IdempotencyKeyReused",
    "InvalidMessage",
    "NoProviderAvailable",
    "Outcome",
    "ProviderConfigError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "Rejected",
    "SendTimeout",
    "StoreUnavailable",
    "TransportError",
    "UnsupportedFeature",
    "WamsgError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookReplay",
    "WebhookSignatureInvalid",
    "WebhookSignatureMissing",
    "WebhookVerificationUnsupported",
]


class Outcome(enum.StrEnum):
    """What is known about a failed send."""

    NOT_SENT = "not_sent"
    """The gateway certainly did not accept the message: safe to send again."""
    UNKNOWN = "unknown"
    """The request may have been acted on (timeout, disconnect, some 5xx)."""
    REJECTED = "rejected"
    """The gateway refused the message; sending it again gives the same answer."""


class WamsgError(Exception):
    """Root of every error wamsg raises.

    Attributes:
        outcome: whether the message may have gone out.
        retryable: whether the same send may succeed if tried again.
        attempts: every try the send made, in order (empty before any I/O).
        idempotency_key: the send's key; sending again with it cannot
            produce a second message while the client remembers it.
    """

    outcome: Outcome = Outcome.NOT_SENT
    retryable: bool = False
    attempts: tuple[Any, ...] = ()
    idempotency_key: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments would be lost by the default
        # Exception pickling; rebuild from the message and the attributes.
        return (_restore, (type(self), self.message, dict(self.__dict__)))


def _restore(cls: type[WamsgError], message: str, state: dict[str, Any]) -> WamsgError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidMessage(WamsgError, ValueError):
    """The message cannot be sent as given (raised before any I/O)."""


class UnsupportedFeature(WamsgError, ValueError):
    """The gateway cannot express what the message asks for (raised before any I/O)."""

    def __init__(self, message: str, *, provider: str = "", feature: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.feature = feature


class ConfigError(WamsgError):
    """The client, provider or transport is misconfigured or misused."""


class TransportError(WamsgError):
    """No HTTP answer came back from the gateway.

    The request may have been written, so the outcome is ``unknown`` unless a
    subclass knows better (:class:`ConnectError`).
    """

    outcome = Outcome.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        outcome: Outcome | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        if outcome is not None:
            self.outcome = outcome
        if retryable is not None:
            self.retryable = retryable


class ConnectError(TransportError):
    """The connection could not be made; nothing was written to the gateway."""

    outcome = Outcome.NOT_SENT
    retryable = True


class SendTimeout(TransportError):
    """The deadline passed after the request may have been written."""

    outcome = Outcome.UNKNOWN
    retryable = False


class Disconnected(TransportError):
    """The connection broke after the request may have been written."""

    outcome = Outcome.UNKNOWN
    retryable = False


class ProviderError(WamsgError):
    """The gateway answered, and the answer is an error.

    Attributes:
        provider: the adapter's name (``"wawp"``, ...).
        status_code: the HTTP status (200 when a success status carried an error body).
        error_code: the gateway's own error code, when it sent one.
        gateway_message: the gateway's error text, redacted.
        retryable: whether the gateway says the same request may succeed later.
        retry_after: seconds to wait before trying again, when the gateway said.
        outcome: whether the message may have gone out.
        body_excerpt: the start of the response body, redacted.
    """

    outcome = Outcome.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int,
        error_code: str | None = None,
        gateway_message: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        outcome: Outcome | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.error_code = error_code
        self.gateway_message = gateway_message
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        if outcome is not None:
            self.outcome = outcome
        self.body_excerpt = body_excerpt


class AuthenticationError(ProviderError):
    """The gateway refused the credentials (401/403)."""

    outcome = Outcome.REJECTED


class RateLimited(ProviderError):
    """The gateway asked to slow down (429); see ``retry_after``."""

    outcome = Outcome.NOT_SENT
    retryable = True


class Rejected(ProviderError):
    """The gateway refused this message (4xx); sending it again will not help."""

    outcome = Outcome.REJECTED


class ProviderConfigError(Rejected, ConfigError):
    """The gateway refused the request because of this client's settings.

    For example gowa's ``DEVICE_ID_REQUIRED``: the message names the setting
    to change. It is both a :class:`Rejected` (the gateway answered) and a
    :class:`ConfigError` (fix the configuration, not the message).
    """


class ProviderUnavailable(ProviderError):
    """The gateway failed (5xx); ``outcome`` says whether it may have sent."""


class NoProviderAvailable(WamsgError):
    """Every provider of a :class:`~wamsg.Router` is cooling down after failures.

    Nothing was sent; ``retry_after`` says when the first one may be tried again.
    """

    outcome = Outcome.NOT_SENT
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyError(WamsgError):
    """The send's idempotency key does not allow this send; nothing was sent."""


class IdempotencyKeyReused(IdempotencyError):
    """The idempotency key was already used for a different message.

    Keys name one message: reusing one for another message is refused, as
    Stripe refuses a key reused with other parameters.
    """


class IdempotencyInFlight(IdempotencyError):
    """Another send with the same idempotency key is still running.

    Raised when the call's deadline ends before that send finishes; send
    again later with the same key to get its result.
    """

    retryable = True


class StoreUnavailable(WamsgError):
    """A shared store the send needs (Redis) could not be reached, or refused; nothing was sent.

    Refused: a full outbox (``RedisOutbox(maxlen=)``) refuses a new entry
    rather than trim one that is not sent yet.

    The idempotency store *fails closed*: sending without the claim is the
    one way a worker could send a message twice, so the send stops here
    (docs/scaling.md). ``retryable``: the store may be back soon.

    Attributes:
        store: which store failed (``"dedupe"``, ``"rate_limit"``,
            ``"in_flight"``, ``"cooldown"``, ``"outbox"``).
    """

    outcome = Outcome.NOT_SENT
    retryable = True

    def __init__(self, message: str, *, store: str = "") -> None:
        super().__init__(message)
        self.store = store


class WebhookError(WamsgError):
    """An inbound webhook could not be accepted (wamsg.webhooks).

    Attributes:
        provider: the gateway the webhook claims to come from.
    """

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class WebhookSignatureMissing(WebhookError):
    """The webhook carries no signature (or URL token) although a secret is configured.

    Answer 401. The message names the header that was expected, never a value.
    """


class WebhookSignatureInvalid(WebhookError):
    """The webhook's signature (or URL token) does not match the secret.

    Answer 401: the body was changed, the secret is wrong, or the request
    was not sent by the gateway. Nothing of the body or signature is shown.
    """


class WebhookReplay(WebhookSignatureInvalid):
    """A correctly signed webhook whose signed time is outside the tolerance (a replay)."""


class WebhookVerificationUnsupported(WebhookError, ConfigError):
    """wamsg cannot verify this gateway's signatures yet (WUTS: scheme unconfirmed).

    Raised instead of guessing a scheme; ``parse`` still works. Protect the
    endpoint another way (a secret URL token, a custom header) meanwhile.
    """


class WebhookPayloadError(WebhookError):
    """The webhook body is not a JSON object, so no event can be read from it (answer 400).

    Unknown events never raise: they parse as ``kind="other"`` events.
    """
