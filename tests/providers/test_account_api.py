"""PUT/GET /v1/account/provider: validation naming the field, encryption at rest, masked secrets."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from connector.models import Letter, ProviderSettings
from tests.helpers import letter_payload

AR24 = {
    "base_url": "https://sandbox.ar24.fr/api/",
    "token": "tok_live_9f8e7d6c5b4a",
    "private_key": "pk_3c2b1a0f9e8d7c6b",
    "user_id": "7731",
}
MAILEVA = {
    "base_url": "https://api.sandbox.maileva.net",
    "auth_url": "https://connexion.sandbox.maileva.net/auth/realms/services/protocol/openid-connect/token",
    "client_id": "bridge-client",
    "client_secret": "cs_0a1b2c3d4e",
    "username": "gestion@dupont-immo.example",
    "password": "pw_5f6a7b8c9d",
    "sender_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
}


def put(client: Any, auth: dict[str, str], provider: str, settings: dict[str, Any]) -> Any:
    return client.put("/v1/account/provider", json={"provider": provider, "settings": settings}, headers=auth)


def test_an_account_starts_on_the_sandbox(client: Any, auth: dict[str, str]) -> None:
    body = client.get("/v1/account/provider", headers=auth).json
    assert (body["provider"], body["settings"]) == ("sandbox", {})


def test_it_stores_ar24_settings_and_masks_the_secrets(client: Any, auth: dict[str, str]) -> None:
    response = put(client, auth, "ar24", AR24)
    assert response.status_code == 200, response.json
    shown = client.get("/v1/account/provider", headers=auth).json
    assert shown["provider"] == "ar24" and shown["supports_webhooks"] is True
    assert shown["settings"] == {
        "base_url": "https://sandbox.ar24.fr/api",
        "token": "********",
        "private_key": "********",
        "user_id": "7731",
    }
    assert shown["secret_settings"] == ["token", "private_key"]
    assert response.json["settings"] == shown["settings"]


def test_the_settings_are_encrypted_at_rest(client: Any, auth: dict[str, str], services: Any) -> None:
    put(client, auth, "maileva", MAILEVA)
    with services.db.transaction() as session:
        row = session.scalars(select(ProviderSettings)).one()
    assert row.provider == "maileva"
    assert "pw_5f6a7b8c9d" not in row.settings_encrypted and "cs_0a1b2c3d4e" not in row.settings_encrypted
    assert services.encryptor.decrypt_json(row.settings_encrypted)["password"] == "pw_5f6a7b8c9d"


@pytest.mark.parametrize("missing", ["base_url", "token", "private_key", "user_id"])
def test_a_missing_ar24_setting_is_named(client: Any, auth: dict[str, str], missing: str) -> None:
    settings = {k: v for k, v in AR24.items() if k != missing}
    response = put(client, auth, "ar24", settings)
    assert response.status_code == 422
    assert response.json["error"]["field"] == f"settings.{missing}"
    assert response.json["error"]["code"] == "missing_setting"


@pytest.mark.parametrize("missing", sorted(MAILEVA))
def test_a_missing_maileva_setting_is_named(client: Any, auth: dict[str, str], missing: str) -> None:
    response = put(client, auth, "maileva", {**MAILEVA, missing: ""})
    assert response.status_code == 422
    assert response.json["error"]["field"] == f"settings.{missing}"


@pytest.mark.parametrize(
    ("provider", "settings", "field", "code"),
    [
        ("docaposte", {}, "provider", "unknown_provider"),
        ("ar24", {**AR24, "colour": "blue"}, "settings.colour", "unknown_setting"),
        ("ar24", {**AR24, "base_url": "ftp://sandbox.ar24.fr"}, "settings.base_url", "invalid_setting"),
        (
            "ar24",
            {**AR24, "callback_ip_allowlist": "185.183.140.195, not-an-ip"},
            "settings.callback_ip_allowlist",
            "invalid_setting",
        ),
        ("ar24", {**AR24, "timeout": 9000}, "settings.timeout", "invalid_setting"),
        ("maileva", {**MAILEVA, "sender_id": "42"}, "settings.sender_id", "invalid_setting"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(
    client: Any, auth: dict[str, str], provider: str, settings: dict[str, Any], field: str, code: str
) -> None:
    response = put(client, auth, provider, settings)
    assert response.status_code == 422
    assert (response.json["error"]["field"], response.json["error"]["code"]) == (field, code)


def test_the_optional_ip_allow_list_is_normalised(client: Any, auth: dict[str, str]) -> None:
    response = put(client, auth, "ar24", {**AR24, "callback_ip_allowlist": " 185.183.140.195 , 10.0.0.0/8"})
    assert response.json["settings"]["callback_ip_allowlist"] == "185.183.140.195,10.0.0.0/8"


def test_a_secret_left_out_or_sent_back_masked_keeps_its_value(
    client: Any, auth: dict[str, str], services: Any
) -> None:
    put(client, auth, "ar24", AR24)
    response = put(client, auth, "ar24", {**AR24, "token": "********", "private_key": None, "user_id": "8842"})
    assert response.status_code == 200, response.json
    with services.db.transaction() as session:
        stored = services.encryptor.decrypt_json(session.scalars(select(ProviderSettings)).one().settings_encrypted)
    assert stored == {**AR24, "base_url": "https://sandbox.ar24.fr/api", "user_id": "8842"}


def test_a_mask_with_nothing_stored_is_not_a_secret(client: Any, auth: dict[str, str]) -> None:
    response = put(client, auth, "ar24", {**AR24, "token": "********"})
    assert (response.status_code, response.json["error"]["field"]) == (422, "settings.token")


def test_each_account_sees_only_its_own_provider(client: Any, auth: dict[str, str], other_auth: dict[str, str]) -> None:
    put(client, auth, "ar24", AR24)
    assert client.get("/v1/account/provider", headers=other_auth).json["provider"] == "sandbox"


def test_it_refuses_to_switch_provider_while_letters_are_in_progress(client: Any, auth: dict[str, str]) -> None:
    created = client.post("/v1/letters", json=letter_payload(), headers=auth)
    assert created.status_code == 201, created.json
    response = put(client, auth, "ar24", AR24)
    assert (response.status_code, response.json["error"]["code"]) == (409, "letters_in_progress")


def test_it_needs_an_api_key(client: Any) -> None:
    assert client.get("/v1/account/provider").status_code == 401
    assert client.put("/v1/account/provider", json={"provider": "sandbox"}).status_code == 401


def test_secrets_are_never_logged(client: Any, auth: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    put(client, auth, "ar24", AR24)
    put(client, auth, "ar24", {**AR24, "user_id": ""})  # an error path too
    client.get("/v1/account/provider", headers=auth)
    assert AR24["token"] not in caplog.text and AR24["private_key"] not in caplog.text


def test_the_routes_are_in_the_openapi_document(client: Any) -> None:
    document = client.get("/openapi.json").json
    assert set(document["paths"]["/v1/account/provider"]) >= {"get", "put"}
    assert "ProviderSettingsIn" in document["components"]["schemas"]


def test_it_refuses_to_move_to_another_platform_while_letters_are_in_progress(
    client: Any, auth: dict[str, str], services: Any
) -> None:
    put(client, auth, "ar24", AR24)
    with services.db.transaction() as session:
        session.add(
            Letter(
                account_id=session.scalars(select(ProviderSettings)).one().account_id,
                status="deposited",
                recipient_type="professional",
                recipient_email="a@b.example",
                provider="ar24",
            )
        )
    moved = put(client, auth, "ar24", {**AR24, "base_url": "https://app.ar24.fr/api"})
    rotated = put(client, auth, "ar24", {**AR24, "token": "tok_rotated_1", "private_key": "pk_rotated_1"})
    assert (moved.status_code, moved.json["error"]["field"]) == (409, "settings.base_url")
    assert rotated.status_code == 200
