"""The ``wamsg`` command line.

``wamsg demo`` starts the local sandbox gateway in-process, sends a text and
an image through each provider over real HTTP on 127.0.0.1, and prints what
came back. It needs no account and no network.

Exit codes: 0 success, 1 a send failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from . import Client, __version__
from ._redact import redact
from .errors import ConfigError, WamsgError
from .models import SendResult

__all__ = ["main"]

DEMO_RECIPIENT = "+55 11 99999-0000"
DEMO_IMAGE_URL = "https://wawp.net/samples/cat.jpg"


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


async def _demo(seed: int | None) -> int:
    from .sandbox import running_sandbox

    rows: list[tuple[str, ...]] = []
    failed = False
    async with running_sandbox(seed=seed) as (sandbox, base_url):
        print(f"sandbox gateway listening on {base_url}")
        for provider in sorted(sandbox.handlers):
            settings = sandbox.credentials(provider, base_url)
            async with Client(provider, **settings) as client:
                for kind in ("text", "image"):
                    started = time.perf_counter()
                    try:
                        result: SendResult
                        if kind == "text":
                            result = await client.send_text(DEMO_RECIPIENT, "Hello from wamsg")
                        else:
                            result = await client.send_image(
                                DEMO_RECIPIENT, DEMO_IMAGE_URL, caption="A cat, from wamsg"
                            )
                    except WamsgError as exc:
                        failed = True
                        rows.append((provider, kind, "-", f"error: {exc.message}", "-"))
                        continue
                    elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
                    # The demo number is made up, but output is masked like
                    # everything else wamsg prints.
                    message_id = redact(result.message_id or "-")
                    rows.append((provider, kind, message_id, result.status.value, elapsed))
        print()
        print(_table(rows, ("provider", "kind", "message id", "status", "ms")))
        print(f"\nthe sandbox outbox holds {len(sandbox.outbox)} message(s)")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wamsg", description="Send WhatsApp messages through gateway providers."
    )
    parser.add_argument("--version", action="version", version=f"wamsg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="send through every provider to a local sandbox (no account needed)"
    )
    demo.add_argument("--seed", type=int, default=None, help="make message ids repeatable")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return asyncio.run(_demo(args.seed))
    except ConfigError as exc:
        if args.debug:
            raise
        print(f"wamsg: {exc.message}", file=sys.stderr)
        return 2
    except WamsgError as exc:
        if args.debug:
            raise
        print(f"wamsg: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
