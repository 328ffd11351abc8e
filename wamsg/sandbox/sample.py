"""A sample picture made in code, so the demo can upload a real image.

The PNG is built with zlib and struct alone: no image library and no binary
file in the repository.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

__all__ = ["encode_png", "sample_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, rows: Sequence[Sequence[tuple[int, int, int]]]) -> bytes:
    """Encode ``height`` rows of ``width`` RGB pixels as a PNG (8-bit, no filter)."""
    raw = bytearray()
    for row in rows:
        raw.append(0)  # filter type: none
        for pixel in row:
            raw.extend(pixel)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def sample_png(width: int = 160, height: int = 120) -> bytes:
    """A ``width`` x ``height`` RGB PNG: a green sky-to-sea gradient with a sun."""
    sun_x, sun_y, radius = width * 0.7, height * 0.35, min(width, height) * 0.18

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if (x - sun_x) ** 2 + (y - sun_y) ** 2 <= radius**2:
            return (255, 214, 90)
        if y > height * 0.62:
            return (18, 140 - (y * 40) // height, 126)
        return (37 + (y * 60) // height, 211 - (y * 50) // height, 102)

    return encode_png(width, height, [[pixel(x, y) for x in range(width)] for y in range(height)])
