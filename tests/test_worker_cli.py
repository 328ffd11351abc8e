"""``wamsg worker``, run as a real subprocess against a real redis-server and the sandbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from wamsg import Text
from wamsg._worker_cli import consumer_name, mask_url
from wamsg.sandbox import Sandbox

PHONE = "+55 11 98765-4321"
PHONE_DIGITS = "5511987654321"


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMSG_")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "wamsg", "worker", *args],
        capture_output=True,
        text=True,
        env=worker_env() if env is None else env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


async def acli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a subprocess while this event loop keeps serving the sandbox."""
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-m", "wamsg", "worker", *args], env=env, check=False
        )


async def wait_until(done: Callable[[], bool], timeout: float) -> None:
    with anyio.fail_after(timeout):
        while True:
            if done():
                return
            await anyio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


OFFLINE_DSN = Sandbox().dsn("gowa", "http://127.0.0.1:9/gowa")


# -- without Redis ------------------------------------------------------------------


def test_help_lists_the_options() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for option in (
        "--redis",
        "--queue",
        "--consumer",
        "--concurrency",
        "--dsn",
        "--config",
        "--rate",
        "--burst",
        "--max-in-flight",
        "--timeout",
        "--lease-policy",
        "--dedupe-namespace",
        "--reclaim-after",
        "--max-deliveries",
        "--exit-when-idle",
        "--progress",
        "--stats",
        "--json",
    ):
        assert option in done.stdout
    assert "at-least-once" in done.stdout


def test_the_command_line_does_not_import_redis() -> None:
    code = (
        "import sys, wamsg.cli; wamsg.cli._parser(); "
        "assert 'redis' not in sys.modules and 'wamsg.redis' not in sys.modules, 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_masks_the_redis_password() -> None:
    assert mask_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask_url("redis://app:s3cret@db:6379/2") == "redis://app:***@db:6379/2"
    assert mask_url("rediss://tok@db/0") == "rediss://***@db/0"
    assert mask_url("redis://db:6379/0?password=s3cret&x=1") == "redis://db:6379/0?password=***&x=1"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    # A password typed without percent-encoding: '#', '/', '?' and '@' in it
    # would otherwise be read as fragment, path or query, and shown.
    assert mask_url("redis://:pa#ss@db:6379/0") == "redis://:***@db:6379/0"
    assert mask_url("redis://app:se/cret@db:1/0") == "redis://app:***@db:1/0"
    assert mask_url("redis://:sec?ret@db/0") == "redis://:***@db/0"
    assert mask_url("redis://app:p@ss@db/0") == "redis://app:***@db/0"
    assert mask_url("redis://db/0?auth_token=s3cret") == "redis://db/0?auth_token=***"
    assert mask_url("no scheme at all") == "<redis url>"
    assert consumer_name("host.example", 42) == "host.example-42"
    assert consumer_name("bad host{1}", 7) == "bad-host-1--7"


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--dsn", OFFLINE_DSN], {}, "no Redis: pass --redis URL or set WAMSG_REDIS_URL"),
        (["--redis", "http://:pw@127.0.0.1/0", "--dsn", OFFLINE_DSN], {}, "--redis must be"),
        (["--redis", "redis://127.0.0.1:9/0"], {}, "no provider"),
        (["--dsn", OFFLINE_DSN, "--burst", "5"], {}, "--burst goes with --rate"),
        (["--dsn", OFFLINE_DSN, "--queue", "a b"], {}, "--queue must be"),
        (["--dsn", OFFLINE_DSN, "--queue", "{q}"], {}, "--queue must be"),
        (["--dsn", OFFLINE_DSN, "--config", "wamsg.toml"], {}, "--config holds the providers"),
        (["--dsn", "nosuch://x@y"], {}, "--dsn"),
        (["--stats", "--json"], {}, "--stats prints the queue's state"),
        (["--provider", "gowa"], {}, "gowa: base_url is required"),
    ],
)
def test_config_errors_exit_2_with_one_line(
    args: list[str], env: dict[str, str], says: str
) -> None:
    base = {"WAMSG_REDIS_URL": "redis://127.0.0.1:9/0"} if "--redis" not in args else {}
    if says.startswith("no Redis"):
        base = {}
    done = cli(*args, env=worker_env(**base, **env))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("wamsg: "), lines[0]
    assert says in lines[0], lines[0]
    assert "pw@" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [["--rate", "0"], ["--concurrency", "0"], ["--lease-policy", "maybe"], ["--timeout", "-1"]],
)
def test_bad_values_are_usage_errors(args: list[str]) -> None:
    done = cli("--dsn", OFFLINE_DSN, *args, env=worker_env(WAMSG_REDIS_URL="redis://x/0"))
    assert done.returncode == 2
    assert "usage: wamsg worker" in done.stderr


def test_redis_unreachable_is_one_line_exit_1_without_the_password() -> None:
    url = f"redis://:hunter2-SeCrEt@127.0.0.1:{free_port()}/0"
    done = cli("--dsn", OFFLINE_DSN, env=worker_env(WAMSG_REDIS_URL=url))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("wamsg: cannot reach Redis at redis://:***@127.0.0.1:")
    assert "hunter2" not in done.stderr + done.stdout


