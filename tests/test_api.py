"""The HTTP contract of the core: keys, isolation, consent, idempotency, validation, pagination."""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from connector.models import Document, Job, Letter
from tests.helpers import letter_payload, make_pdf, server_thread
from tests.hostile_server import serve_hostile


def _count(services, model) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _error(response) -> dict:
    assert response.is_json, response.data[:200]
    return response.json["error"]


# --- keys and accounts -------------------------------------------------------------------------

def test_it_refuses_requests_without_a_key(client):
    response = client.get("/v1/me")
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_it_refuses_an_unknown_key(client):
    response = client.get("/v1/me", headers={"Authorization": "Bearer lre_not-a-key"})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_me_names_the_account_behind_the_key(client, account):
    account_id, auth = account
    body = client.get("/v1/me", headers=auth).json
    assert body["id"] == account_id
    assert body["name"] == "Cabinet Durand"
    assert body["provider"] == "sandbox"


def test_one_account_never_sees_another_accounts_letters(client, auth, other_auth, drain):
    letter = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    drain()
    assert client.get(f"/v1/letters/{letter['id']}", headers=other_auth).status_code == 404
    assert client.get(f"/v1/letters/{letter['id']}/document", headers=other_auth).status_code == 404
    assert client.get("/v1/letters", headers=other_auth).json["data"] == []
    assert client.get("/v1/events", headers=other_auth).json["data"] == []
    assert client.get(f"/v1/events?letter_id={letter['id']}", headers=other_auth).json["data"] == []
    assert len(client.get("/v1/letters", headers=auth).json["data"]) == 1


# --- consent (CPCE art. L.100) -------------------------------------------------------------------

INDIVIDUAL = {"type": "individual", "email": "Jeanne.Dupont@example.org", "first_name": "Jeanne",
              "last_name": "Dupont"}
CONSENT = {"email": "jeanne.dupont@example.org", "first_name": "Jeanne", "last_name": "Dupont",
           "method": "electronic_form", "obtained_at": "2026-10-01T09:30:00+02:00",
           "recorded_by": "Marie Curie, gestionnaire"}


def test_it_refuses_to_send_to_an_individual_without_consent(client, auth, services):
    response = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=auth)
    assert response.status_code == 422
    assert _error(response)["code"] == "consent_required"
    assert _error(response)["field"] == "recipient.email"
    assert _count(services, Letter) == 0
    assert _count(services, Job) == 0


def test_it_sends_to_an_individual_once_consent_is_recorded_and_stops_when_revoked(client, auth):
    proof = {"filename": "formulaire.pdf", "content_base64": base64.b64encode(make_pdf("J'accepte")).decode()}
    consent = client.post("/v1/consents", json={**CONSENT, "proof": proof}, headers=auth)
    assert consent.status_code == 201, consent.json
    assert consent.json["status"] == "active"
    assert consent.json["proof"]["sha256"]

    sent = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=auth)
    assert sent.status_code == 201, sent.json

    revoked = client.delete(f"/v1/consents/{consent.json['id']}?revoked_by=Marie", headers=auth)
    assert revoked.json["status"] == "revoked"
    assert revoked.json["revoked_by"] == "Marie"
    listed = client.get("/v1/consents?email=jeanne.dupont@example.org", headers=auth).json["data"]
    assert [c["status"] for c in listed] == ["revoked"]

    again = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=auth)
    assert _error(again)["code"] == "consent_required"


def test_a_consent_belongs_to_one_account(client, auth, other_auth):
    client.post("/v1/consents", json=CONSENT, headers=auth)
    response = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=other_auth)
    assert _error(response)["code"] == "consent_required"


def test_it_validates_consent_records(client, auth):
    response = client.post("/v1/consents", json={**CONSENT, "method": "telepathy"}, headers=auth)
    assert response.status_code == 422
    assert _error(response)["field"] == "method"
    future = client.post("/v1/consents", json={**CONSENT, "obtained_at": "2999-01-01T00:00:00Z"}, headers=auth)
    assert _error(future)["field"] == "obtained_at"


