"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_sandbox_example_runs() -> None:
    runnable = [b for b in python_blocks() if "asyncio.run(" in b]
    assert runnable, "the README lost its runnable sandbox example"
    done = subprocess.run(
        [sys.executable, "-c", runnable[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SendResult(provider='wawp'" in done.stdout
    assert "StoredMessage(" in done.stdout


def test_commands_in_readme() -> None:
    text = README.read_text()
    assert "python -m pip install -e . && wamsg demo" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npython -m pytest\n" in ci, ".ci/run must run the README's test command"
