"""gunicorn access log without secrets: provider callback URLs carry a per-letter token."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_CALLBACK_TOKEN = re.compile(r"^(/callbacks/[^/]+/)[^/?]+")


def redact_path(path: str) -> str:
    """``/callbacks/ar24/<token>`` → ``/callbacks/ar24/…``; other paths unchanged."""
    return _CALLBACK_TOKEN.sub(r"\1…", path)


class RedactingLogger(Logger):
    """The standard gunicorn logger, with callback tokens removed from logged paths."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_path(atoms[key]) if key == "U" else _redact_request_line(atoms[key])
        return atoms


def _redact_request_line(line: str) -> str:
    method, _, rest = line.partition(" ")
    return f"{method} {redact_path(rest)}"
