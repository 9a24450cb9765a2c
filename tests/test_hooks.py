"""The subscriptions API, /v1/hooks: what Zapier, Make and n8n call to (un)subscribe."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connector.lib import signing
from connector.models import Hook

TARGET = "https://hooks.zapier.com/hooks/standard/123/abc/"


def subscribe(client, auth, **body):
    return client.post("/v1/hooks", json={"target_url": TARGET, **body}, headers=auth)


def test_it_creates_a_hook_and_shows_its_secret_once(client, auth):
    response = subscribe(client, auth, events=["letter.accepted", "letter.refused"])
    assert response.status_code == 201, response.json
    hook = response.json
    assert hook["id"].startswith("hook_")
    assert hook["target_url"] == TARGET
    assert hook["events"] == ["letter.accepted", "letter.refused"]
    assert hook["status"] == "active"
    assert len(signing.decode_secret(hook["secret"])) == 32
    shown_again = client.get(f"/v1/hooks/{hook['id']}", headers=auth).json
    assert "secret" not in shown_again
    assert shown_again["events"] == hook["events"]


def test_it_subscribes_to_every_event_when_none_is_named(client, auth):
    assert subscribe(client, auth).json["events"] == ["*"]
    assert subscribe(client, auth, target_url=TARGET + "2", events="*").json["events"] == ["*"]


def test_it_accepts_events_as_a_comma_separated_string_from_a_no_code_form(client, auth):
    hook = subscribe(client, auth, events="letter.accepted, letter.refused").json
    assert hook["events"] == ["letter.accepted", "letter.refused"]


def test_subscribing_the_same_target_again_returns_the_existing_hook_without_its_secret(client, auth):
    first = subscribe(client, auth, events=["letter.accepted"]).json
    again = subscribe(client, auth, events=["letter.refused"], filters={"reference": "DOSSIER-42"})
    assert again.status_code == 200
    assert again.json["id"] == first["id"]
    assert "secret" not in again.json
    assert again.json["events"] == ["letter.refused"]
    assert again.json["filters"] == {"reference": "DOSSIER-42"}
    assert len(client.get("/v1/hooks", headers=auth).json["data"]) == 1


def test_subscribing_a_disabled_hook_again_reactivates_it(client, auth, services):
    hook = subscribe(client, auth).json
    with services.db.transaction() as session:
        row = session.get(Hook, hook["id"])
        row.status, row.disabled_reason = "disabled", "failing"
    again = subscribe(client, auth).json
    assert again["status"] == "active"
    assert again["disabled_reason"] is None


def test_the_same_target_in_another_account_is_another_hook(client, auth, other_auth):
    first = subscribe(client, auth).json
    other = subscribe(client, other_auth)
    assert other.status_code == 201
    assert other.json["id"] != first["id"]


def test_it_lists_hooks_and_finds_one_by_target_url(client, auth):
    first = subscribe(client, auth).json
    subscribe(client, auth, target_url="https://hook.eu1.make.com/xyz")
    assert [h["id"] for h in client.get("/v1/hooks", headers=auth).json["data"]][0] == first["id"]
    found = client.get("/v1/hooks", query_string={"target_url": TARGET}, headers=auth).json["data"]
    assert [h["id"] for h in found] == [first["id"]]


def test_it_deletes_a_hook(client, auth):
    hook = subscribe(client, auth).json
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/hooks/{hook['id']}", headers=auth).status_code == 404
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=auth).status_code == 404


def test_another_accounts_hook_is_not_found(client, auth, other_auth):
    hook = subscribe(client, auth).json
    assert client.get(f"/v1/hooks/{hook['id']}", headers=other_auth).status_code == 404
    assert client.delete(f"/v1/hooks/{hook['id']}", headers=other_auth).status_code == 404
    assert client.post(f"/v1/hooks/{hook['id']}/rotate", headers=other_auth).status_code == 404
    assert client.get(f"/v1/hooks/{hook['id']}/deliveries", headers=other_auth).status_code == 404
    assert client.get("/v1/hooks", headers=other_auth).json["data"] == []
    assert client.get(f"/v1/hooks/{hook['id']}", headers=auth).status_code == 200


def test_it_requires_an_api_key(client):
    assert client.post("/v1/hooks", json={"target_url": TARGET}).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["letter.exploded"]}, "events"),
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"target_url": "ftp://example.com/hook"}, "target_url"),
        ({"target_url": ""}, "target_url"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
def test_it_refuses_an_invalid_subscription(client, auth, body, field):
    response = subscribe(client, auth, **body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == field


def test_it_refuses_a_body_that_is_not_a_json_object(client, auth):
    assert (
        client.post("/v1/hooks", data="[]", content_type="application/json", headers=auth).status_code == 400
    )


@pytest.fixture
def private_urls_refused(settings_overrides):
    settings_overrides["allow_private_urls"] = False


@pytest.fixture
def production(settings_overrides):
    settings_overrides.update(allow_private_urls=False, production=True)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
    ],
)
def test_it_refuses_private_and_loopback_targets_unless_allowed(private_urls_refused, client, auth, target):
    response = client.post("/v1/hooks", json={"target_url": target}, headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_target_url"


def test_it_requires_https_in_production(production, client, auth):
    response = client.post("/v1/hooks", json={"target_url": "http://example.com/hook"}, headers=auth)
    assert response.status_code == 422
    assert "https" in response.json["error"]["message"]


def test_the_secret_is_encrypted_at_rest(client, auth, services):
    hook = subscribe(client, auth).json
    with services.db.transaction() as session:
        stored = session.scalar(select(Hook.secrets_encrypted).where(Hook.id == hook["id"]))
    assert hook["secret"] not in stored
    assert services.encryptor.decrypt_json(stored)[0]["secret"] == hook["secret"]


def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_a_day(client, auth, services):
    hook = subscribe(client, auth).json
    response = client.post(f"/v1/hooks/{hook['id']}/rotate", headers=auth)
    assert response.status_code == 200
    rotated = response.json
    assert rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    with services.db.transaction() as session:
        stored = services.encryptor.decrypt_json(session.get(Hook, hook["id"]).secrets_encrypted)
    assert [e["secret"] for e in stored] == [rotated["secret"], hook["secret"]]


def test_rotation_with_no_grace_revokes_the_old_secret_at_once(client, auth, services):
    hook = subscribe(client, auth).json
    rotated = client.post(
        f"/v1/hooks/{hook['id']}/rotate", json={"grace_period_seconds": 0}, headers=auth
    ).json
    assert rotated["previous_secret_expires_at"] is None
    with services.db.transaction() as session:
        stored = services.encryptor.decrypt_json(session.get(Hook, hook["id"]).secrets_encrypted)
    assert [e["secret"] for e in stored] == [rotated["secret"]]


def test_openapi_describes_the_hooks_and_one_payload_per_event_type(client):
    document = client.get("/openapi.json").json
    assert {"/v1/hooks", "/v1/hooks/{hook_id}", "/v1/hooks/{hook_id}/rotate"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    for event_type in ("letter.queued", "letter.accepted", "letter.refused", "hook.disabled"):
        matching = [
            s for s in schemas.values() if s.get("properties", {}).get("type", {}).get("const") == event_type
        ]
        assert len(matching) == 1, event_type
        assert matching[0]["example"]["type"] == event_type


def test_openapi_lists_each_delivery_as_a_webhook_and_every_reference_resolves(client):
    document = client.get("/openapi.json").json
    assert {"letter.accepted", "letter.refused", "hook.disabled"} <= set(document["webhooks"])

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(document)):
        section, _, name = ref.removeprefix("#/components/").partition("/")
        assert name in document["components"][section], ref


def test_two_identical_subscriptions_at_the_same_moment_make_one_hook(app, auth, services):
    from concurrent.futures import ThreadPoolExecutor

    body = {"target_url": "https://hooks.zapier.com/hooks/standard/1/abc", "events": ["letter.accepted"]}

    def subscribe() -> tuple[int, str]:
        response = app.test_client().post("/v1/hooks", json=body, headers=auth)
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: subscribe(), range(4)))
    assert sorted(status for status, _ in results) == [200, 200, 200, 201]
    assert len({hook_id for _, hook_id in results}) == 1
    with services.db.transaction() as session:
        assert len(list(session.scalars(select(Hook)))) == 1
