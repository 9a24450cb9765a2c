"""A letter's whole legal lifecycle through the HTTP API and the sandbox provider."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import letter_payload, make_pdf

FINAL = {"accepted": "acceptance", "refused": "refusal", "neglected": "negligence", "bounced": "bounce"}


def test_it_accepts_a_letter_and_queues_it(client, auth):
    response = client.post("/v1/letters", json=letter_payload(), headers=auth)
    assert response.status_code == 201, response.json
    letter = response.json
    assert letter["id"].startswith("let_")
    assert letter["status"] == "queued"
    assert letter["recipient"]["email"] == "compta@exemple.fr"
    assert letter["documents"][0]["size"] == len(make_pdf())
    assert response.headers["Location"].endswith(letter["id"])


@pytest.mark.parametrize("outcome", sorted(FINAL))
def test_it_follows_a_letter_to_each_final_status(client, auth, drain, outcome):
    letter = client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth).json
    drain()
    after = client.get(f"/v1/letters/{letter['id']}", headers=auth).json
    assert after["status"] == outcome
    assert after["deposited_at"] and after["completed_at"]
    assert [p["kind"] for p in after["proofs"]] == ["deposit", FINAL[outcome]]
    events = client.get(f"/v1/events?letter_id={letter['id']}", headers=auth).json["data"]
    assert [e["type"] for e in events] == [f"letter.{outcome}", "letter.deposited", "letter.queued"]
    assert len({e["id"] for e in events}) == 3
    assert events[0]["data"]["status"] == outcome
    # Each event carries the letter as it was then: its documents, and the proofs issued so far.
    final_copy, deposited_copy, queued_copy = (e["data"] for e in events)
    assert final_copy | {"updated_at": ""} == after | {"updated_at": ""}  # later writes touch updated_at
    assert deposited_copy["documents"] == queued_copy["documents"] == after["documents"]
    assert [p["kind"] for p in deposited_copy["proofs"]] == ["deposit"]
    assert deposited_copy["proofs"][0] == after["proofs"][0]
    assert queued_copy["proofs"] == []


def test_it_marks_a_letter_failed_when_the_provider_refuses_it(client, auth, drain):
    letter = client.post("/v1/letters", json=letter_payload(sandbox_outcome="failed"), headers=auth).json
    drain()
    after = client.get(f"/v1/letters/{letter['id']}", headers=auth).json
    assert after["status"] == "failed"
    assert after["failure"]["code"] == "sandbox_rejected"
    types = [e["type"] for e in client.get(f"/v1/events?letter_id={letter['id']}", headers=auth).json["data"]]
    assert types == ["letter.failed", "letter.queued"]


def test_it_serves_the_document_as_sent(client, auth):
    pdf = make_pdf("Mise en demeure")
    payload = letter_payload(documents=[{"filename": "md.pdf", "content_base64": base64.b64encode(pdf).decode()}])
    letter = client.post("/v1/letters", json=payload, headers=auth).json
    response = client.get(f"/v1/letters/{letter['id']}/document", headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data == pdf


def test_an_event_the_provider_lists_twice_at_submission_is_recorded_once(client, auth, drain, monkeypatch):
    """A submission's first events are not looked up one by one (the letter is new at the provider):
    one listed twice by the provider is still recorded once, and the letter goes on."""
    from connector.providers.base import SubmitResult
    from connector.providers.sandbox import SandboxProvider

    submit = SandboxProvider.submit

    def twice(self: SandboxProvider, letter: object) -> SubmitResult:
        result = submit(self, letter)  # type: ignore[arg-type]
        return SubmitResult(result.provider_letter_id, result.events + result.events)

    monkeypatch.setattr(SandboxProvider, "submit", twice)
    letter = client.post("/v1/letters", json=letter_payload(sandbox_outcome="accepted"), headers=auth).json
    drain()
    after = client.get(f"/v1/letters/{letter['id']}", headers=auth).json
    assert after["status"] == "accepted"
    events = client.get(f"/v1/events?letter_id={letter['id']}", headers=auth).json["data"]
    assert [e["type"] for e in events] == ["letter.accepted", "letter.deposited", "letter.queued"]
    assert [p["kind"] for p in after["proofs"]] == ["deposit", "acceptance"]
