"""Configuration: DSN strings, the environment and TOML files (wamsg.config)."""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wamsg
from wamsg import (
    Capabilities,
    Client,
    Config,
    ConfigError,
    DsnFormat,
    HttpRequest,
    HttpResponse,
    Message,
    ProviderConfig,
    Router,
    Secret,
    SendResult,
    Status,
    Text,
    load_config,
)
from wamsg import providers as registry
from wamsg.config import (
    CLIENT_OPTIONS,
    ROUTER_OPTIONS,
    dsn_form,
    env_settings,
    provider_settings,
)
from wamsg.sandbox import Fault, Sandbox
from wamsg.testing import SANDBOX_URL, sandbox_transport

PROVIDERS = ("gowa", "waha", "wawp", "wuts")


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # register() has no inverse: each test gets its own copy of the table.
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))


# --------------------------------------------------------------------------
# The four DSNs, verbatim
# --------------------------------------------------------------------------


def test_wawp_dsn() -> None:
    config = ProviderConfig.from_dsn("wawp://INSTANCE:TOKEN@api.wawp.net")
    assert config.provider == "wawp"
    assert config.settings == {"instance_id": "INSTANCE", "access_token": Secret("TOKEN")}
    assert isinstance(config.settings["access_token"], Secret)
    adapter = config.create_adapter()
    assert adapter.base_url == "https://api.wawp.net"  # type: ignore[attr-defined]
    request = adapter.encode(Text(to="+5511999990000", text="hi"))
    assert dict(request.revealed_query()) == {"instance_id": "INSTANCE", "access_token": "TOKEN"}
    assert str(config) == "wawp://INSTANCE:***@api.wawp.net"
    assert config.to_dsn(reveal=True) == "wawp://INSTANCE:TOKEN@api.wawp.net"


def test_waha_dsn() -> None:
    config = ProviderConfig.from_dsn("waha+http://KEY@localhost:3000?session=default")
    assert config.provider == "waha"
    # session=default is WAHA's default, so it is left out: equal configs, one form.
    assert config.settings == {"api_key": Secret("KEY"), "base_url": "http://localhost:3000"}
    assert config == ProviderConfig.from_dsn("waha+http://KEY@localhost:3000")
    adapter = config.create_adapter()
    assert adapter.session == "default"  # type: ignore[attr-defined]
    request = adapter.encode(Text(to="+5511999990000", text="hi"))
    assert request.url == "http://localhost:3000/api/sendText"
    assert ("X-Api-Key", "KEY") in request.revealed_headers().items()
    other = ProviderConfig.from_dsn("waha+http://KEY@localhost:3000?session=sales")
    assert other.create_adapter().session == "sales"  # type: ignore[attr-defined]
    assert str(other) == "waha+http://***@localhost:3000?session=sales"


def test_gowa_dsn() -> None:
    config = ProviderConfig.from_dsn("gowa+http://user:pass@localhost:3000?device_id=...")
    assert config.provider == "gowa"
    assert config.settings == {
        "username": "user",
        "password": Secret("pass"),
        "base_url": "http://localhost:3000",
        "device_id": "...",
    }
    request = config.create_adapter().encode(Text(to="+5511999990000", text="hi"))
    headers = request.revealed_headers()
    assert headers["Authorization"] == "Basic dXNlcjpwYXNz"  # user:pass
    assert headers["X-Device-Id"] == "..."
    assert str(config) == "gowa+http://user:***@localhost:3000?device_id=..."


def test_wuts_dsn() -> None:
    config = ProviderConfig.from_dsn("wuts://TOKEN@api.wuts.com.br")
    assert config.provider == "wuts"
    assert config.settings == {"token": Secret("TOKEN")}
    request = config.create_adapter().encode(Text(to="+5511999990000", text="hi"))
    assert request.url == "https://api.wuts.com.br/send/text"
    assert request.revealed_headers()["Authorization"] == "Bearer TOKEN"
    assert repr(config) == "ProviderConfig('wuts://***@api.wuts.com.br')"


@pytest.mark.parametrize(
    ("dsn", "base_url"),
    [
        ("wuts://T@api.wuts.com.br", "https://api.wuts.com.br"),  # the default: left out
        ("wuts+https://T@api.wuts.com.br", "https://api.wuts.com.br"),
        ("wuts://T@", "https://api.wuts.com.br"),  # no host: the default
        ("wuts+http://T@Proxy.Example:8080/wuts/", "http://proxy.example:8080/wuts"),
        ("wuts://T@[::1]:8443/a%20b", "https://[::1]:8443/a%20b"),
        ("WUTS://T@h", "https://h"),
    ],
)
def test_scheme_host_port_and_path_make_the_base_url(dsn: str, base_url: str) -> None:
    adapter = ProviderConfig.from_dsn(dsn).create_adapter()
    assert adapter.base_url == base_url  # type: ignore[attr-defined]


def test_percent_encoding_in_every_part() -> None:
    config = ProviderConfig.from_dsn(
        "gowa+http://us%3Aer%40x:p%2Fa%3As%40s%25%20%2B%3F%23@h?device_id=5511%40s.whatsapp.net"
    )
    assert config.settings["username"] == "us:er@x"
    assert config.settings["password"] == Secret("p/a:s@s% +?#")
    assert config.settings["device_id"] == "5511@s.whatsapp.net"
    # A raw ':' and '@' in the password part are taken as they are; '+' is a plus.
    raw = ProviderConfig.from_dsn("gowa+http://user:p:a@ss+w@h")
    assert raw.settings["password"] == Secret("p:a@ss+w")


def test_unicode_values() -> None:
    config = ProviderConfig("wawp", instance_id="inst", access_token="tøkén-ü ✓")
    dsn = config.to_dsn(reveal=True)
    assert dsn.isascii()
    assert ProviderConfig.from_dsn(dsn) == config
    # Typed raw (an IRI), the same value.
    assert ProviderConfig.from_dsn("wawp://inst:tøkén-ü%20✓@api.wawp.net") == config


