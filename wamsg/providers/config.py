"""Checks for adapter settings, shared so that every adapter says the same thing."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["base_url_setting", "required_setting"]


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
    if parts.username or parts.password:
        raise ConfigError(f"{provider}: base_url must not hold credentials; pass them as settings")
    return url
