"""Daily KPI rollups, kept in step with the letters in the transaction that writes them.

Every write of a letter row goes through a SQLAlchemy flush (``record_event`` is where statuses
change; creation, tests and the retention purge flush too). Two session hooks follow those writes:

- ``before_flush`` stamps ``letters.acceptance_delay_seconds`` on accepted letters and notes each
  changed letter's *old* rollup contribution (attribute history; the rollup columns have
  ``active_history`` so the old value is always known);
- ``after_flush`` takes the letters' new state from their objects (from the database for a letter
  whose object is not in the session with every counted column loaded) and adds the difference to
  the transaction's pending rollup changes;
- ``before_commit`` upserts them (``INSERT … ON CONFLICT DO UPDATE SET letters = letters +
  excluded.letters``) into ``kpi_daily`` and ``kpi_delay_daily`` as the transaction's last
  statements, in the same transaction: a rolled-back change leaves no trace.

Why at the commit and not at each flush: every letter of an account counts in the same few rollup
rows (its day, its status), so the upsert's row lock is the one lock that all of an account's
writers share. Taken at the flush, it was held through the rest of the transaction (journal lines,
events, deliveries, jobs): PostgreSQL's sessions spent most of their time waiting on it, and a
second worker process added a third of the first one's throughput instead of doubling it. Taken
last, it is held for the commit alone. Inside a savepoint the upsert still runs at the flush, so
that rolling the savepoint back takes its rollup change with it.

A letter joining a batch (``batch_items.letter_id`` set) moves its contribution to that batch.
Writes that bypass the ORM (bulk SQL) are not followed: ``lre-bridge kpis rebuild`` (and the
0010_h3 migration, for the letters that existed before it) recompute the rollups from the letters.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Numeric, cast, delete, event, func, inspect, literal_column, select, update
from sqlalchemy import Float as SqlFloat
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.util import identity_key

from connector.batches.models import BatchItem
from connector.models import Letter, new_id
from connector.monitoring.models import KpiDaily, KpiDelayDaily

# Bounds of the display histogram of GET /v1/kpis (1 h, 6 h, 1 d, 2 d, 4 d, 7 d): every one of them
# is also a bound of the fine buckets, so the display counts are exact sums of fine buckets.
DISPLAY_BOUNDS: tuple[float, ...] = (3600.0, 6 * 3600.0, 86400.0, 2 * 86400.0, 4 * 86400.0, 7 * 86400.0)
# Fine buckets: 1 s × 2^(i/16) (each about 4.4 % wider than the last) up to 16 days, plus the display
# bounds. Bucket b holds the delays in [DELAY_BOUNDS[b-1], DELAY_BOUNDS[b]); the first and last are open.
# Changing these bounds needs ``lre-bridge kpis rebuild``.
DELAY_BOUNDS: tuple[float, ...] = tuple(sorted(
    {round(2 ** (i / 16), 3) for i in range(0, 16 * 21) if 2 ** (i / 16) <= 16 * 86400} | set(DISPLAY_BOUNDS)))
_TRACKED = ("status", "created_at", "deposited_at", "completed_at", "template_name", "acceptance_delay_seconds")
_OLD_STATES = "lre_kpi_rollup_old_states"
_PENDING = "lre_kpi_rollup_pending"
# Letter id → its batch, as read from the database: a letter joins its batch in the transaction
# that creates it and never leaves it (ids are never reused), so what was read once stays true and
# a batch letter's later status changes need not read it again (a batch item moved to another letter,
# which only tests do, drops both letters here in this process). Letters in no batch are not kept
# (the one case where a later read could answer differently: the letter's own creating transaction).
# Bounded: cleared when full, at the cost of reading again.
_BATCH_OF: dict[str, str] = {}
_BATCH_OF_LIMIT = 50_000
_LOADED = frozenset(("account_id", *_TRACKED))


def delay_bucket(delay: float) -> int:
    """The fine bucket of an acceptance delay in seconds."""
    return bisect_right(DELAY_BOUNDS, delay)


def bucket_range(bucket: int) -> tuple[float, float]:
    """``[low, high)`` of a fine bucket (infinite at the two open ends)."""
    low = DELAY_BOUNDS[bucket - 1] if bucket > 0 else -math.inf
    high = DELAY_BOUNDS[bucket] if bucket < len(DELAY_BOUNDS) else math.inf
    return low, high


def display_bucket(bucket: int) -> int:
    """The display bucket (index into ``kpis.DELAY_BUCKETS``) a fine bucket falls in."""
    return bisect_right(DISPLAY_BOUNDS, bucket_range(bucket)[0])


def acceptance_delay(status: str | None, deposited_at: datetime | None, completed_at: datetime | None) -> float | None:
    """Seconds from deposit to acceptance, rounded to the millisecond; None unless accepted with both dates."""
    if status != "accepted" or deposited_at is None or completed_at is None:
        return None
    return round((completed_at - deposited_at).total_seconds(), 3)


def utc_day(value: datetime) -> str:
    """``YYYY-MM-DD`` of the UTC day ``value`` falls in (the rollups' day)."""
    return value.astimezone(UTC).date().isoformat()


class LetterState(NamedTuple):
    """What of a letter the rollups count."""

    account_id: str
    created_at: datetime
    template_name: str | None
    status: str
    deposited_at: datetime | None
    delay: float | None


class Deltas:
    """Rollup differences accumulated in memory, then written by :meth:`apply`."""

    def __init__(self) -> None:
        self.daily: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.delays: dict[tuple[Any, ...], int] = defaultdict(int)

    def add(self, state: LetterState, batch_id: str | None, sign: int) -> None:
        """Count ``state`` (in ``batch_id``) once more (``sign`` 1) or once less (-1)."""
        group = (state.account_id, utc_day(state.created_at), state.template_name or "", batch_id or "")
        deposit_day = utc_day(state.deposited_at) if state.deposited_at is not None else ""
        row = self.daily[(*group, state.status, deposit_day)]
        row[0] += sign
        if state.delay is not None:
            row[1] += sign
            row[2] += sign * round(state.delay * 1000)
            self.delays[(*group, delay_bucket(state.delay))] += sign

    def merge(self, other: Deltas) -> None:
        """Add ``other``'s differences to these."""
        for key, (n, count, total) in other.daily.items():
            row = self.daily[key]
            row[0] += n
            row[1] += count
            row[2] += total
        for key, n in other.delays.items():
            self.delays[key] += n

    def apply(self, conn: Connection) -> None:
        """Upsert the non-zero differences, in key order (two transactions never lock rows in
        opposite orders)."""
        daily = [dict(zip(("account_id", "day", "template_name", "batch_id", "status", "deposit_day"), key,
                          strict=True), letters=n, delay_count=count, delay_sum_ms=total)
                 for key, (n, count, total) in sorted(self.daily.items()) if (n, count, total) != (0, 0, 0)]
        delays = [dict(zip(("account_id", "day", "template_name", "batch_id", "bucket"), key, strict=True), letters=n)
                  for key, n in sorted(self.delays.items()) if n]
        for table, rows, summed in ((KpiDaily.__table__, daily, ("letters", "delay_count", "delay_sum_ms")),
                                    (KpiDelayDaily.__table__, delays, ("letters",))):
            if not rows:
                continue
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
            statement = insert.on_conflict_do_update(
                index_elements=[c.name for c in table.primary_key.columns],
                set_={name: table.c[name] + insert.excluded[name] for name in summed})
            conn.execute(statement, rows)


def _old_value(letter: Letter, name: str) -> Any:
    history = inspect(letter).attrs[name].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return None


def _old_state(letter: Letter) -> LetterState | None:
    created_at = _old_value(letter, "created_at")
    if created_at is None:
        return None
    return LetterState(letter.account_id, created_at, _old_value(letter, "template_name"), _old_value(letter, "status"),
                       _old_value(letter, "deposited_at"), _old_value(letter, "acceptance_delay_seconds"))


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    # letter id → its old contribution (None: it is new) and, for batch moves, its old batch.
    old: dict[str, Any] = session.info.setdefault(_OLD_STATES, {})
    for obj in session.new:
        if isinstance(obj, Letter):
            obj.acceptance_delay_seconds = acceptance_delay(obj.status, obj.deposited_at, obj.completed_at)
            if obj.id is None:  # the column default would only run in the flush: the hook needs it now
                obj.id = new_id("let")
            old.setdefault(obj.id, {})["state"] = None
        elif isinstance(obj, BatchItem) and obj.letter_id is not None:
            old.setdefault(obj.letter_id, {}).setdefault("batch", "")
    for obj in session.dirty:
        if isinstance(obj, Letter):
            delay = acceptance_delay(obj.status, obj.deposited_at, obj.completed_at)
            if obj.acceptance_delay_seconds != delay:
                obj.acceptance_delay_seconds = delay
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _TRACKED):
                old.setdefault(obj.id, {}).setdefault("state", _old_state(obj))
        elif isinstance(obj, BatchItem):
            history = inspect(obj).attrs["letter_id"].history
            if history.has_changes():
                for letter_id in history.deleted:
                    if letter_id is not None:
                        old.setdefault(letter_id, {}).setdefault("batch", obj.batch_id)
                        _BATCH_OF.pop(letter_id, None)
                for letter_id in history.added:
                    if letter_id is not None:
                        old.setdefault(letter_id, {}).setdefault("batch", "")
                        _BATCH_OF.pop(letter_id, None)
    for obj in session.deleted:
        if isinstance(obj, Letter):
            old.setdefault(obj.id, {}).setdefault("state", _old_state(obj))
        elif isinstance(obj, BatchItem) and obj.letter_id is not None:
            old.setdefault(obj.letter_id, {}).setdefault("batch", obj.batch_id)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    old: dict[str, Any] = session.info.pop(_OLD_STATES, {})
    if not old:
        return
    conn = session.connection()
    ids = sorted(old)
    # The new state of a letter the flush just wrote is in its object; only the others are read back
    # (one query fewer per flush: a new letter and a status change are the rollups' common writes).
    new: dict[str, LetterState] = {}
    unread = []
    # Inserted objects join the identity map only after this hook: look for them among the new ones.
    inserted = {obj.id: obj for obj in session.new if isinstance(obj, Letter)}
    for letter_id in ids:
        state = _state_in_session(session, letter_id, inserted.get(letter_id))
        if state is None:
            unread.append(letter_id)
        else:
            new[letter_id] = state
    if unread:
        for row in conn.execute(select(Letter.id, Letter.account_id, Letter.created_at, Letter.template_name,
                                       Letter.status, Letter.deposited_at, Letter.acceptance_delay_seconds)
                                .where(Letter.id.in_(unread))):
            new[row[0]] = LetterState(*row[1:])
    # A letter created in this flush belongs to no batch yet unless a batch item of this flush says so
    # (then its id has a "batch" entry): only the others' batches are read.
    created = {letter_id for letter_id in ids if old[letter_id] == {"state": None}}
    in_batch = [letter_id for letter_id in ids if letter_id not in created]
    # A batch item this session holds answers for its letter (``letter_id`` is unique): a batch job
    # setting a row's letter needs no read back; only the letters without one here are read.
    batches = _batches_in_session(session, in_batch)
    batches.update((letter_id, _BATCH_OF[letter_id]) for letter_id in in_batch
                   if letter_id not in batches and letter_id in _BATCH_OF)
    unknown = [letter_id for letter_id in in_batch if letter_id not in batches]
    if unknown:
        found = conn.execute(select(BatchItem.letter_id, BatchItem.batch_id)
                             .where(BatchItem.letter_id.in_(unknown))).all()
        batches.update(found)
        _remember_batches(found)
    deltas = Deltas()
    for letter_id in ids:
        before = old[letter_id]
        now_state = new.get(letter_id)
        now_batch = batches.get(letter_id, "")
        old_state = before["state"] if "state" in before else now_state  # a batch move: the letter is as it was
        if old_state is not None:
            deltas.add(old_state, before.get("batch", now_batch), -1)
        if now_state is not None:
            deltas.add(now_state, now_batch, 1)
    if session.in_nested_transaction():
        deltas.apply(conn)  # a savepoint rolled back must take its rollup change with it
    else:
        session.info.setdefault(_PENDING, Deltas()).merge(deltas)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # Also called when a savepoint commits: its flushes applied their own changes already.
    if session.in_nested_transaction():
        return
    # The commit would flush what is left after this hook: flushed now, its changes are counted too
    # (a flush with nothing to write costs nothing).
    session.flush()
    pending: Deltas | None = session.info.pop(_PENDING, None)
    if pending is not None:
        pending.apply(session.connection())


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction ended: committed (applied) or rolled back
        session.info.pop(_PENDING, None)


