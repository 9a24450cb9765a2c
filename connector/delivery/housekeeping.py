"""Forgetting what the bridge keeps only for a while: idempotency keys past their window.

Run by the worker's periodic housekeeping, outside any request (the HTTP layer only writes the keys).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from connector.models import IdempotencyKey, utcnow


def purge_expired(session: Any, ttl_hours: int) -> int:
    """Forget keys older than the retention window (at least 24 h)."""
    cutoff = utcnow() - timedelta(hours=max(ttl_hours, 24))
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(result.rowcount or 0)
