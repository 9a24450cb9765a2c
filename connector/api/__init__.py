"""HTTP API blueprints. Each module exposes ``bp`` and may expose ``OPENAPI``/``SCHEMAS``."""
