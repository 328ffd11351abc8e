"""The ``wamsg`` command line.

Commands:

* ``wamsg demo``: start the sandbox gateway in-process, send a text and an
  image through every provider over real HTTP on 127.0.0.1, print a table.
* ``wamsg sandbox``: serve the sandbox gateway and its web inbox.
* ``wamsg send-text`` / ``wamsg send-image``: send one message through a
  provider set by flags or ``WAMSG_*`` environment variables.
* ``wamsg send-bulk``: send every row of a CSV file, with a results file
  that lets a re-run send only what was not sent (docs/cli-bulk.md).
* ``wamsg providers``: what each provider can do, and its settings.
* ``wamsg worker``: send what a Redis outbox holds, sharing limits and
  dedupe with every other worker of the queue (``wamsg[redis]``).

Exit codes: 0 sent; 1 not sent (refused by the gateway or not delivered to
it: safe to fix and retry); 2 bad usage, input or configuration (nothing
sent); 3 outcome unknown (the gateway may have the message: check before
sending again); 130 interrupted. ``send-bulk`` exits with the worst of its
rows: 3 if any is unknown, else 1 if any failed, else 0. An unexpected
error (a bug) prints only its type, never its message (``--debug`` shows
the traceback), and exits 3 from a send command (it may have gone out),
else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from . import Client, Router, __version__, _bulk
from ._cli_common import clean, describe, image_source
from ._redact import redact
from .config import ProviderConfig, dsn_form, env_settings, provider_settings
from .errors import ConfigError, InvalidMessage, Outcome, WamsgError
from .hooks import Hooks
from .models import Image, Media, SendResult, Text
from .providers import Capabilities, available, get_adapter
from .providers.config import shown_name
from .retry import NO_RETRY, RetryPolicy

__all__ = ["main"]

_N = TypeVar("_N", int, float)

EXIT_OK, EXIT_NOT_SENT, EXIT_USAGE, EXIT_UNKNOWN, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

DEMO_RECIPIENT = "+55 11 99999-0000"
DEMO_IMAGE_URL = "https://wawp.net/samples/cat.jpg"
DEFAULT_SANDBOX_PORT = 8026
DEFAULT_TIMEOUT = 60.0

_EXIT_CODES = """exit codes:
  0    sent
  1    not sent: the gateway refused it or never got it (fix and retry)
  2    bad usage, input or configuration (nothing was sent)
  3    outcome unknown: the gateway may have it; check before sending again
  130  interrupted
