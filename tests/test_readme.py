"""The README's examples run as written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from golden import build_response, golden_files, load_golden

import wamsg

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


def test_delivery_example_fails_over_and_replays() -> None:
    block = next(b for b in python_blocks() if "wamsg.Router(" in b and "asyncio.run(" in b)
    done = subprocess.run(
        [sys.executable, "-c", block],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[('gowa', <Outcome.NOT_SENT: 'not_sent'>), ('wuts', None)]",
        "True True",
        "1 message in the outbox",
    ]


def test_commands_in_readme() -> None:
    text = README.read_text()
    assert "python -m pip install -e . && wamsg demo" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npython -m pytest\n" in ci, ".ci/run must run the README's test command"


def test_same_send_with_every_provider() -> None:
    """The README's provider-swap example runs for each provider as written."""
    block = next(b for b in python_blocks() if "async def notify" in b)
    env = {"WAWP_TOKEN": "t", "WAHA_API_KEY": "k", "GOWA_PASSWORD": "p", "WUTS_TOKEN": "w"}
    namespace: dict[str, Any] = {}
    with mock.patch.dict(os.environ, env):
        exec(compile(block, "README.md", "exec"), namespace)
        clients = namespace["CLIENTS"]
        assert sorted(clients) == wamsg.available()
        for provider, make in clients.items():
            seen: list[wamsg.HttpRequest] = []
            client = make()
            assert isinstance(client, wamsg.Client)
            # Answer with the provider's first successful golden answer.
            client.transport = wamsg.MockTransport(_answering(provider, seen))
            namespace["CLIENTS"] = {**clients, provider: lambda client=client: client}
            asyncio.run(namespace["notify"](provider))
            assert [r.kind for r in seen] == ["text", "media"], provider


def _answering(
    provider: str, seen: list[wamsg.HttpRequest]
) -> Callable[[wamsg.HttpRequest], wamsg.HttpResponse]:
    ok = next(
        golden
        for golden in map(load_golden, golden_files(provider, "response"))
        if "result" in golden["expect"]
    )

    def answer(request: wamsg.HttpRequest) -> wamsg.HttpResponse:
        seen.append(request)
        return build_response(ok)

    return answer


def test_readme_cli_settings_match_the_sandbox_defaults() -> None:
    """The `export WAMSG_...` lines for the sandbox are what `wamsg sandbox` serves."""
    from wamsg.cli import DEFAULT_SANDBOX_PORT
    from wamsg.sandbox import Sandbox

    text = README.read_text()
    exported = dict(re.findall(r"(WAMSG_[A-Z_]+)=(\S+)", text.split("Against a real")[0]))
    settings = Sandbox().credentials("wawp", f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}")
    assert exported.pop("WAMSG_PROVIDER") == "wawp"
    assert exported == {f"WAMSG_{k.upper()}": v for k, v in settings.items()}


def test_sandbox_doc_example_runs() -> None:
    """docs/sandbox.md's test example passes as written."""
    doc = (README.parent / "docs" / "sandbox.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/sandbox.md", "exec"), namespace)
    asyncio.run(namespace["test_order_shipped_notification"]())
