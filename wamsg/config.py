"""Configuration by DSN string, environment variables or a TOML file.

One provider's configuration is a :class:`ProviderConfig`: the provider's
name and its settings, secrets held as :class:`~wamsg.Secret`. Written as
one string, it is a DSN::

    <provider>[+http|+https]://[user[:password]@]host[:port][/path][?key=value&...]

    wawp://INSTANCE:TOKEN@api.wawp.net
    waha+http://KEY@localhost:3000?session=default
    gowa+http://user:pass@localhost:3000?device_id=my-phone
    wuts://TOKEN@api.wuts.com.br

The scheme names the provider (``+http`` or ``+https`` the protocol of its
URL; plain ``<provider>://`` is https). Each adapter declares which of its
settings the user and password parts hold with a
:class:`~wamsg.providers.config.DsnFormat`; its URL setting (``base_url``)
is made of the scheme, host, port and path, and every other setting is a
query parameter. Every part is percent-encoded (RFC 3986; ``+`` is a plus,
not a space), so any token round-trips: for every config ``c``,
``ProviderConfig.from_dsn(c.to_dsn(reveal=True)) == c``.

:meth:`ProviderConfig.from_env` reads ``WAMSG_DSN``, or ``WAMSG_PROVIDER``
and one ``WAMSG_<SETTING>`` variable per setting. :func:`load_config` reads
a TOML file with several named providers, a failover order and client and
router options (:class:`Config`).

Nothing here prints a secret: ``str``, ``repr`` and :meth:`~ProviderConfig.to_dsn`
mask every secret setting and phone numbers, and errors name the provider
and the setting, never a value. This module does no network I/O and imports
no HTTP or async library; :func:`load_config` reads its file.
"""

from __future__ import annotations

import inspect
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import msgspec

from ._redact import REDACTED, Secret, redact
from .errors import ConfigError
from .providers import available, get_adapter
from .providers import create_adapter as _create_adapter
from .providers.base import Adapter
from .providers.config import DsnFormat, base_url_setting, looks_secret, shown_name
from .retry import RetryPolicy

__all__ = [
    "CLIENT_OPTIONS",
    "ROUTER_OPTIONS",
    "Config",
    "ProviderConfig",
    "Setting",
    "dsn_form",
    "env_settings",
    "load_config",
    "provider_settings",
]

Place = Literal["user", "password", "url", "query"]

# -- what a provider takes ------------------------------------------------------

# A setting whose name says it is a credential (looks_secret) is masked even
# when its adapter does not type it ``Secret``: masking a non-secret is the
# safe mistake. Unknown setting names are echoed in errors only when they look
# like one (shown_name): a token pasted in the wrong place is not.
#
# No error raised here chains another (``__context__``): a UnicodeDecodeError
# or urlsplit's ValueError holds the text it failed on, so each is raised after
# its ``except`` block has ended.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Setting(NamedTuple):
    """One setting a provider's adapter takes, and where a DSN holds it."""

    name: str
    required: bool
    secret: bool
    """Masked in every ``str``, ``repr`` and masked DSN."""
    place: Place
    """``user`` / ``password`` (the DSN's userinfo), ``url`` (scheme, host,
    port and path) or ``query`` (``?name=value``)."""
    default: Any = None
    """The constructor's default (None when required)."""


