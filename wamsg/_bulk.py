"""``wamsg send-bulk``: many messages from a CSV file (docs/cli-bulk.md).

Its one job: the bulk file formats and what they mean. The CSV format (its
columns, every row checked before the first send), the key derived for a
row that has none, the results record (read back, kept as a journal while a
run goes on) and the planning of a re-run from it: a row sent is never sent
again, a row left ``unknown`` only on request. :class:`Run` sends the planned
rows and keeps that record (with the progress line and the summary it
prints). Argument parsing, the client's settings and the exit code stay in
:mod:`wamsg.cli`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from ._cli_common import clean, describe, image_source
from ._redact import redact
from .client import Client, prepare_image
from .errors import ConfigError, InvalidMessage, Outcome, WamsgError
from .hooks import DeliveryEvent, Hooks
from .models import Image, Recipient, SendResult, Text
from .providers.base import check_message

__all__ = [
    "BULK_COLUMNS",
    "RESULT_COLUMNS",
    "BadInput",
    "Row",
    "Run",
    "earlier_results",
    "plan",
    "read_rows",
    "report_dry_run",
    "results_path",
    "same_file",
]

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
_PLAIN_PROGRESS_EVERY = 5.0  # seconds between progress lines when stderr is not a TTY
_TTY_PROGRESS_EVERY = 0.1


class BadInput(Exception):
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
    value = clean(value)
    if value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


class Row:
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
        """The row's line in the results file."""
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


def results_path(csv_path: str) -> str:
    """The default results file of ``csv_path``: ``FILE.results.csv`` next to it."""
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
                raise BadInput([f"{what} row {number + 1}: not valid CSV: {exc}"], what) from None
            except UnicodeDecodeError:
                raise BadInput([f"{what} is not UTF-8 text"], what) from None
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
        raise BadInput(problems, what)
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
    return Image(
        to=to, image=image_source(image, base), caption=caption or None, idempotency_key=key
    )


def _directory_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


async def read_rows(path: str, client: Client) -> list[Row]:
    """Every row of the CSV file, each checked against the gateway; no send."""
    what = path
    records = iter(_csv_records(path, what))
    first = next(records, None)
    if first is None:
        raise BadInput([f"{what} is empty: it needs a header row (to,text,...) and rows"], what)
    names = _header(first[1], BULK_COLUMNS, ("to",), what)
    base = _directory_of(path)
    caps = client.adapter.capabilities
    rows: list[Row] = []
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
            problems.append(f"{what} row {number}: {clean(redact(exc.message))}")
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
        rows.append(Row(number, message, key))
    if problems:
        raise BadInput(problems, what)
    if not rows:
        raise BadInput([f"{what} has a header but no rows to send"], what)
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
        raise BadInput(problems, what)
    for key, prior in found.items():
        earlier = into.get(key)
        # Two files: sent wins, then unknown (the safe side), then the later file.
        if earlier is not None and (
            earlier.outcome == "sent" or (earlier.outcome == "unknown" and prior.outcome != "sent")
        ):
            continue
        into[key] = prior


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (or would, once written)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def earlier_results(resume: str | None, results: str) -> dict[str, _Prior]:
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
    fd, temp = tempfile.mkstemp(dir=_directory_of(path), prefix=".wamsg-", suffix=".tmp")
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

    def __init__(self, path: str, rows: list[Row], orphans: dict[str, _Prior]) -> None:
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

    def record(self, row: Row) -> None:
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


def _summary(rows: Sequence[Row], results: str | None) -> None:
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
        print(f"results: {clean(results)}")
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


def plan(rows: list[Row], prior: dict[str, _Prior], retry_unknown: bool) -> list[str]:
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


def report_dry_run(rows: Sequence[Row]) -> None:
    """Print what a run would do with ``rows`` as :func:`plan` marked them (``--dry-run``)."""
    print(
        f"{len(rows)} rows checked: {sum(r.action == 'send' for r in rows)} to send, "
        f"{sum(r.action == 'skip' for r in rows)} sent before, "
        f"{sum(r.action == 'hold' for r in rows)} unknown before (held back)"
    )


class Run:
    """One run's sends, each recorded in the results file as it goes.

    Give :attr:`hooks` to the client the rows are read and sent with, then
    :meth:`send` the rows once :func:`plan` has marked them.
    """

    def __init__(self, results: str, progress: bool) -> None:
        self.results = results
        self.progress = progress
        self.hooks = Hooks(before_send=self._started, after_send=self._attempted)
        self._by_key: dict[str, Row] = {}
        self._maybe_out: set[str] = set()
        self._pending: list[Row] = []
        self._journal: _Journal | None = None
        self._counter: _Counter | None = None

    def _started(self, event: DeliveryEvent) -> None:
        row = self._by_key.get(event.idempotency_key)
        if row is not None and self._journal is not None:
            row.tried = True
            row.outcome, row.error = "unknown", _IN_FLIGHT
            self._journal.record(row)

    def _attempted(self, event: DeliveryEvent) -> None:
        row = self._by_key.get(event.idempotency_key)
        error = event.error
        if row is None or error is None or self._journal is None:
            return
        if error.outcome is Outcome.UNKNOWN:
            self._maybe_out.add(row.key)
        if row.key not in self._maybe_out:
            # This attempt did not send it; a retry may follow.
            row.outcome, row.error = error.outcome.value, _spreadsheet_safe(describe(error))
            self._journal.record(row)

    def _finished(self, index: int, outcome: SendResult | WamsgError) -> None:
        row = self._pending[index]
        row.tried = True
        if isinstance(outcome, SendResult):
            row.outcome, row.error = "sent", ""
            row.message_id = _spreadsheet_safe(redact(outcome.message_id or ""))
        else:
            row.outcome, row.error = (
                outcome.outcome.value,
                _spreadsheet_safe(describe(outcome)),
            )
        assert self._journal is not None
        assert self._counter is not None
        self._journal.record(row)
        self._counter.add(row.outcome)

    async def send(
        self, client: Client, rows: list[Row], orphans: dict[str, _Prior], concurrency: int
    ) -> None:
        """Send the rows marked to send, and print the summary, also when interrupted.

        ``orphans`` are the earlier results :func:`plan` left (keys no longer
        in the CSV): the results file keeps them at the end.
        """
        pending = [row for row in rows if row.action == "send"]
        self._pending = pending
        self._by_key.update((row.key, row) for row in pending)
        journal = self._journal = _Journal(self.results, rows, orphans)
        journal.open()
        counter = self._counter = _Counter(len(pending), self.progress)
        interrupted = True
        try:
            await client.send_many(
                [row.message for row in pending],
                concurrency=concurrency,
                on_result=self._finished,
            )
            interrupted = False
        finally:
            counter.finish()
            journal.close()
            if interrupted:
                print(
                    f"wamsg: interrupted; results saved to {clean(self.results)} (rows in flight "
                    "are 'unknown'); run the same command again to send the rest",
                    file=sys.stderr,
                )
            _summary(rows, self.results)
