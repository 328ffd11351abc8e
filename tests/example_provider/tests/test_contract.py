"""The Acme adapter passes wamsg's adapter contract: this file is all it takes."""

from __future__ import annotations

from pathlib import Path

from wamsg.testing.contract import AdapterCase, AdapterContract


class TestAcmeContract(AdapterContract):
    case = AdapterCase(
        provider="acme",  # found through the wamsg.providers entry point
        goldens=Path(__file__).parent / "data" / "acme",
        settings={"token": "acme-sample-token-1"},
    )
