"""Every table keyed by one of the bridge's words covers exactly those words (connector.letters.vocabulary)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from connector.evidence import journal, summary
from connector.letters import vocabulary
from connector.letters.vocabulary import LetterStatus, ProofKind, RecipientType, SandboxOutcome
from connector.platforms import catalog
from connector.providers import sandbox

STEP_STATUSES = {s for s in LetterStatus if s not in (LetterStatus.QUEUED, LetterStatus.FAILED)}

TABLES: list[tuple[str, Any, set[str]]] = [
    ("vocabulary.STATUS_LABELS", vocabulary.STATUS_LABELS, set(LetterStatus)),
    ("vocabulary.STATUS_PHRASES", vocabulary.STATUS_PHRASES, set(LetterStatus)),
    ("vocabulary.PROOF_KIND_BY_STATUS", vocabulary.PROOF_KIND_BY_STATUS, STEP_STATUSES),
    ("vocabulary.PROOF_LABELS", vocabulary.PROOF_LABELS, set(ProofKind)),
    ("vocabulary.RECIPIENT_TYPE_LABELS", vocabulary.RECIPIENT_TYPE_LABELS, set(RecipientType)),
    ("vocabulary.SANDBOX_OUTCOME_LABELS", vocabulary.SANDBOX_OUTCOME_LABELS, set(SandboxOutcome)),
    ("catalog.STATUS_LABELS", catalog.STATUS_LABELS, set(LetterStatus)),
    ("catalog.RECIPIENT_TYPES", {c.value for c in catalog.RECIPIENT_TYPES}, set(RecipientType)),
    ("catalog.SANDBOX_OUTCOMES", {c.value for c in catalog.SANDBOX_OUTCOMES}, set(SandboxOutcome)),
    ("catalog proof kinds", {k.removeprefix("letter.") for k in catalog.CATALOG.proof_kinds}, STEP_STATUSES),
    ("evidence summary STATUS_LABELS", summary.STATUS_LABELS, set(LetterStatus)),
    ("evidence summary PROOF_LABELS", summary.PROOF_LABELS, set(ProofKind)),
    ("sandbox PROOF_TITLES", sandbox.PROOF_TITLES, set(ProofKind)),
    ("sandbox OUTCOMES", sandbox.OUTCOMES, set(SandboxOutcome) - {SandboxOutcome.FAILED}),
]


@pytest.mark.parametrize(("name", "table", "words"), TABLES, ids=[t[0] for t in TABLES])
def test_each_table_is_keyed_by_exactly_its_words(name: str, table: Any, words: set[StrEnum]) -> None:
    assert {str(key) for key in table} == {str(word) for word in words}, name


def test_the_journal_names_an_etsi_event_for_every_status() -> None:
    assert set(LetterStatus) <= set(journal.ETSI_EVENTS)


def test_the_api_documents_and_accepts_exactly_the_letter_statuses(client: Any, auth: dict[str, str]) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    status = schemas["Letter"]["properties"]["status"]
    status = schemas[status["$ref"].rsplit("/", 1)[-1]] if "$ref" in status else status
    assert set(status["enum"]) == set(LetterStatus)
    for status in LetterStatus:
        assert client.get(f"/v1/letters?status={status}", headers=auth).status_code == 200
    assert client.get("/v1/letters?status=lost", headers=auth).status_code == 400


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_domain_error_kind_has_one_http_status() -> None:
    from connector import errors
    from connector.api.errors import STATUS_BY_ERROR, status_of

    kinds = {cls for cls in _subclasses(errors.BridgeError) if cls.__module__ == errors.__name__}
    # each kind answers a 4xx/5xx from the one table, directly or through its parent
    for kind in kinds:
        assert any(cls in STATUS_BY_ERROR for cls in kind.__mro__), kind
        assert 400 <= status_of(kind("code", "message")) < 600
    assert set(STATUS_BY_ERROR) <= kinds
    assert status_of(errors.LetterRejected("consent_required", "m")) == 422
    assert status_of(errors.Unavailable("provider_unavailable", "m")) == 503
