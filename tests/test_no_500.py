"""Whatever a client sends, the answer is never a 500, and every refusal has the JSON error shape.

Walks every operation the OpenAPI document describes, with malformed bodies, headers, path ids and
query arguments.
"""

from __future__ import annotations

import re

import pytest

BODIES: list[tuple[str, bytes]] = [
    ("application/json", b""),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"text"'),
    ("application/json", b"42"),
    ("application/json", b"{"),
    ("application/json", b'{"recipient": [], "documents": {}, "template": 7, "data": "x", "events": 5}'),
    ("application/json", b'{"target_url": 12, "settings": [], "provider": {}, "source": null, "name": []}'),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b'{"a":' * 500 + b"1" + b"}" * 500),
    ("text/plain", b"hello"),
    ("multipart/form-data; boundary=xyz",
     b"--xyz\r\nContent-Disposition: form-data; name=\"recipient\"\r\n\r\n{\r\n--xyz--"),
]
PATH_VALUES = ["nope", "let_" + "0" * 32, "x" * 300, "%2e%2e%2fetc"]
QUERIES = ["limit=-1", "limit=abc", "cursor=!!!", "from=someday", "status=%00", "type=" + "x" * 500,
           "letter_id=%27%20OR%201%3D1"]


def _operations(client) -> list[tuple[str, str]]:
    document = client.get("/openapi.json").json
    ops = []
    for path, item in document["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                ops.append((path, method))
    return ops


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{what} → {response.status_code} {response.data[:300]!r}"
    if response.status_code >= 400:
        assert response.is_json, what
        error = response.json["error"]
        assert set(error) >= {"code", "message", "field"}, what


def test_no_request_gets_a_500(client, auth):
    operations = _operations(client)
    assert len(operations) > 20
    for path, method in operations:
        # Each distinct URL once: a path without parameters is the same request for every value.
        for url in dict.fromkeys(_fill(path, value) for value in PATH_VALUES):
            for content_type, body in BODIES if method in ("post", "put", "patch") else [(None, None)]:
                headers = dict(auth)
                if content_type:
                    headers["Content-Type"] = content_type
                response = client.open(url, method=method.upper(), data=body, headers=headers)
                _check(response, f"{method.upper()} {url} {(body or b'')[:40]!r}")
        for query in QUERIES:
            url = _fill(path, PATH_VALUES[0]) + "?" + query
            _check(client.open(url, method=method.upper(), headers=auth), f"{method.upper()} {url}")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "bearer lre_x", "Bearer \u00e9\u00e9",
                                    "Bearer " + "a" * 5000])
def test_malformed_authorization_headers_get_401(client, header):
    response = client.get("/v1/letters", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"]["code"] in ("unauthorized", "invalid_api_key")


@pytest.mark.parametrize("key", ["", " ", "x" * 300, "\u00e9t\u00e9"])
def test_odd_idempotency_keys_are_handled(client, auth, key):
    from tests.helpers import letter_payload

    response = client.post("/v1/letters", json=letter_payload(), headers={**auth, "Idempotency-Key": key})
    _check(response, repr(key))
