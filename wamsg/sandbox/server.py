"""The sandbox: every pure gateway, one outbox, faults, and the aiohttp.web shell.

Each provider lives under its own path prefix (``/wawp/...``, ``/waha/...``,
``/gowa/...``, ``/wuts/...``), so one server speaks every gateway's protocol
without their paths colliding. :meth:`Sandbox.dispatch` is pure: it picks
the fault (if any), runs the provider's handler and says what to answer; the
HTTP shell here and the socket-free transport in :mod:`wamsg.testing` only
carry that out. The server binds 127.0.0.1 unless told otherwise.

HTTP API besides the gateways (JSON):

* ``GET /`` the web inbox; ``GET /_sandbox/providers`` base URLs and credentials
* ``GET /_sandbox/messages?provider=&chat=&after=SEQ``, ``DELETE /_sandbox/messages``
* ``GET /_sandbox/messages/{seq}/image`` the uploaded image bytes
* ``GET|POST|DELETE /_sandbox/faults``, ``DELETE /_sandbox/faults/{id}``
* ``GET /_sandbox/requests`` the last requests the gateways saw, with their fate
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web

from ..http import HttpRequest, HttpResponse
from .base import GatewaySandbox
from .faults import Fault, FaultSet
from .gowa import GowaSandbox
from .outbox import Outbox
from .waha import WahaSandbox
from .wawp import WawpSandbox
from .wuts import WutsSandbox

__all__ = ["Reply", "RequestRecord", "Sandbox", "build_app", "running_sandbox"]

#: Largest request body the sandbox reads (the gateways' own caps are lower).
MAX_REQUEST_BYTES = 64 * 1024 * 1024

# Bodies larger than this are handled on a worker thread.
_INLINE_BODY_BYTES = 256 * 1024

_GATEWAYS: tuple[type[GatewaySandbox], ...] = (GowaSandbox, WahaSandbox, WawpSandbox, WutsSandbox)


class Reply(msgspec.Struct, frozen=True):
    """What to do with one gateway request.

    Attributes:
        response: the answer, or ``None`` to close the connection unanswered.
        delay: seconds to wait before answering (or closing).
    """

    response: HttpResponse | None
    delay: float = 0.0


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One request a sandbox gateway saw, and what became of it."""

    seq: int
    provider: str
    method: str
    path: str
    at: float
    status: int | None
    """The status answered; ``None`` when the connection was dropped."""
    fault: str | None = None
    stored: bool = False
    """Whether a message went to the outbox."""


