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
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .session_route import SessionRoute

LeanHandler = Callable[[Request], Awaitable[Response | None]]


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


__all__ = ["LeanHandler", "lean_route"]
