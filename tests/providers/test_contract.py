"""The contract every registered provider honours, run over ``connector.providers.PROVIDERS``.

Each provider gets a harness: the adapter wired to a stand-in of its provider (the sandbox's own
tables, the AR24-compatible loopback server, a stateful Maileva fake) and a way to play the
recipient's answer. A provider added to the registry without a harness fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from cryptography.fernet import Fernet

from connector.config import load_settings
from connector.migrate import upgrade
from connector.providers import PROVIDERS, provider_class
from connector.providers.base import (
    FINAL_STATUSES,
    LetterStatus,
    Provider,
    ProviderError,
    ProviderState,
    WebhookRejected,
)
from connector.providers.maileva import clear_token_cache
from connector.services import build_services
from tests.ar24_server import AR24Server
from tests.providers import maileva_fake
from tests.providers.conftest import make_context, make_letter


@dataclass
class Harness:
    provider: Provider
    sender_otp: str | None
    answer: Callable[[str], None]  # the recipient accepts the letter at the provider


def _sandbox(request: pytest.FixtureRequest) -> Iterator[Harness]:
    # Its own small installation: the sandbox keeps its side in the bridge's database.
    tmp = request.getfixturevalue("tmp_path")
    services = build_services(
        load_settings(
            {
                "data_dir": tmp / "data",
                "database_url": f"sqlite:///{tmp / 'sandbox.sqlite3'}",
                "encryption_keys": Fernet.generate_key().decode(),
                "sandbox_step_seconds": 0,
            }
        )
    )
    upgrade(services.db)
    yield Harness(services.provider("sandbox", {}), None, lambda _id: None)
    services.db.dispose()


def _ar24(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with AR24Server() as server:
        adapter = provider_class("ar24")(make_context(server.settings(), now=lambda: datetime.now(UTC)))

        def answer(mail_id: str) -> None:
            server.advance(mail_id, "ev")
            server.advance(mail_id, "ar")

        yield Harness(adapter, "123456", answer)


def _maileva(request: pytest.FixtureRequest) -> Iterator[Harness]:
    clear_token_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = maileva_fake.MailevaFake(mock)
        adapter = provider_class("maileva")(make_context(maileva_fake.SETTINGS))
        yield Harness(adapter, None, fake.complete)
    clear_token_cache()


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Iterator[Harness]]] = {
    "sandbox": _sandbox,
    "ar24": _ar24,
    "maileva": _maileva,
}


@pytest.fixture(params=sorted(PROVIDERS))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    name = request.param
    assert name in HARNESSES, f"provider {name!r} is registered but has no contract harness"
    yield from HARNESSES[name](request)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_the_class_declares_what_the_bridge_reads(name: str) -> None:
    cls = provider_class(name)
    assert cls.name == name
    assert cls.display_name and isinstance(cls.supports_webhooks, bool)
    settings = getattr(cls, "SETTINGS", None)
    assert isinstance(settings, tuple)
    assert set(getattr(cls, "SECRET_SETTINGS", ())) <= set(settings)
    assert not set(getattr(cls, "OPTIONAL_SETTINGS", ())) & set(settings)


def test_it_satisfies_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.provider, Provider)


def _submitted(harness: Harness) -> tuple[str, Any]:
    context = harness.provider.prepare_submission(harness.sender_otp)
    json.dumps(context)  # stored encrypted as JSON with the letter
    letter = make_letter(submit_context=context, sandbox_outcome="accepted")
    return harness.provider.submit(letter).provider_letter_id, letter


def test_a_submitted_letter_is_found_by_our_reference(harness: Harness) -> None:
    provider_letter_id, letter = _submitted(harness)
    assert provider_letter_id
    assert harness.provider.find_by_reference(letter.id) == provider_letter_id


def test_a_letter_never_submitted_is_not_found(harness: Harness) -> None:
    assert harness.provider.find_by_reference("let_0123456789abcdef0123456789abcdef") is None


def _check_state(state: ProviderState) -> None:
    ids = [e.provider_event_id for e in state.events]
    assert len(ids) == len(set(ids))
    for event in state.events:
        assert event.status == "unknown" or event.status in set(LetterStatus)
        assert event.occurred_at.tzinfo is not None
        json.dumps(dict(event.raw), default=str)
    assert state.final == any(e.status in FINAL_STATUSES for e in state.events)


def test_the_letter_reaches_a_final_state_with_downloadable_proofs(harness: Harness) -> None:
    provider_letter_id, _ = _submitted(harness)
    harness.answer(provider_letter_id)

    first = harness.provider.fetch_state(provider_letter_id)
    again = harness.provider.fetch_state(provider_letter_id)

    _check_state(first)
    assert first.final
    assert [e.provider_event_id for e in first.events] == [e.provider_event_id for e in again.events]
    assert first.events[0].status == LetterStatus.DEPOSITED
    assert first.events[-1].status == LetterStatus.ACCEPTED
    for event in first.events:
        assert event.proof is not None
        downloaded = harness.provider.download_proof(event.proof)
        with downloaded:
            assert downloaded.head(4) == b"%PDF" and downloaded.size > 4


def test_a_callback_is_either_a_hint_or_refused(harness: Harness) -> None:
    try:
        hint = harness.provider.parse_callback({}, {}, b"id_mail=1")
    except WebhookRejected as rejected:
        assert 400 <= rejected.status < 500
        assert not type(harness.provider).supports_webhooks
    else:
        assert hint is None or isinstance(hint, str)


def test_errors_carry_the_retry_decision(harness: Harness) -> None:
    try:
        harness.provider.fetch_state("0c0c0c0c-0000-4000-8000-00000000dead")
    except ProviderError as error:
        assert isinstance(error.permanent, bool) and error.code and error.message
    except Exception as other:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{type(other).__name__} escaped instead of a ProviderError: {other}")
