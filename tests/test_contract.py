"""wamsg's own adapters through the public contract kit (wamsg.testing.contract).

Each built-in adapter is described once, here; the suite itself is the one a
third-party adapter runs. Gateway quirks are tested in tests/test_<gateway>.py.
"""

from __future__ import annotations

from typing import Any

from golden import DATA, golden_files, load_golden

from wamsg.testing.contract import AdapterCase, AdapterContract


def _settings(provider: str) -> dict[str, Any]:
    """The settings of the provider's first request golden."""
    settings: dict[str, Any] = load_golden(golden_files(provider, "request")[0])["settings"]
    return settings


def _case(provider: str, **options: Any) -> AdapterCase:
    return AdapterCase(
        provider=provider, goldens=DATA / provider, settings=_settings(provider), **options
    )


class TestGowa(AdapterContract):
    case = _case("gowa")


class TestWaha(AdapterContract):
    case = _case("waha")


class TestWawp(AdapterContract):
    case = _case("wawp")


class TestWuts(AdapterContract):
    case = _case("wuts")


def test_every_built_in_provider_runs_the_contract() -> None:
    # wamsg's own entry points only: a plug-in installed beside it is not ours.
    import importlib.metadata

    from wamsg.providers import ENTRY_POINT_GROUP

    built_in = {
        e.name
        for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if e.dist is not None and e.dist.name == "wamsg"
    }
    described = {cls.case.provider for cls in AdapterContract.__subclasses__()}
    assert built_in
    assert built_in <= described
