"""Secrets never print, and phone numbers are masked wherever text may be logged."""

from __future__ import annotations

import copy
import pickle

import pytest

from wamsg import Secret
from wamsg._redact import REDACTED, mask_phone, redact

TOKEN = "tok-3f9a1c7e-very-secret"


# --------------------------------------------------------------------------
# Secret
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(repr, id="repr"),
        pytest.param(str, id="str"),
        pytest.param(lambda s: f"{s}", id="f-string"),
        pytest.param(lambda s: f"{s!r}", id="f-string-repr"),
        pytest.param(lambda s: f"{s!s}", id="f-string-str"),
        pytest.param(lambda s: f"{s:>40}", id="f-string-spec"),
        pytest.param(lambda s: format(s, "s"), id="format"),
        pytest.param(lambda s: "{}".format(s), id="str.format"),  # noqa: UP032
        pytest.param(lambda s: "%s" % s, id="percent-s"),  # noqa: UP031
        pytest.param(lambda s: "%r" % (s,), id="percent-r"),  # noqa: UP031
        pytest.param(lambda s: repr([s]), id="in-list"),
        pytest.param(lambda s: repr({"access_token": s}), id="in-dict"),
        pytest.param(lambda s: repr((s,)), id="in-tuple"),
    ],
)
def test_secret_never_renders_its_value(render: object) -> None:
    assert callable(render)
    text = render(Secret(TOKEN))
    assert isinstance(text, str)
    assert TOKEN not in text
    assert REDACTED in text


def test_secret_repr_and_str_are_fixed() -> None:
    assert repr(Secret(TOKEN)) == "Secret('***')"
    assert str(Secret(TOKEN)) == "***"


def test_reveal_returns_the_value() -> None:
    assert Secret(TOKEN).reveal() == TOKEN


def test_secret_of_a_secret_is_not_double_wrapped() -> None:
    assert Secret(Secret(TOKEN)).reveal() == TOKEN


def test_secret_equality_and_hash() -> None:
    assert Secret(TOKEN) == Secret(TOKEN)
    assert hash(Secret(TOKEN)) == hash(Secret(TOKEN))
    assert Secret(TOKEN) != Secret(TOKEN + "x")
    # A Secret never compares equal to its plain value (that would invite
    # comparing against str and printing the str).
    assert Secret(TOKEN) != TOKEN
    assert len({Secret(TOKEN), Secret(TOKEN), Secret("other")}) == 2


@pytest.mark.parametrize(("value", "truth"), [(TOKEN, True), ("", False)])
def test_secret_truthiness(value: str, truth: bool) -> None:
    assert bool(Secret(value)) is truth


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_pickle_round_trip(protocol: int) -> None:
    restored = pickle.loads(pickle.dumps(Secret(TOKEN), protocol=protocol))
    assert isinstance(restored, Secret)
    assert restored.reveal() == TOKEN
    assert restored == Secret(TOKEN)
    assert TOKEN not in repr(restored)


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy])
def test_secret_copies_keep_the_value(clone: object) -> None:
    assert callable(clone)
    copied = clone(Secret(TOKEN))
    assert isinstance(copied, Secret)
    assert copied.reveal() == TOKEN


def test_secret_has_no_instance_dict() -> None:
    # Nothing to leak through vars() or __dict__-based serializers.
    with pytest.raises(TypeError):
        vars(Secret(TOKEN))


# --------------------------------------------------------------------------
# mask_phone
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+5511999990000", "+55*********00"),
        ("5511999990000", "55*********00"),
        ("+6834001", "+68***01"),
        ("12345", "12*45"),
        ("1234", "****"),
        ("+123", "+***"),
        ("", ""),
    ],
)
def test_mask_phone(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


def test_mask_phone_keeps_length_but_not_the_middle() -> None:
    masked = mask_phone("+5511999990000")
    assert len(masked) == len("+5511999990000")
    assert "99999" not in masked


# --------------------------------------------------------------------------
# redact
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("to 5511999990000", "to 55*********00"),
        ("to +5511999990000.", "to +55*********00."),
        ("chat 5511999990000@c.us", "chat 55*********00@c.us"),
        (
            "id true_5511999990000@c.us_3EB0C767D097B7C5",
            "id true_55*********00@c.us_3EB0C767D097B7C5",
        ),
        ("seven 6834001 digits", "seven 68***01 digits"),
    ],
)
def test_redact_masks_phone_numbers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "number",
    ["+55 11 99999-0000", "+55 (11) 99999-0000", "+55.11.99999.0000", "0055 11 99999 0000"],
)
def test_redact_masks_numbers_written_with_separators(number: str) -> None:
    out = redact(f"sending to {number} now")
    assert "999990000" not in out.replace(" ", "").replace("-", "").replace(".", "")
    assert "99999" not in out
    assert out.startswith("sending to ")
    assert out.endswith(" now")


@pytest.mark.parametrize(
    "text",
    [
        "HTTP 404",
        "2025",
        "HTTP 429: retry in 120 s",
        "took 1500 ms",
        "code 123456",
        "wamsg 0.1.0",
        "3EB0C767D097B7C5A1",  # a WhatsApp message id is not a phone number
        "",
    ],
)
def test_redact_leaves_short_numbers_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("secret", [TOKEN, Secret(TOKEN)])
def test_redact_replaces_secrets(secret: str | Secret) -> None:
    text = f"GET /v2/send/text?access_token={TOKEN}&x=1 failed; token {TOKEN}"
    out = redact(text, [secret])
    assert TOKEN not in out
    assert out.count(REDACTED) == 2


def test_redact_replaces_several_secrets_and_masks_numbers_together() -> None:
    out = redact(f"{TOKEN} basic-pass 5511999990000", [Secret(TOKEN), "basic-pass"])
    assert out == "*** *** 55*********00"


@pytest.mark.parametrize("empty", ["", Secret("")])
def test_redact_ignores_empty_secrets(empty: str | Secret) -> None:
    assert redact("HTTP 404 Not Found", [empty]) == "HTTP 404 Not Found"


def test_redact_accepts_any_iterable_of_secrets() -> None:
    secrets = (s for s in [Secret(TOKEN)])
    assert redact(f"x{TOKEN}x", secrets) == "x***x"
