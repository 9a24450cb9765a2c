"""End to end with the real n8n engine (npm ``n8n``, pinned by n8n_nodes/engine/package-lock.json, on
Node 24 from npm), the package installed as a user installs it, against a live bridge on loopback.

``n8n execute`` runs workflows that send letters (from a template through the resource mapper's
values; a PDF passed as binary from a previous node), download a proof as binary, retry a failing
node in the same execution, and surface a 422; ``n8n start`` runs a published trigger workflow that
registers its hook, starts an execution per signed status event, refuses a forged delivery (401), and
removes its hook when unpublished.
"""

from __future__ import annotations

import hashlib
import io
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.n8n_support import (
    CREDENTIAL,
    MISE_EN_DEMEURE,
    OWNER,
    Bridge,
    Engine,
    install_engine,
    live_bridge,
    pack_package,
)

pytestmark = pytest.mark.slow

NODE = "n8n-nodes-lre-bridge.lreBridge"
TRIGGER = "n8n-nodes-lre-bridge.lreBridgeTrigger"
RECIPIENT = {"recipientType": "professional", "recipientEmail": "compta@exemple.fr",
             "recipientCompany": "Exemple SARL"}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with live_bridge(tmp_path_factory.mktemp("n8n-e2e")) as running:
        yield running


@pytest.fixture(autouse=True)
def documented_answers(bridge: Bridge) -> Iterator[None]:
    """Each test fails at teardown on an answer the bridge gave it (through the proxy) that the
    OpenAPI document does not describe (the module's bridge is shared; its findings are taken per test)."""
    yield
    bridge.checked.raise_findings()