def test_provider_settings_and_dsn_forms() -> None:
    places = {p: {s.name: s.place for s in provider_settings(p)} for p in PROVIDERS}
    assert places["wawp"] == {"instance_id": "user", "access_token": "password", "base_url": "url"}
    assert places["waha"] == {"base_url": "url", "api_key": "user", "session": "query"}
    assert places["gowa"] == {
        "base_url": "url",
        "device_id": "query",
        "username": "user",
        "password": "password",
    }
    assert places["wuts"] == {"token": "user", "base_url": "url"}
    secret = {p: {s.name for s in provider_settings(p) if s.secret} for p in PROVIDERS}
    assert secret == {
        "wawp": {"access_token"},
        "waha": {"api_key"},
        "gowa": {"password"},
        "wuts": {"token"},
    }
    assert dsn_form("wawp") == "wawp://INSTANCE_ID:ACCESS_TOKEN@api.wawp.net"
    assert dsn_form("wuts") == "wuts://TOKEN@api.wuts.com.br"
    assert dsn_form("waha") == "waha[+http]://[API_KEY@]HOST[:PORT][/PATH][?session=SESSION]"
    assert dsn_form("gowa") == (
        "gowa[+http]://[USERNAME:PASSWORD@]HOST[:PORT][/PATH][?device_id=DEVICE_ID]"
    )


def test_every_builtin_adapter_declares_its_dsn_format() -> None:
    for name in PROVIDERS:
        assert isinstance(registry.get_adapter(name).dsn, DsnFormat)  # type: ignore[attr-defined]


def test_sandbox_dsn_is_its_credentials() -> None:
    box = Sandbox()
    for provider in box.providers:
        dsn = box.dsn(provider, "http://127.0.0.1:8026")
        assert dsn.startswith(f"{provider}+http://")
        assert dsn.endswith(f"@127.0.0.1:8026/{provider}") or "?" in dsn
        expected = ProviderConfig(provider, **box.credentials(provider, "http://127.0.0.1:8026"))
        assert ProviderConfig.from_dsn(dsn) == expected


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

#: Characters with a meaning in a DSN, or that encodings change.
_AWKWARD = [*"/@:%?#+ &=$~[]{}\\\"'*!,;", "%2F", "%zz", "ü", "✓", "\x00", "\n", "\U0001f600"]
_CHARS = st.characters(codec="utf-8")
values = st.lists(st.one_of(st.sampled_from(_AWKWARD), _CHARS), max_size=12).map("".join)
nonempty = values.filter(bool)
_LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["::1", "2001:db8::8a2e:370:7334", "fe80::1"]).map(lambda h: f"[{h}]"),
)
_SEGMENT = st.lists(
    st.one_of(
        st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:")),
        st.sampled_from(["%20", "%2F", "%25", "%C3%BC"]),
    ),
    max_size=8,
).map("".join)
paths = st.lists(_SEGMENT, max_size=3).map(lambda parts: "".join(f"/{p}" for p in parts))
ports = st.one_of(st.none(), st.integers(1, 65535))


@st.composite
def base_urls(draw: st.DrawFn) -> str:
    port = draw(ports)
    return (
        f"{draw(st.sampled_from(['http', 'https', 'HTTP']))}://{draw(hosts)}"
        f"{'' if port is None else f':{port}'}{draw(paths)}"
    )


def _maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), strategy)


@st.composite
def configs(draw: st.DrawFn, secrets: st.SearchStrategy[str] = nonempty) -> ProviderConfig:
    provider = draw(st.sampled_from(PROVIDERS))
    settings: dict[str, str | None]
    if provider == "wawp":
        settings = {
            "instance_id": draw(nonempty),
            "access_token": draw(secrets),
            "base_url": draw(_maybe(base_urls())),
        }
    elif provider == "waha":
        settings = {
            "base_url": draw(base_urls()),
            "api_key": draw(_maybe(secrets)),
            "session": draw(_maybe(values)),
        }
    elif provider == "gowa":
        user = draw(_maybe(nonempty))
        settings = {
            "base_url": draw(base_urls()),
            "device_id": draw(_maybe(values)),
            "username": user,
            "password": None if user is None else draw(_maybe(secrets)),
        }
    else:
        settings = {"token": draw(secrets), "base_url": draw(_maybe(base_urls()))}
    return ProviderConfig(provider, **settings)


@settings(max_examples=400, deadline=None)
@given(configs())
def test_every_config_round_trips_through_its_dsn(config: ProviderConfig) -> None:
    dsn = config.to_dsn(reveal=True)
    assert ProviderConfig.from_dsn(dsn) == config
    assert ProviderConfig.from_dsn(dsn).to_dsn(reveal=True) == dsn
    # The masked form parses too (to a config holding "***"), with the same shape.
    masked = ProviderConfig.from_dsn(config.to_dsn())
    assert masked.provider == config.provider
    assert set(masked.settings) == set(config.settings)


#: Secrets no other part of a config can hold by chance: a marker, then anything.
marked = values.map(lambda rest: f"Sk-SECRET-{rest}")


@settings(max_examples=200, deadline=None)
@given(configs(secrets=marked))
def test_masked_forms_hold_no_secret(config: ProviderConfig) -> None:
    shown = [str(config), repr(config), config.to_dsn(), repr(config.settings)]
    for text in shown:
        assert "SECRET" not in text, text


@settings(max_examples=200, deadline=None)
@given(configs())
def test_configs_pickle_copy_and_hash_by_value(config: ProviderConfig) -> None:
    assert pickle.loads(pickle.dumps(config)) == config
    assert copy.deepcopy(config) == config
    assert hash(ProviderConfig.from_dsn(config.to_dsn(reveal=True))) == hash(config)


_PIECES = ["wawp://", "waha+http://", "gowa+https://", "wuts://", "@", ":", "/", "?", "&"]
_PIECES += ["=", "%", "%2", "%41", "%FF", "[", "]", "::1", "h", "80", "#", " ", "x", "ü", "${A}"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_any_text_parses_or_raises_a_config_error(text: str) -> None:
    try:
        config = ProviderConfig.from_dsn(text)
    except ConfigError:
        return
    assert ProviderConfig.from_dsn(config.to_dsn(reveal=True)) == config


def test_configs_are_immutable_and_replace_makes_a_copy() -> None:
    config = ProviderConfig("wuts", token="a-token")
    with pytest.raises(AttributeError):
        config._settings = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.settings["token"] = "x"  # type: ignore[index]
    other = config.replace(base_url="http://127.0.0.1:1/wuts")
    assert other != config
    assert other.replace(base_url=None) == config
    assert config.settings == {"token": Secret("a-token")}


# --------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------

SECRET_SHAPES = [
    "tok-SECRET-1234567890/+=",
    "p@ss:w/rd?#%SECRET&x=y",
    "ünïcødé SECRET ✓",
    "SECRET%2F%25already-encoded",
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
]


def _secret_forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote(value), quote_plus(value), Secret(value).reveal()}


