"""Scale-out: N ``wamsg worker`` processes sharing one Redis, against the sandbox gateway.

The setup of tests/test_redis_scaleout.py (../shared/docs/scaleout.md §5),
measured instead of asserted:

- a ``redis-server`` started here on 127.0.0.1 in a temporary directory
  (Debian's package; the script exits 1 without it);
- the sandbox gateway served in this process on 127.0.0.1, with 5% 503
  before sending, 1% drop-after-read and 5 ms per accepted send;
- MESSAGES unique messages plus DUPLICATES repeated enqueues, put with
  ``RedisOutbox.put``;
- N ``python -m wamsg worker`` processes, ``--concurrency 8`` each, sharing
  ``--rate 200 --burst 20 --max-in-flight 16`` through Redis; each exits
  once the queue stays empty (``--exit-when-idle``). ``--kill`` SIGKILLs the
  first worker after a third of the messages reached the gateway.

Per row: the seconds from the first worker's start (process start-up
included) until the queue is empty, and messages per second over them; the
gateway's requests per second from its first request to its last (retries
of 503s included); duplicates (a key the gateway stored more than once), unknown and
dead keys (the queue's ``:unknown`` and ``:dead`` streams); the most
requests the gateway saw in any 1-second window against the limit
``rate + burst`` (the test's bound adds ``max_in_flight`` for arrival
jitter); the most requests inside the gateway at once against
``--max-in-flight``.

Run: ``python benchmarks/scaleout.py`` (1, 2 and 4 workers, 1,000 messages),
``--workers 4 --kill``, ``--no-limit`` (no shared rate: what the box can do),
``--quick`` (or ``WAMSG_BENCH_QUICK=1``) for a smoke run of a few seconds.
Prints a Markdown table. Everything runs on this machine, so the numbers
measure contention between the processes, not Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from wamsg import Text
from wamsg.sandbox import Sandbox, parse_fault
from wamsg.testing.scaleout import RedisServer, max_in_window, timed_gateway

PROVIDER = "gowa"
FAULTS = (
    f"{PROVIDER}:server_error:status=503,probability=0.05,times=always",
    f"{PROVIDER}:drop:probability=0.01,times=always",
    f"{PROVIDER}:slow:delay=0.005,times=always",
)
KEY_RE = re.compile(r"\bkey=(k\d+)\b")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A fresh ``redis-server`` on 127.0.0.1, persistence off; yields its URL."""
    try:
        server = RedisServer()
    except (FileNotFoundError, RuntimeError) as exc:
        sys.exit(f"scaleout: {exc}")
    with server:
        yield server.url


# -- one run ----------------------------------------------------------------------


@dataclass
class Settings:
    workers: int
    messages: int
    duplicates: int
    rate: float | None
    burst: int
    max_in_flight: int
    concurrency: int
    kill: bool
    lease_policy: str
    budget: float


@dataclass
class Row:
    settings: Settings
    seconds: float
    requests: int
    duplicates: int
    unknown: int
    dead: int
    lost: int
    sending: float
    max_per_second: int
    peak_in_flight: int


def plan(count: int, duplicates: int, seed: int) -> list[tuple[str, Text]]:
    rng = random.Random(seed)
    unique = [
        (f"k{i}", Text(to=f"+55 11 9{i % 97:04d}-{i % 10000:04d}", text=f"bench key=k{i}"))
        for i in range(count)
    ]
    order = list(unique)
    for original in rng.sample(range(count), min(duplicates, count)):
        at = order.index(unique[original])
        order.insert(rng.randint(at + 1, len(order)), unique[original])
    return order


