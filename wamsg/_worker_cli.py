"""``wamsg worker``: send what a Redis outbox holds, as one of many worker processes.

Every worker of a queue shares, through Redis, the gateway's rate limit and
sends in flight (``--rate``, ``--burst``, ``--max-in-flight``), the dedupe
store (one idempotency key is sent at most once, whichever worker takes it)
and, with ``--config``, the router's cooldowns. Start as many as you like, on
as many machines; SIGTERM or Ctrl-C stops one gracefully: it takes no new
work, finishes the sends it started, prints its summary and exits 0.

``wamsg worker --stats`` prints the queue's state (length, pending, dead,
unknown, consumers) and its newest dead and unknown entries, and sends
nothing. Nothing here imports ``redis`` until the command runs, so
``import wamsg.cli`` works without the ``wamsg[redis]`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._cli_common import clean
from ._redact import redact
from .errors import ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from . import Client, Router
    from .limits import InFlightLimiter, Limits, RateLimiter

__all__ = ["add_parser", "consumer_name", "mask_url", "run"]

_SHOWN_ENTRIES = 10  # newest dead / unknown entries --stats prints
_NEWEST_SCAN = 10_000  # entries read to find the newest
_PROGRESS_EVERY = 1.0  # seconds between --progress lines
_NAME_BAD = re.compile(r"[^\x21-\x7e]|[{}]")
_OUTCOMES = ("sent", "replayed", "unknown", "dead", "retried")

_DESCRIPTION = """\
Send the messages a Redis outbox holds (wamsg.redis.RedisOutbox.put), as one of
any number of workers of the queue. The workers share through Redis the rate
limit and sends in flight of each gateway instance (named by --name, or the
provider, or the --config file's provider names), the dedupe store and the
router's cooldowns, so 4 workers at --rate 10 send 10 a second in all, and an
idempotency key is sent at most once whichever worker takes it.

An entry whose send may have reached the gateway (a timeout or a dropped
connection) is never sent again: it goes to the queue's unknown stream
(see --stats). With --lease-policy resend a worker that died mid-send has its
messages sent again by another: at-least-once, a recipient may get one twice.

A worker that dies mid-send holds its keys until the send's --timeout plus
10 s have passed; then another worker reports them unknown (or resends them).

SIGTERM or Ctrl-C: stop taking work, finish the sends in flight, print the
summary and exit 0 (a second one exits 130 without the summary). Exit 1 when
Redis cannot be reached at the start, 2 on bad options or configuration."""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``worker`` to the command line (``cli._parser`` calls this)."""
    from . import cli

    seconds = cli._seconds
    positive = cli._positive_int
    worker = commands.add_parser(
        "worker",
        parents=parents,
        help="send the messages of a Redis outbox (many workers share limits and dedupe)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--redis",
        metavar="URL",
        help="the Redis server, e.g. redis://127.0.0.1:6379/0 (default: $WAMSG_REDIS_URL; "
        "prefer that when the URL holds a password: flags show up in `ps`)",
    )
    worker.add_argument("--queue", default="default", help="the outbox queue (default %(default)s)")
    worker.add_argument(
        "--consumer",
        help="this worker's name in the queue's consumer group (default <hostname>-<pid>)",
    )
    worker.add_argument(
        "--concurrency",
        type=cli._concurrency,
        default=8,
        metavar="N",
        help="messages this worker sends at once (default %(default)s)",
    )
    cli._add_provider_options(
        worker, "seconds for each message's send, retries and waits included (default 60)"
    )
    worker.add_argument(
        "--config",
        metavar="FILE.toml",
        help="send through the providers of a TOML file, failing over in its order "
        "(docs/configuration.md); the workers share its cooldowns through Redis",
    )
    worker.add_argument(
        "--name",
        help="the gateway instance's name for the shared limits (default: the provider's "
        "name; with --config, each provider's name in the file)",
    )
    limits = worker.add_argument_group("shared limits (per gateway instance, across workers)")
    limits.add_argument(
        "--rate",
        type=_number(float, lambda v: 0 < v <= 1e6, "rate must be more than 0 and at most 1e6"),
        metavar="PER_SECOND",
        help="sends per second, every worker together (default: the --config file's, else none)",
    )
    limits.add_argument(
        "--burst",
        type=positive,
        metavar="N",
        help="sends allowed at once above the rate (default 1; needs --rate)",
    )
    limits.add_argument(
        "--max-in-flight",
        type=positive,
        metavar="N",
        help="sends waiting for an answer at once, every worker together (default: none)",
    )
    queue = worker.add_argument_group("delivery")
    queue.add_argument(
        "--lease-policy",
        choices=("unknown", "resend"),
        default="unknown",
        help="a key whose worker died mid-send: report it unknown, never resend (default), "
        "or resend it (at-least-once: a recipient may get it twice)",
    )
    queue.add_argument(
        "--dedupe-namespace",
        default="default",
        metavar="NAME",
        help="the idempotency keys' namespace in Redis (default %(default)s)",
    )
    queue.add_argument(
        "--reclaim-after",
        type=seconds,
        metavar="SECONDS",
        help="take over an entry another worker has held this long unanswered, e.g. "
        "because it died (default 30)",
    )
    queue.add_argument(
        "--max-deliveries",
        type=positive,
        metavar="N",
        help="deliveries of one entry before it goes to the dead letters (default 8)",
    )
    queue.add_argument(
        "--exit-when-idle",
        type=seconds,
        metavar="SECONDS",
        help="exit once the queue has had nothing for this long (batch jobs, tests)",
    )
    out = worker.add_argument_group("output")
    out.add_argument(
        "--progress",
        action="store_true",
        help="a line on stderr every second: sent, replayed, unknown, dead, retried, rate",
    )
    out.add_argument(
        "--json", action="store_true", help="print the final summary as one JSON line on stdout"
    )
    out.add_argument(
        "--stats",
        action="store_true",
        help="print the queue's state and its newest dead and unknown entries, then exit "
        "(sends nothing)",
    )


def _number(
    kind: Callable[[str], float], ok: Callable[[float], bool], rule: str
) -> Callable[[str], float]:
    from . import cli

    return cli._number(kind, ok, rule)


# -- small helpers --------------------------------------------------------------


def mask_url(url: str) -> str:
    """``url`` without its password: ``redis://user:***@host:6379/0``.

    The user info ends at the *last* ``@``: a password typed without
    percent-encoding may hold ``/``, ``?``, ``#`` or ``@``, which a URL
    parser would take for the path, the query or the fragment, and show.
    A ``password=`` (or token, secret, auth) query parameter is masked too;
    a URL that does not parse is shown as ``<redis url>``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<redis url>"
    auth = ""
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if any(c in user for c in "/?#"):
            user, colon = "", ""  # not a plain user name: show none of it
        auth = f"{user}:***@" if colon else "***@"
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{rest}")
        query = parts.query
        if query:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            query = "&".join(f"{k}={'***' if _SECRET_PARAM.search(k) else v}" for k, v in pairs)
        shown = urllib.parse.urlunsplit((parts.scheme, auth + parts.netloc, parts.path, query, ""))
    except ValueError:
        return "<redis url>"
    return clean(shown)


_SECRET_PARAM = re.compile("pass|token|secret|auth|cred", re.IGNORECASE)


def consumer_name(host: str | None = None, pid: int | None = None) -> str:
    """The default consumer name: ``<hostname>-<pid>``, safe as a Redis name part."""
    host = host if host is not None else socket.gethostname()
    pid = pid if pid is not None else os.getpid()
    return _NAME_BAD.sub("-", f"{host or 'worker'}-{pid}")


def _redis_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    url = (args.redis or env.get("WAMSG_REDIS_URL") or "").strip()
    if not url:
        raise ConfigError("no Redis: pass --redis URL or set WAMSG_REDIS_URL")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"--redis must be a redis://, rediss:// or unix:// URL, not {mask_url(url)}"
        )
    return url


def _good_name(value: str) -> bool:
    """Whether ``value`` may be part of a Redis key name (wamsg.redis's rule)."""
    return bool(value) and value.isprintable() and not any(c.isspace() or c in "{}" for c in value)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that make no sense (exit 2, nothing sent)."""
    if args.burst is not None and args.rate is None and args.config is None:
        raise ConfigError("--burst goes with --rate")
    if args.config is not None and (args.dsn is not None or args.provider or args.set):
        raise ConfigError("--config holds the providers: drop --dsn, --provider and --set")
    if args.config is not None and args.name is not None:
        raise ConfigError("--name names a single provider: --config names each in its file")
    for option, value in (
        ("--queue", args.queue),
        ("--dedupe-namespace", args.dedupe_namespace),
        ("--consumer", args.consumer),
        ("--name", args.name),
    ):
        if value is not None and (not value or _NAME_BAD.search(value)):
            raise ConfigError(f"{option} must be non-empty, printable, without spaces, {{ or }}")
    if args.stats and (args.json or args.progress):
        raise ConfigError("--stats prints the queue's state: it takes no --json or --progress")


def _as_dict(value: Any) -> dict[str, Any]:
    """A summary object's fields, whatever kind of record it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    fields = getattr(value, "__struct_fields__", None)
    if fields is not None:
        return {f: getattr(value, f) for f in fields}
    as_dict = getattr(value, "_asdict", None)
    if callable(as_dict):
        return dict(as_dict())
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


# -- the sender -------------------------------------------------------------------


def _limits(
    base: Limits | None, rate: float | None, burst: int | None, in_flight: int | None
) -> Limits | None:
    """``base`` (a file's limits, or none) with the flags over it."""
    from .limits import Limits

    fields: dict[str, Any] = (
        {f: getattr(base, f) for f in base.__struct_fields__} if base is not None else {}
    )
    if rate is not None:
        fields["rate"] = rate
    if burst is not None:
        fields["burst"] = burst
    if in_flight is not None:
        fields["max_in_flight"] = in_flight
    if not fields:
        return None
    return Limits(**fields)


def _shared_limiters(
    redis: Any, name: str, limits: Limits | None
) -> tuple[RateLimiter | None, InFlightLimiter | None]:
    """The Redis-backed rate and in-flight limiters ``limits`` asks for, named ``name``."""
    from .redis.limits import RedisInFlightLimiter, RedisRateLimiter

    if limits is None:
        return None, None
    rate = RedisRateLimiter(redis, name, limits) if limits.paces else None
    in_flight = (
        RedisInFlightLimiter(redis, name, limits.max_in_flight)
        if limits.max_in_flight is not None
        else None
    )
    return rate, in_flight


def _sender(args: argparse.Namespace, redis: Any, env: Mapping[str, str]) -> Client | Router:
    """The client (or, with ``--config``, router) the worker sends through."""
    from . import Client, Router, cli, load_config
    from .redis.dedupe import RedisDedupeStore

    dedupe = RedisDedupeStore(
        redis, namespace=args.dedupe_namespace, lease_policy=args.lease_policy
    )
    if args.config is None:
        config = cli._client_config(args, env)
        name = args.name or config.provider
        limits = _limits(None, args.rate, args.burst, args.max_in_flight)
        rate, in_flight = _shared_limiters(redis, name, limits)
        timeout = cli.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        return Client(
            config.create_adapter(),
            timeout=timeout,
            retry=cli._retry_policy(args),
            rate_limiter=rate,
            in_flight_limiter=in_flight,
            dedupe=dedupe,
            name=name,
        )
    from .limits import Limits
    from .redis.cooldown import RedisCooldownStore

    file = load_config(args.config)
    clients = []
    for key in file.failover:
        in_file = file.client_options(key).get("limits")
        try:
            base = Limits(**in_file) if in_file else None
            limits = _limits(base, args.rate, args.burst, args.max_in_flight)
        except ConfigError as exc:
            raise ConfigError(
                f"{file.source} [providers.{key}.client] limits: {exc.message}"
            ) from None
        rate, in_flight = _shared_limiters(redis, key, limits)
        clients.append(
            Client.from_config(file, key, rate_limiter=rate, in_flight_limiter=in_flight)
        )
    options: dict[str, Any] = dict(file.router_options)
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.no_retry or args.attempts is not None:
        options["retry"] = cli._retry_policy(args)
    options["dedupe"] = dedupe
    options["cooldowns"] = RedisCooldownStore(redis)
    return Router(clients, **options)


# -- running ------------------------------------------------------------------------


class _Tally:
    """Outcomes counted from the worker's ``on_item`` calls, for ``--progress``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()

    def __call__(self, item: Any, outcome: str, result: Any) -> None:
        self.counts[str(outcome)] += 1

    def line(self, last: Counter[str], interval: float) -> str:
        parts = [f"{name} {self.counts.get(name, 0)}" for name in _OUTCOMES]
        others = sorted(k for k in self.counts if k not in _OUTCOMES)
        parts += [f"{name} {self.counts[name]}" for name in others]
        recent = self.counts.get("sent", 0) - last.get("sent", 0)
        rate = recent / interval if interval > 0 else 0.0
        return "wamsg worker: " + ", ".join(parts) + f" | {rate:.1f} sent/s"


async def _progress(tally: _Tally) -> None:
    last: Counter[str] = Counter()
    then = time.monotonic()
    while True:
        await asyncio.sleep(_PROGRESS_EVERY)
        now = time.monotonic()
        print(clean(tally.line(last, now - then)), file=sys.stderr, flush=True)
        last, then = Counter(tally.counts), now


def _summary_line(summary: dict[str, Any], elapsed: float, consumer: str) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in summary.items())
    sent = summary.get("sent", 0)
    rate = sent / elapsed if elapsed > 0 and isinstance(sent, int) else 0.0
    return clean(f"worker {consumer}: {shown} in {elapsed:.1f}s ({rate:.1f} sent/s)")


def _reason(exc: BaseException) -> str:
    # The exception's type and message, cut short: redis-py's messages name
    # the host and port (never the password: it is not part of them).
    text = str(exc) or type(exc).__name__
    return clean(redact(text))[:160]


async def _connect(url: str) -> Any:
    """A Redis client for ``url``, checked with a PING; StoreUnavailable if unreachable."""
    from .redis._base import connect

    try:
        redis = connect(url)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--redis {mask_url(url)}: {_reason(exc)}") from None
    try:
        await redis.ping()
    except Exception as exc:  # redis-py's ConnectionError, TimeoutError, auth errors...
        with contextlib.suppress(Exception):
            await redis.aclose()
        raise StoreUnavailable(
            f"cannot reach Redis at {mask_url(url)}: {_reason(exc)}", store="outbox"
        ) from None
    return redis


def _outbox(args: argparse.Namespace, redis: Any) -> Any:
    from .redis.outbox import RedisOutbox

    options: dict[str, Any] = {}
    if args.reclaim_after is not None:
        options["reclaim_after"] = args.reclaim_after
    if args.max_deliveries is not None:
        options["max_deliveries"] = args.max_deliveries
    return RedisOutbox(redis, args.queue, **options)


def _entry_line(entry: Any) -> str:
    """One dead-letter or unknown entry, masked: id, when, key, recipient, deliveries, reason."""
    parts = [str(getattr(entry, "id", "?"))]
    at = getattr(entry, "at", None)
    if isinstance(at, int | float):
        parts.append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)))
    key = getattr(entry, "key", None)
    if key is not None:
        parts.append(f"key={redact(str(key))}")
    message = getattr(entry, "message", None)
    recipient = getattr(message, "recipient", None)
    masked = getattr(recipient, "masked", None)
    if masked is not None:
        parts.append(f"to={masked}")
    elif message is not None:
        parts.append(f"to={redact(str(getattr(message, 'to', '?')))}")
    deliveries = getattr(entry, "deliveries", None)
    if deliveries is not None:
        parts.append(f"deliveries={deliveries}")
    reason = getattr(entry, "reason", None)
    if reason:
        parts.append(f"reason={redact(str(reason))}")
    return clean(" ".join(parts))


async def _newest(fetch: Callable[..., Awaitable[list[Any]]], total: int) -> list[Any]:
    """The newest entries of a ``:dead`` or ``:unknown`` stream holding ``total``, newest first.

    The outbox lists the oldest first, so this reads up to ``_NEWEST_SCAN``
    entries and keeps the tail (a stream longer than that shows its oldest).
    """
    if total <= 0:
        return []
    entries = list(await fetch(count=min(total, _NEWEST_SCAN)))
    return entries[-_SHOWN_ENTRIES:][::-1]


async def _stats(args: argparse.Namespace, redis: Any, shown_url: str) -> int:
    outbox = _outbox(args, redis)
    stats = await outbox.stats()
    fields = _as_dict(stats)
    print(clean(f"queue {args.queue} at {shown_url}"))
    waiting = getattr(stats, "waiting", None)
    for name, value in fields.items():
        extra = f" (waiting {waiting})" if name == "length" and waiting is not None else ""
        print(f"  {clean(f'{name}: {value}{extra}')}")
    for title, fetch, total in (
        ("dead", outbox.dead_letters, fields.get("dead", 0)),
        ("unknown", outbox.unknowns, fields.get("unknown", 0)),
    ):
        entries = await _newest(fetch, int(total))
        if entries:
            print(f"newest {title} entries (up to {_SHOWN_ENTRIES}, newest first):")
            for entry in entries:
                print(f"  {_entry_line(entry)}")
    return 0


async def _work(
    args: argparse.Namespace, redis: Any, env: Mapping[str, str], shown_url: str
) -> int:
    import anyio

    from .redis.worker import run_worker

    consumer = args.consumer or consumer_name()
    sender = _sender(args, redis, env)
    outbox = _outbox(args, redis)
    stop = anyio.Event()
    tally = _Tally()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    hooked: list[signal.Signals] = []
    signalled = 0

    def on_signal() -> None:
        nonlocal signalled
        signalled += 1
        if signalled == 1:
            print("wamsg worker: stopping: finishing the sends in flight", file=sys.stderr)
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
            hooked.append(sig)
    reporter = asyncio.ensure_future(_progress(tally)) if args.progress else None
    print(
        clean(
            f"wamsg worker {consumer}: queue {args.queue} at {shown_url}, "
            f"sending through {sender.provider}, concurrency {args.concurrency}"
        ),
        file=sys.stderr,
        flush=True,
    )
    try:
        async with sender:
            summary = await run_worker(
                outbox,
                sender,
                consumer=consumer,
                concurrency=args.concurrency,
                stop=stop,
                idle_exit=args.exit_when_idle,
                on_item=tally,
            )
    except asyncio.CancelledError:
        if signalled > 1:
            print("wamsg worker: stopped at once", file=sys.stderr)
            return 130
        raise
    finally:
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        for sig in hooked:
            loop.remove_signal_handler(sig)
    elapsed = time.monotonic() - tally.started
    fields = _as_dict(summary)
    if args.json:
        print(json.dumps({**fields, "consumer": consumer, "elapsed": round(elapsed, 3)}))
    else:
        print(_summary_line(fields, elapsed, consumer))
    return 0


async def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``wamsg worker`` with its parsed ``args``; returns the exit code.

    Raises:
        ConfigError: bad options or configuration (exit 2, nothing sent).
        StoreUnavailable: Redis cannot be reached (exit 1).
    """
    _check_options(args)
    if importlib.util.find_spec("redis") is None:
        raise ConfigError("wamsg worker needs redis-py: install it with pip install 'wamsg[redis]'")
    url = _redis_url(args, env)
    shown = mask_url(url)
    if not args.stats:
        # Check the provider options before touching Redis: a typo exits 2 at once.
        _preflight(args, env)
    redis = await _connect(url)
    try:
        if args.stats:
            return await _stats(args, redis, shown)
        return await _work(args, redis, env, shown)
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()


def _preflight(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Raise ConfigError for provider options that cannot work, before connecting."""
    from . import cli, load_config

    if args.config is None:
        config = cli._client_config(args, env)
        config.create_adapter()
    else:
        load_config(args.config)
    _limits(None, args.rate, args.burst, args.max_in_flight)