def test_stats_with_redis_unreachable_exits_1() -> None:
    done = cli("--stats", "--redis", f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert "cannot reach Redis" in done.stderr


# -- with Redis and the sandbox -------------------------------------------------------


@pytest.fixture
async def outbox(redis_url: str) -> AsyncIterator[Any]:
    from wamsg.redis._base import connect
    from wamsg.redis.outbox import RedisOutbox

    redis = connect(redis_url)
    try:
        yield RedisOutbox(redis, "cli", reclaim_after=1.0)
    finally:
        await redis.aclose()


def texts(box: Sandbox) -> list[str]:
    return sorted(m.text or "" for m in box.outbox)


async def put_all(outbox: Any, items: Sequence[tuple[str, Text]]) -> None:
    for key, message in items:
        await outbox.put(message, key=key)


def messages(count: int, prefix: str = "m") -> list[tuple[str, Text]]:
    return [(f"{prefix}{i}", Text(to=PHONE, text=f"{prefix} number {i}")) for i in range(count)]


@pytest.mark.anyio
async def test_stats_show_the_queue_and_masked_entries(redis_url: str, outbox: Any) -> None:
    await put_all(outbox, messages(4, "s"))
    taken = []
    async for item in outbox.consume("tester", batch=4, block=0.2):
        taken.append(item)
        if len(taken) == 3:
            break
    await taken[0].dead("rejected by the test")
    await taken[1].unknown("timed out in the test")
    await taken[2].ack()

    done = await acli("--stats", "--queue", "cli", env=worker_env(WAMSG_REDIS_URL=redis_url))
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert f"queue cli at {redis_url}" in out
    for word in ("length", "pending", "dead", "unknown", "consumers"):
        assert word in out, out
    assert "newest dead entries" in out
    assert "newest unknown entries" in out
    assert "key=s0" in out
    assert "key=s1" in out
    assert "rejected by the test" in out
    assert "timed out in the test" in out
    assert PHONE_DIGITS not in out.replace(" ", "").replace("-", ""), out


@pytest.mark.anyio
async def test_json_summary_after_the_queue_is_drained(
    redis_url: str, outbox: Any, sandbox: tuple[Sandbox, str]
) -> None:
    box, _ = sandbox
    await put_all(outbox, [*messages(5), ("m2", Text(to=PHONE, text="m number 2"))])
    env = worker_env(WAMSG_REDIS_URL=redis_url, WAMSG_DSN=box.dsn("gowa"))
    done = await acli(
        "--queue", "cli", "--exit-when-idle", "1", "--json", "--consumer", "solo", env=env
    )
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert summary["sent"] == 5
    assert summary["replayed"] == 1
    assert summary["unknown"] == summary["dead"] == 0
    assert summary["consumer"] == "solo"
    assert texts(box) == sorted(f"m number {i}" for i in range(5))
    stats = await outbox.stats()
    assert stats.length == 0
    assert stats.pending == 0


@pytest.mark.anyio
async def test_config_file_sends_through_a_router(
    redis_url: str, outbox: Any, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    box, _ = sandbox
    config = tmp_path / "wamsg.toml"
    config.write_text(
        f'[providers.main]\ndsn = "{box.dsn("wuts")}"\n\n'
        f"[providers.main.client]\nlimits = {{ rate = 50, burst = 5 }}\n\n"
        f'[providers.spare]\ndsn = "{box.dsn("gowa")}"\n'
    )
    await put_all(outbox, messages(3, "c"))
    env = worker_env(WAMSG_REDIS_URL=redis_url)
    done = await acli(
        "--queue", "cli", "--config", str(config), "--exit-when-idle", "1", "--json", env=env
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout.decode().splitlines()[-1])["sent"] == 3
    assert {m.provider for m in box.outbox} == {"wuts"}


@pytest.mark.anyio
async def test_sigterm_finishes_in_flight_sends_and_exits_0(
    redis_url: str, outbox: Any, sandbox: tuple[Sandbox, str]
) -> None:
    box, _ = sandbox
    total = 300
    await put_all(outbox, messages(total, "t"))
    env = worker_env(WAMSG_REDIS_URL=redis_url, WAMSG_DSN=box.dsn("gowa"))
    args = ["--queue", "cli", "--rate", "20", "--burst", "2", "--progress", "--json"]
    async with await anyio.open_process(
        [sys.executable, "-m", "wamsg", "worker", *args], env=env
    ) as process:
        # Well over a second of sending: past the first --progress line.
        await wait_until(lambda: len(box.outbox) >= 30, 30)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        assert process.stderr is not None
        out = err = b""
        with anyio.fail_after(15):
            async for chunk in process.stdout:
                out += chunk
            async for chunk in process.stderr:
                err += chunk
            code = await process.wait()
    stopped_in = time.monotonic() - signalled
    assert code == 0, err.decode()
    assert stopped_in < 10
    summary = json.loads(out.decode().strip().splitlines()[-1])
    stored = len(box.outbox)
    # Every send it started finished and was counted; the rest is still queued.
    assert summary["sent"] == stored
    assert 30 <= stored < total
    stats = await outbox.stats()
    assert stats.length == total - stored
    # Entries it had read but not started are given back (or, at worst,
    # handed out again after --reclaim-after): never counted, never lost.
    assert stats.pending <= 8
    text = err.decode()
    assert "stopping" in text
    assert "wamsg worker: sent " in text  # a --progress line
    assert "sent/s" in text

    # A second worker sends the rest, each message once.
    done = await acli(
        "--queue", "cli", "--reclaim-after", "1", "--exit-when-idle", "1", "--json", env=env
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout.decode().splitlines()[-1])["sent"] == total - stored
    assert texts(box) == sorted(f"t number {i}" for i in range(total))
    stats = await outbox.stats()
    assert stats.length == stats.pending == 0