class Sandbox:
    """Every sandbox gateway, sharing one outbox and one set of faults.

    Args:
        seed: makes message ids and probabilistic faults repeatable.
        max_messages: how many messages the outbox keeps.
        max_bytes: how many bytes of images and text the outbox keeps.
        clock: the time source (seconds since the epoch).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        max_messages: int = 1000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = Outbox(max_messages, max_bytes=max_bytes)
        self.faults = FaultSet(seed=seed)
        self.requests: deque[RequestRecord] = deque(maxlen=1000)
        self._request_seq = itertools.count(1)
        self._clock = clock
        #: Set while served by :func:`running_sandbox`.
        self.base_url: str | None = None
        self.handlers: dict[str, GatewaySandbox] = {
            gateway.provider: gateway(
                self.outbox,
                # Each gateway gets its own id sequence, repeatable by seed.
                seed=None if seed is None else f"{seed}:{gateway.provider}",
                clock=clock,
            )
            for gateway in _GATEWAYS
        }

    @property
    def providers(self) -> list[str]:
        """The provider names served, sorted."""
        return sorted(self.handlers)

    def credentials(self, provider: str, base_url: str | None = None) -> dict[str, Any]:
        """The client settings that reach ``provider`` on a sandbox at ``base_url``.

        ``base_url`` defaults to where this sandbox is being served.
        """
        handler = self.handlers.get(provider)
        if handler is None:
            raise KeyError(f"no sandbox provider {provider!r}; it has {', '.join(self.providers)}")
        root = base_url or self.base_url
        if root is None:
            raise ValueError("the sandbox is not being served; pass base_url")
        return handler.credentials(f"{root.rstrip('/')}/{provider}")

    def add_fault(self, fault: Fault) -> int:
        """Put a fault in force; returns its id."""
        if fault.provider != "*" and fault.provider not in self.handlers:
            raise ValueError(
                f"no sandbox provider {fault.provider!r}; it has {', '.join(self.providers)}"
            )
        return self.faults.add(fault).id

    def dispatch(self, provider: str, request: HttpRequest) -> Reply:
        """Answer one gateway request, faults included. Pure: no I/O, no waiting.

        ``request.url`` is the path below the provider's prefix and the body
        is bytes.
        """
        handler = self.handlers[provider]
        fault = self.faults.pick(provider, request)
        before = self.outbox.last_seq
        reply: Reply
        if fault is None:
            reply = Reply(handler.handle(request))
        elif fault.kind == "auth":
            reply = Reply(handler.auth_error())
        elif fault.answer_status is not None:
            status = fault.answer_status
            text = "Too many requests" if status == 429 else "Service unavailable (sandbox fault)"
            answer = handler.error(status, text)
            if fault.retry_after is not None:
                answer = msgspec.structs.replace(
                    answer, headers={**answer.headers, "retry-after": str(fault.retry_after)}
                )
            reply = Reply(answer)
        elif fault.kind == "slow":
            reply = Reply(handler.handle(request), delay=fault.delay)
        else:  # drop: the gateway did the work, the client never hears of it
            handler.handle(request)
            reply = Reply(None)
        self.requests.append(
            RequestRecord(
                seq=next(self._request_seq),
                provider=provider,
                method=request.method,
                path=request.url,
                at=self._clock(),
                status=None if reply.response is None else reply.response.status,
                fault=None if fault is None else fault.kind,
                stored=self.outbox.last_seq != before,
            )
        )
        return reply


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(data), content_type="application/json"
    )


def _inbox_page() -> bytes:
    return resources.files(__package__).joinpath("inbox.html").read_bytes()


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving ``sandbox``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    page = _inbox_page()

    async def gateway(request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        if provider not in sandbox.handlers:
            raise web.HTTPNotFound(text=f"no sandbox provider {provider!r}")
        neutral = HttpRequest(
            method=request.method,
            url="/" + request.match_info["path"],
            query=tuple(request.query.items()),
            headers=tuple(request.headers.items()),
            body=await request.read(),
        )
        if len(neutral.body) > _INLINE_BODY_BYTES:  # type: ignore[arg-type]
            # Parsing a 16 MiB multipart upload takes about a second: off the
            # event loop, so the inbox and other requests are not held up.
            reply = await asyncio.to_thread(sandbox.dispatch, provider, neutral)
        else:
            reply = sandbox.dispatch(provider, neutral)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.response is None:
            # Close after reading: aiohttp writes nothing to a closed transport.
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        answer = reply.response
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    async def inbox(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def providers(request: web.Request) -> web.Response:
        root = f"{request.scheme}://{request.host}"
        return _json(
            {
                "providers": [
                    {"name": name, "credentials": sandbox.credentials(name, root)}
                    for name in sandbox.providers
                ]
            }
        )

    async def messages(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="after must be an integer") from None
        found = sandbox.outbox.find(
            provider=request.query.get("provider") or None,
            chat_id=request.query.get("chat") or None,
            after=after,
        )
        return _json(
            {
                "epoch": sandbox.outbox.epoch,
                "last_seq": sandbox.outbox.last_seq,
                "messages": [m.summary() for m in found],
            }
        )

    async def clear(request: web.Request) -> web.Response:
        sandbox.outbox.clear()
        return web.Response(status=204)

    async def image(request: web.Request) -> web.Response:
        try:
            message = sandbox.outbox.get(int(request.match_info["seq"]))
        except ValueError:
            message = None
        if message is None or message.image_bytes is None:
            raise web.HTTPNotFound(text="no stored image with that number")
        return web.Response(
            body=message.image_bytes,
            content_type=message.mimetype or "application/octet-stream",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def list_faults(request: web.Request) -> web.Response:
        return _json({"faults": sandbox.faults.states()})

    async def add_faults(request: web.Request) -> web.Response:
        try:
            data = msgspec.json.decode(await request.read(), type=Fault | list[Fault])
            rules = data if isinstance(data, list) else [data]
            ids = [sandbox.add_fault(rule) for rule in rules]
        except (msgspec.DecodeError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"ids": ids}, status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        sandbox.faults.clear()
        return web.Response(status=204)

    async def remove_fault(request: web.Request) -> web.Response:
        try:
            removed = sandbox.faults.remove(int(request.match_info["id"]))
        except ValueError:
            removed = False
        if not removed:
            raise web.HTTPNotFound(text="no fault with that id")
        return web.Response(status=204)

    async def requests(request: web.Request) -> web.Response:
        return _json({"requests": list(sandbox.requests)})

    app.router.add_get("/", inbox)
    app.router.add_get("/_sandbox/providers", providers)
    app.router.add_get("/_sandbox/messages", messages)
    app.router.add_delete("/_sandbox/messages", clear)
    app.router.add_get("/_sandbox/messages/{seq}/image", image)
    app.router.add_get("/_sandbox/faults", list_faults)
    app.router.add_post("/_sandbox/faults", add_faults)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_delete("/_sandbox/faults/{id}", remove_fault)
    app.router.add_get("/_sandbox/requests", requests)
    app.router.add_route("*", "/{provider}/{path:.*}", gateway)
    return app


@asynccontextmanager
async def running_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
    faults: Iterable[Fault] = (),
    sandbox: Sandbox | None = None,
) -> AsyncIterator[tuple[Sandbox, str]]:
    """Serve a sandbox in this event loop; yields it and its base URL.

    Args:
        host: the address to bind; 127.0.0.1 keeps it off the network.
        port: the port; 0 picks a free one.
        seed: makes ids and probabilistic faults repeatable.
        faults: faults in force from the start.
        sandbox: serve this sandbox instead of a new one.
    """
    box = sandbox if sandbox is not None else Sandbox(seed=seed)
    for fault in faults:
        box.add_fault(fault)
    # shutdown_timeout: a slow-fault answer still waiting must not hold up Ctrl-C.
    runner = web.AppRunner(build_app(box), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets  # type: ignore[attr-defined]
        bound_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        shown_host = f"[{host}]" if ":" in host else host
        box.base_url = f"http://{shown_host}:{bound_port}"
        yield box, box.base_url
    finally:
        box.base_url = None
        await runner.cleanup()