send-bulk exits 3 if any row is unknown, else 1 if any failed, else 0"""

_MAX_SHOWN_ERRORS = 20  # bad-input problems printed; the rest are counted


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    rows = [[clean(str(cell)) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# -- provider settings --------------------------------------------------------


def _env_name(setting: str) -> str:
    return f"WAMSG_{setting.upper()}"


def _set_flags(args: argparse.Namespace) -> dict[str, str]:
    """The ``--set KEY=VALUE`` flags, by key."""
    flags: dict[str, str] = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            # The value is not echoed: it may be a token.
            raise ConfigError("--set takes KEY=VALUE")
        flags[key] = value
    return flags


def _client_config(args: argparse.Namespace, env: Mapping[str, str]) -> ProviderConfig:
    """The provider and its settings, from the first of these that is given.

    ``--dsn``; ``--provider`` with its ``--set`` flags over ``WAMSG_<SETTING>``
    variables; ``WAMSG_DSN``; ``WAMSG_PROVIDER`` with the same flags and
    variables.
    """
    flags = _set_flags(args)
    if args.dsn is not None:
        if args.provider or flags:
            raise ConfigError(
                "--dsn holds the provider and every setting: drop --provider and --set"
            )
        try:
            return ProviderConfig.from_dsn(args.dsn)
        except ConfigError as exc:
            raise ConfigError(f"--dsn: {exc.message}") from None
    if not args.provider and env.get("WAMSG_DSN", "").strip():
        if flags:
            raise ConfigError(
                "WAMSG_DSN holds every setting: --set goes with --provider or WAMSG_PROVIDER"
            )
        return ProviderConfig.from_env(env)
    provider = args.provider or env.get("WAMSG_PROVIDER")
    if not provider:
        raise ConfigError(
            "no provider: pass --dsn or --provider, or set WAMSG_DSN or WAMSG_PROVIDER "
            f"(one of {', '.join(available())})"
        )
    known = {s.name: s for s in provider_settings(provider)}
    for key in flags:
        if key not in known:
            raise ConfigError(
                f"{provider}: unknown setting {shown_name(key)}; "
                f"it takes {', '.join(sorted(known))}"
            )
    settings = {**env_settings(provider, env), **flags}
    for setting in known.values():
        if setting.required and setting.name not in settings:
            raise ConfigError(
                f"{provider}: {setting.name} is required: pass --set {setting.name}=VALUE "
                f"or set {_env_name(setting.name)} (or pass --dsn)"
            )
    return ProviderConfig(provider, **settings)


# -- commands -----------------------------------------------------------------


def _exit_code(exc: WamsgError) -> int:
    if isinstance(exc, ConfigError | InvalidMessage):
        return EXIT_USAGE
    if exc.outcome is Outcome.UNKNOWN:
        return EXIT_UNKNOWN
    return EXIT_NOT_SENT


def _unexpected_exit(command: str) -> int:
    """The exit code after an unexpected error: a send may have gone out (3)."""
    return EXIT_UNKNOWN if command.startswith("send-") else EXIT_NOT_SENT


def _print_result(result: SendResult, as_json: bool) -> None:
    if as_json:
        # Masked like every other output (stdout ends up in logs); short_id,
        # the id without the chat, is enough to match receipts later.
        view = {
            "provider": result.provider,
            "message_id": redact(result.message_id) if result.message_id else None,
            "short_id": result.short_id,
            "chat_id": redact(result.chat_id) if result.chat_id else None,
            "status": result.status.value,
            "timestamp": result.timestamp.isoformat() if result.timestamp else None,
        }
        print(json.dumps(view))  # json escapes control characters itself
        return
    rows = [(result.provider, redact(result.message_id or "-"), result.status.value)]
    print(_table(rows, ("provider", "message id", "status")))


def _retry_policy(args: argparse.Namespace) -> RetryPolicy:
    """The retry policy the ``--attempts`` / ``--no-retry`` flags ask for."""
    if args.no_retry:
        return NO_RETRY
    if args.attempts is None:
        return RetryPolicy()
    return RetryPolicy(attempts=args.attempts)


def _client(args: argparse.Namespace, config: ProviderConfig, hooks: Hooks | None = None) -> Client:
    """The client for ``config`` with the ``--timeout`` and retry flags' limits."""
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    return Client(config.create_adapter(), timeout=timeout, retry=_retry_policy(args), hooks=hooks)


def _router(args: argparse.Namespace) -> Router:
    """A router over the ``--config`` file's providers; flags override its options."""
    if args.dsn is not None or args.provider or args.set:
        raise ConfigError("--config holds the providers: drop --dsn, --provider and --set")
    options: dict[str, Any] = {}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.no_retry or args.attempts is not None:
        options["retry"] = _retry_policy(args)
    return Router.from_config(args.config, **options)


async def _send(args: argparse.Namespace, message: Text | Image) -> int:
    sender: Client | Router = (
        _router(args)
        if args.config is not None
        else _client(args, _client_config(args, os.environ))
    )
    async with sender:
        result = await sender.send(message)
    _print_result(result, args.json)
    return EXIT_OK


def _text_message(args: argparse.Namespace) -> Text:
    text = sys.stdin.read() if args.text == "-" else args.text
    return Text(to=args.to, text=text, reply_to=args.reply_to)


def _image_message(args: argparse.Namespace) -> Image:
    source = image_source(args.image, mimetype=args.mimetype, filename=args.filename)
    return Image(to=args.to, image=source, caption=args.caption, reply_to=args.reply_to)


_MAX_LOAD_ERROR = 160  # characters of a broken plug-in's load error shown in its row


