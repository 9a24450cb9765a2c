"""Evidence through the HTTP API: a sealed package for every final status, proofs one by one,
the access log, the public seal key, document-hash alerts, retention and deletion."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import bagit
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from connector.cli import main as lre_bridge
from connector.models import Alert, Document, Letter
from connector.providers import sandbox
from tests import independent_verifier
from tests.helpers import letter_payload, make_pdf
from tests.test_evidence_package import tamper, unzip
from tests.tsa_server import serve_tsa

FINAL_PROOF = {"accepted": "acceptance", "refused": "refusal", "neglected": "negligence", "bounced": "bounce"}
ETSI_FINAL = {
    "accepted": "ConsignmentAcceptance",
    "refused": "ConsignmentRejection",
    "neglected": "AcceptanceRejectionExpiry",
    "bounced": "NotificationForAcceptanceFailure",
    "failed": "SubmissionRejection",
}


def send(client, auth, drain, **overrides: Any) -> dict[str, Any]:
    """Send a letter through the sandbox and run the worker until it is final."""
    response = client.post("/v1/letters", json=letter_payload(**overrides), headers=auth)
    assert response.status_code == 201, response.json
    drain()
    return client.get(f"/v1/letters/{response.json['id']}", headers=auth).json


def download(client, auth, letter_id: str) -> bytes:
    response = client.get(f"/v1/letters/{letter_id}/evidence", headers=auth)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "application/zip"
    return response.data


def published_key(client, tmp_path: Path) -> Path:
    """The key as a lawyer would fetch it: from the well-known URL, without an API key."""
    response = client.get("/.well-known/lre-bridge/seal-key.pem")
    assert response.status_code == 200
    path = tmp_path / "seal-key.pem"
    path.write_bytes(response.data)
    return path


def cli_verify(package: bytes, key: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    """``lre-bridge evidence verify`` through the real command group."""
    target = tmp_path / "package.zip"
    target.write_bytes(package)
    result = CliRunner().invoke(lre_bridge, ["evidence", "verify", str(target), "--public-key", str(key), *extra])
    return result.exit_code, result.output


def journal_of(package: bytes) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data/journal.jsonl"))
        return [json.loads(line) for line in archive.read(name).decode().splitlines()]


def read_member(package: bytes, suffix: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(suffix)))


def member_path(package: bytes, folder: str) -> str:
    """The bag-relative path of the first file under ``data/<folder>/``."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        name = next(n for n in archive.namelist() if f"/data/{folder}/" in n)
    return name.split("/", 1)[1]


@pytest.mark.parametrize("outcome", ["accepted", "refused", "neglected", "bounced", "failed"])
def test_every_final_status_gives_a_package_that_validates_and_detects_tampering(
    client, auth, drain, tmp_path, outcome
):
    letter = send(client, auth, drain, sandbox_outcome=outcome)
    assert letter["status"] == outcome
    package = download(client, auth, letter["id"])
    key = published_key(client, tmp_path)

    bag_dir = unzip(package, tmp_path / "unzipped")
    assert bag_dir.name.startswith("LRE_Courrier_ExempleSARL_")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    assert bag.info["External-Identifier"] == letter["id"]
    assert bag.info["Internal-Sender-Identifier"] == "DOSSIER-42"
    assert bag.info["LRE-Status"] == outcome

    code, output = cli_verify(package, key, tmp_path)
    assert code == 0, output
    assert independent_verifier.verify(bag_dir, key.read_bytes()) == []

    journal = journal_of(package)
    assert journal[0]["type"] == "letter.queued"
    assert journal[0]["documents"][0]["sha256"] == letter["documents"][0]["sha256"]
    assert journal[-1]["type"] == f"letter.{outcome}"
    assert journal[-1]["etsi_event"] == ETSI_FINAL[outcome]

    targets = ["data/documents/01-facture.pdf", "data/journal.jsonl", "manifest-sha256.txt", "seal/seal.json"]
    if outcome != "failed":
        assert journal[1]["etsi_event"] == "SubmissionAcceptance"
        targets.append(member_path(package, "proofs"))
    for path in targets:
        code, output = cli_verify(tamper(package, path), key, tmp_path)
        assert code == 1, f"{path} tampered but verified:\n{output}"
        assert f"FAIL  {path}" in output
        forged = unzip(tamper(package, path), tmp_path / f"forged-{path.replace('/', '_')}")
        assert independent_verifier.verify(forged, key.read_bytes())


