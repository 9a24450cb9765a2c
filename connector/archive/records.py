"""``lre-bridge archive renew``: keep every ended letter's sealed package in the archive, bind the
packages' seals into time-stamped hash trees (evidence records), and add a new time-stamp over
each record before the certificate of its latest time-stamp expires.

The pure format and checks are in ``connector.evidence.record``; this module reads the database,
asks the TSA, and writes objects (each record version is a new, locked object).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import models
from connector.archive.models import ArchivedPackage, EvidenceRecord
from connector.evidence import formats
from connector.evidence.access import log_access
from connector.evidence.record import RECORD_FORMAT, TREE_RULE, audit_path, leaf_hash, tree_root
from connector.evidence.timestamp import TimestampInfo, verify_token
from connector.services import Services

TREE_FORMAT = "lre-bridge-evidence-tree/1"
# Renew when the latest time-stamp's certificate has less than this left: a TSA may be down for
# days, and an operator on holiday for weeks.
DEFAULT_MARGIN_DAYS = 180

Timestamper = Callable[[bytes], bytes]


class RenewError(Exception):
    """Renewal cannot run (no time-stamping authority configured, TSA refusal)."""


@dataclass
class RenewReport:
    packaged: list[str] = field(default_factory=list)  # letter ids newly packaged into the archive
    created: list[str] = field(default_factory=list)  # new evidence record ids
    renewed: list[str] = field(default_factory=list)  # record ids given a new time-stamp


def _canonical(document: dict[str, Any]) -> bytes:
    return formats.canonical_json(document)


def _ended_letters_without_package(session: Session) -> list[models.Letter]:
    packaged = select(ArchivedPackage.letter_id)
    return list(session.scalars(
        select(models.Letter)
        .where(models.Letter.retain_until.is_not(None), models.Letter.id.not_in(packaged))
        .order_by(models.Letter.created_at, models.Letter.id)
    ))


def archive_packages(services: Services, now: datetime, timestamper: Timestamper | None) -> list[str]:
    """Seal and store the package of every ended letter not yet in the archive."""
    from connector.evidence.assemble import collect_package_input
    from connector.evidence.package import write_package
    from connector.letters.service import letter_to_dict
    from connector.lib import spool

    done: list[str] = []
    with services.db.transaction() as session:
        letter_ids = [letter.id for letter in _ended_letters_without_package(session)]
    for letter_id in letter_ids:
        with services.db.transaction() as session:
            letter = session.get(models.Letter, letter_id)
            assert letter is not None
            log_access(session, account_id=letter.account_id, letter_id=letter.id, what="evidence_package",
                       who="archive (lre-bridge archive renew)")
            inp, key = collect_package_input(
                session, letter, settings=services.settings, blobs=services.blobs, now=now,
                letter_view=lambda row, s=session: letter_to_dict(s, row, services.settings.public_url),
            )
            # Through a temporary file: a package holds the letter's documents, whatever their size.
            with spool.temporary_file(services.settings.data_dir / "spool") as spooled:
                files = write_package(inp, key, spooled, timestamper)
                size = spooled.tell()
                spooled.seek(0)
                storage_key = services.blobs.put_stream(spooled, retain_until=letter.retain_until)
            session.add(ArchivedPackage(
                letter_id=letter.id, storage_key=storage_key, sha256=storage_key[7:],
                size=size, seal_sha256=hashlib.sha256(files[formats.SEAL_SIG]).hexdigest(),
                sealed_at=now,
            ))
        done.append(letter_id)
    return done


def _stamp(timestamper: Timestamper, data: bytes) -> tuple[bytes, TimestampInfo]:
    token = timestamper(data)
    return token, verify_token(token, data)


def _renew_before(info: TimestampInfo, fallback: datetime) -> datetime:
    return info.certificate_not_after or fallback


def create_record(services: Services, now: datetime, timestamper: Timestamper) -> str | None:
    """One new record over every archived package not yet in a record; None when there is none."""
    with services.db.transaction() as session:
        packages = list(session.scalars(
            select(ArchivedPackage).where(ArchivedPackage.record_id.is_(None)).order_by(ArchivedPackage.id)
        ))
        if not packages:
            return None
        leaves = [leaf_hash(p.seal_sha256) for p in packages]
        root = tree_root(leaves)
        token, info = _stamp(timestamper, root)
        record = EvidenceRecord(root_sha256=root.hex(), leaves=len(packages), storage_key="", timestamps=1,
                                last_timestamp_at=info.gen_time, renew_before=_renew_before(info, now))
        session.add(record)
        session.flush()
        tree = {
            "format": TREE_FORMAT,
            "record_id": record.id,
            "tree": TREE_RULE,
            "leaves": [{"letter_id": p.letter_id, "package_key": p.storage_key, "seal_sha256": p.seal_sha256}
                       for p in packages],
            "root_sha256": root.hex(),
            "archive_timestamps": [{"token": base64.b64encode(token).decode(), "over": "root"}],
        }
        record.storage_key = services.blobs.put(_canonical(tree), retain_until=_latest_retention(session, packages))
        for package in packages:
            package.record_id = record.id
        return record.id


def _latest_retention(session: Session, packages: list[ArchivedPackage]) -> datetime | None:
    ends = [session.get(models.Letter, p.letter_id).retain_until for p in packages]  # type: ignore[union-attr]
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def renew_record(services: Services, record_id: str, now: datetime, timestamper: Timestamper) -> None:
    """Add a time-stamp over the record's latest one and store the new version of the record."""
    with services.db.transaction() as session:
        record = session.get(EvidenceRecord, record_id, with_for_update=True)
        assert record is not None
        tree = json.loads(services.blobs.get(record.storage_key))
        previous = base64.b64decode(tree["archive_timestamps"][-1]["token"])
        token, info = _stamp(timestamper, previous)
        tree["archive_timestamps"].append({"token": base64.b64encode(token).decode(), "over": "previous"})
        packages = list(session.scalars(select(ArchivedPackage).where(ArchivedPackage.record_id == record.id)))
        record.storage_key = services.blobs.put(_canonical(tree), retain_until=_latest_retention(session, packages))
        record.timestamps = len(tree["archive_timestamps"])
        record.last_timestamp_at = info.gen_time
        record.renew_before = _renew_before(info, now)


