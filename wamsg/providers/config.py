"""Checks for adapter settings, shared so that every adapter says the same thing.

Also :class:`DsnFormat`, an adapter's declaration of where its settings go in
a DSN string (``wawp://INSTANCE:TOKEN@api.wawp.net``); the DSN parser itself
is :mod:`wamsg.config`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

import msgspec

from ..errors import ConfigError

__all__ = [
    "DsnFormat",
    "base_url_setting",
    "header_token_setting",
    "looks_secret",
    "required_setting",
    "shown_name",
]


class DsnFormat(msgspec.Struct, frozen=True, kw_only=True):
    """Where an adapter's settings go in a DSN (``provider://user:password@host/path?k=v``).

    An adapter declares one as a class attribute named ``dsn``::

        class WawpAdapter:
            dsn: ClassVar[DsnFormat] = DsnFormat(user="instance_id", password="access_token")

    An adapter without one gets ``DsnFormat()``: no user or password part,
    the URL setting (``base_url``) from the DSN's scheme, host, port and
    path, and every other setting as a query parameter.

    Attributes:
        user: the setting held by the DSN's user part, if any.
        password: the setting held by the password part (after ``user:``).
            With ``user`` None it is written ``provider://:PASSWORD@host``.
        url: the setting that the DSN's scheme, host, port and path form
            (``https://host:port/path``); ignored when the adapter does not
            take it, and then the DSN has no host.
        secrets: settings to treat as secret (masked in every ``str`` and
            ``repr`` of a config) besides those typed ``Secret`` in the
            adapter's constructor.
    """

    user: str | None = None
    password: str | None = None
    url: str = "base_url"
    secrets: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        names = [n for n in (self.user, self.password) if n is not None]
        if len(set(names)) != len(names) or self.url in names:
            raise ConfigError("DsnFormat: user, password and url must name different settings")


def required_setting(provider: str, name: str, value: object) -> str:
    """A setting that must be a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{provider}: {name} is required (a non-empty string)")
    return value.strip()


def base_url_setting(provider: str, value: object) -> str:
    """An http(s) base URL, without a trailing slash, query or credentials."""
    url = required_setting(provider, "base_url", value).rstrip("/")
    parts = _split(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # The value itself is not echoed: a misplaced URL may carry a token.
        raise ConfigError(
            f"{provider}: base_url must be an http(s) URL such as https://api.example.com"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{provider}: base_url must not have a query or fragment")
    # An unencoded "/" in a password ("http://user:pa/ss@host") ends the
    # authority early, so urlsplit finds no credentials: any "@" before the
    # query is refused too (a base URL has no use for one).
    if parts.username or parts.password or "@" in url.split("?", 1)[0]:
        raise ConfigError(f"{provider}: base_url must not hold credentials; pass them as settings")
    try:
        port_ok = parts.port != 0
    except ValueError:  # its text quotes the port: not kept either
        port_ok = False
    if not port_ok:
        raise ConfigError(f"{provider}: base_url has a bad port (a number 1-65535)")
    return url


def _split(url: str) -> SplitResult | None:
    """``url`` split, or None when urlsplit refuses it.

    urlsplit raises ValueError quoting the URL (a bad IPv6 literal, a host
    that changes under NFKC normalisation); that text may hold a token
    pasted into the setting, so the error is dropped here and raised anew,
    without it and without the original in ``__context__``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.hostname and parts.netloc.rpartition("@")[2].startswith("["):
        # urlsplit accepts "[example.com]" and returns "example.com".
        try:
            ipaddress.IPv6Address(parts.hostname.partition("%")[0])
        except ValueError:
            return None
    return parts


#: Setting names that hold credentials: masked wherever a config is shown,
#: and looked for by the contract kit.
_SECRET_NAME = re.compile(r"token|key|secret|passw|auth|bearer|credential|private", re.I)


#: A setting name as errors show it; anything else may be a token typed in
#: the wrong place (``--set TOKEN==``) and is not echoed.
_SHOWN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")


def shown_name(name: object) -> str:
    """``name`` quoted when it looks like a setting name, else ``(not shown)``.

    A setting name is a short lower-case identifier (``[a-z_][a-z0-9_]*``, at
    most 32 characters). Anything else may be a token typed in the wrong
    place, so errors naming an unknown setting, option or key show it this way.
    """
    return repr(name) if isinstance(name, str) and _SHOWN_NAME.fullmatch(name) else "(not shown)"


def looks_secret(name: str) -> bool:
    """Whether a setting called ``name`` holds a credential, by its name alone.

    True when the name holds ``token``, ``key``, ``secret``, ``passw``,
    ``auth``, ``bearer``, ``credential`` or ``private``, in any case
    (``api_key``, ``client_key``, ``Authorization``). This is the one rule
    for all of wamsg: :mod:`wamsg.config` masks such settings even when the
    adapter does not type them ``Secret`` (masking a non-secret is the safe
    mistake). Sans-I/O.
    """
    return bool(_SECRET_NAME.search(name))


def header_token_setting(provider: str, name: str, value: str) -> None:
    """Refuse a credential that cannot be sent as one HTTP header token.

    A newline or another control character in a header is refused by every
    HTTP client, but only when the request is being built; checked here, it
    is a clear setting error instead. The value is never echoed.
    """
    if not value.isprintable() or any(c.isspace() for c in value) or not value.isascii():
        raise ConfigError(
            f"{provider}: {name} must be one word of printable ASCII, without spaces or controls"
        )
