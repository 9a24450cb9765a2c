"""``GET /openapi.json``: the OpenAPI 3.1 description of the whole API.

Core paths are described here; every other blueprint module listed in ``connector.app.BLUEPRINTS``
may contribute ``OPENAPI`` (paths) and ``SCHEMAS`` (components). A test checks that every route
of the app is described and every described path exists.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from connector import shapes
from connector.api.common import INSTANT_QUERY
from connector.api.core import ConsentIn
from connector.api.letters import MAX_DOCUMENT_POSITION
from connector.letters.requests import LetterIn
from connector.letters.vocabulary import LetterStatus

bp = Blueprint("openapi", __name__)

STATUSES = [status.value for status in LetterStatus]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"content": {"application/json": content}}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, **json_body(schema)}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "422": {"$ref": "#/components/responses/Unprocessable"},
}
IDEMPOTENCY = {"$ref": "#/components/parameters/IdempotencyKey"}
CURSOR = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
]


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": ref(name)},
        "next_cursor": {"type": ["string", "null"]}}}


LETTER_EXAMPLE = {
    "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
    "template": "mise_en_demeure",
    "data": {"numero_facture": "F-2026-118", "montant": "1250.00"},
    "reference": "DOSSIER-42",
    "sandbox_outcome": "accepted",
}

CORE_PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "The process is up", "security": [], "responses": {"200": ok({"type": "object"})}}},
    "/readyz": {"get": {"summary": "The database is reachable", "security": [],
                        "responses": {"200": ok({"type": "object"}), "503": ok({"type": "object"}, "Not ready")}}},
    "/openapi.json": {"get": {"summary": "This document", "security": [],
                              "responses": {"200": ok({"type": "object"})}}},
    "/v1/me": {"get": {"summary": "The account behind the API key (connection test)", "operationId": "getMe",
                       "responses": {"200": ok(ref("Account")), **ERRORS}}},
    "/v1/letters": {
        "post": {
            "summary": "Send a registered letter",
            "operationId": "sendLetter",
            "description": "JSON (documents as {filename, content_base64} or {filename, url}, or a template with "
                           "its data) or multipart/form-data with PDF files in `documents`.",
            "parameters": [IDEMPOTENCY],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": ref("LetterIn"), "example": LETTER_EXAMPLE},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "documents": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "recipient": {"type": "string", "description": "the recipient object as JSON"}}}}}},
            "responses": {"201": ok(ref("Letter"), "The letter is accepted and queued"),
                          "409": {"$ref": "#/components/responses/Conflict"},
                          "413": {"$ref": "#/components/responses/TooLarge"}, **ERRORS},
        },
        "get": {
            "summary": "List letters, newest first",
            "operationId": "listLetters",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"enum": STATUSES}},
                {"name": "reference", "in": "query", "schema": {"type": "string"}},
                {"name": "recipient", "in": "query", "schema": {"type": "string"},
                 "description": "part of the recipient's e-mail, last name or company"},
                {"name": "from", "in": "query", "schema": INSTANT_QUERY},
                {"name": "to", "in": "query", "schema": INSTANT_QUERY},
                *CURSOR,
            ],
            "responses": {"200": ok(_list_of("Letter")), **ERRORS},
        },
    },
    "/v1/letters/{letter_id}": {"get": {"summary": "Find a letter", "operationId": "getLetter",
                                        "parameters": [{"$ref": "#/components/parameters/LetterId"}],
                                        "responses": {"200": ok(ref("Letter")), **ERRORS}}},
    "/v1/letters/{letter_id}/document": {"get": {
        "summary": "The PDF as sent", "operationId": "getLetterDocument",
        "parameters": [{"$ref": "#/components/parameters/LetterId"},
                       {"name": "position", "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_DOCUMENT_POSITION, "default": 0}}],
        "responses": {"200": {"description": "PDF", "content": {"application/pdf": {
            "schema": {"type": "string", "format": "binary"}}}}, **ERRORS}}},
    "/v1/events": {"get": {
        "summary": "The event feed, newest first (polling triggers)", "operationId": "listEvents",
        "parameters": [{"name": "type", "in": "query", "schema": {"type": "string"},
                        "description": "one or more event types, comma-separated (letter.accepted,…)"},
                       {"name": "letter_id", "in": "query", "schema": {"type": "string"}}, *CURSOR],
        "responses": {"200": ok(_list_of("Event")), **ERRORS}}},
    "/v1/events/{event_id}": {"get": {
        "summary": "One event", "operationId": "getEvent",
        "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": ok(ref("Event")), **ERRORS}}},
    "/v1/consents": {
        "post": {"summary": "Record a recipient's consent (CPCE art. L.100)", "operationId": "recordConsent",
                 "parameters": [IDEMPOTENCY], "requestBody": {"required": True, **json_body(ref("ConsentIn"))},
                 "responses": {"201": ok(ref("Consent")), **ERRORS}},
        "get": {"summary": "The consent register", "operationId": "listConsents",
                "parameters": [{"name": "email", "in": "query", "schema": {"type": "string"}},
                               {"name": "status", "in": "query", "schema": {"enum": ["active", "revoked"]}}, *CURSOR],
                "responses": {"200": ok(_list_of("Consent")), **ERRORS}},
    },
    "/v1/consents/{consent_id}": {"delete": {
        "summary": "Revoke a consent (kept, marked revoked)", "operationId": "revokeConsent",
        "parameters": [{"name": "consent_id", "in": "path", "required": True, "schema": {"type": "string"}},
                       {"name": "revoked_by", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": ok(ref("Consent")), **ERRORS}}},
    "/callbacks/{provider}/{token}": {
        method: {"summary": "Provider callback (a hint; the letter is re-read at the provider)", "security": [],
                 "parameters": [{"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}},
                                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
                 "responses": {"200": ok({"type": "object"}), "401": ERRORS["401"], "404": ERRORS["404"],
                               "403": {"$ref": "#/components/responses/Forbidden"}}}
        for method in ("get", "post")
    },
}


# What any operation may answer, whatever it does: a malformed query or cursor (400), a missing key
# (401), an unknown id (404), a field refused (422, NUL characters and non-standard JSON included);
# and, for what takes a body, a body too large (413) and an Idempotency-Key in use (409). A failure of
# the bridge itself (its disk, its database) is a 500 with the same error body, and nothing is stored.
_COMMON_ERRORS = {"400": "BadRequest", "401": "Unauthorized", "404": "NotFound", "422": "Unprocessable",
                  "500": "InternalError"}
_BODY_ERRORS = {"409": "Conflict", "413": "TooLarge"}


def _document_common_errors(paths: dict[str, Any]) -> None:
    """Add the shared error answers to every operation that does not describe them itself."""
    for item in paths.values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or not isinstance(operation, dict):
                continue
            answers = operation.setdefault("responses", {})
            errors = dict(_COMMON_ERRORS)
            if method in ("post", "put", "patch"):
                errors.update(_BODY_ERRORS)
            if operation.get("security") == []:
                errors.pop("401")
            for status, name in errors.items():
                answers.setdefault(status, {"$ref": f"#/components/responses/{name}"})


# No text the API reads may hold U+0000 (common.check_json_value, check_query_string): say so in
# every string schema a request can carry, keys of open objects included.
NO_NUL_PATTERN = "^[^\\x00]*$"


def _forbid_nul(node: Any) -> None:
    """Add ``NO_NUL_PATTERN`` to every string schema under ``node`` that has no pattern or fixed values."""
    if isinstance(node, list):
        for item in node:
            _forbid_nul(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if ("string" in types and "pattern" not in node and "enum" not in node and "const" not in node
            and node.get("format") != "binary"):
        node["pattern"] = NO_NUL_PATTERN
    if "object" in types and node.get("additionalProperties") is not False and "propertyNames" not in node:
        node["propertyNames"] = {"pattern": NO_NUL_PATTERN}
    for key, child in node.items():
        if key not in ("example", "examples", "default", "const", "enum"):
            _forbid_nul(child)


def build_openapi(public_url: str, blueprint_modules: list[str]) -> dict[str, Any]:
    """The whole document: core paths plus what each blueprint module contributes."""
    paths: dict[str, Any] = dict(CORE_PATHS)
    webhooks: dict[str, Any] = {}  # OpenAPI 3.1 "webhooks": what subscribers receive
    schemas: dict[str, Any] = {}
    # The answers' shapes come from the models that build them (connector/shapes.py).
    schemas.update(shapes.components())
    schemas["LetterIn"] = LetterIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["LetterIn"].pop("$defs", {}))
    schemas["ConsentIn"] = ConsentIn.model_json_schema(ref_template="#/components/schemas/{model}")
    for module_name in blueprint_modules:
        module = importlib.import_module(module_name)
        for path, operations in getattr(module, "OPENAPI", {}).items():
            paths.setdefault(path, {}).update(operations)
        contributed = getattr(module, "SCHEMAS", {})
        # A module may reuse a shared model's schema (the same DocumentIn), never redefine a name.
        clash = {name for name in set(contributed) & set(schemas) if contributed[name] != schemas[name]}
        assert not clash, f"{module_name} redefines {sorted(clash)}"
        schemas.update(contributed)
        webhooks.update(getattr(module, "WEBHOOKS", {}))

    def response(description: str) -> dict[str, Any]:
        return {"description": description, **json_body(ref("Error"))}

    _document_common_errors(paths)
    from connector.delivery.events import ACCOUNT_EVENTS

    # Letter events carry the letter; account events (consent.*, batch.*, alert.*, hook.*) their own
    # object (connector.delivery.events), known once every module has registered.
    schemas["Event"] = {**schemas["Event"], "properties": {
        **schemas["Event"]["properties"],
        "type": {"type": "string", "enum": [*(f"letter.{s}" for s in STATUSES), *sorted(ACCOUNT_EVENTS)]},
        "data": {"anyOf": [ref("Letter"), {"type": "object"}]}}}

    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "LRE Bridge API",
            "version": "1",
            "description": "Send qualified electronic registered letters (LRE, eIDAS art. 44) and follow their "
                           "legal lifecycle. Errors are {\"error\": {\"code\", \"message\", \"field\"}}.",
        },
        "servers": [{"url": public_url}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "webhooks": webhooks,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "API key (lre_…)"}},
            "parameters": {
                # What idempotent() accepts: 1 to 255 characters once surrounding blanks are removed.
                "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string",
                                   "minLength": 1, "maxLength": 255,
                                   "pattern": "^[^\\s\\x00]([^\\x00]{0,253}[^\\s\\x00])?$"},
                                   "description": "Same key + same body replays the first "
                                   "answer; same key + other body is refused (422); while the first is "
                                   "running, 409."},
                "LetterId": {"name": "letter_id", "in": "path", "required": True, "schema": {"type": "string"}},
            },
            "responses": {
                "BadRequest": response("Malformed request"),
                "Unauthorized": response("Missing or invalid API key"),
                "Forbidden": response("The caller's address is not allowed (a provider's IP allow-list)"),
                "NotFound": response("Not found in your account"),
                "Conflict": response("The same Idempotency-Key is being processed"),
                "TooLarge": response("Document too large"),
                "Unprocessable": response("Invalid field (named in error.field)"),
                "InternalError": response("The bridge failed (its disk or database): nothing was stored, "
                                          "the same request may be retried"),
            },
            "schemas": schemas,
        },
    }
    # Requests only: what subscribers receive (webhooks) is not read by the bridge. A copy, so that
    # the modules' shared schema dicts are never changed.
    document = copy.deepcopy(document)
    _forbid_nul(document["paths"])
    _forbid_nul(document["components"])
    return document


@bp.get("/openapi.json")
def openapi() -> Response:
    from connector.app import BLUEPRINTS

    services = current_app.extensions["lre"]
    return jsonify(build_openapi(services.settings.public_url, BLUEPRINTS))
