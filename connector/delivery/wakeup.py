"""Wake-ups for outbox workers: a job written in a transaction wakes a worker as soon as it commits.

Two signals, one for each kind of neighbour:

* in the same process (the embedded ``serve``), a SQLAlchemy ``after_commit`` listener sets the
  process-wide :data:`WAKEUP` when the committed transaction called :func:`mark` (``outbox.enqueue``
  and every other place that makes a job due sooner);
* across processes and machines on PostgreSQL, the same transaction sends ``NOTIFY lre_jobs``
  (delivered by PostgreSQL only if, and when, it commits) and every worker process keeps one
  connection ``LISTEN``-ing (:class:`PostgresListener`), which sets its own :data:`WAKEUP`.

Neither is needed for correctness: workers still poll (their safety net), so a lost signal costs
at most one poll interval, never a job.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from connector.db import WAKE_HORIZON

log = logging.getLogger(__name__)

CHANNEL = "lre_jobs"
_PENDING = "lre_wakeup"  # session.info key: this transaction made a job due

# The PostgreSQL backends of this process's own connections. A notification one of them sent came
# with a signal in this process already (``_after_commit``), so the listener passes over it: else
# every commit of a worker would wake it twice, and each wake-up costs a claim and a next-due
# query. A backend number is forgotten when its connection closes (PostgreSQL may give it again).
_OWN_BACKENDS: set[int] = set()


class Wakeup:
    """A counter workers wait on: every signal bumps it and wakes every waiter."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read before looking for work; pass to :meth:`wait` so a signal in between is not missed."""
        with self._cond:
            return self._generation

    def signal(self) -> None:
        """Wake every waiting worker of this process."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds unless a signal came after ``seen``; True when signalled."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != seen, timeout=max(timeout, 0.0))


WAKEUP = Wakeup()


def mark(session: Session, due: datetime | None = None) -> None:
    """Say that this transaction makes a job due (new, revived or moved sooner): wake workers on
    commit. ``due``: when it becomes due, if later than now.

    A job due further ahead than the session's wake horizon (``Database(wake_horizon_seconds)``:
    the workers' poll interval) wakes no one. A waiting worker looks again at least every poll
    interval and then sleeps until the earliest due job, so it finds such a job before its time
    anyway; waking every worker process for it cost each a claim and a due-time query for nothing,
    at every submission (its follow-up poll is due a sandbox step or minutes later) and every retry.
    """
    if due is not None:
        aware = due if due.tzinfo is not None else due.replace(tzinfo=UTC)  # SQLite gives naive UTC
        if (aware - datetime.now(UTC)).total_seconds() > session.info.get(WAKE_HORIZON, 0.0):
            return
    session.info[_PENDING] = True


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_PENDING) and session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: PostgreSQL delivers it at commit, and drops it on rollback.
        # ``connection()`` rather than ``execute``: no autoflush of its own (the commit flushes).
        session.connection().execute(text(f"NOTIFY {CHANNEL}"))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, None):
        WAKEUP.signal()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Pool, "connect")
def _note_own_backend(dbapi_connection: Any, _record: Any) -> None:
    pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)  # psycopg only
    if isinstance(pid, int):
        _OWN_BACKENDS.add(pid)


@event.listens_for(Pool, "close")
def _forget_own_backend(dbapi_connection: Any, _record: Any) -> None:
    pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
    if isinstance(pid, int):
        _OWN_BACKENDS.discard(pid)


def libpq_url(sqlalchemy_url: str) -> str:
    """The database URL as psycopg's ``connect`` reads it (no ``+driver`` suffix)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresListener:
    """A daemon thread holding one ``LISTEN lre_jobs`` connection; sets ``wakeup`` on each notification.

    It reconnects with a growing pause when the connection drops (workers keep polling meanwhile).
    """

    def __init__(self, url: str, wakeup: Wakeup = WAKEUP) -> None:
        self.url = libpq_url(url)
        self.wakeup = wakeup
        self.stop = threading.Event()
        self.listening = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lre-listen", daemon=True)

    def start(self) -> PostgresListener:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        pause = 0.5
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    log.info("listening for job notifications (%s)", CHANNEL)
                    pause = 0.5
                    # A signal right after (re)connecting: anything committed while we were away is due.
                    self.wakeup.signal()
                    while not self.stop.is_set():
                        # The timeout bounds how long ``close`` waits; notifications end the wait at once.
                        for notice in conn.notifies(timeout=1.0, stop_after=1):
                            if notice.pid not in _OWN_BACKENDS:
                                self.wakeup.signal()
            except Exception as exc:  # noqa: BLE001 - the listener must outlive database restarts
                self.listening.clear()
                log.warning("job notifications unavailable (%s); polling meanwhile", type(exc).__name__)
                self.stop.wait(pause)
                pause = min(pause * 2, 30.0)

