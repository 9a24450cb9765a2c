"""The API's error shape: ``{"error": {"code", "message", "field"}}`` with a 4xx status.

``STATUS_BY_ERROR`` is the one table from the domain's errors (``connector/errors.py``) to HTTP
statuses; ``ApiError`` is for what only the HTTP layer knows (authentication, idempotency, routing).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from connector import shapes
from connector.errors import (
    BridgeError,
    Conflict,
    InvalidInput,
    MalformedRequest,
    NotFound,
    TooLarge,
    Unavailable,
)
from connector.lib.storage import BlobCorrupted

# Each domain error kind and the HTTP status it leaves as (the most specific class wins).
STATUS_BY_ERROR: dict[type[BridgeError], int] = {
    MalformedRequest: 400,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    InvalidInput: 422,
    Unavailable: 503,
}


def status_of(error: BridgeError) -> int:
    """The HTTP status of a domain error: its own class's, or the nearest parent's in the table."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 422


class ApiError(Exception):
    """An error to show the API client. ``field`` names the request field at fault, if any."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.headers = headers or {}

    @classmethod
    def from_domain(cls, error: BridgeError) -> ApiError:
        """The HTTP answer to a domain error, by ``STATUS_BY_ERROR``."""
        return cls(status_of(error), error.code, error.message, error.field, details=error.details)

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            error["details"] = self.details
        return shapes.Error.dump(error=error)


def error_response(error: ApiError) -> Response:
    response = jsonify(error.to_body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def register_error_handlers(app: Flask) -> None:
    """Every error leaves as JSON; client mistakes never become a 500."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(BridgeError)
    def _domain_error(error: BridgeError) -> Response:
        return error_response(ApiError.from_domain(error))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = "The request body is too large."
        # Keep what the exception says beyond its body: 405's Allow, 401's WWW-Authenticate.
        kept = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        if status == 405:
            # The methods documented for this path, not Flask's list (HEAD, OPTIONS, other rules').
            from flask import request

            from connector.api.methods import allowed_methods

            kept["Allow"] = ", ".join(allowed_methods(request.path))
        return error_response(ApiError(status, _HTTP_CODES.get(status, "http_error"), message, headers=kept))

    @app.errorhandler(BlobCorrupted)
    def _archive_damaged(error: BlobCorrupted) -> Response:
        # Never hand out bytes that are not the ones archived: say so plainly, and log the key.
        app.logger.error("%s", error)
        return error_response(ApiError(500, "archive_object_damaged",
                                       "A stored document or proof no longer matches its fingerprint; "
                                       "the operator's log names it (lre-bridge archive verify lists them all)."))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unexpected error")
        return error_response(ApiError(500, "internal_error", "Something went wrong on our side."))