# --- bad input ---------------------------------------------------------------------------------

PDF_B64 = base64.b64encode(make_pdf()).decode()


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"recipient": {"type": "professional", "email": "not-an-email", "company": "X"}}, 422, "invalid_request",
         "recipient.email"),
        ({"recipient": {"type": "martian", "email": "a@b.fr", "company": "X"}}, 422, "invalid_request",
         "recipient.type"),
        ({"recipient": {"type": "individual", "email": "a@b.fr"}}, 422, "invalid_request", "recipient"),
        ({"documents": []}, 422, "invalid_request", "documents"),
        ({"documents": [{"filename": "x.pdf"}]}, 422, "invalid_request", "documents.0"),
        ({"documents": [{"filename": "x.pdf", "content_base64": "%%%"}]}, 422, "invalid_base64",
         "documents.0.content_base64"),
        ({"documents": [{"filename": "x.pdf", "content_base64": base64.b64encode(b"hello").decode()}]}, 422,
         "not_a_pdf", "documents.0.content_base64"),
        ({"documents": [{"filename": "x.pdf", "content_base64": base64.b64encode(b"%PDF-1.4 garbage").decode()}]},
         422, "not_a_pdf", "documents.0.content_base64"),
        ({"documents": [{"filename": "x.pdf", "url": "ftp://example.org/x.pdf"}]}, 422, "url_not_allowed",
         "documents.0.url"),
        ({"sandbox_outcome": "lost"}, 422, "invalid_request", "sandbox_outcome"),
        ({"metadata": {"k": {"nested": 1}}}, 422, "invalid_request", "metadata.k"),
        ({"colour": "blue"}, 422, "invalid_request", "colour"),
        ({"data": {"a": 1}}, 422, "invalid_request", None),
    ],
)
def test_it_answers_bad_letters_with_a_4xx_naming_the_field(client, auth, services, payload, status, code, field):
    response = client.post("/v1/letters", json=letter_payload(**payload), headers=auth)
    assert response.status_code == status, response.json
    error = _error(response)
    assert error["code"] == code
    if field is not None:
        assert error["field"] == field or error["field"].startswith(field)
    assert error["message"]
    assert _count(services, Letter) == 0
    assert _count(services, Document) == 0


def test_it_refuses_a_body_that_is_not_json(client, auth):
    response = client.post("/v1/letters", data="hello", headers={**auth, "Content-Type": "text/plain"})
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"
    broken = client.post("/v1/letters", data="{", headers={**auth, "Content-Type": "application/json"})
    assert broken.status_code == 400


