"""Inbound webhook cost per delivery, as ratios to a baseline in the same run.

Measures, interleaved over several rounds (the machine is small and noisy):

- verify: ``webhooks.verify("gowa", ...)`` (HMAC-SHA256 over the raw body,
  header lookup, constant-time compare) vs ``hmac.new`` + ``compare_digest``
  by hand;
- parse: ``webhooks.parse`` of gowa's documented text message and of WAHA's
  documented ack vs ``json.loads`` of the same bytes;
- accept: ``WebhookReceiver.accept`` (verify, parse, atomic dedupe claim,
  status tracker) vs the hand-written verify + ``json.loads``: what a
  receiving endpoint pays per delivery before answering.

Run: ``python benchmarks/webhooks.py [N]`` (prints a Markdown table).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path

from codec import print_table, rounds

from wamsg import webhooks

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = ROOT / "tests" / "data" / "webhooks"
SECRET = "bench-secret"


def _headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def _by_hand(body: bytes, headers: dict[str, str]) -> object:
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    received = headers["X-Hub-Signature-256"].removeprefix("sha256=")
    assert hmac.compare_digest(expected, received)
    return json.loads(body)


async def accept_rounds(body: bytes, n: int, k: int) -> list[tuple[float, float]]:
    """``accept`` of n distinct deliveries (each a new event) vs the hand-written check."""
    out = []
    for round_ in range(k):
        receiver = webhooks.WebhookReceiver("gowa", secret=SECRET, tracker=webhooks.StatusTracker())
        # Distinct bodies, so every claim is a new key (gowa keys by digest).
        bodies = [body.replace(b"D6A1", f"{round_:02d}{i:06d}".encode()) for i in range(n)]
        signed = [(b, _headers(b)) for b in bodies]
        start = time.perf_counter()
        for b, h in signed:
            accepted = await receiver.accept(h, b)
            assert accepted.status == 200
        ours = (time.perf_counter() - start) / n * 1e6
        start = time.perf_counter()
        for b, h in signed:
            _by_hand(b, h)
        base = (time.perf_counter() - start) / n * 1e6
        out.append((ours, base))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    k = 7
    gowa = (GOLDENS / "gowa" / "text.json").read_bytes()
    waha_ack = (GOLDENS / "waha" / "receipt.json").read_bytes()
    headers = _headers(gowa)
    results = rounds(
        {
            f"verify gowa, {len(gowa)} B (verify vs hmac by hand)": (
                lambda: webhooks.verify("gowa", headers, gowa, secret=SECRET),
                lambda: hmac.compare_digest(
                    hmac.new(SECRET.encode(), gowa, hashlib.sha256).hexdigest(),
                    headers["X-Hub-Signature-256"].removeprefix("sha256="),
                ),
            ),
            f"parse gowa text, {len(gowa)} B (parse vs json.loads)": (
                lambda: webhooks.parse("gowa", headers, gowa),
                lambda: json.loads(gowa),
            ),
            f"parse WAHA ack, {len(waha_ack)} B (parse vs json.loads)": (
                lambda: webhooks.parse("waha", {}, waha_ack),
                lambda: json.loads(waha_ack),
            ),
        },
        n,
        k,
    )
    results["receiver.accept (verify, parse, dedupe, tracker) vs verify + json.loads"] = (
        asyncio.run(accept_rounds(gowa, max(n // 4, 100), k))
    )
    print_table(results, n, k)


if __name__ == "__main__":
    main()
