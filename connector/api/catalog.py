"""``GET /v1/catalog``: every action, search and trigger the no-code apps offer (see connector.platforms.catalog)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from connector.platforms.catalog import catalog_json_schema, catalog_to_dict

bp = Blueprint("catalog", __name__)


@bp.get("/v1/catalog")
def get_catalog() -> Response:
    """The catalogue, in French and English. Public: it describes the product, not an account."""
    response = jsonify(catalog_to_dict())
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


def _schemas() -> dict[str, Any]:
    schema = catalog_json_schema()
    definitions = schema.pop("$defs", {})
    return {"Catalog": schema, **{f"Catalog{name}": value for name, value in definitions.items()}}


SCHEMAS: dict[str, Any] = _schemas()

OPENAPI: dict[str, Any] = {
    "/v1/catalog": {"get": {
        "summary": "The catalogue of actions, searches and triggers (source of the Zapier, Make and n8n apps)",
        "operationId": "getCatalog",
        "security": [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Catalog"}}}}},
    }},
}
