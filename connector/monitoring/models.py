"""Tables of the monitoring package: per-account alert rule settings, the KPI rollups and indexes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from connector.models import Base, Letter, utcnow


class AlertRuleSetting(Base):
    """An account's override of one alert rule's defaults (no row: the defaults apply)."""

    __tablename__ = "alert_rules"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    min_volume: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# The KPI reads of letters (the partial days at a window's edges, a day's delays) filter on
# (account, created_at) and read the status, the deposit date, the delay and the template: with all
# of them in one index, SQLite and PostgreSQL answer from the index without touching the table.
KPI_INDEX = Index(
    "ix_letters_kpi",
    Letter.account_id,
    Letter.created_at,
    Letter.status,
    Letter.deposited_at,
    Letter.completed_at,
    Letter.acceptance_delay_seconds,
    Letter.template_name,
)


class KpiDaily(Base):
    """Daily rollup of letters: how many of an account's letters created on ``day`` (UTC) from one
    template, in one batch, are in one status, by the day they were deposited.

    Maintained by connector.monitoring.rollups in the transaction that writes the letter (a flush
    hook), rebuilt by ``lre-bridge kpis rebuild``. Empty strings stand for "none" (no template, no
    batch, not deposited) so that every column can be part of the primary key the upserts target.
    ``deposit_day`` is what makes neglect exact: a letter's 15-day window closes with its deposit.
    """

    __tablename__ = "kpi_daily"
    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    template_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    deposit_day: Mapped[str] = mapped_column(String(10), primary_key=True)
    letters: Mapped[int] = mapped_column(Integer)
    # Accepted letters with both dates: the count and sum of their acceptance delays (seconds).
    delay_count: Mapped[int] = mapped_column(Integer)
    # In milliseconds, as an integer: sums and differences stay exact however many updates it sees.
    delay_sum_ms: Mapped[int] = mapped_column(BigInteger)


class KpiDelayDaily(Base):
    """Daily histogram of acceptance delays, in the fine buckets of
    ``connector.monitoring.rollups.DELAY_BOUNDS`` (about 4 % wide): the KPIs locate the median's and
    the p90's bucket here, then read the exact delay from ``ix_letters_acceptance_delay``."""

    __tablename__ = "kpi_delay_daily"
    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    template_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    letters: Mapped[int] = mapped_column(Integer)


# The k-th delay of a bucket within a window: the range scan stays inside one bucket of one account,
# and created_at (and the template, when grouping by it) is checked in the index.
ACCEPTANCE_DELAY_INDEX = Index("ix_letters_acceptance_delay", Letter.account_id, Letter.acceptance_delay_seconds,
                               Letter.created_at, Letter.template_name)
# Neglect at the edge of the 15-day window: the letters deposited on the cutoff's day, before it.
DEPOSITED_INDEX = Index("ix_letters_account_deposited", Letter.account_id, Letter.deposited_at)
