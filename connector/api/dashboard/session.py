"""The dashboard's sign-in: an API key once, then a signed session cookie.

The cookie holds the account id, the API key's id and a CSRF token, signed (HMAC) with a key
derived from ``LRE_ENCRYPTION_KEYS``; the API key itself is never stored. Every request checks
that the key still exists and is not revoked, so revoking the key ends its dashboard sessions.
The cookie is ``HttpOnly``, ``SameSite=Strict``, limited to ``/dashboard`` and ``Secure`` when
the bridge's public URL is https. Forms carry the CSRF token (the sign-in form uses a
double-submit cookie, since there is no session yet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from connector.api.auth import AccountRef, KeyRef
from connector.api.db import db_session
from connector.models import Account, ApiKey
from connector.services import Services

SESSION_COOKIE = "lre_dashboard"
LOGIN_CSRF_COOKIE = "lre_dashboard_login"
LANG_COOKIE = "lre_dashboard_lang"
COOKIE_PATH = "/dashboard"


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


def load_session(services: Services) -> DashboardSession | None:
    """The visitor's session, or None (no cookie, tampered, expired, or the key was revoked)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data: dict[str, Any] = _serializer(services).loads(
            raw, max_age=int(services.settings.dashboard_session_hours * 3600))
    except BadSignature:
        return None
    found = db_session().execute(
        select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.id == str(data.get("k")), ApiKey.account_id == str(data.get("a")))
    ).first()
    if found is None or found[0].revoked_at is not None:
        return None
    key, account = found
    return DashboardSession(AccountRef(account.id, account.name),
                            KeyRef(key.id, f"{key.name} (tableau de bord)".strip(), key.prefix), str(data["c"]))


def open_session(services: Services, response: Response, account_id: str, key_id: str) -> None:
    """Sign the visitor in: set the session cookie on ``response``."""
    value = _serializer(services).dumps({"a": account_id, "k": key_id, "c": secrets.token_urlsafe(24)})
    response.set_cookie(SESSION_COOKIE, value, max_age=int(services.settings.dashboard_session_hours * 3600),
                        path=COOKIE_PATH, httponly=True, samesite="Strict", secure=_secure(services))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)


def close_session(services: Services, response: Response) -> None:
    """Sign out: remove the session cookie."""
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
