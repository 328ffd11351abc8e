"""The contract kit can fail: each check catches an adapter that breaks its rule.

The example Acme adapter (tests/example_provider) passes the kit; each test
here breaks one rule in a subclass of it and expects the matching check to
fail with a message saying what is wrong.
"""

from __future__ import annotations

import json
import random
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wamsg import (
    Capabilities,
    HttpRequest,
    HttpResponse,
    Message,
    Outcome,
    ProviderUnavailable,
    SendResult,
    Text,
)
from wamsg.providers.base import HTTP_STATUS_RULES, error_from_response
from wamsg.testing import contract
from wamsg.testing.contract import AdapterCase, Expect

EXAMPLE = Path(__file__).resolve().parent / "example_provider"
GOLDENS = EXAMPLE / "tests" / "data" / "acme"
TOKEN = "acme-sample-token-1"


@pytest.fixture(scope="module", autouse=True)
def acme_on_path() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLE / "src"))
    yield
    sys.path.remove(str(EXAMPLE / "src"))


def acme() -> Any:
    from wamsg_acme.adapter import AcmeAdapter

    return AcmeAdapter


def case(factory: Any, **options: Any) -> AdapterCase:
    return AdapterCase(
        provider="acme", goldens=GOLDENS, settings={"token": TOKEN}, factory=factory, **options
    )