@pytest.fixture(scope="module")
def engine(bridge: Bridge, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    home = install_engine()
    tarball = pack_package(tmp_path_factory.mktemp("pack"))
    instance = Engine.create(home, tmp_path_factory.mktemp("n8n-user"), tarball)
    instance.import_credential(bridge)
    return instance


def _id() -> str:
    return uuid.uuid4().hex[:16]


def _node(name: str, type_: str, parameters: dict[str, Any], x: int, **extra: Any) -> dict[str, Any]:
    node = {"id": str(uuid.uuid4()), "name": name, "type": type_, "typeVersion": 1, "position": [x, 0],
            "parameters": parameters, **extra}
    if type_ in (NODE, TRIGGER):
        node["credentials"] = {"lreBridgeApi": CREDENTIAL}
    return node


def _workflow(*nodes: dict[str, Any], name: str = "LRE test") -> dict[str, Any]:
    """A workflow whose nodes run in a chain after a Manual Trigger (what `n8n execute` starts)."""
    start = {"id": str(uuid.uuid4()), "name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
             "position": [0, 0], "parameters": {}}
    chain = [start, *nodes]
    connections = {a["name"]: {"main": [[{"node": b["name"], "type": "main", "index": 0}]]}
                   for a, b in zip(chain, chain[1:], strict=False)}
    return {"id": _id(), "name": name, "nodes": chain, "connections": connections, "active": False,
            "settings": {"executionOrder": "v1"}, "pinData": {}}


def _items(run: dict[str, Any], node: str) -> list[dict[str, Any]]:
    task = run["data"]["resultData"]["runData"][node][-1]
    return task["data"]["main"][0]


def _letters(bridge: Bridge, reference: str) -> list[dict[str, Any]]:
    status, body = bridge.call("GET", f"/v1/letters?reference={reference}")
    assert status == 200, body
    return list(body["data"])


def _send_from_template(reference: str, **extra: Any) -> dict[str, Any]:
    return {
        "resource": "letter", "operation": "sendFromTemplate",
        "template": {"__rl": True, "mode": "list", "value": "mise_en_demeure"},
        "data": {"mappingMode": "defineBelow", "value": MISE_EN_DEMEURE, "matchingColumns": [], "schema": []},
        **RECIPIENT, "additionalFields": {"reference": reference, **extra},
    }


def test_a_workflow_sends_a_letter_from_a_template_through_the_resource_mapper(engine: Engine,
                                                                                bridge: Bridge) -> None:
    reference = f"N8N-E2E-{_id()}"
    workflow = _workflow(_node("Send", NODE, _send_from_template(reference), 200))
    code, run, output = engine.execute(engine.import_workflow(workflow))
    assert code == 0, output[-6000:]
    [item] = _items(run, "Send")
    letters = _letters(bridge, reference)
    assert [letter["id"] for letter in letters] == [item["json"]["id"]]
    assert letters[0]["template"]["name"] == "mise_en_demeure"
    assert item["pairedItem"] == {"item": 0}
    # The letter's PDF carries the values the resource mapper gave.
    status, pdf = bridge.call("GET", f"/v1/letters/{letters[0]['id']}/document", raw=True)
    assert status == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for value in ("F-2026-0412", "SARL Dupont", "Jean-Jaurès"):
        assert value in text, value


# A sheet row for a convocation sent as one letter: every cell text, list fields included.
CONVOCATION_ROW_CODE = """
return [{ json: {
  lots: 'Lot 12 : appartement "le Belvédère"; cave n° 3\\nLot 112 : garage côté cour',
  ordre_du_jour: 'Élection du président de séance\\nTravaux : « ravalement »; devis',
  adresse: '18 rue Victor-Hugo, apt 12\\n69002 Lyon',
} }];
"""


def test_a_letter_from_a_template_takes_every_cell_as_it_is_list_fields_included(engine: Engine,
                                                                                  bridge: Bridge) -> None:
    """Issue 16: the single-letter action maps sheet cells to the template's fields; a list field takes
    the cell's text (one item per line), quotes and semicolons included, with no JSON to write."""
    from datetime import date, timedelta

    reference = f"N8N-CELLS-{_id()}"
    rows = _node("Row", "n8n-nodes-base.code", {"jsCode": CONVOCATION_ROW_CODE}, 200, typeVersion=2)
    values = {"expediteur_nom": "Cabinet Durand, syndic", "expediteur_adresse": "3 place Bellecour, 69002 Lyon",
              "destinataire_nom": "Mme Jeanne Martin", "destinataire_adresse": "={{ $json.adresse }}",
              "lieu": "Lyon", "adresse_immeuble": "18 rue Victor-Hugo, 69002 Lyon",
              "date_assemblee": (date.today() + timedelta(days=40)).isoformat(), "heure_assemblee": "18 h 30",
              "lieu_assemblee": "Salle des fêtes, 69002 Lyon", "ordre_du_jour": "={{ $json.ordre_du_jour }}",
              "lots": "={{ $json.lots }}"}
    send = _node("Send", NODE, {
        **_send_from_template(reference),
        "template": {"__rl": True, "mode": "list", "value": "convocation_ag_copropriete"},
        "data": {"mappingMode": "defineBelow", "value": values, "matchingColumns": [], "schema": []},
    }, 400)
    code, run, output = engine.execute(engine.import_workflow(_workflow(rows, send)))
    assert code == 0, output[-6000:]
    [letter] = _letters(bridge, reference)
    status, pdf = bridge.call("GET", f"/v1/letters/{letter['id']}/document", raw=True)
    assert status == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for value in ('Lot 12 : appartement "le Belvédère"; cave n° 3', "Lot 112 : garage côté cour",
                  "Travaux : « ravalement »; devis"):
        assert value in text, value


def test_a_pdf_from_a_previous_node_is_sent_and_a_proof_comes_back_as_binary(engine: Engine,
                                                                             bridge: Bridge) -> None:
    status, pdf = bridge.call("POST", "/v1/templates/mise_en_demeure/render", {"data": MISE_EN_DEMEURE}, raw=True)
    assert status == 200
    (engine.files / "facture-412.pdf").write_bytes(pdf)
    reference = f"N8N-PDF-{_id()}"
    send = _node("Send PDF", NODE, {
        "resource": "letter", "operation": "sendPdf", "pdfSource": "binary", "pdfBinaryProperty": "data",
        **RECIPIENT, "additionalFields": {"reference": reference, "sandboxOutcome": "accepted"},
    }, 400)
    read = _node("Read PDF", "n8n-nodes-base.readWriteFile",
                 {"operation": "read", "fileSelector": str(engine.files / "facture-412.pdf"), "options": {}}, 200)
    code, run, output = engine.execute(engine.import_workflow(_workflow(read, send)))
    assert code == 0, output[-6000:]
    [sent] = _items(run, "Send PDF")
    letter_id = sent["json"]["id"]
    assert sent["json"]["documents"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert sent["json"]["documents"][0]["filename"] == "facture-412.pdf"

    proofs = bridge.wait_for(f"/v1/letters/{letter_id}/proofs",
                             lambda body: any(p["kind"] == "acceptance" for p in body["data"]), "the acceptance proof")
    acceptance = next(p for p in proofs["data"] if p["kind"] == "acceptance")
    target = engine.files / f"proof-{letter_id}.pdf"
    download = _node("Download Proof", NODE, {"resource": "proof", "operation": "download", "letterId": letter_id,
                                              "kind": "acceptance", "binaryPropertyName": "proof"}, 200)
    write = _node("Write Proof", "n8n-nodes-base.readWriteFile",
                  {"operation": "write", "fileName": str(target), "dataPropertyName": "proof", "options": {}}, 400)
    code, run, output = engine.execute(engine.import_workflow(_workflow(download, write)))
    assert code == 0, output[-6000:]
    [item] = _items(run, "Download Proof")
    assert item["binary"]["proof"]["mimeType"] == "application/pdf"
    assert item["binary"]["proof"]["fileName"] == acceptance["filename"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == acceptance["sha256"]


def test_a_node_retried_within_the_same_execution_sends_one_letter_and_a_422_is_the_node_error(
        engine: Engine, bridge: Bridge) -> None:
    """Two items reach the send node (from Template → Get Many); the second is refused (422), so the
    node fails and n8n retries it (Retry On Fail): the first item is sent again with the same
    execution, node and item, and the bridge answers with the letter it already has."""
    reference = f"N8N-RETRY-{_id()}"
    templates = _node("Two Templates", NODE, {"resource": "template", "operation": "getMany", "returnAll": False,
                                              "limit": 2}, 200)
    params = _send_from_template("")
    params["recipientEmail"] = "={{ $itemIndex === 1 ? 'pas-une-adresse' : 'compta@exemple.fr' }}"
    params["additionalFields"] = {"reference": f"={{{{ '{reference}-' + $itemIndex }}}}"}
    send = _node("Send", NODE, params, 400, retryOnFail=True, maxTries=2, waitBetweenTries=0)
    before = _count_posts(bridge)
    code, run, output = engine.execute(engine.import_workflow(_workflow(templates, send)))
    assert code != 0, "the refused item must fail the execution"
    error = run["data"]["resultData"]["error"]
    assert "email" in error["message"].lower(), error
    assert "Field: recipient.email" in (error.get("description") or ""), error
    assert error.get("httpCode") == "422"
    assert len(_letters(bridge, f"{reference}-0")) == 1, "the retried item was sent once"
    assert _letters(bridge, f"{reference}-1") == []
    assert _count_posts(bridge) - before == 4, "two tries of two items reached the bridge"


def _count_posts(bridge: Bridge) -> int:
    log = bridge.data_dir / "serve.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"POST /v1/letters"' in line)


def _hooks_for(bridge: Bridge, url: str) -> list[dict[str, Any]]:
    status, body = bridge.call("GET", f"/v1/hooks?target_url={urllib.request.quote(url, safe='')}")
    assert status == 200, body
    return list(body["data"])


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


# Rows as a sheet gives them: text cells; co-owner 1's lots cell holds quotes, a semicolon, a new line
# (two lots) and accents, which must reach the letter as they are.
CO_OWNERS_CODE = """
return [1, 2, 3].map((n) => ({ json: {
  email: `n8n-e2e-lot${n}-REF@exemple.fr`, company: `SCI Lot ${n}`, address: `${n} rue Victor-Hugo\\n69002 Lyon`,
  lots: n === 1 ? 'Lot 12 : appartement "le Belvédère"; cave n° 3\\nLot 112 : garage côté cour'
    : `Lot ${n} : appartement`,
} }));
"""


def test_send_a_batch_makes_one_batch_of_all_the_input_items_in_one_request(engine: Engine, bridge: Bridge) -> None:
    """Three items from a Code node reach Batch -> Send: the engine evaluates the row expressions per
    item (Row Recipient Email keeps its default, {{ $json.email }}) and the node sends ONE batch."""
    from datetime import date, timedelta

    reference = f"N8N-AG-{_id()}"
    tag = reference.lower()
    rows = _node("Co-owners", "n8n-nodes-base.code", {"jsCode": CO_OWNERS_CODE.replace("REF", tag)}, 200,
                 typeVersion=2)
    common = {"expediteur_nom": "Cabinet Durand, syndic", "expediteur_adresse": "3 place Bellecour, 69002 Lyon",
              "lieu": "Lyon", "adresse_immeuble": "18 rue Victor-Hugo, 69002 Lyon",
              "date_assemblee": (date.today() + timedelta(days=40)).isoformat(), "heure_assemblee": "18 h 30",
              "lieu_assemblee": "Salle des fêtes, 69002 Lyon", "ordre_du_jour": "Approbation des comptes"}
    send = _node("Send Batch", NODE, {
        "resource": "batch", "operation": "send",
        "template": {"__rl": True, "mode": "list", "value": "convocation_ag_copropriete"},
        "rowFields": {"rowCompany": "={{ $json.company }}", "rowDestinataireNom": "={{ $json.company }}",
                      "rowDestinataireAdresse": "={{ $json.address }}",
                      "rowValues": {"pairs": [{"key": "lots", "value": "={{ $json.lots }}"}]}},
        "additionalFields": {"commonData": {"pairs": [{"key": k, "value": v} for k, v in common.items()]},
                             "recipientType": "professional", "reference": reference,
                             "sandboxOutcome": "accepted"},
    }, 400)
    code, run, output = engine.execute(engine.import_workflow(_workflow(rows, send)))
    assert code == 0, output[-6000:]
    [item] = _items(run, "Send Batch")
    batch = item["json"]
    assert batch["id"].startswith("bat_") and batch["total"] == 3 and batch["reference"] == reference
    assert item["pairedItem"] == [{"item": 0}, {"item": 1}, {"item": 2}]
    status, listed = bridge.call("GET", "/v1/batches?limit=100")
    assert status == 200 and [b["id"] for b in listed["data"] if b["reference"] == reference] == [batch["id"]]
    done = bridge.wait_for(f"/v1/batches/{batch['id']}", lambda body: body["counts"]["submitted"] == 3,
                           "every letter of the batch submitted")
    assert done["total"] == 3
    status, letters = bridge.call("GET", f"/v1/batches/{batch['id']}/letters")
    assert status == 200
    assert sorted(row["recipient"]["email"] for row in letters["data"]) == [
        f"n8n-e2e-lot{n}-{tag}@exemple.fr" for n in (1, 2, 3)]
    assert sorted(row["recipient"]["company"] for row in letters["data"]) == ["SCI Lot 1", "SCI Lot 2", "SCI Lot 3"]
    # The row's template values (key/value pairs, no JSON written) reach its letter as the cell holds them.
    first = next(row for row in letters["data"] if row["recipient"]["company"] == "SCI Lot 1")
    status, pdf = bridge.call("GET", f"/v1/letters/{first['letter_id']}/document", raw=True)
    assert status == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert 'Lot 12 : appartement "le Belvédère"; cave n° 3' in text and "Lot 112 : garage côté cour" in text


def test_a_published_trigger_registers_its_hook_runs_on_signed_events_only_and_unpublishing_removes_it(
        engine: Engine, bridge: Bridge) -> None:
    reference = f"N8N-TRIGGER-{_id()}"
    webhook_id = str(uuid.uuid4())
    trigger = _node("On Accepted", TRIGGER, {"events": ["letter.accepted"], "filters": {"reference": reference},
                                             "includeProof": True, "binaryPropertyName": "proof"}, 0,
                    webhookId=webhook_id)
    workflow = {"id": _id(), "name": "LRE trigger test", "nodes": [trigger], "connections": {}, "active": False,
                "settings": {"executionOrder": "v1"}, "pinData": {}}
    workflow_id = engine.import_workflow(workflow)
    published = engine.cli("publish:workflow", f"--id={workflow_id}")
    assert published.returncode == 0, published.stdout + published.stderr
    url = f"{engine.base_url}/webhook/{webhook_id}/webhook"

    with engine.started():
        hooks = _wait(lambda: _hooks_for(bridge, url), "the hook on the bridge")
        assert hooks[0]["events"] == ["letter.accepted"]
        assert hooks[0]["filters"] == {"reference": reference}

        status, sent = bridge.call("POST", "/v1/letters", {
            "template": "mise_en_demeure", "data": MISE_EN_DEMEURE, "reference": reference,
            "sandbox_outcome": "accepted",
            "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"}})
        assert status == 201, sent
        executions = _wait(lambda: [e for e in engine.executions(workflow_id) if e["status"] == "success"],
                           "an execution started by the status event")
        assert len(executions) == 1
        assert sent["id"] in executions[0]["data"] and "letter.accepted" in executions[0]["data"]
        status, deliveries = bridge.call("GET", f"/v1/hooks/{hooks[0]['id']}/deliveries")
        assert status == 200 and any(d.get("status") == "delivered" for d in deliveries["data"]), deliveries

        forged = b'{"type":"letter.accepted","timestamp":"2026-12-01T10:00:00Z","data":{"id":"let_forged"}}'
        answer = _post(url, forged, {"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                                     "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJlIGF0IGFsbCwgc29ycnkhISE="})
        assert answer == 401
        time.sleep(2)
        assert len(engine.executions(workflow_id)) == 1, "a forged delivery starts no execution"

        status, _, cookie = engine.rest("POST", "/owner/setup", OWNER)
        assert status == 200 and cookie, "n8n's owner setup (to call its REST API as the editor does)"
        status, answer_body, _ = engine.rest("POST", f"/workflows/{workflow_id}/deactivate", {}, cookie=cookie)
        assert status == 200, answer_body
        _wait(lambda: not _hooks_for(bridge, url), "the hook removed by unpublishing")


def test_the_example_workflows_import_into_n8n(engine: Engine) -> None:
    examples = sorted((Path(__file__).resolve().parents[1] / "n8n_nodes" / "workflows").glob("*.json"))
    assert examples, "no example workflow"
    for example in examples:
        result = engine.cli("import:workflow", f"--input={example}")
        assert result.returncode == 0, f"{example.name}: {result.stdout}{result.stderr}"
