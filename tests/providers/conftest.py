"""Shared fixtures for the provider adapter tests: a fixed clock, contexts, fixture loading."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.lib import http
from connector.lib.spool import HashingFile
from connector.providers.base import OutgoingDocument, OutgoingLetter, ProviderContext, Recipient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# 08:00 UTC on 27 November 2026 is 09:00 in Paris (winter time).
NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def load_fixture(provider: str, name: str) -> Any:
    """A JSON fixture under tests/fixtures/<provider>/."""
    return json.loads((FIXTURES / provider / name).read_text())


def fixture_bytes(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def make_context(settings: dict[str, Any], now: Callable[[], datetime] = lambda: NOW) -> ProviderContext:
    """A context whose HTTP goes through the bridge's one function (loopback allowed)."""
    return ProviderContext(
        settings=settings,
        http=functools.partial(http.request, allow_private=True),
        now=now,
        public_url="https://bridge.example",
    )


def proof_bytes(downloaded: HashingFile) -> bytes:
    """The whole of a proof ``download_proof`` returned (then closed): small proofs only."""
    with downloaded:
        return downloaded.rewound().read()


def make_letter(**overrides: Any) -> OutgoingLetter:
    fields: dict[str, Any] = {
        "id": "let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f",
        "recipient": Recipient(
            type="individual", email="jeanne.martin@example.org", first_name="Jeanne", last_name="Martin"
        ),
        "documents": (OutgoingDocument("mise-en-demeure.pdf", PDF, "0" * 64),),
        "message": "Madame, veuillez trouver ci-joint notre mise en demeure.",
        "reference": "BAIL-2026-114",
        "callback_url": "https://bridge.example/callbacks/ar24/cbt_secret",
    }
    fields.update(overrides)
    return OutgoingLetter(**fields)


@pytest.fixture
def letter() -> OutgoingLetter:
    return make_letter()
