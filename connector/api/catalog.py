"""``GET /v1/catalog``: every action, search and trigger the no-code apps offer (see connector.platforms.catalog)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from connector.api.registry import Component, documented
from connector.platforms.catalog import catalog_json_schema, catalog_to_dict

bp = Blueprint("catalog", __name__)


def _catalog_component() -> Component:
    """The catalogue's schema, from the models that build it (connector.platforms.catalog)."""
    schema = catalog_json_schema()
    parts = tuple(Component(f"Catalog{name}", value) for name, value in schema.pop("$defs", {}).items())
    return Component("Catalog", schema, parts)


@bp.get("/v1/catalog")
@documented("The catalogue of actions, searches and triggers (source of the Zapier, Make and n8n apps)",
            operation_id="getCatalog", security=[], answers={200: _catalog_component()})
def get_catalog() -> Response:
    """The catalogue, in French and English. Public: it describes the product, not an account."""
    response = jsonify(catalog_to_dict())
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response
