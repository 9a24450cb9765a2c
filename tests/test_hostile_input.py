"""Hostile and careless input through the public API: no 500, no silent change, bounded resources."""

from __future__ import annotations

import resource

import pytest

from tests.test_templates_api import upload

# The API process may grow by at most this much while a template asks for hundreds of megabytes:
# the render runs in a worker whose address space is limited (connector.rendering.isolation).
API_PROCESS_GROWTH_LIMIT_MB = 60

HOSTILE_TEMPLATES = {
    "center": "{% set x = 'a'|center(300000000) %}<p>{{ x|length }}</p>",
    "percent": "<p>{{ ('%0300000000d' % 1)|length }}</p>",
    "concat": "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}"
              "<p>{{ ns.x|length }}</p>",
    "format": "<p>{{ '%0300000000d'|format(1)|length }}</p>",
    "join": "<p>{{ (range(1000)|join('a'|center(400000)))|length }}</p>",
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(HOSTILE_TEMPLATES))
def test_a_template_that_builds_a_huge_value_is_refused_and_the_process_stays_small(client, auth, kind):
    assert upload(client, auth, name=f"hostile_{kind}", source=HOSTILE_TEMPLATES[kind], fields=[]).status_code == 201
    before = _peak_rss_mb()
    response = client.post(f"/v1/templates/hostile_{kind}/render", json={"data": {}}, headers=auth)
    grown = _peak_rss_mb() - before
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["code"] == "invalid_template"
    assert f"hostile_{kind}" in error["message"]  # the refused template is named
    assert "memory" in error["message"] or "too" in error["message"] or "text" in error["message"]
    assert grown < API_PROCESS_GROWTH_LIMIT_MB, f"the API process grew by {grown:.0f} MB"
    # The service still renders ordinary letters afterwards.
    assert upload(client, auth, name="ordinary", source="<p>Bonjour</p>", fields=[]).status_code == 201
    assert client.post("/v1/templates/ordinary/render", json={"data": {}}, headers=auth).status_code == 200


def test_a_letter_of_too_many_pages_is_refused(client, auth):
    source = '{% for i in range(200) %}<div style="page-break-after: always">Page {{ i }}</div>{% endfor %}'
    assert upload(client, auth, name="long_letter", source=source, fields=[]).status_code == 201
    response = client.post("/v1/templates/long_letter/render", json={"data": {}}, headers=auth)
    assert response.status_code == 422
    assert "pages" in response.json["error"]["message"] and "long_letter" in response.json["error"]["message"]


# --- one test per defect class -----------------------------------------------------------------------

import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

import pypdf  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from connector.models import AccessLog, Letter  # noqa: E402
from tests.helpers import letter_payload, make_pdf  # noqa: E402
from tests.test_api import CONSENT  # noqa: E402
from tests.test_templates_api import examples, pdf_text  # noqa: E402


def _error(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)[:200]
    return response.json["error"]


def _count(services, model) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _raw_post(client, path, text, auth):
    return client.post(path, data=text, headers={**auth, "Content-Type": "application/json"})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_standard_json_numbers_are_refused_at_the_door(client, auth, services, literal):
    body = json.dumps(letter_payload(metadata={"n": 1}))[:-1] + f', "extra": {{"n": {literal}}}}}'
    response = _raw_post(client, "/v1/letters", body, auth)
    assert response.status_code == 422 and _error(response)["code"] == "invalid_json"
    hook = _raw_post(client, "/v1/hooks", f'{{"target_url": "https://hooks.zapier.com/x", "n": {literal}}}', auth)
    assert hook.status_code == 422
    assert _count(services, Letter) == 0
    assert "NaN" not in client.get("/v1/letters", headers=auth).get_data(as_text=True)


def test_json_nested_a_thousand_deep_is_a_422_everywhere(client, auth, account):
    deep = "[" * 1000 + "]" * 1000
    for path in ("/v1/letters", "/v1/hooks", "/v1/templates", "/v1/consents", f"/v1/intake/{account[0]}"):
        response = _raw_post(client, path, f'{{"metadata": {deep}}}', auth)
        assert response.status_code in (401, 422), (path, response.status_code)
        assert response.status_code != 500
    response = _raw_post(client, "/v1/letters", f'{{"metadata": {deep}}}', auth)
    assert _error(response)["code"] == "invalid_json" and "nested" in _error(response)["message"]
    forty = "[" * 40 + "]" * 40  # parsed, then refused by the depth bound with the place named
    response = _raw_post(client, "/v1/letters", f'{{"metadata": {{"a": {forty}}}}}', auth)
    assert response.status_code == 422 and _error(response)["field"].startswith("metadata.a.0.0")


