"""docs/scaling.md's deployment runs as written: a web process enqueues, workers send once.

The blocks are taken from the page unchanged and run against a real
redis-server and the sandbox, both on 127.0.0.1: the web process (its
aiohttp app, served) queues the same order twice; two ``wamsg worker``
processes (the page's command line) or the page's ``worker.py`` (started as
a process and stopped with SIGTERM, as a service manager would) send it
once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import anyio
import pytest
from aiohttp import ClientSession, web

from wamsg.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"

ORDERS = [
    {"id": 1042, "phone": "+55 11 99999-1042"},
    {"id": 1042, "phone": "+55 11 99999-1042"},  # the handler ran twice
    {"id": 1043, "phone": "+55 11 99999-1043"},
]
SHIPPED = {"Order 1042 has shipped", "Order 1043 has shipped"}


def _block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    (found,) = [b for b in blocks if b.startswith(marker)]
    return found


def _worker_command() -> list[str]:
    (line,) = re.findall(r"^wamsg worker .*$", DOC.read_text(), re.M)
    return shlex.split(line)[1:]


def _load(path: Path, code: str) -> ModuleType:
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Sandbox, str]]:
    async with running_sandbox(seed=4) as running:
        yield running


async def _enqueue_orders(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the page's web.py on 127.0.0.1 and post the orders to it."""
    monkeypatch.setenv("WAMSG_REDIS_URL", redis_url)
    web_py = _load(tmp_path / "web.py", _block("# web.py"))
    runner = web.AppRunner(web_py.create_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ClientSession() as http:
            for order in ORDERS:
                async with http.post(
                    f"http://127.0.0.1:{port}/orders/shipped", json=order
                ) as answer:
                    assert answer.status == 202
                    assert (await answer.json())["queued"]
            # A bad number is refused before Redis is asked: a 500 here, the
            # handler's to turn into a 400 (the page says so).
            async with http.post(
                f"http://127.0.0.1:{port}/orders/shipped", json={"id": 1, "phone": "12"}
            ) as answer:
                assert answer.status == 500
    finally:
        await runner.cleanup()


async def _until(done: Callable[[], bool], limit: float) -> None:
    """Poll ``done`` (a subprocess, the sandbox's outbox) until it is true."""
    with anyio.fail_after(limit):
        while not done():  # noqa: ASYNC110 - nothing here can set an event
            await anyio.sleep(0.05)


async def _texts_after(box: Sandbox, count: int, limit: float = 30.0) -> list[str]:
    await _until(lambda: len(box.outbox) >= count, limit)
    await anyio.sleep(0.3)  # a duplicate would arrive now
    return [message.text or "" for message in box.outbox]


async def test_the_web_process_and_two_worker_commands(
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    gateway: tuple[Sandbox, str],
) -> None:
    box, base_url = gateway
    await _enqueue_orders(tmp_path, redis_url, monkeypatch)
    env = {
        **os.environ,
        "WAMSG_REDIS_URL": redis_url,
        "WAMSG_DSN": box.dsn("wawp", base_url),
    }
    command = [sys.executable, "-m", "wamsg", *_worker_command(), "--exit-when-idle", "1"]
    command += ["--json"]
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 - waited for without blocking below
            [*command, "--consumer", f"doc-worker-{n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    await _until(lambda: all(w.poll() is not None for w in workers), 60)
    summaries = []
    for worker in workers:
        out, err = worker.communicate()
        assert worker.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
        assert "PASSWORD" not in err
    texts = [message.text for message in box.outbox]
    assert sorted(texts) == sorted(SHIPPED)  # the order queued twice went out once
    assert sum(s["sent"] for s in summaries) == 2
    assert sum(s["seen"] for s in summaries) == 3


async def test_the_worker_py_service_stops_on_sigterm(
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    gateway: tuple[Sandbox, str],
) -> None:
    box, base_url = gateway
    await _enqueue_orders(tmp_path, redis_url, monkeypatch)
    script = tmp_path / "worker.py"
    script.write_text(_block("# worker.py"))
    env = {**os.environ, "WAMSG_REDIS_URL": redis_url, "WAMSG_DSN": box.dsn("wawp", base_url)}
    service = subprocess.Popen(  # noqa: ASYNC220 - waited for without blocking below
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        texts = await _texts_after(box, 2)
        assert sorted(texts) == sorted(SHIPPED)
        service.send_signal(signal.SIGTERM)
        started = time.monotonic()
        await _until(lambda: service.poll() is not None, 30)
        out, err = service.communicate()
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, err
    assert time.monotonic() - started < 30
    # The summary it prints: two sent, the second enqueue of order 1042 replayed.
    assert "sent=2" in out, out
    assert "seen=3" in out, out
    assert len(box.outbox) == 2
