"""The Flask application factory."""

from __future__ import annotations

import importlib
import logging
import tempfile
from typing import IO, Any

from flask import Flask, Request, current_app
from werkzeug.formparser import default_stream_factory

from connector.api import bodies
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
    "connector.api.batch_intake",
    "connector.api.batches",
    "connector.api.openapi",
    "connector.api.kpis",
    "connector.api.alerts",
    "connector.api.metrics",
    "connector.api.dashboard",
    "connector.api.consents",
    "connector.api.consent_pages",
]


class BridgeRequest(Request):
    """Flask's request, spooling uploaded files to ``LRE_DATA_DIR/spool`` (owner-only; documents
    are personal data) rather than the system's temporary directory, past 500 KB as werkzeug does."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        services: Services | None = current_app.extensions.get("lre") if current_app else None
        if services is None:
            return default_stream_factory(total_content_length, content_type, filename, content_length)
        directory = services.settings.data_dir / "spool"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.SpooledTemporaryFile(max_size=500 * 1024, mode="rb+", dir=directory)  # type: ignore[return-value]


def create_app(overrides: dict[str, Any] | None = None, services: Services | None = None) -> Flask:
    """Build the bridge's WSGI app.

    ``overrides`` are settings (same names as the ``LRE_`` variables, lower case) applied over the
    environment; ``services`` lets a test share one database and clock between app and worker.
    Raises ConfigError, naming the variable, when the configuration is not usable.
    """
    app = Flask(__name__)
    app.request_class = BridgeRequest
    if services is None:
        services = build_services(load_settings(overrides))
    app.extensions["lre"] = services
    # Documents can be large, but the body limit still protects the process.
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_document_bytes * 2 + 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_input_guards(app)  # strict JSON (no NaN, bounded depth, no NUL) and NUL-free query strings
    install_method_policy(app)  # HEAD and OPTIONS refused; every Allow lists the documented methods
    bodies.install(app)  # large bodies and decoded documents are temporary files, closed after each request
    register_error_handlers(app)
    app.teardown_appcontext(close_request_session)
    for module_name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module_name).bp)
    import connector.delivery.jobs  # noqa: F401 - registers every job handler
    logging.getLogger("connector").setLevel(logging.INFO)
    return app
