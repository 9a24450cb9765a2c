"""Database access: one engine per process, short explicit transactions (the request's session is in
``connector/api/db.py``)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """The engine and session factory of one bridge instance (API process or worker)."""

    def __init__(self, url: str, *, wake_horizon_seconds: float = 0.0) -> None:
        """``wake_horizon_seconds``: a job due further ahead than this wakes no worker when it is
        committed (``connector.delivery.wakeup.mark``); the workers' poll interval, since a waiting
        worker looks again within it anyway. 0: every job committed wakes them."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            # Several processes (server + workers) share the file: wait for locks instead of failing.
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False, "factory": _QueuedWriterConnection}
        self.engine: Engine = create_engine(url, **kwargs)
        if not self.is_sqlite:
            _ping_when_idle(self.engine)
        if self.is_sqlite:
            _private_database_file(self.engine.url.database)
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; take control so that a claim
            # (read + conditional update) happens inside one write transaction.
            event.listen(self.engine, "begin", _sqlite_begin)
        info = {WAKE_HORIZON: wake_horizon_seconds}
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, info=info)
        # Same pool, marked read-only: on SQLite its transactions begin DEFERRED, so a read never
        # waits for (or holds) the single write lock, which a writer keeps through its commit's fsync.
        # On PostgreSQL it runs in autocommit: READ COMMITTED gives each statement its own snapshot
        # anyway, and a read then costs no BEGIN and no ROLLBACK round trip (the worker reads often).
        read_options: dict[str, Any] = {READ_ONLY: True}
        if not self.is_sqlite:
            read_options["isolation_level"] = "AUTOCOMMIT"
        self.read_sessionmaker = sessionmaker(self.engine.execution_options(**read_options),
                                              expire_on_commit=False, info=info)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any exception."""
        session = self.sessionmaker()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it does not take the write lock (WAL readers see the
        last commit and never block a writer). Writing in it is a bug (SQLite would answer "database
        is locked" instead of waiting), so it is always rolled back."""
        session = self.read_sessionmaker()
        try:
            yield session
        finally:
            session.close()  # rolls back: nothing is ever committed from here

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness probe: any failure means "not ready"
            return False

    def dispose(self) -> None:
        self.engine.dispose()


# A pooled PostgreSQL connection idle for longer than this is pinged before use (see below).
PING_IDLE_SECONDS = 1.0
_CHECKED_IN = "lre_checked_in"


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle for :data:`PING_IDLE_SECONDS`.

    ``pool_pre_ping`` pings at every checkout: one more round trip for every transaction, and a
    worker's job makes several (a delivery: a claim, a read, a write), each round trip a wait for
    the server's process under load. A connection used a moment ago is alive unless the server
    went away in that moment, which the same first statement would meet after a ping too; one
    idle for longer (a restart, a firewall's idle cut) is pinged and, if dead, replaced (SQLAlchemy
    retries the checkout on ``DisconnectionError``), as pre-ping did.
    """

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_CHECKED_IN, 0.0) < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi)  # the ping pool_pre_ping sends
        except Exception as exc:  # noqa: BLE001 - any failure of the ping means a dead connection
            raise DisconnectionError(f"a connection idle for a while did not answer: {exc}") from exc


def _private_database_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite does.

    SQLite gives the WAL and shared-memory files the mode of the database file, so this one
    mode covers all three: letters, recipients and proofs are personal data.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.chmod(path, 0o600)
    except OSError:  # a read-only or foreign file: SQLite reports what it can and cannot do
        pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver level; SQLAlchemy emits BEGIN
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


READ_ONLY = "lre_read_only"
# Session.info key: see ``Database(wake_horizon_seconds=...)``.
WAKE_HORIZON = "lre_wake_horizon_seconds"
# How long a writer waits its turn in this process before leaving it to SQLite's busy handler.
WRITER_QUEUE_SECONDS = 30.0
# How long an ordinary writer (an API request) lets the outbox worker's writers go first.
WORKER_FIRST_SECONDS = 0.25


class WriterQueue:
    """The turn of one process's writers on one SQLite file, the outbox worker's threads first.

    In the embedded ``serve`` the API's request threads and the worker's threads share the file's
    single write lock. Taking turns in arrival order, eight request threads got most of the commits
    and the worker (two to three commits per letter against the API's one) fell behind what the
    API accepted: the queue grew without bound. Here a waiting worker writer goes first, and a
    request lets it for at most :data:`WORKER_FIRST_SECONDS` per transaction: under saturation the
    API accepts letters at the pace the worker sends them, and an idle worker costs it nothing.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._first_waiting = 0

    def acquire(self, timeout: float) -> bool:
        """Wait for the turn (at most ``timeout`` s); True when taken, False when it timed out."""
        first = bool(getattr(WORKER_THREAD, "active", False))
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            if first:
                self._first_waiting += 1
            try:
                while True:
                    now = time.monotonic()
                    yielding = not first and self._first_waiting > 0 and now - start < WORKER_FIRST_SECONDS
                    if not self._held and not yielding:
                        self._held = True
                        return True
                    if now >= deadline:
                        return False
                    limit = deadline - now
                    if yielding:
                        limit = min(limit, start + WORKER_FIRST_SECONDS - now)
                    self._cond.wait(max(limit, 0.0))
            finally:
                if first:
                    self._first_waiting -= 1
                    self._cond.notify_all()  # requests standing aside re-check whether to go

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


# Set (``active = True``) in the outbox worker's threads: their writes go first (``WriterQueue``).
WORKER_THREAD = threading.local()
_WRITER_LOCKS: dict[str, WriterQueue] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(path: str) -> WriterQueue:
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(os.path.realpath(path) if path else "", WriterQueue())


class _QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take turns, within the process, on a lock.

    SQLite has one write lock per file, and a writer that finds it taken polls with growing sleeps
    (up to 100 ms each in its busy handler), so under load (API threads and worker threads of the
    embedded ``serve``) most of a transaction's time was spent asleep after the lock was already
    free, and whoever polled at the right moment won. Waiting on a process lock instead, a writer
    starts as soon as the previous one commits (SQLite's handler still arbitrates between processes).
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._writer_lock = _writer_lock(str(database))
        self._holds_writer_lock = False

    def begin_write(self) -> None:
        """``BEGIN IMMEDIATE``, once this process's previous writer on the file has finished."""
        self._holds_writer_lock = self._writer_lock.acquire(WRITER_QUEUE_SECONDS)
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        if self._holds_writer_lock:
            self._holds_writer_lock = False
            self._writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release_writer()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_writer()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_writer()


def _sqlite_begin(conn: Any) -> None:
    # A write transaction takes the write lock up front (a read upgraded later could fail with
    # SQLITE_BUSY instead of waiting); a read-only one (``Database.read``) only reads a snapshot.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, _QueuedWriterConnection):
        dbapi.begin_write()
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
