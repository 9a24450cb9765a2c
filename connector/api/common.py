"""Small helpers shared by the API blueprints: services, query arguments, cursor pagination."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from connector.db import db_session
from connector.errors import ApiError
from connector.letters import validate_object
from connector.models import UTCDateTime
from connector.services import Services

MAX_LIMIT = 100


def services() -> Services:
    """The Services of the running app."""
    svc: Services = current_app.extensions["lre"]
    return svc


def limit_arg(default: int = 20) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_limit", f"limit must be a whole number between 1 and {MAX_LIMIT}.",
                       "limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}.", "limit")
    return value


def iso_datetime_arg(name: str) -> datetime | None:
    """A date (``2026-11-27``) or date-time query argument, as an aware UTC datetime."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_date", f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time.",
                       name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        return values
    except (ValueError, json.JSONDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API gave you.", "cursor") from None


def page(
    query: Select[Any],
    order: InstrumentedAttribute[Any],
    tiebreak: InstrumentedAttribute[Any] | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Newest first by ``order`` (then ``tiebreak``); keyset pagination with an opaque cursor."""
    cursor = request.args.get("cursor")
    if cursor:
        first, second = _decode_cursor(cursor)
        if isinstance(order.type, UTCDateTime):
            try:
                first = datetime.fromisoformat(first)
            except (TypeError, ValueError):
                raise ApiError(400, "invalid_cursor", "cursor is not one this API gave you.", "cursor") from None
        if tiebreak is None:
            query = query.where(order < first)
        else:
            # Spelled out rather than a row-value comparison so each value binds with its column's type.
            query = query.where(or_(order < first, and_(order == first, tiebreak < second)))
    ordering = [order.desc()] + ([tiebreak.desc()] if tiebreak is not None else [])
    rows = list(db_session().scalars(query.order_by(*ordering).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        first_value = getattr(last, order.key)
        if isinstance(first_value, datetime):
            first_value = first_value.isoformat()
        next_cursor = _encode_cursor([first_value, getattr(last, tiebreak.key) if tiebreak is not None else None])
    return rows, next_cursor


def parse_body(model: type[BaseModel], *, optional: bool = False) -> Any:
    """The JSON body validated by ``model`` (an empty body is ``{}`` when ``optional``)."""
    raw = request.get_json(silent=True)
    if raw is None and optional and not request.get_data():
        raw = {}
    return validate_object(model, raw)
