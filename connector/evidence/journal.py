"""The per-letter evidence journal: one canonical JSON line per fact, each chained to the last.

Each line is RFC 8785 canonical JSON and carries ``prev``, the SHA-256 of the previous line's
bytes (64 zeros for the first). Removing, reordering or editing any line breaks the chain, and the
package seal covers the last line's hash, so truncation is caught too.

``append_event`` is called by ``connector.letters.service.record_event`` inside the transaction that
changes the letter's status: a status change without its journal line cannot be committed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import models
from connector.evidence.formats import GENESIS_HASH, JOURNAL_FORMAT, canonical_json
from connector.evidence.retention import fix_retention
from connector.providers.base import FINAL_STATUSES

ETSI_EVENT_URI = "http://uri.etsi.org/19522/Event/"

# Our status word -> (ETSI EN 319 522-1 event, EN 319 522-2 reason code when it is unambiguous).
ETSI_EVENTS: dict[str, tuple[str | None, str | None]] = {
    # The bridge holds the letter; nothing has reached a qualified provider yet.
    "queued": (None, None),
    "deposited": ("SubmissionAcceptance", "RA01"),
    "notification": ("NotificationForAcceptance", "RC01"),
    "notified": ("NotificationForAcceptance", "RC01"),
    "accepted": ("ConsignmentAcceptance", "RC07"),
    "refused": ("ConsignmentRejection", "RC08"),
    "neglected": ("AcceptanceRejectionExpiry", "RC09"),
    # The notification e-mail could not be delivered: C.2. Providers do not say which of
    # RC03–RC06 applies, so no reason code is claimed.
    "bounced": ("NotificationForAcceptanceFailure", None),
    # The provider refused the submission (A.2); the reason is in the raw provider data.
    "failed": ("SubmissionRejection", None),
}


@dataclass(frozen=True, slots=True)
class JournalLine:
    seq: int
    text: str
    sha256: str


def line_sha256(text: str) -> str:
    """The hash the next line's ``prev`` must carry: SHA-256 of the line's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_line(record: Mapping[str, Any], *, seq: int, prev: str) -> JournalLine:
    """Canonicalise ``record`` plus the chain fields into one journal line (pure)."""
    body = dict(record)
    body.update({"format": JOURNAL_FORMAT, "seq": seq, "prev": prev})
    text = canonical_json(body).decode("utf-8")
    return JournalLine(seq=seq, text=text, sha256=line_sha256(text))


def chain(records: Sequence[Mapping[str, Any]]) -> list[JournalLine]:
    """Chain a list of records from the genesis hash (used for tests and rebuilds)."""
    lines: list[JournalLine] = []
    prev = GENESIS_HASH
    for seq, record in enumerate(records, start=1):
        line = chain_line(record, seq=seq, prev=prev)
        lines.append(line)
        prev = line.sha256
    return lines


_MAX_SAFE_INTEGER = 2**53 - 1