def test_nul_characters_are_refused_with_the_field_named(client, auth, services):
    payload = letter_payload(recipient={"type": "professional", "email": "compta@exemple.fr",
                                        "company": "Ex\u0000ample"})
    response = client.post("/v1/letters", json=payload, headers=auth)
    assert response.status_code == 422
    assert _error(response) == {**_error(response), "code": "invalid_text", "field": "recipient.company"}
    listed = client.get("/v1/letters?reference=a%00", headers=auth)
    assert listed.status_code == 422 and _error(listed)["field"] == "reference"
    assert _count(services, Letter) == 0


@pytest.mark.parametrize("cursor", [
    "", "x", "!!!", base64.urlsafe_b64encode(b'[{"a": 1}, []]').decode(), base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00", "x"]').decode(),
    base64.urlsafe_b64encode(b'["9999-12-31T23:59:59-14:00", "x"]').decode(),
    base64.urlsafe_b64encode(b"[NaN, 1]").decode(), base64.urlsafe_b64encode(b"[" * 5000).decode(),
    base64.urlsafe_b64encode(b'["' + b"a" * 5000 + b'", 1]').decode(),
])  # fmt: skip
def test_hand_made_cursors_are_a_400(client, auth, cursor):
    for path in ("/v1/letters", "/v1/events", "/v1/hooks", "/v1/consents"):
        response = client.get(f"{path}?cursor={quote(cursor)}", headers=auth)
        assert response.status_code in (200, 400), (path, response.status_code)
        if response.status_code == 400:
            assert _error(response)["field"] == "cursor"


@pytest.mark.parametrize("query", ["from=0001-01-01T00:00:00%2B14:00", "to=9999-12-31T23:59:59-14:00",
                                   "from=0001-01-01", "limit=" + "9" * 30])
def test_extreme_query_dates_and_numbers_are_a_400(client, auth, query):
    response = client.get(f"/v1/letters?{query}", headers=auth)
    assert response.status_code in (200, 400) and response.status_code != 500


def test_a_position_of_thirty_digits_is_a_400(client, auth):
    letter = client.post("/v1/letters", json=letter_payload(), headers=auth).json
    response = client.get(f"/v1/letters/{letter['id']}/document?position={'9' * 30}", headers=auth)
    assert response.status_code == 400 and _error(response)["field"] == "position"


@pytest.fixture
def public_urls_only(settings_overrides):
    """The production policy (the other tests allow loopback URLs for their fake servers)."""
    settings_overrides["allow_private_urls"] = False


@pytest.mark.parametrize("url", ["http://[::1", "http://hooks.example:99999/x", "https://[2002:7f00:1::]/x",
                                 "http://100.100.100.200/latest/meta-data", "http://[::ffff:127.0.0.1]/"])
def test_malformed_or_private_urls_are_422_not_500(public_urls_only, client, auth, url):
    response = client.post("/v1/hooks", json={"target_url": url}, headers=auth)
    assert response.status_code == 422, response.json
    provider = client.put("/v1/account/provider", json={"provider": "ar24", "settings": {"base_url": url}},
                          headers=auth)
    assert provider.status_code == 422
    documents = [{"filename": "a.pdf", "url": url}]
    sent = client.post("/v1/letters", json=letter_payload(documents=documents), headers=auth)
    assert sent.status_code == 422 and _error(sent)["field"] == "documents.0.url"  # not 413 "too large"