async def run(settings: Settings, redis_url: str, seed: int) -> Row:
    from wamsg.redis._base import connect
    from wamsg.redis.outbox import RedisOutbox

    queue = f"bench{seed}"
    box = Sandbox(seed=seed, max_messages=max(10_000, 2 * settings.messages))
    for spec in FAULTS:
        box.add_fault(parse_fault(spec))
    redis = connect(redis_url)
    processes: list[asyncio.subprocess.Process] = []
    try:
        await redis.flushall()
        outbox = RedisOutbox(redis, queue, reclaim_after=1.0, max_deliveries=60)
        async with timed_gateway(box, PROVIDER) as gateway:
            for key, message in plan(settings.messages, settings.duplicates, seed):
                await outbox.put(message, key=key)
            env = {**os.environ, "WAMSG_REDIS_URL": redis_url, "WAMSG_DSN": box.dsn(PROVIDER)}
            env.pop("WAMSG_PROVIDER", None)
            limits = ["--max-in-flight", str(settings.max_in_flight)]
            if settings.rate is not None:
                limits += ["--rate", f"{settings.rate:g}", "--burst", str(settings.burst)]
            started = time.monotonic()
            for i in range(settings.workers):
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "wamsg", "worker", "--queue", queue,
                        "--consumer", f"bench-{i}", "--concurrency", str(settings.concurrency),
                        *limits, "--timeout", "3", "--no-retry", "--reclaim-after", "1",
                        "--max-deliveries", "60", "--lease-policy", settings.lease_policy,
                        "--exit-when-idle", "2",
                        env=env, stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    )
                )  # fmt: skip
            killed = not settings.kill
            drained = None
            while time.monotonic() - started < settings.budget:
                await asyncio.sleep(0.02)
                if not killed and len(gateway.arrivals) >= settings.messages // 3:
                    processes[0].kill()
                    killed = True
                if killed:
                    stats = await outbox.stats()
                    if stats.length == 0 and stats.pending == 0:
                        drained = time.monotonic() - started
                        break
            seconds = drained if drained is not None else float("nan")
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 15)
            unknown = {e.key for e in await outbox.unknowns(count=1_000_000)}
            dead = {e.key for e in await outbox.dead_letters(count=1_000_000)}
            stored = Counter(
                match.group(1)
                for m in box.outbox
                if m.provider == PROVIDER and (match := KEY_RE.search(m.text or ""))
            )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await redis.aclose()
    keys = {f"k{i}" for i in range(settings.messages)}
    return Row(
        settings=settings,
        seconds=seconds,
        requests=len(gateway.arrivals),
        duplicates=sum(1 for n in stored.values() if n > 1),
        unknown=len(unknown),
        dead=len(dead),
        lost=len(keys - set(stored) - unknown - dead),
        sending=max(gateway.arrivals) - min(gateway.arrivals) if gateway.arrivals else 0.0,
        max_per_second=max_in_window(gateway.arrivals),
        peak_in_flight=gateway.peak_in_flight,
    )


def print_table(rows: list[Row]) -> None:
    print(
        "| workers | kill | messages | drained in s | msg/s | gateway requests/s | duplicates "
        "| unknown | dead | lost | max requests in any 1 s | limit (rate+burst) "
        "| peak in flight (limit) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        s = row.settings
        limit = f"{s.rate + s.burst:g}" if s.rate is not None else "none"
        print(
            f"| {s.workers} | {'yes' if s.kill else 'no'} | {s.messages} + {s.duplicates} dup "
            f"| {row.seconds:.2f} | {s.messages / row.seconds:.0f} "
            f"| {row.requests / row.sending if row.sending else 0:.0f} "
            f"| **{row.duplicates}** | {row.unknown} | {row.dead} | {row.lost} "
            f"| {row.max_per_second} | {limit} | {row.peak_in_flight} ({s.max_in_flight}) |"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (1 when a run lost or duplicated a key)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--duplicates", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-limit", action="store_true", help="no shared rate limit")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one worker mid-run")
    parser.add_argument("--lease-policy", choices=("unknown", "resend"), default="unknown")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("WAMSG_BENCH_QUICK") == "1"
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    messages, duplicates = args.messages, args.duplicates
    if quick:
        counts, messages, duplicates = [2], min(messages, 200), min(duplicates, 10)
    rows = []
    with redis_server() as url:
        for seed, workers in enumerate(counts, 1):
            settings = Settings(
                workers=workers,
                messages=messages,
                duplicates=duplicates,
                rate=None if args.no_limit else args.rate,
                burst=args.burst,
                max_in_flight=args.max_in_flight,
                concurrency=args.concurrency,
                kill=args.kill and workers > 1,
                lease_policy=args.lease_policy,
                budget=120.0,
            )
            rows.append(asyncio.run(run(settings, url, seed)))
    print(
        f"\nscale-out: Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"faults 5% 503, 1% drop-after-read, 5 ms per send; lease policy {args.lease_policy}\n"
    )
    print_table(rows)
    return 1 if any(r.duplicates or r.lost for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
