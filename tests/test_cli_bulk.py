"""`wamsg send-bulk`, run as real subprocesses against a real sandbox process."""

from __future__ import annotations

import collections
import csv
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import TINY_PNG, Running, run, start_sandbox, stop

ROWS = 30


def number(i: int) -> str:
    """Row i's recipient, as a person would type it."""
    return f"+55 11 9{8000 + i:04d}-{1000 + i:04d}"


def digits(i: int) -> str:
    return re.sub(r"\D", "", number(i))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def text_csv(path: Path, rows: int = ROWS) -> Path:
    return write_csv(path, ["to", "text"], [[number(i), f"bulk message {i}"] for i in range(rows)])


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def outcomes(results: list[dict[str, str]]) -> dict[str, int]:
    return dict(collections.Counter(r["outcome"] for r in results))


def assert_no_full_number(*texts: str, rows: int = ROWS) -> None:
    for text in texts:
        for i in range(rows):
            assert digits(i) not in re.sub(r"[ \-]", "", text), text
            assert number(i) not in text


def clear(sandbox: Running) -> None:
    for path in ("/_sandbox/messages", "/_sandbox/faults"):
        request = urllib.request.Request(f"{sandbox.base_url}{path}", method="DELETE")
        with urllib.request.urlopen(request) as r:
            assert r.status in (200, 204)


def texts(sandbox: Running) -> list[str]:
    return [str(m.get("text") or m.get("caption")) for m in sandbox.messages()]


@pytest.fixture(scope="module")
def box() -> Iterator[Running]:
    running = start_sandbox("--port", "0", "--seed", "11")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            stop(running)


@pytest.fixture
def sandbox(box: Running) -> Running:
    """The module's sandbox, with an empty outbox and no faults."""
    clear(box)
    return box


