"""The invitation link's token: ``<invitation id>.<HMAC-SHA256>``, tamper-evident, nothing stored.

The MAC key is derived from ``LRE_ENCRYPTION_KEYS`` (every configured key verifies, the first
signs), so a rotated key keeps old links valid until the old key is removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_LABEL = b"lre-bridge consent link v1"
_ID = re.compile(r"^cinv_[0-9a-f]{32}$")
MAX_TOKEN_LENGTH = 120


def _subkey(key: bytes) -> bytes:
    return hmac.new(key, _LABEL, hashlib.sha256).digest()


def _mac(key: bytes, invitation_id: str) -> str:
    digest = hmac.new(_subkey(key), invitation_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(keys: list[bytes], invitation_id: str) -> str:
    """The token of ``invitation_id`` under the newest key."""
    return f"{invitation_id}.{_mac(keys[0], invitation_id)}"


def verify(keys: list[bytes], token: str) -> str | None:
    """The invitation id when ``token`` was signed by one of ``keys``; None otherwise."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    invitation_id, mac = token.split(".")
    if not _ID.match(invitation_id):
        return None
    for key in keys:
        if hmac.compare_digest(mac.encode("ascii", "replace"), _mac(key, invitation_id).encode("ascii")):
            return invitation_id
    return None
