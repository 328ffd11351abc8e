"""Rate limiting and delivery-layer overhead, as ratios to baselines in the same run.

Two measurements, interleaved over several rounds (the machine is small and
noisy), each reported as a median and a spread (min-max):

- rate limit: 50 sends through a ``wamsg.Client`` with
  ``Limits(rate=100, burst=10)`` over ``MockTransport``. The ideal time is
  ``(50 - burst) / rate = 0.40 s``: the burst goes at once, then one send per
  10 ms. Measured serially (one ``await`` after another), concurrently (50
  tasks started at once) and through ``send_many(concurrency=50)``; the
  baseline is a bare schedule that sleeps until the same 50 ideal instants
  with ``anyio.sleep`` (what the event loop's timers alone cost). Target
  (issue 6): 0.35-0.5 s, i.e. 0.875-1.25x the ideal. Every round also checks
  that all 50 sends succeeded, that the transport saw exactly 50 requests and
  (serially) that they left in order.
- P1: ``Client.send`` over ``MockTransport`` minus a bare ``await`` of the
  same handler (design target: ≤ 10 µs), for the default client (retry
  policy, in-memory dedupe store, a generated key per send), for a key given
  by the caller on each send (claim + finish in the store), with
  ``dedupe=False`` (to show what the store costs), and for the default
  client with the cyclic garbage collector paused while timing (to show what
  collecting the store's records costs), each on a fresh client per round;
  and for one default client whose store is already full (100,000 keys,
  every insert evicting), a long-running service's steady state.

Run: ``python benchmarks/rate_limit.py`` (7 rounds, 10,000 sends per P1
round), ``--quick`` (or ``WAMSG_BENCH_QUICK=1``) for a smoke run of a few
seconds, ``--profile`` to add a cProfile of the default client's send.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import anyio

import wamsg
from wamsg.providers.wawp import WawpAdapter

SENDS = 50
RATE = 100.0
BURST = 10
IDEAL = (SENDS - BURST) / RATE  # 0.40 s
LOW, HIGH = 0.35, 0.5  # issue 6's window, in seconds

# The shape of a Wawp (whatsapp-web.js) answer, small, as in codec.py.
BODY = b'{"id":{"_serialized":"true_1@c.us_X","id":"X"},"ack":0,"timestamp":1759108866}'
ANSWER = wamsg.HttpResponse(status=200, body=BODY)


def handler(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
    return ANSWER


def make_client(**settings: object) -> wamsg.Client:
    return wamsg.Client(
        WawpAdapter(instance_id="i", access_token="t"),
        transport=wamsg.MockTransport(handler),
        **settings,  # type: ignore[arg-type]
    )


def messages() -> list[wamsg.Text]:
    return [wamsg.Text(to="+5511999990000", text=f"message {i}") for i in range(SENDS)]


def check(client: wamsg.Client, results: list[object], ordered: bool) -> None:
    """Counts (and, serially, order): the benchmark is void if the sends were not all made."""
    transport = client.transport
    assert isinstance(transport, wamsg.MockTransport)
    assert all(isinstance(r, wamsg.SendResult) for r in results), results
    assert transport.calls == SENDS, transport.calls
    if ordered:
        sent = [bytes(r.body) for r in transport.requests]  # type: ignore[arg-type]
        assert sent == sorted(sent, key=lambda b: int(b.split(b"message ")[1].split(b'"')[0]))


# -- rate limit -----------------------------------------------------------------


async def serial() -> float:
    client = make_client(limits=wamsg.Limits(rate=RATE, burst=BURST))
    batch = messages()
    start = time.perf_counter()
    results = [await client.send(m) for m in batch]
    elapsed = time.perf_counter() - start
    check(client, results, ordered=True)
    return elapsed


async def concurrent() -> float:
    client = make_client(limits=wamsg.Limits(rate=RATE, burst=BURST))
    batch = messages()
    results: list[object] = [None] * SENDS

    async def one(i: int) -> None:
        results[i] = await client.send(batch[i])

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(SENDS):
            group.start_soon(one, i)
    elapsed = time.perf_counter() - start
    check(client, results, ordered=False)
    return elapsed


async def bulk() -> float:
    client = make_client(limits=wamsg.Limits(rate=RATE, burst=BURST))
    batch = messages()
    start = time.perf_counter()
    results = await client.send_many(batch, concurrency=SENDS)
    elapsed = time.perf_counter() - start
    check(client, list(results), ordered=False)
    return elapsed


async def bare_schedule() -> float:
    """The baseline: sleep until each of the 50 ideal instants, no wamsg at all."""
    start = time.perf_counter()
    for i in range(SENDS):
        due = start + max(0, i - (BURST - 1)) / RATE
        delay = due - time.perf_counter()
        if delay > 0:
            await anyio.sleep(delay)
    return time.perf_counter() - start


RATE_CASES: dict[str, Callable[[], Awaitable[float]]] = {
    "bare anyio.sleep schedule (baseline)": bare_schedule,
    "serial: 50 awaits of client.send": serial,
    "concurrent: 50 tasks at once": concurrent,
    "send_many(concurrency=50)": bulk,
}


async def rate_rounds(k: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in RATE_CASES}
    for _ in range(k):
        for name, case in RATE_CASES.items():
            out[name].append(await case())
    return out


def rate_table(results: dict[str, list[float]]) -> None:
    base = statistics.median(results["bare anyio.sleep schedule (baseline)"])
    print(
        f"| what | seconds (median) | spread | / ideal {IDEAL:.2f} s | / baseline | "
        f"target {LOW}-{HIGH} s |"
    )
    print("|---|---|---|---|---|---|")
    for name, times in results.items():
        med = statistics.median(times)
        met = "met" if min(times) >= LOW and max(times) <= HIGH else "**not met**"
        if name.endswith("(baseline)"):
            met = "—"
        print(
            f"| {name} | {med:.3f} | {min(times):.3f}-{max(times):.3f} | "
            f"{med / IDEAL:.3f}x | {med / base:.3f}x | {met} |"
        )


# -- P1: per-send overhead ------------------------------------------------------


#: P1 variants: (client settings, caller gives a key, GC paused while timing).
P1_CASES: dict[str, tuple[dict[str, object], bool, bool]] = {
    "default client (retry, dedupe store, generated key)": ({}, False, False),
    "caller's idempotency key on each send": ({}, True, False),
    "dedupe=False (no store)": ({"dedupe": False}, False, False),
    # The default client with the cyclic GC paused while timing: the
    # difference is what collecting the store's records costs.
    "default client, gc paused while timing": ({}, False, True),
}
FULL = "default client, store already full (100,000 keys, evicting)"


async def p1_rounds(n: int, k: int, full: int) -> dict[str, list[tuple[float, float]]]:
    """Fresh clients each round (each store starts empty), plus one whose store is full."""
    message = wamsg.Text(to="+5511999990000", text="Hello")
    request = make_client().adapter.encode(message)

    async def bare(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
        return handler(request)

    # Steady state of a long-running default client: the store at its bound,
    # every insert evicting the oldest key.
    veteran = make_client()
    for _ in range(full):
        await veteran.send(message)

    out: dict[str, list[tuple[float, float]]] = {name: [] for name in (*P1_CASES, FULL)}
    counter = 0
    for _ in range(k):
        for name in out:
            settings, given, paused = P1_CASES.get(name, ({}, False, False))
            client = veteran if name == FULL else make_client(**settings)
            keys = [f"order-{counter + i}" for i in range(n)] if given else []
            counter += n
            gc.collect()
            if paused:
                gc.disable()
            start = time.perf_counter()
            if given:
                for key in keys:
                    await client.send(message, idempotency_key=key)
            else:
                for _ in range(n):
                    await client.send(message)
            ours = (time.perf_counter() - start) / n * 1e6
            start = time.perf_counter()
            for _ in range(n):
                await bare(request)
            base = (time.perf_counter() - start) / n * 1e6
            if paused:
                gc.enable()
            out[name].append((ours, base))
    return out


def p1_table(results: dict[str, list[tuple[float, float]]]) -> None:
    print(
        "| Client.send over MockTransport | µs (median) | spread | bare await µs "
        "| overhead µs | P1 ≤ 10 µs |"
    )
    print("|---|---|---|---|---|---|")
    for name, pairs in results.items():
        ours = [a for a, _ in pairs]
        extra = [a - b for a, b in pairs]
        med, bmed = statistics.median(ours), statistics.median(b for _, b in pairs)
        over = statistics.median(extra)
        met = "met" if over <= 10.0 else "**not met**"
        print(
            f"| {name} | {med:.2f} | {min(ours):.2f}-{max(ours):.2f} | {bmed:.2f} | "
            f"{over:.2f} | {met} |"
        )


def profile(n: int) -> None:
    """cProfile of the default client's send (cProfile inflates small calls: read shares)."""
    client = make_client()
    message = wamsg.Text(to="+5511999990000", text="Hello")

    async def loop() -> None:
        for _ in range(n):
            await client.send(message)

    asyncio.run(loop())  # warm up
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(loop())
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print("\n```\n" + out.getvalue().strip() + "\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (7)")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of send")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("WAMSG_BENCH_QUICK", "") not in ("", "0")
    k = args.rounds or (2 if quick else 7)
    n = 1000 if quick else 10000

    print(f"python {sys.version.split()[0]}, {k} interleaved rounds{' (quick)' if quick else ''}\n")
    print(f"### Rate limit: {SENDS} sends at Limits(rate={RATE:g}, burst={BURST})\n")
    rate_table(asyncio.run(rate_rounds(k)))
    print(f"\n### P1: per-send overhead, {n} sends per round\n")
    p1_table(asyncio.run(p1_rounds(n, k, 10_000 if quick else 100_000)))
    if args.profile:
        profile(n)


if __name__ == "__main__":
    main()
