"""Alert rules: raised once at the threshold with the minimum volume, not below it, kept open while
the condition holds, resolved once it has stayed clear (debounced), delivered to hooks as signed
``alert.*`` events, listed by ``GET /v1/alerts``, and e-mailed through a local SMTP server."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from connector.delivery.hooks import disable_hook
from connector.lib import signing
from connector.models import Hook, Job, Letter, ProviderSettings, new_id
from connector.monitoring.alerts import evaluate_all
from connector.services import Services
from tests.helpers import letter_payload
from tests.receiver import Receiver, running_receiver


class Clock:
    """Real time plus an offset (rows stamped with the real time are never in its future)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(services: Services) -> Clock:
    services.clock = Clock()
    return services.clock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def add_letters(services: Services, account_id: str, status: str, count: int, created: datetime,
                failure_code: str | None = None) -> None:
    with services.db.transaction() as session:
        for _ in range(count):
            deposited = created if status not in ("queued", "failed") else None
            session.add(Letter(id=new_id("let"), account_id=account_id, status=status, recipient_type="professional",
                               recipient_email="compta@exemple.fr", recipient_company="Exemple SARL",
                               provider="sandbox", created_at=created, updated_at=created, deposited_at=deposited,
                               failure_code=failure_code, metadata_={}))


def open_alerts(client: Any, auth: dict[str, str]) -> list[dict[str, Any]]:
    return client.get("/v1/alerts?status=open", headers=auth).json["data"]


def test_the_failure_rate_alert_waits_for_the_minimum_volume_then_is_raised_once(client, auth, account, services,
                                                                                 clock):
    account_id = account[0]
    # 1 failure in 49 letters (2 %): above 1 %, but under the minimum volume of 50.
    add_letters(services, account_id, "deposited", 48, clock() - timedelta(hours=1))
    add_letters(services, account_id, "failed", 1, clock() - timedelta(hours=1))
    assert evaluate_all(services).raised == []
    assert open_alerts(client, auth) == []
    # The 50th letter: 1 in 50 = 2 % over the minimum volume.
    add_letters(services, account_id, "deposited", 1, clock() - timedelta(minutes=30))
    assert len(evaluate_all(services).raised) == 1
    assert evaluate_all(services).raised == []  # raised once, however often it is evaluated
    (alert,) = open_alerts(client, auth)
    assert alert["rule"] == "technical_failure_rate" and alert["status"] == "open"
    assert alert["value"] == 0.02 and alert["threshold"] == 0.01 and alert["severity"] == "critical"
    assert alert["details"] == {"failed": 1, "submitted": 50}


def test_a_failure_rate_of_exactly_one_percent_is_not_an_alert(client, auth, account, services, clock):
    add_letters(services, account[0], "accepted", 99, clock() - timedelta(hours=2))
    add_letters(services, account[0], "failed", 1, clock() - timedelta(hours=2))
    assert evaluate_all(services).raised == []
    add_letters(services, account[0], "failed", 1, clock() - timedelta(hours=1))
    assert len(evaluate_all(services).raised) == 1


def test_an_alert_resolves_once_the_condition_stayed_clear_and_not_on_a_single_clear_reading(
        client, auth, account, services, clock):
    add_letters(services, account[0], "deposited", 45, clock() - timedelta(hours=23))
    add_letters(services, account[0], "failed", 5, clock() - timedelta(hours=23))
    assert len(evaluate_all(services).raised) == 1
    clock.advance(hours=2)  # the failures are now older than 24 h: clear
    assert evaluate_all(services).resolved == []
    clock.advance(minutes=5)
    add_letters(services, account[0], "failed", 50, clock() - timedelta(minutes=1))  # holds again
    result = evaluate_all(services)
    assert result.raised == [] and result.resolved == []
    clock.advance(hours=25)
    assert evaluate_all(services).resolved == []  # clear, but only just
    clock.advance(minutes=14)
    assert evaluate_all(services).resolved == []
    clock.advance(minutes=1)  # 15 minutes clear: resolved
    assert len(evaluate_all(services).resolved) == 1
    assert open_alerts(client, auth) == []
    (resolved,) = client.get("/v1/alerts?status=resolved", headers=auth).json["data"]
    assert resolved["resolved_at"] is not None


