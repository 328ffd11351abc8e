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

Exit codes: 0 sent; 1 not sent (refused by the gateway or not delivered to
it: safe to fix and retry); 2 bad usage, input or configuration (nothing
sent); 3 outcome unknown (the gateway may have the message: check before
sending again); 130 interrupted. ``send-bulk`` exits with the worst of its
rows: 3 if any is unknown, else 1 if any failed, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import inspect
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, TypeVar

from . import Client, __version__
from ._redact import redact
from .client import prepare_image
from .errors import ConfigError, InvalidMessage, Outcome, WamsgError
from .hooks import DeliveryEvent, Hooks
from .models import Image, Media, Recipient, SendResult, Text
from .providers import available, get_adapter
from .providers.base import check_message
from .retry import NO_RETRY, RetryPolicy

__all__ = ["main"]

_N = TypeVar("_N", int, float)

EXIT_OK, EXIT_NOT_SENT, EXIT_USAGE, EXIT_UNKNOWN, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

DEMO_RECIPIENT = "+55 11 99999-0000"
DEMO_IMAGE_URL = "https://wawp.net/samples/cat.jpg"
DEFAULT_SANDBOX_PORT = 8026

_EXIT_CODES = """exit codes:
  0    sent
  1    not sent: the gateway refused it or never got it (fix and retry)
  2    bad usage, input or configuration (nothing was sent)
  3    outcome unknown: the gateway may have it; check before sending again
  130  interrupted
send-bulk exits 3 if any row is unknown, else 1 if any failed, else 0"""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _clean(text: str) -> str:
    """``text`` safe to print on one terminal line.

    Gateway answers are untrusted: a newline could forge a table row or a
    second error line, and escape sequences could rewrite the terminal.
    Whitespace runs become one space; other control characters are escaped.
    """
    text = " ".join(text.split())
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    rows = [[_clean(str(cell)) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# -- provider settings --------------------------------------------------------


def _settings_of(provider: str) -> list[tuple[str, bool, bool]]:
    """(name, required, secret) for each setting the provider's adapter takes."""
    params = inspect.signature(get_adapter(provider)).parameters.values()
    return [
        (
            p.name,
            p.default is inspect.Parameter.empty,
            # Credentials are typed `str | Secret` in every adapter.
            "Secret" in str(p.annotation),
        )
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _env_name(setting: str) -> str:
    return f"WAMSG_{setting.upper()}"


def _client_settings(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[str, dict[str, Any]]:
    """The provider and its settings: ``--set`` flags first, then ``WAMSG_*``."""
    provider = args.provider or env.get("WAMSG_PROVIDER")
    if not provider:
        raise ConfigError(
            f"no provider: pass --provider or set WAMSG_PROVIDER (one of {', '.join(available())})"
        )
    known = {name for name, _, _ in _settings_of(provider)}
    settings: dict[str, Any] = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            # The value is not echoed: it may be a token.
            raise ConfigError("--set takes KEY=VALUE")
        if key not in known:
            raise ConfigError(
                f"{provider}: unknown setting {key!r}; it takes {', '.join(sorted(known))}"
            )
        settings[key] = value
    for name in known - settings.keys():
        value = env.get(_env_name(name))
        if value is not None:
            settings[name] = value
    return provider, settings


# -- commands -----------------------------------------------------------------


def _exit_code(exc: WamsgError) -> int:
    if isinstance(exc, ConfigError | InvalidMessage):
        return EXIT_USAGE
    if exc.outcome is Outcome.UNKNOWN:
        return EXIT_UNKNOWN
    return EXIT_NOT_SENT


def _describe(exc: WamsgError) -> str:
    text = exc.message
    code = getattr(exc, "error_code", None)
    status = getattr(exc, "status_code", None)
    where = ", ".join(
        part
        for part in (
            getattr(exc, "provider", None) or "",
            f"HTTP {status}" if status else "",
            code or "",
        )
        if part
    )
    if where:
        text = f"{text} ({where})"
    if exc.outcome is Outcome.UNKNOWN:
        text += "; the gateway may have the message: check before sending again"
    elif getattr(exc, "retry_after", None):
        text += f"; retry after {exc.retry_after:g}s"  # type: ignore[attr-defined]
    return _clean(text)


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


async def _send(args: argparse.Namespace, message: Text | Image) -> int:
    provider, settings = _client_settings(args, os.environ)
    policy = _retry_policy(args)
    async with Client(provider, timeout=args.timeout, retry=policy, **settings) as client:
        result = await client.send(message)
    _print_result(result, args.json)
    return EXIT_OK


def _text_message(args: argparse.Namespace) -> Text:
    text = sys.stdin.read() if args.text == "-" else args.text
    return Text(to=args.to, text=text, reply_to=args.reply_to)


def _image_message(args: argparse.Namespace) -> Image:
    source: Media
    if args.image.startswith(("http://", "https://")):
        source = Media(url=args.image, mimetype=args.mimetype, filename=args.filename)
    else:
        if not os.path.isfile(args.image):
            raise InvalidMessage(f"no such image file: {args.image}")
        source = Media(path=args.image, mimetype=args.mimetype, filename=args.filename)
    return Image(to=args.to, image=source, caption=args.caption, reply_to=args.reply_to)


def _providers(args: argparse.Namespace) -> int:
    rows = []
    for name in available():
        caps = get_adapter(name).capabilities  # type: ignore[attr-defined]
        ways = [w for w, ok in (("url", caps.media_url), ("upload", caps.media_upload),
                                ("base64", caps.media_base64)) if ok]  # fmt: skip
        features = [f for f, ok in (("reply", caps.reply), ("mentions", caps.mentions_text),
                                    ("view-once", caps.view_once),
                                    ("client-id", caps.client_message_id)) if ok]  # fmt: skip
        size = f"{caps.max_media_bytes // (1024 * 1024)} MiB" if caps.max_media_bytes else "-"
        settings = [
            f"{n}{'' if required else '?'}{'*' if secret else ''}"
            for n, required, secret in _settings_of(name)
        ]
        rows.append(
            (
                name,
                str(caps.max_text_chars or "-"),
                "/".join(ways) or "-",
                ",".join(sorted(t.removeprefix("image/") for t in caps.image_types)),
                size,
                ",".join(features) or "-",
                " ".join(settings),
            )
        )
    header = ("provider", "text max", "image by", "types", "image max", "features", "settings")
    print(_table(rows, header))
    print("\nsettings: ? optional, * secret; set with --set KEY=VALUE or WAMSG_<KEY>")
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
                        rows.append((provider, kind, "-", f"error: {_describe(exc)}", "-"))
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
    from .sandbox import Sandbox, parse_fault, running_sandbox

    try:
        faults = [parse_fault(spec) for spec in args.fault or ()]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    box = Sandbox(seed=args.seed, max_messages=args.max_messages)
    try:
        for fault in faults:
            box.add_fault(fault)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    async with contextlib.AsyncExitStack() as stack:
        try:
            _, base_url = await stack.enter_async_context(
                running_sandbox(host=args.host, port=args.port, sandbox=box)
            )
        except OSError as exc:
            reason = _clean(exc.strerror or str(exc))
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
        example = box.credentials("wawp")
        exports = " ".join(f"{_env_name(k)}={v}" for k, v in example.items())
        print(f'\ntry: WAMSG_PROVIDER=wawp {exports} wamsg send-text +15550001111 "hi"')
        print("Ctrl-C to stop", flush=True)
        await _wait_for_stop()
        print("stopping", flush=True)
    print("sandbox stopped")
    return EXIT_OK


# -- send-bulk ----------------------------------------------------------------
#
# The results file is both the record of a run and the journal of it: it is
# written whole (temp file + rename) before the first send, a line is
# appended as each row starts, fails or ends, and it is rewritten whole,
# one line per row in row order, at the end (also after Ctrl-C). Reading
# it back, a key's last line wins, except that a "sent" line always wins:
# so a run that was killed leaves rows in flight as "unknown" (they may
# be out) and rows never tried as "not_sent".

BULK_COLUMNS = ("to", "text", "image", "caption", "key")
RESULT_COLUMNS = ("row", "to", "key", "outcome", "message_id", "error")
_OUTCOMES = ("sent", "not_sent", "rejected", "unknown")
_DERIVED_KEY_PREFIX = "bulk-"
_IN_FLIGHT = "the run stopped while this send was in flight: the message may have been sent"
_NOT_TRIED = "not tried yet"
_MAX_SHOWN_ERRORS = 20
_PLAIN_PROGRESS_EVERY = 5.0  # seconds between progress lines when stderr is not a TTY
_TTY_PROGRESS_EVERY = 0.1


class _BadInput(Exception):
    """Bad rows in the CSV or results file: every problem, one line each."""

    def __init__(self, problems: list[str], what: str) -> None:
        super().__init__(what)
        self.problems = problems
        self.what = what


def _derived_key(to: str, text: str, image: str, caption: str) -> str:
    """The idempotency key of a CSV row that has no ``key``: a hash of its content.

    The recipient counts by its digits (``+55 11 99999-0000`` and
    ``5511999990000`` are the same row), the other cells exactly as written.
    The same row gives the same key on every run, so a re-run knows it.
    """
    recipient = _recipient_id(to)
    content = json.dumps(["wamsg-bulk-1", recipient, text, image, caption], ensure_ascii=False)
    return _DERIVED_KEY_PREFIX + hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


def _recipient_id(to: str) -> str:
    try:
        parsed = Recipient.parse(to)
    except WamsgError:
        return to.strip()
    return f"{parsed.kind}:{parsed.value}"


def _spreadsheet_safe(value: str) -> str:
    """Gateway text for a CSV cell: one line, and never read as a formula."""
    value = _clean(value)
    if value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


class _Row:
    """One CSV row: its message, and what is known of its send."""

    __slots__ = (
        "action", "error", "key", "message", "message_id", "number", "outcome", "to", "tried"
    )  # fmt: skip

    def __init__(self, number: int, message: Text | Image, key: str) -> None:
        self.number = number
        self.message = message
        self.key = key
        self.to = message.recipient.masked
        self.action = "send"  # or "skip" (sent before) / "hold" (unknown before)
        self.outcome = "not_sent"
        self.message_id = ""
        self.error = _NOT_TRIED
        self.tried = False  # an attempt started in this run

    def cells(self) -> list[str]:
        return [str(self.number), self.to, self.key, self.outcome, self.message_id, self.error]


class _Prior:
    """A key's outcome as an earlier results file records it."""

    __slots__ = ("error", "message_id", "outcome", "row", "to")

    def __init__(self, cells: Mapping[str, str]) -> None:
        self.row = cells["row"]
        self.to = cells["to"]
        self.outcome = cells["outcome"]
        self.message_id = cells["message_id"]
        self.error = cells["error"]

    def cells(self, key: str) -> list[str]:
        return ["", self.to, key, self.outcome, self.message_id, self.error]


def _results_path(csv_path: str) -> str:
    stem = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
    return stem + ".results.csv"


def _csv_records(path: str, what: str) -> Iterable[tuple[int, list[str]]]:
    """(spreadsheet row number, cells) for each record; the header is row 1."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    number = 0
    with handle:
        reader = csv.reader(handle, strict=True)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _BadInput([f"{what} row {number + 1}: not valid CSV: {exc}"], what) from None
            except UnicodeDecodeError:
                raise _BadInput([f"{what} is not UTF-8 text"], what) from None
            number += 1
            yield number, record


def _header(
    record: list[str], known: Sequence[str], required: Sequence[str], what: str
) -> list[str]:
    names = [name.strip().lower() for name in record]
    problems = []
    unknown = [n for n in names if n not in known]
    if unknown:
        problems.append(
            f"{what} row 1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"the columns are {', '.join(known)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"{what} row 1: column(s) {', '.join(repeated)} given twice")
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"{what} row 1: no {', '.join(missing)} column (the header row)")
    if problems:
        raise _BadInput(problems, what)
    return names


def _build(cells: Mapping[str, str], base: str) -> Text | Image:
    """The message of one CSV row; raises InvalidMessage saying what is wrong."""
    to = cells.get("to", "").strip()
    text = cells.get("text", "")
    image = cells.get("image", "").strip()
    caption = cells.get("caption", "")
    key = cells.get("key", "").strip()
    if not to:
        raise InvalidMessage("to is empty")
    if image and text.strip():
        raise InvalidMessage("has both text and image; put an image's words in caption")
    if caption.strip() and not image:
        raise InvalidMessage("has a caption but no image; use text for a text message")
    if not key:
        key = _derived_key(to, text, image, caption)
    if not image:
        if not text.strip():
            raise InvalidMessage("needs text or image")
        return Text(to=to, text=text, idempotency_key=key)
    if image.startswith(("http://", "https://")):
        media = Media(url=image)
    else:
        path = image if os.path.isabs(image) else os.path.join(base, image)
        if not os.path.isfile(path):
            raise InvalidMessage(f"no such image file: {image}")
        media = Media(path=path)
    return Image(to=to, image=media, caption=caption or None, idempotency_key=key)


def _directory_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


async def _read_bulk(path: str, client: Client) -> list[_Row]:
    """Every row of the CSV file, each checked against the gateway; no send."""
    what = path
    records = iter(_csv_records(path, what))
    first = next(records, None)
    if first is None:
        raise _BadInput([f"{what} is empty: it needs a header row (to,text,...) and rows"], what)
    names = _header(first[1], BULK_COLUMNS, ("to",), what)
    base = _directory_of(path)
    caps = client.adapter.capabilities
    rows: list[_Row] = []
    problems: list[str] = []
    keys: dict[str, int] = {}
    for number, record in records:
        if not any(cell.strip() for cell in record):
            continue  # a blank line
        if len(record) != len(names):
            problems.append(
                f"{what} row {number}: {len(record)} field(s), but the header has {len(names)}"
            )
            continue
        cells = dict(zip(names, record, strict=True))
        try:
            message = _build(cells, base)
            check_message(client.provider, caps, message)
            if isinstance(message, Image):
                # The adapter's own checks (image type, size) need the first bytes.
                client.adapter.encode(
                    await prepare_image(client.provider, client.adapter, message, None)
                )
            else:
                client.adapter.encode(message)
        except WamsgError as exc:
            problems.append(f"{what} row {number}: {_clean(redact(exc.message))}")
            continue
        key = message.idempotency_key
        assert key is not None  # _build always sets one
        if key in keys:
            if cells.get("key", "").strip():
                problems.append(
                    f"{what} row {number}: key {redact(key)!r} is also row {keys[key]}'s; "
                    "each row needs its own key"
                )
            else:
                problems.append(
                    f"{what} row {number}: the same message as row {keys[key]} (same recipient "
                    "and content); remove one, or give each a key column to send both"
                )
            continue
        keys[key] = number
        rows.append(_Row(number, message, key))
    if problems:
        raise _BadInput(problems, what)
    if not rows:
        raise _BadInput([f"{what} has a header but no rows to send"], what)
    return rows


def _read_results(path: str, into: dict[str, _Prior]) -> None:
    """Add what the results file at ``path`` records to ``into`` (key -> outcome)."""
    what = f"results file {path}"
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            last = b""
            if size:
                handle.seek(size - 1)
                last = handle.read(1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}") from None
    # A run killed mid-write may leave its last line cut short: it is skipped
    # (the row's line before it, "unknown" while in flight, stands).
    cut = last not in (b"", b"\n", b"\r")
    records = list(_csv_records(path, what))
    if not records:
        return
    names = _header(records[0][1], RESULT_COLUMNS, RESULT_COLUMNS, what)
    body = records[1:]
    if cut and body:
        body = body[:-1]
    problems = []
    found: dict[str, _Prior] = {}
    for number, record in body:
        if len(record) != len(names):
            problems.append(f"{what} row {number}: {len(record)} field(s), not {len(names)}")
            continue
        cells = dict(zip(names, record, strict=True))
        key = cells["key"]
        if not key or cells["outcome"] not in _OUTCOMES:
            problems.append(
                f"{what} row {number}: needs a key and an outcome ({', '.join(_OUTCOMES)})"
            )
            continue
        earlier = found.get(key)
        if earlier is None or earlier.outcome != "sent":  # the last line wins, but sent stays
            found[key] = _Prior(cells)
    if problems:
        raise _BadInput(problems, what)
    for key, prior in found.items():
        earlier = into.get(key)
        # Two files: sent wins, then unknown (the safe side), then the later file.
        if earlier is not None and (
            earlier.outcome == "sent" or (earlier.outcome == "unknown" and prior.outcome != "sent")
        ):
            continue
        into[key] = prior


def _same_file(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _earlier_results(resume: str | None, results: str) -> dict[str, _Prior]:
    """What the earlier results files record: ``--resume``, then the results file."""
    prior: dict[str, _Prior] = {}
    if resume is not None:
        if not os.path.isfile(resume):
            raise ConfigError(f"no such results file: {resume}")
        _read_results(resume, prior)
    if os.path.exists(results):
        # Never overwrite the record of an earlier run: it is read first.
        _read_results(results, prior)
    return prior


def _write_results(path: str, lines: Iterable[Sequence[str]]) -> None:
    """Replace the file at ``path`` with these result lines, atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".wamsg-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(RESULT_COLUMNS)
            writer.writerows(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class _Journal:
    """The results file while a run goes on: appended to, then rewritten."""

    def __init__(self, path: str, rows: list[_Row], orphans: dict[str, _Prior]) -> None:
        self.path = path
        self.rows = rows
        self.orphans = orphans
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def _lines(self) -> list[list[str]]:
        return [row.cells() for row in self.rows] + [
            prior.cells(key) for key, prior in self.orphans.items()
        ]

    def open(self) -> None:
        try:
            _write_results(self.path, self._lines())
            self._handle = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"cannot write results file {self.path}: {exc.strerror}") from None
        self._writer = csv.writer(self._handle)

    def record(self, row: _Row) -> None:
        if self._handle is None:
            return
        try:
            self._writer.writerow(row.cells())
            self._handle.flush()
        except OSError:
            # The disk is full or gone: the final rewrite will say so.
            pass

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        try:
            _write_results(self.path, self._lines())
        except OSError as exc:
            raise ConfigError(
                f"cannot write results file {self.path}: {exc.strerror}; "
                "its appended lines still record each row"
            ) from None


class _Counter:
    """The progress line on stderr: redrawn in place on a TTY, periodic otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.done = self.sent = self.failed = self.unknown = 0
        self._last = time.monotonic()
        self._drawn = False

    def add(self, outcome: str) -> None:
        self.done += 1
        if outcome == "sent":
            self.sent += 1
        elif outcome == "unknown":
            self.unknown += 1
        else:
            self.failed += 1
        self.show()

    def line(self) -> str:
        return (
            f"{self.done}/{self.total}: {self.sent} sent, {self.failed} failed, "
            f"{self.unknown} unknown"
        )

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        every = _TTY_PROGRESS_EVERY if self.tty else _PLAIN_PROGRESS_EVERY
        if not force and now - self._last < every and self.done < self.total:
            return
        if not self.tty and self.done == self.total and not force:
            return  # the summary says it
        self._last = now
        if self.tty:
            sys.stderr.write(f"\r\x1b[Ksending {self.line()}")
            self._drawn = True
        else:
            sys.stderr.write(f"sending {self.line()}\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty and self._drawn:
            self.show(force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _bulk_exit(rows: Sequence[_Row]) -> int:
    if any(row.outcome == "unknown" for row in rows):
        return EXIT_UNKNOWN
    if any(row.outcome != "sent" for row in rows):
        return EXIT_NOT_SENT
    return EXIT_OK


def _bulk_summary(rows: Sequence[_Row], results: str | None) -> None:
    sent = sum(row.outcome == "sent" for row in rows)
    unknown = sum(row.outcome == "unknown" for row in rows)
    failed = len(rows) - sent - unknown
    tried = sum(row.tried for row in rows)
    untried = sum(row.action == "send" and not row.tried for row in rows)
    skipped = sum(row.action == "skip" for row in rows)
    held = sum(row.action == "hold" for row in rows)
    print(f"{len(rows)} rows: {sent} sent, {failed} failed, {unknown} unknown")
    print(
        f"this run: {tried} tried, {skipped} skipped (sent before), "
        f"{held} held back (unknown before)" + (f", {untried} not reached" if untried else "")
    )
    if results is not None:
        print(f"results: {_clean(results)}")
    if failed:
        print(
            f"{failed} row(s) not sent: see the error column; run the same command again "
            "to send only those"
        )
    if unknown:
        print(
            f"{unknown} row(s) may or may not have been sent: check the recipients before "
            "sending them again with --retry-unknown"
        )


def _plan(rows: list[_Row], prior: dict[str, _Prior], retry_unknown: bool) -> list[str]:
    """Mark each row to send, skip or hold, from the earlier results; problems found."""
    problems = []
    for row in rows:
        earlier = prior.pop(row.key, None)
        if earlier is None:
            continue
        if earlier.to and earlier.to != row.to:
            problems.append(
                f"row {row.number}: key {redact(row.key)!r} was used for another recipient "
                f"({earlier.to}) in the earlier results; give this row a new key"
            )
            continue
        if earlier.outcome == "sent":
            row.action = "skip"
        elif earlier.outcome == "unknown" and not retry_unknown:
            row.action = "hold"
        else:
            continue  # not_sent, rejected (nothing went out), or unknown with --retry-unknown
        row.outcome, row.message_id, row.error = earlier.outcome, earlier.message_id, earlier.error
    return problems


async def _bulk(args: argparse.Namespace) -> int:
    provider, settings = _client_settings(args, os.environ)
    results = args.results or _results_path(args.file)
    if _same_file(results, args.file):
        raise ConfigError("--results must not be the CSV file itself")
    prior = _earlier_results(args.resume, results)
    by_key: dict[str, _Row] = {}
    maybe_out: set[str] = set()
    journal: _Journal | None = None

    def started(event: DeliveryEvent) -> None:
        row = by_key.get(event.idempotency_key)
        if row is not None and journal is not None:
            row.tried = True
            row.outcome, row.error = "unknown", _IN_FLIGHT
            journal.record(row)

    def attempted(event: DeliveryEvent) -> None:
        row = by_key.get(event.idempotency_key)
        error = event.error
        if row is None or error is None or journal is None:
            return
        if error.outcome is Outcome.UNKNOWN:
            maybe_out.add(row.key)
        if row.key not in maybe_out:
            # This attempt did not send it; a retry may follow.
            row.outcome, row.error = error.outcome.value, _spreadsheet_safe(_describe(error))
            journal.record(row)

    hooks = Hooks(before_send=started, after_send=attempted)
    policy = _retry_policy(args)
    async with Client(
        provider, timeout=args.timeout, retry=policy, hooks=hooks, **settings
    ) as client:
        rows = await _read_bulk(args.file, client)
        problems = _plan(rows, prior, args.retry_unknown)
        if problems:
            raise _BadInput([f"{args.file} {p}" for p in problems], args.file)
        pending = [row for row in rows if row.action == "send"]
        if args.dry_run:
            print(
                f"{len(rows)} rows checked: {len(pending)} to send, "
                f"{sum(r.action == 'skip' for r in rows)} sent before, "
                f"{sum(r.action == 'hold' for r in rows)} unknown before (held back)"
            )
            return EXIT_OK
        by_key.update((row.key, row) for row in pending)
        journal = _Journal(results, rows, prior)  # what is left in prior: rows no longer in FILE
        journal.open()
        counter = _Counter(len(pending), not args.no_progress)

        def finished(index: int, outcome: SendResult | WamsgError) -> None:
            row = pending[index]
            row.tried = True
            if isinstance(outcome, SendResult):
                row.outcome, row.error = "sent", ""
                row.message_id = _spreadsheet_safe(redact(outcome.message_id or ""))
            else:
                row.outcome, row.error = (
                    outcome.outcome.value,
                    _spreadsheet_safe(_describe(outcome)),
                )
            assert journal is not None
            journal.record(row)
            counter.add(row.outcome)

        interrupted = True
        try:
            await client.send_many(
                [row.message for row in pending],
                concurrency=args.concurrency,
                on_result=finished,
            )
            interrupted = False
        finally:
            counter.finish()
            journal.close()
            if interrupted:
                print(
                    f"wamsg: interrupted; results saved to {_clean(results)} (rows in flight "
                    "are 'unknown'); run the same command again to send the rest",
                    file=sys.stderr,
                )
            _bulk_summary(rows, results)
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
        "--provider", help="provider name (default: $WAMSG_PROVIDER); see `wamsg providers`"
    )
    command.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a provider setting, e.g. base_url=...; repeat for more. Each setting can also "
        "come from WAMSG_<KEY> (prefer that for tokens: flags show up in `ps`)",
    )
    command.add_argument("--timeout", type=_seconds, default=60.0, help=timeout_help)
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
    _add_provider_options(command, "seconds for the whole send, retries and waits included")
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
            return asyncio.run(_bulk(args))
    except _BadInput as bad:
        for problem in bad.problems[:_MAX_SHOWN_ERRORS]:
            print(f"wamsg: {_clean(problem)}", file=sys.stderr)
        more = len(bad.problems) - _MAX_SHOWN_ERRORS
        if more > 0:
            print(f"wamsg: ... and {more} more", file=sys.stderr)
        print(
            f"wamsg: {len(bad.problems)} problem(s) in {_clean(bad.what)}; nothing was sent",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except WamsgError as exc:
        if args.debug:
            raise
        print(f"wamsg: {_describe(exc)}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
