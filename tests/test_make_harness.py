"""The generated Make app run by the Make-communication harness (tests/make_harness.py) against a live
bridge served on loopback (werkzeug, sandbox provider): every module, RPC, the connection and the
webhook, with their outputs checked against the interfaces they declare."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pypdf import PdfReader
from werkzeug.serving import make_server

from tests.consent_helpers import form_fields, path_of
from tests.helpers import make_pdf, server_thread
from tests.make_harness import MakeApp, MakeError, interface_mismatches
from tests.receiver import Receiver, running_receiver

APP_DIR = Path(__file__).resolve().parents[1] / "make_blueprints" / "app"
pytestmark = pytest.mark.slow

MISE_EN_DEMEURE = {
    "expediteur_nom": "Cabinet Durand", "expediteur_adresse": "12 rue de la Paix, 75002 Paris",
    "destinataire_nom": "Exemple SARL", "destinataire_adresse": "3 avenue Foch, 69006 Lyon", "lieu": "Paris",
    "numero_facture": "F-2026-118", "montant_du": "1250.00", "date_echeance": "2026-10-31",
    "date_limite": "2026-12-11",
}
RECIPIENT = {"recipient_type": "professional", "recipient_email": "compta@exemple.fr",
             "recipient_company": "Exemple SARL"}


@dataclass
class Bridge:
    url: str
    key: str
    drain: Callable[[], int]

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
                return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {}, exc.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def bridge(app: Flask, auth: dict[str, str], drain: Callable[[], int]) -> Iterator[Bridge]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = server_thread(server)
    thread.start()
    try:
        yield Bridge(f"http://127.0.0.1:{server.server_port}", auth["Authorization"].removeprefix("Bearer "), drain)
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def make(bridge: Bridge) -> Iterator[MakeApp]:
    app = MakeApp(APP_DIR, connection={"base_url": bridge.url + "/", "api_key": bridge.key})
    yield app
    app.node.close()


@pytest.fixture
def catcher() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def _interface(make: MakeApp, module: str) -> list[dict[str, Any]]:
    interface: list[dict[str, Any]] = make.code("module", module, "interface")
    return interface


def _conforms(make: MakeApp, module: str, bundles: list[Any]) -> None:
    assert bundles, f"{module} gave no bundle"
    for bundle in bundles:
        assert interface_mismatches(_interface(make, module), bundle) == [], module


def _digest(headers: dict[str, str]) -> str:
    return base64.b64decode(headers["digest"].removeprefix("sha-256=")).hex()


def _send_from_template(make: MakeApp, **extra: Any) -> dict[str, Any]:
    template_fields = make.rpc("templateFields", {"template": "mise_en_demeure"})
    names = [p["name"] for p in template_fields[0]["spec"]]
    data = {n: MISE_EN_DEMEURE[n] for n in names if n in MISE_EN_DEMEURE}
    params = {"template": "mise_en_demeure", "data": data, **RECIPIENT, **extra}
    [letter] = make.module("sendLetterFromTemplate", params)
    return dict(letter)


# --- the connection and the RPCs -------------------------------------------------------------------

def test_the_connection_is_verified_and_labelled_with_the_account_name(make: MakeApp, bridge: Bridge) -> None:
    assert make.test_connection({"base_url": bridge.url, "api_key": bridge.key}) == {
        "type": "text", "value": "Cabinet Durand"}


def test_a_wrong_key_asks_the_user_to_fix_it(make: MakeApp, bridge: Bridge) -> None:
    with pytest.raises(MakeError) as refused:
        make.test_connection({"base_url": bridge.url, "api_key": "lre_wrong"})
    assert refused.value.type == "InvalidAccessTokenError"
    assert "clé d'API n'est pas valide" in refused.value.message
    make.connection = {**make.connection, "api_key": "lre_wrong"}
    with pytest.raises(MakeError) as in_module:
        make.module("searchLetters", {})
    assert in_module.value.type == "InvalidAccessTokenError"


def test_the_template_dropdown_and_its_fields_come_from_the_rpcs(make: MakeApp, bridge: Bridge) -> None:
    options = make.rpc("listTemplates", {})
    assert {"label", "value"} == set(options[0])
    assert "mise_en_demeure" in [o["value"] for o in options]
    [data] = make.rpc("templateFields", {"template": "mise_en_demeure"})
    assert data["name"] == "data" and data["type"] == "collection"
    expected = bridge.json("/v1/templates/mise_en_demeure/fields?platform=make")["fields"]
    assert data["spec"] == expected
    required = {p["name"] for p in data["spec"] if p["required"]}
    assert required <= set(MISE_EN_DEMEURE) <= {p["name"] for p in data["spec"]}


# --- sending, never twice, errors --------------------------------------------------------------------

def test_a_letter_is_sent_from_a_template_with_its_dynamic_fields(make: MakeApp, bridge: Bridge) -> None:
    letter = _send_from_template(make, reference="DOSSIER-42", message="Une LRE vous attend.")
    _conforms(make, "sendLetterFromTemplate", [letter])
    assert letter["status"] == "queued" and letter["template"]["name"] == "mise_en_demeure"
    stored = bridge.json(f"/v1/letters/{letter['id']}")
    assert stored["reference"] == "DOSSIER-42" and stored["message"] == "Une LRE vous attend."
    sent = make.requests[-1]
    assert sent["body"]["data"] == MISE_EN_DEMEURE
    assert sent["headers"]["Idempotency-Key"].startswith("make-sendLetterFromTemplate-")
    assert "sandbox_outcome" not in sent["body"]  # unmapped optional inputs are left out


def test_a_letter_from_a_template_takes_every_cell_as_it_is(make: MakeApp, bridge: Bridge) -> None:
    """The template's own fields (the templateFields RPC's collection): cells with quotes, semicolons,
    new lines and accents, a list field as array items, reach the letter with no JSON to write."""
    [fields] = make.rpc("templateFields", {"template": "convocation_ag_copropriete"})
    assert {p["name"]: p["type"] for p in fields["spec"]}["lots"] == "array"
    data = {**{k: v for k, v in CONVOCATION.items() if k != "ordre_du_jour"},
            "destinataire_nom": 'Mme Jeanne "Jeannette" Martin', "destinataire_adresse": "18 rue Victor-Hugo; apt 12",
            "ordre_du_jour": ["Travaux : « ravalement »; devis"], "lots": AWKWARD_LOTS.split("\n")}
    [letter] = make.module("sendLetterFromTemplate", {"template": "convocation_ag_copropriete", "data": data,
                                                      **RECIPIENT, "reference": "MAKE-CELLS"})
    status, _, pdf = bridge.get(f"/v1/letters/{letter['id']}/document")
    assert status == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for value in ('Mme Jeanne "Jeannette" Martin', 'Lot 12 : appartement "le Belvédère"; cave n° 3',
                  "Travaux : « ravalement »; devis"):
        assert value in text, value


def test_the_same_execution_twice_sends_one_letter(make: MakeApp, bridge: Bridge) -> None:
    first = _send_from_template(make, reference="DOSSIER-7")
    retried = _send_from_template(make, reference="DOSSIER-7")  # what a Make retry does: same bundle
    assert retried["id"] == first["id"]
    assert len(bridge.json("/v1/letters?reference=DOSSIER-7")["data"]) == 1
    other = _send_from_template(make, reference="DOSSIER-8")
    assert other["id"] != first["id"]


def test_a_key_mapped_by_the_user_decides_what_is_the_same_letter(make: MakeApp, bridge: Bridge) -> None:
    first = _send_from_template(make, reference="LIGNE-12", idempotency_key="sheet-row-12")
    assert make.requests[-1]["headers"]["Idempotency-Key"] == "sheet-row-12"
    assert _send_from_template(make, reference="LIGNE-12", idempotency_key="sheet-row-12")["id"] == first["id"]
    with pytest.raises(MakeError) as reused:
        _send_from_template(make, reference="LIGNE-12", message="changed", idempotency_key="sheet-row-12")
    assert reused.value.type == "DataError" and "Idempotency-Key" in reused.value.message
    assert len(bridge.json("/v1/letters?reference=LIGNE-12")["data"]) == 1


def test_a_refused_field_becomes_a_data_error_with_the_bridges_message(make: MakeApp, bridge: Bridge) -> None:
    with pytest.raises(MakeError) as refused:
        _send_from_template(make, recipient_email="not-an-email")
    assert refused.value.type == "DataError" and refused.value.status == 422
    assert refused.value.message.endswith("(field: recipient.email)")  # a letter's 422 lists no rows
    status, _, body = bridge.get("/v1/letters")
    assert json.loads(body)["data"] == []
    bridge_message = None
    make.connection = dict(make.connection)
    try:
        make.module("sendLetterWithPdf", {**RECIPIENT, "recipient_email": "not-an-email", "pdf_url": "x"})
    except MakeError as exc:
        bridge_message = exc.message
    assert bridge_message and "(field: " in bridge_message


def test_an_unknown_letter_is_a_data_error(make: MakeApp) -> None:
    with pytest.raises(MakeError) as missing:
        make.module("findLetter", {"letter_id": "let_nothere"})
    assert missing.value.type == "DataError"
    assert "No letter with this id" in missing.value.message


def test_a_pdf_buffer_from_a_previous_module_is_sent(make: MakeApp, bridge: Bridge) -> None:
    pdf = make_pdf("Contrat signé")
    [letter] = make.module("sendLetterWithPdf", {**RECIPIENT, "pdf_name": "contrat-signe.pdf", "pdf_data": pdf,
                                                 "pdf_filename": "lettre.pdf", "reference": "ENV-1"})
    _conforms(make, "sendLetterWithPdf", [letter])
    assert letter["documents"][0]["filename"] == "contrat-signe.pdf"
    assert letter["documents"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()
    status, headers, content = bridge.get(f"/v1/letters/{letter['id']}/document")
    assert status == 200 and content == pdf


# --- files -----------------------------------------------------------------------------------------

def test_the_preview_is_the_pdf_the_bridge_renders(make: MakeApp, bridge: Bridge) -> None:
    [preview] = make.module("renderLetter", {"template": "mise_en_demeure", "data": MISE_EN_DEMEURE})
    _conforms(make, "renderLetter", [preview])
    assert preview["file"].startswith(b"%PDF")
    assert preview["sha256"] == hashlib.sha256(preview["file"]).hexdigest()
    assert preview["size"] == len(preview["file"]) and preview["filename"].endswith(".pdf")


def test_downloads_are_the_bridges_files(make: MakeApp, bridge: Bridge) -> None:
    letter = _send_from_template(make, reference="DL-1", sandbox_outcome="accepted")
    bridge.drain()
    stored = bridge.json(f"/v1/letters/{letter['id']}")
    assert stored["status"] == "accepted"
    [document] = make.module("downloadDocument", {"letter_id": letter["id"]})
    _conforms(make, "downloadDocument", [document])
    assert hashlib.sha256(document["file"]).hexdigest() == stored["documents"][0]["sha256"]
    assert document["filename"] == stored["documents"][0]["filename"]
    proofs = bridge.json(f"/v1/letters/{letter['id']}/proofs")["data"]
    acceptance = next(p for p in proofs if p["kind"] == "acceptance")
    [proof] = make.module("downloadProof", {"letter_id": letter["id"], "kind": "acceptance"})
    _conforms(make, "downloadProof", [proof])
    assert hashlib.sha256(proof["file"]).hexdigest() == acceptance["sha256"]
    assert proof["filename"] == acceptance["filename"]
    [evidence] = make.module("downloadEvidence", {"letter_id": letter["id"]})
    _conforms(make, "downloadEvidence", [evidence])
    assert evidence["filename"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(evidence["file"])) as package:
        names = package.namelist()
    assert any(stored["documents"][0]["sha256"] in package_name or package_name.endswith(".pdf")
               for package_name in names)
    with pytest.raises(MakeError) as no_proof:
        make.module("downloadProof", {"letter_id": letter["id"], "kind": "refusal"})
    assert no_proof.value.type == "DataError"


# --- reading -----------------------------------------------------------------------------------------

def test_get_and_search_letters(make: MakeApp, bridge: Bridge) -> None:
    sent = [_send_from_template(make, reference=f"SR-{i}") for i in range(3)]
    [got] = make.module("findLetter", {"letter_id": sent[0]["id"]})
    _conforms(make, "findLetter", [got])
    assert got["id"] == sent[0]["id"]
    found = make.module("searchLetters", {"reference": "SR-1"})
    _conforms(make, "searchLetters", found)
    assert [f["id"] for f in found] == [sent[1]["id"]]
    assert len(make.module("searchLetters", {"limit": 2})) == 2
    assert {f["id"] for f in make.module("searchLetters", {"status": "queued"})} == {s["id"] for s in sent}
    assert make.module("searchLetters", {"created_to": "2000-01-01T00:00:00Z"}) == []


def test_consents_are_recorded_listed_with_pagination_and_revoked(make: MakeApp, bridge: Bridge) -> None:
    [consent] = make.module("recordConsent", {"email": "jeanne.martin@exemple.fr", "first_name": "Jeanne",
                                              "last_name": "Martin", "method": "electronic_form",
                                              "obtained_at": "2026-11-20T14:05:00+01:00",
                                              "recorded_by": "Cabinet Durand"})
    _conforms(make, "recordConsent", [consent])
    assert consent["status"] == "active" and consent["obtained_at"].startswith("2026-11-20T13:05:00")
    for i in range(104):
        make.module("recordConsent", {"email": f"client{i}@exemple.fr", "method": "email",
                                      "obtained_at": "2026-11-20T10:00:00Z", "recorded_by": "import"})
    listed = make.module("listConsents", {"limit": 150})
    _conforms(make, "listConsents", listed)
    assert len(listed) == 105 and len({c["id"] for c in listed}) == 105
    cursors = [r for r in make.requests if "cursor=" in r["url"]]
    assert cursors, "the second page was not fetched"
    assert len(make.module("listConsents", {"limit": 3})) == 3
    [revoked] = make.module("revokeConsent", {"consent_id": consent["id"], "revoked_by": "Cabinet Durand"})
    _conforms(make, "revokeConsent", [revoked])
    assert revoked["status"] == "revoked" and revoked["revoked_by"] == "Cabinet Durand"
    assert [c["id"] for c in make.module("listConsents", {"status": "revoked"})] == [consent["id"]]


# --- batches (issue 16): the rows as an array of collections -----------------------------------

ASSEMBLY_DAY = (date.today() + timedelta(days=40)).isoformat()
CONVOCATION = {
    "expediteur_nom": "Cabinet Durand, syndic", "expediteur_adresse": "3 place Bellecour\n69002 Lyon",
    "lieu": "Lyon", "nom_copropriete": "Résidence Les Tilleuls", "adresse_immeuble": "18 rue Victor-Hugo, 69002 Lyon",
    "date_assemblee": ASSEMBLY_DAY, "heure_assemblee": "18 h 30",
    "lieu_assemblee": "Salle des fêtes, 2 rue d'Enghien, 69002 Lyon",
    "ordre_du_jour": "Élection du président de séance\nApprobation des comptes 2026",
}


def _co_owner(n: int, **extra: Any) -> dict[str, Any]:
    """One row as Make gives an array item: the collection's fields that were mapped."""
    return {"email": f"make-lot{n}@exemple.fr", "company": f"SCI Lot {n}", "destinataire_nom": f"SCI Lot {n}",
            "destinataire_adresse": f"{n} rue Victor-Hugo\n69002 Lyon",
            "values": [{"key": "lots", "value": f"Lot {n} : appartement"}], **extra}


