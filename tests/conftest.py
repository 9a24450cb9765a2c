"""Shared fixtures: an app on a fresh database (SQLite, and PostgreSQL when LRE_TEST_POSTGRES_URL is
set), a client, API keys for two accounts, and ``drain`` to run the outbox synchronously."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
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
from sqlalchemy.engine import make_url
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


def _pg_admin_execute(sql: str) -> None:
    assert POSTGRES_URL
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _pg_url(database: str) -> str:
    assert POSTGRES_URL
    url = make_url(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)).set(database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Migrated template databases, copied for each test (migrating once keeps the suite fast)."""
    templates: dict[str, str] = {}
    sqlite_file = tmp_path_factory.mktemp("tmpl") / "template.sqlite3"
    upgrade(Database(f"sqlite:///{sqlite_file}"))
    templates["sqlite"] = str(sqlite_file)
    pg_template = None
    if POSTGRES_URL:
        pg_template = f"lre_tmpl_{uuid.uuid4().hex[:8]}"
        _pg_admin_execute(f'CREATE DATABASE "{pg_template}"')
        db = Database(_pg_url(pg_template))
        upgrade(db)
        db.dispose()
        templates["postgresql"] = pg_template
    yield templates
    if pg_template:
        _pg_admin_execute(f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, database_templates: dict[str, str],
                 tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if request.param == "sqlite":
        target = tmp_path / "bridge.sqlite3"
        shutil.copy(database_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    name = f"lre_t_{os.getpid()}_{next(_counter)}"
    _pg_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_templates["postgresql"]}"')
    yield _pg_url(name)
    _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
