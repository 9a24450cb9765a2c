"""The account's provider: which qualified provider sends its letters, with which credentials.

``PUT /v1/account/provider`` validates the settings the provider declares (``SETTINGS`` required,
``OPTIONAL_SETTINGS`` allowed) and stores them encrypted (Fernet, ``LRE_ENCRYPTION_KEYS``);
``GET`` shows them with the secrets (``SECRET_SETTINGS``) masked. Secrets are never logged and
never sent back.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from connector import shapes
from connector.api.auth import require_api_key
from connector.api.common import services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.registry import documented, json_answer
from connector.errors import from_provider
from connector.letters.requests import validation_error
from connector.lib import http
from connector.models import Letter, utcnow
from connector.models import ProviderSettings as ProviderSettingsRow
from connector.providers import available_providers, provider_class
from connector.providers.base import FINAL_STATUSES, ProviderError, settings_schema_fields
from connector.services import DEFAULT_PROVIDER

bp = Blueprint("account", __name__)

MASK = "********"
_TAGS = ("Account",)
# Settings that say where letters live at the provider (platform, sender account).
_WHERE_LETTERS_LIVE = ("base_url", "user_id", "sender_id")
_URL_SETTINGS = ("base_url", "auth_url")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class ProviderSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "provider": "ar24",
        "settings": {"base_url": "https://sandbox.ar24.fr/api", "token": "your-ar24-token",
                     "private_key": "your-ar24-private-key", "user_id": "7731"},
    }})

    provider: str = Field(min_length=1, max_length=20, json_schema_extra={"enum": ["sandbox", "ar24", "maileva"]})
    settings: dict[str, str | int | float | list[str] | None] = Field(default_factory=dict, description=(
        "sandbox: none. ar24: base_url (https://sandbox.ar24.fr/api or https://app.ar24.fr/api), "
        "token, private_key, user_id; optional callback_ip_allowlist (e.g. 185.183.140.195), "
        "timeout. maileva: base_url (https://api.sandbox.maileva.net or https://api.maileva.com), "
        "auth_url (the OAuth2 token endpoint), client_id, client_secret, username, password, "
        "sender_id; optional timeout. A secret left out keeps its stored value."))


class ProviderSettings(shapes.Shape):
    """The account's provider and settings, as ``_view`` builds them."""

    object: Literal["provider_settings"]
    provider: str
    display_name: str
    supports_webhooks: bool
    settings: dict[str, Any] = Field(description=f"Secrets are shown as {MASK}.")
    required_settings: list[str]
    optional_settings: list[str]
    secret_settings: list[str]
    updated_at: str | None = Field(json_schema_extra={"format": "date-time"})


