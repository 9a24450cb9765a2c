"""The API's error shape: ``{"error": {"code", "message", "field"}}`` with a 4xx status."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from connector.storage import BlobCorrupted


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

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            error["details"] = self.details
        return {"error": error}


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