def renew(
    services: Services,
    timestamper: Timestamper | None,
    *,
    now: datetime,
    margin: timedelta = timedelta(days=DEFAULT_MARGIN_DAYS),
    force: bool = False,
) -> RenewReport:
    """Package ended letters, put new packages in a record, renew records whose time-stamp
    certificate ends within ``margin`` (every record with ``force``)."""
    if timestamper is None:
        raise RenewError("no time-stamping authority: set LRE_TSA_URL (or LRE_TSA_URL_FILE) to an RFC 3161 TSA")
    report = RenewReport()
    report.packaged = archive_packages(services, now, timestamper)
    with services.db.transaction() as session:
        due = list(session.scalars(
            select(EvidenceRecord.id).where(EvidenceRecord.renew_before <= now + margin) if not force
            else select(EvidenceRecord.id)
        ))
    for record_id in due:
        renew_record(services, record_id, now, timestamper)
        report.renewed.append(record_id)
    created = create_record(services, now, timestamper)
    if created:
        report.created.append(created)
    return report


def letter_record(services: Services, letter_id: str) -> tuple[bytes, bytes]:
    """The archived package of a letter and its evidence record (the leaf, its path to the root,
    and the chain of time-stamps); KeyError when the letter has no record yet."""
    with services.db.transaction() as session:
        package = session.scalars(
            select(ArchivedPackage)
            .where(ArchivedPackage.letter_id == letter_id, ArchivedPackage.record_id.is_not(None))
            .order_by(ArchivedPackage.sealed_at.desc())
        ).first()
        if package is None:
            raise KeyError(letter_id)
        record = session.get(EvidenceRecord, package.record_id)
        assert record is not None
        package_key, record_key = package.storage_key, record.storage_key
    tree = json.loads(services.blobs.get(record_key))
    seals = [leaf["seal_sha256"] for leaf in tree["leaves"]]
    index = next(i for i, leaf in enumerate(tree["leaves"]) if leaf["package_key"] == package_key)
    document = {
        "format": RECORD_FORMAT,
        "record_id": tree["record_id"],
        "tree": tree["tree"],
        "leaf": {"letter_id": letter_id, "package_sha256": package_key[7:], "seal_sha256": seals[index]},
        "leaf_index": index,
        "tree_size": len(seals),
        "path": audit_path([leaf_hash(s) for s in seals], index),
        "root_sha256": tree["root_sha256"],
        "archive_timestamps": tree["archive_timestamps"],
    }
    return services.blobs.get(package_key), json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
