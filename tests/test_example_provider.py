"""The example third-party provider (tests/example_provider) registers and passes the kit.

It is a separate package with its own pyproject.toml, entry point and tests,
as a provider published on PyPI would be. Its entry point is made visible
the way pip would (tests/distinfo.py), and its own test suite is run in a
separate pytest, so what passes here is what passes for its authors: the
contract kit found through the installed wamsg's ``pytest11`` plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distinfo import dist_info_from_pyproject

import wamsg
from wamsg import HttpRequest, HttpResponse, MockTransport
from wamsg import providers as registry

EXAMPLE = Path(__file__).resolve().parent / "example_provider"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example package 'installed': its metadata and source on sys.path."""
    dist_info_from_pyproject(tmp_path, EXAMPLE / "pyproject.toml")
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    yield tmp_path
    monkeypatch.undo()
    registry.reload_providers()
    for name in [m for m in sys.modules if m.split(".")[0] == "wamsg_acme"]:
        del sys.modules[name]


def test_not_installed_it_is_unknown() -> None:
    with pytest.raises(wamsg.ConfigError, match="unknown provider 'acme'"):
        wamsg.create_adapter("acme", token="t")


@pytest.mark.usefixtures("site")
def test_the_entry_point_makes_it_a_provider() -> None:
    assert "acme" in wamsg.available()
    adapter = wamsg.create_adapter("acme", token="t-1")
    assert type(adapter).__module__ == "wamsg_acme.adapter"
    assert adapter.name == "acme"


@pytest.mark.usefixtures("site")
@pytest.mark.anyio
async def test_a_client_sends_through_it() -> None:
    def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=202, body=b'{"id": "msg_1", "status": "queued"}')

    transport = MockTransport(answer)
    async with wamsg.Client("acme", token="t-1", transport=transport) as client:
        result = await client.send_text("+5511999990000", "hi")
    assert (result.provider, result.message_id) == ("acme", "msg_1")
    assert transport.calls == 1


def test_its_own_suite_passes_the_contract_kit(site: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE / "src")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # The kit's tests ran, one per golden file, capability and status.
    for test in (
        "TestAcmeContract::test_request_golden[text_basic]",
        "TestAcmeContract::test_response_golden[err_403_throttled_retry_after]",
        "TestAcmeContract::test_capability[mentions_text]",
        "TestAcmeContract::test_status[503]",
        "TestAcmeContract::test_secrets",
        "TestAcmeContract::test_no_io_imports",
        "TestAcmeContract::test_identity",
        "TestAcmeContract::test_dsn",
        "test_quirks.py::test_send_text_through_the_client",
        "test_quirks.py::test_configured_by_a_dsn",
    ):
        assert f"PASSED tests/test_contract.py::{test}" in output or f"PASSED tests/{test}" in (
            output
        ), f"{test} did not pass:\n{output}"
