"""KPIs of an account's letters over a window, optionally grouped by day, template or batch.

Letters are selected by ``created_at`` in ``[from, to)``. The whole UTC days of the window are read
from the daily rollups (``kpi_daily``, ``kpi_delay_daily``, kept by connector.monitoring.rollups in
the letters' own transactions); the partial days at the two edges are counted from the letters
(``ix_letters_kpi``). Every figure is exact:

- counts, rates and the mean delay are sums of exact integers (delays in milliseconds);
- neglect: the rollups know each letter's deposit day; the letters deposited on the day the 15-day
  window closes are counted one by one against the exact cutoff;
- median and p90: the fine histogram locates the bucket holding the rank, then the k-th delay of
  that bucket in the window is read from ``ix_letters_acceptance_delay`` (a short index range); for
  a group of few letters (a day) the delays are read directly.

Definitions (also in the OpenAPI description of ``GET /v1/kpis``):

- ``submitted``: letters that left the queue (every status but ``queued``);
- ``deposited``: letters the provider deposited (deposited, accepted, refused, neglected, bounced);
- ``deliverability``: deposited letters whose notification did not bounce / deposited;
- ``acceptance_delay_seconds``: from deposit to acceptance, over accepted letters (mean, median,
  p90 by nearest rank: the smallest delay with at least 90 % of the delays at or below it);
- ``refusal_rate``: refused / letters the recipient decided on (accepted, refused, neglected);
- ``neglect_rate``: neglected / delivered letters whose 15-day acceptance window has closed
  (deposited 15 days or more before now), so a young letter never counts as neglected;
- ``technical_failure_rate``: failed / submitted.

A rate is ``null`` when its denominator is 0.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from sqlalchemy import ColumnElement, case, exists, func, literal, select
from sqlalchemy.orm import Session

from connector import shapes
from connector.batches.models import BatchItem
from connector.models import Letter
from connector.monitoring import rollups
from connector.monitoring.models import KpiDaily, KpiDelayDaily
from connector.monitoring.shapes import Grouping, Kpis, Preset

STATUSES = ("queued", "deposited", "accepted", "refused", "neglected", "bounced", "failed")
DEPOSITED_STATUSES = frozenset({"deposited", "accepted", "refused", "neglected", "bounced"})
DECIDED_STATUSES = frozenset({"accepted", "refused", "neglected"})
# Letters the recipient was notified of: they can be accepted, refused or neglected.
DELIVERED_STATUSES = frozenset({"deposited", "accepted", "refused", "neglected"})
# CPCE art. R.53-3: the recipient has 15 days to accept or refuse; then the letter is neglected.
ACCEPTANCE_WINDOW = timedelta(days=15)
PRESETS: dict[str, timedelta] = dict(zip(get_args(Preset), (timedelta(hours=24), timedelta(days=7), timedelta(days=30)),
                                         strict=True))
GROUPINGS: tuple[str, ...] = get_args(Grouping)
MAX_WINDOW = timedelta(days=366)
# Upper bounds (seconds) of the acceptance-delay histogram's buckets; the last one is open.
DELAY_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 h", 3600.0),
    ("1–6 h", 6 * 3600.0),
    ("6–24 h", 86400.0),
    ("1–2 j", 2 * 86400.0),
    ("2–4 j", 4 * 86400.0),
    ("4–7 j", 7 * 86400.0),
    ("7–15 j", math.inf),
)


class KpiQueryError(ValueError):
    """A window or grouping the KPIs cannot be computed for; ``field`` names the parameter."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _p90_rank(n: int) -> int:
    """Nearest rank of the 90th percentile among ``n`` sorted values (1-based): ceil(0.9 n)."""
    return (9 * n + 9) // 10


