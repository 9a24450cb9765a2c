"""Small helpers shared by the API blueprints: services, query arguments, cursor pagination, and the
strict reading of everything a request brings in (JSON, query strings)."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from connector import shapes
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.letters.requests import validate_object
from connector.models import UTCDateTime
from connector.services import Services

MAX_LIMIT = 100
# Deeper than any body the API documents (a letter is 4 levels deep); JSON nested a thousand levels
# would otherwise reach the recursion limit of whatever walks it next (validation, canonical JSON).
MAX_JSON_DEPTH = 32
# Keyset values a cursor can carry: an id or a timestamp, never longer than this.
_MAX_CURSOR_TEXT = 200


def services() -> Services:
    """The Services of the running app."""
    svc: Services = current_app.extensions["lre"]
    return svc


def _invalid_json(message: str, field: str | None = None) -> ApiError:
    return ApiError(422, "invalid_json", message, field)


def _refuse_constant(name: str) -> Any:
    raise _invalid_json(f"{name} is not a JSON number; send a number, or null.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as infinity
        raise _invalid_json(f"{text[:40]} is too large for a JSON number the platforms can read.")
    return value


def _path(parts: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in parts) or "body"


def check_json_value(value: Any, root: tuple[str | int, ...] = ()) -> None:
    """Refuse a parsed JSON value nested deeper than MAX_JSON_DEPTH or holding a NUL character.

    PostgreSQL cannot store U+0000 in text, and no letter needs it: the field at fault is named.
    Iterative, so that the check itself cannot run out of stack.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, root)]
    while stack:
        item, where = stack.pop()
        if len(where) - len(root) > MAX_JSON_DEPTH:
            raise _invalid_json(f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep.", _path(where))
        if isinstance(item, str):
            if "\x00" in item:
                raise ApiError(422, "invalid_text", "Text may not contain the NUL character (\\u0000).",
                               _path(where))
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise ApiError(422, "invalid_text", "A JSON key may not contain the NUL character.",
                                   _path(where))
                stack.append((child, (*where, key)))
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))


def strict_json_loads(data: str | bytes, root: tuple[str | int, ...] = ()) -> Any:
    """Parse standard JSON only: no NaN/Infinity (Zapier, Make and n8n cannot read them back), no
    number that overflows to infinity, bounded depth, no NUL. ValueError when it is not JSON at all;
    ApiError(422) naming the field for the rest."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _invalid_json(f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep.", _path(root)) from None
    check_json_value(value, root)
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading requests with ``strict_json_loads`` (``request.get_json`` everywhere)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_json_loads(s)


def check_query_string() -> None:
    """Refuse a NUL character in any query argument or path parameter, naming it (a 500 on
    PostgreSQL otherwise: the ids of ``/v1/letters/<id>`` reach SQL as text too)."""
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise ApiError(422, "invalid_text", "Query arguments may not contain the NUL character (%00).",
                           name.replace("\x00", ""))
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(422, "invalid_text", "The URL may not contain the NUL character (%00).", name)


def install_input_guards(app: Flask) -> None:
    """Every request's JSON is read strictly, and its query string checked, before any view runs."""
    app.json = StrictJSONProvider(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.before_request(check_query_string)


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query argument within ``[minimum, maximum]``; 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise ApiError(400, f"invalid_{name}", f"{name} must be a whole number between {minimum} and {maximum}.",
                       name)
    return value


# Instants a request may carry (consent dates, a preview's letter date): outside these years the
# value is a typo or a probe, and near year 1 or 9999 the conversion to UTC overflows.
MIN_YEAR, MAX_YEAR = 1900, 2199


def bounded_instant(value: datetime, field: str) -> datetime:
    """``value`` in UTC, or a 422 naming ``field`` when it lies outside MIN_YEAR..MAX_YEAR."""
    try:
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ApiError(422, "invalid_date", f"{field} must lie between the years {MIN_YEAR} and {MAX_YEAR}.", field)
    return moment


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name as RFC 5987 ``filename*``.

    HTTP headers are Latin-1: a name like ``契約書.pdf`` put there verbatim cannot be sent at all
    (RFC 6266 section 4.3 recommends both parameters, old clients reading the first).
    """
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in filename) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


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


# A date or date-time query argument (common.iso_datetime_arg). Empty counts as not given: Zapier,
# Make and n8n send an optional field the user left blank as ``from=``.
INSTANT_QUERY: dict[str, Any] = {
    "type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}, {"maxLength": 0}],
    "description": "a date (YYYY-MM-DD) or an ISO 8601 date-time; empty means not given",
}


def iso_datetime_arg(name: str) -> datetime | None:
    """A date (``2026-11-27``) or date-time query argument, as an aware UTC datetime."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        # In UTC now: 0001-01-01T00:00:00+14:00 lies before year 1 and cannot be compared later.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(400, "invalid_date", f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time "
                                            "between the years 1 and 9999.", name) from None


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _cursor_value(value: Any, *, optional: bool) -> bool:
    """Whether ``value`` is what a cursor this API made can hold: an id, a timestamp or a count."""
    if value is None:
        return optional
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= _MAX_CURSOR_TEXT and "\x00" not in value


def _decode_cursor(raw: str) -> list[Any]:
    try:
        if len(raw) > 4 * _MAX_CURSOR_TEXT:
            raise ValueError
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)),
                            parse_constant=_refuse_constant)
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        if not (_cursor_value(values[0], optional=False) and _cursor_value(values[1], optional=True)):
            raise ValueError
        return values
    except (ValueError, ApiError, RecursionError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API gave you.", "cursor") from None


def _fits(column: InstrumentedAttribute[Any], value: Any) -> bool:
    """Whether a cursor value has the Python type of the column it is compared with."""
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return True
    return isinstance(value, str) if expected is datetime else isinstance(value, expected)


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
        if not _fits(order, first) or (tiebreak is not None and second is not None and not _fits(tiebreak, second)):
            # On PostgreSQL a text compared with an integer column is an error, not an empty page.
            raise ApiError(400, "invalid_cursor", "cursor is not one this API gave you.", "cursor")
        if isinstance(order.type, UTCDateTime):
            try:
                first = datetime.fromisoformat(first)
                first = (first if first.tzinfo else first.replace(tzinfo=UTC)).astimezone(UTC)
            except (TypeError, ValueError, OverflowError):
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


def list_answer(data: list[dict[str, Any]], next_cursor: str | None = None, *, paged: bool = True) -> Response:
    """A list answer, shaped once by :class:`connector.shapes.Page` (``object``, ``data``,
    ``next_cursor``; a list that is never paged, ``paged=False``, leaves the cursor out). The items are
    already their own shapes' JSON: only the envelope is built here."""
    envelope: dict[str, Any] = {"object": "list", "data": []}
    if paged:
        envelope["next_cursor"] = next_cursor
    answer = shapes.Page[Any].dump(**envelope)
    answer["data"] = data  # not re-validated item by item: each was dumped through its own shape
    return jsonify(answer)


def parse_body(model: type[BaseModel], *, optional: bool = False) -> Any:
    """The JSON body validated by ``model`` (an empty body is ``{}`` when ``optional``)."""
    raw = request.get_json(silent=True)
    if raw is None and optional and not request.get_data():
        raw = {}
    return validate_object(model, raw)
