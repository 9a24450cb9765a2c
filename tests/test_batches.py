"""Batches through the HTTP API: one convocation to many co-owners, validated whole, made and sent by
the workers exactly once, followed, cancelled, and proven by the bordereau and the evidence zip."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import bagit
import jsonschema
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from connector.batches.models import Batch, BatchDocument, BatchItem
from connector.models import Document, Event, Job, Letter, SandboxMail
from tests.helpers import make_pdf

ASSEMBLY_DAY = (date.today() + timedelta(days=40)).isoformat()
COMMON = {
    "expediteur_nom": "Cabinet Durand, syndic",
    "expediteur_adresse": "3 place Bellecour\n69002 Lyon",
    "lieu": "Lyon",
    "nom_copropriete": "Résidence Les Tilleuls",
    "adresse_immeuble": "18 rue Victor-Hugo, 69002 Lyon",
    "date_assemblee": ASSEMBLY_DAY,
    "heure_assemblee": "18 h 30",
    "lieu_assemblee": "Salle des fêtes\n2 rue d'Enghien, 69002 Lyon",
    "ordre_du_jour": ["Élection du président de séance", "Approbation des comptes 2026"],
}


def co_owner(n: int, **extra: Any) -> dict[str, Any]:
    row = {"email": f"coproprietaire{n}@exemple.fr", "type": "professional", "company": f"SCI Lot {n}",
           "destinataire_nom": f"SCI Lot {n}", "destinataire_adresse": f"{n} rue Victor-Hugo\n69002 Lyon",
           "lots": f"Lot {n} : appartement | Lot {100 + n} : cave"}
    row.update(extra)
    return row


def batch_body(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": "convocation_ag_copropriete", "data": COMMON, "rows": rows, "reference": "AG-2027",
        "attachments": [{"filename": "ordre-du-jour.pdf",
                         "content_base64": base64.b64encode(make_pdf("Projets de résolution")).decode()}],
    }
    body.update(extra)
    return body


def post_batch(client, auth, body: dict[str, Any]):
    return client.post("/v1/batches", json=body, headers=auth)


def assert_documented(client, name: str, value: Any) -> None:
    """``value`` matches the OpenAPI schema ``name`` the API publishes."""
    document = client.get("/openapi.json").json
    jsonschema.validate(value, {**document["components"]["schemas"][name], "components": document["components"]})


def counts(client, auth, batch_id: str) -> dict[str, int]:
    return client.get(f"/v1/batches/{batch_id}", headers=auth).json["counts"]


def test_a_json_batch_is_accepted_then_made_and_sent_once_per_row(client, auth, services, drain):
    answer = post_batch(client, auth, batch_body([co_owner(1), co_owner(2), co_owner(3)]))
    assert answer.status_code == 202, answer.json
    batch = answer.json
    assert answer.headers["Location"].endswith(batch["id"])
    assert batch["total"] == 3 and batch["counts"]["pending"] == 3 and batch["status"] == "processing"

    drain()
    after = client.get(f"/v1/batches/{batch['id']}", headers=auth).json
    assert after["counts"]["accepted"] == 3 and after["counts"]["submitted"] == 3
    assert after["status"] == "completed" and after["progress"]["final"] == 1.0
    assert_documented(client, "Batch", batch)
    assert_documented(client, "Batch", after)

    with services.db.transaction() as session:
        letters = list(session.scalars(select(Letter).order_by(Letter.created_at)))
        attachment_keys = {d.storage_key for d in session.scalars(select(Document).where(Document.position == 1))}
        common_key = session.scalar(select(BatchDocument.storage_key))
        sent = dict(session.execute(select(SandboxMail.reference, func.count()).group_by(SandboxMail.reference)).all())
    assert len(letters) == 3 and all(letter.metadata_["batch_id"] == batch["id"] for letter in letters)
    assert sent == {letter.id: 1 for letter in letters}
    # The common attachment is archived once and every letter refers to that one copy.
    assert attachment_keys == {common_key}
    rows = client.get(f"/v1/batches/{batch['id']}/letters", headers=auth).json["data"]
    assert [r["row"] for r in rows] == [1, 2, 3] and {r["status"] for r in rows} == {"accepted"}
    for row in rows:
        assert_documented(client, "BatchLetter", row)


def test_each_letter_is_personalised_with_the_co_owners_lots(client, auth, drain):
    batch = post_batch(client, auth, batch_body([co_owner(7)])).json
    drain()
    letter_id = client.get(f"/v1/batches/{batch['id']}/letters", headers=auth).json["data"][0]["letter_id"]
    pdf = client.get(f"/v1/letters/{letter_id}/document", headers=auth).data
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in ("Lot 7 : appartement", "Lot 107 : cave", "18 h 30", "Approbation des comptes 2026",
                     "Salle des fêtes"):
        assert expected in text


def _csv(rows: list[dict[str, Any]], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-8-sig", ";"), ("cp1252", ";"), ("utf-8", ",")])
def test_a_csv_upload_is_read_in_the_encodings_and_separators_spreadsheets_write(
    client, auth, drain, encoding, delimiter
):
    rows = [{"Courriel": "aline.fevre@exemple.fr", "Société": "SCI Fèvre", "Nom destinataire": "SCI Fèvre",
             "Adresse": "5 rue de la Poêle\n69001 Lyon", "lots": "Lot 3 : local commercial"},
            {"Courriel": "benoit@exemple.fr", "Société": "Benoît & Cie", "Nom destinataire": "Benoît & Cie",
             "Adresse": "1 quai Saint-Vincent, 69001 Lyon", "lots": "Lot 4"}]
    mapping = {"Nom destinataire": "data.destinataire_nom", "Adresse": "data.destinataire_adresse"}
    answer = client.post("/v1/batches", headers=auth, data={
        "template": "convocation_ag_copropriete", "data": json.dumps(COMMON), "mapping": json.dumps(mapping),
        "sandbox_outcome": "accepted", "recipient_type": "professional",
        "rows": (io.BytesIO(_csv(rows, delimiter).encode(encoding)), "coproprietaires.csv"),
        "attachments": (io.BytesIO(make_pdf("Ordre du jour")), "ordre.pdf"),
    }, content_type="multipart/form-data")
    assert answer.status_code == 202, answer.json
    drain()
    listed = client.get(f"/v1/batches/{answer.json['id']}/letters", headers=auth).json["data"]
    assert [(r["recipient"]["email"], r["recipient"]["company"], r["status"]) for r in listed] == [
        ("aline.fevre@exemple.fr", "SCI Fèvre", "accepted"), ("benoit@exemple.fr", "Benoît & Cie", "accepted")]


def test_every_bad_row_is_named_in_one_answer_and_nothing_is_stored(client, auth, services):
    rows = [
        co_owner(1),
        co_owner(2, email="pas-une-adresse"),                                   # invalid e-mail
        co_owner(3, type="individual", first_name="Jeanne", last_name="Roux"),  # no consent recorded
        co_owner(4, email="coproprietaire1@exemple.fr"),                        # same recipient as row 1
        co_owner(5, date_assemblee="31/02/2027"),                               # a date that does not exist
        co_owner(6, company=None, destinataire_nom=None),                       # no name, nothing to render
        co_owner(7, date_assemblee=(date.today() + timedelta(days=10)).isoformat()),  # notice too short
        co_owner(8, couleur="bleu"),                                            # a column nobody knows
    ]
    answer = post_batch(client, auth, batch_body(rows))
    assert answer.status_code == 422
    error = answer.json["error"]
    assert error["code"] == "invalid_rows" and error["field"] == "rows"
    found = {(d["row"], d["column"], d["code"]) for d in error["details"]}
    assert (2, "email", "value_error") in found
    assert (3, "email", "consent_required") in found
    assert (4, "email", "duplicate_recipient") in found
    assert (5, "date_assemblee", "invalid_format") in found
    assert (6, "destinataire_nom", "missing") in found and any(r == 6 and c == "recipient" for r, _, c in
                                                               [(d["row"], d["column"], d["field"])
                                                                for d in error["details"]])
    assert (7, "date_assemblee", "notice_too_short") in found
    assert (None, "couleur", "unknown_column") in found
    assert not any(d["row"] == 1 for d in error["details"])
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
        assert session.scalar(select(func.count()).select_from(BatchItem)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_the_list_of_errors_is_bounded(client, auth):
    rows = [co_owner(n, email=f"faux-{n}") for n in range(1, 301)]
    error = post_batch(client, auth, batch_body(rows)).json["error"]
    assert len(error["details"]) == 100 and "300 problem(s)" in error["message"]


def test_a_consented_individual_is_accepted(client, auth):
    consent = client.post("/v1/consents", json={"email": "jeanne.roux@exemple.fr", "method": "written",
                                                "obtained_at": "2026-01-05T10:00:00Z", "recorded_by": "syndic"},
                          headers=auth)
    assert consent.status_code == 201, consent.json
    answer = post_batch(client, auth, batch_body([co_owner(1, type="individual", email="jeanne.roux@exemple.fr",
                                                           first_name="Jeanne", last_name="Roux")]))
    assert answer.status_code == 202, answer.json


def test_a_consent_revoked_after_acceptance_fails_only_its_own_row(client, auth, services, drain):
    # Three rows are made by one job, in one transaction: the row refused at that point must not take
    # the other two down with it, nor leave anything of its own letter behind.
    people = [("jeanne.roux@exemple.fr", "Jeanne", "Roux"), ("paul.mas@exemple.fr", "Paul", "Mas"),
              ("lea.bon@exemple.fr", "Léa", "Bon")]
    consents = {}
    for email, _, _ in people:
        consent = client.post("/v1/consents", json={"email": email, "method": "written",
                                                    "obtained_at": "2026-01-05T10:00:00Z", "recorded_by": "syndic"},
                              headers=auth)
        assert consent.status_code == 201, consent.json
        consents[email] = consent.json["id"]
    rows = [co_owner(n, type="individual", email=email, first_name=first, last_name=last)
            for n, (email, first, last) in enumerate(people, start=1)]
    batch = post_batch(client, auth, batch_body(rows))
    assert batch.status_code == 202, batch.json
    assert client.delete(f"/v1/consents/{consents['paul.mas@exemple.fr']}", headers=auth).status_code in (200, 204)

    drain()
    letters = {r["row"]: r for r in client.get(f"/v1/batches/{batch.json['id']}/letters", headers=auth).json["data"]}
    assert letters[2]["status"] == "failed" and letters[2]["letter_id"] is None
    assert letters[2]["failure"]["code"] == "consent_required"
    assert letters[1]["status"] == letters[3]["status"] == "accepted"
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Letter)) == 2
        sent = list(session.scalars(select(SandboxMail.recipient_email).order_by(SandboxMail.recipient_email)))
    assert sent == ["jeanne.roux@exemple.fr", "lea.bon@exemple.fr"]
    assert client.get(f"/v1/batches/{batch.json['id']}", headers=auth).json["status"] == "completed"
    # The KPI rollups count the two letters in their batch, as a rebuild from the letters does.
    from connector.monitoring.rollups import rebuild

    incremental = client.get("/v1/kpis?preset=30d&group_by=batch", headers=auth).json
    groups = {g["key"]: g for g in incremental["groups"]}
    assert groups[batch.json["id"]]["letters"] == 2 and None not in groups
    with services.db.engine.begin() as conn:
        assert rebuild(conn) == 2
    rebuilt = client.get("/v1/kpis?preset=30d&group_by=batch", headers=auth).json
    assert (rebuilt["groups"], rebuilt["totals"]) == (incremental["groups"], incremental["totals"])


def test_an_urgent_assembly_may_be_convened_at_short_notice_when_said_so(client, auth):
    soon = {**COMMON, "date_assemblee": (date.today() + timedelta(days=8)).isoformat()}
    assert post_batch(client, auth, batch_body([co_owner(1)], data=soon)).status_code == 422
    assert post_batch(client, auth, batch_body([co_owner(1)], data=soon, allow_short_notice=True)).status_code == 202


def test_one_pdf_for_all_needs_no_template(client, auth, drain):
    body = {"document": {"filename": "convocation.pdf", "content_base64": base64.b64encode(make_pdf()).decode()},
            "recipient_type": "professional",
            "rows": [{"email": "a@exemple.fr", "company": "A"}, {"email": "b@exemple.fr", "company": "B"}]}
    answer = client.post("/v1/batches", json=body, headers=auth)
    assert answer.status_code == 202, answer.json
    drain()
    assert counts(client, auth, answer.json["id"])["accepted"] == 2


def test_the_same_idempotency_key_gives_the_same_batch_once(client, auth, services):
    headers = {**auth, "Idempotency-Key": "ag-2027-convocations"}
    first = client.post("/v1/batches", json=batch_body([co_owner(1)]), headers=headers)
    again = client.post("/v1/batches", json=batch_body([co_owner(1)]), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.json["id"] == first.json["id"]
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 1


def test_cancel_stops_the_letters_not_yet_submitted(client, auth, services):
    batch = post_batch(client, auth, batch_body([co_owner(n) for n in range(1, 5)])).json
    # Make one letter and stop before its submission: run only that row's job.
    from connector.delivery import outbox

    job = outbox.claim(services, "test", kinds=("batch_letter",))
    assert job is not None
    outbox.run_job(services, job, "test")
    answer = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert answer.status_code == 200 and answer.json["cancelled_now"] == 4
    outbox.drain(services)
    after = client.get(f"/v1/batches/{batch['id']}", headers=auth).json
    assert after["counts"]["cancelled"] == 4 and after["counts"]["submitted"] == 0
    assert after["status"] == "completed"
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SandboxMail)) == 0
    cancelled = client.get(f"/v1/batches/{batch['id']}/letters?status=cancelled", headers=auth).json["data"]
    assert len(cancelled) == 4


def test_another_account_cannot_see_the_batch(client, auth, other_auth):
    batch = post_batch(client, auth, batch_body([co_owner(1)])).json
    assert client.get(f"/v1/batches/{batch['id']}", headers=other_auth).status_code == 404
    assert client.get(f"/v1/batches/{batch['id']}/report", headers=other_auth).status_code == 404


def test_hooks_receive_created_progress_and_completed_events(client, auth, services, drain):
    client.post("/v1/hooks", json={"target_url": "http://127.0.0.1:9/hook", "events": ["*"]}, headers=auth)
    batch = post_batch(client, auth, batch_body([co_owner(1), co_owner(2)])).json
    drain()
    with services.db.transaction() as session:
        types = list(session.scalars(select(Event.type).order_by(Event.seq)))
        completed = session.scalar(select(Event).where(Event.type == "batch.completed"))
        letter_events = list(session.scalars(select(Event).where(Event.type == "letter.accepted")))
        from connector.models import Delivery

        delivered_for = set(session.scalars(select(Delivery.event_id)))
    assert types[0] == "batch.created" and types[-1] == "batch.completed" and types.count("batch.completed") == 1
    assert completed.data["id"] == batch["id"] and completed.data["counts"]["accepted"] == 2
    assert all(e.data["metadata"]["batch_id"] == batch["id"] for e in letter_events)
    assert completed.id in delivered_for and all(e.id in delivered_for for e in letter_events)


def _pdf_text(content: bytes) -> str:
    return "".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def test_the_bordereau_lists_every_letter_with_its_hashes(client, auth, drain):
    batch = post_batch(client, auth, batch_body([co_owner(1), co_owner(2, sandbox_outcome="refused")])).json
    drain()
    letters = [client.get(f"/v1/letters/{r['letter_id']}", headers=auth).json
               for r in client.get(f"/v1/batches/{batch['id']}/letters", headers=auth).json["data"]]

    answer = client.get(f"/v1/batches/{batch['id']}/report?format=csv", headers=auth)
    assert answer.mimetype == "text/csv"
    text = answer.data.decode("utf-8-sig")
    table, totals = text.split("\r\n\r\n")
    rows = list(csv.DictReader(io.StringIO(table), delimiter=";"))
    assert [r["letter_id"] for r in rows] == [letter["id"] for letter in letters]
    for row, letter in zip(rows, letters, strict=True):
        assert row["status"] == letter["status"] and row["email"] == letter["recipient"]["email"]
        assert row["deposited_at"] == letter["deposited_at"] and row["completed_at"] == letter["completed_at"]
        assert row["documents_sha256"].split() == [d["sha256"] for d in letter["documents"]]
        assert row["proofs_sha256"].split() == [f"{p['kind']}:{p['sha256']}" for p in letter["proofs"]]
    assert "total;accepted;1" in totals and "total;refused;1" in totals and "total;all;2" in totals

    pdf = client.get(f"/v1/batches/{batch['id']}/report", headers=auth)
    assert pdf.mimetype == "application/pdf"
    flat = _pdf_text(pdf.data)
    for letter in letters:
        assert letter["id"] in flat and letter["recipient"]["email"] in flat
        for sha in [d["sha256"] for d in letter["documents"]] + [p["sha256"] for p in letter["proofs"]]:
            assert sha in flat
    assert "acceptée" in flat and "refusée" in flat
    assert re.search(r"Total2", flat)


def test_the_batch_evidence_zip_holds_every_package_and_each_validates(client, auth, drain, tmp_path: Path):
    batch = post_batch(client, auth, batch_body([co_owner(1), co_owner(2), co_owner(3)])).json
    drain()
    answer = client.get(f"/v1/batches/{batch['id']}/evidence", headers=auth)
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    assert answer.is_streamed
    outer = zipfile.ZipFile(io.BytesIO(answer.data))
    names = outer.namelist()
    assert "bordereau.pdf" in names and "bordereau.csv" in names
    packages = [n for n in names if n.startswith("packages/")]
    assert len(packages) == 3
    for index, name in enumerate(packages):
        target = tmp_path / f"p{index}"
        zipfile.ZipFile(io.BytesIO(outer.read(name))).extractall(target)
        (bag_dir,) = list(target.iterdir())
        bag = bagit.Bag(str(bag_dir))
        bag.validate()
        assert bag.info["External-Identifier"].startswith("let_")


def test_co_owners_on_the_condominium_basis_are_checked_against_the_paper_register(client, auth):
    owner = {"type": "individual", "first_name": "Paul", "last_name": "Brun", "email": "paul.brun@exemple.fr"}
    paper = {"type": "individual", "first_name": "Lucie", "last_name": "Noir", "email": "lucie.noir@exemple.fr"}
    rows = [co_owner(1, **owner), co_owner(2, **paper)]
    refused = post_batch(client, auth, batch_body(rows, legal_basis="condominium")).json["error"]
    assert {(d["row"], d["code"]) for d in refused["details"]} == {(1, "legal_basis_not_enabled"),
                                                                   (2, "legal_basis_not_enabled")}
    enabled = client.put("/v1/consents/legal-bases", headers=auth, json={
        "condominium": True, "statement": "Courrier du 2 janvier 2026 à chaque copropriétaire."})
    assert enabled.status_code == 200, enabled.json
    asked = client.post("/v1/consents/paper-requests", headers=auth, json={
        "email": "lucie.noir@exemple.fr", "requested_at": "2026-02-01T10:00:00Z"})
    assert asked.status_code == 201, asked.json
    refused = post_batch(client, auth, batch_body(rows, legal_basis="condominium")).json["error"]
    assert [(d["row"], d["code"]) for d in refused["details"]] == [(2, "paper_requested")]
    accepted = post_batch(client, auth, batch_body(rows[:1], legal_basis="condominium"))
    assert accepted.status_code == 202, accepted.json
