"""Letter templates: ``/v1/templates`` — list, fields, PDF preview, and custom template uploads.

The fields a template serves are what gives a Zap (or a Make scenario, an n8n node) its
per-template inputs: each one carries key, label, type, required, help_text, example, list, choices.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from connector import rendering, shapes
from connector.api.auth import require_api_key
from connector.api.common import bounded_instant, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.idempotency import idempotent
from connector.rendering import library

bp = Blueprint("templates", __name__)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "Send a JSON object (Content-Type: application/json).")
    return body


def _template_body(spec: rendering.TemplateSpec) -> dict[str, Any]:
    return shapes.Template.dump(object="template", **spec.public(), links={"self": f"/v1/templates/{spec.name}"})


@bp.get("/v1/templates")
@require_api_key
def list_templates() -> Response:
    """Built-in templates and the account's own (latest versions), by name."""
    data = [shapes.TemplateSummary.dump(object="template", **item)
            for item in rendering.list_templates(db_session(), g.account.id)]
    return jsonify({"object": "list", "data": data, "next_cursor": None})


@bp.get("/v1/templates/<name>")
@require_api_key
def get_template(name: str) -> Response:
    """One template with its input fields."""
    return jsonify(_template_body(_account_template(name)))


def _account_template(name: str) -> rendering.TemplateSpec:
    """The version of ``name`` the account's letters use; 404 when it has none."""
    try:
        return library.resolve_template(db_session(), g.account.id, name)
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None


@bp.get("/v1/templates/<name>/fields")
@require_api_key
def get_template_fields(name: str) -> Response:
    """The template's input fields in a platform's own shape (``?platform=make|n8n``, default generic).

    ``{"fields": [...]}``: for Make, parameters an RPC returns as a module's dynamic fields; for n8n,
    a ``ResourceMapperFields`` value as is; ``generic`` is what ``GET /v1/templates/{name}`` shows.
    """
    platform = request.args.get("platform", "generic")
    if platform not in rendering.PLATFORMS:
        raise ApiError(422, "invalid_platform", f"platform must be one of: {', '.join(rendering.PLATFORMS)}.",
                       "platform")
    return jsonify({"fields": [field.for_platform(platform) for field in _account_template(name).fields]})


@bp.get("/v1/templates/<name>/versions")
@require_api_key
def list_versions(name: str) -> Response:
    """Every live version of a template, newest first (a shadowed built-in last)."""
    try:
        specs = library.version_history(db_session(), g.account.id, name)
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None
    data = [shapes.TemplateVersion.dump(object="template_version", **spec.summary()) for spec in specs]
    return jsonify({"object": "list", "data": data, "next_cursor": None})


@bp.post("/v1/templates/<name>/render")
@require_api_key
def render_preview(name: str) -> Response:
    """The PDF the template gives with this data: a preview, nothing is sent or stored."""
    body = _json_body()
    letter_time = _letter_time(body.get("letter_date"))
    try:
        spec = library.resolve_template(db_session(), g.account.id, name)
        rendered = rendering.render_spec(spec, body.get("data", {}), letter_time)
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None
    response = Response(rendered.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{rendered.filename}"'
    response.headers["X-Template-Version"] = str(rendered.template_version)
    response.headers["X-Content-SHA256"] = hashlib.sha256(rendered.pdf).hexdigest()
    return response


def _letter_time(raw: Any) -> datetime:
    """The preview's letter time: ``letter_date`` (a date or a date-time), else now."""
    if raw is None:
        return services().clock()
    if isinstance(raw, str):
        try:
            if len(raw) == 10:
                # Noon UTC is the same calendar day in Paris whatever the season.
                return bounded_instant(datetime.combine(date.fromisoformat(raw), time(12), tzinfo=UTC), "letter_date")
            return bounded_instant(datetime.fromisoformat(raw.replace("Z", "+00:00")), "letter_date")
        except ValueError:
            pass
    raise ApiError(422, "invalid_date", "letter_date must be a date (YYYY-MM-DD) or an ISO 8601 date-time.",
                   "letter_date")


@bp.post("/v1/templates")
@require_api_key
@idempotent
def create_template() -> tuple[Response, int, dict[str, str]]:
    """Upload a custom template (version 1, or the next after a built-in of the same name)."""
    body = _json_body()
    return _store_version(body.get("name"), body, must_exist=False)


@bp.put("/v1/templates/<name>")
@require_api_key
@idempotent
def update_template(name: str) -> tuple[Response, int, dict[str, str]]:
    """A new version of a template; letters already sent keep the version they were rendered from."""
    body = _json_body()
    if body.get("name", name) != name:
        raise ApiError(422, "name_mismatch", "The name in the body differs from the one in the URL.", "name")
    return _store_version(name, body, must_exist=True)


def _store_version(name: Any, body: dict[str, Any], *, must_exist: bool) -> tuple[Response, int, dict[str, str]]:
    try:
        spec = library.add_version(
            db_session(), g.account.id, name, body.get("title"), body.get("source"), body.get("fields"),
            must_exist=must_exist, description=body.get("description"),
        )
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None
    return jsonify(_template_body(spec)), 201, {"Location": f"/v1/templates/{spec.name}"}


@bp.delete("/v1/templates/<name>")
@require_api_key
def delete_template(name: str) -> tuple[str, int]:
    """Delete a custom template (all versions); a built-in of the same name shows again."""
    session = db_session()
    try:
        library.delete_custom(session, g.account.id, name)
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None
    session.commit()
    return "", 204


# --- OpenAPI ------------------------------------------------------------------------------------

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
         "example": "mise_en_demeure"}
