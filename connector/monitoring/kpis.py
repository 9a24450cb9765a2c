"""KPIs of an account's letters over a window, optionally grouped by day, template or batch.

Letters are selected by ``created_at`` in ``[from, to)``. Every figure is computed by the database over
the ``ix_letters_kpi`` index (percentiles with a window function): a handful of rows come back,
whatever the number of letters.

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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, cast, func, literal, or_, select
from sqlalchemy import Float as SqlFloat
from sqlalchemy.orm import Session

from connector import shapes
from connector.models import Letter

STATUSES = ("queued", "deposited", "accepted", "refused", "neglected", "bounced", "failed")
DEPOSITED_STATUSES = frozenset({"deposited", "accepted", "refused", "neglected", "bounced"})
DECIDED_STATUSES = frozenset({"accepted", "refused", "neglected"})
# Letters the recipient was notified of: they can be accepted, refused or neglected.
DELIVERED_STATUSES = frozenset({"deposited", "accepted", "refused", "neglected"})
# CPCE art. R.53-3: the recipient has 15 days to accept or refuse; then the letter is neglected.
ACCEPTANCE_WINDOW = timedelta(days=15)
PRESETS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
GROUPINGS = ("day", "template", "batch")
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


@dataclass
class _Delays:
    """Acceptance-delay statistics of one group, as the database computed them."""

    count: int = 0
    total: float = 0.0
    # Delays at the ranks the median and the p90 need (rank → seconds).
    at_rank: dict[int, float] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        n = self.count
        if not n:
            return {"count": 0, "mean": None, "median": None, "p90": None}
        if n % 2:
            median = self.at_rank[(n + 1) // 2]
        else:
            median = (self.at_rank[n // 2] + self.at_rank[n // 2 + 1]) / 2
        return {"count": n, "mean": round(self.total / n, 1), "median": round(median, 1),
                "p90": round(self.at_rank[_p90_rank(n)], 1)}


def _p90_rank(n: int) -> int:
    """Nearest rank of the 90th percentile among ``n`` sorted values (1-based): ceil(0.9 n)."""
    return (9 * n + 9) // 10


@dataclass
class _Tally:
    """Raw counts for one group, turned into figures by :meth:`figures`."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    closed_delivered: int = 0
    closed_neglected: int = 0
    delays: _Delays = field(default_factory=_Delays)

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
            "acceptance_delay_seconds": self.delays.figures(),
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


def _day_expression(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Letter.created_at), "YYYY-MM-DD")
    # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff": the day is the first ten characters.
    return func.substr(Letter.created_at, 1, 10)


