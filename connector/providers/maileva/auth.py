"""Maileva's OAuth2 access tokens, cached per settings and shared by adapter instances."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Token:
    access_token: str
    expires_at: float
    refresh_token: str | None
    refresh_expires_at: float


_TOKENS: dict[str, _Token] = {}
_TOKENS_LOCK = threading.Lock()
# Renew a little before expiry so a token does not lapse mid-request.
_EXPIRY_MARGIN = 30.0


def _token_cache_key(settings: Mapping[str, Any]) -> str:
    material = "\x00".join(
        str(settings.get(k) or "") for k in ("auth_url", "client_id", "client_secret", "username", "password")
    )
    return hashlib.sha256(material.encode()).hexdigest()


def clear_token_cache() -> None:
    """Forget every cached token (tests; credentials changed)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()