# A spreadsheet cell as a syndic types it: quotes, a semicolon, a new line (two lots) and accents.
AWKWARD_LOTS = 'Lot 12 : appartement "le Belvédère"; cave n° 3\nLot 112 : garage côté cour'


def test_a_batch_is_sent_from_an_array_of_rows_with_common_attachments(make: MakeApp, bridge: Bridge) -> None:
    attachment = make_pdf("Projets de résolution")
    # A syndic's co-owners are individuals: the account opts into the condominium basis (loi 65-557 42-1).
    [enabled] = make.module("makeApiCall", {"url": "/v1/consents/legal-bases", "method": "PUT", "body": {
        "condominium": True, "statement": "Courrier d'information du 2 mai 2024 et affichage dans le hall."}})
    assert enabled["statusCode"] == 200
    individual = _co_owner(3, type="individual", first_name="Jeanne", last_name="Martin", company="")
    params = {"template": "convocation_ag_copropriete",
              "common_data": [{"key": k, "value": v} for k, v in CONVOCATION.items()],
              "rows": [_co_owner(1), _co_owner(2, type="professional"), individual],
              "attachments": [{"filename": "projets.pdf", "data": attachment}],
              "recipient_type": "professional", "legal_basis": "condominium", "reference": "MAKE-AG",
              "sandbox_outcome": "accepted"}
    [batch] = make.module("sendBatch", params)
    _conforms(make, "sendBatch", [batch])
    assert (batch["object"], batch["total"], batch["reference"]) == ("batch", 3, "MAKE-AG")
    sent = make.requests[-1]
    assert (sent["method"], sent["url"]) == ("POST", bridge.url + "/v1/batches")
    assert [r["email"] for r in sent["body"]["rows"]] == [
        "make-lot1@exemple.fr", "make-lot2@exemple.fr", "make-lot3@exemple.fr"]
    # The same execution again (Make retries an incomplete one): the same batch, not a second one.
    [again] = make.module("sendBatch", params)
    assert again["id"] == batch["id"]
    while bridge.drain():
        pass
    progress = bridge.json(f"/v1/batches/{batch['id']}")
    assert progress["counts"]["submitted"] == 3 and progress["progress"]["submitted"] == 1.0
    letters = bridge.json(f"/v1/batches/{batch['id']}/letters")["data"]
    assert sorted(row["recipient"]["email"] for row in letters) == [f"make-lot{n}@exemple.fr" for n in (1, 2, 3)]
    assert {row["recipient"]["email"]: row["recipient"]["type"] for row in letters}["make-lot3@exemple.fr"] == \
        "individual"
    attached = [d for d in progress["documents"] if d["role"] == "attachment"]
    assert [(d["filename"], d["sha256"]) for d in attached] == [("projets.pdf", hashlib.sha256(attachment).hexdigest())]


