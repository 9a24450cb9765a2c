"""Letter templates rendered to PDF: the public seam of the template engine.

``render_for_letter`` is what ``POST /v1/letters`` calls with ``template`` + ``data``;
the rest serves ``/v1/templates``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from connector.errors import BridgeError, Conflict, InvalidInput, NotFound
from connector.rendering.errors import TemplateDataError, TemplateNotFound, TemplateSourceError
from connector.rendering.fields import PLATFORMS
from connector.rendering.library import TemplateConflict, TemplateSpec, list_specs, resolve_template
from connector.rendering.render import RenderedLetter, render_for_letter, render_spec

__all__ = [
    "PLATFORMS",
    "RenderedLetter",
    "TemplateConflict",
    "TemplateDataError",
    "TemplateNotFound",
    "TemplateSourceError",
    "TemplateSpec",
    "TEMPLATE_ERRORS",
    "as_bridge_error",
    "get_template",
    "list_templates",
    "render_for_letter",
    "render_spec",
]


TEMPLATE_ERRORS = (TemplateNotFound, TemplateDataError, TemplateSourceError, TemplateConflict)


def as_bridge_error(exc: Exception, field: str = "template") -> BridgeError:
    """A template failure in the bridge's words: one mapping for letters, batches and /v1/templates
    (not found; every data field at fault; the source line at fault; a name or version clash)."""
    if isinstance(exc, TemplateNotFound):
        return NotFound("template_not_found", f"No template named {exc.name!r} in your account.", field)
    if isinstance(exc, TemplateDataError):
        named = "; ".join(f"{error['field']} ({error['code']})" for error in exc.errors)
        first = exc.errors[0]["field"] if exc.errors else "data"
        return InvalidInput("invalid_template_data",
                            f"The template data is invalid: {named}. See details for each field.",
                            first, details=exc.errors)
    if isinstance(exc, TemplateSourceError):
        detail = {"field": exc.field, "line": exc.line, "message": exc.message}
        return InvalidInput("invalid_template", str(exc), exc.field, details=[detail])
    if isinstance(exc, TemplateConflict):
        return Conflict(exc.code, exc.message, "name")
    raise TypeError(f"not a template error: {exc!r}")


def list_templates(session: Session, account_id: str) -> list[dict[str, Any]]:
    """The templates the account can send from (built-ins and its own, latest versions)."""
    return [spec.summary() for spec in list_specs(session, account_id)]


def get_template(session: Session, account_id: str, name: str) -> dict[str, Any]:
    """One template with its fields (key, label, type, required, help_text, example, list, choices)."""
    return resolve_template(session, account_id, name).public()
