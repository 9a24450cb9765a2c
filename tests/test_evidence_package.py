"""The evidence package built from plain inputs: BagIt validity, seal, journal chain, time-stamp.

These tests need no database: they exercise the writer, the bridge's verifier (through the CLI)
and the independent verifier on the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import bagit
import pytest
import rfc8785
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.evidence import formats
from connector.evidence.cli import evidence_cli
from connector.evidence.journal import chain, etsi_fields, jcs_safe
from connector.evidence.keys import public_key_pem
from connector.evidence.package import (
    PackageInput,
    PayloadFile,
    build_package,
    package_name,
    zip_files,
)
from connector.evidence.timestamp import TimestampError, request_timestamp
from connector.evidence.verify import read_package, verify_package
from tests import independent_verifier
from tests.tsa_server import serve_tsa

DOCUMENT = b"%PDF-1.4\n% a letter\n" + bytes(range(256)) + b"\n%%EOF\n"
PROOF = b"%PDF-1.7\n% deposit proof from the provider\n%%EOF\n"
SEALED_AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


# --- helpers shared with test_evidence_api.py ------------------------------------------------


def unzip(zip_bytes: bytes, into: Path) -> Path:
    """Extract a package and return the bag folder inside it."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(into)
    (bag,) = [p for p in into.iterdir() if p.is_dir()]
    return bag


