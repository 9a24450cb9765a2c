"""Template + data + letter time → the letter's PDF. The one function the letters API calls."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import Template
from jinja2.exceptions import SecurityError, UndefinedError
from sqlalchemy.orm import Session

from connector.rendering.environment import COMPILED, MAX_OUTPUT_CHARS, NBSP, NNBSP, render_deadline
from connector.rendering.errors import TemplateSourceError
from connector.rendering.fields import LETTER_TIMEZONE, coerce_data
from connector.rendering.isolation import render_pdf_isolated
from connector.rendering.library import TemplateSpec, resolve_template

DEFAULT_AUTHOR = "LRE Bridge"


@dataclass(frozen=True)
class RenderedLetter:
    """A rendered letter: the PDF and what the letter records about where it came from."""

    pdf: bytes
    template_name: str
    template_version: int
    filename: str
    title: str


def render_for_letter(
    session: Session, account_id: str, template_name: str, data: dict[str, Any], letter_time: datetime
) -> RenderedLetter:
    """Render the account's current version of ``template_name`` with ``data`` as the letter's PDF.

    Same template version, data and ``letter_time`` → byte-identical PDF. Raises TemplateNotFound,
    TemplateDataError (listing every field at fault) or TemplateSourceError; stores nothing.
    """
    spec = resolve_template(session, account_id, template_name)
    return render_spec(spec, data, letter_time)


def render_spec(spec: TemplateSpec, data: Any, letter_time: datetime) -> RenderedLetter:
    """Render one given template version (used for previews and by ``render_for_letter``)."""
    values = coerce_data(spec.fields, data)
    letter_time = letter_time if letter_time.tzinfo else letter_time.replace(tzinfo=UTC)
    letter_date = letter_time.astimezone(LETTER_TIMEZONE).date()
    author = values.get("expediteur_nom") or DEFAULT_AUTHOR
    try:
        # In a memory-limited worker process: a hostile template cannot take the API's memory.
        pdf = render_pdf_isolated(
            spec, values, letter_date, title=spec.title, author=str(author), created_at=letter_time
        )
    except TemplateSourceError as exc:
        # The client may render several templates in a day: say which one was refused.
        raise TemplateSourceError(
            f"Template {spec.name!r} (version {spec.version}): {exc.message}", exc.line, field=exc.field
        ) from None
    return RenderedLetter(
        pdf=pdf,
        template_name=spec.name,
        template_version=spec.version,
        filename=f"{spec.name}-{letter_date.isoformat()}.pdf",
        title=spec.title,
    )


def render_html(spec: TemplateSpec, values: dict[str, Any], letter_date: date) -> str:
    """The letter as HTML, rendered in the sandbox; a template's own failure becomes TemplateSourceError."""
    template = COMPILED.get(spec.sha256, spec.source)
    context = {**values, "date_lettre": letter_date, "titre_document": spec.title}
    html = _generate(template, context)
    # xhtml2pdf treats U+202F as ordinary collapsible whitespace and would break lines inside
    # "1 250,00 €"; the no-break space it does honour keeps the amount on one line.
    return html.replace(NNBSP, NBSP)


def _generate(template: Template, context: dict[str, Any]) -> str:
    parts: list[str] = []
    size = 0
    try:
        with render_deadline():
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateSourceError("The template produces far more text than a letter holds.")
                parts.append(chunk)
    except (TemplateSourceError, MemoryError):
        raise  # MemoryError: the worker's address-space limit, reported as such
    except SecurityError as exc:
        raise TemplateSourceError(f"Unsafe template: {exc}", _template_line(exc)) from None
    except UndefinedError as exc:
        raise TemplateSourceError(f"Undefined variable: {exc}", _template_line(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure of uploaded template code is the template's fault
        message = f"The template failed: {type(exc).__name__}: {exc}"
        raise TemplateSourceError(message, _template_line(exc)) from None
    return "".join(parts)


def _template_line(exc: BaseException) -> int | None:
    """The template line where ``exc`` was raised (Jinja rewrites tracebacks to point there)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in ("<template>", "base.html") or frame.filename.endswith(".html"):
            line = frame.lineno
    return line