def test_multipart_quirks_are_422(client, auth, services):
    pdf = make_pdf()
    nameless = (b"--xyz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--xyz--\r\n")
    response = client.post("/v1/letters", data=nameless, headers={**auth,
                           "Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status_code in (400, 422)
    mixed = {"recipient": '{"type": "professional", "email": "a@exemple.fr", "company": "A"}',
             "recipient.company": "B", "documents": (io.BytesIO(pdf), "a.pdf")}
    response = client.post("/v1/letters", data=mixed, headers=auth, content_type="multipart/form-data")
    assert response.status_code == 422 and _error(response)["field"] == "recipient"
    not_an_object = {"recipient": "[1, 2]", "recipient.company": "B", "documents": (io.BytesIO(pdf), "a.pdf")}
    response = client.post("/v1/letters", data=not_an_object, headers=auth, content_type="multipart/form-data")
    assert response.status_code == 422
    assert _count(services, Letter) == 0


MISE_EN_DEMEURE = examples("mise_en_demeure")


@pytest.mark.parametrize(("raw", "code"), [
    ("1.234", "ambiguous_amount"), ("1,234", "ambiguous_amount"), ("1,2,3", "several_separators"),
    ("12,345", "ambiguous_amount"), ("12,3456", "too_many_decimals"), ("-5", "negative_amount"),
    (12.345, "too_many_decimals"), (-3, "negative_amount"),
])  # fmt: skip
def test_an_amount_that_could_be_read_two_ways_is_refused_never_guessed(client, auth, services, raw, code):
    data = {**MISE_EN_DEMEURE, "montant_du": raw}
    response = client.post("/v1/letters", json=letter_payload(documents=[], template="mise_en_demeure", data=data),
                           headers=auth)
    assert response.status_code == 422
    error = _error(response)
    assert error["field"] == "data.montant_du"
    assert error["details"][0]["code"] == code
    assert str(raw).lstrip("-") in error["details"][0]["message"]  # says what it read
    assert _count(services, Letter) == 0


@pytest.mark.parametrize(("raw", "printed"), [("1 234,56", "1 234,56 €"), ("1234.56", "1 234,56 €"),
                                              ("1234,56", "1 234,56 €"), (1234.5, "1 234,50 €")])
def test_unambiguous_amounts_print_exactly(client, auth, raw, printed):
    data = {**MISE_EN_DEMEURE, "montant_du": raw}
    response = client.post("/v1/templates/mise_en_demeure/render", json={"data": data}, headers=auth)
    assert response.status_code == 200, response.json
    assert printed in pdf_text(response.data)


@pytest.mark.parametrize("raw", ["9999-12-31T23:30:00Z", "0001-01-01", "0001-01-01T00:00:00+14:00"])
def test_extreme_dates_are_422_in_data_letter_date_and_obtained_at(client, auth, raw):
    data = {**MISE_EN_DEMEURE, "date_echeance": raw}
    response = client.post("/v1/templates/mise_en_demeure/render", json={"data": data}, headers=auth)
    assert response.status_code == 422 and _error(response)["field"] == "data.date_echeance"
    preview = client.post("/v1/templates/mise_en_demeure/render",
                          json={"data": MISE_EN_DEMEURE, "letter_date": raw}, headers=auth)
    assert preview.status_code == 422 and _error(preview)["field"] == "letter_date"
    consent = client.post("/v1/consents", json={**CONSENT, "obtained_at": raw}, headers=auth)
    assert consent.status_code == 422


def test_a_405_says_which_methods_are_allowed(client, auth):
    response = client.patch("/v1/letters", headers=auth)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"  # what the document lists: no HEAD, no OPTIONS
    assert _error(response)["code"] == "method_not_allowed"
    assert _error(client.get("/nowhere", headers=auth))["code"] == "not_found"


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "PATCH"])
def test_undocumented_methods_are_refused_and_allow_matches_the_document(client, auth, method):
    # /v1/consents/legal-bases also matches /v1/consents/<consent_id> (DELETE): Flask's own Allow
    # listed DELETE, HEAD and OPTIONS; the document lists GET and PUT.
    document = client.get("/openapi.json").json["paths"]
    for path, template in [("/v1/consents/legal-bases", "/v1/consents/legal-bases"),
                           ("/v1/consents/cns_x", "/v1/consents/{consent_id}"), ("/v1/me", "/v1/me")]:
        response = client.open(path, method=method, headers=auth)
        assert response.status_code == 405, (path, response.status_code)
        documented = {m.upper() for m in document[template]} & {"GET", "POST", "PUT", "PATCH", "DELETE"}
        assert set(response.headers["Allow"].split(", ")) == documented, path


def test_the_bearer_scheme_is_case_insensitive(client, auth):
    key = auth["Authorization"].split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert client.get("/v1/me", headers={"Authorization": f"{scheme} {key}"}).status_code == 200
    assert client.get("/v1/me", headers={"Authorization": f"Basic {key}"}).status_code == 401


