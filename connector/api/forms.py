"""Request bodies read field by field rather than validated by a model: what the document says of them.

A multipart letter or batch is read part by part (files spooled, JSON values parsed) before its
fields reach the model that validates them (``LetterIn``, ``BatchIn``); a template upload is checked
by ``connector.rendering.library``. These models only describe those bodies for the OpenAPI
document (``Body({...: MultipartBatch})``): a file is ``bytes`` (``format: binary``), and an
optional field is one that may be left out, not one that may be null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.rendering import library


def _leave_out_not_null(schema: dict[str, Any]) -> None:
    """An optional property of a form is absent when not given: drop pydantic's ``null`` branch and
    ``None`` default, which the readers of these bodies do not accept."""
    for prop in schema.get("properties", {}).values():
        branches = [branch for branch in prop.get("anyOf", ()) if branch != {"type": "null"}]
        if "anyOf" in prop and len(branches) == 1:
            del prop["anyOf"]
            prop.update(branches[0])
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class Form(BaseModel):
    """A request body described, not validated, by its model (see the module's docstring)."""

    model_config = ConfigDict(json_schema_extra=_leave_out_not_null)


File = bytes | None


# Read by api/letters.py's _multipart_payload, then parse_letter.
class MultipartLetter(Form):
    """A letter as a form: the PDFs as files, the other fields as values (JSON where they are objects)."""

    documents: list[bytes] | None = None
    recipient: str | None = Field(None, description="the recipient object as JSON")


# Read by api/batch_intake.py's _multipart, then BatchIn.
class MultipartBatch(Form):
    """A batch as a form: the rows as a CSV file, the PDFs as files, the other fields as values."""

    rows: File = Field(None, description="the CSV file")
    document: File = None
    attachments: list[bytes] | None = None
    template: str | None = None
    data: str | None = Field(None, description="JSON object")
    mapping: str | None = Field(None, description="JSON object")
    encoding: str | None = None
    delimiter: str | None = None


# Template bodies are checked by connector.rendering.library, field by field.
class TemplateUploadField(Form):
    """A field the template declares."""

    key: str
    label: str | None = None
    type: Literal["text", "long_text", "date", "amount", "email", "list"] | None = None
    required: bool | None = None
    help: str | None = None
    example: Any = None
    choices: list[str] | None = None


class _TemplateSource(Form):
    description: str | None = Field(None, max_length=library.MAX_DESCRIPTION_LENGTH,
                                    description="What the letter is for, shown where a user picks a template; "
                                                "a new version (PUT) keeps the previous one unless given.")
    source: str = Field(description='Jinja2 HTML; may `{% extends "base.html" %}` and fill the blocks `objet` '
                                    'and `corps`.')
    fields: list[TemplateUploadField] | None = Field(
        None, description="Declared fields; discovered from the source when omitted.")


_TITLE = {"min_length": 1, "max_length": library.MAX_TITLE_LENGTH,
          "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"}  # not blank, no NUL


class TemplateUpload(_TemplateSource):
    """A new custom template."""

    name: str = Field(pattern=library.NAME_PATTERN.pattern)
    title: str = Field(**_TITLE)


class TemplateVersionUpload(_TemplateSource):
    """A new version of a template: the URL names it; the title and description are the previous
    version's unless given."""

    name: str | None = Field(None, pattern=library.NAME_PATTERN.pattern,
                             description="Optional: the URL names the template; if given, the same name "
                                         "(else 422).")
    title: str | None = Field(None, **_TITLE)


class TemplateRender(Form):
    """The data of a preview."""

    data: dict[str, Any] | None = Field(None, description="Field values, by key.")
    letter_date: str | None = Field(None, description="Date (or date-time) printed on the letter; defaults to now.")
