"""The catalogue of actions, searches and triggers: consistent with the API it describes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import TypeAdapter

from connector import shapes
from connector.delivery.events import ACCOUNT_EVENTS
from connector.delivery.hooks import EVENT_TYPES
from connector.letters.requests import LetterIn, RecipientIn
from connector.monitoring.shapes import Alert
from connector.platforms.catalog import CATALOG, catalog_to_dict
from connector.platforms.catalog.consents import CONSENT_INVITATION_SAMPLE
from connector.platforms.model import Catalog, Kind, Operation
from connector.providers.base import PROOF_KIND_BY_STATUS
from connector.rendering.fields import FIELD_TYPES

KEY = re.compile(r"^[a-z][a-z0-9_]*$")
VISIBLE = [op for op in CATALOG.operations if not op.hidden]


def _resolve(sample: Any, dotted: str) -> bool:
    """True when ``recipient.email`` or ``documents[].sha256`` exists in ``sample`` (a nullable object,
    such as ``failure`` on a letter that did not fail, may be null)."""
    node = sample
    for part in dotted.split("."):
        if node is None:
            return True
        if isinstance(node, list):
            node = node[0] if node else {}
        if not isinstance(node, dict) or part.removesuffix("[]") not in node:
            return False
        node = node[part.removesuffix("[]")]
    return True


def test_the_catalog_is_served_publicly_and_round_trips(client: FlaskClient) -> None:
    response = client.get("/v1/catalog")
    assert response.status_code == 200
    assert response.json == catalog_to_dict()
    assert TypeAdapter(Catalog).validate_python(response.json) == CATALOG


def test_the_catalog_is_described_in_openapi(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document["paths"]["/v1/catalog"]["get"]["operationId"] == "getCatalog"
    assert {"Catalog", "CatalogOperation", "CatalogInputField"} <= set(document["components"]["schemas"])


def test_keys_are_unique_and_safe_on_every_platform() -> None:
    keys = [op.key for op in CATALOG.operations]
    assert len(keys) == len(set(keys))
    for op in CATALOG.operations:
        assert KEY.match(op.key)
        inputs = [f.key for f in op.inputs]
        assert len(inputs) == len(set(inputs)), op.key
        assert all(KEY.match(k) for k in inputs), op.key


@pytest.mark.parametrize("op", VISIBLE, ids=lambda op: op.key)
def test_every_visible_operation_is_labelled_in_both_languages_with_a_matching_sample(op: Operation) -> None:
    texts = [op.label, op.description, op.noun, *(f.label for f in op.inputs), *(o.label for o in op.outputs)]
    assert all(t.en and t.fr for t in texts)
    assert 2 <= len(op.label.en) <= 64 and 2 <= len(op.label.fr) <= 64
    assert op.outputs and op.sample
    missing = [o.key for o in op.outputs if not _resolve(op.sample, o.key)]
    assert missing == []


def test_letter_inputs_go_to_fields_the_letters_api_accepts() -> None:
    for op in (CATALOG.operation("send_letter_from_template"), CATALOG.operation("send_letter_with_pdf")):
        for f in op.inputs:
            assert f.to, f"{op.key}.{f.key} has no target"
            location, _, path = f.to.partition(".")
            if location == "header":
                assert path == "Idempotency-Key"
                continue
            assert location == "body"
            top, *rest = path.split(".")
            assert top in LetterIn.model_fields, f.to
            if top == "recipient":
                assert rest[0] in RecipientIn.model_fields, f.to


def test_choices_are_values_the_api_accepts() -> None:
    op = CATALOG.operation("send_letter_from_template")
    inputs = {f.key: f for f in op.inputs}
    recipient_types = RecipientIn.model_json_schema()["$defs"]["RecipientType"]["enum"]
    assert [c.value for c in inputs["recipient_type"].choices] == recipient_types
    letter_schema = LetterIn.model_json_schema()
    sandbox_ref = letter_schema["properties"]["sandbox_outcome"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
    sandbox = letter_schema["$defs"][sandbox_ref]["enum"]
    assert [c.value for c in inputs["sandbox_outcome"].choices] == sandbox


def test_triggers_fire_on_events_the_bridge_emits() -> None:
    for op in CATALOG.of_kind(Kind.TRIGGER):
        assert set(op.events) <= set(EVENT_TYPES), op.key
        if op.instant:
            assert op.events and "letter.queued" not in op.events


def test_every_template_field_type_has_an_input_type() -> None:
    assert set(FIELD_TYPES) == set(CATALOG.template_field_types)


def test_proof_kinds_follow_the_providers_table() -> None:
    assert CATALOG.proof_kinds == {f"letter.{status}": kind for status, kind in PROOF_KIND_BY_STATUS.items()}


def test_every_path_placeholder_is_filled_by_an_input() -> None:
    for op in CATALOG.operations:
        placeholders = set(re.findall(r"{(\w+)}", op.endpoint.path))
        targets = {f.to.removeprefix("path.") for f in op.inputs if f.to and f.to.startswith("path.")}
        if op.key in ("render_letter", "find_letter"):  # the Zapier runtime builds these two paths itself
            continue
        assert placeholders == targets, op.key


def test_every_endpoint_is_a_route_of_the_bridge(app: Any) -> None:
    routes = {(method, re.sub(r"<(\w+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules() for method in rule.methods or ()}
    for op in CATALOG.operations:
        path = op.endpoint.path
        normalised = {(m, re.sub(r"{\w+}", "{x}", p)) for m, p in routes}
        assert (op.endpoint.method, re.sub(r"{\w+}", "{x}", path)) in normalised, op.key


def test_the_new_choices_are_values_the_api_accepts() -> None:
    from connector.api.core import CONSENT_METHODS
    from connector.api.letters import LETTER_STATUSES

    consent = {f.key: f for f in CATALOG.operation("record_consent").inputs}
    assert tuple(c.value for c in consent["method"].choices) == CONSENT_METHODS
    search = {f.key: f for f in CATALOG.operation("search_letters").inputs}
    assert tuple(c.value for c in search["status"].choices) == LETTER_STATUSES
    proof = {f.key: f for f in CATALOG.operation("download_proof").inputs}
    assert {c.value for c in proof["kind"].choices} == {str(k) for k in PROOF_KIND_BY_STATUS.values()}


def test_the_alert_and_invitation_samples_are_the_published_closed_shapes() -> None:
    """The catalogue's and the event types' samples validate against the models that build the answers."""
    shapes.ConsentInvitation.model_validate(CONSENT_INVITATION_SAMPLE)
    checked = 0
    for event_type, account_event in ACCOUNT_EVENTS.items():
        model = {"alert": Alert, "consent": shapes.ConsentInvitation}.get(event_type.split(".")[0])
        if model is not None:
            model.model_validate(account_event.example)
            checked += 1
    assert checked == 7  # alert.raised/resolved, consent.invited/accepted/refused/expired/withdrawn