def test_raised_and_resolved_reach_the_hooks_as_signed_events(client, auth, account, services, clock, receiver,
                                                              drain):
    hook = client.post("/v1/hooks", json={"target_url": receiver.url, "events": ["alert.raised", "alert.resolved"]},
                       headers=auth).json
    add_letters(services, account[0], "bounced", 10, clock() - timedelta(hours=1))
    add_letters(services, account[0], "accepted", 90, clock() - timedelta(hours=1))
    assert len(evaluate_all(services).raised) == 1  # 10 % bounced > 5 %
    drain()
    # Checked by the Standard Webhooks library, against the real time (the clock has not moved yet).
    bodies = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiver.requests]
    clock.advance(hours=24)
    evaluate_all(services)
    clock.advance(minutes=16)
    assert len(evaluate_all(services).resolved) == 1
    drain()
    later = receiver.requests[1]
    # Signed at the driven time, a day ahead: checked with the bridge's verifier at that time.
    signing.verify([signing.decode_secret(hook["secret"])], later.headers, later.body, now=clock().timestamp())
    bodies.append(json.loads(later.body))
    assert [b["type"] for b in bodies] == ["alert.raised", "alert.resolved"]
    assert bodies[0]["data"]["rule"] == "bounce_rate" and bodies[0]["data"]["value"] == 0.1
    assert bodies[1]["data"]["status"] == "resolved"
    assert bodies[0]["data"]["id"] == bodies[1]["data"]["id"]
    feed = client.get("/v1/events", query_string={"type": "alert.raised,alert.resolved"}, headers=auth).json["data"]
    assert len(feed) == 2


def test_a_dead_job_raises_an_alert_until_it_is_dealt_with(client, auth, account, services, clock):
    with services.db.transaction() as session:
        job = Job(kind="submit_letter", account_id=account[0], status="dead", last_error="boom", payload={})
        session.add(job)
        session.flush()
        job_id = job.id
    assert len(evaluate_all(services).raised) == 1
    (alert,) = open_alerts(client, auth)
    assert alert["rule"] == "dead_jobs" and alert["details"]["dead_jobs"] == 1
    with services.db.transaction() as session:
        session.get(Job, job_id).status = "done"
    evaluate_all(services)
    clock.advance(minutes=15)
    assert len(evaluate_all(services).resolved) == 1


def test_a_disabled_subscription_raises_an_alert_at_once_and_resolves_when_reactivated(
        client, auth, account, services, clock, receiver):
    hook = client.post("/v1/hooks", json={"target_url": receiver.url}, headers=auth).json
    with services.db.transaction() as session:
        disable_hook(session, session.get(Hook, hook["id"], with_for_update=True), "every delivery failed", clock())
    (alert,) = open_alerts(client, auth)  # raised with the disabling, not at the next evaluation
    assert alert["rule"] == "hook_disabled" and alert["subject"] == hook["id"]
    assert evaluate_all(services).raised == []
    # Subscribing the same target again re-activates the subscription.
    client.post("/v1/hooks", json={"target_url": receiver.url}, headers=auth)
    evaluate_all(services)
    clock.advance(minutes=15)
    assert len(evaluate_all(services).resolved) == 1


def test_failing_provider_credentials_raise_an_alert_that_new_credentials_clear(client, auth, account, services,
                                                                               clock):
    add_letters(services, account[0], "failed", 1, clock() - timedelta(minutes=5), failure_code="provider_auth_failed")
    evaluate_all(services)
    (alert,) = open_alerts(client, auth)
    assert alert["rule"] == "provider_credentials" and alert["details"]["code"] == "provider_auth_failed"
    with services.db.transaction() as session:
        session.add(ProviderSettings(account_id=account[0], provider="sandbox",
                                     settings_encrypted=services.encryptor.encrypt_json({}), updated_at=clock()))
    evaluate_all(services)
    clock.advance(minutes=15)
    assert len(evaluate_all(services).resolved) == 1


def test_induced_sandbox_failures_raise_the_alert_end_to_end(client, auth, services, clock, drain):
    assert client.put("/v1/alerts/rules/technical_failure_rate", json={"min_volume": 3},
                      headers=auth).status_code == 200
    for outcome in ("accepted", "accepted", "failed"):
        assert client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth).status_code == 201
    drain()
    evaluate_all(services)
    (alert,) = open_alerts(client, auth)
    assert alert["rule"] == "technical_failure_rate"
    assert alert["details"] == {"failed": 1, "submitted": 3}


def test_rules_list_their_defaults_and_take_account_settings(client, auth, other_auth, account, services, clock):
    rules = {r["rule"]: r for r in client.get("/v1/alerts/rules", headers=auth).json["data"]}
    assert set(rules) == {"technical_failure_rate", "bounce_rate", "dead_jobs", "hook_disabled",
                          "provider_credentials"}
    assert rules["technical_failure_rate"]["threshold"] == 0.01
    assert rules["technical_failure_rate"]["min_volume"] == 50
    changed = client.put("/v1/alerts/rules/bounce_rate", json={"threshold": 0.2, "min_volume": 10}, headers=auth)
    assert changed.json["threshold"] == 0.2 and changed.json["min_volume"] == 10
    other = {r["rule"]: r for r in client.get("/v1/alerts/rules", headers=other_auth).json["data"]}
    assert other["bounce_rate"]["threshold"] == 0.05  # per account
    add_letters(services, account[0], "bounced", 1, clock() - timedelta(hours=1))
    add_letters(services, account[0], "accepted", 9, clock() - timedelta(hours=1))
    assert evaluate_all(services).raised == []  # 10 % is under this account's 20 %
    assert client.put("/v1/alerts/rules/dead_jobs", json={"enabled": False}, headers=auth).json["enabled"] is False


