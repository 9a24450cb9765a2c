"""Every answer the suite receives is checked against the operation the OpenAPI document describes.

One checker (``Contract.check``), three ways answers reach it:

- the ``app`` fixture's test client (``DocumentedClient``) checks each answer a test gets;
- ``CheckedApp``, a WSGI middleware, checks each answer an in-process live server gives (the Make
  harness, the browser tests and the batch CLI talk to the app over HTTP, through
  ``tests/live_server.py``'s ``serving_checked``);
- ``tests/live_server.py``'s ``checking_proxy`` puts the same middleware in a loopback reverse proxy
  in front of an ``lre-bridge serve`` subprocess (the n8n package and engine tests).

An answer's status must be documented for its operation, its content type must be one the document
lists for that status, and a JSON body must validate against the documented schema. A renamed
field, an undocumented status or a shape that drifted from its model fails the test that met it,
whatever that test was about.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.http import parse_options_header
from werkzeug.routing import Map, RequestRedirect
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response

from connector.api.openapi import build_openapi


class UndocumentedAnswer(AssertionError):
    """An answer the OpenAPI document does not describe."""


def _openapi_path(rule: str) -> str:
    """``/v1/letters/<letter_id>`` (or ``<string:letter_id>``) -> ``/v1/letters/{letter_id}``."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


