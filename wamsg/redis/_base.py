"""What every ``wamsg.redis`` store shares: the connection, names, and error mapping.

The helpers here are internal to ``wamsg.redis`` (the outbox and the worker
use them too):

- :func:`connect` makes a ``redis.asyncio.Redis`` with wamsg's timeouts;
- :func:`check_name` validates the names that end up in key names;
- :func:`ensure_asyncio` refuses to run on anything but asyncio (redis-py has
  no trio support, ../shared/docs/scaleout.md §1.4);
- :class:`store_errors` turns redis-py's and the socket's errors into
  :class:`~wamsg.StoreUnavailable`, with a message that names the store and
  the error class but never a key, a value, a password or a URL;
- :func:`hashed` hashes what must not appear in key names (idempotency
  keys, phone numbers);
- :class:`Outage` logs a store's outage once, not once per call.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

import redis.asyncio as aioredis
import redis.exceptions as rex

from ..errors import ConfigError, StoreUnavailable

__all__ = [
    "LUA_NOW_MS",
    "Outage",
    "check_name",
    "connect",
    "ensure_asyncio",
    "hashed",
    "is_store_error",
    "store_error",
    "store_errors",
]

log = logging.getLogger("wamsg.redis")

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds to wait for a TCP connection to Redis.
CONNECT_TIMEOUT: Final = 2.0
#: Seconds to wait for one command's answer.
SOCKET_TIMEOUT: Final = 5.0

#: Lua: the server's time in whole milliseconds, as ``now``. Every script
#: reads time from here, never from ARGV: the workers' clocks need not agree.
LUA_NOW_MS: Final = (
    "local _t = redis.call('TIME')\n"
    "local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)\n"
)


def connect(url: str, **kw: Any) -> aioredis.Redis:
    """A ``redis.asyncio.Redis`` for the stores, from a ``redis://`` or ``rediss://`` URL.

    Defaults: connect timeout 2 s, command timeout 5 s, bytes responses (the
    stores decode what they read), and no automatic retry of a command (a
    retried script could run twice). Any keyword overrides them and is passed
    to :meth:`redis.asyncio.Redis.from_url`.

    Args:
        url: where Redis is, e.g. ``"redis://127.0.0.1:6379/0"``.
        **kw: more options for :meth:`redis.asyncio.Redis.from_url`.

    Raises:
        ConfigError: the URL is not a Redis URL (the message does not repeat it).
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "decode_responses": False,
    }
    options.update(kw)
    try:
        client: aioredis.Redis = aioredis.Redis.from_url(url, **options)
    except ValueError:
        # redis-py's message repeats the URL, which may hold a password.
        raise ConfigError(
            "not a Redis URL: expected redis://, rediss:// or unix:// (the URL is not shown)"
        ) from None
    return client


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it may be part of a key name, else raise ConfigError.

    A name must be a non-empty printable string without whitespace and
    without ``{`` or ``}`` (they would break the keys' Cluster hash tags).

    Args:
        kind: what the name is, for the message (``"name"``, ``"queue"`` ...).
        value: the name.

    Raises:
        ConfigError: the name is empty, not printable, or holds a space or a brace.
    """
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the {kind} must be a non-empty string")
    if not value.isprintable() or any(ch.isspace() or ch in "{}" for ch in value):
        raise ConfigError(
            f"the {kind} must be printable, without spaces or braces ({{ }}): "
            "it becomes part of Redis key names"
        )
    return value


def ensure_asyncio(what: str) -> None:
    """Raise ConfigError unless the caller runs on an asyncio event loop.

    redis-py's asyncio client does not run on trio (its AnyIO support was
    never merged), so ``wamsg.redis`` needs asyncio.

    Args:
        what: the class or function that needs asyncio, for the message.

    Raises:
        ConfigError: when no asyncio event loop runs this code (trio, or sync code).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigError(
            f"{what} needs asyncio: redis-py's asyncio client does not run on trio. "
            "Run it under asyncio (anyio.run(main, backend='asyncio')), or keep the "
            "in-process stores on trio (docs/scaling.md)"
        ) from None


