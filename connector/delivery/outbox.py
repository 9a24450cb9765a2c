"""The durable outbox: jobs written in the same transaction as the data they act on.

A worker claims one due job with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
conditional ``UPDATE`` checked by row count everywhere), runs its handler *outside* any database
transaction, and marks it done only after the handler returned. A worker that dies leaves the
lease to expire; the next claim runs the job again, so handlers must be safe to re-run (the
submit handler looks the letter up at the provider first, see ``connector.letters.service``).
Failures back off exponentially with jitter; after ``max_attempts`` or a permanent error the
job is dead-lettered with its reason kept.

Each kind runs in a named pool of a worker (``job_handler(kind, pool=...)``: provider calls,
webhook deliveries, renders), so a slow kind never holds up another; a job's ``lane`` (one
webhook receiver, say) is a per-destination limit inside its pool. Writing a job wakes workers
at commit (``connector.delivery.wakeup``).
"""

from __future__ import annotations

import logging
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, literal_column, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from connector.delivery import wakeup
from connector.letters.vocabulary import JobStatus
from connector.models import Job, utcnow

if TYPE_CHECKING:
    from connector.services import Services

log = logging.getLogger(__name__)

Handler = Callable[["Services", Job], None]
DeadHandler = Callable[["Services", Job, str], None]
HANDLERS: dict[str, Handler] = {}
DEAD_HANDLERS: dict[str, DeadHandler] = {}
ClaimHook = Callable[[Session, Job], None]
# Run inside the claim's transaction for each job of the kind (e.g. mark a submission attempt).
CLAIM_HOOKS: dict[str, ClaimHook] = {}
# What a claim hook noted for the handler of the same run (held only while the job object lives).
_CLAIM_NOTES: weakref.WeakKeyDictionary[Job, Any] = weakref.WeakKeyDictionary()
# The worker pool each kind runs in (kinds not listed, and unknown kinds, run in DEFAULT_POOL).
POOLS: dict[str, str] = {}
DEFAULT_POOL = "default"


class Reschedule(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a handler: not done yet, run again in ``delay`` seconds (no attempt counted)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"rescheduled in {delay}s")
        self.delay = delay


class RetryableError(Exception):
    """A transient failure; ``retry_after`` (seconds) overrides the backoff when given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure retrying cannot fix: the job goes straight to the dead letters."""


def job_handler(kind: str, *, on_dead: DeadHandler | None = None, pool: str = DEFAULT_POOL,
                on_claim: ClaimHook | None = None) -> Callable[[Handler], Handler]:
    """Register the handler of one job kind (and, optionally, what to do when it dies).

    ``on_claim(session, job)`` runs in the transaction that takes the job's lease, so what it writes
    is committed before the handler starts, without a commit of its own (it may leave the handler
    a value with :func:`note_claim`).

    ``pool``: the worker pool it runs in ("provider", "delivery", "render" or "default"; see
    ``connector.delivery.worker.POOL_SIZES``), so that slow work of one kind never delays another kind.
    """

    def register(func: Handler) -> Handler:
        HANDLERS[kind] = func
        POOLS[kind] = pool
        if on_dead is not None:
            DEAD_HANDLERS[kind] = on_dead
        if on_claim is not None:
            CLAIM_HOOKS[kind] = on_claim
        return func

    return register


