"""Archive operations that are safe while the bridge serves: list what the database references,
re-hash it (verify), copy it to another store (migrate), and raise storage locks (lock).

Every operation reads the database for the list of objects, never the store's listing: the
question is always "is everything the database promises still there, byte for byte?". Objects
are written once and named by their hash, so a copy that is interrupted can simply run again:
what is already there (and re-hashes right) is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import null, select
from sqlalchemy.orm import Session

from connector import models
from connector.lib.failpoints import failpoint
from connector.lib.storage import CHUNK_BYTES, BlobCorrupted, BlobStore, digest_of
from connector.tables import metadata as schema

# Called after each object with (key, outcome) so that a command can draw its progress bar.
Progress = Callable[[str, str], None]


@dataclass
class ArchiveObject:
    """One object the database refers to: its key, the size recorded (if any), and the date
    until which it must be kept (None while no letter referring to it has ended)."""

    key: str
    size: int | None = None
    retain_until: datetime | None = None
    referenced_by: list[str] = field(default_factory=list)


def referenced_objects(session: Session) -> list[ArchiveObject]:
    """Every archive key in the database, from every ``*storage_key`` column of every table.

    Found through the metadata rather than a hand-kept list, so that a table added later (batch
    documents, consent certificates) is verified and migrated without anyone remembering to.
    """
    letters = models.Letter.__table__
    found: dict[str, ArchiveObject] = {}
    for table in schema.sorted_tables:
        letter_col = table.columns.get("letter_id") if table is not letters else None
        for column in table.columns:
            if not column.name.endswith("storage_key"):
                continue
            size_col = table.columns.get("size") if column.name == "storage_key" else None
            query = select(
                column,
                size_col if size_col is not None else null(),
                letters.c.retain_until if letter_col is not None else null(),
            ).where(column.is_not(None))
            if letter_col is not None:
                query = query.select_from(table.outerjoin(letters, letters.c.id == letter_col))
            for key, size, until in session.execute(query):
                item = found.setdefault(key, ArchiveObject(key))
                if size is not None:
                    item.size = int(size)
                if isinstance(until, datetime):
                    until = until if until.tzinfo else until.replace(tzinfo=UTC)
                    item.retain_until = max(item.retain_until or until, until)
                where = f"{table.name}.{column.name}"
                if where not in item.referenced_by:
                    item.referenced_by.append(where)
    return [found[key] for key in sorted(found)]


@dataclass
class VerifyReport:
    checked: int = 0
    bytes: int = 0
    missing: list[ArchiveObject] = field(default_factory=list)
    changed: list[tuple[ArchiveObject, str]] = field(default_factory=list)
    malformed: list[ArchiveObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.malformed)


def rehash(store: BlobStore, item: ArchiveObject) -> tuple[str, int]:
    """Read an object through (bounded memory) and return (outcome, bytes read): ``ok``,
    ``missing``, ``changed:<actual sha256>`` or ``size:<actual size>``."""
    digest = hashlib.sha256()
    size = 0
    try:
        with store.open(item.key) as reader:
            while chunk := reader.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except KeyError:
        return "missing", 0
    except BlobCorrupted as exc:
        return f"changed:{exc.actual}", size
    if digest.hexdigest() != digest_of(item.key):  # the reader checks this too; never trust one check
        return f"changed:{digest.hexdigest()}", size
    if item.size is not None and size != item.size:
        return f"size:{size}", size
    return "ok", size


def verify_archive(
    store: BlobStore, objects: Iterable[ArchiveObject], progress: Progress | None = None
) -> VerifyReport:
    """Re-hash every object against its key (and recorded size); report missing and changed ones."""
    report = VerifyReport()
    for item in objects:
        try:
            digest_of(item.key)
        except KeyError:
            report.malformed.append(item)
            continue
        outcome, size = rehash(store, item)
        report.checked += 1
        report.bytes += size
        if outcome == "missing":
            report.missing.append(item)
        elif outcome != "ok":
            report.changed.append((item, outcome))
        if progress:
            progress(item.key, outcome)
    return report


@dataclass
class MigrateReport:
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    failed: list[tuple[ArchiveObject, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def migrate_archive(
    source: BlobStore, target: BlobStore, objects: Iterable[ArchiveObject], progress: Progress | None = None
) -> MigrateReport:
    """Copy every object from ``source`` to ``target``, verifying each hash on both sides.

    Resumable: an object already in the target that re-hashes right is skipped. A source object
    that is missing or changed is reported and not copied (a damaged proof is never spread).
    """
    report = MigrateReport()
    for item in objects:
        if target.exists(item.key):
            outcome, _ = rehash(target, item)
            if outcome == "ok":
                report.already_there += 1
                if item.retain_until is not None:
                    target.retain(item.key, item.retain_until)
                if progress:
                    progress(item.key, "already there")
                continue
            report.failed.append((item, f"in the target but {outcome} (left as is: objects are written once)"))
            continue
        try:
            # The source reader checks the hash at the end of the stream, before the upload starts.
            with source.open(item.key) as reader:
                key = target.put_stream(reader, retain_until=item.retain_until)
        except KeyError:
            report.failed.append((item, "missing from the source"))
            continue
        except BlobCorrupted as exc:
            report.failed.append((item, f"changed in the source (now sha256:{exc.actual}); not copied"))
            continue
        outcome, size = rehash(target, item)
        if key != item.key or outcome != "ok":
            report.failed.append((item, f"copy did not verify: {outcome}"))
            continue
        report.copied += 1
        report.bytes_copied += size
        if progress:
            progress(item.key, "copied")
        failpoint("archive.migrate.after_copy")
    return report


def lock_archive(store: BlobStore, objects: Iterable[ArchiveObject]) -> int:
    """Raise the storage lock of every object to its letter's retention end; returns how many had
    one to apply (a storage without locks, the filesystem, ignores it)."""
    count = 0
    for item in objects:
        if item.retain_until is not None:
            store.retain(item.key, item.retain_until)
            count += 1
    return count
