"""The OpenAPI document is assembled from route declarations (connector.api.registry)."""

from __future__ import annotations

from flask import Flask, jsonify
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from connector.api.openapi import build_openapi, model_parameters, undeclared_routes
from connector.api.registry import documented


def test_every_route_of_the_bridge_has_a_declaration(app: Flask) -> None:
    assert undeclared_routes(app) == []


def test_a_route_without_a_declaration_is_found(app: Flask) -> None:
    @app.get("/v1/undeclared/<thing_id>")
    def undeclared(thing_id: str) -> object:
        return jsonify({})

    assert undeclared_routes(app) == ["/v1/undeclared/<thing_id>"]
    assert "/v1/undeclared/{thing_id}" not in build_openapi(app, "http://bridge.test")["paths"]


class _Query(BaseModel):
    status: str | None = Field(None, description="the status")
    limit: int = Field(20, ge=1, le=100)


def test_a_declared_route_is_described_from_its_rule_and_models(app: Flask) -> None:
    @app.route("/v1/things/<thing_id>", methods=["GET", "DELETE"])
    @documented("A thing", operation_id="thing", query=_Query, errors={409: "Busy"})
    def thing(thing_id: str) -> object:
        return jsonify({})

    item = build_openapi(app, "http://bridge.test")["paths"]["/v1/things/{thing_id}"]
    assert set(item) == {"get", "delete"}
    parameters = {p["name"]: p for p in item["get"]["parameters"]}
    assert parameters["thing_id"] == {"name": "thing_id", "in": "path", "required": True,
                                      "schema": {"type": "string", "pattern": "^[^\\x00]*$"}}
    assert parameters["status"]["description"] == "the status" and "required" not in parameters["status"]
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert item["delete"]["responses"]["409"]["description"] == "Busy"
    assert item["get"]["responses"]["404"] == {"$ref": "#/components/responses/NotFound"}


def test_an_optional_query_field_is_an_optional_parameter_without_null() -> None:
    (status, limit) = model_parameters(_Query, "query")
    assert status["schema"] == {"type": "string"}
    assert limit == {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}


def test_the_idempotency_key_is_listed_for_every_idempotent_view(client) -> None:
    paths = client.get("/openapi.json").json["paths"]
    idempotent = {(path, method) for path, item in paths.items() for method, operation in item.items()
                  if {"$ref": "#/components/parameters/IdempotencyKey"} in operation.get("parameters", [])}
    assert idempotent == {("/v1/letters", "post"), ("/v1/consents", "post"), ("/v1/consents/invitations", "post"),
                          ("/v1/consents/paper-requests", "post"), ("/v1/templates", "post"),
                          ("/v1/templates/{name}", "put"), ("/v1/batches", "post")}


def test_the_document_is_valid_openapi_3_1(client) -> None:

    document = client.get("/openapi.json").json
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_a_choice_documented_as_possibly_empty_is_accepted_empty(client, auth) -> None:
    """No-code tools send an optional field left blank as ``status=``: where the document allows
    the empty value, the bridge reads it as not given."""
    paths = client.get("/openapi.json").json["paths"]
    tried = []
    for path, item in paths.items():
        for parameter in item.get("get", {}).get("parameters", []):
            if "{" not in path and "" in parameter.get("schema", {}).get("enum", ()):
                answer = client.get(f"{path}?{parameter['name']}=", headers=auth)
                assert answer.status_code == 200, (path, parameter["name"], answer.json)
                tried.append((path, parameter["name"]))
    assert ("/v1/letters", "status") in tried and ("/v1/kpis", "preset") in tried
