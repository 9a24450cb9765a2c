"""The three ways a template render can fail, each mapped to one API error by the blueprints."""

from __future__ import annotations

from typing import Any


class TemplateNotFound(Exception):
    """No built-in or custom template of that name for the account (API: 404 ``template_not_found``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No template named {name!r}.")
        self.name = name


class TemplateDataError(Exception):
    """The data does not fit the template's fields (API: 422 ``invalid_template_data``).

    ``errors`` lists every field at fault: ``{"field": "data.<key>", "code", "message"}``.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        fields = ", ".join(error["field"] for error in errors)
        super().__init__(f"The template data is invalid: {fields}.")
        self.errors = errors


class TemplateSourceError(Exception):
    """A template's source is invalid or unsafe (API: 422 ``invalid_template``).

    ``line`` is the source line at fault when known; ``field`` the part of an upload request
    (``source``, ``fields``, ``name``, ``title``).
    """

    def __init__(self, message: str, line: int | None = None, *, field: str = "source") -> None:
        super().__init__(f"Line {line}: {message}" if line else message)
        self.message = message
        self.line = line
        self.field = field