class _Spec:
    """A provider's settings and DSN format, read from its adapter."""

    __slots__ = ("fmt", "name", "settings", "takes_any", "takes_secret", "url", "url_default")

    def __init__(self, provider: str) -> None:
        if not isinstance(provider, str):
            raise ConfigError(
                f"provider must be a name (str) such as 'wawp', not {type(provider).__name__}"
            )
        factory = get_adapter(provider)  # unknown names: the installed ones are listed
        self.name = provider.strip().lower()
        declared = getattr(factory, "dsn", None)
        if declared is None:
            declared = DsnFormat()
        elif not isinstance(declared, DsnFormat):
            raise ConfigError(
                f"{self.name}: the adapter's dsn attribute must be a "
                "wamsg.providers.config.DsnFormat"
            )
        self.fmt: DsnFormat = declared
        try:
            params = list(inspect.signature(factory).parameters.values())
            unknown = False
        except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
            params, unknown = [], True
        self.takes_any = unknown or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        places: dict[str, Place] = {}
        if declared.user is not None:
            places[declared.user] = "user"
        if declared.password is not None:
            places[declared.password] = "password"
        named = [
            p
            for p in params
            if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        names = {p.name for p in named}
        self.url: str | None = declared.url if declared.url in names else None
        if self.url is not None:
            places[self.url] = "url"
        for slot in (declared.user, declared.password):
            if slot is not None and slot not in names and not self.takes_any:
                raise ConfigError(
                    f"{self.name}: the adapter's DsnFormat names {slot!r}, "
                    "a setting the adapter does not take"
                )
        self.settings: dict[str, Setting] = {}
        #: Settings whose constructor takes a Secret (typed ``str | Secret``).
        self.takes_secret: set[str] = set()
        for p in named:
            typed_secret = "Secret" in str(p.annotation)
            if typed_secret:
                self.takes_secret.add(p.name)
            required = p.default is inspect.Parameter.empty
            self.settings[p.name] = Setting(
                name=p.name,
                required=required,
                secret=typed_secret or p.name in declared.secrets or looks_secret(p.name),
                place=places.get(p.name, "query"),
                default=None if required else p.default,
            )
        for slot, place in places.items():  # slots a **settings factory takes
            if slot not in self.settings:
                self.settings[slot] = self.unlisted(slot, place)
        self.url_default: str | None = None
        if self.url is not None:
            default = self.settings[self.url].default
            if isinstance(default, str):
                self.url_default = _normal_url(self.name, self.url, default)

    def unlisted(self, name: str, place: Place = "query") -> Setting:
        """A setting a factory taking ``**settings`` gets without naming it."""
        secret = name in self.fmt.secrets or looks_secret(name)
        return Setting(name=name, required=False, secret=secret, place=place)

    def setting(self, name: str, *, in_dsn: bool = False) -> Setting:
        """The setting ``name``, or a ConfigError listing the ones it takes."""
        found = self.settings.get(name)
        if found is not None:
            return found
        if not self.takes_any and in_dsn:
            query = [s.name for s in self.settings.values() if s.place == "query"]
            takes = f"it takes {_names(query)} there" if query else "it takes none"
            raise ConfigError(
                f"{self.name}: unknown setting {shown_name(name)} in DSN query; {takes}: "
                f"{dsn_form(self.name)}"
            )
        if not self.takes_any:
            raise ConfigError(
                f"{self.name}: unknown setting {shown_name(name)}; "
                f"it takes {', '.join(self.settings)}"
            )
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise ConfigError(f"{self.name}: setting names are identifiers, like device_id")
        return self.unlisted(name)

    def where(self, setting: Setting) -> str:
        """Where a DSN holds ``setting``, for error messages."""
        if setting.place == "url":
            return "the DSN's scheme, host, port and path"
        if setting.place == "query":
            return f"the DSN's query (?{setting.name}=...)"
        return f"the DSN's {setting.place} part ({dsn_form(self.name)})"


#: A file name shown in errors: plain path characters only.
_PATH_SHOWN = re.compile(r"[\w./~+\-]{1,200}")


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def provider_settings(provider: str) -> tuple[Setting, ...]:
    """Every setting ``provider``'s adapter takes, in its constructor's order.

    A setting is secret when its constructor parameter is typed with
    :class:`~wamsg.Secret`, when the adapter's
    :class:`~wamsg.providers.config.DsnFormat` lists it in ``secrets``, or
    when its name says so (:func:`~wamsg.providers.config.looks_secret`:
    ``token``, ``key``, ``secret``, ``passw``, ``auth``, ``bearer``,
    ``credential`` or ``private`` anywhere in it).
    """
    return tuple(_Spec(provider).settings.values())


def dsn_form(provider: str) -> str:
    """What ``provider``'s DSN looks like, e.g. ``wuts://TOKEN@api.wuts.com.br``.

    Optional parts are in brackets; upper-case words are the settings' values.
    """
    spec = _Spec(provider)
    fmt = spec.fmt
    userinfo = ""
    slots = [spec.settings[s] for s in (fmt.user, fmt.password) if s is not None]
    if slots:
        user = fmt.user.upper() if fmt.user is not None else ""
        userinfo = f"{user}:{fmt.password.upper()}" if fmt.password is not None else user
        userinfo += "@"
        if not any(s.required for s in slots):
            userinfo = f"[{userinfo}]"
    scheme = spec.name
    where = ""
    if spec.url is not None:
        if spec.url_default is not None:
            parts = urlsplit(spec.url_default)
            scheme += "+http" if parts.scheme == "http" else ""
            where = parts.netloc + parts.path
        else:
            scheme += "[+http]"
            where = "HOST[:PORT][/PATH]"
    query = [s for s in spec.settings.values() if s.place == "query"]
    tail = ""
    if query:
        tail = "?" + "&".join(f"{s.name}={s.name.upper()}" for s in query)
        if not any(s.required for s in query):
            tail = f"[{tail}]"
    elif spec.takes_any:
        tail = "[?SETTING=VALUE&...]"
    return f"{scheme}://{userinfo}{where}{tail}"


# -- URLs -------------------------------------------------------------------------

_HOST_CHARS = re.compile(r"[\w.~-]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _is_ipv6(host: str) -> bool:
    """Whether ``host`` is an IPv6 address (without a ``%zone``)."""
    if "%" in host:
        return False
    try:
        ipaddress.IPv6Address(host)
    except ValueError:  # its text quotes the host; not kept
        return False
    return True


def _check_host(provider: str, name: str, host: str) -> None:
    """A host name or an IPv4 address, or an IPv6 address when it holds a ':'."""
    ok = _is_ipv6(host) if ":" in host else bool(_HOST_CHARS.fullmatch(host))
    if not ok:
        raise ConfigError(
            f"{provider}: {name} has a bad host (a name, an IPv4 address or an [IPv6] address)"
        )


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _check_path(provider: str, name: str, path: str) -> None:
    if any(c.isspace() or not c.isprintable() for c in path):
        raise ConfigError(
            f"{provider}: {name} must not hold spaces or control characters "
            "(percent-encode them: a space is %20)"
        )
    if _BAD_ESCAPE.search(path):
        raise ConfigError(f"{provider}: {name} has a '%' that is not a percent-escape (%25)")


def _normal_url(provider: str, name: str, value: str) -> str:
    """``value`` checked, with its scheme and host in lower case and no trailing slash."""
    url = base_url_setting(provider, value)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{provider}: {name} has a bad port (a number 1-65535)")
    host = parts.hostname or ""
    _check_host(provider, name, host)
    path = parts.path.rstrip("/")
    _check_path(provider, name, path)
    return f"{parts.scheme.lower()}://{_netloc(host, port)}{path}"


# -- one provider ---------------------------------------------------------------------


def _clean(spec: _Spec, setting: Setting, value: object) -> str | None:
    """A setting's value as stored: None when it is the default (or None)."""
    if value is None:
        return None
    if isinstance(value, Secret):
        value = value.reveal()
    if not isinstance(value, str):
        raise ConfigError(
            f"{spec.name}: {setting.name} must be a string, not {type(value).__name__}"
        )
    try:
        value.encode()
        encodable = True
    except UnicodeEncodeError:  # a lone surrogate: no DSN, header or body can hold it
        encodable = False  # the error holds the value: raised without it
    if not encodable:
        raise ConfigError(f"{spec.name}: {setting.name} is not valid Unicode text")
    if setting.place == "url":
        url = _normal_url(spec.name, setting.name, value)
        return None if url == spec.url_default else url
    if setting.place in ("user", "password") and not value:
        raise ConfigError(f"{spec.name}: {setting.name} is empty")
    return None if value == setting.default else value


class ProviderConfig:
    """One provider and its settings: what :class:`~wamsg.Client` needs to reach it.

    ::

        config = wamsg.ProviderConfig.from_dsn("wuts://TOKEN@api.wuts.com.br")
        config = wamsg.ProviderConfig("wuts", token=os.environ["WUTS_TOKEN"])
        client = wamsg.Client(config.create_adapter())

    Immutable and compared by value. Secret settings (tokens, passwords, API
    keys) are held as :class:`~wamsg.Secret`; ``str`` gives the masked DSN
    and ``repr`` shows it, so neither ever holds a secret or a full phone
    number. Settings equal to the adapter's defaults are left out, so two
    configs that make the same adapter compare equal.

    Args:
        provider: a registered provider name (``"wawp"``).
        **settings: the adapter's settings; None means the default.

    Raises:
        ConfigError: unknown provider or setting, a missing required
            setting, or a value that is not a string, naming the provider
            and the setting.
    """

    __slots__ = ("_provider", "_settings", "_spec")

    _provider: str
    _settings: dict[str, str | Secret]
    _spec: _Spec

    def __init__(self, provider: str, /, **settings: str | Secret | None) -> None:
        spec = _Spec(provider)
        kept: dict[str, str | Secret] = {}
        for name, value in settings.items():
            setting = spec.setting(name)
            plain = _clean(spec, setting, value)
            if plain is not None:
                kept[name] = Secret(plain) if setting.secret else plain
        missing = [s.name for s in spec.settings.values() if s.required and s.name not in kept]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ConfigError(f"{spec.name}: {_names(missing)} {verb} required")
        user, password = spec.fmt.user, spec.fmt.password
        if (
            user is not None
            and password in kept
            and user not in kept
            and not isinstance(spec.settings[user].default, str)
        ):
            # The DSN could not say it: user:password@ with no user. A user
            # setting with a default is written as that default (to_dsn).
            raise ConfigError(f"{spec.name}: {password} is set, so {user} is required too")
        object.__setattr__(self, "_provider", spec.name)
        object.__setattr__(self, "_settings", kept)
        object.__setattr__(self, "_spec", spec)

    # -- reading --------------------------------------------------------------

    @classmethod
    def from_dsn(cls, dsn: str) -> ProviderConfig:
        """The config a DSN string describes (see the module's docstring).

        Raises:
            ConfigError: a malformed DSN (no scheme, a bad port or escape,
                a query key given twice...), an unknown provider (the
                installed ones are listed) or setting, or a missing one;
                the message never holds a value from the DSN.
        """
        provider, settings = _parse_dsn(dsn)
        return cls(provider, **settings)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, prefix: str = "WAMSG_"
    ) -> ProviderConfig:
        """The config in environment variables (``os.environ`` by default).

        ``WAMSG_DSN`` wins; otherwise ``WAMSG_PROVIDER`` names the provider
        and each setting comes from ``WAMSG_<SETTING>`` (``WAMSG_ACCESS_TOKEN``),
        as the ``wamsg`` command reads them. Empty variables count as unset.
        ``prefix`` replaces ``WAMSG_``.

        Raises:
            ConfigError: naming the variable that is missing or invalid.
        """
        env = os.environ if env is None else env
        failure: str | None = None
        dsn = env.get(f"{prefix}DSN", "").strip()
        if dsn:
            try:
                return cls.from_dsn(dsn)
            except ConfigError as exc:
                failure = exc.message
            raise ConfigError(f"{prefix}DSN: {failure}")
        provider = env.get(f"{prefix}PROVIDER", "").strip()
        if not provider:
            raise ConfigError(
                f"no provider configured: set {prefix}DSN (e.g. wuts://TOKEN@api.wuts.com.br) "
                f"or {prefix}PROVIDER (one of {', '.join(available())}) and its "
                f"{prefix}<SETTING> variables"
            )
        try:
            spec = _Spec(provider)
        except ConfigError as exc:
            failure = exc.message
        if failure is not None:
            raise ConfigError(f"{prefix}PROVIDER: {failure}")
        settings = env_settings(spec.name, env, prefix=prefix)
        for name, value in settings.items():
            try:
                _clean(spec, spec.settings[name], value)
            except ConfigError as exc:
                failure = exc.message
            if failure is not None:
                raise ConfigError(f"{prefix}{name.upper()}: {failure}")
        missing = [s for s in spec.settings.values() if s.required and s.name not in settings]
        if missing:
            raise ConfigError(
                f"{spec.name}: {missing[0].name} is required: set {prefix}{missing[0].name.upper()}"
                f" (or {prefix}DSN, e.g. {dsn_form(spec.name)})"
            )
        return cls(spec.name, **settings)

    # -- what it holds ----------------------------------------------------------

    @property
    def provider(self) -> str:
        """The provider's name, in lower case (``"wawp"``)."""
        return self._provider

    @property
    def settings(self) -> Mapping[str, str | Secret]:
        """The settings given (defaults left out); secrets as :class:`~wamsg.Secret`."""
        return MappingProxyType(self._settings)

    def replace(self, **settings: str | Secret | None) -> ProviderConfig:
        """A copy with ``settings`` changed (None goes back to the default)."""
        return ProviderConfig(self._provider, **{**self._settings, **settings})

    def create_adapter(self) -> Adapter:
        """The provider's adapter with these settings (no I/O).

        Raises:
            ConfigError: the adapter refuses a setting (a token with a space...).
        """
        spec = self._spec
        settings: dict[str, Any] = {}
        for name, value in self._settings.items():
            if isinstance(value, Secret) and name not in spec.takes_secret:
                value = value.reveal()  # the constructor takes a plain str
            settings[name] = value
        return _create_adapter(self._provider, **settings)

    # -- writing ------------------------------------------------------------------

    def to_dsn(self, *, reveal: bool = False) -> str:
        """The DSN string of this config.

        Masked by default: each secret is ``***`` and phone numbers are
        masked, so the result is safe to log. ``reveal=True`` gives the real
        DSN, with which :meth:`from_dsn` gives back an equal config.
        """
        spec = self._spec

        def text(name: str, safe: str = "") -> str | None:
            value = self._settings.get(name)
            if value is None:
                return None
            if isinstance(value, Secret):
                return quote(value.reveal(), safe=safe) if reveal else REDACTED
            return quote(value, safe=safe) if reveal else quote(redact(value), safe=safe + "*")

        scheme, location = spec.name, ""
        url = self._settings.get(spec.url) if spec.url is not None else None
        if spec.url is not None and url is None:
            url = spec.url_default
        if isinstance(url, str):
            parts = urlsplit(url)
            if parts.scheme == "http":
                scheme += "+http"
            location = _netloc(parts.hostname or "", parts.port) + (
                parts.path if reveal else redact(parts.path)
            )
        user = text(spec.fmt.user) if spec.fmt.user is not None else None
        password = text(spec.fmt.password) if spec.fmt.password is not None else None
        if user is None and password is not None and spec.fmt.user is not None:
            # A password needs a user in the DSN: the user setting's default.
            default = spec.settings[spec.fmt.user].default
            if isinstance(default, str):
                user = quote(default, safe="") if reveal else quote(redact(default), safe="*")
        userinfo = ""
        if user is not None or password is not None:
            userinfo = (user or "") + (f":{password}" if password is not None else "") + "@"
        query = [
            f"{name}={text(name, safe='@:/,')}"
            for name in self._ordered()
            if spec.setting(name).place == "query"
        ]
        return f"{scheme}://{userinfo}{location}" + ("?" + "&".join(query) if query else "")

    def _ordered(self) -> list[str]:
        known = [n for n in self._spec.settings if n in self._settings]
        return known + sorted(n for n in self._settings if n not in self._spec.settings)

    def __str__(self) -> str:
        return self.to_dsn()

    def __repr__(self) -> str:
        return f"ProviderConfig({self.to_dsn()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProviderConfig):
            return NotImplemented
        return self._provider == other._provider and self._settings == other._settings

    def __hash__(self) -> int:
        return hash((self._provider, frozenset(self._settings.items())))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ProviderConfig is immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("ProviderConfig is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._provider, dict(self._settings)))


def _rebuild(provider: str, settings: dict[str, str | Secret]) -> ProviderConfig:
    return ProviderConfig(provider, **settings)


def env_settings(
    provider: str, env: Mapping[str, str] | None = None, *, prefix: str = "WAMSG_"
) -> dict[str, str]:
    """``provider``'s settings found in ``{prefix}<SETTING>`` variables (empty ones skipped).

    ``WAMSG_ACCESS_TOKEN`` is ``access_token``; variables of settings the
    provider does not take are ignored.
    """
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for setting in _Spec(provider).settings.values():
        value = env.get(f"{prefix}{setting.name.upper()}")
        if value:
            found[setting.name] = value
    return found


# -- DSN parsing ----------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\+([A-Za-z0-9]*))?://")
_PORT = re.compile(r"[0-9]{1,5}")


def _decode(provider: str, what: str, raw: str, expand: Callable[[str], str] | None) -> str:
    """A percent-encoded part of a DSN, decoded (then ``${VAR}``-expanded)."""
    if _BAD_ESCAPE.search(raw):
        raise ConfigError(
            f"{provider}: the DSN's {what} has a '%' that is not a percent-escape; write '%' as %25"
        )
    try:
        value: str | None = unquote(raw, errors="strict")
    except UnicodeDecodeError:  # it holds the bytes: raised without it
        value = None
    if value is None:
        raise ConfigError(f"{provider}: the DSN's {what} is not UTF-8 once decoded")
    return expand(value) if expand is not None else value


def _host_port(provider: str, raw: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket or not host:
            raise ConfigError(f"{provider}: the DSN's [IPv6] host has no closing ']'")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{provider}: the DSN has text after its [IPv6] host")
        if not _is_ipv6(host):
            raise ConfigError(f"{provider}: the DSN's [host] in brackets is not an IPv6 address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = raw.partition(":")
        port_text = port_text_ if colon else None
        if ":" in port_text_:
            raise ConfigError(f"{provider}: an IPv6 host goes in brackets: [::1]:8080")
    port = None
    if port_text is not None:
        port = int(port_text) if _PORT.fullmatch(port_text) else 0
        if not 1 <= port <= 65535:
            raise ConfigError(f"{provider}: the DSN has a bad port (a number 1-65535)")
    host = host.lower()
    if not host and port is not None:
        raise ConfigError(f"{provider}: the DSN has a port but no host")
    if host:
        _check_host(provider, "the DSN", host)
    return host, port


def _parse_dsn(
    dsn: object, expand: Callable[[str], str] | None = None
) -> tuple[str, dict[str, str]]:
    """(provider, settings) of a DSN, every setting required by the provider present.

    With ``expand``, each decoded user, password and query value, and the
    raw host, port and path, go through it (``${VAR}`` in files).
    """
    if not isinstance(dsn, str):
        raise ConfigError(f"a DSN is a string, not {type(dsn).__name__}")
    text = dsn.strip()
    found = _SCHEME.match(text)
    if found is None:
        raise ConfigError(
            "a DSN starts with a provider name and '://', e.g. wuts://TOKEN@api.wuts.com.br; "
            f"installed providers: {', '.join(available())}"
        )
    if found.group(1).lower() in ("http", "https"):
        raise ConfigError(
            "a DSN starts with the provider's name, not http(s): e.g. waha+http://KEY@host:3000; "
            f"installed providers: {', '.join(available())}"
        )
    spec = _Spec(found.group(1))
    name, fmt = spec.name, spec.fmt
    suffix = found.group(2)
    if suffix is not None and suffix.lower() not in ("http", "https"):
        raise ConfigError(
            f"{name}: the DSN's scheme is {name}://, {name}+http:// or {name}+https://"
        )
    rest = text[found.end() :]
    if any(c.isspace() or not c.isprintable() for c in rest):
        raise ConfigError(
            f"{name}: the DSN holds a space or a control character; percent-encode it (%20)"
        )
    if "#" in rest:
        raise ConfigError(f"{name}: the DSN holds a '#'; percent-encode it as %23")
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    path = slash + path
    userinfo, at, host_port = authority.rpartition("@")
    if "@" in path:
        raise ConfigError(
            f"{name}: the DSN's user or password holds a '/'; percent-encode it as %2F"
        )
    if expand is not None:
        host_port, path = expand(host_port), expand(path)
    settings: dict[str, str] = {}

    # user:password@
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = _decode(name, "user part", raw_user, expand)
        password = _decode(name, "password part", raw_password, expand) if colon else ""
        if fmt.user is None and fmt.password is None:
            raise ConfigError(
                f"{name}: its DSN has no user or password part; settings go in the query: "
                f"{dsn_form(name)}"
            )
        if user:
            if fmt.user is None:
                raise ConfigError(f"{name}: the DSN's user part must be empty: {dsn_form(name)}")
            settings[fmt.user] = user
        if colon and fmt.password is None:
            raise ConfigError(
                f"{name}: the DSN has a password part, but {name} takes only "
                f"{fmt.user} before the host ({dsn_form(name)}); percent-encode ':' as %3A"
            )
        if password:
            assert fmt.password is not None
            if fmt.user is not None and not user:
                raise ConfigError(
                    f"{name}: the DSN has a password ({fmt.password}) but no user "
                    f"({fmt.user}): {dsn_form(name)}"
                )
            settings[fmt.password] = password

    # scheme, host, port and path
    host, port = _host_port(name, host_port)
    if spec.url is None:
        if host or path or suffix is not None:
            raise ConfigError(
                f"{name}: the adapter takes no base_url, so its DSN has no host or path: "
                f"{dsn_form(name)}"
            )
    elif host:
        _check_path(name, "the DSN's path", path)
        scheme = (suffix or "https").lower()
        settings[spec.url] = f"{scheme}://{_netloc(host, port)}{path}"
    elif path or suffix is not None or port is not None:
        raise ConfigError(f"{name}: the DSN has a port, a path or +http(s) but no host")

    # ?key=value&...
    for pair in query.split("&") if query else ():
        if not pair:
            continue
        raw_key, equals, raw_value = pair.partition("=")
        key = _decode(name, "query", raw_key, None)
        if not equals:
            raise ConfigError(f"{name}: a query parameter of the DSN has no '='; write NAME=VALUE")
        setting = spec.setting(key, in_dsn=True)
        if setting.place != "query":
            raise ConfigError(f"{name}: {key} goes in {spec.where(setting)}, not in the query")
        if key in settings:
            raise ConfigError(f"{name}: the DSN gives {key} twice")
        settings[key] = _decode(name, f"value of {key}", raw_value, expand)

    for setting in spec.settings.values():
        if setting.required and setting.name not in settings:
            if setting.place == "url":
                hint = f"the DSN needs a host: {dsn_form(name)}"
            elif setting.place == "query":
                hint = f"add ?{setting.name}=VALUE to the DSN"
            else:
                hint = (
                    f"it is the DSN's {setting.place} part ({dsn_form(name)}); "
                    "percent-encode '/', '?', '#', '@' and '%' in it"
                )
            raise ConfigError(f"{name}: {setting.name} is required: {hint}")
    return name, settings


# -- TOML files -----------------------------------------------------------------------

#: Options a ``[providers.NAME.client]`` table may set: wamsg.Client's keyword
#: arguments that a file can express (numbers, booleans, tables).
CLIENT_OPTIONS = (
    "timeout",
    "connect_timeout",
    "read_timeout",
    "media_connect_timeout",
    "media_read_timeout",
    "retry",
    "limits",
    "dedupe",
)
#: Options the ``[router]`` table may set: wamsg.Router's keyword arguments.
ROUTER_OPTIONS = ("timeout", "retry", "failures", "cooldown", "dedupe")
_SECONDS = frozenset(CLIENT_OPTIONS[:5])
#: wamsg.Limits' fields (a test keeps this equal to the struct's).
_LIMITS_FIELDS = ("rate", "burst", "max_in_flight", "pace", "recipient_pace")
_RETRY_FIELDS = tuple(f.name for f in msgspec.structs.fields(RetryPolicy))
_VARIABLE = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")


def _expander(where: str, env: Mapping[str, str]) -> Callable[[str], str]:
    """``${NAME}`` -> the variable's value; ``$${`` -> a literal ``${``."""

    def value_of(found: re.Match[str]) -> str:
        if found.group(0) == "$${":
            return "${"
        name = found.group(1)
        if found.group(2) is None:
            raise ConfigError(
                f"{where}: a '${{' has no closing '}}' (write $${{ for a literal ${{)"
            )
        if not _IDENTIFIER.fullmatch(name):
            raise ConfigError(f"{where}: ${{...}} must hold an environment variable name")
        value = env.get(name)
        if value is None:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return value

    return lambda text: _VARIABLE.sub(value_of, text)


def _seconds(where: str, value: object, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        rule = ">= 0" if zero else "more than 0"
        raise ConfigError(f"{where}: must be a number of seconds {rule}")
    return float(value)


def _retry(where: str, value: object) -> RetryPolicy:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table, e.g. {{ attempts = 3 }}")
    for key in value:
        if key not in _RETRY_FIELDS:
            raise ConfigError(
                f"{where}: unknown option {shown_name(key)}; it takes {', '.join(_RETRY_FIELDS)}"
            )
    try:
        return msgspec.convert(value, RetryPolicy)
    except msgspec.ValidationError as exc:
        failure = str(exc)
    except ConfigError as exc:
        failure = exc.message
    raise ConfigError(f"{where}: {failure}")


def _limits(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table, e.g. {{ rate = 20, burst = 5 }}")
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _LIMITS_FIELDS:
            raise ConfigError(
                f"{where}: unknown option {shown_name(key)}; it takes {', '.join(_LIMITS_FIELDS)}"
            )
        if key in ("pace", "recipient_pace"):
            if not (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(i, int | float) and not isinstance(i, bool) for i in item)
            ):
                raise ConfigError(f"{where}: {key} must be [min, max] seconds")
            item = (float(item[0]), float(item[1]))
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise ConfigError(f"{where}: {key} must be a number")
        kept[key] = item
    return kept


def _options(where: str, value: object, allowed: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table")
    options: dict[str, Any] = {}
    for key, item in value.items():
        field = f"{where} {key}"
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown option {shown_name(key)}; it takes {', '.join(allowed)}"
            )
        if key in _SECONDS:
            options[key] = _seconds(field, item)
        elif key == "retry":
            options[key] = _retry(field, item)
        elif key == "limits":
            options[key] = _limits(field, item)
        elif key == "dedupe":
            if not isinstance(item, bool):
                raise ConfigError(f"{field}: must be true or false")
            options[key] = item
        elif key == "failures":
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise ConfigError(f"{field}: must be a whole number >= 1")
            options[key] = item
        else:  # cooldown
            options[key] = _seconds(field, item, zero=True)
    return options


class Config:
    """A configuration file's content: named providers, a failover order, options.

    Made by :func:`load_config`; :meth:`wamsg.Router.from_config` and
    :meth:`wamsg.Client.from_config` build senders from it. Immutable,
    compared by value, and masked in ``str`` and ``repr`` like every
    :class:`ProviderConfig` it holds.

    Args:
        providers: the providers by name, in order.
        failover: the names a Router tries, in order (default: every
            provider, in order). A provider left out is still there for
            :meth:`wamsg.Client.from_config`.
        client_options: per provider name, keyword arguments for its
            :class:`~wamsg.Client` (``limits`` as the fields of
            :class:`~wamsg.Limits`).
        router_options: keyword arguments for the :class:`~wamsg.Router`.
        source: where it was read from, for error messages.
    """

    __slots__ = ("_client_options", "failover", "providers", "router_options", "source")

    providers: Mapping[str, ProviderConfig]
    failover: tuple[str, ...]
    router_options: Mapping[str, Any]
    source: str
    _client_options: dict[str, dict[str, Any]]

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        *,
        failover: Sequence[str] | None = None,
        client_options: Mapping[str, Mapping[str, Any]] | None = None,
        router_options: Mapping[str, Any] | None = None,
        source: str = "<config>",
    ) -> None:
        providers = dict(providers)
        if not providers:
            raise ConfigError(f"{source}: no providers (add a [providers.NAME] table)")
        for key, value in providers.items():
            if not isinstance(value, ProviderConfig):
                raise ConfigError(f"{source}: providers.{key} must be a wamsg.ProviderConfig")
        if failover is None:
            order = tuple(providers)
        elif isinstance(failover, str) or not all(isinstance(n, str) for n in failover):
            raise ConfigError(f"{source}: failover must be a list of provider names")
        else:
            order = tuple(failover)
        if not order:
            raise ConfigError(f"{source}: failover is empty; list at least one provider")
        for key in order:
            if key not in providers:
                raise ConfigError(
                    f"{source}: failover names {key!r}, which is not a provider here; "
                    f"they are {', '.join(providers)}"
                )
        if len(set(order)) != len(order):
            raise ConfigError(f"{source}: failover names a provider twice")
        options = {key: dict(value) for key, value in (client_options or {}).items()}
        for key in options:
            if key not in providers:
                raise ConfigError(f"{source}: client options for {key!r}, not a provider here")
        set_ = object.__setattr__
        set_(self, "providers", MappingProxyType(providers))
        set_(self, "failover", order)
        set_(self, "_client_options", options)
        set_(self, "router_options", MappingProxyType(dict(router_options or {})))
        set_(self, "source", source)

    def provider(self, name: str | None = None) -> ProviderConfig:
        """The provider named ``name`` (default: the first in the failover order)."""
        return self.providers[self._name(name)]

    def client_options(self, name: str | None = None) -> dict[str, Any]:
        """The :class:`~wamsg.Client` keyword arguments the file sets for ``name``.

        ``limits``, when set, is a dict of :class:`~wamsg.Limits` fields.
        """
        return dict(self._client_options.get(self._name(name), {}))

    def _name(self, name: str | None) -> str:
        if name is None:
            return self.failover[0]
        if name not in self.providers:
            raise ConfigError(
                f"{self.source}: no provider {name!r}; it has {', '.join(self.providers)}"
            )
        return name

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {v!r}" for k, v in self.providers.items())
        return (
            f"Config(source={self.source!r}, failover={list(self.failover)!r}, "
            f"providers={{{shown}}})"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return (
            dict(self.providers) == dict(other.providers)
            and self.failover == other.failover
            and self._client_options == other._client_options
            and dict(self.router_options) == dict(other.router_options)
        )

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Config is immutable")


_TOP_KEYS = ("failover", "providers", "router")
_ENTRY_KEYS = frozenset({"dsn", "provider", "client"})


def load_config(
    path_or_text: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Config:
    """Read a TOML configuration: a file path, or TOML text (a ``str`` holding a newline).

    ::

        failover = ["primary", "backup"]      # optional: default, every provider in order

        [router]                              # optional: wamsg.Router options
        timeout = 30
        retry = { attempts = 3 }

        [providers.primary]
        dsn = "wawp://ABC123DEF456:${WAWP_TOKEN}@api.wawp.net"

        [providers.backup]
        provider = "waha"
        base_url = "http://localhost:3000"
        api_key = "${WAHA_API_KEY}"

        [providers.backup.client]             # optional: wamsg.Client options
        read_timeout = 20
        limits = { rate = 5, burst = 2 }

    ``${NAME}`` in any string of a provider's table is the environment
    variable ``NAME`` (from ``env``, by default ``os.environ``), so the file
    needs no token; inside a ``dsn`` it stands for the value as is, with no
    percent-encoding needed in the user, password or query. ``$${`` is a
    literal ``${``. A variable that is not set is an error.

    Raises:
        ConfigError: naming the file, the section and the field.
    """
    env = os.environ if env is None else env
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        source, text = "<config>", path_or_text
    else:
        path = Path(path_or_text)
        # Error messages name the file only when its name cannot be a secret:
        # a DSN or a line of TOML passed here by mistake would hold one.
        source = str(path) if _PATH_SHOWN.fullmatch(str(path)) else "(not shown)"
        looks_inline = isinstance(path_or_text, str) and any(
            mark in path_or_text for mark in ("://", "=", "@")
        )
        if looks_inline and not path.is_file():
            raise ConfigError(
                "load_config() got a string that looks like a DSN or TOML text, not a "
                "file path (not shown): use ProviderConfig.from_dsn() for a DSN, or "
                "pass TOML text with a newline"
            )
        failure: str | None = None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            failure = f"config file {source} not found"
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            failure = f"cannot read config file {source}: {reason}"
        if failure is not None:  # raised here: the OSError holds the path
            raise ConfigError(failure)
    toml_error: str | None = None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        toml_error = f"{source}: not valid TOML: {exc}"
    if toml_error is not None:  # raised here: the TOML error may hold the text
        raise ConfigError(toml_error)
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{source}: unknown key {shown_name(key)} at the top; "
                f"it takes {', '.join(_TOP_KEYS)}"
            )
    tables = data.get("providers")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{source}: no providers (add a [providers.NAME] table)")
    providers: dict[str, ProviderConfig] = {}
    client_options: dict[str, dict[str, Any]] = {}
    for key, table in tables.items():
        section = f"{source} [providers.{key}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table")
        providers[key] = _entry(section, table, env)
        if "client" in table:
            client_options[key] = _options(
                f"{source} [providers.{key}.client]", table["client"], CLIENT_OPTIONS
            )
    failover = data.get("failover")
    if failover is not None and (
        not isinstance(failover, list) or not all(isinstance(n, str) for n in failover)
    ):
        raise ConfigError(f"{source}: failover must be a list of provider names")
    router = _options(f"{source} [router]", data.get("router", {}), ROUTER_OPTIONS)
    return Config(
        providers,
        failover=failover,
        client_options=client_options,
        router_options=router,
        source=source,
    )


def _entry(section: str, table: dict[str, Any], env: Mapping[str, str]) -> ProviderConfig:
    settings = {k: v for k, v in table.items() if k not in _ENTRY_KEYS}
    failure: str | None = None
    if "dsn" in table:
        if "provider" in table or settings:
            raise ConfigError(f"{section}: give either dsn, or provider and its settings, not both")
        dsn = table["dsn"]
        if not isinstance(dsn, str):
            raise ConfigError(f"{section} dsn: must be a string")
        try:
            provider, parsed = _parse_dsn(dsn, _expander(f"{section} dsn", env))
            return ProviderConfig(provider, **parsed)
        except ConfigError as exc:
            if exc.message.startswith(section):
                raise
            failure = exc.message
        raise ConfigError(f"{section} dsn: {failure}")
    name = table.get("provider")
    if not isinstance(name, str):
        raise ConfigError(
            f'{section}: give dsn = "provider://...", or provider = "NAME" and its settings'
        )
    try:
        spec = _Spec(_expander(f"{section} provider", env)(name))
    except ConfigError as exc:
        failure = exc.message
    if failure is not None:
        raise ConfigError(f"{section} provider: {failure}")
    values: dict[str, str] = {}
    for key, value in settings.items():
        shown = shown_name(key)
        field = f"{section} {key if shown != '(not shown)' else '(a key not shown)'}"
        if not isinstance(value, str):
            raise ConfigError(f"{field}: must be a string")
        try:
            setting = spec.setting(key)
            values[key] = _expander(field, env)(value)
            _clean(spec, setting, values[key])
        except ConfigError as exc:
            if exc.message.startswith(field):
                raise
            failure = exc.message
        if failure is not None:
            raise ConfigError(f"{field}: {failure}")
    try:
        return ProviderConfig(spec.name, **values)
    except ConfigError as exc:
        failure = exc.message
    raise ConfigError(f"{section}: {failure}")
