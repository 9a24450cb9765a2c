"""``/v1/alerts``: the account's alerts, and ``/v1/alerts/rules``: its alert rules' settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, Strict
from sqlalchemy import select

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.common import limit_arg, list_answer, page, parse_body
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.jsontypes import NUMBER_ONLY
from connector.api.params import PageQuery, choice
from connector.api.registry import ListOf, documented
from connector.delivery.events import ACCOUNT_EVENTS
from connector.models import Alert
from connector.monitoring.alerts import RULES, alert_to_dict, rule_configs
from connector.monitoring.models import AlertRuleSetting
from connector.monitoring.shapes import Alert as AlertShape
from connector.monitoring.shapes import AlertStatus

bp = Blueprint("alerts", __name__)

ALERT_STATUSES: tuple[str, ...] = get_args(AlertStatus)


def alerts_query(account_id: str, status: str | None) -> Any:
    """The account's alerts, optionally only the open or the resolved ones."""
    query = select(Alert).where(Alert.account_id == account_id)
    if status == "open":
        query = query.where(Alert.resolved.is_(False))
    elif status == "resolved":
        query = query.where(Alert.resolved.is_(True))
    return query


Number = int | float  # a threshold as configured (0.05, or 1): written back as it was given


class AlertRule(shapes.Shape):
    """A rule with the account's settings, as ``_rule_to_dict`` builds it."""

    object: Literal["alert_rule"]
    rule: Literal[tuple(RULES)]  # type: ignore[valid-type]
    label_fr: str
    label_en: str
    severity: str
    enabled: bool
    threshold: Number | None
    min_volume: int | None
    default_threshold: Number | None
    default_min_volume: int | None


AlertStatusChoice = choice(ALERT_STATUSES)


class AlertQuery(PageQuery):
    status: AlertStatusChoice = None


class RulePath(BaseModel):
    rule: Literal[tuple(RULES)]  # type: ignore[valid-type]


class AlertRuleIn(BaseModel):
    """The body of ``PUT /v1/alerts/rules/{rule}``; a null value goes back to the default."""

    model_config = ConfigDict(extra="forbid")

    enabled: Annotated[bool, Strict()] = True
    threshold: Annotated[float, Field(ge=0, le=1), NUMBER_ONLY] | None = None
    min_volume: Annotated[int, Field(ge=1, le=1_000_000), NUMBER_ONLY] | None = None



@bp.get("/v1/alerts")
@documented("Alerts, newest first (open while their condition holds)", operation_id="listAlerts",
            tags=["Monitoring"], query=AlertQuery, answers={200: ListOf(AlertShape)},
            description="Events " + " and ".join(t for t in ACCOUNT_EVENTS if t.startswith("alert.")) +
                        " are also sent to hooks.")
@require_api_key
def list_alerts() -> Response:
    """Alerts, newest first."""
    status = request.args.get("status") or None
    if status is not None and status not in ALERT_STATUSES:
        raise ApiError(400, "invalid_status", "status must be open or resolved.", "status")
    rows, next_cursor = page(alerts_query(g.account.id, status), Alert.created_at, Alert.id, limit_arg())
    return list_answer([alert_to_dict(a) for a in rows], next_cursor)


def _rule_to_dict(key: str, config: Any) -> dict[str, Any]:
    rule = RULES[key]
    return AlertRule.dump(**{"object": "alert_rule", "rule": key, "label_fr": rule.label_fr, "label_en": rule.label_en,
            "severity": rule.severity, "enabled": config.enabled, "threshold": config.threshold,
            "min_volume": config.min_volume,
            "default_threshold": rule.threshold, "default_min_volume": rule.min_volume})


@bp.get("/v1/alerts/rules")
@documented("The alert rules and the account's settings", operation_id="listAlertRules", tags=["Monitoring"],
            answers={200: ListOf(AlertRule)})
@require_api_key
def list_rules() -> Response:
    """Every rule with the account's settings (the defaults unless changed)."""
    configs = rule_configs(db_session(), g.account.id)
    return list_answer([_rule_to_dict(k, c) for k, c in configs.items()], paged=False)


@bp.put("/v1/alerts/rules/<rule>")
@documented("Change an alert rule (null: back to the default)", operation_id="putAlertRule", tags=["Monitoring"],
            path=RulePath, body=AlertRuleIn, body_example=examples.ALERT_RULE, answers={200: AlertRule})
@require_api_key
def put_rule(rule: str) -> Response:
    """Change one rule for the account (enable/disable, threshold, minimum volume)."""
    if rule not in RULES:
        raise ApiError(404, "not_found", f"No alert rule {rule!r}; rules: {', '.join(RULES)}.", "rule")
    body: AlertRuleIn = parse_body(AlertRuleIn)
    if RULES[rule].threshold is None and body.threshold is not None:
        raise ApiError(422, "invalid_field", f"The {rule} rule has no threshold.", "threshold")
    if RULES[rule].min_volume is None and body.min_volume is not None:
        raise ApiError(422, "invalid_field", f"The {rule} rule has no minimum volume.", "min_volume")
    session = db_session()
    row = session.get(AlertRuleSetting, (g.account.id, rule))
    if row is None:
        row = AlertRuleSetting(account_id=g.account.id, rule=rule)
        session.add(row)
    row.enabled, row.threshold, row.min_volume = body.enabled, body.threshold, body.min_volume
    session.commit()
    return jsonify(_rule_to_dict(rule, rule_configs(session, g.account.id)[rule]))


