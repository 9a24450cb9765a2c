"""HTTP API blueprints. Each module exposes ``bp``; each view declares its OpenAPI operation with
``connector.api.registry.documented`` (``connector.api.openapi`` assembles the document)."""
