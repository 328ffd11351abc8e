"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from redis_server import redis_server, redis_session_server, redis_url

from wamsg.sandbox import Sandbox, running_sandbox

# The real redis-server fixtures (tests/redis_server.py): redis_url (shared,
# emptied per test) and redis_server (a test's own, to stop and start).
__all__ = ["redis_server", "redis_session_server", "redis_url"]

# The example third-party provider package has its own test suite, run by
# tests/test_example_provider.py as its users would run it (a separate pytest).
collect_ignore = ["example_provider"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start aiohttp.web servers on 127.0.0.1; ``await serve(handler)`` gives the base URL.

    The handler gets every method and path unless ``method=`` / ``path=``
    narrow the route. Bodies up to 64 MiB are accepted (uploads).
    """
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, *, method: str = "*", path: str = "/{tail:.*}") -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route(method, path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio unless a module asks for more (trio)."""
    return "asyncio"


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Sandbox, str]]:
    """The sandbox gateway served on 127.0.0.1, seeded; yields it and its base URL."""
    async with running_sandbox(seed=1) as running:
        yield running