def test_a_rows_template_values_reach_its_letter_as_the_cell_holds_them(make: MakeApp, bridge: Bridge) -> None:
    """Issue 16: key/value pairs, no JSON to write; the former JSON text still works for old scenarios."""
    former = {**_co_owner(2), "values": [], "data": json.dumps({"lots": ["Lot 7 : parking"]})}
    params = {"template": "convocation_ag_copropriete",
              "common_data": [{"key": k, "value": v} for k, v in CONVOCATION.items()],
              "rows": [_co_owner(1, values=[{"key": "lots", "value": AWKWARD_LOTS}]), former],
              "recipient_type": "professional", "reference": "MAKE-AG-CELLS", "sandbox_outcome": "accepted"}
    [batch] = make.module("sendBatch", params)
    assert batch["total"] == 2
    sent = make.requests[-1]["body"]["rows"]
    assert sent[0]["data.lots"] == AWKWARD_LOTS and "values" not in sent[0]
    while bridge.drain():
        pass
    letters = {row["recipient"]["email"]: row for row in bridge.json(f"/v1/batches/{batch['id']}/letters")["data"]}
    texts = {}
    for email, row in letters.items():
        status, _, pdf = bridge.get(f"/v1/letters/{row.get('letter_id') or row['id']}/document")
        assert status == 200
        texts[email] = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert 'Lot 12 : appartement "le Belvédère"; cave n° 3' in texts["make-lot1@exemple.fr"]
    assert "Lot 112 : garage côté cour" in texts["make-lot1@exemple.fr"]
    assert "Lot 7 : parking" in texts["make-lot2@exemple.fr"]


