"""Gather one letter's evidence from the database and the archive into a sealed package.

This is the only module that reads rows and blobs for a package; ``package.build_package`` does
the rest from plain values.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import models
from connector.config import Settings
from connector.evidence import formats, journal
from connector.evidence.access import access_log_jsonl, access_records
from connector.evidence.keys import key_fingerprint, load_signing_key
from connector.evidence.package import (
    PackageInput,
    PayloadFile,
    Timestamper,
    package_name,
    safe_path_part,
)
from connector.evidence.summary import SummaryFacts, SummaryFile, proof_labels, render_summary
from connector.evidence.timestamp import request_timestamp
from connector.lib import http
from connector.lib.spool import MEMORY_BYTES
from connector.lib.storage import BlobStore


def recipient_display(letter: models.Letter) -> str:
    """The recipient as a person reads it: company, else first and last name, else the e-mail."""
    person = " ".join(p for p in (letter.recipient_first_name, letter.recipient_last_name) if p)
    return letter.recipient_company or person or letter.recipient_email


def public_key_url(settings: Settings, fingerprint: str | None = None) -> str:
    """Where the bridge publishes its seal key: the current one, or one key by fingerprint."""
    if fingerprint is None:
        return settings.public_url + formats.PUBLIC_KEY_PATH
    return settings.public_url + formats.KEY_BY_FINGERPRINT_PATH.format(fingerprint=fingerprint)


def tsa_timestamper(settings: Settings) -> Timestamper | None:
    """A time-stamper for the configured TSA, or None when LRE_TSA_URL is not set."""
    url = settings.tsa_url
    if not url:
        return None
    return lambda data: request_timestamp(url, data, http.request)


def _archived(blobs: BlobStore, path: str, key: str, size: int) -> PayloadFile:
    """An archived file of the package: read now when small; a large one is opened (and its hash
    checked, at its end) only while the zip is written, so that it is never held whole."""
    if size <= MEMORY_BYTES:
        return PayloadFile(path, blobs.get(key))
    return PayloadFile(path, opener=functools.partial(blobs.open, key), size=size)


def collect_package_input(
    session: Session,
    letter: models.Letter,
    *,
    settings: Settings,
    blobs: BlobStore,
    now: datetime,
    letter_view: Callable[[models.Letter], dict[str, Any]],
) -> tuple[PackageInput, Ed25519PrivateKey]:
    """Everything ``letter``'s package holds, read from the database and the archive, and the key.

    Journals any proof not yet bound by the journal first (that write belongs to the caller's
    transaction). ``letter_view`` gives the letter as the API shows it (``data/letter.json``).
    """
    journal.record_proofs(session, letter)
    account = session.get(models.Account, letter.account_id)
    documents = list(
        session.scalars(
            select(models.Document).where(models.Document.letter_id == letter.id).order_by(models.Document.position)
        )
    )
    proofs = list(
        session.scalars(
            select(models.Proof).where(models.Proof.letter_id == letter.id).order_by(models.Proof.created_at)
        )
    )
    lines = journal.journal_lines(session, letter.id)
    records = [json.loads(line) for line in lines]
    key = load_signing_key(settings)

    payload: list[PayloadFile] = []
    summary_documents: list[SummaryFile] = []
    for doc in documents:
        path = f"documents/{doc.position + 1:02d}-{safe_path_part(doc.filename)}"
        payload.append(_archived(blobs, path, doc.storage_key, doc.size))
        summary_documents.append(SummaryFile("data/" + path, doc.sha256, doc.size))
    summary_proofs: list[SummaryFile] = []
    for proof in proofs:
        path = f"proofs/{safe_path_part(proof.kind)}-{safe_path_part(proof.filename)}"
        payload.append(_archived(blobs, path, proof.storage_key, proof.size))
        summary_proofs.append(SummaryFile("data/" + path, proof.sha256, proof.size, *proof_labels(proof.kind)))
    payload.append(PayloadFile("journal.jsonl", "".join(line + "\n" for line in lines).encode("utf-8")))
    payload.append(PayloadFile("access-log.jsonl", access_log_jsonl(access_records(session, letter.id))))
    view = json.dumps(letter_view(letter), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    payload.append(PayloadFile("letter.json", view.encode("utf-8")))

    day = (letter.deposited_at or letter.created_at).date()
    name = package_name(letter.template_name or (letter.metadata_ or {}).get("type"), recipient_display(letter), day)
    facts = SummaryFacts(
        bag=name,
        letter_id=letter.id,
        status=letter.status,
        reference=letter.reference,
        sender=f"{account.name} ({account.id})" if account else letter.account_id,
        recipient=recipient_display(letter),
        recipient_email=letter.recipient_email,
        provider=letter.provider,
        provider_letter_id=letter.provider_letter_id,
        created_at=journal.iso(letter.created_at),
        deposited_at=journal.iso(letter.deposited_at),
        completed_at=journal.iso(letter.completed_at),
        sealed_at=journal.iso(now) or "",
        key_fingerprint=key_fingerprint(key),
        key_url=public_key_url(settings, key_fingerprint(key)),
        documents=summary_documents,
        proofs=summary_proofs,
        timeline=[r for r in records if r.get("type") != "alert"],
        alerts=[r.get("message", "") for r in records if r.get("type") == "alert"],
    )
    text, html = render_summary(facts)
    payload += [PayloadFile("summary.txt", text), PayloadFile("summary.html", html)]

    bag_info = {
        "External-Description": f"Lettre recommandée électronique / Electronic registered letter {letter.id}",
        "Internal-Sender-Identifier": letter.reference or "",
        "Internal-Sender-Description": facts.sender,
        "LRE-Status": letter.status,
        "LRE-Recipient": facts.recipient,
        "LRE-Recipient-Email": letter.recipient_email,
        "LRE-Recipient-Type": letter.recipient_type,
        "LRE-Provider": letter.provider,
        "LRE-Provider-Letter-Id": letter.provider_letter_id or "",
        "LRE-Template": f"{letter.template_name} v{letter.template_version}" if letter.template_name else "",
        "LRE-Created-At": facts.created_at or "",
        "LRE-Deposited-At": facts.deposited_at or "",
        "LRE-Completed-At": facts.completed_at or "",
        "LRE-Seal-Key-SHA256": facts.key_fingerprint,
        "LRE-Seal-Key-URL": facts.key_url or "",
    }
    inp = PackageInput(
        name=name,
        letter_id=letter.id,
        payload=payload,
        bagging_date=now.date(),
        sealed_at=now,
        bag_info={k: v for k, v in bag_info.items() if v},
        public_key_url=facts.key_url,
    )
    return inp, key
