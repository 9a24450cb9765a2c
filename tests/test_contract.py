"""The answer checker that every test client runs (tests/contract.py) can fail: a drifted answer is
caught, whichever test meets it."""

from __future__ import annotations

import json

import pytest
from flask import Response

from tests.contract import UndocumentedAnswer, check_answer
from tests.helpers import letter_payload


def _as_answer(status: int, body: object, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, mimetype=mimetype)


def test_a_letter_with_a_renamed_field_is_refused(app, client, auth):
    letter = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    check_answer(app, "GET", f"/v1/letters/{letter['id']}", _as_answer(200, letter))  # as sent: documented
    renamed = {("state" if key == "status" else key): value for key, value in letter.items()}
    with pytest.raises(UndocumentedAnswer, match="state"):
        check_answer(app, "GET", f"/v1/letters/{letter['id']}", _as_answer(200, renamed))


def test_an_undocumented_status_or_content_type_is_refused(app):
    with pytest.raises(UndocumentedAnswer, match="answered 418"):
        check_answer(app, "GET", "/v1/letters", _as_answer(418, {}))
    with pytest.raises(UndocumentedAnswer, match="text/html"):
        check_answer(app, "GET", "/v1/letters", _as_answer(200, "<p>", mimetype="text/html"))


def test_an_error_without_its_code_is_refused(app):
    with pytest.raises(UndocumentedAnswer, match="code"):
        check_answer(app, "GET", "/v1/letters/let_x", _as_answer(404, {"error": {"message": "gone"}}))