def test_a_bad_row_is_a_data_error_naming_the_rows_and_nothing_is_sent(make: MakeApp, bridge: Bridge) -> None:
    params = {"template": "convocation_ag_copropriete",
              "common_data": [{"key": k, "value": v} for k, v in CONVOCATION.items()],
              "rows": [_co_owner(1), _co_owner(2, email="pas-une-adresse"), _co_owner(3, data='{"lots": ')],
              "recipient_type": "professional", "reference": "MAKE-AG-BAD"}
    with pytest.raises(MakeError) as refused:
        make.module("sendBatch", params)
    assert refused.value.type == "DataError" and refused.value.status == 422
    # The bridge's message counts every bad row and names the first (its JSON is checked first).
    assert "2 problem(s) in the rows; nothing was stored. First, row 3, column 'data'" in refused.value.message
    # …and the app lists every bad row after it (the problemList IML function over error.details).
    listed = refused.value.message.split("(field: rows) — ", 1)[1].split("; row ")
    assert sorted(problem.removeprefix("row ").split(":")[0] for problem in listed) == ["2, email", "3, data"]
    assert bridge.json("/v1/batches")["data"] == []  # nothing half-stored


def test_the_convocation_blueprint_sends_its_sheet_as_one_batch(make: MakeApp, bridge: Bridge) -> None:
    """make_blueprints/scenarios/convocation-ag-sheets: the aggregator's row mapping applied to sheet rows
    (as Make maps ``{{1.`N`}}``), then the batch module's own mapper, against the live bridge."""
    import re

    blueprint = json.loads((APP_DIR.parent / "scenarios" / "convocation-ag-sheets" / "blueprint.json").read_text())
    aggregator, send = blueprint["flow"][1], blueprint["flow"][2]
    sheet = [["lot1@exemple.fr", "individual", "", "Jeanne", "Martin", "Mme Jeanne Martin",
              "18 rue Victor-Hugo, apt 12\n69002 Lyon", 'Lot 12 : appartement "le Belvédère"; étage 3 | Lot 112 : cave',
              "AG-LOT-12"],
             ["sci@exemple.fr", "professional", "SCI du Parc", "", "", "SCI du Parc",
              "4 quai Saint-Antoine\n69002 Lyon", "Lot 3 : local commercial", "AG-LOT-3"]]

    def mapped(value: Any, row: list[str]) -> Any:
        if isinstance(value, list):
            return [mapped(item, row) for item in value]
        if isinstance(value, dict):
            return {key: mapped(item, row) for key, item in value.items()}
        return re.sub(r"{{1\.`(\d+)`}}", lambda m: row[int(m.group(1))], value)

    rows = [{key: mapped(value, row) for key, value in aggregator["mapper"].items()} for row in sheet]
    params = {k: v for k, v in send["mapper"].items() if k != "rows"}
    assert send["mapper"]["rows"] == "{{2.array}}"
    soon = (date.today() + timedelta(days=40)).isoformat()  # the blueprint's date is an example to edit
    params["common_data"] = [{**p, "value": soon} if p["key"] == "date_assemblee" else p
                             for p in params["common_data"]]
    [enabled] = make.module("makeApiCall", {"url": "/v1/consents/legal-bases", "method": "PUT", "body": {
        "condominium": True, "statement": "Courrier d'information du 2 mai 2024 et affichage dans le hall."}})
    assert enabled["statusCode"] == 200
    [batch] = make.module("sendBatch", {**params, "rows": rows})
    assert batch["total"] == 2 and batch["reference"] == "AG-2027-03-15"
    while bridge.drain():
        pass
    letters = bridge.json(f"/v1/batches/{batch['id']}/letters")["data"]
    assert sorted((row["recipient"]["email"], row["recipient"]["type"]) for row in letters) == [
        ("lot1@exemple.fr", "individual"), ("sci@exemple.fr", "professional")]
    # The row's own values (the lots, from the sheet's column H) are in that co-owner's letter.
    jeanne = next(row for row in letters if row["recipient"]["email"] == "lot1@exemple.fr")
    letter_id = jeanne.get("letter_id") or jeanne["id"]
    status, _, pdf = bridge.get(f"/v1/letters/{letter_id}/document")
    assert status == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Lot 112 : cave" in text and "Mme Jeanne Martin" in text
    assert 'Lot 12 : appartement "le Belvédère"; étage 3' in text  # the cell's quotes reach the letter