@dataclass
class _Tally:
    """Raw counts for one group, turned into figures by :meth:`figures`."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    closed_delivered: int = 0
    closed_neglected: int = 0
    delay_count: int = 0
    delay_sum_ms: int = 0
    # Fine delay bucket → letters (connector.monitoring.rollups.DELAY_BOUNDS).
    buckets: Counter[int] = field(default_factory=Counter)
    # Delays at the ranks the median and the p90 need (rank → seconds), filled by _percentiles.
    at_rank: dict[int, float] = field(default_factory=dict)

    def merge(self, other: _Tally) -> None:
        for status, count in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + count
        self.closed_delivered += other.closed_delivered
        self.closed_neglected += other.closed_neglected
        self.delay_count += other.delay_count
        self.delay_sum_ms += other.delay_sum_ms
        self.buckets.update(other.buckets)

    def delay_figures(self) -> dict[str, Any]:
        n = self.delay_count
        if not n:
            return {"count": 0, "mean": None, "median": None, "p90": None}
        if n % 2:
            median = self.at_rank[(n + 1) // 2]
        else:
            median = (self.at_rank[n // 2] + self.at_rank[n // 2 + 1]) / 2
        return {"count": n, "mean": round(self.delay_sum_ms / n / 1000, 1), "median": round(median, 1),
                "p90": round(self.at_rank[_p90_rank(n)], 1)}

    def figures(self) -> dict[str, Any]:
        counts = self.by_status
        total = sum(counts.values())
        submitted = total - counts["queued"]
        deposited = sum(counts[s] for s in DEPOSITED_STATUSES)
        decided = sum(counts[s] for s in DECIDED_STATUSES)
        return {
            "letters": total,
            "by_status": dict(counts),
            "submitted": submitted,
            "deposited": deposited,
            "deliverability": _rate(deposited - counts["bounced"], deposited),
            "acceptance_delay_seconds": self.delay_figures(),
            "refusal_rate": _rate(counts["refused"], decided),
            "neglect": {
                "eligible": self.closed_delivered,
                "neglected": self.closed_neglected,
                "rate": _rate(self.closed_neglected, self.closed_delivered),
            },
            "technical_failure_rate": _rate(counts["failed"], submitted),
        }


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC, and the preset it came from, if any."""

    start: datetime
    end: datetime
    preset: str | None = None


def resolve_window(now: datetime, preset: str | None, start: datetime | None, end: datetime | None) -> Window:
    """The window asked for: a preset (ending now), explicit ``from``/``to``, or the last 30 days."""
    if preset is not None:
        if preset not in PRESETS:
            raise KpiQueryError(f"preset must be one of {', '.join(PRESETS)}.", "preset")
        if start is not None or end is not None:
            raise KpiQueryError("give either preset or from/to, not both.", "preset")
        return Window(now - PRESETS[preset], now, preset)
    end = end or now
    start = start or end - PRESETS["30d"]
    if start >= end:
        raise KpiQueryError("from must be before to.", "from")
    if end - start > MAX_WINDOW:
        raise KpiQueryError("the window is at most 366 days long.", "from")
    return Window(start.astimezone(UTC), end.astimezone(UTC), None)


def batch_items_table() -> Any:
    """The batch items model: a letter belongs to a batch through ``batch_items.letter_id`` (unique)."""
    return BatchItem


# Below this many letters in a group's span of time, its delays are read directly (a day's worth);
# above, the median and p90 go through the histogram and one short index range per rank.
DIRECT_PERCENTILES_MAX = 20_000


def _midnight(value: datetime, up: bool = False) -> datetime:
    day = value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1) if up and day != value else day


def _group_of(group_by: str | None, created_at: datetime, template: str | None, batch: str | None) -> Any:
    if group_by == "day":
        return rollups.utc_day(created_at)
    if group_by == "template":
        return template or None
    if group_by == "batch":
        return batch or None
    return ""


