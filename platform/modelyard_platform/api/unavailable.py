"""A request that meets a database or broker outage is a 503 with ``Retry-After``, not a 500.

While PostgreSQL or Redis restarts, every request that needs it fails with a connection error.
That is not a bug in the request or the server, and the same request succeeds once the
dependency is back: clients (and load balancers, which also read ``/readyz``) should retry, so
the answer says so (``{"error": {"type": "unavailable", ...}}``, 503, ``Retry-After``).
"""

from __future__ import annotations

import logging

import psycopg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from .handlers import error_response

log = logging.getLogger(__name__)

OUTAGES: tuple[type[Exception], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)
RETRY_AFTER_S = 5


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("a dependency is unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(503, "unavailable", "the database or the broker is unavailable; "
                          "retry shortly", None, {"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    for kind in OUTAGES:
        app.add_exception_handler(kind, _unavailable)
