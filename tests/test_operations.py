"""What an operator touches: configuration errors, the CLI, migrations, the OpenAPI document."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from connector.app import create_app
from connector.cli import main
from connector.config import ConfigError, load_settings
from connector.tables import metadata
from tests.helpers import letter_payload

ROOT = Path(__file__).parent.parent


def test_a_bad_setting_is_refused_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LRE_SANDBOX_STEP_SECONDS", "soon")
    with pytest.raises(ConfigError, match="LRE_SANDBOX_STEP_SECONDS"):
        load_settings({"data_dir": tmp_path})


def test_a_server_database_without_encryption_keys_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("LRE_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(ConfigError, match="LRE_ENCRYPTION_KEYS"):
        load_settings({"data_dir": tmp_path, "database_url": "postgresql://db.example/lre"})


def test_malformed_encryption_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="LRE_ENCRYPTION_KEYS"):
        load_settings({"data_dir": tmp_path, "encryption_keys": "not-a-key"})


def test_the_embedded_default_needs_no_setting(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("LRE_"):
            monkeypatch.delenv(name)
    settings = load_settings({"data_dir": tmp_path})
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert (tmp_path / "encryption.key").stat().st_mode & 0o777 == 0o600
    assert load_settings({"data_dir": tmp_path}).encryption_keys == settings.encryption_keys


def test_migrations_match_the_models(app):
    services = app.extensions["lre"]
    with services.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "run: alembic revision --autogenerate (see docs/development.md)"


def test_a_database_from_the_first_release_upgrades_and_keeps_its_custom_templates(tmp_path):
    """0001 → head on a database holding a custom template uploaded before descriptions existed."""
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from connector.db import Database
    from connector.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(Database(url), "0001")
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, name, created_at, retention_days) "
                          "VALUES ('acc_old', 'Ancien', '2026-01-05 10:00:00', 3650)"))
        conn.execute(text(
            "INSERT INTO template_versions (id, account_id, name, version, title, source, fields, sha256, created_at) "
            "VALUES ('tpl_old', 'acc_old', 'ancienne', 1, 'Ancienne lettre', '<p>{{ nom }}</p>', "
            "'[{\"key\": \"nom\", \"label\": \"Nom\"}]', 'x', '2026-01-05 10:00:00')"
        ))
    app = create_app({"database_url": url, "data_dir": tmp_path, "encryption_keys": Fernet.generate_key().decode(),
                      "worker_in_process": False})
    upgrade(app.extensions["lre"].db)
    with app.extensions["lre"].db.transaction() as session:
        from connector.api.auth import create_api_key
        from connector.models import Account

        _, key = create_api_key(session, session.get(Account, "acc_old"))
    client = app.test_client()
    served = client.get("/v1/templates/ancienne", headers={"Authorization": f"Bearer {key}"})
    assert served.status_code == 200
    assert (served.json["title"], served.json["description"]) == ("Ancienne lettre", "")


@pytest.mark.slow
def test_keys_create_prints_the_key_alone_on_the_last_line_and_keys_can_be_revoked(tmp_path, monkeypatch):
    monkeypatch.setenv("LRE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LRE_DATABASE_URL", raising=False)
    monkeypatch.delenv("LRE_ENCRYPTION_KEYS", raising=False)
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--account", "Agence Lefèvre", "--name", "zapier"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"lre_[A-Za-z0-9_-]{32}", key)

    app = create_app()
    assert app.test_client().get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json["name"] == "Agence Lefèvre"

    listed = runner.invoke(main, ["keys", "list"])
    assert key not in listed.output and key[:10] in listed.output
    key_id = re.search(r"(key_[0-9a-f]{32})", listed.output).group(1)
    assert runner.invoke(main, ["keys", "revoke", key_id]).exit_code == 0
    assert app.test_client().get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    app.extensions["lre"].db.dispose()


def test_every_route_is_described_in_openapi_and_every_described_path_exists(app, client):
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    methods = {"get", "post", "put", "patch", "delete"}
    described = {(path, m) for path, ops in document["paths"].items() for m in ops if m in methods}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    assert routes - described == set(), "routes missing from /openapi.json"
    assert described - routes == set(), "described paths that do not exist"


def test_openapi_schemas_describe_real_answers(client, auth, drain):
    jsonschema = pytest.importorskip("jsonschema")
    document = client.get("/openapi.json").json
    letter = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    drain()
    event = client.get("/v1/events", headers=auth).json["data"][0]
    resolver_doc = {"components": document["components"]}
    for name, value in (("Letter", letter), ("Event", event)):
        schema = {**document["components"]["schemas"][name], **resolver_doc}
        jsonschema.validate(value, schema)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_runs_the_bridge_and_its_worker_with_no_setup(tmp_path):
    """The README's first command, minus the install: a letter goes from HTTP to accepted."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
    env.update({"LRE_DATA_DIR": str(tmp_path), "LRE_SANDBOX_STEP_SECONDS": "0.2"})
    log = tmp_path / "serve.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the server's logging
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", str(port)], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        key = None
        deadline = time.monotonic() + 90
        while key is None and time.monotonic() < deadline:
            key = next((line for line in log.read_text().splitlines() if line.startswith("lre_")), None)
            time.sleep(0.1)
        assert key, log.read_text()
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(100):
            try:
                if requests.get(f"{base}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        letter = requests.post(f"{base}/v1/letters", json=letter_payload(), headers=headers, timeout=10).json()
        status = None
        for _ in range(150):
            status = requests.get(f"{base}/v1/letters/{letter['id']}", headers=headers, timeout=5).json()["status"]
            if status == "accepted":
                break
            time.sleep(0.1)
        assert status == "accepted"
        # Provider callback URLs carry a per-letter secret: the access log must not show it.
        requests.post(f"{base}/callbacks/ar24/SECRET-callback-token", timeout=5)
        requests.get(f"{base}/healthz", timeout=5)
        # The access log is written after the answer: wait for the last request's line, not a pause.
        deadline = time.monotonic() + 30
        while "/healthz" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        logged = log.read_text()
        assert '"POST /callbacks/ar24/…"' in logged
        assert "SECRET-callback-token" not in logged
        assert logged.count(key) == 1  # printed once at the first start, never logged afterwards
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_callback_tokens_never_reach_the_access_log():
    from connector.api.accesslog import redact_path

    assert redact_path("/callbacks/ar24/SeCrEt-token_123") == "/callbacks/ar24/…"
    assert redact_path("/v1/letters/let_1") == "/v1/letters/let_1"