def test_the_universal_module_calls_the_bridge_with_the_connection(make: MakeApp) -> None:
    [answer] = make.module("makeApiCall", {"url": "v1/me", "method": "GET"})
    _conforms(make, "makeApiCall", [answer])
    assert answer["statusCode"] == 200 and answer["body"]["name"] == "Cabinet Durand"


# --- triggers ----------------------------------------------------------------------------------------

def test_the_instant_trigger_attaches_receives_and_detaches(make: MakeApp, bridge: Bridge,
                                                            catcher: Receiver) -> None:
    params = {"events": ["letter.accepted", "letter.refused"], "reference": "HOOK-1"}
    data = make.attach("letterStatusChanged", params, catcher.url)
    hook = bridge.json(f"/v1/hooks/{data['hookId']}")
    assert hook["target_url"] == catcher.url
    assert set(hook["events"]) == {"letter.accepted", "letter.refused"}
    _send_from_template(make, reference="HOOK-1", sandbox_outcome="refused")
    _send_from_template(make, reference="OTHER", sandbox_outcome="refused")
    bridge.drain()
    [delivery] = catcher.delivered()
    bundle = make.incoming("letterStatusChanged", delivery.headers, delivery.body)
    _conforms(make, "watchLetterStatusChanged", [bundle])
    assert bundle["status"] == "refused" and bundle["reference"] == "HOOK-1"
    assert bundle["proof_kind"] == "refusal" and bundle["id"] == delivery.headers["webhook-id"]
    make.detach("letterStatusChanged", params, data)
    status, _, _ = bridge.get(f"/v1/hooks/{data['hookId']}")
    assert status == 404


