"""Every adapter against its golden wire files, with one suite for all.

``tests/data/<provider>/*.request.json`` and ``*.response.json`` hold each
gateway's wire format (see tests/golden.py for the format). Adding a golden
file adds a case; adding a provider folder adds a provider. Nothing here is
specific to one gateway.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest
from golden import (
    build_message,
    build_response,
    check_expect_keys,
    error_to_dict,
    golden_files,
    load_golden,
    providers_with_goldens,
    render_body,
    request_to_dict,
    result_to_dict,
)
from hostile import HOSTILE_BODIES, HOSTILE_STATUSES

import wamsg
from wamsg import HttpResponse, Outcome, ProviderError, SendResult

PROVIDERS = providers_with_goldens()
REQUESTS = [p for provider in PROVIDERS for p in golden_files(provider, "request")]
RESPONSES = [p for provider in PROVIDERS for p in golden_files(provider, "response")]


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.split('.')[0]}"


def test_every_registered_provider_has_goldens() -> None:
    assert set(wamsg.available()) <= set(PROVIDERS)


@pytest.mark.parametrize("path", REQUESTS, ids=case_id)
def test_request_golden(path: Path) -> None:
    golden = load_golden(path)
    adapter = wamsg.create_adapter(path.parent.name, **golden["settings"])
    message = build_message(golden["message"])
    request = adapter.encode(message)
    expect = golden["expect"]
    assert request_to_dict(request) == expect
    if "json" in expect:
        # Byte for byte, so that the documented samples' key order holds too.
        assert render_body(request) == msgspec.json.encode(expect["json"])
    # Encoding is deterministic: the same message gives the same request.
    assert request_to_dict(adapter.encode(message)) == expect


@pytest.mark.parametrize("path", RESPONSES, ids=case_id)
def test_response_golden(path: Path) -> None:
    golden = load_golden(path)
    provider = path.parent.name
    expect = golden["expect"]
    check_expect_keys(expect)
    response = build_response(golden)
    adapter = wamsg.create_adapter(provider, **golden.get("settings", _default_settings(provider)))
    try:
        outcome: SendResult | ProviderError = adapter.decode(response)
    except ProviderError as exc:
        outcome = exc
    if "result" in expect:
        assert isinstance(outcome, SendResult), f"expected a result, got {outcome!r}"
        assert result_to_dict(outcome) == expect["result"]
        assert outcome.raw == response.body
    else:
        assert isinstance(outcome, ProviderError), f"expected an error, got {outcome!r}"
        with_message = "gateway_message" in expect["error"]
        assert error_to_dict(outcome, with_message=with_message) == expect["error"]
    assert outcome.provider == provider


def _default_settings(provider: str) -> dict[str, str]:
    """Settings of the first request golden of ``provider``."""
    first = golden_files(provider, "request")[0]
    settings: dict[str, str] = load_golden(first)["settings"]
    return settings


@pytest.mark.parametrize("provider", PROVIDERS)
def test_decode_hostile_bodies_never_escape(provider: str) -> None:
    """Every adapter answers any body with a result or a ProviderError only.

    After a 2xx the message may be out, so a body that does not clearly say
    otherwise never gives ``not_sent``; a non-2xx is never a success.
    """
    adapter = wamsg.create_adapter(provider, **_default_settings(provider))
    failures: list[str] = []
    for status in HOSTILE_STATUSES:
        for body in HOSTILE_BODIES:
            case = f"{status} {body[:40]!r}"
            try:
                outcome: SendResult | ProviderError = adapter.decode(
                    HttpResponse(status=status, body=body)
                )
            except ProviderError as exc:
                outcome = exc
            except Exception as exc:  # anything but a ProviderError is a bug
                failures.append(f"{case}: {type(exc).__name__}: {exc}")
                continue
            accepted = 200 <= status < 300
            if not accepted and not isinstance(outcome, ProviderError):
                failures.append(f"{case}: a non-2xx gave {outcome!r}")
            if isinstance(outcome, ProviderError):
                if accepted and outcome.outcome is Outcome.NOT_SENT:
                    failures.append(f"{case}: not_sent after a 2xx")
                if outcome.retry_after is not None and not math.isfinite(outcome.retry_after):
                    failures.append(f"{case}: retry_after {outcome.retry_after}")
    assert not failures, "\n".join(failures)
