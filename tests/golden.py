"""This project's golden files (tests/data/<provider>/), read with the kit's helpers.

The golden format and its helpers are public in :mod:`wamsg.testing.goldens`;
this module only binds them to wamsg's own data folder.
"""

from __future__ import annotations

from pathlib import Path

from wamsg.testing import goldens
from wamsg.testing.goldens import (
    MEDIA,
    body_of,
    build_message,
    build_response,
    check_expect_keys,
    error_to_dict,
    load_golden,
    parse_form,
    render_body,
    request_to_dict,
    result_to_dict,
)

__all__ = [
    "DATA",
    "MEDIA",
    "body_of",
    "build_message",
    "build_response",
    "check_expect_keys",
    "error_to_dict",
    "golden_files",
    "load_golden",
    "parse_form",
    "render_body",
    "request_to_dict",
    "result_to_dict",
]

DATA = Path(__file__).resolve().parent / "data"


def golden_files(provider: str, kind: goldens.Kind) -> list[Path]:
    """Every ``*.<kind>.json`` golden of one of wamsg's providers."""
    return goldens.golden_files(DATA / provider, kind)
