"""Batch tables: the batch, its common attachments, and one item per row (→ one letter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connector.models import Base, new_id, utcnow


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bat"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # processing → completed (every item at a final status); cancel_requested_at is set by a cancel.
    status: Mapped[str] = mapped_column(String(20), default="processing")
    template_name: Mapped[str | None] = mapped_column(String(100))
    template_version: Mapped[int | None] = mapped_column(Integer)
    template_origin: Mapped[str | None] = mapped_column(String(10))
    # Template data common to every row (a row's own values win).
    common_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    sandbox_outcome: Mapped[str | None] = mapped_column(String(20))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchDocument(Base):
    """A PDF every letter of the batch carries: the letter itself (``role="letter"``, when one PDF
    is sent to all) or a common attachment. Its bytes are archived once, under their hash."""

    __tablename__ = "batch_documents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bdoc"))
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # "letter" | "attachment"
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    __table_args__ = (UniqueConstraint("batch_id", "position"),)


class BatchItem(Base):
    """One row of the batch: a recipient and its template data; ``letter_id`` once the letter exists."""

    __tablename__ = "batch_items"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bit"))
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    # pending → created (its letter exists), or cancelled / failed before a letter was made.
    status: Mapped[str] = mapped_column(String(20), default="pending")
    recipient_type: Mapped[str] = mapped_column(String(20))
    recipient_email: Mapped[str] = mapped_column(String(320))
    recipient_first_name: Mapped[str | None] = mapped_column(String(200))
    recipient_last_name: Mapped[str | None] = mapped_column(String(200))
    recipient_company: Mapped[str | None] = mapped_column(String(300))
    legal_basis: Mapped[str | None] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    sandbox_outcome: Mapped[str | None] = mapped_column(String(20))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    letter_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # One letter per recipient per batch: a duplicate row would convene the same co-owner twice.
    __table_args__ = (UniqueConstraint("batch_id", "row_number"), UniqueConstraint("batch_id", "recipient_email"))
