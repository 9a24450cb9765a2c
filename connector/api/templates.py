"""Letter templates: ``/v1/templates`` — list, fields, PDF preview, and custom template uploads.

The fields a template serves are what gives a Zap (or a Make scenario, an n8n node) its
per-template inputs: each one carries key, label, type, required, help_text, example, list, choices.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, Field

from connector import rendering, shapes
from connector.api import examples, forms
from connector.api.auth import require_api_key
from connector.api.common import bounded_instant, list_answer, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.idempotency import idempotent
from connector.api.registry import Answer, Body, ListOf, documented, file_answer, json_answer
from connector.rendering import library

bp = Blueprint("templates", __name__)


# --- What the routes take and answer (shapes.py for the answers, api/forms.py for the uploads) -------

class TemplateName(BaseModel):
    name: str = Field(examples=["mise_en_demeure"])


class FieldsQuery(BaseModel):
    platform: Literal["generic", "make", "n8n"] = "generic"


class PlatformFields(shapes.Shape):
    """A template's input fields in one platform's own shape (Make parameters, n8n resource fields)."""

    fields: list[dict[str, Any]]


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "Send a JSON object (Content-Type: application/json).")
    return body


def _template_body(spec: rendering.TemplateSpec) -> dict[str, Any]:
    return shapes.Template.dump(object="template", **spec.public(), links={"self": f"/v1/templates/{spec.name}"})


@bp.get("/v1/templates")
@documented("List letter templates", operation_id="listTemplates", answers={200: ListOf(shapes.TemplateSummary)})
@require_api_key
def list_templates() -> Response:
    """Built-in templates and the account's own (latest versions), by name."""
    data = [shapes.TemplateSummary.dump(object="template", **item)
            for item in rendering.list_templates(db_session(), g.account.id)]
    return list_answer(data)


@bp.get("/v1/templates/<name>")
@documented("A template and its fields (dynamic input fields)", operation_id="getTemplate", path=TemplateName,
            answers={200: shapes.Template})
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
@documented("A template's input fields in a platform's own shape", operation_id="getTemplateFields",
            description="`make`: Make parameters (for an RPC's dynamic fields). `n8n`: an n8n "
                        "`ResourceMapperFields` value. `generic` (default): as `GET /v1/templates/{name}`.",
            path=TemplateName, query=FieldsQuery, answers={200: PlatformFields})
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
    fields = _account_template(name).fields
    return jsonify(PlatformFields.dump(fields=[field.for_platform(platform) for field in fields]))


@bp.get("/v1/templates/<name>/versions")
@documented("Versions of a template, newest first", operation_id="listTemplateVersions", path=TemplateName,
            answers={200: ListOf(shapes.TemplateVersion)})
@require_api_key
def list_versions(name: str) -> Response:
    """Every live version of a template, newest first (a shadowed built-in last)."""
    try:
        specs = library.version_history(db_session(), g.account.id, name)
    except rendering.TEMPLATE_ERRORS as exc:
        raise rendering.as_bridge_error(exc, "name") from None
    data = [shapes.TemplateVersion.dump(object="template_version", **spec.summary()) for spec in specs]
    return list_answer(data)


@bp.post("/v1/templates/<name>/render")
@documented("Preview: render the PDF (nothing is sent)", operation_id="renderTemplate", path=TemplateName,
            body=Body({"application/json": forms.TemplateRender}, example=examples.RENDER),
            answers={200: file_answer("The PDF", "application/pdf")})
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
@documented("Upload a custom template", operation_id="createTemplate",
            body=Body({"application/json": forms.TemplateUpload}, example=examples.TEMPLATE),
            answers={201: json_answer(shapes.Template, "Created")},
            errors={409: "`template_exists` (PUT adds a version), or the Idempotency-Key is in use"})
@require_api_key
@idempotent
def create_template() -> tuple[Response, int, dict[str, str]]:
    """Upload a custom template (version 1, or the next after a built-in of the same name)."""
    body = _json_body()
    return _store_version(body.get("name"), body, must_exist=False)


@bp.put("/v1/templates/<name>")
@documented("Upload a new version of a template", operation_id="updateTemplate", path=TemplateName,
            body=Body({"application/json": forms.TemplateVersionUpload}, example=examples.TEMPLATE_VERSION),
            answers={201: json_answer(shapes.Template, "New version")})
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
@documented("Delete a custom template (all versions)", operation_id="deleteTemplate", path=TemplateName,
            answers={204: Answer("Deleted")}, errors={409: "`builtin_template`: a built-in cannot be deleted"})
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
