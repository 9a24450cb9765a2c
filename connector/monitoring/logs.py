"""Structured logs (``LRE_LOG_FORMAT=json``): one JSON line per request and per job.

A line carries what an operator searches by — the letter id, the account, the route, the status,
the duration — and never a secret: requests are logged by their route pattern
(``/callbacks/<provider>/<token>``), not by the URL that carries the token, and never with headers,
query strings or bodies.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from connector.config import Settings

REQUEST_LOG = logging.getLogger("connector.requests")
JOB_LOG = logging.getLogger("connector.delivery.jobs")
# Fields a log call may add with ``extra=``; anything else stays out of the line.
FIELDS = ("event", "method", "route", "status", "duration_ms", "letter_id", "account_id", "kind", "job_id",
          "outcome", "attempts")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_enabled(settings: Settings) -> bool:
    return settings.log_format == "json"


def configure(settings: Settings) -> None:
    """With ``LRE_LOG_FORMAT=json``, the bridge's loggers write JSON lines to stderr (once per process)."""
    if not json_enabled(settings):
        return
    root = logging.getLogger("connector")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.propagate = False  # one line per record, not a second plain-text copy from the root logger


def log_request(settings: Settings, *, method: str, route: str, status: int, duration_ms: float,
                letter_id: str | None, account_id: str | None) -> None:
    """One line for an HTTP request (JSON format only)."""
    if json_enabled(settings):
        REQUEST_LOG.info("%s %s %d", method, route, status, extra={
            "event": "request", "method": method, "route": route, "status": status,
            "duration_ms": round(duration_ms, 1), "letter_id": letter_id, "account_id": account_id})


def log_job(settings: Settings, *, kind: str, job_id: int | None, letter_id: str | None, account_id: str | None,
            outcome: str, duration_ms: float, attempts: int) -> None:
    """One line for a job run (JSON format only)."""
    if json_enabled(settings):
        JOB_LOG.info("job %s %s", kind, outcome, extra={
            "event": "job", "kind": kind, "job_id": job_id, "letter_id": letter_id, "account_id": account_id,
            "outcome": outcome, "duration_ms": round(duration_ms, 1), "attempts": attempts})
