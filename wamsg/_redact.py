"""Keep secrets and phone numbers out of reprs, logs and error messages.

The one rule of this module: anything that may end up in a log line, a repr or
an exception message goes through :func:`redact` first. Secrets are wrapped in
:class:`Secret` from the moment they enter the library and are revealed only at
the transport boundary, where bytes are written to the socket.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["Secret", "mask_phone", "redact"]

#: What a redacted secret looks like wherever it would have been printed.
REDACTED = "***"


class Secret:
    """A credential that never shows its value in ``repr``, ``str`` or f-strings.

    Call :meth:`reveal` to get the value; only transports and tests do.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        """Return the secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling a Secret is allowed (multiprocessing), but never implicit in
        # a repr; the value travels as-is, like any other credential object.
        return (Secret, (self._value,))


# Seven or more digits, optionally with a leading "+" and single separators
# ("+55 11 99999-0000"), not inside a longer alphanumeric token (so hex
# message ids like 3EB0C767D097B7C5 stay whole). Shorter runs (status codes,
# counts, years) are left alone; seven is the shortest E.164 number in use
# (e.g. Niue, +683 xxxx). Masking the odd date too is the safe mistake.
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])\+?\d(?:[ \-.()]?\d){6,}(?![0-9A-Za-z])")
_NOT_DIGIT = re.compile(r"[^\d+]")


def mask_phone(digits: str) -> str:
    """Mask a phone number for logs: ``"+5511999990000"`` -> ``"+55*********00"``.

    The first two and the last two digits stay, so that an operator can tell
    numbers apart in a log without the log holding a full number.
    """
    plus = "+" if digits.startswith("+") else ""
    core = digits[1:] if plus else digits
    if len(core) <= 4:
        return plus + "*" * len(core)
    return f"{plus}{core[:2]}{'*' * (len(core) - 4)}{core[-2:]}"


def _forms(value: str) -> set[str]:
    """A secret as it may appear in text: as is, percent-encoded in a URL (as
    yarl and aiohttp print it), form-encoded, and JSON-escaped by PHP (``\\/``)."""
    forms = {value}
    if not value.isalnum():
        forms |= {
            quote(value, safe=""),
            quote(value, safe="/"),
            quote_plus(value),
            # yarl (aiohttp's URL type) leaves these unescaped in a query
            # string: "tok:a+=" goes out as "tok:a%2B%3D".
            quote_plus(value, safe="?/:@!$'()*,"),
            value.replace("/", "\\/"),
        }
    return {f for f in forms if f}


def redact(text: str, secrets: Iterable[str | Secret] = (), *, cut: bool = False) -> str:
    """Return ``text`` with every secret replaced and every phone number masked.

    With ``cut=True`` the text is known to be truncated (a capped body), so a
    secret's first characters at its very end are masked too.
    """
    values = [s.reveal() if isinstance(s, Secret) else s for s in secrets]
    for value in values:
        if value:
            for form in _forms(value):
                text = text.replace(form, REDACTED)
    if cut:
        for value in values:
            for size in range(len(value) - 1, 0, -1):
                if text.endswith(value[:size]):
                    text = text[:-size] + REDACTED
                    break
    return _PHONE_RE.sub(lambda m: mask_phone(_NOT_DIGIT.sub("", m.group(0))), text)