def _delay_expression(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", Letter.completed_at - Letter.deposited_at)
    return (func.julianday(Letter.completed_at) - func.julianday(Letter.deposited_at)) * 86400.0


def batch_items_table() -> Any:
    """The batch items model (issue 16's ``connector.batches``), or None on a bridge without batches.

    A letter belongs to a batch through ``batch_items.letter_id`` (unique): grouping by batch joins it.
    """
    try:
        from connector.batches.models import BatchItem
    except ImportError:
        return None
    return BatchItem


def _group_expression(group_by: str | None, dialect: str) -> ColumnElement[Any]:
    if group_by is None:
        return literal("")
    if group_by == "day":
        return _day_expression(dialect)
    if group_by == "template":
        return Letter.template_name
    if group_by == "batch":
        items = batch_items_table()
        if items is None:
            raise KpiQueryError("this bridge has no batches.", "group_by")
        return items.batch_id  # type: ignore[no-any-return]
    raise KpiQueryError(f"group_by must be one of {', '.join(GROUPINGS)}.", "group_by")


def _joined(query: Select[Any], group_by: str | None) -> Select[Any]:
    if group_by == "batch":
        items = batch_items_table()
        return query.outerjoin(items, items.letter_id == Letter.id)
    return query


def compute_kpis(session: Session, account_id: str, window: Window, now: datetime,
                 group_by: str | None = None) -> dict[str, Any]:
    """The KPIs of ``account_id``'s letters created in ``window``, as ``GET /v1/kpis`` returns them."""
    dialect = session.get_bind().dialect.name
    key = _group_expression(group_by, dialect).label("key")
    in_window = (Letter.account_id == account_id, Letter.created_at >= window.start,
                 Letter.created_at < window.end)
    closed = Letter.deposited_at <= now - ACCEPTANCE_WINDOW
    tallies: dict[Any, _Tally] = defaultdict(_Tally)
    counts: Select[Any] = (
        select(key, Letter.status, func.count(),
               func.sum(case((closed & Letter.status.in_(DELIVERED_STATUSES), 1), else_=0)))
        .where(*in_window).group_by(key, Letter.status)
    )
    counts = _joined(counts, group_by)
    for group, status, count, closed_count in session.execute(counts):
        tally = tallies[group]
        tally.by_status[status] = tally.by_status.get(status, 0) + count
        tally.closed_delivered += int(closed_count or 0)
        if status == "neglected":
            tally.closed_neglected += int(closed_count or 0)
    totals = _Tally()
    for tally in tallies.values():
        for status, count in tally.by_status.items():
            totals.by_status[status] += count
        totals.closed_delivered += tally.closed_delivered
        totals.closed_neglected += tally.closed_neglected
    accepted = (*in_window, Letter.status == "accepted", Letter.deposited_at.is_not(None),
                Letter.completed_at.is_not(None))
    delay = cast(_delay_expression(dialect), SqlFloat)
    if group_by is not None:
        for group, stats in _delay_statistics(session, key, delay, accepted, group_by).items():
            tallies[group].delays = stats
    totals.delays = _delay_statistics(session, literal(""), delay, accepted, None).get("", _Delays())
    distribution = _distribution(session, delay, accepted)
    result: dict[str, Any] = {
        "object": "kpis",
        "from": _iso(window.start),
        "to": _iso(window.end),
        "preset": window.preset,
        "group_by": group_by,
        "totals": {**totals.figures(), "acceptance_delay_distribution": distribution},
    }
    if group_by is not None:
        keys: list[Any] = sorted(tallies, key=lambda k: (k is None, str(k)))
        if group_by == "day":
            keys = _every_day(window)
        result["groups"] = [{"key": k, **tallies.get(k, _Tally()).figures()} for k in keys]
    return result


def _delay_statistics(session: Session, key: ColumnElement[Any], delay: ColumnElement[Any],
                      accepted: tuple[ColumnElement[bool], ...], group_by: str | None) -> dict[Any, _Delays]:
    """Count, sum, and the delays at the median's and p90's ranks, per value of ``key``.

    The ranks come from a window function, so the database sorts the delays and sends back at
    most four rows per group instead of every accepted letter (a year of a big account's letters).
    """
    stats: dict[Any, _Delays] = {}
    sums = _joined(select(key.label("key"), func.count(), func.sum(delay)).where(*accepted), group_by)
    for group, count, total in session.execute(sums.group_by(key)):
        stats[group] = _Delays(int(count), float(total or 0.0))
    if not stats:
        return stats
    ranked = _joined(select(
        key.label("key"), delay.label("delay"),
        func.row_number().over(partition_by=key, order_by=delay).label("rank"),
        func.count().over(partition_by=key).label("n"),
    ).where(*accepted), group_by).subquery()
    n, rank = ranked.c.n, ranked.c.rank
    wanted = select(ranked.c.key, rank, ranked.c.delay).where(
        or_(rank == (n + 1) // 2, rank == n // 2, rank == n // 2 + 1, rank == (n * 9 + 9) // 10))
    for group, at, value in session.execute(wanted):
        stats[group].at_rank[int(at)] = max(0.0, float(value))
    return stats


def _distribution(session: Session, delay: ColumnElement[Any],
                  accepted: tuple[ColumnElement[bool], ...]) -> list[dict[str, Any]]:
    """The acceptance-delay histogram (every bucket, empty ones as 0), counted by the database."""
    bucket = case(*((delay < upper, index) for index, (_, upper) in enumerate(DELAY_BUCKETS[:-1])),
                  else_=len(DELAY_BUCKETS) - 1).label("bucket")
    counts = dict(session.execute(select(bucket, func.count()).where(*accepted).group_by(bucket)).all())
    return [{"label": label, "le_seconds": None if math.isinf(upper) else upper, "count": int(counts.get(i, 0))}
            for i, (label, upper) in enumerate(DELAY_BUCKETS)]


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