STATUS_TRIGGERS = {  # webhook -> (instant trigger module, polling module, event)
    "letterAccepted": ("watchLetterAccepted", "pollLetterAccepted", "accepted"),
    "letterRefused": ("watchLetterRefused", "pollLetterRefused", "refused"),
    "letterNeglected": ("watchLetterNeglected", "pollLetterNeglected", "neglected"),
    "letterBounced": ("watchLetterBounced", "pollLetterBounced", "bounced"),
}


@pytest.mark.parametrize("hook", STATUS_TRIGGERS)
def test_each_status_trigger_hears_its_own_event_only(make: MakeApp, bridge: Bridge, catcher: Receiver,
                                                      hook: str) -> None:
    watch, poll, status = STATUS_TRIGGERS[hook]
    data = make.attach(hook, {}, catcher.url)
    assert bridge.json(f"/v1/hooks/{data['hookId']}")["events"] == [f"letter.{status}"]
    for outcome in ("accepted", "refused", "neglected", "bounced"):
        _send_from_template(make, reference=f"ST-{outcome}", sandbox_outcome=outcome)
    bridge.drain()
    [delivery] = catcher.delivered()
    bundle = make.incoming(hook, delivery.headers, delivery.body)
    _conforms(make, watch, [bundle])
    assert (bundle["status"], bundle["reference"]) == (status, f"ST-{status}")
    polled = make.module(poll, {})
    _conforms(make, poll, polled)
    assert [(e["status"], e["reference"]) for e in polled] == [(status, f"ST-{status}")]
    assert polled[0]["id"] == bundle["id"]  # the same event id whichever way it arrives
    make.detach(hook, {}, data)
    assert bridge.get(f"/v1/hooks/{data['hookId']}")[0] == 404


