"""The dashboard's sign-in: an API key once, then a signed session cookie.

The cookie holds a random session token, signed (HMAC) with a key derived from
``LRE_ENCRYPTION_KEYS``; the API key itself is never stored. The session lives on the server, in
``dashboard_sessions`` (keyed by the token's SHA-256, with the account, the key, the CSRF token and
the expiry): every request reads that row and checks that the key still exists and is not revoked.
Signing out deletes the row, so a copy of the cookie stops working at once; revoking the key ends
its sessions too.
The cookie is ``HttpOnly``, ``SameSite=Strict``, limited to ``/dashboard`` and ``Secure`` when
the bridge's public URL is https. Forms carry the CSRF token (the sign-in form uses a
double-submit cookie, since there is no session yet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select

from connector.api.auth import AccountRef, KeyRef
from connector.api.db import db_session
from connector.models import Account, ApiKey, DashboardSessionRow
from connector.services import Services

SESSION_COOKIE = "lre_dashboard"
LOGIN_CSRF_COOKIE = "lre_dashboard_login"
LANG_COOKIE = "lre_dashboard_lang"
COOKIE_PATH = "/dashboard"
# Sessions one API key may hold at once: a new sign-in beyond it ends that key's oldest session
# (the table cannot grow without bound however often someone signs in).
MAX_SESSIONS_PER_KEY = 20


@dataclass(frozen=True)
class DashboardSession:
    """A signed-in visitor: the account, the key used to sign in, and the forms' CSRF token."""

    account: AccountRef
    api_key: KeyRef
    csrf: str


def _serializer(services: Services) -> URLSafeTimedSerializer:
    # A key of its own, derived from the encryption key: a leaked cookie key reveals nothing else.
    secret = hmac.new(services.settings.fernet_keys()[0], b"lre-dashboard-session", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt="lre-dashboard")


def _secure(services: Services) -> bool:
    return services.settings.public_url.startswith("https://")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _cookie_token(services: Services) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data: Any = _serializer(services).loads(raw, max_age=int(services.settings.dashboard_session_hours * 3600))
    except BadSignature:
        return None
    token = data.get("s") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


def load_session(services: Services) -> DashboardSession | None:
    """The visitor's session, or None (no cookie, tampered, expired, signed out, or the key was revoked)."""
    token = _cookie_token(services)
    if token is None:
        return None
    found = db_session().execute(
        select(DashboardSessionRow, ApiKey, Account)
        .join(ApiKey, ApiKey.id == DashboardSessionRow.api_key_id)
        .join(Account, Account.id == DashboardSessionRow.account_id)
        .where(DashboardSessionRow.token_hash == _token_hash(token), ApiKey.account_id == Account.id)
    ).first()
    if found is None:
        return None
    row, key, account = found
    if key.revoked_at is not None or row.expires_at <= services.clock():
        return None
    return DashboardSession(AccountRef(account.id, account.name),
                            KeyRef(key.id, f"{key.name} (tableau de bord)".strip(), key.prefix), row.csrf)


def open_session(services: Services, response: Response, account_id: str, key_id: str) -> None:
    """Sign the visitor in: store a new session and set its cookie on ``response``."""
    token = secrets.token_urlsafe(32)
    now = services.clock()
    lifetime = timedelta(hours=services.settings.dashboard_session_hours)
    with services.db.transaction() as session:
        session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.expires_at <= now))
        kept = select(DashboardSessionRow.token_hash).where(DashboardSessionRow.api_key_id == key_id).order_by(
            DashboardSessionRow.created_at.desc()).limit(MAX_SESSIONS_PER_KEY - 1)
        session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.api_key_id == key_id,
                                                          DashboardSessionRow.token_hash.not_in(kept)))
        session.add(DashboardSessionRow(token_hash=_token_hash(token), account_id=account_id, api_key_id=key_id,
                                        csrf=secrets.token_urlsafe(24), created_at=now, expires_at=now + lifetime))
    value = _serializer(services).dumps({"s": token})
    response.set_cookie(SESSION_COOKIE, value, max_age=int(lifetime.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="Strict", secure=_secure(services))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)


def close_session(services: Services, response: Response) -> None:
    """Sign out: delete the session on the server (a copied cookie is refused from now on) and
    remove the cookie."""
    token = _cookie_token(services)
    if token is not None:
        with services.db.transaction() as session:
            session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.token_hash == _token_hash(token)))
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict",
                           secure=_secure(services))


def new_login_token() -> str:
    """A fresh token for the sign-in form (also set as a cookie by :func:`set_login_token`)."""
    return secrets.token_urlsafe(24)


def set_login_token(services: Services, response: Response, token: str) -> None:
    """The double-submit cookie of the sign-in form."""
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path=COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=_secure(services))


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (both must be present)."""
    return bool(given and expected) and hmac.compare_digest(str(given), str(expected))
