"""Every request example the OpenAPI document shows is a body the bridge accepts (issue 11).

A user copies them into a Make HTTP module, an n8n node or curl; schemathesis sends them too. Each
example of the published document is sent, as it is, to a fresh account: the answer must be a success.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from connector.lib import signing

# The order a new account can take them in: a template is created before its new version, a hook
# before its secret is rotated or an event replayed; letters go through the sandbox.
ORDER = [
    ("put", "/v1/account/retention"),
    ("put", "/v1/alerts/rules/{rule}"),
    ("put", "/v1/consents/legal-bases"),
    ("post", "/v1/consents"),
    ("post", "/v1/consents/invitations"),
    ("post", "/v1/consents/paper-requests"),
    ("post", "/v1/templates"),
    ("put", "/v1/templates/{name}"),
    ("post", "/v1/templates/{name}/render"),
    ("post", "/v1/letters"),
    ("post", "/v1/batches"),
    ("post", "/v1/hooks"),
    ("post", "/v1/hooks/{hook_id}/rotate"),
    ("post", "/v1/hooks/{hook_id}/replay"),
    ("post", "/v1/account/intake-secret"),
    ("post", "/v1/intake/{account_id}"),
    ("put", "/v1/account/provider"),  # last: its example moves the account to AR24
]


def _example(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    media = operation["requestBody"]["content"]["application/json"]
    if "example" in media:
        return media["example"]
    schema = media["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "example" in schema:
        return schema["example"]
    return (schema.get("examples") or [None])[0]


def _json_bodies(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((method, path) for path, item in document["paths"].items() for method, operation in item.items()
                  if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get(
                      "content", {}))


@pytest.fixture
def public_hook_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example hook's host resolves to loopback, where nothing listens: no DNS here, and nothing
    may reach Zapier (the tests allow private addresses, so the subscription is accepted)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.zapier.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 9))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_every_json_body_has_an_example_and_the_order_covers_them(client):
    document = client.get("/openapi.json").json
    assert sorted(ORDER) == _json_bodies(document)
    missing = [f"{m.upper()} {p}" for m, p in ORDER if _example(document, document["paths"][p][m]) is None]
    assert not missing, f"no request example: {missing}"


def test_every_request_example_is_accepted_as_it_is(client, auth, account, drain, public_hook_host):
    document = client.get("/openapi.json").json
    account_id = account[0]
    names: dict[str, str] = {"rule": "technical_failure_rate", "account_id": account_id}
    refused = []
    for method, path in ORDER:
        operation = document["paths"][path][method]
        body = _example(document, operation)
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and parameter["name"] not in names:
                examples = parameter["schema"].get("examples") or []
                names[parameter["name"]] = examples[0] if examples else ""
        if path == "/v1/hooks/{hook_id}/replay":
            drain()  # the letter's events exist once the worker has run
            subscribed = client.get(f"/v1/hooks/{names['hook_id']}", headers=auth).json["events"]
            events = client.get("/v1/events", query_string={"type": ",".join(subscribed)}, headers=auth).json["data"]
            body = {**body, "event_id": events[0]["id"]}  # the one id only a live account has
        # The render example is the data of the template its path documents (a built-in one), not
        # of the template the upload example created.
        url = path.format(**(names | _documented_path_examples(operation) if path.endswith("/render") else names))
        if path == "/v1/account/provider":
            drain()  # a provider is changed once the letters sent with the previous one are final
        headers = {**auth, "Idempotency-Key": f"example-{method}-{path}"}
        if path == "/v1/intake/{account_id}":
            response = _signed_intake(client, names["intake_secret"], url, body)
        else:
            response = client.open(url, method=method.upper(), json=body, headers=headers)
        if response.status_code >= 300:
            refused.append(f"{method.upper()} {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
            continue
        if path == "/v1/templates":
            names["name"] = response.json["name"]
        if path == "/v1/hooks":
            names["hook_id"] = response.json["id"]
        if path == "/v1/account/intake-secret":
            names["intake_secret"] = response.json["secret"]
    assert not refused, "\n".join(refused)


def _documented_path_examples(operation: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["schema"]["examples"][0] for p in operation.get("parameters", [])
            if p.get("in") == "path" and p["schema"].get("examples")}


def _signed_intake(client: Any, secret: str, url: str, body: Any) -> Any:
    """Send ``body`` to the signed intake, signed with the account's intake secret (Standard Webhooks)."""
    raw = json.dumps(body).encode()
    headers = signing.sign_headers([signing.decode_secret(secret)], "msg_example_intake", int(time.time()), raw)
    return client.post(url, data=raw, content_type="application/json", headers=headers)