def test_a_non_latin_filename_downloads_with_filename_star_and_is_logged_once(client, auth, services):
    documents = [{"filename": "契約書.pdf", "content_base64": base64.b64encode(make_pdf()).decode()}]
    letter = client.post("/v1/letters", json=letter_payload(documents=documents), headers=auth).json
    response = client.get(f"/v1/letters/{letter['id']}/document", headers=auth)
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in disposition and quote("契約書") in disposition
    assert disposition.encode("latin-1")  # sendable as an HTTP header
    pypdf.PdfReader(io.BytesIO(response.data))
    assert _count(services, AccessLog) == 1
    missing = client.get(f"/v1/letters/{letter['id']}/document?position=5", headers=auth)
    assert missing.status_code == 404 and _count(services, AccessLog) == 1  # no answer, no access line


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_data_directory_database_and_archive_are_private(client, auth, settings_overrides, services):
    client.post("/v1/letters", json=letter_payload(), headers=auth)
    data_dir = Path(settings_overrides["data_dir"])
    assert _mode(data_dir) == 0o700
    if services.db.is_sqlite:
        database = Path(services.db.engine.url.database)
        for path in (database, database.with_name(database.name + "-wal")):
            if path.exists():
                assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))
    blobs = [p for p in (data_dir / "archive").rglob("*") if p.is_file()]
    if isinstance(services.blobs, FileSystemStore):
        assert blobs and all(_mode(p) & 0o077 == 0 for p in blobs)
    else:  # the archive is in object storage: no document or proof is left on this disk
        assert blobs == []
    assert all(_mode(p) & 0o077 == 0 for p in (data_dir / "archive").rglob("*") if p.is_dir())


# --- generated: every documented operation, hostile JSON bodies and query strings -------------------

import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import jsonschema  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from connector.app import create_app  # noqa: E402
from connector.lib.storage import FileSystemStore  # noqa: E402

METHODS = ("get", "post", "put", "patch", "delete")


def _documented() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"data_dir": data_dir, "encryption_keys": Fernet.generate_key().decode()})
        document = app.test_client().get("/openapi.json").json
        app.extensions["lre"].db.dispose()
    return document


OPENAPI = _documented()
OPERATIONS = sorted((method, path) for path, item in OPENAPI["paths"].items() for method in item if method in METHODS)

_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\x00", "a\x00b", "9" * 30, "-1", "0", "NaN", "1e400", "0001-01-01T00:00:00+14:00",
                     "9999-12-31T23:30:00Z", "http://[::1", "http://x:99999/", "契約書.pdf", "%00", "../../etc",
                     "1.234", "1,2,3", "<script>", "' OR 1=1 --"]),
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), _text)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
# Bodies no JSON encoder writes: non-standard numbers, deep nesting, broken text.
_raw_bodies = st.sampled_from(['{"n": NaN}', '{"n": Infinity}', '{"a": 1e400}', "[" * 2000, '{"a":' * 1500,
                               '"\\u0000"', '{"x": "\\ud800"}', "\xff\xfe", "null", "[]", "", "{"])


def _properties(operation: dict[str, Any]) -> list[str]:
    schema = (operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}))
    if "$ref" in schema:
        schema = OPENAPI["components"]["schemas"].get(schema["$ref"].rsplit("/", 1)[1], {})
    return sorted(schema.get("properties", {}))


