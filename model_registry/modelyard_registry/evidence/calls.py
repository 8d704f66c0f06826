"""Keep the request text of a production call, so its validator verdict becomes evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from ..catalog import utcnow
from .tables import CallInput, bounded

_TABLE = CallInput.__table__  # type: ignore[attr-defined]
_ADD_ONCE = {name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
             for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
"""The statement per dialect, built once (building it per call showed in the profile)."""


def evidence_text(messages: Iterable[Mapping[str, str]] | None, prompt: str | None) -> str:
    """What a request asks, as the predictor should see it: the user turns, or the raw prompt.

    System messages are the product's instructions, the same on every call of a node; leaving
    them out keeps the text about the request itself (and the row small).
    """
    if messages is None:
        return bounded(prompt or "")
    users = [m.get("content", "") for m in messages if m.get("role", "user") == "user"]
    return bounded("\n\n".join(users))


def record_call_input(
    session: Session,
    *,
    request_id: str,
    kind: str,
    text: str,
    team_id: int | None = None,
    job_id: str | None = None,
    node: str | None = None,
) -> None:
    """Add the request's text once (a second attempt of the same request adds nothing).

    One ``INSERT ... ON CONFLICT DO NOTHING`` (both SQLite and PostgreSQL have it), not a
    read then a write: this runs on every chat request, and the row is almost never there.
    The caller commits: the cascade writes it in the transaction of the first ``Call`` row.
    """
    connection = session.connection()
    statement = _ADD_ONCE["postgresql" if connection.dialect.name == "postgresql" else "sqlite"]
    connection.execute(statement, {
        "request_id": request_id, "team_id": team_id, "job_id": job_id, "node": node,
        "kind": kind, "text": bounded(text), "created_at": utcnow()})
