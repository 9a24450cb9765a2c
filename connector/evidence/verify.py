"""Check an evidence package with nothing but its own bytes and the bridge's public key.

Every problem names the file it is about, so that a one-byte change anywhere is reported as
"this file changed", not as "the package is invalid".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.evidence import formats
from connector.evidence.keys import key_fingerprint
from connector.evidence.record import check_record, load_record
from connector.evidence.timestamp import TimestampError, verify_token


class PackageUnreadable(Exception):
    """The input is not a zip or folder holding one bag."""


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Report:
    """The outcome: ``problems`` make the package invalid, ``warnings`` are for the reader."""

    problems: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def changed_files(self) -> list[str]:
        return sorted({p.path for p in self.problems})


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_package(source: Path | bytes) -> dict[str, bytes]:
    """The bag's files (path relative to the bag root -> bytes) from a zip or a folder."""
    if isinstance(source, bytes):
        return _from_zip(source)
    if source.is_file():
        return _from_zip(source.read_bytes())
    if not source.is_dir():
        raise PackageUnreadable(f"{source} is neither a zip file nor a folder")
    root = source
    if not (root / formats.BAGIT_TXT).is_file():
        bags = [p for p in root.iterdir() if (p / formats.BAGIT_TXT).is_file()]
        if len(bags) != 1:
            raise PackageUnreadable(f"{source} holds no bag (no bagit.txt)")
        root = bags[0]
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _from_zip(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise PackageUnreadable(f"not a readable zip file: {exc}") from exc
    roots = {PurePosixPath(name).parts[0] for name in entries if len(PurePosixPath(name).parts) > 1}
    if f"{formats.BAGIT_TXT}" in entries:
        prefix = ""
    elif len(roots) == 1:
        prefix = roots.pop() + "/"
    else:
        raise PackageUnreadable("the zip must hold one folder with the bag")
    files = {name.removeprefix(prefix): content for name, content in entries.items() if name.startswith(prefix)}
    if formats.BAGIT_TXT not in files:
        raise PackageUnreadable("the zip holds no bag (no bagit.txt)")
    return files


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo)."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def verify_package(
    files: Mapping[str, bytes],
    public_key_pem: bytes | None = None,
    trusted_tsa_certificates: Sequence[bytes] = (),
    evidence_record: bytes | None = None,
    at: datetime | None = None,
) -> Report:
    """Run every check and collect all problems (not just the first).

    With ``evidence_record`` (the letter's record from ``lre-bridge archive record``), also check
    that it covers this package's seal and that its chain of renewed time-stamps holds at ``at``
    (default: now).
    """
    report = Report()
    clutter = sorted(path for path in files if _is_os_clutter(path))
    if clutter:
        # Finder and Explorer drop these into any folder a person opens; they are not evidence.
        report.warnings.append(f"ignored files added by the operating system: {', '.join(clutter)}")
        files = {path: content for path, content in files.items() if path not in clutter}
    _check_bag_declaration(files, report)
    _check_manifests(files, report)
    _check_oxum(files, report)
    seal = _check_seal(files, public_key_pem, report)
    _check_journal(files, seal, report)
    _check_content_binding(files, report)
    _check_timestamp(files, trusted_tsa_certificates, report)
    if evidence_record is not None:
        _check_evidence_record(files, evidence_record, trusted_tsa_certificates, at or datetime.now(UTC), report)
    return report


def _check_evidence_record(
    files: Mapping[str, bytes], data: bytes, trusted: Sequence[bytes], at: datetime, report: Report
) -> None:
    name = "evidence record"
    try:
        record = load_record(data)
    except ValueError as exc:
        report.problems.append(Finding(name, f"unreadable (not JSON): {exc}"))
        return
    outcome = check_record(record, files.get(formats.SEAL_SIG, b""), trusted, at)
    report.problems += [Finding(name, problem) for problem in outcome.problems]
    if outcome.problems or not outcome.timestamps:
        return
    first, last = outcome.timestamps[0], outcome.timestamps[-1]
    holds_until = last.certificate_not_after.isoformat() if last.certificate_not_after else "?"
    report.info.update(record_first_timestamp=first.gen_time.isoformat(), record_renewals=len(outcome.timestamps) - 1)
    report.passed.append(
        f"evidence record: the seal is in hash tree {record.get('root_sha256', '')[:16]}…, time-stamped "
        f"{first.gen_time.isoformat()} and renewed {len(outcome.timestamps) - 1} time(s), each before the "
        f"previous certificate expired; the latest holds until {holds_until}"
    )
    if not all(info.trusted for info in outcome.timestamps):
        report.warnings.append(
            "the evidence record's time-stamping authorities were not all checked against a trusted "
            "authority; pass --tsa-ca with each one's CA certificate"
        )


def _check_bag_declaration(files: Mapping[str, bytes], report: Report) -> None:
    fields = _tag_fields(files.get(formats.BAGIT_TXT))
    if "BagIt-Version" not in fields or "Tag-File-Character-Encoding" not in fields:
        report.problems.append(Finding(formats.BAGIT_TXT, "missing or without BagIt-Version/encoding"))
        return
    report.passed.append(f"bag declaration (BagIt {fields['BagIt-Version']})")


