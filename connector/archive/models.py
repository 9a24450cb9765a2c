"""Tables of the long-term archive: sealed packages kept in the archive, and evidence records
(hash trees over those packages' seals, time-stamped and renewed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from connector.models import Base, UTCDateTime, new_id, utcnow


class EvidenceRecord(Base):
    """One hash tree over some packages' seals and its chain of time-stamps (RFC 4998 spirit).

    The record itself lives in the archive as JSON (``storage_key``, replaced by a new object at
    each renewal: objects are written once); these columns say when it must next be renewed.
    """

    __tablename__ = "evidence_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("er"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    root_sha256: Mapped[str] = mapped_column(String(64))
    leaves: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(300))
    timestamps: Mapped[int] = mapped_column(Integer, default=1)
    last_timestamp_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    # The certificate of the TSA that made the latest time-stamp stops being valid then: a new
    # time-stamp over it must be added before.
    renew_before: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))

    __table_args__ = (Index("ix_evidence_records_renew_before", "renew_before"),)


class ArchivedPackage(Base):
    """A letter's sealed evidence package, stored as an object of the archive."""

    __tablename__ = "archived_packages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pkg"))
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the package's seal/seal.sig: the leaf of the evidence record's hash tree.
    seal_sha256: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    record_id: Mapped[str | None] = mapped_column(ForeignKey("evidence_records.id"), default=None, index=True)
