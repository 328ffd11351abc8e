"""What adapters share to fetch an incoming message's media (sans-I/O).

A webhook says where an image is (:class:`~wamsg.webhooks.MediaRef`); each
adapter's ``media_request(message)`` turns that into a GET carrying its own
credentials, and :meth:`wamsg.Client.fetch_media` sends it. The one rule that
matters is here: credentials go only to the gateway the adapter is set up
for. A webhook body is input from the network (Wawp's is not even signed),
so a media URL on any other host is refused before any I/O rather than
sent the API key.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from ..errors import InvalidMessage
from ..http import HttpRequest, QueryValue
from ..models import InboundMessage

__all__ = ["media_get", "media_location"]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), None if port == default else port


def media_location(provider: str, base_url: str, message: InboundMessage) -> str:
    """The URL of ``message``'s media on this gateway (``url``, or ``path`` below ``base_url``).

    Raises:
        InvalidMessage: the message has no media the gateway kept, or its
            URL is on another host than ``base_url``, or its path climbs out.
    """
    ref = message.media
    if ref is None or ref.fetch == "unavailable":
        raise InvalidMessage(
            f"{provider}: this message has no media the gateway downloaded "
            "(docs/webhooks.md: MediaRef.fetch is 'unavailable')"
        )
    if ref.url:
        try:
            same = _origin(ref.url) == _origin(base_url)
        except ValueError:  # a bad port: it holds the URL, not kept
            same = False
        if not same:
            raise InvalidMessage(
                f"{provider}: the media URL is not on this gateway's base_url host; wamsg "
                "sends the gateway's credentials only there (set base_url to the host the "
                "gateway writes in its media URLs, e.g. WAHA_BASE_URL)"
            )
        return ref.url
    if ref.path:
        segments = ref.path.strip("/").split("/")
        if any(s in ("", ".", "..") for s in segments) or "://" in ref.path:
            raise InvalidMessage(f"{provider}: the media path is not a plain relative path")
        return f"{base_url}/" + "/".join(quote(s, safe="-._~") for s in segments)
    raise InvalidMessage(f"{provider}: the media reference has neither a URL nor a path")


def media_get(
    url: str,
    *,
    headers: tuple[tuple[str, QueryValue], ...] = (),
    query: tuple[tuple[str, QueryValue], ...] = (),
) -> HttpRequest:
    """A GET of media bytes, with the media timeouts."""
    return HttpRequest(method="GET", url=url, headers=headers, query=query, kind="media")
