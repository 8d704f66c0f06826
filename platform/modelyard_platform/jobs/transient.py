"""Which failures of a job are the infrastructure's, not the job's: retried with backoff.

A database or broker hiccup (a dropped connection, a restarted server, a locked SQLite file) says
nothing about the job, so the job goes back to the queue and resumes from its checkpoint later.
The errors arrive wrapped by SQLAlchemy, raw from psycopg or sqlite3 (the LangGraph savers hold
their own connections), from redis-py (the event bus) or from kombu (the broker).
"""

from __future__ import annotations

import sqlite3

import kombu.exceptions
import psycopg
import redis.exceptions
from modelyard_registry.errors import BackendError, CascadeExhausted
from sqlalchemy.exc import InterfaceError, OperationalError

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # SQLAlchemy: connection lost, server restarting, database locked
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    TimeoutError,
    BackendError,  # a model server that did not answer
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed: the cause, or what it was raised from, is infra."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        if isinstance(current, CascadeExhausted):
            attempts = current.attempts
            return bool(attempts) and all(a.outcome == "error" for a in attempts)
        current = current.__cause__ or current.__context__
    return False