def _declared(name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(required, optional, secret) setting names of a provider."""
    cls = provider_class(name)
    return (
        settings_schema_fields(cls),
        tuple(getattr(cls, "OPTIONAL_SETTINGS", ())),
        tuple(getattr(cls, "SECRET_SETTINGS", ())),
    )


def _invalid(key: str, message: str, code: str = "invalid_setting") -> ApiError:
    return ApiError(422, code, message, f"settings.{key}")


def _check_value(key: str, value: Any) -> Any:
    """Normalise one setting, or refuse it naming the field."""
    if key == "callback_ip_allowlist":
        items = value if isinstance(value, list) else str(value).split(",")
        cleaned = [str(item).strip() for item in items if str(item).strip()]
        for item in cleaned:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise _invalid(key, f"{item!r} is not an IP address or network (e.g. 185.183.140.195).") from None
        return ",".join(cleaned)
    if key == "timeout":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise _invalid(key, "timeout must be a number of seconds.") from None
        if not 1 <= seconds <= 300:
            raise _invalid(key, "timeout must be between 1 and 300 seconds.")
        return seconds
    if isinstance(value, list):
        raise _invalid(key, f"{key} must be a single value.")
    text = str(value).strip()
    if key in _URL_SETTINGS:
        settings = services().settings
        try:
            http.check_url(text, allow_private=settings.allow_private_urls, require_https=settings.production)
        except http.UnsafeUrl as exc:
            raise _invalid(key, f"{key} {exc}.") from None
        return text.rstrip("/")
    if key == "sender_id" and not _UUID.match(text.lower()):
        raise _invalid(key, "sender_id must be the Maileva sender's UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
    return text


def _validated(name: str, given: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    required, optional, secret = _declared(name)
    for key in given:
        if key not in required and key not in optional:
            allowed = ", ".join(required + optional) or "none"
            raise _invalid(key, f"{name} has no setting {key!r} (allowed: {allowed}).", "unknown_setting")
    result: dict[str, Any] = {}
    for key in required + optional:
        value = given.get(key)
        if (value is None or value == "" or value == MASK) and key in secret and stored.get(key):
            # A secret left out (or sent back masked) keeps its stored value.
            result[key] = stored[key]
            continue
        if value == MASK:
            value = None  # a mask with nothing stored behind it is no value
        if value is None or (isinstance(value, str) and not value.strip()):
            if key in required:
                raise _invalid(key, f"{name} needs {key}.", "missing_setting")
            continue
        result[key] = _check_value(key, value)
    return result


def _masked(name: str, values: dict[str, Any]) -> dict[str, Any]:
    secret = set(_declared(name)[2]) if name in available_providers() else set()
    return {key: (MASK if key in secret and value else value) for key, value in values.items()}


def _view(name: str, values: dict[str, Any], updated_at: Any = None) -> dict[str, Any]:
    cls = provider_class(name)
    required, optional, secret = _declared(name)
    return ProviderSettings.dump(**{
        "object": "provider_settings",
        "provider": name,
        "display_name": cls.display_name,
        "supports_webhooks": cls.supports_webhooks,
        "settings": _masked(name, values),
        "required_settings": list(required),
        "optional_settings": list(optional),
        "secret_settings": list(secret),
        "updated_at": updated_at.isoformat() if updated_at else None,
    })


@bp.get("/v1/account/provider")
@documented("The account's provider and settings (secrets masked)", tags=_TAGS,
            answers={200: json_answer(ProviderSettings, "The provider settings.")})
@require_api_key
def get_provider() -> Response:
    """The account's provider and its settings, secrets masked (the sandbox when none is set)."""
    row = db_session().get(ProviderSettingsRow, g.account.id)
    if row is None:
        return jsonify(_view(DEFAULT_PROVIDER, {}))
    values = dict(services().encryptor.decrypt_json(row.settings_encrypted))
    return jsonify(_view(row.provider, values, row.updated_at))


@bp.put("/v1/account/provider")
@documented("Choose the provider (sandbox, AR24, Maileva) and store its credentials, encrypted", tags=_TAGS,
            body=ProviderSettingsIn, answers={200: json_answer(ProviderSettings, "Stored.")},
            errors={400: "Refused", 409: "Letters sent with the current provider are in progress",
                    422: "A setting is missing or invalid; `field` names it"})
@require_api_key
def put_provider() -> Response:
    """Choose the account's provider and store its settings, encrypted."""
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        body = ProviderSettingsIn.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    name = body.provider.lower()
    if name not in available_providers():
        raise ApiError(
            422, "unknown_provider", f"provider must be one of: {', '.join(available_providers())}.", "provider"
        )
    session = db_session()
    svc = services()
    row = session.get(ProviderSettingsRow, g.account.id, with_for_update=True)
    stored: dict[str, Any] = {}
    if row is not None and row.provider == name:
        stored = dict(svc.encryptor.decrypt_json(row.settings_encrypted))
    values = _validated(name, dict(body.settings), stored)
    current = row.provider if row is not None else DEFAULT_PROVIDER
    # Open letters are followed with the account's current settings: another provider, platform
    # or sender account would not know them. Credentials alone (token, keys) may change.
    moved = [key for key in _WHERE_LETTERS_LIVE if current == name and stored.get(key) != values.get(key)]
    if current != name or moved:
        open_letter = session.scalar(
            select(Letter.id)
            .where(Letter.account_id == g.account.id, Letter.provider == current)
            .where(Letter.status.not_in([s.value for s in FINAL_STATUSES]))
            .limit(1)
        )
        if open_letter is not None:
            what = f"settings.{moved[0]}" if current == name else "provider"
            raise ApiError(
                409,
                "letters_in_progress",
                f"Letters sent with these {current} settings are still in progress (e.g. {open_letter}); "
                f"change {what.removeprefix('settings.')} once they reached a final status.",
                what,
            )
    encrypted = svc.encryptor.encrypt_json(values)
    if row is None:
        row = ProviderSettingsRow(account_id=g.account.id, provider=name, settings_encrypted=encrypted)
        session.add(row)
    else:
        row.provider = name
        row.settings_encrypted = encrypted
        row.updated_at = utcnow()
    session.commit()
    return jsonify(_view(name, values, row.updated_at))


@bp.get("/v1/account/provider/check")
@documented("Try the stored credentials at the provider; what the sender still has to do", tags=_TAGS,
            answers={200: json_answer(shapes.ProviderCheck, "The provider answered.")},
            errors={422: "The provider refused the settings; the message says which",
                    503: "The provider is unavailable"})
@require_api_key
def check_provider() -> Response:
    """Try the stored settings at the provider and say what the sender still has to do."""
    svc = services()
    name, values = svc.provider_settings(db_session(), g.account.id)
    adapter = svc.provider(name, values)
    check = getattr(adapter, "check_account", None)
    if check is None:
        return jsonify(shapes.ProviderCheck.dump(object="provider_check", provider=name, ok=True, next_steps=[]))
    try:
        result = check()
    except ProviderError as exc:
        raise from_provider(exc) from None
    # Through the published model: what each provider's check says is the documented shape.
    return jsonify(shapes.ProviderCheck.dump(object="provider_check", provider=name, **result))
