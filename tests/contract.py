"""Every answer the suite receives is checked against the operation the OpenAPI document describes.

The ``app`` fixture gives its test client this class: each request a test makes is matched to its
route, and the answer's status must be documented for that operation, its content type must be one
the document lists for that status, and a JSON body must validate against the documented schema.
A renamed field, an undocumented status or a shape that drifted from its model fails the test that
met it, whatever that test was about.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response

from connector.api.openapi import build_openapi


class UndocumentedAnswer(AssertionError):
    """An answer the OpenAPI document does not describe."""


_DOCUMENTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def _document(app: Flask) -> dict[str, Any]:
    """The app's document, built once per set of routes (every test app has the same ones)."""
    public_url = app.extensions["lre"].settings.public_url
    routes = sorted((rule.rule, rule.endpoint, *sorted(rule.methods or ())) for rule in app.url_map.iter_rules())
    key = (public_url, *routes)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = build_openapi(app, public_url)
    return _DOCUMENTS[key]


def _openapi_path(rule: str) -> str:
    """``/v1/letters/<letter_id>`` (or ``<string:letter_id>``) -> ``/v1/letters/{letter_id}``."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for key in node["$ref"].lstrip("#/").split("/"):
            target = target[key]
        node = target
    return node


_VALIDATORS: dict[tuple[int, str, str, str, str], jsonschema.Draft202012Validator] = {}


def _validator(document: dict[str, Any], path: str, method: str, status: str,
               media: str) -> jsonschema.Draft202012Validator:
    key = (id(document), path, method, status, media)
    if key in _VALIDATORS:
        return _VALIDATORS[key]
    answer = _resolve(document, document["paths"][path][method]["responses"][status])
    schema = answer["content"][media]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    _VALIDATORS[key] = validator
    return validator


def check_answer(app: Flask, method: str, url: str, response: Response) -> None:
    """Raise ``UndocumentedAnswer`` unless ``response`` is what the document promises for the request."""
    adapter = app.url_map.bind("bridge.test")
    path_only = url.split("?", 1)[0]
    try:
        rule, _ = adapter.match(path_only, method=method, return_rule=True)
    except (NotFound, MethodNotAllowed, RequestRedirect):
        return  # routing's own answers; tests/test_hostile_input.py checks those
    document = _document(app)
    path = _openapi_path(rule.rule)
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        if method in ("HEAD", "OPTIONS"):
            return  # refused with 405 before any view runs (api/methods.py)
        raise UndocumentedAnswer(f"{method} {path} is not in the OpenAPI document")
    status = str(response.status_code)
    answers = operation.get("responses", {})
    if status not in answers:
        raise UndocumentedAnswer(f"{method} {path} answered {status}, documented: {sorted(answers)}")
    answer = _resolve(document, answers[status])
    content = answer.get("content")
    media = (response.mimetype or "").lower()
    if not content:
        return  # an answer documented without a body (e.g. 204)
    if media not in content:
        if not any(key.endswith("/*") and media.startswith(key[:-1]) for key in content):
            raise UndocumentedAnswer(f"{method} {path} {status} sent {media!r}, documented: {sorted(content)}")
        return
    if media != "application/json":
        return
    body = response.get_json(silent=True)
    errors = sorted(_validator(document, path, method.lower(), status, media).iter_errors(body),
                    key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise UndocumentedAnswer(f"{method} {path} {status}: {errors[0].message} (at /{where})")


class DocumentedClient(FlaskClient):
    """A test client that checks every answer against the OpenAPI document (``check_answer``)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        # A streamed download's body is not read here: only JSON bodies are validated.
        check_answer(self.application, response.request.method, response.request.path, response)
        return response