def _provider_row(name: str) -> tuple[str, ...]:
    """``name``'s row of the ``wamsg providers`` table (raises ConfigError if it won't load)."""
    factory = get_adapter(name)
    caps = getattr(factory, "capabilities", None)
    if not isinstance(caps, Capabilities):
        raise ConfigError(f"provider {name!r} has no capabilities (a wamsg.Capabilities)")
    ways = [w for w, ok in (("url", caps.media_url), ("upload", caps.media_upload),
                            ("base64", caps.media_base64)) if ok]  # fmt: skip
    features = [f for f, ok in (("reply", caps.reply), ("mentions", caps.mentions_text),
                                ("view-once", caps.view_once),
                                ("client-id", caps.client_message_id)) if ok]  # fmt: skip
    size = f"{caps.max_media_bytes // (1024 * 1024)} MiB" if caps.max_media_bytes else "-"
    settings = [
        f"{s.name}{'' if s.required else '?'}{'*' if s.secret else ''}"
        for s in provider_settings(name)
    ]
    return (
        name,
        str(caps.max_text_chars or "-"),
        "/".join(ways) or "-",
        ",".join(sorted(t.removeprefix("image/") for t in caps.image_types)),
        size,
        ",".join(features) or "-",
        " ".join(settings),
    )


def _providers(args: argparse.Namespace) -> int:
    """Print every provider's capabilities and settings; a broken plug-in gets its error."""
    rows: list[tuple[str, ...]] = []
    working: list[str] = []
    broken = 0
    for name in available():
        try:
            rows.append(_provider_row(name))
        except ConfigError as exc:
            # The registry's own text (the plug-in's module and package and
            # the import error's type and message): no user setting in it.
            reason = exc.message
            if len(reason) > _MAX_LOAD_ERROR:
                reason = reason[: _MAX_LOAD_ERROR - 3] + "..."
            rows.append((name, "-", "-", "-", "-", "-", f"error: {reason}"))
            broken += 1
            continue
        working.append(name)
    header = ("provider", "text max", "image by", "types", "image max", "features", "settings")
    print(_table(rows, header))
    print("\nsettings: ? optional, * secret; set with --set KEY=VALUE or WAMSG_<KEY>")
    print("\nor all in one DSN (--dsn or WAMSG_DSN; docs/configuration.md):")
    for name in working:
        print(f"  {dsn_form(name)}")
    if broken:
        print(
            f"wamsg: {broken} provider(s) failed to load; the others work (see the table)",
            file=sys.stderr,
        )
    return EXIT_OK


async def _demo(seed: int | None, serve: bool) -> int:
    from .sandbox import running_sandbox
    from .sandbox.sample import sample_png

    picture = sample_png()
    rows: list[tuple[str, ...]] = []
    failed = False
    async with running_sandbox(seed=seed) as (sandbox, base_url):
        print(f"sandbox gateway listening on {base_url}")
        for provider in sandbox.providers:
            async with Client(provider, **sandbox.credentials(provider)) as client:
                uploads = client.adapter.capabilities.media_upload or (
                    client.adapter.capabilities.media_base64
                )
                # Wawp takes images by URL only; the others get real bytes.
                image = (
                    Media(data=picture, filename="sunset.png")
                    if uploads
                    else Media(url=DEMO_IMAGE_URL)
                )
                for kind in ("text", "image"):
                    started = time.perf_counter()
                    try:
                        result: SendResult
                        if kind == "text":
                            result = await client.send_text(
                                DEMO_RECIPIENT, f"Hello from wamsg via {provider}"
                            )
                        else:
                            result = await client.send_image(
                                DEMO_RECIPIENT, image, caption=f"A picture, via {provider}"
                            )
                    except WamsgError as exc:
                        failed = True
                        rows.append((provider, kind, "-", f"error: {describe(exc)}", "-"))
                        continue
                    elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
                    # The demo number is made up, but output is masked like
                    # everything else wamsg prints.
                    message_id = redact(result.message_id or "-")
                    rows.append((provider, kind, message_id, result.status.value, elapsed))
        print()
        print(_table(rows, ("provider", "kind", "message id", "status", "ms")))
        print(f"\nthe sandbox outbox holds {len(sandbox.outbox)} message(s)")
        if serve:
            print(f"inbox: {base_url}/  (Ctrl-C to stop)")
            await _wait_for_stop()
    return EXIT_NOT_SENT if failed else EXIT_OK


