"""The database schema: one declarative model per table, shared by SQLite and PostgreSQL.

Alembic migrations in ``connector/migrations`` are generated from these classes; a test fails
when the two drift apart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A public identifier: a readable prefix plus 128 random bits (``let_…``, ``evt_…``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT on PostgreSQL, but INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("acc"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retention_days: Mapped[int] = mapped_column(Integer, default=3650)
    # Fernet-encrypted secret for the signed intake endpoint (the user's CRM/ERP → a letter).
    intake_secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Keys are shown once; only the SHA-256 is kept (keys are 192 random bits, no need for a KDF).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class DashboardSessionRow(Base):
    """One signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
    copy of the database opens no session. Sign-out deletes the row: a copied cookie is then refused."""

    __tablename__ = "dashboard_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Letter(Base):
    __tablename__ = "letters"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("let"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # active_history on the columns the KPI rollups read: their old value is loaded before a change,
    # so the flush hook (connector.monitoring.rollups) can take the letter out of its old rollup row.
    status: Mapped[str] = mapped_column(String(20), index=True, active_history=True)
    recipient_type: Mapped[str] = mapped_column(String(20))
    recipient_email: Mapped[str] = mapped_column(String(320), index=True)
    recipient_first_name: Mapped[str | None] = mapped_column(String(200))
    recipient_last_name: Mapped[str | None] = mapped_column(String(200))
    recipient_company: Mapped[str | None] = mapped_column(String(300))
    message: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    sandbox_outcome: Mapped[str | None] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20))
    provider_letter_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # Unguessable token in the provider callback URL (AR24 signs nothing).
    callback_token: Mapped[str | None] = mapped_column(String(80), unique=True)
    template_name: Mapped[str | None] = mapped_column(String(100), active_history=True)
    template_version: Mapped[int | None] = mapped_column(Integer)
    # Provider-specific data the submission needs but we must not keep in clear (e.g. OTP proof).
    submit_context_encrypted: Mapped[str | None] = mapped_column(Text)
    # Written (and committed) just before the provider is called: if set with no provider id,
    # a retry must first look the letter up at the provider ("never twice").
    submit_attempted_at: Mapped[datetime | None] = mapped_column(default=None)
    failure_code: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True, active_history=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deposited_at: Mapped[datetime | None] = mapped_column(default=None, active_history=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None, active_history=True)
    # Seconds from deposit to acceptance (rounded to the millisecond), set on accepted letters only by
    # connector.monitoring.rollups when the row is flushed: the exact median and p90 of the KPIs read
    # it through ix_letters_acceptance_delay.
    acceptance_delay_seconds: Mapped[float | None] = mapped_column(Float, default=None, active_history=True)
    next_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    retain_until: Mapped[datetime | None] = mapped_column(default=None)


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("doc"))
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str | None] = mapped_column(Text)
    # Never navigated (lazy="raise"): it tells the unit of work to insert the letter before its
    # documents when both go out in one flush, as the send path does.
    letter: Mapped[Letter] = relationship(lazy="raise")
    __table_args__ = (UniqueConstraint("letter_id", "position"),)


class Event(Base):
    __tablename__ = "events"
    # seq orders the feed (newest first) and per-letter delivery order.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, default=lambda: new_id("evt"))
    # Indexed by ix_events_account_seq (account, then the feed's order).
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    letter_id: Mapped[str | None] = mapped_column(ForeignKey("letters.id"), index=True)
    type: Mapped[str] = mapped_column(String(60), index=True)
    occurred_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_event_id: Mapped[str | None] = mapped_column(String(200))
    # The letter as the API showed it right after the transition (what subscribers receive).
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Never navigated: orders the insert after its letter's in a shared flush (see Document.letter).
    letter: Mapped[Letter | None] = relationship(lazy="raise")
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_event_provider_event"),
        # The feed and polling triggers read an account's events newest first: no sort of all of them.
        Index("ix_events_account_seq", "account_id", "seq"),
    )


class Proof(Base):
    __tablename__ = "proofs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prf"))
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("letter_id", "kind"),)


class Job(Base):
    """The durable outbox: every side effect (submit, poll, deliver a webhook) is a row here."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str | None] = mapped_column(String(40), index=True)
    letter_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # At most one live job per dedupe key (e.g. one submission per letter).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Jobs of one lane (e.g. "hook:<id>", one webhook receiver) share a per-destination limit in a
    # worker, and a lane's jobs for one letter run one at a time (see connector.delivery.worker).
    lane: Mapped[str | None] = mapped_column(String(80), default=None)
    __table_args__ = (
        # Partial indexes: done jobs pile up forever, the claim and the due-time query never read them.
        Index("ix_jobs_pending_due", "run_at", "id", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("ix_jobs_running_lease", "lease_until", postgresql_where=text("status = 'running'"),
              sqlite_where=text("status = 'running'")),
    )


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="in_flight")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # While in flight: the process doing the work ("host:pid:start") and until when it holds the key.
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()