def _remember_batches(found: Any) -> None:
    if len(_BATCH_OF) + len(found) > _BATCH_OF_LIMIT:
        _BATCH_OF.clear()
    _BATCH_OF.update((str(letter_id), str(batch_id)) for letter_id, batch_id in found)


def _batches_in_session(session: Session, letter_ids: list[str]) -> dict[str, str]:
    """Letter id → batch id for those of ``letter_ids`` whose batch item is in ``session`` as just
    flushed (loaded columns only, never a lazy load inside the flush; deleted items left out)."""
    wanted = set(letter_ids)
    found: dict[str, str] = {}
    if not wanted:
        return found
    for obj in [*session.identity_map.values(), *session.new]:
        if not isinstance(obj, BatchItem) or obj in session.deleted:
            continue
        state = inspect(obj)
        letter_id, batch_id = state.dict.get("letter_id"), state.dict.get("batch_id")
        if not (state.deleted or state.was_deleted) and letter_id in wanted and batch_id is not None:
            found[letter_id] = batch_id
    return found


def _state_in_session(session: Session, letter_id: str, inserted: Letter | None) -> LetterState | None:
    """``letter_id``'s state from its object in ``session`` (``inserted``: the one this flush inserted),
    as just flushed; None when the object is not there, is deleted, or has a counted column not loaded
    (then it is read from the database)."""
    letter = inserted if inserted is not None else session.identity_map.get(identity_key(Letter, letter_id))
    if not isinstance(letter, Letter):
        return None
    state = inspect(letter)
    if state.deleted or state.was_deleted or letter in session.deleted or not _LOADED.issubset(state.dict):
        return None
    return LetterState(letter.account_id, letter.created_at, letter.template_name, letter.status,
                       letter.deposited_at, letter.acceptance_delay_seconds)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_OLD_STATES, None)
    # The pending changes are dropped when the session's own transaction ends (a savepoint's
    # rollback fires this hook too, and must not take the enclosing transaction's changes).


