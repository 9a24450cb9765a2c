"""``GET /v1/kpis``: the account's sending KPIs over a window, optionally grouped."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, Field

from connector.api.auth import require_api_key
from connector.api.common import iso_datetime_arg, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.params import Instant, choice
from connector.api.registry import documented
from connector.monitoring.kpis import GROUPINGS, PRESETS, KpiQueryError, compute_kpis, resolve_window
from connector.monitoring.shapes import Kpis

bp = Blueprint("kpis", __name__)


def kpis_for_request(account_id: str, *, preset: str | None = None, group_by: str | None = None) -> dict[str, Any]:
    """The KPIs the query arguments (``preset``, ``from``, ``to``, ``group_by``) ask for; ``preset``
    and ``group_by`` given here win. Shared by the API and the dashboard: both show the same figures.
    """
    now = services().clock()
    preset = preset or request.args.get("preset") or None
    group_by = group_by or request.args.get("group_by") or None
    try:
        window = resolve_window(now, preset, iso_datetime_arg("from"), iso_datetime_arg("to"))
        return compute_kpis(db_session(), account_id, window, now, group_by)
    except KpiQueryError as exc:
        raise ApiError(400, "invalid_kpi_query", str(exc), exc.field) from None


PresetChoice = choice(PRESETS)
GroupingChoice = choice(GROUPINGS)


class KpiQuery(BaseModel):
    preset: PresetChoice = Field(
        None, description="a window ending now (instead of from/to)")
    from_: Instant = Field(None, alias="from",
                           description="default: 30 days before to (a date, an ISO 8601 date-time, or empty)")
    to: Instant = Field(None, description="default: now; the window is at most 366 days (a date, a date-time, "
                                          "or empty)")
    group_by: GroupingChoice = None


@bp.get("/v1/kpis")
@documented("Sending KPIs: deliverability, acceptance delay, refusal, neglect and failure rates",
            operation_id="getKpis", tags=["Monitoring"], query=KpiQuery, answers={200: Kpis},
            description="Letters created in [from, to). A rate is null when nothing could be counted; neglect "
                        "only counts letters whose 15-day acceptance window has closed.")
@require_api_key
def get_kpis() -> Response:
    """KPIs of the authenticated account's letters."""
    return jsonify(kpis_for_request(g.account.id))
