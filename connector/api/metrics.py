"""``GET /metrics``: Prometheus text exposition, for operators (a token or an allowed network)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from connector.api.common import services
from connector.errors import ApiError
from connector.monitoring.metrics import exposition

bp = Blueprint("metrics", __name__)


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


OPENAPI: dict[str, Any] = {
    "/metrics": {"get": {
        "tags": ["Monitoring"], "summary": "Prometheus metrics (operators)", "security": [{"bearer": []}],
        "description": "Letters by status and provider, queue depth and oldest due job, job durations, provider "
                       "calls and errors, webhook deliveries. Needs LRE_METRICS_TOKEN as a bearer token when "
                       "set; otherwise only LRE_METRICS_ALLOW_NETWORKS (loopback by default) may read it.",
        "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {
            "schema": {"type": "string"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"description": "Not an allowed network"}}}},
}
