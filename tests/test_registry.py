"""The provider registry: finding adapters by name, checking their settings, adding new ones."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from distinfo import dist_info

import wamsg
from wamsg import (
    Adapter,
    Capabilities,
    Client,
    ConfigError,
    HttpRequest,
    HttpResponse,
    Message,
    MockTransport,
    SendResult,
    Status,
    Text,
)
from wamsg import providers as registry
from wamsg.providers.wawp import WawpAdapter

pytestmark = pytest.mark.anyio

GROUP = registry.ENTRY_POINT_GROUP
WAWP_SETTINGS: dict[str, Any] = {"instance_id": "ABCDEF123456", "access_token": "tok-123"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # register() has no inverse: give each test its own copy of the table so
    # test adapters never leak into other tests (or into available()).
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))


class EchoAdapter:
    """A minimal third-party adapter: POST the text, read the id from the body."""

    name: ClassVar[str] = "custom_gateway"
    capabilities: ClassVar[Capabilities] = Capabilities(reply=True)

    def __init__(self, *, endpoint: str, token: str = "t") -> None:
        self.endpoint = endpoint
        self.token = token

    def encode(self, message: Message) -> HttpRequest:
        assert isinstance(message, Text)
        body = msgspec.json.encode({"to": message.recipient.value, "text": message.text})
        return HttpRequest(method="POST", url=self.endpoint, body=body)

    def decode(self, response: HttpResponse) -> SendResult:
        return SendResult(
            provider=self.name,
            message_id=response.body.decode(),
            status=Status.QUEUED,
            raw=response.body,
        )


def echo_factory(*, endpoint: str) -> Adapter:
    return EchoAdapter(endpoint=endpoint)


def flexible_factory(**settings: Any) -> Adapter:
    return EchoAdapter(endpoint=str(settings.get("endpoint", "https://gw.example/send")))


def answer_id(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=200, body=b"msg-1")


# --------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------


def test_available_lists_wawp() -> None:
    names = wamsg.available()
    assert "wawp" in names
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["wawp", "WAWP", " wawp "])
def test_create_builtin(name: str) -> None:
    adapter = wamsg.create_adapter(name, **WAWP_SETTINGS)
    assert isinstance(adapter, WawpAdapter)
    assert isinstance(adapter, Adapter)
    assert adapter.name == "wawp"


def test_get_adapter_returns_the_class() -> None:
    assert registry.get_adapter("wawp") is WawpAdapter


def test_unknown_provider_lists_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        wamsg.create_adapter("nope", **WAWP_SETTINGS)
    message = str(info.value)
    assert "'nope'" in message
    for name in wamsg.available():
        assert name in message


def test_unknown_setting_names_the_settings_it_takes() -> None:
    with pytest.raises(ConfigError) as info:
        wamsg.create_adapter("wawp", **WAWP_SETTINGS, colour="blue", acess_token="x")
    message = str(info.value)
    assert "colour" in message
    assert "acess_token" in message
    for taken in ("instance_id", "access_token", "base_url"):
        assert taken in message
    assert "tok-123" not in message


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"instance_id": "ABCDEF123456"}, ["access_token"]),
        ({"access_token": "tok-123"}, ["instance_id"]),
        ({}, ["instance_id", "access_token"]),
    ],
)
def test_missing_setting(settings: dict[str, Any], missing: list[str]) -> None:
    with pytest.raises(ConfigError, match="missing") as info:
        wamsg.create_adapter("wawp", **settings)
    for name in missing:
        assert name in str(info.value)


# --------------------------------------------------------------------------
# register()
# --------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [EchoAdapter, echo_factory], ids=["class", "function"])
async def test_registered_adapter_works_with_client(factory: Any) -> None:
    wamsg.register("custom_gateway", factory)
    assert "custom_gateway" in wamsg.available()
    transport = MockTransport(answer_id)
    async with Client(
        "custom_gateway", transport=transport, endpoint="https://gw.example/send"
    ) as client:
        result = await client.send_text("+55 11 99999-0000", "Hello")
    assert result.provider == "custom_gateway"
    assert result.message_id == "msg-1"
    assert result.status is Status.QUEUED
    assert len(result.attempts) == 1
    assert result.attempts[0].status_code == 200
    assert transport.calls == 1
    request = transport.requests[-1]
    assert request.url == "https://gw.example/send"
    assert isinstance(request.body, bytes)
    assert msgspec.json.decode(request.body) == {"to": "5511999990000", "text": "Hello"}


async def test_registered_capabilities_are_enforced_before_io() -> None:
    wamsg.register("custom_gateway", EchoAdapter)
    transport = MockTransport(answer_id)
    async with Client(
        "custom_gateway", transport=transport, endpoint="https://gw.example/send"
    ) as client:
        with pytest.raises(wamsg.InvalidMessage):
            await client.send_text("123", "Hello")
    assert transport.calls == 0


def test_registered_names_are_case_insensitive() -> None:
    wamsg.register("Custom_Gateway", EchoAdapter)
    assert "custom_gateway" in wamsg.available()
    adapter = wamsg.create_adapter("CUSTOM_GATEWAY", endpoint="https://gw.example/send")
    assert isinstance(adapter, EchoAdapter)


def test_registered_adapter_settings_are_checked() -> None:
    wamsg.register("custom_gateway", EchoAdapter)
    with pytest.raises(ConfigError, match="missing") as missing:
        wamsg.create_adapter("custom_gateway")
    assert "endpoint" in str(missing.value)
    with pytest.raises(ConfigError) as unknown:
        wamsg.create_adapter("custom_gateway", endpoint="https://gw.example", colour="red")
    assert "colour" in str(unknown.value)
    assert "endpoint" in str(unknown.value)
    assert "token" in str(unknown.value)


def test_factory_taking_any_settings() -> None:
    wamsg.register("flexible", flexible_factory)
    adapter = wamsg.create_adapter("flexible", endpoint="https://gw.example/x", anything=1)
    assert isinstance(adapter, EchoAdapter)
    assert adapter.endpoint == "https://gw.example/x"


@pytest.mark.parametrize(
    "name",
    ["", " ", "has space", "1abc", "wa.wp", "wawp/v2", "custom-name", "a\n"],
)
def test_invalid_names_rejected(name: str) -> None:
    before = wamsg.available()
    with pytest.raises(ConfigError, match="provider name"):
        wamsg.register(name, EchoAdapter)
    assert wamsg.available() == before


def test_registry_is_restored_between_tests() -> None:
    # The autouse fixture undoes the registrations of the tests above.
    assert "custom_gateway" not in wamsg.available()
    assert "flexible" not in wamsg.available()


# --------------------------------------------------------------------------
# Entry points (group wamsg.providers)
# --------------------------------------------------------------------------


@pytest.fixture
def fresh_discovery() -> Iterator[None]:
    registry.reload_providers()
    yield
    registry.reload_providers()


def test_builtins_are_registered_through_entry_points() -> None:
    found = {
        e.name: e.value
        for e in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP)
        if e.dist is not None and e.dist.name == "wamsg"
    }
    # The fallback table for a never-installed source tree says the same.
    assert found == registry._BUILTINS


@pytest.mark.usefixtures("fresh_discovery")
def test_a_plugin_package_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plugin_gw.py").write_text(
        "from test_registry import EchoAdapter\n\n"
        "class Plugin(EchoAdapter):\n    name = 'plugin_gw'\n"
    )
    dist_info(tmp_path, "wamsg-plugin-gw", "1.2.3", {GROUP: {"plugin_gw": "plugin_gw:Plugin"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    assert "plugin_gw" in wamsg.available()
    adapter = wamsg.create_adapter("plugin_gw", endpoint="https://gw.example/send")
    assert type(adapter).__name__ == "Plugin"


@pytest.mark.usefixtures("fresh_discovery")
def test_a_broken_plugin_names_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info(tmp_path, "wamsg-broken", "0.1", {GROUP: {"broken": "no_such_module_xyz:Adapter"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    assert "broken" in wamsg.available()
    with pytest.raises(ConfigError, match=r"'broken'.*wamsg-broken 0.1.*ModuleNotFoundError"):
        registry.get_adapter("broken")
    # The other providers are not affected.
    assert registry.get_adapter("wawp") is WawpAdapter


@pytest.mark.usefixtures("fresh_discovery")
def test_two_packages_claiming_one_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info(tmp_path / "a", "wamsg-one", "1", {GROUP: {"twin": "one:Adapter"}})
    dist_info(tmp_path / "b", "wamsg-two", "2", {GROUP: {"twin": "two:Adapter"}})
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    registry.reload_providers()
    with pytest.raises(ConfigError, match=r"more than one package.*wamsg-one 1.*wamsg-two 2"):
        registry.get_adapter("twin")
    wamsg.register("twin", EchoAdapter)  # an explicit choice settles it
    assert registry.get_adapter("twin") is EchoAdapter


@pytest.mark.usefixtures("fresh_discovery")
def test_register_wins_over_an_entry_point() -> None:
    wamsg.register("wawp", EchoAdapter)
    assert registry.get_adapter("wawp") is EchoAdapter


@pytest.mark.usefixtures("fresh_discovery")
def test_names_that_cannot_be_asked_for_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info(tmp_path, "wamsg-odd", "1", {GROUP: {"has-dash": "x:Y", "1bad": "x:Y"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    assert "has-dash" not in wamsg.available()
    assert "1bad" not in wamsg.available()


@pytest.mark.parametrize("name", ["x" * 33, "wawp\u00e9", "\u212aelvin", "Kelvin\u212a"])
def test_names_a_dsn_cannot_hold_are_refused(name: str) -> None:
    # A DSN's scheme holds ASCII only and at most 32 characters here; "\u212a"
    # (KELVIN SIGN) lower-cases to an ASCII "k" and must not slip through.
    with pytest.raises(ConfigError, match="provider name must be"):
        wamsg.register(name, EchoAdapter)


@pytest.mark.parametrize("name", [123, None, b"wawp"])
def test_provider_names_that_are_not_text(name: Any) -> None:
    with pytest.raises(ConfigError, match="provider"):
        wamsg.create_adapter(name)


@pytest.mark.usefixtures("fresh_discovery")
def test_ignored_entry_points_are_named_in_the_unknown_provider_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info(tmp_path, "wamsg-odd", "1", {GROUP: {"has-dash": "x:Y"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    with pytest.raises(ConfigError, match=r"ignored entry points.*'has-dash' \(from wamsg-odd 1\)"):
        registry.get_adapter("nosuch")


@pytest.mark.usefixtures("fresh_discovery")
def test_one_broken_plugin_does_not_hide_the_others_in_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wamsg.cli import main

    dist_info(tmp_path, "wamsg-broken", "0.1", {GROUP: {"broken": "no_such_module_xyz:Adapter"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload_providers()
    assert main(["providers"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "ModuleNotFoundError" in rows["broken"]
    for name in ("wawp", "waha", "gowa", "wuts"):
        assert "error" not in rows[name]
        assert f"  {name}" in out.split("docs/configuration.md):")[1]
    assert "broken" not in out.split("docs/configuration.md):")[1]
    assert "1 provider(s) failed to load" in err
