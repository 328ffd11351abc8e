"""``wamsg webhook listen``: receive a gateway's webhooks and print them normalized.

One line per event (or one JSON object with ``--json``), masked like every
other output of the command (phone numbers shortened, secrets never shown):
useful to watch a real gateway or the sandbox (``wamsg sandbox --webhook
URL``) while wiring up a service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ._cli_common import clean
from ._redact import redact
from .errors import ConfigError
from .webhooks import Event, StatusTracker, WebhookReceiver

__all__ = ["add_parser", "listen"]

_TEXT_SHOWN = 80  # characters of an incoming text shown per line

# Gateways that do not sign take the secret as the last segment of the URL.
_TOKEN_IN_PATH = ("wawp", "wuts")


def add_parser(commands: Any, parents: list[argparse.ArgumentParser], port: Callable[[str], int],
               host: Callable[[str], str]) -> None:  # fmt: skip
    """Add ``webhook listen`` to the command line."""
    webhook = commands.add_parser("webhook", parents=parents, help="receive webhooks")
    actions = webhook.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    listen_ = actions.add_parser(
        "listen",
        parents=parents,
        help="print a gateway's webhooks as normalized events",
        description="Serve a webhook endpoint and print each event as it arrives. The secret "
        "is gowa's webhook secret, WAHA's HMAC key, or (Wawp, WUTS) a token you put at the "
        "end of the webhook URL. It can come from WAMSG_WEBHOOK_SECRET instead of --secret.",
    )
    listen_.add_argument("--provider", required=True, help="gowa, waha, wawp or wuts")
    listen_.add_argument("--secret", help="the webhook secret (or WAMSG_WEBHOOK_SECRET)")
    listen_.add_argument(
        "--insecure", action="store_true", help="accept unsigned deliveries (local tests only)"
    )
    listen_.add_argument("--host", type=host, default="127.0.0.1", help="default 127.0.0.1")
    listen_.add_argument("--port", type=port, default=8090, help="default %(default)s")
    listen_.add_argument("--path", default="/webhook", help="default %(default)s")
    listen_.add_argument("--json", action="store_true", help="one JSON object per event")
    listen_.add_argument(
        "--count", type=int, default=0, help="stop after this many events (default: run on)"
    )


def _short(text: str | None) -> str:
    if text is None:
        return ""
    text = clean(redact(text))
    return text if len(text) <= _TEXT_SHOWN else text[: _TEXT_SHOWN - 3] + "..."


def describe_event(event: Event) -> str:
    """One masked line for ``event``."""
    parts = [event.provider, event.kind, event.name]
    if event.message is not None:
        m = event.message
        parts += [f"id={redact(m.message_id)}", f"chat={redact(m.chat_id)}",
                  f"from={redact(m.sender)}", f"type={m.kind}"]  # fmt: skip
        if m.from_me:
            parts.append("from_me")
        if m.media is not None:
            parts.append(f"media={m.media.fetch}:{m.media.mimetype or '?'}")
        if m.text:
            parts.append(f"text={_short(m.text)!r}")
    elif event.status is not None:
        s = event.status
        parts += [f"status={s.status.value}", f"raw={_short(s.raw_status)}",
                  "ids=" + ",".join(redact(i) for i in s.message_ids)]  # fmt: skip
        if s.recipient:
            parts.append(f"recipient={redact(s.recipient)}")
    return clean(" ".join(parts))


def event_json(event: Event) -> str:
    """``event`` as one masked JSON line (without the raw envelope)."""
    data = msgspec.to_builtins(event)
    data.pop("raw", None)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    # ASCII only: every control, C1 and bidi character is escaped as \uXXXX.
    return json.dumps(mask(data), ensure_ascii=True)


async def listen(args: argparse.Namespace, environ: dict[str, str], stop: Callable[[], Any]) -> int:
    """Run the endpoint until ``stop()`` returns or ``--count`` events were printed."""
    from aiohttp import web

    from .webhooks.aiohttp import add_webhook_route

    secret = args.secret or environ.get("WAMSG_WEBHOOK_SECRET") or None
    if secret is None and not args.insecure:
        raise ConfigError("give --secret (or WAMSG_WEBHOOK_SECRET), or --insecure for local tests")
    if args.count < 0:
        raise ConfigError("--count must be 0 (run on) or more")
    path = "/" + args.path.strip("/")
    done = asyncio.Event()
    seen = 0

    async def show(event: Event) -> None:
        nonlocal seen
        line = (
            event_json(event)
            if args.json
            else f"{time.strftime('%H:%M:%S')} " + (describe_event(event))
        )
        print(line, flush=True)
        seen += 1
        if args.count and seen >= args.count:
            done.set()

    tracker = StatusTracker()
    receiver = WebhookReceiver(
        args.provider,
        secret=secret,
        on_event=show,
        tracker=tracker,
        allow_unsigned=args.insecure,
    )
    app = web.Application()
    token = None
    if args.provider in _TOKEN_IN_PATH and secret is not None:
        add_webhook_route(app, path + "/{token}", receiver, token_param="token")  # noqa: S106
        token = "<secret>"  # noqa: S105 - a placeholder shown instead of the secret
    else:
        add_webhook_route(app, path, receiver)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as exc:
            reason = clean(exc.strerror or str(exc))
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
        server: Any = site._server
        bound = server.sockets[0].getsockname()[1] if server is not None else args.port
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{shown_host}:{bound}{path}" + (f"/{token}" if token else "")
        print(f"listening for {args.provider} webhooks on POST {url}", flush=True)
        if token:
            print(f"  ({args.provider} does not sign: put your secret where {token} is)")
        waiter = asyncio.ensure_future(done.wait())
        stopper = asyncio.ensure_future(stop())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await runner.cleanup()
    counts = receiver.counts
    print(
        f"received {counts['received']} deliveries: {counts['events']} events, "
        f"{counts['duplicates']} duplicates, {counts['refused']} refused",
        file=sys.stderr,
    )
    return 0
