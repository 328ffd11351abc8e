"""The `wamsg` command, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "wamsg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_demo_prints_a_result_table_and_exits_zero() -> None:
    done = run("demo", "--seed", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("sandbox gateway listening on http://127.0.0.1:") for line in lines)
    rows = [line.split() for line in lines if line.startswith("wawp ")]
    assert [row[1] for row in rows] == ["text", "image"]
    assert all(row[2].startswith("true_") and row[3] == "queued" for row in rows)
    assert "5511999990000" not in done.stdout  # numbers are masked in output
    assert done.stderr == ""


def test_version_and_usage_errors() -> None:
    assert run("--version").stdout.startswith("wamsg ")
    bad = run("no-such-command")
    assert bad.returncode == 2
    assert "usage:" in bad.stderr
