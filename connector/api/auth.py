"""API keys: ``Authorization: Bearer <key>``; keys are shown once and stored as SHA-256."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.config import random_token
from connector.models import Account, ApiKey

F = TypeVar("F", bound=Callable[..., Any])
KEY_PREFIX = "lre_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """A new key for ``account``; returns the row and the clear key (the only time it exists)."""
    clear = random_token(KEY_PREFIX)
    row = ApiKey(account_id=account.id, name=name, key_hash=hash_key(clear), prefix=clear[:10])
    session.add(row)
    session.flush()
    return row, clear


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or "" when there is none.

    The scheme is case-insensitive (RFC 9110 section 11.1): ``bearer <key>`` is the same request.
    """
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(session: Session, header: str | None) -> tuple[Account, ApiKey]:
    """The account behind an Authorization header; ApiError(401) otherwise."""
    token = bearer_token(header)
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "Missing API key: send it as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = session.execute(
        select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.key_hash == hash_key(token))
    ).first()
    if found is None or found[0].revoked_at is not None:
        raise ApiError(
            401, "invalid_api_key", "This API key is not valid or was revoked.", headers={"WWW-Authenticate": "Bearer"}
        )
    row, account = found
    return account, row


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The authenticated account, detached from any database session."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class KeyRef:
    id: str
    name: str
    prefix: str


def require_api_key(view: F) -> F:
    """Authenticate the request; sets ``g.account`` (AccountRef) and ``g.api_key`` (KeyRef)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        session = db_session()
        account, key = authenticate(session, request.headers.get("Authorization"))
        g.account = AccountRef(account.id, account.name)
        g.api_key = KeyRef(key.id, key.name, key.prefix)
        # End the read transaction now: on SQLite it holds the write lock, and the view may
        # spend seconds downloading or rendering before it writes anything.
        session.rollback()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