def _configs_with(secret: str) -> list[ProviderConfig]:
    base = "http://127.0.0.1:3000"
    return [
        ProviderConfig("wawp", instance_id="ABC123DEF456", access_token=secret),
        ProviderConfig("waha", base_url=base, api_key=secret, session="sales"),
        ProviderConfig(
            "gowa",
            base_url=base,
            username="admin",
            password=secret,
            device_id="5521987654321@s.whatsapp.net",
        ),
        ProviderConfig("wuts", token=secret),
    ]


@pytest.mark.parametrize("secret", SECRET_SHAPES)
def test_str_repr_and_masked_dsn_never_show_a_secret_or_a_phone(secret: str) -> None:
    for config in _configs_with(secret):
        texts = [str(config), repr(config), config.to_dsn(), f"{config}"]
        for text in [*texts, repr(config.settings)]:
            for form in _secret_forms(secret):
                assert form not in text, text
            assert "***" in text
        for text in texts:
            assert "5521987654321" not in text
        assert any(form in config.to_dsn(reveal=True) for form in _secret_forms(secret))
    gowa = _configs_with(secret)[2]
    assert "device_id=55*********21@s.whatsapp.net" in str(gowa)
    assert "5521987654321@s.whatsapp.net" in gowa.to_dsn(reveal=True)


@pytest.mark.parametrize("secret", SECRET_SHAPES)
def test_a_whole_config_file_is_masked(secret: str) -> None:
    env = {"TOKEN": secret}
    config = load_config(
        """
        [providers.a]
        dsn = "wawp://ABC123DEF456:${TOKEN}@api.wawp.net"
        [providers.b]
        provider = "gowa"
        base_url = "http://localhost:3000"
        username = "admin"
        password = "${TOKEN}"
        device_id = "5521987654321"
        """,
        env=env,
    )
    assert config.provider("a").settings["access_token"] == Secret(secret)
    assert config.provider("b").settings["password"] == Secret(secret)
    for text in (str(config), repr(config), repr(config.providers)):
        for form in _secret_forms(secret):
            assert form not in text
        assert "5521987654321" not in text


# --------------------------------------------------------------------------
# Errors: the provider and the field, never a value
# --------------------------------------------------------------------------

TOKEN = "tok-SECRET-4242/+="


