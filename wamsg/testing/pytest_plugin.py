"""Pytest fixtures for testing code that sends through wamsg, and adapters.

The plugin is registered through the ``pytest11`` entry point, so pytest
loads it wherever wamsg is installed (``-p no:wamsg`` turns it off). Async
fixtures run under the anyio pytest plugin (``@pytest.mark.anyio``).

* ``wamsg_sandbox``: a fresh, unserved :class:`~wamsg.sandbox.Sandbox`
  (seed 0), for :func:`wamsg.testing.sandbox_client`: no sockets, any backend.
* ``wamsg_sandbox_server``: the same sandbox served on 127.0.0.1 for the
  test (asyncio only); ``wamsg_sandbox_server.credentials(provider)`` gives
  the client settings.
* ``wamsg_mock_transport``: makes :class:`~wamsg.MockTransport` objects,
  ``wamsg_mock_transport(handler)``, closed at the end of the test.

The adapter contract suite itself is a class to subclass:
:class:`wamsg.testing.contract.AdapterContract`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from ..transports.mock import Handler, MockTransport

if TYPE_CHECKING:
    from ..sandbox import Sandbox

# The sandbox (aiohttp.web) is imported by its fixtures only: pytest loads
# this plug-in in every project that has wamsg installed.

__all__ = ["wamsg_mock_transport", "wamsg_sandbox", "wamsg_sandbox_server"]


@pytest.fixture
def wamsg_sandbox() -> Sandbox:
    """A sandbox gateway in memory, seeded for repeatable ids."""
    from ..sandbox import Sandbox

    return Sandbox(seed=0)


@pytest.fixture
async def wamsg_sandbox_server(wamsg_sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """``wamsg_sandbox`` served on 127.0.0.1 for the duration of the test."""
    from ..sandbox import running_sandbox

    async with running_sandbox(sandbox=wamsg_sandbox) as (box, _):
        yield box


@pytest.fixture
def wamsg_mock_transport() -> Iterator[Callable[[Handler], MockTransport]]:
    """``wamsg_mock_transport(handler)``: a MockTransport answering with ``handler``.

    Every transport made is marked closed when the test ends, so a client
    that outlives its test fails loudly instead of sending.
    """
    made: list[MockTransport] = []

    def make(handler: Handler) -> MockTransport:
        transport = MockTransport(handler)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.closed = True
