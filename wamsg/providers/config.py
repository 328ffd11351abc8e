"""Checks for adapter settings, shared so that every adapter says the same thing."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["base_url_setting", "header_token_setting", "required_setting"]


def required_setting(provider: str, name: str, value: object) -> str:
    """A setting that must be a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{provider}: {name} is required (a non-empty string)")
    return value.strip()


def base_url_setting(provider: str, value: object) -> str:
    """An http(s) base URL, without a trailing slash, query or credentials."""
    url = required_setting(provider, "base_url", value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
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
    return url


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