def _enc(value: str) -> str:
    return quote(value, safe="")


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        (f"wawp://INSTANCE@api.wawp.net?x={_enc(TOKEN)}", "wawp: unknown setting 'x' in DSN"),
        ("wawp://INSTANCE@api.wawp.net", "wawp: access_token is required"),
        (f"wawp://:{_enc(TOKEN)}@api.wawp.net", "wawp: the DSN has a password (access_token)"),
        ("gowa+http://localhost:3000?devce_id=x", "gowa: unknown setting 'devce_id' in DSN"),
        ("gowa+http://localhost:3000?devce_id=x", "it takes device_id"),
        (f"nosuch://{_enc(TOKEN)}@h", "unknown provider 'nosuch'; installed providers: gowa"),
        (f"{TOKEN}@api.wuts.com.br", "a DSN starts with a provider name and '://'"),
        (f"https://{_enc(TOKEN)}@api.wuts.com.br", "installed providers"),
        (f"wuts://{_enc(TOKEN)}@h:0", "wuts: the DSN has a bad port"),
        (f"wuts://{_enc(TOKEN)}@h:99999", "bad port"),
        (f"wuts://{_enc(TOKEN)}@h:8o", "bad port"),
        (f"wuts://{_enc(TOKEN)}@:80", "a port but no host"),
        (f"waha+http://h?session=a&session={_enc(TOKEN)}", "waha: the DSN gives session twice"),
        (f"waha+http://K:{_enc(TOKEN)}@h", "waha: the DSN has a password part"),
        (f"wuts://u:{_enc(TOKEN)}@h", "wuts: the DSN has a password part"),
        ("gowa+http://h?username=x", "gowa: username goes in the DSN's user part"),
        ("gowa+http://h?base_url=http://x", "gowa: base_url goes in the DSN's scheme"),
        (f"gowa+http://h?password={_enc(TOKEN)}", "gowa: password goes in the DSN's password"),
        ("gowa://", "gowa: base_url is required: the DSN needs a host"),
        ("gowa+http://:8080/x", "gowa: the DSN has a port but no host"),
        ("gowa+http:///x", "gowa: the DSN has a port, a path or +http(s) but no host"),
        (f"gowa+ftp://u:{_enc(TOKEN)}@h", "gowa: the DSN's scheme is gowa://, gowa+http://"),
        (f"wuts://{TOKEN}@h", "wuts: the DSN's user or password holds a '/'"),
        ("wuts://tok SECRET@h", "wuts: the DSN holds a space or a control character"),
        ("wuts://tok-SECRET#42@h", "wuts: the DSN holds a '#'"),
        ("wuts://tok-SECRET-50%@h", "wuts: the DSN's user part has a '%'"),
        ("wuts://tok-SECRET-%FF%FE@h", "wuts: the DSN's user part is not UTF-8"),
        (f"wuts://T@h?{_enc(TOKEN)}", "wuts: a query parameter of the DSN has no '='"),
        (f"wuts://T@h?{TOKEN[:8]}=1", "wuts: unknown setting (not shown) in DSN"),
        ("wuts://T@h?tok-SECRET-4242=1", "(not shown)"),
        (f"wuts://T@bad_host!{'x' * 3}", "wuts: the DSN has a bad host"),
        ("wuts://T@[::1", "wuts: the DSN's [IPv6] host has no closing ']'"),
        ("wuts://T@h:1:2", "wuts: an IPv6 host goes in brackets"),
        ("", "a DSN starts with a provider name"),
    ],
)
def test_bad_dsns_say_what_and_where_and_never_echo_a_value(dsn: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProviderConfig.from_dsn(dsn)
    message = str(info.value)
    assert says in message
    for form in (*_secret_forms(TOKEN), "SECRET", "tok-SECRET"):
        assert form not in message, message


def test_a_dsn_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="a DSN is a string, not bytes"):
        ProviderConfig.from_dsn(b"wuts://T@h")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "settings", "says"),
    [
        ("wawp", {"instance_id": "I"}, "wawp: access_token is required"),
        ("wawp", {}, "wawp: instance_id and access_token are required"),
        ("wawp", {"instance_id": "I", "access_token": ""}, "wawp: access_token is empty"),
        ("wuts", {"token": TOKEN, "colour": "red"}, "wuts: unknown setting 'colour'; it takes"),
        ("wuts", {"token": TOKEN, "Tok_SECRET": "1"}, "wuts: unknown setting (not shown)"),
        ("wuts", {"token": 42}, "wuts: token must be a string, not int"),
        ("wuts", {"token": "a\ud800b"}, "wuts: token is not valid Unicode text"),
        ("wuts", {"token": TOKEN, "base_url": "ftp://h"}, "wuts: base_url must be an http(s) URL"),
        ("wuts", {"token": TOKEN, "base_url": "http://h:0"}, "wuts: base_url has a bad port"),
        ("wuts", {"token": TOKEN, "base_url": "http://h/a b"}, "wuts: base_url must not hold"),
        ("wuts", {"token": TOKEN, "base_url": f"http://u:{TOKEN}@h"}, "must not hold credentials"),
        ("gowa", {"base_url": "http://h", "password": TOKEN}, "gowa: password is set, so"),
        ("nosuch", {}, "unknown provider 'nosuch'"),
    ],
)
def test_bad_settings_name_the_provider_and_the_field(
    provider: str, settings: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ProviderConfig(provider, **settings)
    assert says in str(info.value)
    assert "SECRET" not in str(info.value)


def test_the_adapter_checks_the_rest_when_it_is_created() -> None:
    config = ProviderConfig.from_dsn("wuts://tok%20SECRET@h")  # a space: not a header token
    with pytest.raises(ConfigError, match="wuts: token must be one word") as info:
        config.create_adapter()
    assert "SECRET" not in str(info.value)


# --------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------


def test_wamsg_dsn_wins_over_provider_and_settings() -> None:
    env = {
        "WAMSG_DSN": "wuts://from-dsn@api.wuts.com.br",
        "WAMSG_PROVIDER": "wawp",
        "WAMSG_INSTANCE_ID": "I",
        "WAMSG_ACCESS_TOKEN": "from-vars",
    }
    assert ProviderConfig.from_env(env) == ProviderConfig("wuts", token="from-dsn")
    del env["WAMSG_DSN"]
    assert ProviderConfig.from_env(env) == ProviderConfig(
        "wawp", instance_id="I", access_token="from-vars"
    )
    env["WAMSG_DSN"] = "  "  # empty: unset
    assert ProviderConfig.from_env(env).provider == "wawp"


def test_env_settings_are_the_clis_variables() -> None:
    env = {
        "WAMSG_BASE_URL": "http://127.0.0.1:1/gowa",
        "WAMSG_DEVICE_ID": "phone",
        "WAMSG_TOKEN": "not gowa's",
        "WAMSG_USERNAME": "",
    }
    assert env_settings("gowa", env) == {
        "base_url": "http://127.0.0.1:1/gowa",
        "device_id": "phone",
    }
    assert env_settings("gowa", {"APP_DEVICE_ID": "x"}, prefix="APP_") == {"device_id": "x"}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "no provider configured: set WAMSG_DSN"),
        ({"WAMSG_PROVIDER": "nosuch"}, "WAMSG_PROVIDER: unknown provider 'nosuch'"),
        ({"WAMSG_PROVIDER": "wuts"}, "wuts: token is required: set WAMSG_TOKEN"),
        (
            {"WAMSG_PROVIDER": "wawp", "WAMSG_ACCESS_TOKEN": TOKEN},
            "wawp: instance_id is required: set WAMSG_INSTANCE_ID",
        ),
        (
            {"WAMSG_PROVIDER": "wuts", "WAMSG_TOKEN": TOKEN, "WAMSG_BASE_URL": "nope"},
            "WAMSG_BASE_URL: wuts: base_url must be an http(s) URL",
        ),
        ({"WAMSG_DSN": f"wuts://{TOKEN}@h"}, "WAMSG_DSN: wuts: the DSN's user or password"),
        ({"WAMSG_DSN": "wawp://I@h"}, "WAMSG_DSN: wawp: access_token is required"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProviderConfig.from_env(env)
    assert says in str(info.value)
    assert "SECRET" not in str(info.value)


def test_env_prefix_and_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DSN", "wuts://T@api.wuts.com.br")
    monkeypatch.delenv("WAMSG_DSN", raising=False)
    assert ProviderConfig.from_env(prefix="APP_") == ProviderConfig("wuts", token="T")
    monkeypatch.setenv("WAMSG_DSN", "waha+http://127.0.0.1:1")
    assert ProviderConfig.from_env().provider == "waha"


@pytest.mark.anyio
async def test_client_from_dsn_and_from_env_send(sandbox: tuple[Sandbox, str]) -> None:
    box, _ = sandbox
    async with Client.from_dsn(box.dsn("gowa"), timeout=5) as client:
        assert client.timeout == 5
        await client.send_text("+5511999990000", "from a DSN")
    async with Client.from_env({"WAMSG_DSN": box.dsn("wuts")}) as client:
        await client.send_text("+5511999990000", "from the environment")
    env = {"WAMSG_PROVIDER": "waha"} | {
        f"WAMSG_{k.upper()}": v for k, v in box.credentials("waha").items()
    }
    async with Client.from_env(env) as client:
        await client.send_text("+5511999990000", "from variables")
    texts = [(m.provider, m.text) for m in box.outbox.find()]
    assert texts == [
        ("gowa", "from a DSN"),
        ("wuts", "from the environment"),
        ("waha", "from variables"),
    ]


def test_client_classmethods_pass_options_and_refuse_settings() -> None:
    transport = wamsg.MockTransport(lambda r: HttpResponse(status=200))
    client = Client.from_dsn("wuts://T@api.wuts.com.br", transport=transport, timeout=None)
    assert client.transport is transport
    assert client.timeout is None
    with pytest.raises(ConfigError, match="provider settings go to the adapter"):
        Client.from_dsn("wuts://T@api.wuts.com.br", token="other")


# --------------------------------------------------------------------------
# TOML files
# --------------------------------------------------------------------------


def _file(box: Sandbox, root: str) -> str:
    return f"""
failover = ["primary", "backup"]

[router]
timeout = 20
failures = 1
cooldown = 60
retry = {{ attempts = 2, wait = false }}

[providers.primary]
dsn = "{box.dsn("gowa", root)}"

[providers.primary.client]
read_timeout = 5
limits = {{ rate = 50, burst = 5, pace = [0, 0.001] }}

[providers.backup]
provider = "wuts"
base_url = "{root}/wuts"
token = "${{WUTS_TOKEN}}"

[providers.unused]
dsn = "wawp://I:${{MISSING_IS_FINE_HERE}}@api.wawp.net"
"""


def test_load_config_reads_providers_order_and_options(tmp_path: Path) -> None:
    box = Sandbox()
    text = _file(box, SANDBOX_URL).replace("${MISSING_IS_FINE_HERE}", "tok")
    env = {"WUTS_TOKEN": box.credentials("wuts", SANDBOX_URL)["token"]}
    config = load_config(text, env=env)
    assert list(config.providers) == ["primary", "backup", "unused"]
    assert config.failover == ("primary", "backup")
    assert config.provider() == ProviderConfig.from_dsn(box.dsn("gowa", SANDBOX_URL))
    assert config.provider("backup") == ProviderConfig(
        "wuts", **box.credentials("wuts", SANDBOX_URL)
    )
    assert config.client_options("primary") == {
        "read_timeout": 5.0,
        "limits": {"rate": 50, "burst": 5, "pace": (0.0, 0.001)},
    }
    assert config.client_options("backup") == {}
    assert config.router_options == {
        "timeout": 20.0,
        "failures": 1,
        "cooldown": 60.0,
        "retry": wamsg.RetryPolicy(attempts=2, wait=False),
    }
    path = tmp_path / "wamsg.toml"
    path.write_text(text)
    assert load_config(path, env=env) == config
    assert load_config(str(path), env=env).source == str(path)


@pytest.mark.anyio
async def test_a_router_from_a_file_fails_over_in_its_order() -> None:
    box = Sandbox(seed=1)
    box.add_fault(Fault(kind="server_error", provider="gowa", times=None))
    text = _file(box, SANDBOX_URL).replace("${MISSING_IS_FINE_HERE}", "tok")
    config = load_config(text, env={"WUTS_TOKEN": box.credentials("wuts", SANDBOX_URL)["token"]})
    router = Router.from_config(config, client_options={"transport": sandbox_transport(box)})
    assert [c.provider for c in router.clients] == ["gowa", "wuts"]
    assert (router.failures, router.cooldown, router.timeout) == (1, 60.0, 20.0)
    gowa = router.clients[0]
    assert gowa.limits == wamsg.Limits(rate=50, burst=5, pace=(0.0, 0.001))
    async with router:
        sent = await router.send_text("+5511999990000", "failed over")
        again = await router.send_text("+5511999990000", "straight to the backup")
    assert [(a.provider, a.outcome) for a in sent.attempts] == [
        ("gowa", wamsg.Outcome.NOT_SENT),
        ("wuts", None),
    ]
    assert [a.provider for a in again.attempts] == ["wuts"]  # gowa cools down
    assert [(m.provider, m.text) for m in box.outbox.find()] == [
        ("wuts", "failed over"),
        ("wuts", "straight to the backup"),
    ]


@pytest.mark.anyio
async def test_a_router_from_a_file_over_real_http(sandbox: tuple[Sandbox, str]) -> None:
    box, _ = sandbox
    box.add_fault(Fault(kind="server_error", provider="waha", times=None))
    text = f"""
failover = ["waha", "gowa"]
[providers.waha]
dsn = "{box.dsn("waha")}"
[providers.gowa]
dsn = "{box.dsn("gowa")}"
"""
    async with Router.from_config(text, retry=wamsg.RetryPolicy(attempts=2, wait=False)) as router:
        result = await router.send_text("+5511999990000", "over loopback")
    assert [a.provider for a in result.attempts] == ["waha", "gowa"]
    assert [m.text for m in box.outbox.find(provider="gowa")] == ["over loopback"]


def test_client_from_config_picks_one_provider() -> None:
    box = Sandbox()
    text = _file(box, SANDBOX_URL).replace("${MISSING_IS_FINE_HERE}", "tok")
    config = load_config(text, env={"WUTS_TOKEN": "t"})
    client = Client.from_config(config, transport=sandbox_transport(box))
    assert client.provider == "gowa"
    assert client.limits == wamsg.Limits(rate=50, burst=5, pace=(0.0, 0.001))
    assert Client.from_config(config, "unused").provider == "wawp"
    assert Client.from_config(config.provider("backup")).provider == "wuts"
    with pytest.raises(ConfigError, match=r"<config>: no provider 'nope'; it has primary"):
        Client.from_config(config, "nope")


def test_env_interpolation() -> None:
    text = """
[providers.a]
dsn = "wawp://${INSTANCE}:${TOKEN}@${HOST}:8443/v$${literal}"
"""
    env = {"INSTANCE": "in/st", "TOKEN": "a/b@c:d?e#f%g h", "HOST": "api.example.com"}
    config = load_config(text, env=env).provider()
    # In the user, password and query, ${VAR} is the value as is: no encoding needed.
    assert config.settings == {
        "instance_id": "in/st",
        "access_token": Secret("a/b@c:d?e#f%g h"),
        "base_url": "https://api.example.com:8443/v${literal}",
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[providers.a]\ndsn = 'wuts://${NOPE}@h'", "<config> [providers.a] dsn: environment "),
        ("[providers.a]\ndsn = 'wuts://${NOPE@h'", "[providers.a] dsn: a '${' has no closing"),
        ("[providers.a]\ndsn = 'wuts://${1x}@h'", "must hold an environment variable name"),
        ("[providers.a]\ndsn = 'wawp://I@h'", "[providers.a] dsn: wawp: access_token is required"),
        ("[providers.a]\nprovider = 'wuts'\ntoken = '${NOPE}'", "[providers.a] token: environ"),
        ("[providers.a]\nprovider = 'wuts'", "[providers.a]: wuts: token is required"),
        ("[providers.a]\nprovider = 'wuts'\ntoken = 1", "[providers.a] token: must be a string"),
        ("[providers.a]\nprovider = 'wuts'\ntoken='t'\ncolour='x'", "[providers.a] colour: wuts:"),
        (
            "[providers.a]\nprovider = 'wuts'\ntoken='t'\nbase_url='ftp://x'",
            "[providers.a] base_url: wuts: base_url must be an http(s) URL",
        ),
        ("[providers.a]\nprovider = 'nosuch'", "[providers.a] provider: unknown provider"),
        ("[providers.a]\ndsn = 'wuts://T@h'\nprovider = 'wuts'", "give either dsn, or provider"),
        ("[providers.a]\ndsn = 'wuts://T@h'\ntoken = 't'", "give either dsn, or provider"),
        ("[providers.a]\ndsn = 1", "[providers.a] dsn: must be a string"),
        ("[providers.a]\nsession = 'x'", "[providers.a]: give dsn = "),
        ("providers = 1\n", "<config>: no providers"),
        ("failover = []\n", "<config>: no providers"),
        ("colour = 1\n[providers.a]\ndsn='wuts://T@h'", "unknown key 'colour' at the top"),
        ("failover = ['b']\n[providers.a]\ndsn='wuts://T@h'", "failover names 'b', which is not"),
        ("failover = 'a'\n[providers.a]\ndsn='wuts://T@h'", "failover must be a list"),
        ("failover = ['a', 'a']\n[providers.a]\ndsn='wuts://T@h'", "names a provider twice"),
        ("failover = []\n[providers.a]\ndsn='wuts://T@h'", "failover is empty"),
        ("[router]\ncolour = 1\n[providers.a]\ndsn='wuts://T@h'", "[router]: unknown option"),
        ("[router]\ntimeout = 0\n[providers.a]\ndsn='wuts://T@h'", "[router] timeout: must be"),
        ("[router]\ntimeout = 'x'\n[providers.a]\ndsn='wuts://T@h'", "[router] timeout: must"),
        ("[router]\nfailures = 0\n[providers.a]\ndsn='wuts://T@h'", "[router] failures: must"),
        ("[router]\ncooldown = -1\n[providers.a]\ndsn='wuts://T@h'", "[router] cooldown: must"),
        ("[router]\ndedupe = 1\n[providers.a]\ndsn='wuts://T@h'", "[router] dedupe: must be"),
        ("[router]\nretry = 3\n[providers.a]\ndsn='wuts://T@h'", "[router] retry: must be a tab"),
        (
            "[router]\nretry = {tries = 3}\n[providers.a]\ndsn='wuts://T@h'",
            "[router] retry: unknown option 'tries'; it takes attempts",
        ),
        (
            "[router]\nretry = {attempts = 'x'}\n[providers.a]\ndsn='wuts://T@h'",
            "[router] retry: Expected `int`, got `str`",
        ),
        (
            "[router]\nretry = {attempts = 0}\n[providers.a]\ndsn='wuts://T@h'",
            "[router] retry: RetryPolicy.attempts must be at least 1",
        ),
        (
            "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nlimit = {rate = 1}",
            "[providers.a.client]: unknown option 'limit'; it takes timeout",
        ),
        (
            "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nlimits = {rat = 1}",
            "[providers.a.client] limits: unknown option 'rat'; it takes rate",
        ),
        (
            "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nlimits = {pace = 1}",
            "[providers.a.client] limits: pace must be [min, max] seconds",
        ),
        (
            "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nlimits = {rate = 'x'}",
            "[providers.a.client] limits: rate must be a number",
        ),
        (
            "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nread_timeout = -1",
            "[providers.a.client] read_timeout: must be a number of seconds",
        ),
        ("[providers.a]\ndsn='wuts://T@h'\nclient = 1", "[providers.a.client]: must be a table"),
        ("[providers]\na = 1\n", "[providers.a]: must be a table"),
        ("[providers.a\ndsn = 1", "<config>: not valid TOML"),
    ],
)
def test_file_errors_name_the_section_and_the_field(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text + "\n", env={"T": TOKEN})
    assert says in str(info.value)


