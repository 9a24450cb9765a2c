"""One trigger item: the Zapier app's live item, the bridge's ``trigger_item`` and the catalogue's
samples are the same shape, built from real events of a real letter."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from connector.platforms.catalog import CATALOG, account_event_item, event_sample, trigger_item
from connector.platforms.model import Kind
from connector.rendering.library import builtin_templates
from tests.consent_helpers import form_fields, invite, path_of

ZAPIER_APP = Path(__file__).resolve().parents[1] / "zapier_app"
TO_ITEM = """
const { toItem } = require(process.argv[1] + '/lib/hooks.js');
const events = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const z = { dehydrateFile: (_hydrator, args) => `file:${args.letter_id}:${args.kind}` };
process.stdout.write(JSON.stringify(events.map((e) => toItem(z, e))));
"""


EVENT_ITEM = """
const { eventItem } = require(process.argv[1] + '/lib/hooks.js');
const events = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const z = { dehydrateFile: () => 'file' };
process.stdout.write(JSON.stringify(events.map((e) => eventItem(z, e))));
"""
BROWSER = {"User-Agent": "Mozilla/5.0 TestBrowser/1.0"}


def _zapier_items(events: list[dict[str, Any]], script: str = TO_ITEM) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not installed: the Zapier app needs Node.js >= 20.")
    done = subprocess.run([node, "-e", script, str(ZAPIER_APP)], input=json.dumps(events), capture_output=True,
                          text=True, timeout=60, check=True)
    items: list[dict[str, Any]] = json.loads(done.stdout)
    return items


def _live_events(client: FlaskClient, auth: dict[str, str], drain: Callable[[], int]) -> list[dict[str, Any]]:
    for outcome in ("accepted", "refused", "failed"):
        body = {"recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
                "template": "mise_en_demeure", "reference": f"REF-{outcome}", "sandbox_outcome": outcome,
                "message": "Une lettre vous attend.", "metadata": {"row": 7},
                "data": {spec.key: spec.example for spec in builtin_templates()["mise_en_demeure"].fields
                         if spec.example is not None}}
        answer = client.post("/v1/letters", json=body, headers=auth)
        assert answer.status_code == 201, answer.get_json()
    while drain():
        pass
    listed = client.get("/v1/events?limit=100", headers=auth)
    assert listed.status_code == 200
    events: list[dict[str, Any]] = listed.get_json()["data"]
    return [e for e in events if e["type"].startswith("letter.")]


def test_the_zapier_apps_item_is_the_bridges_trigger_item(client: FlaskClient, auth: dict[str, str],
                                                          drain: Callable[[], int]) -> None:
    events = _live_events(client, auth, drain)
    assert {e["type"] for e in events} >= {"letter.deposited", "letter.accepted", "letter.refused", "letter.failed"}
    given = [{"id": e["id"], "type": e["type"], "occurredAt": e["occurred_at"], "letter": e["data"]} for e in events]
    zapier = _zapier_items(given)
    for event, item in zip(events, zapier, strict=True):
        has_proof = item["proof_file"] is not None
        expected = trigger_item(event["id"], event["type"], event["occurred_at"], event["data"],
                                proof_file=f"file:{event['data']['id']}:{item['proof_kind']}" if has_proof else None)
        assert item == expected, event["type"]


def test_every_trigger_sample_has_the_live_items_keys_and_declares_them(client: FlaskClient, auth: dict[str, str],
                                                                         drain: Callable[[], int]) -> None:
    event = _live_events(client, auth, drain)[0]
    live_keys = set(trigger_item(event["id"], event["type"], event["occurred_at"], event["data"]))
    for operation in CATALOG.of_kind(Kind.TRIGGER):
        if not operation.events or not all(t.startswith("letter.") for t in operation.events):
            continue
        assert set(operation.sample) == live_keys, operation.key
        declared = {field.key.split(".")[0].removesuffix("[]") for field in operation.outputs}
        assert declared <= live_keys, operation.key
        assert live_keys - declared <= {"metadata", "recipient", "template", "documents", "failure"}, operation.key
    assert event_sample("failed")["failure"] is not None


def _live_account_events(client: FlaskClient, auth: dict[str, str], drain: Callable[[], int],
                         services: Any) -> list[dict[str, Any]]:
    """Real account events: an invitation accepted then withdrawn on the hosted page, and an alert raised."""
    from connector.monitoring.alerts import evaluate_all

    invitation = invite(client, auth)
    page = client.get(path_of(invitation["url"]), headers=BROWSER)
    assert page.status_code == 200
    fields = form_fields(html.unescape(page.get_data(as_text=True)))
    assert client.post(path_of(invitation["url"]), data={**fields, "decision": "accept"},
                       headers=BROWSER).status_code == 200
    assert client.post(path_of(invitation["url"]) + "/withdraw", headers=BROWSER).status_code == 200
    rule = client.put("/v1/alerts/rules/technical_failure_rate", json={"threshold": 0, "min_volume": 1},
                      headers=auth)
    assert rule.status_code == 200, rule.get_json()
    _live_events(client, auth, drain)  # one of its letters fails: the failure-rate alert is raised
    evaluate_all(services)
    while drain():
        pass
    listed = client.get("/v1/events?limit=100", headers=auth)
    events: list[dict[str, Any]] = [e for e in listed.get_json()["data"] if not e["type"].startswith("letter.")]
    return events


def test_an_account_event_item_is_the_event_with_its_objects_id_under_its_name(
        client: FlaskClient, auth: dict[str, str], drain: Callable[[], int], services: Any) -> None:
    """Zapier de-duplicates items by id: an invitation accepted then withdrawn must give two items."""
    events = _live_account_events(client, auth, drain, services)
    answered = [e for e in events if e["type"] in ("consent.accepted", "consent.withdrawn")]
    assert sorted(e["type"] for e in answered) == ["consent.accepted", "consent.withdrawn"]
    assert any(e["type"] == "alert.raised" for e in events)
    given = [{"id": e["id"], "type": e["type"], "occurredAt": e["occurred_at"], "data": e["data"]} for e in events]
    zapier = _zapier_items(given, EVENT_ITEM)
    for event, item in zip(events, zapier, strict=True):
        assert item == account_event_item(event["id"], event["type"], event["occurred_at"], event["data"]), \
            event["type"]
        assert item["id"] == event["id"] and item["id"].startswith("evt_")
    consent_items = [item for item in zapier if item["type"] in ("consent.accepted", "consent.withdrawn")]
    assert len({item["id"] for item in consent_items}) == 2
    assert len({item["invitation_id"] for item in consent_items}) == 1
    assert consent_items[0]["invitation_id"] == answered[0]["data"]["id"]
    # Every account-event trigger's sample has the live item's keys, and declares only those.
    by_type = {item["type"]: item for item in zapier}
    for operation in CATALOG.of_kind(Kind.TRIGGER):
        if not operation.events or all(t.startswith("letter.") for t in operation.events):
            continue
        live = next(by_type[t] for t in operation.events if t in by_type)
        assert set(operation.sample) == set(live), operation.key
        declared = {field.key.split(".")[0].removesuffix("[]") for field in operation.outputs}
        assert declared <= set(live), operation.key