def tamper(zip_bytes: bytes, path: str, change: str = "flip") -> bytes:
    """The same zip with one file of the bag altered: one byte flipped, or the file removed."""
    files = read_package(zip_bytes)
    root = zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()[0].split("/")[0]
    if change == "flip":
        content = bytearray(files[path])
        content[len(content) // 2] ^= 0x01
        files[path] = bytes(content)
    elif change == "remove":
        del files[path]
    return zip_files(root, files, (2026, 1, 1, 0, 0, 0))


def run_verify(tmp_path: Path, zip_bytes: bytes, key_pem: bytes | None, *extra: str) -> tuple[int, str]:
    """Run ``lre-bridge evidence verify`` on the zip as a user would; returns (exit code, output)."""
    target = tmp_path / "package.zip"
    target.write_bytes(zip_bytes)
    args = ["verify", str(target)]
    if key_pem is not None:
        key_file = tmp_path / "seal-key.pem"
        key_file.write_bytes(key_pem)
        args += ["--public-key", str(key_file)]
    result = CliRunner().invoke(evidence_cli, [*args, *extra])
    return result.exit_code, result.output


# --- a package from plain inputs -------------------------------------------------------------


def journal_records() -> list[dict]:
    doc_sha = hashlib.sha256(DOCUMENT).hexdigest()
    proof_sha = hashlib.sha256(PROOF).hexdigest()
    return [
        {
            "type": "letter.queued",
            **etsi_fields("letter.queued"),
            "occurred_at": "2026-03-01T09:00:00.000000Z",
            "documents": [
                {"position": 0, "filename": "contrat.pdf", "sha256": doc_sha, "size": len(DOCUMENT)}
            ],
        },
        {
            "type": "letter.deposited",
            **etsi_fields("letter.deposited"),
            "occurred_at": "2026-03-01T09:00:05.000000Z",
            "provider": "sandbox",
            "documents": [
                {"position": 0, "filename": "contrat.pdf", "sha256": doc_sha, "size": len(DOCUMENT)}
            ],
            "proofs": [
                {"kind": "deposit", "filename": "deposit.pdf", "sha256": proof_sha, "size": len(PROOF)}
            ],
            "raw": {"score": 0.5, "état": "déposé", "big": 1e21},
        },
        {
            "type": "letter.accepted",
            **etsi_fields("letter.accepted"),
            "occurred_at": "2026-03-02T08:00:00.000000Z",
        },
    ]


def journal_bytes(records: list[dict] | None = None) -> bytes:
    return "".join(line.text + "\n" for line in chain(records or journal_records())).encode("utf-8")


def package_input(journal: bytes | None = None) -> PackageInput:
    return PackageInput(
        name=package_name("mise en demeure", "Client Dupont", date(2026, 3, 2)),
        letter_id="let_0123456789abcdef",
        payload=[
            PayloadFile("documents/01-contrat.pdf", DOCUMENT),
            PayloadFile("proofs/deposit-deposit.pdf", PROOF),
            PayloadFile("journal.jsonl", journal if journal is not None else journal_bytes()),
            PayloadFile("summary.txt", "Résumé / Summary\n".encode()),
            PayloadFile(
                "access-log.jsonl", b'{"at":"2026-03-02T10:00:00Z","what":"proof:deposit","who":"key_1"}\n'
            ),
        ],
        bagging_date=date(2026, 3, 2),
        sealed_at=SEALED_AT,
        bag_info={"External-Description": "Lettre recommandée électronique\nà Client Dupont"},
        public_key_url="https://bridge.example/.well-known/lre-bridge/seal-key.pem",
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def package_zip(key: Ed25519PrivateKey) -> bytes:
    return build_package(package_input(), key).zip_bytes


def test_it_names_the_package_after_the_template_the_recipient_and_the_date() -> None:
    assert package_name("mise en demeure", "Client Dupont", date(2024, 10, 26)) == (
        "LRE_MiseEnDemeure_ClientDupont_2024-10-26"
    )
    assert (
        package_name(None, "Société Générale", date(2024, 1, 2)) == "LRE_Courrier_SocieteGenerale_2024-01-02"
    )


def test_a_package_is_a_valid_bagit_bag(tmp_path: Path, package_zip: bytes) -> None:
    bag = bagit.Bag(str(unzip(package_zip, tmp_path)))
    bag.validate()
    assert bag.info["External-Identifier"] == "let_0123456789abcdef"
    assert bag.info["Payload-Oxum"].endswith(".5")
    assert "à Client Dupont" in bag.info["External-Description"]  # folded onto one line


def test_the_same_inputs_give_the_same_zip_bytes(key: Ed25519PrivateKey, package_zip: bytes) -> None:
    assert build_package(package_input(), key).zip_bytes == package_zip


def test_the_cli_accepts_an_untouched_package_with_the_published_key(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    code, output = run_verify(tmp_path, package_zip, public_key_pem(key))
    assert code == 0, output
    assert "VALID" in output and "journal chain (3 lines" in output


def test_the_cli_accepts_the_unzipped_folder_too(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    folder = unzip(package_zip, tmp_path / "x")
    (tmp_path / "k.pem").write_bytes(public_key_pem(key))
    result = CliRunner().invoke(
        evidence_cli, ["verify", str(folder), "--public-key", str(tmp_path / "k.pem")]
    )
    assert result.exit_code == 0, result.output


def test_files_the_operating_system_drops_into_an_opened_folder_are_ignored(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    folder = unzip(package_zip, tmp_path / "x")
    (folder / ".DS_Store").write_bytes(b"finder")
    (folder / "data" / "documents" / "Thumbs.db").write_bytes(b"explorer")
    report = verify_package(read_package(folder), public_key_pem(key))
    assert report.ok, report.problems
    assert any("ignored files added by the operating system" in w for w in report.warnings)


def test_the_independent_verifier_accepts_an_untouched_package(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    assert independent_verifier.verify(unzip(package_zip, tmp_path), public_key_pem(key)) == []


@pytest.mark.parametrize(
    "path",
    [
        "data/documents/01-contrat.pdf",
        "data/proofs/deposit-deposit.pdf",
        "data/journal.jsonl",
        "data/access-log.jsonl",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "tagmanifest-sha512.txt",
        "bag-info.txt",
        "bagit.txt",
        "seal/seal.json",
    ],
)
def test_a_one_byte_change_is_reported_with_the_file_that_changed(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes, path: str
) -> None:
    code, output = run_verify(tmp_path, tamper(package_zip, path), public_key_pem(key))
    assert code == 1
    assert f"FAIL  {path}" in output
    assert independent_verifier.verify(unzip(tamper(package_zip, path), tmp_path / "i"), public_key_pem(key))


def test_a_changed_signature_is_reported_against_the_seal(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    files = read_package(package_zip)
    files["seal/seal.sig"] = files["seal/seal.sig"].replace(files["seal/seal.sig"][:4], b"AAAA")
    code, output = run_verify(tmp_path, zip_files("p", files, (2026, 1, 1, 0, 0, 0)), public_key_pem(key))
    assert code == 1
    assert "FAIL  seal/seal.json: the signature in seal/seal.sig does not verify" in output


def test_a_removed_proof_is_reported_as_missing(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    code, output = run_verify(
        tmp_path, tamper(package_zip, "data/proofs/deposit-deposit.pdf", "remove"), public_key_pem(key)
    )
    assert code == 1
    assert "FAIL  data/proofs/deposit-deposit.pdf: missing" in output


def test_a_rebagged_forgery_is_caught_by_the_seal(
    tmp_path: Path, key: Ed25519PrivateKey, package_zip: bytes
) -> None:
    # A forger changes the document and regenerates every manifest: BagIt alone is satisfied...
    bag_dir = unzip(package_zip, tmp_path)
    (bag_dir / "data/documents/01-contrat.pdf").write_bytes(DOCUMENT.replace(b"a letter", b"a forged"))
    bag = bagit.Bag(str(bag_dir))
    bag.save(manifests=True)
    bag.validate()
    # ...but the seal no longer matches the manifests, and the document no longer matches the journal.
    (tmp_path / "k.pem").write_bytes(public_key_pem(key))
    result = CliRunner().invoke(
        evidence_cli, ["verify", str(bag_dir), "--public-key", str(tmp_path / "k.pem")]
    )
    assert result.exit_code == 1
    assert "FAIL  manifest-sha256.txt: changed after sealing" in result.output
    assert (
        "FAIL  data/documents/01-contrat.pdf: its SHA-256 is not the one the journal recorded"
        in result.output
    )


def test_a_package_resealed_with_another_key_fails_against_the_published_key(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    forged = build_package(package_input(), Ed25519PrivateKey.generate()).zip_bytes
    code, output = run_verify(tmp_path, forged, public_key_pem(key))
    assert code == 1 and "FAIL  seal/seal.json" in output
    # Without --public-key the embedded key is used, and the reader is told so.
    code, output = run_verify(tmp_path, forged, None)
    assert code == 0 and "pass --public-key" in output


def test_a_broken_journal_chain_is_reported_even_when_sealed(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    lines = journal_bytes().decode().splitlines()
    record = json.loads(lines[1])
    record["occurred_at"] = "2026-02-01T09:00:05.000000Z"  # backdated, re-canonicalised, chain not redone
    lines[1] = rfc8785.dumps(record).decode()
    broken = ("\n".join(lines) + "\n").encode()
    code, output = run_verify(
        tmp_path, build_package(package_input(broken), key).zip_bytes, public_key_pem(key)
    )
    assert code == 1
    assert "FAIL  data/journal.jsonl: line 3: 'prev' is not the SHA-256 of line 2" in output


def test_a_truncated_journal_is_reported(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    short = journal_bytes(journal_records()[:2])
    package = build_package(package_input(short), key)
    files = dict(package.files)
    files["data/journal.jsonl"] = b"".join(short.splitlines(keepends=True)[:1])
    bag_dir = tmp_path / "bag"
    for path, content in files.items():
        (bag_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (bag_dir / path).write_bytes(content)
    report = verify_package(read_package(bag_dir), public_key_pem(key))
    assert "data/journal.jsonl" in report.changed_files()
    assert any("the seal says 2" in str(p) for p in report.problems)


def test_the_independent_canonical_form_matches_rfc8785() -> None:
    samples = [
        {"b": [1, 2.5, -0.0, 1e21, 1e-7, 123456789.125, 5e-324], "a": None, "é": '\u0007"\\/'},
        {"\U0001f600": 1, "\ufb01": 2, "z": True, "": False},
    ]
    for sample in samples:
        assert independent_verifier.jcs(sample).encode() == rfc8785.dumps(sample)


def test_provider_data_that_jcs_cannot_represent_is_kept_as_text() -> None:
    raw = {"id": 2**60, "score": float("nan"), 3: ["ok", 1.5, True, None]}
    assert jcs_safe(raw) == {"id": str(2**60), "score": "nan", "3": ["ok", 1.5, True, None]}
    rfc8785.dumps(jcs_safe(raw))


def test_the_journal_names_etsi_events_alongside_ours() -> None:
    assert etsi_fields("letter.neglected") == {
        "etsi_event": "AcceptanceRejectionExpiry",
        "etsi_event_uri": "http://uri.etsi.org/19522/Event/AcceptanceRejectionExpiry",
        "etsi_reason": "RC09",
    }
    assert etsi_fields("letter.bounced")["etsi_event"] == "NotificationForAcceptanceFailure"
    assert etsi_fields("letter.queued")["etsi_event"] is None
    first = json.loads(chain(journal_records())[0].text)
    assert first["prev"] == formats.GENESIS_HASH and first["seq"] == 1


# --- RFC 3161 time-stamp over the seal -------------------------------------------------------


def test_a_time_stamp_from_the_tsa_is_checked_with_the_package(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    from connector.lib import http

    with serve_tsa() as (url, tsa):
        package = build_package(package_input(), key, lambda data: request_timestamp(url, data, http.request))
        (tmp_path / "ca.pem").write_bytes(tsa.ca_pem)
        code, output = run_verify(
            tmp_path, package.zip_bytes, public_key_pem(key), "--tsa-ca", str(tmp_path / "ca.pem")
        )
    assert code == 0, output
    assert "time-stamp over the seal" in output and "LRE Bridge Test TSA" in output
    assert "not checked against a trusted authority" not in output

    code, output = run_verify(tmp_path, tamper(package.zip_bytes, "seal/timestamp.tst"), public_key_pem(key))
    assert code == 1 and "FAIL  seal/timestamp.tst" in output


def test_a_time_stamp_does_not_transfer_to_another_seal(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    from connector.lib import http

    with serve_tsa() as (url, _tsa):
        stamped = build_package(package_input(), key, lambda data: request_timestamp(url, data, http.request))
    other = dict(build_package(package_input(journal_bytes(journal_records()[:2])), key).files)
    other["seal/timestamp.tst"] = stamped.files["seal/timestamp.tst"]
    report = verify_package(other, public_key_pem(key))
    assert "seal/timestamp.tst" in report.changed_files()


def test_a_refusing_tsa_is_an_error_not_a_missing_stamp() -> None:
    from connector.lib import http

    with serve_tsa() as (url, tsa):
        tsa.refuse = True
        with pytest.raises(TimestampError, match="refused"):
            request_timestamp(url, b"seal", http.request)
