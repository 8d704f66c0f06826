"""Routes whose request session is closed on the thread that used it, before that thread is free.

A sync route runs on one of anyio's worker threads; its request session connects there on first
use.  If the session stayed open until the dependency's teardown, the request would hold its
pooled connection through the response's serialisation, which waits for another worker thread.
Under load every worker thread can be waiting for a connection that only those waiting
serialisations would give back: requests hang for the pool's 30 s and fail (#15).

So a sync route's sessions are closed in its own thread, in a ``finally`` after the endpoint
returns (or raises), before the thread is handed back.  A thread then holds a connection only
while it runs, and gives it back without waiting for anything: threads waiting for the pool
always wait on threads that are making progress, whatever the number of clients, threads and
connections.  The session's uncommitted work is rolled back, as the teardown did before; routes
commit what they keep.  Objects read before the close keep their loaded attributes
(``expire_on_commit=False``); responses are built from them inside the route.

An async route (explain, embeddings) does its database work in one thread hop and makes no
further hop once its session holds a connection; ``get_session``'s teardown closes it on
``services.release``, whose threads wait for nothing.  ``tests/service/test_session_routes.py``
checks that every route taking a request session is one of these.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlmodel import Session


def closes_sessions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` that closes the sessions it was given before it returns."""

    @functools.wraps(endpoint)  # FastAPI reads the signature and globals through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()

    return run


class SessionRoute(APIRoute):
    """An ``APIRoute`` whose sync endpoint closes its request session on its own thread."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not (inspect.iscoroutinefunction(endpoint) or inspect.isasyncgenfunction(endpoint)
                or inspect.isgeneratorfunction(endpoint)):
            endpoint = closes_sessions(endpoint)
        super().__init__(path, endpoint, **kwargs)


__all__ = ["SessionRoute", "closes_sessions"]
