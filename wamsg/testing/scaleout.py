"""What multi-worker tests need: a ``redis-server`` of their own and a timed sandbox.

Used by wamsg's scale-out proof and benchmark, and usable in yours to test
workers built on ``wamsg.redis`` with no account and no internet:

- :class:`RedisServer` starts Debian's (or any) ``redis-server`` binary on
  127.0.0.1 in a temporary directory, persistence off, in about 15 ms;
  :meth:`~RedisServer.stop` and :meth:`~RedisServer.start` it again on the
  same port to test an outage;
- :func:`timed_gateway` serves a :class:`~wamsg.sandbox.Sandbox` on
  127.0.0.1 and records when each send request arrived and how many were
  inside the gateway at once, for checks such as "never more than rate +
  burst in any second" (:func:`max_in_window`).

Nothing here imports redis-py: the server is spoken to with two raw
commands (``PING``, ``FLUSHALL``).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web

from ..sandbox import Sandbox, build_app

__all__ = ["GatewayLog", "RedisServer", "max_in_window", "redis_binary", "timed_gateway"]


def redis_binary() -> str | None:
    """The ``redis-server`` on ``PATH``, or None (``apt-get install redis-server``)."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _command(port: int, command: bytes, expect: bytes, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(command + b"\r\n")
            return conn.recv(16).startswith(expect)
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, started at once.

    ::

        with RedisServer() as server:
            redis = wamsg.redis.connect(server.url)

    Raises:
        FileNotFoundError: no ``redis-server`` binary (see :func:`redis_binary`).
        RuntimeError: it did not start within 10 s (the end of its log is shown).
    """

    def __init__(self, binary: str | None = None) -> None:
        found = binary or redis_binary()
        if found is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.binary = found
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="wamsg-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer(127.0.0.1:{self.port}, {state})"

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        log = Path(self._dir.name) / "redis.log"
        self.process = subprocess.Popen(  # noqa: S603 - our own argument list
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self._dir.name, "--save", "", "--appendonly", "no",
             "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        limit = time.monotonic() + 10
        while not _command(self.port, b"PING", b"+PONG"):
            if self.process.poll() is not None or time.monotonic() > limit:
                text = log.read_text() if log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start: {text[-2000:]}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Kill the server (an outage, as abrupt as a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def flush(self) -> None:
        """Empty every database (between tests sharing one server)."""
        if not _command(self.port, b"FLUSHALL", b"+OK", timeout=2):
            raise RuntimeError("redis-server did not answer FLUSHALL")

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._dir.cleanup()


class GatewayLog:
    """What a :func:`timed_gateway` saw: send requests' arrivals and sends in flight."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.base_url = ""
        self.arrivals: list[float] = []
        """When each send request arrived (:func:`time.monotonic`)."""
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most send requests inside the gateway at once."""

    def __repr__(self) -> str:
        return f"GatewayLog({len(self.arrivals)} requests, peak in flight {self.peak_in_flight})"


@contextlib.asynccontextmanager
async def timed_gateway(box: Sandbox, provider: str) -> AsyncIterator[GatewayLog]:
    """Serve ``box`` on 127.0.0.1, timing every request to ``provider``'s send endpoints.

    Sets ``box.base_url`` while it is served (its credentials and DSNs point
    there); yields the :class:`GatewayLog`.
    """
    gateway = GatewayLog(box)
    prefix = f"/{provider}/send/"

    @web.middleware
    async def watch(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        gateway.arrivals.append(time.monotonic())
        gateway.in_flight += 1
        gateway.peak_in_flight = max(gateway.peak_in_flight, gateway.in_flight)
        try:
            return await handler(request)
        finally:
            gateway.in_flight -= 1

    app = build_app(box)
    app.middlewares.append(watch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        gateway.base_url = box.base_url = f"http://127.0.0.1:{port}"
        yield gateway
    finally:
        box.base_url = None
        await runner.cleanup()


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most of ``times`` inside any half-open interval of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
