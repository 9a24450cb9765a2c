"""Retention: how long a letter's evidence must be kept before it may be deleted.

A letter's retention end is fixed when it reaches a final status (completion date + the account's
retention at that time) and stored in ``Letter.retain_until``. Raising the account's retention
later extends every letter; lowering it only affects letters completed afterwards, so that no
change of setting can make evidence deletable earlier than promised when the letter ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, delete, select
from sqlalchemy.orm import Session

from connector import models
from connector.archive.models import ArchivedPackage
from connector.providers.base import FINAL_STATUSES
from connector.tables import metadata as schema

DEFAULT_RETENTION_DAYS = 3650
MIN_RETENTION_DAYS = 365
# Nothing is kept forever by accident: 100 years is beyond any French limitation period.
MAX_RETENTION_DAYS = 36500


def fix_retention(letter: models.Letter, account: models.Account) -> None:
    """Called when the letter reaches a final status: its evidence is kept at least this long."""
    if letter.status not in FINAL_STATUSES:
        return
    ends = _aware(letter.completed_at or letter.created_at) + timedelta(days=account.retention_days)
    if letter.retain_until is None or _aware(letter.retain_until) < ends:
        letter.retain_until = ends


def retention_ends_at(letter: models.Letter, account: models.Account) -> datetime | None:
    """When the letter may be deleted; None while it is not final (never deletable then)."""
    if letter.status not in FINAL_STATUSES:
        return None
    by_policy = _aware(letter.completed_at or letter.created_at) + timedelta(days=account.retention_days)
    fixed = _aware(letter.retain_until) if letter.retain_until else by_policy
    return max(fixed, by_policy)


def write_lock_until(letter: models.Letter, account: models.Account) -> datetime:
    """The storage lock to write a letter's document or proof with: a lower bound of its retention end.

    While the letter is in progress its end is not known, but it ends no sooner than it was created,
    so creation + the account's retention is never later than the end fixed then (unless the
    account's retention is lowered before the letter ends: see docs/evidence.md §7). Once the
    letter has ended, the exact end.
    """
    fixed = retention_ends_at(letter, account)
    if fixed is not None:
        return fixed
    return _aware(letter.created_at) + timedelta(days=account.retention_days)


def delete_letter(session: Session, letter: models.Letter) -> list[str]:
    """Delete the letter and everything recorded about it; returns the blob keys that no other
    row refers to any more (the caller deletes those blobs once the transaction is committed)."""
    keys = set(
        session.scalars(select(models.Document.storage_key).where(models.Document.letter_id == letter.id))
    ) | set(session.scalars(select(models.Proof.storage_key).where(models.Proof.letter_id == letter.id))) | set(
        session.scalars(select(ArchivedPackage.storage_key).where(ArchivedPackage.letter_id == letter.id))
    )
    for table in _letter_tables():
        session.execute(delete(table).where(table.c.letter_id == letter.id))
    session.delete(letter)
    session.flush()
    # Blobs are content-addressed: the same PDF sent twice is stored once.
    still_used: set[str] = set()
    for column in _blob_columns():
        still_used |= set(session.scalars(select(column).where(column.in_(keys))))
    return sorted(keys - still_used)


# Documents, proofs, journal and events refer to the letter by foreign key; so may tables added
# later (legal bases, batch rows): every table with a letter_id goes, children before parents.
_KNOWN_LETTER_TABLES = (
    ArchivedPackage,
    models.Document,
    models.Proof,
    models.JournalEntry,
    models.AccessLog,
    models.Alert,
    models.Delivery,
    models.Event,
)


def _letter_tables() -> list[Table]:
    letters = models.Letter.__table__
    known = {model.__table__ for model in _KNOWN_LETTER_TABLES}
    tables = []
    for table in reversed(schema.sorted_tables):
        column = table.columns.get("letter_id")
        if table is letters or column is None:
            continue
        if table in known or any(fk.column.table is letters for fk in column.foreign_keys):
            tables.append(table)
    return tables


def _blob_columns() -> list[Column[Any]]:
    """Every column that holds an archive key, in every table (what a blob may still be used by)."""
    return [column for table in schema.sorted_tables for column in table.columns
            if column.name.endswith("storage_key")]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
