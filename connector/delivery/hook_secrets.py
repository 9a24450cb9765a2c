"""Signing secrets of a subscription (and of the intake): made, rotated with a grace period, read.

A secret list is stored encrypted (``Hook.secrets_encrypted``), newest first; after a rotation the
older secrets stay valid for :data:`ROTATION_GRACE`, so a subscriber can switch without a gap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connector.lib import signing
from connector.lib.crypto import Encryptor

ROTATION_GRACE = timedelta(hours=24)


def new_secret_list(now: datetime) -> tuple[list[dict[str, Any]], str]:
    """A fresh secret list (for ``Hook.secrets_encrypted`` or the intake secret) and its secret."""
    secret = signing.generate_secret()
    return [{"secret": secret, "created_at": now.isoformat(), "expires_at": None}], secret


def rotate_secret_list(
    entries: list[dict[str, Any]], now: datetime, grace: timedelta = ROTATION_GRACE
) -> tuple[list[dict[str, Any]], str]:
    """Put a new secret first; older ones stay valid for ``grace`` (expired ones are dropped)."""
    fresh, secret = new_secret_list(now)
    if grace <= timedelta(0):
        return fresh, secret
    until = now + grace
    kept: list[dict[str, Any]] = []
    for entry in live_secrets(entries, now):
        expires = _parse_time(entry.get("expires_at"))
        kept.append({**entry, "expires_at": min(expires, until).isoformat() if expires else until.isoformat()})
    return fresh + kept, secret


def live_secrets(entries: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The entries still valid at ``now``, newest first."""
    return [e for e in entries if (expires := _parse_time(e.get("expires_at"))) is None or expires > now]


def keys_from(encryptor: Encryptor, encrypted: str | None, now: datetime) -> list[bytes]:
    """The HMAC keys of an encrypted secret list that are valid at ``now`` (empty if none)."""
    if not encrypted:
        return []
    entries = encryptor.decrypt_json(encrypted)
    return [signing.decode_secret(e["secret"]) for e in live_secrets(entries, now)]


def previous_secret_expiry(entries: list[dict[str, Any]], now: datetime) -> str | None:
    """When the last still-valid older secret stops being accepted (ISO), if any."""
    older = [e["expires_at"] for e in live_secrets(entries, now)[1:] if e.get("expires_at")]
    return max(older) if older else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
