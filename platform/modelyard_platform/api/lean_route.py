"""Routes whose common requests skip FastAPI's per-request work, and whose others do not.

FastAPI solves a route's dependencies, reads its headers and validates its body on every
request: on ``POST /v1/chat/completions`` against an instant backend that was about a quarter
of the API process's CPU (py-spy, #15), more than the model call's own HTTP round trip.  A lean
handler does the same for the request it recognises (a well-formed body, a key already in the
key cache) in a few direct calls, and answers ``None`` for any other: that request then takes
FastAPI's full path, so every error (a malformed body, an unknown key, the order in which they
are checked) is answered exactly as before.  The route stays a FastAPI route: the OpenAPI
document, the middleware, the exception handlers and ``/metrics`` see no difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from .session_route import SessionRoute

LeanHandler = Callable[[Request], Awaitable[Response | None]]
M = TypeVar("M", bound=BaseModel)


def json_body(raw: bytes, content_type: str | None, model: type[M]) -> M | None:
    """``raw`` as a ``model`` when FastAPI would read it as one, else None.

    FastAPI parses a body as JSON only under an ``application/json`` (or ``+json``) content
    type; the lean path takes the plain one (what SDKs send) and leaves the rest to FastAPI.
    ``orjson`` reads exactly the JSON texts ``json.loads`` reads as the same value, except those
    it refuses (NaN, integers past 64 bits, invalid UTF-8), which go to FastAPI too.  The model
    validates the parsed object in Python mode, as FastAPI validates a body parameter.
    """
    if not raw or content_type is None:
        return None
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def lean_route(lean: LeanHandler) -> type[SessionRoute]:
    """A route class that tries ``lean`` first and falls back to FastAPI's handler."""

    class LeanRoute(SessionRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            full = super().get_route_handler()

            async def handler(request: Request) -> Response:
                response = await lean(request)
                return response if response is not None else await full(request)

            return handler

    return LeanRoute


__all__ = ["LeanHandler", "json_body", "lean_route"]
