"""``GET /metrics``: Prometheus text exposition, for operators (a token or an allowed network)."""

from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST

from connector.api.common import services
from connector.api.errors import ApiError
from connector.api.registry import Answer, documented, text_answer
from connector.monitoring.logs import configure as configure_logs
from connector.monitoring.logs import log_request
from connector.monitoring.metrics import exposition

bp = Blueprint("metrics", __name__)
# Structured request logs (LRE_LOG_FORMAT=json) hang on this blueprint, for every route of the app.
bp.record_once(lambda state: configure_logs(state.app.extensions["lre"].settings))


@bp.before_app_request
def _start_clock() -> None:
    g.request_started = time.perf_counter()


@bp.after_app_request
def _log_request(response: Response) -> Response:
    started = g.get("request_started")
    account = g.get("account")
    log_request(services().settings, method=request.method,
                # The route pattern, never the URL: provider callback URLs carry a secret token.
                route=request.url_rule.rule if request.url_rule else "(no route)", status=response.status_code,
                duration_ms=(time.perf_counter() - started) * 1000 if started else 0.0,
                letter_id=(request.view_args or {}).get("letter_id"),
                account_id=getattr(account, "id", None))
    return response


def _allowed(remote: str | None, networks: str) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    for network in networks.split(","):
        if network.strip() and address in ipaddress.ip_network(network.strip(), strict=False):
            return True
    return False


@bp.get("/metrics")
@documented(
    "Prometheus metrics (operators)", tags=["Monitoring"],
    # Either the metrics token (when LRE_METRICS_TOKEN is set) or none at all from an allowed
    # network: the API keys of accounts are not what guards it.
    security=[{"bearer": []}, {}],
    description="Letters by status and provider, queue depth and oldest due job, job durations, provider "
                "calls and errors, webhook deliveries. Needs LRE_METRICS_TOKEN as a bearer token when "
                "set; otherwise only LRE_METRICS_ALLOW_NETWORKS (loopback by default) may read it.",
    answers={200: text_answer("Prometheus text format", "text/plain"), 403: Answer("Not an allowed network")},
    errors={401: None})
def metrics() -> Response:
    """The metrics, when the caller has the token (``LRE_METRICS_TOKEN``) or, without a token
    configured, comes from ``LRE_METRICS_ALLOW_NETWORKS`` (loopback by default)."""
    settings = services().settings
    if settings.metrics_token:
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
            raise ApiError(401, "unauthorized", "Send the metrics token as 'Authorization: Bearer <token>'.",
                           headers={"WWW-Authenticate": "Bearer"})
    elif not _allowed(request.remote_addr, settings.metrics_allow_networks):
        raise ApiError(403, "forbidden", "Metrics are served to LRE_METRICS_ALLOW_NETWORKS only "
                                         "(or set LRE_METRICS_TOKEN).")
    return Response(exposition(services()), mimetype=CONTENT_TYPE_LATEST)
