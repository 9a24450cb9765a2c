"""``GET /openapi.json``: the OpenAPI 3.1 description of the whole API, assembled from the routes.

Every view declares what it answers with ``connector.api.registry.documented``; this module walks the
app's ``url_map`` and makes one operation per rule and method from that declaration. Parameters,
request bodies and answers come from pydantic models (their own JSON Schema): the answers' shapes
from ``connector/shapes.py``, the bodies from the models that validate them. A test checks that every
route has a declaration; a route without one is left out of the document (and fails that test).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode
from werkzeug.routing import Rule

from connector import shapes
from connector.api.hook_bodies import webhooks
from connector.api.registry import (
    REF_TEMPLATE,
    Answer,
    Body,
    Component,
    ListOf,
    Operation,
    Schema,
    declaration_of,
    documented,
    json_answer,
)

bp = Blueprint("openapi", __name__)

METHODS = ("get", "post", "put", "patch", "delete")
# The shared error answers (components/responses), by status.
ERROR_RESPONSES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                   413: "TooLarge", 422: "Unprocessable", 500: "InternalError"}
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@functools.cache
def _schema_text(model: type[BaseModel], mode: JsonSchemaMode) -> str:
    return json.dumps(model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode))


def model_schema(model: type[BaseModel], mode: JsonSchemaMode = "validation") -> dict[str, Any]:
    """``model``'s JSON Schema (references as components), a fresh copy the caller may change.

    Generated once per model and mode: pydantic builds it anew on each call, and building them was
    most of the time ``GET /openapi.json`` took (about 0.1 s, for a document that never changes).
    """
    return json.loads(_schema_text(model, mode))


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class _Components:
    """The schemas the declarations use, collected as the paths are built (a name is one schema)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = shapes.components()
        self._sources: dict[str, Any] = {name: shapes for name in self.schemas}

    def _add(self, name: str, schema: dict[str, Any], source: Any) -> None:
        known = self._sources.get(name)
        if known is None:
            self.schemas[name], self._sources[name] = schema, source
        elif known is not source and self.schemas[name] != schema:
            raise AssertionError(f"two different schemas are named {name}")

    def schema(self, target: Schema | ListOf, mode: JsonSchemaMode = "validation") -> dict[str, Any]:
        """The schema (a reference for a model or a Component) of what a declaration names: an
        answer's model as it serialises, a body's as it validates."""
        if isinstance(target, ListOf):
            return self.schema(shapes.Page[target.item], mode)
        if isinstance(target, Component):
            for part in target.parts:
                self.schema(part, mode)
            self._add(target.name, target.schema, target)
            return ref(target.name)
        if isinstance(target, type) and issubclass(target, BaseModel):
            name = target.__name__
            if self._sources.get(name) is not shapes:  # a shape is there already, as it is serialised
                schema = model_schema(target, mode)
                for part, part_schema in schema.pop("$defs", {}).items():
                    self._add(part, part_schema, (target, part))
                self._add(name, schema, target)
            return ref(name)
        if not isinstance(target, dict):
            raise TypeError(f"not a model, Component, ListOf or JSON Schema: {target!r}")
        return target  # a schema written in place (a file, a form, a text format)


