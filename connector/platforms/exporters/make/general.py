"""The app's fixed components: the base (URL, auth header, errors), the connection (``GET /v1/me``),
the RPCs that feed the template dropdown and its fields, the IML functions and the universal module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.platforms.exporters.make.dialect import (
    DOCUMENTS_FUNCTION,
    IDEMPOTENCY_FUNCTION,
    LIST_TEMPLATES_RPC,
    PARAMETER_TYPES,
    PROBLEMS_FUNCTION,
    ROWS_FUNCTION,
    TEMPLATE_FIELDS_RPC,
    without_empty,
)
from connector.platforms.model import Catalog

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "make_functions"
README_SOURCE = Path(__file__).resolve().parents[1] / "make_app_readme.md"

# The bridge's error body {"error": {"code", "message", "field"}} as a message a user can act on.
ERROR_MESSAGE = ("{{ifempty(body.error.message; 'The LRE Bridge answered ' + statusCode)}}"
                 "{{if(body.error.field; ' (field: ' + body.error.field + ')'; '')}}")
# Make retries RateLimitError and ConnectionError by itself (incomplete executions). A 409 from a send
# means the same Idempotency-Key is still in flight: retrying later is what the user needs.
STATUS_ERRORS = {
    "400": "DataError", "404": "DataError", "413": "DataError", "422": "DataError", "409": "ConnectionError",
    "429": "RateLimitError", "500": "ConnectionError", "502": "ConnectionError", "503": "ConnectionError",
    "504": "ConnectionError",
}


def base() -> dict[str, Any]:
    error: dict[str, Any] = {"message": ERROR_MESSAGE, "type": "RuntimeError"}
    for status, kind in STATUS_ERRORS.items():
        error[status] = {"message": ERROR_MESSAGE, "type": kind}
    error["422"]["message"] = ERROR_MESSAGE + f"{{{{{PROBLEMS_FUNCTION}(body.error.details)}}}}"
    error["401"] = {"message": "The LRE Bridge refused the API key: edit the connection and paste a valid key "
                               "({{body.error.message}})", "type": "InvalidAccessTokenError"}
    return {
        "baseUrl": "{{replace(connection.base_url; '/\\/+$/'; '')}}",
        "headers": {"Authorization": "Bearer {{connection.api_key}}", "Accept": "application/json"},
        "response": {"error": error},
        "log": {"sanitize": ["request.headers.authorization"]},
    }


def connection_files(catalog: Catalog, lang: str) -> dict[str, Any]:
    auth = catalog.authentication
    params = [without_empty({"name": f.key, "type": {"base_url": "url"}.get(f.key, PARAMETER_TYPES[f.type]),
                    "label": f.label.in_(lang), "help": f.help.in_(lang), "required": True}) for f in auth.fields]
    comm = {
        "url": "{{replace(parameters.base_url; '/\\/+$/'; '')}}" + auth.test.path,
        "method": auth.test.method,
        "headers": {"Authorization": "Bearer {{parameters.api_key}}", "Accept": "application/json"},
        "log": {"sanitize": ["request.headers.authorization"]},
        "response": {
            "metadata": {"type": "text", "value": f"{{{{body.{auth.label_field}}}}}"},
            "error": {
                "message": ERROR_MESSAGE, "type": "RuntimeError",
                "401": {"message": {"en": "This API key is not valid: create one with `lre-bridge keys create` "
                                          "and paste it here.",
                                    "fr": "Cette clé d'API n'est pas valide : créez-en une avec "
                                          "`lre-bridge keys create` et collez-la ici."}[lang],
                        "type": "InvalidAccessTokenError"},
            },
        },
    }
    return {"communication": comm, "params": params}


def rpc_files(lang: str) -> dict[str, dict[str, Any]]:
    label = {"en": "Template fields", "fr": "Champs du modèle"}[lang]
    return {
        LIST_TEMPLATES_RPC: {
            "communication": {"url": "/v1/templates", "method": "GET",
                              "response": {"iterate": "{{body.data}}",
                                           "output": {"label": "{{ifempty(item.title; item.name)}}",
                                                      "value": "{{item.name}}"}}},
            "params": [],
        },
        TEMPLATE_FIELDS_RPC: {
            "communication": {"url": "/v1/templates/{{parameters.template}}/fields", "method": "GET",
                              "qs": {"platform": "make"},
                              "response": {"output": {"name": "data", "type": "collection", "label": label,
                                                      "spec": "{{body.fields}}"}}},
            "params": [],
        },
    }


def universal_files(lang: str) -> dict[str, Any]:
    t = {"en": ("URL", "A path relative to your bridge URL, with its query string if any, e.g. "
                       "`/v1/letters?reference=DOSSIER-42`.", "Method", "", "", "Body (JSON)"),
         "fr": ("URL", "Un chemin relatif à l'URL du bridge, avec ses paramètres éventuels, par ex. "
                       "`/v1/letters?reference=DOSSIER-42`.", "Méthode", "", "", "Corps (JSON)")}[lang]
    mappable = [
        {"name": "url", "type": "text", "label": t[0], "help": t[1], "required": True},
        {"name": "method", "type": "select", "label": t[2], "required": True, "default": "GET",
         "options": [{"label": m, "value": m} for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]},
        {"name": "body", "type": "any", "label": t[5]},
    ]
    comm = {
        # Relative to the bridge only (Make's rule for universal modules: the key never leaves it).
        "url": "/{{replace(parameters.url; '/^\\/+/'; '')}}",
        "method": "{{parameters.method}}",
        "body": "{{parameters.body}}",
        "type": "json",
        "response": {"output": {"body": "{{body}}", "headers": "{{headers}}", "statusCode": "{{statusCode}}"}},
    }
    interface_ = [{"name": "body", "type": "any", "label": "Body"},
                  {"name": "headers", "type": "collection", "label": "Headers"},
                  {"name": "statusCode", "type": "number", "label": "Status code"}]
    return {"communication": comm, "static-params": [], "mappable-params": mappable, "interface": interface_,
            "samples": {"body": {"object": "account", "name": "Cabinet Durand"}, "headers": {}, "statusCode": 200}}


# IML functions (JavaScript, each with its test) -> their file's name in ``make_functions/``.
FUNCTION_FILES = {IDEMPOTENCY_FUNCTION: "idempotency-key", DOCUMENTS_FUNCTION: "document-list",
                  PROBLEMS_FUNCTION: "problem-list", ROWS_FUNCTION: "row-list"}


def function_files() -> dict[str, dict[str, str]]:
    """Every IML function of the app: id -> {"code": its source, "test": its test}."""
    return {function_id: {part: (FUNCTION_DIR / f"{name}.{part}.js").read_text(encoding="utf-8")
                          for part in ("code", "test")}
            for function_id, name in FUNCTION_FILES.items()}