def jcs_safe(value: Any) -> Any:
    """Provider data made representable in RFC 8785: integers beyond 2^53, NaN, infinities and
    non-string keys become strings. A provider's odd payload must never stop a status change."""
    if isinstance(value, dict):
        return {str(k): jcs_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jcs_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z``; naive datetimes are taken as UTC (SQLite may return them)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def etsi_fields(event_type: str) -> dict[str, str | None]:
    """The ETSI EN 319 522 vocabulary for one of our event types (all null when there is none)."""
    name, reason = ETSI_EVENTS.get(event_type.removeprefix("letter."), (None, None))
    return {
        "etsi_event": name,
        "etsi_event_uri": ETSI_EVENT_URI + name if name else None,
        "etsi_reason": reason,
    }


# ---------------------------------------------------------------------------------------------
# Database side
# ---------------------------------------------------------------------------------------------


def append_event(
    session: Session,
    letter: models.Letter,
    event: models.Event,
    *,
    proofs: Sequence[models.Proof] | None = None,
    first_line: bool = False,
) -> None:
    """Journal ``event`` (and any proof stored for the letter since the last line).

    A caller that knows the proofs stored with this event passes them as ``proofs`` (else they are
    read back), and ``first_line=True`` when the letter was created in this transaction and has no
    journal yet: each saves a query on the send path (the unique constraint still rejects a fork).
    When the provider reported document hashes (``event.raw["reported_document_sha256"]``) that
    differ from the ones recorded at deposit, an ``Alert`` row and an ``alert`` line follow.
    A final status also fixes how long the letter's evidence is retained.
    """
    if event.seq is None or event.id is None:
        session.flush()  # ids and the global sequence are assigned at flush
    raw = jcs_safe(dict(event.raw or {}))
    documents = _document_records(session, letter.id, event)
    record: dict[str, Any] = {
        "type": event.type,
        **etsi_fields(event.type),
        "letter_id": letter.id,
        "event_id": event.id,
        "event_seq": event.seq,
        "status": (event.data or {}).get("status", letter.status),
        "occurred_at": iso(event.occurred_at),
        "recorded_at": iso(event.created_at or datetime.now(UTC)),
        "provider": event.provider,
        "provider_letter_id": letter.provider_letter_id,
        "provider_event_id": event.provider_event_id,
        "documents": documents,
        "proofs": [
            _proof_record(proof)
            for proof in (proofs if proofs is not None else _event_proofs(session, letter.id, event.id))
        ],
        "raw": raw,
    }
    _append(session, letter.id, record, first_line=first_line)
    reported = raw.get("reported_document_sha256")
    if reported:
        ours = [str(doc["sha256"]) for doc in documents]
        _check_reported_hashes(session, letter, event, ours, [str(h).lower() for h in reported])
    if letter.status in FINAL_STATUSES:  # the only time retention changes: skip the read otherwise
        account = session.get(models.Account, letter.account_id)
        if account is not None:
            fix_retention(letter, account)


def record_proofs(session: Session, letter: models.Letter) -> int:
    """Journal proofs stored after their event was journaled; returns how many were added.

    The package builder calls this so that every proof in a package is bound by the chain even
    if the core stored it after ``append_event`` ran.
    """
    proofs = _unjournaled_proofs(session, letter.id)
    if proofs:
        _append(
            session,
            letter.id,
            {
                "type": "proof.stored",
                **etsi_fields("proof.stored"),
                "letter_id": letter.id,
                "recorded_at": iso(datetime.now(UTC)),
                "proofs": [_proof_record(proof) for proof in proofs],
            },
        )
    return len(proofs)


def append_alert(session: Session, letter: models.Letter, code: str, message: str, details: Mapping[str, Any]) -> None:
    """Raise an operator alert about ``letter`` and journal it (same transaction)."""
    session.add(models.Alert(account_id=letter.account_id, letter_id=letter.id, code=code, message=message))
    _append(
        session,
        letter.id,
        {
            "type": "alert",
            **etsi_fields("alert"),
            "letter_id": letter.id,
            "recorded_at": iso(datetime.now(UTC)),
            "code": code,
            "message": message,
            **details,
        },
    )


def journal_lines(session: Session, letter_id: str) -> list[str]:
    """The letter's journal lines, in order (each a canonical JSON text without newline)."""
    rows = session.scalars(
        select(models.JournalEntry).where(models.JournalEntry.letter_id == letter_id).order_by(models.JournalEntry.seq)
    )
    return [row.line for row in rows]


def _append(session: Session, letter_id: str, record: Mapping[str, Any], *, first_line: bool = False) -> None:
    # The chain needs the last line's number and hash only, not its text (a letter's copy: kilobytes).
    last = None if first_line else session.execute(
        select(models.JournalEntry.seq, models.JournalEntry.line_sha256)
        .where(models.JournalEntry.letter_id == letter_id)
        .order_by(models.JournalEntry.seq.desc())
        .limit(1)
    ).first()
    prev, seq = (last.line_sha256, last.seq + 1) if last is not None else (GENESIS_HASH, 1)
    line = chain_line(record, seq=seq, prev=prev)
    # The (letter_id, seq) unique constraint turns a concurrent append into an error, never a fork.
    # Inserted with the transaction's next flush; a query for the journal autoflushes it first.
    session.add(models.JournalEntry(letter_id=letter_id, seq=seq, line=line.text, line_sha256=line.sha256))


def _check_reported_hashes(
    session: Session,
    letter: models.Letter,
    event: models.Event,
    document_hashes: Sequence[str],
    reported: list[str],
) -> None:
    ours = {h.lower() for h in document_hashes}
    unknown = [h for h in reported if h not in ours]
    if not unknown:
        return
    append_alert(
        session,
        letter,
        "document_hash_mismatch",
        f"{event.provider or letter.provider} reports document hashes that differ from the ones "
        f"recorded at deposit (event {event.id})",
        {"event_id": event.id, "expected_sha256": sorted(ours), "reported_sha256": reported},
    )


def _document_records(session: Session, letter_id: str, event: models.Event) -> list[dict[str, Any]]:
    """The letter's documents as journaled. The event already carries them (the letter as the API
    showed it at that moment, documents in position order): no second query on the send path."""
    shown = (event.data or {}).get("documents")
    if isinstance(shown, list) and all(isinstance(d, dict) and "sha256" in d for d in shown):
        return [
            {"position": index, "filename": d["filename"], "sha256": d["sha256"], "size": d["size"]}
            for index, d in enumerate(shown)
        ]
    return [_document_record(doc) for doc in _documents(session, letter_id)]


def _documents(session: Session, letter_id: str) -> list[models.Document]:
    return list(
        session.scalars(
            select(models.Document).where(models.Document.letter_id == letter_id).order_by(models.Document.position)
        )
    )


def _journaled_proof_hashes(session: Session, letter_id: str) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for text in journal_lines(session, letter_id):
        for proof in json.loads(text).get("proofs") or ():
            seen.add((proof["kind"], proof["sha256"]))
    return seen


def _event_proofs(session: Session, letter_id: str, event_id: str) -> list[models.Proof]:
    """The proofs stored with this event (the common case, one indexed query); a proof stored
    apart from its event is bound later by ``record_proofs``."""
    return list(
        session.scalars(
            select(models.Proof)
            .where(models.Proof.letter_id == letter_id, models.Proof.event_id == event_id)
            .order_by(models.Proof.created_at)
        )
    )


def _unjournaled_proofs(session: Session, letter_id: str) -> list[models.Proof]:
    proofs = session.scalars(
        select(models.Proof).where(models.Proof.letter_id == letter_id).order_by(models.Proof.created_at)
    )
    seen = _journaled_proof_hashes(session, letter_id)
    return [p for p in proofs if (p.kind, p.sha256) not in seen]


def _document_record(doc: models.Document) -> dict[str, Any]:
    return {"position": doc.position, "filename": doc.filename, "sha256": doc.sha256, "size": doc.size}


def _proof_record(proof: models.Proof) -> dict[str, Any]:
    return {"kind": proof.kind, "filename": proof.filename, "sha256": proof.sha256, "size": proof.size}
