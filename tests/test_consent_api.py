"""Consent collection through the API and the hosted page (Flask test client): invitations, answers
with their proof, certificates, held letters, withdrawal, expiry, and each legal basis."""

from __future__ import annotations

import html
import io
import zipfile
from datetime import timedelta

import pytest
from pypdf import PdfReader

from tests.consent_helpers import INDIVIDUAL, form_fields, invite, letter_to, path_of

BROWSER = {"User-Agent": "Mozilla/5.0 (Linux; Android 14) TestBrowser/1.0",
           "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def html_of(response):
    """The page's text as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def answer(client, invitation, decision="accept", lang="fr"):
    page = client.get(path_of(invitation["url"]) + f"?lang={lang}", headers=BROWSER)
    assert page.status_code == 200, html_of(page)
    fields = form_fields(html_of(page))
    return client.post(path_of(invitation["url"]), data={**fields, "decision": decision}, headers=BROWSER,
                       environ_base={"REMOTE_ADDR": "203.0.113.7"})


def events_of(client, auth, type_):
    return client.get(f"/v1/events?type={type_}", headers=auth).get_json()["data"]


def test_an_invitation_returns_a_signed_link_and_is_an_event(client, auth):
    invitation = invite(client, auth)
    assert invitation["status"] == "pending"
    assert invitation["url"].startswith("http://bridge.test/consent/" + invitation["id"] + ".")
    (event,) = events_of(client, auth, "consent.invited")
    assert event["data"]["id"] == invitation["id"] and event["data"]["url"] == invitation["url"]


@pytest.mark.parametrize("days", [2, 31, 7.5, "sept"])
def test_an_expiry_outside_3_to_30_days_is_refused(client, auth, days):
    response = client.post("/v1/consents/invitations", json={"email": "a@exemple.fr", "name": "A",
                                                              "expires_in_days": days}, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "expires_in_days"


def test_an_invitation_needs_a_name(client, auth):
    response = client.post("/v1/consents/invitations", json={"email": "a@exemple.fr"}, headers=auth)
    assert response.status_code == 422
    assert "name" in response.get_json()["error"]["message"]


def test_the_page_is_french_by_default_english_on_request_and_safe_to_show(client, auth):
    invitation = invite(client, auth)
    page = client.get(path_of(invitation["url"]))
    text = html_of(page)
    assert page.status_code == 200 and '<html lang="fr">' in text
    assert "Cabinet Durand vous demande votre accord" in text and "retirer ce consentement" in text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    english = html_of(client.get(path_of(invitation["url"]) + "?lang=en"))
    assert '<html lang="en">' in english and "You can withdraw this consent at any time" in english


def test_accepting_fills_the_register_with_the_proof_and_a_certificate(client, auth):
    invitation = invite(client, auth)
    done = answer(client, invitation)
    assert done.status_code == 200 and "votre accord est enregistré" in html_of(done)
    answered = client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()
    proof = answered["proof"]
    assert answered["status"] == "accepted" and answered["url"] is None
    assert proof["ip_address"] == "203.0.113.7" and proof["user_agent"] == BROWSER["User-Agent"]
    assert proof["text_version"] == "2026-12-01" and len(proof["text_sha256"]) == 64
    assert "Cabinet Durand vous demande, Jeanne Martin" in proof["text"]
    register = client.get(f"/v1/consents?email={INDIVIDUAL['email']}", headers=auth).get_json()["data"]
    assert [c["id"] for c in register] == [answered["consent_id"]]
    assert register[0]["method"] == "electronic_form" and register[0]["status"] == "active"
    assert register[0]["proof"]["sha256"] == proof["certificate"]["sha256"]
    entry = client.get(f"/v1/consents/{answered['consent_id']}", headers=auth).get_json()
    assert entry["invitation"]["id"] == invitation["id"]
    certificate = client.get(f"/v1/consents/{answered['consent_id']}/proof", headers=auth)
    assert certificate.mimetype == "application/pdf"
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(certificate.data)).pages)
    flat = " ".join(text.split())
    for value in (invitation["id"], answered["consent_id"], "203.0.113.7", "TestBrowser/1.0", proof["text_sha256"],
                  "2026-12-01 (fr)", "jeanne.martin@exemple.fr", "Cabinet Durand", "ACCEPTÉ"):
        assert value in flat, value
    assert proof["answered_at"][:19].replace("T", " ") in flat
    (event,) = events_of(client, auth, "consent.accepted")
    assert event["data"]["consent_id"] == answered["consent_id"]


def test_the_certificate_is_in_the_evidence_of_a_later_letter(client, auth, drain):
    invitation = invite(client, auth)
    answer(client, invitation)
    certificate_sha = client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()[
        "proof"]["certificate"]["sha256"]
    letter = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).get_json()
    drain()
    shown = client.get(f"/v1/letters/{letter['id']}", headers=auth).get_json()
    assert {"kind": "consent", "sha256": certificate_sha} in [{"kind": p["kind"], "sha256": p["sha256"]}
                                                               for p in shown["proofs"]]
    package = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth).data
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        names = [n for n in archive.namelist() if "/data/proofs/consent-" in n]
        assert len(names) == 1
        assert "certificat-consentement" in names[0]
        journal = next(archive.read(n) for n in archive.namelist() if n.endswith("data/journal.jsonl"))
    assert certificate_sha.encode() in journal


def test_a_held_letter_is_sent_once_consent_is_given(client, auth, drain):
    invitation = invite(client, auth)
    created = client.post("/v1/letters", json=letter_to(INDIVIDUAL, hold_until_consent=True), headers=auth)
    assert created.status_code == 201, created.get_json()
    letter_id = created.get_json()["id"]
    drain()
    assert client.get(f"/v1/letters/{letter_id}", headers=auth).get_json()["status"] == "queued"
    answer(client, invitation)
    drain()
    letter = client.get(f"/v1/letters/{letter_id}", headers=auth).get_json()
    assert letter["status"] == "accepted"
    assert "consent" in [p["kind"] for p in letter["proofs"]]


def test_a_held_letter_fails_with_consent_refused_when_the_person_refuses(client, auth, drain):
    invitation = invite(client, auth)
    letter_id = client.post("/v1/letters", json=letter_to(INDIVIDUAL, hold_until_consent=True),
                            headers=auth).get_json()["id"]
    refused = answer(client, invitation, "refuse")
    assert refused.status_code == 200 and "Votre refus est enregistré" in html_of(refused)
    drain()
    letter = client.get(f"/v1/letters/{letter_id}", headers=auth).get_json()
    assert letter["status"] == "failed" and letter["failure"]["code"] == "consent_refused"
    assert client.get(f"/v1/consents?email={INDIVIDUAL['email']}", headers=auth).get_json()["data"] == []
    refusal = client.get(f"/v1/consents/invitations/{invitation['id']}/certificate", headers=auth)
    assert "REFUSÉ" in " ".join((PdfReader(io.BytesIO(refusal.data)).pages[0].extract_text() or "").split())
    assert len(events_of(client, auth, "consent.refused")) == 1
    # And a later letter is refused outright.
    again = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth)
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "consent_required"


def test_without_an_answer_the_invitation_expires_and_the_held_letter_fails(client, auth, drain, services):
    invitation = invite(client, auth, expires_in_days=3)
    letter_id = client.post("/v1/letters", json=letter_to(INDIVIDUAL, hold_until_consent=True),
                            headers=auth).get_json()["id"]
    start = services.clock()
    services.clock = lambda: start + timedelta(days=3, seconds=1)
    drain()  # the expiry job is due
    letter = client.get(f"/v1/letters/{letter_id}", headers=auth).get_json()
    assert letter["status"] == "failed" and letter["failure"]["code"] == "consent_expired"
    assert len(events_of(client, auth, "consent.expired")) == 1
    page = client.get(path_of(invitation["url"]), headers=BROWSER)
    assert page.status_code == 410 and "Ce lien a expiré" in html_of(page)


def test_an_expired_link_opened_before_the_job_ran_is_refused_and_expires(client, auth, services):
    invitation = invite(client, auth, expires_in_days=3)
    start = services.clock()
    services.clock = lambda: start + timedelta(days=4)
    page = client.post(path_of(invitation["url"]), data={"decision": "accept"}, headers=BROWSER)
    assert page.status_code == 410
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "expired"


def test_a_used_link_cannot_answer_again(client, auth):
    invitation = invite(client, auth)
    answer(client, invitation, "refuse")
    again = client.post(path_of(invitation["url"]), data={"decision": "accept"}, headers=BROWSER)
    assert again.status_code == 409 and "Ce lien a déjà été utilisé" in html_of(again)
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "refused"


@pytest.mark.parametrize("where", ["id", "mac"])
def test_a_link_with_one_character_changed_is_refused(client, auth, where):
    invitation = invite(client, auth)
    path = path_of(invitation["url"])
    index = len("/consent/cinv_") + 3 if where == "id" else len(path) - 5
    changed = path[:index] + ("a" if path[index] != "a" else "b") + path[index + 1:]
    for response in (client.get(changed, headers=BROWSER),
                     client.post(changed, data={"decision": "accept"}, headers=BROWSER)):
        assert response.status_code == 404 and "Ce lien n'est pas valide" in html_of(response)
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "pending"


def test_an_answer_to_a_text_other_than_the_one_shown_is_not_recorded(client, auth):
    invitation = invite(client, auth)
    fields = form_fields(html_of(client.get(path_of(invitation["url"]))))
    response = client.post(path_of(invitation["url"]), data={**fields, "text_sha256": "0" * 64, "decision": "accept"},
                           headers=BROWSER)
    assert response.status_code == 409 and "Le texte a changé" in html_of(response)
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "pending"


def test_withdrawal_revokes_the_register_entry_and_blocks_the_next_send(client, auth, drain):
    invitation = invite(client, auth)
    answer(client, invitation)
    assert client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).status_code == 201
    reopened = client.get(path_of(invitation["url"]), headers=BROWSER)
    assert reopened.status_code == 409 and "Je retire mon accord" in html_of(reopened)
    withdrawn = client.post(path_of(invitation["url"]) + "/withdraw", headers=BROWSER)
    assert withdrawn.status_code == 200 and "Votre accord est retiré" in html_of(withdrawn)
    register = client.get(f"/v1/consents?email={INDIVIDUAL['email']}", headers=auth).get_json()["data"]
    assert register[0]["status"] == "revoked" and "consent page" in register[0]["revoked_by"]
    refused = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "consent_required"
    assert len(events_of(client, auth, "consent.withdrawn")) == 1


def test_another_account_cannot_read_an_invitation(client, auth, other_auth):
    invitation = invite(client, auth)
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=other_auth).status_code == 404


# --- legal bases -----------------------------------------------------------------------------------

def test_professional_basis_needs_nothing(client, auth):
    body = letter_to({"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL",
                      "legal_basis": "professional"})
    assert client.post("/v1/letters", json=body, headers=auth).status_code == 201


def test_professional_basis_cannot_be_claimed_for_an_individual(client, auth):
    response = client.post("/v1/letters", json=letter_to({**INDIVIDUAL, "legal_basis": "professional"}), headers=auth)
    assert response.status_code == 422
    assert response.get_json()["error"] == {**response.get_json()["error"], "code": "invalid_legal_basis",
                                            "field": "recipient.legal_basis"}


def test_consent_basis_refuses_without_consent_and_sends_with_one(client, auth):
    refused = client.post("/v1/letters", json=letter_to({**INDIVIDUAL, "legal_basis": "consent"}), headers=auth)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "consent_required"
    client.post("/v1/consents", json={"email": INDIVIDUAL["email"], "method": "written",
                                      "obtained_at": "2026-01-05T10:00:00Z", "recorded_by": "Me"}, headers=auth)
    assert client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).status_code == 201


def test_hold_until_consent_needs_a_pending_invitation(client, auth):
    response = client.post("/v1/letters", json=letter_to(INDIVIDUAL, hold_until_consent=True), headers=auth)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "hold_until_consent"


CO_OWNER = {"type": "individual", "email": "paul.durand@exemple.fr", "first_name": "Paul", "last_name": "Durand",
            "legal_basis": "condominium"}


def enable_condominium(client, auth):
    response = client.put("/v1/consents/legal-bases", json={
        "condominium": True, "statement": "Courrier d'information du 2 mai 2024 et affichage dans le hall."},
        headers=auth)
    assert response.status_code == 200 and response.get_json()["condominium"]["enabled"] is True


def test_condominium_basis_is_refused_until_the_account_opts_in(client, auth):
    response = client.post("/v1/letters", json=letter_to(CO_OWNER), headers=auth)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "legal_basis_not_enabled"
    missing = client.put("/v1/consents/legal-bases", json={"condominium": True}, headers=auth)
    assert missing.status_code == 422
    enable_condominium(client, auth)
    assert client.post("/v1/letters", json=letter_to(CO_OWNER), headers=auth).status_code == 201


def test_a_co_owner_on_the_paper_register_is_refused(client, auth, other_auth):
    enable_condominium(client, auth)
    recorded = client.post("/v1/consents/paper-requests", json={
        "email": "Paul.Durand@exemple.fr", "name": "Paul Durand", "requested_at": "2026-11-20T09:00:00+01:00",
        "received_via": "registered_letter"}, headers=auth)
    assert recorded.status_code == 201
    refused = client.post("/v1/letters", json=letter_to(CO_OWNER), headers=auth)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "paper_requested" and error["field"] == "recipient.email"
    assert recorded.get_json()["id"] in error["message"]
    # Another syndic's register says nothing about this account's co-owners.
    enable_condominium(client, other_auth)
    assert client.post("/v1/letters", json=letter_to(CO_OWNER), headers=other_auth).status_code == 201
    # Withdrawn request (the co-owner accepts electronic notifications again): sends resume.
    client.delete(f"/v1/consents/paper-requests/{recorded.get_json()['id']}", headers=auth)
    assert client.post("/v1/letters", json=letter_to(CO_OWNER), headers=auth).status_code == 201


def test_a_paper_request_in_the_future_or_without_zone_is_refused(client, auth):
    for when in ("2099-01-01T00:00:00Z", "2026-11-20T09:00:00"):
        response = client.post("/v1/consents/paper-requests", json={"email": "a@exemple.fr", "requested_at": when},
                               headers=auth)
        assert response.status_code == 422 and response.get_json()["error"]["field"] == "requested_at"


def test_the_answers_match_their_openapi_schemas(client, auth):
    jsonschema = pytest.importorskip("jsonschema")
    document = client.get("/openapi.json").get_json()
    components = {"components": document["components"]}
    invitation = invite(client, auth)
    answer(client, invitation)
    answered = client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()
    paper = client.post("/v1/consents/paper-requests", json={"email": "a@exemple.fr",
                        "requested_at": "2026-11-20T09:00:00Z"}, headers=auth).get_json()
    bases = client.get("/v1/consents/legal-bases", headers=auth).get_json()
    for name, value in (("ConsentInvitation", invitation), ("ConsentInvitation", answered),
                        ("PaperRequest", paper), ("LegalBases", bases)):
        jsonschema.validate(value, {**document["components"]["schemas"][name], **components})
    assert "/consent/{token}" in document["paths"] and document["paths"]["/consent/{token}"]["get"]["security"] == []


def test_a_letter_not_yet_handed_to_the_provider_fails_when_consent_is_withdrawn(client, auth, drain):
    invitation = invite(client, auth)
    answer(client, invitation)
    sent = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).get_json()["id"]
    drain()
    waiting = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).get_json()["id"]
    client.post(path_of(invitation["url"]) + "/withdraw")
    drain()
    assert client.get(f"/v1/letters/{sent}", headers=auth).get_json()["status"] == "accepted"
    failed = client.get(f"/v1/letters/{waiting}", headers=auth).get_json()
    assert failed["status"] == "failed" and failed["failure"]["code"] == "consent_withdrawn"


def test_two_answers_racing_record_exactly_one(app, client, auth, services):
    """Two tabs (or a double click) posting at once: one answer, one register entry, one event."""
    import threading

    invitation = invite(client, auth)
    fields = form_fields(html_of(client.get(path_of(invitation["url"]))))
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def post(decision: str) -> None:
        with app.test_client() as own:
            barrier.wait()
            statuses.append(own.post(path_of(invitation["url"]), data={**fields, "decision": decision}).status_code)

    threads = [threading.Thread(target=post, args=(d,)) for d in ("accept", "refuse", "accept", "refuse")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses.count(200) == 1 and sorted(statuses)[1:] == [409, 409, 409], statuses
    answered = len(events_of(client, auth, "consent.accepted")) + len(events_of(client, auth, "consent.refused"))
    assert answered == 1
    assert len(client.get(f"/v1/consents?email={INDIVIDUAL['email']}", headers=auth).get_json()["data"]) <= 1


def test_a_client_that_is_not_a_browser_gets_the_api_error_shape(client, auth, services):
    invitation = invite(client, auth)
    path = path_of(invitation["url"])
    tampered = client.get(path[:-1] + ("x" if path[-1] != "x" else "y"))
    assert tampered.status_code == 404 and tampered.is_json
    assert tampered.get_json()["error"]["code"] == "invalid_link" and tampered.get_json()["error"]["field"] == "token"
    answer(client, invitation, "refuse")
    used = client.post(path_of(invitation["url"]), data={"decision": "accept"})
    assert used.status_code == 409 and used.get_json()["error"]["code"] == "already_answered"
    late = invite(client, auth, email="paul@exemple.fr", expires_in_days=3)
    start = services.clock()
    services.clock = lambda: start + timedelta(days=3, seconds=1)
    expired = client.get(path_of(late["url"]))
    assert expired.status_code == 410 and expired.get_json()["error"]["code"] == "link_expired"


def test_the_published_invitation_shape_is_closed_and_has_the_answer_s_fields(client, auth):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    invitation = invite(client, auth)
    answer(client, invitation)
    answered = client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()
    for name, value in (("ConsentInvitation", invitation), ("ConsentInvitation", answered),
                        ("InvitationProof", answered["proof"])):
        assert schemas[name]["additionalProperties"] is False, name
        assert set(value) == set(schemas[name]["properties"]), name  # a renamed field fails here
    assert invitation["proof"] is None and answered["proof"]["certificate"] is not None
    # The register entry carries the same invitation, described by the same component.
    consent = client.get(f"/v1/consents/{answered['consent_id']}", headers=auth).get_json()
    assert consent["invitation"] == answered
    assert {"$ref": "#/components/schemas/ConsentInvitation"} in schemas["Consent"]["properties"]["invitation"]["anyOf"]