def test_polling_triggers_give_unique_event_ids_newest_first(make: MakeApp, bridge: Bridge) -> None:
    for i, outcome in enumerate(("accepted", "refused", "neglected")):
        _send_from_template(make, reference=f"POLL-{i}", sandbox_outcome=outcome)
    bridge.drain()
    events = make.module("pollLetterStatusChanged", {})
    _conforms(make, "pollLetterStatusChanged", events)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == 6  # deposited + final, for three letters
    assert [e["occurred_at"] for e in events] == sorted((e["occurred_at"] for e in events), reverse=True)
    assert {e["proof_kind"] for e in events if e["status"] == "accepted"} == {"acceptance"}
    only = make.module("pollLetterStatusChanged", {"events": ["letter.refused"], "reference": "POLL-1"})
    assert [(e["status"], e["reference"]) for e in only] == [("refused", "POLL-1")]
    assert make.module("pollLetterStatusChanged", {"reference": "POLL-9"}) == []
    assert len(make.module("pollLetterStatusChanged", {"limit": 2})) == 2
    epoch = make.run(make.code("module", "pollLetterStatusChanged", "epoch"), {})
    assert len(epoch) == 6 and all(set(e) == {"label", "date"} for e in epoch)


def test_every_module_rpc_and_webhook_of_the_app_is_exercised_here() -> None:
    """A module added to the app (a new catalogue operation) must get its own test in this file."""
    manifest = json.loads((APP_DIR / "makecomapp.json").read_text(encoding="utf-8"))
    source = Path(__file__).read_text(encoding="utf-8")
    for ctype in ("module", "rpc", "webhook"):
        for cid in manifest["components"][ctype]:
            assert f'"{cid}"' in source, f"the {ctype} {cid} is not run by the harness tests"


def _answer_consent(app: Flask, invitation: dict[str, Any], decision: str) -> None:
    """The person answers on the bridge's hosted consent page (a browser would post this form)."""
    browser = {"User-Agent": "Mozilla/5.0 TestBrowser/1.0"}
    client = app.test_client()
    page = client.get(path_of(invitation["url"]), headers=browser)
    assert page.status_code == 200
    fields = form_fields(html.unescape(page.get_data(as_text=True)))
    done = client.post(path_of(invitation["url"]), data={**fields, "decision": decision}, headers=browser)
    assert done.status_code == 200


