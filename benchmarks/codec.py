"""Codec and pipeline cost per message, as ratios to a baseline in the same run.

Measures, interleaved over several rounds (the machine is small and noisy):

- encode: ``WawpAdapter.encode(Text)`` vs ``json.dumps`` of the same body
  (design target P6: ≤ 1 µs for the body; we report the whole encode, which
  also builds the HttpRequest and checks the message);
- decode: ``WawpAdapter.decode`` of the seed 004 answer (3.4 KB) vs
  ``json.loads`` of it (target P5: ≤ 5 µs);
- pipeline: ``Client.send`` over MockTransport minus a bare await of the
  handler (target P1: ≤ 10 µs).

Run: ``python benchmarks/codec.py`` (prints a Markdown table).
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import wamsg
from wamsg.providers.wawp import WawpAdapter

ROOT = Path(__file__).resolve().parent.parent
SEED_004 = Path(ROOT.parent / "shared" / "seeds").glob("004_*.txt")


def seed_answer() -> bytes:
    """The example 200 body of the v2 Send Text page (seed 004), as JSON bytes."""
    for path in SEED_004:
        text = path.read_text()
        start = text.index("Example\n{") + len("Example\n")
        end = text.index("}Command Palette", start) + 1
        return json.dumps(json.loads(text[start:end])).encode()
    golden = ROOT / "tests" / "data" / "wawp" / "ok_seed_004_text_page.response.json"
    # The same example, kept byte for byte as a golden file (for a checkout
    # without ../shared beside it).
    return json.dumps(json.loads(json.loads(golden.read_text())["body_text"])).encode()


def per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


Pair = tuple[Callable[[], object], Callable[[], object]]


def rounds(pairs: dict[str, Pair], n: int, k: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in pairs}
    for _ in range(k):
        for name, (ours, base) in pairs.items():
            results[name].append((per_call(ours, n), per_call(base, n)))
    return results


async def pipeline(n: int, k: int) -> list[tuple[float, float]]:
    body = b'{"id":{"_serialized":"true_1@c.us_X","id":"X"},"ack":0,"timestamp":1759108866}'
    answer = wamsg.HttpResponse(status=200, body=body)

    def handler(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
        return answer

    client = wamsg.Client(
        WawpAdapter(instance_id="i", access_token="t"), transport=wamsg.MockTransport(handler)
    )
    message = wamsg.Text(to="+5511999990000", text="Hello")
    request = client.adapter.encode(message)

    async def bare(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
        return handler(request)

    out = []
    for _ in range(k):
        start = time.perf_counter()
        for _ in range(n):
            await client.send(message)
        ours = (time.perf_counter() - start) / n * 1e6
        start = time.perf_counter()
        for _ in range(n):
            await bare(request)
        base = (time.perf_counter() - start) / n * 1e6
        out.append((ours, base))
    return out


def main() -> None:
    adapter = WawpAdapter(instance_id="123456789", access_token="token")
    text = wamsg.Text(to="+5511999990000", text="Hello from wamsg")
    body = {"chatId": "5511999990000@c.us", "message": "Hello from wamsg"}
    raw = seed_answer()
    response = wamsg.HttpResponse(status=200, body=raw)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    k = 7
    results = rounds(
        {
            "encode text (adapter.encode vs json.dumps body)": (
                lambda: adapter.encode(text),
                lambda: json.dumps(body).encode(),
            ),
            f"decode seed 004 answer, {len(raw)} B (adapter.decode vs json.loads)": (
                lambda: adapter.decode(response),
                lambda: json.loads(raw),
            ),
        },
        n,
        k,
    )
    results["Client.send over MockTransport vs bare await"] = asyncio.run(pipeline(n // 2, k))
    print_table(results, n, k)


def print_table(results: dict[str, list[tuple[float, float]]], n: int, k: int) -> None:
    """The Markdown table of (wamsg, baseline) µs pairs: median, spread, difference, ratio."""
    print(f"python {sys.version.split()[0]}, {k} interleaved rounds of {n}\n")
    print("| what | wamsg µs (median) | spread | baseline µs | wamsg - baseline µs | ratio |")
    print("|---|---|---|---|---|---|")
    for name, pairs in results.items():
        ours = [a for a, _ in pairs]
        base = [b for _, b in pairs]
        med, bmed = statistics.median(ours), statistics.median(base)
        spread = f"{min(ours):.2f}-{max(ours):.2f}"
        label = re.sub(r"\s+", " ", name)
        extra = med - bmed
        print(f"| {label} | {med:.2f} | {spread} | {bmed:.2f} | {extra:.2f} | {med / bmed:.2f}x |")


if __name__ == "__main__":
    main()