def compute_kpis(session: Session, account_id: str, window: Window, now: datetime,
                 group_by: str | None = None, *, use_rollups: bool = True) -> dict[str, Any]:
    """The KPIs of ``account_id``'s letters created in ``window``, as ``GET /v1/kpis`` returns them.

    ``use_rollups=False`` counts every letter of the window one by one instead (the benchmark's
    baseline, and a cross-check: both give the same figures)."""
    if group_by is not None and group_by not in GROUPINGS:
        raise KpiQueryError(f"group_by must be one of {', '.join(GROUPINGS)}.", "group_by")
    cutoff = now - ACCEPTANCE_WINDOW
    tallies: dict[Any, _Tally] = defaultdict(_Tally)
    full_start, full_end = _midnight(window.start, up=True), _midnight(window.end)
    if full_start < full_end and use_rollups:
        _from_rollups(session, account_id, full_start, full_end, cutoff, group_by, tallies)
        edges = [(s, e) for s, e in ((window.start, full_start), (full_end, window.end)) if s < e]
    else:
        edges = [(window.start, window.end)]
    for start, end in edges:
        _from_letters(session, account_id, start, end, cutoff, group_by, tallies)
    totals = _Tally()
    for tally in tallies.values():
        totals.merge(tally)
    total_letters = sum(totals.by_status.values())
    _percentiles(session, account_id, window, totals, None, None, total_letters)
    if group_by is not None:
        for key, tally in tallies.items():
            span = sum(tally.by_status.values()) if group_by == "day" else total_letters
            _percentiles(session, account_id, window, tally, group_by, key, span)
    distribution = [0] * len(DELAY_BUCKETS)
    for bucket, count in totals.buckets.items():
        distribution[rollups.display_bucket(bucket)] += count
    result: dict[str, Any] = {
        "object": "kpis",
        "from": _iso(window.start),
        "to": _iso(window.end),
        "preset": window.preset,
        "group_by": group_by,
        "totals": {**totals.figures(), "acceptance_delay_distribution": [
            {"label": label, "le_seconds": None if math.isinf(upper) else upper, "count": distribution[i]}
            for i, (label, upper) in enumerate(DELAY_BUCKETS)]},
    }
    if group_by is not None:
        keys: list[Any] = sorted(tallies, key=lambda k: (k is None, str(k)))
        if group_by == "day":
            keys = _every_day(window)
        result["groups"] = [{"key": k, **tallies.get(k, _Tally()).figures()} for k in keys]
    # Through the published model: the answer and its OpenAPI schema (Kpis) cannot drift apart.
    return Kpis.dump(**result)


def _rollup_key(table: Any, group_by: str | None) -> ColumnElement[Any]:
    return {None: literal(""), "day": table.day, "template": table.template_name,
            "batch": table.batch_id}[group_by]  # type: ignore[no-any-return]


def _from_rollups(session: Session, account_id: str, start: datetime, end: datetime, cutoff: datetime,
                  group_by: str | None, tallies: dict[Any, _Tally]) -> None:
    """Whole days ``[start, end)`` from the rollups, and the letters deposited on the cutoff's day."""
    first, last, cutoff_day = rollups.utc_day(start), rollups.utc_day(end), rollups.utc_day(cutoff)
    empty_is_none = group_by in ("template", "batch")  # the rollups store "no template/batch" as ""
    key = _rollup_key(KpiDaily, group_by).label("key")
    closed = (KpiDaily.deposit_day != "") & (KpiDaily.deposit_day < cutoff_day)
    counts = (select(key, KpiDaily.status, func.sum(KpiDaily.letters), func.sum(KpiDaily.delay_count),
                     func.sum(KpiDaily.delay_sum_ms), func.sum(case((closed, KpiDaily.letters), else_=0)))
              .where(KpiDaily.account_id == account_id, KpiDaily.day >= first, KpiDaily.day < last)
              .group_by(key, KpiDaily.status))
    for group, status, letters, delay_count, delay_sum, closed_count in session.execute(counts):
        tally = tallies[(group or None) if empty_is_none else group]
        tally.by_status[status] = tally.by_status.get(status, 0) + int(letters or 0)
        tally.delay_count += int(delay_count or 0)
        tally.delay_sum_ms += int(delay_sum or 0)
        if status in DELIVERED_STATUSES:
            tally.closed_delivered += int(closed_count or 0)
            if status == "neglected":
                tally.closed_neglected += int(closed_count or 0)
    bucket_key = _rollup_key(KpiDelayDaily, group_by).label("key")
    histogram = (select(bucket_key, KpiDelayDaily.bucket, func.sum(KpiDelayDaily.letters))
                 .where(KpiDelayDaily.account_id == account_id, KpiDelayDaily.day >= first, KpiDelayDaily.day < last)
                 .group_by(bucket_key, KpiDelayDaily.bucket))
    for group, bucket, letters in session.execute(histogram):
        tallies[(group or None) if empty_is_none else group].buckets[int(bucket)] += int(letters or 0)
    # Deposited on the cutoff's day: closed only if deposited at or before the cutoff itself.
    edge = (select(Letter.created_at, Letter.template_name, BatchItem.batch_id, Letter.status)
            .outerjoin(BatchItem, BatchItem.letter_id == Letter.id)
            .where(Letter.account_id == account_id, Letter.deposited_at >= _midnight(cutoff),
                   Letter.deposited_at <= cutoff, Letter.created_at >= start, Letter.created_at < end,
                   Letter.status.in_(DELIVERED_STATUSES)))
    for created_at, template, batch, status in session.execute(edge):
        tally = tallies[_group_of(group_by, created_at, template, batch)]
        tally.closed_delivered += 1
        tally.closed_neglected += status == "neglected"


