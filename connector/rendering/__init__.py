"""Letter templates rendered to PDF: the public seam of the template engine.

``render_for_letter`` is what ``POST /v1/letters`` calls with ``template`` + ``data``;
the rest serves ``/v1/templates``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

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
    "get_template",
    "list_templates",
    "render_for_letter",
    "render_spec",
]


def list_templates(session: Session, account_id: str) -> list[dict[str, Any]]:
    """The templates the account can send from (built-ins and its own, latest versions)."""
    return [spec.summary() for spec in list_specs(session, account_id)]


def get_template(session: Session, account_id: str, name: str) -> dict[str, Any]:
    """One template with its fields (key, label, type, required, help_text, example, list, choices)."""
    return resolve_template(session, account_id, name).public()