def test_a_consent_invitation_and_its_answer_reach_the_scenario(make: MakeApp, bridge: Bridge, app: Flask,
                                                                catcher: Receiver) -> None:
    data = make.attach("consentAnswered", {}, catcher.url)
    [invitation] = make.module("inviteConsent", {"email": "jeanne.martin@exemple.fr", "name": "Jeanne Martin",
                                                 "expires_in_days": 7})
    _conforms(make, "inviteConsent", [invitation])
    assert invitation["status"] == "pending"
    again = make.module("inviteConsent", {"email": "jeanne.martin@exemple.fr", "name": "Jeanne Martin",
                                          "expires_in_days": 7})
    assert again[0]["id"] == invitation["id"]  # a retried run does not invite twice
    _answer_consent(app, invitation, "accept")
    bridge.drain()
    [delivery] = catcher.delivered()
    bundle = make.incoming("consentAnswered", delivery.headers, delivery.body)
    _conforms(make, "watchConsentAnswered", [bundle])
    # The bundle is the event (its id), the invitation's id under its own name.
    assert (bundle["invitation_id"], bundle["status"]) == (invitation["id"], "accepted") and bundle["consent_id"]
    assert bundle["id"].startswith("evt_") and bundle["type"] == "consent.accepted"
    polled = make.module("pollConsentAnswered", {})
    _conforms(make, "pollConsentAnswered", polled)
    assert [(p["id"], p["invitation_id"], p["status"]) for p in polled] == [(bundle["id"], invitation["id"],
                                                                             "accepted")]
    make.detach("consentAnswered", {}, data)
    assert bridge.get(f"/v1/hooks/{data['hookId']}")[0] == 404


@pytest.mark.parametrize(("status", "kind"), [(429, "RateLimitError"), (500, "ConnectionError"),
                                              (503, "ConnectionError"), (409, "ConnectionError")])
def test_answers_make_retries_become_the_error_types_it_retries(catcher: Receiver, status: int, kind: str) -> None:
    """The base's error table, on a server that answers without the bridge's error body."""
    catcher.always(status)
    make = MakeApp(APP_DIR, connection={"base_url": catcher.url.removesuffix("/hook"), "api_key": "lre_x"})
    try:
        with pytest.raises(MakeError) as failed:
            make.module("sendLetterFromTemplate", {"template": "mise_en_demeure", "data": {}, **RECIPIENT})
    finally:
        make.node.close()
    assert (failed.value.type, failed.value.message) == (kind, f"The LRE Bridge answered {status}")


# Alert triggers exist once the catalogue has them (new_alert); each one found in the app is run here.
ALERT_HOOKS = [h for h in ("newAlert",) if h in json.loads(
    (APP_DIR / "makecomapp.json").read_text(encoding="utf-8"))["components"]["webhook"]]


@pytest.mark.parametrize("hook", ALERT_HOOKS)
def test_an_alert_reaches_the_scenario(make: MakeApp, bridge: Bridge, catcher: Receiver, services: Any,
                                       hook: str) -> None:
    from connector.monitoring.alerts import evaluate_all

    watch, poll = {"newAlert": ("watchNewAlert", "pollNewAlert")}[hook]
    data = make.attach(hook, {}, catcher.url)
    [rule] = make.module("makeApiCall", {"url": "/v1/alerts/rules/technical_failure_rate", "method": "PUT",
                                         "body": {"threshold": 0, "min_volume": 1}})
    assert rule["statusCode"] == 200
    _send_from_template(make, reference="ALERT-1", sandbox_outcome="failed")
    bridge.drain()
    evaluate_all(services)  # what the worker does every minute
    bridge.drain()
    [delivery] = [d for d in catcher.delivered() if json.loads(d.body)["type"] == "alert.raised"]
    bundle = make.incoming(hook, delivery.headers, delivery.body)
    _conforms(make, watch, [bundle])
    assert bundle["rule"] == "technical_failure_rate" and bundle["type"] == "alert.raised"
    assert bundle["id"].startswith("evt_") and bundle["alert_id"].startswith("alr_")
    polled = make.module(poll, {})
    _conforms(make, poll, polled)
    assert [p["id"] for p in polled] == [bundle["id"]]
    make.detach(hook, {}, data)
    assert bridge.get(f"/v1/hooks/{data['hookId']}")[0] == 404
