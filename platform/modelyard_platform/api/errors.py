"""One JSON error shape for every failure: ``{"error": {"type", "message", "field"?}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from modelyard_registry.errors import ModelyardError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_STATUS_TYPES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_input", 429: "rate_limited",
}


def error_body(type_: str, message: str, field: str | None = None) -> dict[str, Any]:
    """``{"error": {"type", "message", "field"?}}``: in a response, or inside a stream."""
    body: dict[str, Any] = {"type": type_, "message": message}
    if field:
        body["field"] = field
    return {"error": body}


def error_response(
    status: int, type_: str, message: str, field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(type_, message, field), status_code=status, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any], prefix: str | None = None) -> str:
    """``("body", "input", "body")`` -> ``"input.body"``: only FastAPI's leading location goes.

    A request error's location starts with where it came from (body/query/path/header); a
    field that happens to be named ``body`` (a ticket's body, say) must keep its name.
    """
    parts = [str(p) for p in loc]
    if prefix:
        parts.insert(0, prefix)
    elif parts and parts[0] == "body":
        parts.pop(0)
    return ".".join(parts)


def validation_response(exc: ValidationError | RequestValidationError,
                        prefix: str | None = None) -> JSONResponse:
    first = exc.errors()[0]
    field = field_path(first.get("loc", ()), prefix)
    message = f"{field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "invalid")
    return error_response(422, "invalid_input", message, field or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def _modelyard(_: Request, exc: ModelyardError) -> JSONResponse:
        headers = {"Retry-After": "60"} if exc.http_status == 429 else None
        return error_response(exc.http_status, exc.error_type, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _STATUS_TYPES.get(exc.status_code, "error")
        return error_response(exc.status_code, type_, str(exc.detail), None,
                              dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the server log")
