"""The delivery loop shared by :class:`~wamsg.Client` and :class:`~wamsg.Router`.

One send call, whatever sends it: check the message (no I/O), claim its
idempotency key, then try *targets* (a client's one gateway, or a router's
providers in order) under one deadline until one accepts it or the failure
may not be tried again, and record how it ended under the key. The rules
that make this safe are in docs/reliability.md; in short:

- only an outcome of ``not_sent`` moves on (to the next provider at once,
  or back to the same one after a backoff); ``unknown`` is retried only on
  the caller's opt-in, and then only on the same provider; ``rejected``
  never is;
- once any attempt may have sent the message, the call's outcome can no
  longer be ``not_sent``, whatever the later attempts say;
- a key that may have been sent is remembered as ``unknown`` and never sent
  again on its own, even when the call is cancelled mid-request.
"""

from __future__ import annotations

import abc
import copy
import inspect
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, NoReturn, Protocol, Self

import anyio
import msgspec

from ._redact import redact
from .errors import (
    ConfigError,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidMessage,
    NoProviderAvailable,
    Outcome,
    SendTimeout,
    StoreUnavailable,
    WamsgError,
)
from .hooks import DeliveryEvent, Hooks
from .idempotency import DedupeStore, MemoryDedupeStore, Record, fingerprint
from .models import (
    Attempt,
    Image,
    ImageInput,
    Media,
    Message,
    Recipient,
    SendResult,
    Text,
    check_idempotency_key,
)
from .retry import RetryPolicy

__all__ = ["BulkResult", "Progress", "Sender", "Target"]

logger = logging.getLogger("wamsg")

#: Seconds an idempotency claim outlives its send's deadline, to record the end.
LEASE_GRACE = 10.0

BulkResult = SendResult | WamsgError
"""One message's outcome in :meth:`Sender.send_many`: its result or its error."""


def valid_seconds(value: object) -> bool:
    """True for a positive, finite number of seconds (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _mentions(mentions: Sequence[str | Recipient]) -> tuple[str | Recipient, ...]:
    if isinstance(mentions, str):
        raise InvalidMessage("mentions must be a list of numbers, not a single string")
    return tuple(mentions)


def _replayable(message: Message) -> bool:
    """Whether the message can be sent again: an async stream is read only once."""
    if isinstance(message, Text):
        return True
    media = message.image
    if media.stream is not None:
        return False
    return not (media.file is not None and media.head_consumed)


class Progress:
    """Whether a send may have reached the gateway, for a cancelled call."""

    __slots__ = ("delivered", "sending", "unknown")

    def __init__(self) -> None:
        self.sending = False
        """A request is being written or awaited right now."""
        self.unknown = False
        """An earlier attempt ended with outcome ``unknown``."""
        self.delivered: SendResult | None = None
        """The gateway accepted the message (set before any bookkeeping that follows)."""

    @property
    def may_be_out(self) -> bool:
        """Whether the message may have reached the gateway."""
        return self.sending or self.unknown or self.delivered is not None


class Target(Protocol):
    """One gateway the loop can try: a :class:`~wamsg.Client`."""

    @property
    def provider(self) -> str:
        """The provider's name."""
        ...

    async def _attempt(
        self, message: Message, deadline: float | None, progress: Progress
    ) -> tuple[SendResult, int]: ...


def _error_text(error: WamsgError) -> str:
    return f"{type(error).__name__}: {error.message}"


