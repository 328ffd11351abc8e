"""A real ``redis-server`` on 127.0.0.1 for the tests (Debian's package).

Each server runs in its own temporary directory with persistence off and
starts in about 15 ms (../shared/docs/scaleout.md §1.1); the server itself
is :class:`wamsg.testing.scaleout.RedisServer`. Without the binary the tests
skip, except under CI (``CI=true``), where ``.ci/run`` installs it and a
missing server is a failure, not a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from wamsg.testing.scaleout import RedisServer, redis_binary


def _server() -> RedisServer:
    """A started server, or skip (fail under CI) when the binary is missing."""
    if redis_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing; .ci/run installs Debian's redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return RedisServer()


@pytest.fixture(scope="session")
def redis_session_server() -> Iterator[RedisServer]:
    """One server for the whole session (use ``redis_url``, which empties it per test)."""
    server = _server()
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
    server = _server()
    yield server
    server.close()