def enqueue(
    session: Session,
    kind: str,
    *,
    payload: dict[str, Any] | None = None,
    account_id: str | None = None,
    letter_id: str | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 10,
    new: bool = False,
    lane: str | None = None,
) -> Job:
    """Add a job in the caller's transaction. With ``dedupe_key``, an existing job of that key is
    revived (made pending, due no later than ``run_at``) instead of creating a second one;
    ``new=True`` says the key cannot exist yet (the unique constraint still guards it).
    ``lane``: the destination it shares a per-destination limit with (e.g. ``hook:<id>``).
    A new job has its id once the session flushes; workers are woken when the transaction commits."""
    now = utcnow()
    due = run_at or now
    wakeup.mark(session, due)
    if dedupe_key is not None and not new:
        existing = session.scalar(select(Job).where(Job.dedupe_key == dedupe_key))
        if existing is not None:
            if existing.status in (JobStatus.DONE, JobStatus.DEAD):
                existing.status = JobStatus.PENDING
                existing.attempts = 0
                existing.run_at = due
                existing.finished_at = None
            elif existing.status == JobStatus.PENDING and existing.run_at > due:
                existing.run_at = due
            if payload is not None:
                existing.payload = payload
            return existing
    job = Job(
        kind=kind,
        payload=payload or {},
        account_id=account_id,
        letter_id=letter_id,
        run_at=due,
        dedupe_key=dedupe_key,
        max_attempts=max_attempts,
        created_at=now,
        lane=lane,
    )
    # No flush: the job goes out with the transaction's other inserts (a later query in the same
    # transaction autoflushes it, so a second enqueue of the same key still finds it).
    session.add(job)
    return job


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 3600.0) -> float:
    """Exponential backoff with "equal jitter": between half and all of base·2^(attempts-1)."""
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Exclusions:
    """What a worker cannot take right now: kinds whose pool is full, lanes at their limit, and the
    (lane, letter) pairs it is running (a lane's jobs for one letter run one at a time, in order)."""

    kinds: frozenset[str] = frozenset()
    lanes: frozenset[str] = frozenset()
    lane_letters: frozenset[tuple[str, str]] = frozenset()
    # The jobs the worker is running: a lease it let expire must not hand it its own job again.
    job_ids: frozenset[int] = frozenset()

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.job_ids:
            conditions.append(Job.id.not_in(sorted(self.job_ids)))
        if self.kinds:
            conditions.append(Job.kind.not_in(sorted(self.kinds)))
        if self.lanes:
            conditions.append(or_(Job.lane.is_(None), Job.lane.not_in(sorted(self.lanes))))
        for lane, letter_id in sorted(self.lane_letters):
            conditions.append(or_(Job.lane.is_(None), Job.letter_id.is_(None),
                                  ~and_(Job.lane == lane, Job.letter_id == letter_id)))
        return conditions


NOTHING_EXCLUDED = Exclusions()
# Written inline, not bound: a partial index (WHERE status = 'pending') only serves a query whose
# condition the planner can see is the same (SQLite never, PostgreSQL not in a generic plan).
IS_PENDING = Job.status == literal_column("'pending'")
IS_RUNNING = Job.status == literal_column("'running'")


def _claimable(now: datetime) -> tuple[tuple[ColumnElement[bool], ColumnElement[bool], Any], ...]:
    """The two ways a job is due, each served by its partial index: a running job whose lease expired
    (its worker died: take it over; looked at first so that a busy queue cannot starve it), and a
    pending job whose time has come."""
    return (
        (IS_RUNNING, (Job.lease_until < now), Job.lease_until),
        (IS_PENDING, (Job.run_at <= now), Job.run_at),
    )


@dataclass(frozen=True)
class Candidate:
    """A due job as a claim sees it before taking it (what a worker's limits are about)."""

    id: int
    kind: str
    lane: str | None
    letter_id: str | None


Picker = Callable[[list[Candidate]], list[int]]


def claim(services: Services, owner: str, *, now: datetime | None = None,
          kinds: tuple[str, ...] | None = None, exclude: Exclusions = NOTHING_EXCLUDED) -> Job | None:
    """Take the lease on one due job, or return None. Safe with any number of workers."""
    jobs = claim_many(services, owner, 1, now=now, kinds=kinds, exclude=exclude)
    return jobs[0] if jobs else None