class Contract:
    """An OpenAPI document and the routes it describes: ``check`` says whether an answer is documented.

    The routes (a werkzeug ``Map``) match a request to its operation as Flask matched it; the
    document is either built from the same app (``for_app``) or the one a live bridge serves.
    """

    def __init__(self, document: dict[str, Any], url_map: Map) -> None:
        self.document = document
        self._adapter = url_map.bind("bridge.test")
        self._validators: dict[tuple[str, str, str, str], jsonschema.Draft202012Validator] = {}
        self._lock = threading.Lock()  # live servers check answers from several threads

    @classmethod
    def for_app(cls, app: Flask) -> Contract:
        """The app's contract, built once per set of routes (every test app has the same ones)."""
        public_url = app.extensions["lre"].settings.public_url
        routes = sorted((rule.rule, rule.endpoint, *sorted(rule.methods or ())) for rule in app.url_map.iter_rules())
        key = (public_url, *routes)
        if key not in _CONTRACTS:
            _CONTRACTS[key] = cls(build_openapi(app, public_url), app.url_map)
        return _CONTRACTS[key]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for key in node["$ref"].lstrip("#/").split("/"):
                target = target[key]
            node = target
        return node

    def _validator(self, path: str, method: str, status: str, media: str) -> jsonschema.Draft202012Validator:
        key = (path, method, status, media)
        with self._lock:
            if key not in self._validators:
                answer = self._resolve(self.document["paths"][path][method]["responses"][status])
                schema = answer["content"][media]["schema"]
                self._validators[key] = jsonschema.Draft202012Validator(
                    {**schema, "components": self.document["components"]})
            return self._validators[key]

    def check(self, method: str, url: str, response: Response) -> None:
        """Raise ``UndocumentedAnswer`` unless ``response`` is what the document promises for the request.

        Only the status, the content type and (for JSON) the body are read: a streamed download's
        body is left alone.
        """
        path_only = url.split("?", 1)[0]
        status = str(response.status_code)
        try:
            rule, _ = self._adapter.match(path_only, method=method, return_rule=True)
        except (NotFound, MethodNotAllowed, RequestRedirect):
            return  # routing's own answers; tests/test_hostile_input.py checks those
        path = _openapi_path(rule.rule)
        operation = self.document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            if method in ("HEAD", "OPTIONS"):
                return  # refused with 405 before any view runs (api/methods.py)
            raise UndocumentedAnswer(f"{method} {path} answered {status} but is not in the OpenAPI document")
        answers = operation.get("responses", {})
        if status not in answers:
            raise UndocumentedAnswer(f"{method} {path} answered {status}, documented: {sorted(answers)}")
        content = self._resolve(answers[status]).get("content")
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
        errors = sorted(self._validator(path, method.lower(), status, media).iter_errors(body),
                        key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise UndocumentedAnswer(f"{method} {path} {status}: {errors[0].message} (at /{where})")


_CONTRACTS: dict[tuple[Any, ...], Contract] = {}


def check_answer(app: Flask, method: str, url: str, response: Response) -> None:
    """Raise ``UndocumentedAnswer`` unless ``response`` is what ``app``'s document promises (``Contract.check``)."""
    Contract.for_app(app).check(method, url, response)


class DocumentedClient(FlaskClient):
    """A test client that checks every answer against the OpenAPI document (``check_answer``)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        # A streamed download's body is not read here: only JSON bodies are validated.
        check_answer(self.application, response.request.method, response.request.path, response)
        return response


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CheckedApp:
    """WSGI middleware: every answer ``app`` gives is checked by ``Contract.check``; what is wrong is
    kept in ``findings`` (method, path, status, reason) for the fixture to fail the test with.

    The answer goes to the client unchanged and as it is produced: a JSON body is copied while it
    passes (and validated once it has passed); any other body (PDF, zip, CSV, HTML) is not kept,
    only its status and content type are checked, so downloads still stream.
    """

    def __init__(self, app: WsgiApp, contract: Contract) -> None:
        self.app = app
        self.contract = contract
        self.findings: list[str] = []
        self._lock = threading.Lock()
        # Answers still being checked: the server thread checks a JSON body when it closes it, which
        # may be after the client has read the whole answer and the test has asked for the findings.
        self._open = 0
        self._settled = threading.Condition(self._lock)

    @classmethod
    def around(cls, app: Flask) -> CheckedApp:
        """The Flask app, checked against its own document."""
        return cls(app, Contract.for_app(app))

    def take_findings(self, timeout: float = 10.0) -> list[str]:
        """The findings so far, forgotten once taken (a module-scoped server, checked per test): once
        every answer begun has been checked, or after ``timeout`` seconds."""
        with self._lock:
            self._settled.wait_for(lambda: self._open == 0, timeout)
            found, self.findings = self.findings, []
        return found

    def raise_findings(self) -> None:
        """Raise ``UndocumentedAnswer`` listing every undocumented answer not yet taken."""
        found = self.take_findings()
        if found:
            raise UndocumentedAnswer(f"{len(found)} answer(s) of the live server are not documented:\n"
                                     + "\n".join(found))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        where = f"{method} {path}{'?' + query if query else ''}"
        started: dict[str, Any] = {}

        def recording_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.update(status=status, headers=list(headers))
            return start_response(status, headers, exc_info)

        def is_json() -> bool:
            content_type = Headers(started.get("headers", [])).get("Content-Type", "")
            return parse_options_header(content_type)[0].lower() == "application/json"

        with self._lock:
            self._open += 1
        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            self._settle()
            raise
        return _Observed(body, is_json, lambda json_body: self._check(method, path, where, started, json_body))

    def _settle(self) -> None:
        with self._lock:
            self._open -= 1
            self._settled.notify_all()

    def _check(self, method: str, path: str, where: str, started: dict[str, Any], json_body: bytes | None) -> None:
        try:
            self._check_answer(method, path, where, started, json_body)
        finally:
            self._settle()

    def _check_answer(self, method: str, path: str, where: str, started: dict[str, Any],
                      json_body: bytes | None) -> None:
        if "status" not in started:
            return  # the server failed before answering; the client saw that failure itself
        answer = Response(json_body or b"", status=started["status"], headers=started["headers"])
        if answer.mimetype == "application/json" and json_body is None:
            return  # a JSON body cut short (the client went away): nothing to validate
        try:
            self.contract.check(method, path, answer)
        except UndocumentedAnswer as exc:
            finding = f"{where} -> {answer.status_code}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a checker bug must fail the test, not the server thread
            finding = f"{where} -> {answer.status_code}: the checker failed: {exc!r}"
        else:
            return
        with self._lock:
            self.findings.append(finding)


class _Observed:
    """A WSGI body passed through chunk by chunk. A JSON body is copied as it passes; when the
    server closes the body, ``done`` gets the whole JSON body (None for any other body, or for one
    cut short), so nothing but JSON is ever kept."""

    def __init__(self, body: Iterable[bytes], is_json: Callable[[], bool],
                 done: Callable[[bytes | None], None]) -> None:
        self._body = body
        self._is_json = is_json
        self._done = done
        self._copy: list[bytes] | None = None
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        # start_response has been called by the time the app's body is iterated (PEP 3333).
        self._copy = [] if self._is_json() else None
        for chunk in self._body:
            if self._copy is not None:
                self._copy.append(chunk)
            yield chunk
        self._complete = True

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(b"".join(self._copy) if self._copy is not None and self._complete else None)