def test_limits_values_are_checked_when_the_client_is_built() -> None:
    config = load_config(
        "[providers.a]\ndsn='wuts://T@h'\n[providers.a.client]\nlimits = {rate = -1}\n"
    )
    with pytest.raises(ConfigError, match=r"<config> \[providers.a.client\] limits: Limits.rate"):
        Client.from_config(config)


def test_file_errors_never_echo_a_secret() -> None:
    for text in (
        f"[providers.a]\ndsn = 'wuts://{TOKEN}@h'\n",
        f"[providers.a]\ndsn = 'wuts://h?{TOKEN}'\n",
        f"[providers.a]\nprovider = 'wuts'\ntoken = '{TOKEN}'\nbase_url = 'x{TOKEN}'\n",
        f"[providers.a]\nprovider = 'wuts'\n'{TOKEN}' = 'x'\n",
    ):
        with pytest.raises(ConfigError) as info:
            load_config(text)
        assert "SECRET" not in str(info.value), str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)  # a folder


def test_config_objects_compare_and_are_immutable() -> None:
    one = Config({"a": ProviderConfig("wuts", token="t")})
    assert one == Config({"a": ProviderConfig("wuts", token="t")}, failover=["a"])
    assert one != Config({"a": ProviderConfig("wuts", token="u")})
    assert one.failover == ("a",)
    with pytest.raises(AttributeError):
        one.failover = ("b",)  # type: ignore[misc]
    with pytest.raises(ConfigError, match="no providers"):
        Config({})
    with pytest.raises(ConfigError, match=r"must be a wamsg\.ProviderConfig"):
        Config({"a": "wuts://t@h"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="client options for 'b'"):
        Config({"a": ProviderConfig("wuts", token="t")}, client_options={"b": {}})


def test_option_names_match_the_constructors() -> None:
    import inspect

    from wamsg.config import _LIMITS_FIELDS

    client = inspect.signature(Client).parameters
    router = inspect.signature(Router).parameters
    assert set(CLIENT_OPTIONS) <= set(client)
    assert set(ROUTER_OPTIONS) <= set(router)
    assert tuple(f.name for f in msgspec.structs.fields(wamsg.Limits)) == _LIMITS_FIELDS


def test_config_imports_no_io_library() -> None:
    from wamsg.testing._imports import io_imports

    assert io_imports("wamsg.config") == {}
    assert io_imports("wamsg.client")  # the check does see anyio


# --------------------------------------------------------------------------
# Third-party adapters
# --------------------------------------------------------------------------


class PlainAdapter:
    """A third-party adapter with no DsnFormat: the generic rule applies."""

    name: ClassVar[str] = "plain_gateway"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, *, base_url: str, token: str, region: str = "eu") -> None:
        self.base_url = base_url
        self.token = token
        self.region = region

    def encode(self, message: Message) -> HttpRequest:
        assert isinstance(message, Text)
        body = msgspec.json.encode({"to": message.recipient.value, "text": message.text})
        return HttpRequest(
            method="POST",
            url=f"{self.base_url}/send",
            headers=(("Authorization", Secret(self.token)),),
            body=body,
        )

    def decode(self, response: HttpResponse) -> SendResult:
        return SendResult(
            provider=self.name, message_id="m-1", status=Status.QUEUED, raw=response.body
        )


