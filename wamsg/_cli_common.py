"""What the ``wamsg`` command's modules share (``cli.py`` and ``_bulk.py``).

Its one job: turn what the command reads and what gateways answer into what
it prints or records. Gateway text is made safe for one terminal line, an
error becomes one line that says what happened to the message, and an image
argument or CSV cell (a URL or a file path) becomes a :class:`Media`.
"""

from __future__ import annotations

import os
import re

from .errors import InvalidMessage, Outcome, WamsgError
from .models import Media

__all__ = ["clean", "describe", "image_source"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: str) -> str:
    """``text`` safe to print on one terminal line.

    Gateway answers are untrusted: a newline could forge a table row or a
    second error line, and escape sequences could rewrite the terminal.
    Whitespace runs become one space; other control characters are escaped.
    """
    text = " ".join(text.split())
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def describe(exc: WamsgError) -> str:
    """``exc`` on one clean line: the message, where it came from, what to do."""
    text = exc.message
    code = getattr(exc, "error_code", None)
    status = getattr(exc, "status_code", None)
    where = ", ".join(
        part
        for part in (
            getattr(exc, "provider", None) or "",
            f"HTTP {status}" if status else "",
            code or "",
        )
        if part
    )
    if where:
        text = f"{text} ({where})"
    if exc.outcome is Outcome.UNKNOWN:
        text += "; the gateway may have the message: check before sending again"
    elif getattr(exc, "retry_after", None):
        text += f"; retry after {exc.retry_after:g}s"  # type: ignore[attr-defined]
    return clean(text)


def image_source(
    image: str, base: str = "", *, mimetype: str | None = None, filename: str | None = None
) -> Media:
    """The image ``image`` names: an ``http(s)://`` URL the gateway fetches, or a file.

    A relative path is relative to ``base`` (default: the current folder).
    Raises :class:`InvalidMessage` naming ``image`` as given when there is
    no such file.
    """
    if image.startswith(("http://", "https://")):
        return Media(url=image, mimetype=mimetype, filename=filename)
    path = os.path.join(base, image)
    if not os.path.isfile(path):
        raise InvalidMessage(f"no such image file: {image}")
    return Media(path=path, mimetype=mimetype, filename=filename)
