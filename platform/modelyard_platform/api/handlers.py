"""Each exception mapped once to an HTTP response with the platform's one error body.

The bodies come from ``modelyard_platform.errors``; this module only picks the status (and a
``Retry-After`` for 429s) at the HTTP edge.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from modelyard_registry.errors import ModelyardError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import describe, error_body

log = logging.getLogger(__name__)

STATUS_TYPES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_input", 429: "rate_limited",
}
RETRY_AFTER_S = 60


def error_response(
    status: int, type_: str, message: str, field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status == 429:
        headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    return JSONResponse(error_body(type_, message, field), status_code=status, headers=headers)


def validation_response(exc: ValidationError | RequestValidationError,
                        prefix: str | None = None) -> JSONResponse:
    detail = describe(exc, prefix=prefix)
    return error_response(422, detail["type"], detail["message"], detail.get("field"))


def allowed_methods(request: Request) -> str | None:
    """The methods the OpenAPI document lists for this path: a 405's ``Allow`` must say the same.

    The framework's own header names only the methods of the first route that matched the path,
    not every route sharing it (``GET`` and ``POST /v1/models`` are two routes).
    """
    path = request.url.path
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return ", ".join(sorted(method.upper() for method in item))
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def _modelyard(_: Request, exc: ModelyardError) -> JSONResponse:
        return error_response(exc.http_status, exc.error_type, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = STATUS_TYPES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        allow = allowed_methods(request) if exc.status_code == 405 else None
        if allow:
            headers["Allow"] = allow
        return error_response(exc.status_code, type_, str(exc.detail), None, headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the server log")
