"""Idempotency reservations belong to a live process: a retry after a crash does the work, once."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from sqlalchemy import func, select

from connector.api import idempotency
from connector.models import IdempotencyKey, Letter, utcnow
from tests.helpers import letter_payload


def _dead_owner() -> str:
    """The owner string of a process of this host that has exited (as after a crash or restart)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{idempotency.socket.gethostname()}:{process.pid}:1"


def _reservation(services, account_id: str, key: str, fingerprint_from, owner: str, lease_seconds: float) -> None:
    """Leave an in-flight reservation exactly as a request would have left it (same fingerprint)."""
    with services.db.transaction() as session:
        now = utcnow()
        session.add(IdempotencyKey(account_id=account_id, key=key, request_hash=fingerprint_from, created_at=now,
                                   owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds)))


def _fingerprint(app, auth, payload) -> str:
    with app.test_request_context("/v1/letters", method="POST", json=payload, headers=auth):
        return idempotency._request_fingerprint()


def _letters(services) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Letter)) or 0)


def test_a_retry_right_after_a_crash_does_the_work_once(app, client, account, services):
    account_id, auth = account
    payload = letter_payload()
    _reservation(services, account_id, "zap-42", _fingerprint(app, auth, payload), _dead_owner(), lease_seconds=300)
    first = client.post("/v1/letters", json=payload, headers={**auth, "Idempotency-Key": "zap-42"})
    assert first.status_code == 201, first.json
    again = client.post("/v1/letters", json=payload, headers={**auth, "Idempotency-Key": "zap-42"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"] and _letters(services) == 1


def test_a_reservation_of_a_live_process_is_still_respected(app, client, account, services):
    account_id, auth = account
    payload = letter_payload()
    _reservation(services, account_id, "zap-43", _fingerprint(app, auth, payload), idempotency.process_owner(),
                 lease_seconds=300)
    response = client.post("/v1/letters", json=payload, headers={**auth, "Idempotency-Key": "zap-43"})
    assert response.status_code == 409 and response.json["error"]["code"] == "idempotency_key_in_use"
    assert _letters(services) == 0


def test_another_hosts_reservation_is_taken_over_once_its_lease_ran_out(app, client, account, services):
    account_id, auth = account
    payload = letter_payload()
    fingerprint = _fingerprint(app, auth, payload)
    _reservation(services, account_id, "zap-44", fingerprint, "elsewhere:1:1", lease_seconds=60)
    assert client.post("/v1/letters", json=payload, headers={**auth, "Idempotency-Key": "zap-44"}).status_code == 409
    with services.db.transaction() as session:
        session.get(IdempotencyKey, (account_id, "zap-44")).lease_expires_at = utcnow() - timedelta(seconds=1)
    assert client.post("/v1/letters", json=payload, headers={**auth, "Idempotency-Key": "zap-44"}).status_code == 201
    assert _letters(services) == 1


def test_a_running_request_keeps_its_lease_renewed(app, account, services):
    account_id, _ = account
    with services.db.transaction() as session:
        now = utcnow()
        session.add(IdempotencyKey(account_id=account_id, key="long", request_hash="x", created_at=now,
                                   owner=idempotency.process_owner(), lease_expires_at=now))
    idempotency.LEASES.hold(services.db, account_id, "long", now)
    try:
        idempotency.LEASES.renew()
    finally:
        idempotency.LEASES.drop(services.db, account_id, "long", now)
    with services.db.transaction() as session:
        row = session.get(IdempotencyKey, (account_id, "long"))
        assert row.lease_expires_at > now + idempotency.LEASE - timedelta(seconds=5)