class Sender(abc.ABC):
    """The send interface of :class:`~wamsg.Client` and :class:`~wamsg.Router`."""

    timeout: float | None
    retry: RetryPolicy
    dedupe: DedupeStore | None
    hooks: Hooks | None
    _forwards_keys: bool = False
    """Some target's gateway takes a client message id: give every message a key."""

    def _configure(
        self,
        *,
        timeout: float | None,
        retry: RetryPolicy | None,
        dedupe: DedupeStore | bool,
        hooks: Hooks | None,
    ) -> None:
        """Check and set the options every sender has, before any I/O."""
        if timeout is not None and not valid_seconds(timeout):
            raise ConfigError("timeout must be a positive, finite number of seconds or None")
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise ConfigError(f"retry must be a wamsg.RetryPolicy, not {type(retry).__name__}")
        if dedupe is True:
            store: DedupeStore | None = MemoryDedupeStore()
        elif dedupe is False:
            store = None
        elif isinstance(dedupe, DedupeStore):
            store = dedupe
        else:
            raise ConfigError("dedupe must be True, False or a wamsg.DedupeStore")
        if hooks is not None and not isinstance(hooks, Hooks):
            raise ConfigError(f"hooks must be a wamsg.Hooks, not {type(hooks).__name__}")
        self.timeout = timeout
        self.retry = retry
        self.dedupe = store
        self.hooks = hooks

    # -- what Client and Router provide --------------------------------------

    _closed: bool = False

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release what the sender owns (a client's transport, a router's clients)."""

    # -- lifecycle, the same for both ------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> NoReturn:
        name = type(self).__name__
        raise ConfigError(
            f"wamsg.{name} is async: use `async with wamsg.{name}(...) as {name.lower()}:`"
        )

    def __exit__(self, *args: object) -> None:  # noqa: B027  # pragma: no cover - __enter__ raises
        pass

    async def aclose(self) -> None:
        """Close what this sender owns. Sending afterwards raises ConfigError."""
        if not self._closed:
            self._closed = True
            await self._close()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"this wamsg.{type(self).__name__} is closed; create a new one")

    @abc.abstractmethod
    async def _prepare(
        self, message: Message, deadline: float | None
    ) -> tuple[Message, Sequence[Target]]:
        """Check the message before any I/O; return it ready, and who can send it."""

    async def _pick(self, targets: Sequence[Target], tried: Sequence[Target]) -> Target | None:
        """The next target to try, or None when all were tried this round."""
        for target in targets:
            if target not in tried:
                return target
        return None

    async def _wait_for_target(
        self, targets: Sequence[Target], excluded: Sequence[Target]
    ) -> float:
        """Seconds until some target may be tried again (a router's cooldowns)."""
        return 0.0

    async def _attempt_ended(self, target: Target, error: WamsgError | None) -> None:  # noqa: B027
        """Health bookkeeping after each attempt (a router's cooldowns); none by default."""

    # -- the public interface ------------------------------------------------

    async def send_text(
        self,
        to: str | Recipient,
        text: str,
        *,
        reply_to: str | None = None,
        mentions: Sequence[str | Recipient] = (),
        idempotency_key: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        retry_unknown: bool | None = None,
    ) -> SendResult:
        """Send a text message. See :meth:`send` for the options and what it raises."""
        message = Text(
            to=to,
            text=text,
            reply_to=reply_to,
            mentions=_mentions(mentions),
            idempotency_key=idempotency_key,
        )
        return await self.send(message, timeout=timeout, retry=retry, retry_unknown=retry_unknown)

    async def send_image(
        self,
        to: str | Recipient,
        image: ImageInput,
        *,
        caption: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        reply_to: str | None = None,
        mentions: Sequence[str | Recipient] = (),
        view_once: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        retry_unknown: bool | None = None,
    ) -> SendResult:
        """Send an image from a URL, a path, bytes, a file object or an async byte stream.

        A string is a URL when it starts with ``http://`` or ``https://`` and
        a path otherwise. An async stream can be read once, so a send from
        one is never retried. See :meth:`send` for the options and errors.
        """
        media = Media.coerce(image, filename=filename, mimetype=mimetype)
        message = Image(
            to=to,
            image=media,
            caption=caption,
            reply_to=reply_to,
            mentions=_mentions(mentions),
            view_once=view_once,
            idempotency_key=idempotency_key,
        )
        return await self.send(message, timeout=timeout, retry=retry, retry_unknown=retry_unknown)

    async def send(
        self,
        message: Message,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        retry_unknown: bool | None = None,
    ) -> SendResult:
        """Send one message, retrying only what certainly did not go out.

        Args:
            message: a :class:`~wamsg.Text` or :class:`~wamsg.Image`.
            idempotency_key: names this send (overrides the message's own);
                one is generated when neither gives one. A second send with
                the same key returns the first one's result (or raises its
                error) without sending; while the first is in flight, it
                waits for it.
            timeout: seconds for the whole call: waits for the rate limit,
                every attempt, backoffs and failover. Defaults to the
                sender's ``timeout``.
            retry: the retry policy for this call (defaults to the sender's).
            retry_unknown: also retry when the outcome is ``unknown``
                (the message may then arrive twice, unless the gateway
                takes a client message id, as WAHA does).

        Returns:
            The gateway's answer, with every attempt in ``attempts`` and the
            key in ``idempotency_key``; ``replayed`` is True when it came
            from an earlier send with the same key.

        Raises:
            InvalidMessage, UnsupportedFeature: before any I/O.
            ConfigError: the sender is closed or misused.
            IdempotencyKeyReused: the key named a different message.
            IdempotencyInFlight: the deadline ended while another send with
                the key was still running.
            TransportError, ProviderError, NoProviderAvailable: the last
                attempt's error; ``outcome`` says whether the message may be
                out, ``attempts`` lists every try.
        """
        self._check_open()
        if not isinstance(message, Text | Image):
            raise ConfigError(
                f"message must be a wamsg Text or Image, not {type(message).__name__}"
            )
        # The sender's own timeout and policy were checked when it was built.
        seconds = self.timeout
        if timeout is not None:
            if not valid_seconds(timeout):
                raise ConfigError("timeout must be a positive, finite number of seconds")
            seconds = timeout
        policy = self.retry
        if retry is not None:
            if not isinstance(retry, RetryPolicy):
                raise ConfigError(f"retry must be a wamsg.RetryPolicy, not {type(retry).__name__}")
            policy = retry
        if retry_unknown is not None and retry_unknown != policy.retry_unknown:
            policy = msgspec.structs.replace(policy, retry_unknown=bool(retry_unknown))
        started = time.monotonic()
        deadline = None if seconds is None else started + seconds

        key = message.idempotency_key
        if idempotency_key is not None and idempotency_key != key:
            check_idempotency_key(idempotency_key)
            key = idempotency_key
            # Only an adapter whose gateway takes a client message id reads
            # the key off the message (0.5 µs a copy, saved for the others).
            if self._forwards_keys:
                message = msgspec.structs.replace(message, idempotency_key=key)
        given = key is not None
        if key is None:
            key = _new_key()
            if self._forwards_keys:
                message = msgspec.structs.replace(message, idempotency_key=key)
        store = self.dedupe
        # A generated key needs no claim (no one else knows it yet), but it
        # is fingerprinted too: it is handed back in the result, and a caller
        # may send it again, with this message or, by mistake, another one.
        digest = fingerprint(message) if store is not None else ""

        message, targets = await self._prepare(message, deadline)

        token = ""
        if store is not None and given:
            claimed = await self._claim(store, key, digest, started, deadline)
            if isinstance(claimed, SendResult):
                return claimed
            token = claimed
        progress = Progress()
        try:
            result = await self._deliver(message, key, targets, started, deadline, policy, progress)
        except WamsgError as error:
            error.idempotency_key = key
            if store is not None:
                record = _record(error, digest)
                if record is None and progress.may_be_out:
                    # Something after a request failed "not sent" (a store's
                    # bookkeeping, say): the request itself may be out, so
                    # the key must never read free, nor the error say so.
                    error.outcome = Outcome.UNKNOWN
                    error.retryable = False
                    record = Record(state="unknown", fingerprint=digest, error=error)
                await self._remember(store, key, token, given, record)
            raise
        except BaseException:
            # Cancelled (or a bug): if a request may be out, the key must
            # read "unknown", never "free" (shielded: the scope is cancelled).
            if store is not None:
                record = None
                if progress.delivered is not None:
                    # Cancelled after the gateway took it (in a hook, say):
                    # it was sent, and a retry with the key must replay that.
                    kept = msgspec.structs.replace(progress.delivered, raw=b"", idempotency_key=key)
                    record = Record(state="sent", fingerprint=digest, result=kept)
                elif progress.may_be_out:
                    lost = SendTimeout(
                        "the send was cancelled while its request was in flight; "
                        "the message may have been sent",
                    )
                    lost.idempotency_key = key
                    record = Record(state="unknown", fingerprint=digest, error=lost)
                with anyio.CancelScope(shield=True):
                    await self._remember(store, key, token, given, record)
            raise
        if store is not None:
            # Remembered without the raw body: a replay needs the facts only,
            # and a full store must stay small (about 0.5 KB per key).
            kept = msgspec.structs.replace(result, raw=b"")
            await self._remember(
                store, key, token, given, Record(state="sent", fingerprint=digest, result=kept)
            )
        return result

    async def send_many(
        self,
        messages: Iterable[Message],
        *,
        concurrency: int = 10,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        on_result: Callable[[int, BulkResult], Awaitable[None] | None] | None = None,
    ) -> list[BulkResult]:
        """Send many messages, ``concurrency`` at a time; never raises for a failed one.

        Args:
            messages: the messages, sent in order of their position.
            concurrency: sends running at once (the sender's rate limits
                still apply to each).
            timeout: the deadline of each message's send.
            retry: the retry policy of each send.
            on_result: called with ``(index, result_or_error)`` as each
                message finishes (for a progress bar); what it raises is
                logged and ignored.

        Returns:
            One entry per message, in the same order: its
            :class:`~wamsg.SendResult`, or the :class:`~wamsg.WamsgError` its
            send raised (see its ``outcome``).
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError("concurrency must be a whole number >= 1")
        self._check_open()
        items = list(messages)
        results: list[Any] = [None] * len(items)
        queue = iter(enumerate(items))

        async def worker() -> None:
            for index, message in queue:  # one shared iterator: each takes the next
                outcome: BulkResult
                try:
                    outcome = await self.send(message, timeout=timeout, retry=retry)
                except WamsgError as error:
                    outcome = error
                results[index] = outcome
                if on_result is not None:
                    try:
                        done = on_result(index, outcome)
                        if inspect.isawaitable(done):
                            await done
                    except Exception:
                        logger.exception("wamsg: send_many's on_result callback raised")

        async with anyio.create_task_group() as group:
            for _ in range(min(concurrency, len(items))):
                group.start_soon(worker)
        return results

    # -- inside one send -----------------------------------------------------

    async def _claim(
        self,
        store: DedupeStore,
        key: str,
        digest: str,
        started: float,
        deadline: float | None,
    ) -> str | SendResult:
        """Claim ``key``: a token to finish it with, or the earlier result."""
        # The claim outlives the call's deadline by a grace for recording the
        # end; a worker that dies holds it no longer than that.
        lease = (deadline - started if deadline is not None else 3600.0) + LEASE_GRACE
        while True:
            claim = await store.claim(key, digest, lease=lease)
            if claim.status == "claimed":
                return claim.token
            if claim.status == "reused":
                raise _tagged(
                    IdempotencyKeyReused(
                        "this idempotency key was already used for a different message; "
                        "use a new key for a new message"
                    ),
                    key,
                )
            if claim.status == "done" and claim.record is not None:
                return _replay(claim.record, key)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _tagged(
                    IdempotencyInFlight(
                        "a send with this idempotency key is still in flight; "
                        "send again later with the same key to get its result"
                    ),
                    key,
                )
            await store.wait(key, remaining)

    @staticmethod
    async def _remember(
        store: DedupeStore, key: str, token: str, given: bool, record: Record | None
    ) -> None:
        # What the send did has happened: a store that fails to record it
        # must not turn a sent message into an error. The claim then stays
        # in flight in the store until its lease ends, and reads "unknown"
        # afterwards: never free, so nothing is sent twice.
        try:
            if given:
                if not await store.finish(key, token, record):
                    logger.warning(
                        "wamsg: the claim on key %s ran out before the send ended; "
                        "the store keeps it as unknown",
                        _mask_key(key),
                    )
            elif record is not None:
                await store.put(key, record)
        except StoreUnavailable as exc:
            logger.warning(
                "wamsg: could not record how the send with key %s ended (%s); "
                "the key reads unknown once its lease ends",
                _mask_key(key),
                exc.message,
            )

    async def _deliver(
        self,
        message: Message,
        key: str,
        targets: Sequence[Target],
        started: float,
        deadline: float | None,
        policy: RetryPolicy,
        progress: Progress,
    ) -> SendResult:
        attempts: list[Attempt] = []
        # Who failed this round (a round tries each provider once, with no
        # wait), and who failed in a way a retry cannot mend (for the call).
        tried: list[Target] = []
        excluded: list[Target] = []
        hooks = self.hooks
        waited = 0.0
        retries = 0
        target = await self._pick(targets, tried)
        while True:
            if target is None:
                # Nothing to try right now: every provider is cooling down.
                error: WamsgError = NoProviderAvailable(
                    "every provider is cooling down after failures; nothing was sent",
                    retry_after=await self._wait_for_target(targets, excluded),
                )
                failed: Target | None = None
            else:
                if hooks is not None:
                    await hooks.fire(
                        hooks.before_send, _event("before_send", target, attempts, message, key)
                    )
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "wamsg send %s via %s to %s (attempt %d, key %s)",
                        type(message).__name__.lower(),
                        target.provider,
                        message.recipient.masked,
                        len(attempts) + 1,
                        _mask_key(key),
                    )
                begun = time.perf_counter()
                try:
                    result, status = await target._attempt(message, deadline, progress)
                except WamsgError as caught:
                    error = caught
                    failed = target
                    progress.sending = False
                    if error.outcome is Outcome.UNKNOWN:
                        progress.unknown = True
                    attempts.append(
                        Attempt(
                            provider=target.provider,
                            duration=time.perf_counter() - begun,
                            status_code=getattr(error, "status_code", None),
                            error=_error_text(error),
                            outcome=error.outcome,
                            waited=waited,
                        )
                    )
                    await self._attempt_ended(target, error)
                    if hooks is not None:
                        await hooks.fire(
                            hooks.after_send,
                            _event("after_send", target, attempts, message, key, error=error),
                        )
                else:
                    progress.delivered = result
                    progress.sending = False
                    attempts.append(
                        Attempt(
                            provider=target.provider,
                            duration=time.perf_counter() - begun,
                            status_code=status,
                            waited=waited,
                        )
                    )
                    await self._attempt_ended(target, None)
                    result = msgspec.structs.replace(
                        result, attempts=tuple(attempts), idempotency_key=key
                    )
                    if hooks is not None:
                        await hooks.fire(
                            hooks.after_send,
                            _event("after_send", target, attempts, message, key, result=result),
                        )
                    return result

            # The attempt failed (or none could start): may it go again, and where?
            limit = self._limit_reason(policy, attempts, message)
            following: Target | None = None
            if failed is not None and error.outcome is Outcome.NOT_SENT and not progress.unknown:
                # Nothing went out, so the next provider may take it at once,
                # even when this one must not be asked again in this call
                # (not retryable: gowa's WA_REACHOUT_TIMELOCK restricts this
                # number for hours, a local limit's turn comes too late, the
                # device is offline), which then sits out the later rounds.
                tried.append(failed)
                if not error.retryable:
                    excluded.append(failed)
                following = await self._pick(targets, tried)
                if following is not None and limit is None:
                    if hooks is not None:
                        await hooks.fire(
                            hooks.on_failover,
                            _event(
                                "failover",
                                failed,
                                attempts,
                                message,
                                key,
                                error=error,
                                next_provider=following.provider,
                            ),
                        )
                    logger.warning(
                        "wamsg: %s failed (%s, outcome %s); failing over to %s",
                        failed.provider,
                        type(error).__name__,
                        error.outcome,
                        following.provider,
                    )
                    target, waited = following, 0.0
                    continue
            retry = policy.should_retry(error)
            if not retry and failed is not None and error.outcome is Outcome.NOT_SENT:
                # This provider may not be asked again, but another one of
                # the round may ([A 503, B timelock] retries A after a backoff).
                retry = not progress.unknown and any(t not in excluded for t in targets)
            why = limit if retry else "not retryable"
            if why is not None:
                raise self._final(error, attempts, progress, key, why)
            if failed is not None and (error.outcome is Outcome.UNKNOWN or progress.unknown):
                # Opted in: the same gateway, never another. That holds for the
                # rest of the call once any attempt was unknown, even when a
                # later one says not_sent (a 503 after a dropped answer):
                # another provider knows nothing of the message already out,
                # and would deliver it a second time.
                following = failed
            # Back off, then start a new round over every provider.
            if retries >= policy.attempts - 1:
                raise self._final(
                    error, attempts, progress, key, f"{policy.attempts} attempts allowed"
                )
            retries += 1
            delay = policy.delay(retries, error)
            if following is None:
                delay = max(delay, await self._wait_for_target(targets, excluded))
            now = time.monotonic()
            if math.isinf(delay):
                why = "the gateway asked to wait longer than the policy's max_retry_after"
            elif deadline is not None and now + delay >= deadline:
                why = f"the call's deadline leaves no time to wait {delay:.2f}s"
            elif policy.max_elapsed is not None and now + delay - started > policy.max_elapsed:
                why = "the policy's max_elapsed would pass"
            if why is not None:
                raise self._final(error, attempts, progress, key, why)
            if hooks is not None and failed is not None:
                await hooks.fire(
                    hooks.on_retry,
                    _event("retry", failed, attempts, message, key, error=error, delay=delay),
                )
            logger.info(
                "wamsg: %s (outcome %s); retry %d in %.2fs",
                _error_text(error),
                error.outcome,
                retries,
                delay,
            )
            if policy.wait and delay > 0:
                await anyio.sleep(delay)
            waited = delay
            tried[:] = excluded
            target = following if following is not None else await self._pick(targets, tried)

    @staticmethod
    def _limit_reason(policy: RetryPolicy, attempts: list[Attempt], message: Message) -> str | None:
        """Why no further attempt may be made, whatever the error; None if one may."""
        if len(attempts) >= policy.attempts:
            return f"{len(attempts)} of {policy.attempts} attempts made"
        if attempts and not _replayable(message):
            return "the image's async stream cannot be read again"
        return None

    @staticmethod
    def _final(
        error: WamsgError, attempts: list[Attempt], progress: Progress, key: str, why: str
    ) -> WamsgError:
        error.attempts = tuple(attempts)
        error.idempotency_key = key
        if progress.unknown and error.outcome is not Outcome.UNKNOWN:
            # An earlier attempt may have delivered it: whatever the last
            # one says, the message may be out.
            error.outcome = Outcome.UNKNOWN
            error.retryable = False
        if len(attempts) > 1 or why != "not retryable":
            logger.info("wamsg: giving up: %s (%s)", _error_text(error), why)
        if error.outcome is Outcome.UNKNOWN:
            logger.warning(
                "wamsg: the message to key %s may or may not have been sent (%s); "
                "it will not be sent again with this key",
                _mask_key(key),
                type(error).__name__,
            )
        return error


# Generated keys: a random prefix per process and a counter, unique across
# processes sharing a store, and 0.2 µs cheaper a send than os.urandom. A
# forked child (a pre-forking server's worker) draws a prefix of its own.
_KEY_PREFIX = os.urandom(8).hex()
_key_counter = itertools.count(1)


def _new_prefix() -> None:
    global _KEY_PREFIX, _key_counter
    _KEY_PREFIX = os.urandom(8).hex()
    _key_counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_prefix)


def _new_key() -> str:
    """A fresh idempotency key, for a send the caller gave none."""
    return f"{_KEY_PREFIX}-{next(_key_counter):x}"


def _tagged(error: WamsgError, key: str) -> WamsgError:
    error.idempotency_key = key
    return error


def _record(error: WamsgError, digest: str) -> Record | None:
    """What to remember of a failed send; None releases the key (nothing went out)."""
    if error.outcome is Outcome.NOT_SENT:
        return None
    if error.outcome is Outcome.REJECTED:
        return Record(state="rejected", fingerprint=digest, error=error)
    return Record(state="unknown", fingerprint=digest, error=error)


def _replay(record: Record, key: str) -> SendResult:
    """The earlier send's result, or raise (a copy of) its error."""
    if record.result is not None:
        return msgspec.structs.replace(record.result, replayed=True)
    if record.error is not None:
        error = copy.copy(record.error)
        error.idempotency_key = key
        raise error
    # A lease that ran out with no record ("unknown:lease-expired").
    raise _tagged(
        SendTimeout(
            "an earlier send with this idempotency key never finished; "
            "the message may have been sent, so it is not sent again"
        ),
        key,
    )


def _mask_key(key: str) -> str:
    return redact(key)


def _event(
    kind: Any,
    target: Target,
    attempts: list[Attempt],
    message: Message,
    key: str,
    *,
    result: SendResult | None = None,
    error: WamsgError | None = None,
    delay: float | None = None,
    next_provider: str | None = None,
) -> DeliveryEvent:
    return DeliveryEvent(
        kind=kind,
        provider=target.provider,
        attempt=len(attempts) + (1 if kind == "before_send" else 0),
        recipient=message.recipient.masked,
        idempotency_key=key,
        result=result,
        error=error,
        delay=delay,
        next_provider=next_provider,
    )
