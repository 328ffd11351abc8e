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
from .base import GatewaySandbox, reason_phrase, recording_stores
from .faults import Fault, FaultSet
from .gowa import GowaSandbox
from .outbox import Outbox
from .waha import WahaSandbox
from .wawp import WawpSandbox
from .wuts import WutsSandbox

__all__ = ["Reply", "RequestRecord", "Sandbox", "build_app", "running_sandbox"]

#: Largest request body the sandbox reads: a 16 MiB image (every gateway's
#: limit) as base64 JSON is 21.3 MiB. Bigger bodies get the gateway's 413
#: before they are read, as a real gateway's front proxy would answer.
MAX_REQUEST_BYTES = 24 * 1024 * 1024

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

    def dsn(self, provider: str, base_url: str | None = None) -> str:
        """:meth:`credentials` as one DSN string (``WAMSG_DSN``, docs/configuration.md).

        The sandbox's credentials are published examples, so they are shown:
        ``wuts+http://sandbox-wuts-token@127.0.0.1:8026/wuts``.
        """
        from ..config import ProviderConfig

        settings = self.credentials(provider, base_url)
        return ProviderConfig(provider, **settings).to_dsn(reveal=True)

    def add_fault(self, fault: Fault) -> int:
        """Put a fault in force; returns its id."""
        return self.add_faults([fault])[0]

    def add_faults(self, faults: Iterable[Fault]) -> list[int]:
        """Put several faults in force, all or none; returns their ids.

        Raises:
            ValueError: a rule names a provider the sandbox does not serve.
        """
        rules = list(faults)
        for fault in rules:
            if fault.provider != "*" and fault.provider not in self.handlers:
                raise ValueError(
                    f"no sandbox provider {fault.provider!r}; it has {', '.join(self.providers)}"
                )
        return [state.id for state in self.faults.add_all(rules)]

    def dispatch(self, provider: str, request: HttpRequest) -> Reply:
        """Answer one gateway request, faults included. Pure: no I/O, no waiting.

        ``request.url`` is the path below the provider's prefix and the body
        is bytes.
        """
        handler = self.handlers[provider]
        fault = self.faults.pick(provider, request)
        with recording_stores() as stored:
            reply = self._answer(handler, fault, request)
        self.requests.append(
            RequestRecord(
                seq=next(self._request_seq),
                provider=provider,
                method=request.method,
                path=request.url,
                at=self._clock(),
                status=None if reply.response is None else reply.response.status,
                fault=None if fault is None else fault.kind,
                stored=bool(stored),
            )
        )
        return reply

    @staticmethod
    def _answer(handler: GatewaySandbox, fault: Fault | None, request: HttpRequest) -> Reply:
        if fault is None:
            return Reply(handler.handle(request))
        if fault.kind == "auth":
            return Reply(handler.auth_error())
        if fault.answer_status is not None:
            status = fault.answer_status
            answer = handler.error(status, f"{reason_phrase(status)} (sandbox fault)")
            if fault.retry_after is not None:
                answer = msgspec.structs.replace(
                    answer, headers={**answer.headers, "retry-after": str(fault.retry_after)}
                )
            return Reply(answer)
        if fault.kind == "slow":
            return Reply(handler.handle(request), delay=fault.delay)
        # drop: the gateway did the work, the client never hears of it
        handler.handle(request)
        return Reply(None)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(data), content_type="application/json"
    )


def _plain(answer: HttpResponse) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


def _int_param(request: web.Request, name: str) -> int | None:
    """The path parameter ``name`` as an int; ``None`` when it is not one."""
    try:
        return int(request.match_info[name])
    except ValueError:
        return None


def _inbox_page() -> bytes:
    return resources.files(__package__).joinpath("inbox.html").read_bytes()


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving ``sandbox``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    page = _inbox_page()

    async def gateway(request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        handler = sandbox.handlers.get(provider)
        if handler is None:
            raise web.HTTPNotFound(text=f"no sandbox provider {provider!r}")
        too_large = handler.error(413, "Request Entity Too Large")
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            return _plain(too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked, with no length up front
            return _plain(too_large)
        neutral = HttpRequest(
            method=request.method,
            url="/" + request.match_info["path"],
            query=tuple(request.query.items()),
            headers=tuple(request.headers.items()),
            body=body,
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
        return _plain(reply.response)

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
        seq = _int_param(request, "seq")
        message = None if seq is None else sandbox.outbox.get(seq)
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
            ids = sandbox.add_faults(data if isinstance(data, list) else [data])
        except (msgspec.DecodeError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"ids": ids}, status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        sandbox.faults.clear()
        return web.Response(status=204)

    async def remove_fault(request: web.Request) -> web.Response:
        fault_id = _int_param(request, "id")
        if fault_id is None or not sandbox.faults.remove(fault_id):
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
        # A wildcard address is not one to connect to: show loopback instead.
        shown_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        box.base_url = f"http://{shown_host}:{bound_port}"
        yield box, box.base_url
    finally:
        box.base_url = None
        await runner.cleanup()
