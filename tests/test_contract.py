"""The answer checker that every test client, in-process live server and checking proxy runs
(tests/contract.py) can fail: a drifted answer is caught, whichever test meets it."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Response, request

from tests.contract import CheckedApp, Contract, UndocumentedAnswer, check_answer
from tests.helpers import letter_payload
from tests.live_server import checking_proxy, serving, serving_checked


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


# --- answers given by live servers (tests/live_server.py) ----------------------------------------

def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def _teapot_on_the_letter_list(app: Flask) -> None:
    """A drift: GET /v1/letters answers a status its operation does not document."""
    @app.before_request
    def teapot() -> Response | None:
        if (request.method, request.path) != ("GET", "/v1/letters"):
            return None
        return _as_answer(418, {"error": {"code": "teapot", "message": "no"}})


def test_a_live_server_answering_an_undocumented_status_fails_with_method_path_status_and_reason(app, auth):
    _teapot_on_the_letter_list(app)
    with pytest.raises(UndocumentedAnswer) as caught, serving_checked(app) as url:
        status, _, body = _get(f"{url}/v1/letters?limit=1", auth)
        assert (status, json.loads(body)["error"]["code"]) == (418, "teapot")  # the client got it unchanged
        assert _get(f"{url}/v1/me", auth)[0] == 200  # documented: not reported
    assert "1 answer(s)" in str(caught.value)
    assert "GET /v1/letters?limit=1 -> 418: GET /v1/letters answered 418, documented: [" in str(caught.value)


def test_a_live_server_json_body_that_drifted_from_its_schema_is_reported(app, auth, client):
    @app.after_request
    def rename(response: Response) -> Response:
        if request.path.startswith("/v1/letters/") and response.is_json:
            body = response.get_json()
            body["state"] = body.pop("status")
            response.set_data(json.dumps(body))
        return response

    letter = client.post("/v1/letters", json=letter_payload(), headers=auth)
    assert letter.status_code == 201
    with pytest.raises(UndocumentedAnswer, match=r"GET /v1/letters/\{letter_id\} 200: .*'state' was unexpected"), \
            serving_checked(app) as url:
        assert _get(f"{url}/v1/letters/{letter.json['id']}", auth)[0] == 200


def test_a_live_download_streams_through_the_checker_chunk_by_chunk(app):
    produced: list[bytes] = []

    def download(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/pdf")])
        for chunk in (b"%PDF-1.7 ", b"part two", b" %%EOF"):
            produced.append(chunk)
            yield chunk

    checked = CheckedApp(download, Contract.for_app(app))
    body = iter(checked({"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/letters/let_1/document"}, lambda *a: None))
    assert (next(body), produced) == (b"%PDF-1.7 ", [b"%PDF-1.7 "])  # passed on before the rest exists
    assert b"".join(body) == b"part two %%EOF"
    body.close()
    assert checked.findings == []


def test_the_findings_wait_for_an_answer_the_server_has_sent_but_not_yet_closed(app):
    """A live server checks a JSON body when it closes it, after the client may have read all of it;
    the findings asked for then must include that answer (under load, they once did not)."""
    release = threading.Event()

    class SlowToClose(list):  # a WSGI body whose close() waits, as a busy server thread may
        def close(self) -> None:
            release.wait(5)

    def teapot(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("418 I'm a teapot", [("Content-Type", "application/json")])
        return SlowToClose([b'{"error": {"code": "teapot", "message": "no", "field": null}}'])

    checked = CheckedApp(teapot, Contract.for_app(app))
    body = checked({"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/letters"}, lambda *a: None)
    assert b"teapot" in b"".join(body)  # the client has the whole answer
    closing = threading.Thread(target=body.close)
    closing.start()
    assert checked.take_findings(timeout=0.05) == []  # not checked yet: nothing to report so far
    release.set()
    (finding,) = checked.take_findings(timeout=5)
    closing.join()
    assert finding.startswith("GET /v1/letters -> 418: ")


def test_the_checking_proxy_returns_the_answer_unchanged_and_reports_a_drift(app, auth, client):
    _teapot_on_the_letter_list(app)
    letter = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    with serving(app) as upstream:
        with pytest.raises(UndocumentedAnswer, match=r"GET /v1/letters -> 418"), checking_proxy(upstream) as proxy:
            document = f"/v1/letters/{letter['id']}/document"
            direct, proxied = _get(upstream + document, auth), _get(proxy.url + document, auth)
            assert proxied[0] == direct[0] == 200 and proxied[2] == direct[2]
            assert {k: v for k, v in proxied[1].items() if k not in ("Date", "Server")} == {
                k: v for k, v in direct[1].items() if k not in ("Date", "Server")}
            assert _get(f"{proxy.url}/v1/letters", auth)[0] == 418
            assert _get(f"{proxy.url}/no/such/route", auth)[0] == 404  # routing's own answer: not reported