def claim_many(services: Services, owner: str, limit: int, *, now: datetime | None = None,
               kinds: tuple[str, ...] | None = None, exclude: Exclusions = NOTHING_EXCLUDED,
               pick: Picker | None = None, expired: bool = True) -> list[Job]:
    """Take the lease on up to ``limit`` due jobs in one transaction (one commit, not one per job).

    ``pick`` chooses, from the due candidates in claim order (expired leases first, then by due
    time), the ids the caller can run now (its pools and lanes); by default the first ``limit``.
    ``expired=False`` leaves expired leases out of this claim (a worker looks for them on a period
    of its own: a lease lasts minutes, and the query is a round trip on every claim).
    Safe with any number of workers: on PostgreSQL the candidates are locked (``SKIP LOCKED``); on
    SQLite they are read without the write lock, and the conditional ``UPDATE`` (status and due
    time unchanged) is the claim, so a job another worker took in between is simply not returned.
    """
    now = now or services.clock()
    lease_until = now + timedelta(seconds=services.settings.worker_lease_seconds)
    # A few more candidates than wanted: the picker may pass over some (a lane at its limit).
    window = limit + 8
    sqlite = services.db.is_sqlite

    def candidates(session: Session, lock: bool) -> list[tuple[Candidate, int]]:
        found: list[tuple[Candidate, int]] = []
        for way, (status, is_due, order) in enumerate(_claimable(now)):
            if way == 0 and not expired:
                continue
            query = select(Job.id, Job.kind, Job.lane, Job.letter_id).where(status, is_due, *exclude.where())
            if kinds:
                query = query.where(Job.kind.in_(kinds))
            query = query.order_by(order, Job.id).limit(window - len(found))
            if lock:
                query = query.with_for_update(skip_locked=True)
            found += [(Candidate(*row), way) for row in session.execute(query)]
            if len(found) >= window:
                break
        return found

    def chosen(found: list[tuple[Candidate, int]]) -> list[tuple[int, int]]:
        rows = [candidate for candidate, _way in found]
        ids = pick(rows) if pick is not None else [row.id for row in rows[:limit]]
        ways = {candidate.id: way for candidate, way in found}
        return [(job_id, ways[job_id]) for job_id in ids[:limit]]

    if sqlite:
        # Nothing due is the common case of an idle or saturated worker: find out without the lock.
        with services.db.read() as session:
            picked = chosen(candidates(session, lock=False))
        if not picked:
            return []
    with services.db.transaction() as session:
        if not sqlite:
            picked = chosen(candidates(session, lock=True))
            if not picked:
                return []
        claimable = _claimable(now)
        taken: dict[int, Job] = {}
        for way in sorted({way for _id, way in picked}):
            status, is_due, _order = claimable[way]
            # The conditional UPDATE is the real claim: a job whose status or due time changed since
            # it was read (another worker took it) is left alone. RETURNING gives the jobs taken
            # without a query of their own.
            taken.update((job.id, job) for job in session.scalars(
                update(Job)
                .where(Job.id.in_(sorted(job_id for job_id, w in picked if w == way)), status, is_due)
                .values(status=JobStatus.RUNNING, lease_owner=owner, lease_until=lease_until,
                        attempts=Job.attempts + 1, updated_at=now)
                .returning(Job)
                .execution_options(synchronize_session=False)
            ))
        jobs = [taken[job_id] for job_id, _way in picked if job_id in taken]
        for job in jobs:
            hook = CLAIM_HOOKS.get(job.kind)
            if hook is not None:
                hook(session, job)
        return jobs


def note_claim(job: Job, value: Any) -> None:
    """From a claim hook: leave ``value`` for this run's handler (see :func:`claim_note`)."""
    _CLAIM_NOTES[job] = value


def claim_note(job: Job) -> Any:
    """What the claim hook noted for this run of ``job``, or None (it noted nothing, or did not run)."""
    return _CLAIM_NOTES.pop(job, None)


def next_due(services: Services, exclude: Exclusions = NOTHING_EXCLUDED, *,
             kinds: tuple[str, ...] | None = None) -> datetime | None:
    """When the next job this worker could take becomes due (a pending job's ``run_at`` or a running
    job's lease expiry), or None when there is none: how long an idle worker may sleep."""
    conditions = exclude.where()
    if kinds:
        conditions.append(Job.kind.in_(kinds))
    # One statement, two index lookups: it runs after every claim.
    query = select(select(func.min(Job.run_at)).where(IS_PENDING, *conditions).scalar_subquery(),
                   select(func.min(Job.lease_until)).where(IS_RUNNING, *conditions).scalar_subquery())
    with services.db.read() as session:
        pending, expiry = session.execute(query).one()
    times = [t for t in (pending, expiry) if t is not None]
    return min(times) if times else None


def renew_leases(services: Services, owner: str, job_ids: list[int]) -> int:
    """Extend the leases ``owner`` still holds on ``job_ids`` (a live worker keeps its slow jobs)."""
    now = services.clock()
    with services.db.transaction() as session:
        result = session.execute(
            update(Job).where(Job.id.in_(job_ids), Job.lease_owner == owner, IS_RUNNING)
            .values(lease_until=now + timedelta(seconds=services.settings.worker_lease_seconds))
        )
        return int(result.rowcount)