@pytest.mark.slow
def test_the_installed_command_and_the_standalone_verifier_agree_on_a_downloaded_package(
    client, auth, drain, tmp_path
):
    letter = send(client, auth, drain, sandbox_outcome="accepted")
    key = published_key(client, tmp_path)
    bag_dir = unzip(download(client, auth, letter["id"]), tmp_path / "unzipped")
    repo = Path(__file__).resolve().parent.parent

    def run_both() -> list[subprocess.CompletedProcess[str]]:
        commands = [
            [sys.executable, "-m", "connector.cli", "evidence", "verify", str(bag_dir), "--public-key", str(key)],
            [sys.executable, str(repo / "tests" / "independent_verifier.py"), str(bag_dir), str(key)],
        ]
        return [subprocess.run(c, cwd=repo, capture_output=True, text=True, timeout=120) for c in commands]

    assert [r.returncode for r in run_both()] == [0, 0]
    (bag_dir / "data" / "journal.jsonl").write_text("{}\n", encoding="utf-8")
    results = run_both()
    assert [r.returncode for r in results] == [1, 1]
    assert all("data/journal.jsonl" in r.stdout for r in results)


def test_a_letter_from_a_template_is_named_after_the_template(client, auth, drain):
    data = {
        "expediteur_nom": "Cabinet Durand", "expediteur_adresse": "12 rue de la Paix, 75002 Paris",
        "destinataire_nom": "Exemple SARL", "destinataire_adresse": "3 avenue Foch, 69006 Lyon",
        "lieu": "Paris", "numero_facture": "F-2026-118", "montant_du": "1250.00",
        "date_echeance": "2026-10-31", "date_limite": "2026-12-11",
    }
    letter = send(client, auth, drain, documents=[], template="mise_en_demeure", data=data)
    response = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
    day = letter["deposited_at"][:10]
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="LRE_MiseEnDemeure_ExempleSARL_{day}.zip"; '
        f"filename*=UTF-8''LRE_MiseEnDemeure_ExempleSARL_{day}.zip"
    )


def test_the_operator_exports_packages_into_an_archive_folder(client, auth, drain, services, tmp_path):
    first = send(client, auth, drain)
    second = send(client, auth, drain)
    env = {
        "LRE_DATA_DIR": str(services.settings.data_dir),
        "LRE_DATABASE_URL": services.settings.database_url,
        "LRE_ENCRYPTION_KEYS": services.settings.encryption_keys,
        "LRE_PUBLIC_URL": services.settings.public_url,
    }
    out = tmp_path / "archive"
    command = ["evidence", "export", first["id"], second["id"], "--out", str(out)]
    result = CliRunner().invoke(lre_bridge, command, env=env)
    assert result.exit_code == 0, result.output
    written = sorted(out.iterdir())
    assert len(written) == 2  # same recipient and day: the second name carries the letter id
    key = published_key(client, tmp_path)
    for path in written:
        code, output = cli_verify(path.read_bytes(), key, tmp_path)
        assert code == 0, output
        access = read_member(path.read_bytes(), "/data/access-log.jsonl").decode()
        assert "operator (lre-bridge evidence export)" in access


