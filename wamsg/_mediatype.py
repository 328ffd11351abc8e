"""Tell an image's MIME type from its first bytes, its name or its URL.

No I/O: callers pass the bytes they already have. The first bytes win over
the name, because names lie (``photo.png`` that is really a JPEG).
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import urlsplit

__all__ = ["guess_from_name", "sniff"]

# Magic numbers: JPEG (JFIF/Exif all start FF D8 FF), PNG's 8-byte signature,
# GIF87a/GIF89a, and WebP's RIFF container with the "WEBP" form type.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

# How many leading bytes :func:`sniff` needs to see.
SNIFF_BYTES = 16

# mimetypes knows these on every platform we run on, but be explicit about
# the image types gateways accept so that a bare container gives the same
# answer as a desktop.
_EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def sniff(head: bytes) -> str | None:
    """The MIME type the first bytes of a file show, or None."""
    for magic, mimetype in _SIGNATURES:
        if head.startswith(magic):
            return mimetype
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def guess_from_name(name: str) -> str | None:
    """The MIME type a file name's or URL's extension suggests, or None."""
    path = urlsplit(name).path if "://" in name else name
    ext = posixpath.splitext(path)[1].lower()
    if not ext:
        return None
    return _EXTENSIONS.get(ext) or mimetypes.guess_type("x" + ext)[0]


def extension_for(mimetype: str) -> str:
    """A file extension for a MIME type (``.jpg`` for JPEG)."""
    for ext, known in _EXTENSIONS.items():
        if known == mimetype:
            return ext
    return mimetypes.guess_extension(mimetype) or ".bin"