class EndpointAdapter(PlainAdapter):
    """No base_url at all: every setting is a query parameter, and no host."""

    name: ClassVar[str] = "endpoint_gateway"

    def __init__(self, *, endpoint: str, api_secret: str | Secret) -> None:
        super().__init__(base_url=endpoint, token=Secret(api_secret).reveal())


class DeclaredAdapter(PlainAdapter):
    """A third-party adapter declaring where its settings go."""

    name: ClassVar[str] = "declared_gateway"
    dsn: ClassVar[DsnFormat] = DsnFormat(password="token", secrets=frozenset({"region"}))


def test_a_third_party_adapter_without_a_declaration_uses_the_generic_rule() -> None:
    wamsg.register("plain_gateway", PlainAdapter)
    dsn = "plain_gateway+http://gw.example:8080/v1?token=tok/SECRET%26&region=br"
    config = ProviderConfig.from_dsn(dsn)
    assert config.settings == {
        "base_url": "http://gw.example:8080/v1",
        "token": Secret("tok/SECRET&"),  # secret by its name
        "region": "br",
    }
    assert str(config) == "plain_gateway+http://gw.example:8080/v1?token=***&region=br"
    assert config.to_dsn(reveal=True) == dsn
    adapter = config.create_adapter()
    assert isinstance(adapter, PlainAdapter)
    assert adapter.token == "tok/SECRET&"  # a plain str: its constructor is typed `str`
    assert [s.place for s in provider_settings("plain_gateway")] == ["url", "query", "query"]
    assert dsn_form("plain_gateway") == (
        "plain_gateway[+http]://HOST[:PORT][/PATH]?token=TOKEN&region=REGION"
    )
    with pytest.raises(ConfigError, match="plain_gateway: its DSN has no user or password"):
        ProviderConfig.from_dsn("plain_gateway://t@gw.example?token=x")
    with pytest.raises(ConfigError, match="plain_gateway: token is required: add \\?token="):
        ProviderConfig.from_dsn("plain_gateway://gw.example")


