"""The error tree, each error's default outcome, and the shared error mapping."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

import msgspec
import pytest

import wamsg
from wamsg import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    Disconnected,
    HttpResponse,
    InvalidMessage,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    Secret,
    SendTimeout,
    TransportError,
    UnsupportedFeature,
    WamsgError,
)
from wamsg.providers.base import ErrorRule, error_from_response, parse_retry_after

# --------------------------------------------------------------------------
# The tree, as drawn in wamsg/errors.py
# --------------------------------------------------------------------------

TREE: list[tuple[type[Exception], type[Exception]]] = [
    (InvalidMessage, WamsgError),
    (InvalidMessage, ValueError),
    (UnsupportedFeature, WamsgError),
    (UnsupportedFeature, ValueError),
    (ConfigError, WamsgError),
    (TransportError, WamsgError),
    (ConnectError, TransportError),
    (SendTimeout, TransportError),
    (Disconnected, TransportError),
    (ProviderError, WamsgError),
    (AuthenticationError, ProviderError),
    (RateLimited, ProviderError),
    (Rejected, ProviderError),
    (ProviderUnavailable, ProviderError),
    (WamsgError, Exception),
]


@pytest.mark.parametrize(("child", "parent"), TREE)
def test_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("child", "not_parent"),
    [
        (ConfigError, ValueError),
        (TransportError, ValueError),
        (ProviderError, ValueError),
        (TransportError, ProviderError),
        (ProviderError, TransportError),
        (SendTimeout, TimeoutError),  # never caught by a bare `except TimeoutError`
        (ConnectError, ConnectionError),
        (RateLimited, Rejected),
        (AuthenticationError, Rejected),
    ],
)
def test_tree_branches_do_not_overlap(child: type[Exception], not_parent: type[Exception]) -> None:
    assert not issubclass(child, not_parent)


def test_every_error_is_exported_from_the_package() -> None:
    for child, _ in TREE:
        if child is not Exception and issubclass(child, WamsgError):
            assert getattr(wamsg, child.__name__) is child


# --------------------------------------------------------------------------
# Default outcome and retryable
# --------------------------------------------------------------------------


def _provider_error(cls: type[ProviderError], status: int = 400) -> ProviderError:
    return cls("wawp: HTTP error", provider="wawp", status_code=status)


@pytest.mark.parametrize(
    ("error", "outcome", "retryable"),
    [
        pytest.param(WamsgError("x"), Outcome.NOT_SENT, False, id="WamsgError"),
        pytest.param(InvalidMessage("x"), Outcome.NOT_SENT, False, id="InvalidMessage"),
        pytest.param(UnsupportedFeature("x"), Outcome.NOT_SENT, False, id="UnsupportedFeature"),
        pytest.param(ConfigError("x"), Outcome.NOT_SENT, False, id="ConfigError"),
        pytest.param(ConnectError("x"), Outcome.NOT_SENT, True, id="ConnectError"),
        pytest.param(SendTimeout("x"), Outcome.UNKNOWN, False, id="SendTimeout"),
        pytest.param(Disconnected("x"), Outcome.UNKNOWN, False, id="Disconnected"),
        pytest.param(_provider_error(ProviderError), Outcome.UNKNOWN, False, id="ProviderError"),
        pytest.param(_provider_error(Rejected), Outcome.REJECTED, False, id="Rejected"),
        pytest.param(_provider_error(AuthenticationError, 401), Outcome.REJECTED, False, id="Auth"),
        pytest.param(_provider_error(RateLimited, 429), Outcome.NOT_SENT, None, id="RateLimited"),
        pytest.param(
            _provider_error(ProviderUnavailable, 500), Outcome.UNKNOWN, False, id="Unavailable"
        ),
    ],
)
def test_default_outcome_and_retryable(
    error: WamsgError, outcome: Outcome, retryable: bool | None
) -> None:
    assert error.outcome is outcome
    if retryable is not None:
        assert error.retryable is retryable


def test_bare_transport_error_is_not_claimed_safe_to_resend() -> None:
    # A TransportError means "no HTTP answer": the request may have been
    # written. Only ConnectError knows nothing went out, so a transport that
    # raises a plain TransportError must not make a retry loop resend
    # (errors.py: "only not_sent may ever be sent again automatically").
    error = TransportError("socket error")
    assert error.outcome is Outcome.UNKNOWN
    assert error.retryable is False


def test_transport_error_overrides() -> None:
    error = TransportError("x", provider="wawp", outcome=Outcome.NOT_SENT, retryable=True)
    assert (error.provider, error.outcome, error.retryable) == ("wawp", Outcome.NOT_SENT, True)
    # An override sets the instance, never the class.
    assert ConnectError("y", outcome=Outcome.UNKNOWN, retryable=False).outcome is Outcome.UNKNOWN
    assert ConnectError("z").outcome is Outcome.NOT_SENT
    assert ConnectError("z").retryable is True
    assert TransportError("w").provider == ""


def test_provider_error_attributes() -> None:
    error = RateLimited(
        "wawp: HTTP 429 rate_limit_exceeded: slow down",
        provider="wawp",
        status_code=429,
        error_code="rate_limit_exceeded",
        gateway_message="slow down",
        retryable=True,
        retry_after=7.5,
        outcome=Outcome.NOT_SENT,
        body_excerpt='{"code":"rate_limit_exceeded"}',
    )
    assert error.provider == "wawp"
    assert error.status_code == 429
    assert error.error_code == "rate_limit_exceeded"
    assert error.gateway_message == "slow down"
    assert error.retryable is True
    assert error.retry_after == 7.5
    assert error.outcome is Outcome.NOT_SENT
    assert error.body_excerpt == '{"code":"rate_limit_exceeded"}'
    assert error.message == str(error) == "wawp: HTTP 429 rate_limit_exceeded: slow down"


def test_provider_error_defaults() -> None:
    error = ProviderError("boom", provider="wawp", status_code=500)
    assert error.error_code is None
    assert error.gateway_message is None
    assert error.retry_after is None
    assert error.body_excerpt == ""
    assert error.retryable is False


def test_provider_error_outcome_override_leaves_class_alone() -> None:
    error = Rejected("x", provider="wawp", status_code=400, outcome=Outcome.UNKNOWN)
    assert error.outcome is Outcome.UNKNOWN
    assert Rejected.outcome is Outcome.REJECTED


def test_unsupported_feature_attributes() -> None:
    error = UnsupportedFeature("wawp cannot send view-once images", provider="wawp", feature="vo")
    assert (error.provider, error.feature) == ("wawp", "vo")
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidMessage("text is empty"), "InvalidMessage('text is empty')"),
        (ConnectError("refused"), "ConnectError('refused')"),
        (
            Rejected("wawp: HTTP 400", provider="wawp", status_code=400),
            "Rejected('wawp: HTTP 400')",
        ),
    ],
)
def test_repr(error: WamsgError, expected: str) -> None:
    assert repr(error) == expected
    assert str(error) == error.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Outcome.NOT_SENT, "not_sent"), (Outcome.UNKNOWN, "unknown"), (Outcome.REJECTED, "rejected")],
)
def test_outcome_values(value: Outcome, expected: str) -> None:
    assert value == expected
    assert f"{value}" == expected


# --------------------------------------------------------------------------
# parse_retry_after
# --------------------------------------------------------------------------

NOW = 1_700_000_000.0


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (_http_date(NOW + 90), 90.0),
        (_http_date(NOW - 90), 0.0),
        (_http_date(NOW), 0.0),
        # More than a day reads as a day: too long for any retry policy to
        # wait, so the send gives up instead of retrying at once.
        ("86401", 86400.0),
        ("999999999", 86400.0),
        (_http_date(NOW + 3 * 86400), 86400.0),
    ],
)
def test_parse_retry_after(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "-1.5",
        "nan",
        # Not delay-seconds and not a date (RFC 9110 §10.2.3); float() reads
        # them, and an infinite wait must never reach a retry loop.
        "inf",
        "Infinity",
        "Mon, 99 Foo 2025 07:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
    ],
)
def test_parse_retry_after_unreadable(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_date_without_now_uses_the_clock() -> None:
    # A date far in the past is 0 whatever the clock says.
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --------------------------------------------------------------------------
# error_from_response
# --------------------------------------------------------------------------


def _json(value: object) -> bytes:
    return msgspec.json.encode(value)


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
XML_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<error><code>maintenance</code><message>Down for maintenance</message></error>"
)


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "message"),
    [
        pytest.param(
            400,
            _json({"code": "invalid_instance", "message": "Instance not found"}),
            Rejected,
            "invalid_instance",
            "Instance not found",
            id="json-code-message",
        ),
        pytest.param(
            401,
            _json({"error": {"code": "unauthorized", "message": "Bad token"}}),
            AuthenticationError,
            "unauthorized",
            "Bad token",
            id="json-nested-error",
        ),
        pytest.param(
            422,
            _json({"error_code": "E42", "error": "Invalid chatId"}),
            Rejected,
            "E42",
            "Invalid chatId",
            id="json-error_code-error",
        ),
        pytest.param(
            400,
            _json(
                {
                    "statusCode": 400,
                    "message": ["chatId must be a string", "text should not be empty"],
                    "error": "Bad Request",
                }
            ),
            Rejected,
            None,
            "chatId must be a string; text should not be empty",
            id="nest-validation",
        ),
        pytest.param(
            403,
            _json({"code": 1003, "message": "Forbidden"}),
            AuthenticationError,
            "1003",
            "Forbidden",
            id="json-int-code",
        ),
        pytest.param(
            400, _json({"code": True, "message": "odd"}), Rejected, None, "odd", id="json-bool-code"
        ),
        pytest.param(
            400, _json({"message": {"nested": 1}}), Rejected, None, None, id="json-object-message"
        ),
        pytest.param(
            404, _json("Session not found"), Rejected, None, "Session not found", id="json-string"
        ),
        pytest.param(
            503, XML_ERROR, ProviderUnavailable, "maintenance", "Down for maintenance", id="xml"
        ),
        pytest.param(502, NGINX_502, ProviderUnavailable, None, "502 Bad Gateway", id="html"),
        pytest.param(
            500,
            b"Internal Server Error",
            ProviderUnavailable,
            None,
            "Internal Server Error",
            id="plain-text",
        ),
        pytest.param(404, b"", Rejected, None, None, id="empty"),
        pytest.param(418, b"teapot", Rejected, None, "teapot", id="unknown-4xx"),
        pytest.param(599, b"", ProviderUnavailable, None, None, id="unknown-5xx"),
        pytest.param(400, b"[1, 2, 3]", Rejected, None, "[1, 2, 3]", id="json-list"),
    ],
)
def test_error_from_response_bodies(
    status: int,
    body: bytes,
    cls: type[ProviderError],
    code: str | None,
    message: str | None,
) -> None:
    error = error_from_response("wawp", HttpResponse(status=status, body=body))
    assert type(error) is cls
    assert error.provider == "wawp"
    assert error.status_code == status
    assert error.error_code == code
    assert error.gateway_message == message
    if message is not None:
        assert message in str(error)
    assert str(error).startswith(f"wawp: HTTP {status}")
    if code is not None:
        assert code in str(error)
    assert len(error.body_excerpt) <= 300


@pytest.mark.parametrize(
    ("status", "cls", "outcome", "retryable"),
    [
        (400, Rejected, Outcome.REJECTED, False),
        (401, AuthenticationError, Outcome.REJECTED, False),
        (403, AuthenticationError, Outcome.REJECTED, False),
        (404, Rejected, Outcome.REJECTED, False),
        (408, ProviderUnavailable, Outcome.NOT_SENT, True),
        (422, Rejected, Outcome.REJECTED, False),
        (429, RateLimited, Outcome.NOT_SENT, True),
        (500, ProviderUnavailable, Outcome.UNKNOWN, False),
        (502, ProviderUnavailable, Outcome.UNKNOWN, False),
        (503, ProviderUnavailable, Outcome.NOT_SENT, True),
        (504, ProviderUnavailable, Outcome.UNKNOWN, False),
    ],
)
def test_error_from_response_status_rules(
    status: int, cls: type[ProviderError], outcome: Outcome, retryable: bool
) -> None:
    error = error_from_response("gw", HttpResponse(status=status))
    assert type(error) is cls
    assert error.outcome is outcome
    assert error.retryable is retryable


@pytest.mark.parametrize("status", [100, 101, 200, 204, 301, 302, 304, 307, 399])
def test_error_from_response_odd_statuses_do_not_crash(status: int) -> None:
    error = error_from_response("gw", HttpResponse(status=status, body=b"<p>Moved</p>"))
    assert type(error) is ProviderError
    assert error.outcome is Outcome.UNKNOWN
    assert error.retryable is False
    assert error.status_code == status


def test_error_from_response_truncated() -> None:
    response = HttpResponse(status=500, body=b"x" * 100, truncated=True)
    error = error_from_response("gw", response)
    assert str(error).endswith("(body truncated)")
    assert "(body truncated)" not in str(
        error_from_response("gw", HttpResponse(status=500, body=b"x" * 100))
    )


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"RETRY-AFTER": "soon"}, None),
        ({}, None),
    ],
)
def test_error_from_response_retry_after(
    headers: Mapping[str, str], retry_after: float | None
) -> None:
    response = HttpResponse(status=429, headers=headers, body=b'{"message": "slow down"}')
    error = error_from_response("gw", response)
    assert isinstance(error, RateLimited)
    assert error.retry_after == retry_after


def test_error_from_response_code_rules_win_over_status() -> None:
    rules: dict[str, ErrorRule] = {
        "rate_limit_exceeded": (RateLimited, Outcome.NOT_SENT, True),
    }
    response = HttpResponse(status=400, body=_json({"code": "rate_limit_exceeded"}))
    error = error_from_response("gw", response, code_rules=rules)
    assert type(error) is RateLimited
    assert error.retryable is True
    assert error.status_code == 400


def test_error_from_response_status_override() -> None:
    # A 200 whose body says 401: the rule follows the body, the status stays the real one.
    response = HttpResponse(status=200, body=_json({"statusCode": 401, "message": "no"}))
    error = error_from_response("gw", response, status=401)
    assert type(error) is AuthenticationError
    assert error.status_code == 200


def test_error_from_response_redacts_secrets_and_numbers() -> None:
    token = "tok-9b8c7d6e5f"
    body = _json(
        {
            "code": f"bad_{token}",
            "message": f"token {token} cannot send to 5511999990000",
            "url": f"https://api.wawp.net/v2/send/text?access_token={token}",
        }
    )
    error = error_from_response(
        "wawp", HttpResponse(status=401, body=body), secrets=[Secret(token)]
    )
    for text in (
        str(error),
        repr(error),
        error.body_excerpt,
        error.gateway_message or "",
        error.error_code or "",
    ):
        assert token not in text
        assert "5511999990000" not in text
    assert "55*********00" in str(error)


def test_error_from_response_survives_bytes_that_are_not_utf8() -> None:
    error = error_from_response("gw", HttpResponse(status=400, body=b"\xff\xfe\x00garbage"))
    assert type(error) is Rejected
    assert "garbage" in (error.gateway_message or "")


def test_error_from_response_caps_long_bodies() -> None:
    body = ("é" * 10_000).encode()
    error = error_from_response("gw", HttpResponse(status=500, body=body))
    assert len(error.body_excerpt) <= 300
    assert error.gateway_message is not None
    assert len(error.gateway_message) <= 300
