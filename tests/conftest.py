"""Shared fixtures: an app on a fresh database (SQLite, and PostgreSQL when LRE_TEST_POSTGRES_URL is
set), a client, API keys for two accounts, and ``drain`` to run the outbox synchronously."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from werkzeug.routing import Rule

from connector.api.auth import create_api_key
from connector.app import create_app
from connector.db import Database
from connector.delivery import outbox
from connector.migrate import upgrade
from connector.models import Account
from connector.services import Services
from tests.contract import DocumentedClient

POSTGRES_URL = os.environ.get("LRE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
_counter = itertools.count()


def _memoise_url_builders() -> None:
    """Compile each URL rule's builder once per session instead of once per app.

    Werkzeug turns every rule into two URL-builder functions by compiling generated Python (an AST),
    and with about 80 rules that was 80 ms of each test's ``create_app``, most of the fast loop's
    setup time. A builder depends only on the rule's parsed parts and defaults (it reaches converters
    through the rule it is bound to), so rules with the same text and defaults can share one.
    """
    compile_builder = Rule._compile_builder
    cache: dict[tuple[Any, ...], Any] = {}

    def cached(self: Rule, append_unknown: bool = True) -> Any:
        try:
            key = (self.rule, self.subdomain, self.host, tuple(self._trace),
                   tuple(sorted((self.defaults or {}).items())), append_unknown)
            hash(key)
        except TypeError:  # an unhashable default: compile as werkzeug does
            return compile_builder(self, append_unknown)
        if key not in cache:
            cache[key] = compile_builder(self, append_unknown)
        return cache[key]

    Rule._compile_builder = cached  # type: ignore[method-assign]


_memoise_url_builders()

# The tests' temporary files (tmp_path: each test's SQLite database and archive) go in memory when
# TMPDIR does not say otherwise: the bridge syncs every commit and archived file to disk (as it must),
# and on the disk those syncs were a good part of the fast loop's wall time. TMPDIR=/tmp keeps them on disk.
if "TMPDIR" not in os.environ and os.access("/dev/shm", os.W_OK):
    tempfile.tempdir = "/dev/shm"

# Generated examples (hypothesis, tests/test_hostile_input.py): CI generates the full count (.ci/run
# exports CI=true), the local loop a few per operation to stay quick. `--hypothesis-profile=ci` runs
# CI's count locally.
hypothesis_settings.register_profile("ci", max_examples=12)
hypothesis_settings.register_profile("dev", max_examples=3)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def _pg_admin() -> Engine:
    """An engine on LRE_TEST_POSTGRES_URL's database, to create and drop the tests' databases."""
    assert POSTGRES_URL
    return create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                         isolation_level="AUTOCOMMIT")


def _pg_url(database: str) -> str:
    assert POSTGRES_URL
    url = make_url(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)).set(database=database)
    return url.render_as_string(hide_password=False)


# Rows past this count are removed with TRUNCATE (which also forgets the planner's statistics, as a
# new database has none), fewer with DELETE: TRUNCATE syncs new files for each table and its indexes.
_TRUNCATE_FROM_ROWS = 1000
# What a test could change in a database besides its rows: relations, columns, constraints, the revision.
_SCHEMA_FINGERPRINT = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(':', c.relname, c.relkind, a.attname, a.atttypid, a.attnotnull),
                     ',' ORDER BY c.relname, a.attnum)
     FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname)
     FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT string_agg(version_num, ',') FROM alembic_version),
  (SELECT count(*) FROM pg_namespace), (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)))
"""


