"""``Idempotency-Key`` on every POST that creates something (Stripe / IETF draft semantics).

1. The key is reserved in its own committed transaction (state ``in_flight``): a concurrent
   request with the same key gets 409 instead of a second letter.
2. The view runs in the request session and does not commit; on success the stored response is
   written in the *same* transaction as what the view created, so "letter created" and "response
   remembered" cannot be separated by a crash.
3. Same key + same request → the stored response is replayed; same key + another body → 422.
   On an error answer the reservation is released, so the client can correct and retry.

A reservation belongs to a live process: it names its owner (``host:pid:start time``) and holds
a short lease that a thread of that process renews while the request runs. A retry finding the
key in flight takes it over when the owner is seen to be gone (same host, process no longer
there: a crash or a restart) or its lease ran out (another host that stopped renewing). Nothing
was committed with a dead reservation (step 2), so the retry does the work, once; and a request
that was taken over cannot store anything either (its final UPDATE names its own reservation).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from connector.api.db import db_session, get_db
from connector.api.errors import ApiError
from connector.api.registry import IDEMPOTENT_ATTRIBUTE
from connector.db import Database
from connector.models import IdempotencyKey, utcnow

F = TypeVar("F", bound=Callable[..., Any])
# Reservations without an owner (made before leases existed) are abandoned after this delay.
ABANDONED_AFTER = timedelta(minutes=5)
LEASE = timedelta(seconds=30)
RENEW_EVERY_SECONDS = 10.0
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
                part = hashlib.sha256()  # in pieces: a file part may be tens of megabytes
                storage.stream.seek(0)
                while chunk := storage.stream.read(1024 * 1024):
                    part.update(chunk)
                storage.stream.seek(0)
                digest.update(f"{key}:{storage.filename}:".encode() + part.digest())
    else:
        from connector.api.bodies import body_sha256_into  # the body may be spooled to disk

        body_sha256_into(digest)
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.response_body, status=row.response_status)
    for name, value in (row.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None when there is no such process.

    With the pid it tells a process from a later one that reuses the pid.
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_owner() -> str:
    """This process as a reservation's owner: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def owner_is_gone(owner: str | None) -> bool:
    """Whether ``owner`` is a process of this host that no longer runs (crashed or restarted).

    Another host's process cannot be seen from here: its lease decides.
    """
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit() or parts[2] == "?":
        return False
    return _start_ticks(int(parts[1])) != parts[2]


def _abandoned(row: IdempotencyKey, now: datetime) -> bool:
    if row.state != "in_flight":
        return False
    if row.owner is None:
        return now - row.created_at > ABANDONED_AFTER
    return owner_is_gone(row.owner) or (row.lease_expires_at is not None and row.lease_expires_at < now)


class _Leases:
    """The reservations this process holds, renewed by one daemon thread while their requests run."""

    def __init__(self) -> None:
        self._held: dict[tuple[int, str, str, datetime], Database] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hold(self, db: Database, account_id: str, key: str, reserved_at: datetime) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's reservations and thread are not ours
                self._held, self._thread, self._pid = {}, None, os.getpid()
            self._held[(id(db), account_id, key, reserved_at)] = db
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_forever, name="lre-idempotency-lease",
                                                daemon=True)
                self._thread.start()

    def drop(self, db: Database, account_id: str, key: str, reserved_at: datetime) -> None:
        with self._lock:
            self._held.pop((id(db), account_id, key, reserved_at), None)

    def renew(self) -> None:
        """Extend the lease of every reservation still held (also called by tests)."""
        with self._lock:
            held = list(self._held.items())
        owner = process_owner()
        for (_, account_id, key, reserved_at), db in held:
            try:
                with db.transaction() as session:
                    session.execute(
                        update(IdempotencyKey)
                        .where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key,
                               IdempotencyKey.created_at == reserved_at, IdempotencyKey.owner == owner,
                               IdempotencyKey.state == "in_flight")
                        .values(lease_expires_at=utcnow() + LEASE)
                    )
            except Exception:  # noqa: BLE001 - a database hiccup: the next round tries again
                continue

    def _renew_forever(self) -> None:
        stop = threading.Event()
        while not stop.wait(RENEW_EVERY_SECONDS):
            self.renew()


LEASES = _Leases()


def _reserve(account_id: str, key: str, fingerprint: str) -> tuple[Response | None, datetime]:
    """Reserve ``key``; return a response to send instead of running the view, if any, and the
    reservation's time (which tells this reservation from one that took it over)."""
    db = get_db()
    now = utcnow()
    with db.transaction() as session:
        row = session.get(IdempotencyKey, (account_id, key))
        if row is not None and row.request_hash == fingerprint and _abandoned(row, now):
            session.delete(row)
            session.flush()
            row = None
        if row is None:
            session.add(IdempotencyKey(account_id=account_id, key=key, request_hash=fingerprint, created_at=now,
                                       owner=process_owner(), lease_expires_at=now + LEASE))
            try:
                session.flush()
            except IntegrityError:
                raise ApiError(
                    409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed.",
                    "Idempotency-Key",
                ) from None
            LEASES.hold(db, account_id, key, now)
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
            return _run_reserved(view, session, account_id, key, reserved_at, args, kwargs)
        finally:
            LEASES.drop(get_db(), account_id, key, reserved_at)

    # The OpenAPI document lists the Idempotency-Key header for every view wrapped here.
    setattr(wrapped, IDEMPOTENT_ATTRIBUTE, True)
    return wrapped  # type: ignore[return-value]


def _run_reserved(view: Callable[..., Any], session: Any, account_id: str, key: str, reserved_at: datetime,
                  args: tuple[Any, ...], kwargs: dict[str, Any]) -> Response:
    """Run the view under a reservation; store its answer with what it created, or release the key."""
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
    # ours. A request whose reservation was taken over (its lease ran out) has a retry doing the
    # same work: this one then stores nothing, or the letter would exist twice.
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
