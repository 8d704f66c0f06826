"""The OpenAPI document says what the code answers: every error status, with the one error body.

Statuses that follow from how an operation is built are added here, once, from the document
itself: a caller key (``security``, declared by ``deps.BEARER``) means 401, 429 (the rate
limit) and 503 (keys are read from the database: ``unavailable``), any parameter or body 422,
a body that is not JSON text 400, any method that may carry a body 413 and 422 (``BodyLimit``:
size and JSON depth). What only the route's own logic knows (403 admin-only, a 404 for an
unknown name, a 409, a backend's 502) the route declares with ``errors(...)``. Every error
answer shares ``ErrorBody``, replacing FastAPI's default 422 schema, which is not what this
API sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..errors import ErrorBody

DESCRIPTIONS = {
    400: "The body could not be read as JSON text (not UTF-8, say).",
    401: "No API key, or an unknown or revoked one.",
    403: "The key lacks the scope this needs (admin).",
    404: "Not found, or not visible to this team.",
    409: "Conflicts with what exists (a name taken, an Idempotency-Key reused).",
    410: "A link that is used up or expired.",
    413: "The request body is larger than the server accepts.",
    422: "Invalid input: `error.field` names the first field at fault.",
    429: "Too many requests, jobs or streams, or the team is over budget (see Retry-After).",
    502: "The model backend failed, crashed, or every cascade candidate was rejected.",
    503: "A model backend, the database or the broker is unreachable (see Retry-After).",
    504: "The model backend timed out.",
    507: "The model does not fit the configured memory budget.",
}
BODY_METHODS = frozenset({"post", "put", "patch", "delete"})
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: these statuses answer with ``ErrorBody``."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]}
            for status in statuses}


def implied_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation answers because of how it is built (see the module doc)."""
    statuses: set[int] = set()
    if operation.get("security"):  # the key is looked up in the database (``unavailable``)
        statuses |= {401, 429, 503}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        statuses.add(400)
    if method in BODY_METHODS:
        statuses |= {413, 422}
    return statuses


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, completed with the implied statuses and ``ErrorBody``."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    body_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body_schema.pop("$defs", {}))
    schemas["ErrorBody"] = body_schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for item in doc["paths"].values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(implied_statuses(method, operation)):
                responses[str(status)] = {
                    "description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
    return doc


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
