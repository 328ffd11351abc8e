"""Pytest fixtures for testing code that sends through wamsg.

Enable them in a ``conftest.py`` with
``pytest_plugins = ["wamsg.testing.pytest_plugin"]``. Async fixtures run
under the anyio pytest plugin (``@pytest.mark.anyio``).

* ``wamsg_sandbox``: a fresh, unserved :class:`~wamsg.sandbox.Sandbox`
  (seed 0), for :func:`wamsg.testing.sandbox_client`: no sockets, any backend.
* ``wamsg_sandbox_server``: the same sandbox served on 127.0.0.1 for the
  test (asyncio only); ``wamsg_sandbox_server.credentials(provider)`` gives
  the client settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..sandbox import Sandbox, running_sandbox

__all__ = ["wamsg_sandbox", "wamsg_sandbox_server"]


@pytest.fixture
def wamsg_sandbox() -> Sandbox:
    """A sandbox gateway in memory, seeded for repeatable ids."""
    return Sandbox(seed=0)


@pytest.fixture
async def wamsg_sandbox_server(wamsg_sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """``wamsg_sandbox`` served on 127.0.0.1 for the duration of the test."""
    async with running_sandbox(sandbox=wamsg_sandbox) as (box, _):
        yield box