def test_the_journal_binds_each_proof_to_its_event(client, auth, drain):
    letter = send(client, auth, drain, sandbox_outcome="accepted")
    package = download(client, auth, letter["id"])
    journal = journal_of(package)
    proofs = {p["kind"]: p["sha256"] for p in letter["proofs"]}
    assert [line["type"] for line in journal] == ["letter.queued", "letter.deposited", "letter.accepted"]
    assert journal[1]["proofs"] == [{**journal[1]["proofs"][0], "kind": "deposit", "sha256": proofs["deposit"]}]
    assert journal[2]["proofs"][0]["sha256"] == proofs["acceptance"]
    assert journal[1]["provider_letter_id"] == letter["provider_letter_id"]
    assert journal[1]["raw"]["reported_document_sha256"] == [letter["documents"][0]["sha256"]]
    for number, line in enumerate(journal[1:], start=1):
        previous = json.dumps(journal[number - 1], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert line["prev"] == hashlib.sha256(previous.encode()).hexdigest()


def test_it_lists_and_serves_the_proofs_byte_exact_and_logs_each_read(client, auth, drain, services):
    letter = send(client, auth, drain, sandbox_outcome="refused")
    listed = client.get(f"/v1/letters/{letter['id']}/proofs", headers=auth).json["data"]
    assert [p["kind"] for p in listed] == ["deposit", "refusal"]
    assert listed[1]["url"] == f"http://bridge.test/v1/letters/{letter['id']}/proofs/refusal"
    assert {"filename", "sha256", "size", "created_at"} <= listed[1].keys()

    response = client.get(f"/v1/letters/{letter['id']}/proofs/refusal", headers=auth)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert hashlib.sha256(response.data).hexdigest() == listed[1]["sha256"]
    assert len(response.data) == listed[1]["size"]
    client.get(f"/v1/letters/{letter['id']}/document", headers=auth)

    access = read_member(download(client, auth, letter["id"]), "/data/access-log.jsonl").decode().splitlines()
    reads = [json.loads(line) for line in access]
    assert [r["what"] for r in reads] == ["proof:refusal", "document:0", "evidence_package"]
    assert all(r["who"].startswith("key_") and r["at"].endswith("Z") for r in reads)


def test_an_unknown_proof_kind_is_a_404(client, auth, drain):
    letter = send(client, auth, drain, sandbox_outcome="failed")
    response = client.get(f"/v1/letters/{letter['id']}/proofs/deposit", headers=auth)
    assert response.status_code == 404 and response.json["error"]["code"] == "proof_not_found"


def test_another_account_cannot_read_the_evidence(client, auth, other_auth, drain):
    letter = send(client, auth, drain)
    for path in ("evidence", "proofs", "proofs/deposit"):
        assert client.get(f"/v1/letters/{letter['id']}/{path}", headers=other_auth).status_code == 404
    assert client.get(f"/v1/letters/{letter['id']}/evidence").status_code == 401


def test_a_document_hash_reported_differently_by_the_provider_raises_an_alert(
    client, auth, drain, services, monkeypatch, tmp_path
):
    real_events = sandbox.SandboxProvider._events

    def misreporting(self, mail, now):  # a provider that hashed something else than we sent
        events = real_events(self, mail, now)
        return (dataclasses.replace(events[0], reported_document_sha256=("ab" * 32,)), *events[1:])

    monkeypatch.setattr(sandbox.SandboxProvider, "_events", misreporting)
    letter = send(client, auth, drain, sandbox_outcome="accepted")

    with services.db.transaction() as session:
        alerts = list(session.scalars(select(Alert).where(Alert.letter_id == letter["id"])))
    assert [a.code for a in alerts] == ["document_hash_mismatch"]
    package = download(client, auth, letter["id"])
    journal = journal_of(package)
    assert [line["type"] for line in journal] == ["letter.queued", "letter.deposited", "alert", "letter.accepted"]
    assert journal[2]["reported_sha256"] == ["ab" * 32]
    assert journal[2]["expected_sha256"] == [letter["documents"][0]["sha256"]]
    assert "ALERTES / ALERTS" in read_member(package, "/data/summary.txt").decode()
    code, output = cli_verify(package, published_key(client, tmp_path), tmp_path)
    assert code == 0, output  # the package is intact; the alert is its content


def test_the_seal_key_is_published_and_created_once_with_private_permissions(client, services):
    pem = client.get("/.well-known/lre-bridge/seal-key.pem")
    described = client.get("/v1/evidence/public-key").json
    assert pem.status_code == 200 and pem.data.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert described["public_key_pem"].encode() == pem.data
    assert described["url"] == "http://bridge.test/.well-known/lre-bridge/seal-key.pem"
    assert len(described["sha256"]) == 64
    key_file = Path(services.settings.data_dir) / "seal-key.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert client.get("/.well-known/lre-bridge/seal-key.pem").data == pem.data


def test_each_package_points_to_its_key_at_a_url_that_survives_a_rotation(
    client, auth, drain, services, tmp_path
):
    letter = send(client, auth, drain)
    package = download(client, auth, letter["id"])
    seal = json.loads(read_member(package, "/seal/seal.json"))
    url = seal["public_key_url"]
    assert url == f"http://bridge.test/.well-known/lre-bridge/seal-keys/{seal['public_key_sha256']}.pem"
    old_pem = client.get(url.removeprefix("http://bridge.test")).data

    # Rotation: a new key file, and the old public key kept among the retired ones.
    retired = Path(services.settings.data_dir) / "retired-seal-keys"
    retired.mkdir()
    (retired / "2026.pem").write_bytes(old_pem)
    new_key = tmp_path / "new-key.pem"
    new_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    services.settings.signing_key_file = new_key
    assert client.get("/.well-known/lre-bridge/seal-key.pem").data != old_pem
    assert client.get(url.removeprefix("http://bridge.test")).data == old_pem
    key_file = tmp_path / "old.pem"
    key_file.write_bytes(old_pem)
    assert cli_verify(package, key_file, tmp_path)[0] == 0
    assert client.get("/.well-known/lre-bridge/seal-keys/" + "0" * 64 + ".pem").status_code == 404


def test_a_configured_signing_key_file_is_used(client, services, tmp_path):
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "operator-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    services.settings.signing_key_file = path
    published = client.get("/.well-known/lre-bridge/seal-key.pem").data
    assert published == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_retention_defaults_to_ten_years_and_cannot_go_below_one(client, auth):
    assert client.get("/v1/account/retention", headers=auth).json["retention_days"] == 3650
    too_short = client.put("/v1/account/retention", json={"retention_days": 100}, headers=auth)
    assert too_short.status_code == 422
    assert too_short.json["error"]["field"] == "retention_days"
    ok = client.put("/v1/account/retention", json={"retention_days": 365 * 5}, headers=auth)
    assert ok.status_code == 200 and ok.json["retention_days"] == 1825


def test_deletion_is_refused_before_retention_ends_and_done_after(client, auth, drain, services):
    queued = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    refused = client.delete(f"/v1/letters/{queued['id']}", headers=auth)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "letter_in_progress"
    drain()

    client.put("/v1/account/retention", json={"retention_days": 365}, headers=auth)
    too_early = client.delete(f"/v1/letters/{queued['id']}", headers=auth)
    assert too_early.status_code == 409
    assert too_early.json["error"]["code"] == "retention_period_not_over"
    assert "must be kept until" in too_early.json["error"]["message"]

    with services.db.transaction() as session:
        letter = session.get(Letter, queued["id"])
        retain_until = letter.retain_until
        blob_key = session.scalar(select(Document.storage_key).where(Document.letter_id == letter.id))
    # Fixed when the letter ended, with the ten years then in force: lowering it later does not shorten it.
    assert retain_until - letter.completed_at == timedelta(days=3650)
    real_clock = services.clock
    services.clock = lambda: real_clock() + timedelta(days=3651)
    assert services.blobs.exists(blob_key)
    gone = client.delete(f"/v1/letters/{queued['id']}", headers=auth)
    assert gone.status_code == 204
    assert client.get(f"/v1/letters/{queued['id']}", headers=auth).status_code == 404
    assert not services.blobs.exists(blob_key)


def test_a_blob_shared_with_another_letter_survives_the_deletion(client, auth, drain, services):
    first = send(client, auth, drain)
    second = send(client, auth, drain)
    assert first["documents"][0]["sha256"] == second["documents"][0]["sha256"]
    real_clock = services.clock
    services.clock = lambda: real_clock() + timedelta(days=3651)
    assert client.delete(f"/v1/letters/{first['id']}", headers=auth).status_code == 204
    document = client.get(f"/v1/letters/{second['id']}/document", headers=auth)
    assert document.status_code == 200 and document.data == make_pdf()


def test_letters_are_found_by_reference_recipient_and_dates(client, auth, drain):
    first = send(client, auth, drain, reference="BAIL-7")
    send(
        client,
        auth,
        drain,
        reference="BAIL-8",
        recipient={"type": "professional", "email": "direction@autre.fr", "company": "Autre SA"},
    )
    by_reference = client.get("/v1/letters?reference=BAIL-7", headers=auth).json["data"]
    assert [letter["id"] for letter in by_reference] == [first["id"]]
    by_recipient = client.get("/v1/letters?recipient=autre", headers=auth).json["data"]
    assert [letter["reference"] for letter in by_recipient] == ["BAIL-8"]
    day = first["created_at"][:10]
    assert len(client.get(f"/v1/letters?from={day}", headers=auth).json["data"]) == 2
    assert client.get("/v1/letters?to=2000-01-01", headers=auth).json["data"] == []


class TestWithATimeStampingAuthority:
    @pytest.fixture
    def tsa(self):
        with serve_tsa() as (url, tsa):
            yield url, tsa

    @pytest.fixture
    def settings_overrides(self, settings_overrides, tsa):
        return {**settings_overrides, "tsa_url": tsa[0]}

    def test_the_package_carries_a_time_stamp_over_the_seal(self, client, auth, drain, tsa, tmp_path):
        letter = send(client, auth, drain, sandbox_outcome="neglected")
        package = download(client, auth, letter["id"])
        ca = tmp_path / "tsa-ca.pem"
        ca.write_bytes(tsa[1].ca_pem)
        code, output = cli_verify(package, published_key(client, tmp_path), tmp_path, "--tsa-ca", str(ca))
        assert code == 0, output
        assert "time-stamp over the seal" in output
        code, output = cli_verify(tamper(package, "seal/timestamp.tst"), published_key(client, tmp_path), tmp_path)
        assert code == 1 and "FAIL  seal/timestamp.tst" in output

    def test_a_failing_authority_makes_the_download_fail_rather_than_go_unstamped(self, client, auth, drain, tsa):
        letter = send(client, auth, drain)
        tsa[1].refuse = True
        response = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
        assert response.status_code == 503
        assert response.json["error"]["code"] == "timestamp_unavailable"
