"""``Idempotency-Key`` on every POST that creates something (Stripe / IETF draft semantics).

1. The key is reserved in its own committed transaction (state ``in_flight``): a concurrent
   request with the same key gets 409 instead of a second letter.
2. The view runs in the request session and does not commit; on success the stored response is
   written in the *same* transaction as what the view created, so "letter created" and "response
   remembered" cannot be separated by a crash.
3. Same key + same request → the stored response is replayed; same key + another body → 422.
   On an error answer the reservation is released, so the client can correct and retry.
An ``in_flight`` reservation older than the abandon delay belongs to a crashed process: nothing
was committed with it (step 2), so it can be taken over safely.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from connector.db import db_session, get_db
from connector.errors import ApiError
from connector.models import IdempotencyKey, utcnow

F = TypeVar("F", bound=Callable[..., Any])
ABANDONED_AFTER = timedelta(minutes=5)
REPLAYED_HEADERS = ("Content-Type", "Location")


def _request_fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    digest.update((request.content_type or "").split(";")[0].encode() + b"\n")
    if request.mimetype == "multipart/form-data":
        # Multipart boundaries differ on every retry: hash the parsed parts instead.
        for key in sorted(request.form):
            digest.update(f"{key}={request.form.getlist(key)}\n".encode())
        for key in sorted(request.files):
            for storage in request.files.getlist(key):
                data = storage.read()
                storage.seek(0)
                digest.update(f"{key}:{storage.filename}:".encode() + hashlib.sha256(data).digest())
    else:
        digest.update(request.get_data())
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.response_body, status=row.response_status)
    for name, value in (row.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _reserve(account_id: str, key: str, fingerprint: str) -> tuple[Response | None, datetime]:
    """Reserve ``key``; return a response to send instead of running the view, if any, and the
    reservation's time (which tells this reservation from one that took it over)."""
    db = get_db()
    now = utcnow()
    with db.transaction() as session:
        row = session.get(IdempotencyKey, (account_id, key))
        if row is not None and row.state == "in_flight" and now - row.created_at > ABANDONED_AFTER:
            session.delete(row)
            session.flush()
            row = None
        if row is None:
            session.add(IdempotencyKey(account_id=account_id, key=key, request_hash=fingerprint, created_at=now))
            try:
                session.flush()
            except IntegrityError:
                raise ApiError(
                    409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed.",
                    "Idempotency-Key",
                ) from None
            return None, now
        if row.request_hash != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request. Use a new key for a new request.",
                "Idempotency-Key",
            )
        if row.state == "in_flight":
            raise ApiError(
                409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed.",
                "Idempotency-Key",
            )
        return _replay(row), now


def _release(account_id: str, key: str, reserved_at: datetime) -> None:
    with get_db().transaction() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
                IdempotencyKey.created_at == reserved_at,  # ours, not one that took it over
            )
        )


def idempotent(view: F) -> F:
    """Wrap a creating POST view (after ``require_api_key``). The view must not commit."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        session = db_session()
        if key is None:
            response = current_app.make_response(view(*args, **kwargs))
            session.commit()
            return response
        key = key.strip()
        if not key or len(key) > 255:
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.",
                           "Idempotency-Key")
        account_id = g.account.id
        replay, reserved_at = _reserve(account_id, key, _request_fingerprint())
        if replay is not None:
            return replay
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            session.rollback()
            _release(account_id, key, reserved_at)
            raise
        if response.status_code >= 400:
            session.rollback()
            _release(account_id, key, reserved_at)
            return response
        # One conditional UPDATE in the view's transaction: it also proves the reservation is still
        # ours. A request that ran past the abandon delay may have been taken over by a retry, which
        # is doing the same work: this one then stores nothing, or the letter would exist twice.
        stored = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.account_id == account_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
                IdempotencyKey.created_at == reserved_at,
            )
            .values(
                state="done",
                response_status=response.status_code,
                response_body=response.get_data(),
                response_headers={h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
            )
        )
        if stored.rowcount != 1:
            session.rollback()
            raise ApiError(
                409, "idempotency_key_in_use",
                "This request took so long that a retry with the same Idempotency-Key took over; that retry "
                "carries it out. Nothing was stored by this one.",
                "Idempotency-Key",
            )
        session.commit()
        return response

    return wrapped  # type: ignore[return-value]


def purge_expired(session: Any, ttl_hours: int) -> int:
    """Forget keys older than the retention window (at least 24 h)."""
    cutoff = utcnow() - timedelta(hours=max(ttl_hours, 24))
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(result.rowcount or 0)
