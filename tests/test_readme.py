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
from urllib.parse import quote

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


# -- Configuration ------------------------------------------------------------


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


CONFIGURATION = "Configuration: one DSN per provider"


def test_configuration_app_sends_through_every_provider_with_only_the_dsn_changed() -> None:
    """The README's app.py, run unchanged with each of its sandbox DSNs, sends through that
    provider: a real sandbox on 127.0.0.1 gets the message in that provider's outbox."""
    from wamsg.cli import DEFAULT_SANDBOX_PORT
    from wamsg.sandbox import Sandbox, running_sandbox

    section = _section(CONFIGURATION)
    (app,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "app.py" in b]
    assert "from_env()" in app
    assert not any(name in app for name in wamsg.available())  # it names no provider
    dsns = re.findall(r"^WAMSG_DSN='([^']+)' python app\.py$", section, re.M)
    readme_root = f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}"
    box = Sandbox()
    # The DSNs are what `wamsg sandbox` serves (and prints), one per provider.
    assert dsns == [box.dsn(p, readme_root) for p in box.providers]

    async def run_each() -> list[tuple[str, int, str, str]]:
        runs = []
        async with running_sandbox(sandbox=box) as (_, root):
            for dsn in dsns:
                env = {k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")}
                # Only the port differs: this sandbox listens where the OS put it.
                served = dsn.replace(readme_root.split("//")[1], root.split("//")[1])
                env |= {"WAMSG_DSN": served, "PYTHONWARNINGS": "error"}
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    app,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(process.communicate(), timeout=60)
                assert process.returncode is not None
                runs.append((dsn, process.returncode, out.decode(), err.decode()))
        return runs

    runs = asyncio.run(run_each())
    for (dsn, code, out, err), provider in zip(runs, box.providers, strict=True):
        assert dsn.startswith(f"{provider}+http://")
        assert code == 0, err
        assert out.split()[0] == provider, out
        landed = box.outbox.find(provider=provider)
        assert [(m.chat_id.split("@")[0], m.text) for m in landed] == [
            ("5511999990000", "Your order shipped")
        ]
    assert len(box.outbox) == len(dsns) == 4


def test_configuration_real_gateway_dsns_parse() -> None:
    section = _section(CONFIGURATION)
    dsns = re.findall(r'^WAMSG_DSN="([^"]+)" python app\.py$', section, re.M)
    tokens = {
        "$WAWP_TOKEN": "t/o+k",
        "$WAHA_API_KEY": "key",
        "$GOWA_PASSWORD": "pw",
        "$WUTS_TOKEN": "w",
    }
    configs = []
    for dsn in dsns:
        for name, value in tokens.items():
            dsn = dsn.replace(name, quote(value, safe=""))
        configs.append(wamsg.ProviderConfig.from_dsn(dsn))
    assert [c.provider for c in configs] == ["wawp", "waha", "gowa", "wuts"]
    assert configs[0].settings["access_token"] == wamsg.Secret("t/o+k")
    for config in configs:
        config.create_adapter()
    shown = "ProviderConfig('wawp://ABC123DEF456:***@api.wawp.net')"
    assert shown in section
    assert repr(wamsg.ProviderConfig.from_dsn("wawp://ABC123DEF456:x@api.wawp.net")) == shown


def test_configuration_toml_example_builds_a_router_in_its_failover_order() -> None:
    section = _section(CONFIGURATION)
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    env = {"GOWA_PASSWORD": "pw", "WUTS_TOKEN": "w"}
    config = wamsg.load_config(toml, env=env)
    assert config.failover == ("primary", "backup")
    router = wamsg.Router.from_config(config)
    assert [c.provider for c in router.clients] == ["gowa", "wuts"]
    assert router.retry.attempts == 3
    assert router.clients[1].limits == wamsg.Limits(rate=20, burst=5)
    (usage,) = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "from_config" in b]
    assert 'wamsg.Router.from_config("wamsg.toml")' in usage