def test_a_document_over_the_size_limit_is_refused(tmp_path, settings_overrides):
    from connector.app import create_app

    app = create_app({**settings_overrides, "max_document_bytes": 1000})
    client = app.test_client()
    from connector.api.auth import create_api_key
    from connector.models import Account

    services = app.extensions["lre"]
    with services.db.transaction() as session:
        account = Account(name="Petit")
        session.add(account)
        session.flush()
        _, key = create_api_key(session, account)
    big = base64.b64encode(make_pdf("x" * 10) + b"0" * 2000).decode()
    response = client.post("/v1/letters", json=letter_payload(documents=[{"filename": "a.pdf",
                                                                         "content_base64": big}]),
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 413
    assert _error(response)["code"] == "document_too_large"
    services.db.dispose()


def test_it_accepts_pdfs_as_multipart_files(client, auth):
    pdf = make_pdf("Par formulaire")
    response = client.post(
        "/v1/letters",
        data={"recipient.type": "professional", "recipient.email": "rh@exemple.fr", "recipient.company": "RH SA",
              "reference": "MP-1", "documents": [(__import__("io").BytesIO(pdf), "courrier.pdf")]},
        headers=auth, content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    assert response.json["documents"][0]["filename"] == "courrier.pdf"
    assert client.get(f"/v1/letters/{response.json['id']}/document", headers=auth).data == pdf


def test_it_refuses_a_multipart_file_that_is_not_a_pdf(client, auth, services):
    response = client.post(
        "/v1/letters",
        data={"recipient.type": "professional", "recipient.email": "rh@exemple.fr", "recipient.company": "RH",
              "documents": [(__import__("io").BytesIO(b"MZ\x90\x00 not a pdf"), "facture.pdf")]},
        headers=auth, content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "not_a_pdf"
    assert _count(services, Letter) == 0


def test_unknown_routes_and_methods_answer_json(client, auth):
    assert _error(client.get("/v1/nope", headers=auth))["code"] == "not_found"
    assert client.put("/v1/letters", headers=auth).status_code == 405


def test_bad_query_arguments_are_4xx(client, auth):
    assert _error(client.get("/v1/letters?status=lost", headers=auth))["field"] == "status"
    assert _error(client.get("/v1/letters?limit=0", headers=auth))["field"] == "limit"
    assert _error(client.get("/v1/letters?from=yesterday", headers=auth))["field"] == "from"
    assert _error(client.get("/v1/letters?cursor=@@@", headers=auth))["field"] == "cursor"


# --- archive failures ---------------------------------------------------------------------------

def test_a_letter_whose_document_cannot_be_archived_is_not_accepted(client, auth, services, settings_overrides):
    """The document is written to the archive while the letter's rows are built; if that write
    fails, the request fails and nothing is stored, and the same request succeeds once the disk is
    back (no half-stored letter, no job pointing at a missing file)."""
    import hashlib

    if services.settings.storage_url:
        pytest.skip("blocks the filesystem archive; tests/test_archive.py has the same test for S3")
    content = make_pdf("Archivage impossible")
    digest = hashlib.sha256(content).hexdigest()
    # A file where the blob's directory must go: the write fails (even as root, unlike chmod).
    blocker = settings_overrides["data_dir"] / "archive" / digest[:2]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"not a directory")
    body = letter_payload(documents=[{"filename": "f.pdf", "content_base64": base64.b64encode(content).decode()}])

    response = client.post("/v1/letters", json=body, headers=auth)
    assert response.status_code == 500
    assert _error(response)["code"] == "internal_error"
    assert (_count(services, Letter), _count(services, Document), _count(services, Job)) == (0, 0, 0)

    blocker.unlink()
    response = client.post("/v1/letters", json=body, headers=auth)
    assert response.status_code == 201
    stored = client.get(f"/v1/letters/{response.json['id']}/document", headers=auth)
    assert stored.status_code == 200 and stored.data == content
    assert (_count(services, Letter), _count(services, Document), _count(services, Job)) == (1, 1, 1)


@pytest.mark.slow
def test_a_forked_server_process_still_archives_documents(tmp_path):
    """gunicorn forks its workers from a process that may already have archived a document: the
    child must get writer threads of its own, not wait forever for the parent's (which it lacks)."""
    import os
    import signal

    from cryptography.fernet import Fernet

    from connector.api.auth import create_api_key
    from connector.app import create_app
    from connector.migrate import upgrade
    from connector.models import Account

    overrides = {"data_dir": tmp_path, "database_url": f"sqlite:///{tmp_path / 'fork.sqlite3'}",
                 "encryption_keys": Fernet.generate_key().decode(), "worker_in_process": False}
    parent = create_app(overrides)
    upgrade(parent.extensions["lre"].db)
    with parent.extensions["lre"].db.transaction() as session:
        account = Account(name="Fork")
        session.add(account)
        session.flush()
        _, key = create_api_key(session, account)
    headers = {"Authorization": f"Bearer {key}"}
    assert parent.test_client().post("/v1/letters", json=letter_payload(), headers=headers).status_code == 201
    parent.extensions["lre"].db.dispose()

    pid = os.fork()
    if pid == 0:  # the child: a fresh app, as a gunicorn worker loads it
        code = 1
        try:
            signal.alarm(20)
            child = create_app(overrides)
            body = letter_payload(documents=[{"filename": "enfant.pdf",
                                              "content_base64": base64.b64encode(make_pdf("Enfant")).decode()}])
            code = 0 if child.test_client().post("/v1/letters", json=body, headers=headers).status_code == 201 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child ended with status {status}"
    assert len(parent.test_client().get("/v1/letters", headers=headers).json["data"]) == 2


# --- URL documents ------------------------------------------------------------------------------

class SlowDocument:
    """The gate of /slow.pdf: the test learns when the bridge asked for it and decides when it comes.

    Events rather than sleeps: on a loaded machine a request may take longer than any fixed pause to
    reach its download, and a test that guesses would race it.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self._requests = 0
        self._asked = threading.Condition()

    def asked(self) -> None:
        """Called by the server when a request for /slow.pdf arrives."""
        with self._asked:
            self._requests += 1
            self._asked.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 30) -> bool:
        """Wait until /slow.pdf has been asked for ``count`` times."""
        with self._asked:
            return self._asked.wait_for(lambda: self._requests >= count, timeout)


@pytest.fixture
def slow_document() -> Iterator[SlowDocument]:
    gate = SlowDocument()
    yield gate
    gate.release.set()  # never leave a handler thread waiting


@pytest.fixture
def pdf_server(slow_document: SlowDocument) -> Iterator[str]:
    """A loopback server: /doc.pdf is a PDF, /slow.pdf waits for ``slow_document.release``, /missing is 404."""
    pdf = make_pdf("Depuis une URL")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/missing":
                self.send_error(404)
                return
            if self.path == "/slow.pdf":
                slow_document.asked()
                slow_document.release.wait(30)
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(pdf)))
            self.end_headers()
            self.wfile.write(pdf)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = server_thread(server)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    slow_document.release.set()
    server.shutdown()
    server.server_close()


def test_it_fetches_documents_by_url(client, auth, pdf_server):
    response = client.post("/v1/letters", json=letter_payload(documents=[{"filename": "a.pdf",
                                                                         "url": f"{pdf_server}/doc.pdf"}]),
                           headers=auth)
    assert response.status_code == 201, response.json
    assert client.get(f"/v1/letters/{response.json['id']}/document", headers=auth).data.startswith(b"%PDF-")


def test_it_reports_an_unreachable_document_url(client, auth, pdf_server):
    response = client.post("/v1/letters", json=letter_payload(documents=[{"filename": "a.pdf",
                                                                         "url": f"{pdf_server}/missing"}]),
                           headers=auth)
    assert response.status_code == 422
    assert _error(response) | {"message": ""} == {"code": "url_fetch_failed", "field": "documents.0.url",
                                                  "message": ""}


def test_it_never_fetches_private_addresses_unless_allowed(settings_overrides, pdf_server):
    from connector.api.auth import create_api_key
    from connector.app import create_app
    from connector.models import Account

    app = create_app({**settings_overrides, "allow_private_urls": False})
    services = app.extensions["lre"]
    with services.db.transaction() as session:
        account = Account(name="Prod")
        session.add(account)
        session.flush()
        _, key = create_api_key(session, account)
    for url in (f"{pdf_server}/doc.pdf", "http://169.254.169.254/latest/meta-data", "http://[::1]/x.pdf",
                "http://10.0.0.1/x.pdf"):
        response = app.test_client().post(
            "/v1/letters", json=letter_payload(documents=[{"filename": "a.pdf", "url": url}]),
            headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 422, url
        assert _error(response)["code"] == "url_not_allowed"
    services.db.dispose()


# --- idempotency ---------------------------------------------------------------------------------

def test_the_same_idempotency_key_and_body_replays_the_first_answer(client, auth, services):
    headers = {**auth, "Idempotency-Key": "zap-run-1"}
    first = client.post("/v1/letters", json=letter_payload(), headers=headers)
    second = client.post("/v1/letters", json=letter_payload(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count(services, Letter) == 1
    assert _count(services, Job) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(client, auth, services):
    headers = {**auth, "Idempotency-Key": "zap-run-2"}
    client.post("/v1/letters", json=letter_payload(), headers=headers)
    response = client.post("/v1/letters", json=letter_payload(reference="OTHER"), headers=headers)
    assert response.status_code == 422
    assert _error(response)["code"] == "idempotency_key_reused"
    assert _count(services, Letter) == 1


def test_idempotency_keys_are_scoped_to_the_account(client, auth, other_auth, services):
    client.post("/v1/letters", json=letter_payload(), headers={**auth, "Idempotency-Key": "k"})
    other = client.post("/v1/letters", json=letter_payload(), headers={**other_auth, "Idempotency-Key": "k"})
    assert other.status_code == 201
    assert _count(services, Letter) == 2


def test_a_failed_request_releases_its_idempotency_key(client, auth, services):
    headers = {**auth, "Idempotency-Key": "fix-and-retry"}
    bad = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=headers)
    assert bad.status_code == 422
    client.post("/v1/consents", json=CONSENT, headers=auth)
    good = client.post("/v1/letters", json=letter_payload(recipient=INDIVIDUAL), headers=headers)
    assert good.status_code == 201


def _slow_send(app, pdf_server: str, headers: dict[str, str]):
    """A sender of one letter whose document takes a second to download: (status, body)."""
    payload = letter_payload(documents=[{"filename": "a.pdf", "url": f"{pdf_server}/slow.pdf"}])

    def post() -> tuple[int, dict]:
        response = app.test_client().post("/v1/letters", json=payload, headers=headers)
        return response.status_code, response.json

    return post


def test_a_concurrent_request_with_the_same_key_gets_409(app, auth, services, pdf_server, slow_document):
    post = _slow_send(app, pdf_server, {**auth, "Idempotency-Key": "double-click"})
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(post)
        assert slow_document.wait_for_requests(1)  # the first holds its reservation, downloading
        fast = pool.submit(post)
        fast_result = fast.result()  # answered while the first is still waiting for its document
        slow_document.release.set()
        results = sorted([slow.result(), fast_result], key=lambda r: r[0])
    assert [r[0] for r in results] == [201, 409]
    assert results[1][1]["error"]["code"] == "idempotency_key_in_use"
    assert _count(services, Letter) == 1


def test_a_request_overtaken_by_its_retry_stores_nothing_and_the_letter_exists_once(app, account, services,
                                                                                      pdf_server, slow_document):
    """A request whose lease ran out (its host stopped renewing it) is taken over by the client's
    retry; when the first one finally finishes it must not store its letter too."""
    from datetime import timedelta

    from connector.models import IdempotencyKey

    account_id, auth = account
    post = _slow_send(app, pdf_server, {**auth, "Idempotency-Key": "slow-zap-run"})
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post)
        assert slow_document.wait_for_requests(1)  # the first holds its reservation, downloading
        with services.db.transaction() as session:
            row = session.get(IdempotencyKey, (account_id, "slow-zap-run"))
            assert row is not None and row.state == "in_flight"
            # As if it ran on another host that stopped renewing its lease a while ago.
            row.owner = "another-host:4242:1"
            row.lease_expires_at = row.created_at - timedelta(minutes=1)
        retry = pool.submit(post)
        # The retry has taken the reservation over once it downloads too; then both may finish.
        assert slow_document.wait_for_requests(2)
        slow_document.release.set()
        first_result, retry_result = first.result(), retry.result()
    assert first_result[0] == 409 and first_result[1]["error"]["code"] == "idempotency_key_in_use"
    assert retry_result[0] == 201
    assert _count(services, Letter) == 1 and _count(services, Document) == 1 and _count(services, Job) == 1
    replay_status, replay = post()
    assert replay_status == 201 and replay["id"] == retry_result[1]["id"]


# --- lists ------------------------------------------------------------------------------------------

def test_letters_are_listed_newest_first_with_a_cursor_and_filters(client, auth, drain):
    ids = [client.post("/v1/letters", json=letter_payload(reference=f"REF-{i % 2}"), headers=auth).json["id"]
           for i in range(5)]
    first = client.get("/v1/letters?limit=2", headers=auth).json
    second = client.get(f"/v1/letters?limit=2&cursor={first['next_cursor']}", headers=auth).json
    third = client.get(f"/v1/letters?limit=2&cursor={second['next_cursor']}", headers=auth).json
    seen = [x["id"] for x in first["data"] + second["data"] + third["data"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    assert {x["reference"] for x in client.get("/v1/letters?reference=REF-1", headers=auth).json["data"]} == {"REF-1"}
    drain()
    listed = client.get("/v1/letters?status=accepted", headers=auth).json["data"]
    assert len(listed) == 5
    for item in listed:  # the list shows each letter exactly as its own page does
        assert item == client.get(f"/v1/letters/{item['id']}", headers=auth).json
        assert [p["kind"] for p in item["proofs"]] == ["deposit", "acceptance"]
    assert client.get("/v1/letters?status=queued", headers=auth).json["data"] == []
    assert len(client.get("/v1/letters?recipient=compta@", headers=auth).json["data"]) == 5
    assert client.get("/v1/letters?from=2999-01-01", headers=auth).json["data"] == []


def test_the_event_feed_is_newest_first_with_unique_ids_and_filters(client, auth, drain):
    for outcome in ("accepted", "refused"):
        client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth)
    drain()
    events = client.get("/v1/events?limit=100", headers=auth).json["data"]
    assert len(events) == 6
    assert len({e["id"] for e in events}) == 6
    times = [e["created_at"] for e in events]
    assert times == sorted(times, reverse=True)
    refused = client.get("/v1/events?type=letter.refused", headers=auth).json["data"]
    assert [e["type"] for e in refused] == ["letter.refused"]
    page1 = client.get("/v1/events?limit=4", headers=auth).json
    page2 = client.get(f"/v1/events?limit=4&cursor={page1['next_cursor']}", headers=auth).json
    assert [e["id"] for e in page1["data"] + page2["data"]] == [e["id"] for e in events]
    one = client.get(f"/v1/events/{events[0]['id']}", headers=auth).json
    assert one == events[0]


def test_health_endpoints(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_idempotency_keys_are_kept_at_least_a_day_then_forgotten(client, auth, services):
    from datetime import timedelta

    from connector.delivery.housekeeping import purge_expired
    from connector.models import IdempotencyKey

    headers = {**auth, "Idempotency-Key": "old-run"}
    client.post("/v1/letters", json=letter_payload(), headers=headers)
    with services.db.transaction() as session:
        assert purge_expired(session, ttl_hours=1) == 0  # never less than 24 h, whatever the setting
        row = session.scalar(select(IdempotencyKey))
        row.created_at = row.created_at - timedelta(hours=49)
    with services.db.transaction() as session:
        assert purge_expired(session, ttl_hours=48) == 1
    assert client.post("/v1/letters", json=letter_payload(), headers=headers).status_code == 201
    assert _count(services, Letter) == 2


@pytest.fixture
def hostile() -> Iterator[str]:
    with serve_hostile() as base:
        yield base


@pytest.fixture
def short_fetch_timeout(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["url_fetch_timeout_seconds"] = 1.0


def test_a_document_url_that_trickles_is_refused_at_the_fetch_timeout(short_fetch_timeout, client, auth, hostile):
    # Each read gets a byte within the per-read timeout: only a deadline on the whole body stops it.
    started = time.monotonic()
    response = client.post("/v1/letters", json=letter_payload(documents=[{"filename": "a.pdf",
                                                                         "url": f"{hostile}/trickle"}]),
                           headers=auth)
    assert response.status_code == 422
    assert _error(response)["code"] == "url_fetch_failed"
    assert time.monotonic() - started < 4.0
    assert client.get("/v1/letters", headers=auth).json["data"] == []  # nothing half-stored