def _from_letters(session: Session, account_id: str, start: datetime, end: datetime, cutoff: datetime,
                  group_by: str | None, tallies: dict[Any, _Tally]) -> None:
    """Letters created in ``[start, end)`` (less than a day), counted one by one."""
    query = (select(Letter.created_at, Letter.template_name, BatchItem.batch_id, Letter.status, Letter.deposited_at,
                    Letter.acceptance_delay_seconds)
             .outerjoin(BatchItem, BatchItem.letter_id == Letter.id)
             .where(Letter.account_id == account_id, Letter.created_at >= start, Letter.created_at < end))
    for created_at, template, batch, status, deposited_at, delay in session.execute(query):
        tally = tallies[_group_of(group_by, created_at, template, batch)]
        tally.by_status[status] = tally.by_status.get(status, 0) + 1
        if status in DELIVERED_STATUSES and deposited_at is not None and deposited_at <= cutoff:
            tally.closed_delivered += 1
            tally.closed_neglected += status == "neglected"
        if delay is not None:
            tally.delay_count += 1
            tally.delay_sum_ms += round(delay * 1000)
            tally.buckets[rollups.delay_bucket(delay)] += 1


def _group_filter(window: Window, group_by: str | None, key: Any) -> tuple[ColumnElement[bool], ...]:
    start, end = window.start, window.end
    if group_by == "day":
        day = datetime.fromisoformat(key).replace(tzinfo=UTC)
        start, end = max(start, day), min(end, day + timedelta(days=1))
    conditions: list[ColumnElement[bool]] = [Letter.created_at >= start, Letter.created_at < end]
    if group_by == "template":
        conditions.append(Letter.template_name == key if key is not None else Letter.template_name.is_(None))
    elif group_by == "batch":
        in_batch = select(BatchItem.letter_id).where(BatchItem.batch_id == key)
        conditions.append(Letter.id.in_(in_batch) if key is not None
                          else ~exists().where(BatchItem.letter_id == Letter.id))
    return tuple(conditions)


def _percentiles(session: Session, account_id: str, window: Window, tally: _Tally, group_by: str | None,
                 key: Any, span: int) -> None:
    """Fill ``tally.at_rank`` with the exact delays at the median's and the p90's ranks."""
    n = tally.delay_count
    if not n:
        return
    ranks = sorted({(n + 1) // 2, n // 2 or 1, n // 2 + 1 if n > 1 else 1, _p90_rank(n)})
    conditions = (Letter.account_id == account_id, *_group_filter(window, group_by, key))
    if span <= DIRECT_PERCENTILES_MAX:
        # No condition on the delay (NULLs are dropped here): the planner then ranges over created_at
        # (ix_letters_kpi, a day of letters) rather than over an account's every delay.
        delays = sorted(d for d in session.scalars(select(Letter.acceptance_delay_seconds).where(*conditions))
                        if d is not None)
        for rank in ranks:
            tally.at_rank[rank] = max(0.0, float(delays[rank - 1]))
        return
    seen = 0
    wanted = iter(ranks)
    rank = next(wanted)
    for bucket in sorted(tally.buckets):
        count = tally.buckets[bucket]
        while rank is not None and rank <= seen + count:
            low, high = rollups.bucket_range(bucket)
            delay = Letter.acceptance_delay_seconds
            query = select(delay).where(*conditions, delay.is_not(None))
            if not math.isinf(low):
                query = query.where(delay >= low)
            if not math.isinf(high):
                query = query.where(delay < high)
            value = session.scalar(query.order_by(delay).offset(rank - seen - 1).limit(1))
            tally.at_rank[rank] = max(0.0, float(value if value is not None else low))
            rank = next(wanted, None)
        seen += count


def _every_day(window: Window) -> list[str]:
    """Each UTC day the window touches: a day without letters is shown as zeros, not skipped."""
    day = window.start.date()
    last = (window.end - timedelta(microseconds=1)).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


_iso = shapes.iso  # one timestamp format for every answer