def summary(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


def test_faults_then_reruns_send_only_what_was_not_sent(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "people.csv")
    results = tmp_path / "people.results.csv"
    env = sandbox.env("wuts")
    # Faults fire in the order added: request 1 is dropped after the gateway
    # stored it; requests 2-4 get a 503 (not stored).
    sandbox.add_fault({"kind": "drop", "provider": "wuts", "times": 1})
    sandbox.add_fault({"kind": "server_error", "provider": "wuts", "status": 503, "times": 3})

    first = run("send-bulk", str(data), "--attempts", "1", env=env)
    assert first.returncode == 3, first.stdout + first.stderr
    lines = summary(first)
    assert lines[0] == "30 rows: 26 sent, 3 failed, 1 unknown"
    assert lines[1] == "this run: 30 tried, 0 skipped (sent before), 0 held back (unknown before)"
    assert lines[2] == f"results: {results}"
    assert first.stderr == ""  # not a TTY, and done well within one progress period

    rows = read_results(results)
    assert list(rows[0]) == ["row", "to", "key", "outcome", "message_id", "error"]
    assert [r["row"] for r in rows] == [str(n) for n in range(2, ROWS + 2)]  # header is row 1
    assert outcomes(rows) == {"sent": 26, "not_sent": 3, "unknown": 1}
    assert [r["to"] for r in rows] == [f"+55*********{digits(i)[-2:]}" for i in range(ROWS)]
    assert len({r["key"] for r in rows}) == ROWS
    assert all(re.fullmatch(r"bulk-[0-9a-f]{32}", r["key"]) for r in rows)
    stored = sandbox.messages()
    assert len(stored) == 27  # 26 sent + the dropped one, which the gateway kept
    stored_ids = {str(m["message_id"]) for m in stored}
    for r in rows:
        if r["outcome"] == "sent":
            assert r["message_id"] in stored_ids
            assert r["error"] == ""
        else:
            assert r["message_id"] == ""
    not_sent = [r for r in rows if r["outcome"] == "not_sent"]
    assert all("HTTP 503" in r["error"] for r in not_sent)
    (unknown,) = [r for r in rows if r["outcome"] == "unknown"]
    assert "check before sending again" in unknown["error"]
    assert_no_full_number(first.stdout, first.stderr, results.read_text())

    # The same command again: only the three 503 rows go out.
    second = run("send-bulk", str(data), env=env)
    assert second.returncode == 3, second.stdout + second.stderr  # one row is still unknown
    assert summary(second)[:2] == [
        "30 rows: 29 sent, 0 failed, 1 unknown",
        "this run: 3 tried, 26 skipped (sent before), 1 held back (unknown before)",
    ]
    now = texts(sandbox)
    assert len(now) == 30
    assert sorted(now[27:]) == sorted(f"bulk message {int(r['row']) - 2}" for r in not_sent)
    again = read_results(results)
    assert outcomes(again) == {"sent": 29, "unknown": 1}
    assert [r["key"] for r in again] == [r["key"] for r in rows]  # stable keys
    assert [r for r in again if r["outcome"] == "unknown"] == [unknown]  # carried over as is

    # --retry-unknown sends the unknown row again (wuts takes no client id,
    # so the recipient now has it twice: what the flag warns about).
    third = run("send-bulk", str(data), "--retry-unknown", env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert summary(third)[:2] == [
        "30 rows: 30 sent, 0 failed, 0 unknown",
        "this run: 1 tried, 29 skipped (sent before), 0 held back (unknown before)",
    ]
    assert texts(sandbox)[30:] == [f"bulk message {int(unknown['row']) - 2}"]

    # Everything is sent: a fourth run sends nothing.
    fourth = run("send-bulk", str(data), "--retry-unknown", env=env)
    assert fourth.returncode == 0
    assert summary(fourth)[1] == (
        "this run: 0 tried, 30 skipped (sent before), 0 held back (unknown before)"
    )
    assert len(sandbox.messages()) == 31
    assert_no_full_number(
        second.stdout + second.stderr, third.stdout + third.stderr, results.read_text()
    )


def test_default_retries_absorb_503s_and_send_each_row_once(
    sandbox: Running, tmp_path: Path
) -> None:
    data = text_csv(tmp_path / "list.csv")
    sandbox.add_fault({"kind": "server_error", "provider": "gowa", "status": 503, "times": 3})
    done = run("send-bulk", str(data), "--concurrency", "5", env=sandbox.env("gowa"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done)[0] == "30 rows: 30 sent, 0 failed, 0 unknown"
    assert sorted(texts(sandbox)) == sorted(f"bulk message {i}" for i in range(ROWS))
    assert outcomes(read_results(tmp_path / "list.results.csv")) == {"sent": 30}


def test_retry_unknown_through_waha_reuses_the_key_and_stores_nothing_twice(
    sandbox: Running, tmp_path: Path
) -> None:
    data = text_csv(tmp_path / "w.csv", rows=5)
    env = sandbox.env("waha")
    sandbox.add_fault({"kind": "drop", "provider": "waha", "times": 1})
    first = run("send-bulk", str(data), "--concurrency", "1", env=env)
    assert first.returncode == 3, first.stdout + first.stderr
    assert len(sandbox.messages()) == 5  # the dropped send was stored
    held = run("send-bulk", str(data), env=env)
    assert held.returncode == 3
    assert len(sandbox.messages()) == 5
    retried = run("send-bulk", str(data), "--retry-unknown", env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    # The row's key, derived from its content, goes to WAHA as the message id
    # again: the gateway knows it and stores no second message.
    assert sorted(texts(sandbox)) == sorted(f"bulk message {i}" for i in range(5))
    assert outcomes(read_results(tmp_path / "w.results.csv")) == {"sent": 5}


def _bad(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("to,text\n+5511999990000,hi\n+5511999990001,a,b\n", ["bad.csv row 3: 3 field(s)"]),
        (
            "to,text\n+5511999990000,fine\n+55,short\n+5511999990002,\n",
            ["bad.csv row 3: ", "bad.csv row 4: needs text or image"],
        ),
        ("text\nhello\n", ["bad.csv row 1: no to column"]),
        ("to,txt\n+5511999990000,hi\n", ["bad.csv row 1: unknown column(s) 'txt'"]),
        (
            "to,text,image\n+5511999990000,hi,https://e.com/a.png\n",
            ["bad.csv row 2: has both text and image"],
        ),
        ("to,text,caption\n+5511999990000,hi,cap\n", ["bad.csv row 2: has a caption but no image"]),
        (
            "to,text\n+55 11 99999-0000,same\n5511999990000,same\n",
            ["bad.csv row 3: the same message as row 2"],
        ),
        (
            "to,text,key\n+5511999990000,a,k1\n+5511999990001,b,k1\n",
            ["bad.csv row 3: key 'k1' is also row 2's"],
        ),
        ("to,text,image\n+5511999990000,,nope.png\n", ["bad.csv row 2: no such image file"]),
        ('to,text\n+5511999990000,"unterminated\n', ["bad.csv row 2: not valid CSV"]),
        ("to,text\n", ["has a header but no rows"]),
        ("", ["is empty"]),
    ],
)
def test_malformed_csv_exits_2_before_any_send(
    sandbox: Running, tmp_path: Path, body: str, says: list[str]
) -> None:
    data = _bad(tmp_path, body)
    # The good rows come first: nothing may go out before every row is checked.
    done = run("send-bulk", str(data), env=sandbox.env("wuts"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("wamsg: ")
    assert lines[-1].endswith("; nothing was sent")
    assert f"wamsg: {len(says)} problem(s) in {data}" in lines[-1]
    assert len(lines) == len(says) + 1
    for line, expected in zip(lines, says, strict=False):
        assert line.startswith("wamsg: ")
        assert expected in line, done.stderr
    assert "Traceback" not in done.stderr
    assert "5511999990000" not in done.stderr
    assert sandbox.messages() == []
    assert not (tmp_path / "bad.results.csv").exists()


def test_rows_are_checked_against_the_provider_before_any_send(
    sandbox: Running, tmp_path: Path
) -> None:
    # Wawp takes images by URL only, and no GIF: both rows are refused up front.
    data = write_csv(
        tmp_path / "img.csv",
        ["to", "image", "caption"],
        [
            ["+5511999990000", "https://e.com/ok.png", "fine"],
            ["+5511999990001", str(TINY_PNG), "an upload"],
            ["+5511999990002", "https://e.com/a.gif", "a gif"],
        ],
    )
    done = run("send-bulk", str(data), env=sandbox.env("wawp"))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3
    assert "img.csv row 3: " in lines[0]
    assert "URL" in lines[0]
    assert "img.csv row 4: " in lines[1]
    assert "image/gif" in lines[1]
    assert sandbox.messages() == []


def test_image_rows_by_path_relative_to_the_csv_and_by_url(
    sandbox: Running, tmp_path: Path
) -> None:
    (tmp_path / "pics").mkdir()
    shutil.copy(TINY_PNG, tmp_path / "pics" / "tiny.png")
    data = write_csv(
        tmp_path / "img.csv",
        ["to", "text", "image", "caption"],
        [
            [number(0), "", "pics/tiny.png", "from a file"],
            [number(1), "", "https://example.com/cat.png", "from a URL"],
            [number(2), "just words", "", ""],
        ],
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "wamsg", "send-bulk", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=elsewhere,  # the image path is found next to the CSV, not here
        env={k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")}
        | {"PYTHONWARNINGS": "error"}
        | sandbox.env("gowa"),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = sorted(sandbox.messages(), key=lambda m: str(m.get("caption") or m.get("text")))
    assert [m.get("caption") or m.get("text") for m in stored] == [
        "from a URL",
        "from a file",
        "just words",
    ]
    assert stored[1]["image_size"] == TINY_PNG.stat().st_size
    assert stored[0]["image_url"] == "https://example.com/cat.png"


def test_explicit_keys_results_and_resume_paths(sandbox: Running, tmp_path: Path) -> None:
    rows = [[number(i), f"keyed {i}", f"order-{i}"] for i in range(4)]
    data = write_csv(tmp_path / "keyed.csv", ["to", "text", "key"], rows)
    env = sandbox.env("wuts")
    first_results = tmp_path / "first.csv"
    sandbox.add_fault({"kind": "server_error", "provider": "wuts", "times": 1})
    first = run(
        "send-bulk", str(data), "--results", str(first_results), "--no-retry",
        "--concurrency", "1", env=env,
    )  # fmt: skip
    assert first.returncode == 1, first.stdout + first.stderr
    recorded = read_results(first_results)
    assert [r["key"] for r in recorded] == ["order-0", "order-1", "order-2", "order-3"]
    assert [r["outcome"] for r in recorded] == ["not_sent", "sent", "sent", "sent"]
    assert not (tmp_path / "keyed.results.csv").exists()

    # Resume from the first results file into a new one.
    second_results = tmp_path / "second.csv"
    second = run(
        "send-bulk", str(data), "--resume", str(first_results),
        "--results", str(second_results), env=env,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert summary(second)[1].startswith("this run: 1 tried, 3 skipped")
    assert texts(sandbox) == ["keyed 1", "keyed 2", "keyed 3", "keyed 0"]
    assert outcomes(read_results(second_results)) == {"sent": 4}

    # A key the record has for another recipient is refused, before any send.
    rows[2][0] = number(9)
    moved = write_csv(tmp_path / "keyed.csv", ["to", "text", "key"], rows)
    refused = run("send-bulk", str(moved), "--results", str(second_results), env=env)
    assert refused.returncode == 2
    assert "row 4: key 'order-2' was used for another recipient" in refused.stderr
    assert len(sandbox.messages()) == 4
    assert_no_full_number(refused.stderr, rows=10)


def test_rows_edited_or_added_after_a_run_are_new_messages(
    sandbox: Running, tmp_path: Path
) -> None:
    data = text_csv(tmp_path / "e.csv", rows=3)
    env = sandbox.env("wuts")
    assert run("send-bulk", str(data), env=env).returncode == 0
    # A new first row shifts every row number; keys still match.
    write_csv(
        data,
        ["to", "text"],
        [[number(7), "new one"]] + [[number(i), f"bulk message {i}"] for i in range(3)],
    )
    done = run("send-bulk", str(data), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done)[1].startswith("this run: 1 tried, 3 skipped")
    assert texts(sandbox) == ["bulk message 0", "bulk message 1", "bulk message 2", "new one"]
    assert [r["row"] for r in read_results(tmp_path / "e.results.csv")] == ["2", "3", "4", "5"]


def test_a_killed_runs_results_file_holds_back_rows_in_flight(
    sandbox: Running, tmp_path: Path
) -> None:
    """The results file as a run killed with SIGKILL leaves it: appended lines, cut short."""
    data = text_csv(tmp_path / "k.csv", rows=4)
    keys = [r["key"] for r in _dry_keys(sandbox, data)]
    masked = [f"+55*********{digits(i)[-2:]}" for i in range(4)]
    header = "row,to,key,outcome,message_id,error\n"
    lines = [f"{n + 2},{masked[n]},{keys[n]},not_sent,,not tried yet\n" for n in range(4)] + [
        f"2,{masked[0]},{keys[0]},unknown,,in flight\n",
        f"2,{masked[0]},{keys[0]},sent,3EB0AA,\n",
        f"3,{masked[1]},{keys[1]},unknown,,in flight\n",
        f"4,{masked[2]},{keys[2]},unknown,,in flight\n",
        f"4,{masked[2]},{keys[2]},not_sent,,HTTP 503\n",  # that attempt ended: not sent
        f"5,{masked[3]},{keys[3]},unknown,,in fli",  # cut short by the kill
    ]
    (tmp_path / "k.results.csv").write_text(header + "".join(lines), encoding="utf-8")
    done = run("send-bulk", str(data), env=sandbox.env("wuts"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert summary(done)[:2] == [
        "4 rows: 3 sent, 0 failed, 1 unknown",
        "this run: 2 tried, 1 skipped (sent before), 1 held back (unknown before)",
    ]
    assert texts(sandbox) == ["bulk message 2", "bulk message 3"]
    rows = read_results(tmp_path / "k.results.csv")
    assert [r["outcome"] for r in rows] == ["sent", "unknown", "sent", "sent"]
    assert rows[0]["message_id"] == "3EB0AA"


def _dry_keys(sandbox: Running, data: Path) -> list[dict[str, str]]:
    """The keys a run would give the rows: from a real run into a scratch results file."""
    scratch = data.with_name("scratch.csv")
    done = run("send-bulk", str(data), "--results", str(scratch), env=sandbox.env("wuts"))
    assert done.returncode == 0, done.stderr
    clear(sandbox)
    return read_results(scratch)


def test_dry_run_checks_and_sends_nothing(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "d.csv")
    done = run("send-bulk", str(data), "--dry-run", env=sandbox.env("wuts"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "30 rows checked: 30 to send, 0 sent before, 0 unknown before (held back)\n"
    )
    assert sandbox.messages() == []
    assert not (tmp_path / "d.results.csv").exists()


def test_ctrl_c_keeps_the_record_and_a_rerun_never_sends_twice(
    sandbox: Running, tmp_path: Path
) -> None:
    data = text_csv(tmp_path / "c.csv")
    results = tmp_path / "c.results.csv"
    env = sandbox.env("gowa")
    sandbox.add_fault({"kind": "slow", "provider": "gowa", "delay": 0.2, "times": None})
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "wamsg", "send-bulk", str(data), "--concurrency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env | {"PYTHONWARNINGS": "error"} | env,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until some rows are recorded as sent
            if results.exists() and results.read_text().count(",sent,") >= 4:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, out + err
    assert "interrupted; results saved to" in err
    rows = read_results(results)
    assert [r["row"] for r in rows] == [str(n) for n in range(2, ROWS + 2)]  # rewritten whole
    counts = outcomes(rows)
    assert counts.get("sent", 0) >= 4
    assert counts.get("unknown", 0) <= 2  # at most the sends in flight
    assert counts.get("not_sent", 0) >= 1
    assert summary(subprocess.CompletedProcess([], 130, out, err))[0] == (
        f"30 rows: {counts.get('sent', 0)} sent, {counts.get('not_sent', 0)} failed, "
        f"{counts.get('unknown', 0)} unknown"
    )
    time.sleep(0.5)  # let the cancelled requests' slow answers finish on the server
    sent_texts = {f"bulk message {int(r['row']) - 2}" for r in rows if r["outcome"] == "sent"}
    assert sent_texts <= set(texts(sandbox))

    clear(sandbox)  # faults and outbox: from here on, count what the re-run sends
    again = run("send-bulk", str(data), env=env)
    assert again.returncode == (3 if counts.get("unknown") else 0), again.stdout + again.stderr
    resent = texts(sandbox)
    assert len(resent) == len(set(resent))
    assert sorted(resent) == sorted(
        f"bulk message {int(r['row']) - 2}" for r in rows if r["outcome"] == "not_sent"
    )
    assert_no_full_number(out, err, again.stdout, again.stderr, results.read_text())


def test_progress_is_one_redrawn_line_on_a_tty(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "t.csv", rows=8)
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "wamsg", "send-bulk", str(data)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")}
            | {"PYTHONWARNINGS": "error"}
            | sandbox.env("wuts"),
        )
        os.close(secondary)
        out, _ = process.communicate(timeout=60)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert process.returncode == 0, out
    screen = shown.decode()
    assert screen.startswith("\r\x1b[Ksending ")
    assert screen.endswith("sending 8/8: 8 sent, 0 failed, 0 unknown\r\n")
    assert "\n" not in screen[:-2]  # one line, redrawn
    assert out.splitlines()[0] == "8 rows: 8 sent, 0 failed, 0 unknown"


def test_bulk_help_shows_the_options() -> None:
    done = run("send-bulk", "--help")
    assert done.returncode == 0
    for flag in (
        "--concurrency", "--results", "--resume", "--retry-unknown", "--attempts",
        "--no-retry", "--timeout", "--dry-run", "--no-progress", "--provider", "--set",
    ):  # fmt: skip
        assert flag in done.stdout
    assert "outcome unknown" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--concurrency", "0"), "concurrency must be a whole number 1-1000"),
        (("--resume", "/no/such/results.csv"), "no such results file"),
    ],
)
def test_bad_bulk_options(
    sandbox: Running, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    data = text_csv(tmp_path / "o.csv", rows=2)
    done = run("send-bulk", str(data), *args, env=sandbox.env("wuts"))
    assert done.returncode == 2
    assert says in done.stderr
    assert sandbox.messages() == []


def test_bad_results_file_is_refused_before_any_send(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "r.csv", rows=2)
    (tmp_path / "r.results.csv").write_text("row,to,key,outcome,message_id,error\n2,x,k,maybe,,\n")
    done = run("send-bulk", str(data), env=sandbox.env("wuts"))
    assert done.returncode == 2
    assert "results file" in done.stderr
    assert "row 2: needs a key and an outcome" in done.stderr
    assert sandbox.messages() == []
    assert read_results(tmp_path / "r.results.csv")[0]["outcome"] == "maybe"  # left as it was


def test_results_file_cannot_be_the_csv_itself(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "s.csv", rows=2)
    before = data.read_bytes()
    done = run("send-bulk", str(data), "--results", str(data), env=sandbox.env("wuts"))
    assert done.returncode == 2
    assert "--results must not be the CSV file itself" in done.stderr
    assert data.read_bytes() == before
    assert sandbox.messages() == []


def test_rejected_rows_are_sent_again_on_a_rerun(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "a.csv", rows=3)
    env = sandbox.env("wuts")
    sandbox.add_fault({"kind": "auth", "provider": "wuts", "times": 1})
    first = run("send-bulk", str(data), "--concurrency", "1", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert [r["outcome"] for r in read_results(tmp_path / "a.results.csv")] == [
        "rejected",
        "sent",
        "sent",
    ]
    # Refused by the gateway, so certainly not out: safe to send once the cause is fixed.
    again = run("send-bulk", str(data), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert texts(sandbox) == ["bulk message 1", "bulk message 2", "bulk message 0"]


def test_the_record_of_rows_removed_from_the_csv_is_kept(sandbox: Running, tmp_path: Path) -> None:
    data = text_csv(tmp_path / "m.csv", rows=3)
    env = sandbox.env("wuts")
    assert run("send-bulk", str(data), env=env).returncode == 0
    sent = read_results(tmp_path / "m.results.csv")
    text_csv(data, rows=2)  # the last row removed
    assert run("send-bulk", str(data), env=env).returncode == 0
    kept = read_results(tmp_path / "m.results.csv")
    assert [r["row"] for r in kept] == ["2", "3", ""]
    assert kept[2] | {"row": "4"} == sent[2]
    text_csv(data, rows=3)  # and back: it is not sent again
    done = run("send-bulk", str(data), env=env)
    assert done.returncode == 0
    assert summary(done)[1].startswith("this run: 0 tried, 3 skipped")
    assert len(sandbox.messages()) == 3
