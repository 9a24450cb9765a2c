"""Tables of the monitoring package: per-account alert rule settings, and the index KPIs read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
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


# Every KPI query filters on (account, created_at) and reads status and the two dates: with all of
# them in one index, SQLite and PostgreSQL answer from the index without touching the table.
KPI_INDEX = Index(
    "ix_letters_kpi",
    Letter.account_id,
    Letter.created_at,
    Letter.status,
    Letter.deposited_at,
    Letter.completed_at,
)
