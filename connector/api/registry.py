"""Route declarations: what each view answers, attached to the view itself.

``@documented(...)`` sits between ``@bp.get(...)`` and the view (above ``require_api_key`` and
``idempotent``). It stores an ``Operation`` on the function; ``connector.api.openapi`` walks the
app's ``url_map`` and turns each rule's declaration into the OpenAPI operation, so a route and its
description cannot part: the path comes from the Flask rule (``<letter_id>`` → ``{letter_id}``), the
methods from the rule, the path, query and header parameters from pydantic models (their own JSON
Schema), the request body and the answers from the models that validate and build them
(``connector/shapes.py``; a page of them is ``shapes.Page``). A JSON Schema written by hand is only
for what has no model (a file, a text format) and is named with ``Component`` when it is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

View = TypeVar("View", bound=Callable[..., Any])

REF_TEMPLATE = "#/components/schemas/{model}"
DECLARATION_ATTRIBUTE = "lre_operation"
# Set by ``connector.api.idempotency.idempotent`` on its wrapper (functools.wraps carries it up).
IDEMPOTENT_ATTRIBUTE = "lre_idempotent"


@dataclass(frozen=True)
class Component:
    """A named JSON Schema written by hand (no model builds that answer), shared by reference."""

    name: str
    schema: dict[str, Any]
    parts: tuple[Component | type[BaseModel], ...] = ()  # what ``schema`` refers to


Schema = type[BaseModel] | Component | dict[str, Any]


@dataclass(frozen=True)
class ListOf:
    """A page of items: ``{"object": "list", "data": [...], "next_cursor"}`` (``connector.shapes.Page``)."""

    item: type[BaseModel]


@dataclass(frozen=True)
class Answer:
    """One documented answer: a description and, per content type, a schema (``None``: no schema)."""

    description: str = "OK"
    content: Mapping[str, Schema | ListOf | None] = field(default_factory=dict)


def json_answer(schema: Schema | ListOf, description: str = "OK") -> Answer:
    """A JSON answer."""
    return Answer(description, {"application/json": schema})


def file_answer(description: str, *media_types: str) -> Answer:
    """A binary download (PDF, zip…)."""
    return Answer(description, {media_type: {"type": "string", "format": "binary"} for media_type in media_types})


def text_answer(description: str, media_type: str) -> Answer:
    """A text answer (HTML page, CSV, PEM…)."""
    return Answer(description, {media_type: {"type": "string"}})


@dataclass(frozen=True)
class Body:
    """A request body: per content type, the model that validates it (or a schema for a form/file)."""

    content: Mapping[str, Schema]
    required: bool = True
    example: Any = None  # shown for application/json; a body the bridge accepts


@dataclass(frozen=True)
class Operation:
    """What a view declares; ``connector.api.openapi`` makes the OpenAPI operation of it."""

    summary: str
    operation_id: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    path: type[BaseModel] | None = None  # typed path parameters (else each is a string)
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: Body | None = None
    answers: Mapping[int | str, Answer | Schema | ListOf] = field(default_factory=dict)
    # Error answers beyond those every operation may give (openapi.COMMON_ERRORS): a description of
    # what this operation means by that status, or None for the shared wording.
    errors: Mapping[int, str | None] = field(default_factory=dict)
    security: list[dict[str, list[str]]] | None = None  # None: the API key (the document's default)
    idempotent: bool = False  # set from the view (``@idempotent``), not by hand


def documented(summary: str, *, body: type[BaseModel] | Body | None = None, body_example: Any = None,
               tags: tuple[str, ...] | list[str] = (), **declaration: Any) -> Callable[[View], View]:
    """Declare what the view answers (see ``Operation``); ``body`` may be just the JSON model."""
    if isinstance(body, type):
        body = Body({"application/json": body}, example=body_example)

    def attach(view: View) -> View:
        operation = Operation(summary, body=body, tags=tuple(tags),
                              idempotent=bool(getattr(view, IDEMPOTENT_ATTRIBUTE, False)), **declaration)
        setattr(view, DECLARATION_ATTRIBUTE, operation)
        return view

    return attach


# Endpoints whose view Flask makes (a blueprint's static files): declared by endpoint name.
_BY_ENDPOINT: dict[str, Operation] = {}


def document_endpoint(endpoint: str, summary: str, **declaration: Any) -> None:
    """Declare a route whose view is not ours to decorate (``send_static_file``)."""
    _BY_ENDPOINT[endpoint] = Operation(summary, **declaration)


def declaration_of(view: Callable[..., Any], endpoint: str = "") -> Operation | None:
    """The view's declaration (or its endpoint's), or None when it has none."""
    return getattr(view, DECLARATION_ATTRIBUTE, None) or _BY_ENDPOINT.get(endpoint)
