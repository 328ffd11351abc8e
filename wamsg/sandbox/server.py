"""The sandbox's HTTP shell: a thin aiohttp.web app around the pure handlers.

Each provider lives under its own path prefix (``/wawp/...``), so one server
speaks every gateway's protocol without their paths colliding. The server
binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import msgspec
from aiohttp import web

from ..http import HttpRequest, HttpResponse
from .outbox import Outbox
from .wawp import WawpSandbox

__all__ = ["Sandbox", "SandboxHandler", "build_app", "running_sandbox"]

#: Largest request body the sandbox reads (gateways cap uploads too).
MAX_REQUEST_BYTES = 64 * 1024 * 1024


class SandboxHandler(Protocol):
    """A pure gateway: one request in, one response out."""

    provider: str

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request."""
        ...


class Sandbox:
    """Every sandbox gateway, sharing one outbox.

    Args:
        seed: makes message ids repeatable.
        max_messages: how many messages the outbox keeps.
    """

    def __init__(self, *, seed: int | None = None, max_messages: int = 1000) -> None:
        self.outbox = Outbox(max_messages)
        self.handlers: dict[str, SandboxHandler] = {
            "wawp": WawpSandbox(self.outbox, seed=seed),
        }

    def credentials(self, provider: str, base_url: str) -> dict[str, Any]:
        """The client settings that reach ``provider`` on a sandbox at ``base_url``."""
        if provider == "wawp":
            handler = self.handlers["wawp"]
            assert isinstance(handler, WawpSandbox)
            return {
                "base_url": f"{base_url}/wawp",
                "instance_id": handler.instance_id,
                "access_token": handler._token.decode(),
            }
        raise KeyError(provider)


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving ``sandbox``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)

    async def gateway(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        handler = sandbox.handlers.get(provider)
        if handler is None:
            raise web.HTTPNotFound(text=f"no sandbox provider {provider!r}")
        neutral = HttpRequest(
            method=request.method,
            url="/" + request.match_info["path"],
            query=tuple(request.query.items()),
            headers=tuple(request.headers.items()),
            body=await request.read(),
        )
        answer = handler.handle(neutral)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    async def messages(request: web.Request) -> web.Response:
        found = sandbox.outbox.find(
            provider=request.query.get("provider"), chat_id=request.query.get("chat")
        )
        return web.Response(
            body=msgspec.json.encode({"messages": found}), content_type="application/json"
        )

    async def clear(request: web.Request) -> web.Response:
        sandbox.outbox.clear()
        return web.Response(status=204)

    app.router.add_get("/_sandbox/messages", messages)
    app.router.add_delete("/_sandbox/messages", clear)
    app.router.add_route("*", "/{provider}/{path:.*}", gateway)
    return app


@asynccontextmanager
async def running_sandbox(
    *, host: str = "127.0.0.1", port: int = 0, seed: int | None = None
) -> AsyncIterator[tuple[Sandbox, str]]:
    """Run a sandbox in this event loop; yields it and its base URL."""
    sandbox = Sandbox(seed=seed)
    runner = web.AppRunner(build_app(sandbox), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets  # type: ignore[attr-defined]
        bound_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        yield sandbox, f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