def test_a_third_party_adapter_without_a_url_setting() -> None:
    wamsg.register("endpoint_gateway", EndpointAdapter)
    config = ProviderConfig(
        "endpoint_gateway", endpoint="https://gw.example/send?x=1", api_secret="s3cr3t!"
    )
    dsn = config.to_dsn(reveal=True)
    assert dsn == (
        "endpoint_gateway://?endpoint=https://gw.example/send%3Fx%3D1&api_secret=s3cr3t%21"
    )
    assert ProviderConfig.from_dsn(dsn) == config
    assert "s3cr3t" not in repr(config)
    with pytest.raises(ConfigError, match="takes no base_url, so its DSN has no host"):
        ProviderConfig.from_dsn("endpoint_gateway://gw.example?endpoint=x&api_secret=y")


def test_a_third_party_adapter_with_a_declaration() -> None:
    wamsg.register("declared_gateway", DeclaredAdapter)
    config = ProviderConfig.from_dsn("declared_gateway://:tok@gw.example?region=br")
    assert config.settings == {
        "token": Secret("tok"),
        "base_url": "https://gw.example",
        "region": Secret("br"),  # declared secret
    }
    assert str(config) == "declared_gateway://:***@gw.example?region=***"
    with pytest.raises(ConfigError, match="the DSN's user part must be empty"):
        ProviderConfig.from_dsn("declared_gateway://u:tok@gw.example")


@pytest.mark.anyio
async def test_a_third_party_adapter_sends_from_a_dsn() -> None:
    wamsg.register("plain_gateway", PlainAdapter)
    seen: list[HttpRequest] = []

    def answer(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(status=200, body=b"{}")

    transport = wamsg.MockTransport(answer)
    dsn = "plain_gateway://gw.example?token=T"
    async with Client.from_dsn(dsn, transport=transport) as client:
        result = await client.send_text("+5511999990000", "hi")
    assert result.provider == "plain_gateway"
    assert seen[0].url == "https://gw.example/send"


def test_a_factory_taking_any_settings() -> None:
    def factory(**settings: Any) -> wamsg.Adapter:
        return PlainAdapter(base_url="https://x", token=str(settings.get("token", "t")))

    wamsg.register("loose_gateway", factory)
    config = ProviderConfig.from_dsn("loose_gateway://?token=T&anything=1")
    assert config.settings == {"token": Secret("T"), "anything": "1"}
    assert ProviderConfig.from_dsn(config.to_dsn(reveal=True)) == config
    assert dsn_form("loose_gateway") == "loose_gateway://[?SETTING=VALUE&...]"
    with pytest.raises(ConfigError, match="setting names are identifiers"):
        ProviderConfig.from_dsn("loose_gateway://?a%20b=1")


def test_a_bad_declaration_is_a_clear_error() -> None:
    class Wrong(PlainAdapter):
        dsn: ClassVar[DsnFormat] = DsnFormat(user="username")

    class NotAFormat(PlainAdapter):
        dsn: ClassVar[object] = "user:password"

    wamsg.register("wrong_gateway", Wrong)
    with pytest.raises(
        ConfigError, match="wrong_gateway: the adapter's DsnFormat names 'username'"
    ):
        ProviderConfig("wrong_gateway", base_url="https://x", token="t")
    wamsg.register("odd_gateway", NotAFormat)
    with pytest.raises(ConfigError, match=r"dsn attribute must be a wamsg\.providers\.config\.Dsn"):
        ProviderConfig("odd_gateway", base_url="https://x", token="t")
    with pytest.raises(ConfigError, match="must name different settings"):
        DsnFormat(user="token", password="token")


@st.composite
def plain_configs(draw: st.DrawFn) -> ProviderConfig:
    return ProviderConfig(
        "plain_gateway",
        base_url=draw(base_urls()),
        token=draw(values),
        region=draw(_maybe(values)),
    )


@pytest.fixture
def plain_gateway() -> None:
    wamsg.register("plain_gateway", PlainAdapter)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=plain_configs())
