"""Alert rules, their evaluation, and the alert lifecycle (raised once, open, resolved).

Each rule looks at one account and answers with the conditions that hold *now* (``Finding``s,
one per subject: a hook id, or ``""`` for account-wide rules). :func:`evaluate_account` compares
them with the account's open alerts:

- a finding with no open alert raises one (``alert.raised`` event, optional e-mail);
- an open alert whose finding is still there stays open (``last_seen_at`` moves);
- an open alert without its finding is resolved once the condition has stayed clear for
  ``alert_resolve_after_seconds`` (``alert.resolved``): a rate hovering at its threshold does
  not raise and resolve on every evaluation.

"Raised once" is guaranteed by the database: an open alert has ``open_key`` set and the column is
unique, so two workers evaluating at once cannot both raise it. The worker calls
:func:`evaluate_quietly` on its schedule; tests call :func:`evaluate_all` with a driven clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import shapes
from connector.delivery import outbox
from connector.delivery.events import record_account_event
from connector.letters.vocabulary import JobStatus
from connector.models import Account, Alert, Hook, Job, Letter, ProviderSettings
from connector.monitoring.kpis import Window, compute_kpis
from connector.monitoring.models import AlertRuleSetting
from connector.monitoring.shapes import Alert as AlertShape
from connector.services import Services

log = logging.getLogger(__name__)

ALERT_RAISED = "alert.raised"
ALERT_RESOLVED = "alert.resolved"
# Failure codes that mean the account's provider credentials or settings are wrong.
CREDENTIAL_FAILURES = ("provider_auth_failed", "provider_misconfigured", "sender_not_authorised")


@dataclass(frozen=True)
class Finding:
    """A condition that holds now, for one subject of a rule."""

    subject: str
    message: str
    value: float | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class RuleConfig:
    """A rule's settings for one account (its defaults unless the account changed them)."""

    enabled: bool
    threshold: float | None
    min_volume: int | None