class _PostgresDatabases:
    """The PostgreSQL databases of one test process: copies of the migrated template, each emptied
    after its test and handed to the next one.

    CREATE DATABASE ... TEMPLATE then DROP DATABASE cost 0.3 to 0.5 s a test (the test itself about 0.07 s);
    emptying the tables a test wrote to and restarting the sequences it used costs a few ms. A
    database is reused only when nothing of the test can still reach it or differ in it: no other
    session is connected (a thread or process left behind could write into the next test's rows),
    no prepared transaction waits, and its schema is the template's. Otherwise it is dropped, as
    every database used to be, and the next test gets a new copy.
    """

    def __init__(self, template: str) -> None:
        self._template = template
        self._admin = _pg_admin()
        self._free: list[str] = []
        self._fingerprint: str | None = None
        self._tables: list[str] = []  # referencing tables before the tables they refer to

    def _admin_execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def take(self) -> str:
        if self._free:
            return self._free.pop()
        name = f"lre_t_{os.getpid()}_{next(_counter)}"
        self._admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        if self._fingerprint is None:
            self._learn(name)
        return name

    def _learn(self, name: str) -> None:
        """The template's fingerprint and its tables in an order DELETE can follow (foreign keys)."""
        engine = create_engine(_pg_url(name), poolclass=NullPool)
        with engine.connect() as conn:
            self._fingerprint = conn.execute(text(_SCHEMA_FINGERPRINT)).scalar_one()
            tables = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )).scalars())
            references = conn.execute(text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conrelid <> confrelid"
            )).all()
        engine.dispose()
        referenced_by = {table: {child.strip('"') for child, parent in references if parent.strip('"') == table}
                         for table in tables}
        ordered: list[str] = []
        while referenced_by:  # a table goes once every table referring to it is placed
            ready = sorted(t for t, children in referenced_by.items() if children <= set(ordered))
            if not ready:  # a cycle: DELETE may fail, and the database is then dropped instead
                ready = sorted(referenced_by)
            for table in ready:
                ordered.append(table)
                del referenced_by[table]
        self._tables = ordered

    def give_back(self, name: str) -> None:
        try:
            reusable = self._empty(name)
        except Exception:  # noqa: BLE001 - a database that cannot be emptied is dropped: the next test gets a new one
            reusable = False
        if reusable:
            self._free.append(name)
        else:
            self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _empty(self, name: str) -> bool:
        engine = create_engine(_pg_url(name), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for _ in range(50):  # a session the test closed may take a moment to end
                    others = conn.execute(text(
                        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()) + (SELECT count(*) FROM pg_prepared_xacts "
                        "WHERE database = current_database())")).scalar_one()
                    if not others:
                        break
                    time.sleep(0.01)
                else:
                    return False
                if conn.execute(text(_SCHEMA_FINGERPRINT)).scalar_one() != self._fingerprint:
                    return False
                counts = conn.execute(text(" UNION ALL ".join(
                    f"SELECT '{t}', (SELECT count(*) FROM (SELECT 1 FROM \"{t}\" LIMIT {_TRUNCATE_FROM_ROWS + 1}) r)"
                    for t in self._tables))).all()
                rows = dict(counts)
                large = [t for t in self._tables if rows[t] > _TRUNCATE_FROM_ROWS]
                small = [t for t in self._tables if 0 < rows[t] <= _TRUNCATE_FROM_ROWS]
                sequences = conn.execute(text(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
                )).scalars().all()
                statements = []
                if large:
                    statements.append("TRUNCATE " + ", ".join(f'"{t}"' for t in large) + " CASCADE")
                statements += [f'DELETE FROM "{t}"' for t in small]
                statements += [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
                if statements:
                    # Not waiting for the WAL flush: a database the next test starts from is not worth an fsync.
                    conn.exec_driver_sql("BEGIN; SET LOCAL synchronous_commit = off; " + "; ".join(statements)
                                         + "; COMMIT")
            return True
        finally:
            engine.dispose()

    def close(self) -> None:
        for name in self._free:
            self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._free = []
        self._admin.dispose()


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Migrated template databases, copied for the tests (migrating once keeps the suite fast)."""
    templates: dict[str, Any] = {}
    sqlite_file = tmp_path_factory.mktemp("tmpl") / "template.sqlite3"
    upgrade(Database(f"sqlite:///{sqlite_file}"))
    templates["sqlite"] = str(sqlite_file)
    pg_template = None
    if POSTGRES_URL:
        pg_template = f"lre_tmpl_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_template}"'))
        db = Database(_pg_url(pg_template))
        upgrade(db)
        db.dispose()
        templates["postgresql"] = _PostgresDatabases(pg_template)
    yield templates
    if pg_template:
        templates["postgresql"].close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, database_templates: dict[str, Any],
                 tmp_path: Path) -> Iterator[str]:
    """A migrated database for one test, holding no row (a copy of the template's SQLite file, or a
    PostgreSQL copy of the template that an earlier test may have used and emptied)."""
    if request.param == "sqlite":
        target = tmp_path / "bridge.sqlite3"
        shutil.copy(database_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    databases: _PostgresDatabases = database_templates["postgresql"]
    name = databases.take()
    yield _pg_url(name)
    databases.give_back(name)


# LRE_TEST_STORAGE=s3 runs every test with its archive in a bucket of a loopback S3 server
# (tests/s3_server.py) instead of LRE_DATA_DIR/archive.
TEST_STORAGE = os.environ.get("LRE_TEST_STORAGE", "filesystem")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A loopback S3-compatible server (moto) for the session; its endpoint URL."""
    from tests.s3_server import serve_s3

    with serve_s3() as endpoint:
        yield endpoint


def _storage_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if TEST_STORAGE != "s3":
        return {}
    from tests.s3_server import new_bucket, s3_settings

    endpoint = request.getfixturevalue("s3_endpoint")
    overrides = s3_settings(endpoint, new_bucket(endpoint))
    # Commands a test runs (lre-bridge … through CliRunner) read the environment: same archive.
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in overrides.items():
        monkeypatch.setenv(f"LRE_{name.upper()}", str(value))
    return overrides


@pytest.fixture
def settings_overrides(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings every test app starts with; a test may change them before ``app`` is built."""
    return {
        **_storage_overrides(request),
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "encryption_keys": Fernet.generate_key().decode(),
        "sandbox_step_seconds": 0,
        "allow_private_urls": True,
        "worker_in_process": False,
        "public_url": "http://bridge.test",
    }


@pytest.fixture
def app(settings_overrides: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(settings_overrides)
    application.config["TESTING"] = True
    # Every answer a test receives must be the one the OpenAPI document describes (tests/contract.py).
    application.test_client_class = DocumentedClient
    yield application
    application.extensions["lre"].db.dispose()


@pytest.fixture
def services(app: Flask) -> Services:
    svc: Services = app.extensions["lre"]
    return svc


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_account(services: Services) -> Callable[[str], tuple[str, dict[str, str]]]:
    """Create an account with a key; returns (account id, request headers)."""

    def make(name: str) -> tuple[str, dict[str, str]]:
        with services.db.transaction() as session:
            account = Account(name=name)
            session.add(account)
            session.flush()
            _, key = create_api_key(session, account, name="test")
            return account.id, {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def account(make_account: Callable[[str], tuple[str, dict[str, str]]]) -> tuple[str, dict[str, str]]:
    return make_account("Cabinet Durand")


@pytest.fixture
def auth(account: tuple[str, dict[str, str]]) -> dict[str, str]:
    return account[1]


@pytest.fixture
def other_auth(make_account: Callable[[str], tuple[str, dict[str, str]]]) -> dict[str, str]:
    return make_account("Syndic Martin")[1]


@pytest.fixture
def drain(services: Services) -> Callable[[], int]:
    """Run every due job now (the worker, synchronously)."""
    return lambda: outbox.drain(services)