def _check_manifests(files: Mapping[str, bytes], report: Report) -> None:
    payload = {p for p in files if p.startswith("data/")}
    tag_files = {p for p in files if not p.startswith(("data/", "seal/")) and p not in formats.TAG_MANIFESTS}
    for manifests, expected, kind in (
        (formats.MANIFESTS, payload, "payload"),
        (formats.TAG_MANIFESTS, tag_files, "tag"),
    ):
        present = [m for m in manifests if m in files]
        if not present:
            report.problems.append(Finding(manifests[0], f"missing: no {kind} manifest in the package"))
            continue
        before = len(report.problems)
        for manifest in present:
            algorithm = manifest.rsplit("-", 1)[1].removesuffix(".txt")
            listed = _parse_manifest(manifest, files[manifest], report)
            for path, digest in listed.items():
                if path not in files:
                    report.problems.append(Finding(path, f"missing (listed in {manifest})"))
                elif hashlib.new(algorithm, files[path]).hexdigest() != digest:
                    report.problems.append(Finding(path, f"changed: its {algorithm.upper()} differs from {manifest}"))
            for path in sorted(expected - listed.keys()):
                report.problems.append(Finding(path, f"not listed in {manifest} (added or renamed)"))
        if len(report.problems) == before:
            report.passed.append(f"{len(expected)} {kind} files match {' and '.join(present)}")


def _parse_manifest(name: str, content: bytes, report: Report) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, path = line.partition(" ")
        path = path.lstrip(" *")
        if not path or not all(c in "0123456789abcdef" for c in digest.lower()):
            report.problems.append(Finding(name, f"line {number} is not '<hash> <path>'"))
            continue
        # RFC 8493 §2.1.3: only CR, LF and % are percent-encoded in manifest paths.
        entries[unquote(path) if "%" in path else path] = digest.lower()
    return entries


def _check_oxum(files: Mapping[str, bytes], report: Report) -> None:
    oxum = _tag_fields(files.get(formats.BAG_INFO_TXT)).get("Payload-Oxum")
    if oxum is None:
        return
    payload = [content for path, content in files.items() if path.startswith("data/")]
    actual = f"{sum(len(c) for c in payload)}.{len(payload)}"
    if oxum != actual:
        report.problems.append(
            Finding(formats.BAG_INFO_TXT, f"Payload-Oxum says {oxum} (bytes.files), the payload is {actual}")
        )


def _check_seal(files: Mapping[str, bytes], public_key_pem: bytes | None, report: Report) -> dict[str, Any]:
    if formats.SEAL_JSON not in files or formats.SEAL_SIG not in files:
        report.problems.append(Finding(formats.SEAL_JSON, "missing: the package is not sealed"))
        return {}
    seal_bytes = files[formats.SEAL_JSON]
    try:
        seal = json.loads(seal_bytes)
        signature = base64.b64decode(files[formats.SEAL_SIG].strip(), validate=True)
    except (ValueError, binascii.Error):
        report.problems.append(Finding(formats.SEAL_JSON, "unreadable seal (not JSON, or seal.sig not base64)"))
        return {}
    if not isinstance(seal, dict) or seal.get("format") != formats.SEAL_FORMAT:
        report.problems.append(Finding(formats.SEAL_JSON, f"not a {formats.SEAL_FORMAT} seal"))
        return {}
    report.info.update(bag=seal.get("bag"), letter_id=seal.get("letter_id"), sealed_at=seal.get("sealed_at"))

    if public_key_pem is None:
        public_key_pem = files.get(formats.SEAL_PUBLIC_KEY)
        published = seal.get("public_key_url") or "its URL"
        report.warnings.append(
            "the seal was checked with the public key shipped inside the package; to rule out a forged "
            f"package, pass --public-key with the bridge's published key ({published})"
        )
    try:
        key = load_public_key(public_key_pem or b"")
    except ValueError as exc:
        report.problems.append(Finding(formats.SEAL_PUBLIC_KEY, f"no usable public key: {exc}"))
        return seal
    report.info["public_key_sha256"] = key_fingerprint(key)
    try:
        key.verify(signature, seal_bytes)
    except InvalidSignature:
        report.problems.append(
            Finding(
                formats.SEAL_JSON,
                f"the signature in {formats.SEAL_SIG} does not verify this file with key "
                f"{key_fingerprint(key)[:16]}…: seal.json or seal.sig was altered, "
                "or the key is not the bridge's",
            )
        )
        return seal
    report.passed.append(f"seal signature (Ed25519, key {key_fingerprint(key)[:16]}…)")

    sealed = seal.get("files") or {}
    before = len(report.problems)
    for path, digests in sorted(sealed.items()):
        if path not in files:
            report.problems.append(Finding(path, "missing (listed in the seal)"))
            continue
        for algorithm, digest in sorted(digests.items()):
            if algorithm in formats.HASH_ALGORITHMS and hashlib.new(algorithm, files[path]).hexdigest() != digest:
                report.problems.append(
                    Finding(path, f"changed after sealing ({algorithm.upper()} differs from the seal)")
                )
                break
    unsealed = [p for p in files if not p.startswith(("data/", "seal/")) and p not in sealed]
    for path in sorted(unsealed):
        report.problems.append(Finding(path, "tag file not covered by the seal (added after sealing)"))
    if len(report.problems) == before:
        report.passed.append(f"{len(sealed)} tag files match the seal")
    return seal


