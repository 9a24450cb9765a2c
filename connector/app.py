"""The Flask application factory."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from flask import Flask

from connector.api.common import install_input_guards
from connector.api.db import close_request_session
from connector.api.errors import register_error_handlers
from connector.api.methods import install_method_policy
from connector.config import load_settings
from connector.services import Services, build_services

# Explicit list: every blueprint module of the API (each exposes ``bp``).
BLUEPRINTS: list[str] = [
    "connector.api.core",
    "connector.api.letters",
    "connector.api.templates",
    "connector.api.hooks",
    "connector.api.intake",
    "connector.api.evidence",
    "connector.api.catalog",
    "connector.api.account",
    "connector.api.batches",
    "connector.api.openapi",
    "connector.api.kpis",
    "connector.api.alerts",
    "connector.api.metrics",
    "connector.api.dashboard",
    "connector.api.consents",
    "connector.api.consent_pages",
]


def create_app(overrides: dict[str, Any] | None = None, services: Services | None = None) -> Flask:
    """Build the bridge's WSGI app.

    ``overrides`` are settings (same names as the ``LRE_`` variables, lower case) applied over the
    environment; ``services`` lets a test share one database and clock between app and worker.
    Raises ConfigError, naming the variable, when the configuration is not usable.
    """
    app = Flask(__name__)
    if services is None:
        services = build_services(load_settings(overrides))
    app.extensions["lre"] = services
    # Documents can be large, but the body limit still protects the process.
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_document_bytes * 2 + 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_input_guards(app)  # strict JSON (no NaN, bounded depth, no NUL) and NUL-free query strings
    install_method_policy(app)  # HEAD and OPTIONS refused; every Allow lists the documented methods
    register_error_handlers(app)
    app.teardown_appcontext(close_request_session)
    for module_name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module_name).bp)
    import connector.delivery.jobs  # noqa: F401 - registers every job handler
    logging.getLogger("connector").setLevel(logging.INFO)
    return app