def model_parameters(model: type[BaseModel], location: str) -> list[dict[str, Any]]:
    """One parameter per field of ``model`` (aliases as names), from the model's JSON Schema.

    A parameter is a string on the wire: an optional field is one that may be left out, so the
    ``null`` branch pydantic writes for ``X | None`` is dropped, and so is a ``None`` default.
    """
    schema = model_schema(model)
    # A parameter's schema is written in place: a field typed with an Enum or a model would refer
    # to a component the document may not have (use a Literal of the values).
    assert "$defs" not in schema, f"{model.__name__}: parameters must not refer to other schemas"
    parameters = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        prop = dict(schema["properties"][key])
        prop.pop("title", None)
        if "anyOf" in prop:
            branches = [branch for branch in prop["anyOf"] if branch != {"type": "null"}]
            if len(branches) == 1:
                del prop["anyOf"]
                prop = {**branches[0], **prop}
        if prop.get("default", 0) is None:
            del prop["default"]
        parameter: dict[str, Any] = {"name": key, "in": location}
        if info.description:
            parameter["description"] = info.description
            if prop.get("description") == info.description:
                del prop["description"]
        if location == "path" or info.is_required():
            parameter["required"] = True
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _path_parameters(rule: Rule, operation: Operation) -> list[dict[str, Any]]:
    typed = {p["name"]: p for p in model_parameters(operation.path, "path")} if operation.path else {}
    return [typed.get(name, {"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
            for name in _RULE_ARGUMENT.findall(rule.rule)]


def openapi_path(rule: Rule) -> str:
    """The OpenAPI path of a Flask rule: ``/v1/letters/<letter_id>`` → ``/v1/letters/{letter_id}``."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule.rule)


def _answer(answer: Answer | Schema | ListOf, components: _Components) -> dict[str, Any]:
    if not isinstance(answer, Answer):
        answer = json_answer(answer)
    result: dict[str, Any] = {"description": answer.description}
    if answer.content:
        result["content"] = {media_type: ({} if schema is None else
                                          {"schema": components.schema(schema, "serialization")})
                             for media_type, schema in answer.content.items()}
    return result


def _body(body: Body, components: _Components) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media_type, schema in body.content.items():
        content[media_type] = {"schema": components.schema(schema)}
        if body.example is not None and media_type == "application/json":
            content[media_type]["example"] = body.example
    return {"required": True, "content": content} if body.required else {"content": content}


def build_operation(rule: Rule, operation: Operation, components: _Components) -> dict[str, Any]:
    """The OpenAPI operation of one rule and method, from its declaration."""
    result: dict[str, Any] = {}
    if operation.tags:
        result["tags"] = list(operation.tags)
    result["summary"] = operation.summary
    if operation.operation_id:
        result["operationId"] = operation.operation_id
    if operation.description:
        result["description"] = operation.description
    if operation.security is not None:
        result["security"] = operation.security
    parameters: list[dict[str, Any]] = []
    if operation.idempotent:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    parameters += _path_parameters(rule, operation)
    for model, location in ((operation.query, "query"), (operation.headers, "header")):
        if model is not None:
            parameters += model_parameters(model, location)
    if parameters:
        result["parameters"] = parameters
    if operation.body is not None:
        result["requestBody"] = _body(operation.body, components)
    responses = {str(status): _answer(answer, components) for status, answer in operation.answers.items()}
    for status, description in operation.errors.items():
        responses[str(status)] = ({"$ref": f"#/components/responses/{ERROR_RESPONSES[status]}"}
                                  if description is None else
                                  {"description": description, "content": {"application/json": {
                                      "schema": ref("Error")}}})
    result["responses"] = responses
    return result


def undeclared_routes(app: Flask) -> list[str]:
    """The rules of ``app`` without a declaration (Flask's own static route aside)."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static" and declaration_of(app.view_functions[rule.endpoint], rule.endpoint)
                  is None)


def build_paths(app: Flask, components: _Components) -> dict[str, Any]:
    """Every declared route of ``app``, by OpenAPI path and method."""
    paths: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        operation = declaration_of(app.view_functions[rule.endpoint], rule.endpoint)
        if operation is None:
            continue  # Flask's static files; any other route without one fails tests/test_openapi_registry.py
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(openapi_path(rule), {})[method.lower()] = build_operation(rule, operation, components)
    return paths


# What any operation may answer, whatever it does: a malformed query or cursor (400), a missing key
# (401), an unknown id (404), a field refused (422, NUL characters and non-standard JSON included);
# and, for what takes a body, a body too large (413) and an Idempotency-Key in use (409). A failure of
# the bridge itself (its disk, its database) is a 500 with the same error body, and nothing is stored.
_COMMON_ERRORS = {str(status): ERROR_RESPONSES[status] for status in (400, 401, 404, 422, 500)}
_BODY_ERRORS = {str(status): ERROR_RESPONSES[status] for status in (409, 413)}


def _document_common_errors(paths: dict[str, Any]) -> None:
    """Add the shared error answers to every operation that does not describe them itself."""
    for item in paths.values():
        for method, operation in item.items():
            if method not in METHODS or not isinstance(operation, dict):
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


def build_openapi(app: Flask, public_url: str) -> dict[str, Any]:
    """The whole document: one operation per declared route of ``app``."""
    components = _Components()
    paths = build_paths(app, components)
    # OpenAPI 3.1 "webhooks": what subscribers receive (shapes, as they are serialised).
    webhooks_item = webhooks(lambda body: components.schema(body, "serialization"))
    schemas = components.schemas

    def response(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}

    _document_common_errors(paths)

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
        "webhooks": webhooks_item,
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
            },
            "responses": {
                "BadRequest": response("Malformed request"),
                "Unauthorized": response("Missing or invalid API key"),
                "NotFound": response("Not found in your account"),
                "Conflict": response("The same Idempotency-Key is being processed"),
                "TooLarge": response("Document too large"),
                "Unprocessable": response("Invalid field (named in error.field)"),
                "Forbidden": response("The caller is not allowed (a provider's IP allow-list)"),
                "InternalError": response("The bridge failed (its disk or database): nothing was stored, "
                                          "the same request may be retried"),
            },
            "schemas": schemas,
        },
    }
    # Requests only: what subscribers receive (webhooks) is not read by the bridge. A copy, so that
    # the declarations' shared schema dicts are never changed.
    document = copy.deepcopy(document)
    _forbid_nul(document["paths"])
    _forbid_nul(document["components"])
    return document


class OpenApiDocument(BaseModel):
    """This API's description in OpenAPI 3.1. Only its main keys are listed here; the others
    (servers, tags, security…) are as the OpenAPI specification defines them."""

    # Open: the document's full shape is OpenAPI's own, checked by openapi-spec-validator in the tests.
    model_config = ConfigDict(extra="allow")

    openapi: str = Field(json_schema_extra={"pattern": r"^3\.1\.\d+$"})
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


@bp.get("/openapi.json")
@documented("This document", security=[], answers={200: OpenApiDocument})
def openapi() -> Response:
    services = current_app.extensions["lre"]
    return jsonify(build_openapi(current_app, services.settings.public_url))
