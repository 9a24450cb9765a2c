"""The access log: who read which document or proof of a letter, and when.

Every read through the API writes a row; the rows travel in the evidence package as
``data/access-log.jsonl`` so that the chain of custody is part of the evidence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import models
from connector.evidence.formats import canonical_json
from connector.evidence.journal import iso


def reader_name(key_id: str, key_name: str | None) -> str:
    """How an API key appears in the log (same form as the letters API writes)."""
    return f"{key_id} ({key_name or 'api key'})"


def log_access(session: Session, *, account_id: str, letter_id: str, what: str, who: str) -> models.AccessLog:
    """Record one read. ``what`` is e.g. ``proof:deposit``, ``document:0``, ``evidence_package``."""
    row = models.AccessLog(account_id=account_id, letter_id=letter_id, what=what, who=who)
    session.add(row)
    return row


def access_records(session: Session, letter_id: str) -> list[dict[str, Any]]:
    """The letter's access log, oldest first."""
    rows = session.scalars(
        select(models.AccessLog)
        .where(models.AccessLog.letter_id == letter_id)
        .order_by(models.AccessLog.at, models.AccessLog.id)
    )
    return [{"at": iso(row.at), "what": row.what, "who": row.who} for row in rows]


def access_log_jsonl(records: list[dict[str, Any]]) -> bytes:
    """One canonical JSON object per line (the package's ``data/access-log.jsonl``)."""
    return b"".join(canonical_json(record) + b"\n" for record in records)
