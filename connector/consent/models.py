"""Tables of the consent package (registered on ``connector.models.Base``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.models import Base, Letter, new_id, utcnow


class ConsentInvitation(Base):
    """A request sent to one person to consent to registered e-mail, and its answer with the proof.

    The link is ``/consent/<id>.<HMAC>``: nothing secret is stored, a changed character fails the
    MAC, and the status makes it single-use.
    """

    __tablename__ = "consent_invitations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cinv"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5), default="fr")
    # pending -> accepted | refused | expired; accepted -> withdrawn
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    email_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    email_error: Mapped[str | None] = mapped_column(Text)
    # The answer and its proof.
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    answer_ip: Mapped[str | None] = mapped_column(String(64))
    answer_user_agent: Mapped[str | None] = mapped_column(String(1000))
    text_version: Mapped[str | None] = mapped_column(String(40))
    text_language: Mapped[str | None] = mapped_column(String(5))
    text_sha256: Mapped[str | None] = mapped_column(String(64))
    text_shown: Mapped[str | None] = mapped_column(Text)
    consent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate_size: Mapped[int | None] = mapped_column(Integer)
    certificate_storage_key: Mapped[str | None] = mapped_column(String(300))
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawal_ip: Mapped[str | None] = mapped_column(String(64))
    withdrawal_user_agent: Mapped[str | None] = mapped_column(String(1000))


class AccountLegalBases(Base):
    """The legal bases an account has opted into beyond consent (today: the condominium basis)."""

    __tablename__ = "consent_legal_bases"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    condominium: Mapped[bool] = mapped_column(Boolean, default=False)
    condominium_enabled_at: Mapped[datetime | None] = mapped_column(default=None)
    condominium_enabled_by: Mapped[str | None] = mapped_column(String(200))
    # The syndic's statement that co-owners were told how to keep paper (art. 42-1, 3rd paragraph).
    condominium_statement: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaperRequest(Base):
    """A co-owner's request to receive notifications by post (loi n° 65-557 art. 42-1): blocks sends."""

    __tablename__ = "condominium_paper_requests"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ppr"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    requested_at: Mapped[datetime] = mapped_column()
    received_via: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200))


class LetterLegalBasis(Base):
    """Why a letter was allowed to go to its recipient, and whether it waits for a consent."""

    __tablename__ = "letter_legal_bases"
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    basis: Mapped[str] = mapped_column(String(20))
    consent_id: Mapped[str | None] = mapped_column(String(40))
    invitation_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # held (waiting for the invitation's answer) -> released | failed; None: never held.
    hold_status: Mapped[str | None] = mapped_column(String(20), index=True)
    checked_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    # Never navigated: orders the insert after its letter's in a shared flush.
    letter: Mapped[Letter] = relationship(lazy="raise")