_IDEMPOTENCY = {"$ref": "#/components/parameters/IdempotencyKey"}
_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list(item: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"object": {"const": "list"},
                                             "data": {"type": "array", "items": _ref(item)},
                                             "next_cursor": {"type": ["string", "null"]}}}


SCHEMAS: dict[str, Any] = {
    "TemplateUpload": {
        "type": "object",
        "required": ["name", "title", "source"],
        "properties": {
            "name": {"type": "string", "pattern": library.NAME_PATTERN.pattern},
            "title": {"type": "string", "minLength": 1, "maxLength": library.MAX_TITLE_LENGTH,
                      "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"},  # not blank, no NUL
            "description": {"type": "string", "maxLength": library.MAX_DESCRIPTION_LENGTH,
                            "description": "What the letter is for, shown where a user picks a template; "
                                           "a new version (PUT) keeps the previous one unless given."},
            "source": {"type": "string", "description": 'Jinja2 HTML; may `{% extends "base.html" %}` and fill '
                                                        'the blocks `objet` and `corps`.'},
            "fields": {"type": "array", "description": "Declared fields; discovered from the source when omitted.",
                       "items": {"type": "object", "required": ["key"], "properties": {
                           "key": {"type": "string"}, "label": {"type": "string"},
                           "type": {"enum": ["text", "long_text", "date", "amount", "email", "list"]},
                           "required": {"type": "boolean"}, "help": {"type": "string"}, "example": {},
                           "choices": {"type": "array", "items": {"type": "string"}}}}},
        },
    },
    # A new version (PUT): the URL names the template; a ``name`` in the body must be the same.
    "TemplateVersionUpload": {
        "type": "object",
        "required": ["source"],  # title and description: the previous version's unless given
        "properties": {},
    },
    "TemplateRender": {
        "type": "object",
        "properties": {
            "data": {"type": "object", "description": "Field values, by key."},
            "letter_date": {"type": "string", "description": "Date (or date-time) printed on the letter; "
                                                             "defaults to now."},
        },
        "example": {"data": {"numero_facture": "F-2026-0412", "montant_du": "1 250,50"},
                    "letter_date": "2026-11-27"},
    },
}
SCHEMAS["TemplateVersionUpload"]["properties"] = {
    **SCHEMAS["TemplateUpload"]["properties"],
    "name": {**SCHEMAS["TemplateUpload"]["properties"]["name"],
             "description": "Optional: the URL names the template; if given, the same name (else 422)."},
}

OPENAPI: dict[str, Any] = {
    "/v1/templates": {
        "get": {"summary": "List letter templates", "operationId": "listTemplates",
                "responses": {"200": _json(_list("TemplateSummary"))}},
        "post": {"summary": "Upload a custom template", "operationId": "createTemplate",
                 "parameters": [_IDEMPOTENCY],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TemplateUpload")}}},
                 "responses": {"201": _json(_ref("Template"), "Created"), "409": _ERROR, "422": _ERROR}},
    },
    "/v1/templates/{name}": {
        "parameters": [_NAME],
        "get": {"summary": "A template and its fields (dynamic input fields)", "operationId": "getTemplate",
                "responses": {"200": _json(_ref("Template")), "404": _ERROR}},
        "put": {"summary": "Upload a new version of a template", "operationId": "updateTemplate",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("TemplateVersionUpload")}}},
                "responses": {"201": _json(_ref("Template"), "New version"), "404": _ERROR, "422": _ERROR}},
        "delete": {"summary": "Delete a custom template (all versions)", "operationId": "deleteTemplate",
                   "responses": {"204": {"description": "Deleted"}, "404": _ERROR, "409": _ERROR}},
    },
    "/v1/templates/{name}/fields": {
        "parameters": [_NAME],
        "get": {"summary": "A template's input fields in a platform's own shape", "operationId": "getTemplateFields",
                "description": "`make`: Make parameters (for an RPC's dynamic fields). `n8n`: an n8n "
                               "`ResourceMapperFields` value. `generic` (default): as `GET /v1/templates/{name}`.",
                "parameters": [{"name": "platform", "in": "query", "required": False,
                                "schema": {"enum": ["generic", "make", "n8n"], "default": "generic"}}],
                "responses": {"200": _json({"type": "object", "required": ["fields"], "properties": {
                    "fields": {"type": "array", "items": {"type": "object"}}}}), "404": _ERROR, "422": _ERROR}},
    },
    "/v1/templates/{name}/versions": {
        "parameters": [_NAME],
        "get": {"summary": "Versions of a template, newest first", "operationId": "listTemplateVersions",
                "responses": {"200": _json(_list("TemplateVersion")), "404": _ERROR}},
    },
    "/v1/templates/{name}/render": {
        "parameters": [_NAME],
        "post": {"summary": "Preview: render the PDF (nothing is sent)", "operationId": "renderTemplate",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TemplateRender")}}},
                 "responses": {"200": {"description": "The PDF", "content": {"application/pdf": {
                     "schema": {"type": "string", "format": "binary"}}}}, "404": _ERROR, "422": _ERROR}},
    },
}
