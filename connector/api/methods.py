"""Which HTTP methods a URL answers, said the same way by the server and by ``/openapi.json``.

Flask answers OPTIONS and HEAD on every route by itself and lists them, with the methods of every
rule the URL happens to match, in ``Allow``: ``/v1/consents/legal-bases`` also matches
``/v1/consents/<consent_id>``, so its ``Allow`` said DELETE, which that path does not have. The
API documents neither OPTIONS nor HEAD (it serves no browser across origins, and a HEAD of a PDF
download would still read the archive), so both are refused with 405, and every 405's ``Allow``
lists the methods of the one URL template the path belongs to — the most specific one, as the
router picks it — which are exactly that path's operations in the document.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule

from connector.api.errors import ApiError

DOCUMENTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(path: str) -> list[str]:
    """The documented methods of the URL template that ``path`` belongs to (empty if none)."""
    adapter = current_app.url_map.bind("localhost")
    matches: dict[str, Rule] = {}
    for method in DOCUMENTED_METHODS:
        try:
            rule, _ = adapter.match(path, method=method, return_rule=True)
        except (MethodNotAllowed, NotFound):
            continue
        except Exception:  # noqa: BLE001 - a redirect (trailing slash) or an unreadable path: no methods
            continue
        matches[method] = rule
    if not matches:
        return []
    # The template with the fewest variables is the one this path is (static beats <consent_id>).
    template = min((rule for rule in matches.values()), key=lambda rule: len(rule.arguments)).rule
    return [method for method, rule in matches.items() if rule.rule == template]


def _refuse_undocumented_methods() -> None:
    if request.method in ("HEAD", "OPTIONS"):
        allow = allowed_methods(request.path)
        if not allow:
            raise ApiError(404, "not_found", "There is nothing at this URL.")
        raise ApiError(405, "method_not_allowed", f"The method {request.method} is not allowed for this URL.",
                       headers={"Allow": ", ".join(allow)})


def install_method_policy(app: Flask) -> None:
    """Refuse HEAD and OPTIONS (undocumented) before any view runs; 405s list the documented methods."""
    app.before_request(_refuse_undocumented_methods)