Evaluator = Callable[[Session, str, RuleConfig, datetime], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """One alert rule: labels, defaults and the function that looks for its condition."""

    key: str
    label_fr: str
    label_en: str
    severity: str
    evaluate: Evaluator
    threshold: float | None = None
    min_volume: int | None = None


def _last_24h(session: Session, account_id: str, now: datetime) -> dict[str, Any]:
    return compute_kpis(session, account_id, Window(now - timedelta(hours=24), now), now)["totals"]


def _failure_rate(session: Session, account_id: str, config: RuleConfig, now: datetime) -> list[Finding]:
    totals = _last_24h(session, account_id, now)
    rate, volume = totals["technical_failure_rate"], totals["submitted"]
    if rate is None or volume < (config.min_volume or 0) or rate <= (config.threshold or 0):
        return []
    return [Finding("", f"Taux d'échec technique de {rate:.1%} sur 24 h ({totals['by_status']['failed']} "
                        f"lettre(s) sur {volume}) / technical failure rate {rate:.1%} over 24 h",
                    rate, {"failed": totals["by_status"]["failed"], "submitted": volume})]


def _bounce_rate(session: Session, account_id: str, config: RuleConfig, now: datetime) -> list[Finding]:
    totals = _last_24h(session, account_id, now)
    deposited, bounced = totals["deposited"], totals["by_status"]["bounced"]
    if not deposited or deposited < (config.min_volume or 0):
        return []
    rate = bounced / deposited
    if rate <= (config.threshold or 0):
        return []
    return [Finding("", f"Taux de rebond de {rate:.1%} sur 24 h ({bounced} sur {deposited}) / "
                        f"bounce rate {rate:.1%} over 24 h", rate, {"bounced": bounced, "deposited": deposited})]


def _dead_jobs(session: Session, account_id: str, config: RuleConfig, now: datetime) -> list[Finding]:
    count, oldest = session.execute(
        select(func.count(), func.min(Job.id)).where(Job.account_id == account_id, Job.status == JobStatus.DEAD)
    ).one()
    if not count:
        return []
    return [Finding("", f"{count} tâche(s) abandonnée(s) après leurs essais / {count} dead-lettered job(s)",
                    float(count), {"dead_jobs": count, "oldest_job_id": oldest})]


def _disabled_hooks(session: Session, account_id: str, config: RuleConfig, now: datetime) -> list[Finding]:
    hooks = session.execute(
        select(Hook.id, Hook.target_url, Hook.disabled_reason)
        .where(Hook.account_id == account_id, Hook.status == "disabled").order_by(Hook.id).limit(100)
    )
    return [Finding(hook_id, f"Abonnement webhook désactivé / webhook subscription disabled: {target}",
                    None, {"hook_id": hook_id, "target_url": target, "reason": reason})
            for hook_id, target, reason in hooks]


def _failing_credentials(session: Session, account_id: str, config: RuleConfig, now: datetime) -> list[Finding]:
    # Only failures after the credentials were last changed: saving new ones clears the alert.
    changed = session.scalar(select(ProviderSettings.updated_at).where(ProviderSettings.account_id == account_id))
    since = max(now - timedelta(hours=24), changed) if changed else now - timedelta(hours=24)
    letter_code = session.scalar(
        select(Letter.failure_code).where(Letter.account_id == account_id, Letter.status == "failed",
                                          Letter.failure_code.in_(CREDENTIAL_FAILURES), Letter.updated_at > since)
        .limit(1)
    )
    job_error = session.scalar(
        select(Job.last_error).where(Job.account_id == account_id, Job.status == JobStatus.PENDING,
                                     Job.updated_at > since,
                                     or_(*(Job.last_error.startswith(code) for code in CREDENTIAL_FAILURES)))
        .limit(1)
    )
    code = letter_code or (job_error or "").split(":", 1)[0]
    if not code:
        return []
    return [Finding("", f"Le prestataire refuse les identifiants du compte ({code}) / "
                        f"the provider refuses the account's credentials", None, {"code": code})]


RULES: dict[str, Rule] = {rule.key: rule for rule in (
    Rule("technical_failure_rate", "Taux d'échec technique", "Technical failure rate", "critical",
         _failure_rate, threshold=0.01, min_volume=50),
    Rule("bounce_rate", "Taux de rebond", "Bounce rate", "warning", _bounce_rate, threshold=0.05, min_volume=50),
    Rule("dead_jobs", "Tâches abandonnées", "Dead-lettered jobs", "critical", _dead_jobs),
    Rule("hook_disabled", "Webhook désactivé", "Webhook subscription disabled", "warning", _disabled_hooks),
    Rule("provider_credentials", "Identifiants du prestataire", "Provider credentials failing", "critical",
         _failing_credentials),
)}


def rule_configs(session: Session, account_id: str) -> dict[str, RuleConfig]:
    """Every rule's settings for ``account_id``: its overrides over the defaults."""
    overrides = {row.rule: row for row in session.scalars(
        select(AlertRuleSetting).where(AlertRuleSetting.account_id == account_id))}
    configs = {}
    for key, rule in RULES.items():
        row = overrides.get(key)
        configs[key] = RuleConfig(
            enabled=row.enabled if row else True,
            threshold=row.threshold if row and row.threshold is not None else rule.threshold,
            min_volume=row.min_volume if row and row.min_volume is not None else rule.min_volume,
        )
    return configs


def open_key(account_id: str, rule: str, subject: str) -> str:
    return f"{account_id}:{rule}:{subject}"


@dataclass
class Evaluation:
    """What one evaluation changed (ids of the alerts raised and resolved)."""

    raised: list[int]
    resolved: list[int]


def raise_alert(session: Session, account_id: str, rule_key: str, finding: Finding, now: datetime) -> Alert | None:
    """Open an alert for ``finding`` unless one is open already; emits ``alert.raised``.

    Runs in a savepoint so that losing the race to another worker (the unique ``open_key``)
    leaves the caller's transaction intact. Returns None when the alert was already open.
    """
    rule = RULES[rule_key]
    key = open_key(account_id, rule_key, finding.subject)
    if session.scalar(select(Alert.id).where(Alert.open_key == key)) is not None:
        return None
    alert = Alert(account_id=account_id, code=rule_key, message=finding.message, open_key=key,
                  subject=finding.subject or None, severity=rule.severity, value=finding.value,
                  threshold=rule_configs(session, account_id)[rule_key].threshold, details=finding.details or {},
                  created_at=now, last_seen_at=now)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return None
    record_account_event(session, account_id, ALERT_RAISED, alert_to_dict(alert), now)
    _queue_email(session, alert, ALERT_RAISED)
    return alert


def raise_hook_disabled(session: Session, hook: Hook, reason: str, now: datetime) -> None:
    """Raise the ``hook_disabled`` alert as the subscription is disabled (not at the next evaluation)."""
    finding = Finding(hook.id, f"Abonnement webhook désactivé / webhook subscription disabled: {hook.target_url}",
                      None, {"hook_id": hook.id, "target_url": hook.target_url, "reason": reason})
    raise_alert(session, hook.account_id, "hook_disabled", finding, now)


def resolve_alert(session: Session, alert: Alert, now: datetime) -> None:
    """Close ``alert`` (its condition has cleared); emits ``alert.resolved``."""
    alert.open_key = None
    alert.resolved = True
    alert.resolved_at = now
    session.flush()
    if alert.account_id:
        record_account_event(session, alert.account_id, ALERT_RESOLVED, alert_to_dict(alert), now)
    _queue_email(session, alert, ALERT_RESOLVED)


def evaluate_account(session: Session, services: Services, account_id: str, now: datetime) -> Evaluation:
    """Run every enabled rule for one account and move its alerts accordingly."""
    debounce = timedelta(seconds=services.settings.alert_resolve_after_seconds)
    result = Evaluation([], [])
    findings: dict[str, tuple[str, Finding]] = {}
    for key, config in rule_configs(session, account_id).items():
        if config.enabled:
            for finding in RULES[key].evaluate(session, account_id, config, now):
                findings[open_key(account_id, key, finding.subject)] = (key, finding)
    open_alerts = session.scalars(
        select(Alert).where(Alert.account_id == account_id, Alert.open_key.is_not(None)))
    for alert in list(open_alerts):
        found = findings.pop(str(alert.open_key), None)
        if found is not None:
            alert.last_seen_at, alert.clear_since = now, None
            alert.value, alert.message = found[1].value, found[1].message
        elif alert.clear_since is None:
            alert.clear_since = now
        elif now - alert.clear_since >= debounce:
            resolve_alert(session, alert, now)
            result.resolved.append(alert.id)
    for key, finding in findings.values():
        raised = raise_alert(session, account_id, key, finding, now)
        if raised is not None:
            result.raised.append(raised.id)
    return result


def evaluate_all(services: Services, now: datetime | None = None) -> Evaluation:
    """Evaluate every account, one transaction each (one account's trouble never blocks another)."""
    now = now or services.clock()
    total = Evaluation([], [])
    with services.db.transaction() as session:
        account_ids = list(session.scalars(select(Account.id).order_by(Account.id)))
    for account_id in account_ids:
        try:
            with services.db.transaction() as session:
                result = evaluate_account(session, services, account_id, now)
        except Exception:  # noqa: BLE001 - the next evaluation tries again; the others go on
            log.exception("alert evaluation failed for account %s", account_id)
            continue
        total.raised += result.raised
        total.resolved += result.resolved
    if total.raised or total.resolved:
        log.info("alerts: %d raised, %d resolved", len(total.raised), len(total.resolved))
    return total


def evaluate_quietly(services: Services) -> None:
    """One evaluation for the worker's maintenance thread (which keeps the schedule, every
    ``alert_evaluation_seconds``): a failure is logged, never raised."""
    try:
        evaluate_all(services)
    except Exception:  # noqa: BLE001 - monitoring must never stop the worker
        log.exception("alert evaluation failed")


# --- public shape and e-mail -----------------------------------------------------------------


_iso = shapes.iso  # one timestamp format for every answer


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """An alert as the API, the hooks and the dashboard show it."""
    rule = RULES.get(alert.code)
    # Through the published model: the answer and its OpenAPI schema (Alert) cannot drift apart.
    return AlertShape.dump(**{
        "id": f"alr_{alert.id}",
        "object": "alert",
        "rule": alert.code,
        "label_fr": rule.label_fr if rule else alert.code,
        "label_en": rule.label_en if rule else alert.code,
        "status": "resolved" if alert.resolved else "open",
        "severity": alert.severity or "warning",
        "message": alert.message,
        "subject": alert.subject,
        "letter_id": alert.letter_id,
        "value": alert.value,
        "threshold": alert.threshold,
        "details": alert.details or {},
        "raised_at": _iso(alert.created_at),
        "last_seen_at": _iso(alert.last_seen_at),
        "resolved_at": _iso(alert.resolved_at),
    })


def _queue_email(session: Session, alert: Alert, transition: str) -> None:
    # Always queued (alerts are rare): whether SMTP is configured is the sending worker's concern,
    # so code that raises an alert needs no settings.
    outbox.enqueue(session, "alert_email", payload={"alert_id": alert.id, "transition": transition},
                   account_id=alert.account_id, max_attempts=8)


@outbox.job_handler("alert_email")
def send_alert_email(services: Services, job: Job) -> None:
    """Send one alert transition by e-mail (retried by the outbox when the server is down)."""
    from connector.monitoring.mail import MailError, send_alert_mail

    if not (services.settings.alert_smtp_host and services.settings.alert_email_to):
        return
    with services.db.transaction() as session:
        alert = session.get(Alert, int(job.payload["alert_id"]))
        if alert is None:
            return
        shown = alert_to_dict(alert)
    try:
        send_alert_mail(services.settings, shown, str(job.payload["transition"]))
    except MailError as exc:
        raise outbox.RetryableError(str(exc)) from exc