def fails(check: Any, *args: Any, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check(*args)


def test_the_example_passes_every_check() -> None:
    good = case(acme())
    contract.check_identity(good)
    for path in good.request_goldens():
        contract.check_request_golden(good, path)
    for path in good.response_goldens():
        contract.check_response_golden(good, path)
    for feature in contract.FEATURES:
        contract.check_capability(good, feature)
    for status in contract.STATUS_CONTRACT:
        contract.check_status(good, status)
    contract.check_garbage(good)
    contract.check_secrets(good)
    contract.check_no_io_imports(good)


def test_a_wrong_name() -> None:
    class Renamed(acme()):  # type: ignore[misc]
        name = "acme2"

    fails(contract.check_identity, case(Renamed), match="adapter.name is 'acme2'")


def test_a_request_that_differs_from_the_golden() -> None:
    class WrongPath(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            request = super().encode(message)
            return HttpRequest(
                method="POST",
                url=request.url.replace("/v1/", "/v2/"),
                headers=request.headers,
                body=request.body,
                kind=request.kind,
            )

    good = case(WrongPath)
    fails(contract.check_request_golden, good, good.request_goldens()[0], match="expected")


def test_encoding_that_is_not_deterministic() -> None:
    class Jittery(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            request = super().encode(message)
            if random.random() < 0.5:
                return request
            return HttpRequest(
                method="POST", url=request.url, headers=request.headers, body=request.body + b" "
            )

    broken = case(Jittery)
    path = broken.request_goldens()[0]
    random.seed(3)
    failures = 0
    for _ in range(20):
        try:
            contract.check_request_golden(broken, path)
        except AssertionError:
            failures += 1
    assert failures >= 10


def test_a_response_decoded_wrong() -> None:
    class Optimist(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            return SendResult(provider="acme", message_id="x", raw=response.body)

    broken = case(Optimist)
    path = next(p for p in broken.response_goldens() if p.name.startswith("err_401"))
    fails(contract.check_response_golden, broken, path, match="expected an error")


def test_a_declared_reply_that_is_dropped() -> None:
    class NoReply(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            return super().encode(Text(to=message.recipient, text=getattr(message, "text", "")))

    fails(contract.check_capability, case(NoReply), "reply", match="reply_to changed nothing")


def test_an_undeclared_feature_that_is_sent_anyway() -> None:
    class Lenient(acme()):  # type: ignore[misc]
        capabilities = Capabilities(mentions_text=True, reply=True, media_url=True)

        def encode(self, message: Message) -> HttpRequest:
            # Declares mentions but puts nothing of them on the wire.
            return super().encode(Text(to=message.recipient, text=getattr(message, "text", "")))

    fails(
        contract.check_capability,
        case(Lenient),
        "mentions_text",
        match="mentioned number is not on the wire",
    )


def test_a_limit_that_is_not_enforced() -> None:
    class Unbounded(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            if isinstance(message, Text) and len(message.text) > 4096:
                message = Text(to=message.recipient, text=message.text[:4096])
            return super().encode(message)

    fails(
        contract.check_capability,
        case(Unbounded),
        "max_text_chars",
        match="encode did not raise InvalidMessage",
    )


def test_a_client_message_id_that_is_not_sent() -> None:
    class Claims(acme()):  # type: ignore[misc]
        capabilities = Capabilities(reply=True, media_url=True, client_message_id=True)

    fails(
        contract.check_capability,
        case(Claims),
        "client_message_id",
        match="the key changes nothing",
    )


def test_a_503_that_is_called_unknown() -> None:
    rules = {**HTTP_STATUS_RULES, 503: (ProviderUnavailable, Outcome.UNKNOWN, False)}

    class Gloomy(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            if response.status >= 300:
                raise error_from_response("acme", response, status_rules=rules)
            return super().decode(response)  # type: ignore[no-any-return]

    fails(contract.check_status, case(Gloomy), 503, match="outcome unknown")
    # A case may state a documented quirk instead:
    quirk = Expect(ProviderUnavailable, frozenset({Outcome.UNKNOWN}), False)
    contract.check_status(case(Gloomy, status={503: quirk}), 503)


def test_a_decoder_that_lets_a_parsing_error_escape() -> None:
    class Naive(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            import json

            data = json.loads(response.body)
            return SendResult(provider="acme", message_id=data["id"], raw=response.body)

    fails(
        contract.check_garbage,
        case(Naive),
        match="JSONDecodeError|KeyError|TypeError|result.message_id is a int",
    )


def test_a_repr_that_shows_the_token() -> None:
    class Chatty(acme()):  # type: ignore[misc]
        def __repr__(self) -> str:
            return f"Acme(token={self._token.reveal()})"

    fails(contract.check_secrets, case(Chatty), match="repr\\(adapter\\) shows")


def test_a_token_in_a_plain_header() -> None:
    class Plain(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            request = super().encode(message)
            return HttpRequest(
                method="POST",
                url=request.url,
                headers=(("Authorization", f"Bearer {TOKEN}"),),
                body=request.body,
            )

    fails(contract.check_secrets, case(Plain), match="without Secret")


def test_a_plain_header_derived_from_the_token() -> None:
    import base64

    class Basic(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            request = super().encode(message)
            basic = base64.b64encode(f"user:{self._token.reveal()}".encode()).decode()
            return HttpRequest(
                method="POST",
                url=request.url,
                headers=(("Authorization", f"Basic {basic}"),),
                body=request.body,
            )

    fails(contract.check_secrets, case(Basic), match="header Authorization changes with the secret")


def test_a_repr_with_a_slice_of_the_token() -> None:
    class Slicer(acme()):  # type: ignore[misc]
        def __repr__(self) -> str:
            return f"Acme(token=...{self._token.reveal()[-5:]})"

    fails(contract.check_secrets, case(Slicer), match=r"repr\(adapter\) changes with the secret")


def test_a_token_in_the_body_needs_the_opt_in() -> None:
    class InBody(acme()):  # type: ignore[misc]
        def encode(self, message: Message) -> HttpRequest:
            request = super().encode(message)
            assert isinstance(request.body, bytes)
            token = self._token.reveal().removeprefix("Bearer ")
            body = request.body[:-1] + f', "token": "{token}"}}'.encode()
            return HttpRequest(method="POST", url=request.url, headers=request.headers, body=body)

    fails(contract.check_secrets, case(InBody), match="body holds")
    contract.check_secrets(case(InBody, secret_in_body=True))


def test_an_error_that_echoes_the_token() -> None:
    class Echo(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            if response.status >= 300:
                raise error_from_response("acme", response)  # no secrets= given
            return super().decode(response)  # type: ignore[no-any-return]

    fails(contract.check_secrets, case(Echo), match="error shows")


def test_an_error_cut_through_the_token() -> None:
    class Cutter(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            if response.status < 300:
                return super().decode(response)  # type: ignore[no-any-return]
            # Cuts, then redacts the whole token: a cut through it leaves its start.
            text = response.body.decode(errors="replace")[:300].replace(TOKEN, "***")
            raise ProviderUnavailable(
                text, provider="acme", status_code=response.status, outcome=Outcome.UNKNOWN
            )

    fails(contract.check_secrets, case(Cutter), match="echo after [0-9]+ bytes shows")


def test_an_error_that_shows_the_phone_number() -> None:
    class Blabber(acme()):  # type: ignore[misc]
        def decode(self, response: HttpResponse) -> SendResult:
            if response.status < 300:
                return super().decode(response)  # type: ignore[no-any-return]
            raise ProviderUnavailable(
                response.body.decode(errors="replace").replace(TOKEN, "***")[:100],
                provider="acme",
                status_code=response.status,
                outcome=Outcome.UNKNOWN,
            )

    fails(contract.check_secrets, case(Blabber), match="shows the phone number")


def test_a_config_that_shows_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wamsg import DsnFormat
    from wamsg import providers as registry

    class Login(acme()):  # type: ignore[misc]
        # "login" holds a credential, but is neither typed Secret nor named
        # like one, and the DSN format does not list it as secret.
        dsn = DsnFormat()

        def __init__(self, *, login: str) -> None:
            super().__init__(token=login)

    golden = json.loads((GOLDENS / "text_basic.request.json").read_text())
    golden["settings"] = {"login": TOKEN}
    (tmp_path / "text_basic.request.json").write_text(json.dumps(golden))
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    registry.register("acme", Login)
    broken = AdapterCase(
        provider="acme", goldens=tmp_path, settings={"login": TOKEN}, secrets=[TOKEN]
    )
    with pytest.raises(AssertionError, match="a masked config shows"):
        contract.check_dsn(broken)


def test_an_adapter_that_imports_an_io_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme_http").mkdir()
    (tmp_path / "acme_http" / "__init__.py").write_text("")
    (tmp_path / "acme_http" / "helpers.py").write_text("import socket\n")
    (tmp_path / "acme_http" / "adapter.py").write_text(
        textwrap.dedent(
            """
            from wamsg_acme.adapter import AcmeAdapter
            from . import helpers

            class Networked(AcmeAdapter):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from acme_http.adapter import Networked  # type: ignore[import-not-found]

    fails(
        contract.check_no_io_imports,
        case(Networked),
        match=r"acme_http.helpers': \['socket'\]",
    )


def _module(root: Path, name: str, source: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(source))


def test_io_through_another_package_and_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    # A helper library the adapter depends on opens sockets at import.
    _module(tmp_path, "acme_helpers", "import socket\n")
    _module(
        tmp_path,
        "acme_via_lib",
        """
        from acme_helpers import socket as _s
        from wamsg_acme.adapter import AcmeAdapter

        class ViaLib(AcmeAdapter):
            pass
        """,
    )
    # An import made by name at run time, which no source walk sees.
    _module(
        tmp_path,
        "acme_dynamic",
        """
        import importlib
        from wamsg_acme.adapter import AcmeAdapter

        importlib.import_module("ht" + "tpx")

        class Dynamic(AcmeAdapter):
            pass
        """,
    )
    # Imports for type checkers only never run: allowed.
    _module(
        tmp_path,
        "acme_typed",
        """
        from typing import TYPE_CHECKING
        from wamsg_acme.adapter import AcmeAdapter

        if TYPE_CHECKING:
            import httpx

        class Typed(AcmeAdapter):
            pass
        """,
    )
    from acme_dynamic import Dynamic  # type: ignore[import-not-found]
    from acme_typed import Typed  # type: ignore[import-not-found]
    from acme_via_lib import ViaLib  # type: ignore[import-not-found]

    fails(contract.check_no_io_imports, case(ViaLib), match=r"acme_helpers': \['socket'\]")
    fails(contract.check_no_io_imports, case(Dynamic), match=r"importing acme_dynamic loads.*httpx")
    contract.check_no_io_imports(case(Typed))
    # A library the author vouches for is not walked.
    contract.check_no_io_imports(case(ViaLib, trusted_imports=frozenset({"acme_helpers"})))


def test_wamsg_client_counts_as_io() -> None:
    bad = contract.io_imports("wamsg.client") if hasattr(contract, "io_imports") else None
    from wamsg.testing._imports import io_imports

    bad = io_imports("wamsg.client")
    assert "anyio" in bad["wamsg.client"]
    assert io_imports("wamsg.providers.wawp") == {}
