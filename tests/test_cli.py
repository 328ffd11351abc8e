"""The `wamsg` command, run as real subprocesses against a real sandbox process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from wamsg.testing import MEDIA as KIT_MEDIA

TINY_PNG = KIT_MEDIA / "tiny.png"
PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TOKEN_LIKE = "tok-S3CRET-4242"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")} | {
        "PYTHONWARNINGS": "error"
    }
    return subprocess.run(
        [sys.executable, "-m", "wamsg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env | (env or {}),
        check=False,
    )


class Running:
    """A `wamsg sandbox` process and what it printed on start."""

    def __init__(self, process: subprocess.Popen[str], banner: str) -> None:
        self.process = process
        self.banner = banner
        found = re.search(r"gateway on (http://127\.0\.0\.1:\d+)", banner)
        assert found, banner
        self.base_url = found.group(1)

    def env(self, provider: str) -> dict[str, str]:
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/providers") as r:
            listed = json.load(r)["providers"]
        creds = next(p["credentials"] for p in listed if p["name"] == provider)
        return {"WAMSG_PROVIDER": provider} | {f"WAMSG_{k.upper()}": v for k, v in creds.items()}

    def messages(self) -> list[dict[str, object]]:
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/messages") as r:
            found: list[dict[str, object]] = json.load(r)["messages"]
        return found

    def add_fault(self, rule: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox/faults", data=json.dumps(rule).encode(), method="POST"
        )
        with urllib.request.urlopen(request) as r:
            assert r.status == 201


def start_sandbox(*args: str, module: str = "wamsg") -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", module, *([] if module != "wamsg" else ["sandbox"]), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C to stop"):
            break
    return Running(process, "".join(lines))


def stop(running: Running) -> tuple[int, str, str]:
    running.process.send_signal(signal.SIGINT)
    out, err = running.process.communicate(timeout=20)
    return running.process.returncode, out, err


@pytest.fixture(scope="module")
def serve_cli() -> Iterator[str]:
    """A hostile WUTS-like server: answers with newlines and terminal escapes."""
    script = (
        "import sys\n"
        "from aiohttp import web\n"
        "async def h(r):\n"
        "    if b'error' in await r.read():\n"
        "        return web.json_response({'success': False, 'error_code': 'X',\n"
        "            'error': 'bad\\nwamsg: FAKE LINE\\x1b[2J\\x1b]0;title\\x07'}, status=400)\n"
        "    return web.json_response({'success': True, 'status': 'sent',\n"
        "        'message_id': '3EB0\\nFAKE  sent\\x1b[31m'})\n"
        "app = web.Application(); app.router.add_post('/send/text', h)\n"
        "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)\n"
    )
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", script, str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Running]:
    running = start_sandbox("--port", "0", "--seed", "5")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            stop(running)


def test_demo_sends_through_every_provider_and_prints_a_table() -> None:
    done = run("demo", "--seed", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("sandbox gateway listening on http://127.0.0.1:") for line in lines)
    rows = [line.split() for line in lines if line.split()[:1] and line.split()[0] in PROVIDERS]
    assert [(row[0], row[1]) for row in rows] == [
        (p, kind) for p in PROVIDERS for kind in ("text", "image")
    ]
    assert all(row[3] in ("queued", "sent", "pending") for row in rows), done.stdout
    assert "5511999990000" not in done.stdout  # numbers are masked in output
    assert "the sandbox outbox holds 8 message(s)" in done.stdout
    assert done.stderr == ""


def test_providers_lists_capabilities_and_settings() -> None:
    done = run("providers")
    assert done.returncode == 0
    table = {line.split()[0]: line for line in done.stdout.splitlines()[2:] if line.strip()}
    assert set(PROVIDERS) <= set(table)
    assert "access_token*" in table["wawp"]
    assert "token*" in table["wuts"]
    assert "upload" in table["gowa"]
    assert "base64" in table["waha"]


def test_sandbox_banner_shows_base_url_and_every_providers_settings(sandbox: Running) -> None:
    for provider in PROVIDERS:
        assert f"base_url={sandbox.base_url}/{provider}" in sandbox.banner
    assert "web inbox" in sandbox.banner


@pytest.mark.parametrize("provider", PROVIDERS)
def test_send_text_and_image_through_the_sandbox_process(sandbox: Running, provider: str) -> None:
    env = sandbox.env(provider)
    text = run("send-text", "+55 11 99999-0000", f"cli to {provider}", "--json", env=env)
    assert text.returncode == 0, text.stderr
    result = json.loads(text.stdout)
    image_source = "https://example.com/cat.png" if provider == "wawp" else str(TINY_PNG)
    image = run("send-image", "+5511999990000", image_source, "--caption", "cli pic", env=env)
    assert image.returncode == 0, image.stderr
    assert image.stdout.splitlines()[0].split() == ["provider", "message", "id", "status"]
    assert "5511999990000" not in image.stdout
    mine = [m for m in sandbox.messages() if m["provider"] == provider][-2:]
    assert mine[0]["text"] == f"cli to {provider}"
    assert "5511999990000" not in text.stdout
    assert str(mine[0]["message_id"]).endswith(result["short_id"])
    assert mine[1]["caption"] == "cli pic"
    if provider != "wawp":
        assert mine[1]["image_size"] == TINY_PNG.stat().st_size


def test_settings_come_from_flags_over_environment(sandbox: Running) -> None:
    env = sandbox.env("wuts")
    token = env.pop("WAMSG_TOKEN")
    done = run("send-text", "+5511999990000", "flags", "--set", f"token={token}", env=env)
    assert done.returncode == 0, done.stderr
    wrong = run("send-text", "+5511999990000", "x", "--set", f"token={TOKEN_LIKE}", env=env)
    assert wrong.returncode == 1


def _one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("wamsg: ")
    assert "Traceback" not in done.stderr
    return lines[0]


def test_refused_send_exits_1_with_one_line_and_no_secret(sandbox: Running) -> None:
    env = sandbox.env("wawp") | {"WAMSG_ACCESS_TOKEN": TOKEN_LIKE}
    done = run("send-text", "+5511999990000", "hi", env=env)
    assert done.returncode == 1
    line = _one_clear_line(done)
    assert "401" in line
    assert TOKEN_LIKE not in done.stderr


def test_unknown_outcome_exits_3(sandbox: Running) -> None:
    sandbox.add_fault({"kind": "drop", "provider": "gowa"})
    done = run("send-text", "+5511999990000", "dropped", env=sandbox.env("gowa"))
    assert done.returncode == 3
    assert "check before sending again" in _one_clear_line(done)
    assert any(m.get("text") == "dropped" for m in sandbox.messages())  # the gateway has it


def _texts(sandbox: Running, provider: str) -> list[object]:
    return [m.get("text") for m in sandbox.messages() if m["provider"] == provider]


def test_rate_limit_with_one_attempt_exits_1_and_says_when_to_retry(sandbox: Running) -> None:
    sandbox.add_fault({"kind": "rate_limit", "provider": "waha", "retry_after": 9})
    before = len(_texts(sandbox, "waha"))
    started = time.monotonic()
    done = run("send-text", "+5511999990000", "once", "--attempts", "1", env=sandbox.env("waha"))
    assert done.returncode == 1, done.stderr
    assert "retry after 9s" in _one_clear_line(done)
    assert time.monotonic() - started < 9  # not waited for
    assert len(_texts(sandbox, "waha")) == before


def test_no_retry_is_one_attempt(sandbox: Running) -> None:
    sandbox.add_fault({"kind": "rate_limit", "provider": "waha", "retry_after": 9})
    done = run("send-text", "+5511999990000", "once", "--no-retry", env=sandbox.env("waha"))
    assert done.returncode == 1, done.stderr
    assert "retry after 9s" in _one_clear_line(done)


def test_rate_limit_is_waited_for_by_default_and_sent_once(sandbox: Running) -> None:
    sandbox.add_fault({"kind": "rate_limit", "provider": "waha", "retry_after": 1})
    before = _texts(sandbox, "waha")
    started = time.monotonic()
    done = run("send-text", "+5511999990000", "after a wait", env=sandbox.env("waha"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert time.monotonic() - started >= 1.0  # the gateway's Retry-After was honoured
    assert _texts(sandbox, "waha") == [*before, "after a wait"]  # exactly one more


def test_rate_limit_longer_than_the_timeout_is_not_waited_for(sandbox: Running) -> None:
    sandbox.add_fault({"kind": "rate_limit", "provider": "waha", "retry_after": 9})
    before = len(_texts(sandbox, "waha"))
    started = time.monotonic()
    done = run("send-text", "+5511999990000", "late", "--timeout", "3", env=sandbox.env("waha"))
    assert done.returncode == 1, done.stderr
    assert "retry after 9s" in _one_clear_line(done)
    assert time.monotonic() - started < 9
    assert len(_texts(sandbox, "waha")) == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--attempts", "0"), "attempts must be a whole number 1-100"),
        (("--attempts", "x"), "attempts must be a whole number 1-100"),
        (("--attempts", "2", "--no-retry"), "not allowed with argument"),
    ],
)
def test_bad_retry_options_are_usage_errors(args: tuple[str, ...], says: str) -> None:
    done = run("send-text", "+5511999990000", "hi", "--provider", "wuts", *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "usage:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("send-text", "+55", "hi"), {"WAMSG_PROVIDER": "wuts", "WAMSG_TOKEN": "t"}, "phone"),
        (("send-text", "+5511999990000", "hi"), {}, "no provider"),
        (("send-text", "+5511999990000", "hi", "--provider", "nosuch"), {}, "unknown provider"),
        (("send-text", "+5511999990000", "hi", "--provider", "wuts"), {}, "token"),
        (
            ("send-text", "+5511999990000", "hi", "--provider", "wuts", "--set", "colour=red"),
            {},
            "unknown setting 'colour'",
        ),
        (
            ("send-text", "+5511999990000", "hi", "--provider", "wuts", "--set", TOKEN_LIKE),
            {},
            "KEY=VALUE",
        ),
        (
            ("send-image", "+5511999990000", "/no/such.png", "--provider", "wuts"),
            {"WAMSG_TOKEN": TOKEN_LIKE},
            "no such image file",
        ),
        (
            ("send-image", "+5511999990000", "https://e.com/a.gif", "--provider", "wawp"),
            {"WAMSG_INSTANCE_ID": "i", "WAMSG_ACCESS_TOKEN": TOKEN_LIKE},
            "image/gif",
        ),
        (
            ("send-text", "+5511999990000", "hi", "--provider", "waha"),
            {"WAMSG_BASE_URL": "http://127.0.0.1:9", "WAMSG_API_KEY": "SEC\nRET"},
            "api_key must be one word",
        ),
        (("sandbox", "--fault", "gowa:melt"), {}, "KIND one of"),
        (("sandbox", "--fault", "nosuch:auth"), {}, "no sandbox provider"),
    ],
)
def test_bad_input_exits_2_before_any_io(
    args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    done = run(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert says in _one_clear_line(done)
    assert TOKEN_LIKE not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--debug", "send-text", "+5511999990000", "hi"),
        ("send-text", "--debug", "+5511999990000", "hi"),
    ],
)
def test_debug_shows_the_traceback(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert "ConfigError" in done.stderr


@pytest.mark.parametrize(
    "args", [("--max-messages", "0"), ("--max-messages", "-5"), ("--host", ""), ("--port", "x")]
)
def test_bad_sandbox_options_are_usage_errors(args: tuple[str, ...]) -> None:
    done = run("sandbox", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "usage:" in done.stderr


def test_gateway_text_cannot_forge_lines_or_escape_sequences(serve_cli: str) -> None:
    env = {"WAMSG_PROVIDER": "wuts", "WAMSG_TOKEN": "t", "WAMSG_BASE_URL": serve_cli}
    refused = run("send-text", "+5511999990000", "error", env=env)
    assert refused.returncode == 1
    line = _one_clear_line(refused)
    assert "\x1b" not in line
    assert "FAKE" in line  # shown, but on the one line
    sent = run("send-text", "+5511999990000", "ok", env=env)
    assert sent.returncode == 0
    rows = sent.stdout.splitlines()
    assert len(rows) == 3, sent.stdout
    assert "\x1b" not in sent.stdout
    assert "\\x1b" in rows[2]  # escaped, visible


def test_busy_port_is_a_clear_error(sandbox: Running) -> None:
    port = sandbox.base_url.rsplit(":", 1)[1]
    done = run("sandbox", "--port", port)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in _one_clear_line(done)


def test_python_m_wamsg_sandbox_with_faults_stops_cleanly_on_ctrl_c() -> None:
    running = start_sandbox(
        "--port", "0", "--fault", "wawp:rate_limit:retry_after=2,times=3", module="wamsg.sandbox"
    )
    try:
        assert "fault: wawp:rate_limit:times=3,retry_after=2" in running.banner
        env = running.env("wawp")
        # One attempt meets the first of the three 429s. (By default the
        # client would wait them out, about 6 s, and send on the fourth try.)
        done = run("send-text", "+5511999990000", "hi", "--attempts", "1", env=env)
        assert done.returncode == 1
        assert "retry after 2s" in _one_clear_line(done)
        assert running.messages() == []
    finally:
        code, out, err = stop(running)
    assert code == 0, err
    assert "sandbox stopped" in out
    assert err == ""


def test_version_and_usage_errors() -> None:
    assert run("--version").stdout.startswith("wamsg ")
    bad = run("no-such-command")
    assert bad.returncode == 2
    assert "usage:" in bad.stderr
    helped = run("--help")
    assert "outcome unknown" in helped.stdout


# -- configuration by DSN and file (docs/configuration.md) ----------------------


def _banner_dsn(sandbox: Running, provider: str) -> str:
    """The DSN `wamsg sandbox` prints for ``provider``."""
    return next(
        line.strip()
        for line in sandbox.banner.splitlines()
        if line.strip().startswith(f"{provider}+http://")
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_send_with_dsn_flag_or_wamsg_dsn(sandbox: Running, provider: str) -> None:
    dsn = _banner_dsn(sandbox, provider)
    assert f"@{sandbox.base_url.removeprefix('http://')}/{provider}" in dsn
    by_flag = run("send-text", "+5511999990000", f"dsn flag {provider}", "--dsn", dsn)
    assert by_flag.returncode == 0, by_flag.stderr
    # WAMSG_DSN wins over WAMSG_PROVIDER and its settings.
    env = {"WAMSG_DSN": dsn, "WAMSG_PROVIDER": "nosuch"}
    by_env = run("send-text", "+5511999990000", f"dsn env {provider}", "--json", env=env)
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["provider"] == provider
    mine = [m.get("text") for m in sandbox.messages() if m["provider"] == provider][-2:]
    assert mine == [f"dsn flag {provider}", f"dsn env {provider}"]


def test_provider_flag_wins_over_wamsg_dsn(sandbox: Running) -> None:
    env = sandbox.env("wuts") | {"WAMSG_DSN": "gowa+http://127.0.0.1:9"}
    done = run("send-text", "+5511999990000", "flag wins", "--provider", "wuts", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "wuts"


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("--dsn", f"wuts://{TOKEN_LIKE}@h", "--provider", "wuts"), {}, "--dsn holds the provider"),
        (("--dsn", "wuts://t@h", "--set", "token=x"), {}, "--dsn holds the provider"),
        (("--dsn", f"wuts://{TOKEN_LIKE}/x@h"), {}, "--dsn: wuts: the DSN's user or password"),
        (("--dsn", f"wawp://{TOKEN_LIKE}@h"), {}, "--dsn: wawp: access_token is required"),
        (("--set", f"token={TOKEN_LIKE}"), {"WAMSG_DSN": "wuts://t@h"}, "--set goes with"),
        ((), {"WAMSG_DSN": f"nosuch://{TOKEN_LIKE}@h"}, "WAMSG_DSN: unknown provider 'nosuch'"),
        (("--provider", "wuts"), {}, "wuts: token is required: pass --set token=VALUE"),
        (("--config", "/no/such.toml"), {}, "config file /no/such.toml not found"),
        (("--config", "x.toml", "--dsn", "wuts://t@h"), {}, "--config holds the providers"),
    ],
)
def test_bad_dsn_and_config_usage_exits_2(
    args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    done = run("send-text", "+5511999990000", "hi", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert says in _one_clear_line(done)
    assert TOKEN_LIKE not in done.stderr


def test_send_through_a_config_file_fails_over(sandbox: Running, tmp_path: Path) -> None:
    config = tmp_path / "wamsg.toml"
    config.write_text(
        'failover = ["down", "up"]\n'
        "[router]\nretry = { attempts = 2, base = 0 }\n"
        '[providers.down]\ndsn = "wuts+http://t@127.0.0.1:9"\n'  # connection refused
        f'[providers.up]\ndsn = "{_banner_dsn(sandbox, "gowa")}"\n'
    )
    done = run("send-text", "+5511999990000", "via the file", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "gowa"
    last = [m.get("text") for m in sandbox.messages() if m["provider"] == "gowa"][-1]
    assert last == "via the file"
    # --attempts overrides the file's retry: one attempt meets only the closed port.
    once = run("send-text", "+5511999990000", "x", "--config", str(config), "--attempts", "1")
    assert once.returncode == 1
    assert "could not connect" in _one_clear_line(once)


def test_providers_lists_each_dsn_form() -> None:
    done = run("providers")
    assert done.returncode == 0
    assert "wawp://INSTANCE_ID:ACCESS_TOKEN@api.wawp.net" in done.stdout
    assert "wuts://TOKEN@api.wuts.com.br" in done.stdout
    assert "gowa[+http]://[USERNAME:PASSWORD@]HOST[:PORT][/PATH][?device_id=DEVICE_ID]" in (
        done.stdout
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--set", "SeCrEt42xyzAbC==", "+5511999990000", "hi"), {"WAMSG_PROVIDER": "wuts"}),
        (
            ("+5511999990000", "hi"),
            {"WAMSG_PROVIDER": "waha", "WAMSG_BASE_URL": "http://[SeCrEt42xyzAbC]"},
        ),
    ],
)
def test_a_token_in_the_wrong_place_is_not_echoed(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    done = run("send-text", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert "SeCrEt42xyz" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("command", "code"), [("providers", 1), ("send-text", 3)])
def test_an_unexpected_error_prints_its_type_only(
    command: str, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wamsg import cli

    def boom(*_: object) -> int:
        raise RuntimeError("token=SeCrEt42 to +5511999990000")

    monkeypatch.setattr(cli, "_providers", boom)
    monkeypatch.setattr(cli, "_send", boom)
    argv = [command] if command == "providers" else [
        command, "--provider", "wawp", "+5511999990000", "hi",
    ]  # fmt: skip
    assert cli.main(argv) == code  # a send may have gone out: unknown (3)
    err = capsys.readouterr().err
    assert "RuntimeError" in err
    assert "SeCrEt42" not in err
    assert "999990000" not in err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", *argv])