def test_third_party_configs_round_trip(plain_gateway: None, config: ProviderConfig) -> None:
    assert ProviderConfig.from_dsn(config.to_dsn(reveal=True)) == config


# --------------------------------------------------------------------------
# docs/configuration.md
# --------------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_docs_provider_table_parses() -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    forms = {}
    for row in rows:
        cells = [c.strip().strip("`") for c in row.strip("|").split("|")]
        if cells[0] in PROVIDERS:
            forms[cells[0]] = cells[1]
    assert sorted(forms) == list(PROVIDERS)
    for provider, dsn in forms.items():
        assert ProviderConfig.from_dsn(dsn).provider == provider


def test_the_docs_toml_example_loads() -> None:
    (text,) = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    config = load_config(text, env={"WAWP_TOKEN": "t", "WAHA_API_KEY": "k"})
    assert config.failover == ("primary", "backup")
    router = Router.from_config(config)
    assert [c.provider for c in router.clients] == ["wawp", "waha"]
    assert (router.failures, router.cooldown, router.timeout) == (3, 30.0, 30.0)
    assert router.clients[1].limits == wamsg.Limits(rate=5, burst=2, pace=(0.5, 2.0))


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        tuple(c.strip().strip("`") for c in row.strip("|").split("|"))
        for row in DOC.read_text().split("## Errors")[1].splitlines()
        if row.startswith("| `") and "://" in row.split("|")[1]
    ],
)
def test_the_docs_error_table(dsn: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProviderConfig.from_dsn(dsn)
    start = message.split("...")[0]
    assert str(info.value).startswith(start)


# -- from the review: nothing pasted in the wrong place is echoed -------------

SECRET_LIKE = "SeCrEt42xyzAbC"


def _no_secret_anywhere(error: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{current!s} {current!r} {current.args!r} {vars(current)!r}"
        assert SECRET_LIKE not in text, text
        current = current.__cause__ or current.__context__


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://[{SECRET_LIKE}]",
        f"http://{SECRET_LIKE}\uff20x.com",  # a fullwidth @: urlsplit refuses it, quoting it
        f"http://[{SECRET_LIKE}]:80",
        f"http://h:{SECRET_LIKE}",
        "http://[example.com]",
    ],
)
def test_a_bad_base_url_is_a_config_error_that_shows_nothing(base_url: str) -> None:
    with pytest.raises(wamsg.ConfigError, match="waha: base_url") as info:
        wamsg.ProviderConfig("waha", base_url=base_url)
    _no_secret_anywhere(info.value)
    with pytest.raises(wamsg.ConfigError, match="waha: base_url") as direct:
        wamsg.create_adapter("waha", base_url=base_url)
    _no_secret_anywhere(direct.value)


def test_a_bracketed_ipv6_base_url_is_kept() -> None:
    config = wamsg.ProviderConfig("waha", base_url="http://[::1]:3000")
    assert str(config) == "waha+http://[::1]:3000"


@pytest.mark.parametrize(
    "text",
    [
        f"wuts://{SECRET_LIKE}@api.wuts.com.br",
        f'providers.a.dsn = "wuts://{SECRET_LIKE}@api.wuts.com.br"',
    ],
)
def test_load_config_does_not_echo_what_looks_like_a_dsn(text: str) -> None:
    with pytest.raises(wamsg.ConfigError, match="looks like a DSN or TOML text") as info:
        wamsg.load_config(text)
    _no_secret_anywhere(info.value)


def test_unknown_setting_names_are_shown_only_when_they_look_like_names() -> None:
    with pytest.raises(wamsg.ConfigError) as info:
        wamsg.Client("waha", **{SECRET_LIKE: "x"})
    _no_secret_anywhere(info.value)
    with pytest.raises(wamsg.ConfigError, match="'colour'"):
        wamsg.Client("waha", base_url="http://h", colour="x")


@pytest.mark.parametrize("name", ["client_key", "license_key", "auth", "bearer", "api_key"])
def test_one_rule_for_secret_setting_names(name: str) -> None:
    from wamsg.providers.config import looks_secret

    assert looks_secret(name)
    assert not looks_secret("device_id")
    assert not looks_secret("session")


# -- follow-ups from the issue 7 review ---------------------------------------


class AccountAdapter(PlainAdapter):
    """A gateway whose DSN user part is an account that has a default."""

    dsn: ClassVar[DsnFormat] = DsnFormat(user="account", password="token")

    def __init__(self, *, base_url: str, token: str, account: str = "main") -> None:
        super().__init__(base_url=base_url, token=token)
        self.account = account


def test_a_user_setting_with_a_default_may_be_left_out() -> None:
    wamsg.register("account_gateway", AccountAdapter)
    config = ProviderConfig("account_gateway", base_url="https://gw.example", token="T0k")
    dsn = config.to_dsn(reveal=True)
    assert dsn.startswith("account_gateway://main:T0k@")
    assert ProviderConfig.from_dsn(dsn) == config
    assert "T0k" not in config.to_dsn()


@pytest.mark.parametrize(
    "dsn",
    [
        f"wawp://instance:{SECRET_LIKE}%ff@",  # not UTF-8 once decoded
        f"waha://{SECRET_LIKE}%ff@localhost:3000",
    ],
)
def test_undecodable_dsn_parts_chain_nothing(dsn: str) -> None:
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        ProviderConfig.from_dsn(dsn)
    assert info.value.__context__ is None
    _no_secret_anywhere(info.value)


def test_brackets_hold_only_an_ipv6_address() -> None:
    with pytest.raises(ConfigError, match="not an IPv6 address"):
        ProviderConfig.from_dsn("waha://k@[abc]:3000")
    with pytest.raises(ConfigError, match="waha: base_url"):
        ProviderConfig("waha", base_url="http://[1::2::3]")
    assert (
        ProviderConfig.from_dsn("waha://k@[::1]:3000").settings["base_url"] == "https://[::1]:3000"
    )
