"""The public shapes of the monitoring answers: the KPIs (``GET /v1/kpis``) and an alert.

Closed models (``connector.shapes.Shape``): ``compute_kpis`` and ``alert_to_dict`` build their
answers through them, and the OpenAPI document publishes the same models' JSON Schema, so the
document cannot describe a field the answer lacks and a renamed field fails the suite.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from connector.shapes import DateTime, Shape

Rate = float | None  # a share in [0, 1]; null when its denominator is 0
Number = int | float  # an alert's value or threshold, written back as it was measured
Preset = Literal["24h", "7d", "30d"]  # a window ending now (connector.monitoring.kpis.PRESETS)
Grouping = Literal["day", "template", "batch"]
AlertStatus = Literal["open", "resolved"]


def _rate(description: str) -> Rate:
    return Field(description=description, ge=0, le=1)  # type: ignore[no-any-return]


def _date_time(description: str | None = None) -> DateTime:
    return Field(description=description, json_schema_extra={"format": "date-time"})  # type: ignore[no-any-return]


class KpiDelay(Shape):
    """Deposit to acceptance, in seconds, over the accepted letters (null when there are none)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None = Field(description="nearest rank")


class KpiNeglect(Shape):
    """Neglect over the delivered letters deposited 15 days or more ago (their window has closed)."""

    eligible: int
    neglected: int
    rate: Rate = _rate("neglected / eligible")


class KpiFigures(Shape):
    """The figures of one set of letters (the totals, or one group)."""

    letters: int
    by_status: dict[str, int]
    submitted: int = Field(description="letters that left the queue (every status but queued)")
    deposited: int = Field(description="deposited, accepted, refused, neglected or bounced")
    deliverability: Rate = _rate("deposited letters whose notification did not bounce / deposited")
    acceptance_delay_seconds: KpiDelay = Field(description="deposit to acceptance, accepted letters")
    refusal_rate: Rate = _rate("refused / (accepted + refused + neglected)")
    neglect: KpiNeglect = Field(description="over delivered letters deposited 15 days or more ago")
    technical_failure_rate: Rate = _rate("failed / submitted")


class KpiDelayBucket(Shape):
    """One bar of the acceptance-delay histogram."""

    label: str
    le_seconds: float | None = Field(description="upper bound; null for the last, open bucket")
    count: int


class KpiTotals(KpiFigures):
    """The figures of every letter of the window, with the acceptance-delay histogram."""

    acceptance_delay_distribution: list[KpiDelayBucket] = Field(description="totals only")


class _GroupKey(Shape):
    key: str | None = Field(description="day (YYYY-MM-DD), template or batch id")


class KpiGroup(KpiFigures, _GroupKey):
    """The figures of one group (``group_by``); ``key`` comes first, as the answer always wrote it."""


class Kpis(Shape):
    """The KPIs of the letters created in ``[from, to)``, as ``GET /v1/kpis`` returns them."""

    # ``from`` is a Python keyword: the field is ``from_``, read and written as ``from``.
    model_config = ConfigDict(serialize_by_alias=True)

    object: Literal["kpis"]
    from_: DateTime = Field(alias="from", json_schema_extra={"format": "date-time"})
    to: DateTime = _date_time()
    preset: Preset | None
    group_by: Grouping | None
    totals: KpiTotals
    groups: list[KpiGroup] | None = Field(default=None, description="only when group_by is given")


class Alert(Shape):
    """An alert, as the API, the ``alert.*`` events and the dashboard show it."""

    id: str
    object: Literal["alert"]
    rule: str = Field(description="an alert rule's key (or a one-off code)")
    label_fr: str
    label_en: str
    status: AlertStatus
    severity: Literal["warning", "critical"]
    message: str
    subject: str | None
    letter_id: str | None
    value: Number | None
    threshold: Number | None
    details: dict[str, Any]
    raised_at: DateTime = _date_time()
    last_seen_at: DateTime | None = _date_time()
    resolved_at: DateTime | None = _date_time()
