"""``GET /metrics``: Prometheus text that prometheus_client's own parser reads, counters that move
with the work done, and access only with the token or from an allowed network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.delivery import outbox
from connector.models import Job
from tests.helpers import letter_payload
from tests.receiver import Receiver, running_receiver


def scrape(client: Any, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_counters_and_gauges_move_with_the_work_done(client, auth, drain):
    before = scrape(client)
    for outcome in ("accepted", "failed"):
        client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth)
    queued = scrape(client)
    assert value(queued, "lre_letters", status="queued", provider="sandbox") == 2
    assert value(queued, "lre_queue_depth") >= 2
    drain()
    after = scrape(client)
    assert value(after, "lre_letters", status="accepted", provider="sandbox") == 1
    assert value(after, "lre_letters", status="failed", provider="sandbox") == 1
    assert value(after, "lre_queue_depth") == 0
    done = ("lre_job_duration_seconds_count", {"kind": "submit_letter", "outcome": "done"})
    assert value(after, done[0], **done[1]) - value(before, done[0], **done[1]) == 2
    calls = ("lre_provider_call_seconds_count", {"kind": "submit_letter"})
    assert value(after, calls[0], **calls[1]) - value(before, calls[0], **calls[1]) == 2
    assert value(after, "lre_jobs", status="done") >= 2


def test_the_oldest_due_job_age_follows_the_clock(client, services):
    with services.db.transaction() as session:
        outbox.enqueue(session, "nothing_to_do", run_at=services.clock() - timedelta(minutes=5))
    age = value(scrape(client), "lre_queue_oldest_due_seconds")
    assert 299 <= age <= 330


def test_failed_webhook_posts_and_dead_jobs_and_open_alerts_are_counted(client, auth, services, drain, receiver):
    client.post("/v1/hooks", json={"target_url": receiver.url}, headers=auth)
    receiver.always(500)
    client.post("/v1/letters", json=letter_payload(), headers=auth)
    drain()
    assert value(scrape(client), "lre_webhook_delivery_failed_attempts_total") >= 1
    with services.db.transaction() as session:
        session.add(Job(kind="submit_letter", account_id=None, status="dead", payload={}))
    assert value(scrape(client), "lre_jobs", status="dead") == 1


def test_with_a_token_only_its_bearer_reads_the_metrics(settings_overrides, app, client):
    app.extensions["lre"].settings.metrics_token = "jeton-de-supervision"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer autre"}).status_code == 401
    scrape(client, headers={"Authorization": "Bearer jeton-de-supervision"})
    # The token works from any address.
    scrape(client, headers={"Authorization": "Bearer jeton-de-supervision"},
           environ_base={"REMOTE_ADDR": "203.0.113.9"})


def test_without_a_token_only_allowed_networks_read_the_metrics(app, client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    app.extensions["lre"].settings.metrics_allow_networks = "10.0.0.0/8, 203.0.113.0/24"
    scrape(client, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert client.get("/metrics").status_code == 403  # loopback is no longer in the list


def test_json_logs_give_one_line_per_request_and_job_without_secrets(settings_overrides, capsys):
    import json as json_module

    from connector.app import create_app

    settings_overrides["log_format"] = "json"
    app = create_app(settings_overrides)
    try:
        services = app.extensions["lre"]
        with services.db.transaction() as session:
            from connector.api.auth import create_api_key
            from connector.models import Account

            account = Account(name="Cabinet Durand")
            session.add(account)
            session.flush()
            _, key = create_api_key(session, account)
        client = app.test_client()
        letter = client.post("/v1/letters", json=letter_payload(), headers={"Authorization": f"Bearer {key}"}).json
        client.get(f"/v1/letters/{letter['id']}", headers={"Authorization": f"Bearer {key}"})
        client.get("/callbacks/sandbox/un-jeton-secret")
        outbox.drain(services)
        lines = [json_module.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        logging_root = __import__("logging").getLogger("connector")
        for handler in list(logging_root.handlers):
            logging_root.removeHandler(handler)
        logging_root.propagate = True
        app.extensions["lre"].db.dispose()
    requests = [line for line in lines if line.get("event") == "request"]
    jobs = [line for line in lines if line.get("event") == "job"]
    read = next(r for r in requests if r["route"] == "/v1/letters/<letter_id>")
    assert read["letter_id"] == letter["id"] and read["status"] == 200 and read["account_id"]
    assert any(r["route"] == "/callbacks/<provider>/<token>" for r in requests)
    assert any(j["kind"] == "submit_letter" and j["letter_id"] == letter["id"] and j["outcome"] == "done"
               for j in jobs)
    text = json_module.dumps(lines)
    assert "un-jeton-secret" not in text and key not in text