class Consent(Base):
    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cns"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(40))
    obtained_at: Mapped[datetime] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    proof_filename: Mapped[str | None] = mapped_column(String(255))
    proof_sha256: Mapped[str | None] = mapped_column(String(64))
    proof_storage_key: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class TemplateVersion(Base):
    """A custom template uploaded by an account; every upload is a new immutable version."""

    __tablename__ = "template_versions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tpl"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300), default="")
    # What the letter is for, shown beside the title where a user picks a template (Zapier, Make, n8n).
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    source: Mapped[str] = mapped_column(Text)
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("account_id", "name", "version"),)


class Hook(Base):
    __tablename__ = "hooks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("hook"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    target_url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet-encrypted JSON list of {"secret", "expires_at"}; newest first.
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Subscribing the same target twice returns the first subscription, even when both arrive at once.
    __table_args__ = (UniqueConstraint("account_id", "target_url", name="uq_hook_account_target"),)


class Delivery(Base):
    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dlv"))
    hook_id: Mapped[str] = mapped_column(String(40), index=True)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event_seq: Mapped[int] = mapped_column(BigInteger)
    letter_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts_log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Every delivery attempt looks for the pending neighbours of the same hook and letter (ordering).
    __table_args__ = (
        Index("ix_deliveries_pending_order", "hook_id", "letter_id", "event_seq",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )


class InboundMessage(Base):
    """Ids of verified inbound webhooks, kept so that a replay is refused."""

    __tablename__ = "inbound_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(60))
    message_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("source", "message_id", name="uq_inbound_source_message"),)


class ProviderSettings(Base):
    __tablename__ = "provider_settings"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    settings_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SandboxMail(Base):
    """The sandbox provider's own side: what a real provider would hold in its database."""

    __tablename__ = "sandbox_mails"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sbx"))
    reference: Mapped[str] = mapped_column(String(40), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    recipient_email: Mapped[str] = mapped_column(String(320))
    documents_sha256: Mapped[list[Any]] = mapped_column(JSON, default=list)
    callback_url: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column()


class JournalEntry(Base):
    """One line of a letter's hash-chained evidence journal (canonical JSON, RFC 8785)."""

    __tablename__ = "journal_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    letter_id: Mapped[str] = mapped_column(ForeignKey("letters.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)
    line_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("letter_id", "seq"),)


class AccessLog(Base):
    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    letter_id: Mapped[str] = mapped_column(String(40), index=True)
    what: Mapped[str] = mapped_column(String(100))
    who: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """Something an operator must look at, e.g. a document hash the provider reports differently."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str | None] = mapped_column(String(40), index=True)
    letter_id: Mapped[str | None] = mapped_column(String(40), index=True)
    code: Mapped[str] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Alert rules (connector.monitoring.alerts) fill these; one-off alerts may leave them empty.
    # open_key is "<account>:<rule>:<subject>" while the alert is open and NULL once resolved: the
    # unique constraint is what makes a condition raise one alert, even with several workers.
    open_key: Mapped[str | None] = mapped_column(String(200), default=None)
    subject: Mapped[str | None] = mapped_column(String(200), default=None)
    severity: Mapped[str] = mapped_column(String(20), default="warning", server_default="warning")
    value: Mapped[float | None] = mapped_column(Float, default=None)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    clear_since: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("open_key", name="uq_alert_open_key"),)
