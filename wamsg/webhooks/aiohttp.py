"""An aiohttp.web endpoint for a :class:`~wamsg.webhooks.WebhookReceiver`.

::

    import aiohttp
from aiohttp import web
    from wamsg.webhooks import WebhookReceiver
    from wamsg.webhooks.aiohttp import add_webhook_route

    receiver = WebhookReceiver("gowa", secret="...", on_event=handle_event)
    app = web.Application()
    add_webhook_route(app, "/webhooks/gowa", receiver)
    web.run_app(app, host="127.0.0.1", port=8080)

The handler reads the raw body (capped: a declared length over the cap is
refused before reading, a chunked body as soon as it passes it), lets the
receiver verify, parse and dedupe it, writes the answer, and only then runs
the callback in a task: the gateway gets its 200 in milliseconds whatever
the callback does (docs/webhooks.md §5.3). Tasks still running at shutdown
are awaited by the route's ``on_cleanup`` hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from .receiver import Accepted, WebhookReceiver

__all__ = ["BackgroundDeliveries", "add_webhook_route", "aiohttp_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BackgroundDeliveries:
    """The callback tasks started after answering; :meth:`drain` awaits them.

    Args:
        max_tasks: callbacks running at once before a handler that starts
            another waits (after its answer is written) for one to end:
            back-pressure on the gateway's connections instead of an
            unbounded pile of tasks when callbacks are slower than deliveries.
    """

    def __init__(self, max_tasks: int = 1000) -> None:
        if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
            raise ValueError("max_tasks must be a whole number >= 1")
        self.max_tasks = max_tasks
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, receiver: WebhookReceiver, accepted: Accepted) -> None:
        """Run ``receiver.deliver(accepted)`` in a task kept until it ends."""
        task = asyncio.get_running_loop().create_task(receiver.deliver(accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_for_room(self) -> None:
        """Return once fewer than ``max_tasks`` callbacks are running."""
        while len(self._tasks) >= self.max_tasks:
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)

    async def drain(self) -> None:
        """Wait for every callback still running (deliver never raises)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


#: Seconds a sender may take to send the whole body: a webhook is a few KB,
#: and a client that declares a length and sends nothing must not hold the
#: handler (and its connection) for ever.
READ_TIMEOUT = 30.0


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it is over ``limit`` bytes (not read further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(READ_TIMEOUT):
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _answer(accepted: Accepted) -> web.Response:
    if accepted.status == 200:
        return web.json_response({"ok": True})
    return web.json_response({"ok": False, "error": accepted.reason}, status=accepted.status)


def aiohttp_handler(
    receiver: WebhookReceiver,
    *,
    token_param: str | None = None,
    deliveries: BackgroundDeliveries | None = None,
) -> Handler:
    """An aiohttp.web request handler for ``receiver``.

    Args:
        receiver: what checks and processes the deliveries.
        token_param: the route's path parameter holding the URL token
            (``/webhooks/wawp/{token}`` -> ``"token"``), for Wawp and WUTS.
        deliveries: where callback tasks are kept (one is made if not given;
            read it back as ``handler.deliveries``).
    """
    background = deliveries if deliveries is not None else BackgroundDeliveries()

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = await _read_capped(request, receiver.max_body)
        except TimeoutError:
            response = web.json_response(
                {"ok": False, "error": "the body took too long to arrive"}, status=408
            )
            response.force_close()
            return response
        if body is None:
            # Closing keeps an unread oversized body from being drained.
            response = _answer(receiver.too_large())
            response.force_close()
            return response
        token = request.match_info.get(token_param) if token_param else None
        accepted = await receiver.accept(request.headers, body, url_token=token)
        response = _answer(accepted)
        if not accepted.events:
            return response
        # Answer first, then run the callbacks: the gateway must not wait.
        # The events are claimed now, so they run even when the answer cannot
        # be written (the gateway hung up, or the request was cancelled): its
        # retry will be a duplicate, and must not be the only copy.
        try:
            await response.prepare(request)
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the gateway is gone; it will retry, and be deduplicated
        finally:
            background.start(receiver, accepted)
        await background.wait_for_room()
        return response

    handle.deliveries = background  # type: ignore[attr-defined]
    return handle


def add_webhook_route(
    app: web.Application,
    path: str,
    receiver: WebhookReceiver,
    *,
    token_param: str | None = None,
    max_tasks: int = 1000,
) -> BackgroundDeliveries:
    """Serve ``receiver`` at ``POST path``; callbacks are awaited at app cleanup.

    ``token_param`` names the path parameter holding a URL token (Wawp,
    WUTS); ``max_tasks`` bounds the callbacks running at once (see
    :class:`BackgroundDeliveries`). Returns the :class:`BackgroundDeliveries`,
    to :meth:`~BackgroundDeliveries.drain` in tests.
    """
    deliveries = BackgroundDeliveries(max_tasks)
    app.router.add_post(
        path, aiohttp_handler(receiver, token_param=token_param, deliveries=deliveries)
    )

    async def drain(_: web.Application) -> None:
        await deliveries.drain()

    app.on_cleanup.append(drain)
    return deliveries