def hashed(value: str) -> str:
    """The SHA-256 of ``value`` (UTF-8), in hex: how secrets and numbers enter key names."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# Reply prefixes of a server that is up but cannot serve (a replica being
# promoted, a dataset loading, a Cluster without a majority). redis-py turns
# most into their own classes; script errors keep the prefix in the message.
_UNAVAILABLE_PREFIXES: Final = ("LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
_UNAVAILABLE_CLASSES: Final = (
    rex.ConnectionError,  # includes BusyLoadingError, AuthenticationError
    rex.TimeoutError,
    rex.ReadOnlyError,
    rex.ClusterDownError,  # includes MasterDownError
    rex.TryAgainError,
    OSError,
)


def is_store_error(exc: BaseException) -> bool:
    """True when ``exc`` means the store cannot serve now (down, loading, read-only, ...)."""
    if isinstance(exc, _UNAVAILABLE_CLASSES):
        return True
    if isinstance(exc, rex.ResponseError):
        text = str(exc).lstrip()
        # A script's error reads "Error running script ...: READONLY ..." or so.
        return text.startswith(_UNAVAILABLE_PREFIXES) or any(
            f" {prefix} " in f" {text} " for prefix in _UNAVAILABLE_PREFIXES
        )
    return False


def store_error(store: str, exc: BaseException) -> StoreUnavailable:
    """The :class:`~wamsg.StoreUnavailable` for ``exc`` (any redis-py error or OSError).

    The message names the store and the error class only: redis-py's own
    messages can repeat host names, and script errors parts of a script.
    """
    kind = "unreachable" if is_store_error(exc) else "failed"
    error = StoreUnavailable(
        f"the Redis {store} store is {kind} ({type(exc).__name__}); nothing was sent",
        store=store,
    )
    return error


class store_errors:  # noqa: N801 - used like a function: `with store_errors("dedupe"):`
    """Map Redis and socket errors to :class:`~wamsg.StoreUnavailable`, as a context manager.

    Works as ``with store_errors("dedupe"):``, ``async with ...`` and as a
    decorator of sync or async functions. Errors other than redis-py's
    (``redis.exceptions.RedisError``) and ``OSError`` pass through; so do
    cancellation and :class:`~wamsg.WamsgError` raised inside.

    Args:
        store: the store's name for :attr:`StoreUnavailable.store`
            (``"dedupe"``, ``"rate_limit"``, ``"in_flight"``, ``"cooldown"``,
            ``"outbox"``).
    """

    __slots__ = ("store",)

    def __init__(self, store: str) -> None:
        self.store = store

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, rex.RedisError | OSError):
            # `from None`: the original's message may name the server.
            raise store_error(self.store, exc) from None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function."""

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return await func(*args, **kwargs)

        return wrapper


class Outage:
    """One store's view of Redis being down: log once when it starts and once when it ends.

    Args:
        store: the store's name, for the log lines.
        what: what happens meanwhile, for the warning (``"using a local limit"``).
        retry: seconds between two tries of Redis while it is down (0: every call).
    """

    __slots__ = ("_retry_at", "down", "retry", "store", "what")

    def __init__(self, store: str, what: str, *, retry: float = 1.0) -> None:
        self.store = store
        self.what = what
        self.retry = retry
        self.down = False
        self._retry_at = 0.0

    def should_try(self) -> bool:
        """True when Redis should be asked now (it is up, or its retry time has come)."""
        if not self.down:
            return True
        now = time.monotonic()
        if now >= self._retry_at:
            self._retry_at = now + self.retry
            return True
        return False

    def failed(self, exc: BaseException) -> None:
        """Redis failed: start (or continue) the outage; warn at its start only."""
        self._retry_at = time.monotonic() + self.retry
        if not self.down:
            self.down = True
            log.warning(
                "Redis %s store unavailable (%s): %s until it answers again",
                self.store,
                type(exc).__name__,
                self.what,
            )

    def recovered(self) -> None:
        """Redis answered: end the outage (logged once)."""
        if self.down:
            self.down = False
            log.info("Redis %s store answers again", self.store)