@pytest.mark.parametrize("rule, body, status, field", [
    ("nope", {}, 404, "rule"),
    ("bounce_rate", {"threshold": 5}, 422, "threshold"),
    ("dead_jobs", {"threshold": 0.5}, 422, "threshold"),
    ("bounce_rate", {"min_volume": 0}, 422, "min_volume"),
    ("bounce_rate", {"colour": "red"}, 422, "colour"),
])
def test_a_rule_setting_it_cannot_use_is_refused(client, auth, rule, body, status, field):
    response = client.put(f"/v1/alerts/rules/{rule}", json=body, headers=auth)
    assert response.status_code == status
    assert response.json["error"]["field"] == field


def test_alerts_are_per_account(client, auth, other_auth, account, services, clock):
    with services.db.transaction() as session:
        session.add(Job(kind="submit_letter", account_id=account[0], status="dead", payload={}))
    evaluate_all(services)
    assert len(open_alerts(client, auth)) == 1
    assert open_alerts(client, other_auth) == []
    assert client.get("/v1/alerts?status=closed", headers=auth).status_code == 400


@pytest.fixture
def smtp_server() -> Iterator[list[Any]]:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    received: list[Any] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # the controller cannot listen on port 0: find a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = aiosmtpd.Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    received.append(controller.port)  # the first item is the port; messages follow
    yield received
    controller.stop()


@pytest.fixture
def mail_settings(settings_overrides: dict[str, Any], smtp_server: list[Any]) -> list[Any]:
    settings_overrides.update(alert_smtp_host="127.0.0.1", alert_smtp_port=smtp_server[0],
                              alert_email_to="exploitation@exemple.fr, astreinte@exemple.fr",
                              alert_email_from="lre-bridge@exemple.fr")
    return smtp_server


def test_raised_and_resolved_alerts_are_emailed(mail_settings, client, auth, account, services, clock, drain):
    with services.db.transaction() as session:
        job = Job(kind="submit_letter", account_id=account[0], status="dead", payload={})
        session.add(job)
        session.flush()
        job_id = job.id
    evaluate_all(services)
    drain()
    deadline = time.monotonic() + 5
    while len(mail_settings) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (envelope,) = mail_settings[1:]
    assert envelope.rcpt_tos == ["exploitation@exemple.fr", "astreinte@exemple.fr"]
    assert envelope.mail_from == "lre-bridge@exemple.fr"
    assert "Tâches abandonnées" in _decoded(envelope.content)
    with services.db.transaction() as session:
        session.get(Job, job_id).status = "done"
    evaluate_all(services)
    clock.advance(minutes=16)
    evaluate_all(services)
    drain()
    deadline = time.monotonic() + 5
    while len(mail_settings) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Alerte résolue" in _decoded(mail_settings[2].content)


def test_an_unreachable_smtp_server_leaves_the_mail_to_be_retried(settings_overrides, client, auth, account,
                                                                   services, clock, drain):
    services.settings.alert_smtp_host = "127.0.0.1"
    services.settings.alert_smtp_port = 9  # discard: nothing listens on loopback
    services.settings.alert_email_to = "exploitation@exemple.fr"
    with services.db.transaction() as session:
        session.add(Job(kind="submit_letter", account_id=account[0], status="dead", payload={}))
    evaluate_all(services)
    drain()
    with services.db.transaction() as session:
        mail_job = session.scalar(select(Job).where(Job.kind == "alert_email"))
        assert mail_job.status == "pending" and mail_job.attempts == 1
        assert "alert e-mail not sent" in mail_job.last_error


def _decoded(content: bytes) -> str:
    from email import message_from_bytes, policy

    message = message_from_bytes(content, policy=policy.default)
    return str(message["Subject"]) + "\n" + message.get_content()


def test_the_published_alert_shape_is_closed_and_has_the_answer_s_fields(client, auth, account, services, clock):
    with services.db.transaction() as session:
        session.add(Job(kind="submit_letter", account_id=account[0], status="dead", last_error="boom", payload={}))
    evaluate_all(services)
    (alert,) = open_alerts(client, auth)
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["Alert"]
    assert schema["additionalProperties"] is False
    assert set(alert) == set(schema["properties"]) == set(schema["required"])  # a renamed field fails here
    (event,) = [e for e in client.get("/v1/events", headers=auth).get_json()["data"] if e["type"] == "alert.raised"]
    assert event["data"] == alert  # the hooks and the feed carry the same shape