def make_due(session: Session, job: Job, when: datetime) -> None:
    """Bring a pending job forward to ``when`` (in the caller's transaction) and wake workers at commit."""
    if job.status == JobStatus.PENDING and job.run_at > when:
        job.run_at = when
        wakeup.mark(session, when)


# The jobs whose handler recorded their outcome itself, in its own last transaction (``complete``).
_COMPLETED: weakref.WeakKeyDictionary[Job, str] = weakref.WeakKeyDictionary()


def complete(session: Session, job: Job, *, run_at: datetime | None = None) -> bool:
    """Record a running job's outcome in the caller's transaction, with the work it did: done, or
    (``run_at``) pending again at that time like :class:`Reschedule`. One commit instead of two,
    and the job's end cannot be lost between the work's commit and its own. Only while the job's
    lease is still ours (``job.lease_owner``); returns False otherwise (another worker has it)."""
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
    if run_at is None:
        values.update(status=JobStatus.DONE, finished_at=utcnow())
    else:
        values.update(status=JobStatus.PENDING, run_at=run_at, attempts=0)
        wakeup.mark(session, run_at)
    result = session.execute(
        update(Job).where(Job.id == job.id, Job.lease_owner == job.lease_owner, IS_RUNNING).values(**values)
        .execution_options(synchronize_session=False)
    )
    _COMPLETED[job] = str(values["status"])
    return int(result.rowcount) == 1


def _finish(services: Services, job: Job, owner: str, **values: Any) -> bool:
    """Update the job only if we still hold its lease (a slow worker must not undo a faster one)."""
    with services.db.transaction() as session:
        result = session.execute(
            update(Job).where(Job.id == job.id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
            .values(**values)
        )
        return result.rowcount == 1


def run_job(services: Services, job: Job, owner: str) -> str:
    """Run a claimed job's handler and record the outcome; returns the job's new status."""
    now = services.clock()
    handler = HANDLERS.get(job.kind)
    try:
        if handler is None:
            raise PermanentError(f"no handler for job kind {job.kind!r}")
        handler(services, job)
        recorded = _COMPLETED.pop(job, None)
        if recorded is not None:
            return recorded
    except Reschedule as again:
        _COMPLETED.pop(job, None)
        _finish(services, job, owner, status=JobStatus.PENDING, run_at=now + timedelta(seconds=again.delay),
                attempts=0, lease_owner=None, lease_until=None)
        return JobStatus.PENDING
    except PermanentError as exc:
        _COMPLETED.pop(job, None)
        return _dead(services, job, owner, str(exc))
    except Exception as exc:  # noqa: BLE001 - any other failure is retried, never lost
        _COMPLETED.pop(job, None)  # its transaction (if it got that far) was rolled back
        reason = f"{type(exc).__name__}: {exc}"
        if job.attempts >= job.max_attempts:
            return _dead(services, job, owner, reason)
        delay = getattr(exc, "retry_after", None) or backoff_seconds(job.attempts)
        log.warning("job %s (%s) failed, retry in %.0fs: %s", job.id, job.kind, delay, reason)
        _finish(services, job, owner, status=JobStatus.PENDING, run_at=now + timedelta(seconds=delay),
                last_error=reason, lease_owner=None, lease_until=None)
        return JobStatus.PENDING
    _finish(services, job, owner, status=JobStatus.DONE, finished_at=services.clock(), lease_owner=None,
            lease_until=None)
    return JobStatus.DONE


def _dead(services: Services, job: Job, owner: str, reason: str) -> str:
    log.error("job %s (%s) dead-lettered: %s", job.id, job.kind, reason)
    if _finish(services, job, owner, status=JobStatus.DEAD, last_error=reason, finished_at=services.clock(),
               lease_owner=None, lease_until=None):
        on_dead = DEAD_HANDLERS.get(job.kind)
        if on_dead is not None:
            on_dead(services, job, reason)
    return JobStatus.DEAD


def run_once(services: Services, owner: str) -> bool:
    """Claim and run one due job; False when nothing was due."""
    job = claim(services, owner)
    if job is None:
        return False
    run_job(services, job, owner)
    return True


def drain(services: Services, *, owner: str = "drain", max_jobs: int = 1000) -> int:
    """Run due jobs until none is left (tests and the ``lre-bridge jobs run`` command)."""
    count = 0
    while count < max_jobs and run_once(services, owner):
        count += 1
    return count