async def _wait_for_stop() -> None:
    """Return on SIGINT or SIGTERM (or KeyboardInterrupt where signals can't be hooked)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    hooked = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            hooked.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in hooked:
            loop.remove_signal_handler(sig)


async def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import Sandbox, parse_fault, parse_webhook_option, running_sandbox

    try:
        faults = [parse_fault(spec) for spec in args.fault or ()]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    box = Sandbox(seed=args.seed, max_messages=args.max_messages)
    try:
        for fault in faults:
            box.add_fault(fault)
        for spec in args.webhook or ():
            box.add_webhook_target(parse_webhook_option(spec))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    async with contextlib.AsyncExitStack() as stack:
        try:
            _, base_url = await stack.enter_async_context(
                running_sandbox(host=args.host, port=args.port, sandbox=box)
            )
        except OSError as exc:
            reason = clean(exc.strerror or str(exc))
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
        print(f"wamsg sandbox gateway on {base_url}  (web inbox: {base_url}/)")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {args.host}: reachable from other machines")
        rows = []
        for provider in box.providers:
            creds = box.credentials(provider)
            rows.append((provider, " ".join(f"{k}={v}" for k, v in creds.items())))
        print()
        print(_table(rows, ("provider", "client settings (sandbox examples, not secrets)")))
        for fault in faults:
            print(f"fault: {fault.describe()}")
        for subscription in box.webhooks:
            target = subscription.target
            print(f"webhooks: {target.provider} -> {clean(target.shown_url)}")
        print("\nas DSNs (WAMSG_DSN or --dsn):")
        for provider in box.providers:
            print(f"  {box.dsn(provider)}")
        example = box.credentials("wawp")
        exports = " ".join(f"{_env_name(k)}={v}" for k, v in example.items())
        print(f'\ntry: WAMSG_PROVIDER=wawp {exports} wamsg send-text +15550001111 "hi"')
        print(f'  or: WAMSG_DSN={box.dsn("wawp")} wamsg send-text +15550001111 "hi"')
        print("Ctrl-C to stop", flush=True)
        await _wait_for_stop()
        print("stopping", flush=True)
    print("sandbox stopped")
    return EXIT_OK


# -- send-bulk ----------------------------------------------------------------
# The CSV format, the results record and re-run planning are in _bulk.py.


def _bulk_exit(rows: Sequence[_bulk.Row]) -> int:
    if any(row.outcome == "unknown" for row in rows):
        return EXIT_UNKNOWN
    if any(row.outcome != "sent" for row in rows):
        return EXIT_NOT_SENT
    return EXIT_OK


async def _send_bulk(args: argparse.Namespace) -> int:
    config = _client_config(args, os.environ)
    results = args.results or _bulk.results_path(args.file)
    if _bulk.same_file(results, args.file):
        raise ConfigError("--results must not be the CSV file itself")
    prior = _bulk.earlier_results(args.resume, results)
    run = _bulk.Run(results, progress=not args.no_progress)
    async with _client(args, config, run.hooks) as client:
        rows = await _bulk.read_rows(args.file, client)
        problems = _bulk.plan(rows, prior, args.retry_unknown)
        if problems:
            raise _bulk.BadInput([f"{args.file} {p}" for p in problems], args.file)
        if args.dry_run:
            _bulk.report_dry_run(rows)
            return EXIT_OK
        # What is left in prior: earlier results of rows no longer in FILE.
        await run.send(client, rows, prior, args.concurrency)
    return _bulk_exit(rows)


# -- argument parsing ---------------------------------------------------------


def _number(kind: Callable[[str], _N], ok: Callable[[_N], bool], rule: str) -> Callable[[str], _N]:
    """An argparse type: ``kind(text)``, refused unless ``ok(value)``; ``rule`` says why."""

    def parse(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule}, not {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, not {text!r}")
        return value

    return parse


_seconds = _number(float, lambda v: 0 < v < 86400, "seconds must be more than 0 and under a day")
_positive_int = _number(int, lambda v: v >= 1, "must be a whole number, at least 1")
_port = _number(int, lambda v: 0 <= v <= 65535, "port must be a whole number 0-65535")


def _host(text: str) -> str:
    if not text.strip() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("host must be an address, e.g. 127.0.0.1")
    return text


_attempts = _number(int, lambda v: 1 <= v <= 100, "attempts must be a whole number 1-100")
_concurrency = _number(int, lambda v: 1 <= v <= 1000, "concurrency must be a whole number 1-1000")


def _add_provider_options(command: argparse.ArgumentParser, timeout_help: str) -> None:
    command.add_argument(
        "--dsn",
        help="the provider and its settings in one string, e.g. wuts://TOKEN@api.wuts.com.br "
        "(default: $WAMSG_DSN; prefer that for tokens: flags show up in `ps`); "
        "see docs/configuration.md",
    )
    command.add_argument(
        "--provider", help="provider name (default: $WAMSG_PROVIDER); see `wamsg providers`"
    )
    command.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a provider setting, e.g. base_url=...; repeat for more. Each setting can also "
        "come from WAMSG_<KEY> (prefer that for tokens: flags show up in `ps`)",
    )
    command.add_argument("--timeout", type=_seconds, default=None, help=timeout_help)
    retry = command.add_mutually_exclusive_group()
    retry.add_argument(
        "--attempts",
        type=_attempts,
        metavar="N",
        help=f"tries per message, the first included (default {RetryPolicy().attempts}; "
        "1 = no retry). Only a send that certainly did not go out (connection refused, "
        "429, 503) is tried again, after the wait the gateway asks for",
    )
    retry.add_argument("--no-retry", action="store_true", help="the same as --attempts 1")


def _add_send_options(command: argparse.ArgumentParser) -> None:
    _add_provider_options(
        command, "seconds for the whole send, retries and waits included (default 60)"
    )
    command.add_argument(
        "--config",
        metavar="FILE.toml",
        help="send through the providers of a TOML file, failing over in its order "
        "(docs/configuration.md); --timeout and --attempts override its [router] options",
    )
    command.add_argument("--reply-to", help="id of the message to quote")
    command.add_argument("--json", action="store_true", help="print the result as JSON")
    command.add_argument("to", help="recipient: phone number (+5511999990000) or chat id")


def _add_bulk_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "file",
        metavar="FILE.csv",
        help="UTF-8 CSV with a header row; columns to (required), text, image, caption, key",
    )
    _add_provider_options(
        command, "seconds for each message's send, retries and waits included (default 60)"
    )
    command.add_argument(
        "--concurrency",
        type=_concurrency,
        default=10,
        metavar="N",
        help="messages sent at once (default %(default)s)",
    )
    command.add_argument(
        "--results",
        metavar="PATH",
        help="the results file (default FILE.results.csv). If it exists, it is the record "
        "of an earlier run: rows it has as sent are not sent again",
    )
    command.add_argument(
        "--resume",
        metavar="RESULTS.csv",
        help="also read this earlier results file (when it is not the --results file)",
    )
    command.add_argument(
        "--retry-unknown",
        action="store_true",
        help="send again the rows an earlier run left 'unknown' (the gateway may have them: "
        "a recipient may get the message twice)",
    )
    command.add_argument(
        "--dry-run", action="store_true", help="check every row and say what would be sent"
    )
    command.add_argument("--no-progress", action="store_true", help="no progress on stderr")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wamsg",
        description="Send WhatsApp messages through gateway providers.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wamsg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # --debug is taken after the command too; SUPPRESS keeps a subcommand
    # from resetting it to False when it was given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="send through every provider to a local sandbox (no account needed)",
    )
    demo.add_argument("--seed", type=int, default=None, help="make message ids repeatable")
    demo.add_argument(
        "--serve", action="store_true", help="keep the sandbox running to look at its inbox"
    )

    box = commands.add_parser(
        "sandbox",
        parents=[common],
        help="run the local sandbox gateway and its web inbox",
        description="Serve every provider's protocol locally, with a web inbox at /.",
    )
    box.add_argument(
        "--host", type=_host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    box.add_argument(
        "--port", type=_port, default=DEFAULT_SANDBOX_PORT, help="port (default %(default)s)"
    )
    box.add_argument("--seed", type=int, default=None, help="repeatable ids and faults")
    box.add_argument(
        "--max-messages",
        type=_positive_int,
        default=1000,
        help="messages kept (default %(default)s)",
    )
    box.add_argument(
        "--fault",
        action="append",
        metavar="PROVIDER:KIND[:OPTS]",
        help="inject a fault; KIND is rate_limit, server_error, auth, slow or drop; OPTS are "
        "key=value,... of times (N or always), probability, status, retry_after, delay, path. "
        "e.g. gowa:rate_limit:retry_after=2,times=3 or *:drop:probability=0.01,times=always",
    )
    box.add_argument(
        "--webhook",
        action="append",
        metavar="URL[,provider=P][,secret=S]",
        help="send the gateways' webhooks (receipts, incoming messages) to URL, signed as "
        "each gateway signs; options: provider (default every one), secret, "
        "events=receipt+message, hmac_version=1|2 (waha). Repeatable. docs/webhooks.md",
    )

    from . import _webhook_cli

    _webhook_cli.add_parser(commands, [common], port=_port, host=_host)

    from . import _worker_cli

    _worker_cli.add_parser(commands, [common])

    text = commands.add_parser("send-text", parents=[common], help="send a text message")
    _add_send_options(text)
    text.add_argument("text", help="the text; - reads it from stdin")

    image = commands.add_parser(
        "send-image", parents=[common], help="send an image (file path or URL)"
    )
    _add_send_options(image)
    image.add_argument("image", help="a file path, or an http(s) URL the gateway fetches")
    image.add_argument("--caption", help="caption under the image")
    image.add_argument("--mimetype", help="image type when it cannot be told from the file")
    image.add_argument("--filename", help="file name shown to the recipient")

    bulk = commands.add_parser(
        "send-bulk",
        parents=[common],
        help="send every row of a CSV file; a re-run sends only what was not sent",
        description="Send the messages of a CSV file, recording each row's outcome in a\n"
        "results file. Every row is checked before the first send. Run the same\n"
        "command again to send only the rows that were not sent: a row sent is\n"
        "never sent again, a row left 'unknown' only with --retry-unknown.\n"
        "A row without a key gets one from a hash of its cells. See docs/cli-bulk.md.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_bulk_options(bulk)

    commands.add_parser(
        "providers", parents=[common], help="list providers, what they can do and their settings"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return asyncio.run(_demo(args.seed, args.serve))
        if args.command == "sandbox":
            return asyncio.run(_sandbox(args))
        if args.command == "providers":
            return _providers(args)
        if args.command == "send-text":
            return asyncio.run(_send(args, _text_message(args)))
        if args.command == "send-image":
            return asyncio.run(_send(args, _image_message(args)))
        if args.command == "send-bulk":
            return asyncio.run(_send_bulk(args))
        if args.command == "webhook":
            from . import _webhook_cli

            return asyncio.run(_webhook_cli.listen(args, dict(os.environ), _wait_for_stop))
        if args.command == "worker":
            from . import _worker_cli

            return asyncio.run(_worker_cli.run(args, dict(os.environ)))
    except _bulk.BadInput as bad:
        for problem in bad.problems[:_MAX_SHOWN_ERRORS]:
            print(f"wamsg: {clean(problem)}", file=sys.stderr)
        more = len(bad.problems) - _MAX_SHOWN_ERRORS
        if more > 0:
            print(f"wamsg: ... and {more} more", file=sys.stderr)
        print(
            f"wamsg: {len(bad.problems)} problem(s) in {clean(bad.what)}; nothing was sent",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except WamsgError as exc:
        if args.debug:
            raise
        print(f"wamsg: {describe(exc)}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, or a library's error wamsg did not map
        if args.debug:
            raise
        # Only the type: the message of an unexpected error may quote a
        # setting (a token pasted into a URL) or a phone number.
        print(
            f"wamsg: unexpected error ({type(exc).__name__}); "
            "run again with --debug for the traceback",
            file=sys.stderr,
        )
        return _unexpected_exit(args.command)
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