def _parameters(operation: dict[str, Any], path_item: dict[str, Any], where: str) -> list[str]:
    names = []
    for parameter in [*path_item.get("parameters", []), *operation.get("parameters", [])]:
        if "$ref" in parameter:
            parameter = OPENAPI["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        if parameter.get("in") == where:
            names.append(parameter["name"])
    return names


@st.composite
def _requests(draw: Any, method: str, path: str) -> tuple[str, dict[str, str], Any]:
    operation = OPENAPI["paths"][path][method]
    url = path
    for name in re.findall(r"{(\w+)}", path):
        url = url.replace("{" + name + "}", quote(draw(_text) or "x", safe=""))
    query = {name: draw(_text) for name in _parameters(operation, OPENAPI["paths"][path], "query")
             if draw(st.booleans())}
    query.update(draw(st.dictionaries(st.sampled_from(["cursor", "limit", "from", "to", "status", "x"]), _text,
                                      max_size=2)))
    body: Any = None
    if method in ("post", "put", "patch"):
        fields = _properties(operation)
        structured = st.fixed_dictionaries({}, optional={name: _json for name in fields}) if fields else _json
        body = draw(st.one_of(structured, _json, _raw_bodies.map(lambda raw: ("raw", raw))))
    return url, query, body


def _check_answer(method: str, path: str, response: Any) -> None:
    assert response.status_code < 500, (method, path, response.status_code, response.get_data(as_text=True)[:300])
    if not response.is_json:
        return
    body = response.get_json()
    if response.status_code >= 400:
        jsonschema.validate(body, {**OPENAPI["components"]["schemas"]["Error"], "components": OPENAPI["components"]})
        return
    documented = OPENAPI["paths"][path][method].get("responses", {}).get(str(response.status_code))
    assert documented is not None, (method, path, response.status_code, "an undocumented status")
    if "$ref" in documented:
        documented = OPENAPI["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        jsonschema.validate(body, {**schema, "components": OPENAPI["components"]})


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_generated_hostile_requests_never_get_a_500_or_an_undocumented_answer(app, auth, method, path, monkeypatch):
    # Generated URLs never reach a resolver: every name is unknown, at once.
    import socket

    def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "localhost", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror("no DNS in this test")

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    client = app.test_client()

    # As many examples as the profile says (tests/conftest.py): the full count under CI.
    @settings(deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(request=_requests(method, path))
    def run(request: tuple[str, dict[str, str], Any]) -> None:
        url, query, body = request
        kwargs: dict[str, Any] = {"query_string": query, "headers": auth}
        if isinstance(body, tuple) and body[:1] == ("raw",):
            kwargs.update(data=body[1], content_type="application/json")
        elif body is not None:
            kwargs["json"] = body
        response = client.open(url, method=method.upper(), **kwargs)
        try:
            _check_answer(method, path, response)
        finally:
            response.close()  # file answers (send_file) hold their file until closed

    run()


# --- what the document says a request may hold is what the validation accepts ----------------------

@pytest.mark.parametrize(("path", "method", "body", "field"), [
    ("/v1/alerts/rules/technical_failure_rate", "put", {"threshold": False}, "threshold"),
    ("/v1/alerts/rules/technical_failure_rate", "put", {"min_volume": "50"}, "min_volume"),
    ("/v1/alerts/rules/technical_failure_rate", "put", {"enabled": 1}, "enabled"),
    ("/v1/account/intake-secret", "post", {"grace_period_seconds": False}, "grace_period_seconds"),
    ("/v1/consents", "post", {**CONSENT, "obtained_at": 0}, "obtained_at"),
    ("/v1/consents/invitations", "post", {"email": "a@example.org", "name": "A", "expires_in_days": True},
     "expires_in_days"),
])  # fmt: skip
def test_json_of_another_type_is_not_converted(client, auth, path, method, body, field):
    # pydantic's lax mode read false as 0, "50" as 50 and the number 0 as 1970-01-01: all 2xx.
    response = getattr(client, method)(path, json=body, headers=auth)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert _error(response)["field"] == field


def test_a_whole_number_written_with_a_decimal_point_is_still_one(client, auth):
    # 86400.0 is an integer for JSON Schema, and so for the bridge.
    response = client.post("/v1/account/intake-secret", json={"grace_period_seconds": 86400.0}, headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]


def _string_schemas(node, where=""):
    if isinstance(node, dict):
        types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
        if "string" in types and node.get("format") != "binary" and "enum" not in node and "const" not in node:
            yield where, node
        for key, child in node.items():
            if key not in ("example", "examples", "default"):
                yield from _string_schemas(child, f"{where}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _string_schemas(child, f"{where}/{index}")


def test_the_document_says_no_text_may_hold_a_nul_character(client):
    import re as regex

    document = client.get("/openapi.json").json
    for where, schema in _string_schemas({"paths": document["paths"], "components": document["components"]}):
        assert "pattern" in schema, where
        assert not regex.search(schema["pattern"], "a\x00b"), where
    key = document["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert regex.search(key["pattern"], "k-1") and not regex.search(key["pattern"], " ")


def test_an_empty_date_argument_is_documented_as_not_given_and_read_so(client, auth):
    document = client.get("/openapi.json").json
    parameter = next(p for p in document["paths"]["/v1/letters"]["get"]["parameters"] if p["name"] == "from")
    assert {"maxLength": 0} in parameter["schema"]["anyOf"]
    assert client.get("/v1/letters?from=&to=", headers=auth).status_code == 200
    assert _error(client.get("/v1/letters?from=yesterday", headers=auth))["field"] == "from"
