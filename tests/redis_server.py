"""A real ``redis-server`` on 127.0.0.1 for the tests (Debian's package).

Each server runs in its own temporary directory with persistence off and
starts in about 15 ms (../shared/docs/scaleout.md §1.1). Without the binary
the tests skip, except under CI (``CI=true``), where ``.ci/run`` installs it
and a missing server is a failure, not a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARY = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; :meth:`stop` and :meth:`start` it to test an outage."""

    def __init__(self) -> None:
        if BINARY is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is missing; .ci/run installs Debian's redis-server")
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="wamsg-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        assert BINARY is not None
        log = Path(self._dir.name) / "redis.log"
        self.process = subprocess.Popen(
            [
                BINARY,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                self._dir.name,
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        limit = time.monotonic() + 10
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > limit:
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(f"redis-server did not start: {text[-2000:]}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Kill the server (an outage, as abrupt as a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def flush(self) -> None:
        """Empty every database (between tests sharing the session's server)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            assert conn.recv(16).startswith(b"+OK")

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._dir.cleanup()


@pytest.fixture(scope="session")
def redis_session_server() -> Iterator[RedisServer]:
    """One server for the whole session (use ``redis_url``, which empties it per test)."""
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_session_server: RedisServer) -> str:
    """The URL of an empty Redis database on 127.0.0.1."""
    redis_session_server.flush()
    return redis_session_server.url


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, which it may stop and start (outages)."""
    server = RedisServer()
    yield server
    server.close()