def _check_journal(files: Mapping[str, bytes], seal: Mapping[str, Any], report: Report) -> None:
    path = formats.JOURNAL_PATH
    if path not in files:
        report.problems.append(Finding(path, "missing: the package has no journal"))
        return
    text = files[path].decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    prev = formats.GENESIS_HASH
    before = len(report.problems)
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            report.problems.append(Finding(path, f"line {number} is not JSON"))
            break
        if formats.canonical_json(record) != line.encode("utf-8"):
            report.problems.append(Finding(path, f"line {number} is not in RFC 8785 canonical form (edited)"))
        if record.get("seq") != number:
            report.problems.append(
                Finding(path, f"line {number} has seq {record.get('seq')} (lines removed or reordered)")
            )
        if record.get("prev") != prev:
            report.problems.append(
                Finding(path, f"line {number}: 'prev' is not the SHA-256 of line {number - 1} (chain broken)")
            )
        prev = hashlib.sha256(line.encode("utf-8")).hexdigest()
    sealed = seal.get("journal") or {}
    if sealed and (sealed.get("lines") != len(lines) or sealed.get("last_line_sha256") != prev):
        report.problems.append(
            Finding(
                path,
                f"has {len(lines)} lines ending in {prev[:12]}…, the seal says {sealed.get('lines')} "
                f"ending in {str(sealed.get('last_line_sha256'))[:12]}…",
            )
        )
    if len(report.problems) == before:
        report.passed.append(f"journal chain ({len(lines)} lines, each bound to the previous one)")


def _check_content_binding(files: Mapping[str, bytes], report: Report) -> None:
    """Each document and proof in the package must carry a hash the journal recorded."""
    recorded: dict[str, set[str]] = {"documents": set(), "proofs": set()}
    for line in files.get(formats.JOURNAL_PATH, b"").decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            return  # already reported by the journal check
        for key in recorded:
            recorded[key].update(item.get("sha256", "") for item in record.get(key) or ())
    before = len(report.problems)
    checked = 0
    for folder, hashes in recorded.items():
        for path in sorted(p for p in files if p.startswith(f"data/{folder}/")):
            checked += 1
            if hashlib.sha256(files[path]).hexdigest() not in hashes:
                report.problems.append(Finding(path, f"its SHA-256 is not the one the journal recorded for {folder}"))
    if len(report.problems) == before:
        report.passed.append(f"{checked} documents and proofs carry the hashes recorded in the journal")


def _check_timestamp(files: Mapping[str, bytes], trusted: Sequence[bytes], report: Report) -> None:
    token = files.get(formats.SEAL_TIMESTAMP)
    if token is None:
        report.warnings.append("no RFC 3161 time-stamp in the package (no time-stamping authority configured)")
        return
    try:
        info = verify_token(token, files.get(formats.SEAL_SIG, b""), trusted)
    except TimestampError as exc:
        report.problems.append(Finding(formats.SEAL_TIMESTAMP, str(exc)))
        return
    report.info.update(timestamp=info.gen_time.isoformat(), tsa=info.tsa_subject)
    report.passed.append(f"time-stamp over the seal: {info.gen_time.isoformat()} by {info.tsa_subject}")
    if not info.trusted:
        report.warnings.append(
            "the time-stamping authority's certificate was not checked against a trusted authority; "
            "pass --tsa-ca with its CA certificate"
        )


_CLUTTER_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _is_os_clutter(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return parts[0] == "__MACOSX" or parts[-1] in _CLUTTER_NAMES or parts[-1].startswith("._")


def _tag_fields(content: bytes | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (content or b"").decode("utf-8", "replace").splitlines():
        label, sep, value = line.partition(":")
        if sep:
            fields[label.strip()] = value.strip()
    return fields


def render_report(report: Report) -> str:
    """The report as plain text for the terminal (the CLI prints this)."""
    lines = []
    if report.info.get("bag"):
        lines.append(f"Package {report.info['bag']} (letter {report.info.get('letter_id')})")
    lines += [f"  OK    {item}" for item in report.passed]
    lines += [f"  FAIL  {problem}" for problem in report.problems]
    lines += [f"  NOTE  {warning}" for warning in report.warnings]
    if report.ok:
        lines.append("VALID: nothing in the package changed since it was sealed.")
    else:
        lines.append(f"NOT VALID: {len(report.problems)} problem(s); changed: {', '.join(report.changed_files())}")
    return "\n".join(lines)
