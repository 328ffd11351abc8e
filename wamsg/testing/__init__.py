"""Test helpers: the sandbox gateway in-process, with or without sockets.

Two ways to test code that sends through wamsg, with no account and no
network:

* :func:`sandbox` serves the sandbox gateway on 127.0.0.1 in the running
  event loop (asyncio), so requests go through the real transport::

      async with wamsg.testing.sandbox() as box:
          async with wamsg.Client("gowa", **box.credentials("gowa")) as client:
              await client.send_text("+5511999990000", "hi")
          assert box.outbox.find(provider="gowa")[0].text == "hi"

* :func:`sandbox_client` / :func:`sandbox_transport` bind a
  :class:`~wamsg.transports.mock.MockTransport` to the same pure gateway
  handlers: no sockets, any async backend (trio too), the same answers,
  faults and outbox::

      box = wamsg.testing.Sandbox(seed=1)
      async with wamsg.testing.sandbox_client("waha", box) as client:
          await client.send_text("+5511999990000", "hi")

Pytest fixtures built on these live in :mod:`wamsg.testing.pytest_plugin`
(loaded by pytest through wamsg's ``pytest11`` entry point). For adapter
authors, :mod:`wamsg.testing.contract` is the contract suite every adapter
passes, :mod:`wamsg.testing.goldens` the golden-file format it reads, and
:data:`MEDIA` a folder of tiny valid images (``tiny.jpg``, ``tiny.png``,
``tiny.gif``, ``tiny.webp``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import anyio

from .._redact import Secret
from .._streams import iter_body
from ..client import Client
from ..errors import ConfigError, Disconnected
from ..http import HttpRequest, HttpResponse, StreamBody
from ..transports.mock import MockTransport
from .goldens import MEDIA

if TYPE_CHECKING:
    from ..sandbox import Fault, Sandbox

# The sandbox (aiohttp.web) is imported when first used, not with this
# package: pytest imports wamsg.testing in every project that has wamsg.

__all__ = [
    "MEDIA",
    "SANDBOX_URL",
    "Fault",
    "Sandbox",
    "sandbox",
    "sandbox_client",
    "sandbox_transport",
]

#: The base URL a socket-free sandbox answers on (``.invalid`` never resolves).
SANDBOX_URL = "http://sandbox.invalid"


@asynccontextmanager
async def sandbox(
    *,
    seed: int | None = None,
    faults: Iterable[Fault] = (),
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[Sandbox]:
    """Serve a sandbox gateway in this (asyncio) event loop for the block.

    Yields the :class:`~wamsg.sandbox.Sandbox`; its ``base_url`` is set and
    ``credentials(provider)`` gives the settings for :class:`~wamsg.Client`.

    Raises:
        ConfigError: not running on asyncio (the server is aiohttp.web); use
            :func:`sandbox_client` on other backends.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigError(
            "the served sandbox needs asyncio (it runs on aiohttp); "
            "use wamsg.testing.sandbox_client() for a socket-free sandbox on any backend"
        ) from None
    from ..sandbox import running_sandbox

    async with running_sandbox(seed=seed, faults=faults, host=host, port=port) as (box, _):
        yield box


async def _body_bytes(request: HttpRequest) -> bytes:
    body = request.body
    if isinstance(body, bytes):
        return body
    chunks = body.open() if isinstance(body, StreamBody) else iter_body(body)
    return b"".join([chunk async for chunk in chunks])


def _reveal(pairs: Iterable[tuple[str, str | Secret]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v.reveal() if isinstance(v, Secret) else v) for k, v in pairs)


def sandbox_transport(box: Sandbox, *, base_url: str = SANDBOX_URL) -> MockTransport:
    """A transport that hands each request to ``box``'s pure gateways, no sockets.

    Requests go to ``{base_url}/{provider}/...`` as with the served sandbox.
    Faults act as they do over HTTP: ``slow`` waits (under the client's
    deadline), and ``drop`` stores the message and then raises
    :class:`~wamsg.Disconnected`, the error the real transport raises when
    the connection closes unanswered.
    """
    root = urlsplit(base_url)

    async def handle(request: HttpRequest) -> HttpResponse:
        url = urlsplit(request.url)
        if (url.scheme, url.netloc) != (root.scheme, root.netloc):
            raise ConfigError(f"the sandbox transport serves {base_url}, not {url.netloc}")
        prefix = root.path.rstrip("/")
        if not url.path.startswith(prefix + "/"):
            return HttpResponse(status=404, body=b"not below the sandbox base URL")
        provider, _, path = url.path[len(prefix) + 1 :].partition("/")
        if provider not in box.handlers:
            return HttpResponse(status=404, body=b"no sandbox provider")
        body = await _body_bytes(request)
        headers = _reveal(request.headers)
        if not isinstance(request.body, bytes):
            headers = (*headers, ("Content-Length", str(len(body))))
        neutral = HttpRequest(
            method=request.method,
            url="/" + path,
            query=(*parse_qsl(url.query, keep_blank_values=True), *_reveal(request.query)),
            headers=headers,
            body=body,
        )
        reply = box.dispatch(provider, neutral)
        if reply.delay:
            await anyio.sleep(reply.delay)
        if reply.response is None:
            raise Disconnected("the server closed the connection without answering")
        response = reply.response
        return HttpResponse(
            status=response.status,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=response.body,
        )

    return MockTransport(handle)


def sandbox_client(provider: str, box: Sandbox, **options: Any) -> Client:
    """A :class:`~wamsg.Client` for ``provider`` wired to ``box`` with no sockets.

    ``options`` go to the client (timeouts) or override the sandbox's
    credentials (to test a wrong token, say).
    """
    transport = sandbox_transport(box)
    settings = {**box.credentials(provider, SANDBOX_URL), **options}
    return Client(provider, transport=transport, **settings)


def __getattr__(name: str) -> Any:
    if name in ("Fault", "Sandbox"):
        from .. import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