def _day_expression(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        # Literals, not parameters: the same expression is in GROUP BY, and PostgreSQL compares text.
        return func.to_char(func.timezone(literal_column("'UTC'"), column), literal_column("'YYYY-MM-DD'"))
    # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff": the day is the first ten characters.
    return func.substr(column, 1, 10)


def _delay_sql(dialect: str) -> Any:
    if dialect == "postgresql":
        seconds = func.extract("epoch", Letter.completed_at - Letter.deposited_at)
    else:
        seconds = (func.julianday(Letter.completed_at) - func.julianday(Letter.deposited_at)) * 86400.0
    return cast(func.round(cast(seconds, Numeric), 3), SqlFloat)


def rebuild(conn: Connection, account_id: str | None = None) -> int:
    """Recompute ``acceptance_delay_seconds`` and both rollup tables from the letters (all accounts,
    or one); returns the number of letters counted. Streams the letters: memory holds the rollups,
    not the letters."""
    dialect = conn.dialect.name
    only = (Letter.account_id == account_id,) if account_id is not None else ()
    conn.execute(update(Letter).where(*only, Letter.status == "accepted", Letter.deposited_at.is_not(None),
                                      Letter.completed_at.is_not(None))
                 .values(acceptance_delay_seconds=_delay_sql(dialect)))
    conn.execute(update(Letter).where(*only, Letter.acceptance_delay_seconds.is_not(None),
                                      (Letter.status != "accepted") | Letter.deposited_at.is_(None)
                                      | Letter.completed_at.is_(None))
                 .values(acceptance_delay_seconds=None))
    for table in (KpiDaily, KpiDelayDaily):
        conn.execute(delete(table).where(*((table.account_id == account_id,) if account_id is not None else ())))
    daily: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    delays: dict[tuple[Any, ...], int] = defaultdict(int)
    query = (select(Letter.account_id, _day_expression(Letter.created_at, dialect), Letter.template_name,
                    BatchItem.batch_id, Letter.status, _day_expression(Letter.deposited_at, dialect),
                    Letter.acceptance_delay_seconds, func.count())
             .outerjoin(BatchItem, BatchItem.letter_id == Letter.id).where(*only)
             .group_by(Letter.account_id, _day_expression(Letter.created_at, dialect), Letter.template_name,
                       BatchItem.batch_id, Letter.status, _day_expression(Letter.deposited_at, dialect),
                       Letter.acceptance_delay_seconds))
    counted = 0
    # Per-statement options: Connection.execution_options() would change the connection for good.
    for account, day, template, batch, status, deposit_day, delay, count in conn.execute(
            query, execution_options={"stream_results": True, "yield_per": 20000}):
        group = (account, day, template or "", batch or "")
        row = daily[(*group, status, deposit_day or "")]
        row[0] += count
        counted += count
        if delay is not None:
            row[1] += count
            row[2] += count * round(delay * 1000)
            delays[(*group, delay_bucket(delay))] += count
    deltas = Deltas()
    deltas.daily, deltas.delays = daily, delays
    deltas.apply(conn)
    return counted
